//! Prometheus rule files (`groups:` of recording and alerting rules): loading with the positions
//! of every rule's fields, and validation that reports the same problems, in the same words, as
//! Prometheus's `rulefmt` (what `promtool check rules` prints).

use std::collections::BTreeMap;
use std::path::Path;

use crate::ruler::yaml::{self, Decoder, Kind, Node};

/// A whole rule file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleGroups {
    pub groups: Vec<RuleGroup>,
}

/// One group: rules evaluated in order at the same timestamp.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleGroup {
    pub name: String,
    /// Evaluation interval in ms; 0 means the global default.
    pub interval_ms: i64,
    /// `query_offset` in ms when set.
    pub query_offset_ms: Option<i64>,
    /// Maximum alerts / series per rule; 0 means none.
    pub limit: i64,
    pub rules: Vec<RuleDef>,
    /// Labels added to every rule of the group (Prometheus 3.x).
    pub labels: BTreeMap<String, String>,
    pos: (usize, usize),
}

/// Where a rule's fields are in the file, for messages.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RulePositions {
    pub record: Option<(usize, usize)>,
    pub alert: Option<(usize, usize)>,
    pub expr: Option<(usize, usize)>,
}

/// A recording or alerting rule as written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleDef {
    pub record: String,
    pub alert: String,
    pub expr: String,
    pub for_ms: i64,
    pub keep_firing_for_ms: i64,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub pos: RulePositions,
}

impl RuleDef {
    /// The rule's name: the alert name or the recorded metric.
    pub fn name(&self) -> &str {
        if self.alert.is_empty() {
            &self.record
        } else {
            &self.alert
        }
    }

    pub fn is_alerting(&self) -> bool {
        !self.alert.is_empty()
    }
}

const GROUPS_FIELDS: [&str; 1] = ["groups"];
const GROUP_FIELDS: [&str; 6] = ["name", "interval", "query_offset", "limit", "rules", "labels"];
const RULE_FIELDS: [&str; 7] = [
    "record",
    "alert",
    "expr",
    "for",
    "keep_firing_for",
    "labels",
    "annotations",
];

fn decode(doc: &Node, d: &mut Decoder) -> RuleGroups {
    let mut out = RuleGroups::default();
    for (k, v) in d.fields(doc, "rulefmt.RuleGroups", &GROUPS_FIELDS) {
        if k != "groups" {
            continue;
        }
        for gnode in d.seq(v, "[]rulefmt.RuleGroup") {
            let mut g = RuleGroup {
                pos: (gnode.line, gnode.col),
                ..Default::default()
            };
            for (k, v) in d.fields(gnode, "rulefmt.RuleGroup", &GROUP_FIELDS) {
                match k {
                    "name" => g.name = d.string(v),
                    "interval" => g.interval_ms = d.duration(v),
                    "query_offset" => {
                        g.query_offset_ms = if v.is_null() { None } else { Some(d.duration(v)) }
                    }
                    "limit" => g.limit = d.int(v),
                    "labels" => g.labels = d.string_map(v),
                    _ => {
                        for rnode in d.seq(v, "[]rulefmt.Rule") {
                            g.rules.push(decode_rule(rnode, d));
                        }
                    }
                }
            }
            out.groups.push(g);
        }
    }
    out
}

fn decode_rule(n: &Node, d: &mut Decoder) -> RuleDef {
    let mut r = RuleDef::default();
    for (k, v) in d.fields(n, "rulefmt.Rule", &RULE_FIELDS) {
        let p = Some((v.line, v.col));
        match k {
            "record" => {
                r.record = d.string(v);
                r.pos.record = p;
            }
            "alert" => {
                r.alert = d.string(v);
                r.pos.alert = p;
            }
            "expr" => {
                r.expr = d.string(v);
                r.pos.expr = p;
            }
            "for" => r.for_ms = d.duration(v),
            "keep_firing_for" => r.keep_firing_for_ms = d.duration(v),
            "labels" => r.labels = d.string_map(v),
            _ => r.annotations = d.string_map(v),
        }
    }
    r
}

/// Go prints an unset node's position as `0:0`.
fn at(p: Option<(usize, usize)>) -> (usize, usize) {
    p.unwrap_or((0, 0))
}

/// Whether `name` is a valid label name in Prometheus 3.x (UTF-8 names: any non-empty string).
fn valid_label_name(name: &str) -> bool {
    !name.is_empty()
}

/// Validates a decoded rule file like `rulefmt.RuleGroups.Validate`.
pub fn validate(rgs: &RuleGroups) -> Vec<String> {
    let mut errs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for g in &rgs.groups {
        if g.name.is_empty() {
            errs.push(format!("{}:{}: Groupname must not be empty", g.pos.0, g.pos.1));
        }
        if !seen.insert(g.name.clone()) {
            errs.push(format!(
                "{}:{}: groupname: \"{}\" is repeated in the same file",
                g.pos.0, g.pos.1, g.name
            ));
        }
        for k in g.labels.keys() {
            if !valid_label_name(k) || k == "__name__" {
                errs.push(format!("invalid label name: {k}"));
            }
        }
        for (i, r) in g.rules.iter().enumerate() {
            for (pos, msg) in validate_rule(r) {
                let prefix = match pos {
                    Pos::Two(a, b) => format!("{}:{}: {}:{}: ", a.0, a.1, b.0, b.1),
                    Pos::One(a) => format!("{}:{}: ", a.0, a.1),
                    Pos::None => String::new(),
                };
                errs.push(format!(
                    "{prefix}group {:?}, rule {}, {:?}: {msg}",
                    g.name,
                    i + 1,
                    r.name()
                ));
            }
        }
    }
    errs
}

enum Pos {
    None,
    One((usize, usize)),
    Two((usize, usize), (usize, usize)),
}

fn validate_rule(r: &RuleDef) -> Vec<(Pos, String)> {
    let mut out = Vec::new();
    let both = Pos::Two(at(r.pos.record), at(r.pos.alert));
    if !r.record.is_empty() && !r.alert.is_empty() {
        out.push((both, "only one of 'record' and 'alert' must be set".into()));
    } else if r.record.is_empty() && r.alert.is_empty() {
        out.push((both, "one of 'record' or 'alert' must be set".into()));
    }
    if r.expr.is_empty() {
        out.push((
            Pos::One(at(r.pos.expr)),
            "field 'expr' must be set in rule".into(),
        ));
    } else if let Err(e) = fenghuo_query::Engine::parse(&r.expr) {
        out.push((
            Pos::One(at(r.pos.expr)),
            format!(
                "could not parse expression: {}",
                e.to_string().trim_start_matches("bad_data: ")
            ),
        ));
    }
    if !r.record.is_empty() {
        let rp = Pos::One(at(r.pos.record));
        if !r.annotations.is_empty() {
            out.push((rp, "invalid field 'annotations' in recording rule".into()));
        }
        let rp = || Pos::One(at(r.pos.record));
        if r.for_ms != 0 {
            out.push((rp(), "invalid field 'for' in recording rule".into()));
        }
        if r.keep_firing_for_ms != 0 {
            out.push((rp(), "invalid field 'keep_firing_for' in recording rule".into()));
        }
        if r.record.contains('{') || r.record.contains('}') {
            out.push((
                rp(),
                format!(
                    "braces present in the recording rule name; should it be in expr?: {}",
                    r.record
                ),
            ));
        }
    }
    for k in r.labels.keys() {
        if !valid_label_name(k) || k == "__name__" {
            out.push((Pos::None, format!("invalid label name: {k}")));
        }
    }
    for k in r.annotations.keys() {
        if !valid_label_name(k) {
            out.push((Pos::None, format!("invalid annotation name: {k}")));
        }
    }
    if r.is_alerting() {
        for (k, v) in &r.labels {
            if let Err(e) = crate::ruler::template::parse_test(&r.alert, v) {
                out.push((Pos::None, format!("label {k:?}: {e}")));
            }
        }
        for (k, v) in &r.annotations {
            if let Err(e) = crate::ruler::template::parse_test(&r.alert, v) {
                out.push((Pos::None, format!("annotation {k:?}: {e}")));
            }
        }
    }
    out
}

/// Parses and validates rule-file text. Errors are returned without the file prefix.
pub fn parse(text: &str) -> Result<RuleGroups, Vec<String>> {
    parse_with(text, false)
}

/// [`parse`], optionally ignoring fields rule files do not have (promtool's
/// `--ignore-unknown-fields`, for files extended with custom metadata).
pub fn parse_with(text: &str, ignore_unknown_fields: bool) -> Result<RuleGroups, Vec<String>> {
    // Go's rulefmt decodes twice (typed, then into nodes) and reports a syntax error from each.
    let docs = yaml::parse(text).map_err(|e| vec![e.clone(), e])?;
    let Some(doc) = docs.first() else {
        return Ok(RuleGroups::default());
    };
    if !matches!(doc.kind, Kind::Map(_)) && !doc.is_null() {
        return Err(vec![format!(
            "yaml: unmarshal errors:\n  line {}: cannot unmarshal {} into rulefmt.RuleGroups",
            doc.line,
            doc.tag()
        )]);
    }
    let mut d = Decoder {
        ignore_unknown: ignore_unknown_fields,
        ..Decoder::default()
    };
    let rgs = decode(doc, &mut d);
    if let Some(e) = d.into_error() {
        return Err(vec![e]);
    }
    let errs = validate(&rgs);
    if errs.is_empty() { Ok(rgs) } else { Err(errs) }
}

/// Reads, parses and validates a rule file; each error is prefixed with the file name.
pub fn parse_file(path: &Path) -> Result<RuleGroups, Vec<String>> {
    parse_file_with(path, false)
}

/// [`parse_file`], optionally ignoring unknown fields (see [`parse_with`]).
pub fn parse_file_with(path: &Path, ignore_unknown_fields: bool) -> Result<RuleGroups, Vec<String>> {
    let name = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| vec![format!("{name}: {}", go_io_error(&name, &e))])?;
    parse_with(&text, ignore_unknown_fields)
        .map_err(|errs| errs.into_iter().map(|e| format!("{name}: {e}")).collect())
}

/// Go's `*PathError` text for a failed open.
pub fn go_io_error(path: &str, e: &std::io::Error) -> String {
    let what = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    };
    format!("open {path}: {what}")
}

/// `promtool check rules`'s duplicate-rule lint: rules with the same name and labels.
pub fn duplicates(rgs: &RuleGroups) -> Vec<(String, BTreeMap<String, String>)> {
    let mut rules: Vec<(String, BTreeMap<String, String>)> = rgs
        .groups
        .iter()
        .flat_map(|g| g.rules.iter().map(|r| (r.name().to_string(), r.labels.clone())))
        .collect();
    rules.sort();
    let mut dups: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    for w in rules.windows(2) {
        if w[0] == w[1] && dups.last() != Some(&w[1]) {
            dups.push(w[1].clone());
        }
    }
    dups
}

/// The outcome of checking one file the way `promtool check rules` does.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOutcome {
    /// What promtool prints on stdout for the file.
    pub stdout: String,
    /// What it prints on stderr (the `FAILED:` block), empty on success.
    pub stderr: String,
    /// Whether the file has errors (a duplicate-rule lint alone is not an error).
    pub failed: bool,
}

/// Checks one rule file like `promtool check rules FILE`.
pub fn check_file(path: &Path) -> CheckOutcome {
    let mut stdout = format!("Checking {}\n", path.display());
    match parse_file(path) {
        Ok(rgs) => {
            let dups = duplicates(&rgs);
            if dups.is_empty() {
                let n: usize = rgs.groups.iter().map(|g| g.rules.len()).sum();
                stdout.push_str(&format!("  SUCCESS: {n} rules found\n\n"));
                CheckOutcome {
                    stdout,
                    stderr: String::new(),
                    failed: false,
                }
            } else {
                let mut msg = format!("lint error {} duplicate rule(s) found.\n", dups.len());
                for (metric, labels) in &dups {
                    msg.push_str(&format!("Metric: {metric}\nLabel(s):\n"));
                    for (k, v) in labels {
                        msg.push_str(&format!("\t{k}: {v}\n"));
                    }
                }
                msg.push_str("Might cause inconsistency while recording expressions");
                stdout.push('\n');
                CheckOutcome {
                    stdout,
                    stderr: format!("  FAILED:\n{msg}\n"),
                    failed: false,
                }
            }
        }
        Err(errs) => {
            stdout.push('\n');
            CheckOutcome {
                stdout,
                stderr: format!("  FAILED:\n{}\n", errs.join("\n")),
                failed: true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_positions_like_promtool() {
        let text = "groups:\n- name: g\n  rules:\n  - record: foo{x}\n    expr: up\n";
        let errs = parse(text).err().unwrap_or_default();
        assert_eq!(
            errs,
            vec![
                "4:13: group \"g\", rule 1, \"foo{x}\": braces present in the recording rule name; should it be in expr?: foo{x}"
                    .to_string()
            ]
        );
    }

    #[test]
    fn good_file_parses() {
        let text = "groups:\n- name: g\n  interval: 30s\n  query_offset: 1m\n  limit: 3\n  rules:\n  - alert: A\n    expr: up == 0\n    for: 5m\n    keep_firing_for: 1m\n    labels: {severity: page}\n    annotations: {summary: 'x {{ $labels.job }}'}\n";
        let rgs = parse(text).unwrap_or_default();
        let g = &rgs.groups[0];
        assert_eq!(
            (g.interval_ms, g.query_offset_ms, g.limit),
            (30_000, Some(60_000), 3)
        );
        assert_eq!(g.rules[0].for_ms, 300_000);
        assert_eq!(g.rules[0].keep_firing_for_ms, 60_000);
    }

    #[test]
    fn unknown_field_is_go_error() {
        let errs = parse("groups:\n- name: g\n  foo: 1\n  rules: []\n")
            .err()
            .unwrap_or_default();
        assert_eq!(
            errs,
            vec![
                "yaml: unmarshal errors:\n  line 3: field foo not found in type rulefmt.RuleGroup"
                    .to_string()
            ]
        );
    }
}
