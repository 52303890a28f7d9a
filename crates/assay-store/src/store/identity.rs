//! Users and their memberships in organizations.

use super::rows;
use crate::backend::Backend;
use crate::codec::to_json;
use crate::error::{db, unique};
use crate::sql::Sql;
use assay_core::identity::{Membership, User};
use assay_core::{Error, Result};
use uuid::Uuid;

const EMAIL_TAKEN: &str = "a user with this email already exists";

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
    conn.execute(q).await.map_err(unique(EMAIL_TAKEN))?;
    Ok(())
}

/// Everything but the ID and `created_at` is replaced.
pub async fn update_user<B: Backend>(conn: &B, user: &User) -> Result<()> {
    let q = Sql::new(
        "UPDATE users SET email = $1, display_name = $2, password_hash = $3, disabled = $4 \
         WHERE id = $5",
    )
    .arg(&user.email)
    .arg(&user.display_name)
    .arg(user.password_hash.clone())
    .arg(user.disabled)
    .arg(user.id);
    match conn.execute(q).await.map_err(unique(EMAIL_TAKEN))? {
        0 => Err(Error::not_found("user", user.id.to_string())),
        _ => Ok(()),
    }
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

/// Ordered by user ID (the primary key's order).
pub async fn list_memberships<B: Backend>(conn: &B, org_id: Uuid) -> Result<Vec<Membership>> {
    let q = Sql::new(&format!(
        "SELECT {} FROM memberships m WHERE m.org_id = $1 ORDER BY m.user_id",
        rows::MEMBERSHIP_COLS
    ))
    .arg(org_id);
    conn.fetch_all(q)
        .await
        .map_err(db)?
        .iter()
        .map(rows::membership)
        .collect()
}

/// Every organization the user belongs to, ordered by organization ID.
pub async fn list_memberships_of_user<B: Backend>(
    conn: &B,
    user_id: Uuid,
) -> Result<Vec<Membership>> {
    let q = Sql::new(&format!(
        "SELECT {} FROM memberships m WHERE m.user_id = $1 ORDER BY m.org_id",
        rows::MEMBERSHIP_COLS
    ))
    .arg(user_id);
    conn.fetch_all(q)
        .await
        .map_err(db)?
        .iter()
        .map(rows::membership)
        .collect()
}

pub async fn delete_membership<B: Backend>(conn: &B, org_id: Uuid, user_id: Uuid) -> Result<bool> {
    let q = Sql::new("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
        .arg(org_id)
        .arg(user_id);
    Ok(conn.execute(q).await.map_err(db)? > 0)
}
