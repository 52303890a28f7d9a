//! Secret masking and line assembly: output arrives in arbitrary chunks; it is cut into
//! lines (long ones split at `MAX_LINE_BYTES`) and every secret is replaced by `***`
//! before anything reaches the disk.

use super::MAX_LINE_BYTES;
use std::borrow::Cow;

const MASK: &[u8] = b"***";
/// Pieces of a multi-line secret shorter than this are not masked on their own: masking
/// every `}` or `--` in a log would destroy it while protecting nothing.
const MIN_PIECE: usize = 4;

/// Replaces secret values in a line.
#[derive(Debug, Default)]
pub(crate) struct Masker {
    matcher: Option<regex::bytes::Regex>,
    /// Used only if the secrets are too large for a regex.
    literals: Vec<Vec<u8>>,
    max_len: usize,
}

impl Masker {
    pub(crate) fn new(secrets: &[String]) -> Self {
        let mut pieces: Vec<&str> = Vec::new();
        for secret in secrets {
            if secret.contains('\n') {
                // Lines are masked one at a time, so each line of the secret is masked.
                pieces.extend(
                    secret
                        .split('\n')
                        .map(|p| p.trim_end_matches('\r'))
                        .filter(|p| p.len() >= MIN_PIECE),
                );
            } else if !secret.is_empty() {
                pieces.push(secret);
            }
        }
        pieces.sort_by_key(|p| std::cmp::Reverse(p.len()));
        pieces.dedup();
        if pieces.is_empty() {
            return Self::default();
        }
        let max_len = pieces.iter().map(|p| p.len()).max().unwrap_or(0);
        let pattern = pieces
            .iter()
            .map(|p| regex::escape(p))
            .collect::<Vec<_>>()
            .join("|");
        match regex::bytes::RegexBuilder::new(&pattern)
            .unicode(false)
            .size_limit(256 << 20)
            .build()
        {
            Ok(re) => Self {
                matcher: Some(re),
                literals: Vec::new(),
                max_len,
            },
            Err(e) => {
                tracing::warn!("secret masking falls back to plain search: {e}");
                Self {
                    matcher: None,
                    literals: pieces.iter().map(|p| p.as_bytes().to_vec()).collect(),
                    max_len,
                }
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.max_len == 0
    }

    pub(crate) fn contains_secret(&self, text: &[u8]) -> bool {
        match &self.matcher {
            Some(re) => re.is_match(text),
            None => self.literals.iter().any(|l| find(text, l, 0).is_some()),
        }
    }

    pub(crate) fn mask<'a>(&self, text: &'a [u8]) -> Cow<'a, [u8]> {
        if let Some(re) = &self.matcher {
            return re.replace_all(text, MASK);
        }
        let mut out: Cow<'a, [u8]> = Cow::Borrowed(text);
        for literal in &self.literals {
            if find(&out, literal, 0).is_some() {
                out = Cow::Owned(replace_all(&out, literal));
            }
        }
        out
    }

    /// A cut position at or before `cut` (never 0) that splits neither a secret nor a
    /// UTF-8 character, so a long line split in two cannot leak half a secret.
    pub(crate) fn safe_cut(&self, buf: &[u8], cut: usize) -> usize {
        let mut cut = cut.min(buf.len());
        if !self.is_empty() {
            let lo = cut.saturating_sub(self.max_len);
            let hi = buf.len().min(cut + self.max_len);
            if let Some((start, end)) = self.straddling(&buf[lo..hi], cut - lo) {
                // A secret longer than the window stays whole in one (masked) piece.
                cut = if start == 0 && lo == 0 {
                    end
                } else {
                    lo + start
                };
                if cut == 0 {
                    cut = lo + end;
                }
            }
        }
        // Step back from a UTF-8 continuation byte to the start of its character.
        let mut back = cut;
        while back > 0 && cut - back < 3 && buf.get(back).is_some_and(|b| b & 0xC0 == 0x80) {
            back -= 1;
        }
        if back > 0 {
            cut = back;
        }
        cut.max(1)
    }

    /// The first secret occurrence in `window` that starts before `cut` and ends after it.
    fn straddling(&self, window: &[u8], cut: usize) -> Option<(usize, usize)> {
        if let Some(re) = &self.matcher {
            return re
                .find_iter(window)
                .map(|m| (m.start(), m.end()))
                .find(|(s, e)| *s < cut && cut < *e);
        }
        self.literals.iter().find_map(|lit| {
            let mut from = 0;
            while let Some(s) = find(window, lit, from) {
                let e = s + lit.len();
                if s < cut && cut < e {
                    return Some((s, e));
                }
                from = s + 1;
            }
            None
        })
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len()).find(|&i| hay[i..].starts_with(needle))
}

fn replace_all(hay: &[u8], needle: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut at = 0;
    while let Some(s) = find(hay, needle, at) {
        out.extend_from_slice(&hay[at..s]);
        out.extend_from_slice(MASK);
        at = s + needle.len();
    }
    out.extend_from_slice(&hay[at..]);
    out
}

/// What is already known about a line piece, so per-line work can be skipped: whole
/// chunks are checked once for secrets and UTF-8 validity, which is far cheaper than
/// checking each of their lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Known {
    /// Contains no secret.
    pub clean: bool,
    /// Is valid UTF-8.
    pub utf8: bool,
}

/// Turns a byte stream into lines. Holds at most one partial line (bounded by
/// `MAX_LINE_BYTES` plus the longest secret).
#[derive(Debug, Default)]
pub(crate) struct LineAssembler {
    pending: Vec<u8>,
}

impl LineAssembler {
    /// Feeds a chunk; `emit` receives each complete (unmasked, bounded) line piece.
    pub(crate) fn push<E>(
        &mut self,
        chunk: &[u8],
        masker: &Masker,
        emit: &mut impl FnMut(&[u8], Known) -> Result<(), E>,
    ) -> Result<(), E> {
        // Lines that lie wholly inside the chunk inherit what is true of the chunk.
        let inside = Known {
            clean: masker.is_empty() || !masker.contains_secret(chunk),
            utf8: false,
        };
        let utf8_until = match std::str::from_utf8(chunk) {
            Ok(_) => chunk.len(),
            Err(e) => e.valid_up_to(),
        };
        let mut offset = 0;
        let mut rest = chunk;
        while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
            if self.pending.is_empty() {
                let known = Known {
                    utf8: offset + pos <= utf8_until,
                    ..inside
                };
                emit_line(&rest[..pos], known, masker, emit)?;
            } else {
                self.pending.extend_from_slice(&rest[..pos]);
                let line = std::mem::take(&mut self.pending);
                emit_line(&line, Known::default(), masker, emit)?;
                self.pending = line;
                self.pending.clear();
            }
            offset += pos + 1;
            rest = &rest[pos + 1..];
        }
        self.pending.extend_from_slice(rest);
        let limit = MAX_LINE_BYTES + masker.max_len;
        while self.pending.len() > limit {
            let cut = masker.safe_cut(&self.pending, MAX_LINE_BYTES);
            emit(&self.pending[..cut], Known::default())?;
            self.pending.drain(..cut);
        }
        Ok(())
    }

    /// Emits what is left after the stream ended without a final newline.
    pub(crate) fn finish<E>(
        &mut self,
        masker: &Masker,
        emit: &mut impl FnMut(&[u8], Known) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let line = std::mem::take(&mut self.pending);
        emit_line(&line, Known::default(), masker, emit)
    }
}

fn emit_line<E>(
    line: &[u8],
    known: Known,
    masker: &Masker,
    emit: &mut impl FnMut(&[u8], Known) -> Result<(), E>,
) -> Result<(), E> {
    let mut line = line.strip_suffix(b"\r").unwrap_or(line);
    while line.len() > MAX_LINE_BYTES {
        // Cuts fall on character boundaries, so valid pieces stay valid.
        let cut = masker.safe_cut(line, MAX_LINE_BYTES);
        emit(&line[..cut], known)?;
        line = &line[cut..];
    }
    emit(line, known)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn lines(masker: &Masker, chunks: &[&[u8]]) -> Vec<String> {
        let mut out = Vec::new();
        let mut asm = LineAssembler::default();
        let mut emit = |piece: &[u8], _: Known| -> Result<(), ()> {
            out.push(String::from_utf8_lossy(&masker.mask(piece)).into_owned());
            Ok(())
        };
        for c in chunks {
            asm.push(c, masker, &mut emit).unwrap();
        }
        asm.finish(masker, &mut emit).unwrap();
        out
    }

    #[test]
    fn masks_secrets_split_across_chunks() {
        let m = Masker::new(&["hunter2".into(), String::new(), "hun".into()]);
        assert_eq!(
            lines(&m, &[b"pass=hun", b"ter2 ok\r\nx hun y\nlast"]),
            vec!["pass=*** ok", "x *** y", "last"]
        );
    }

    #[test]
    fn multi_line_secret_is_masked_line_by_line() {
        let m = Masker::new(&["-----BEGIN KEY-----\nabcdefgh\nxy\n-----END KEY-----".into()]);
        assert_eq!(
            lines(&m, &[b"-----BEGIN KEY-----\nabcdefgh\nxy\n"]),
            vec!["***", "***", "xy"]
        );
    }

    #[test]
    fn long_lines_are_split_without_cutting_a_secret() {
        let secret = "S3CR3TVALUE";
        let m = Masker::new(&[secret.into()]);
        let mut big = vec![b'a'; MAX_LINE_BYTES - 4];
        big.extend_from_slice(secret.as_bytes());
        big.extend_from_slice(&vec![b'b'; MAX_LINE_BYTES + 10]);
        let out = lines(&m, &[&big[..1000], &big[1000..]]);
        assert_eq!(out.len(), 3);
        assert!(
            out.iter()
                .all(|l| !l.contains("S3CR") && !l.contains("VALUE"))
        );
        assert_eq!(out.concat().matches("***").count(), 1);
        assert_eq!(out[0].len(), MAX_LINE_BYTES - 4);
    }

    #[test]
    fn split_respects_utf8_boundaries() {
        let m = Masker::default();
        let mut big = vec![b'a'; MAX_LINE_BYTES - 1];
        big.extend_from_slice("é".as_bytes());
        big.extend_from_slice(b"tail\n");
        let out = lines(&m, &[&big]);
        assert_eq!(
            out,
            vec!["a".repeat(MAX_LINE_BYTES - 1), "étail".to_string()]
        );
    }

    #[test]
    fn fallback_masks_without_regex() {
        let m = Masker {
            matcher: None,
            literals: vec![b"abc".to_vec()],
            max_len: 3,
        };
        assert_eq!(&*m.mask(b"xabcyabc"), b"x***y***");
        assert_eq!(m.safe_cut(b"xxabcxx", 3), 2);
    }
}
