//! Execution logs: one append-only file of numbered records per execution, with a sparse
//! line index and a step-segment list so that tails, ranges and step filters never scan
//! the whole file. See the crate docs for the layout.

pub(crate) mod follow;
pub(crate) mod live;
pub(crate) mod mask;
pub(crate) mod reader;
pub(crate) mod writer;

use serde::{Deserialize, Serialize};

/// A sparse index entry is kept for lines 1, 1 + INDEX_EVERY, 1 + 2·INDEX_EVERY, …
pub(crate) const INDEX_EVERY: u64 = 4096;
/// Longer output without a newline is split into several lines of at most this size.
pub(crate) const MAX_LINE_BYTES: usize = 64 * 1024;

pub(crate) const LOG_FILE: &str = "log";
pub(crate) const INDEX_FILE: &str = "index";
pub(crate) const SEGMENTS_FILE: &str = "segments";
pub(crate) const STEPS_FILE: &str = "steps.json";
pub(crate) const CLOSED_FILE: &str = "closed";

/// The step reference under which workspace preparation (git clone, files) is logged.
pub(crate) const CONTENT_STEP: &str = "content";

/// One row of the step table; records refer to steps by their index in this table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StepEntry {
    pub reference: String,
    pub name: String,
    #[serde(default)]
    pub parent: Option<usize>,
}

/// One log record as stored: `number \t micros \t step \t text \n`. The text never holds a
/// newline (output is split into lines before it is written), so a record is one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record<'a> {
    pub number: u64,
    pub micros: u64,
    pub step: usize,
    pub text: &'a [u8],
}

/// The record format in one place (the writer assembles the same bytes incrementally).
#[cfg(test)]
pub(crate) fn encode_record(out: &mut Vec<u8>, number: u64, micros: u64, step: usize, text: &[u8]) {
    push_decimal(out, number);
    out.push(b'\t');
    push_decimal(out, micros);
    out.push(b'\t');
    push_decimal(out, step as u64);
    out.push(b'\t');
    out.extend_from_slice(text);
    out.push(b'\n');
}

/// Parses a record without its trailing newline.
pub(crate) fn parse_record(line: &[u8]) -> Option<Record<'_>> {
    let mut fields = line.splitn(4, |b| *b == b'\t');
    let number = parse_decimal(fields.next()?)?;
    let micros = parse_decimal(fields.next()?)?;
    let step = usize::try_from(parse_decimal(fields.next()?)?).ok()?;
    let text = fields.next()?;
    Some(Record {
        number,
        micros,
        step,
        text,
    })
}

/// Formatting three integers per line with `write!` shows up in ingestion profiles.
pub(crate) fn push_decimal(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn parse_decimal(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 20 {
        return None;
    }
    bytes.iter().try_fold(0u64, |acc, b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

pub(crate) fn micros_to_time(micros: u64) -> assay_core::Timestamp {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

pub(crate) fn now_micros() -> u64 {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000;
    u64::try_from(nanos).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut out = Vec::new();
        encode_record(&mut out, 4097, 1_700_000_000_123_456, 3, b"a\tb c");
        assert_eq!(out, b"4097\t1700000000123456\t3\ta\tb c\n");
        let rec = parse_record(&out[..out.len() - 1]).unwrap();
        assert_eq!(
            rec,
            Record {
                number: 4097,
                micros: 1_700_000_000_123_456,
                step: 3,
                text: b"a\tb c"
            }
        );
        assert!(parse_record(b"12\tx\t0\ttext").is_none());
        assert!(parse_record(b"12\t5").is_none());
        let mut zero = Vec::new();
        encode_record(&mut zero, 0, 0, 0, b"");
        assert_eq!(zero, b"0\t0\t0\t\n");
    }
}
