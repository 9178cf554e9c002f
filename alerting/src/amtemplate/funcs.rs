//! Alertmanager's template functions (`toUpper`, `join`, `match`, `safeHtml`, `reReplaceAll`,
//! `date`, `tz`, `since`, `humanizeDuration`, `toJson`, `dict`, ...) and the methods of its
//! template types (`KV.SortedPairs/Names/Values/Remove`, `Pairs.Names/Values`,
//! `Alerts.Firing/Resolved`, `Strings.Join`, zoned times' `Format`), plus the output hooks that
//! apply `html/template` escaping when rendering HTML.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::html::{HtmlEscaper, Predefined};
use super::timefmt::{self, GO_ZERO_SECS, GoTime};
use crate::clock::Ts;
use crate::ruler::gotemplate::fmt::{format_v, sprint};
use crate::ruler::gotemplate::{FuncSet, Map, Struct, Value};

/// Go type names of Alertmanager's template types, used to recognise values.
pub const KV_TYPE: &str = "template.KV";
pub const PAIR_TYPE: &str = "template.Pair";
pub const ALERT_TYPE: &str = "template.Alert";
pub const DATA_TYPE: &str = "template.Data";
pub const TIME_TYPE: &str = "time.Time";
pub const URL_TYPE: &str = "template.URL";
/// Functions the HTML pass substitutes for a pipeline's final `urlquery` / `html`.
pub const FINAL_URLQUERY: &str = "_fh_final_urlquery";
pub const FINAL_HTML: &str = "_fh_final_html";
const PREDEFINED_MARK: &str = "_fh_predefined";

/// Functions, with their parameter count and whether the last one is variadic.
pub const FUNCS: &[(&str, usize, bool)] = &[
    ("toUpper", 1, false),
    ("toLower", 1, false),
    ("title", 1, false),
    ("trimSpace", 1, false),
    ("join", 2, false),
    ("match", 2, false),
    ("safeHtml", 1, false),
    ("safeUrl", 1, false),
    ("urlUnescape", 1, false),
    ("reReplaceAll", 3, false),
    ("stringSlice", 1, true),
    ("date", 2, false),
    ("tz", 2, false),
    ("now", 0, false),
    ("since", 1, false),
    ("humanizeDuration", 1, false),
    ("toDate", 2, false),
    ("mustToDate", 2, false),
    ("toJson", 1, false),
    ("base64encode", 1, false),
    ("base64decode", 1, false),
    ("list", 1, true),
    ("append", 2, true),
    ("dict", 1, true),
    (FINAL_URLQUERY, 1, true),
    (FINAL_HTML, 1, true),
];

/// The largest string one function call may build. A template's whole output is capped at
/// 4 MiB; without a bound per call, chained `reReplaceAll`/`join` calls on a short template
/// could build gigabytes in variables before anything is written.
pub const MAX_RESULT_BYTES: usize = 4 << 20;

fn check_size(func: &str, size: usize) -> Result<(), String> {
    if size > MAX_RESULT_BYTES {
        return Err(format!(
            "{func}: result of {size} bytes exceeds the {MAX_RESULT_BYTES}-byte limit"
        ));
    }
    Ok(())
}

/// `Regexp.ReplaceAllString` (with `$1` expansion) that stops once the result would exceed
/// [`MAX_RESULT_BYTES`].
fn bounded_replace_all(re: &regex::Regex, src: &str, repl: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut last = 0;
    for caps in re.captures_iter(src) {
        let Some(m) = caps.get(0) else { continue };
        out.push_str(&src[last..m.start()]);
        caps.expand(repl, &mut out);
        last = m.end();
        check_size("reReplaceAll", out.len() + src.len() - last)?;
    }
    out.push_str(&src[last..]);
    Ok(out)
}

pub fn is_func(name: &str) -> bool {
    FUNCS.iter().any(|(n, _, _)| *n == name)
}

/// A `template.KV` map.
pub fn kv(entries: &BTreeMap<String, String>) -> Value {
    Value::Map(Arc::new(Map {
        entries: entries
            .iter()
            .map(|(k, v)| (k.clone(), Value::str(v.clone())))
            .collect(),
        zero: Value::str(""),
        type_name: KV_TYPE,
    }))
}

fn kv_entries(m: &Map) -> Vec<(String, String)> {
    m.entries
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map(str::to_string).unwrap_or_else(|| print_text(v)),
            )
        })
        .collect()
}

/// `KV.SortedPairs`: `alertname` first, the rest by name.
fn sorted_pairs(m: &Map) -> Value {
    let mut entries = kv_entries(m);
    entries.sort_by(|a, b| {
        (a.0 != "alertname")
            .cmp(&(b.0 != "alertname"))
            .then_with(|| a.0.cmp(&b.0))
    });
    Value::List(Arc::new(
        entries
            .into_iter()
            .map(|(k, v)| {
                Value::Struct(Arc::new(Struct {
                    type_name: PAIR_TYPE.into(),
                    fields: vec![("Name".into(), Value::str(k)), ("Value".into(), Value::str(v))],
                    pointer: false,
                }))
            })
            .collect(),
    ))
}

fn pair_field(v: &Value, f: &str) -> Option<String> {
    v.field(f).and_then(|x| x.as_str()).map(str::to_string)
}

fn strings(items: impl IntoIterator<Item = String>) -> Value {
    Value::List(Arc::new(items.into_iter().map(Value::str).collect()))
}

fn is_pair(v: &Value) -> bool {
    matches!(v, Value::Struct(s) if s.type_name == PAIR_TYPE)
}

/// A time value in Alertmanager's data (UTC `Value::Time`, or a zoned `time.Time` struct).
pub fn go_time(v: &Value) -> Option<GoTime> {
    match v {
        Value::Time { secs, nanos } => Some(GoTime::utc(*secs, *nanos)),
        Value::Struct(s) if s.type_name == TIME_TYPE => {
            let int = |n: &str| match v.field(n) {
                Some(Value::Int(i)) => *i,
                _ => 0,
            };
            Some(GoTime {
                secs: int("__secs"),
                nanos: int("__nanos") as u32,
                offset: int("__offset") as i32,
                zone: v
                    .field("__zone")
                    .and_then(|z| z.as_str())
                    .unwrap_or("")
                    .to_string(),
            })
        }
        _ => None,
    }
}

/// The value of a Go time: UTC times stay `Value::Time` (with the engine's built-in methods).
pub fn time_value(t: GoTime) -> Value {
    if t.offset == 0 && t.zone == "UTC" {
        return Value::Time {
            secs: t.secs,
            nanos: t.nanos,
        };
    }
    Value::Struct(Arc::new(Struct {
        type_name: TIME_TYPE.into(),
        fields: vec![
            ("__secs".into(), Value::Int(t.secs)),
            ("__nanos".into(), Value::Int(i64::from(t.nanos))),
            ("__offset".into(), Value::Int(i64::from(t.offset))),
            ("__zone".into(), Value::str(t.zone)),
        ],
        pointer: false,
    }))
}

/// How Go prints a value (`fmt.Sprint`), with the `String()` methods of Alertmanager's types
/// (`KV` and `Pairs` print as `a=b, c=d`) and of zoned times.
pub fn print_text(v: &Value) -> String {
    match v {
        Value::Map(m) if m.type_name == KV_TYPE => pairs_string(&sorted_pairs(m)),
        Value::List(l) if !l.is_empty() && l.iter().all(is_pair) => pairs_string(v),
        Value::Struct(s) if s.type_name == TIME_TYPE => go_time(v).map(|t| t.go_string()).unwrap_or_default(),
        // Printing dereferences a pointer to a struct.
        Value::Struct(s) if s.pointer => {
            let mut s = (**s).clone();
            s.pointer = false;
            format_v(&Value::Struct(Arc::new(s)))
        }
        other => format_v(other),
    }
}

fn pairs_string(v: &Value) -> String {
    let Value::List(l) = v else { return String::new() };
    l.iter()
        .map(|p| {
            format!(
                "{}={}",
                pair_field(p, "Name").unwrap_or_default(),
                pair_field(p, "Value").unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn want_str(v: &Value) -> Result<String, String> {
    match v {
        Value::Str(s) | Value::Html(s) => Ok(s.clone()),
        Value::Opaque { type_name, text } if *type_name == URL_TYPE => Ok(text.clone()),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
    }
}

fn want_strings(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::List(l) => l
            .iter()
            .map(|x| match x {
                Value::Str(s) => Ok(s.clone()),
                o => Err(format!(
                    "wrong type for value; expected []string; got []{}",
                    o.type_name()
                )),
            })
            .collect(),
        Value::Nil => Ok(vec![]),
        o => Err(format!(
            "wrong type for value; expected []string; got {}",
            o.type_name()
        )),
    }
}

fn want_time(v: &Value) -> Result<GoTime, String> {
    go_time(v).ok_or_else(|| format!("wrong type for value; expected time.Time; got {}", v.type_name()))
}

/// `cases.Title(language.AmericanEnglish)`: each word's first letter upper-cased, the rest lower.
pub fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_word = false;
    let mut prev: Option<char> = None;
    for c in s.chars() {
        let wordish = c.is_alphanumeric() || (c == '\'' && prev.is_some_and(char::is_alphanumeric));
        if wordish {
            if in_word {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            in_word = true;
        } else {
            out.push(c);
            in_word = false;
        }
        prev = Some(c);
    }
    out
}

/// `url.QueryUnescape`.
fn query_unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()));
                let Some(h) = hex else {
                    let end = (i + 3).min(s.len());
                    return Err(format!("invalid URL escape {:?}", &s[i..end]));
                };
                out.push(u8::from_str_radix(h, 16).unwrap_or(0));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A string as Go's `encoding/json` writes it (HTML characters and line separators escaped).
pub use fenghuo_gofmt::json_string as go_json_string;

/// A float as `json.Marshal` writes it; NaN and infinities are its "unsupported value" error.
fn json_float(f: f64) -> Result<String, String> {
    fenghuo_gofmt::json_number(f)
        .ok_or_else(|| format!("json: unsupported value: {}", format_v(&Value::Float(f))))
}

/// JSON field names of Alertmanager's structs (`json:"..."` tags); fields not listed are skipped.
fn json_field(type_name: &str, field: &str) -> Option<&'static str> {
    let table: &[(&str, &str)] = match type_name {
        DATA_TYPE => &[
            ("Receiver", "receiver"),
            ("Status", "status"),
            ("Alerts", "alerts"),
            ("GroupLabels", "groupLabels"),
            ("CommonLabels", "commonLabels"),
            ("CommonAnnotations", "commonAnnotations"),
            ("ExternalURL", "externalURL"),
        ],
        ALERT_TYPE => &[
            ("Status", "status"),
            ("Labels", "labels"),
            ("Annotations", "annotations"),
            ("StartsAt", "startsAt"),
            ("EndsAt", "endsAt"),
            ("GeneratorURL", "generatorURL"),
            ("Fingerprint", "fingerprint"),
        ],
        PAIR_TYPE => &[("Name", "Name"), ("Value", "Value")],
        _ => return None,
    };
    table.iter().find(|(f, _)| *f == field).map(|(_, j)| *j)
}

/// `json.Marshal` of a template value.
pub fn to_json(v: &Value) -> Result<String, String> {
    Ok(match v {
        Value::Nil => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) | Value::Duration(i) => i.to_string(),
        Value::Float(f) => json_float(*f)?,
        Value::Str(s) | Value::Html(s) => go_json_string(s),
        Value::Opaque { text, .. } => go_json_string(text),
        Value::Time { secs, nanos } => go_json_string(&GoTime::utc(*secs, *nanos).rfc3339_nano()),
        Value::Map(m) => {
            let parts: Result<Vec<String>, String> = m
                .entries
                .iter()
                .map(|(k, v)| Ok(format!("{}:{}", go_json_string(k), to_json(v)?)))
                .collect();
            format!("{{{}}}", parts?.join(","))
        }
        Value::List(l) => {
            let parts: Result<Vec<String>, String> = l.iter().map(to_json).collect();
            format!("[{}]", parts?.join(","))
        }
        Value::Struct(s) if s.type_name == TIME_TYPE => {
            go_json_string(&go_time(v).map(|t| t.rfc3339_nano()).unwrap_or_default())
        }
        Value::Struct(s) => {
            let known = matches!(s.type_name.as_str(), DATA_TYPE | ALERT_TYPE | PAIR_TYPE);
            let mut parts = Vec::new();
            for (name, fv) in &s.fields {
                let key = if known {
                    match json_field(&s.type_name, name) {
                        Some(k) => k.to_string(),
                        None => continue,
                    }
                } else {
                    name.clone()
                };
                parts.push(format!("{}:{}", go_json_string(&key), to_json(fv)?));
            }
            format!("{{{}}}", parts.join(","))
        }
    })
}

fn number(v: &Value) -> Result<f64, String> {
    match v {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) => Ok(*f),
        Value::Duration(d) => Ok(*d as f64 / 1e9),
        Value::Str(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")),
        o => Err(format!("can't convert {} to float", o.type_name())),
    }
}

/// The func set of one rendering: Alertmanager's functions on the engine clock, and (for HTML)
/// the escaper state.
pub struct AmFuncs {
    now: Ts,
    html: Option<RefCell<HtmlEscaper>>,
}

impl AmFuncs {
    pub fn text(now: Ts) -> Self {
        AmFuncs { now, html: None }
    }

    pub fn html(now: Ts) -> Self {
        AmFuncs {
            now,
            html: Some(RefCell::new(HtmlEscaper::default())),
        }
    }

    /// An error the HTML escaper met (malformed HTML around an action), as Go reports it.
    pub fn html_error(&self) -> Option<String> {
        self.html.as_ref().and_then(|h| h.borrow().error.clone())
    }

    fn now_time(&self) -> GoTime {
        GoTime::utc(self.now.timestamp(), self.now.timestamp_subsec_nanos())
    }
}

fn marker(kind: &str, text: String) -> Value {
    Value::Struct(Arc::new(Struct {
        type_name: PREDEFINED_MARK.into(),
        fields: vec![
            ("kind".into(), Value::str(kind)),
            ("text".into(), Value::str(text)),
        ],
        pointer: false,
    }))
}

fn eval_args_text(args: &[Value]) -> String {
    if let [v] = args
        && let Some(s) = v.as_str()
    {
        return s.to_string();
    }
    sprint(args)
}

impl FuncSet for AmFuncs {
    fn has(&self, name: &str) -> bool {
        is_func(name)
    }

    fn arity(&self, name: &str) -> (usize, bool) {
        FUNCS
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, a, v)| (*a, *v))
            .unwrap_or((0, true))
    }

    fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, String> {
        let s = |i: usize| want_str(&args[i]);
        Ok(match name {
            "toUpper" => Value::str(s(0)?.to_uppercase()),
            "toLower" => Value::str(s(0)?.to_lowercase()),
            "title" => Value::str(title(&s(0)?)),
            "trimSpace" => Value::str(s(0)?.trim().to_string()),
            "join" => {
                let items = want_strings(&args[1])?;
                let sep = s(0)?;
                let size = items.iter().map(String::len).sum::<usize>()
                    + sep.len().saturating_mul(items.len().saturating_sub(1));
                check_size("join", size)?;
                Value::str(items.join(&sep))
            }
            "match" => {
                let re = regex::Regex::new(&s(0)?).map_err(|e| format!("error parsing regexp: {e}"))?;
                Value::Bool(re.is_match(&s(1)?))
            }
            "safeHtml" => Value::Html(s(0)?),
            "safeUrl" => Value::Opaque {
                type_name: URL_TYPE,
                text: s(0)?,
            },
            "urlUnescape" => Value::str(query_unescape(&s(0)?)?),
            "reReplaceAll" => {
                let re = regex::Regex::new(&s(0)?)
                    .map_err(|e| format!("regexp: Compile({:?}): {e}", s(0).unwrap_or_default()))?;
                Value::str(bounded_replace_all(&re, &s(2)?, &s(1)?)?)
            }
            "stringSlice" => {
                let items: Result<Vec<String>, String> = args.iter().map(want_str).collect();
                strings(items?)
            }
            "date" => Value::str(timefmt::format(&want_time(&args[1])?, &s(0)?)),
            "tz" => time_value(timefmt::in_zone(&want_time(&args[1])?, &s(0)?)?),
            "now" => time_value(self.now_time()),
            "since" => {
                let t = want_time(&args[0])?;
                let now = self.now_time();
                let ns = (i128::from(now.secs) - i128::from(t.secs)) * 1_000_000_000
                    + (i128::from(now.nanos) - i128::from(t.nanos));
                Value::Duration(ns.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
            }
            "humanizeDuration" => Value::str(crate::ruler::template::humanize_duration(number(&args[0])?)),
            "toDate" => {
                time_value(timefmt::parse(&s(0)?, &s(1)?).unwrap_or_else(|_| GoTime::utc(GO_ZERO_SECS, 0)))
            }
            "mustToDate" => time_value(timefmt::parse(&s(0)?, &s(1)?)?),
            "toJson" => Value::str(to_json(&args[0])?),
            "base64encode" => {
                use base64::Engine;
                Value::str(base64::engine::general_purpose::URL_SAFE.encode(s(0)?.as_bytes()))
            }
            "base64decode" => {
                use base64::Engine;
                let b = base64::engine::general_purpose::URL_SAFE
                    .decode(s(0)?.as_bytes())
                    .map_err(|e| format!("illegal base64 data: {e}"))?;
                Value::str(String::from_utf8_lossy(&b).into_owned())
            }
            "list" => Value::List(Arc::new(args)),
            "append" => {
                let mut it = args.into_iter();
                let first = it.next().unwrap_or_default();
                let mut items = match first {
                    Value::List(l) => (*l).clone(),
                    Value::Nil => vec![],
                    o => {
                        return Err(format!(
                            "wrong type for value; expected []interface {{}}; got {}",
                            o.type_name()
                        ));
                    }
                };
                items.extend(it);
                Value::List(Arc::new(items))
            }
            "dict" => {
                if !args.len().is_multiple_of(2) {
                    return Err("dict requires an even number of arguments".into());
                }
                let mut entries = BTreeMap::new();
                for kv in args.chunks(2) {
                    let Value::Str(k) = &kv[0] else {
                        return Err("dict keys must be strings".into());
                    };
                    entries.insert(k.clone(), kv[1].clone());
                }
                crate::ruler::gotemplate::exec::any_map(entries)
            }
            FINAL_URLQUERY => {
                let text = eval_args_text(&args);
                if self.html.is_some() {
                    marker("urlquery", text)
                } else {
                    Value::str(crate::ruler::gotemplate::exec::query_escape(&text))
                }
            }
            FINAL_HTML => {
                let text = eval_args_text(&args);
                if self.html.is_some() {
                    marker("html", text)
                } else {
                    Value::str(crate::ruler::gotemplate::exec::html_escape(&text))
                }
            }
            other => return Err(format!("function {other:?} not defined")),
        })
    }

    fn has_method(&self, recv: &Value, name: &str) -> bool {
        match recv {
            Value::Map(m) if m.type_name == KV_TYPE => {
                matches!(name, "SortedPairs" | "Names" | "Values" | "Remove" | "String")
            }
            // Lists stand for Alerts, Pairs and Strings; each name belongs to one of them.
            Value::List(_) => matches!(
                name,
                "Firing" | "Resolved" | "Names" | "Values" | "Join" | "String"
            ),
            Value::Struct(s) if s.type_name == TIME_TYPE => matches!(
                name,
                "Format"
                    | "Unix"
                    | "UnixMilli"
                    | "UnixNano"
                    | "UTC"
                    | "String"
                    | "IsZero"
                    | "In"
                    | "Location"
            ),
            _ => false,
        }
    }

    fn call_method(&self, recv: &Value, name: &str, args: Vec<Value>) -> Result<Value, String> {
        let want = |n: usize| {
            if args.len() != n {
                Err(format!(
                    "wrong number of args for {name}: want {n} got {}",
                    args.len()
                ))
            } else {
                Ok(())
            }
        };
        match recv {
            Value::Map(m) => {
                let nargs = if name == "Remove" { 1 } else { 0 };
                want(nargs)?;
                let sp = sorted_pairs(m);
                match name {
                    "SortedPairs" => Ok(sp),
                    "Names" => Ok(pairs_column(&sp, "Name")),
                    "Values" => Ok(pairs_column(&sp, "Value")),
                    "String" => Ok(Value::str(pairs_string(&sp))),
                    _ => {
                        let drop = want_strings(&args[0])?;
                        let kept: BTreeMap<String, String> = kv_entries(m)
                            .into_iter()
                            .filter(|(k, _)| !drop.contains(k))
                            .collect();
                        Ok(kv(&kept))
                    }
                }
            }
            Value::List(l) => match name {
                "Firing" | "Resolved" => {
                    want(0)?;
                    let status = if name == "Firing" { "firing" } else { "resolved" };
                    Ok(Value::List(Arc::new(
                        l.iter()
                            .filter(|a| a.field("Status").and_then(|s| s.as_str()) == Some(status))
                            .cloned()
                            .collect(),
                    )))
                }
                "Names" | "Values" => {
                    want(0)?;
                    Ok(pairs_column(recv, if name == "Names" { "Name" } else { "Value" }))
                }
                "Join" => {
                    want(1)?;
                    Ok(Value::str(want_strings(recv)?.join(&want_str(&args[0])?)))
                }
                _ => {
                    want(0)?;
                    Ok(Value::str(print_text(recv)))
                }
            },
            _ => {
                let t = want_time(recv)?;
                match name {
                    "Format" => {
                        want(1)?;
                        Ok(Value::str(timefmt::format(&t, &want_str(&args[0])?)))
                    }
                    "In" => {
                        want(1)?;
                        let zone = match &args[0] {
                            Value::Str(z) => z.clone(),
                            _ => "UTC".into(),
                        };
                        Ok(time_value(timefmt::in_zone(&t, &zone)?))
                    }
                    "Location" => {
                        want(0)?;
                        Ok(Value::str(t.zone.clone()))
                    }
                    "Unix" => Ok(Value::Int(t.secs)),
                    "UnixMilli" => Ok(Value::Int(t.secs * 1000 + i64::from(t.nanos) / 1_000_000)),
                    "UnixNano" => Ok(Value::Int(
                        t.secs.saturating_mul(1_000_000_000) + i64::from(t.nanos),
                    )),
                    "UTC" => Ok(time_value(GoTime::utc(t.secs, t.nanos))),
                    "IsZero" => Ok(Value::Bool(t.secs == GO_ZERO_SECS && t.nanos == 0)),
                    _ => Ok(Value::str(t.go_string())),
                }
            }
        }
    }

    fn write_text(&self, out: &mut String, text: &str) -> bool {
        match &self.html {
            Some(h) => {
                h.borrow_mut().write_text(out, text);
                true
            }
            None => false,
        }
    }

    fn write_value(&self, out: &mut String, value: &Value) -> bool {
        let (v, pre) = match value {
            Value::Struct(s) if s.type_name == PREDEFINED_MARK => {
                let kind = value.field("kind").and_then(|k| k.as_str()).unwrap_or("");
                let text = value.field("text").and_then(|k| k.as_str()).unwrap_or("");
                let p = if kind == "html" {
                    Predefined::Html
                } else {
                    Predefined::UrlQuery
                };
                (Value::str(text), Some(p))
            }
            Value::Map(m) if m.type_name == KV_TYPE => (Value::str(print_text(value)), None),
            Value::List(_) | Value::Struct(_) => {
                let printed = print_text(value);
                if printed == format_v(value) && self.html.is_none() {
                    return false;
                }
                (Value::str(printed), None)
            }
            _ => {
                if self.html.is_none() {
                    return false;
                }
                (value.clone(), None)
            }
        };
        match &self.html {
            Some(h) => h.borrow_mut().write_value(out, &v, pre),
            None => out.push_str(v.as_str().unwrap_or_default()),
        }
        true
    }
}

fn pairs_column(pairs: &Value, field: &str) -> Value {
    let Value::List(l) = pairs else {
        return strings(Vec::new());
    };
    strings(l.iter().filter_map(|p| pair_field(p, field)).collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_is_word_wise() {
        assert_eq!(title("hELLO wORLD"), "Hello World");
        assert_eq!(title("disk-full on node's root"), "Disk-Full On Node's Root");
    }

    #[test]
    fn json_like_go() {
        let v = kv(&[("a".to_string(), "<x>&".to_string())].into());
        assert_eq!(
            to_json(&v).ok().as_deref(),
            Some(r#"{"a":"\u003cx\u003e\u0026"}"#)
        );
        assert_eq!(json_float(1e21).ok().as_deref(), Some("1e+21"));
        assert_eq!(json_float(0.5).ok().as_deref(), Some("0.5"));
        // encoding/json shortens negative exponents (Go: 1e-7, not strconv's 1e-07).
        assert_eq!(json_float(1.5e-7).ok().as_deref(), Some("1.5e-7"));
        assert_eq!(
            json_float(f64::NAN).err().as_deref(),
            Some("json: unsupported value: NaN")
        );
    }

    #[test]
    fn url_unescape() {
        assert_eq!(query_unescape("a+b%2Fc").ok().as_deref(), Some("a b/c"));
        assert!(query_unescape("%zz").is_err());
    }
}
