//! A YAML document as a tree of nodes that remember their line and column (1-based, like Go's
//! `yaml.v3` nodes), plus decoding helpers that report problems the way `yaml.v3` does
//! (`line 3: field foo not found in type rulefmt.RuleGroup`). Rule files need the positions for
//! `promtool check rules`-compatible messages, which `serde_yaml` cannot give. Merge keys
//! (`<<: *anchor`, `<<: [*a, *b]`) are expanded while building the tree, as `yaml.v3` applies
//! them when decoding.

use std::collections::BTreeMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// What a node holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// A scalar; `plain` is false for quoted and block scalars (never null / numbers).
    Scalar {
        value: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// One YAML node with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub line: usize,
    pub col: usize,
}

impl Node {
    /// Whether this is YAML's null (`~`, `null`, empty).
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { value, plain: true } if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// The YAML tag Go's decoder names in type errors.
    pub fn tag(&self) -> &'static str {
        match &self.kind {
            Kind::Seq(_) => "!!seq",
            Kind::Map(_) => "!!map",
            Kind::Scalar { .. } if self.is_null() => "!!null",
            Kind::Scalar { value, plain: true } => {
                if matches!(
                    value.as_str(),
                    "true" | "false" | "True" | "False" | "TRUE" | "FALSE"
                ) {
                    "!!bool"
                } else if value.parse::<i64>().is_ok() {
                    "!!int"
                } else if value.parse::<f64>().is_ok() && !value.chars().all(|c| c.is_ascii_alphabetic()) {
                    "!!float"
                } else {
                    "!!str"
                }
            }
            Kind::Scalar { .. } => "!!str",
        }
    }

    fn short_value(&self) -> String {
        match &self.kind {
            Kind::Scalar { value, .. } => {
                if value.chars().count() > 10 {
                    let s: String = value.chars().take(7).collect();
                    format!(" `{s}...`")
                } else {
                    format!(" `{value}`")
                }
            }
            _ => String::new(),
        }
    }
}

/// Collects `yaml.v3`-style "unmarshal errors" while decoding.
#[derive(Debug, Default)]
pub struct Decoder {
    pub errors: Vec<String>,
    /// Skip fields a struct does not have instead of reporting them (`KnownFields(false)`).
    pub ignore_unknown: bool,
}

impl Decoder {
    fn type_error(&mut self, n: &Node, into: &str) {
        self.errors.push(format!(
            "line {}: cannot unmarshal {}{} into {into}",
            n.line,
            n.tag(),
            n.short_value()
        ));
    }

    /// Decodes a string field (scalars of any plain type become their text, as in Go).
    pub fn string(&mut self, n: &Node) -> String {
        match &n.kind {
            _ if n.is_null() => String::new(),
            Kind::Scalar { value, .. } => value.clone(),
            _ => {
                self.type_error(n, "string");
                String::new()
            }
        }
    }

    pub fn int(&mut self, n: &Node) -> i64 {
        match &n.kind {
            _ if n.is_null() => 0,
            Kind::Scalar { value, plain: true } if value.parse::<i64>().is_ok() => value.parse().unwrap_or(0),
            _ => {
                self.type_error(n, "int");
                0
            }
        }
    }

    /// A `float64` field (YAML's `.inf`, `.nan` included).
    pub fn float(&mut self, n: &Node) -> f64 {
        match &n.kind {
            _ if n.is_null() => 0.0,
            Kind::Scalar { value, plain: true } => {
                let v = value.as_str();
                match v {
                    ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => f64::INFINITY,
                    "-.inf" | "-.Inf" | "-.INF" => f64::NEG_INFINITY,
                    ".nan" | ".NaN" | ".NAN" => f64::NAN,
                    _ => match v.replace('_', "").parse::<f64>() {
                        Ok(f) if !v.chars().any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E') => f,
                        _ => {
                            self.type_error(n, "float64");
                            0.0
                        }
                    },
                }
            }
            _ => {
                self.type_error(n, "float64");
                0.0
            }
        }
    }

    /// A `model.Duration` field; its parse error is reported as Go reports it (no line).
    pub fn duration(&mut self, n: &Node) -> i64 {
        if n.is_null() {
            return 0;
        }
        match &n.kind {
            Kind::Scalar { value, .. } => match crate::ruler::duration::parse_duration(value) {
                Ok(v) => v,
                Err(e) => {
                    self.errors.push(e);
                    0
                }
            },
            _ => {
                self.type_error(n, "string");
                0
            }
        }
    }

    /// A `map[string]string` field; keys in document order, duplicates as Go reports them.
    pub fn string_map(&mut self, n: &Node) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        match &n.kind {
            _ if n.is_null() => {}
            Kind::Map(entries) => {
                for (k, v) in entries {
                    let key = self.string(k);
                    let val = self.string(v);
                    out.insert(key, val);
                }
            }
            _ => self.type_error(n, "map[string]string"),
        }
        out
    }

    /// A sequence field; `None` (after reporting) when the node is not a sequence.
    pub fn seq<'a>(&mut self, n: &'a Node, into: &str) -> &'a [Node] {
        match &n.kind {
            Kind::Seq(items) => items,
            _ if n.is_null() => &[],
            _ => {
                self.type_error(n, into);
                &[]
            }
        }
    }

    /// A struct: the entries of a mapping, reporting unknown fields (`KnownFields(true)`).
    pub fn fields<'a>(&mut self, n: &'a Node, type_name: &str, known: &[&str]) -> Vec<(&'a str, &'a Node)> {
        let mut out = Vec::new();
        match &n.kind {
            Kind::Map(entries) => {
                let mut seen: Vec<&str> = Vec::new();
                for (k, v) in entries {
                    let key = match &k.kind {
                        Kind::Scalar { value, .. } => value.as_str(),
                        _ => {
                            self.type_error(k, "string");
                            continue;
                        }
                    };
                    if !known.contains(&key) {
                        if self.ignore_unknown {
                            continue;
                        }
                        self.errors.push(format!(
                            "line {}: field {key} not found in type {type_name}",
                            k.line
                        ));
                        continue;
                    }
                    if seen.contains(&key) {
                        self.errors.push(format!(
                            "line {}: mapping key {:?} already defined at line {}",
                            k.line,
                            key,
                            entries
                                .iter()
                                .find(
                                    |(kk, _)| matches!(&kk.kind, Kind::Scalar { value, .. } if value == key)
                                )
                                .map(|(kk, _)| kk.line)
                                .unwrap_or(k.line)
                        ));
                        continue;
                    }
                    seen.push(key);
                    out.push((key, v));
                }
            }
            _ if n.is_null() => {}
            _ => self.type_error(n, type_name),
        }
        out
    }

    /// The `yaml: unmarshal errors:` block Go prints, or `None` when decoding was clean.
    pub fn into_error(self) -> Option<String> {
        if self.errors.is_empty() {
            return None;
        }
        // Go prints plain-value errors (durations) without the header.
        let (typed, plain): (Vec<_>, Vec<_>) = self.errors.into_iter().partition(|e| e.starts_with("line "));
        if let Some(p) = plain.into_iter().next() {
            return Some(p);
        }
        Some(format!("yaml: unmarshal errors:\n  {}", typed.join("\n  ")))
    }
}

#[derive(Default)]
struct Builder {
    stack: Vec<(Node, Option<Node>)>,
    anchors: BTreeMap<usize, Node>,
    anchor_stack: Vec<usize>,
    docs: Vec<Node>,
    /// The first merge-key error (Go fails the whole decode with it).
    error: Option<String>,
    /// Nodes copied in for aliases so far, bounded by [`MAX_ALIAS_NODES`].
    alias_nodes: usize,
}

/// Most nodes aliases may copy into one document: ten nested anchors of ten
/// aliases each would otherwise expand to ten billion nodes ("billion laughs").
const MAX_ALIAS_NODES: usize = 1_000_000;

/// Deepest nesting a rule file's YAML may have: the YAML parser and this tree
/// recurse on it. Rule files nest five or six levels.
pub const MAX_YAML_DEPTH: usize = 1000;

/// Nodes in the tree under `n`, `n` included.
fn node_count(n: &Node) -> usize {
    1 + match &n.kind {
        Kind::Scalar { .. } => 0,
        Kind::Seq(items) => items.iter().map(node_count).sum(),
        Kind::Map(entries) => entries.iter().map(|(k, v)| node_count(k) + node_count(v)).sum(),
    }
}

/// An upper bound of how deeply `text` nests, from the text alone: a block
/// collection nests deeper only with more indentation or another indicator
/// (`- `, `? `, `: `) on the same line, a flow collection only inside a
/// bracket.
fn nesting_bound(text: &str) -> usize {
    let mut flow = 0usize;
    let mut deepest = 0usize;
    for line in text.lines() {
        let b = line.as_bytes();
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        let mut indicators = 0usize;
        let mut peak_flow = flow;
        let mut quote = None;
        for (i, &c) in b.iter().enumerate() {
            let before_space = b.get(i + 1).is_none_or(|n| *n == b' ');
            match (quote, c) {
                (None, b'"' | b'\'') => quote = Some(c),
                (Some(q), _) if c == q => quote = None,
                (None, b'#') => break,
                (None, b'[' | b'{') => {
                    flow += 1;
                    peak_flow = peak_flow.max(flow);
                }
                (None, b']' | b'}') => flow = flow.saturating_sub(1),
                (None, b'-' | b'?' | b':') if before_space => indicators += 1,
                _ => {}
            }
        }
        deepest = deepest.max(indent + indicators + peak_flow);
    }
    deepest
}

/// A plain `<<` key (a quoted one is an ordinary string, as in `yaml.v3`'s `isMerge`).
fn is_merge_key(k: &Node) -> bool {
    matches!(&k.kind, Kind::Scalar { value, plain: true } if value == "<<")
}

fn same_key(a: &Node, b: &Node) -> bool {
    match (&a.kind, &b.kind) {
        (Kind::Scalar { value: x, .. }, Kind::Scalar { value: y, .. }) => x == y,
        _ => a.kind == b.kind,
    }
}

const MERGE_NEEDS_MAP: &str = "yaml: map merge requires map or sequence of maps as the value";

/// Applies a mapping's merge key the way `yaml.v3` decodes one: keys written in the mapping win,
/// then the merged mappings in order, an earlier one winning over a later one (`yaml.v3` marks
/// every key it has set and skips it afterwards). With several `<<` keys the last one counts.
fn expand_merges(entries: &mut Vec<(Node, Node)>) -> Result<(), String> {
    if !entries.iter().any(|(k, _)| is_merge_key(k)) {
        return Ok(());
    }
    let mut merge = None;
    let mut out = Vec::with_capacity(entries.len());
    for (k, v) in entries.drain(..) {
        if is_merge_key(&k) {
            merge = Some(v);
        } else {
            out.push((k, v));
        }
    }
    let sources: Vec<Node> = match merge.map(|m| m.kind) {
        Some(Kind::Map(m)) => vec![Node {
            kind: Kind::Map(m),
            line: 0,
            col: 0,
        }],
        Some(Kind::Seq(items)) => items,
        _ => return Err(MERGE_NEEDS_MAP.to_string()),
    };
    for source in sources {
        let Kind::Map(merged) = source.kind else {
            return Err(MERGE_NEEDS_MAP.to_string());
        };
        for (k, v) in merged {
            if !out.iter().any(|(have, _)| same_key(have, &k)) {
                out.push((k, v));
            }
        }
    }
    *entries = out;
    Ok(())
}

impl Builder {
    fn push_value(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some((parent, pending_key)) => match &mut parent.kind {
                Kind::Seq(items) => items.push(node),
                Kind::Map(entries) => match pending_key.take() {
                    None => *pending_key = Some(node),
                    Some(k) => entries.push((k, node)),
                },
                Kind::Scalar { .. } => {}
            },
        }
    }
}

fn pos(m: Marker) -> (usize, usize) {
    (m.line(), m.col() + 1)
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let (line, col) = pos(mark);
        match ev {
            Event::Scalar(value, style, anchor, _) => {
                let node = Node {
                    kind: Kind::Scalar {
                        value,
                        plain: style == TScalarStyle::Plain,
                    },
                    line,
                    col,
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push_value(node);
            }
            Event::SequenceStart(anchor, _) => {
                self.anchor_stack.push(anchor);
                self.stack.push((
                    Node {
                        kind: Kind::Seq(Vec::new()),
                        line,
                        col,
                    },
                    None,
                ));
            }
            Event::MappingStart(anchor, _) => {
                self.anchor_stack.push(anchor);
                self.stack.push((
                    Node {
                        kind: Kind::Map(Vec::new()),
                        line,
                        col,
                    },
                    None,
                ));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((mut node, _)) = self.stack.pop() {
                    // Go's yaml.v3 places a block mapping at its first key.
                    if let Kind::Map(entries) = &node.kind
                        && let Some((k, _)) = entries.first()
                    {
                        (node.line, node.col) = (k.line, k.col);
                    }
                    if let Kind::Map(entries) = &mut node.kind
                        && let Err(e) = expand_merges(entries)
                    {
                        self.error.get_or_insert(e);
                    }
                    let anchor = self.anchor_stack.pop().unwrap_or(0);
                    if anchor > 0 {
                        self.anchors.insert(anchor, node.clone());
                    }
                    self.push_value(node);
                }
            }
            Event::Alias(id) => {
                if let Some(anchored) = self.anchors.get(&id) {
                    self.alias_nodes += node_count(anchored);
                    if self.alias_nodes > MAX_ALIAS_NODES {
                        // Go's yaml.v3 refuses alias bombs with this message.
                        self.error
                            .get_or_insert_with(|| "yaml: document contains excessive aliasing".into());
                        self.anchors.clear();
                    }
                }
                let node = self.anchors.get(&id).cloned().unwrap_or(Node {
                    kind: Kind::Scalar {
                        value: String::new(),
                        plain: true,
                    },
                    line,
                    col,
                });
                self.push_value(node);
            }
            _ => {}
        }
    }
}

/// Parses YAML text into its documents. Syntax errors read like Go's (`yaml: line 3: ...`).
pub fn parse(text: &str) -> Result<Vec<Node>, String> {
    if nesting_bound(text) > MAX_YAML_DEPTH {
        return Err(format!(
            "yaml: the document nests deeper than the limit of {MAX_YAML_DEPTH} levels (indentation, `- ` and `: ` indicators, brackets)"
        ));
    }
    crate::render_guard::deep_stack(|| {
        let mut b = Builder::default();
        let mut p = Parser::new_from_str(text);
        p.load(&mut b, true)
            .map_err(|e| format!("yaml: line {}: {}", e.marker().line(), e.info()))?;
        match b.error {
            Some(e) => Err(e),
            None => Ok(b.docs),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let dashes = format!("groups: {}x\n", "- ".repeat(100_000));
        assert!(parse(&dashes).unwrap_err().contains("limit of 1000"));
        let flow = format!("groups: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(&flow).unwrap_err().contains("limit of 1000"));
        let mut indented = String::new();
        for i in 0..1200 {
            indented.push_str(&format!("{}k{i}:\n", " ".repeat(i)));
        }
        assert!(parse(&indented).unwrap_err().contains("limit of 1000"));
        // Colons in quoted strings and comments do not count.
        let quoted = format!("a: \"{}\" # {}\n", ":".repeat(1000), ":".repeat(1000));
        assert!(parse(&quoted).is_ok());
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            doc.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        assert_eq!(
            parse(&doc).unwrap_err(),
            "yaml: document contains excessive aliasing"
        );
        assert!(parse("a: &x [1, 2]\nb: *x\nc: *x\n").is_ok());
    }

    #[test]
    fn positions_are_one_based() {
        let docs = parse("groups:\n- name: g\n  rules:\n  - record: foo\n").unwrap_or_default();
        let Some(Kind::Map(top)) = docs.first().map(|d| &d.kind) else {
            panic!("no map");
        };
        let Kind::Seq(groups) = &top[0].1.kind else {
            panic!("no seq")
        };
        let Kind::Map(g) = &groups[0].kind else {
            panic!("no group")
        };
        let Kind::Seq(rules) = &g[1].1.kind else {
            panic!("no rules")
        };
        let Kind::Map(r) = &rules[0].kind else {
            panic!("no rule")
        };
        assert_eq!((r[0].1.line, r[0].1.col), (4, 13));
    }

    fn scalar_map(n: &Node) -> Vec<(String, String)> {
        let Kind::Map(entries) = &n.kind else {
            panic!("not a map: {n:?}")
        };
        entries
            .iter()
            .map(|(k, v)| {
                let mut d = Decoder::default();
                (d.string(k), d.string(v))
            })
            .collect()
    }

    #[test]
    fn merge_keys_expand_with_explicit_keys_and_earlier_maps_winning() {
        let text = "a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\none: {<<: *a, x: 0}\nlist: {<<: [*a, *b], w: 0}\nnested:\n  <<: {<<: *b, v: 3}\n  \"<<\": quoted\n";
        let docs = parse(text).unwrap_or_else(|e| panic!("{e}"));
        let Kind::Map(top) = &docs[0].kind else {
            panic!("no map")
        };
        let pairs = |i: usize| {
            scalar_map(&top[i].1)
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(pairs(2), "x=0,y=1");
        assert_eq!(pairs(3), "w=0,x=1,y=1,z=2");
        assert_eq!(pairs(4), "<<=quoted,v=3,y=2,z=2");
    }

    #[test]
    fn merging_a_scalar_fails_like_go() {
        assert_eq!(
            parse("a: {<<: 1}\n").err().as_deref(),
            Some("yaml: map merge requires map or sequence of maps as the value")
        );
        assert!(parse("a: &s x\nb: {<<: [*s]}\n").is_err());
    }

    #[test]
    fn unknown_fields_read_like_go() {
        let docs = parse("a: 1\nb: 2\n").unwrap_or_default();
        let mut d = Decoder::default();
        let f = d.fields(&docs[0], "rulefmt.Rule", &["a"]);
        assert_eq!(f.len(), 1);
        assert_eq!(
            d.into_error().as_deref(),
            Some("yaml: unmarshal errors:\n  line 2: field b not found in type rulefmt.Rule")
        );
    }
}
