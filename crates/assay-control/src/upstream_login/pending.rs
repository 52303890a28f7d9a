//! Upstream logins in progress: between sending the browser to the provider and its
//! callback, what the callback needs — the provider's `PendingLogin` (state, nonce, PKCE
//! verifier), the authorization request the user already consented to, and the scope they
//! approved — is kept here, server-side, keyed by the SHA-256 of the upstream `state`.
//!
//! - Single use: `take` removes the record, whatever happens next, so a callback URL
//!   cannot be replayed.
//! - Short-lived: [`PENDING_TTL`]; an expired record is as good as unknown.
//! - Bound to the browser that started the login: the hash of a value only that browser
//!   holds (the sign-in pages' CSRF cookie) is kept, and the callback must present the
//!   same value. A victim's browser that is made to follow an attacker's callback URL
//!   (login CSRF: being signed in as the attacker) does not have it.
//! - Bounded: at most [`MAX_PENDING`] at once. When full, expired records are dropped
//!   and, if still full, new logins are refused rather than evicting someone's login in
//!   progress.
//!
//! In memory: the callback must reach the replica that started the login (sticky
//! sessions, or a single replica). The browser's session itself is stored and works
//! everywhere once the login completes.

use crate::oauth::AuthorizeRequest;
use assay_auth::scope::McpScope;
use assay_auth::upstream::PendingLogin;
use assay_core::Timestamp;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use subtle::ConstantTimeEq as _;

/// How long the user has at the provider (ten minutes, like an authorization code).
pub const PENDING_TTL: std::time::Duration = std::time::Duration::from_secs(10 * 60);
/// Logins in progress kept at once.
pub(crate) const MAX_PENDING: usize = 10_000;

/// One login in progress.
#[derive(Clone)]
pub(crate) struct Pending {
    pub login: PendingLogin,
    pub request: AuthorizeRequest,
    /// What the user approved on the consent page before leaving.
    pub scope: McpScope,
    browser: [u8; 32],
    expires_at: Timestamp,
}

impl Pending {
    pub(crate) fn new(
        login: PendingLogin,
        request: AuthorizeRequest,
        scope: McpScope,
        browser: &str,
        now: Timestamp,
    ) -> Self {
        let ttl = time::Duration::try_from(PENDING_TTL).unwrap_or(time::Duration::minutes(10));
        Self {
            login,
            request,
            scope,
            browser: digest(browser),
            expires_at: now + ttl,
        }
    }

    /// Whether `browser` is the value the login was started with (constant time).
    pub(crate) fn started_by(&self, browser: Option<&str>) -> bool {
        browser.is_some_and(|b| bool::from(digest(b).ct_eq(&self.browser)))
    }
}

/// Why a pending login could not be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

#[derive(Default)]
pub(crate) struct PendingLogins {
    entries: Mutex<HashMap<[u8; 32], Pending>>,
}

impl PendingLogins {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Pending>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn insert(&self, pending: Pending, now: Timestamp) -> Result<(), Full> {
        let mut entries = self.lock();
        if entries.len() >= MAX_PENDING {
            entries.retain(|_, p| p.expires_at > now);
            if entries.len() >= MAX_PENDING {
                return Err(Full);
            }
        }
        entries.insert(digest(&pending.login.state), pending);
        Ok(())
    }

    /// Removes and returns the live login named by `state`. An expired one is removed
    /// and reported as absent.
    pub(crate) fn take(&self, state: &str, now: Timestamp) -> Option<Pending> {
        let pending = self.lock().remove(&digest(state))?;
        (pending.expires_at > now).then_some(pending)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::oauth::ClientView;
    use assay_core::oauth::OAuthClientKind;

    fn request() -> AuthorizeRequest {
        AuthorizeRequest {
            client: ClientView {
                client_id: "assay-cli".into(),
                name: "Assay CLI".into(),
                kind: OAuthClientKind::FirstParty,
                client_id_host: None,
                redirect_host: "127.0.0.1".into(),
                localhost_only: true,
            },
            redirect_uri: "http://127.0.0.1:5000/callback".into(),
            state: None,
            code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            scope: McpScope::Run,
            offline_access: false,
            resource: "https://assay.example".into(),
        }
    }

    fn pending(state: &str, now: Timestamp) -> Pending {
        Pending::new(
            PendingLogin {
                provider_id: "corp".into(),
                state: state.into(),
                nonce: Some("n".into()),
                code_verifier: "v".into(),
                redirect_uri: "https://assay.example/oauth/upstream/corp/callback".into(),
            },
            request(),
            McpScope::Read,
            "browser-token",
            now,
        )
    }

    #[test]
    fn a_login_is_taken_once_and_only_before_it_expires() {
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let logins = PendingLogins::default();
        logins.insert(pending("s1", now), now).unwrap();
        logins.insert(pending("s2", now), now).unwrap();
        assert!(logins.take("unknown", now).is_none());
        let taken = logins.take("s1", now).unwrap();
        assert_eq!(taken.scope, McpScope::Read);
        assert!(logins.take("s1", now).is_none(), "single use");
        let later = now + time::Duration::minutes(10);
        assert!(logins.take("s2", later).is_none(), "expired at the TTL");
        assert_eq!(logins.len(), 0, "an expired login is removed too");
    }

    #[test]
    fn the_browser_binding_must_match() {
        let p = pending("s", time::OffsetDateTime::UNIX_EPOCH);
        assert!(p.started_by(Some("browser-token")));
        assert!(!p.started_by(Some("browser-token2")));
        assert!(!p.started_by(Some("")));
        assert!(!p.started_by(None));
    }

    #[test]
    fn when_full_expired_logins_make_room_and_live_ones_are_kept() {
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let logins = PendingLogins::default();
        for i in 0..MAX_PENDING {
            logins.insert(pending(&format!("s{i}"), now), now).unwrap();
        }
        assert_eq!(logins.insert(pending("one more", now), now), Err(Full));
        assert_eq!(logins.len(), MAX_PENDING, "nobody was evicted");
        let later = now + time::Duration::minutes(11);
        logins.insert(pending("after", later), later).unwrap();
        assert_eq!(logins.len(), 1, "the expired ones were dropped");
    }
}
