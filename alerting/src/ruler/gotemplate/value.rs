//! The dynamic values Go templates work with, modelled on the Go types Prometheus hands to its
//! templates: numbers (`int`, `float64`), strings, `map[string]string`, slices, the alert data
//! struct, query samples (`*sample`), `*time.Time`, `time.Duration` and `html/template.HTML`.

use std::collections::BTreeMap;
use std::sync::Arc;

/// The name of a struct field holding what the Go type's `String()` method returns. Templates
/// cannot name it (no identifier contains NUL); printing a struct that has it prints this text,
/// as Go's `fmt` does for a `fmt.Stringer`, and `.String` calls it.
pub const STRING_METHOD: &str = "\u{0}String";

/// A Go struct value: its Go type name and fields in declaration order.
#[derive(Clone, Debug, PartialEq)]
pub struct Struct {
    pub type_name: String,
    pub fields: Vec<(String, Value)>,
    /// Whether the value is a pointer to the struct (`*sample`).
    pub pointer: bool,
}

/// A Go map with string keys; `zero` is the element type's zero value (`missingkey=zero`).
#[derive(Clone, Debug, PartialEq)]
pub struct Map {
    pub entries: BTreeMap<String, Value>,
    pub zero: Value,
    /// Go type name, for messages (`map[string]string`).
    pub type_name: &'static str,
}

/// A template value.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    /// An untyped nil / missing value (`<no value>` when printed as an action's result).
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// `html/template.HTML` (from `safeHtml`).
    Html(String),
    Map(Arc<Map>),
    List(Arc<Vec<Value>>),
    Struct(Arc<Struct>),
    /// A time as `*time.Time` in UTC: seconds and nanoseconds since the epoch.
    Time {
        secs: i64,
        nanos: u32,
    },
    /// A `*time.Duration` (what `toDuration` returns) in nanoseconds.
    Duration(i64),
    /// A value printed by a fixed text (native histograms).
    Opaque {
        type_name: &'static str,
        text: String,
    },
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// A `map[string]string`.
    pub fn string_map<'a>(it: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
        Value::Map(Arc::new(Map {
            entries: it
                .into_iter()
                .map(|(k, v)| (k.to_string(), Value::Str(v.to_string())))
                .collect(),
            zero: Value::Str(String::new()),
            type_name: "map[string]string",
        }))
    }

    /// The Go type name, as error messages print it.
    pub fn type_name(&self) -> String {
        match self {
            Value::Nil => "<nil>".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Float(_) => "float64".into(),
            Value::Str(_) => "string".into(),
            Value::Html(_) => "template.HTML".into(),
            Value::Map(m) => m.type_name.into(),
            Value::List(_) => "[]interface {}".into(),
            Value::Struct(s) => {
                if s.pointer {
                    format!("*{}", s.type_name)
                } else {
                    s.type_name.clone()
                }
            }
            Value::Time { .. } => "*time.Time".into(),
            // Only `toDuration` makes durations, and it returns a pointer.
            Value::Duration(_) => "*time.Duration".into(),
            Value::Opaque { type_name, .. } => (*type_name).into(),
        }
    }

    /// Go's `truth`: zero values are false, everything else true.
    pub fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) | Value::Html(s) => !s.is_empty(),
            Value::Map(m) => !m.entries.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Struct(_) | Value::Time { .. } | Value::Opaque { .. } => true,
            Value::Duration(d) => *d != 0,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Html(s) => Some(s),
            _ => None,
        }
    }

    /// What the value's Go `String()` method returns, for structs that have one.
    pub fn stringer(&self) -> Option<&str> {
        match self {
            Value::Struct(s) => s
                .fields
                .iter()
                .find(|(n, _)| n == STRING_METHOD)
                .and_then(|(_, v)| v.as_str()),
            _ => None,
        }
    }

    /// A struct's or pointer-to-struct's field.
    pub fn field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(s) => s.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            _ => None,
        }
    }
}
