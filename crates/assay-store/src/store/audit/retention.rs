//! Retention: deleting the old prefix of a chain and leaving a checkpoint (the last
//! deleted event's seq and hash) from which the remaining events still verify.

use super::super::rows;
use crate::backend::{Backend, RowExt, WriteTx};
use crate::codec::truncate_micros;
use crate::error::db;
use crate::sql::Sql;
use assay_core::audit::AuditCheckpoint;
use assay_core::{Result, Timestamp};
use uuid::Uuid;

/// Deletes the events before the first one with `time >= before` (events are not
/// strictly time-ordered, so a newer event stops the purge: the chain must stay a
/// contiguous run), and upserts the checkpoint, in one transaction that holds the
/// organization's head lock, so appends wait and then continue the chain from the head
/// (which retention never touches).
pub async fn purge_before<B: Backend>(
    conn: &B,
    org_id: Uuid,
    before: Timestamp,
    now: Timestamp,
) -> Result<Option<AuditCheckpoint>> {
    let mut tx = conn.begin().await.map_err(db)?;
    let head = tx
        .fetch_optional(
            Sql::new(&format!(
                "SELECT h.seq AS seq FROM audit_heads h WHERE h.org_id = $1{}",
                B::FOR_UPDATE
            ))
            .arg(org_id),
        )
        .await
        .map_err(db)?;
    if head.is_none() {
        return Ok(None); // no event was ever appended
    }
    let first_kept = first_kept::<B>(&mut tx, org_id, truncate_micros(before)).await?;
    let mut last =
        Sql::new("SELECT a.seq AS seq, a.hash AS hash FROM audit_events a WHERE a.org_id = $1")
            .arg(org_id);
    if let Some(seq) = first_kept {
        last.push(" AND a.seq < ").bind(seq);
    }
    last.push(" ORDER BY a.seq DESC LIMIT 1");
    let Some(last) = tx.fetch_optional(last).await.map_err(db)? else {
        return Ok(None); // nothing older than `before`
    };
    let checkpoint = AuditCheckpoint {
        org_id,
        seq: last.i64("seq").map_err(db)?,
        hash: last.text("hash").map_err(db)?,
        purged_before: truncate_micros(before),
        created_at: truncate_micros(now),
    };
    tx.execute(
        Sql::new("DELETE FROM audit_events WHERE org_id = $1 AND seq <= $2")
            .arg(org_id)
            .arg(checkpoint.seq),
    )
    .await
    .map_err(db)?;
    tx.execute(
        Sql::new(
            "INSERT INTO audit_checkpoints (org_id, seq, hash, purged_before, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (org_id) DO UPDATE SET \
             seq = excluded.seq, hash = excluded.hash, purged_before = excluded.purged_before, \
             created_at = excluded.created_at",
        )
        .arg(org_id)
        .arg(checkpoint.seq)
        .arg(checkpoint.hash.as_str())
        .arg(checkpoint.purged_before)
        .arg(checkpoint.created_at),
    )
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(Some(checkpoint))
}

/// Rows read per step of the walk below.
const WALK_STEP: i64 = 1000;

/// The first event in chain order with `time >= before`. Walks the (org, seq) key from
/// the chain's start in steps, so it reads about as many rows as are about to be
/// deleted, whatever plan the engine would pick for a `time` condition (the time index
/// would visit every event that is kept).
async fn first_kept<B: Backend>(
    tx: &mut B::Tx,
    org_id: Uuid,
    before: Timestamp,
) -> Result<Option<i64>> {
    let mut after = i64::MIN;
    loop {
        let rows = tx
            .fetch_all(
                Sql::new(
                    "SELECT a.seq AS seq, a.time AS time FROM audit_events a \
                     WHERE a.org_id = $1 AND a.seq > $2 ORDER BY a.seq LIMIT $3",
                )
                .arg(org_id)
                .arg(after)
                .arg(WALK_STEP),
            )
            .await
            .map_err(db)?;
        for row in &rows {
            after = row.i64("seq").map_err(db)?;
            if row.time("time").map_err(db)? >= before {
                return Ok(Some(after));
            }
        }
        if i64::try_from(rows.len()).unwrap_or(i64::MAX) < WALK_STEP {
            return Ok(None);
        }
    }
}

/// The organization's chain head: (seq, hash) of the last appended event.
pub async fn head<B: Backend>(conn: &B, org_id: Uuid) -> Result<Option<(i64, String)>> {
    let q = Sql::new("SELECT h.seq AS seq, h.hash AS hash FROM audit_heads h WHERE h.org_id = $1")
        .arg(org_id);
    let Some(row) = conn.fetch_optional(q).await.map_err(db)? else {
        return Ok(None);
    };
    let seq = row.i64("seq").map_err(db)?;
    if seq == 0 {
        return Ok(None); // head row created, nothing appended yet
    }
    Ok(Some((seq, row.text("hash").map_err(db)?)))
}

pub async fn checkpoint<B: Backend>(conn: &B, org_id: Uuid) -> Result<Option<AuditCheckpoint>> {
    let q = Sql::new(&format!(
        "SELECT {} FROM audit_checkpoints c WHERE c.org_id = $1",
        rows::CHECKPOINT_COLS
    ))
    .arg(org_id);
    conn.fetch_optional(q)
        .await
        .map_err(db)?
        .map(|r| rows::checkpoint(&r))
        .transpose()
}
