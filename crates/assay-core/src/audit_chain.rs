//! The audit hash chain (DESIGN.md §5): how `prev_hash` and `hash` are computed, and how
//! to verify a run of events. The store assigns them in `append_audit`; `assay audit
//! verify` and tests check them with [`verify`].
//!
//! `hash = hex(sha256(prev_hash || event.canonical_bytes()))`, where `prev_hash` is
//! taken as its 64 ASCII hex characters and `canonical_bytes()` covers every field
//! except `hash` (so `seq` and `prev_hash` are bound into the hash). The first event of
//! an organization has `prev_hash` = [`GENESIS_PREV_HASH`].

use crate::audit::AuditEvent;
use sha2::{Digest, Sha256};

/// `prev_hash` of an organization's first event: 64 zeros.
pub const GENESIS_PREV_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of `event`, whose `seq` and `prev_hash` must already be set.
pub fn chain_hash(event: &AuditEvent) -> String {
    let digest = Sha256::new()
        .chain_update(event.prev_hash.as_bytes())
        .chain_update(event.canonical_bytes())
        .finalize();
    hex::encode(digest)
}

/// Why a run of events does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("event seq {seq}: expected seq {expected} (an event is missing or reordered)")]
    Gap { seq: i64, expected: i64 },
    #[error("event seq {seq}: prev_hash does not match the previous event's hash")]
    BrokenLink { seq: i64 },
    #[error("event seq {seq}: hash does not match its content (edited)")]
    BadHash { seq: i64 },
}

/// Verifies consecutive events of one organization. `after` is the chain position
/// before the first event: `None` when `events` starts the chain (seq 1, genesis
/// `prev_hash`), or `Some((seq, hash))` of the event just before (e.g. a checkpoint).
pub fn verify(events: &[AuditEvent], after: Option<(i64, &str)>) -> Result<(), ChainError> {
    let (mut seq, mut prev) = match after {
        Some((seq, hash)) => (seq, hash.to_owned()),
        None => (0, GENESIS_PREV_HASH.to_owned()),
    };
    for e in events {
        if e.seq != seq + 1 {
            return Err(ChainError::Gap {
                seq: e.seq,
                expected: seq + 1,
            });
        }
        if e.prev_hash != prev {
            return Err(ChainError::BrokenLink { seq: e.seq });
        }
        if chain_hash(e) != e.hash {
            return Err(ChainError::BadHash { seq: e.seq });
        }
        seq = e.seq;
        prev = e.hash.clone();
    }
    Ok(())
}
