//! Appending: positions in each organization's chain are assigned under a lock on the
//! organization's `audit_heads` row, in one transaction with the inserts.

use crate::audit_chain::{GENESIS_PREV_HASH, chain_hash};
use crate::backend::{Backend, RowExt, WriteTx};
use crate::codec::{outcome_str, principal_kind_str, to_json};
use crate::error::{db, unique};
use crate::sql::{Arg, Sql};
use assay_core::audit::AuditEvent;
use assay_core::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// Rows per multi-row `INSERT` (12 parameters each; well below both engines' limits).
const ROWS_PER_INSERT: usize = 500;

/// One event: a batch of one.
pub async fn append<B: Backend>(conn: &B, event: &mut AuditEvent) -> Result<()> {
    append_batch(conn, std::slice::from_mut(event)).await
}

/// Group commit: every event in ONE transaction, chained in slice order within its
/// organization. Serialized per organization by its head row (`FOR UPDATE` on
/// PostgreSQL, so other organizations proceed in parallel; the single writer on
/// SQLite). Heads are locked in organization-ID order, so two batches sharing
/// organizations cannot deadlock. Durable when this returns; on any failure nothing is
/// stored and `events` are left unchanged.
pub async fn append_batch<B: Backend>(conn: &B, events: &mut [AuditEvent]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut tx = conn.begin().await.map_err(db)?;
    let orgs: BTreeSet<Uuid> = events.iter().map(|e| e.org_id).collect();
    let mut heads = BTreeMap::new();
    for org_id in orgs {
        heads.insert(org_id, lock_head::<B>(&mut tx, org_id).await?);
    }

    let mut chained = Vec::with_capacity(events.len());
    for event in events.iter() {
        let (seq, hash) = heads
            .get_mut(&event.org_id)
            .ok_or_else(|| Error::Internal("audit head not locked".into()))?;
        let mut c = event.clone();
        c.seq = *seq + 1;
        c.prev_hash = std::mem::take(hash);
        c.hash = chain_hash(&c);
        *seq = c.seq;
        hash.clone_from(&c.hash);
        chained.push(c);
    }
    for rows in chained.chunks(ROWS_PER_INSERT) {
        tx.execute(insert_rows(rows)?).await.map_err(unique(
            "an audit event with the same ID was already appended",
        ))?;
    }
    for (org_id, (seq, hash)) in heads {
        tx.execute(
            Sql::new("UPDATE audit_heads SET seq = $1, hash = $2 WHERE org_id = $3")
                .arg(seq)
                .arg(hash)
                .arg(org_id),
        )
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    for (event, c) in events.iter_mut().zip(chained) {
        *event = c;
    }
    Ok(())
}

/// The organization's head (last seq, and the hash the next event links to), locked
/// for the rest of the transaction; created on the organization's first event. One
/// statement: the no-op `DO UPDATE` both locks the existing row (like `FOR UPDATE` on
/// PostgreSQL; SQLite's single writer already serializes) and lets `RETURNING` report it,
/// and a concurrent first append waits on the unique key, then takes this path.
async fn lock_head<B: Backend>(tx: &mut B::Tx, org_id: Uuid) -> Result<(i64, String)> {
    let head = tx
        .fetch_optional(
            Sql::new(
                "INSERT INTO audit_heads (org_id, seq, hash) VALUES ($1, 0, '') \
                 ON CONFLICT (org_id) DO UPDATE SET seq = audit_heads.seq \
                 RETURNING seq, hash",
            )
            .arg(org_id),
        )
        .await
        .map_err(db)?
        .ok_or_else(|| Error::Internal("audit head missing after upsert".into()))?;
    let seq = head.i64("seq").map_err(db)?;
    let hash = head.text("hash").map_err(db)?;
    Ok((
        seq,
        if hash.is_empty() {
            GENESIS_PREV_HASH.to_owned()
        } else {
            hash
        },
    ))
}

fn insert_rows(events: &[AuditEvent]) -> Result<Sql> {
    let mut q = Sql::new(
        "INSERT INTO audit_events (org_id, seq, id, time, env_id, actor_id, actor_kind, \
         actor_name, action, outcome, hash, event) VALUES ",
    );
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.bind_tuple([
            Arg::Uuid(e.org_id),
            Arg::I64(e.seq),
            Arg::Uuid(e.id),
            Arg::Time(e.time),
            Arg::OptUuid(e.env_id),
            Arg::Uuid(e.actor.id),
            Arg::Text(principal_kind_str(e.actor.kind).to_owned()),
            Arg::Text(e.actor.name.clone()),
            Arg::Text(e.action.clone()),
            Arg::Text(outcome_str(e.outcome).to_owned()),
            Arg::Text(e.hash.clone()),
            Arg::Text(to_json(e)?),
        ]);
    }
    Ok(q)
}
