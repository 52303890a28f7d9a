//! Signing in through an upstream identity provider (OIDC or GitHub) to answer an OAuth
//! authorization request: the control-plane half of `assay_auth::upstream`.
//!
//! The order is what makes it safe (see `assay_auth::upstream`'s module docs):
//! 1. The sign-in pages validate the MCP client's request and show the per-client consent
//!    (client, hosts, scopes) **before** the browser leaves. [`UpstreamLogins::begin`]
//!    takes the validated request and the scope the user approved there, keeps both
//!    server-side with the provider's state, nonce and PKCE verifier (single use, ten
//!    minutes, bound to the browser), and answers the provider's authorization URL. A
//!    client can therefore never obtain a code just because the user happens to be signed
//!    in at the provider: the consent was given on Assay's page for that client.
//! 2. [`UpstreamLogins::finish`] takes the provider's callback: it consumes the pending
//!    login (a replayed callback finds nothing), checks the provider named in the path and
//!    the browser, lets `assay_auth` validate the response (state, `iss`, code + PKCE,
//!    id_token with nonce, or GitHub's verified primary email), maps the identity to an
//!    account (`account`: existing by verified email, or just-in-time provisioning),
//!    starts the browser session (method `oidc:<id>` or `github:<id>`), audits the login,
//!    and hands the stored consent to `AuthorizationServer::decide`, which re-checks the
//!    client, redirect, resource and membership and issues the code.
//!
//! Pending logins live in this process (`pending`): the provider's callback must reach
//! the replica that sent the browser there.

mod account;
mod pending;

pub use pending::PENDING_TTL;

use crate::LocalControlPlane;
use crate::audit;
use crate::audit_log::AuditLog;
use crate::oauth::events::{self, client_info};
use crate::oauth::{
    AuthorizationServer, AuthorizeRejection, AuthorizeRequest, BrowserSession, ConsentDecision,
    RequestContext,
};
use account::Account;
use assay_auth::upstream::{
    CallbackParams, ProviderKind, UpstreamError, UpstreamIdentity, UpstreamProvider,
};
use assay_core::actor::{Access, AuthMethod, Principal, PrincipalKind};
use assay_core::audit::Outcome;
use assay_core::identity::User;
use assay_core::ports::{Clock, Store};
use pending::{Pending, PendingLogins};
use std::sync::Arc;
use uuid::Uuid;

pub const LOGIN_SUCCEEDED: &str = "oauth.login.succeeded";
pub const LOGIN_FAILED: &str = "oauth.login.failed";
/// The membership a just-in-time login creates (the same action as an admin's).
pub const MEMBER_ADDED: &str = "member.added";

/// `/oauth/upstream/<id>/start`: where the consent page sends the browser to leave.
pub fn start_path(provider_id: &str) -> String {
    format!("/oauth/upstream/{provider_id}/start")
}

/// `/oauth/upstream/<id>/callback`: the redirect URI to register at the provider (under
/// the public URL).
pub fn callback_path(provider_id: &str) -> String {
    format!("/oauth/upstream/{provider_id}/callback")
}

/// A configured provider as the sign-in page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderView {
    pub id: String,
    /// The label of its button.
    pub display_name: String,
    pub kind: ProviderKind,
}

/// A completed upstream login: the browser's new session (for its cookie) and where to
/// send the browser (the client's redirect URI with `code`, `state`, `iss`).
#[derive(Debug)]
pub struct UpstreamLoginDone {
    pub session: BrowserSession,
    pub location: String,
}

/// Why an upstream login did not go ahead. The messages are written for the person at
/// the browser and never hold a secret; details go to the audit trail and the log.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamLoginError {
    #[error("no sign-in provider is configured under this name")]
    UnknownProvider,
    /// No public URL, so no issuer and no callback URL.
    #[error("sign-in through a provider is not available: the server has no public URL")]
    NotConfigured,
    /// `begin` with anything but an approval.
    #[error("sign-in through a provider continues only after access was approved")]
    NotApproved,
    #[error("too many sign-ins are in progress; try again in a few minutes")]
    Busy,
    /// The provider could not be reached or answered nonsense while starting.
    #[error("the sign-in provider cannot be reached right now; try again later")]
    ProviderUnavailable(#[source] UpstreamError),
    /// No login in progress under the callback's `state`: unknown, already used, or
    /// older than ten minutes.
    #[error("this sign-in has expired or was already used; start again from the application")]
    UnknownLogin,
    /// The login was started by another browser.
    #[error("this sign-in was started in another browser; start again from the application")]
    OtherBrowser,
    /// The callback names another provider than the one the login was started with.
    #[error("this sign-in was started with another provider; start again from the application")]
    WrongProvider,
    /// The provider's answer failed validation, or the user cancelled at the provider.
    #[error("the sign-in provider did not confirm who you are; start again from the application")]
    LoginFailed(#[source] UpstreamError),
    /// No usable email: missing, unverified, or outside the allowed domains.
    #[error("the sign-in provider gave no verified email address that may sign in here")]
    EmailNotAdmitted(#[source] UpstreamError),
    /// Invite-only provider, unknown email.
    #[error("no Assay account uses this email address; ask an administrator to invite you")]
    NoAccount,
    #[error("this Assay account is disabled")]
    AccountDisabled,
    /// The just-in-time settings do not match the server (e.g. a missing organization).
    #[error("new accounts cannot be created right now: {0}")]
    Provisioning(String),
    #[error("the server could not complete the sign-in; try again")]
    Internal(String),
    /// The consent could not be turned into a code (`AuthorizationServer::decide`): an
    /// error page or a redirect to the client, exactly as for a password login.
    #[error("the authorization request was refused")]
    Rejected(AuthorizeRejection),
}

impl From<assay_core::Error> for UpstreamLoginError {
    fn from(e: assay_core::Error) -> Self {
        UpstreamLoginError::Internal(e.to_string())
    }
}

/// The configured providers and the logins in progress. One per server
/// ([`LocalControlPlane::upstream_logins`]); share it behind an `Arc`.
pub struct UpstreamLogins {
    providers: Vec<UpstreamProvider>,
    pending: PendingLogins,
    oauth: Arc<AuthorizationServer>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    audit: Arc<AuditLog>,
}

impl std::fmt::Debug for UpstreamLogins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamLogins")
            .field("providers", &self.providers().len())
            .finish_non_exhaustive()
    }
}

impl LocalControlPlane {
    /// The upstream sign-in service over `providers` (built from the server
    /// configuration by `UpstreamProvider::all`). Checks every just-in-time provider's
    /// organization and environments now, so a configuration that cannot provision
    /// anyone stops the server instead of failing at the first login.
    pub async fn upstream_logins(
        &self,
        providers: Vec<UpstreamProvider>,
    ) -> Result<Arc<UpstreamLogins>, String> {
        for provider in &providers {
            account::jit_target(self.store.as_ref(), &provider.settings().provisioning)
                .await
                .map_err(|problem| format!("upstream provider {}: {problem}", provider.id()))?;
        }
        Ok(Arc::new(UpstreamLogins {
            providers,
            pending: PendingLogins::default(),
            oauth: self.oauth(),
            store: self.store.clone(),
            clock: self.clock.clone(),
            audit: self.audit.clone(),
        }))
    }
}

impl UpstreamLogins {
    /// The providers, in configuration order.
    pub fn providers(&self) -> Vec<ProviderView> {
        self.providers
            .iter()
            .map(|p| ProviderView {
                id: p.id().to_owned(),
                display_name: p.display_name().to_owned(),
                kind: p.settings().kind(),
            })
            .collect()
    }

    pub fn provider(&self, id: &str) -> Option<ProviderView> {
        self.providers().into_iter().find(|p| p.id == id)
    }

    /// `<public URL>/oauth/upstream/<id>/callback`, exactly as sent to the provider.
    pub fn callback_url(&self, provider_id: &str) -> Option<String> {
        let issuer = self.oauth.issuer()?;
        Some(format!("{issuer}{}", callback_path(provider_id)))
    }

    /// The origin (`scheme://host[:port]`) of the provider's authorization endpoint: the
    /// page that sends the browser there must allow it as a `form-action` target
    /// (browsers apply `form-action` to the redirect after a form submission). Reads the
    /// provider's (cached) discovery document; nothing is kept.
    pub async fn authorization_origin(
        &self,
        provider_id: &str,
    ) -> Result<String, UpstreamLoginError> {
        let endpoint = self
            .find(provider_id)?
            .authorization_endpoint()
            .await
            .map_err(UpstreamLoginError::ProviderUnavailable)?;
        Ok(endpoint.origin().ascii_serialization())
    }

    /// Starts a login at `provider_id` for `request` (validated by
    /// `AuthorizationServer::begin_authorization`), after the user approved `decision` on
    /// the consent page. `browser` is a value only the user's browser holds (the pages'
    /// CSRF cookie); the callback must present it again. Answers the provider's
    /// authorization URL to send the browser to.
    pub async fn begin(
        &self,
        provider_id: &str,
        request: &AuthorizeRequest,
        decision: ConsentDecision,
        browser: &str,
    ) -> Result<url::Url, UpstreamLoginError> {
        let provider = self.find(provider_id)?;
        let ConsentDecision::Approve { scope } = decision else {
            return Err(UpstreamLoginError::NotApproved);
        };
        if browser.is_empty() {
            return Err(UpstreamLoginError::OtherBrowser);
        }
        let callback = self
            .callback_url(provider_id)
            .ok_or(UpstreamLoginError::NotConfigured)?;
        let start = provider
            .begin(&callback)
            .await
            .map_err(UpstreamLoginError::ProviderUnavailable)?;
        let now = self.now();
        // Never more than requested, whatever the form said.
        let scope = scope.min(request.scope);
        self.pending
            .insert(
                Pending::new(start.pending, request.clone(), scope, browser, now),
                now,
            )
            .map_err(|_| UpstreamLoginError::Busy)?;
        Ok(start.authorization_url)
    }

    /// Completes a login from the provider's callback to `/oauth/upstream/<provider_id>/
    /// callback`. `browser` is the value the login was started with, as the browser
    /// presents it now. Every outcome is audited (`oauth.login.succeeded` /
    /// `oauth.login.failed`, with the method `<kind>:<provider id>`).
    pub async fn finish(
        &self,
        provider_id: &str,
        callback: &CallbackParams,
        browser: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<UpstreamLoginDone, UpstreamLoginError> {
        let provider = match self.find(provider_id) {
            Ok(p) => p,
            Err(e) => {
                self.failed(None, &format!("upstream:{}", bounded(provider_id)), &e, ctx)
                    .await;
                return Err(e);
            }
        };
        let method = method_of(provider);
        let result = self
            .complete(provider, &method, callback, browser, ctx)
            .await;
        match result {
            Ok(done) => Ok(done),
            // The login itself succeeded (and is on the record); `decide` audited why
            // the consent did not become a code.
            Err((_, e @ UpstreamLoginError::Rejected(_))) => Err(e),
            Err((user, e)) => {
                self.failed(user.as_ref(), &method, &e, ctx).await;
                Err(e)
            }
        }
    }

    /// `finish` without the failure audit; a failure carries the account when known.
    async fn complete(
        &self,
        provider: &UpstreamProvider,
        method: &str,
        callback: &CallbackParams,
        browser: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<UpstreamLoginDone, (Option<User>, UpstreamLoginError)> {
        let fail = |e: UpstreamLoginError| (None, e);
        // Consumed before anything else: whatever happens next, this state is spent.
        let pending = callback
            .state
            .as_deref()
            .and_then(|state| self.pending.take(state, self.now()))
            .ok_or(fail(UpstreamLoginError::UnknownLogin))?;
        if pending.login.provider_id != provider.id() {
            return Err(fail(UpstreamLoginError::WrongProvider));
        }
        if !pending.started_by(browser) {
            return Err(fail(UpstreamLoginError::OtherBrowser));
        }
        let identity = provider
            .finish(&pending.login, callback)
            .await
            .map_err(|e| fail(UpstreamLoginError::LoginFailed(e)))?;
        let email = identity
            .admitted_email(&provider.settings().email_policy)
            .map_err(|e| fail(UpstreamLoginError::EmailNotAdmitted(e)))?;
        let account = match self.account(provider, &identity, &email, method, ctx).await {
            Ok(account) => account,
            // The audit trail names the disabled account that tried.
            Err(e @ UpstreamLoginError::AccountDisabled) => {
                let user = self.store.find_user_by_email(&email).await.ok().flatten();
                return Err((user, e));
            }
            Err(e) => return Err(fail(e)),
        };
        let user = account.user().clone();
        let session = self
            .oauth
            .start_session(&user, method)
            .await
            .map_err(|e| (Some(user.clone()), e.into()))?;
        if let Err(e) = self.login_succeeded(&user, method, ctx).await {
            // Not on the record: no login (fail closed).
            self.oauth.end_session(session.secret()).await;
            return Err((Some(user), e));
        }
        let decision = ConsentDecision::Approve {
            scope: pending.scope,
        };
        match self
            .oauth
            .decide(&session, &pending.request, decision, ctx)
            .await
        {
            Ok(location) => Ok(UpstreamLoginDone { session, location }),
            Err(rejection) => {
                // No code, so no signed-in browser either: the session is not handed out.
                // `decide` audited the refusal (oauth.consent.denied) where it applies.
                self.oauth.end_session(session.secret()).await;
                Err((Some(user), UpstreamLoginError::Rejected(rejection)))
            }
        }
    }

    /// The account for the identity; a new account and its membership are audited.
    async fn account(
        &self,
        provider: &UpstreamProvider,
        identity: &UpstreamIdentity,
        email: &str,
        method: &str,
        ctx: &RequestContext,
    ) -> Result<Account, UpstreamLoginError> {
        let account = account::find_or_provision(
            self.store.as_ref(),
            self.clock.as_ref(),
            &provider.settings().provisioning,
            identity,
            email,
        )
        .await?;
        if let Account::Provisioned { user, target } = &account {
            let mut resources = vec![
                format!("user:{}", user.id),
                format!("role:{}", target.role.as_str()),
            ];
            resources.extend(
                target
                    .grants
                    .iter()
                    .map(|(env, level)| format!("grant:{env}={level}")),
            );
            let event = audit::event(
                &Principal::system(target.org.id),
                &client_info(ctx),
                target.org.id,
                None,
                MEMBER_ADDED,
                resources,
                Outcome::Success,
                Some(format!("just-in-time provisioning through {method}")),
                self.clock.as_ref(),
            );
            self.audit.append(event).await?;
        }
        Ok(account)
    }

    async fn login_succeeded(
        &self,
        user: &User,
        method: &str,
        ctx: &RequestContext,
    ) -> Result<(), UpstreamLoginError> {
        let org = self.oauth.chain_of(user.id).await;
        let event = audit::event(
            &user_actor(user, org),
            &client_info(ctx),
            org,
            None,
            LOGIN_SUCCEEDED,
            vec![format!("user:{}", user.id)],
            Outcome::Success,
            Some(format!("method {method}")),
            self.clock.as_ref(),
        );
        self.audit.append(event).await?;
        Ok(())
    }

    /// Records a refused login (best effort: it is refused either way). The reason names
    /// the method and what went wrong; provider messages are bounded and hold no secret.
    async fn failed(
        &self,
        user: Option<&User>,
        method: &str,
        e: &UpstreamLoginError,
        ctx: &RequestContext,
    ) {
        let (org, actor) = match user {
            Some(user) => {
                let org = self.oauth.chain_of(user.id).await;
                (org, user_actor(user, org))
            }
            None => (Uuid::nil(), unknown_actor()),
        };
        let event = audit::event(
            &actor,
            &client_info(ctx),
            org,
            None,
            LOGIN_FAILED,
            user.map(|u| format!("user:{}", u.id)).into_iter().collect(),
            Outcome::Denied,
            Some(format!("method {method}: {}", bounded(&detail(e)))),
            self.clock.as_ref(),
        );
        let _ = self.audit.append(event).await;
    }

    fn find(&self, id: &str) -> Result<&UpstreamProvider, UpstreamLoginError> {
        self.providers
            .iter()
            .find(|p| p.id() == id)
            .ok_or(UpstreamLoginError::UnknownProvider)
    }

    fn now(&self) -> assay_core::Timestamp {
        crate::stamp::now(self.clock.as_ref())
    }
}

/// The session's and the audit trail's name for how the user signed in.
fn method_of(provider: &UpstreamProvider) -> String {
    format!("{}:{}", provider.settings().kind().as_str(), provider.id())
}

/// The error and its cause, for the audit trail.
fn detail(e: &UpstreamLoginError) -> String {
    match e {
        UpstreamLoginError::ProviderUnavailable(cause)
        | UpstreamLoginError::LoginFailed(cause)
        | UpstreamLoginError::EmailNotAdmitted(cause) => format!("{e}: {cause}"),
        UpstreamLoginError::Internal(cause) => format!("{e}: {cause}"),
        other => other.to_string(),
    }
}

/// Provider IDs in paths and provider messages are bounded before they are recorded.
fn bounded(text: &str) -> &str {
    match text.char_indices().nth(300) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

fn user_actor(user: &User, org: Uuid) -> Principal {
    events::user_actor(user.id, &user.display_name, org, AuthMethod::Session, None)
}

/// Nobody known yet (the callback failed before an account was found).
fn unknown_actor() -> Principal {
    Principal {
        kind: PrincipalKind::User,
        id: Uuid::nil(),
        display_name: "unknown".into(),
        org_id: Uuid::nil(),
        access: Access::PerEnvironment {
            grants: Default::default(),
        },
        scope_cap: None,
        auth_method: AuthMethod::Session,
        credential_id: None,
    }
}
