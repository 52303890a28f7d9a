//! Credentials the client sends, and the OAuth session that keeps an access token fresh.
//!
//! Refresh tokens rotate on every use and the server treats a second use of one as theft
//! (it revokes the whole grant). So a refresh happens under an in-process mutex *and* the
//! store's cross-process lock, and before refreshing the session looks at what the store
//! holds: another process may have refreshed already, and then its tokens are adopted
//! instead of spending a refresh token that is no longer ours to spend.

use crate::login::{EndpointError, TokenResponse, token_request};
use assay_core::{Error, Result};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use url::Url;

/// What the client authenticates with.
#[derive(Clone, Default)]
pub enum Credential {
    /// Nothing is sent (the server answers 401 to anything but public routes).
    #[default]
    None,
    /// A fixed bearer: an API token (`assay_…`) or a JWT that is never refreshed.
    Bearer(String),
    /// OAuth tokens from `assay login`, refreshed before they expire and after a 401.
    OAuth(Arc<OAuthSession>),
}

/// Never shows a secret.
impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Bearer(_) => f.write_str("Bearer(***)"),
            Self::OAuth(s) => f.debug_tuple("OAuth").field(s).finish(),
        }
    }
}

/// Tokens from the token endpoint, as they are persisted.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSet {
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the access token expires (RFC 3339); `None` when the server did not say.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Never shows the tokens.
impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"***")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "***"))
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .finish()
    }
}

impl TokenSet {
    /// From a token response received at `now`.
    pub(crate) fn from_response(r: TokenResponse, now: OffsetDateTime) -> Self {
        let expires_at = r
            .expires_in
            .and_then(|s| i64::try_from(s).ok())
            .and_then(|s| now.checked_add(time::Duration::seconds(s)));
        Self {
            access_token: r.access_token,
            refresh_token: r.refresh_token,
            expires_at,
            scope: r.scope,
        }
    }

    /// Whether the access token expires within `margin` of `now` (never, when the
    /// expiry is unknown: the server's 401 then triggers the refresh).
    fn expires_within(&self, margin: Duration, now: OffsetDateTime) -> bool {
        let margin = time::Duration::try_from(margin).unwrap_or(time::Duration::MAX);
        self.expires_at
            .is_some_and(|at| at.checked_sub(margin).is_none_or(|t| t <= now))
    }
}

/// Where an [`OAuthSession`] persists its tokens (the CLI: the OS keyring or a 0600 file).
///
/// The methods block (keyring, file locks); the session calls them on the blocking pool.
pub trait TokenStore: Send + Sync {
    /// Latest persisted tokens for this credential (another process may have refreshed).
    fn load(&self) -> Result<Option<TokenSet>>;
    fn save(&self, tokens: &TokenSet) -> Result<()>;
    /// Exclusive cross-process lock held while refreshing (refresh tokens rotate: two
    /// processes refreshing with the same one would trip reuse detection and revoke the
    /// grant). Released when the returned value is dropped.
    fn lock(&self) -> Result<Box<dyn std::any::Any + Send>>;
}

/// Default [`OAuthSession::with_refresh_margin`].
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// Longest wait for a token endpoint answer during a refresh.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(30);

/// An OAuth login: the current tokens, how to refresh them, and where to persist them.
pub struct OAuthSession {
    http: reqwest::Client,
    token_endpoint: Url,
    client_id: String,
    store: Arc<dyn TokenStore>,
    margin: Duration,
    current: std::sync::Mutex<TokenSet>,
    /// One refresh at a time in this process; the store's lock covers other processes.
    refreshing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for OAuthSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthSession")
            .field("token_endpoint", &self.token_endpoint.as_str())
            .field("client_id", &self.client_id)
            .field("refresh_margin", &self.margin)
            .finish_non_exhaustive()
    }
}

impl OAuthSession {
    /// `http` should come from [`crate::http_client`]; `tokens` are the ones loaded from
    /// `store` (or just received from a login).
    pub fn new(
        http: reqwest::Client,
        token_endpoint: Url,
        client_id: String,
        tokens: TokenSet,
        store: Arc<dyn TokenStore>,
    ) -> Self {
        Self {
            http,
            token_endpoint,
            client_id,
            store,
            margin: DEFAULT_REFRESH_MARGIN,
            current: std::sync::Mutex::new(tokens),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// Refresh this long before the access token expires (default 60 s).
    pub fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// The tokens in use now.
    pub fn tokens(&self) -> TokenSet {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_tokens(&self, tokens: TokenSet) {
        *self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = tokens;
    }

    /// An access token to send, refreshed first when it expires within the margin.
    ///
    /// Errors: `Unauthenticated` when the session has ended (refresh refused, or no
    /// refresh token); `Unavailable` when the token endpoint cannot be reached.
    pub async fn access_token(&self) -> Result<String> {
        let tokens = self.tokens();
        if !tokens.expires_within(self.margin, OffsetDateTime::now_utc()) {
            return Ok(tokens.access_token);
        }
        self.renew(None).await
    }

    /// After the server answered 401 to `rejected`: a fresh access token. When the
    /// session already holds another one (a concurrent request refreshed), that one is
    /// returned without refreshing again.
    pub async fn refresh_after_rejection(&self, rejected: &str) -> Result<String> {
        self.renew(Some(rejected)).await
    }

    async fn renew(&self, rejected: Option<&str>) -> Result<String> {
        let _one_at_a_time = self.refreshing.lock().await;
        let ours = self.tokens();
        let now = OffsetDateTime::now_utc();
        // Another task of this process may have refreshed while this one waited.
        let done_meanwhile = match rejected {
            Some(rejected) => ours.access_token != rejected,
            None => !ours.expires_within(self.margin, now),
        };
        if done_meanwhile {
            return Ok(ours.access_token);
        }

        let store = Arc::clone(&self.store);
        let _across_processes = blocking(move || store.lock()).await?;
        let store = Arc::clone(&self.store);
        let stored = blocking(move || store.load()).await?;
        // The store holds the latest tokens of every process (ours included: we save
        // after each refresh), so its refresh token is the one still valid.
        let latest = stored.unwrap_or_else(|| ours.clone());
        let now = OffsetDateTime::now_utc();
        let usable = latest.access_token != ours.access_token
            && rejected != Some(latest.access_token.as_str())
            && !latest.expires_within(self.margin, now);
        if usable {
            tracing::debug!("adopting the tokens another process refreshed");
            let access = latest.access_token.clone();
            self.set_tokens(latest);
            return Ok(access);
        }

        let Some(refresh_token) = latest.refresh_token.clone() else {
            return Err(session_ended(
                "the access token expired and there is no refresh token",
            ));
        };
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
            ("client_id", self.client_id.as_str()),
        ];
        let response = token_request(&self.http, &self.token_endpoint, &form, REFRESH_TIMEOUT)
            .await
            .map_err(|e| match e {
                EndpointError::OAuth {
                    error, description, ..
                } if matches!(
                    error.as_str(),
                    "invalid_grant" | "invalid_client" | "unauthorized_client"
                ) =>
                {
                    session_ended(if description.is_empty() {
                        &error
                    } else {
                        &description
                    })
                }
                other => other.into_error("refreshing the access token"),
            })?;
        let mut fresh = TokenSet::from_response(response, OffsetDateTime::now_utc());
        if fresh.refresh_token.is_none() {
            // The server did not rotate it: the old one stays valid.
            fresh.refresh_token = Some(refresh_token);
        }
        if fresh.scope.is_none() {
            fresh.scope = latest.scope;
        }
        tracing::debug!("access token refreshed");
        self.set_tokens(fresh.clone());
        let access = fresh.access_token.clone();
        let store = Arc::clone(&self.store);
        if let Err(e) = blocking(move || store.save(&fresh)).await {
            // The new tokens work for this process; only other processes miss them.
            tracing::warn!(error = %e, "could not save the refreshed tokens");
        }
        Ok(access)
    }
}

fn session_ended(why: &str) -> Error {
    Error::Unauthenticated(format!(
        "your session has ended ({why}); run `assay login` again"
    ))
}

/// Runs a blocking store call on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("the credential store task failed: {e}")))?
}
