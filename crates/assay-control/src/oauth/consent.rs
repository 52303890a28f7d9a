//! Consent: whether a live grant already covers a request, and the user's decision →
//! an authorization code (or an `access_denied` redirect).
//!
//! `decide` trusts nothing of the request it is handed beyond what it re-checks: the
//! client is resolved again and the redirect URI matched again, the resource resolved
//! again, and the user must still be active and able to reach the resource.

use super::authorize::{code_location, error_location, trusted_redirect};
use super::events::{self, OAuthEvent};
use super::sessions::BrowserSession;
use super::{
    AuthorizationServer, AuthorizeRejection, AuthorizeRequest, ConsentDecision, OAuthError,
    RequestContext, after,
};
use assay_auth::scope::{McpScope, granted_mcp_scope};
use assay_auth::secrets::{self, SecretKind};
use assay_core::actor::{AuthMethod, Principal};
use assay_core::identity::User;
use assay_core::oauth::{AuthorizationCode, OAuthGrant};
use uuid::Uuid;

const NOT_A_MEMBER: &str = "your account cannot reach this resource: it belongs to an organization or environment you have no access to";

impl AuthorizationServer {
    /// True when a live grant of this user for (client, resource) already covers the
    /// requested scope, so the page may skip consent. Never for a client whose redirects
    /// are all loopback: any local program can claim such a client's ID, and silent
    /// approval would hand it a code.
    pub async fn consent_remembered(&self, s: &BrowserSession, r: &AuthorizeRequest) -> bool {
        if r.client.localhost_only {
            return false;
        }
        let grants = match self.store.list_oauth_grants(s.user_id).await {
            Ok(grants) => grants,
            Err(e) => {
                tracing::warn!(error = %e, "could not list grants; asking for consent");
                return false;
            }
        };
        grants.iter().any(|g| {
            g.client_id == r.client.client_id
                && g.resource == r.resource
                && granted_mcp_scope(&g.scope)
                    .ok()
                    .flatten()
                    .is_some_and(|granted| granted.covers(r.scope))
        })
    }

    pub async fn decide(
        &self,
        s: &BrowserSession,
        r: &AuthorizeRequest,
        d: ConsentDecision,
        ctx: &RequestContext,
    ) -> Result<String, AuthorizeRejection> {
        let page = |e: OAuthError| AuthorizeRejection::Page {
            error: e.error,
            description: e.description,
        };
        let issuer = self.public().map_err(page)?.issuer();
        // Re-checked, never taken from the (serialized, client-visible) request.
        let client = self
            .resolve_client(&r.client.client_id, ctx)
            .await
            .map_err(page)?;
        let redirect_uri = trusted_redirect(&client, Some(&r.redirect_uri)).map_err(page)?;
        let fail = |e: OAuthError| AuthorizeRejection::Redirect {
            location: error_location(&redirect_uri, &e, r.state.as_deref(), &issuer),
        };
        let user = self.active_user(s.user_id).await.map_err(fail)?;
        let resource = self
            .resolve_resource(Some(&r.resource))
            .await
            .map_err(fail)?;
        let org = self
            .grant_org(&user, &resource.target)
            .await
            .map_err(fail)?;
        let (chain, actor) = self.consenting_user(&user, org, &client.id).await;
        let (scope, org) = match (d, org) {
            (ConsentDecision::Approve { scope }, Some(org)) => (scope.min(r.scope), org),
            (decision, org) => {
                let reason = match (decision, org) {
                    (ConsentDecision::Deny, _) => "the user denied the request",
                    _ => NOT_A_MEMBER,
                };
                let event = OAuthEvent::new(events::CONSENT_DENIED, chain, actor)
                    .resource(format!("client:{}", client.id))
                    .resource(format!("resource:{}", resource.url))
                    .denied(reason);
                self.record(ctx, event).await.map_err(fail)?;
                let e = match decision {
                    ConsentDecision::Deny => {
                        OAuthError::access_denied("the user denied the request")
                    }
                    ConsentDecision::Approve { .. } => OAuthError::access_denied(NOT_A_MEMBER),
                };
                return Err(fail(e));
            }
        };

        let grant = self
            .store_grant(user.id, org, &client.id, scope, &resource.url)
            .await
            .map_err(fail)?;
        let code = secrets::generate(SecretKind::AuthorizationCode)
            .map_err(|e| fail(internal(&e.to_string())))?;
        let now = self.now();
        self.store
            .insert_authorization_code(&AuthorizationCode {
                code_hash: code.hash().to_hex(),
                grant_id: grant.id,
                client_id: client.id.clone(),
                redirect_uri: redirect_uri.clone(),
                code_challenge: r.code_challenge.clone(),
                resource: resource.url.clone(),
                scope: scope.to_scope_string(),
                user_id: user.id,
                org_id: org,
                created_at: now,
                expires_at: after(now, self.config.authorization_code_ttl),
                consumed_at: None,
            })
            .await
            .map_err(|e| fail(e.into()))?;
        let event = OAuthEvent::new(events::CONSENT_GRANTED, org, actor)
            .resource(format!("grant:{}", grant.id))
            .resource(format!("client:{}", client.id))
            .resource(format!("resource:{}", resource.url))
            .reason(format!("scope {}", scope.to_scope_string()));
        self.record(ctx, event).await.map_err(fail)?;
        Ok(code_location(
            &redirect_uri,
            code.expose(),
            r.state.as_deref(),
            &issuer,
        ))
    }

    /// Records consent: one live grant per (user, client, resource), its scope replaced.
    /// The client counts as used (an unused registration would otherwise expire).
    pub(crate) async fn store_grant(
        &self,
        user_id: Uuid,
        org_id: Uuid,
        client_id: &str,
        scope: McpScope,
        resource: &str,
    ) -> Result<OAuthGrant, OAuthError> {
        let now = self.now();
        self.store.touch_oauth_client(client_id, now).await?;
        let grant = self
            .store
            .upsert_oauth_grant(&OAuthGrant {
                id: Uuid::now_v7(),
                org_id,
                user_id,
                client_id: client_id.to_owned(),
                scope: scope.to_scope_string(),
                resource: resource.to_owned(),
                created_at: now,
                revoked_at: None,
                revoked_reason: None,
            })
            .await?;
        // The scope may have changed; let the validator read it again.
        self.grants.forget(grant.id);
        Ok(grant)
    }

    /// The user deciding a consent in the browser for `client_id`, as an event actor,
    /// with the chain the decision is recorded in: the organization the grant would
    /// belong to, else (the resource is out of the user's reach) the user's first one.
    pub(crate) async fn consenting_user(
        &self,
        user: &User,
        org: Option<Uuid>,
        client_id: &str,
    ) -> (Uuid, Principal) {
        let chain = match org {
            Some(org) => org,
            None => self.chain_of(user.id).await,
        };
        let actor = events::user_actor(
            user.id,
            &user.display_name,
            chain,
            AuthMethod::Session,
            Some(client_id),
        );
        (chain, actor)
    }

    /// The user, when they exist and are not disabled.
    pub(crate) async fn active_user(&self, user_id: Uuid) -> Result<User, OAuthError> {
        match self.store.find_user(user_id).await? {
            Some(user) if !user.disabled => Ok(user),
            _ => Err(OAuthError::access_denied(
                "the account is disabled or no longer exists",
            )),
        }
    }
}

fn internal(detail: &str) -> OAuthError {
    tracing::error!(%detail, "OAuth secret generation failed");
    OAuthError::server_error()
}
