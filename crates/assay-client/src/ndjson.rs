//! Newline-delimited JSON over a chunked body: lines may span chunk boundaries, and no
//! more than one line (bounded) plus one chunk is held in memory.

use assay_core::{Error, Result};
use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt};
use serde::de::DeserializeOwned;
use std::collections::VecDeque;

/// Longest line accepted; a longer one means a broken stream, not a log line.
pub(crate) const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Splits bytes into lines, keeping the unfinished tail for the next chunk.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    partial: Vec<u8>,
    max: usize,
}

impl LineSplitter {
    pub fn new(max: usize) -> Self {
        Self {
            partial: Vec::new(),
            max,
        }
    }

    /// Complete lines found in `chunk` (without `\n` or `\r\n`; blank lines dropped).
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Vec<u8>>> {
        let mut lines = Vec::new();
        let mut rest = chunk;
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            let (head, tail) = rest.split_at(i);
            self.append(head)?;
            let line = std::mem::take(&mut self.partial);
            if let Some(line) = finish_line(line) {
                lines.push(line);
            }
            rest = &tail[1..];
        }
        self.append(rest)?;
        Ok(lines)
    }

    /// What is left when the body ends: a last line without a trailing newline.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        finish_line(std::mem::take(&mut self.partial))
    }

    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        if self.partial.len() + bytes.len() > self.max {
            self.partial.clear();
            return Err(Error::Internal(format!(
                "the server sent a stream line longer than {} bytes",
                self.max
            )));
        }
        self.partial.extend_from_slice(bytes);
        Ok(())
    }
}

fn finish_line(mut line: Vec<u8>) -> Option<Vec<u8>> {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if line.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(line)
    }
}

struct State<S> {
    body: S,
    splitter: LineSplitter,
    ready: VecDeque<Vec<u8>>,
    done: bool,
}

/// Parses each line of `body` as a `T`. The stream ends after the first error.
pub(crate) fn parse_lines<S, T>(body: S) -> BoxStream<'static, Result<T>>
where
    S: Stream<Item = Result<Bytes>> + Send + Unpin + 'static,
    T: DeserializeOwned + Send + 'static,
{
    let state = State {
        body,
        splitter: LineSplitter::new(MAX_LINE_BYTES),
        ready: VecDeque::new(),
        done: false,
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(line) = st.ready.pop_front() {
                let item = serde_json::from_slice::<T>(&line).map_err(|e| {
                    Error::Internal(format!(
                        "the server sent an unreadable stream line ({e}): {}",
                        crate::problem::snippet(&line)
                    ))
                });
                if item.is_err() {
                    st.done = true;
                    st.ready.clear();
                }
                return Some((item, st));
            }
            if st.done {
                return None;
            }
            match st.body.next().await {
                Some(Ok(chunk)) => match st.splitter.push(&chunk) {
                    Ok(lines) => st.ready.extend(lines),
                    Err(e) => {
                        st.done = true;
                        return Some((Err(e), st));
                    }
                },
                Some(Err(e)) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
                None => {
                    st.done = true;
                    st.ready.extend(st.splitter.finish());
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use futures::stream;

    fn text(lines: Vec<Vec<u8>>) -> Vec<String> {
        lines
            .into_iter()
            .map(|l| String::from_utf8(l).unwrap())
            .collect()
    }

    #[test]
    fn lines_split_across_chunks_are_joined() {
        let mut s = LineSplitter::new(1024);
        assert_eq!(
            text(s.push(b"{\"a\":1}\n{\"a\"").unwrap()),
            vec!["{\"a\":1}"]
        );
        assert_eq!(text(s.push(b":2").unwrap()), Vec::<String>::new());
        assert_eq!(
            text(s.push(b"}\r\n\n{\"a\":3}\n{\"a\":4}").unwrap()),
            vec!["{\"a\":2}", "{\"a\":3}"]
        );
        assert_eq!(s.finish(), Some(b"{\"a\":4}".to_vec()));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn a_newline_alone_in_a_chunk_ends_the_pending_line() {
        let mut s = LineSplitter::new(1024);
        assert!(s.push(b"abc").unwrap().is_empty());
        assert_eq!(text(s.push(b"\n").unwrap()), vec!["abc"]);
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn overlong_lines_are_an_error_not_unbounded_memory() {
        let mut s = LineSplitter::new(8);
        assert!(s.push(b"12345").unwrap().is_empty());
        let e = s.push(b"6789").unwrap_err();
        assert_eq!(
            e.to_string(),
            "internal error: the server sent a stream line longer than 8 bytes"
        );
        // A complete line at exactly the limit is fine.
        let mut s = LineSplitter::new(8);
        assert_eq!(text(s.push(b"12345678\n").unwrap()), vec!["12345678"]);
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Item {
        n: u32,
    }

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes>> + Unpin + use<> {
        stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn parses_every_line_including_a_final_unterminated_one() {
        let items: Vec<Item> = parse_lines(chunks(&[b"{\"n\":1}\n{\"n", b"\":2}\n", b"{\"n\":3}"]))
            .map(|r| r.unwrap())
            .collect()
            .await;
        assert_eq!(items, vec![Item { n: 1 }, Item { n: 2 }, Item { n: 3 }]);
    }

    #[tokio::test]
    async fn a_garbled_line_ends_the_stream_with_an_error() {
        let got: Vec<Result<Item>> = parse_lines(chunks(&[b"{\"n\":1}\nnot json\n{\"n\":3}\n"]))
            .collect()
            .await;
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].as_ref().unwrap(), &Item { n: 1 });
        let e = got[1].as_ref().unwrap_err().to_string();
        assert!(
            e.starts_with("internal error: the server sent an unreadable stream line")
                && e.ends_with(": not json"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_body_error_is_passed_on_after_the_lines_before_it() {
        let body = stream::iter(vec![
            Ok(Bytes::from_static(b"{\"n\":1}\n{\"n\":")),
            Err(Error::Unavailable("connection lost".into())),
        ]);
        let got: Vec<Result<Item>> = parse_lines(body).collect().await;
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].as_ref().unwrap(), &Item { n: 1 });
        assert_eq!(
            got[1].as_ref().unwrap_err().to_string(),
            "unavailable: connection lost"
        );
    }
}
