//! First start: when no organization exists, create one with an environment, an owner
//! and an admin API token, and hand their secrets out exactly once (only hashes are kept).

use crate::audit;
use crate::passwords::hash_password;
use crate::tokens;
use assay_core::audit::Outcome;
use assay_core::identity::{ApiTokenKind, ApiTokenRecord, Membership, OrgRole, User};
use assay_core::ports::{Clock, Store};
use assay_core::{ClientInfo, Environment, Error, Organization, Principal, Result};
use rand::Rng;
use rand::distr::Alphanumeric;
use std::collections::BTreeMap;
use uuid::Uuid;

pub const OWNER_EMAIL: &str = "admin@localhost";
pub const TOKEN_NAME: &str = "bootstrap";
pub const TOKEN_DESCRIPTION: &str = "created at first start; rotate or revoke it";
const PASSWORD_LEN: usize = 20;

/// What the first start created, with its secrets (shown once, never stored in clear).
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub org: Organization,
    pub env: Environment,
    pub owner_email: String,
    pub owner_password: String,
    pub admin_token: String,
}

/// Creates the default organization when there is none; `None` when organizations exist
/// (including when another process bootstrapped concurrently).
pub async fn bootstrap(store: &dyn Store, clock: &dyn Clock) -> Result<Option<Bootstrap>> {
    if !store.list_orgs().await?.is_empty() {
        return Ok(None);
    }
    let now = crate::stamp::now(clock);
    let org = Organization {
        id: Uuid::now_v7(),
        slug: "default".into(),
        name: "Default".into(),
        audit_retention_days: assay_core::tenancy::DEFAULT_AUDIT_RETENTION_DAYS,
        created_at: now,
    };
    match store.insert_org(&org).await {
        Ok(()) => {}
        Err(Error::Conflict(_)) => return Ok(None),
        Err(e) => return Err(e),
    }
    let env = Environment {
        id: Uuid::now_v7(),
        org_id: org.id,
        slug: "dev".into(),
        name: "dev".into(),
        created_at: now,
    };
    store.insert_env(&env).await?;

    let owner_password: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(PASSWORD_LEN)
        .map(char::from)
        .collect();
    let owner = User {
        id: Uuid::now_v7(),
        email: OWNER_EMAIL.into(),
        display_name: "Administrator".into(),
        password_hash: Some(hash_password(&owner_password)?),
        disabled: false,
        created_at: now,
    };
    store.insert_user(&owner).await?;
    store
        .upsert_membership(&Membership {
            org_id: org.id,
            user_id: owner.id,
            role: OrgRole::Owner,
            grants: BTreeMap::new(),
        })
        .await?;

    let (admin_token, secret_hash) = tokens::generate();
    let token = ApiTokenRecord {
        id: Uuid::now_v7(),
        org_id: org.id,
        name: TOKEN_NAME.into(),
        description: TOKEN_DESCRIPTION.into(),
        kind: ApiTokenKind::Admin,
        grants: BTreeMap::new(),
        secret_hash,
        created_by: Some(owner.id),
        created_at: now,
        expires_at: None,
        last_used_at: None,
        last_used_ip: None,
        revoked_at: None,
        previous_secret_hash: None,
        previous_valid_until: None,
    };
    store.insert_api_token(&token).await?;

    let mut event = audit::event(
        &Principal::system(org.id),
        &ClientInfo::default(),
        org.id,
        Some(env.id),
        "org.bootstrap",
        vec![
            format!("org:{}", org.slug),
            format!("env:{}", env.slug),
            format!("user:{}", owner.email),
            format!("token:{}", token.id),
        ],
        Outcome::Success,
        None,
        clock,
    );
    // Before any control plane (and its group-commit writer) exists: append directly.
    store.append_audit(&mut event).await.map_err(|e| {
        tracing::error!(error = %e, "audit append failed during bootstrap");
        crate::audit_log::unavailable()
    })?;

    Ok(Some(Bootstrap {
        org,
        env,
        owner_email: owner.email,
        owner_password,
        admin_token,
    }))
}
