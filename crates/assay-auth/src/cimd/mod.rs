//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, MCP
//! 2025-11-25 authorization): a client whose `client_id` is an `https` URL describes
//! itself in a JSON document at that URL, and the authorization server fetches it.
//!
//! The fetch is the server making a request on an anonymous caller's say-so, so it goes
//! through the [`crate::ssrf`] guard and is bounded every way: no redirects, a 5 KB body
//! cap counted while streaming, connect and total timeouts, `200` + JSON only. Valid
//! documents are cached as HTTP caching allows (bounded); failures never are.

mod cache;
mod client_id;
mod document;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use url::Url;

use crate::capped_body::{self, BodyError};

pub use client_id::{ClientIdError, MAX_CLIENT_ID_LEN, is_metadata_document_url, parse_client_id};
pub use document::{ClientMetadata, MAX_CLIENT_NAME_CHARS, MAX_REDIRECT_URIS};

use crate::redirect::RedirectUriError;
use crate::ssrf::{self, FetchTimeouts, SsrfError, SsrfPolicy};

/// The recommended maximum document size (CIMD §6).
pub const DEFAULT_MAX_BODY_BYTES: usize = 5 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CimdConfig {
    pub policy: SsrfPolicy,
    pub connect_timeout: Duration,
    /// For the whole fetch: DNS, connect, TLS, response and body.
    pub total_timeout: Duration,
    pub max_body_bytes: usize,
    /// Reuse time for a response without `Cache-Control`.
    pub default_ttl: Duration,
    /// Upper bound on any reuse time, whatever the response says.
    pub max_ttl: Duration,
    /// Most documents held at once.
    pub cache_capacity: usize,
    pub user_agent: String,
}

impl Default for CimdConfig {
    fn default() -> Self {
        Self {
            policy: SsrfPolicy::strict(),
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(10),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            default_ttl: Duration::from_secs(5 * 60),
            max_ttl: Duration::from_secs(24 * 60 * 60),
            cache_capacity: 1024,
            user_agent: concat!(
                "assay/",
                env!("CARGO_PKG_VERSION"),
                " (client metadata fetch)"
            )
            .to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CimdError {
    #[error(transparent)]
    InvalidClientId(#[from] ClientIdError),
    #[error("refused to fetch the client metadata document: {0}")]
    Ssrf(#[from] SsrfError),
    #[error("fetching the client metadata document timed out")]
    Timeout,
    #[error("cannot fetch the client metadata document: {0}")]
    Transport(String),
    #[error(
        "the client metadata document URL answered with a redirect ({status}); redirects are not followed"
    )]
    Redirect { status: u16 },
    #[error("the client metadata document URL answered with status {0}, not 200")]
    Status(u16),
    #[error("the client metadata document has content type {0:?}, not application/json")]
    ContentType(Option<String>),
    #[error("the client metadata document is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the client metadata document is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("the client metadata document has no {0}")]
    MissingField(&'static str),
    #[error(
        "the client metadata document's client_id {document:?} is not the URL it was fetched from"
    )]
    ClientIdMismatch { document: String },
    #[error("the client metadata document contains a client_secret; such clients must be public")]
    ClientSecretPresent,
    #[error(
        "token_endpoint_auth_method {0:?} uses a shared secret, which metadata-document clients cannot have"
    )]
    SecretAuthMethod(String),
    #[error("token_endpoint_auth_method {0:?} is not supported; only none is")]
    UnsupportedAuthMethod(String),
    #[error("the client metadata document has no redirect_uris")]
    NoRedirectUris,
    #[error(
        "the client metadata document lists {0} redirect_uris; at most {MAX_REDIRECT_URIS} are allowed"
    )]
    TooManyRedirectUris(usize),
    #[error("redirect_uris[{index}] is not acceptable: {error}")]
    InvalidRedirectUri {
        index: usize,
        error: RedirectUriError,
    },
    #[error("the client metadata document's client_name is empty")]
    EmptyClientName,
    #[error("cannot build the HTTP client: {0}")]
    Internal(String),
}

/// Fetches, validates and caches metadata documents. One per server; cheap to share.
pub struct CimdFetcher {
    config: CimdConfig,
    cache: Mutex<cache::MetadataCache>,
}

impl std::fmt::Debug for CimdFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CimdFetcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl CimdFetcher {
    pub fn new(config: CimdConfig) -> Self {
        let cache = Mutex::new(cache::MetadataCache::new(config.cache_capacity));
        Self { config, cache }
    }

    pub fn config(&self) -> &CimdConfig {
        &self.config
    }

    /// Validates `client_id` as a document URL under this fetcher's policy, without
    /// fetching.
    pub fn parse_client_id(&self, client_id: &str) -> Result<Url, CimdError> {
        Ok(parse_client_id(
            client_id,
            self.config.policy.allows_plain_http_to_loopback(),
        )?)
    }

    /// The client described by the document at `client_id`, from the cache when fresh.
    pub async fn fetch(&self, client_id: &str) -> Result<Arc<ClientMetadata>, CimdError> {
        let url = self.parse_client_id(client_id)?;
        if let Some(hit) = self.lock_cache().get(client_id, Instant::now()) {
            return Ok(hit);
        }
        let (metadata, ttl) = tokio::time::timeout(
            self.config.total_timeout,
            self.fetch_uncached(&url, client_id),
        )
        .await
        .map_err(|_| CimdError::Timeout)??;
        let metadata = Arc::new(metadata);
        if !ttl.is_zero() {
            let now = Instant::now();
            self.lock_cache()
                .insert(Arc::clone(&metadata), now + ttl, now);
        }
        Ok(metadata)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, cache::MetadataCache> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn fetch_uncached(
        &self,
        url: &Url,
        client_id: &str,
    ) -> Result<(ClientMetadata, Duration), CimdError> {
        let target = ssrf::check_url(url, &self.config.policy).await?;
        let timeouts = FetchTimeouts {
            connect: self.config.connect_timeout,
            total: self.config.total_timeout,
        };
        let client = ssrf::pinned_client(&target, timeouts, &self.config.user_agent)
            .map_err(|e| CimdError::Internal(e.to_string()))?;
        let mut response = client
            .get(url.clone())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(transport_error)?;

        let status = response.status();
        if status.is_redirection() {
            return Err(CimdError::Redirect {
                status: status.as_u16(),
            });
        }
        if status != reqwest::StatusCode::OK {
            return Err(CimdError::Status(status.as_u16()));
        }
        check_content_type(response.headers())?;
        let limit = self.config.max_body_bytes;
        let body = capped_body::read_capped(&mut response, limit)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge => CimdError::TooLarge { limit },
                BodyError::Transport(e) => transport_error(e),
            })?;

        let freshness = cache::freshness(response.headers());
        let metadata = document::parse(&body, client_id)?;
        let ttl = cache::time_to_live(freshness, self.config.default_ttl, self.config.max_ttl);
        tracing::debug!(
            client_id,
            ttl_secs = ttl.as_secs(),
            "fetched client metadata document"
        );
        Ok((metadata, ttl))
    }
}

fn transport_error(e: reqwest::Error) -> CimdError {
    if e.is_timeout() {
        return CimdError::Timeout;
    }
    // The URL in the message is the public client_id, so nothing secret is in it.
    CimdError::Transport(capped_body::error_chain(&e))
}

/// `application/json` or a `+json` media type, parameters ignored.
fn check_content_type(headers: &HeaderMap) -> Result<(), CimdError> {
    let value = headers
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let essence = value
        .as_deref()
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some(t)
            if t == "application/json"
                || (t.starts_with("application/") && t.ends_with("+json")) =>
        {
            Ok(())
        }
        _ => Err(CimdError::ContentType(value)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn content_types() {
        let ok = [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/client-metadata+json",
        ];
        for t in ok {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, HeaderValue::from_static(t));
            assert_eq!(check_content_type(&h), Ok(()), "{t}");
        }
        for t in [
            "text/html",
            "text/plain",
            "text/json",
            "application/jsonp",
            "application/json-seq",
            "json",
        ] {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, HeaderValue::from_static(t));
            assert_eq!(
                check_content_type(&h),
                Err(CimdError::ContentType(Some(t.to_owned()))),
                "{t}"
            );
        }
        assert_eq!(
            check_content_type(&HeaderMap::new()),
            Err(CimdError::ContentType(None))
        );
    }

    #[tokio::test]
    async fn invalid_client_ids_are_refused_before_any_fetch() {
        let f = CimdFetcher::new(CimdConfig::default());
        assert_eq!(
            f.fetch("http://127.0.0.1:9/c.json").await,
            Err(CimdError::InvalidClientId(ClientIdError::NotHttps(
                "http".into()
            )))
        );
        assert_eq!(
            f.fetch("https://client.example/").await,
            Err(CimdError::InvalidClientId(ClientIdError::MissingPath))
        );
        // A loopback literal is refused by the address policy without connecting.
        assert_eq!(
            f.fetch("https://127.0.0.1:9/c.json").await,
            Err(CimdError::Ssrf(SsrfError::SpecialUseAddress {
                addr: "127.0.0.1".parse().unwrap(),
                class: ssrf::AddressClass::Loopback,
            }))
        );
        assert_eq!(
            f.fetch("https://169.254.169.254/latest/meta-data/").await,
            Err(CimdError::Ssrf(SsrfError::SpecialUseAddress {
                addr: "169.254.169.254".parse().unwrap(),
                class: ssrf::AddressClass::LinkLocal,
            }))
        );
    }

    #[test]
    fn default_config() {
        let c = CimdConfig::default();
        assert_eq!(c.policy, SsrfPolicy::strict());
        assert_eq!(c.max_body_bytes, 5120);
        assert_eq!(c.max_ttl, Duration::from_secs(86_400));
    }
}
