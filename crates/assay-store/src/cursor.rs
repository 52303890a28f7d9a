//! Opaque page cursors: the sort key of the last item returned.
//!
//! A cursor is hex of `payload || check`, where `check` is the first 4 bytes of a
//! SHA-256 over a domain tag and the payload. The check is not a secret (anyone could
//! forge a cursor, and that would only move the start of a page within what the caller
//! may already list); it makes edited, truncated or cross-list cursors fail loudly as
//! `Invalid` instead of silently returning a wrong page.

use assay_core::{Error, Result, Timestamp};
use sha2::{Digest, Sha256};
use uuid::Uuid;

const CHECK_LEN: usize = 4;

/// Position after an execution in newest-first order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutionCursor {
    pub queued_at_micros: i64,
    pub id: Uuid,
}

/// Position after a workflow or template in name order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameCursor {
    pub name: String,
}

fn check(payload: &[u8]) -> [u8; CHECK_LEN] {
    let digest = Sha256::new()
        .chain_update(b"assay-cursor-v1\0")
        .chain_update(payload)
        .finalize();
    let mut out = [0u8; CHECK_LEN];
    out.copy_from_slice(&digest[..CHECK_LEN]);
    out
}

fn seal(payload: String) -> String {
    let mut bytes = payload.into_bytes();
    let c = check(&bytes);
    bytes.extend_from_slice(&c);
    hex::encode(bytes)
}

fn invalid() -> Error {
    Error::invalid(
        "cursor",
        "is not a cursor returned by this list; start again without a cursor",
    )
}

/// The payload, after checking hex and the check bytes, with `prefix` stripped.
fn open(cursor: &str, prefix: &str) -> Result<String> {
    let bytes = hex::decode(cursor).map_err(|_| invalid())?;
    if bytes.len() <= CHECK_LEN {
        return Err(invalid());
    }
    let (payload, c) = bytes.split_at(bytes.len() - CHECK_LEN);
    if check(payload) != c {
        return Err(invalid());
    }
    let text = std::str::from_utf8(payload).map_err(|_| invalid())?;
    text.strip_prefix(prefix)
        .map(str::to_owned)
        .ok_or_else(invalid)
}

impl ExecutionCursor {
    const PREFIX: &'static str = "x1|";

    pub fn after(queued_at: Timestamp, id: Uuid) -> Self {
        Self {
            queued_at_micros: crate::codec::to_micros(queued_at),
            id,
        }
    }

    pub fn encode(&self) -> String {
        seal(format!(
            "{}{}|{}",
            Self::PREFIX,
            self.queued_at_micros,
            self.id.as_simple()
        ))
    }

    pub fn decode(cursor: &str) -> Result<Self> {
        let payload = open(cursor, Self::PREFIX)?;
        let (micros, id) = payload.split_once('|').ok_or_else(invalid)?;
        Ok(Self {
            queued_at_micros: micros.parse().map_err(|_| invalid())?,
            id: Uuid::try_parse(id).map_err(|_| invalid())?,
        })
    }

    pub fn queued_at(&self) -> Result<Timestamp> {
        crate::codec::from_micros(self.queued_at_micros).map_err(|_| invalid())
    }
}

impl NameCursor {
    const PREFIX: &'static str = "n1|";

    pub fn encode(&self) -> String {
        seal(format!("{}{}", Self::PREFIX, self.name))
    }

    pub fn decode(cursor: &str) -> Result<Self> {
        Ok(Self {
            name: open(cursor, Self::PREFIX)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn is_cursor_error(r: Result<impl std::fmt::Debug>) -> bool {
        matches!(r, Err(Error::Invalid(ref v)) if v.len() == 1 && v[0].path == "cursor")
    }

    #[test]
    fn round_trips() {
        let c = ExecutionCursor {
            queued_at_micros: 1_700_000_000_123_456,
            id: Uuid::now_v7(),
        };
        assert_eq!(ExecutionCursor::decode(&c.encode()).unwrap(), c);
        let n = NameCursor {
            name: "smoke-test".into(),
        };
        assert_eq!(NameCursor::decode(&n.encode()).unwrap(), n);
    }

    #[test]
    fn rejects_tampering_and_cross_use() {
        let c = ExecutionCursor {
            queued_at_micros: 42,
            id: Uuid::from_u128(0x0192_7d3e_aa00_7000_8000_0000_0000_0001),
        }
        .encode();
        // Flip one hex digit anywhere.
        for i in 0..c.len() {
            let mut t = c.clone().into_bytes();
            t[i] = if t[i] == b'0' { b'1' } else { b'0' };
            let t = String::from_utf8(t).unwrap();
            assert!(is_cursor_error(ExecutionCursor::decode(&t)), "{t}");
        }
        assert!(is_cursor_error(ExecutionCursor::decode("")));
        assert!(is_cursor_error(ExecutionCursor::decode("zz")));
        assert!(is_cursor_error(ExecutionCursor::decode(&c[..c.len() - 2])));
        let n = NameCursor { name: "a".into() }.encode();
        assert!(is_cursor_error(ExecutionCursor::decode(&n)));
        assert!(is_cursor_error(NameCursor::decode(&c)));
    }
}
