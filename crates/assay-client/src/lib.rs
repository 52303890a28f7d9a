//! REST client implementing Assay's [`ControlPlane`] remotely.
//!
//! [`RemoteControlPlane`] speaks the REST API v1 (`/v1/organizations/{org}/environments/{env}/…`
//! and, for members, API tokens and audit, `/v1/organizations/{org}/…`) and maps `application/problem+json` answers back to [`assay_core::Error`] so that callers
//! (the CLI, `assay mcp serve`) handle remote and local failures the same way.
//!
//! Identity is the credential ([`Credential`]): an API token, or OAuth tokens from a login
//! ([`login`]) kept fresh by an [`OAuthSession`]. The `actor` argument of every trait
//! method is ignored, the server builds its own `Actor` from the credential and the
//! request. Use [`RemoteControlPlane::actor`] for a value to pass. Every HTTP client comes
//! from [`http_client`] (TLS roots, `--insecure`, proxies from the environment).
//!
//! [`ControlPlane`]: assay_core::ports::ControlPlane

mod control_plane;
pub mod login;
mod ndjson;
mod net;
mod org;
mod problem;
mod routes;
mod session;
mod transport;

use assay_core::actor::{Access, AuthMethod};
use assay_core::{Actor, ClientInfo, EnvRef, Error, Principal, PrincipalKind, Result};
use std::time::Duration;
use url::Url;

pub use net::{TlsOptions, http_client, oauth_http_client};
pub use org::AuditExportFormat;
pub use session::{Credential, DEFAULT_REFRESH_MARGIN, OAuthSession, TokenSet, TokenStore};
pub use transport::{CANNOT_REACH, is_connection_error};

/// Where and as whom the client talks to the server.
#[derive(Clone)]
pub struct ClientConfig {
    /// Server base URL, e.g. `http://127.0.0.1:7357` (a path prefix is kept).
    pub base_url: Url,
    /// What every request authenticates with.
    pub credential: Credential,
    /// Extra trusted CAs, or no certificate checks at all.
    pub tls: TlsOptions,
    /// Default organization (ID or slug) for [`RemoteControlPlane::env_ref`].
    pub org: String,
    /// Default environment (ID or slug) for [`RemoteControlPlane::env_ref`].
    pub env: String,
    pub user_agent: String,
    /// Limit for ordinary requests. Log streams and downloads have none (they last as long
    /// as the execution or the file), only the connect timeout.
    pub timeout: Duration,
}

/// Never shows a secret.
impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url.as_str())
            .field("credential", &self.credential)
            .field("tls", &self.tls)
            .field("org", &self.org)
            .field("env", &self.env)
            .field("user_agent", &self.user_agent)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// [`assay_core::ports::ControlPlane`] over the REST API.
///
/// Cheap to clone; clones share one connection pool and credential. Honours
/// `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` (see [`http_client`]).
#[derive(Debug, Clone)]
pub struct RemoteControlPlane {
    http: reqwest::Client,
    config: ClientConfig,
}

impl RemoteControlPlane {
    /// Errors: `Invalid` for a base URL that is not `http(s)://host[/prefix]` or an
    /// unusable CA file, `Internal` when the HTTP client cannot be built.
    pub fn new(config: ClientConfig) -> Result<Self> {
        let url = &config.base_url;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(Error::invalid(
                "url",
                format!("{url} is not an http:// or https:// URL"),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::invalid("url", format!("{url} has no host")));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // Credentials in the URL would end up in error messages; the token is the way.
            return Err(Error::invalid(
                "url",
                "the URL must not contain credentials; pass a token instead",
            ));
        }
        let http = http_client(
            &config.user_agent,
            &config.tls,
            config.timeout.min(Duration::from_secs(10)),
        )?;
        Ok(Self { http, config })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The organization and environment from the configuration.
    pub fn env_ref(&self) -> EnvRef {
        EnvRef::new(self.config.org.clone(), self.config.env.clone())
    }

    /// A value for the `actor` argument of the [`assay_core::ports::ControlPlane`] methods.
    /// It is never sent: the server identifies the caller by the token.
    pub fn actor(&self) -> Actor {
        Actor::new(
            Principal {
                kind: PrincipalKind::ApiToken,
                id: uuid::Uuid::nil(),
                display_name: "remote".into(),
                org_id: uuid::Uuid::nil(),
                access: Access::ReadAll,
                scope_cap: None,
                auth_method: AuthMethod::ApiToken,
                credential_id: None,
            },
            ClientInfo {
                user_agent: Some(self.config.user_agent.clone()),
                ..ClientInfo::default()
            },
        )
    }
}

/// 32 random bytes from a cryptographically secure generator, base64url without padding
/// (43 characters): PKCE verifiers (RFC 7636 §4.1), OAuth `state`, per-launch secrets.
pub fn random_secret() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    // ThreadRng: a CSPRNG seeded from the OS.
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Makes ring the process-wide rustls provider unless one is installed already.
///
/// reqwest is built with `rustls-no-provider` (no aws-lc); any code in this process that
/// builds a `reqwest::Client` itself must call this first or reqwest panics.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing the race to another installer is fine: a provider is installed either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[cfg(test)]
mod login_tests;
#[cfg(test)]
mod session_tests;
#[cfg(test)]
mod wire_tests;
