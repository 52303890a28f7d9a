//! Organizations and environments.

use super::rows;
use crate::backend::Backend;
use crate::error::{db, unique};
use crate::sql::Sql;
use assay_core::tenancy::{Environment, Organization};
use assay_core::{Error, Result};
use uuid::Uuid;

pub async fn insert_org<B: Backend>(conn: &B, org: &Organization) -> Result<()> {
    let q = Sql::new(
        "INSERT INTO orgs (id, slug, name, audit_retention_days, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .arg(org.id)
    .arg(&org.slug)
    .arg(&org.name)
    .arg(i64::from(org.audit_retention_days))
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

/// Days ≥ 1: a zero retention would purge events as they are written.
pub async fn set_audit_retention_days<B: Backend>(conn: &B, org_id: Uuid, days: u32) -> Result<()> {
    if days < 1 {
        return Err(Error::invalid(
            "retention_days",
            "audit retention must be at least 1 day",
        ));
    }
    let q = Sql::new("UPDATE orgs SET audit_retention_days = $1 WHERE id = $2")
        .arg(i64::from(days))
        .arg(org_id);
    match conn.execute(q).await.map_err(db)? {
        0 => Err(Error::not_found("organization", org_id.to_string())),
        _ => Ok(()),
    }
}
