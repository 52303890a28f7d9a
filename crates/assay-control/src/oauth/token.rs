//! The token endpoint (OAuth 2.1 §3.2): request checks shared by every grant type, and
//! the authorization-code grant. Refresh is in `refresh`, the device grant in `device`.
//!
//! The code grant: the code is consumed atomically (one presenter wins), then bound
//! checks — client, redirect URI, resource, PKCE S256 in constant time. A code presented
//! again after its first use is a replay: the grant it issued is revoked with all its
//! tokens (RFC 9700 §4.5.3).

use super::events::{self, OAuthEvent};
use super::issue::Family;
use super::params::given;
use super::{AuthorizationServer, OAuthError, RequestContext, TokenParams, TokenResponse, ip_key};
use assay_auth::metadata::DEVICE_CODE_GRANT_TYPE;
use assay_auth::pkce::{self, PkceError};
use assay_auth::scope::granted_mcp_scope;
use assay_auth::secrets::{SecretHash, SecretKind};
use assay_core::oauth::{CodeRedemption, OAuthGrant};

impl AuthorizationServer {
    pub async fn token(
        &self,
        f: &TokenParams,
        ctx: &RequestContext,
    ) -> Result<TokenResponse, OAuthError> {
        self.public()?;
        self.token_requests
            .acquire(&ip_key(ctx), self.now())
            .map_err(OAuthError::rate_limited)?;
        if let Some(name) = f.repeated.first() {
            return Err(if name == "resource" {
                OAuthError::invalid_target("only one resource may be requested")
            } else {
                OAuthError::invalid_request(format!("{name} was sent more than once"))
            });
        }
        let grant_type = given(&f.grant_type)
            .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
        if !matches!(
            grant_type,
            "authorization_code" | "refresh_token" | DEVICE_CODE_GRANT_TYPE
        ) {
            return Err(OAuthError::unsupported_grant_type(
                "supported grant types: authorization_code, refresh_token, device_code",
            ));
        }
        // Public clients: the client_id is how they identify themselves (no secrets).
        let client_id = given(&f.client_id)
            .ok_or_else(|| OAuthError::invalid_request("client_id is required"))?;
        let client = self.resolve_client(client_id, ctx).await?;
        match grant_type {
            "authorization_code" => self.code_grant(f, &client.id, ctx).await,
            "refresh_token" => self.refresh_grant(f, &client.id, ctx).await,
            _ => {
                if !client.may_use_device_grant() {
                    return Err(OAuthError::unauthorized_client(
                        "this client may not use the device authorization grant",
                    ));
                }
                self.device_grant(f, &client.id, ctx).await
            }
        }
    }

    async fn code_grant(
        &self,
        f: &TokenParams,
        client_id: &str,
        ctx: &RequestContext,
    ) -> Result<TokenResponse, OAuthError> {
        let code = given(&f.code).ok_or_else(|| OAuthError::invalid_request("code is required"))?;
        // PKCE is checked for form before the code is spent, so a malformed request
        // does not burn it.
        let verifier = given(&f.code_verifier)
            .ok_or_else(|| OAuthError::invalid_request("code_verifier is required (PKCE S256)"))?;
        pkce::validate_verifier(verifier)
            .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
        if !SecretKind::AuthorizationCode.is_well_formed(code) {
            return Err(invalid_code());
        }
        let hash = SecretHash::of(code).to_hex();
        let found = match self
            .store
            .consume_authorization_code(&hash, self.now())
            .await?
        {
            None => return Err(invalid_code()),
            Some(CodeRedemption::Expired(_)) => {
                return Err(OAuthError::invalid_grant(
                    "the authorization code has expired",
                ));
            }
            Some(CodeRedemption::Replay(code)) => {
                let revoked = self
                    .revoke_grant(code.grant_id, "authorization code replayed")
                    .await?;
                let actor = self
                    .credential_owner(code.user_id, code.org_id, client_id)
                    .await;
                let event = OAuthEvent::new(events::CODE_REPLAYED, code.org_id, actor)
                    .resource(format!("grant:{}", code.grant_id))
                    .resource(format!("client:{}", code.client_id))
                    .presented_again("an authorization code", revoked);
                self.record_refusal(ctx, event).await;
                return Err(invalid_code());
            }
            Some(CodeRedemption::First(code)) => code,
        };
        if found.client_id != client_id {
            return Err(OAuthError::invalid_grant(
                "the authorization code was issued to another client",
            ));
        }
        if given(&f.redirect_uri).is_some_and(|r| r != found.redirect_uri) {
            return Err(OAuthError::invalid_grant(
                "redirect_uri differs from the one of the authorization request",
            ));
        }
        if given(&f.resource).is_some_and(|r| r != found.resource) {
            return Err(OAuthError::invalid_target(
                "resource differs from the one of the authorization request",
            ));
        }
        match pkce::verify(&found.code_challenge, verifier) {
            Ok(()) => {}
            Err(PkceError::Mismatch) => {
                return Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
            Err(e) => return Err(OAuthError::invalid_grant(e.to_string())),
        }
        let grant = self.live_grant(found.grant_id).await?;
        let user = self.token_holder(grant.user_id).await?;
        let scope = granted_mcp_scope(&found.scope)
            .ok()
            .flatten()
            .ok_or_else(OAuthError::server_error)?;
        let issued = self.issue_tokens(&grant, scope, Family::New).await?;
        let event = issued
            .event(events::TOKEN_ISSUED, &grant, &user, client_id)
            .reason(format!(
                "authorization_code; scope {}",
                issued.response.scope
            ));
        self.record(ctx, event).await?;
        Ok(issued.response)
    }

    /// The grant, when it is still live.
    pub(crate) async fn live_grant(&self, id: uuid::Uuid) -> Result<OAuthGrant, OAuthError> {
        match self.store.get_oauth_grant(id).await? {
            Some(g) if g.revoked_at.is_none() => Ok(g),
            _ => Err(OAuthError::invalid_grant("the grant has been revoked")),
        }
    }
}

fn invalid_code() -> OAuthError {
    OAuthError::invalid_grant("the authorization code is invalid, expired or already used")
}
