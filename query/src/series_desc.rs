//! Prometheus's series description notation (`parser.ParseSeriesDesc`), shared by the
//! promqltest runner and the ruler's `fenghuo test rules`: `metric{labels} values...` where a value
//! is a number, `_` (omitted), `stale`, a run (`1+2x3`, `_x3`) or a native histogram
//! (`{{schema:0 sum:5 count:4 buckets:[1 2 1]}}`, optionally `{{...}}+{{...}}x3`), and the reverse
//! direction: [`histogram_test_expression`] prints a histogram in that notation
//! (`FloatHistogram.TestExpression`).

use fenghuo_storage_api::model::{BucketSpan, CounterResetHint, FloatHistogram, Label, Labels, stale_nan};

/// One value of a series description.
#[derive(Clone, Debug)]
pub struct SeqValue {
    pub omitted: bool,
    pub value: f64,
    pub histogram: Option<FloatHistogram>,
    /// The histogram stated its counter-reset hint explicitly.
    pub hint_set: bool,
}

impl SeqValue {
    pub fn float(v: f64) -> Self {
        Self {
            omitted: false,
            value: v,
            histogram: None,
            hint_set: false,
        }
    }
    pub fn omitted() -> Self {
        Self {
            omitted: true,
            value: 0.0,
            histogram: None,
            hint_set: false,
        }
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)` falling back to `ParseFloat`.
pub fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    if let Some(i) = parse_go_int(t) {
        return Some(i as f64);
    }
    fenghuo_gofmt::parse_float(t).ok()
}

fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let body = body.replace('_', "");
    let lower = body.to_ascii_lowercase();
    let v = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else if lower.len() > 1 && lower.starts_with('0') {
        i64::from_str_radix(&lower[1..], 8).ok()?
    } else {
        if !lower.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        lower.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// Go's `strconv.Unquote` for `"…"`, `'…'` and `` `…` `` literals; returns
/// the value and the bytes consumed.
pub fn unquote_prefix(s: &str) -> Option<(String, usize)> {
    let b = s.as_bytes();
    let q = *b.first()?;
    if q == b'`' {
        let end = s[1..].find('`')? + 1;
        return Some((s[1..end].to_string(), end + 1));
    }
    if q != b'"' && q != b'\'' {
        return None;
    }
    let mut out: Vec<u8> = Vec::new();
    let mut i = 1;
    while i < b.len() {
        let c = b[i];
        if c == q {
            return Some((String::from_utf8_lossy(&out).into_owned(), i + 1));
        }
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let e = *b.get(i)?;
        i += 1;
        match e {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'\\' => out.push(b'\\'),
            b'"' => out.push(b'"'),
            b'\'' => out.push(b'\''),
            b'x' => {
                let h = s.get(i..i + 2)?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            b'u' | b'U' => {
                let n = if e == b'u' { 4 } else { 8 };
                let h = s.get(i..i + n)?;
                let ch = char::from_u32(u32::from_str_radix(h, 16).ok()?)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                i += n;
            }
            b'0'..=b'7' => {
                let h = s.get(i - 1..i + 2)?;
                out.push(u8::from_str_radix(h, 8).ok()?);
                i += 2;
            }
            _ => return None,
        }
    }
    None
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

/// Parses `name{labels}` at the start of `s`; returns labels and the rest.
pub fn parse_metric(s: &str) -> Result<(Labels, &str), String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut labels: Vec<Label> = Vec::new();
    if i < b.len() && is_name_start(b[i]) {
        while i < b.len() && is_name_char(b[i]) {
            i += 1;
        }
        labels.push(Label::new("__name__", &s[..i]));
    }
    if i < b.len() && b[i] == b'{' {
        i += 1;
        loop {
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t' || b[i] == b',') {
                i += 1;
            }
            if i >= b.len() {
                return Err("unterminated label set".into());
            }
            if b[i] == b'}' {
                i += 1;
                break;
            }
            let name = if matches!(b[i], b'"' | b'\'' | b'`') {
                let (n, used) = unquote_prefix(&s[i..]).ok_or("bad quoted label name")?;
                i += used;
                n
            } else {
                let st = i;
                while i < b.len() && (is_name_char(b[i]) || b[i] == b'.') {
                    i += 1;
                }
                if st == i {
                    return Err(format!("unexpected character {:?} in label set", b[i] as char));
                }
                s[st..i].to_string()
            };
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            if i < b.len() && b[i] == b'=' {
                i += 1;
                while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                    i += 1;
                }
                let (v, used) = unquote_prefix(&s[i..]).ok_or("bad label value")?;
                i += used;
                labels.push(Label::new(name, v));
            } else {
                labels.push(Label::new("__name__", name));
            }
        }
    }
    if i == 0 {
        return Err(format!("cannot parse metric in {s:?}"));
    }
    Ok((Labels::new(labels), &s[i..]))
}

/// Splits a value sequence into items; `{{…}}` blocks may contain spaces.
fn split_items(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            if b[i] == b'{' && b.get(i + 1) == Some(&b'{') {
                match s[i..].find("}}") {
                    Some(j) => i += j + 2,
                    None => i = b.len(),
                }
            } else {
                i += 1;
            }
        }
        out.push(&s[start..i]);
    }
    out
}

/// Reads a number at the start of `s` (sign, digits, fraction, exponent, Inf/NaN).
fn number_prefix(s: &str) -> Option<(f64, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let rest = &s[i..];
    for word in ["inf", "nan"] {
        if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(word) {
            // The sign applies to the word, so `-NaN` is accepted as in Prometheus's series notation.
            let v = fenghuo_gofmt::parse_float(&rest[..3]).ok()?;
            let v = if s.starts_with('-') { -v } else { v };
            return Some((v, &s[i + 3..]));
        }
    }
    let st = i;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i == st {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    let v = fenghuo_gofmt::parse_float(&s[..i]).ok()?;
    Some((v, &s[i..]))
}

fn parse_times(s: &str) -> Option<u64> {
    s.strip_prefix('x')?.parse().ok()
}

fn parse_item(item: &str, out: &mut Vec<SeqValue>) -> Result<(), String> {
    if item == "_" {
        out.push(SeqValue::omitted());
        return Ok(());
    }
    if let Some(n) = item.strip_prefix("_x") {
        let n: u64 = n.parse().map_err(|_| format!("bad repeat in {item:?}"))?;
        out.extend((0..n).map(|_| SeqValue::omitted()));
        return Ok(());
    }
    if item == "stale" {
        out.push(SeqValue::float(stale_nan()));
        return Ok(());
    }
    if item.starts_with("{{") {
        let end = item.find("}}").ok_or("unterminated histogram")? + 2;
        let (a, a_hint) = parse_histogram(&item[2..end - 2])?;
        let rest = &item[end..];
        if rest.is_empty() {
            out.push(SeqValue {
                omitted: false,
                value: 0.0,
                histogram: Some(a),
                hint_set: a_hint,
            });
            return Ok(());
        }
        if let Some(n) = parse_times(rest) {
            for _ in 0..=n {
                out.push(SeqValue {
                    omitted: false,
                    value: 0.0,
                    histogram: Some(a.clone()),
                    hint_set: a_hint,
                });
            }
            return Ok(());
        }
        let (sign, rest) = match rest.as_bytes()[0] {
            b'+' => (1.0, &rest[1..]),
            b'-' => (-1.0, &rest[1..]),
            _ => return Err(format!("bad histogram item {item:?}")),
        };
        let end_b = rest.find("}}").ok_or("unterminated histogram")? + 2;
        let (inc, b_hint) = parse_histogram(&rest[2..end_b - 2])?;
        let n = parse_times(&rest[end_b..]).ok_or_else(|| format!("bad histogram repeat in {item:?}"))?;
        let mut cur = a;
        out.push(SeqValue {
            omitted: false,
            value: 0.0,
            histogram: Some(cur.clone()),
            hint_set: b_hint,
        });
        for _ in 0..n {
            let mut next = cur.clone();
            let res = if sign > 0.0 {
                crate::histogram::add(&mut next, &inc)
            } else {
                crate::histogram::sub(&mut next, &inc)
            };
            res.map_err(|e| e.to_string())?;
            cur = next;
            out.push(SeqValue {
                omitted: false,
                value: 0.0,
                histogram: Some(cur.clone()),
                hint_set: b_hint,
            });
        }
        return Ok(());
    }
    let (v, rest) = number_prefix(item).ok_or_else(|| format!("bad value {item:?}"))?;
    if rest.is_empty() {
        out.push(SeqValue::float(v));
        return Ok(());
    }
    if let Some(n) = parse_times(rest) {
        out.extend((0..=n).map(|_| SeqValue::float(v)));
        return Ok(());
    }
    if rest.starts_with('+') || rest.starts_with('-') {
        let (inc, rest2) = number_prefix(rest).ok_or_else(|| format!("bad increment in {item:?}"))?;
        let n = parse_times(rest2).ok_or_else(|| format!("bad repeat in {item:?}"))?;
        let mut cur = v;
        for _ in 0..=n {
            out.push(SeqValue::float(cur));
            cur += inc;
        }
        return Ok(());
    }
    Err(format!("bad value {item:?}"))
}

/// Parses the inside of `{{…}}`; returns the histogram and whether the
/// counter-reset hint was given.
pub fn parse_histogram(s: &str) -> Result<(FloatHistogram, bool), String> {
    let mut h = FloatHistogram::default();
    let mut hint_set = false;
    let (mut buckets, mut offset, mut nbuckets, mut noffset) = (Vec::new(), 0i32, Vec::new(), 0i32);
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let ks = i;
        while i < b.len() && b[i] != b':' {
            i += 1;
        }
        let key = s[ks..i].trim();
        i += 1;
        let val: &str = if i < b.len() && b[i] == b'[' {
            let e = s[i..].find(']').ok_or("unterminated bucket list")? + i;
            let v = &s[i + 1..e];
            i = e + 1;
            v
        } else {
            let vs = i;
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            &s[vs..i]
        };
        let num = |v: &str| parse_number(v).ok_or_else(|| format!("bad number {v:?} for {key}"));
        let list = |v: &str| -> Result<Vec<f64>, String> { v.split_whitespace().map(num).collect() };
        match key {
            "schema" => h.schema = num(val)? as i32,
            "sum" => h.sum = num(val)?,
            "count" => h.count = num(val)?,
            "z_bucket" => h.zero_count = num(val)?,
            "z_bucket_w" => h.zero_threshold = num(val)?,
            "custom_values" => h.custom_values = list(val)?,
            "buckets" => buckets = list(val)?,
            "offset" => offset = num(val)? as i32,
            "n_buckets" => nbuckets = list(val)?,
            "n_offset" => noffset = num(val)? as i32,
            "counter_reset_hint" => {
                hint_set = true;
                h.counter_reset_hint = match val {
                    "unknown" => CounterResetHint::Unknown,
                    "reset" => CounterResetHint::CounterReset,
                    "not_reset" => CounterResetHint::NotCounterReset,
                    "gauge" => CounterResetHint::Gauge,
                    _ => return Err(format!("bad counter_reset_hint {val:?}")),
                }
            }
            _ => return Err(format!("unknown histogram key {key:?}")),
        }
    }
    if !buckets.is_empty() {
        h.positive_spans = vec![BucketSpan {
            offset,
            length: buckets.len() as u32,
        }];
        h.positive_buckets = buckets;
    }
    if !nbuckets.is_empty() {
        h.negative_spans = vec![BucketSpan {
            offset: noffset,
            length: nbuckets.len() as u32,
        }];
        h.negative_buckets = nbuckets;
    }
    Ok((h, hint_set))
}

/// Parses `metric values…`.
pub fn parse_series(line: &str) -> Result<(Labels, Vec<SeqValue>), String> {
    let (labels, rest) = parse_metric(line.trim())?;
    let mut values = Vec::new();
    for item in split_items(rest) {
        parse_item(item, &mut values)?;
    }
    Ok((labels, values))
}

/// `Compact(math.MaxInt)` of one side: one span from the first to the last non-empty bucket
/// (empty buckets in between are kept, gaps between spans are filled with zeros).
fn compact_side(spans: &[BucketSpan], buckets: &[f64]) -> (Option<i32>, Vec<f64>) {
    let b = crate::histogram::buckets::sparse(spans, buckets);
    let nonzero: Vec<&(i32, f64)> = b.iter().filter(|(_, c)| *c != 0.0).collect();
    let (Some(first), Some(last)) = (nonzero.first(), nonzero.last()) else {
        return (None, Vec::new());
    };
    let (lo, hi) = (first.0, last.0);
    let mut dense = vec![0.0; (i64::from(hi) - i64::from(lo) + 1) as usize];
    for (i, c) in &b {
        if (lo..=hi).contains(i) {
            dense[(i - lo) as usize] += c;
        }
    }
    (Some(lo), dense)
}

fn go_float_list(v: &[f64]) -> String {
    v.iter()
        .map(|f| crate::gofmt::g(*f))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A histogram in series notation, as `FloatHistogram.TestExpression` prints it (what promtool
/// shows for histogram samples): `{{schema:1 count:4 sum:5 offset:-1 buckets:[1 2 1]}}`.
pub fn histogram_test_expression(h: &FloatHistogram) -> String {
    let g = crate::gofmt::g;
    let mut res: Vec<String> = Vec::new();
    if h.schema != 0 {
        res.push(format!("schema:{}", h.schema));
    }
    if h.count != 0.0 {
        res.push(format!("count:{}", g(h.count)));
    }
    if h.sum != 0.0 {
        res.push(format!("sum:{}", g(h.sum)));
    }
    if h.zero_count != 0.0 {
        res.push(format!("z_bucket:{}", g(h.zero_count)));
    }
    if h.zero_threshold != 0.0 {
        res.push(format!("z_bucket_w:{}", g(h.zero_threshold)));
    }
    if h.uses_custom_buckets() {
        res.push(format!("custom_values:[{}]", go_float_list(&h.custom_values)));
    }
    match h.counter_reset_hint {
        CounterResetHint::Unknown => {}
        CounterResetHint::CounterReset => res.push("counter_reset_hint:reset".into()),
        CounterResetHint::NotCounterReset => res.push("counter_reset_hint:not_reset".into()),
        CounterResetHint::Gauge => res.push("counter_reset_hint:gauge".into()),
    }
    for (spans, buckets, bkey, okey) in [
        (&h.positive_spans, &h.positive_buckets, "buckets", "offset"),
        (&h.negative_spans, &h.negative_buckets, "n_buckets", "n_offset"),
    ] {
        let (offset, dense) = compact_side(spans, buckets);
        if let Some(o) = offset
            && o != 0
        {
            res.push(format!("{okey}:{o}"));
        }
        if !dense.is_empty() {
            res.push(format!("{bkey}:[{}]", go_float_list(&dense)));
        }
    }
    format!("{{{{{}}}}}", res.join(" "))
}

/// A histogram as `FloatHistogram.String` prints it (what `{{ $value }}` renders for a histogram
/// sample): `{count:4, sum:5, [-2,-1):1, [-0.001,0.001]:2, (0.5,1]:1}`.
pub use crate::histogram::to_go_string as histogram_string;

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(text: &str) -> FloatHistogram {
        let (_, v) = parse_series(&format!("{{}} {text}")).unwrap_or_else(|e| panic!("{e}"));
        v[0].histogram.clone().unwrap_or_default()
    }

    #[test]
    fn test_expression_round_trips_and_compacts() {
        for text in [
            "{{schema:1 count:4 sum:5 offset:-1 buckets:[1 2 1]}}",
            "{{count:3 z_bucket:1 z_bucket_w:0.001 n_offset:2 n_buckets:[1 0 1]}}",
            "{{schema:-53 count:2 sum:3 custom_values:[1 5 10] buckets:[1 1]}}",
            "{{count:1 counter_reset_hint:gauge buckets:[1]}}",
            "{{}}",
        ] {
            assert_eq!(histogram_test_expression(&hist(text)), text);
        }
        // Leading and trailing empty buckets go, the offset moves with them.
        assert_eq!(
            histogram_test_expression(&hist("{{count:2 offset:1 buckets:[0 1 0 1 0]}}")),
            "{{count:2 offset:2 buckets:[1 0 1]}}"
        );
    }

    #[test]
    fn string_lists_non_empty_buckets_with_bounds() {
        assert_eq!(
            histogram_string(&hist(
                "{{count:6 sum:5 z_bucket:2 z_bucket_w:0.001 buckets:[1 0 2] n_buckets:[1]}}"
            )),
            "{count:6, sum:5, [-1,-0.5):1, [-0.001,0.001]:2, (0.5,1]:1, (2,4]:2}"
        );
        assert_eq!(
            histogram_string(&hist(
                "{{schema:-53 count:2 sum:3 custom_values:[1 5] buckets:[1 0 1]}}"
            )),
            "{count:2, sum:3, [-Inf,1]:1, (5,+Inf]:1}"
        );
    }
}
