//! Reading the log: plain chain order, filtered export pages, and the activity report.
//!
//! Events are read back from their stored JSON, which keeps every field exactly
//! (nanosecond timestamps included), so re-hashing them verifies the chain. Time
//! filters compare the `time` column, which keeps microseconds (like every stored time).

use super::super::rows;
use crate::backend::{Backend, RowExt};
use crate::codec::{self, from_json, outcome_str};
use crate::error::db;
use crate::sql::Sql;
use assay_core::audit::{ActorActivity, AuditEvent, AuditFilter};
use assay_core::{Result, Timestamp};
use uuid::Uuid;

pub async fn events<B: Backend>(
    conn: &B,
    org_id: Uuid,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<AuditEvent>> {
    query(conn, org_id, &AuditFilter::default(), after_seq, limit).await
}

/// One export page: matching events with `seq > after_seq`, in chain order. The scan
/// seeks to `after_seq` on the (org, seq) key (or on (org, actor name, seq) /
/// (org, env, seq) when those filters are given), so each page starts where the last one
/// ended instead of re-reading the chain from its start, and nothing is sorted. Time
/// bounds are checked along the way rather than through the (org, time) index: events
/// are not strictly time-ordered, so a time range would have to be read whole and sorted
/// by seq for every page.
pub async fn query<B: Backend>(
    conn: &B,
    org_id: Uuid,
    filter: &AuditFilter,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<AuditEvent>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut q =
        Sql::new("SELECT a.event AS event FROM audit_events a WHERE a.org_id = $1 AND a.seq > $2")
            .arg(org_id)
            .arg(after_seq);
    if let Some(since) = filter.since {
        q.push(" AND ")
            .push(B::NO_INDEX)
            .push("a.time >= ")
            .bind(since);
    }
    if let Some(until) = filter.until {
        q.push(" AND ")
            .push(B::NO_INDEX)
            .push("a.time <= ")
            .bind(until);
    }
    if let Some(actor) = &filter.actor {
        match Uuid::try_parse(actor) {
            Ok(id) => {
                q.push(" AND (a.actor_id = ")
                    .bind(id)
                    .push(" OR a.actor_name = ")
                    .bind(actor.as_str())
                    .push(")");
            }
            Err(_) => {
                q.push(" AND a.actor_name = ").bind(actor.as_str());
            }
        }
    }
    if let Some(action) = &filter.action {
        match action.strip_suffix('*') {
            // `*` alone matches every action.
            Some("") => {}
            // substr, not LIKE: LIKE would treat `%`/`_` as wildcards and is
            // case-insensitive on SQLite. The CAST keeps PostgreSQL's substr(text, int, int).
            Some(prefix) => {
                let chars = i64::try_from(prefix.chars().count()).unwrap_or(i64::MAX);
                q.push(" AND substr(a.action, 1, CAST(")
                    .bind(chars)
                    .push(" AS INTEGER)) = ")
                    .bind(prefix);
            }
            None => {
                q.push(" AND a.action = ").bind(action.as_str());
            }
        }
    }
    if let Some(env) = &filter.env {
        // Environments are named by ID here; anything else names no environment.
        let Ok(env_id) = Uuid::try_parse(env) else {
            return Ok(Vec::new());
        };
        q.push(" AND a.env_id = ").bind(env_id);
    }
    if let Some(outcome) = filter.outcome {
        q.push(" AND a.outcome = ").bind(outcome_str(outcome));
    }
    q.push(" ORDER BY a.seq").push_limit(i64::from(limit));
    conn.fetch_all(q)
        .await
        .map_err(db)?
        .iter()
        .map(|r| from_json("audit event", &r.text("event").map_err(db)?))
        .collect()
}

/// Distinct actors (kind, id) with events in [since, until]: how many, first and last
/// event time, and the display name on their latest event. Ordered by kind, name, id.
pub async fn actors<B: Backend>(
    conn: &B,
    org_id: Uuid,
    since: Timestamp,
    until: Timestamp,
) -> Result<Vec<ActorActivity>> {
    let q = Sql::new(
        "SELECT g.actor_kind AS kind, g.actor_id AS id, e.actor_name AS name, g.n AS n, \
         g.first_seen AS first_seen, g.last_seen AS last_seen \
         FROM (SELECT a.actor_kind AS actor_kind, a.actor_id AS actor_id, COUNT(*) AS n, \
               MIN(a.time) AS first_seen, MAX(a.time) AS last_seen, MAX(a.seq) AS last_seq \
               FROM audit_events a WHERE a.org_id = $1 AND a.time >= $2 AND a.time <= $3 \
               GROUP BY a.actor_kind, a.actor_id) g \
         JOIN audit_events e ON e.org_id = $4 AND e.seq = g.last_seq \
         ORDER BY g.actor_kind, e.actor_name, g.actor_id",
    )
    .arg(org_id)
    .arg(since)
    .arg(until)
    .arg(org_id);
    conn.fetch_all(q)
        .await
        .map_err(db)?
        .iter()
        .map(|r| {
            Ok(ActorActivity {
                kind: codec::principal_kind(&r.text("kind").map_err(db)?)?,
                id: r.uuid("id").map_err(db)?,
                name: r.text("name").map_err(db)?,
                events: rows::count(r)?,
                first_seen: r.time("first_seen").map_err(db)?,
                last_seen: r.time("last_seen").map_err(db)?,
            })
        })
        .collect()
}
