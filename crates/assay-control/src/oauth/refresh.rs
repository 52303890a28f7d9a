//! The refresh-token grant: rotation on every use, reuse detection, never a wider scope.
//!
//! A refresh token is used atomically (one presenter wins) and replaced by a new one of
//! the same family with the family's absolute end. Presenting a token that was already
//! used while its family is live means two parties hold it: the whole grant is revoked —
//! every refresh token and, through the `gid` check, every live access token (RFC 9700
//! §4.14.2). A used token of a family that already ended (its login signed out, its grant
//! revoked) is refused like any revoked one: nothing live is at stake, and revoking the
//! grant would sign the user's other logins out for a stale copy (say, a CLI process
//! still holding it after `assay logout`). The store tells the two apart.
//!
//! The new scope is at most the presented token's and the grant's current scope (the
//! user may have re-consented to less); a request may narrow it, never widen it.
//! Checks that need the token happen after it is used, so a request that fails them has
//! spent the token; the checks that do not (syntax) come first.

use super::events::{self, OAuthEvent};
use super::issue::{Family, scope_ceiling};
use super::params::given;
use super::{AuthorizationServer, OAuthError, RequestContext, TokenParams, TokenResponse};
use assay_auth::scope::ScopeRequest;
use assay_auth::secrets::{SecretHash, SecretKind};
use assay_core::oauth::RefreshRedemption;

impl AuthorizationServer {
    pub(crate) async fn refresh_grant(
        &self,
        f: &TokenParams,
        client_id: &str,
        ctx: &RequestContext,
    ) -> Result<TokenResponse, OAuthError> {
        let presented = given(&f.refresh_token)
            .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
        let requested = match given(&f.scope) {
            Some(scope) => {
                ScopeRequest::parse(scope)
                    .map_err(|e| OAuthError::invalid_scope(e.to_string()))?
                    .mcp
            }
            None => None,
        };
        if !SecretKind::RefreshToken.is_well_formed(presented) {
            return Err(invalid_refresh());
        }
        let hash = SecretHash::of(presented).to_hex();
        let token = match self.store.use_refresh_token(&hash, self.now()).await? {
            None | Some(RefreshRedemption::Revoked(_)) | Some(RefreshRedemption::Expired(_)) => {
                return Err(invalid_refresh());
            }
            Some(RefreshRedemption::Reuse(token)) => {
                self.store
                    .revoke_refresh_family(token.family_id, self.now())
                    .await?;
                let revoked = self
                    .revoke_grant(token.grant_id, "refresh token reused")
                    .await?;
                let (org, actor) = self.grant_owner(token.grant_id, client_id).await?;
                let event = OAuthEvent::new(events::REFRESH_REUSE_DETECTED, org, actor)
                    .resource(format!("grant:{}", token.grant_id))
                    .resource(format!("refresh-family:{}", token.family_id))
                    .presented_again("a used refresh token", revoked);
                self.record_refusal(ctx, event).await;
                return Err(invalid_refresh());
            }
            Some(RefreshRedemption::First(token)) => token,
        };
        if token.client_id != client_id {
            return Err(OAuthError::invalid_grant(
                "the refresh token was issued to another client",
            ));
        }
        if given(&f.resource).is_some_and(|r| r != token.resource) {
            return Err(OAuthError::invalid_target(
                "a refresh token is bound to the resource it was issued for",
            ));
        }
        let grant = self.live_grant(token.grant_id).await?;
        let user = self.token_holder(grant.user_id).await?;
        let ceiling = scope_ceiling(&token.scope, &grant.scope);
        let scope = match requested {
            Some(r) if r > ceiling => {
                return Err(OAuthError::invalid_scope(format!(
                    "a refresh cannot widen the scope beyond {}",
                    ceiling.to_scope_string()
                )));
            }
            Some(r) => r,
            None => ceiling,
        };
        let issued = self
            .issue_tokens(
                &grant,
                scope,
                Family::Continue {
                    id: token.family_id,
                    expires_at: token.expires_at,
                },
            )
            .await?;
        let event = issued
            .event(events::TOKEN_REFRESHED, &grant, &user, client_id)
            .resource(format!("refresh-family:{}", issued.family_id))
            .reason(format!("scope {}", issued.response.scope));
        self.record(ctx, event).await?;
        Ok(issued.response)
    }
}

fn invalid_refresh() -> OAuthError {
    OAuthError::invalid_grant("the refresh token is invalid, expired, revoked or already used")
}
