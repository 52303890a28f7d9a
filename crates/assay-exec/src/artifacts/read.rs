//! Reading artifacts back. The requested path is hostile input: it must name an artifact in
//! the index exactly, and the file must resolve inside the artifact root.

use assay_core::execution::{Artifact, ArtifactContent, ArtifactQuery};
use assay_core::{Error, Result};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub(crate) const DEFAULT_MAX_LINES: u64 = 500;
pub(crate) const MAX_MAX_LINES: u64 = 5000;
const MAX_CONTEXT: u64 = 50;
const SNIFF_BYTES: usize = 8 * 1024;
const HEAD_HEX_BYTES: usize = 64;
/// Longer lines are cut in responses (the file itself is untouched).
const MAX_LINE_CHARS: usize = 64 * 1024;

/// The index key for an untrusted path, or `None` when the path is suspicious in any way:
/// absolute, `.`/`..`/empty segments, backslashes, NUL. The string is taken literally (the
/// HTTP layer has already decoded it once), so `..%2f` is just an odd file name that is not
/// in the index. Callers answer `None` with `NotFound`, exactly like a missing artifact, so
/// probing reveals nothing.
pub(crate) fn normalize(path: &str) -> Option<String> {
    if path.is_empty() || path.contains(['\0', '\\']) || path.starts_with('/') {
        return None;
    }
    let segments: Vec<&str> = path.split('/').collect();
    if segments.iter().any(|s| matches!(*s, "" | "." | "..")) {
        return None;
    }
    Some(segments.join("/"))
}

/// Opens an indexed artifact, refusing (as `NotFound`) anything that resolves outside the
/// artifact root or is not a regular file.
pub(crate) fn open_verified(root: &Path, rel: &str) -> std::io::Result<File> {
    let not_found = || std::io::Error::from(std::io::ErrorKind::NotFound);
    let root = std::fs::canonicalize(root)?;
    let path = std::fs::canonicalize(root.join(rel))?;
    if !path.starts_with(&root) {
        return Err(not_found());
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(&path)?;
    if !file.metadata()?.is_file() {
        return Err(not_found());
    }
    Ok(file)
}

/// Text: a window of lines (range, grep with context, capped); binary: a summary.
pub(crate) fn read_content(
    mut file: File,
    artifact: &Artifact,
    query: &ArtifactQuery,
) -> Result<ArtifactContent> {
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
    let grep = query
        .grep
        .as_deref()
        .map(crate::logs::reader::compile_grep)
        .transpose()?;

    let mut head = Vec::with_capacity(SNIFF_BYTES);
    (&mut file)
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(Error::internal)?;
    let size = file.metadata().map_err(Error::internal)?.len();
    if is_binary(&head, size as usize > head.len()) {
        return Ok(ArtifactContent::Binary {
            path: artifact.path.clone(),
            size,
            content_type: artifact.content_type.clone(),
            head_hex: hex(&head[..head.len().min(HEAD_HEX_BYTES)]),
        });
    }
    file.seek(SeekFrom::Start(0)).map_err(Error::internal)?;

    let from = query.from_line.unwrap_or(1).max(1);
    let to = query.to_line.unwrap_or(u64::MAX);
    let context = query.context.unwrap_or(0).min(MAX_CONTEXT);
    let mut selector = Selector {
        max_lines,
        context,
        out: Vec::new(),
        truncated: false,
        before: VecDeque::new(),
        after_left: 0,
    };
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut buf = Vec::new();
    let mut number = 0u64;
    while read_line_bounded(&mut reader, &mut buf).map_err(Error::internal)? {
        number += 1;
        if number < from || number > to || selector.truncated {
            continue; // still counted for total_lines
        }
        match &grep {
            None => selector.push(number, &buf),
            Some(re) if re.is_match(&buf) => selector.push_match(number, &buf),
            Some(_) => selector.push_other(number, &buf),
        }
    }
    Ok(ArtifactContent::Text {
        path: artifact.path.clone(),
        total_lines: number,
        lines: selector.out,
        truncated: selector.truncated,
    })
}

/// NUL bytes or invalid UTF-8 in the first bytes mean binary. A multi-byte character cut
/// by the sniff window does not count when more of the file follows.
fn is_binary(head: &[u8], more: bool) -> bool {
    if head.contains(&0) {
        return true;
    }
    match std::str::from_utf8(head) {
        Ok(_) => false,
        Err(e) => !(more && e.error_len().is_none()),
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// Reads one line into `buf` (without its terminator), keeping at most `MAX_LINE_CHARS`
/// bytes of it so a file without newlines cannot exhaust memory. False at end of file.
fn read_line_bounded(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    buf.clear();
    let mut any = false;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            break;
        }
        any = true;
        let (take, done) = match available.iter().position(|b| *b == b'\n') {
            Some(pos) => (pos, true),
            None => (available.len(), false),
        };
        let room = MAX_LINE_CHARS.saturating_sub(buf.len());
        buf.extend_from_slice(&available[..take.min(room)]);
        reader.consume(if done { take + 1 } else { take });
        if done {
            break;
        }
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(any)
}

/// Picks output lines: all of them, or grep matches with context, up to `max_lines`.
struct Selector {
    max_lines: u64,
    context: u64,
    out: Vec<(u64, String)>,
    truncated: bool,
    before: VecDeque<(u64, String)>,
    after_left: u64,
}

impl Selector {
    fn emit(&mut self, number: u64, text: String) {
        if self.out.last().is_some_and(|(n, _)| *n >= number) {
            return;
        }
        if self.out.len() as u64 >= self.max_lines {
            self.truncated = true;
            return;
        }
        self.out.push((number, text));
    }

    fn push(&mut self, number: u64, line: &[u8]) {
        self.emit(number, String::from_utf8_lossy(line).into_owned());
    }

    fn push_match(&mut self, number: u64, line: &[u8]) {
        while let Some((n, text)) = self.before.pop_front() {
            self.emit(n, text);
        }
        self.push(number, line);
        self.after_left = self.context;
    }

    fn push_other(&mut self, number: u64, line: &[u8]) {
        if self.after_left > 0 {
            self.after_left -= 1;
            self.push(number, line);
        } else if self.context > 0 {
            self.before
                .push_back((number, String::from_utf8_lossy(line).into_owned()));
            if self.before.len() as u64 > self.context {
                self.before.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn normalize_refuses_traversal_in_every_spelling() {
        assert_eq!(
            normalize("reports/junit.xml").as_deref(),
            Some("reports/junit.xml")
        );
        assert_eq!(
            normalize("..%2f..%2fetc%2fpasswd").as_deref(),
            Some("..%2f..%2fetc%2fpasswd")
        );
        for bad in [
            "",
            "../../etc/passwd",
            "/etc/passwd",
            "a/../../x",
            "a\\..\\b",
            "a/./b",
            "a//b",
            "a\0b",
            "..",
        ] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn binary_sniffing() {
        assert!(!is_binary(b"hello\n", false));
        assert!(is_binary(b"he\0llo", false));
        assert!(is_binary(&[0xff, 0xfe, b'a'], false));
        // "é" cut in half at the end of the sniff window is fine when more follows.
        assert!(!is_binary(&[b'a', 0xc3], true));
        assert!(is_binary(&[b'a', 0xc3], false));
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
    }

    #[test]
    fn bounded_lines() {
        let data = format!("a\r\n{}\nlast", "x".repeat(MAX_LINE_CHARS + 10));
        let mut r = BufReader::with_capacity(1024, data.as_bytes());
        let mut buf = Vec::new();
        assert!(read_line_bounded(&mut r, &mut buf).unwrap());
        assert_eq!(buf, b"a");
        assert!(read_line_bounded(&mut r, &mut buf).unwrap());
        assert_eq!(buf.len(), MAX_LINE_CHARS);
        assert!(read_line_bounded(&mut r, &mut buf).unwrap());
        assert_eq!(buf, b"last");
        assert!(!read_line_bounded(&mut r, &mut buf).unwrap());
    }
}
