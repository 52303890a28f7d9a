//! Appending to an execution's log: records, the sparse index and the segment list.

use super::mask::{Known, Masker};
use super::{
    INDEX_EVERY, INDEX_FILE, LOG_FILE, SEGMENTS_FILE, STEPS_FILE, StepEntry, push_decimal,
};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;

/// The single writer of one execution's log. Line numbers are assigned here, in write order.
pub(crate) struct LogWriter {
    log: BufWriter<File>,
    index: File,
    segments: File,
    /// Bytes written to `log` so far (flushed or not).
    offset: u64,
    next_line: u64,
    segment_step: Option<usize>,
    pending_index: Vec<u8>,
    scratch: Vec<u8>,
    prefix: Vec<u8>,
    prefix_key: Option<(u64, usize)>,
    masker: Arc<Masker>,
    notify: Arc<watch::Sender<u64>>,
}

impl LogWriter {
    /// Starts a new log in `dir`, replacing any previous one.
    pub(crate) fn create(
        dir: &Path,
        steps: &[StepEntry],
        masker: Arc<Masker>,
        notify: Arc<watch::Sender<u64>>,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        // A log being (re)written is open, whatever an earlier close said.
        match std::fs::remove_file(dir.join(super::CLOSED_FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let table = serde_json::to_vec(steps).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(STEPS_FILE), table)?;
        Ok(Self {
            log: BufWriter::with_capacity(256 * 1024, File::create(dir.join(LOG_FILE))?),
            index: File::create(dir.join(INDEX_FILE))?,
            segments: File::create(dir.join(SEGMENTS_FILE))?,
            offset: 0,
            next_line: 1,
            segment_step: None,
            pending_index: Vec::new(),
            scratch: Vec::with_capacity(1024),
            prefix: Vec::new(),
            prefix_key: None,
            masker,
            notify,
        })
    }

    /// Masks secrets in one line piece (no newline inside) and appends it.
    pub(crate) fn write_piece(
        &mut self,
        step: usize,
        micros: u64,
        piece: &[u8],
        known: Known,
    ) -> std::io::Result<()> {
        let masked = if known.clean {
            std::borrow::Cow::Borrowed(piece)
        } else {
            self.masker.mask(piece)
        };
        // Masking only inserts ASCII, so validity survives it.
        if known.utf8 || std::str::from_utf8(&masked).is_ok() {
            self.append(step, micros, &masked)
        } else {
            let text = String::from_utf8_lossy(&masked).into_owned();
            self.append(step, micros, text.as_bytes())
        }
    }

    /// Appends a message of the executor itself (may span several lines).
    pub(crate) fn write_message(&mut self, step: usize, message: &str) -> std::io::Result<()> {
        let micros = super::now_micros();
        let masker = Arc::clone(&self.masker);
        let mut assembler = super::mask::LineAssembler::default();
        let mut emit = |piece: &[u8], known| self.write_piece(step, micros, piece, known);
        assembler.push(message.as_bytes(), &masker, &mut emit)?;
        assembler.finish(&masker, &mut emit)?;
        self.flush()
    }

    fn append(&mut self, step: usize, micros: u64, text: &[u8]) -> std::io::Result<()> {
        if self.segment_step != Some(step) {
            // Written before the lines it announces, so a reader never sees lines of a step
            // attributed to the previous segment.
            writeln!(self.segments, "{}\t{}", self.next_line, step)?;
            self.segment_step = Some(step);
        }
        if (self.next_line - 1).is_multiple_of(INDEX_EVERY) {
            self.pending_index
                .extend_from_slice(&self.offset.to_le_bytes());
        }
        if self.prefix_key != Some((micros, step)) {
            // "\tmicros\tstep\t" is the same for every line of a chunk.
            self.prefix.clear();
            self.prefix.push(b'\t');
            push_decimal(&mut self.prefix, micros);
            self.prefix.push(b'\t');
            push_decimal(&mut self.prefix, step as u64);
            self.prefix.push(b'\t');
            self.prefix_key = Some((micros, step));
        }
        self.scratch.clear();
        push_decimal(&mut self.scratch, self.next_line);
        self.scratch.extend_from_slice(&self.prefix);
        self.scratch.extend_from_slice(text);
        self.scratch.push(b'\n');
        self.log.write_all(&self.scratch)?;
        self.offset += self.scratch.len() as u64;
        self.next_line += 1;
        Ok(())
    }

    /// Makes everything written so far visible to readers and wakes followers.
    pub(crate) fn flush(&mut self) -> std::io::Result<()> {
        self.log.flush()?;
        if !self.pending_index.is_empty() {
            // Index entries only ever point at bytes already in the log file.
            self.index.write_all(&self.pending_index)?;
            self.pending_index.clear();
        }
        self.notify.send_replace(self.next_line - 1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::logs::mask::LineAssembler;
    use assay_core::execution::LogQuery;

    #[test]
    fn written_lines_are_masked_valid_utf8_and_queryable() {
        let tmp = tempfile::tempdir().unwrap();
        let steps = vec![StepEntry {
            reference: "1".into(),
            name: "one".into(),
            parent: None,
        }];
        let masker = Arc::new(Masker::new(&["pa55word".into()]));
        let notify = Arc::new(watch::channel(0).0);
        let mut w = LogWriter::create(tmp.path(), &steps, Arc::clone(&masker), Arc::clone(&notify))
            .unwrap();
        let mut asm = LineAssembler::default();
        let chunks: [&[u8]; 3] = [
            b"plain\nbad \xff byte\nkey=pa5",
            b"5word!\n\xc3",
            b"\xa9t\xc3\xa9\n",
        ];
        for (i, chunk) in chunks.iter().enumerate() {
            asm.push(chunk, &masker, &mut |p, k| {
                w.write_piece(0, 1_000_000 + i as u64, p, k)
            })
            .unwrap();
        }
        w.flush().unwrap();
        assert_eq!(*notify.borrow(), 4);
        let page = crate::logs::reader::query(
            tmp.path(),
            &LogQuery {
                from_line: Some(1),
                ..LogQuery::default()
            },
        )
        .unwrap();
        let texts: Vec<_> = page.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, vec!["plain", "bad \u{fffd} byte", "key=***!", "été"]);
        assert_eq!(page.lines[3].time.unix_timestamp_nanos(), 1_000_002_000);
        assert_eq!(page.lines[3].step, "1");
    }
}
