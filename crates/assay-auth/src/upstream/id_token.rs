//! ID token validation (OpenID Connect Core §3.1.3.7).
//!
//! The header is read here before any key is chosen: `alg` must be an asymmetric
//! algorithm this client implements *and* one the provider declares, so `none` and the
//! HMAC family (where a public key could be misused as the shared secret) never reach
//! signature checking; `crit` is refused, since no extension is understood. Header
//! members that point at keys (`jku`, `x5u`, `jwk`, `x5c`) are never followed: keys
//! come only from the provider's discovered JWKS. Every claim is checked here against a
//! caller-supplied clock.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::time::Duration;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

/// Far above any real id_token; refuses absurd inputs before decoding.
pub const MAX_ID_TOKEN_LEN: usize = 16 * 1024;

/// The algorithms this client verifies. Everything else — `none`, `HS*`, `EdDSA`
/// (not in common IdP use) — is refused.
const ACCEPTED_ALGORITHMS: [(&str, Algorithm); 8] = [
    ("RS256", Algorithm::RS256),
    ("RS384", Algorithm::RS384),
    ("RS512", Algorithm::RS512),
    ("PS256", Algorithm::PS256),
    ("PS384", Algorithm::PS384),
    ("PS512", Algorithm::PS512),
    ("ES256", Algorithm::ES256),
    ("ES384", Algorithm::ES384),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the id_token is longer than {MAX_ID_TOKEN_LEN} bytes")]
    TooLarge,
    #[error("the id_token is not a JWS in compact serialization")]
    Malformed,
    #[error("the id_token algorithm {0:?} is not accepted")]
    AlgorithmNotAllowed(String),
    #[error("the id_token header has crit; no JWS extension is understood")]
    CriticalHeader,
    #[error("the id_token key id {0:?} is not in the provider's key set")]
    UnknownKid(String),
    #[error("the provider's key {kid:?} is not a key for {alg}")]
    KeyAlgorithmMismatch { kid: String, alg: String },
    #[error("the provider's key set has no key for this id_token")]
    NoMatchingKey,
    #[error("the id_token has no kid and the provider's key set has several candidate keys")]
    AmbiguousKey,
    #[error("the id_token signature is invalid")]
    BadSignature,
    #[error("the id_token claims are invalid: {0}")]
    InvalidClaims(String),
    #[error("the id_token was issued by {found:?}, not the configured issuer")]
    WrongIssuer { found: String },
    #[error("the id_token audience does not include this client")]
    WrongAudience,
    #[error("the id_token has several audiences but no azp")]
    MissingAuthorizedParty,
    #[error("the id_token azp is not this client")]
    WrongAuthorizedParty,
    #[error("the id_token has expired")]
    Expired,
    #[error("the id_token is not valid yet")]
    NotYetValid,
    #[error("the id_token was issued in the future")]
    IssuedInFuture,
    #[error("the id_token nonce does not match the login request")]
    NonceMismatch,
    #[error("the id_token has no subject")]
    MissingSubject,
}

/// The protected header members that matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenHeader {
    pub alg: Algorithm,
    pub alg_name: String,
    pub kid: Option<String>,
}

/// Reads and checks the header. `provider_algs` is the provider's
/// `id_token_signing_alg_values_supported`.
pub fn read_header(token: &str, provider_algs: &[String]) -> Result<IdTokenHeader, IdTokenError> {
    if token.len() > MAX_ID_TOKEN_LEN {
        return Err(IdTokenError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(IdTokenError::Malformed);
    };
    if header.is_empty() || payload.is_empty() {
        return Err(IdTokenError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| IdTokenError::Malformed)?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes).map_err(|_| IdTokenError::Malformed)?;
    let alg_name = match header.get("alg") {
        Some(serde_json::Value::String(alg)) => alg.clone(),
        Some(other) => return Err(IdTokenError::AlgorithmNotAllowed(other.to_string())),
        None => return Err(IdTokenError::AlgorithmNotAllowed("(missing)".into())),
    };
    let alg = ACCEPTED_ALGORITHMS
        .iter()
        .find(|(name, _)| *name == alg_name)
        .map(|(_, alg)| *alg)
        .filter(|_| provider_algs.contains(&alg_name))
        .ok_or_else(|| IdTokenError::AlgorithmNotAllowed(alg_name.clone()))?;
    // An unsigned token that names a real algorithm is still unsigned.
    if signature.is_empty() {
        return Err(IdTokenError::BadSignature);
    }
    if header.contains_key("crit") {
        return Err(IdTokenError::CriticalHeader);
    }
    let kid = match header.get("kid") {
        None => None,
        Some(serde_json::Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(IdTokenError::Malformed),
    };
    Ok(IdTokenHeader { alg, alg_name, kid })
}

/// What the token must say.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub now: OffsetDateTime,
    /// Allowance for clock skew on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
}

/// `aud` is a string or an array of strings (OIDC Core §2).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// `email_verified` is a boolean; a few providers send the strings "true"/"false".
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Text(String),
}

#[derive(Debug, Deserialize)]
struct RawClaims {
    iss: String,
    #[serde(default)]
    sub: Option<String>,
    aud: Audience,
    #[serde(default)]
    azp: Option<String>,
    exp: i64,
    iat: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<Flag>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
}

/// The claims of a valid id_token that the login uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenClaims {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

/// Verifies the signature with `key` (chosen for `header`) and checks the claims.
pub fn verify(
    token: &str,
    header: &IdTokenHeader,
    key: &DecodingKey,
    expected: &Expected<'_>,
) -> Result<IdTokenClaims, IdTokenError> {
    // Signature only: every claim check is below, with the caller's clock.
    let mut validation = Validation::new(header.alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    let claims = jsonwebtoken::decode::<RawClaims>(token, key, &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => IdTokenError::BadSignature,
            jsonwebtoken::errors::ErrorKind::Json(e) => IdTokenError::InvalidClaims(e.to_string()),
            _ => IdTokenError::Malformed,
        })?
        .claims;

    if claims.iss != expected.issuer {
        return Err(IdTokenError::WrongIssuer { found: claims.iss });
    }
    let audiences = match &claims.aud {
        Audience::One(a) => std::slice::from_ref(a),
        Audience::Many(a) => a.as_slice(),
    };
    if !audiences.iter().any(|a| a == expected.client_id) {
        return Err(IdTokenError::WrongAudience);
    }
    match &claims.azp {
        Some(azp) if azp != expected.client_id => return Err(IdTokenError::WrongAuthorizedParty),
        None if audiences.len() > 1 => return Err(IdTokenError::MissingAuthorizedParty),
        _ => {}
    }
    let now = expected.now.unix_timestamp();
    let leeway = i64::try_from(expected.leeway.as_secs()).unwrap_or(i64::MAX);
    if now >= claims.exp.saturating_add(leeway) {
        return Err(IdTokenError::Expired);
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf > now.saturating_add(leeway))
    {
        return Err(IdTokenError::NotYetValid);
    }
    if claims.iat > now.saturating_add(leeway) {
        return Err(IdTokenError::IssuedInFuture);
    }
    let nonce_ok = claims
        .nonce
        .as_deref()
        .is_some_and(|n| bool::from(n.as_bytes().ct_eq(expected.nonce.as_bytes())));
    if !nonce_ok {
        return Err(IdTokenError::NonceMismatch);
    }
    let subject = claims
        .sub
        .filter(|s| !s.is_empty())
        .ok_or(IdTokenError::MissingSubject)?;
    let email_verified = match claims.email_verified {
        Some(Flag::Bool(b)) => b,
        Some(Flag::Text(t)) => t.eq_ignore_ascii_case("true"),
        None => false,
    };
    Ok(IdTokenClaims {
        subject,
        email: claims.email.filter(|e| !e.is_empty()),
        email_verified,
        name: claims
            .name
            .or(claims.preferred_username)
            .filter(|n| !n.trim().is_empty()),
    })
}
