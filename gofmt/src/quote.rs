//! `strconv.Quote` (Go's `%q` of a string) as Prometheus uses it for label values in messages
//! and `Labels.String()`.

use std::fmt;

/// Go's `strconv.Quote(s)`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    let _ = write_quoted(&mut out, s);
    out
}

/// Writes `s` as a Go `strconv.Quote` string literal: `"`, `\` and the C escapes backslashed,
/// other ASCII control characters as `\xNN`.
///
/// Known difference: Go also escapes non-ASCII characters that are not printable (`\u00a0`,
/// `\u200b`, `\u2028`, C1 controls), which needs Unicode category tables; they pass through here.
pub fn write_quoted(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\u{07}' => f.write_str("\\a")?,
            '\u{08}' => f.write_str("\\b")?,
            '\u{0c}' => f.write_str("\\f")?,
            '\u{0b}' => f.write_str("\\v")?,
            c if (c as u32) < 0x20 || c as u32 == 0x7f => write!(f, "\\x{:02x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}
