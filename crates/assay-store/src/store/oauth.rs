//! The OAuth 2.1 authorization server's records (see `assay_core::oauth`). Secrets are
//! only ever hashes. Redemptions (codes, refresh tokens, device polls) read the row
//! locked in a write transaction and decide from it, so concurrent presenters are
//! serialized: PostgreSQL's `FOR UPDATE` makes the second wait and re-read the row, and
//! SQLite's single `BEGIN IMMEDIATE` writer does the same by construction.

use crate::backend::{Backend, RowExt, WriteTx};
use crate::codec::{from_json, to_json, truncate_micros};
use crate::error::{db, unique};
use crate::sql::Sql;
use assay_core::oauth::{
    AuthorizationCode, BrowserSessionRecord, CodeRedemption, DeviceAuthorization, DeviceStatus,
    OAuthClient, OAuthClientKind, OAuthGrant, RefreshRedemption, RefreshToken, SigningKeyRecord,
};
use assay_core::{Error, Result, Timestamp};
use uuid::Uuid;

// Conflict messages: the engine's own text is dropped because it could quote a hash.
const CLIENT_TAKEN: &str = "an OAuth client with this client_id already exists";
const CODE_TAKEN: &str = "an authorization code with this hash already exists";
const REFRESH_TAKEN: &str = "a refresh token with this hash already exists";
const KID_TAKEN: &str = "a signing key with this kid already exists";
const DEVICE_TAKEN: &str =
    "a device authorization with this device code or pending user code already exists";

// --- clients ----------------------------------------------------------------------

const CLIENT_COLS: &str = "c.id AS id, c.kind AS kind, c.client_name AS client_name, \
     c.redirect_uris AS redirect_uris, c.created_at AS created_at, \
     c.last_used_at AS last_used_at, c.expires_at AS expires_at";

fn client<R: RowExt>(r: &R) -> Result<OAuthClient> {
    let kind = r.text("kind").map_err(db)?;
    Ok(OAuthClient {
        id: r.text("id").map_err(db)?,
        kind: OAuthClientKind::parse(&kind).ok_or_else(|| {
            Error::Internal(format!("stored OAuth client kind {kind:?} is unknown"))
        })?,
        client_name: r.text("client_name").map_err(db)?,
        redirect_uris: from_json("redirect_uris", &r.text("redirect_uris").map_err(db)?)?,
        created_at: r.time("created_at").map_err(db)?,
        last_used_at: r.opt_time("last_used_at").map_err(db)?,
        expires_at: r.opt_time("expires_at").map_err(db)?,
    })
}

pub async fn insert_client<B: Backend>(conn: &B, c: &OAuthClient) -> Result<()> {
    let q = Sql::new(
        "INSERT INTO oauth_clients (id, kind, client_name, redirect_uris, created_at, \
         last_used_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .arg(&c.id)
    .arg(c.kind.as_str())
    .arg(&c.client_name)
    .arg(to_json(&c.redirect_uris)?)
    .arg(c.created_at)
    .arg(c.last_used_at)
    .arg(c.expires_at);
    conn.execute(q).await.map_err(unique(CLIENT_TAKEN))?;
    Ok(())
}

pub async fn get_client<B: Backend>(conn: &B, id: &str) -> Result<Option<OAuthClient>> {
    let q = Sql::new(&format!(
        "SELECT {CLIENT_COLS} FROM oauth_clients c WHERE c.id = $1"
    ))
    .arg(id);
    conn.fetch_optional(q)
        .await
        .map_err(db)?
        .map(|r| client(&r))
        .transpose()
}

/// Matches the row whatever its stored time, so the row count tells whether it exists;
/// the `CASE` keeps the later of the two times.
pub async fn touch_client<B: Backend>(conn: &B, id: &str, at: Timestamp) -> Result<bool> {
    let q = Sql::new(
        "UPDATE oauth_clients SET last_used_at = CASE \
         WHEN last_used_at IS NULL OR last_used_at < $1 THEN $2 ELSE last_used_at END \
         WHERE id = $3",
    )
    .arg(at)
    .arg(at)
    .arg(id);
    Ok(conn.execute(q).await.map_err(db)? > 0)
}

/// A client some grant or device authorization points at was used, whatever
/// `last_used_at` says; skipping those also keeps the foreign keys satisfied.
pub async fn delete_expired_clients<B: Backend>(conn: &B, now: Timestamp) -> Result<u64> {
    let q = Sql::new(
        "DELETE FROM oauth_clients WHERE last_used_at IS NULL AND expires_at IS NOT NULL \
         AND expires_at <= $1 \
         AND NOT EXISTS (SELECT 1 FROM oauth_grants g WHERE g.client_id = oauth_clients.id) \
         AND NOT EXISTS (SELECT 1 FROM oauth_device_authorizations d \
                         WHERE d.client_id = oauth_clients.id)",
    )
    .arg(now);
    conn.execute(q).await.map_err(db)
}

// --- grants -----------------------------------------------------------------------

const GRANT_COLS: &str = "g.id AS id, g.org_id AS org_id, g.user_id AS user_id, \
     g.client_id AS client_id, g.scope AS scope, g.resource AS resource, \
     g.created_at AS created_at, g.revoked_at AS revoked_at, \
     g.revoked_reason AS revoked_reason";

/// The same columns unqualified, for `RETURNING` (which takes no table alias).
const GRANT_RETURNING: &str = "id, org_id, user_id, client_id, scope, resource, created_at, \
     revoked_at, revoked_reason";

fn grant<R: RowExt>(r: &R) -> Result<OAuthGrant> {
    Ok(OAuthGrant {
        id: r.uuid("id").map_err(db)?,
        org_id: r.uuid("org_id").map_err(db)?,
        user_id: r.uuid("user_id").map_err(db)?,
        client_id: r.text("client_id").map_err(db)?,
        scope: r.text("scope").map_err(db)?,
        resource: r.text("resource").map_err(db)?,
        created_at: r.time("created_at").map_err(db)?,
        revoked_at: r.opt_time("revoked_at").map_err(db)?,
        revoked_reason: r.opt_text("revoked_reason").map_err(db)?,
    })
}

/// One statement: the live-grant partial unique index is the conflict target, so two
/// concurrent consents for the same triple end in one grant with the later scope.
pub async fn upsert_grant<B: Backend>(conn: &B, g: &OAuthGrant) -> Result<OAuthGrant> {
    let q = Sql::new(&format!(
        "INSERT INTO oauth_grants (id, org_id, user_id, client_id, scope, resource, \
         created_at, revoked_at, revoked_reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL) \
         ON CONFLICT (user_id, client_id, resource) WHERE revoked_at IS NULL \
         DO UPDATE SET scope = excluded.scope \
         RETURNING {GRANT_RETURNING}"
    ))
    .arg(g.id)
    .arg(g.org_id)
    .arg(g.user_id)
    .arg(&g.client_id)
    .arg(&g.scope)
    .arg(&g.resource)
    .arg(g.created_at);
    // A transaction because the statement writes (SQLite reads go to read-only connections).
    let mut tx = conn.begin().await.map_err(db)?;
    let row = tx
        .fetch_optional(q)
        .await
        // A live grant for the triple is updated, not a conflict; only the ID can clash.
        .map_err(unique("an OAuth grant with this ID already exists"))?
        .ok_or_else(|| Error::Internal("upserting a grant returned no row".into()))?;
    let stored = grant(&row)?;
    tx.commit().await.map_err(db)?;
    Ok(stored)
}

pub async fn get_grant<B: Backend>(conn: &B, id: Uuid) -> Result<Option<OAuthGrant>> {
    let q = Sql::new(&format!(
        "SELECT {GRANT_COLS} FROM oauth_grants g WHERE g.id = $1"
    ))
    .arg(id);
    conn.fetch_optional(q)
        .await
        .map_err(db)?
        .map(|r| grant(&r))
        .transpose()
}

pub async fn list_grants<B: Backend>(conn: &B, user_id: Uuid) -> Result<Vec<OAuthGrant>> {
    let q = Sql::new(&format!(
        "SELECT {GRANT_COLS} FROM oauth_grants g \
         WHERE g.user_id = $1 AND g.revoked_at IS NULL \
         ORDER BY g.created_at DESC, g.id DESC"
    ))
    .arg(user_id);
    conn.fetch_all(q)
        .await
        .map_err(db)?
        .iter()
        .map(grant)
        .collect()
}

pub async fn revoke_grant<B: Backend>(
    conn: &B,
    id: Uuid,
    at: Timestamp,
    reason: &str,
) -> Result<bool> {
    let mut tx = conn.begin().await.map_err(db)?;
    let q = Sql::new(
        "UPDATE oauth_grants SET revoked_at = $1, revoked_reason = $2 \
         WHERE id = $3 AND revoked_at IS NULL",
    )
    .arg(at)
    .arg(reason)
    .arg(id);
    let revoked = tx.execute(q).await.map_err(db)?;
    let q = Sql::new(
        "UPDATE oauth_refresh_tokens SET revoked_at = $1 \
         WHERE grant_id = $2 AND revoked_at IS NULL",
    )
    .arg(at)
    .arg(id);
    tx.execute(q).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(revoked > 0)
}

/// Refresh tokens first (while the grants are still live and so selectable), then the
/// grants, in one transaction. A `NULL` org matches every organization.
pub async fn revoke_grants_of_user<B: Backend>(
    conn: &B,
    user_id: Uuid,
    org_id: Option<Uuid>,
    at: Timestamp,
    reason: &str,
) -> Result<u64> {
    let mut tx = conn.begin().await.map_err(db)?;
    let q = Sql::new(
        "UPDATE oauth_refresh_tokens SET revoked_at = $1 \
         WHERE revoked_at IS NULL AND grant_id IN (SELECT g.id FROM oauth_grants g \
         WHERE g.user_id = $2 AND g.revoked_at IS NULL AND ($3 IS NULL OR g.org_id = $4))",
    )
    .arg(at)
    .arg(user_id)
    .arg(org_id)
    .arg(org_id);
    tx.execute(q).await.map_err(db)?;
    let q = Sql::new(
        "UPDATE oauth_grants SET revoked_at = $1, revoked_reason = $2 \
         WHERE user_id = $3 AND revoked_at IS NULL AND ($4 IS NULL OR org_id = $5)",
    )
    .arg(at)
    .arg(reason)
    .arg(user_id)
    .arg(org_id)
    .arg(org_id);
    let revoked = tx.execute(q).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(revoked)
}

// --- authorization codes ----------------------------------------------------------

const CODE_COLS: &str = "c.code_hash AS code_hash, c.grant_id AS grant_id, \
     c.client_id AS client_id, c.redirect_uri AS redirect_uri, \
     c.code_challenge AS code_challenge, c.resource AS resource, c.scope AS scope, \
     c.user_id AS user_id, c.org_id AS org_id, c.created_at AS created_at, \
     c.expires_at AS expires_at, c.consumed_at AS consumed_at";

fn code<R: RowExt>(r: &R) -> Result<AuthorizationCode> {
    Ok(AuthorizationCode {
        code_hash: r.text("code_hash").map_err(db)?,
        grant_id: r.uuid("grant_id").map_err(db)?,
        client_id: r.text("client_id").map_err(db)?,
        redirect_uri: r.text("redirect_uri").map_err(db)?,
        code_challenge: r.text("code_challenge").map_err(db)?,
        resource: r.text("resource").map_err(db)?,
        scope: r.text("scope").map_err(db)?,
        user_id: r.uuid("user_id").map_err(db)?,
        org_id: r.uuid("org_id").map_err(db)?,
        created_at: r.time("created_at").map_err(db)?,
        expires_at: r.time("expires_at").map_err(db)?,
        consumed_at: r.opt_time("consumed_at").map_err(db)?,
    })
}

pub async fn insert_code<B: Backend>(conn: &B, c: &AuthorizationCode) -> Result<()> {
    let q = Sql::new(
        "INSERT INTO oauth_codes (code_hash, grant_id, client_id, redirect_uri, \
         code_challenge, resource, scope, user_id, org_id, created_at, expires_at, \
         consumed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .arg(&c.code_hash)
    .arg(c.grant_id)
    .arg(&c.client_id)
    .arg(&c.redirect_uri)
    .arg(&c.code_challenge)
    .arg(&c.resource)
    .arg(&c.scope)
    .arg(c.user_id)
    .arg(c.org_id)
    .arg(c.created_at)
    .arg(c.expires_at)
    .arg(c.consumed_at);
    conn.execute(q).await.map_err(unique(CODE_TAKEN))?;
    Ok(())
}

pub async fn consume_code<B: Backend>(
    conn: &B,
    code_hash: &str,
    now: Timestamp,
) -> Result<Option<CodeRedemption>> {
    let now = truncate_micros(now);
    let mut tx = conn.begin().await.map_err(db)?;
    let q = Sql::new(&format!(
        "SELECT {CODE_COLS} FROM oauth_codes c WHERE c.code_hash = $1{}",
        B::FOR_UPDATE
    ))
    .arg(code_hash);
    let Some(row) = tx.fetch_optional(q).await.map_err(db)? else {
        return Ok(None);
    };
    let mut found = code(&row)?;
    if found.consumed_at.is_some() {
        return Ok(Some(CodeRedemption::Replay(found)));
    }
    if found.expires_at <= now {
        return Ok(Some(CodeRedemption::Expired(found)));
    }
    let q = Sql::new(
        "UPDATE oauth_codes SET consumed_at = $1 WHERE code_hash = $2 AND consumed_at IS NULL",
    )
    .arg(now)
    .arg(code_hash);
    if tx.execute(q).await.map_err(db)? != 1 {
        // Unreachable with the row locked; answering "replay" is the safe side.
        return Ok(Some(CodeRedemption::Replay(found)));
    }
    tx.commit().await.map_err(db)?;
    found.consumed_at = Some(now);
    Ok(Some(CodeRedemption::First(found)))
}

// --- refresh tokens and revoked access tokens --------------------------------------

const REFRESH_COLS: &str = "t.token_hash AS token_hash, t.family_id AS family_id, \
     t.grant_id AS grant_id, t.client_id AS client_id, t.resource AS resource, \
     t.scope AS scope, t.created_at AS created_at, t.expires_at AS expires_at, \
     t.idle_expires_at AS idle_expires_at, t.used_at AS used_at, t.revoked_at AS revoked_at";

fn refresh<R: RowExt>(r: &R) -> Result<RefreshToken> {
    Ok(RefreshToken {
        token_hash: r.text("token_hash").map_err(db)?,
        family_id: r.uuid("family_id").map_err(db)?,
        grant_id: r.uuid("grant_id").map_err(db)?,
        client_id: r.text("client_id").map_err(db)?,
        resource: r.text("resource").map_err(db)?,
        scope: r.text("scope").map_err(db)?,
        created_at: r.time("created_at").map_err(db)?,
        expires_at: r.time("expires_at").map_err(db)?,
        idle_expires_at: r.time("idle_expires_at").map_err(db)?,
        used_at: r.opt_time("used_at").map_err(db)?,
        revoked_at: r.opt_time("revoked_at").map_err(db)?,
    })
}

pub async fn insert_refresh<B: Backend>(conn: &B, t: &RefreshToken) -> Result<()> {
    let q = Sql::new(
        "INSERT INTO oauth_refresh_tokens (token_hash, family_id, grant_id, client_id, \
         resource, scope, created_at, expires_at, idle_expires_at, used_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .arg(&t.token_hash)
    .arg(t.family_id)
    .arg(t.grant_id)
    .arg(&t.client_id)
    .arg(&t.resource)
    .arg(&t.scope)
    .arg(t.created_at)
    .arg(t.expires_at)
    .arg(t.idle_expires_at)
    .arg(t.used_at)
    .arg(t.revoked_at);
    conn.execute(q).await.map_err(unique(REFRESH_TAKEN))?;
    Ok(())
}

pub async fn use_refresh<B: Backend>(
    conn: &B,
    token_hash: &str,
    now: Timestamp,
) -> Result<Option<RefreshRedemption>> {
    let now = truncate_micros(now);
    let mut tx = conn.begin().await.map_err(db)?;
    let q = Sql::new(&format!(
        "SELECT {REFRESH_COLS} FROM oauth_refresh_tokens t WHERE t.token_hash = $1{}",
        B::FOR_UPDATE
    ))
    .arg(token_hash);
    let Some(row) = tx.fetch_optional(q).await.map_err(db)? else {
        return Ok(None);
    };
    let mut found = refresh(&row)?;
    if found.used_at.is_some() {
        // A used token of an ended family (its login signed out, or its grant revoked)
        // endangers nothing live: answering reuse would end the grant's other sessions
        // for a stale copy. While the family lives, it is theft.
        if found.revoked_at.is_some() {
            let live = tx
                .fetch_optional(live_token_of_family(found.family_id))
                .await
                .map_err(db)?;
            if live.is_none() {
                return Ok(Some(RefreshRedemption::Revoked(found)));
            }
        }
        return Ok(Some(RefreshRedemption::Reuse(found)));
    }
    if found.revoked_at.is_some() {
        return Ok(Some(RefreshRedemption::Revoked(found)));
    }
    if found.expires_at <= now || found.idle_expires_at <= now {
        return Ok(Some(RefreshRedemption::Expired(found)));
    }
    let q = Sql::new(
        "UPDATE oauth_refresh_tokens SET used_at = $1 \
         WHERE token_hash = $2 AND used_at IS NULL AND revoked_at IS NULL",
    )
    .arg(now)
    .arg(token_hash);
    if tx.execute(q).await.map_err(db)? != 1 {
        // Unreachable with the row locked; answering "reuse" is the safe side.
        return Ok(Some(RefreshRedemption::Reuse(found)));
    }
    tx.commit().await.map_err(db)?;
    found.used_at = Some(now);
    Ok(Some(RefreshRedemption::First(found)))
}

pub async fn find_refresh<B: Backend>(conn: &B, token_hash: &str) -> Result<Option<RefreshToken>> {
    let q = Sql::new(&format!(
        "SELECT {REFRESH_COLS} FROM oauth_refresh_tokens t WHERE t.token_hash = $1"
    ))
    .arg(token_hash);
    conn.fetch_optional(q)
        .await
        .map_err(db)?
        .map(|r| refresh(&r))
        .transpose()
}

pub async fn revoke_family<B: Backend>(conn: &B, family_id: Uuid, at: Timestamp) -> Result<u64> {
    let q = Sql::new(
        "UPDATE oauth_refresh_tokens SET revoked_at = $1 \
         WHERE family_id = $2 AND revoked_at IS NULL",
    )
    .arg(at)
    .arg(family_id);
    conn.execute(q).await.map_err(db)
}

pub async fn revoke_refresh_of_grant<B: Backend>(
    conn: &B,
    grant_id: Uuid,
    at: Timestamp,
) -> Result<u64> {
    let q = Sql::new(
        "UPDATE oauth_refresh_tokens SET revoked_at = $1 \
         WHERE grant_id = $2 AND revoked_at IS NULL",
    )
    .arg(at)
    .arg(grant_id);
    conn.execute(q).await.map_err(db)
}

pub async fn is_family_live<B: Backend>(conn: &B, family_id: Uuid) -> Result<bool> {
    let q = live_token_of_family(family_id);
    Ok(conn.fetch_optional(q).await.map_err(db)?.is_some())
}

/// One unrevoked token of the family, if any. Served by `oauth_refresh_tokens_family`;
/// a family has one row per rotation.
fn live_token_of_family(family_id: Uuid) -> Sql {
    Sql::new(
        "SELECT t.family_id AS family_id FROM oauth_refresh_tokens t \
         WHERE t.family_id = $1 AND t.revoked_at IS NULL LIMIT 1",
    )
    .arg(family_id)
}

/// Revoking twice keeps the later expiry, so the denial never ends early.
pub async fn revoke_access_token<B: Backend>(
    conn: &B,
    jti: &str,
    expires_at: Timestamp,
) -> Result<()> {
    let q = Sql::new(
        "INSERT INTO oauth_revoked_access_tokens (jti, expires_at) VALUES ($1, $2) \
         ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at \
         WHERE oauth_revoked_access_tokens.expires_at < excluded.expires_at",
    )
    .arg(jti)
    .arg(expires_at);
    conn.execute(q).await.map_err(db)?;
    Ok(())
}

pub async fn is_access_token_revoked<B: Backend>(conn: &B, jti: &str) -> Result<bool> {
    let q = Sql::new("SELECT r.jti AS jti FROM oauth_revoked_access_tokens r WHERE r.jti = $1")
        .arg(jti);
    Ok(conn.fetch_optional(q).await.map_err(db)?.is_some())
}

pub async fn purge_revoked_access_tokens<B: Backend>(conn: &B, now: Timestamp) -> Result<u64> {
    let q = Sql::new("DELETE FROM oauth_revoked_access_tokens WHERE expires_at <= $1").arg(now);
    conn.execute(q).await.map_err(db)
}

// --- signing keys -----------------------------------------------------------------

fn signing_key<R: RowExt>(r: &R) -> Result<SigningKeyRecord> {
    let hex_key = r.text("private_pkcs8").map_err(db)?;
    Ok(SigningKeyRecord {
        kid: r.text("kid").map_err(db)?,
        private_pkcs8: hex::decode(hex_key)
            .map_err(|_| Error::Internal("stored signing key is not valid hex".into()))?,
        created_at: r.time("created_at").map_err(db)?,
        retired_at: r.opt_time("retired_at").map_err(db)?,
    })
}

/// The key is hex text: the SQL layer binds no byte strings, and hex keeps both
/// engines' columns plain `text`. It arrives sealed (see `SigningKeyRecord`).
pub async fn insert_signing_key<B: Backend>(conn: &B, k: &SigningKeyRecord) -> Result<()> {
    let q = Sql::new(
        "INSERT INTO oauth_signing_keys (kid, private_pkcs8, created_at, retired_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .arg(&k.kid)
    .arg(hex::encode(&k.private_pkcs8))
    .arg(k.created_at)
    .arg(k.retired_at);
    conn.execute(q).await.map_err(unique(KID_TAKEN))?;
    Ok(())
}

pub async fn list_signing_keys<B: Backend>(
    conn: &B,
    retired_after: Timestamp,
) -> Result<Vec<SigningKeyRecord>> {
    let q = Sql::new(
        "SELECT k.kid AS kid, k.private_pkcs8 AS private_pkcs8, k.created_at AS created_at, \
         k.retired_at AS retired_at FROM oauth_signing_keys k \
         WHERE k.retired_at IS NULL OR k.retired_at > $1 \
         ORDER BY k.created_at DESC, k.kid DESC",
    )
    .arg(retired_after);
    conn.fetch_all(q)
        .await
        .map_err(db)?
        .iter()
        .map(signing_key)
        .collect()
}

pub async fn update_signing_key_private<B: Backend>(
    conn: &B,
    kid: &str,
    private: &[u8],
) -> Result<bool> {
    let q = Sql::new("UPDATE oauth_signing_keys SET private_pkcs8 = $1 WHERE kid = $2")
        .arg(hex::encode(private))
        .arg(kid);
    Ok(conn.execute(q).await.map_err(db)? > 0)
}

pub async fn retire_signing_key<B: Backend>(conn: &B, kid: &str, at: Timestamp) -> Result<bool> {
    let q = Sql::new(
        "UPDATE oauth_signing_keys SET retired_at = $1 WHERE kid = $2 AND retired_at IS NULL",
    )
    .arg(at)
    .arg(kid);
    Ok(conn.execute(q).await.map_err(db)? > 0)
}

// --- device authorizations ---------------------------------------------------------

const DEVICE_COLS: &str = "d.device_code_hash AS device_code_hash, d.user_code AS user_code, \
     d.client_id AS client_id, d.scope AS scope, d.resource AS resource, \
     d.created_at AS created_at, d.expires_at AS expires_at, \
     d.interval_secs AS interval_secs, d.last_poll_at AS last_poll_at, d.status AS status, \
     d.user_id AS user_id, d.org_id AS org_id, d.grant_id AS grant_id";

fn device<R: RowExt>(r: &R) -> Result<DeviceAuthorization> {
    let status = match r.text("status").map_err(db)?.as_str() {
        "pending" => DeviceStatus::Pending,
        "denied" => DeviceStatus::Denied,
        "approved" => {
            let missing = || Error::Internal("approved device authorization lacks its user".into());
            DeviceStatus::Approved {
                user_id: r.opt_uuid("user_id").map_err(db)?.ok_or_else(missing)?,
                org_id: r.opt_uuid("org_id").map_err(db)?.ok_or_else(missing)?,
                grant_id: r.opt_uuid("grant_id").map_err(db)?.ok_or_else(missing)?,
            }
        }
        other => {
            return Err(Error::Internal(format!(
                "stored device status {other:?} is unknown"
            )));
        }
    };
    let interval = r.i64("interval_secs").map_err(db)?;
    Ok(DeviceAuthorization {
        device_code_hash: r.text("device_code_hash").map_err(db)?,
        user_code: r.text("user_code").map_err(db)?,
        client_id: r.text("client_id").map_err(db)?,
        scope: r.text("scope").map_err(db)?,
        resource: r.text("resource").map_err(db)?,
        created_at: r.time("created_at").map_err(db)?,
        expires_at: r.time("expires_at").map_err(db)?,
        interval_secs: u32::try_from(interval)
            .map_err(|_| Error::Internal(format!("stored poll interval {interval} is invalid")))?,
        last_poll_at: r.opt_time("last_poll_at").map_err(db)?,
        status,
    })
}

fn approval(status: DeviceStatus) -> (Option<Uuid>, Option<Uuid>, Option<Uuid>) {
    match status {
        DeviceStatus::Approved {
            user_id,
            org_id,
            grant_id,
        } => (Some(user_id), Some(org_id), Some(grant_id)),
        DeviceStatus::Pending | DeviceStatus::Denied => (None, None, None),
    }
}

pub async fn insert_device<B: Backend>(conn: &B, d: &DeviceAuthorization) -> Result<()> {
    let (user_id, org_id, grant_id) = approval(d.status);
    let q = Sql::new(
        "INSERT INTO oauth_device_authorizations (device_code_hash, user_code, client_id, \
         scope, resource, created_at, expires_at, interval_secs, last_poll_at, status, \
         user_id, org_id, grant_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .arg(&d.device_code_hash)
    .arg(&d.user_code)
    .arg(&d.client_id)
    .arg(&d.scope)
    .arg(&d.resource)
    .arg(d.created_at)
    .arg(d.expires_at)
    .arg(i64::from(d.interval_secs))
    .arg(d.last_poll_at)
    .arg(d.status.as_str())
    .arg(user_id)
    .arg(org_id)
    .arg(grant_id);
    conn.execute(q).await.map_err(unique(DEVICE_TAKEN))?;
    Ok(())
}

pub async fn get_device<B: Backend>(
    conn: &B,
    device_code_hash: &str,
) -> Result<Option<DeviceAuthorization>> {
    let q = Sql::new(&format!(
        "SELECT {DEVICE_COLS} FROM oauth_device_authorizations d WHERE d.device_code_hash = $1"
    ))
    .arg(device_code_hash);
    conn.fetch_optional(q)
        .await
        .map_err(db)?
        .map(|r| device(&r))
        .transpose()
}

pub async fn find_pending_device<B: Backend>(
    conn: &B,
    user_code: &str,
    now: Timestamp,
) -> Result<Option<DeviceAuthorization>> {
    let q = Sql::new(&format!(
        "SELECT {DEVICE_COLS} FROM oauth_device_authorizations d \
         WHERE d.user_code = $1 AND d.status = 'pending' AND d.expires_at > $2"
    ))
    .arg(user_code)
    .arg(now);
    conn.fetch_optional(q)
        .await
        .map_err(db)?
        .map(|r| device(&r))
        .transpose()
}

/// Only from `pending`: approving and denying race, and the first one wins.
pub async fn set_device_status<B: Backend>(
    conn: &B,
    device_code_hash: &str,
    status: DeviceStatus,
) -> Result<bool> {
    let (user_id, org_id, grant_id) = approval(status);
    let q = Sql::new(
        "UPDATE oauth_device_authorizations SET status = $1, user_id = $2, org_id = $3, \
         grant_id = $4 WHERE device_code_hash = $5 AND status = 'pending'",
    )
    .arg(status.as_str())
    .arg(user_id)
    .arg(org_id)
    .arg(grant_id)
    .arg(device_code_hash);
    Ok(conn.execute(q).await.map_err(db)? > 0)
}

pub async fn record_device_poll<B: Backend>(
    conn: &B,
    device_code_hash: &str,
    now: Timestamp,
) -> Result<Option<DeviceAuthorization>> {
    let mut tx = conn.begin().await.map_err(db)?;
    let q = Sql::new(&format!(
        "SELECT {DEVICE_COLS} FROM oauth_device_authorizations d \
         WHERE d.device_code_hash = $1{}",
        B::FOR_UPDATE
    ))
    .arg(device_code_hash);
    let Some(row) = tx.fetch_optional(q).await.map_err(db)? else {
        return Ok(None);
    };
    let before = device(&row)?;
    let q = Sql::new(
        "UPDATE oauth_device_authorizations SET last_poll_at = $1 WHERE device_code_hash = $2",
    )
    .arg(now)
    .arg(device_code_hash);
    tx.execute(q).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(Some(before))
}

pub async fn purge_expired_devices<B: Backend>(conn: &B, now: Timestamp) -> Result<u64> {
    let q = Sql::new("DELETE FROM oauth_device_authorizations WHERE expires_at <= $1").arg(now);
    conn.execute(q).await.map_err(db)
}

/// Only while pending: an interval set after a decision would change nothing.
pub async fn set_device_interval<B: Backend>(
    conn: &B,
    device_code_hash: &str,
    interval_secs: u32,
) -> Result<bool> {
    let q = Sql::new(
        "UPDATE oauth_device_authorizations SET interval_secs = $1 \
         WHERE device_code_hash = $2 AND status = 'pending'",
    )
    .arg(i64::from(interval_secs))
    .arg(device_code_hash);
    Ok(conn.execute(q).await.map_err(db)? > 0)
}

/// One `DELETE` guarded by the status: the row count says which caller took it.
pub async fn take_approved_device<B: Backend>(conn: &B, device_code_hash: &str) -> Result<bool> {
    let q = Sql::new(
        "DELETE FROM oauth_device_authorizations \
         WHERE device_code_hash = $1 AND status = 'approved'",
    )
    .arg(device_code_hash);
    Ok(conn.execute(q).await.map_err(db)? == 1)
}

pub async fn purge_expired_codes<B: Backend>(conn: &B, now: Timestamp) -> Result<u64> {
    let q = Sql::new("DELETE FROM oauth_codes WHERE expires_at <= $1").arg(now);
    conn.execute(q).await.map_err(db)
}

// --- browser sessions --------------------------------------------------------------

const SESSION_TAKEN: &str = "a browser session with this hash already exists";

fn session<R: RowExt>(r: &R) -> Result<BrowserSessionRecord> {
    Ok(BrowserSessionRecord {
        secret_hash: r.text("secret_hash").map_err(db)?,
        user_id: r.uuid("user_id").map_err(db)?,
        method: r.text("method").map_err(db)?,
        created_at: r.time("created_at").map_err(db)?,
        expires_at: r.time("expires_at").map_err(db)?,
    })
}

pub async fn insert_session<B: Backend>(conn: &B, s: &BrowserSessionRecord) -> Result<()> {
    let q = Sql::new(
        "INSERT INTO oauth_browser_sessions (secret_hash, user_id, method, created_at, \
         expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .arg(&s.secret_hash)
    .arg(s.user_id)
    .arg(&s.method)
    .arg(s.created_at)
    .arg(s.expires_at);
    conn.execute(q).await.map_err(unique(SESSION_TAKEN))?;
    Ok(())
}

pub async fn find_session<B: Backend>(
    conn: &B,
    secret_hash: &str,
    now: Timestamp,
) -> Result<Option<BrowserSessionRecord>> {
    let q = Sql::new(
        "SELECT s.secret_hash AS secret_hash, s.user_id AS user_id, s.method AS method, \
         s.created_at AS created_at, s.expires_at AS expires_at \
         FROM oauth_browser_sessions s WHERE s.secret_hash = $1 AND s.expires_at > $2",
    )
    .arg(secret_hash)
    .arg(now);
    conn.fetch_optional(q)
        .await
        .map_err(db)?
        .map(|r| session(&r))
        .transpose()
}

pub async fn delete_session<B: Backend>(conn: &B, secret_hash: &str) -> Result<bool> {
    let q = Sql::new("DELETE FROM oauth_browser_sessions WHERE secret_hash = $1").arg(secret_hash);
    Ok(conn.execute(q).await.map_err(db)? > 0)
}

pub async fn purge_expired_sessions<B: Backend>(conn: &B, now: Timestamp) -> Result<u64> {
    let q = Sql::new("DELETE FROM oauth_browser_sessions WHERE expires_at <= $1").arg(now);
    conn.execute(q).await.map_err(db)
}
