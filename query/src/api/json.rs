//! JSON encoding of API responses exactly as Prometheus writes them: Go's
//! string escaping (HTML-safe), timestamps as seconds with millisecond
//! fractions, sample values as strings in Go's shortest float format, and
//! native histograms as `{count, sum, buckets}`.

use std::fmt::Write as _;

use fenghuo_storage_api::model::{FloatHistogram, Labels};

/// Appends `s` as a JSON string the way Go's `encoding/json` does (HTML-safe escaping).
pub use fenghuo_gofmt::write_json_string as write_str;

/// Appends a sample value as a JSON string the way Prometheus does (`"1.5"`, `"1e-07"`,
/// `"NaN"`, `"+Inf"`).
pub fn write_float(out: &mut String, f: f64) {
    out.push('"');
    fenghuo_gofmt::append_sample_value(out, f);
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
    fn floats_are_json_strings_of_prometheus_values() {
        let f = |v| {
            let mut s = String::new();
            write_float(&mut s, v);
            s
        };
        assert_eq!(f(1e20), r#""100000000000000000000""#);
        assert_eq!(f(1.5e-7), r#""1.5e-07""#);
        assert_eq!(f(f64::INFINITY), r#""+Inf""#);
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
