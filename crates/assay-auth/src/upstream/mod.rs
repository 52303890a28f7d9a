//! Upstream single sign-on: signing in to Assay through an OpenID Connect provider
//! (Dex, Google, Keycloak, …) or GitHub. HTTP-server free: this module builds the
//! upstream authorization URL, exchanges the code, validates what comes back and says
//! who signed in. Storing, auditing and provisioning belong to the control plane.
//!
//! # How the wiring is meant to work
//!
//! 1. **Consent first.** `/oauth/authorize` validates the MCP client's request
//!    (`AuthorizationServer::begin_authorization`) and shows the login page with one
//!    button per provider. The per-client consent (client name, client_id host,
//!    redirect host, scopes) is shown and approved *before* the browser is sent
//!    upstream — never skipped because the upstream login succeeds — so a malicious
//!    client cannot ride on the user's standing session at the provider to get an
//!    Assay code without the user seeing which client asks (the confused-deputy
//!    attack on MCP proxies). With a remembered consent the page may go straight on.
//! 2. **Begin.** The server calls [`UpstreamProvider::begin`] with its callback URL
//!    (`<public>/oauth/upstream/<id>/callback`) and stores the returned
//!    [`PendingLogin`] server-side, bound to the pending authorization request and
//!    the browser (e.g. keyed by the hash of its `state`, with a short lifetime and
//!    single use). The `state` sent upstream is random and names that record — it is
//!    not the MCP client's `state`, which never leaves Assay.
//! 3. **Callback.** The server looks up and deletes the pending record by `state`,
//!    checks it belongs to this browser, and calls [`UpstreamProvider::finish`], which
//!    checks `state` again (constant time), the `iss` of the response when present
//!    (RFC 9207), exchanges the code with the PKCE verifier and validates the id_token
//!    (nonce included) or reads the GitHub user.
//! 4. **Account.** The control plane links by `(provider_id, subject)` first; else by
//!    [`UpstreamIdentity::admitted_email`] (verified, allowed domain). For
//!    [`Provisioning::InviteOnly`] an unknown person is refused; for
//!    [`Provisioning::Jit`] an account and a membership with the default role (and
//!    environment levels) are created. Either way the browser session is created,
//!    audited (`oauth.login.succeeded`, method `sso:<id>`), and the consented pending
//!    authorization continues to its code.

mod config;
mod discovery;
#[cfg(any(test, feature = "test-idp"))]
pub mod fake_idp;
mod github;
mod http;
mod id_token;
mod identity;
mod jwks;
mod oidc;
#[cfg(test)]
mod tests;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRngCore as _;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use url::Url;

pub use config::{
    ClientSecret, ConfigError, DEFAULT_GITHUB_API_URL, DEFAULT_GITHUB_SCOPES,
    DEFAULT_GITHUB_WEB_URL, DEFAULT_OIDC_SCOPES, EmailPolicy, ProviderConfig, ProviderEndpoints,
    ProviderKind, ProviderSettings, Provisioning, UpstreamConfig,
};
pub use discovery::{ProviderMetadata, TokenEndpointAuth, discovery_url, parse_metadata};
pub use http::HttpSettings;
pub use id_token::{IdTokenClaims, IdTokenError, MAX_ID_TOKEN_LEN};
pub use identity::UpstreamIdentity;
pub use jwks::{KeyType, MIN_RSA_BITS, VerificationKey, parse_jwks};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("the {what} request timed out")]
    Timeout { what: &'static str },
    #[error("the {what} request failed: {message}")]
    Transport { what: &'static str, message: String },
    #[error("the {what} endpoint answered with status {status}")]
    Status { what: &'static str, status: u16 },
    #[error("the {what} response is larger than {limit} bytes")]
    TooLarge { what: &'static str, limit: usize },
    #[error("the {what} response is invalid: {detail}")]
    InvalidResponse { what: &'static str, detail: String },
    #[error("the provider's discovery document is invalid: {0}")]
    InvalidDiscovery(String),
    #[error("the discovery document names issuer {found:?}, not the configured {expected:?}")]
    IssuerMismatch { expected: String, found: String },
    #[error("the authorization response names issuer {found:?}, not this provider's")]
    ResponseIssuerMismatch { found: String },
    #[error("the provider refused the token request: {error}")]
    TokenRefused {
        error: String,
        description: Option<String>,
    },
    #[error("the provider's token response has no id_token")]
    MissingIdToken,
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
    #[error("the callback's state does not match the login in progress")]
    StateMismatch,
    #[error("the pending login belongs to provider {0:?}, not this one")]
    ProviderMismatch(String),
    #[error("the callback has no code")]
    MissingCode,
    #[error("the provider ended the login: {error}")]
    Denied {
        error: String,
        description: Option<String>,
    },
    #[error("GitHub returned no primary email address")]
    NoPrimaryEmail,
    #[error("the provider gave no usable email address")]
    EmailMissing,
    #[error("the provider has not verified this email address")]
    EmailUnverified,
    #[error("email domain {domain:?} is not allowed for this provider")]
    EmailDomainNotAllowed { domain: String },
    #[error("the operating system's random number generator failed: {0}")]
    Rng(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Tunables shared by every provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamOptions {
    pub http: HttpSettings,
    /// How long discovery documents are reused.
    pub discovery_ttl: Duration,
    /// How long a JWKS is reused when every token names a known key.
    pub jwks_ttl: Duration,
    /// The least time between two JWKS fetches caused by unknown key IDs.
    pub jwks_min_refetch_interval: Duration,
    /// Allowance for clock skew between Assay and the provider.
    pub id_token_leeway: Duration,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        Self {
            http: HttpSettings::default(),
            discovery_ttl: Duration::from_secs(60 * 60),
            jwks_ttl: Duration::from_secs(60 * 60),
            jwks_min_refetch_interval: Duration::from_secs(60),
            id_token_leeway: Duration::from_secs(60),
        }
    }
}

/// What the server keeps, server-side, between sending the browser upstream and the
/// callback. `Debug` hides the secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    pub provider_id: String,
    pub state: String,
    /// OIDC only.
    pub nonce: Option<String>,
    pub code_verifier: String,
    pub redirect_uri: String,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("provider_id", &self.provider_id)
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// Where to send the browser, and what to keep until it comes back.
#[derive(Debug, Clone)]
pub struct LoginStart {
    pub authorization_url: Url,
    pub pending: PendingLogin,
}

/// The query of the provider's redirect back to Assay, raw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CallbackParams {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_description: Option<String>,
    /// RFC 9207.
    #[serde(default)]
    pub iss: Option<String>,
}

/// One configured provider, ready to run logins. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct UpstreamProvider {
    settings: ProviderSettings,
    http: http::UpstreamHttp,
    flow: Flow,
}

#[derive(Debug)]
enum Flow {
    Oidc(oidc::OidcFlow),
    GitHub(github::GitHubFlow),
}

impl UpstreamProvider {
    pub fn new(
        settings: ProviderSettings,
        options: &UpstreamOptions,
    ) -> Result<Self, UpstreamError> {
        let http = http::UpstreamHttp::new(&options.http)?;
        let flow = match &settings.endpoints {
            ProviderEndpoints::Oidc { issuer } => Flow::Oidc(oidc::OidcFlow::new(issuer, options)),
            ProviderEndpoints::GitHub { web_url, api_url } => {
                Flow::GitHub(github::GitHubFlow::new(web_url, api_url)?)
            }
        };
        Ok(Self {
            settings,
            http,
            flow,
        })
    }

    /// Builds every configured provider.
    pub fn all(
        settings: Vec<ProviderSettings>,
        options: &UpstreamOptions,
    ) -> Result<Vec<Self>, UpstreamError> {
        settings
            .into_iter()
            .map(|s| Self::new(s, options))
            .collect()
    }

    pub fn id(&self) -> &str {
        &self.settings.id
    }

    pub fn display_name(&self) -> &str {
        &self.settings.display_name
    }

    pub fn settings(&self) -> &ProviderSettings {
        &self.settings
    }

    /// The provider's authorization endpoint (OIDC: from cached discovery), without
    /// starting a login: what a page's `form-action` must allow.
    pub async fn authorization_endpoint(&self) -> Result<Url, UpstreamError> {
        match &self.flow {
            Flow::Oidc(flow) => flow.authorization_endpoint(&self.http).await,
            Flow::GitHub(flow) => Ok(flow.authorization_endpoint().clone()),
        }
    }

    /// The upstream authorization URL for a new login, with fresh `state`, PKCE
    /// verifier and (OIDC) `nonce`. `redirect_uri` is Assay's callback for this
    /// provider, exactly as registered at the provider.
    pub async fn begin(&self, redirect_uri: &str) -> Result<LoginStart, UpstreamError> {
        let pending = PendingLogin {
            provider_id: self.settings.id.clone(),
            state: random_token()?,
            nonce: match self.flow {
                Flow::Oidc(_) => Some(random_token()?),
                Flow::GitHub(_) => None,
            },
            code_verifier: random_token()?,
            redirect_uri: redirect_uri.to_owned(),
        };
        let authorization_url = match &self.flow {
            Flow::Oidc(flow) => {
                flow.authorization_url(&self.http, &self.settings, &pending)
                    .await?
            }
            Flow::GitHub(flow) => flow.authorization_url(&self.settings, &pending),
        };
        Ok(LoginStart {
            authorization_url,
            pending,
        })
    }

    /// Completes a login from the provider's redirect.
    pub async fn finish(
        &self,
        pending: &PendingLogin,
        callback: &CallbackParams,
    ) -> Result<UpstreamIdentity, UpstreamError> {
        if pending.provider_id != self.settings.id {
            return Err(UpstreamError::ProviderMismatch(pending.provider_id.clone()));
        }
        let state_ok = callback
            .state
            .as_deref()
            .is_some_and(|s| bool::from(s.as_bytes().ct_eq(pending.state.as_bytes())));
        if !state_ok {
            return Err(UpstreamError::StateMismatch);
        }
        if let Some(error) = &callback.error {
            return Err(UpstreamError::Denied {
                error: error.clone(),
                description: callback.error_description.clone(),
            });
        }
        let code = callback
            .code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or(UpstreamError::MissingCode)?;
        match &self.flow {
            Flow::Oidc(flow) => {
                flow.finish(
                    &self.http,
                    &self.settings,
                    pending,
                    code,
                    callback.iss.as_deref(),
                )
                .await
            }
            Flow::GitHub(flow) => flow.finish(&self.http, &self.settings, pending, code).await,
        }
    }
}

#[cfg(test)]
impl UpstreamProvider {
    /// An OIDC provider's id_token validation on its own, for the rule-by-rule tests.
    pub(crate) async fn check_id_token(
        &self,
        token: &str,
        nonce: &str,
        now: time::OffsetDateTime,
    ) -> Result<IdTokenClaims, UpstreamError> {
        match &self.flow {
            Flow::Oidc(flow) => {
                flow.check_id_token(&self.http, &self.settings.client_id, token, nonce, now)
                    .await
            }
            Flow::GitHub(_) => Err(UpstreamError::Internal("not an OIDC provider".into())),
        }
    }
}

/// 32 bytes from the OS CSPRNG, base64url: usable as `state`, `nonce` and PKCE
/// verifier (43 characters of the verifier alphabet).
fn random_token() -> Result<String, UpstreamError> {
    let mut bytes = [0u8; 32];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| UpstreamError::Rng(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Longest provider-supplied error description kept (they end up in logs).
const MAX_ERROR_DESCRIPTION_CHARS: usize = 200;

/// An OAuth error body (`{error, error_description}`), if the body is one.
/// The error for a token endpoint's non-200 answer: its OAuth error when the body has one.
fn token_refusal(response: &http::BoundedResponse) -> UpstreamError {
    match oauth_error(&response.body) {
        Some((error, description)) => UpstreamError::TokenRefused { error, description },
        None => UpstreamError::Status {
            what: "token",
            status: response.status,
        },
    }
}

fn oauth_error(body: &[u8]) -> Option<(String, Option<String>)> {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: String,
        #[serde(default)]
        error_description: Option<String>,
    }
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    Some((
        truncate(parsed.error),
        parsed.error_description.map(truncate),
    ))
}

fn truncate(text: String) -> String {
    match text.char_indices().nth(MAX_ERROR_DESCRIPTION_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}
