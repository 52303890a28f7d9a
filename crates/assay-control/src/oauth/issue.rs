//! Minting what the token endpoint returns: a JWT access token bound to the grant's
//! resource (audience), client, scope, grant ID (`gid`) and refresh-token family (`sid`,
//! the sign-in session), and an opaque refresh token stored hashed. A refresh token is
//! always issued (MCP clients refresh only when they got one); it belongs to a family
//! (one per authorization: a code or device exchange) whose absolute lifetime is
//! carried over on rotation.

use super::events::{self, OAuthEvent};
use super::{AuthorizationServer, OAuthError, TokenResponse, after};
use assay_auth::jwt::AccessTokenRequest;
use assay_auth::scope::{McpScope, granted_mcp_scope};
use assay_auth::secrets::{self, SecretKind};
use assay_core::Timestamp;
use assay_core::actor::AuthMethod;
use assay_core::identity::User;
use assay_core::oauth::{OAuthGrant, RefreshToken};
use uuid::Uuid;

/// Which refresh-token family the new refresh token joins.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Family {
    /// A new authorization (code or device grant).
    New,
    /// A rotation: same family, same absolute end.
    Continue { id: Uuid, expires_at: Timestamp },
}

/// Tokens issued, with what the audit event names.
pub(crate) struct Issued {
    pub response: TokenResponse,
    pub jti: String,
    pub family_id: Uuid,
}

impl Issued {
    /// The audit event for these tokens (`action`: issued or refreshed), naming the
    /// grant and the access token's `jti`; callers add what is particular to the grant
    /// type.
    pub(crate) fn event(
        &self,
        action: &'static str,
        grant: &OAuthGrant,
        user: &User,
        client_id: &str,
    ) -> OAuthEvent {
        OAuthEvent::new(
            action,
            grant.org_id,
            events::user_actor(
                user.id,
                &user.display_name,
                grant.org_id,
                AuthMethod::OAuth,
                Some(client_id),
            ),
        )
        .resource(format!("grant:{}", grant.id))
        .resource(format!("jti:{}", self.jti))
    }
}

/// The narrower of two stored scopes: what a token may carry when both the credential
/// presented and the grant's current scope bound it. A scope that no longer parses
/// counts as `read`, so a damaged row never widens access.
pub(crate) fn scope_ceiling(presented: &str, granted: &str) -> McpScope {
    let read = |s: &str| {
        granted_mcp_scope(s)
            .ok()
            .flatten()
            .unwrap_or(McpScope::Read)
    };
    read(presented).min(read(granted))
}

impl AuthorizationServer {
    /// The user tokens are about to be issued to. At the token endpoint a disabled or
    /// deleted account makes the grant unusable: `invalid_grant`, not `access_denied`.
    pub(crate) async fn token_holder(&self, user_id: Uuid) -> Result<User, OAuthError> {
        self.active_user(user_id)
            .await
            .map_err(|_| OAuthError::invalid_grant("the account is disabled or no longer exists"))
    }

    pub(crate) async fn issue_tokens(
        &self,
        grant: &OAuthGrant,
        scope: McpScope,
        family: Family,
    ) -> Result<Issued, OAuthError> {
        let issuer = self.public()?.issuer();
        let now = self.now();
        let subject = grant.user_id.to_string();
        let grant_id = grant.id.to_string();
        let (family_id, expires_at) = match family {
            Family::New => (Uuid::now_v7(), after(now, self.config.refresh_absolute_ttl)),
            Family::Continue { id, expires_at } => (id, expires_at),
        };
        let session_id = family_id.to_string();
        let ring = self.keys.ring();
        let (access_token, claims) = ring
            .issue(
                &issuer,
                &AccessTokenRequest {
                    subject: &subject,
                    audience: &grant.resource,
                    client_id: &grant.client_id,
                    scope,
                    lifetime: self.config.access_token_ttl,
                    grant_id: &grant_id,
                    session_id: Some(&session_id),
                },
                now,
            )
            .map_err(|e| {
                tracing::error!(error = %e, "could not sign an access token");
                OAuthError::server_error()
            })?;
        let refresh = secrets::generate(SecretKind::RefreshToken).map_err(|e| {
            tracing::error!(error = %e, "could not generate a refresh token");
            OAuthError::server_error()
        })?;
        self.store
            .insert_refresh_token(&RefreshToken {
                token_hash: refresh.hash().to_hex(),
                family_id,
                grant_id: grant.id,
                client_id: grant.client_id.clone(),
                resource: grant.resource.clone(),
                scope: scope.to_scope_string(),
                created_at: now,
                expires_at,
                idle_expires_at: after(now, self.config.refresh_idle_ttl).min(expires_at),
                used_at: None,
                revoked_at: None,
            })
            .await?;
        Ok(Issued {
            response: TokenResponse {
                access_token,
                token_type: "Bearer".into(),
                expires_in: self.config.access_token_ttl.as_secs(),
                refresh_token: Some(refresh.expose().to_owned()),
                scope: scope.to_scope_string(),
            },
            jti: claims.jti,
            family_id,
        })
    }
}
