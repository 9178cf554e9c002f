//! `strconv.ParseFloat(s, 64)`: Go's float syntax (decimal and hexadecimal, `_` digit
//! separators, `Inf`/`Infinity`/`NaN`) and its two errors, "invalid syntax" and "value out of
//! range", with Go's message text. PromQL bucket bounds (`le`), series notation in test files
//! and template functions parse numbers this way in Prometheus.

use std::fmt;

use crate::quote::quote;

/// Why [`parse_float`] refused its input (Go's `strconv.ErrSyntax` / `strconv.ErrRange`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseFloatErrorKind {
    Syntax,
    /// The number is too large in magnitude for a float64 (Go returns ±Inf with this error).
    Range,
}

/// Go's `*strconv.NumError` of `ParseFloat`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseFloatError {
    pub input: String,
    pub kind: ParseFloatErrorKind,
}

impl fmt::Display for ParseFloatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.kind {
            ParseFloatErrorKind::Syntax => "invalid syntax",
            ParseFloatErrorKind::Range => "value out of range",
        };
        write!(f, "strconv.ParseFloat: parsing {}: {why}", quote(&self.input))
    }
}

impl std::error::Error for ParseFloatError {}

/// Go's `strconv.ParseFloat(s, 64)`.
pub fn parse_float(s: &str) -> Result<f64, ParseFloatError> {
    let err = |kind| ParseFloatError {
        input: s.to_string(),
        kind,
    };
    if let Some(v) = special(s) {
        return Ok(v);
    }
    let Some(number) = Number::scan(s) else {
        return Err(err(ParseFloatErrorKind::Syntax));
    };
    let v = if number.hex {
        number.hex_value()
    } else {
        // Rust's parser rounds correctly, as Go's does; the scan has already checked Go's syntax.
        number
            .cleaned
            .parse::<f64>()
            .map_err(|_| err(ParseFloatErrorKind::Syntax))?
    };
    if v.is_infinite() {
        return Err(err(ParseFloatErrorKind::Range));
    }
    Ok(v)
}

/// `Inf`, `Infinity` (optionally signed) and unsigned `NaN`, case-insensitively.
fn special(s: &str) -> Option<f64> {
    let (negative, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => {
            if s.eq_ignore_ascii_case("nan") {
                return Some(f64::NAN);
            }
            (false, s)
        }
    };
    if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        return Some(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    None
}

/// A syntactically valid Go float literal.
struct Number {
    hex: bool,
    negative: bool,
    /// Decimal: the literal without underscores (Rust's syntax). Hex: the mantissa digits.
    cleaned: String,
    /// Hex only: hex digits after the point, and the binary exponent.
    fraction_digits: usize,
    exp: i64,
}

impl Number {
    /// Go's `readFloat` grammar: `[+-] (digits [. digits] | . digits) [(e|E) [+-] digits]`, or
    /// `[+-] 0x hexdigits [. hexdigits] (p|P) [+-] digits`, with `_` only between digits (or
    /// after the base prefix), the whole string consumed.
    fn scan(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        let mut i = 0;
        let negative = b.first() == Some(&b'-');
        if matches!(b.first(), Some(b'+' | b'-')) {
            i = 1;
        }
        let hex = b.len() >= i + 2 && b[i] == b'0' && (b[i + 1] | 0x20) == b'x';
        let mut cleaned = String::with_capacity(s.len());
        if !hex && negative {
            cleaned.push('-');
        }
        if hex {
            i += 2;
        }
        let is_digit = |c: u8| c.is_ascii_digit() || (hex && c.is_ascii_hexdigit());
        let (mut saw_digits, mut saw_point, mut fraction_digits) = (false, false, 0);
        while i < b.len() {
            match b[i] {
                b'_' => {}
                b'.' if !saw_point => {
                    saw_point = true;
                    cleaned.push('.');
                }
                c if is_digit(c) => {
                    saw_digits = true;
                    if saw_point {
                        fraction_digits += 1;
                    }
                    cleaned.push(char::from(c));
                }
                _ => break,
            }
            i += 1;
        }
        if !saw_digits {
            return None;
        }
        let exp_char = if hex { b'p' } else { b'e' };
        let mut exp: i64 = 0;
        if i < b.len() && (b[i] | 0x20) == exp_char {
            i += 1;
            let exp_negative = b.get(i) == Some(&b'-');
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !b.get(i).is_some_and(u8::is_ascii_digit) {
                return None;
            }
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
                if b[i] != b'_' && exp < 100_000 {
                    exp = exp * 10 + i64::from(b[i] - b'0');
                }
                i += 1;
            }
            if exp_negative {
                exp = -exp;
            }
            if !hex {
                cleaned.push('e');
                cleaned.push_str(&exp.to_string());
            }
        } else if hex {
            return None;
        }
        if i != b.len() || (s.contains('_') && !underscores_ok(s)) {
            return None;
        }
        Some(Self {
            hex,
            negative,
            cleaned,
            fraction_digits,
            exp,
        })
    }

    /// The value of a hex literal, rounded to nearest even like Go's `atofHex`.
    fn hex_value(&self) -> f64 {
        let mut mantissa: u64 = 0;
        let mut exp = self.exp - 4 * self.fraction_digits as i64;
        let mut sticky = false;
        for c in self.cleaned.chars().filter(|c| *c != '.') {
            let d = u64::from(c.to_digit(16).unwrap_or(0));
            if mantissa < 1 << 60 {
                mantissa = mantissa * 16 + d;
            } else {
                // Digits beyond 64 bits only matter as a sticky bit for rounding.
                exp += 4;
                sticky |= d != 0;
            }
        }
        if sticky {
            mantissa |= 1;
        }
        let mut v = mantissa as f64;
        // Scale in steps that keep each factor a normal power of two.
        while exp > 1000 {
            v *= 2f64.powi(1000);
            exp -= 1000;
        }
        while exp < -1000 {
            v *= 2f64.powi(-1000);
            exp += 1000;
        }
        v *= 2f64.powi(exp as i32);
        if self.negative { -v } else { v }
    }
}

/// Go's `underscoreOK`: each `_` stands between two digits, or between the base prefix and a digit.
fn underscores_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    // What came last: '^' the start, '0' a digit or the base prefix, '_' an underscore, '!' other.
    let mut saw = b'^';
    let mut hex = false;
    if b.len() >= i + 2 && b[i] == b'0' && matches!(b[i + 1] | 0x20, b'b' | b'o' | b'x') {
        hex = (b[i + 1] | 0x20) == b'x';
        i += 2;
        saw = b'0';
    }
    for &c in &b[i..] {
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
    }
    saw != b'_'
}
