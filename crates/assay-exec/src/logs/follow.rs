//! Following a log while it is written: read what is there, then wait for the writer's
//! notification (same process) or poll the file (another process), until the log is closed.

use super::reader::{index_offset, position_at, read_steps, resolve_step};
use super::{CLOSED_FILE, INDEX_FILE, LOG_FILE, StepEntry, micros_to_time, parse_record};
use assay_core::execution::LogLine;
use assay_core::{Error, Result};
use futures::StreamExt;
use futures::stream::BoxStream;
use std::collections::{BTreeSet, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

const POLL: Duration = Duration::from_millis(250);
const BATCH_LINES: usize = 512;

struct Follower {
    dir: PathBuf,
    live: Option<watch::Receiver<u64>>,
    step: Option<String>,
    /// Resolved once the step table exists.
    table: Option<(Vec<StepEntry>, Option<BTreeSet<usize>>)>,
    next_line: u64,
    offset: Option<u64>,
    buffer: VecDeque<LogLine>,
    done: bool,
}

struct Batch {
    lines: Vec<LogLine>,
    next_line: u64,
    offset: Option<u64>,
    at_end: bool,
}

pub(crate) fn follow(
    dir: PathBuf,
    live: Option<watch::Receiver<u64>>,
    step: Option<String>,
    after_line: u64,
) -> BoxStream<'static, Result<LogLine>> {
    let follower = Follower {
        dir,
        live,
        step,
        table: None,
        next_line: after_line.saturating_add(1),
        offset: None,
        buffer: VecDeque::new(),
        done: false,
    };
    futures::stream::unfold(follower, next).boxed()
}

async fn next(mut f: Follower) -> Option<(Result<LogLine>, Follower)> {
    loop {
        if let Some(line) = f.buffer.pop_front() {
            return Some((Ok(line), f));
        }
        if f.done {
            return None;
        }
        // Checked before reading: if the log was closed before this read, reaching its end
        // means every line has been delivered.
        let closed = f.dir.join(CLOSED_FILE).exists();
        if f.table.is_none() {
            match load_table(&f.dir, f.step.as_deref()) {
                Ok(Some(table)) => f.table = Some(table),
                Ok(None) if closed => return None,
                Ok(None) => {
                    wait(&mut f.live).await;
                    continue;
                }
                Err(e) => {
                    f.done = true;
                    return Some((Err(e), f));
                }
            }
        }
        let (steps, filter) = f.table.clone().unwrap_or_default();
        let (dir, next_line, offset) = (f.dir.clone(), f.next_line, f.offset);
        let batch = tokio::task::spawn_blocking(move || {
            read_batch(&dir, next_line, offset, &steps, filter.as_ref())
        })
        .await;
        match batch {
            Ok(Ok(batch)) => {
                f.next_line = batch.next_line;
                f.offset = batch.offset;
                f.buffer.extend(batch.lines);
                if !batch.at_end {
                    continue;
                }
                if f.buffer.is_empty() {
                    if closed {
                        return None;
                    }
                    wait(&mut f.live).await;
                }
            }
            Ok(Err(e)) => {
                f.done = true;
                return Some((Err(Error::internal(e)), f));
            }
            Err(e) => {
                f.done = true;
                return Some((Err(Error::internal(e)), f));
            }
        }
    }
}

type Table = (Vec<StepEntry>, Option<BTreeSet<usize>>);

fn load_table(dir: &Path, step: Option<&str>) -> Result<Option<Table>> {
    if !dir.join(LOG_FILE).exists() {
        return Ok(None);
    }
    let steps = read_steps(dir).map_err(Error::internal)?;
    let filter = step.map(|s| resolve_step(&steps, s)).transpose()?;
    Ok(Some((steps, filter)))
}

async fn wait(live: &mut Option<watch::Receiver<u64>>) {
    match live {
        Some(rx) => {
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        // The writer is gone; keep polling the file.
                        *live = None;
                    }
                }
                () = tokio::time::sleep(POLL) => {}
            }
        }
        None => tokio::time::sleep(POLL).await,
    }
}

/// Up to `BATCH_LINES` complete records from line `next_line` on (from `offset` once known).
fn read_batch(
    dir: &Path,
    next_line: u64,
    offset: Option<u64>,
    steps: &[StepEntry],
    filter: Option<&BTreeSet<usize>>,
) -> std::io::Result<Batch> {
    let log_path = dir.join(LOG_FILE);
    let (mut reader, mut at) = match offset {
        Some(at) => {
            let mut file = File::open(&log_path)?;
            file.seek(SeekFrom::Start(at))?;
            (BufReader::with_capacity(64 * 1024, file), at)
        }
        None => {
            let start = index_offset(&dir.join(INDEX_FILE), next_line)?;
            position_at(&log_path, start, next_line)?
        }
    };
    let mut lines = Vec::new();
    let mut next = next_line;
    let mut buf = Vec::new();
    let mut scanned = 0;
    let at_end = loop {
        if scanned >= BATCH_LINES * 8 || lines.len() >= BATCH_LINES {
            break false;
        }
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 || buf.last() != Some(&b'\n') {
            // Nothing more, or a record still being written: read it again next time.
            break true;
        }
        at += n as u64;
        scanned += 1;
        let Some(record) = parse_record(&buf[..n - 1]) else {
            continue;
        };
        if record.number < next {
            continue;
        }
        next = record.number + 1;
        if filter.is_some_and(|f| !f.contains(&record.step)) {
            continue;
        }
        lines.push(LogLine {
            number: record.number,
            step: steps
                .get(record.step)
                .map_or_else(|| format!("#{}", record.step), |s| s.reference.clone()),
            time: micros_to_time(record.micros),
            text: String::from_utf8_lossy(record.text).into_owned(),
        });
    };
    Ok(Batch {
        lines,
        next_line: next,
        offset: Some(at),
        at_end,
    })
}
