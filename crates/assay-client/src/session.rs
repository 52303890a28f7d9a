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
    /// The access token's lifetime as issued (`expires_in`), in seconds. It caps the
    /// refresh margin at half the lifetime, so short-lived tokens are not refreshed on
    /// every request; `None` (unknown, or saved by an older version) leaves the margin as
    /// configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_secs: Option<u64>,
}

/// Never shows the tokens.
impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"***")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "***"))
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .field("lifetime_secs", &self.lifetime_secs)
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
            lifetime_secs: expires_at.and(r.expires_in),
        }
    }

    /// Whether the access token expires within `margin` of `now` (never, when the
    /// expiry is unknown: the server's 401 then triggers the refresh). The margin is at
    /// most half the token's lifetime: with a server TTL at or below the margin every
    /// request would otherwise refresh.
    fn expires_within(&self, margin: Duration, now: OffsetDateTime) -> bool {
        let margin = match self.lifetime_secs {
            Some(lifetime) => margin.min(Duration::from_secs(lifetime) / 2),
            None => margin,
        };
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

/// After an early refresh failed for want of the token endpoint, requests go on with the
/// still-valid access token for this long before the next attempt (instead of each
/// waiting on an endpoint that is down).
const EARLY_REFRESH_RETRY: Duration = Duration::from_secs(10);

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
    /// Refresh tokens this session spent since its tokens were last saved. Empty but for
    /// a failed save; then the store may still hold one of them, and presenting it again
    /// would end the login.
    unsaved_spent: std::sync::Mutex<Vec<String>>,
    /// No early refresh before this instant (the last attempt found the endpoint down).
    early_retry_at: std::sync::Mutex<Option<std::time::Instant>>,
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

/// A poisoned lock here only means a panic elsewhere; the value is still consistent.
fn guard<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether the access token is still accepted now (known expiry in the future).
fn still_valid(tokens: &TokenSet) -> bool {
    tokens
        .expires_at
        .is_some_and(|at| at > OffsetDateTime::now_utc())
}

impl OAuthSession {
    /// `http` should come from [`crate::oauth_http_client`] (no redirects: a followed
    /// 307 would resend the refresh token elsewhere); `tokens` are the ones loaded from
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
            unsaved_spent: std::sync::Mutex::new(Vec::new()),
            early_retry_at: std::sync::Mutex::new(None),
        }
    }

    /// Refresh this long before the access token expires (default 60 s; at most half
    /// the token's lifetime when that is known).
    pub fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// The tokens in use now.
    pub fn tokens(&self) -> TokenSet {
        guard(&self.current).clone()
    }

    fn set_tokens(&self, tokens: TokenSet) {
        *guard(&self.current) = tokens;
    }

    /// An access token to send, refreshed first when it expires within the margin.
    ///
    /// When that early refresh fails because the token endpoint is unavailable (down,
    /// unreachable, 5xx) the current token is returned as long as it has not expired.
    ///
    /// Errors: `Unauthenticated` when the session has ended (refresh refused, no refresh
    /// token, or signed out on this machine); `Unavailable` when the token endpoint
    /// cannot be reached and the token has expired; `Internal` when refreshed tokens
    /// could not be saved.
    pub async fn access_token(&self) -> Result<String> {
        let tokens = self.tokens();
        if !tokens.expires_within(self.margin, OffsetDateTime::now_utc()) {
            return Ok(tokens.access_token);
        }
        match self.renew(None).await {
            Err(Error::Unavailable(why)) => {
                let current = self.tokens();
                if !still_valid(&current) {
                    return Err(Error::Unavailable(why));
                }
                tracing::warn!(
                    error = %why,
                    "could not refresh the access token early; using it until it expires"
                );
                *guard(&self.early_retry_at) =
                    std::time::Instant::now().checked_add(EARLY_REFRESH_RETRY);
                Ok(current.access_token)
            }
            other => other,
        }
    }

    /// After the server answered 401 to `rejected`: a fresh access token. When the
    /// session already holds another one (a concurrent request refreshed), that one is
    /// returned without refreshing again.
    pub async fn refresh_after_rejection(&self, rejected: &str) -> Result<String> {
        self.renew(Some(rejected)).await
    }

    /// Whether an early refresh failed so recently that the next one should wait.
    fn early_refresh_paused(&self) -> bool {
        guard(&self.early_retry_at).is_some_and(|at| std::time::Instant::now() < at)
    }

    async fn renew(&self, rejected: Option<&str>) -> Result<String> {
        let _one_at_a_time = self.refreshing.lock().await;
        let ours = self.tokens();
        let now = OffsetDateTime::now_utc();
        // Another task of this process may have refreshed (or found the endpoint down)
        // while this one waited.
        let done_meanwhile = match rejected {
            Some(rejected) => ours.access_token != rejected,
            None => {
                !ours.expires_within(self.margin, now)
                    || (self.early_refresh_paused() && still_valid(&ours))
            }
        };
        if done_meanwhile {
            return Ok(ours.access_token);
        }

        let store = Arc::clone(&self.store);
        let _across_processes = blocking(move || store.lock()).await?;
        let store = Arc::clone(&self.store);
        let stored = blocking(move || store.load()).await?;
        // Nothing stored: `assay logout`, `assay context delete` or an API token took
        // this credential's place. The user ended this login; our refresh token may
        // already be revoked or spent, and presenting it would look like theft to the
        // server, so the session ends here without asking it.
        let Some(stored) = stored else {
            return Err(session_ended("signed out on this machine"));
        };
        // The store holds the latest tokens of every process (ours included: we save
        // after each refresh), so its refresh token is the one still valid; unless it is
        // one we spent and could not replace there, when ours are the latest.
        let stale = stored
            .refresh_token
            .as_ref()
            .is_some_and(|r| guard(&self.unsaved_spent).contains(r));
        let latest = if stale { ours.clone() } else { stored };
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
            fresh.refresh_token = Some(refresh_token.clone());
        }
        if fresh.scope.is_none() {
            fresh.scope = latest.scope;
        }
        tracing::debug!("access token refreshed");
        // In memory first: whatever happens to the save, this process holds the only
        // refresh token that is still valid.
        self.set_tokens(fresh.clone());
        *guard(&self.early_retry_at) = None;
        if fresh.refresh_token.as_deref() != Some(refresh_token.as_str()) {
            guard(&self.unsaved_spent).push(refresh_token);
        }
        let access = fresh.access_token.clone();
        self.persist(fresh).await?;
        Ok(access)
    }

    /// Saves refreshed tokens, trying twice: unsaved, the store keeps a spent refresh
    /// token, which the next process would present and the server take for theft.
    async fn persist(&self, tokens: TokenSet) -> Result<()> {
        let mut failure = None;
        for _ in 0..2 {
            let store = Arc::clone(&self.store);
            let tokens = tokens.clone();
            match blocking(move || store.save(&tokens)).await {
                Ok(()) => {
                    guard(&self.unsaved_spent).clear();
                    return Ok(());
                }
                // Signed out meanwhile: the user's decision, not a store failure.
                Err(e @ Error::Unauthenticated(_)) => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "could not save the refreshed tokens");
                    failure = Some(e);
                }
            }
        }
        let why = failure.map(|e| e.to_string()).unwrap_or_default();
        Err(Error::Internal(format!(
            "the access token was refreshed but the new tokens could not be saved ({why}). \
             This process keeps using them, but other `assay` commands for this login would \
             present the spent refresh token and end the login: fix the credential store \
             (the OS keyring or the credentials file), then run `assay login` again"
        )))
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
