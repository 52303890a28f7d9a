//! Bearer credentials → principals. For now: API tokens. (The identity issue adds JWTs
//! and replaces or extends this module.)
//!
//! Checks, cheapest first:
//! 1. shape and checksum (`tokens::is_well_formed`) — garbage and typos are rejected
//!    without a database lookup;
//! 2. lookup by SHA-256 of the secret — comparing hashes in the database is not a timing
//!    oracle on the secret (an attacker controls the hash input, not the hash, and cannot
//!    steer its prefix), so no constant-time comparison is needed here;
//! 3. revoked / expired.
//!
//! Auditing: failures of *known* tokens (revoked, expired) are audited as `auth.failed`
//! (outcome denied) in the token's organization. Malformed or unknown tokens have no
//! organization whose chain they could go to, so they are only logged (`tracing`); the
//! identity issue adds a dedicated authentication-failure log for those. Successful
//! authentications are not audited separately: the operation that follows is.

use crate::audit;
use crate::tokens;
use assay_core::actor::{Access, AuthMethod, ClientInfo, Principal, PrincipalKind};
use assay_core::audit::Outcome;
use assay_core::identity::{ApiTokenKind, ApiTokenRecord};
use assay_core::ports::{Authenticator, Clock, Store};
use assay_core::{Error, Result};
use async_trait::async_trait;
use std::sync::Arc;

pub const AUTH_FAILED_ACTION: &str = "auth.failed";

/// Authenticates `assay_…` API tokens.
pub struct ApiTokenAuthenticator {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl ApiTokenAuthenticator {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    async fn reject_known(
        &self,
        token: &ApiTokenRecord,
        client: &ClientInfo,
        reason: &str,
    ) -> Error {
        let principal = principal(token);
        let event = audit::event(
            &principal,
            client,
            token.org_id,
            None,
            AUTH_FAILED_ACTION,
            vec![format!("token:{}", token.id)],
            Outcome::Denied,
            Some(reason.to_string()),
            self.clock.as_ref(),
        );
        // The credential is refused either way; a failed append is logged by `append`.
        let _ = audit::append(self.store.as_ref(), event).await;
        Error::Unauthenticated(reason.to_string())
    }
}

/// The principal an API token stands for.
pub fn principal(token: &ApiTokenRecord) -> Principal {
    let access = match token.kind {
        ApiTokenKind::Admin => Access::OrgAdmin,
        ApiTokenKind::OrgRead => Access::ReadAll,
        ApiTokenKind::Member => Access::PerEnvironment {
            grants: token.grants.clone(),
        },
    };
    Principal {
        kind: PrincipalKind::ApiToken,
        id: token.id,
        display_name: token.name.clone(),
        org_id: token.org_id,
        access,
        scope_cap: None,
        auth_method: AuthMethod::ApiToken,
        credential_id: Some(token.id.to_string()),
    }
}

#[async_trait]
impl Authenticator for ApiTokenAuthenticator {
    async fn authenticate(&self, bearer: &str, client: &ClientInfo) -> Result<Principal> {
        let bearer = bearer.trim();
        if !tokens::is_well_formed(bearer) {
            tracing::info!(ip = ?client.ip, "rejected a malformed bearer token");
            return Err(Error::Unauthenticated(
                "the bearer token is not a valid Assay token".into(),
            ));
        }
        let Some(token) = self
            .store
            .find_api_token_by_hash(&tokens::hash(bearer))
            .await?
        else {
            tracing::info!(ip = ?client.ip, "rejected an unknown API token");
            return Err(Error::Unauthenticated(
                "unknown or deleted API token".into(),
            ));
        };
        if token.revoked_at.is_some() {
            return Err(self
                .reject_known(&token, client, "the API token has been revoked")
                .await);
        }
        if token.expires_at.is_some_and(|at| at <= self.clock.now()) {
            return Err(self
                .reject_known(&token, client, "the API token has expired")
                .await);
        }
        Ok(principal(&token))
    }
}
