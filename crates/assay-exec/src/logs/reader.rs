//! Answering log queries from the on-disk format without loading the log: the last line is
//! found by reading backwards from the end, a line by the sparse index, a step's lines by
//! the segment list, and grep streams records one at a time.

use super::{
    INDEX_EVERY, INDEX_FILE, LOG_FILE, Record, SEGMENTS_FILE, STEPS_FILE, StepEntry,
    micros_to_time, parse_record,
};
use assay_core::execution::{LogLine, LogPage, LogQuery};
use assay_core::{Error, Result};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub(crate) const DEFAULT_TAIL: u64 = 200;
pub(crate) const DEFAULT_MAX_LINES: u64 = 1000;
pub(crate) const MAX_MAX_LINES: u64 = 10_000;
const MAX_GREP_LEN: usize = 1024;
const BACKWARD_CHUNK: u64 = 64 * 1024;

/// A consistent-enough snapshot of one execution's log for answering a query.
pub(crate) struct LogView {
    log_path: PathBuf,
    index_path: PathBuf,
    pub(crate) steps: Vec<StepEntry>,
    segments: Vec<(u64, usize)>,
    pub(crate) last_line: u64,
}

impl LogView {
    /// `None` when the execution has not written a log (yet).
    pub(crate) fn open(dir: &Path) -> std::io::Result<Option<Self>> {
        let log_path = dir.join(LOG_FILE);
        let mut file = match File::open(&log_path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let steps = read_steps(dir)?;
        let segments = read_segments(dir)?;
        let last_line = last_line(&mut file)?;
        Ok(Some(Self {
            log_path,
            index_path: dir.join(INDEX_FILE),
            steps,
            segments,
            last_line,
        }))
    }

    /// A reader positioned at the first record numbered `line` or more (and that offset).
    pub(crate) fn reader_at(&self, line: u64) -> std::io::Result<(BufReader<File>, u64)> {
        let offset = index_offset(&self.index_path, line)?;
        position_at(&self.log_path, offset, line)
    }

    /// Calls `f` on each record numbered `from..=to` until it returns false.
    pub(crate) fn scan(
        &self,
        from: u64,
        to: u64,
        mut f: impl FnMut(&Record<'_>) -> bool,
    ) -> std::io::Result<()> {
        if from > to {
            return Ok(());
        }
        let (mut reader, _) = self.reader_at(from)?;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf)? == 0 || buf.last() != Some(&b'\n') {
                return Ok(());
            }
            let Some(record) = parse_record(&buf[..buf.len() - 1]) else {
                continue;
            };
            if record.number > to {
                return Ok(());
            }
            if record.number >= from && !f(&record) {
                return Ok(());
            }
        }
    }

    /// Inclusive line ranges holding the given steps' lines (all lines when `None`).
    pub(crate) fn ranges(&self, steps: Option<&BTreeSet<usize>>) -> Vec<(u64, u64)> {
        let Some(steps) = steps else {
            return if self.last_line > 0 {
                vec![(1, self.last_line)]
            } else {
                Vec::new()
            };
        };
        let mut out: Vec<(u64, u64)> = Vec::new();
        for (i, (first, step)) in self.segments.iter().enumerate() {
            let end = self
                .segments
                .get(i + 1)
                .map_or(self.last_line, |(next, _)| next.saturating_sub(1))
                .min(self.last_line);
            if !steps.contains(step) || *first > end {
                continue;
            }
            match out.last_mut() {
                Some(last) if last.1 + 1 == *first => last.1 = end,
                _ => out.push((*first, end)),
            }
        }
        out
    }

    /// References of the steps that have at least one line, in order of appearance.
    pub(crate) fn present_steps(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (i, (first, step)) in self.segments.iter().enumerate() {
            let end = self
                .segments
                .get(i + 1)
                .map_or(self.last_line, |(next, _)| next.saturating_sub(1));
            if *first <= end.min(self.last_line) && seen.insert(*step) {
                out.push(self.step_reference(*step));
            }
        }
        out
    }

    pub(crate) fn step_reference(&self, step: usize) -> String {
        self.steps
            .get(step)
            .map_or_else(|| format!("#{step}"), |s| s.reference.clone())
    }

    pub(crate) fn to_line(&self, record: &Record<'_>) -> LogLine {
        LogLine {
            number: record.number,
            step: self.step_reference(record.step),
            time: micros_to_time(record.micros),
            text: String::from_utf8_lossy(record.text).into_owned(),
        }
    }
}

/// The step table written when the log was created.
pub(crate) fn read_steps(dir: &Path) -> std::io::Result<Vec<StepEntry>> {
    match std::fs::read(dir.join(STEPS_FILE)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn read_segments(dir: &Path) -> std::io::Result<Vec<(u64, usize)>> {
    let text = match std::fs::read_to_string(dir.join(SEGMENTS_FILE)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    // A trailing line without newline may be half written: ignore it.
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    Ok(complete
        .lines()
        .filter_map(|l| {
            let (first, step) = l.split_once('\t')?;
            Some((first.parse().ok()?, step.parse().ok()?))
        })
        .collect())
}

/// Number of the last complete record, read backwards from the end of the file.
fn last_line(file: &mut File) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    let Some(end) = rfind_newline(file, len)? else {
        return Ok(0);
    };
    let start = rfind_newline(file, end)?.map_or(0, |p| p + 1);
    // Only the leading number is needed; records are bounded but need not be read whole.
    let mut head = vec![0u8; usize::try_from((end - start).min(32)).unwrap_or(32)];
    file.read_exact_at(&mut head, start)?;
    let digits: Vec<u8> = head
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    Ok(std::str::from_utf8(&digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0))
}

/// Position of the last `\n` strictly before `before`.
fn rfind_newline(file: &File, before: u64) -> std::io::Result<Option<u64>> {
    let mut end = before;
    let mut buf = vec![0u8; BACKWARD_CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(BACKWARD_CHUNK);
        let chunk = &mut buf[..(end - start) as usize];
        file.read_exact_at(chunk, start)?;
        if let Some(pos) = chunk.iter().rposition(|b| *b == b'\n') {
            return Ok(Some(start + pos as u64));
        }
        end = start;
    }
    Ok(None)
}

/// Byte offset of the nearest indexed line at or before `line`.
pub(crate) fn index_offset(index_path: &Path, line: u64) -> std::io::Result<u64> {
    let index = match File::open(index_path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let entries = index.metadata()?.len() / 8;
    if entries == 0 {
        return Ok(0);
    }
    let slot = (line.saturating_sub(1) / INDEX_EVERY).min(entries - 1);
    let mut bytes = [0u8; 8];
    index.read_exact_at(&mut bytes, slot * 8)?;
    Ok(u64::from_le_bytes(bytes))
}

/// Opens the log at `offset` and skips records numbered below `line`, returning the reader
/// and the offset of the first record it will yield.
pub(crate) fn position_at(
    log_path: &Path,
    offset: u64,
    line: u64,
) -> std::io::Result<(BufReader<File>, u64)> {
    let mut file = File::open(log_path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut reader = BufReader::with_capacity(128 * 1024, file);
    let mut at = offset;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        let before = buf
            .strip_suffix(b"\n")
            .and_then(parse_record)
            .is_some_and(|r| r.number < line);
        if !before {
            break;
        }
        at += n as u64;
    }
    // Rewind to the first record not skipped.
    let mut file = reader.into_inner();
    file.seek(SeekFrom::Start(at))?;
    Ok((BufReader::with_capacity(128 * 1024, file), at))
}

/// Resolves a step filter (reference or name) to table indexes, descendants included.
pub(crate) fn resolve_step(steps: &[StepEntry], wanted: &str) -> Result<BTreeSet<usize>> {
    let mut matched: BTreeSet<usize> = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.reference == wanted)
        .map(|(i, _)| i)
        .collect();
    if matched.is_empty() {
        matched = steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.name == wanted)
            .map(|(i, _)| i)
            .collect();
    }
    if matched.is_empty() {
        let valid = steps
            .iter()
            .map(|s| format!("{} ({})", s.reference, s.name))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Error::invalid(
            "step",
            format!("unknown step {wanted:?}; valid steps (reference (name)): {valid}"),
        ));
    }
    // A group stands for everything below it.
    for (i, step) in steps.iter().enumerate() {
        let mut parent = step.parent;
        let mut hops = 0;
        while let Some(p) = parent {
            if matched.contains(&p) {
                matched.insert(i);
                break;
            }
            hops += 1;
            if hops > steps.len() {
                break;
            }
            parent = steps.get(p).and_then(|s| s.parent);
        }
    }
    Ok(matched)
}

pub(crate) fn compile_grep(pattern: &str) -> Result<regex::bytes::Regex> {
    if pattern.len() > MAX_GREP_LEN {
        return Err(Error::invalid(
            "grep",
            format!("pattern is longer than {MAX_GREP_LEN} bytes"),
        ));
    }
    regex::bytes::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .dfa_size_limit(4 << 20)
        .build()
        .map_err(|e| Error::invalid("grep", format!("invalid regular expression: {e}")))
}

/// The last `n` lines of `ranges` as ranges again.
fn tail_of(ranges: &[(u64, u64)], n: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut left = n;
    for (from, to) in ranges.iter().rev() {
        if left == 0 {
            break;
        }
        let len = to - from + 1;
        if len <= left {
            out.push((*from, *to));
            left -= len;
        } else {
            out.push((to - left + 1, *to));
            left = 0;
        }
    }
    out.reverse();
    out
}

/// The first `n` lines of `ranges`.
fn head_of(ranges: &[(u64, u64)], n: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut left = n;
    for (from, to) in ranges {
        if left == 0 {
            break;
        }
        let len = to - from + 1;
        if len <= left {
            out.push((*from, *to));
            left -= len;
        } else {
            out.push((*from, from + left - 1));
            left = 0;
        }
    }
    out
}

fn count(ranges: &[(u64, u64)]) -> u64 {
    ranges.iter().map(|(f, t)| t - f + 1).sum()
}

/// Answers a `LogQuery`. Semantics:
/// - nothing given: the last 200 lines;
/// - `from_line`/`to_line`: that inclusive range (global line numbers);
/// - `tail`: the last N lines (of the range, if one is given too);
/// - `grep`: only matching lines, searched in the window above or, with neither range
///   nor tail, in the whole log; the first `max_lines` matches are returned;
/// - `step`: only that step's lines (a group includes its children); `total_lines`
///   counts the filtered log.
///
/// Without grep a window larger than `max_lines` keeps its end for tails and its start
/// for ranges; `truncated` says lines were left out.
pub(crate) fn query(dir: &Path, query: &LogQuery) -> Result<LogPage> {
    let max_lines = match query.max_lines {
        None => DEFAULT_MAX_LINES,
        Some(0) => return Err(Error::invalid("max_lines", "must be at least 1")),
        Some(n) => n.min(MAX_MAX_LINES),
    };
    if let (Some(from), Some(to)) = (query.from_line, query.to_line)
        && from > to
    {
        return Err(Error::invalid(
            "from_line",
            "must not be greater than to_line",
        ));
    }
    let grep = query.grep.as_deref().map(compile_grep).transpose()?;
    let Some(view) = LogView::open(dir).map_err(Error::internal)? else {
        return Ok(LogPage {
            lines: Vec::new(),
            total_lines: 0,
            truncated: false,
            steps: Vec::new(),
        });
    };
    let filter = query
        .step
        .as_deref()
        .map(|s| resolve_step(&view.steps, s))
        .transpose()?;
    let all = view.ranges(filter.as_ref());
    let total_lines = count(&all);

    let ranged = query.from_line.is_some() || query.to_line.is_some();
    let mut window: Vec<(u64, u64)> = if ranged {
        let from = query.from_line.unwrap_or(1).max(1);
        let to = query.to_line.unwrap_or(u64::MAX);
        all.iter()
            .filter_map(|(f, t)| {
                let (f, t) = ((*f).max(from), (*t).min(to));
                (f <= t).then_some((f, t))
            })
            .collect()
    } else {
        all.clone()
    };
    let tail = match (query.tail, ranged, grep.is_some()) {
        (Some(n), _, _) => Some(n),
        (None, false, false) => Some(DEFAULT_TAIL),
        _ => None,
    };
    if let Some(n) = tail {
        window = tail_of(&window, n);
    }

    let mut lines = Vec::new();
    let mut truncated = false;
    if let Some(re) = &grep {
        'outer: for (from, to) in &window {
            let mut stop = false;
            view.scan(*from, *to, |record| {
                if filter.as_ref().is_some_and(|f| !f.contains(&record.step)) {
                    return true;
                }
                if !re.is_match(record.text) {
                    return true;
                }
                if lines.len() as u64 >= max_lines {
                    truncated = true;
                    stop = true;
                    return false;
                }
                lines.push(view.to_line(record));
                true
            })
            .map_err(Error::internal)?;
            if stop {
                break 'outer;
            }
        }
    } else {
        if count(&window) > max_lines {
            truncated = true;
            window = if tail.is_some() {
                tail_of(&window, max_lines)
            } else {
                head_of(&window, max_lines)
            };
        }
        for (from, to) in &window {
            view.scan(*from, *to, |record| {
                if filter.as_ref().is_none_or(|f| f.contains(&record.step)) {
                    lines.push(view.to_line(record));
                }
                true
            })
            .map_err(Error::internal)?;
        }
    }
    Ok(LogPage {
        lines,
        total_lines,
        truncated,
        steps: view.present_steps(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn tail_and_head_cut_ranges() {
        let r = vec![(1, 10), (20, 24)];
        assert_eq!(tail_of(&r, 7), vec![(9, 10), (20, 24)]);
        assert_eq!(tail_of(&r, 100), r);
        assert_eq!(head_of(&r, 12), vec![(1, 10), (20, 21)]);
        assert_eq!(count(&r), 15);
    }
}
