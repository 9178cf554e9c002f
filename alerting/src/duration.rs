//! Prometheus-style durations (`1h30m`, `5m`, `2d`, `1w`, `0`), as used in `alertmanager.yml`,
//! with serde support so config structs can hold them directly.

use std::fmt;

use chrono::Duration;
use fenghuo_storage_api::model::duration::{UNITS, format_millis};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::AlertingError;

/// A non-negative duration written the Prometheus way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct PromDuration(pub Duration);

impl PromDuration {
    pub fn from_secs(s: i64) -> Self {
        PromDuration(Duration::seconds(s))
    }
    pub fn from_mins(m: i64) -> Self {
        PromDuration(Duration::minutes(m))
    }
    pub fn as_duration(&self) -> Duration {
        self.0
    }
    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }
}

/// Parses `1h30m`, `90s`, `1d`, `500ms`, `0`. Units must appear in decreasing order, once each.
pub fn parse_duration(input: &str) -> Result<PromDuration, AlertingError> {
    let err = |message: &str| AlertingError::Duration {
        input: input.to_string(),
        message: message.to_string(),
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("empty duration string"));
    }
    if s == "0" {
        return Ok(PromDuration(Duration::zero()));
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total: i64 = 0;
    let mut last_unit: Option<usize> = None;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(err("expected a number"));
        }
        let n: i64 = s[start..i].parse().map_err(|_| err("number too large"))?;
        let ustart = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let idx = UNITS
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(|| err("unknown unit (use ms, s, m, h, d, w, y)"))?;
        if let Some(prev) = last_unit
            && idx <= prev
        {
            return Err(err("units must be in decreasing order and not repeated"));
        }
        last_unit = Some(idx);
        let add = n
            .checked_mul(UNITS[idx].1)
            .ok_or_else(|| err("duration out of range"))?;
        total = total
            .checked_add(add)
            .ok_or_else(|| err("duration out of range"))?;
    }
    // Bounded so that adding any configured duration to a timestamp can never overflow.
    if total > MAX_MS {
        return Err(err("duration too long (at most 100y)"));
    }
    Ok(PromDuration(Duration::milliseconds(total)))
}

/// The longest accepted duration: 100 years.
const MAX_MS: i64 = 100 * 365 * 24 * 3600 * 1000;

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_millis(self.0.num_milliseconds()))
    }
}

impl std::str::FromStr for PromDuration {
    type Err = AlertingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s)
    }
}

impl Serialize for PromDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let cases = [
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("0", 0),
            ("1d", 86_400_000),
            ("250ms", 250),
        ];
        for (s, ms) in cases {
            let d = parse_duration(s).unwrap_or_default();
            assert_eq!(d.0.num_milliseconds(), ms, "{s}");
        }
        assert_eq!(PromDuration::from_secs(5400).to_string(), "1h30m");
        assert_eq!(PromDuration::from_secs(0).to_string(), "0s");
    }

    #[test]
    fn rejects_bad_input() {
        for s in [
            "",
            "5",
            "m",
            "5x",
            "1m1h",
            "1m1m",
            "-5m",
            "1.5h",
            "101y",
            "99999999999999999y",
        ] {
            assert!(parse_duration(s).is_err(), "{s} should fail");
        }
    }
}
