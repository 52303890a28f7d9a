//! The append-only audit log, one hash chain per organization.

use crate::audit_chain::{GENESIS_PREV_HASH, chain_hash};
use crate::backend::{Backend, RowExt, WriteTx};
use crate::codec::{from_json, to_json};
use crate::error::db;
use crate::sql::Sql;
use assay_core::audit::{AuditEvent, Outcome};
use assay_core::{Error, Result};
use uuid::Uuid;

fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Success => "success",
        Outcome::Denied => "denied",
        Outcome::Error => "error",
    }
}

/// Serialized per organization by its `audit_heads` row: `FOR UPDATE` on PostgreSQL
/// (other organizations' appends proceed in parallel), the single writer on SQLite.
/// The event is committed before this returns; on failure `event` is left unchanged.
pub async fn append<B: Backend>(conn: &B, event: &mut AuditEvent) -> Result<()> {
    let mut tx = conn.begin().await.map_err(db)?;
    // Creates the head on the organization's first event; a concurrent first append
    // waits here on the unique key, then finds the row.
    tx.execute(
        Sql::new(
            "INSERT INTO audit_heads (org_id, seq, hash) VALUES ($1, 0, '') \
             ON CONFLICT (org_id) DO NOTHING",
        )
        .arg(event.org_id),
    )
    .await
    .map_err(db)?;
    let head = tx
        .fetch_optional(
            Sql::new(&format!(
                "SELECT h.seq AS seq, h.hash AS hash FROM audit_heads h WHERE h.org_id = $1{}",
                B::FOR_UPDATE
            ))
            .arg(event.org_id),
        )
        .await
        .map_err(db)?
        .ok_or_else(|| Error::Internal("audit head missing after upsert".into()))?;
    let head_seq = head.i64("seq").map_err(db)?;
    let head_hash = head.text("hash").map_err(db)?;

    let mut chained = event.clone();
    chained.seq = head_seq + 1;
    chained.prev_hash = if head_hash.is_empty() {
        GENESIS_PREV_HASH.to_owned()
    } else {
        head_hash
    };
    chained.hash = chain_hash(&chained);

    let q = Sql::new(
        "INSERT INTO audit_events (org_id, seq, id, time, env_id, actor_id, action, outcome, \
         hash, event) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .arg(chained.org_id)
    .arg(chained.seq)
    .arg(chained.id)
    .arg(chained.time)
    .arg(chained.env_id)
    .arg(chained.actor.id)
    .arg(chained.action.as_str())
    .arg(outcome(chained.outcome))
    .arg(chained.hash.as_str())
    .arg(to_json(&chained)?);
    tx.execute(q).await.map_err(crate::error::unique(format!(
        "audit event {} was already appended",
        chained.id
    )))?;
    tx.execute(
        Sql::new("UPDATE audit_heads SET seq = $1, hash = $2 WHERE org_id = $3")
            .arg(chained.seq)
            .arg(chained.hash.as_str())
            .arg(chained.org_id),
    )
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    *event = chained;
    Ok(())
}

/// Events are read back from their stored JSON, which keeps every field exactly
/// (nanosecond timestamps included), so re-hashing them verifies the chain.
pub async fn events<B: Backend>(
    conn: &B,
    org_id: Uuid,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<AuditEvent>> {
    let q = Sql::new(
        "SELECT a.event AS event FROM audit_events a WHERE a.org_id = $1 AND a.seq > $2 \
         ORDER BY a.seq LIMIT $3",
    )
    .arg(org_id)
    .arg(after_seq)
    .arg(i64::from(limit));
    conn.fetch_all(q)
        .await
        .map_err(db)?
        .iter()
        .map(|r| from_json("audit event", &r.text("event").map_err(db)?))
        .collect()
}
