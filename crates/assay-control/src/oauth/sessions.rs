//! Browser login sessions of the authorization server's pages. The browser holds an
//! opaque secret (in a cookie the server crate sets); the store holds only its SHA-256,
//! so sessions survive restarts, work on every replica, and a database dump cannot be
//! replayed as a login. A session ends at its expiry, at logout, or when its user is
//! disabled (checked on every lookup).

use super::AuthorizationServer;
use assay_core::Timestamp;
use assay_core::oauth::BrowserSessionRecord;
use rand::TryRngCore as _;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Prefix of session secrets: tells them apart from every other Assay secret.
const PREFIX: &str = "assay_bs_";
const RANDOM_BYTES: usize = 32;

/// A signed-in browser. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct BrowserSession {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    /// How the user signed in: `password` (or an upstream provider's name).
    pub method: String,
    pub expires_at: Timestamp,
    secret: String,
}

impl std::fmt::Debug for BrowserSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserSession")
            .field("user_id", &self.user_id)
            .field("email", &self.email)
            .field("method", &self.method)
            .field("expires_at", &self.expires_at)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl BrowserSession {
    /// The secret to put in the session cookie.
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

/// A new session secret from the OS CSPRNG: prefix + 64 hex characters (256 bits).
fn new_secret() -> Result<String, String> {
    let mut bytes = [0u8; RANDOM_BYTES];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| format!("the operating system's random number generator failed: {e}"))?;
    Ok(format!("{PREFIX}{}", hex::encode(bytes)))
}

/// Whether `secret` has the shape of a session secret (checked before any lookup).
fn well_formed(secret: &str) -> bool {
    secret.strip_prefix(PREFIX).is_some_and(|h| {
        h.len() == 2 * RANDOM_BYTES && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Hex SHA-256: the secret has full entropy, so a fast hash is enough.
fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl AuthorizationServer {
    /// The secret of a session, for the cookie.
    pub fn session_secret<'a>(&self, s: &'a BrowserSession) -> &'a str {
        s.secret()
    }

    /// Starts a session for a user who just signed in.
    pub(crate) async fn start_session(
        &self,
        user: &assay_core::identity::User,
        method: &str,
    ) -> assay_core::Result<BrowserSession> {
        let secret = new_secret().map_err(assay_core::Error::Internal)?;
        let now = self.now();
        let record = BrowserSessionRecord {
            secret_hash: hash(&secret),
            user_id: user.id,
            method: method.to_owned(),
            created_at: now,
            expires_at: super::after(now, self.config.browser_session_ttl),
        };
        self.store.insert_browser_session(&record).await?;
        Ok(BrowserSession {
            user_id: user.id,
            email: user.email.clone(),
            display_name: user.display_name.clone(),
            method: record.method,
            expires_at: record.expires_at,
            secret,
        })
    }

    /// The session behind a cookie; `None` when unknown, expired, or its user is gone or
    /// disabled. Store failures also answer `None` (the page asks to sign in again).
    pub async fn session(&self, secret: &str) -> Option<BrowserSession> {
        if !well_formed(secret) {
            return None;
        }
        let record = self
            .store
            .find_browser_session(&hash(secret), self.now())
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "could not look up a browser session"))
            .ok()??;
        let user = self
            .store
            .find_user(record.user_id)
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "could not look up a session's user"))
            .ok()??;
        if user.disabled {
            return None;
        }
        Some(BrowserSession {
            user_id: user.id,
            email: user.email,
            display_name: user.display_name,
            method: record.method,
            expires_at: record.expires_at,
            secret: secret.to_owned(),
        })
    }

    /// Logout: the session is deleted (idempotent).
    pub async fn end_session(&self, secret: &str) {
        if !well_formed(secret) {
            return;
        }
        if let Err(e) = self.store.delete_browser_session(&hash(secret)).await {
            tracing::warn!(error = %e, "could not delete a browser session");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_well_formed_and_hashed() {
        let a = new_secret().unwrap();
        let b = new_secret().unwrap();
        assert_ne!(a, b);
        assert!(well_formed(&a));
        assert_eq!(a.len(), PREFIX.len() + 64);
        assert_eq!(hash(&a).len(), 64);
        assert_ne!(hash(&a), hash(&b));
        for bad in [
            "",
            "assay_bs_",
            &a[..a.len() - 1],
            &format!("{a}0"),
            &a.to_uppercase(),
            &a.replace(PREFIX, "assay_rt_"),
        ] {
            assert!(!well_formed(bad), "{bad}");
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let s = BrowserSession {
            user_id: Uuid::nil(),
            email: "a@example.com".into(),
            display_name: "A".into(),
            method: "password".into(),
            expires_at: time::OffsetDateTime::UNIX_EPOCH,
            secret: "assay_bs_topsecret".into(),
        };
        let shown = format!("{s:?}");
        assert!(shown.contains("<redacted>"));
        assert!(!shown.contains("topsecret"));
        assert_eq!(s.secret(), "assay_bs_topsecret");
    }
}
