//! The OAuth 2.1 authorization server: every OAuth operation, HTTP-free. The server crate
//! maps requests to these calls and their results to responses; no business rule lives
//! there.
//!
//! Layout, one job per module: `config` (tunables), `error` (RFC 6749 errors), `params`
//! (raw request values), `clients` (first-party, registered and metadata-document
//! clients), `resources` (RFC 8707 resource → organization/environment), `authorize`
//! (validating an authorization request), `login` (password login, rate-limited),
//! `sessions` (browser login sessions, stored hashed), `consent` (remembered consent,
//! the user's decision → code), `token` (the token endpoint and the code grant),
//! `issue` (access and refresh tokens), `refresh` (rotation and reuse detection),
//! `device` (RFC 8628), `registration` (RFC 7591), `revocation` (RFC 7009), `events`
//! (the audit events), `rate_limit` (in-memory windows).
//!
//! Every event listed in the design is audited through the control plane's audit log;
//! successes are committed before the caller sees the result (fail closed), refusals are
//! recorded best-effort like `auth.failed`. No event carries a secret.

mod authorize;
mod clients;
mod config;
mod consent;
mod device;
mod error;
pub(crate) mod events;
mod issue;
mod login;
mod params;
mod rate_limit;
mod refresh;
mod registration;
mod resources;
mod revocation;
mod sessions;
mod token;

pub use config::{OAuthConfig, RateLimit};
pub use error::OAuthError;
pub use params::{AuthorizeParams, TokenParams};
pub use sessions::BrowserSession;

use crate::audit_log::AuditLog;
use crate::grant_cache::GrantCache;
use crate::signing_keys::SigningKeys;
use assay_auth::cimd::{CimdConfig, CimdFetcher};
use assay_auth::metadata::PublicBase;
use assay_auth::scope::McpScope;
use assay_core::Timestamp;
use assay_core::oauth::OAuthClientKind;
use assay_core::ports::{Clock, Store};
use rate_limit::RateLimiter;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The first-party public client of the `assay` CLI (loopback redirects, device grant).
pub const CLI_CLIENT_ID: &str = "assay-cli";
/// Where users type a device flow's user code (under the public URL).
pub const DEVICE_VERIFICATION_PATH: &str = "/oauth/device/verify";

/// What is known about the HTTP request behind a call, for rate limits and the audit
/// trail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// A client as the consent page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    pub kind: OAuthClientKind,
    /// The host of a metadata-document client's `client_id` URL.
    pub client_id_host: Option<String>,
    /// The host (or, for a private-use scheme, the scheme) the code will be sent to.
    pub redirect_host: String,
    /// Every redirect URI of the client is loopback: anyone can run a program that
    /// claims to be it on their machine, so the page warns, and consent is never
    /// remembered for it.
    pub localhost_only: bool,
}

/// A validated authorization request, ready for login and consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    pub client: ClientView,
    /// As sent by the client (a loopback redirect keeps its port).
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: String,
    /// Requested; `mcp:read` when the request named no MCP scope.
    #[serde(with = "scope_serde")]
    pub scope: McpScope,
    pub offline_access: bool,
    /// The canonical resource URL; the base resource when the request named none.
    pub resource: String,
}

/// Why an authorization request is not going ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeRejection {
    /// The client is unknown or the redirect URI is invalid or unregistered: show an
    /// error page (400) and NEVER redirect.
    Page {
        error: &'static str,
        description: String,
    },
    /// Anything else once client and redirect are trusted: 303 to this URL (error,
    /// error_description, state, iss).
    Redirect { location: String },
}

/// What the user decided on the consent (or device verification) page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentDecision {
    /// Grant at most this scope (never more than requested; less is allowed).
    Approve {
        scope: McpScope,
    },
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginError {
    /// Unknown email, wrong password, disabled account: always the same answer.
    InvalidCredentials,
    RateLimited {
        retry_after_secs: u64,
    },
}

impl LoginError {
    /// The one message shown for any failed login.
    pub const GENERIC_MESSAGE: &'static str = "Incorrect email or password.";
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    pub expires_in: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

/// RFC 8628 §3.2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAuthorizationResponse {
    pub device_code: String,
    /// `XXXX-XXXX`.
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: u64,
    pub interval: u64,
}

/// What a typed user code asks for, for the device verification page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRequestView {
    /// `XXXX-XXXX`.
    pub user_code: String,
    pub client_id: String,
    pub client_name: String,
    pub scope: McpScope,
    pub resource: String,
    pub expires_at: Timestamp,
}

/// The authorization server. One per control plane (`LocalControlPlane::oauth`).
pub struct AuthorizationServer {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    audit: Arc<AuditLog>,
    keys: Arc<SigningKeys>,
    /// `None`: no public URL, so no issuer; every operation answers `server_error`.
    public: Option<PublicBase>,
    config: OAuthConfig,
    cimd: CimdFetcher,
    /// The access-token validator's grant cache, told at once about revocations here.
    grants: Arc<GrantCache>,
    login_ip: RateLimiter,
    login_email: RateLimiter,
    registrations: RateLimiter,
    token_requests: RateLimiter,
}

impl AuthorizationServer {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        audit: Arc<AuditLog>,
        keys: Arc<SigningKeys>,
        public: Option<PublicBase>,
        config: OAuthConfig,
        grants: Arc<GrantCache>,
    ) -> Self {
        let cimd = CimdFetcher::new(CimdConfig {
            policy: config.cimd_policy,
            ..CimdConfig::default()
        });
        Self {
            login_ip: RateLimiter::new(config.login_failures_per_ip),
            login_email: RateLimiter::new(config.login_failures_per_email),
            registrations: RateLimiter::new(config.registrations_per_ip),
            token_requests: RateLimiter::new(config.token_requests_per_ip),
            store,
            clock,
            audit,
            keys,
            public,
            config,
            cimd,
            grants,
        }
    }

    pub fn config(&self) -> &OAuthConfig {
        &self.config
    }

    /// The issuer (the public URL without a trailing slash), when configured.
    pub fn issuer(&self) -> Option<String> {
        self.public.as_ref().map(PublicBase::issuer)
    }

    fn now(&self) -> Timestamp {
        crate::stamp::now(self.clock.as_ref())
    }

    fn public(&self) -> Result<&PublicBase, OAuthError> {
        self.public.as_ref().ok_or_else(OAuthError::not_configured)
    }
}

/// `now + d`, saturating far in the future.
fn after(now: Timestamp, d: std::time::Duration) -> Timestamp {
    time::Duration::try_from(d)
        .ok()
        .and_then(|d| now.checked_add(d))
        .unwrap_or(now + time::Duration::days(365 * 100))
}

/// The rate-limit key of a request: its IP, or one shared key when unknown.
fn ip_key(ctx: &RequestContext) -> String {
    ctx.ip
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// `McpScope` as its scope token (`mcp:run`) in serialized authorization requests.
mod scope_serde {
    use assay_auth::scope::McpScope;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(scope: &McpScope, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(scope.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<McpScope, D::Error> {
        let text = String::deserialize(d)?;
        McpScope::from_token(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown MCP scope {text:?}")))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn authorize_requests_round_trip_through_json() {
        let r = AuthorizeRequest {
            client: ClientView {
                client_id: CLI_CLIENT_ID.into(),
                name: "Assay CLI".into(),
                kind: OAuthClientKind::FirstParty,
                client_id_host: None,
                redirect_host: "127.0.0.1".into(),
                localhost_only: true,
            },
            redirect_uri: "http://127.0.0.1:5000/callback".into(),
            state: Some("s".into()),
            code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            scope: McpScope::Run,
            offline_access: false,
            resource: "https://assay.example".into(),
        };
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["scope"], "mcp:run");
        assert_eq!(json["client"]["kind"], "first-party");
        let back: AuthorizeRequest = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
        let mut bad = serde_json::to_value(&r).unwrap();
        bad["scope"] = "mcp:admin".into();
        assert!(serde_json::from_value::<AuthorizeRequest>(bad).is_err());
    }

    #[test]
    fn after_saturates() {
        let now = time::OffsetDateTime::UNIX_EPOCH;
        assert_eq!(
            after(now, std::time::Duration::from_secs(60)),
            now + time::Duration::seconds(60)
        );
        assert!(after(now, std::time::Duration::MAX) > now);
    }
}
