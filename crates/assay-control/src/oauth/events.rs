//! The authorization server's audit events, through the control plane's audit log.
//!
//! Chain: the organization the event concerns (a grant's, a user's first), else the
//! unscoped chain (organization ID nil) — registrations and refusals nobody can be tied
//! to, as `auth.failed` does. Actor: the user when known (method `oauth` for what a
//! client does with the user's grant, `session` for the browser login itself), else the
//! client (its ID as the credential). Resources name records by ID (`grant:…`,
//! `client:…`, `user:…`) and never hold a code, token or password.

use super::{AuthorizationServer, OAuthError, RequestContext};
use crate::audit;
use assay_core::actor::{Access, AuthMethod, ClientInfo, Principal, PrincipalKind};
use assay_core::audit::Outcome;
use uuid::Uuid;

pub const CLIENT_REGISTERED: &str = "oauth.client.registered";
pub const LOGIN_SUCCEEDED: &str = "oauth.login.succeeded";
pub const LOGIN_FAILED: &str = "oauth.login.failed";
pub const CONSENT_GRANTED: &str = "oauth.consent.granted";
pub const CONSENT_DENIED: &str = "oauth.consent.denied";
pub const TOKEN_ISSUED: &str = "oauth.token.issued";
pub const TOKEN_REFRESHED: &str = "oauth.token.refreshed";
pub const TOKEN_REVOKED: &str = "oauth.token.revoked";
pub const REFRESH_REUSE_DETECTED: &str = "oauth.refresh.reuse_detected";
pub const CODE_REPLAYED: &str = "oauth.code.replayed";
pub const CIMD_REFUSED: &str = "oauth.cimd.refused";
pub const DEVICE_APPROVED: &str = "oauth.device.approved";
pub const DEVICE_DENIED: &str = "oauth.device.denied";

/// One event before it is stamped.
pub(crate) struct OAuthEvent {
    pub action: &'static str,
    pub org_id: Uuid,
    pub actor: Principal,
    pub resources: Vec<String>,
    pub outcome: Outcome,
    pub reason: Option<String>,
}

impl OAuthEvent {
    pub fn new(action: &'static str, org_id: Uuid, actor: Principal) -> Self {
        Self {
            action,
            org_id,
            actor,
            resources: Vec::new(),
            outcome: Outcome::Success,
            reason: None,
        }
    }

    pub fn resource(mut self, r: impl Into<String>) -> Self {
        self.resources.push(r.into());
        self
    }

    pub fn denied(mut self, reason: impl Into<String>) -> Self {
        self.outcome = Outcome::Denied;
        self.reason = Some(reason.into());
        self
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Refused because a single-use `credential` (as a noun phrase: "an authorization
    /// code") was presented again; `revoked_now` tells whether that revoked its grant or
    /// found it revoked already.
    pub fn presented_again(self, credential: &str, revoked_now: bool) -> Self {
        self.denied(if revoked_now {
            format!("{credential} was presented again; its grant and tokens are revoked")
        } else {
            format!("{credential} was presented again; its grant was already revoked")
        })
    }
}

/// A user acting through a client (`credential` = the client ID) or in the browser.
pub(crate) fn user_actor(
    user_id: Uuid,
    name: &str,
    org_id: Uuid,
    method: AuthMethod,
    client_id: Option<&str>,
) -> Principal {
    Principal {
        kind: PrincipalKind::User,
        id: user_id,
        display_name: name.to_owned(),
        org_id,
        access: Access::PerEnvironment {
            grants: Default::default(),
        },
        scope_cap: None,
        auth_method: method,
        credential_id: client_id.map(str::to_owned),
    }
}

/// A client acting for nobody known (registration, a refused request).
pub(crate) fn client_actor(client_id: Option<&str>, org_id: Uuid) -> Principal {
    Principal {
        kind: PrincipalKind::User,
        id: Uuid::nil(),
        display_name: client_id
            .map(|c| format!("oauth client {}", bounded(c)))
            .unwrap_or_else(|| "unknown".into()),
        org_id,
        access: Access::PerEnvironment {
            grants: Default::default(),
        },
        scope_cap: None,
        auth_method: AuthMethod::OAuth,
        credential_id: client_id.map(|c| bounded(c).to_owned()),
    }
}

/// Client IDs are URLs of up to 2000 characters; the audit trail keeps a prefix.
fn bounded(text: &str) -> &str {
    match text.char_indices().nth(256) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

pub(crate) fn client_info(ctx: &RequestContext) -> ClientInfo {
    ClientInfo {
        ip: ctx.ip.map(|ip| ip.to_string()),
        user_agent: ctx.user_agent.clone(),
        mcp_client: None,
        request_id: ctx.request_id.clone(),
    }
}

impl AuthorizationServer {
    /// The user an OAuth credential belongs to, acting through `client_id`, as an event
    /// actor; the name is looked up ("" when the user is gone).
    pub(crate) async fn credential_owner(
        &self,
        user_id: Uuid,
        org_id: Uuid,
        client_id: &str,
    ) -> Principal {
        let name = self.user_name(user_id).await;
        user_actor(user_id, &name, org_id, AuthMethod::OAuth, Some(client_id))
    }

    /// The organization and owner of grant `grant_id` as an event actor through
    /// `client_id`; nil IDs when the grant is gone.
    pub(crate) async fn grant_owner(
        &self,
        grant_id: Uuid,
        client_id: &str,
    ) -> Result<(Uuid, Principal), OAuthError> {
        let (org, user) = self
            .store
            .get_oauth_grant(grant_id)
            .await?
            .map(|g| (g.org_id, g.user_id))
            .unwrap_or((Uuid::nil(), Uuid::nil()));
        Ok((org, self.credential_owner(user, org, client_id).await))
    }

    /// A user's display name for an event, or "" when unknown.
    async fn user_name(&self, user_id: Uuid) -> String {
        match self.store.find_user(user_id).await {
            Ok(Some(user)) => user.display_name,
            _ => String::new(),
        }
    }

    /// Records an event and waits for it to be committed: the operation fails closed
    /// when its event cannot be written.
    pub(crate) async fn record(
        &self,
        ctx: &RequestContext,
        event: OAuthEvent,
    ) -> Result<(), OAuthError> {
        self.audit
            .append(self.stamp(ctx, event))
            .await
            .map(|_| ())
            .map_err(OAuthError::from)
    }

    /// Records a refusal; the request is refused either way, so a failed append is only
    /// logged (by the writer).
    pub(crate) async fn record_refusal(&self, ctx: &RequestContext, event: OAuthEvent) {
        let _ = self.audit.append(self.stamp(ctx, event)).await;
    }

    fn stamp(&self, ctx: &RequestContext, e: OAuthEvent) -> assay_core::audit::AuditEvent {
        audit::event(
            &e.actor,
            &client_info(ctx),
            e.org_id,
            None,
            e.action,
            e.resources,
            e.outcome,
            e.reason,
            self.clock.as_ref(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_bounded_in_the_actor() {
        let long = format!("https://c.example/{}", "a".repeat(3000));
        let p = client_actor(Some(&long), Uuid::nil());
        assert_eq!(p.credential_id.as_deref().map(str::len), Some(256));
        assert!(
            p.display_name
                .starts_with("oauth client https://c.example/")
        );
        assert_eq!(client_actor(None, Uuid::nil()).display_name, "unknown");
    }
}
