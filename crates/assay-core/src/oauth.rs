//! What the OAuth 2.1 authorization server keeps: clients, the grants users consented
//! to, authorization codes, refresh tokens, revoked access tokens, signing keys and
//! device authorizations. Secrets (codes, refresh tokens, device codes) are never kept,
//! only the hex SHA-256 of each; the store looks records up by that hash.

use crate::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// How a client came to be known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OAuthClientKind {
    /// RFC 7591 dynamic registration; the ID is generated (never `https://…`).
    Registered,
    /// Client ID Metadata Document: the ID is the document's https URL.
    MetadataDocument,
    /// Pre-registered by Assay itself (the CLI).
    FirstParty,
}

impl OAuthClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthClientKind::Registered => "registered",
            OAuthClientKind::MetadataDocument => "metadata-document",
            OAuthClientKind::FirstParty => "first-party",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "registered" => Some(OAuthClientKind::Registered),
            "metadata-document" => Some(OAuthClientKind::MetadataDocument),
            "first-party" => Some(OAuthClientKind::FirstParty),
            _ => None,
        }
    }
}

/// A public client (no client secrets exist in this server).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OAuthClient {
    /// Generated for DCR and first-party clients; the https URL for CIMD clients.
    pub id: String,
    pub kind: OAuthClientKind,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<Timestamp>,
    /// Dynamic registrations that are never used expire (and are deleted) at this time.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<Timestamp>,
}

/// What a user consented to for one client and one resource. At most one live (not
/// revoked) grant exists per (user, client, resource); consenting again replaces its scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OAuthGrant {
    pub id: Uuid,
    pub org_id: Uuid,
    pub user_id: Uuid,
    pub client_id: String,
    /// Space-separated scopes.
    pub scope: String,
    /// The resource (RFC 8707) tokens of this grant are bound to.
    pub resource: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<Timestamp>,
    #[serde(default)]
    pub revoked_reason: Option<String>,
}

/// A user's live OAuth grant as shown to that user (`GET …/me/grants`, `assay grants
/// list`): which client may act for them, with what scope, on which resource. Never a
/// token or a hash; revoking it ends its refresh tokens and access tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantInfo {
    pub id: Uuid,
    pub client_id: String,
    /// The name the client gave itself (unverified: DCR and CIMD clients choose it).
    pub client_name: String,
    pub client_kind: OAuthClientKind,
    /// Space-separated scopes.
    pub scope: String,
    /// The resource (RFC 8707) its tokens are bound to.
    pub resource: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
}

/// An authorization code as stored: single use, short-lived, bound to everything the
/// token request must repeat.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizationCode {
    /// Hex SHA-256 of the code.
    pub code_hash: String,
    pub grant_id: Uuid,
    pub client_id: String,
    pub redirect_uri: String,
    /// The S256 challenge the verifier must match.
    pub code_challenge: String,
    pub resource: String,
    pub scope: String,
    pub user_id: Uuid,
    pub org_id: Uuid,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub consumed_at: Option<Timestamp>,
}

/// The result of presenting an authorization code. Exactly one concurrent presenter of
/// a live code gets `First`.
#[derive(Debug, Clone, PartialEq)]
pub enum CodeRedemption {
    /// This call consumed the code (the record carries the new `consumed_at`).
    First(AuthorizationCode),
    /// The code had been consumed before: a replay. The caller revokes the grant.
    Replay(AuthorizationCode),
    /// Expired and never consumed; left unconsumed so it can never count as a replay.
    Expired(AuthorizationCode),
}

/// A refresh token as stored: opaque, hashed, rotated on every use. Tokens descending
/// from one authorization share a `family_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshToken {
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    pub family_id: Uuid,
    pub grant_id: Uuid,
    pub client_id: String,
    pub resource: String,
    pub scope: String,
    pub created_at: Timestamp,
    /// Absolute lifetime of the family (carried over on rotation by the caller).
    pub expires_at: Timestamp,
    /// Unusable after this unless rotated before.
    pub idle_expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// The result of presenting a refresh token. Exactly one concurrent presenter of a live
/// token gets `First`. Checked in this order: reuse, revocation, expiry.
#[derive(Debug, Clone, PartialEq)]
pub enum RefreshRedemption {
    /// This call used the token (the record carries the new `used_at`); issue its successor.
    First(RefreshToken),
    /// Used before while its family is still live: a reuse. The caller revokes the family
    /// and the grant.
    Reuse(RefreshToken),
    /// Revoked (its family or grant was): never used, or used before but its family has
    /// no live token left (its login signed out, its grant was revoked), so presenting it
    /// again endangers no session and is no reuse.
    Revoked(RefreshToken),
    /// Past its absolute or idle lifetime and never used; left unused.
    Expired(RefreshToken),
}

/// An EdDSA signing key. `Debug` never shows the key.
#[derive(Clone, PartialEq)]
pub struct SigningKeyRecord {
    pub kid: String,
    /// The private key sealed with the server's key-encryption key (a `v1:` envelope of
    /// its PKCS#8 DER, see `assay_auth::key_seal`); hex in the database. The KEK never
    /// lives in the database, so a dump alone cannot sign tokens. Records written before
    /// sealing existed hold plain PKCS#8 DER; the control plane re-seals them at start.
    pub private_pkcs8: Vec<u8>,
    pub created_at: Timestamp,
    pub retired_at: Option<Timestamp>,
}

impl fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("private_pkcs8", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

/// Where an RFC 8628 device authorization stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    Pending,
    Approved {
        user_id: Uuid,
        org_id: Uuid,
        grant_id: Uuid,
    },
    Denied,
}

impl DeviceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Pending => "pending",
            DeviceStatus::Approved { .. } => "approved",
            DeviceStatus::Denied => "denied",
        }
    }
}

/// An RFC 8628 device authorization as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceAuthorization {
    /// Hex SHA-256 of the device code.
    pub device_code_hash: String,
    /// The code the user types (8 letters, normalized by the caller).
    pub user_code: String,
    pub client_id: String,
    pub scope: String,
    pub resource: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// Minimum seconds between polls.
    pub interval_secs: u32,
    pub last_poll_at: Option<Timestamp>,
    pub status: DeviceStatus,
}

/// A browser login session of the authorization server's pages, as stored. The cookie
/// holds an opaque secret; only its hex SHA-256 is kept, so a database dump cannot be
/// replayed as a login, and any replica can look a session up.
#[derive(Debug, Clone, PartialEq)]
pub struct BrowserSessionRecord {
    /// Hex SHA-256 of the session secret.
    pub secret_hash: String,
    pub user_id: Uuid,
    /// How the user signed in (`password`, or an upstream identity provider's name).
    pub method: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_kinds_round_trip_as_their_serde_names() {
        for kind in [
            OAuthClientKind::Registered,
            OAuthClientKind::MetadataDocument,
            OAuthClientKind::FirstParty,
        ] {
            assert_eq!(OAuthClientKind::parse(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).ok(),
                Some(serde_json::json!(kind.as_str()))
            );
        }
        assert_eq!(OAuthClientKind::parse("confidential"), None);
    }

    #[test]
    fn signing_key_debug_hides_the_key() {
        let key = SigningKeyRecord {
            kid: "k1".into(),
            private_pkcs8: vec![0xAB; 48],
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            retired_at: None,
        };
        let shown = format!("{key:?}");
        assert!(shown.contains("k1"));
        assert!(shown.contains("<redacted>"));
        assert!(!shown.contains("171"));
        assert!(!shown.to_lowercase().contains("ab, ab"));
    }
}
