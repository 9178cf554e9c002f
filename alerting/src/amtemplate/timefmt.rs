//! Go's time layouts (`2006-01-02T15:04:05Z07:00`) for Alertmanager's time functions: formatting
//! a time in any zone (`date`, `tz`, `.Format`, printing) and parsing (`toDate`, `mustToDate`).
//! The reference-time tokens follow Go's `time` package rules (`Jan` only when not followed by a
//! lower-case letter, `.000`/`.999` fractions, `Z07:00` vs `-07:00` offsets, `MST` names).

use chrono::{Datelike, Timelike};

/// Go's zero time (January 1, year 1, UTC) in Unix seconds.
pub const GO_ZERO_SECS: i64 = -62_135_596_800;

/// A time with its zone, as a Go `time.Time` carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct GoTime {
    pub secs: i64,
    pub nanos: u32,
    /// Seconds east of UTC.
    pub offset: i32,
    /// Zone abbreviation (`UTC`, `CST`, ...).
    pub zone: String,
}

impl GoTime {
    pub fn utc(secs: i64, nanos: u32) -> Self {
        GoTime {
            secs,
            nanos,
            offset: 0,
            zone: "UTC".into(),
        }
    }

    fn local(&self) -> chrono::NaiveDateTime {
        chrono::DateTime::from_timestamp(self.secs + i64::from(self.offset), self.nanos)
            .unwrap_or_default()
            .naive_utc()
    }

    /// Go's `Time.String()`: `2006-01-02 15:04:05.999999999 -0700 MST`.
    pub fn go_string(&self) -> String {
        format(self, "2006-01-02 15:04:05.999999999 -0700 MST")
    }

    /// Go's RFC 3339 with nanoseconds (JSON encoding of a time).
    pub fn rfc3339_nano(&self) -> String {
        format(self, "2006-01-02T15:04:05.999999999Z07:00")
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    Pm,
    PmLower,
    Tz,
    /// Numeric offset: with colon(s), with seconds, short (`-07`), `Z` for UTC.
    Offset {
        colon: bool,
        seconds: bool,
        short: bool,
        iso: bool,
    },
    /// Fractional seconds: digits, and whether trailing zeros are trimmed (`.999`); the separator.
    Frac {
        digits: usize,
        trim: bool,
        sep: char,
    },
}

fn starts_lower(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
}

/// Splits a layout into literal text and reference-time tokens.
fn next_chunk(layout: &str) -> (&str, Option<Tok>, &str) {
    let b = layout.as_bytes();
    let at = |i: usize, p: &str| layout.get(i..).is_some_and(|s| s.starts_with(p));
    for i in 0..b.len() {
        let rest = |n: usize| &layout[i + n..];
        match b[i] {
            b'J' if at(i, "Jan") => {
                if at(i, "January") {
                    return (&layout[..i], Some(Tok::LongMonth), rest(7));
                }
                if !starts_lower(rest(3)) {
                    return (&layout[..i], Some(Tok::Month), rest(3));
                }
            }
            b'M' => {
                if at(i, "Mon") {
                    if at(i, "Monday") {
                        return (&layout[..i], Some(Tok::LongWeekDay), rest(6));
                    }
                    if !starts_lower(rest(3)) {
                        return (&layout[..i], Some(Tok::WeekDay), rest(3));
                    }
                }
                if at(i, "MST") {
                    return (&layout[..i], Some(Tok::Tz), rest(3));
                }
            }
            b'0' => {
                if i + 1 < b.len() && (b'1'..=b'6').contains(&b[i + 1]) {
                    let t = match b[i + 1] {
                        b'1' => Tok::ZeroMonth,
                        b'2' => Tok::ZeroDay,
                        b'3' => Tok::ZeroHour12,
                        b'4' => Tok::ZeroMinute,
                        b'5' => Tok::ZeroSecond,
                        _ => Tok::Year,
                    };
                    return (&layout[..i], Some(t), rest(2));
                }
                if at(i, "002") {
                    return (&layout[..i], Some(Tok::ZeroYearDay), rest(3));
                }
            }
            b'1' => {
                if at(i, "15") {
                    return (&layout[..i], Some(Tok::Hour), rest(2));
                }
                return (&layout[..i], Some(Tok::NumMonth), rest(1));
            }
            b'2' => {
                if at(i, "2006") {
                    return (&layout[..i], Some(Tok::LongYear), rest(4));
                }
                return (&layout[..i], Some(Tok::Day), rest(1));
            }
            b'_' => {
                if at(i, "_2") {
                    if at(i, "_2006") {
                        return (&layout[..i + 1], Some(Tok::LongYear), rest(5));
                    }
                    return (&layout[..i], Some(Tok::UnderDay), rest(2));
                }
                if at(i, "__2") {
                    return (&layout[..i], Some(Tok::UnderYearDay), rest(3));
                }
            }
            b'3' => return (&layout[..i], Some(Tok::Hour12), rest(1)),
            b'4' => return (&layout[..i], Some(Tok::Minute), rest(1)),
            b'5' => return (&layout[..i], Some(Tok::Second), rest(1)),
            b'P' if at(i, "PM") => return (&layout[..i], Some(Tok::Pm), rest(2)),
            b'p' if at(i, "pm") => return (&layout[..i], Some(Tok::PmLower), rest(2)),
            b'-' | b'Z' => {
                let iso = b[i] == b'Z';
                let p = if iso { "Z" } else { "-" };
                let forms: [(&str, bool, bool, bool); 5] = [
                    ("070000", false, true, false),
                    ("07:00:00", true, true, false),
                    ("0700", false, false, false),
                    ("07:00", true, false, false),
                    ("07", false, false, true),
                ];
                for (f, colon, seconds, short) in forms {
                    let full = format!("{p}{f}");
                    if at(i, &full) {
                        return (
                            &layout[..i],
                            Some(Tok::Offset {
                                colon,
                                seconds,
                                short,
                                iso,
                            }),
                            rest(full.len()),
                        );
                    }
                }
            }
            b'.' | b',' if i + 1 < b.len() && (b[i + 1] == b'0' || b[i + 1] == b'9') => {
                let ch = b[i + 1];
                let mut j = i + 1;
                while j < b.len() && b[j] == ch {
                    j += 1;
                }
                if !(j < b.len() && b[j].is_ascii_digit()) {
                    return (
                        &layout[..i],
                        Some(Tok::Frac {
                            digits: j - (i + 1),
                            trim: ch == b'9',
                            sep: b[i] as char,
                        }),
                        &layout[j..],
                    );
                }
            }
            _ => {}
        }
    }
    (layout, None, "")
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

fn fmt_offset(out: &mut String, offset: i32, colon: bool, seconds: bool, short: bool, iso: bool) {
    if iso && offset == 0 {
        out.push('Z');
        return;
    }
    let sign = if offset < 0 { '-' } else { '+' };
    let a = offset.unsigned_abs();
    out.push(sign);
    out.push_str(&format!("{:02}", a / 3600));
    if !short {
        if colon {
            out.push(':');
        }
        out.push_str(&format!("{:02}", (a / 60) % 60));
    }
    if seconds {
        if colon {
            out.push(':');
        }
        out.push_str(&format!("{:02}", a % 60));
    }
}

/// Formats `t` with a Go layout.
pub fn format(t: &GoTime, layout: &str) -> String {
    let dt = t.local();
    let mut out = String::new();
    let mut rest = layout;
    loop {
        let (prefix, tok, suffix) = next_chunk(rest);
        out.push_str(prefix);
        let Some(tok) = tok else { break };
        rest = suffix;
        let hour12 = |h: u32| if h.is_multiple_of(12) { 12 } else { h % 12 };
        match tok {
            Tok::LongMonth => out.push_str(MONTHS[dt.month0() as usize]),
            Tok::Month => out.push_str(&MONTHS[dt.month0() as usize][..3]),
            Tok::NumMonth => out.push_str(&dt.month().to_string()),
            Tok::ZeroMonth => out.push_str(&format!("{:02}", dt.month())),
            Tok::LongWeekDay => out.push_str(DAYS[dt.weekday().num_days_from_sunday() as usize]),
            Tok::WeekDay => out.push_str(&DAYS[dt.weekday().num_days_from_sunday() as usize][..3]),
            Tok::Day => out.push_str(&dt.day().to_string()),
            Tok::UnderDay => out.push_str(&format!("{:>2}", dt.day())),
            Tok::ZeroDay => out.push_str(&format!("{:02}", dt.day())),
            Tok::UnderYearDay => out.push_str(&format!("{:>3}", dt.ordinal())),
            Tok::ZeroYearDay => out.push_str(&format!("{:03}", dt.ordinal())),
            Tok::Hour => out.push_str(&format!("{:02}", dt.hour())),
            Tok::Hour12 => out.push_str(&hour12(dt.hour()).to_string()),
            Tok::ZeroHour12 => out.push_str(&format!("{:02}", hour12(dt.hour()))),
            Tok::Minute => out.push_str(&dt.minute().to_string()),
            Tok::ZeroMinute => out.push_str(&format!("{:02}", dt.minute())),
            Tok::Second => out.push_str(&dt.second().to_string()),
            Tok::ZeroSecond => out.push_str(&format!("{:02}", dt.second())),
            Tok::LongYear => {
                let y = dt.year();
                if y < 0 {
                    out.push_str(&format!("-{:04}", -y));
                } else {
                    out.push_str(&format!("{y:04}"));
                }
            }
            Tok::Year => out.push_str(&format!("{:02}", dt.year().rem_euclid(100))),
            Tok::Pm => out.push_str(if dt.hour() >= 12 { "PM" } else { "AM" }),
            Tok::PmLower => out.push_str(if dt.hour() >= 12 { "pm" } else { "am" }),
            Tok::Tz => {
                if t.zone.is_empty() {
                    fmt_offset(&mut out, t.offset, false, false, false, false);
                } else {
                    out.push_str(&t.zone);
                }
            }
            Tok::Offset {
                colon,
                seconds,
                short,
                iso,
            } => fmt_offset(&mut out, t.offset, colon, seconds, short, iso),
            Tok::Frac { digits, trim, sep } => {
                let f = format!("{:09}", t.nanos);
                let mut f = f[..digits.min(9)].to_string();
                if trim {
                    while f.ends_with('0') {
                        f.pop();
                    }
                    if f.is_empty() {
                        continue;
                    }
                }
                out.push(sep);
                out.push_str(&f);
            }
        }
    }
    out
}

/// Parses `value` with a Go layout; times without a zone are UTC (`time.ParseInLocation(.., UTC)`).
pub fn parse(layout: &str, value: &str) -> Result<GoTime, String> {
    let err = |what: &str| format!("parsing time {value:?} as {layout:?}: cannot parse {what}");
    let (mut year, mut month, mut day, mut yday) = (1i32, 1u32, 1u32, 0u32);
    let (mut hour, mut min, mut sec, mut nanos) = (0u32, 0u32, 0u32, 0u32);
    let mut pm: Option<bool> = None;
    let mut offset: Option<i32> = None;
    let mut zone = String::new();
    let mut rest_layout = layout;
    let mut v = value;
    let num = |v: &mut &str, min_w: usize, max_w: usize| -> Option<u32> {
        let n = v.bytes().take(max_w).take_while(u8::is_ascii_digit).count();
        if n < min_w {
            return None;
        }
        let x = v[..n].parse().ok()?;
        *v = &v[n..];
        Some(x)
    };
    loop {
        let (prefix, tok, suffix) = next_chunk(rest_layout);
        let p = prefix.trim_start_matches(' ');
        let vv = v.trim_start_matches(' ');
        if !vv.starts_with(p) {
            return Err(err(&format!("{vv:?} as {prefix:?}")));
        }
        v = &vv[p.len()..];
        let Some(tok) = tok else {
            if !v.is_empty() {
                return Err(format!("parsing time {value:?}: extra text: {v:?}"));
            }
            break;
        };
        rest_layout = suffix;
        let here = v;
        match tok {
            Tok::LongMonth | Tok::Month => {
                let idx = MONTHS.iter().position(|m| {
                    let m = if tok == Tok::Month { &m[..3] } else { m };
                    v.len() >= m.len() && v[..m.len()].eq_ignore_ascii_case(m)
                });
                let Some(i) = idx else {
                    return Err(err(&format!("{here:?}")));
                };
                month = i as u32 + 1;
                let l = if tok == Tok::Month { 3 } else { MONTHS[i].len() };
                v = &v[l..];
            }
            Tok::LongWeekDay | Tok::WeekDay => {
                let idx = DAYS.iter().position(|d| {
                    let d = if tok == Tok::WeekDay { &d[..3] } else { d };
                    v.len() >= d.len() && v[..d.len()].eq_ignore_ascii_case(d)
                });
                let Some(i) = idx else {
                    return Err(err(&format!("{here:?}")));
                };
                let l = if tok == Tok::WeekDay { 3 } else { DAYS[i].len() };
                v = &v[l..];
            }
            Tok::NumMonth | Tok::ZeroMonth => {
                month = num(&mut v, if tok == Tok::ZeroMonth { 2 } else { 1 }, 2)
                    .filter(|m| (1..=12).contains(m))
                    .ok_or_else(|| err(&format!("{here:?} as month")))?;
            }
            Tok::Day | Tok::UnderDay | Tok::ZeroDay => {
                if tok == Tok::UnderDay && v.starts_with(' ') {
                    v = &v[1..];
                }
                day = num(&mut v, if tok == Tok::ZeroDay { 2 } else { 1 }, 2)
                    .filter(|d| (1..=31).contains(d))
                    .ok_or_else(|| err(&format!("{here:?} as day")))?;
            }
            Tok::UnderYearDay | Tok::ZeroYearDay => {
                let t = v.trim_start_matches(' ');
                v = t;
                yday = num(&mut v, 1, 3)
                    .filter(|d| (1..=366).contains(d))
                    .ok_or_else(|| err(&format!("{here:?} as day of year")))?;
            }
            Tok::Hour => {
                hour = num(&mut v, 2, 2)
                    .filter(|h| *h < 24)
                    .ok_or_else(|| err(&format!("{here:?} as hour")))?;
            }
            Tok::Hour12 | Tok::ZeroHour12 => {
                hour = num(&mut v, if tok == Tok::ZeroHour12 { 2 } else { 1 }, 2)
                    .filter(|h| (1..=12).contains(h))
                    .ok_or_else(|| err(&format!("{here:?} as hour")))?;
            }
            Tok::Minute | Tok::ZeroMinute => {
                min = num(&mut v, if tok == Tok::ZeroMinute { 2 } else { 1 }, 2)
                    .filter(|m| *m < 60)
                    .ok_or_else(|| err(&format!("{here:?} as minute")))?;
            }
            Tok::Second | Tok::ZeroSecond => {
                sec = num(&mut v, if tok == Tok::ZeroSecond { 2 } else { 1 }, 2)
                    .filter(|s| *s < 60)
                    .ok_or_else(|| err(&format!("{here:?} as second")))?;
                // Go accepts a fraction after seconds even when the layout has none.
                if (v.starts_with('.') || v.starts_with(','))
                    && v[1..].starts_with(|c: char| c.is_ascii_digit())
                    && !matches!(next_chunk(rest_layout).1, Some(Tok::Frac { .. }))
                {
                    let n = v[1..].bytes().take_while(u8::is_ascii_digit).count();
                    nanos = frac_nanos(&v[1..1 + n]);
                    v = &v[1 + n..];
                }
            }
            Tok::LongYear => {
                let y = num(&mut v, 4, 4).ok_or_else(|| err(&format!("{here:?} as year")))?;
                year = y as i32;
            }
            Tok::Year => {
                let y = num(&mut v, 2, 2).ok_or_else(|| err(&format!("{here:?} as year")))? as i32;
                year = if y >= 69 { 1900 + y } else { 2000 + y };
            }
            Tok::Pm | Tok::PmLower => {
                if v.len() < 2 {
                    return Err(err(&format!("{here:?} as PM")));
                }
                match &v[..2].to_ascii_uppercase()[..] {
                    "PM" => pm = Some(true),
                    "AM" => pm = Some(false),
                    _ => return Err(err(&format!("{here:?} as PM"))),
                }
                v = &v[2..];
            }
            Tok::Tz => {
                if v.starts_with("UTC") {
                    zone = "UTC".into();
                    offset = Some(0);
                    v = &v[3..];
                } else {
                    let n = v.bytes().take_while(u8::is_ascii_uppercase).count();
                    if n < 3 {
                        return Err(err(&format!("{here:?} as zone")));
                    }
                    zone = v[..n].to_string();
                    v = &v[n..];
                }
            }
            Tok::Offset {
                colon,
                seconds,
                short,
                iso,
            } => {
                if iso && v.starts_with('Z') {
                    offset = Some(0);
                    v = &v[1..];
                    continue;
                }
                let sign = match v.as_bytes().first() {
                    Some(b'+') => 1,
                    Some(b'-') => -1,
                    _ => return Err(err(&format!("{here:?} as zone offset"))),
                };
                v = &v[1..];
                let h = num(&mut v, 2, 2).ok_or_else(|| err(&format!("{here:?} as zone offset")))?;
                let mut m = 0;
                let mut s = 0;
                if !short {
                    if colon {
                        v = v.strip_prefix(':').ok_or_else(|| err(&format!("{here:?}")))?;
                    }
                    m = num(&mut v, 2, 2).ok_or_else(|| err(&format!("{here:?}")))?;
                }
                if seconds {
                    if colon {
                        v = v.strip_prefix(':').ok_or_else(|| err(&format!("{here:?}")))?;
                    }
                    s = num(&mut v, 2, 2).ok_or_else(|| err(&format!("{here:?}")))?;
                }
                offset = Some(sign * (h * 3600 + m * 60 + s) as i32);
            }
            Tok::Frac { digits, trim, .. } => {
                if !(v.starts_with('.') || v.starts_with(',')) {
                    if trim {
                        continue;
                    }
                    return Err(err(&format!("{here:?} as fraction")));
                }
                let n = v[1..].bytes().take_while(u8::is_ascii_digit).count();
                if !trim && n != digits {
                    return Err(err(&format!("{here:?} as fraction")));
                }
                nanos = frac_nanos(&v[1..1 + n]);
                v = &v[1 + n..];
            }
        }
    }
    if let Some(p) = pm {
        if p && hour < 12 {
            hour += 12;
        } else if !p && hour == 12 {
            hour = 0;
        }
    }
    let date = if yday > 0 {
        chrono::NaiveDate::from_yo_opt(year, yday)
    } else {
        chrono::NaiveDate::from_ymd_opt(year, month, day)
    }
    .ok_or_else(|| format!("parsing time {value:?}: day out of range"))?;
    let naive = date
        .and_hms_nano_opt(hour, min, sec, nanos)
        .ok_or_else(|| format!("parsing time {value:?}: time out of range"))?;
    let off = offset.unwrap_or(0);
    let secs = naive.and_utc().timestamp() - i64::from(off);
    Ok(GoTime {
        secs,
        nanos,
        offset: off,
        zone: if offset.is_none() || (off == 0 && zone.is_empty()) {
            "UTC".into()
        } else {
            zone
        },
    })
}

fn frac_nanos(digits: &str) -> u32 {
    let mut d: String = digits.chars().take(9).collect();
    while d.len() < 9 {
        d.push('0');
    }
    d.parse().unwrap_or(0)
}

/// Converts a time to the named IANA zone (`Local` is the process's zone, `UTC` and `""` UTC).
pub fn in_zone(t: &GoTime, name: &str) -> Result<GoTime, String> {
    use chrono::Offset;
    let utc = chrono::DateTime::from_timestamp(t.secs, t.nanos).unwrap_or_default();
    match name {
        "" | "UTC" => Ok(GoTime::utc(t.secs, t.nanos)),
        "Local" => {
            let l = utc.with_timezone(&chrono::Local);
            let off = l.offset().fix().local_minus_utc();
            Ok(GoTime {
                secs: t.secs,
                nanos: t.nanos,
                offset: off,
                zone: if off == 0 { "UTC".into() } else { String::new() },
            })
        }
        _ => {
            let tz: chrono_tz::Tz = name.parse().map_err(|_| format!("unknown time zone {name}"))?;
            let z = utc.with_timezone(&tz);
            let off = z.offset().fix().local_minus_utc();
            let abbr = z.format("%Z").to_string();
            Ok(GoTime {
                secs: t.secs,
                nanos: t.nanos,
                offset: off,
                zone: abbr,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        // 2024-03-05T14:07:09.120Z
        let t = GoTime::utc(1_709_647_629, 120_000_000);
        assert_eq!(format(&t, "2006-01-02T15:04:05Z07:00"), "2024-03-05T14:07:09Z");
        assert_eq!(
            format(&t, "Mon Jan _2 15:04:05.000 MST 2006"),
            "Tue Mar  5 14:07:09.120 UTC 2024"
        );
        assert_eq!(format(&t, "3:04PM, January 2"), "2:07PM, March 5");
        assert_eq!(t.go_string(), "2024-03-05 14:07:09.12 +0000 UTC");
        let z = in_zone(&t, "Asia/Shanghai").unwrap_or_else(|_| t.clone());
        assert_eq!(z.go_string(), "2024-03-05 22:07:09.12 +0800 CST");
        assert_eq!(format(&z, "15:04 -07:00"), "22:07 +08:00");
        assert!(in_zone(&t, "Nowhere/City").is_err());
        assert_eq!(format(&GoTime::utc(GO_ZERO_SECS, 0), "2006-01-02"), "0001-01-01");
    }

    #[test]
    fn parses_like_go() {
        let t = parse("2006-01-02 15:04:05", "2024-03-05 14:07:09").ok();
        assert_eq!(t.map(|t| t.secs), Some(1_709_647_629));
        let t = parse("2006-01-02T15:04:05Z07:00", "2024-03-05T22:07:09.5+08:00").ok();
        assert_eq!(
            t.as_ref().map(|t| (t.secs, t.nanos)),
            Some((1_709_647_629, 500_000_000))
        );
        assert!(parse("2006-01-02", "2024-13-05").is_err());
        assert!(parse("2006-01-02", "yesterday").is_err());
    }
}
