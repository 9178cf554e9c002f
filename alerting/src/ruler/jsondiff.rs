//! The colored JSON difference `promtool test rules --diff` prints for alerts that differ: the
//! expected document walked against the received one, matching parts plain, changed scalars as
//! `old => new` in yellow, properties or elements only in the expected document in red, only in
//! the received one in green (the console options of the `jsondiff` package promtool uses, which
//! print the whole document, matches included).

use serde_json::Value;

const ADDED: (&str, &str) = ("\x1b[0;32m", "\x1b[0m");
const REMOVED: (&str, &str) = ("\x1b[0;31m", "\x1b[0m");
const CHANGED: (&str, &str) = ("\x1b[0;33m", "\x1b[0m");
const NORMAL: (&str, &str) = ("", "");
const INDENT: &str = "    ";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tag {
    Normal,
    Added,
    Removed,
    Changed,
}

impl Tag {
    fn text(self) -> (&'static str, &'static str) {
        match self {
            Tag::Normal => NORMAL,
            Tag::Added => ADDED,
            Tag::Removed => REMOVED,
            Tag::Changed => CHANGED,
        }
    }
}

/// How the two documents relate.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Difference {
    FullMatch,
    SupersetMatch,
    NoMatch,
}

struct Ctx {
    level: usize,
    last: Option<Tag>,
    diff: Difference,
}

impl Ctx {
    fn tag(&mut self, buf: &mut String, t: Tag) {
        if self.last == Some(t) {
            return;
        }
        if let Some(l) = self.last {
            buf.push_str(l.text().1);
        }
        buf.push_str(t.text().0);
        self.last = Some(t);
    }

    fn finalize(&mut self, mut buf: String) -> String {
        if let Some(l) = self.last.take() {
            buf.push_str(l.text().1);
        }
        buf
    }

    fn newline(&self, buf: &mut String, s: &str) {
        buf.push_str(s);
        if let Some(l) = self.last {
            buf.push_str(l.text().1);
        }
        buf.push('\n');
        for _ in 0..self.level {
            buf.push_str(INDENT);
        }
        if let Some(l) = self.last {
            buf.push_str(l.text().0);
        }
    }

    fn result(&mut self, d: Difference) {
        self.diff = match (d, self.diff) {
            (Difference::NoMatch, _) => Difference::NoMatch,
            (Difference::SupersetMatch, cur) if cur != Difference::NoMatch => Difference::SupersetMatch,
            (_, cur) if cur != Difference::NoMatch && cur != Difference::SupersetMatch => {
                Difference::FullMatch
            }
            (_, cur) => cur,
        };
    }

    fn write_value(&mut self, buf: &mut String, v: &Value, full: bool) {
        match v {
            Value::Bool(b) => buf.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => buf.push_str(&n.to_string()),
            Value::String(s) => buf.push_str(&fenghuo_gofmt::quote(s)),
            Value::Array(a) => {
                if !full {
                    buf.push_str("[]");
                    return;
                }
                if a.is_empty() {
                    buf.push('[');
                } else {
                    self.level += 1;
                    self.newline(buf, "[");
                }
                for (i, e) in a.iter().enumerate() {
                    self.write_value(buf, e, true);
                    if i + 1 != a.len() {
                        self.newline(buf, ",");
                    } else {
                        self.level -= 1;
                        self.newline(buf, "");
                    }
                }
                buf.push(']');
            }
            Value::Object(o) => {
                if !full {
                    buf.push_str("{}");
                    return;
                }
                if o.is_empty() {
                    buf.push('{');
                } else {
                    self.level += 1;
                    self.newline(buf, "{");
                }
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort();
                for (i, k) in keys.iter().enumerate() {
                    buf.push_str(&fenghuo_gofmt::quote(k));
                    buf.push_str(": ");
                    self.write_value(buf, &o[k.as_str()], true);
                    if i + 1 != o.len() {
                        self.newline(buf, ",");
                    } else {
                        self.level -= 1;
                        self.newline(buf, "");
                    }
                }
                buf.push('}');
            }
            Value::Null => buf.push_str("null"),
        }
    }

    fn mismatch(&mut self, a: &Value, b: &Value) -> String {
        let mut buf = String::new();
        self.tag(&mut buf, Tag::Changed);
        self.write_value(&mut buf, a, false);
        buf.push_str(" => ");
        self.write_value(&mut buf, b, false);
        self.result(Difference::NoMatch);
        self.finalize(buf)
    }

    /// Pairs of (key, left, right) of two collections, in the order the diff walks them.
    fn pairs<'a>(a: &'a Value, b: &'a Value) -> Vec<(Option<String>, Option<&'a Value>, Option<&'a Value>)> {
        match (a, b) {
            (Value::Array(x), Value::Array(y)) => (0..x.len().max(y.len()))
                .map(|i| (None, x.get(i), y.get(i)))
                .collect(),
            (Value::Object(x), Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                keys.into_iter()
                    .map(|k| (Some(k.clone()), x.get(k), y.get(k)))
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    fn collection(&mut self, a: &Value, b: &Value, array: bool) -> String {
        let items = Self::pairs(a, b);
        // Element diffs are computed one level deeper, as the walk below prints them.
        self.level += 1;
        let diffs: Vec<String> = items
            .iter()
            .map(|(_, x, y)| match (x, y) {
                (Some(x), Some(y)) => self.print_diff(x, y),
                _ => String::new(),
            })
            .collect();
        self.level -= 1;
        let (open, close) = if array { ("[", "]") } else { ("{", "}") };
        let mut buf = String::new();
        self.tag(&mut buf, Tag::Normal);
        if items.is_empty() {
            buf.push_str(open);
            buf.push_str(close);
            return self.finalize(buf);
        }
        self.level += 1;
        self.newline(&mut buf, open);
        let count = items.len();
        for (i, (key, x, y)) in items.iter().enumerate() {
            let key_text = |buf: &mut String| {
                if let Some(k) = key {
                    buf.push_str(&fenghuo_gofmt::quote(k));
                    buf.push_str(": ");
                }
            };
            match (x, y) {
                (Some(_), Some(_)) => {
                    if !diffs[i].is_empty() {
                        key_text(&mut buf);
                        buf.push_str(&diffs[i]);
                    }
                }
                (Some(x), None) => {
                    self.tag(&mut buf, Tag::Removed);
                    key_text(&mut buf);
                    self.write_value(&mut buf, x, true);
                    self.result(Difference::SupersetMatch);
                }
                (None, Some(y)) => {
                    self.tag(&mut buf, Tag::Added);
                    key_text(&mut buf);
                    self.write_value(&mut buf, y, true);
                    self.result(Difference::NoMatch);
                }
                (None, None) => {}
            }
            if i + 1 < count {
                self.tag(&mut buf, Tag::Normal);
                self.newline(&mut buf, ",");
            } else {
                self.level -= 1;
                self.tag(&mut buf, Tag::Normal);
                self.newline(&mut buf, "");
            }
        }
        buf.push_str(close);
        self.finalize(buf)
    }

    fn print_diff(&mut self, a: &Value, b: &Value) -> String {
        let same_kind = std::mem::discriminant(a) == std::mem::discriminant(b);
        if a.is_null() || b.is_null() || !same_kind {
            if a.is_null() && b.is_null() {
                let mut buf = String::new();
                self.tag(&mut buf, Tag::Normal);
                self.write_value(&mut buf, a, false);
                self.result(Difference::FullMatch);
                return self.finalize(buf);
            }
            return self.mismatch(a, b);
        }
        match (a, b) {
            (Value::Array(_), _) => return self.collection(a, b, true),
            (Value::Object(_), _) => return self.collection(a, b, false),
            _ if a != b => return self.mismatch(a, b),
            _ => {}
        }
        let mut buf = String::new();
        self.tag(&mut buf, Tag::Normal);
        self.write_value(&mut buf, a, true);
        self.result(Difference::FullMatch);
        self.finalize(buf)
    }
}

/// Compares `expected` with `got` and renders the difference for a console.
pub fn compare(expected: &Value, got: &Value) -> (Difference, String) {
    let mut ctx = Ctx {
        level: 0,
        last: None,
        diff: Difference::FullMatch,
    };
    let text = ctx.print_diff(expected, got);
    (ctx.diff, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_documents_match_fully() {
        let v = json!([{"Labels": {"a": "1"}, "Annotations": {}}]);
        let (d, text) = compare(&v, &v);
        assert_eq!(d, Difference::FullMatch);
        assert_eq!(
            text,
            "[\n    {\n        \"Annotations\": {},\n        \"Labels\": {\n            \"a\": \"1\"\n        }\n    }\n]"
        );
    }

    #[test]
    fn changes_removals_and_additions_are_colored() {
        let exp = json!([{"Labels": {"a": "1", "b": "x"}, "Annotations": {}}]);
        let got = json!([{"Labels": {"a": "2", "c": "y"}, "Annotations": {}}]);
        let (d, text) = compare(&exp, &got);
        assert_eq!(d, Difference::NoMatch);
        assert_eq!(
            text,
            "[\n    {\n        \"Annotations\": {},\n        \"Labels\": {\n            \"a\": \x1b[0;33m\"1\" => \"2\"\x1b[0m,\n            \x1b[0;31m\"b\": \"x\"\x1b[0m,\n            \x1b[0;32m\"c\": \"y\"\x1b[0m\n        }\n    }\n]"
        );
    }

    /// Expected texts were produced by the `jsondiff` package itself (console options) for the
    /// same documents.
    #[test]
    fn matches_the_go_package_output() {
        let la = |l: serde_json::Value, a: serde_json::Value| json!({"Labels": l, "Annotations": a});
        let cases = [
            (
                json!([la(
                    json!({"alertname": "InstanceDown", "instance": "a:9100", "job": "node", "severity": "warning"}),
                    json!({"description": "a:9100 of job node has been down for more than 5 minutes (value 0).", "summary": "Instance a:9100 down"})
                )]),
                json!([la(
                    json!({"alertname": "InstanceDown", "instance": "a:9100", "job": "node", "severity": "page"}),
                    json!({"description": "a:9100 of job node has been down for more than 5 minutes (value 0).", "summary": "Instance a:9100 down"})
                )]),
                Difference::NoMatch,
                "[\n    {\n        \"Annotations\": {\n            \"description\": \"a:9100 of job node has been down for more than 5 minutes (value 0).\",\n            \"summary\": \"Instance a:9100 down\"\n        },\n        \"Labels\": {\n            \"alertname\": \"InstanceDown\",\n            \"instance\": \"a:9100\",\n            \"job\": \"node\",\n            \"severity\": \x1b[0;33m\"warning\" => \"page\"\x1b[0m\n        }\n    }\n]",
            ),
            (
                json!([la(json!({}), json!({}))]),
                json!([
                    la(json!({"a": "1"}), json!({})),
                    la(json!({"b": "x\"y"}), json!({"s": "t"}))
                ]),
                Difference::NoMatch,
                "[\n    {\n        \"Annotations\": {},\n        \"Labels\": {\n            \x1b[0;32m\"a\": \"1\"\x1b[0m\n        }\n    },\n    \x1b[0;32m{\x1b[0m\n        \x1b[0;32m\"Annotations\": {\x1b[0m\n            \x1b[0;32m\"s\": \"t\"\x1b[0m\n        \x1b[0;32m},\x1b[0m\n        \x1b[0;32m\"Labels\": {\x1b[0m\n            \x1b[0;32m\"b\": \"x\\\"y\"\x1b[0m\n        \x1b[0;32m}\x1b[0m\n    \x1b[0;32m}\x1b[0m\n]",
            ),
            (
                json!([la(json!({"a": "1"}), json!({})), la(json!({"b": "2"}), json!({}))]),
                json!([la(json!({}), json!({}))]),
                Difference::SupersetMatch,
                "[\n    {\n        \"Annotations\": {},\n        \"Labels\": {\n            \x1b[0;31m\"a\": \"1\"\x1b[0m\n        }\n    },\n    \x1b[0;31m{\x1b[0m\n        \x1b[0;31m\"Annotations\": {},\x1b[0m\n        \x1b[0;31m\"Labels\": {\x1b[0m\n            \x1b[0;31m\"b\": \"2\"\x1b[0m\n        \x1b[0;31m}\x1b[0m\n    \x1b[0;31m}\x1b[0m\n]",
            ),
        ];
        for (exp, got, diff, text) in cases {
            assert_eq!(compare(&exp, &got), (diff, text.to_string()));
        }
    }
}
