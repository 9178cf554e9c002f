//! Prometheus's `model.Duration`: `1y2w3d4h5m6s7ms`, each unit at most once and in that order,
//! plus its canonical `String()` form, which promtool prints in unit-test messages.

use fenghuo_storage_api::model::duration::UNITS;

/// Prometheus's `model.Duration.String()`: `0s`, `1m30s`, `1w`, `1y2d`.
pub use fenghuo_storage_api::model::duration::format_millis as format_duration;

/// Parses a Prometheus duration into milliseconds; the error text is Prometheus's.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if s.is_empty() {
        return Err("empty duration string".into());
    }
    if s == "0" {
        return Ok(0);
    }
    let invalid = || format!("not a valid duration string: {s:?}");
    let b = s.as_bytes();
    let mut i = 0;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(invalid());
        }
        let n: i64 = s[start..i].parse().map_err(|_| invalid())?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let pos = UNITS[next_unit..]
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(invalid)?;
        let (_, mult) = UNITS[next_unit + pos];
        next_unit += pos + 1;
        total = n
            .checked_mul(mult)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| "duration out of range".to_string())?;
    }
    Ok(total)
}

/// Like [`parse_duration`] but also accepts a leading `-` (`model.ParseDurationAllowNegative`).
pub fn parse_duration_allow_negative(s: &str) -> Result<i64, String> {
    match s.strip_prefix('-') {
        Some(rest) if !rest.is_empty() => parse_duration(rest)
            .map(|v| -v)
            .map_err(|_| format!("not a valid duration string: {s:?}")),
        _ => parse_duration(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_prometheus() {
        assert_eq!(parse_duration("1m30s"), Ok(90_000));
        assert_eq!(parse_duration("1y"), Ok(365 * 86_400_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("500ms"), Ok(500));
        assert_eq!(
            parse_duration("30s1m"),
            Err("not a valid duration string: \"30s1m\"".into())
        );
        assert_eq!(
            parse_duration("1.5h"),
            Err("not a valid duration string: \"1.5h\"".into())
        );
        assert_eq!(parse_duration(""), Err("empty duration string".into()));
        assert_eq!(parse_duration_allow_negative("-5m"), Ok(-300_000));
    }

    #[test]
    fn formats_like_prometheus() {
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(90_000), "1m30s");
        assert_eq!(format_duration(7 * 86_400_000), "1w");
        assert_eq!(format_duration(3_600_000 + 1), "1h1ms");
    }
}
