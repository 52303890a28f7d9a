//! API tokens: only hashes of secrets are stored. A rotated token keeps its previous
//! hash (with a deadline the caller checks) so a grace period can be honoured.

use super::rows;
use crate::backend::{Backend, WriteTx};
use crate::codec::to_json;
use crate::error::{db, unique};
use crate::sql::Sql;
use assay_core::identity::ApiTokenRecord;
use assay_core::{Error, Result, Timestamp};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The engine's message is dropped: it could quote the hash.
const SECRET_TAKEN: &str = "an API token with this ID or secret already exists";

pub async fn insert<B: Backend>(conn: &B, t: &ApiTokenRecord) -> Result<()> {
    let q = Sql::new(
        "INSERT INTO api_tokens (id, org_id, name, description, kind, grants, secret_hash, \
         created_by, created_at, expires_at, last_used_at, last_used_ip, revoked_at, \
         previous_secret_hash, previous_valid_until) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .arg(t.id)
    .arg(t.org_id)
    .arg(&t.name)
    .arg(&t.description)
    .arg(t.kind.as_str())
    .arg(to_json(&t.grants)?)
    .arg(&t.secret_hash)
    .arg(t.created_by)
    .arg(t.created_at)
    .arg(t.expires_at)
    .arg(t.last_used_at)
    .arg(t.last_used_ip.clone())
    .arg(t.revoked_at)
    .arg(t.previous_secret_hash.clone())
    .arg(t.previous_valid_until);
    conn.execute(q).await.map_err(unique(SECRET_TAKEN))?;
    Ok(())
}

/// One round trip over two indexes (current and previous hash). Should a hash ever be
/// one token's current secret and another's previous one, the current secret wins.
pub async fn find_by_hash<B: Backend>(
    conn: &B,
    secret_hash: &str,
) -> Result<Option<ApiTokenRecord>> {
    let q = Sql::new(&format!(
        "SELECT {} FROM api_tokens t WHERE t.secret_hash = $1 OR t.previous_secret_hash = $2",
        rows::TOKEN_COLS
    ))
    .arg(secret_hash)
    .arg(secret_hash);
    let mut found = conn
        .fetch_all(q)
        .await
        .map_err(db)?
        .iter()
        .map(rows::token)
        .collect::<Result<Vec<_>>>()?;
    let current = found.iter().position(|t| t.secret_hash == secret_hash);
    Ok(match current {
        Some(i) => Some(found.swap_remove(i)),
        None => found.pop(),
    })
}

/// Newest first.
pub async fn list<B: Backend>(conn: &B, org_id: Uuid) -> Result<Vec<ApiTokenRecord>> {
    let q = Sql::new(&format!(
        "SELECT {} FROM api_tokens t WHERE t.org_id = $1 ORDER BY t.created_at DESC, t.id DESC",
        rows::TOKEN_COLS
    ))
    .arg(org_id);
    conn.fetch_all(q)
        .await
        .map_err(db)?
        .iter()
        .map(rows::token)
        .collect()
}

pub async fn get<B: Backend>(conn: &B, org_id: Uuid, id: Uuid) -> Result<Option<ApiTokenRecord>> {
    let q = Sql::new(&format!(
        "SELECT {} FROM api_tokens t WHERE t.org_id = $1 AND t.id = $2",
        rows::TOKEN_COLS
    ))
    .arg(org_id)
    .arg(id);
    conn.fetch_optional(q)
        .await
        .map_err(db)?
        .map(|r| rows::token(&r))
        .transpose()
}

/// Kind, creator and creation time are fixed at creation; everything else is replaced.
pub async fn update<B: Backend>(conn: &B, t: &ApiTokenRecord) -> Result<()> {
    let q = Sql::new(
        "UPDATE api_tokens SET name = $1, description = $2, grants = $3, secret_hash = $4, \
         previous_secret_hash = $5, previous_valid_until = $6, expires_at = $7, \
         revoked_at = $8, last_used_at = $9, last_used_ip = $10 \
         WHERE org_id = $11 AND id = $12",
    )
    .arg(&t.name)
    .arg(&t.description)
    .arg(to_json(&t.grants)?)
    .arg(&t.secret_hash)
    .arg(t.previous_secret_hash.clone())
    .arg(t.previous_valid_until)
    .arg(t.expires_at)
    .arg(t.revoked_at)
    .arg(t.last_used_at)
    .arg(t.last_used_ip.clone())
    .arg(t.org_id)
    .arg(t.id);
    match conn.execute(q).await.map_err(unique(SECRET_TAKEN))? {
        0 => Err(Error::not_found("api token", t.id.to_string())),
        _ => Ok(()),
    }
}

/// One transaction for the whole batch. Per token only the latest use counts, and a
/// row is only written when that use is newer than the stored one, so flushes that
/// arrive out of order (several replicas) never move `last_used_at` backwards, and
/// the IP always belongs to the time next to it. Rows are touched in ID order so
/// concurrent flushes lock them in the same order (no deadlock on PostgreSQL).
pub async fn record_usage<B: Backend>(
    conn: &B,
    usages: &[(Uuid, Timestamp, Option<String>)],
) -> Result<()> {
    let mut latest: BTreeMap<Uuid, (Timestamp, Option<String>)> = BTreeMap::new();
    for (id, at, ip) in usages {
        match latest.get(id) {
            Some((seen, _)) if seen > at => {}
            _ => {
                latest.insert(*id, (*at, ip.clone()));
            }
        }
    }
    if latest.is_empty() {
        return Ok(());
    }
    let mut tx = conn.begin().await.map_err(db)?;
    for (id, (at, ip)) in latest {
        let q = Sql::new(
            "UPDATE api_tokens SET last_used_at = $1, last_used_ip = $2 \
             WHERE id = $3 AND (last_used_at IS NULL OR last_used_at < $4)",
        )
        .arg(at)
        .arg(ip)
        .arg(id)
        .arg(at);
        tx.execute(q).await.map_err(db)?;
    }
    tx.commit().await.map_err(db)
}

pub async fn revoke_created_by<B: Backend>(
    conn: &B,
    org_id: Uuid,
    user_id: Uuid,
    at: Timestamp,
) -> Result<u64> {
    let q = Sql::new(
        "UPDATE api_tokens SET revoked_at = $1 \
         WHERE org_id = $2 AND created_by = $3 AND revoked_at IS NULL",
    )
    .arg(at)
    .arg(org_id)
    .arg(user_id);
    conn.execute(q).await.map_err(db)
}
