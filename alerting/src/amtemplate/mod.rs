//! Alertmanager's Go templates: receiver fields and `templates:` files written in Go's
//! text/template language render as Alertmanager renders them — its data model ([`data`]), its
//! functions and methods ([`funcs`]), its default definitions (`__subject`, `__text_alert_list`,
//! `email.default.html`, `slack.default.title`, ..., in [`defaults.tmpl`](self), written for
//! fenghuo) and `html/template` escaping for HTML fields ([`html`]). Parsing and execution use the
//! ruler's Go template engine ([`crate::ruler::gotemplate`]).
//!
//! As in Alertmanager, every field is parsed in a namespace holding the default definitions and
//! then the user's files in order (a later definition replaces an earlier one, unless its body is
//! empty), and a field's own `{{ define }}`s are visible to it alone.

pub mod data;
pub mod funcs;
pub mod html;
pub mod timefmt;

use std::collections::HashMap;
use std::sync::Arc;

use crate::clock::Ts;
use crate::ruler::gotemplate::parse::{Arg, List, Node};
use crate::ruler::gotemplate::{Tree, Value, execute, parse};
use funcs::{AmFuncs, FINAL_HTML, FINAL_URLQUERY};

/// fenghuo's definitions under Alertmanager's default template names.
pub const DEFAULTS: &str = include_str!("defaults.tmpl");

type Defs = HashMap<String, Arc<List>>;

/// The shared namespace: default definitions plus those of the user's template files.
#[derive(Clone)]
pub struct GoTemplates {
    text: Defs,
    html: Defs,
}

impl std::fmt::Debug for GoTemplates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoTemplates")
            .field("definitions", &self.text.len())
            .finish()
    }
}

/// One compiled template (a receiver field, or a preview source).
#[derive(Clone)]
pub struct GoTemplate {
    text: Tree,
    html: Tree,
    empty: bool,
}

fn is_func(name: &str) -> bool {
    funcs::is_func(name)
}

/// Whether a definition's body is only whitespace text (Go keeps the earlier one then).
fn is_empty_list(l: &List) -> bool {
    l.iter()
        .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()))
}

/// Rewrites a pipeline's final `html`/`urlquery` so the HTML escaper can merge it with the
/// context's escapers (Go's `ensurePipelineContains`).
fn mark_predefined(list: &List) -> List {
    list.iter()
        .map(|n| match n {
            Node::Action(p) if p.decl.is_empty() => {
                let mut p = p.clone();
                if let Some(last) = p.cmds.last_mut()
                    && let Some(Arg::Ident(id)) = last.args.first_mut()
                {
                    if id == "urlquery" {
                        *id = FINAL_URLQUERY.into();
                    } else if id == "html" {
                        *id = FINAL_HTML.into();
                    }
                }
                Node::Action(p)
            }
            Node::If(b) | Node::Range(b) | Node::With(b) => {
                let mut b = b.clone();
                b.list = mark_predefined(&b.list);
                b.else_list = b.else_list.as_ref().map(mark_predefined);
                match n {
                    Node::If(_) => Node::If(b),
                    Node::Range(_) => Node::Range(b),
                    _ => Node::With(b),
                }
            }
            other => other.clone(),
        })
        .collect()
}

fn merge(into: &mut Defs, from: &Defs) {
    for (k, v) in from {
        if is_empty_list(v) && into.contains_key(k) {
            continue;
        }
        into.insert(k.clone(), v.clone());
    }
}

fn html_defs(defs: &Defs) -> Defs {
    defs.iter()
        .map(|(k, v)| (k.clone(), Arc::new(mark_predefined(v))))
        .collect()
}

impl GoTemplates {
    /// The namespace with only fenghuo's default definitions.
    pub fn new() -> Result<Self, String> {
        let mut t = GoTemplates {
            text: HashMap::new(),
            html: HashMap::new(),
        };
        t.add_file("default.tmpl", DEFAULTS)?;
        Ok(t)
    }

    /// Adds a template file: its `{{ define }}`s, and its top-level text under `name` (the file's
    /// base name), as Go's `ParseFiles` does.
    pub fn add_file(&mut self, name: &str, src: &str) -> Result<(), String> {
        let tree = parse(name, src, &is_func)?;
        let mut defs = tree.defs.clone();
        defs.insert(name.to_string(), tree.root.clone());
        merge(&mut self.text, &defs);
        merge(&mut self.html, &html_defs(&defs));
        Ok(())
    }

    pub fn has(&self, name: &str) -> bool {
        self.text.contains_key(name)
    }

    /// Names of every definition.
    pub fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self.text.keys().cloned().collect();
        n.sort();
        n
    }

    /// Parses a field's template text in this namespace.
    pub fn compile(&self, src: &str) -> Result<GoTemplate, String> {
        // `mark_predefined` and the clones below recurse on the tree.
        crate::render_guard::guarded(|| self.compile_unguarded(src))
    }

    fn compile_unguarded(&self, src: &str) -> Result<GoTemplate, String> {
        let tree = parse("", src, &is_func)?;
        let own = tree.defs.clone();
        let mut text_defs = self.text.clone();
        merge(&mut text_defs, &own);
        let mut html = self.html.clone();
        merge(&mut html, &html_defs(&own));
        let text = Tree {
            defs: text_defs,
            ..tree.clone()
        };
        let html = Tree {
            root: Arc::new(mark_predefined(&tree.root)),
            defs: html,
            ..tree
        };
        Ok(GoTemplate {
            text,
            html,
            empty: src.is_empty(),
        })
    }

    /// Compiles `{{ template "name" . }}` for a definition.
    pub fn compile_def(&self, name: &str) -> Result<GoTemplate, String> {
        self.compile(&format!("{{{{ template {name:?} . }}}}"))
    }
}

impl GoTemplate {
    /// Renders with Go's text/template semantics, or html/template's when `html`.
    pub fn render(&self, data: &Value, html: bool, now: Ts) -> Result<String, String> {
        if self.empty {
            return Ok(String::new());
        }
        if html {
            let f = AmFuncs::html(now);
            let out = execute(&self.html, data, &f)?;
            if let Some(e) = f.html_error() {
                return Err(format!("html/template: {e}"));
            }
            Ok(out)
        } else {
            execute(&self.text, data, &AmFuncs::text(now))
        }
    }
}

/// Whether a template string is a Go template rather than handlebars: it parses as Go with
/// Alertmanager's functions and uses none of handlebars' block, partial or comment syntax.
/// Anything that is not Go (`{{commonLabels.alertname}}`, `{{#each alerts}}`) is handlebars.
pub fn is_go_template(src: &str) -> bool {
    const HBS: [&str; 6] = ["{{#", "{{/", "{{>", "{{!", "{{{", "{{~"];
    if HBS.iter().any(|m| src.contains(m)) && !src.contains("{{/*") {
        return false;
    }
    parse("", src, &is_func).is_ok()
}

/// Whether a string that failed both parsers was probably meant as Go (for the error message):
/// Go markers, or a `.Field` reference (fenghuo's handlebars fields are lower camelCase).
pub fn looks_like_go(src: &str) -> bool {
    let compact: String = src.split_whitespace().collect::<Vec<_>>().join(" ");
    let markers = [
        "{{.",
        "{{- ",
        "{{ $",
        "{{$",
        "template \"",
        "{{ range",
        "{{range",
        "{{ end",
        "{{end",
        "{{ define",
        "{{define",
    ];
    if markers.iter().any(|p| compact.contains(p)) {
        return true;
    }
    let b = src.as_bytes();
    b.windows(3).any(|w| {
        matches!(w[0], b' ' | b'(' | b'{' | b'\t' | b'|') && w[1] == b'.' && w[2].is_ascii_uppercase()
    })
}

#[cfg(test)]
mod tests;
