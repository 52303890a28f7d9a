//! Access tokens: JWS compact serialization in the RFC 9068 shape (`typ: at+jwt`),
//! signed with Ed25519 (`alg: EdDSA`).
//!
//! Signing and signature verification go through jsonwebtoken 12 (`rust_crypto`). The
//! header is checked here before the library sees the token, against an allow-list:
//! `alg` must be `EdDSA`, `typ` must be `at+jwt`, `kid` must name a key of the ring, and
//! no other member is accepted — so `jku`, `x5u`, `jwk`, `x5c`, `crit` and friends can
//! never steer key selection. The time claims are checked here too, against a caller
//! supplied `now`, because jsonwebtoken reads the system clock itself.

mod keys;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Header, Validation};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use time::OffsetDateTime;

pub use keys::{KeyError, KeyRing, SigningKey};

use crate::scope::{McpScope, ScopeError, granted_mcp_scope};

/// RFC 9068 §2.1.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// Far above any token this server issues; refuses absurd inputs before decoding.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The claims of an access token (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    /// The user ID.
    pub sub: String,
    /// The resource (RFC 8707) the token is for: one value, the MCP endpoint's
    /// canonical URI.
    pub aud: String,
    pub client_id: String,
    /// Space-separated scopes, as in a token response.
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Random per token, for revocation lists and audit.
    pub jti: String,
    /// The grant (consent) the token was issued under: revoking the grant ends the
    /// token before its `exp`, so validation checks the grant is still live.
    pub gid: String,
    /// The sign-in session (refresh-token family) the token was issued from: revoking
    /// that one session ends the token while other sessions of the grant go on.
    /// Optional so that tokens signed before the claim existed still validate; they
    /// are bound to their grant only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl AccessTokenClaims {
    /// The MCP scope granted by this token, if any.
    pub fn mcp_scope(&self) -> Result<Option<McpScope>, ScopeError> {
        granted_mcp_scope(&self.scope)
    }
}

/// What to put in a new access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenRequest<'a> {
    pub subject: &'a str,
    pub audience: &'a str,
    pub client_id: &'a str,
    pub scope: McpScope,
    pub lifetime: Duration,
    /// The grant's ID (claim `gid`).
    pub grant_id: &'a str,
    /// The refresh-token family's ID (claim `sid`); none only for tokens outside any
    /// sign-in session.
    pub session_id: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is longer than {MAX_TOKEN_LEN} bytes")]
    TooLarge,
    #[error("the token is not a JWS in compact serialization")]
    Malformed,
    #[error("the token algorithm {0} is not accepted; only EdDSA is")]
    UnsupportedAlgorithm(String),
    #[error("the token type {0:?} is not at+jwt")]
    WrongType(Option<String>),
    #[error("the token header member {0:?} is not accepted")]
    ForbiddenHeader(String),
    #[error("the token header has no key id")]
    MissingKid,
    #[error("the token key id {0:?} is not a current signing key")]
    UnknownKid(String),
    #[error("the token signature is invalid")]
    BadSignature,
    #[error("the token claims are invalid: {0}")]
    InvalidClaims(String),
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token is for another audience")]
    WrongAudience,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued in the future")]
    IssuedInFuture,
    #[error("the token lifetime is out of range")]
    InvalidLifetime,
    #[error("cannot sign the token: {0}")]
    Sign(String),
}

impl KeyRing {
    /// Signs a new access token with the current key. Returns the compact JWS and the
    /// claims in it (the caller may record the `jti`).
    pub fn issue(
        &self,
        issuer: &str,
        request: &AccessTokenRequest<'_>,
        now: OffsetDateTime,
    ) -> Result<(String, AccessTokenClaims), JwtError> {
        let iat = now.unix_timestamp();
        let exp = i64::try_from(request.lifetime.as_secs())
            .ok()
            .filter(|secs| *secs > 0)
            .and_then(|secs| iat.checked_add(secs))
            .ok_or(JwtError::InvalidLifetime)?;
        let mut jti = [0u8; 16];
        rand::rng().fill_bytes(&mut jti);
        let claims = AccessTokenClaims {
            iss: issuer.to_owned(),
            sub: request.subject.to_owned(),
            aud: request.audience.to_owned(),
            client_id: request.client_id.to_owned(),
            scope: request.scope.to_scope_string(),
            iat,
            exp,
            nbf: None,
            jti: URL_SAFE_NO_PAD.encode(jti),
            gid: request.grant_id.to_owned(),
            sid: request.session_id.map(str::to_owned),
        };
        let key = self.current();
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(key.kid().to_owned());
        let token = jsonwebtoken::encode(&header, &claims, key.encoding())
            .map_err(|e| JwtError::Sign(e.to_string()))?;
        Ok((token, claims))
    }

    /// Validates an access token: header allow-list, signature by a key of this ring,
    /// `iss` equal to `expected_iss`, `aud` equal to one of `allowed_audiences`, and
    /// `exp`/`nbf`/`iat` against `now` with `leeway` for clock skew.
    pub fn validate(
        &self,
        token: &str,
        expected_iss: &str,
        allowed_audiences: &[&str],
        now: OffsetDateTime,
        leeway: Duration,
    ) -> Result<AccessTokenClaims, JwtError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::TooLarge);
        }
        let kid = check_header(token)?;
        let key = self.find(&kid).ok_or(JwtError::UnknownKid(kid))?;

        // Signature only: every claim check is ours, with the caller's clock.
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<AccessTokenClaims>(token, key.decoding(), &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => JwtError::BadSignature,
                jsonwebtoken::errors::ErrorKind::Json(e) => JwtError::InvalidClaims(e.to_string()),
                _ => JwtError::Malformed,
            })?;
        let claims = data.claims;

        if claims.iss != expected_iss {
            return Err(JwtError::WrongIssuer);
        }
        if !allowed_audiences.contains(&claims.aud.as_str()) {
            return Err(JwtError::WrongAudience);
        }
        let now = now.unix_timestamp();
        let leeway = i64::try_from(leeway.as_secs()).unwrap_or(i64::MAX);
        if now >= claims.exp.saturating_add(leeway) {
            return Err(JwtError::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(leeway))
        {
            return Err(JwtError::NotYetValid);
        }
        if claims.iat > now.saturating_add(leeway) {
            return Err(JwtError::IssuedInFuture);
        }
        Ok(claims)
    }
}

/// Checks the protected header against the allow-list; returns the `kid`.
fn check_header(token: &str) -> Result<String, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    if header.is_empty() || payload.is_empty() || signature.is_empty() {
        return Err(JwtError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| JwtError::Malformed)?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)?;

    match header.get("alg") {
        Some(serde_json::Value::String(alg)) if alg == "EdDSA" => {}
        Some(serde_json::Value::String(alg)) => {
            return Err(JwtError::UnsupportedAlgorithm(alg.clone()));
        }
        Some(other) => return Err(JwtError::UnsupportedAlgorithm(other.to_string())),
        None => return Err(JwtError::UnsupportedAlgorithm("(missing)".into())),
    }
    if let Some(name) = header
        .keys()
        .find(|k| !matches!(k.as_str(), "alg" | "typ" | "kid"))
    {
        return Err(JwtError::ForbiddenHeader(name.clone()));
    }
    // Media types compare case-insensitively, and `application/` may be omitted
    // (RFC 7515 §4.1.9).
    let typ = header.get("typ").and_then(serde_json::Value::as_str);
    let typ_ok = typ.is_some_and(|t| {
        let t = t.to_ascii_lowercase();
        t == ACCESS_TOKEN_TYPE || t == "application/at+jwt"
    });
    if !typ_ok {
        return Err(JwtError::WrongType(
            header
                .get("typ")
                .map(|t| t.as_str().map_or_else(|| t.to_string(), str::to_owned)),
        ));
    }
    match header.get("kid") {
        Some(serde_json::Value::String(kid)) if !kid.is_empty() => Ok(kid.clone()),
        _ => Err(JwtError::MissingKid),
    }
}

#[cfg(test)]
mod tests;
