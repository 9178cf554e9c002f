//! Alertmanager's `time_intervals` (and deprecated `mute_time_intervals`): times of day, weekdays,
//! days of month (negative = from the month's end), months and years, in an optional IANA location.
//! Used by routes' `mute_time_intervals` and `active_time_intervals`.

use chrono::{Datelike, NaiveDate, Timelike};
use serde::{Deserialize, Serialize};

use crate::clock::Ts;

/// A named list of time intervals.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NamedTimeInterval {
    pub name: String,
    #[serde(default)]
    pub time_intervals: Vec<TimeInterval>,
}

/// One interval: every non-empty field must match.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct TimeInterval {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub times: Vec<TimeRange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weekdays: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days_of_month: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub months: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub years: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// `start_time`/`end_time` as `HH:MM`; start inclusive, end exclusive; `24:00` allowed as end.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    pub start_time: String,
    pub end_time: String,
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn parse_hhmm(s: &str) -> Result<u32, String> {
    let (h, m) = s
        .split_once(':')
        .ok_or_else(|| format!("couldn't parse timestamp {s:?}, invalid format"))?;
    let h: u32 = h.parse().map_err(|_| format!("couldn't parse timestamp {s:?}"))?;
    let m: u32 = m.parse().map_err(|_| format!("couldn't parse timestamp {s:?}"))?;
    if h > 24 || m > 59 || (h == 24 && m != 0) {
        return Err(format!("timestamp {s:?} out of range"));
    }
    Ok(h * 60 + m)
}

/// Parses `a` or `a:b` where each side is resolved by `one`.
fn parse_range(s: &str, one: &dyn Fn(&str) -> Result<i32, String>) -> Result<(i32, i32), String> {
    let s = s.trim();
    // Negative days contain '-', never ':' ambiguity: split on ':' only.
    match s.split_once(':') {
        Some((a, b)) => Ok((one(a.trim())?, one(b.trim())?)),
        None => {
            let v = one(s)?;
            Ok((v, v))
        }
    }
}

fn weekday(s: &str) -> Result<i32, String> {
    WEEKDAYS
        .iter()
        .position(|d| d.eq_ignore_ascii_case(s))
        .map(|p| p as i32)
        .ok_or_else(|| format!("{s:?} is not a valid weekday"))
}

fn month(s: &str) -> Result<i32, String> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=12).contains(&n) {
            return Ok(n);
        }
        return Err(format!("{s:?} is not a valid month"));
    }
    MONTHS
        .iter()
        .position(|d| d.eq_ignore_ascii_case(s))
        .map(|p| p as i32 + 1)
        .ok_or_else(|| format!("{s:?} is not a valid month"))
}

fn day_of_month(s: &str) -> Result<i32, String> {
    let n: i32 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a valid day of month"))?;
    if n == 0 || !(-31..=31).contains(&n) {
        return Err(format!("{s:?} is not a valid day of month"));
    }
    Ok(n)
}

fn year(s: &str) -> Result<i32, String> {
    let n: i32 = s.parse().map_err(|_| format!("{s:?} is not a valid year"))?;
    if n <= 0 {
        return Err(format!("{s:?} is not a valid year"));
    }
    Ok(n)
}

fn days_in_month(y: i32, m: u32) -> i32 {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    match (
        NaiveDate::from_ymd_opt(ny, nm, 1),
        NaiveDate::from_ymd_opt(y, m, 1),
    ) {
        (Some(a), Some(b)) => (a - b).num_days() as i32,
        _ => 31,
    }
}

impl TimeInterval {
    /// Checks every field parses; returns the first problem.
    pub fn validate(&self) -> Result<(), String> {
        for t in &self.times {
            let s = parse_hhmm(&t.start_time)?;
            let e = parse_hhmm(&t.end_time)?;
            if s >= e {
                return Err(format!(
                    "start time {} cannot be equal or greater than end time {}",
                    t.start_time, t.end_time
                ));
            }
            if s >= 24 * 60 {
                return Err(format!("start time {} out of range", t.start_time));
            }
        }
        for w in &self.weekdays {
            let (a, b) = parse_range(w, &weekday)?;
            if a > b {
                return Err(format!("start day cannot be after end day in {w:?}"));
            }
        }
        for d in &self.days_of_month {
            let (a, b) = parse_range(d, &day_of_month)?;
            if (a > 0) == (b > 0) && a > b {
                return Err(format!("end day must be greater than start day in {d:?}"));
            }
        }
        for m in &self.months {
            let (a, b) = parse_range(m, &month)?;
            if a > b {
                return Err(format!("end month must be after start month in {m:?}"));
            }
        }
        for y in &self.years {
            let (a, b) = parse_range(y, &year)?;
            if a > b {
                return Err(format!("end year must be after start year in {y:?}"));
            }
        }
        if let Some(loc) = &self.location {
            loc.parse::<chrono_tz::Tz>()
                .map_err(|_| format!("unknown time zone location {loc:?}"))?;
        }
        Ok(())
    }

    /// Whether `t` falls inside this interval. Unparseable fields (rejected by `validate`) never match.
    pub fn contains(&self, t: Ts) -> bool {
        let tz: chrono_tz::Tz = match &self.location {
            Some(l) => match l.parse() {
                Ok(tz) => tz,
                Err(_) => return false,
            },
            None => chrono_tz::UTC,
        };
        let local = t.with_timezone(&tz);
        if !self.times.is_empty() {
            let minute = (local.hour() * 60 + local.minute()) as i64;
            let ok = self
                .times
                .iter()
                .any(|r| match (parse_hhmm(&r.start_time), parse_hhmm(&r.end_time)) {
                    (Ok(s), Ok(e)) => minute >= s as i64 && minute < e as i64,
                    _ => false,
                });
            if !ok {
                return false;
            }
        }
        if !self.weekdays.is_empty() {
            let wd = local.weekday().num_days_from_sunday() as i32;
            if !self
                .weekdays
                .iter()
                .any(|w| parse_range(w, &weekday).is_ok_and(|(a, b)| wd >= a && wd <= b))
            {
                return false;
            }
        }
        if !self.days_of_month.is_empty() {
            let dim = days_in_month(local.year(), local.month());
            let day = local.day() as i32;
            let norm = |d: i32| if d < 0 { dim + d + 1 } else { d };
            let ok = self.days_of_month.iter().any(|d| {
                parse_range(d, &day_of_month).is_ok_and(|(a, b)| {
                    let (a, b) = (norm(a).max(1), norm(b).min(dim));
                    day >= a && day <= b
                })
            });
            if !ok {
                return false;
            }
        }
        if !self.months.is_empty() {
            let m = local.month() as i32;
            if !self
                .months
                .iter()
                .any(|r| parse_range(r, &month).is_ok_and(|(a, b)| m >= a && m <= b))
            {
                return false;
            }
        }
        if !self.years.is_empty() {
            let y = local.year();
            if !self
                .years
                .iter()
                .any(|r| parse_range(r, &year).is_ok_and(|(a, b)| y >= a && y <= b))
            {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn at(s: &str) -> Ts {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn business_hours_in_shanghai() {
        let ti = TimeInterval {
            times: vec![TimeRange {
                start_time: "09:00".into(),
                end_time: "18:00".into(),
            }],
            weekdays: vec!["monday:friday".into()],
            location: Some("Asia/Shanghai".into()),
            ..Default::default()
        };
        assert!(ti.validate().is_ok());
        // Monday 2024-01-08 02:00 UTC = 10:00 Shanghai.
        assert!(ti.contains(at("2024-01-08T02:00:00Z")));
        // 10:00 UTC = 18:00 Shanghai: end is exclusive.
        assert!(!ti.contains(at("2024-01-08T10:00:00Z")));
        // Saturday.
        assert!(!ti.contains(at("2024-01-13T02:00:00Z")));
    }

    #[test]
    fn negative_days_of_month_and_months() {
        let ti = TimeInterval {
            days_of_month: vec!["-1".into()],
            months: vec!["february".into()],
            ..Default::default()
        };
        assert!(ti.contains(at("2024-02-29T12:00:00Z")));
        assert!(!ti.contains(at("2024-02-28T12:00:00Z")));
        assert!(!ti.contains(at("2024-03-31T12:00:00Z")));
    }

    #[test]
    fn invalid_fields_rejected() {
        let bad = [
            TimeInterval {
                weekdays: vec!["funday".into()],
                ..Default::default()
            },
            TimeInterval {
                months: vec!["13".into()],
                ..Default::default()
            },
            TimeInterval {
                times: vec![TimeRange {
                    start_time: "10:00".into(),
                    end_time: "09:00".into(),
                }],
                ..Default::default()
            },
            TimeInterval {
                location: Some("Mars/Base".into()),
                ..Default::default()
            },
        ];
        for b in bad {
            assert!(b.validate().is_err(), "{b:?}");
        }
    }
}
