//! Durations as Prometheus writes them in flags and configuration files
//! (`15d`, `1h30m`, `500ms`, `0s`), shared by every configuration section.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration written the Prometheus way (`15d`, `10m`, `1h30m`, `500ms`,
/// `0s`) or as a number of seconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PromDuration(pub Duration);

impl PromDuration {
    pub const fn from_millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }

    pub const fn from_secs(s: u64) -> Self {
        Self(Duration::from_secs(s))
    }

    pub fn as_millis_i64(self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// Parses `[0-9]+(ms|s|m|h|d|w|y)` repeated, units in decreasing order.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty duration string".into());
        }
        if s == "0" {
            return Ok(Self(Duration::ZERO));
        }
        let bytes = s.as_bytes();
        let mut i = 0;
        let mut total: u128 = 0;
        let mut last_unit_rank = usize::MAX;
        while i < bytes.len() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if start == i {
                return Err(format!("not a valid duration string: {s:?}"));
            }
            let n: u128 = s[start..i]
                .parse()
                .map_err(|_| format!("not a valid duration string: {s:?}"))?;
            let ustart = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            let (rank, ms) = match &s[ustart..i] {
                "" => return Err(format!("duration {s:?} is missing a unit")),
                u => match UNITS.iter().position(|(name, _)| *name == u) {
                    Some(rank) => (rank, UNITS[rank].1.unsigned_abs() as u128),
                    None => return Err(format!("unknown unit {u:?} in duration {s:?}")),
                },
            };
            if last_unit_rank != usize::MAX && rank <= last_unit_rank {
                return Err(format!("not a valid duration string: {s:?}"));
            }
            last_unit_rank = rank;
            total = total.saturating_add(n.saturating_mul(ms));
        }
        let ms = u64::try_from(total).map_err(|_| format!("duration {s:?} is too long"))?;
        Ok(Self(Duration::from_millis(ms)))
    }
}

impl fmt::Debug for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for PromDuration {
    /// Prometheus's formatting: largest units first, `0s` for zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_millis(self.as_millis_i64()))
    }
}

/// Prometheus's duration units, largest first, with their length in milliseconds.
pub const UNITS: [(&str, i64); 7] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Prometheus's `model.Duration.String()` of `ms` milliseconds: largest units first (`1y2d`,
/// `1m30s`, `1h1ms`), `0s` for zero, a leading `-` when negative.
pub fn format_millis(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    if ms < 0 {
        out.push('-');
    }
    let mut rest = ms.unsigned_abs();
    for (unit, size) in UNITS {
        let size = size.unsigned_abs();
        if rest >= size {
            out.push_str(&(rest / size).to_string());
            out.push_str(unit);
            rest %= size;
        }
    }
    out
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Secs(u64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(s) => PromDuration::parse(&s).map_err(serde::de::Error::custom),
            Raw::Secs(n) => Ok(PromDuration(Duration::from_secs(n))),
        }
    }
}

impl PromDuration {
    /// For `#[serde(deserialize_with = ...)]` on millisecond fields.
    pub fn deserialize_ms<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        PromDuration::deserialize(d).map(PromDuration::as_millis_i64)
    }

    /// For `#[serde(deserialize_with = ...)]` on `std::time::Duration` fields.
    pub fn deserialize_std<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        PromDuration::deserialize(d).map(|p| p.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_prometheus() {
        assert_eq!(format_millis(0), "0s");
        assert_eq!(format_millis(90_000), "1m30s");
        assert_eq!(format_millis(3_600_001), "1h1ms");
        assert_eq!(format_millis(-300_000), "-5m");
        assert_eq!(format_millis(i64::MIN).chars().next(), Some('-'));
        assert_eq!(PromDuration::from_secs(15 * 86_400).to_string(), "2w1d");
        assert_eq!(
            PromDuration::parse("2w1d").map(|d| d.to_string()).as_deref(),
            Ok("2w1d")
        );
    }
}
