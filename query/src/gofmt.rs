//! Go's float formatting (`%g`, `%.Ng`, `strconv.FormatFloat(f, 'f', -1)`)
//! and string quoting, needed to reproduce Prometheus's messages and label
//! values byte for byte.

use std::fmt::Write;

/// Go's `%g` / `strconv.FormatFloat(f, 'g', -1, 64)`.
pub fn g(f: f64) -> String {
    if let Some(s) = special(f) {
        return s.to_string();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.2345e6".
    let e = format!("{f:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits = mant.replace(['.', '-'], "");
    // Go uses an exponent once it reaches 6 when printing the shortest form.
    format_g(f.is_sign_negative(), &digits, exp, 6)
}

/// Go's `%.{prec}g`.
pub fn g_prec(f: f64, prec: usize) -> String {
    if let Some(s) = special(f) {
        return s.to_string();
    }
    let prec = prec.max(1);
    let e = format!("{:.*e}", prec - 1, f);
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits = mant.replace(['.', '-'], "");
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    format_g(f.is_sign_negative(), &digits, exp, prec as i32)
}

fn special(f: f64) -> Option<&'static str> {
    if f.is_nan() {
        Some("NaN")
    } else if f == f64::INFINITY {
        Some("+Inf")
    } else if f == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

/// Lays out significant `digits` with decimal exponent `exp` (value =
/// 0.d1d2... * 10^(exp+1)) the way Go's %g does for threshold `eprec`.
fn format_g(neg: bool, digits: &str, exp: i32, eprec: i32) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if exp < -4 || exp >= eprec {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exp.abs());
        return out;
    }
    // Plain notation.
    let point = exp + 1; // digits before the decimal point
    if point <= 0 {
        out.push_str("0.");
        for _ in 0..(-point) {
            out.push('0');
        }
        out.push_str(digits);
    } else if point as usize >= digits.len() {
        out.push_str(digits);
        for _ in 0..(point as usize - digits.len()) {
            out.push('0');
        }
    } else {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    }
    out
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: shortest digits, never an exponent.
pub fn f_shortest(f: f64) -> String {
    if let Some(s) = special(f) {
        return s.to_string();
    }
    // Rust's Display is shortest round-trip and never uses an exponent.
    let s = format!("{f}");
    if s == "-0" { "-0".to_string() } else { s }
}

/// Go's `strconv.Quote`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    let _ = fenghuo_storage::model::labels::write_go_quoted(&mut out, s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_matches_go() {
        assert_eq!(g(1.0), "1");
        assert_eq!(g(-1.1), "-1.1");
        assert_eq!(g(0.5), "0.5");
        assert_eq!(g(1e6), "1e+06");
        assert_eq!(g(123456.0), "123456");
        assert_eq!(g(1234567.0), "1.234567e+06");
        assert_eq!(g(0.0001), "0.0001");
        assert_eq!(g(0.00001), "1e-05");
        assert_eq!(g(f64::NAN), "NaN");
        assert_eq!(g(f64::INFINITY), "+Inf");
        assert_eq!(g(100.0), "100");
    }

    #[test]
    fn g_prec_matches_go() {
        assert_eq!(g_prec(0.5, 2), "0.5");
        assert_eq!(g_prec(12.0, 2), "12");
        assert_eq!(g_prec(123.0, 2), "1.2e+02");
        assert_eq!(g_prec(0.123456, 2), "0.12");
    }

    #[test]
    fn f_shortest_matches_go() {
        assert_eq!(f_shortest(1.0), "1");
        assert_eq!(f_shortest(0.1), "0.1");
        assert_eq!(f_shortest(1e21), "1000000000000000000000");
        assert_eq!(f_shortest(f64::NEG_INFINITY), "-Inf");
    }
}
