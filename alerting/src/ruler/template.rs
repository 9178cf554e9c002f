//! Prometheus's template layer over [`gotemplate`]: every template function Prometheus defines
//! (`humanize*`, `toTime`, `title`, `match`, `reReplaceAll`, `query`, `first`, `label`, `value`,
//! `sortByLabel`, `args`, `safeHtml`, `stripPort`, `stripDomain`, `parseDuration`,
//! `externalURL`, `pathPrefix`, ...), the alert template data (`$labels`, `$value`,
//! `$externalLabels`, `$externalURL`) and the expansion wrapper with Prometheus's error texts.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::amtemplate::html::HtmlEscaper;
use crate::ruler::gotemplate::exec::{any_map, query_escape};
use crate::ruler::gotemplate::fmt::sprintf;
use crate::ruler::gotemplate::{self, FuncSet, Struct, Value};

/// One element of a query result as templates see it.
#[derive(Clone, Debug, PartialEq)]
pub struct QuerySample {
    pub labels: BTreeMap<String, String>,
    pub value: Value,
}

/// Runs a PromQL query at a time (ms) for the `query` function.
pub type QueryFn<'a> = &'a (dyn Fn(&str, i64) -> Result<Vec<QuerySample>, String> + Sync);

/// The variables every alert template starts with, as Prometheus prepends them.
pub const ALERT_DEFS: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// Expands templates with Prometheus's function set.
pub struct Expander<'a> {
    /// The template's name (`__alert_NAME` for alert rules).
    pub name: String,
    /// Evaluation time in ms (`query` runs at it, `now` returns it).
    pub ts_ms: i64,
    pub query: Option<QueryFn<'a>>,
    /// The URL behind `externalURL` and `pathPrefix`; `None` reproduces promtool's unit tests,
    /// where calling them fails (no URL is configured there).
    pub external_url: Option<String>,
    /// Console-template mode: makes `tmpl` available, as Prometheus's `ExpandHTML` does.
    pub html: bool,
}

const FUNCS: [(&str, usize, bool); 33] = [
    ("query", 1, false),
    ("first", 1, false),
    ("label", 2, false),
    ("value", 1, false),
    ("strvalue", 1, false),
    ("args", 1, true),
    ("reReplaceAll", 3, false),
    ("safeHtml", 1, false),
    ("match", 2, false),
    ("title", 1, false),
    ("toUpper", 1, false),
    ("toLower", 1, false),
    ("graphLink", 1, false),
    ("tableLink", 1, false),
    ("sortByLabel", 2, false),
    ("stripPort", 1, false),
    ("stripDomain", 1, false),
    ("humanize", 1, false),
    ("humanize1024", 1, false),
    ("humanizeDuration", 1, false),
    ("humanizePercentage", 1, false),
    ("humanizeTimestamp", 1, false),
    ("toTime", 1, false),
    ("toDuration", 1, false),
    ("now", 0, false),
    ("pathPrefix", 0, false),
    ("externalURL", 0, false),
    ("parseDuration", 1, false),
    ("urlQueryEscape", 1, false),
    ("tmpl", 2, false),
    ("", 0, false),
    ("", 0, false),
    ("", 0, false),
];

fn known(name: &str, html: bool) -> Option<(usize, bool)> {
    if name.is_empty() || (name == "tmpl" && !html) {
        return None;
    }
    FUNCS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, a, v)| (*a, *v))
}

/// Go's `strconv.ParseFloat`, with its error text.
fn parse_float(s: &str) -> Result<f64, String> {
    fenghuo_gofmt::parse_float(s).map_err(|e| e.to_string())
}

/// Prometheus's `ConvertToFloat` (prometheus/common): numbers and numeric strings only.
/// `toTime` and `toDuration` return pointers, which it does not accept, so
/// `humanizeDuration (toDuration 5)` fails as in Prometheus.
fn to_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => parse_float(s),
        other => Err(format!("can't convert {} to float", other.type_name())),
    }
}

fn want_str(v: &Value) -> Result<&str, String> {
    v.as_str()
        .ok_or_else(|| format!("wrong type for value; expected string; got {}", v.type_name()))
}

fn sample_value(s: &QuerySample) -> Value {
    Value::Struct(Arc::new(Struct {
        type_name: "template.sample".into(),
        fields: vec![
            (
                "Labels".into(),
                Value::string_map(s.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            ),
            ("Value".into(), s.value.clone()),
        ],
        pointer: true,
    }))
}

fn want_sample(v: &Value) -> Result<&Struct, String> {
    match v {
        Value::Struct(s) if s.type_name == "template.sample" => Ok(s),
        Value::Nil => Err("runtime error: invalid memory address or nil pointer dereference".into()),
        other => Err(format!(
            "wrong type for value; expected *template.sample; got {}",
            other.type_name()
        )),
    }
}

fn sample_labels(s: &Struct) -> Option<&gotemplate::Map> {
    match s.fields.first() {
        Some((_, Value::Map(m))) => Some(m),
        _ => None,
    }
}

fn want_list(v: &Value) -> Result<Arc<Vec<Value>>, String> {
    match v {
        Value::List(l) => Ok(l.clone()),
        Value::Nil => Ok(Arc::new(Vec::new())),
        other => Err(format!(
            "wrong type for value; expected template.queryResult; got {}",
            other.type_name()
        )),
    }
}

fn g4(v: f64) -> String {
    fenghuo_gofmt::g_prec(v, 4)
}

/// Prometheus's `humanize`.
pub fn humanize(mut v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
        return format!("{}{prefix}", g4(v));
    }
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}", g4(v))
}

/// Prometheus's `humanize1024`.
pub fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", g4(v))
}

/// Prometheus's `humanizeDuration` (seconds in).
pub fn humanize_duration(mut v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        let d = v as i64;
        let (secs, mins, hours, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {mins}m {secs}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {mins}m {secs}s");
        }
        if mins != 0 {
            return format!("{sign}{mins}m {secs}s");
        }
        return format!("{sign}{}s", g4(v));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", g4(v))
}

fn float_to_time(v: f64) -> Result<Value, String> {
    if v.is_nan() || v.is_infinite() {
        return Err("value is NaN or Inf".into());
    }
    let ns = v * 1e9;
    if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            fenghuo_gofmt::g(v)
        ));
    }
    // Prometheus goes through model.Time, which keeps milliseconds (truncating toward zero).
    let ns = (ns as i64 / 1_000_000) * 1_000_000;
    Ok(Value::Time {
        secs: ns.div_euclid(1_000_000_000),
        nanos: ns.rem_euclid(1_000_000_000) as u32,
    })
}

/// Go's `net.SplitHostPort`: `Some((host, port))` when `s` is a valid host:port.
fn split_host_port(s: &str) -> Option<(String, String)> {
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let port = after.strip_prefix(':')?;
        if port.contains(':') {
            return None;
        }
        return Some((host.to_string(), port.to_string()));
    }
    let i = s.rfind(':')?;
    let (host, port) = (&s[..i], &s[i + 1..]);
    if host.contains(':') || host.contains('[') || host.contains(']') || port.contains(']') {
        return None;
    }
    Some((host.to_string(), port.to_string()))
}

fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn go_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(&go_regex_syntax(pattern)).map_err(|e| format!("error parsing regexp: {e}"))
}

/// Rewrites a Go (RE2) pattern for the regex crate where the two read the same text differently:
/// Go's `\d \w \s \b` (and their negations) are ASCII-only (`\s` without `\v`), the regex
/// crate's are Unicode; inside a class Go takes `[` and doubled `&&`/`~~` literally, where the regex
/// crate nests classes or applies set operations.
fn go_regex_syntax(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    // Just after `[` or `[^`: a `]` there is a literal, as in both syntaxes.
    let mut class_start = false;
    while let Some(c) = chars.next() {
        let at_start = std::mem::take(&mut class_start);
        match c {
            '\\' => {
                let Some(n) = chars.next() else {
                    out.push('\\');
                    break;
                };
                // (outside a class, inside one)
                let ascii = match n {
                    'd' => Some(("[0-9]", "0-9")),
                    'D' => Some(("[^0-9]", "[^0-9]")),
                    'w' => Some(("[0-9A-Za-z_]", "0-9A-Za-z_")),
                    'W' => Some(("[^0-9A-Za-z_]", "[^0-9A-Za-z_]")),
                    's' => Some((r"[\t\n\f\r ]", r"\t\n\f\r ")),
                    'S' => Some((r"[^\t\n\f\r ]", r"[^\t\n\f\r ]")),
                    'b' if !in_class => Some((r"(?-u:\b)", "")),
                    'B' if !in_class => Some((r"(?-u:\B)", "")),
                    _ => None,
                };
                match ascii {
                    Some((outside, inside)) => out.push_str(if in_class { inside } else { outside }),
                    None => {
                        out.push('\\');
                        out.push(n);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                class_start = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
            }
            '[' if chars.peek() == Some(&':') => {
                // A POSIX class (`[:alpha:]`, ASCII in both syntaxes): copied through `:]`.
                out.push('[');
                let mut prev = '[';
                for n in chars.by_ref() {
                    out.push(n);
                    if prev == ':' && n == ']' {
                        break;
                    }
                    prev = n;
                }
            }
            '[' => out.push_str(r"\["),
            ']' if in_class && !at_start => {
                in_class = false;
                out.push(']');
            }
            '&' | '~' if in_class && chars.peek() == Some(&c) => {
                chars.next();
                out.push(c);
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

impl FuncSet for Expander<'_> {
    fn has(&self, name: &str) -> bool {
        known(name, self.html).is_some()
    }

    fn arity(&self, name: &str) -> (usize, bool) {
        known(name, self.html).unwrap_or((0, false))
    }

    fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, String> {
        let a = |i: usize| args.get(i).cloned().unwrap_or_default();
        Ok(match name {
            "query" => {
                let q = want_str(&args[0])?;
                let Some(f) = self.query else {
                    return Err("no query engine available".into());
                };
                let res = f(q, self.ts_ms)?;
                Value::List(Arc::new(res.iter().map(sample_value).collect()))
            }
            "first" => {
                let l = want_list(&args[0])?;
                match l.first() {
                    Some(v) => v.clone(),
                    None => return Err("first() called on vector with no elements".into()),
                }
            }
            "label" => {
                let l = want_str(&args[0])?.to_string();
                let s = want_sample(&args[1])?;
                Value::str(
                    sample_labels(s)
                        .and_then(|m| m.entries.get(&l).and_then(|v| v.as_str()).map(str::to_string))
                        .unwrap_or_default(),
                )
            }
            "value" => want_sample(&args[0])?
                .fields
                .get(1)
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
            "strvalue" => {
                let s = want_sample(&args[0])?;
                Value::str(
                    sample_labels(s)
                        .and_then(|m| {
                            m.entries
                                .get("__value__")
                                .and_then(|v| v.as_str())
                                .map(str::to_string)
                        })
                        .unwrap_or_default(),
                )
            }
            "args" => any_map(
                args.iter()
                    .enumerate()
                    .map(|(i, v)| (format!("arg{i}"), v.clone())),
            ),
            "reReplaceAll" => {
                let re = go_regex(want_str(&args[0])?)?;
                let repl = want_str(&args[1])?;
                Value::str(re.replace_all(want_str(&args[2])?, repl).into_owned())
            }
            "safeHtml" => Value::Html(want_str(&args[0])?.to_string()),
            "match" => {
                let re = go_regex(want_str(&args[0])?)?;
                Value::Bool(re.is_match(want_str(&args[1])?))
            }
            "title" => Value::str(crate::ruler::titlecase::title(want_str(&args[0])?)),
            "toUpper" => Value::str(want_str(&args[0])?.to_uppercase()),
            "toLower" => Value::str(want_str(&args[0])?.to_lowercase()),
            "graphLink" => Value::str(format!(
                "/graph?g0.expr={}&g0.tab=0",
                query_escape(want_str(&args[0])?)
            )),
            "tableLink" => Value::str(format!(
                "/graph?g0.expr={}&g0.tab=1",
                query_escape(want_str(&args[0])?)
            )),
            "sortByLabel" => {
                let label = want_str(&args[0])?.to_string();
                let l = want_list(&args[1])?;
                let mut v: Vec<Value> = l.to_vec();
                let key = |x: &Value| -> String {
                    match x {
                        Value::Struct(s) => sample_labels(s)
                            .and_then(|m| m.entries.get(&label).and_then(|v| v.as_str()).map(str::to_string))
                            .unwrap_or_default(),
                        _ => String::new(),
                    }
                };
                v.sort_by_key(key);
                Value::List(Arc::new(v))
            }
            "stripPort" => {
                let hp = want_str(&args[0])?;
                Value::str(
                    split_host_port(hp)
                        .map(|(h, _)| h)
                        .unwrap_or_else(|| hp.to_string()),
                )
            }
            "stripDomain" => {
                let hp = want_str(&args[0])?;
                let (host, port) = split_host_port(hp).unwrap_or_else(|| (hp.to_string(), String::new()));
                if host.parse::<std::net::IpAddr>().is_ok() {
                    Value::str(hp)
                } else {
                    let first = host.split('.').next().unwrap_or("").to_string();
                    if port.is_empty() {
                        Value::str(first)
                    } else {
                        Value::str(join_host_port(&first, &port))
                    }
                }
            }
            "humanize" => Value::str(humanize(to_float(&a(0))?)),
            "humanize1024" => Value::str(humanize1024(to_float(&a(0))?)),
            "humanizeDuration" => Value::str(humanize_duration(to_float(&a(0))?)),
            "humanizePercentage" => Value::str(format!("{}%", g4(to_float(&a(0))? * 100.0))),
            "humanizeTimestamp" => {
                let v = to_float(&a(0))?;
                if v.is_nan() || v.is_infinite() {
                    Value::str(g4(v))
                } else {
                    Value::str(crate::ruler::gotemplate::fmt::format_v(&float_to_time(v)?))
                }
            }
            "toTime" => float_to_time(to_float(&a(0))?)?,
            "toDuration" => Value::Duration((to_float(&a(0))? * 1e9) as i64),
            "now" => Value::Float(self.ts_ms as f64 / 1000.0),
            "pathPrefix" | "externalURL" => {
                let Some(u) = &self.external_url else {
                    return Err("runtime error: invalid memory address or nil pointer dereference".into());
                };
                if name == "externalURL" {
                    Value::str(u.clone())
                } else {
                    Value::str(
                        url::Url::parse(u)
                            .map(|u| u.path().to_string())
                            .unwrap_or_default(),
                    )
                }
            }
            "parseDuration" => {
                let ms = crate::ruler::duration::parse_duration_allow_negative(want_str(&args[0])?)?;
                Value::Float(ms as f64 / 1000.0)
            }
            "urlQueryEscape" => Value::str(query_escape(want_str(&args[0])?)),
            _ => return Err(format!("function {name:?} not defined")),
        })
    }
}

impl Expander<'_> {
    /// Parses and runs `text`; errors read like Prometheus's `Expander.Expand`. In console mode
    /// (`html`), output is escaped for its HTML context as `ExpandHTML`'s `html/template` does.
    pub fn expand(&self, text: &str, data: &Value) -> Result<String, String> {
        let tree = gotemplate::parse(&self.name, text, &|n| self.has(n))
            .map_err(|e| format!("error parsing template {}: {e}", self.name))?;
        let exec_err = |e: String| format!("error executing template {}: {e}", self.name);
        if !self.html {
            return gotemplate::execute(&tree, data, self).map_err(exec_err);
        }
        let funcs = HtmlFuncs {
            exp: self,
            stack: std::cell::RefCell::new(vec![HtmlEscaper::default()]),
        };
        let out = gotemplate::execute(&tree, data, &funcs).map_err(exec_err)?;
        match funcs.stack.borrow_mut().pop().and_then(|e| e.error) {
            Some(e) => Err(exec_err(e)),
            None => Ok(out),
        }
    }
}

/// Console-template mode: Prometheus's functions with `html/template`'s contextual escaping
/// (the escaper the Alertmanager templates use), one escaping context per output buffer.
struct HtmlFuncs<'a, 'b> {
    exp: &'a Expander<'b>,
    stack: std::cell::RefCell<Vec<HtmlEscaper>>,
}

impl FuncSet for HtmlFuncs<'_, '_> {
    fn has(&self, name: &str) -> bool {
        self.exp.has(name)
    }

    fn arity(&self, name: &str) -> (usize, bool) {
        self.exp.arity(name)
    }

    fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, String> {
        self.exp.call(name, args)
    }

    fn write_text(&self, out: &mut String, text: &str) -> bool {
        if let Some(e) = self.stack.borrow_mut().last_mut() {
            e.write_text(out, text);
        }
        true
    }

    fn write_value(&self, out: &mut String, value: &Value) -> bool {
        if let Some(e) = self.stack.borrow_mut().last_mut() {
            e.write_value(out, value, None);
        }
        true
    }

    fn begin_nested(&self) {
        self.stack.borrow_mut().push(HtmlEscaper::default());
    }

    fn end_nested(&self) -> Result<(), String> {
        match self.stack.borrow_mut().pop().and_then(|e| e.error) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// The data alert templates see (`AlertTemplateData`).
pub fn alert_data(
    labels: &BTreeMap<String, String>,
    external_labels: &BTreeMap<String, String>,
    external_url: &str,
    value: Value,
) -> Value {
    let map =
        |m: &BTreeMap<String, String>| Value::string_map(m.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    Value::Struct(Arc::new(Struct {
        type_name: "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value interface {} }".into(),
        fields: vec![
            ("Labels".into(), map(labels)),
            ("ExternalLabels".into(), map(external_labels)),
            ("ExternalURL".into(), Value::str(external_url)),
            ("Value".into(), value),
        ],
        pointer: false,
    }))
}

/// Expands one alert label or annotation value as the alerting rule does: with the `$labels`...
/// definitions prepended, and an expansion error turned into `<error expanding template: ...>`.
pub fn expand_alert_text(exp: &Expander<'_>, text: &str, data: &Value) -> String {
    let full = format!("{ALERT_DEFS}{text}");
    match exp.expand(&full, data) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(template = %exp.name, error = %e, "Expanding alert template failed.");
            format!("<error expanding template: {e}>")
        }
    }
}

/// Checks that an alert rule's label or annotation template parses (`rulefmt`'s check).
pub fn parse_test(alert_name: &str, text: &str) -> Result<(), String> {
    let exp = Expander {
        name: format!("__alert_{alert_name}"),
        ts_ms: 0,
        query: None,
        external_url: None,
        html: false,
    };
    let full = format!("{ALERT_DEFS}{text}");
    gotemplate::parse(&exp.name, &full, &|n| exp.has(n)).map(|_| ())
}

/// Go's `%v` of a float as Prometheus prints `$value`.
pub fn format_value(v: f64) -> String {
    sprintf("%v", &[Value::Float(v)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(text: &str, labels: &[(&str, &str)], value: f64) -> String {
        let q = |_: &str, _: i64| -> Result<Vec<QuerySample>, String> {
            Ok(vec![
                QuerySample {
                    labels: [("instance".to_string(), "b".to_string())].into(),
                    value: Value::Float(2.0),
                },
                QuerySample {
                    labels: [("instance".to_string(), "a".to_string())].into(),
                    value: Value::Float(1.0),
                },
            ])
        };
        let exp = Expander {
            name: "__alert_A".into(),
            ts_ms: 0,
            query: Some(&q),
            external_url: Some("http://fenghuo.example:9800/prefix".into()),
            html: false,
        };
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let ext: BTreeMap<String, String> = [("cluster".to_string(), "c1".to_string())].into();
        let data = alert_data(
            &labels,
            &ext,
            "http://fenghuo.example:9800/prefix",
            Value::Float(value),
        );
        expand_alert_text(&exp, text, &data)
    }

    const L1: [(&str, &str); 3] = [("__name__", "m"), ("instance", "i:9090"), ("job", "j")];

    // Expected strings are what `promtool test rules` (Prometheus 2.42) rendered for the same
    // templates and data.
    #[test]
    fn renders_like_prometheus() {
        let v = 1234567.5;
        assert_eq!(render("{{ $value }}", &L1, v), "1.2345675e+06");
        assert_eq!(
            render(
                "{{ humanize $value }}|{{ humanize1024 $value }}|{{ humanizeDuration $value }}|{{ humanizePercentage $value }}|{{ humanizeTimestamp $value }}",
                &L1,
                v
            ),
            "1.235M|1.177Mi|14d 6h 56m 7s|1.235e+08%|1970-01-15 06:56:07.5 +0000 UTC"
        );
        assert_eq!(
            render(
                "{{ humanize $value }}|{{ humanize1024 $value }}|{{ humanizeDuration $value }}|{{ humanizePercentage $value }}|{{ humanizeTimestamp $value }}",
                &L1,
                0.00012345
            ),
            "123.4u|0.0001234|123.4us|0.01234%|1970-01-01 00:00:00 +0000 UTC"
        );
        assert_eq!(
            render(
                r#"{{ printf "%.2f|%d|%s|%v|%q|%e|%g|%x|%5.1f|%-6s|" $value 3 "x" 1.5 "q" $value $value 255 2.25 "ab" }}"#,
                &L1,
                v
            ),
            "1234567.50|3|x|1.5|\"q\"|1.234568e+06|1.2345675e+06|ff|  2.2|ab    |"
        );
        assert_eq!(
            render(
                r#"{{ toTime $value }}|{{ title "hello world" }}|{{ toUpper "a" }}|{{ print 1 2 "a" "b" 3 }}|{{ 1e6 }}|{{ 0.000012 }}"#,
                &L1,
                v
            ),
            "1970-01-15 06:56:07.5 +0000 UTC|Hello World|A|1 2ab3|1e+06|1.2e-05"
        );
        assert_eq!(
            render(
                r#"{{ if gt $value 1.0 }}big{{ else }}small{{ end }}|{{ len $labels }}|{{ $labels }}|{{ index $labels "job" }}"#,
                &L1,
                v
            ),
            "big|3|map[__name__:m instance:i:9090 job:j]|j"
        );
        assert_eq!(
            render(
                "{{ 1000000.0 }}|{{ 123456789.0 }}|{{ 1e21 }}|{{ 1e20 }}|{{ 100000.0 }}|{{ 0.0001 }}|{{ 0.00001 }}",
                &L1,
                v
            ),
            "1e+06|1.23456789e+08|1e+21|1e+20|100000|0.0001|1e-05"
        );
    }

    /// Functions promtool 2.42 lacks (`toDuration`, `now`, `urlQueryEscape` came later) and the
    /// link helpers: expected values follow Prometheus 3.x's template.go with Go's fmt and
    /// net/url.
    #[test]
    fn newer_functions_links_and_strvalue() {
        let q = |q: &str, _: i64| -> Result<Vec<QuerySample>, String> {
            Ok(vec![QuerySample {
                labels: [("__value__".to_string(), format!("from {q}"))].into(),
                value: Value::Float(0.0),
            }])
        };
        let exp = Expander {
            name: "__alert_N".into(),
            ts_ms: 1_700_000_000_123,
            query: Some(&q),
            external_url: None,
            html: false,
        };
        let none = BTreeMap::new();
        let data = alert_data(&none, &none, "", Value::Float(1.0));
        let r = |t: &str| expand_alert_text(&exp, t, &data);
        assert_eq!(
            r(r#"{{ graphLink "up{a=\"b c\"}" }}|{{ tableLink "rate(x[5m])" }}"#),
            "/graph?g0.expr=up%7Ba%3D%22b+c%22%7D&g0.tab=0|/graph?g0.expr=rate%28x%5B5m%5D%29&g0.tab=1"
        );
        assert_eq!(r(r#"{{ urlQueryEscape "a b&c/d?é" }}"#), "a+b%26c%2Fd%3F%C3%A9");
        assert_eq!(
            r(
                r#"{{ toDuration 90.5 }}|{{ (toDuration 3600).Seconds }}|{{ toDuration "1.5" }}|{{ toDuration -0.002 }}"#
            ),
            "1m30.5s|3600|1.5s|-2ms"
        );
        // 1700000000.123 as a float64 is a hair below .123; toTime truncates to milliseconds.
        assert_eq!(
            r("{{ now }}|{{ now | toTime }}"),
            "1.700000000123e+09|2023-11-14 22:13:20.122 +0000 UTC"
        );
        assert_eq!(
            r(r#"{{ with query "\"abc\"" }}{{ . | first | strvalue }}{{ end }}"#),
            r#"from "abc""#
        );
        // ConvertToFloat takes numbers and strings only, not the pointers toTime and toDuration
        // return.
        for (t, ty) in [
            ("{{ humanizeDuration (toDuration 5) }}", "*time.Duration"),
            ("{{ humanize (toTime 5) }}", "*time.Time"),
            ("{{ toTime (toTime 5) }}", "*time.Time"),
        ] {
            let out = r(t);
            assert!(
                out.contains(&format!("can't convert {ty} to float")),
                "{t}: {out}"
            );
        }
    }

    /// Go's RE2 `\d \w \s \b` are ASCII; the regex crate's are Unicode unless told otherwise.
    #[test]
    fn regex_classes_are_ascii_as_in_go() {
        let r = |t: &str| render(t, &L1, 1.0);
        assert_eq!(
            r(r#"{{ match "^\\d+$" "١٢٣" }}|{{ match "^\\d+$" "123" }}"#),
            "false|true"
        );
        assert_eq!(r(r#"{{ reReplaceAll "\\w+" "X" "héllo wörld_1" }}"#), "XéX XöX");
        assert_eq!(
            r(r#"{{ reReplaceAll "\\s" "_" "a b\u00a0c\td" }}"#),
            "a_b\u{a0}c_d"
        );
        assert_eq!(
            r(r#"{{ match "\\bfoo\\b" "éfooé" }}|{{ match "\\Bfoo" "éfoo" }}"#),
            "true|false"
        );
        assert_eq!(r(r#"{{ reReplaceAll "[\\d.]+" "N" "v1.25x٣" }}"#), "vNx٣");
        assert_eq!(r(r#"{{ reReplaceAll "[^\\w]" "" "a-ü_b" }}"#), "a_b");
        assert_eq!(r(r#"{{ reReplaceAll "[[:alpha:]]+" "A" "ab1é" }}"#), "A1é");
        // In a Go class `[`, `&&` and `~~` are literals.
        assert_eq!(r(r#"{{ reReplaceAll "[[&&~~]" "" "a[b&c~d" }}"#), "abcd");
    }

    #[test]
    fn control_flow_variables_and_trim() {
        assert_eq!(
            render(
                "{{- range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end -}}\n  {{ $externalLabels.cluster }}",
                &L1,
                1.0
            ),
            "__name__=m;instance=i:9090;job=j;c1"
        );
        assert_eq!(
            render(
                r#"{{ define "x" }}[{{ . }}]{{ end }}{{ template "x" $labels.job }}{{ with $labels.nope }}no{{ else }}empty{{ end }}"#,
                &L1,
                1.0
            ),
            "[j]empty"
        );
        assert_eq!(
            render(
                r#"{{ if and (eq $labels.job "j") (not (ne 1 1)) }}ok{{ end }}{{ or "" "b" }}{{ $x := 1 }}{{ $x = 2 }}{{ $x }}"#,
                &L1,
                1.0
            ),
            "okb2"
        );
        assert_eq!(
            render(
                r#"{{ range $i, $e := (query "up" | sortByLabel "instance") }}{{ $i }}:{{ label "instance" $e }}={{ value $e }} {{ end }}"#,
                &L1,
                1.0
            ),
            "0:a=1 1:b=2 "
        );
        assert_eq!(
            render(
                r#"{{ with query "up" }}{{ . | first | value | humanize }}{{ end }}"#,
                &L1,
                1.0
            ),
            "2"
        );
        assert_eq!(
            render(
                r#"{{ reReplaceAll "(.*):(.*)" "$2/$1" $labels.instance }} {{ stripPort $labels.instance }} {{ stripDomain "a.b.c:80" }} {{ match "^i" $labels.instance }} {{ parseDuration "1m30s" }} {{ externalURL }} {{ pathPrefix }} {{ $externalURL }}"#,
                &L1,
                1.0
            ),
            "9090/i i a:80 true 90 http://fenghuo.example:9800/prefix /prefix http://fenghuo.example:9800/prefix"
        );
        assert_eq!(
            render(
                r#"{{ html "<a&b>" }} {{ js "it's" }} {{ urlquery "a b&c" }} {{ len "héllo" }} {{ index (args 1 "x") "arg1" }}"#,
                &L1,
                1.0
            ),
            "&lt;a&amp;b&gt; it\\'s a+b%26c 6 x"
        );
        assert_eq!(
            render(
                r#"{{ range 3 }}{{ if eq . 1 }}{{ continue }}{{ end }}{{ . }}{{ end }}|{{ range $labels }}{{ . }}{{ break }}{{ end }}"#,
                &L1,
                1.0
            ),
            "02|m"
        );
    }

    #[test]
    fn errors_read_like_prometheus() {
        let out = render("{{ if gt $value 1 }}x{{ end }}", &L1, 5.0);
        assert!(
            out.starts_with("<error expanding template: error executing template __alert_A: template: __alert_A:1:")
                && out.ends_with("executing \"__alert_A\" at <gt $value 1>: error calling gt: incompatible types for comparison>"),
            "{out}"
        );
        let out = render("{{ humanize \"x\" }}", &L1, 5.0);
        assert!(
            out.ends_with(
                "at <humanize \"x\">: error calling humanize: strconv.ParseFloat: parsing \"x\": invalid syntax>"
            ),
            "{out}"
        );
        assert_eq!(
            parse_test("A", "{{ $labels.x ").err().as_deref(),
            Some("template: __alert_A:1: unclosed action")
        );
        assert_eq!(
            parse_test("A", "{{ tmpl \"x\" . }}").err().as_deref(),
            Some("template: __alert_A:1: function \"tmpl\" not defined")
        );
        assert!(render("{{ .Nope }}", &L1, 1.0).contains("can't evaluate field Nope"));
        assert_eq!(render("{{ $labels.missing }}|", &L1, 1.0), "|");
    }
}

#[cfg(test)]
mod html_tests {
    use super::*;

    #[test]
    fn tmpl_runs_defined_templates_in_console_mode_only() {
        let exp = Expander {
            name: "console".into(),
            ts_ms: 0,
            query: None,
            external_url: Some("http://x".into()),
            html: true,
        };
        let out = exp.expand(
            r#"{{ define "row" }}<td>{{ . }}</td>{{ end }}{{ tmpl "row" "v" }}"#,
            &Value::Nil,
        );
        assert_eq!(out.as_deref(), Ok("<td>v</td>"));
        let text = Expander { html: false, ..exp };
        let err = text
            .expand(r#"{{ tmpl "row" 1 }}"#, &Value::Nil)
            .err()
            .unwrap_or_default();
        assert_eq!(
            err,
            "error parsing template console: template: console:1: function \"tmpl\" not defined"
        );
    }

    /// Expected texts are what Go's `html/template` (as Prometheus's `ExpandHTML` sets it up,
    /// with `safeHtml` and `tmpl`) rendered for the same templates and data.
    #[test]
    fn console_mode_escapes_like_html_template() {
        let exp = Expander {
            name: "console".into(),
            ts_ms: 0,
            query: None,
            external_url: Some("http://x".into()),
            html: true,
        };
        let data = any_map([
            ("Title".to_string(), Value::str("<b>CPU & mem</b>")),
            ("Expr".to_string(), Value::str(r#"rate(x{job="a"}[5m]) > 0.5"#)),
            ("Class".to_string(), Value::str(r#"a" onclick="x"#)),
            ("Html".to_string(), Value::str("<i>ok</i>")),
            ("Bad".to_string(), Value::str("javascript:alert(1)")),
            ("Value".to_string(), Value::Float(1.5)),
        ]);
        let cases = [
            (
                r#"<h1>{{ .Title }}</h1><a href="/graph?g0.expr={{ .Expr }}&g0.tab=0">{{ .Expr }}</a>"#,
                "<h1>&lt;b&gt;CPU &amp; mem&lt;/b&gt;</h1><a href=\"/graph?g0.expr=rate%28x%7bjob%3d%22a%22%7d%5b5m%5d%29%20%3e%200.5&g0.tab=0\">rate(x{job=&#34;a&#34;}[5m]) &gt; 0.5</a>",
            ),
            (
                r#"<td class="{{ .Class }}">{{ safeHtml .Html }}</td>"#,
                "<td class=\"a&#34; onclick=&#34;x\"><i>ok</i></td>",
            ),
            (
                // (Go prints a number in JS as ` 1.5 `; the shared escaper quotes it: not compared.)
                r#"<script>var v = {{ .Expr }};</script>"#,
                "<script>var v = \"rate(x{job=\\\"a\\\"}[5m]) \\u003e 0.5\";</script>",
            ),
            (
                r#"{{ define "row" }}<tr><td>{{ . }}</td></tr>{{ end }}<table>{{ tmpl "row" "<x>" }}</table>"#,
                "<table><tr><td>&lt;x&gt;</td></tr></table>",
            ),
            (
                r#"<a href="{{ .Bad }}">x</a><a href="{{ .Expr }}">y</a>"#,
                "<a href=\"#ZgotmplZ\">x</a><a href=\"rate%28x%7bjob=%22a%22%7d[5m]%29%20%3e%200.5\">y</a>",
            ),
            (
                r#"<p title={{ .Title }}>{{ .Value }}</p><!-- hidden {{ .Title }} -->after"#,
                "<p title=&lt;b&gt;CPU&#32;&amp;&#32;mem&lt;/b&gt;>1.5</p>after",
            ),
            (
                r#"<style>p { color: {{ .Class }} }</style><textarea>{{ .Title }}</textarea>"#,
                "<style>p { color: ZgotmplZ }</style><textarea>&lt;b&gt;CPU &amp; mem&lt;/b&gt;</textarea>",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(exp.expand(text, &data).as_deref(), Ok(want), "{text}");
        }
        // Alert templates (text mode) are not escaped.
        let text = Expander { html: false, ..exp };
        assert_eq!(
            text.expand("{{ .Title }}", &data).as_deref(),
            Ok("<b>CPU & mem</b>")
        );
    }
}
