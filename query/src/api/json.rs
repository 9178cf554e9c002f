//! JSON encoding of API responses exactly as Prometheus writes them: Go's
//! string escaping (HTML-safe), timestamps as seconds with millisecond
//! fractions, sample values as strings in Go's shortest float format, and
//! native histograms as `{count, sum, buckets}`.

use std::fmt::Write as _;

use fenghuo_storage::model::{FloatHistogram, Labels};

/// Appends `s` as a JSON string the way Go's `encoding/json` does: `<`, `>`
/// and `&` escaped as `\u003c`…, U+2028/U+2029 escaped, invalid code points
/// impossible (Rust strings are UTF-8).
pub fn write_str(out: &mut String, s: &str) {
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

/// Go's `strconv.FormatFloat(f, 'f' or 'e', -1, 64)` as Prometheus uses it
/// for sample values: fixed notation unless |f| < 1e-6 or |f| >= 1e21.
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust: "1.5e-7"; Go: "1.5e-07" (at least two exponent digits, signed).
        let s = format!("{f:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        return format!("{mantissa}e{sign}{digits:0>2}");
    }
    // Rust's Display is the shortest round-tripping fixed representation,
    // like Go's 'f' with precision -1. Negative zero prints as "-0" in both.
    format!("{f}")
}

/// Appends a value as a JSON string (`"1.5"`, `"NaN"`, `"+Inf"`).
pub fn write_float(out: &mut String, f: f64) {
    out.push('"');
    out.push_str(&format_float(f));
    out.push('"');
}

/// Appends a millisecond timestamp as Prometheus does: seconds, with the
/// millisecond fraction only when non-zero (`1435781451.781`, `10`).
pub fn write_timestamp(out: &mut String, t: i64) {
    let mut t = i128::from(t);
    if t < 0 {
        out.push('-');
        t = -t;
    }
    let _ = write!(out, "{}", t / 1000);
    let fraction = t % 1000;
    if fraction != 0 {
        let _ = write!(out, ".{fraction:03}");
    }
}

pub fn write_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, &l.name);
        out.push(':');
        write_str(out, &l.value);
    }
    out.push('}');
}

/// `{"count":"…","sum":"…","buckets":[[boundary_rule,"lower","upper","count"],…]}`
/// where the rule is 0 = (lower, upper], 1 = [lower, upper), 2 = (lower,
/// upper), 3 = [lower, upper]; empty buckets are left out.
pub fn write_histogram(out: &mut String, h: &FloatHistogram) {
    out.push_str("{\"count\":");
    write_float(out, h.count);
    out.push_str(",\"sum\":");
    write_float(out, h.sum);
    let mut first = true;
    for b in h.all_buckets() {
        if b.count == 0.0 {
            continue;
        }
        out.push_str(if first { ",\"buckets\":[" } else { "," });
        first = false;
        let rule = match (b.lower_inclusive, b.upper_inclusive) {
            (false, true) => 0,
            (true, false) => 1,
            (false, false) => 2,
            (true, true) => 3,
        };
        let _ = write!(out, "[{rule},");
        write_float(out, b.lower);
        out.push(',');
        write_float(out, b.upper);
        out.push(',');
        write_float(out, b.count);
        out.push(']');
    }
    if !first {
        out.push(']');
    }
    out.push('}');
}

/// Appends `["a","b"]`.
pub fn write_str_array<'a>(out: &mut String, items: impl IntoIterator<Item = &'a str>) {
    out.push('[');
    for (i, s) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, s);
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_format_like_go() {
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(0.1), "0.1");
        assert_eq!(format_float(-2.5), "-2.5");
        assert_eq!(format_float(1e20), "100000000000000000000");
        assert_eq!(format_float(1e21), "1e+21");
        assert_eq!(format_float(1.5e-7), "1.5e-07");
        assert_eq!(format_float(0.000001), "0.000001");
        assert_eq!(format_float(123456789.123), "123456789.123");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(1e100), "1e+100");
    }

    #[test]
    fn timestamps_format_like_prometheus() {
        let f = |t| {
            let mut s = String::new();
            write_timestamp(&mut s, t);
            s
        };
        assert_eq!(f(1_435_781_451_781), "1435781451.781");
        assert_eq!(f(10_000), "10");
        assert_eq!(f(10_050), "10.050");
        assert_eq!(f(-1_500), "-1.500");
        assert_eq!(f(5), "0.005");
    }

    #[test]
    fn strings_escape_like_go() {
        let mut s = String::new();
        write_str(&mut s, "a<b>&\"\n\u{1}");
        assert_eq!(s, r#""a\u003cb\u003e\u0026\"\n\u0001""#);
    }
}
