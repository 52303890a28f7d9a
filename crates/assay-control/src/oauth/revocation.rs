//! RFC 7009 revocation, and revoking grants for the other modules.
//!
//! - A refresh token of a third-party client ends its whole grant: every refresh token
//!   of it and, through the `gid` check, its live access tokens.
//! - A refresh token of the first-party CLI ([`CLI_CLIENT_ID`]) ends only its family:
//!   one `assay login` (one machine), its refresh tokens and, through the `sid` check,
//!   its access tokens. Every login of a user shares one grant (one per user, client and
//!   resource), so ending the grant would log out every machine — and a re-login that
//!   revokes its predecessor would end itself. Presented with another `client_id`, it
//!   has leaked: the whole grant ends, as for any client.
//! - An access token (a JWT this server signed) is denied by `jti` until it would expire.
//! - Anything else — unknown, malformed, expired, another kind of secret — is answered
//!   `Ok` as the RFC asks: revocation reveals nothing about a token.
//!
//! A public client authenticates by `client_id` only, and whoever holds a token can
//! already use it, so a token is revoked even when `client_id` names another client: a
//! token presented by the wrong party has leaked and is better dead.

use super::events::{self, OAuthEvent};
use super::{AuthorizationServer, CLI_CLIENT_ID, OAuthError, RequestContext, ip_key};
use crate::jwt_auth::LEEWAY;
use assay_auth::secrets::{SecretHash, SecretKind, TokenKind, kind_of};
use assay_core::oauth::RefreshToken;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

impl AuthorizationServer {
    /// `hint` (`token_type_hint`) is only a hint: every kind is tried by format.
    pub async fn revoke(
        &self,
        token: &str,
        hint: Option<&str>,
        client_id: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<(), OAuthError> {
        let _ = hint;
        self.public()?;
        self.token_requests
            .acquire(&ip_key(ctx), self.now())
            .map_err(OAuthError::rate_limited)?;
        let token = token.trim();
        if token.is_empty() {
            return Err(OAuthError::invalid_request("token is required"));
        }
        match kind_of(token) {
            TokenKind::Secret(SecretKind::RefreshToken) => {
                self.revoke_refresh_token(token, client_id, ctx).await
            }
            TokenKind::Jwt => self.revoke_access_token(token, client_id, ctx).await,
            _ => Ok(()),
        }
    }

    async fn revoke_refresh_token(
        &self,
        token: &str,
        client_id: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<(), OAuthError> {
        // Looked up, not used: a later presentation of the very token revoked here is
        // then "revoked" (invalid_grant), not a reuse that would end the whole grant —
        // which matters when one login of several under a grant ends.
        let hash = SecretHash::of(token).to_hex();
        let Some(found) = self.store.find_refresh_token(&hash).await? else {
            return Ok(());
        };
        if found.client_id == CLI_CLIENT_ID && client_id.is_none_or(|c| c == found.client_id) {
            return self.end_login_session(&found, ctx).await;
        }
        let revoked = self
            .revoke_grant(found.grant_id, "refresh token revoked by the client")
            .await?;
        if !revoked {
            return Ok(());
        }
        let (org, actor) = self.grant_owner(found.grant_id, &found.client_id).await?;
        let mut event = OAuthEvent::new(events::TOKEN_REVOKED, org, actor)
            .resource(format!("grant:{}", found.grant_id))
            .reason("refresh token: the grant and all its tokens are revoked");
        if client_id.is_some_and(|c| c != found.client_id) {
            event = event.reason("refresh token presented by another client_id: the grant and all its tokens are revoked");
        }
        self.record(ctx, event).await
    }

    /// Ends one CLI login: its refresh-token family, and through `sid` its access
    /// tokens; the grant and the user's other logins go on.
    async fn end_login_session(
        &self,
        found: &RefreshToken,
        ctx: &RequestContext,
    ) -> Result<(), OAuthError> {
        let ended = self
            .store
            .revoke_refresh_family(found.family_id, self.now())
            .await;
        self.grants.forget_session(found.family_id);
        if ended? == 0 {
            // Ended before (logout twice, or its grant was revoked): nothing new to record.
            return Ok(());
        }
        let (org, actor) = self.grant_owner(found.grant_id, &found.client_id).await?;
        let event = OAuthEvent::new(events::TOKEN_REVOKED, org, actor)
            .resource(format!("grant:{}", found.grant_id))
            .resource(format!("refresh-family:{}", found.family_id))
            .reason(
                "refresh token: the login session ended with its refresh and access tokens; \
                 the grant and the user's other sessions are kept",
            );
        self.record(ctx, event).await
    }

    async fn revoke_access_token(
        &self,
        token: &str,
        client_id: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<(), OAuthError> {
        let Some(audience) = unverified_audience(token) else {
            return Ok(());
        };
        let issuer = self.public()?.issuer();
        let claims = match self.keys.ring().validate(
            token,
            &issuer,
            &[audience.as_str()],
            self.clock.now(),
            LEEWAY,
        ) {
            Ok(claims) => claims,
            // Not ours, or already expired: nothing to deny.
            Err(_) => return Ok(()),
        };
        let expires_at = time::OffsetDateTime::from_unix_timestamp(claims.exp)
            .map_err(|_| OAuthError::server_error())?
            + time::Duration::try_from(LEEWAY).unwrap_or(time::Duration::ZERO);
        let denied = self
            .store
            .revoke_access_token(&claims.jti, expires_at)
            .await;
        // Cached principals skip the denylist: forget them even if the store failed.
        self.grants.forget_principals();
        denied?;
        let user = Uuid::parse_str(&claims.sub).unwrap_or(Uuid::nil());
        let grant = match Uuid::parse_str(&claims.gid) {
            Ok(id) => self.store.get_oauth_grant(id).await?,
            Err(_) => None,
        };
        let org = grant.map(|g| g.org_id).unwrap_or(Uuid::nil());
        let actor = self.credential_owner(user, org, &claims.client_id).await;
        let mut event = OAuthEvent::new(events::TOKEN_REVOKED, org, actor)
            .resource(format!("grant:{}", claims.gid))
            .resource(format!("jti:{}", claims.jti))
            .reason("access token denied until it expires");
        if client_id.is_some_and(|c| c != claims.client_id) {
            event = event
                .reason("access token presented by another client_id: denied until it expires");
        }
        self.record(ctx, event).await
    }

    /// Revokes a grant and its refresh tokens, and makes the access-token validator
    /// forget it at once. `false` when it was not live.
    pub(crate) async fn revoke_grant(&self, id: Uuid, reason: &str) -> Result<bool, OAuthError> {
        let revoked = self.store.revoke_oauth_grant(id, self.now(), reason).await;
        self.grants.forget(id);
        Ok(revoked?)
    }
}

/// The `aud` claim of a JWS before verification, only to pick the audience to verify
/// against (the signature check that follows decides).
fn unverified_audience(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("aud")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audience_is_read_from_the_payload() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"aud":"https://a.example/x","sub":"u"}"#);
        assert_eq!(
            unverified_audience(&format!("e30.{payload}.sig")).as_deref(),
            Some("https://a.example/x")
        );
        assert_eq!(unverified_audience("e30.e30.sig"), None);
        assert_eq!(unverified_audience("garbage"), None);
        let array = URL_SAFE_NO_PAD.encode(br#"{"aud":["a","b"]}"#);
        assert_eq!(unverified_audience(&format!("e30.{array}.s")), None);
    }
}
