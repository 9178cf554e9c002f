//! Go's `fmt` for template values: `%v` printing of every value kind, `Sprint`, `Sprintln` and
//! `Sprintf` with Go's verbs, flags, width and precision, and `strconv`'s float formats, so
//! numbers render byte for byte as Prometheus renders them (`1e+06`, `1.235M`, `  2.2`).

use fenghuo_gofmt as gofmt;

use super::value::Value;

/// Go's `%v` of a value (what `{{ . }}` and `print` write).
pub fn format_v(v: &Value) -> String {
    format_v_inner(v, true)
}

fn format_v_inner(v: &Value, top: bool) -> String {
    match v {
        Value::Nil => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => gofmt::g(*f),
        Value::Str(s) | Value::Html(s) => s.clone(),
        Value::Map(m) => {
            let parts: Vec<String> = m
                .entries
                .iter()
                .map(|(k, v)| format!("{k}:{}", format_v_inner(v, false)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
        Value::List(l) => {
            let parts: Vec<String> = l.iter().map(|v| format_v_inner(v, false)).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Struct(_) if v.stringer().is_some() => v.stringer().unwrap_or_default().to_string(),
        Value::Struct(s) => {
            let parts: Vec<String> = s.fields.iter().map(|(_, v)| format_v_inner(v, false)).collect();
            let body = format!("{{{}}}", parts.join(" "));
            if s.pointer && !top {
                // Go prints nested pointers as addresses; a stable stand-in keeps output deterministic.
                format!("&{body}")
            } else if s.pointer {
                format!("&{body}")
            } else {
                body
            }
        }
        Value::Time { secs, nanos } => format_time(*secs, *nanos),
        Value::Duration(d) => format_go_duration(*d),
        Value::Opaque { text, .. } => text.clone(),
    }
}

/// Go's `time.Time.String()` for a UTC time: `2006-01-02 15:04:05.999999999 +0000 UTC`.
pub fn format_time(secs: i64, nanos: u32) -> String {
    let Some(dt) = chrono::DateTime::from_timestamp(secs, nanos) else {
        return format!("{secs}.{nanos:09}");
    };
    let mut s = dt.format("%Y-%m-%d %H:%M:%S").to_string();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `150ms`, `0s`.
pub fn format_go_duration(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    let neg = d < 0;
    let u = d.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        // Sub-second: ns, µs or ms with a fraction.
        let (unit, div) = if u < 1_000 {
            ("ns", 1u64)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        out.push_str(&frac_str(u, div));
        out.push_str(unit);
    } else {
        let h = u / 3_600_000_000_000;
        let rem = u % 3_600_000_000_000;
        let m = rem / 60_000_000_000;
        let s = rem % 60_000_000_000;
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&frac_str(s, 1_000_000_000));
        out.push('s');
    }
    if neg { format!("-{out}") } else { out }
}

fn frac_str(v: u64, div: u64) -> String {
    let whole = v / div;
    let frac = v % div;
    if frac == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let f = format!("{frac:0width$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

/// Go's `fmt.Sprint`: spaces between operands when neither side is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        let is_str = matches!(a, Value::Str(_) | Value::Html(_));
        if i > 0 && !is_str && !matches!(args[i - 1], Value::Str(_) | Value::Html(_)) {
            out.push(' ');
        }
        out.push_str(&format_v(a));
    }
    out
}

/// Go's `fmt.Sprintln`.
pub fn sprintln(args: &[Value]) -> String {
    let parts: Vec<String> = args.iter().map(format_v).collect();
    format!("{}\n", parts.join(" "))
}

#[derive(Default, Clone, Copy)]
struct Flags {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn pad(s: String, f: &Flags, numeric: bool) -> String {
    let Some(w) = f.width else { return s };
    let len = s.chars().count();
    if len >= w {
        return s;
    }
    let fill = w - len;
    if f.minus {
        format!("{s}{}", " ".repeat(fill))
    } else if f.zero && numeric {
        let (sign, rest) = match s.chars().next() {
            Some(c @ ('-' | '+' | ' ')) => (c.to_string(), s[1..].to_string()),
            _ => (String::new(), s.clone()),
        };
        format!("{sign}{}{rest}", "0".repeat(fill))
    } else {
        format!("{}{s}", " ".repeat(fill))
    }
}

fn sign(mut s: String, f: &Flags, nonneg: bool) -> String {
    if nonneg && !s.starts_with('+') {
        if f.plus {
            s.insert(0, '+');
        } else if f.space {
            s.insert(0, ' ');
        }
    }
    s
}

fn bad_verb(verb: char, v: &Value) -> String {
    match v {
        Value::Nil => format!("%!{verb}(<nil>)"),
        _ => format!("%!{verb}({}={})", v.type_name(), format_v(v)),
    }
}

fn fmt_float(f: f64, verb: char, fl: &Flags) -> String {
    // %e and %f default to 6 digits, %g and %v to the shortest that round-trip.
    let prec = |default: i32| fl.prec.map_or(default, |p| i32::try_from(p).unwrap_or(i32::MAX));
    let s = match verb {
        'e' => gofmt::format_float(f, b'e', prec(6)),
        'E' => gofmt::format_float(f, b'E', prec(6)),
        'f' | 'F' => gofmt::format_float(f, b'f', prec(6)),
        'g' => gofmt::format_float(f, b'g', prec(-1)),
        'G' => gofmt::format_float(f, b'G', prec(-1)),
        _ => gofmt::g(f),
    };
    let s = sign(s, fl, !f.is_sign_negative() || f.is_nan());
    pad(s, fl, f.is_finite())
}

fn fmt_int(i: i64, verb: char, fl: &Flags) -> String {
    let mag = i.unsigned_abs();
    let mut body = match verb {
        'd' | 'v' => mag.to_string(),
        'x' => format!("{mag:x}"),
        'X' => format!("{mag:X}"),
        'o' | 'O' => format!("{mag:o}"),
        'b' => format!("{mag:b}"),
        _ => mag.to_string(),
    };
    if let Some(p) = fl.prec {
        while body.len() < p {
            body.insert(0, '0');
        }
    }
    if fl.sharp {
        match verb {
            'x' => body.insert_str(0, "0x"),
            'X' => body.insert_str(0, "0X"),
            'o' => body.insert(0, '0'),
            _ => {}
        }
    }
    if verb == 'O' {
        body.insert_str(0, "0o");
    }
    if i < 0 {
        body.insert(0, '-');
    }
    let s = sign(body, fl, i >= 0);
    pad(s, fl, fl.prec.is_none())
}

fn fmt_one(verb: char, v: &Value, fl: &Flags) -> String {
    match (verb, v) {
        ('v', Value::Float(f)) => fmt_float(*f, 'g', fl),
        ('v', Value::Int(i)) | ('d', Value::Int(i)) => fmt_int(*i, 'd', fl),
        ('v', _) => {
            let s = format_v(v);
            pad(s, fl, false)
        }
        ('e' | 'E' | 'f' | 'F' | 'g' | 'G', Value::Float(f)) => fmt_float(*f, verb, fl),
        ('x' | 'X' | 'o' | 'O' | 'b', Value::Int(i)) => fmt_int(*i, verb, fl),
        ('c', Value::Int(i)) => pad(
            char::from_u32(*i as u32).unwrap_or('\u{fffd}').to_string(),
            fl,
            false,
        ),
        ('U', Value::Int(i)) => pad(format!("U+{:04X}", i), fl, false),
        ('q', Value::Int(i)) => pad(
            format!("'{}'", char::from_u32(*i as u32).unwrap_or('\u{fffd}')),
            fl,
            false,
        ),
        ('s', Value::Str(s) | Value::Html(s)) => {
            let s = match fl.prec {
                Some(p) => s.chars().take(p).collect(),
                None => s.clone(),
            };
            pad(s, fl, false)
        }
        ('q', Value::Str(s) | Value::Html(s)) => pad(gofmt::quote(s), fl, false),
        ('x' | 'X', Value::Str(s) | Value::Html(s)) => {
            let mut out = String::new();
            for b in s.as_bytes() {
                if verb == 'x' {
                    out.push_str(&format!("{b:02x}"));
                } else {
                    out.push_str(&format!("{b:02X}"));
                }
            }
            pad(out, fl, false)
        }
        ('t', Value::Bool(b)) => pad(b.to_string(), fl, false),
        ('s', Value::Time { .. } | Value::Duration(_) | Value::Opaque { .. }) => pad(format_v(v), fl, false),
        ('s', Value::Map(_) | Value::List(_) | Value::Struct(_)) => pad(format_v(v), fl, false),
        ('d', Value::Duration(d)) => fmt_int(*d, 'd', fl),
        ('T', _) => pad(v.type_name(), fl, false),
        _ => bad_verb(verb, v),
    }
}

/// Go's fmt rejects widths and precisions beyond a million (`tooLarge`): they would only make
/// huge strings.
fn too_large(x: i64) -> bool {
    !(-1_000_000..=1_000_000).contains(&x)
}

/// Go's `parsenum`: the number at `i` and the index after it; a number that grows too large
/// yields no number and consumes the rest of the format, as in Go.
fn parse_num(chars: &[char], mut i: usize) -> (Option<usize>, usize) {
    let mut num: i64 = 0;
    let mut found = false;
    while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
        if too_large(num) {
            return (None, chars.len());
        }
        num = num * 10 + i64::from(d);
        found = true;
        i += 1;
    }
    (found.then_some(num as usize), i)
}

/// Go's `fmt.Sprintf`.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let chars: Vec<char> = format.chars().collect();
    let mut i = 0;
    let mut argi = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '%' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let mut fl = Flags::default();
        while i < chars.len() {
            match chars[i] {
                '+' => fl.plus = true,
                '-' => fl.minus = true,
                '#' => fl.sharp = true,
                ' ' => fl.space = true,
                '0' => fl.zero = !fl.minus,
                _ => break,
            }
            i += 1;
        }
        // Width.
        if i < chars.len() && chars[i] == '*' {
            i += 1;
            match args.get(argi) {
                Some(Value::Int(w)) if !too_large(*w) => {
                    if *w < 0 {
                        fl.minus = true;
                    }
                    fl.width = Some(w.unsigned_abs() as usize);
                }
                _ => out.push_str("%!(BADWIDTH)"),
            }
            argi += 1;
        } else {
            let (w, next) = parse_num(&chars, i);
            fl.width = w;
            i = next;
        }
        // Precision.
        if i < chars.len() && chars[i] == '.' {
            i += 1;
            if i < chars.len() && chars[i] == '*' {
                i += 1;
                match args.get(argi) {
                    Some(Value::Int(p)) if !too_large(*p) && *p >= 0 => fl.prec = Some(*p as usize),
                    _ => out.push_str("%!(BADPREC)"),
                }
                argi += 1;
            } else {
                let (p, next) = parse_num(&chars, i);
                fl.prec = Some(p.unwrap_or(0));
                i = next;
            }
        }
        if fl.minus {
            fl.zero = false;
        }
        let Some(&verb) = chars.get(i) else {
            out.push_str("%!(NOVERB)");
            break;
        };
        i += 1;
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(argi) {
            None => out.push_str(&format!("%!{verb}(MISSING)")),
            Some(v) => out.push_str(&fmt_one(verb, v, &fl)),
        }
        argi += 1;
    }
    if argi < args.len() {
        let extra: Vec<String> = args[argi..]
            .iter()
            .map(|v| match v {
                Value::Nil => "<nil>".to_string(),
                _ => format!("{}={}", v.type_name(), format_v(v)),
            })
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_widths_and_precisions_are_refused_like_go() {
        // Outputs of Go 1.x fmt.Sprintf for the same calls.
        assert_eq!(
            sprintf("%0999999999d", &[Value::Int(1)]),
            "%!(NOVERB)%!(EXTRA int=1)"
        );
        assert_eq!(
            sprintf("%*d", &[Value::Int(10_000_000), Value::Int(1)]),
            "%!(BADWIDTH)1"
        );
        assert_eq!(
            sprintf("%.*f", &[Value::Int(2_000_000), Value::Float(1.5)]),
            "%!(BADPREC)1.500000"
        );
        assert_eq!(
            sprintf("%.99999999f|x", &[Value::Float(1.5)]),
            "%!(NOVERB)%!(EXTRA float64=1.5)"
        );
        assert_eq!(sprintf("%-*d|", &[Value::Int(-3), Value::Int(7)]), "7  |");
        assert_eq!(sprintf("%1000000d", &[Value::Int(1)]).len(), 1_000_000);
        assert_eq!(
            sprintf("%*d", &[Value::Int(1_000_000), Value::Int(1)]).len(),
            1_000_000
        );
    }

    #[test]
    fn floats_print_like_go() {
        let shortest = [1e6, 123456789.0, 100000.0, 0.0001, 0.00001, 1234567.5].map(Value::Float);
        assert_eq!(
            sprint(&shortest),
            "1e+06 1.23456789e+08 100000 0.0001 1e-05 1.2345675e+06"
        );
        let floats = [1.2345675, 100000.0, 0.0, 123.4].map(Value::Float);
        assert_eq!(sprintf("%.4g|%.4g|%.4g|%.4g", &floats), "1.235|1e+05|0|123.4");
        assert_eq!(
            sprintf("%G|%.3G", &[Value::Float(1e6), Value::Float(1234.5)]),
            "1E+06|1.23E+03"
        );
        // Go prints NaN and infinities the same whatever the verb's case.
        let specials = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY].map(Value::Float);
        assert_eq!(sprintf("%G|%G|%E|%v", &specials), "NaN|+Inf|-Inf|+Inf");
    }

    #[test]
    fn sprintf_like_go() {
        let v = Value::Float(1234567.5);
        assert_eq!(
            sprintf(
                "%.2f|%d|%s|%v|%q|%e|%g|%x|%5.1f|%-6s|",
                &[
                    v.clone(),
                    Value::Int(3),
                    Value::str("x"),
                    Value::Float(1.5),
                    Value::str("q"),
                    v.clone(),
                    v.clone(),
                    Value::Int(255),
                    Value::Float(2.25),
                    Value::str("ab")
                ]
            ),
            "1234567.50|3|x|1.5|\"q\"|1.234568e+06|1.2345675e+06|ff|  2.2|ab    |"
        );
        assert_eq!(sprintf("%d", &[Value::Float(1.5)]), "%!d(float64=1.5)");
        assert_eq!(sprintf("%s %s", &[Value::str("a")]), "a %!s(MISSING)");
        assert_eq!(sprintf("%05.1f%%", &[Value::Float(-2.5)]), "-02.5%");
    }

    #[test]
    fn sprint_spacing() {
        let args = [
            Value::Int(1),
            Value::Int(2),
            Value::str("a"),
            Value::str("b"),
            Value::Int(3),
        ];
        assert_eq!(sprint(&args), "1 2ab3");
    }

    #[test]
    fn times_and_durations() {
        assert_eq!(
            format_time(1_234_567, 500_000_000),
            "1970-01-15 06:56:07.5 +0000 UTC"
        );
        assert_eq!(format_go_duration(90_500_000_000), "1m30.5s");
        assert_eq!(format_go_duration(1_500_000), "1.5ms");
    }
}
