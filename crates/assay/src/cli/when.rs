//! Time arguments: spans like `30m`, `1h`, `30d`, and "since" instants given either as a
//! span back from now or as an RFC 3339 time.

use assay_core::Timestamp;

/// A span of whole seconds: `<n>s`, `<n>m`, `<n>h`, `<n>d` or `<n>w`.
pub fn parse_span(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration; use e.g. 90s, 30m, 1h, 30d, 2w"))?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "" => return Err(format!("{s:?} needs a unit: s, m, h, d or w (e.g. 30m)")),
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?}; use s, m, h, d or w (e.g. 30m)"
            ));
        }
    };
    n.checked_mul(unit_secs)
        .ok_or_else(|| format!("{s:?} is too long"))
}

/// Token expiry in whole days: `30d`, `12w`, or a plain number of days. At least one day.
pub fn parse_days(s: &str) -> Result<u32, String> {
    let s = s.trim();
    let secs = if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() {
        s.parse::<u64>()
            .map_err(|_| format!("{s:?} is too long"))?
            .saturating_mul(86_400)
    } else {
        parse_span(s)?
    };
    if secs % 86_400 != 0 {
        return Err(format!(
            "token expiry is counted in whole days; use e.g. 1d, 30d or 12w (not {s:?})"
        ));
    }
    let days = secs / 86_400;
    if days == 0 {
        return Err("an expiry must be at least 1d; for no expiry at all pass --no-expiry".into());
    }
    u32::try_from(days).map_err(|_| format!("{s:?} is too long"))
}

/// The grace period of a rotation: a span of at most 24 hours.
pub fn parse_grace(s: &str) -> Result<u64, String> {
    let secs = parse_span(s)?;
    if secs > assay_core::identity::MAX_ROTATION_GRACE_SECS {
        return Err(format!(
            "{s:?} is longer than the longest grace period, 24h"
        ));
    }
    Ok(secs)
}

/// A point in time as typed: a span back from now (`30d`) or an RFC 3339 time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Ago(u64),
    At(Timestamp),
}

impl When {
    pub fn resolve(self, now: Timestamp) -> Timestamp {
        match self {
            When::Ago(secs) => {
                let secs = i64::try_from(secs).unwrap_or(i64::MAX);
                now.checked_sub(time::Duration::seconds(secs))
                    .unwrap_or(Timestamp::UNIX_EPOCH)
            }
            When::At(t) => t,
        }
    }
}

pub fn parse_when(s: &str) -> Result<When, String> {
    if let Ok(t) = Timestamp::parse(s.trim(), &time::format_description::well_known::Rfc3339) {
        return Ok(When::At(t));
    }
    parse_span(s).map(When::Ago).map_err(|_| {
        format!("{s:?} is neither a span back from now (30d, 12h) nor an RFC 3339 time (2025-01-31T00:00:00Z)")
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use time::macros::datetime;

    #[test]
    fn spans_have_units() {
        assert_eq!(parse_span("90s").unwrap(), 90);
        assert_eq!(parse_span("30m").unwrap(), 1800);
        assert_eq!(parse_span("1h").unwrap(), 3600);
        assert_eq!(parse_span("24h").unwrap(), 86_400);
        assert_eq!(parse_span("2w").unwrap(), 14 * 86_400);
        assert!(parse_span("30").unwrap_err().contains("needs a unit"));
        assert!(parse_span("1y").unwrap_err().contains("unknown unit"));
        assert!(parse_span("h").is_err());
        assert!(parse_span("-1h").is_err());
        assert!(parse_span("99999999999999999999w").is_err());
    }

    #[test]
    fn expiries_are_whole_days() {
        assert_eq!(parse_days("30d").unwrap(), 30);
        assert_eq!(parse_days("30").unwrap(), 30);
        assert_eq!(parse_days("12w").unwrap(), 84);
        assert_eq!(parse_days("48h").unwrap(), 2);
        assert!(parse_days("36h").unwrap_err().contains("whole days"));
        assert!(parse_days("0d").unwrap_err().contains("--no-expiry"));
        assert!(parse_days("0").is_err());
    }

    #[test]
    fn grace_is_at_most_a_day() {
        assert_eq!(parse_grace("30m").unwrap(), 1800);
        assert_eq!(parse_grace("1h").unwrap(), 3600);
        assert_eq!(parse_grace("24h").unwrap(), 86_400);
        assert_eq!(parse_grace("0s").unwrap(), 0);
        assert!(parse_grace("25h").unwrap_err().contains("24h"));
        assert!(parse_grace("2d").is_err());
    }

    #[test]
    fn since_is_a_span_back_or_a_time() {
        let now = datetime!(2025-03-31 12:00:00 UTC);
        assert_eq!(
            parse_when("30d").unwrap().resolve(now),
            datetime!(2025-03-01 12:00:00 UTC)
        );
        assert_eq!(
            parse_when("2025-01-31T00:00:00Z").unwrap().resolve(now),
            datetime!(2025-01-31 00:00:00 UTC)
        );
        assert!(parse_when("yesterday").is_err());
    }
}
