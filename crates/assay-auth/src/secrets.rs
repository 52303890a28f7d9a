//! Opaque secrets of the authorization server: authorization codes, refresh tokens and
//! device codes.
//!
//! Each is a type prefix + 43 base64url characters encoding 32 bytes (256 bits) from the
//! operating system's CSPRNG — above OAuth 2.1's 2^-160 guessing bound. The prefix tells
//! them apart from API tokens (`assay_` + 49 alphanumerics) and JWTs by format alone, and
//! lets secret scanners find leaked ones. Only the SHA-256 of a secret is stored: it has
//! full entropy, so a fast hash suffices (no password hashing).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRngCore as _;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::jwt::MAX_TOKEN_LEN;

/// Random bytes per secret.
const RANDOM_BYTES: usize = 32;
/// Length of the base64url (unpadded) encoding of [`RANDOM_BYTES`].
const RANDOM_LEN: usize = 43;

/// API tokens (crates/assay-control/src/tokens.rs): `assay_` + 43 base62 random + 6 base62
/// checksum. Duplicated here, as this crate cannot depend on the control plane; only the
/// shape is checked — the checksum and the lookup stay with the API-token code.
const API_TOKEN_PREFIX: &str = "assay_";
const API_TOKEN_BODY_LEN: usize = 49;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretKind {
    AuthorizationCode,
    RefreshToken,
    DeviceCode,
}

impl SecretKind {
    pub const ALL: [SecretKind; 3] = [
        SecretKind::AuthorizationCode,
        SecretKind::RefreshToken,
        SecretKind::DeviceCode,
    ];

    /// Each prefix has a `_` after `assay_`, which an API token's alphanumeric body
    /// never has: the two formats cannot overlap.
    pub fn prefix(self) -> &'static str {
        match self {
            SecretKind::AuthorizationCode => "assay_ac_",
            SecretKind::RefreshToken => "assay_rt_",
            SecretKind::DeviceCode => "assay_dc_",
        }
    }

    /// Whether `token` has this kind's exact shape: prefix, then 43 characters that are
    /// the canonical base64url encoding of 32 bytes.
    pub fn is_well_formed(self, token: &str) -> bool {
        token
            .strip_prefix(self.prefix())
            .is_some_and(is_random_part)
    }
}

fn is_random_part(random: &str) -> bool {
    // The strict decoder refuses non-canonical trailing bits, so each secret has exactly
    // one spelling.
    random.len() == RANDOM_LEN
        && matches!(URL_SAFE_NO_PAD.decode(random), Ok(bytes) if bytes.len() == RANDOM_BYTES)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the operating system's random number generator failed: {0}")]
    Rng(String),
    #[error("a stored secret hash must be 64 hexadecimal characters")]
    MalformedHash,
}

/// A freshly generated secret. Zeroed on drop; `Debug` shows only the prefix, so it
/// cannot end up in logs by accident.
pub struct Secret {
    kind: SecretKind,
    value: Zeroizing<String>,
}

impl Secret {
    pub fn kind(&self) -> SecretKind {
        self.kind
    }

    /// The secret itself, to hand to the client once.
    pub fn expose(&self) -> &str {
        &self.value
    }

    pub fn hash(&self) -> SecretHash {
        SecretHash::of(&self.value)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({}…)", self.kind.prefix())
    }
}

/// SHA-256 of a secret, the only form that is stored. Equality is constant-time.
#[derive(Debug, Clone, Copy)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// The hash of a presented secret, for lookup or [`verify`]. Hashes the whole string,
    /// prefix included, so a value is bound to its kind.
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, as API token hashes are stored.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(stored: &str) -> Result<Self, SecretError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(stored, &mut bytes).map_err(|_| SecretError::MalformedHash)?;
        Ok(Self(bytes))
    }
}

impl PartialEq for SecretHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SecretHash {}

/// A new secret of `kind`, from the OS CSPRNG directly (not a userspace generator
/// seeded from it), so a forked or snapshotted process cannot repeat one.
pub fn generate(kind: SecretKind) -> Result<Secret, SecretError> {
    let mut bytes = Zeroizing::new([0u8; RANDOM_BYTES]);
    OsRng
        .try_fill_bytes(bytes.as_mut())
        .map_err(|e| SecretError::Rng(e.to_string()))?;
    let mut value = Zeroizing::new(String::with_capacity(kind.prefix().len() + RANDOM_LEN));
    value.push_str(kind.prefix());
    URL_SAFE_NO_PAD.encode_string(bytes.as_ref(), &mut value);
    Ok(Secret { kind, value })
}

/// Whether `presented` is a well-formed secret of `kind` whose hash is `stored`. The
/// hash comparison is constant-time; the format check looks only at public structure.
pub fn verify(kind: SecretKind, presented: &str, stored: &SecretHash) -> bool {
    kind.is_well_formed(presented) && SecretHash::of(presented) == *stored
}

/// What a bearer string is, judged by its format alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Has the shape of an API token; its checksum and existence are not checked here.
    ApiToken,
    /// Three non-empty base64url segments: a JWS in compact serialization.
    Jwt,
    /// An authorization-server secret, which is never a valid access token.
    Secret(SecretKind),
    /// None of the above, including strings that start like one of them but do not
    /// match it exactly: never guessed.
    Unknown,
}

/// Classifies a bearer string so the caller sends it to the one validator that can
/// accept it. The formats are disjoint: secrets and API tokens contain no `.`, and an
/// API token's body has no `_`.
pub fn kind_of(token: &str) -> TokenKind {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return TokenKind::Unknown;
    }
    if let Some(kind) = SecretKind::ALL
        .into_iter()
        .find(|k| k.is_well_formed(token))
    {
        return TokenKind::Secret(kind);
    }
    if let Some(body) = token.strip_prefix(API_TOKEN_PREFIX)
        && body.len() == API_TOKEN_BODY_LEN
        && body.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return TokenKind::ApiToken;
    }
    let mut segments = token.split('.');
    let is_segment = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    match (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) {
        (Some(h), Some(p), Some(s), None) if is_segment(h) && is_segment(p) && is_segment(s) => {
            TokenKind::Jwt
        }
        _ => TokenKind::Unknown,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn secrets_have_their_prefix_and_256_random_bits() {
        for kind in SecretKind::ALL {
            let secret = generate(kind).unwrap();
            let value = secret.expose();
            assert_eq!(secret.kind(), kind);
            assert!(value.starts_with(kind.prefix()), "{value}");
            assert_eq!(value.len(), kind.prefix().len() + 43);
            let random = &value[kind.prefix().len()..];
            assert_eq!(URL_SAFE_NO_PAD.decode(random).unwrap().len(), 32);
            assert!(kind.is_well_formed(value));
            for other in SecretKind::ALL.into_iter().filter(|k| *k != kind) {
                assert!(!other.is_well_formed(value));
            }
            assert_eq!(kind_of(value), TokenKind::Secret(kind));
        }
    }

    #[test]
    fn secrets_do_not_repeat() {
        let draws: HashSet<String> = (0..2000)
            .map(|_| {
                generate(SecretKind::RefreshToken)
                    .unwrap()
                    .expose()
                    .to_owned()
            })
            .collect();
        assert_eq!(draws.len(), 2000);
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        let secret = generate(SecretKind::RefreshToken).unwrap();
        let shown = format!("{secret:?}");
        assert_eq!(shown, "Secret(assay_rt_…)");
        assert!(!shown.contains(&secret.expose()[9..]));
    }

    #[test]
    fn hashes_are_stable_sha256_and_round_trip_through_hex() {
        // SHA-256 test vector (FIPS 180-2, "abc").
        assert_eq!(
            SecretHash::of("abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let secret = generate(SecretKind::AuthorizationCode).unwrap();
        let hash = secret.hash();
        assert_eq!(hash, SecretHash::of(secret.expose()));
        assert_eq!(SecretHash::from_hex(&hash.to_hex()).unwrap(), hash);
        assert_eq!(hash.as_bytes().len(), 32);
        for bad in ["", "zz", &"0".repeat(63), &"0".repeat(65), &"g".repeat(64)] {
            assert_eq!(SecretHash::from_hex(bad), Err(SecretError::MalformedHash));
        }
    }

    #[test]
    fn verify_needs_the_right_kind_and_the_right_secret() {
        let secret = generate(SecretKind::RefreshToken).unwrap();
        let stored = SecretHash::from_hex(&secret.hash().to_hex()).unwrap();
        assert!(verify(SecretKind::RefreshToken, secret.expose(), &stored));
        assert!(!verify(
            SecretKind::AuthorizationCode,
            secret.expose(),
            &stored
        ));
        let other = generate(SecretKind::RefreshToken).unwrap();
        assert!(!verify(SecretKind::RefreshToken, other.expose(), &stored));
        // A malformed string never verifies, even against its own hash.
        let junk = "assay_rt_short";
        assert!(!verify(
            SecretKind::RefreshToken,
            junk,
            &SecretHash::of(junk)
        ));
    }

    #[test]
    fn classification_by_format_never_guesses() {
        let random = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let rt = format!("assay_rt_{random}");
        let ac = format!("assay_ac_{random}");
        let dc = format!("assay_dc_{random}");
        let api = format!("assay_{}", "aB3".repeat(16) + "x");
        // An API token whose body happens to start like a secret prefix.
        let api_rt = format!("assay_rt{}", "Z".repeat(47));
        let jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl";
        // A base64url random part whose last character carries non-zero trailing bits.
        let non_canonical = format!("assay_rt_{}B", &random[..42]);
        let cases: Vec<(String, TokenKind)> = vec![
            (rt.clone(), TokenKind::Secret(SecretKind::RefreshToken)),
            (ac.clone(), TokenKind::Secret(SecretKind::AuthorizationCode)),
            (dc.clone(), TokenKind::Secret(SecretKind::DeviceCode)),
            (api.clone(), TokenKind::ApiToken),
            (api_rt.clone(), TokenKind::ApiToken),
            (jwt.to_string(), TokenKind::Jwt),
            ("".to_string(), TokenKind::Unknown),
            ("assay_".to_string(), TokenKind::Unknown),
            ("assay_rt_".to_string(), TokenKind::Unknown),
            (rt[..rt.len() - 1].to_string(), TokenKind::Unknown),
            (format!("{rt}A"), TokenKind::Unknown),
            (non_canonical.clone(), TokenKind::Unknown),
            (format!("assay_xx_{random}"), TokenKind::Unknown),
            (format!("ASSAY_RT_{random}"), TokenKind::Unknown),
            (format!(" {rt}"), TokenKind::Unknown),
            (api[..api.len() - 1].to_string(), TokenKind::Unknown),
            (format!("{api}0"), TokenKind::Unknown),
            (format!("assay_{}-", "a".repeat(48)), TokenKind::Unknown),
            ("a.b".to_string(), TokenKind::Unknown),
            ("a.b.c.d".to_string(), TokenKind::Unknown),
            ("a..c".to_string(), TokenKind::Unknown),
            ("a.b.".to_string(), TokenKind::Unknown),
            ("a.b+.c".to_string(), TokenKind::Unknown),
            ("a.b=.c".to_string(), TokenKind::Unknown),
            ("Bearer a.b.c".to_string(), TokenKind::Unknown),
            ("not-a-token".to_string(), TokenKind::Unknown),
        ];
        for (token, expected) in cases {
            assert_eq!(kind_of(&token), expected, "{token:?}");
        }
        let huge = format!("{}.{}.{}", "a".repeat(MAX_TOKEN_LEN), "b", "c");
        assert_eq!(kind_of(&huge), TokenKind::Unknown);
    }
}
