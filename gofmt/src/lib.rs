//! Go's text formats, byte for byte, for everything fenghuo prints the way Prometheus or
//! Alertmanager (both Go programs) print it: `strconv.FormatFloat` in its `e`/`f`/`g` forms
//! ([`float`]), Prometheus's sample-value strings and `encoding/json`'s numbers and strings
//! ([`json`]), `strconv.Quote` ([`quote`]), and `strconv.ParseFloat` ([`parse`]).
//!
//! This crate has no dependencies so that any layer (storage, query, alerting, the binary)
//! can share one implementation without a dependency cycle. The tests compare against
//! tables produced by Go itself (`testdata/reference.go`).

pub mod float;
pub mod json;
pub mod parse;
pub mod quote;

pub use float::{append_float, f_shortest, format_float, g, g_prec};
pub use json::{append_sample_value, json_number, json_string, sample_value, write_json_string};
pub use parse::{ParseFloatError, ParseFloatErrorKind, parse_float};
pub use quote::{quote, write_quoted};
