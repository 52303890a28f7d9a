//! Go-style durations (`"1h30m"`, `"45s"`, `"500ms"`, `"1.5h"`), the form Testkube uses for
//! timeouts. Negative and zero durations are rejected: a timeout of zero means nothing useful.

use std::time::Duration;

/// Longest duration accepted anywhere in a workflow (30 days); beyond that it is a typo.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Parses a Go duration string. The error is a short phrase for a `FieldError` message.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let not_a_duration =
        || format!("{text:?} is not a duration (use e.g. \"30s\", \"5m\", \"1h30m\", \"500ms\")");
    if text.is_empty() {
        return Err(not_a_duration());
    }
    if text == "0" {
        // Go accepts a bare "0"; a zero timeout is still meaningless.
        return Err(format!("{text:?} must be longer than zero"));
    }
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut total_nanos: f64 = 0.0;
    while i < bytes.len() {
        // Number: digits with at most one decimal point, at least one digit.
        let start = i;
        let mut seen_dot = false;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || (bytes[i] == b'.' && !seen_dot)) {
            seen_dot |= bytes[i] == b'.';
            i += 1;
        }
        let number = &text[start..i];
        if !number.bytes().any(|b| b.is_ascii_digit()) {
            return Err(not_a_duration());
        }
        let value: f64 = number.parse().map_err(|_| not_a_duration())?;
        // Unit: the longest of the known unit names starting here.
        let rest = &text[i..];
        let (unit_nanos, unit_len) = unit(rest).ok_or_else(not_a_duration)?;
        i += unit_len;
        total_nanos += value * unit_nanos;
    }
    if total_nanos <= 0.0 {
        return Err(format!("{text:?} must be longer than zero"));
    }
    if total_nanos > MAX_DURATION.as_nanos() as f64 {
        return Err(format!("{text:?} is longer than the limit of 720h"));
    }
    Ok(Duration::from_nanos(total_nanos.round() as u64))
}

fn unit(rest: &str) -> Option<(f64, usize)> {
    const UNITS: [(&str, f64); 8] = [
        ("ns", 1.0),
        ("us", 1e3),
        ("µs", 1e3),
        ("μs", 1e3),
        ("ms", 1e6),
        ("s", 1e9),
        ("m", 60e9),
        ("h", 3600e9),
    ];
    // Multi-letter units come first so "ms" wins over "m".
    UNITS
        .iter()
        .find(|(name, _)| rest.starts_with(name))
        .map(|(name, nanos)| (*nanos, name.len()))
}

/// Formats a duration the way Go prints it (`1h30m0s` style, trimmed: `1h30m`, `45s`, `500ms`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return format!("{}ns", d.as_nanos());
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let mut secs = d.as_secs();
    let mut out = String::new();
    let h = secs / 3600;
    secs %= 3600;
    let m = secs / 60;
    secs %= 60;
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    let rem_ms = d.subsec_millis();
    if secs > 0 || rem_ms > 0 {
        if rem_ms > 0 {
            out.push_str(&format!("{secs}.{rem_ms:03}s"));
        } else {
            out.push_str(&format!("{secs}s"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_go_durations() {
        let cases = [
            ("45s", Duration::from_secs(45)),
            ("5m", Duration::from_secs(300)),
            ("1h30m", Duration::from_secs(5400)),
            ("2m30s", Duration::from_secs(150)),
            ("500ms", Duration::from_millis(500)),
            ("1.5h", Duration::from_secs(5400)),
            ("1h0m0s", Duration::from_secs(3600)),
            ("250us", Duration::from_micros(250)),
            ("250µs", Duration::from_micros(250)),
            ("10ns", Duration::from_nanos(10)),
            ("1m0.5s", Duration::from_millis(60_500)),
            ("720h", MAX_DURATION),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for text in [
            "", "5x", "5", "m", "1h30", "-5s", "+5s", "1.2.3s", "5 s", " 5s", "5s ", "1d", "ms",
            "1hh", ".s", "1e3s",
        ] {
            let err = parse_duration(text).unwrap_err();
            assert_eq!(
                err,
                format!(
                    "{text:?} is not a duration (use e.g. \"30s\", \"5m\", \"1h30m\", \"500ms\")"
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_zero_and_huge() {
        assert_eq!(
            parse_duration("0"),
            Err("\"0\" must be longer than zero".into())
        );
        assert_eq!(
            parse_duration("0s"),
            Err("\"0s\" must be longer than zero".into())
        );
        assert_eq!(
            parse_duration("721h"),
            Err("\"721h\" is longer than the limit of 720h".into())
        );
        assert_eq!(
            parse_duration("99999999999999999999h"),
            Err("\"99999999999999999999h\" is longer than the limit of 720h".into())
        );
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(45)), "45s");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.500s");
        assert_eq!(format_duration(Duration::from_nanos(10)), "10ns");
        for text in ["1h30m", "45s", "500ms", "2m30s", "1.500s", "10ns"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d, "{text}");
        }
    }
}
