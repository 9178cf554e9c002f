//! Parsing of the promqltest file language (`FORMAT.md`): commands, series
//! descriptions (value sequences, native histograms) and expectations.

use fenghuo_storage::model::{BucketSpan, CounterResetHint, FloatHistogram, Label, Labels, stale_nan};

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
    fn float(v: f64) -> Self {
        Self {
            omitted: false,
            value: v,
            histogram: None,
            hint_set: false,
        }
    }
    fn omitted() -> Self {
        Self {
            omitted: true,
            value: 0.0,
            histogram: None,
            hint_set: false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ExpectCmd {
    pub message: Option<String>,
    pub regex: Option<regex::Regex>,
}

impl ExpectCmd {
    pub fn matches(&self, s: &str) -> bool {
        match (&self.message, &self.regex) {
            (Some(m), _) => m == s,
            (None, Some(r)) => r.is_match(s),
            (None, None) => true,
        }
    }
    pub fn describe(&self) -> String {
        match (&self.message, &self.regex) {
            (Some(m), _) => format!("message {m:?}"),
            (None, Some(r)) => format!("pattern {:?}", r.as_str()),
            (None, None) => "anything".into(),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Expects {
    pub ordered: bool,
    pub fail: Vec<ExpectCmd>,
    pub warn: Vec<ExpectCmd>,
    pub no_warn: bool,
    pub info: Vec<ExpectCmd>,
    pub no_info: bool,
}

#[derive(Clone, Debug)]
pub struct ExpectedSeries {
    pub labels: Labels,
    pub pos: usize,
    pub values: Vec<SeqValue>,
}

#[derive(Clone, Debug)]
pub struct EvalCmd {
    /// 1-based line of the eval command.
    pub line: usize,
    pub expr: String,
    pub is_range: bool,
    pub start: i64,
    pub end: i64,
    pub step: i64,
    /// Evaluation time of an instant query (the range end for `expect range vector`).
    pub eval_time: i64,
    pub fail: bool,
    pub warn: bool,
    pub info: bool,
    pub expects: Expects,
    pub expected_fail_message: Option<String>,
    pub expected_fail_regexp: Option<regex::Regex>,
    pub expect_scalar: Option<f64>,
    pub expected: Vec<ExpectedSeries>,
    pub expected_string: Option<String>,
    pub exclude_from_range_query: bool,
    pub expect_range_vector: bool,
    /// The expected output mentions a native histogram.
    pub has_histogram_literal: bool,
}

impl EvalCmd {
    pub fn is_fail(&self) -> bool {
        self.fail || !self.expects.fail.is_empty()
    }
    pub fn is_ordered(&self) -> bool {
        self.expects.ordered
    }
}

#[derive(Clone, Debug)]
pub struct LoadCmd {
    pub line: usize,
    pub gap: i64,
    pub with_nhcb: bool,
    pub series: Vec<(Labels, Vec<SeqValue>)>,
}

#[derive(Clone, Debug)]
pub enum Command {
    Clear,
    Load(LoadCmd),
    Eval(Box<EvalCmd>),
    /// An eval line the runner could not read (reported as a failure).
    Broken {
        line: usize,
        reason: String,
    },
}

/// Parses a Prometheus duration (`1m30s`, `10s53ms`, `0`, `-5m`).
pub fn parse_duration(s: &str) -> Option<i64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut total: i64 = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return None;
        }
        let n: i64 = s[start..i].parse().ok()?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let mult = match &s[ustart..i] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(mult)?)?;
    }
    Some(if neg { -total } else { total })
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
    parse_go_float(t)
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

/// Go's `strconv.ParseFloat` (decimal, hex floats, Inf/NaN).
pub fn parse_go_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    let (neg, body) = match lower.as_bytes().first()? {
        b'-' => (true, &lower[1..]),
        b'+' => (false, &lower[1..]),
        _ => (false, lower.as_str()),
    };
    let v = match body {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        _ if body.starts_with("0x") => parse_hex_float(body)?,
        _ => {
            if !body
                .bytes()
                .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'+' | b'-' | b'_'))
            {
                return None;
            }
            body.replace('_', "").parse::<f64>().ok()?
        }
    };
    Some(if neg { -v } else { v })
}

fn parse_hex_float(s: &str) -> Option<f64> {
    let rest = s.strip_prefix("0x")?;
    let (mant, exp) = match rest.find('p') {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i32>().ok()?),
        None => (rest, 0),
    };
    let (ip, fp) = mant.split_once('.').unwrap_or((mant, ""));
    let mut v = 0f64;
    for c in ip.chars().filter(|c| *c != '_') {
        v = v * 16.0 + c.to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for c in fp.chars() {
        v += c.to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    Some(v * 2f64.powi(exp))
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
            let v = parse_go_float(&s[..i + 3])?;
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
    let v = parse_go_float(&s[..i])?;
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
                fenghuo_query::histogram::add(&mut next, &inc)
            } else {
                fenghuo_query::histogram::sub(&mut next, &inc)
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

fn parse_expect(line: &str) -> Result<(String, ExpectCmd), String> {
    let rest = line
        .trim()
        .strip_prefix("expect")
        .ok_or("not an expect line")?
        .trim_start();
    let (kind, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !matches!(kind, "ordered" | "fail" | "warn" | "no_warn" | "info" | "no_info") {
        return Err(format!("invalid expected error/annotation type {kind}"));
    }
    let tail = tail.trim();
    let cmd = if tail.is_empty() {
        ExpectCmd {
            message: None,
            regex: None,
        }
    } else if let Some(m) = tail.strip_prefix("msg:") {
        ExpectCmd {
            message: Some(m.trim().to_string()),
            regex: None,
        }
    } else if let Some(r) = tail.strip_prefix("regex:") {
        ExpectCmd {
            message: None,
            regex: Some(regex::Regex::new(r.trim()).map_err(|e| e.to_string())?),
        }
    } else {
        return Err(format!("invalid expect statement {line:?}"));
    };
    Ok((kind.to_string(), cmd))
}

/// Splits `eval…` into its parts (the regexes of Prometheus's test.go).
fn parse_eval_header(line: &str, lineno: usize) -> Result<EvalCmd, String> {
    let re_instant =
        regex::Regex::new(r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$")
            .map_err(|e| e.to_string())?;
    let re_range = regex::Regex::new(
        r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$",
    )
    .map_err(|e| e.to_string())?;
    let mut cmd = EvalCmd {
        line: lineno,
        expr: String::new(),
        is_range: false,
        start: 0,
        end: 0,
        step: 0,
        eval_time: 0,
        fail: false,
        warn: false,
        info: false,
        expects: Expects::default(),
        expected_fail_message: None,
        expected_fail_regexp: None,
        expect_scalar: None,
        expected: Vec::new(),
        expected_string: None,
        exclude_from_range_query: false,
        expect_range_vector: false,
        has_histogram_literal: false,
    };
    let modifier;
    if let Some(c) = re_instant.captures(line) {
        modifier = c.get(1).map(|m| m.as_str().to_string());
        let at = c.get(2).map_or("0", |m| m.as_str());
        cmd.eval_time = parse_duration(at).ok_or_else(|| format!("invalid timestamp definition {at:?}"))?;
        cmd.start = cmd.eval_time;
        cmd.expr = c[3].to_string();
    } else if let Some(c) = re_range.captures(line) {
        modifier = c.get(1).map(|m| m.as_str().to_string());
        cmd.is_range = true;
        cmd.start = parse_duration(&c[2]).ok_or("invalid start")?;
        cmd.end = parse_duration(&c[3]).ok_or("invalid end")?;
        cmd.step = parse_duration(&c[4]).ok_or("invalid step")?;
        cmd.expr = c[5].to_string();
    } else {
        return Err("invalid evaluation command".into());
    }
    match modifier.as_deref() {
        Some("fail") => cmd.fail = true,
        Some("warn") => cmd.warn = true,
        Some("info") => cmd.info = true,
        Some("ordered") => cmd.expects.ordered = true,
        _ => {}
    }
    Ok(cmd)
}

/// Parses a whole test file.
pub fn parse_file(content: &str) -> Vec<Command> {
    let lines: Vec<String> = content
        .split('\n')
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_string()
            }
        })
        .collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        if l.is_empty() {
            i += 1;
            continue;
        }
        let word = l.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        if word == "clear" {
            cmds.push(Command::Clear);
            i += 1;
        } else if word.starts_with("load") {
            let (next, cmd) = parse_load(&lines, i);
            cmds.push(cmd);
            i = next;
        } else if word.starts_with("eval") {
            let (next, cmd) = parse_eval(&lines, i);
            cmds.push(cmd);
            i = next;
        } else {
            cmds.push(Command::Broken {
                line: i + 1,
                reason: format!("invalid command {l:?}"),
            });
            i += 1;
        }
    }
    cmds
}

fn body_end(lines: &[String], start: usize) -> usize {
    let mut j = start + 1;
    while j < lines.len() && !lines[j].is_empty() {
        j += 1;
    }
    j
}

fn parse_load(lines: &[String], i: usize) -> (usize, Command) {
    let end = body_end(lines, i);
    let header = &lines[i];
    let mut parts = header.split_whitespace();
    let kind = parts.next().unwrap_or("");
    let with_nhcb = kind.eq_ignore_ascii_case("load_with_nhcb");
    let Some(gap) = parts.next().and_then(parse_duration) else {
        return (
            end,
            Command::Broken {
                line: i + 1,
                reason: "invalid load step".into(),
            },
        );
    };
    let mut series: Vec<(Labels, Vec<SeqValue>)> = Vec::new();
    for (k, l) in lines[i + 1..end].iter().enumerate() {
        let first = l.split_whitespace().next().unwrap_or("");
        if first.ends_with("@st") {
            // Start-timestamp lines: the store keeps no per-sample start
            // timestamps, so they are parsed for validity and ignored.
            continue;
        }
        match parse_series(l) {
            Ok((ls, vals)) => {
                if let Some(existing) = series.iter_mut().find(|(x, _)| *x == ls) {
                    existing.1 = vals;
                } else {
                    series.push((ls, vals));
                }
            }
            Err(e) => {
                return (
                    end,
                    Command::Broken {
                        line: i + k + 2,
                        reason: format!("bad series: {e}"),
                    },
                );
            }
        }
    }
    (
        end,
        Command::Load(LoadCmd {
            line: i + 1,
            gap,
            with_nhcb,
            series,
        }),
    )
}

fn parse_eval(lines: &[String], i: usize) -> (usize, Command) {
    let end = body_end(lines, i);
    let mut cmd = match parse_eval_header(&lines[i], i + 1) {
        Ok(c) => c,
        Err(e) => {
            return (
                end,
                Command::Broken {
                    line: i + 1,
                    reason: e,
                },
            );
        }
    };
    let range_vector_re =
        regex::Regex::new(r"^expect range vector\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$").ok();
    let mut pos = 0;
    let mut j = i + 1;
    while j < end {
        let l = &lines[j];
        j += 1;
        if cmd.fail && l.starts_with("expected_fail_message") {
            cmd.expected_fail_message = Some(l["expected_fail_message".len()..].trim().to_string());
            break;
        }
        if cmd.fail && l.starts_with("expected_fail_regexp") {
            match regex::Regex::new(l["expected_fail_regexp".len()..].trim()) {
                Ok(r) => cmd.expected_fail_regexp = Some(r),
                Err(e) => {
                    return (
                        end,
                        Command::Broken {
                            line: j,
                            reason: e.to_string(),
                        },
                    );
                }
            }
            break;
        }
        if l.starts_with("expect range vector") {
            let re = range_vector_re.clone();
            let Some(c) = re.and_then(|r| r.captures(l)) else {
                return (
                    end,
                    Command::Broken {
                        line: j,
                        reason: "bad range vector expectation".into(),
                    },
                );
            };
            let (Some(a), Some(b), Some(s)) = (
                parse_duration(&c[1]),
                parse_duration(&c[2]),
                parse_duration(&c[3]),
            ) else {
                return (
                    end,
                    Command::Broken {
                        line: j,
                        reason: "bad range vector durations".into(),
                    },
                );
            };
            cmd.start = a;
            cmd.end = b;
            cmd.step = s;
            cmd.eval_time = b;
            cmd.exclude_from_range_query = true;
            cmd.expect_range_vector = true;
            continue;
        }
        if let Some(rest) = l.strip_prefix("expect string") {
            match unquote_prefix(rest.trim()) {
                Some((s, _)) => cmd.expected_string = Some(s),
                None => {
                    return (
                        end,
                        Command::Broken {
                            line: j,
                            reason: "bad expected string".into(),
                        },
                    );
                }
            }
            cmd.exclude_from_range_query = true;
            continue;
        }
        if l.split(' ').next() == Some("expect") {
            match parse_expect(l) {
                Ok((kind, e)) => match kind.as_str() {
                    "ordered" => cmd.expects.ordered = true,
                    "fail" => cmd.expects.fail.push(e),
                    "warn" => cmd.expects.warn.push(e),
                    "no_warn" => cmd.expects.no_warn = true,
                    "info" => cmd.expects.info.push(e),
                    _ => cmd.expects.no_info = true,
                },
                Err(e) => return (end, Command::Broken { line: j, reason: e }),
            }
            continue;
        }
        if let Some(v) = parse_number(l) {
            cmd.expect_scalar = Some(v);
            break;
        }
        if l.contains("{{") {
            cmd.has_histogram_literal = true;
        }
        match parse_series(l) {
            Ok((labels, values)) => {
                if values.len() > 1 && !cmd.is_range && !cmd.expect_range_vector {
                    return (
                        end,
                        Command::Broken {
                            line: j,
                            reason: "multiple values in instant evaluation".into(),
                        },
                    );
                }
                pos += 1;
                cmd.expected.retain(|e| e.labels != labels);
                cmd.expected.push(ExpectedSeries { labels, pos, values });
            }
            Err(e) => {
                return (
                    end,
                    Command::Broken {
                        line: j,
                        reason: format!("bad expected series: {e}"),
                    },
                );
            }
        }
    }
    (end, Command::Eval(Box::new(cmd)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_sequences() {
        let (ls, v) =
            parse_series(r#"http_requests{job="api", instance="0"}  0+10x2 _ stale 1x1 -1-1x1"#).unwrap();
        assert_eq!(ls.get("job"), Some("api"));
        let vals: Vec<String> = v
            .iter()
            .map(|s| {
                if s.omitted {
                    "_".into()
                } else {
                    s.value.to_string()
                }
            })
            .collect();
        assert_eq!(vals, vec!["0", "10", "20", "_", "NaN", "1", "1", "-1", "-2"]);
        let (_, v) = parse_series("m 0x5").unwrap();
        assert_eq!(v.len(), 6);
    }

    #[test]
    fn histograms_parse() {
        let (_, v) = parse_series("m {{schema:1 sum:5 count:4 buckets:[1 2 1] offset:-1}}x1").unwrap();
        assert_eq!(v.len(), 2);
        let h = v[0].histogram.as_ref().unwrap();
        assert_eq!(h.schema, 1);
        assert_eq!(h.positive_spans[0].offset, -1);
    }

    #[test]
    fn numbers_and_durations() {
        assert_eq!(parse_number("0x1p-3"), Some(0.125));
        assert_eq!(parse_number("3"), Some(3.0));
        assert!(parse_number("-Inf").unwrap().is_infinite());
        assert_eq!(parse_duration("1m30s"), Some(90_000));
        assert_eq!(parse_duration("0"), Some(0));
    }
}
