//! Numbers and strings as Go's JSON writers print them: Prometheus's sample values
//! (`jsonutil.MarshalFloat`: a JSON string, `NaN`/`+Inf` allowed), `encoding/json`'s float64
//! numbers, and `encoding/json`'s HTML-safe string escaping.

use std::fmt::Write as _;

use crate::float::append_float;

/// Prometheus's sample-value text (the part between the quotes in `"value":[t,"1.5"]`):
/// `strconv.FormatFloat` with `'f'`, or `'e'` when `|f|` < 1e-6 or ≥ 1e21
/// (`1000000`, `1.5e-07`, `1e+21`, `NaN`, `+Inf`).
pub fn sample_value(f: f64) -> String {
    let mut out = String::new();
    append_sample_value(&mut out, f);
    out
}

/// [`sample_value`] appending to `out`.
pub fn append_sample_value(out: &mut String, f: f64) {
    append_float(out, f, if exponent_form(f) { b'e' } else { b'f' }, -1);
}

/// `encoding/json`'s number for a float64 (`1000000`, `1e-7`, `1e+21`); `None` for NaN and
/// infinities, which `json.Marshal` refuses ("json: unsupported value").
pub fn json_number(f: f64) -> Option<String> {
    if !f.is_finite() {
        return None;
    }
    let mut out = String::new();
    if exponent_form(f) {
        append_float(&mut out, f, b'e', -1);
        // encoding/json shortens a negative two-digit exponent: e-07 → e-7 (not e+21).
        let n = out.len();
        if n >= 4 && out[..n - 2].ends_with("e-") && out.as_bytes()[n - 2] == b'0' {
            out.remove(n - 2);
        }
    } else {
        append_float(&mut out, f, b'f', -1);
    }
    Some(out)
}

/// Where Go's JSON writers switch from `'f'` to `'e'`.
fn exponent_form(f: f64) -> bool {
    let abs = f.abs();
    abs != 0.0 && !(1e-6..1e21).contains(&abs)
}

/// `s` as a JSON string literal the way `encoding/json` writes it.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_json_string(&mut out, s);
    out
}

/// Appends `s` as `encoding/json` writes a string: `<`, `>` and `&` as `\u003c`…, U+2028 and
/// U+2029 escaped, other control characters as `\u00NN` (Rust strings cannot hold the invalid
/// UTF-8 Go would replace).
///
/// Backspace and form feed are `\u0008` and `\u000c` as Go up to 1.21 writes them (Go 1.22 and
/// later write `\b` and `\f`).
pub fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
