//! Organizations, environments, users, memberships and API tokens.

use super::rows;
use crate::backend::Backend;
use crate::codec::to_json;
use crate::error::{db, unique};
use crate::sql::Sql;
use assay_core::Result;
use assay_core::identity::{ApiTokenRecord, Membership, User};
use assay_core::tenancy::{Environment, Organization};
use uuid::Uuid;

pub async fn insert_org<B: Backend>(conn: &B, org: &Organization) -> Result<()> {
    let q = Sql::new("INSERT INTO orgs (id, slug, name, created_at) VALUES ($1, $2, $3, $4)")
        .arg(org.id)
        .arg(&org.slug)
        .arg(&org.name)
        .arg(org.created_at);
    conn.execute(q).await.map_err(unique(format!(
        "organization {:?} already exists",
        org.slug
    )))?;
    Ok(())
}

/// By ID first when the text is a UUID (a slug shaped like a UUID is only reached when
/// no organization has that ID), else by slug.
pub async fn find_org<B: Backend>(conn: &B, id_or_slug: &str) -> Result<Option<Organization>> {
    if let Ok(id) = Uuid::try_parse(id_or_slug) {
        let q = Sql::new(&format!(
            "SELECT {} FROM orgs o WHERE o.id = $1",
            rows::ORG_COLS
        ))
        .arg(id);
        if let Some(row) = conn.fetch_optional(q).await.map_err(db)? {
            return rows::org(&row).map(Some);
        }
    }
    let q = Sql::new(&format!(
        "SELECT {} FROM orgs o WHERE o.slug = $1",
        rows::ORG_COLS
    ))
    .arg(id_or_slug);
    conn.fetch_optional(q)
        .await
        .map_err(db)?
        .map(|r| rows::org(&r))
        .transpose()
}

pub async fn list_orgs<B: Backend>(conn: &B) -> Result<Vec<Organization>> {
    let q = Sql::new(&format!(
        "SELECT {} FROM orgs o ORDER BY o.slug",
        rows::ORG_COLS
    ));
    conn.fetch_all(q)
        .await
        .map_err(db)?
        .iter()
        .map(rows::org)
        .collect()
}

pub async fn insert_env<B: Backend>(conn: &B, env: &Environment) -> Result<()> {
    let q = Sql::new(
        "INSERT INTO envs (id, org_id, slug, name, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .arg(env.id)
    .arg(env.org_id)
    .arg(&env.slug)
    .arg(&env.name)
    .arg(env.created_at);
    conn.execute(q).await.map_err(unique(format!(
        "environment {:?} already exists in this organization",
        env.slug
    )))?;
    Ok(())
}

pub async fn find_env<B: Backend>(
    conn: &B,
    org_id: Uuid,
    id_or_slug: &str,
) -> Result<Option<Environment>> {
    if let Ok(id) = Uuid::try_parse(id_or_slug) {
        let q = Sql::new(&format!(
            "SELECT {} FROM envs v WHERE v.org_id = $1 AND v.id = $2",
            rows::ENV_COLS
        ))
        .arg(org_id)
        .arg(id);
        if let Some(row) = conn.fetch_optional(q).await.map_err(db)? {
            return rows::env(&row).map(Some);
        }
    }
    let q = Sql::new(&format!(
        "SELECT {} FROM envs v WHERE v.org_id = $1 AND v.slug = $2",
        rows::ENV_COLS
    ))
    .arg(org_id)
    .arg(id_or_slug);
    conn.fetch_optional(q)
        .await
        .map_err(db)?
        .map(|r| rows::env(&r))
        .transpose()
}

pub async fn list_envs<B: Backend>(conn: &B, org_id: Uuid) -> Result<Vec<Environment>> {
    let q = Sql::new(&format!(
        "SELECT {} FROM envs v WHERE v.org_id = $1 ORDER BY v.slug",
        rows::ENV_COLS
    ))
    .arg(org_id);
    conn.fetch_all(q)
        .await
        .map_err(db)?
        .iter()
        .map(rows::env)
        .collect()
}

pub async fn insert_user<B: Backend>(conn: &B, user: &User) -> Result<()> {
    let q = Sql::new(
        "INSERT INTO users (id, email, display_name, password_hash, disabled, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .arg(user.id)
    .arg(&user.email)
    .arg(&user.display_name)
    .arg(user.password_hash.clone())
    .arg(user.disabled)
    .arg(user.created_at);
    conn.execute(q)
        .await
        .map_err(unique("a user with this email already exists"))?;
    Ok(())
}

pub async fn find_user<B: Backend>(conn: &B, id: Uuid) -> Result<Option<User>> {
    let q = Sql::new(&format!(
        "SELECT {} FROM users u WHERE u.id = $1",
        rows::USER_COLS
    ))
    .arg(id);
    conn.fetch_optional(q)
        .await
        .map_err(db)?
        .map(|r| rows::user(&r))
        .transpose()
}

/// Emails match case-insensitively (the unique index is on `lower(email)`).
pub async fn find_user_by_email<B: Backend>(conn: &B, email: &str) -> Result<Option<User>> {
    let q = Sql::new(&format!(
        "SELECT {} FROM users u WHERE lower(u.email) = lower($1)",
        rows::USER_COLS
    ))
    .arg(email);
    conn.fetch_optional(q)
        .await
        .map_err(db)?
        .map(|r| rows::user(&r))
        .transpose()
}

pub async fn upsert_membership<B: Backend>(conn: &B, m: &Membership) -> Result<()> {
    let q = Sql::new(
        "INSERT INTO memberships (org_id, user_id, role, grants) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role, grants = excluded.grants",
    )
    .arg(m.org_id)
    .arg(m.user_id)
    .arg(m.role.as_str())
    .arg(to_json(&m.grants)?);
    conn.execute(q).await.map_err(db)?;
    Ok(())
}

pub async fn find_membership<B: Backend>(
    conn: &B,
    org_id: Uuid,
    user_id: Uuid,
) -> Result<Option<Membership>> {
    let q = Sql::new(&format!(
        "SELECT {} FROM memberships m WHERE m.org_id = $1 AND m.user_id = $2",
        rows::MEMBERSHIP_COLS
    ))
    .arg(org_id)
    .arg(user_id);
    conn.fetch_optional(q)
        .await
        .map_err(db)?
        .map(|r| rows::membership(&r))
        .transpose()
}

pub async fn insert_api_token<B: Backend>(conn: &B, t: &ApiTokenRecord) -> Result<()> {
    let q = Sql::new(
        "INSERT INTO api_tokens (id, org_id, name, description, kind, grants, secret_hash, \
         created_by, created_at, expires_at, last_used_at, last_used_ip, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
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
    .arg(t.revoked_at);
    conn.execute(q)
        .await
        .map_err(unique("an API token with this ID or secret already exists"))?;
    Ok(())
}

pub async fn find_api_token_by_hash<B: Backend>(
    conn: &B,
    secret_hash: &str,
) -> Result<Option<ApiTokenRecord>> {
    let q = Sql::new(&format!(
        "SELECT {} FROM api_tokens t WHERE t.secret_hash = $1",
        rows::TOKEN_COLS
    ))
    .arg(secret_hash);
    conn.fetch_optional(q)
        .await
        .map_err(db)?
        .map(|r| rows::token(&r))
        .transpose()
}
