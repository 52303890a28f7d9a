//! Printing: aligned tables for people, JSON or YAML for programs, and the small
//! formatters (ages, durations, key=value lists) the tables use.

use anyhow::Context as _;
use assay_core::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Yaml,
}

impl Format {
    pub fn is_table(self) -> bool {
        self == Format::Table
    }
}

/// Prints `value` as JSON/YAML, or calls `table` to print it for people.
pub fn emit<T: Serialize>(
    format: Format,
    value: &T,
    table: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        Format::Table => table(&mut out)?,
        Format::Json | Format::Yaml => structured(format, value, &mut out)?,
    }
    out.flush()?;
    Ok(())
}

/// Writes `value` as pretty JSON or YAML, ending with a newline.
pub fn structured<T: Serialize>(
    format: Format,
    value: &T,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match format {
        Format::Yaml => {
            let text = serde_saphyr::to_string(value).context("cannot write YAML")?;
            out.write_all(text.as_bytes())?;
            if !text.ends_with('\n') {
                out.write_all(b"\n")?;
            }
        }
        Format::Json | Format::Table => {
            serde_json::to_writer_pretty(&mut *out, value).context("cannot write JSON")?;
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}

/// Columns padded to the widest cell; the last column is not padded.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<const N: usize>(headers: [&str; N]) -> Self {
        Self {
            rows: vec![headers.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                if i + 1 < row.len() {
                    let pad = widths[i].saturating_sub(cell.chars().count());
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// `Label:  value` lines with the values aligned; empty values are left out.
pub fn fields(out: &mut dyn Write, rows: &[(&str, String)]) -> std::io::Result<()> {
    let width = rows
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, _)| k.chars().count() + 1)
        .max()
        .unwrap_or(0);
    for (label, value) in rows.iter().filter(|(_, v)| !v.is_empty()) {
        writeln!(out, "{:<width$}  {value}", format!("{label}:"))?;
    }
    Ok(())
}

/// `2.1s`, `3m05s`, `1h02m`.
pub fn duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 60_000 {
        // One decimal, rounded down so 59.99s never shows as 60.0s.
        format!("{}.{}s", ms / 1000, (ms % 1000) / 100)
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, (ms % 3_600_000) / 60_000)
    }
}

/// Milliseconds between two instants, if both are known.
pub fn between(start: Option<Timestamp>, end: Option<Timestamp>) -> Option<i64> {
    let d = end? - start?;
    i64::try_from(d.whole_milliseconds()).ok()
}

/// How long ago, like `kubectl`'s AGE: `42s`, `5m`, `3h`, `2d`.
pub fn age(t: Timestamp) -> String {
    age_at(t, time::OffsetDateTime::now_utc())
}

fn age_at(t: Timestamp, now: Timestamp) -> String {
    let s = (now - t).whole_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// RFC 3339 to the second, UTC.
pub fn timestamp(t: Timestamp) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

pub fn opt_timestamp(t: Option<Timestamp>) -> String {
    t.map(timestamp).unwrap_or_default()
}

/// `a=1,b=2`.
pub fn key_values(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A JSON value as a user typed it: strings without quotes.
pub fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn percent(ratio: f64) -> String {
    format!("{:.0}%", (ratio * 100.0).clamp(0.0, 100.0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use time::macros::datetime;

    #[test]
    fn tables_align_columns_and_trim_line_ends() {
        let mut t = Table::new(["NAME", "STATUS", "TAGS"]);
        t.row(vec!["smoke-1".into(), "passed".into(), String::new()]);
        t.row(vec!["e2e-12".into(), "failed".into(), "ci=true".into()]);
        let mut out = Vec::new();
        t.write(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "NAME     STATUS  TAGS\nsmoke-1  passed\ne2e-12   failed  ci=true\n"
        );
    }

    #[test]
    fn fields_align_and_skip_empty_values() {
        let mut out = Vec::new();
        fields(
            &mut out,
            &[
                ("Name", "smoke".into()),
                ("Error", String::new()),
                ("Status", "ok".into()),
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Name:    smoke\nStatus:  ok\n"
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_ms(0), "0.0s");
        assert_eq!(duration_ms(2_149), "2.1s");
        assert_eq!(duration_ms(59_999), "59.9s");
        assert_eq!(duration_ms(185_000), "3m05s");
        assert_eq!(duration_ms(3_720_000), "1h02m");
        assert_eq!(duration_ms(-5), "0.0s");
    }

    #[test]
    fn ages_use_the_largest_unit() {
        let now = datetime!(2025-01-02 00:00:00 UTC);
        assert_eq!(age_at(datetime!(2025-01-01 23:59:18 UTC), now), "42s");
        assert_eq!(age_at(datetime!(2025-01-01 23:55:00 UTC), now), "5m");
        assert_eq!(age_at(datetime!(2025-01-01 21:00:00 UTC), now), "3h");
        assert_eq!(age_at(datetime!(2024-12-31 00:00:00 UTC), now), "2d");
        assert_eq!(age_at(datetime!(2025-01-03 00:00:00 UTC), now), "0s");
    }

    #[test]
    fn timestamps_are_utc_to_the_second() {
        assert_eq!(
            timestamp(datetime!(2025-03-04 05:06:07.89 +01:00)),
            "2025-03-04 04:06:07 UTC"
        );
    }

    #[test]
    fn yaml_and_json_end_with_a_newline() {
        let value = serde_json::json!({"name": "smoke", "tags": {"a": "1"}});
        let mut out = Vec::new();
        structured(Format::Yaml, &value, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "name: smoke\ntags:\n  a: \"1\"\n"
        );
        let mut out = Vec::new();
        structured(Format::Json, &value, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\n  \"name\": \"smoke\",\n  \"tags\": {\n    \"a\": \"1\"\n  }\n}\n"
        );
    }
}
