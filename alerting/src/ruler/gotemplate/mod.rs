//! Go's `text/template`, as Prometheus uses it for alert labels and annotations: [`lex`] and
//! [`parse`] build the tree (with Go's parse-time checks and messages), [`exec`] runs it over
//! [`value::Value`]s, and [`fmt`] reproduces Go's `fmt` so numbers print exactly as in Go.

pub mod exec;
pub mod fmt;
pub mod lex;
pub mod parse;
pub mod value;

pub use exec::{FuncSet, execute};
pub use parse::{Tree, parse};
pub use value::{Map, Struct, Value};
