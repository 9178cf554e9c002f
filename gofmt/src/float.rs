//! `strconv.FormatFloat(f, fmt, prec, 64)` for the formats fenghuo needs (`e`, `E`, `f`, `g`,
//! `G`, with a precision or the shortest round-trip form, `-1`), plus the shorthands the
//! callers use most: `%v`/`%g` ([`g`]), `%.Ng` ([`g_prec`]) and `'f', -1` ([`f_shortest`]).
//!
//! Rust's float formatting already yields the digits Go yields: `{:e}` the shortest digits that
//! round-trip (closest to the exact value, like Go's Ryū), `{:.N}`/`{:.Ne}` the exactly rounded
//! ones (ties to even, like Go's decimal rounding). What differs is only the layout: Go writes
//! `e+06` where Rust writes `e6`, and Go's `%g` chooses between the two notations by exponent.

use std::fmt::Write as _;

/// `strconv.FormatFloat(f, fmt, prec, 64)`.
///
/// `fmt` is one of `b'e'`, `b'E'`, `b'f'`, `b'g'`, `b'G'`; `prec` < 0 asks for the fewest digits
/// that read back as `f`. Like Go, NaN and infinities print as `NaN`, `+Inf` and `-Inf` whatever
/// the format, and an unknown format prints as `%` followed by it.
pub fn format_float(f: f64, fmt: u8, prec: i32) -> String {
    let mut out = String::new();
    append_float(&mut out, f, fmt, prec);
    out
}

/// [`format_float`] appending to `out` (Go's `strconv.AppendFloat`).
pub fn append_float(out: &mut String, f: f64, fmt: u8, prec: i32) {
    if f.is_nan() {
        out.push_str("NaN");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    let prec = usize::try_from(prec).ok();
    match fmt {
        b'f' => {
            // Display never uses an exponent and, without a precision, gives the shortest
            // round-trip digits; both print negative zero as "-0" like Go.
            let _ = match prec {
                Some(p) => write!(out, "{f:.p$}"),
                None => write!(out, "{f}"),
            };
        }
        b'e' | b'E' => {
            // The mantissa of `{:e}` already has Go's digits (padded to the precision).
            let s = match prec {
                Some(p) => format!("{f:.p$e}"),
                None => format!("{f:e}"),
            };
            let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
            out.push_str(mantissa);
            push_exponent(out, exp.parse().unwrap_or(0), fmt == b'E');
        }
        b'g' | b'G' => {
            let d = match prec {
                // Go: "if precision was the shortest possible, use precision 6 for this decision".
                None => (Digits::shortest(f), 6),
                // %.0g is %.1g.
                Some(p) => {
                    let p = p.max(1);
                    (Digits::rounded(f, p.min(MAX_SIGNIFICANT_DIGITS)), p)
                }
            };
            let (digits, eprec) = d;
            let eprec = i32::try_from(eprec).unwrap_or(i32::MAX);
            if digits.exp < -4 || digits.exp >= eprec {
                digits.push_e(out, fmt == b'G');
            } else {
                digits.push_plain(out);
            }
        }
        other => {
            out.push('%');
            out.push(char::from(other));
        }
    }
}

/// More significant digits than any float64's exact decimal expansion has (at most 767): `%g`
/// drops trailing zeros, so rounding to this many is the same as rounding to any larger precision,
/// and a template's `%.999999999g` costs nothing.
const MAX_SIGNIFICANT_DIGITS: usize = 800;

/// Go's `%v` and `%g` of a float64: `strconv.FormatFloat(f, 'g', -1, 64)` (`1e+06`, `0.0001`, `1e-05`).
pub fn g(f: f64) -> String {
    format_float(f, b'g', -1)
}

/// Go's `%.{prec}g`: at most `prec` significant digits, trailing zeros dropped (0 counts as 1).
pub fn g_prec(f: f64, prec: usize) -> String {
    format_float(f, b'g', i32::try_from(prec).unwrap_or(i32::MAX))
}

/// `strconv.FormatFloat(f, 'f', -1, 64)`: shortest round-trip digits, never an exponent.
pub fn f_shortest(f: f64) -> String {
    format_float(f, b'f', -1)
}

/// Go's exponent: a sign and at least two digits (`e+06`, `e-324`).
fn push_exponent(out: &mut String, exp: i32, upper: bool) {
    out.push(if upper { 'E' } else { 'e' });
    out.push(if exp < 0 { '-' } else { '+' });
    let _ = write!(out, "{:02}", exp.unsigned_abs());
}

/// A finite float as significant decimal digits without trailing zeros (`"0"` for zero) and the
/// decimal exponent of the first one: the value is `d.ddd × 10^exp`.
struct Digits {
    negative: bool,
    digits: String,
    exp: i32,
}

impl Digits {
    /// The shortest digits that round-trip.
    fn shortest(f: f64) -> Self {
        Self::parse(f, &format!("{:e}", f.abs()))
    }

    /// `significant` digits, exactly rounded (ties to even).
    fn rounded(f: f64, significant: usize) -> Self {
        Self::parse(f, &format!("{:.*e}", significant.saturating_sub(1), f.abs()))
    }

    fn parse(f: f64, e: &str) -> Self {
        let (mantissa, exp) = e.split_once('e').unwrap_or((e, "0"));
        let mut digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
        while digits.len() > 1 && digits.ends_with('0') {
            digits.pop();
        }
        Self {
            negative: f.is_sign_negative(),
            digits,
            exp: exp.parse().unwrap_or(0),
        }
    }

    /// `d.ddde±XX`.
    fn push_e(&self, out: &mut String, upper: bool) {
        if self.negative {
            out.push('-');
        }
        out.push_str(&self.digits[..1]);
        if self.digits.len() > 1 {
            out.push('.');
            out.push_str(&self.digits[1..]);
        }
        push_exponent(out, self.exp, upper);
    }

    /// Plain notation with exactly the significant digits (`123000`, `0.00012`, `1.5`).
    fn push_plain(&self, out: &mut String) {
        if self.negative {
            out.push('-');
        }
        let digits = self.digits.as_str();
        // Digits before the decimal point; `exp` is small here (-4 ..= precision).
        let point = i64::from(self.exp) + 1;
        if point <= 0 {
            out.push_str("0.");
            for _ in 0..-point {
                out.push('0');
            }
            out.push_str(digits);
        } else {
            let point = usize::try_from(point).unwrap_or(usize::MAX);
            if point >= digits.len() {
                out.push_str(digits);
                for _ in digits.len()..point {
                    out.push('0');
                }
            } else {
                out.push_str(&digits[..point]);
                out.push('.');
                out.push_str(&digits[point..]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthands_are_strconv_forms() {
        assert_eq!(g(1e6), "1e+06");
        assert_eq!(g(123456.0), "123456");
        assert_eq!(g(0.00001), "1e-05");
        assert_eq!(g(-0.0), "-0");
        assert_eq!(g_prec(123.0, 2), "1.2e+02");
        assert_eq!(g_prec(0.5, 0), "0.5");
        assert_eq!(f_shortest(1e21), "1000000000000000000000");
        assert_eq!(f_shortest(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn unknown_formats_print_like_go() {
        assert_eq!(format_float(1.0, b'q', -1), "%q");
        assert_eq!(format_float(f64::NAN, b'q', -1), "NaN");
    }

    #[test]
    fn huge_precisions_do_not_panic() {
        assert_eq!(format_float(1.0, b'g', i32::MAX).len(), 1);
        assert_eq!(
            g_prec(0.1, usize::MAX),
            "0.1000000000000000055511151231257827021181583404541015625"
        );
    }
}
