//! The provider's signing keys (JWKS, RFC 7517), fetched from the discovered
//! `jwks_uri`, cached for a while, and fetched again — at most once per
//! `min_refetch_interval` — when an id_token names a key the cache does not know
//! (the provider rotated its keys). The rate limit keeps a stream of tokens with made-up
//! `kid`s from turning into a stream of requests to the provider.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use url::Url;

use super::UpstreamError;
use super::http::{Auth, UpstreamHttp};
use super::id_token::IdTokenError;

/// RSA moduli below this are refused (NIST SP 800-131A).
pub const MIN_RSA_BITS: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Rsa,
    EcP256,
    EcP384,
}

impl KeyType {
    fn fits(self, alg: Algorithm) -> bool {
        match self {
            KeyType::Rsa => matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            KeyType::EcP256 => alg == Algorithm::ES256,
            KeyType::EcP384 => alg == Algorithm::ES384,
        }
    }
}

/// One usable verification key.
#[derive(Clone)]
pub struct VerificationKey {
    pub kid: Option<String>,
    pub key_type: KeyType,
    /// The key's `alg`, when it pins one.
    pub alg: Option<String>,
    pub key: DecodingKey,
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("key_type", &self.key_type)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Parses a JWK Set. Keys this client cannot use — encryption keys, other key types or
/// curves, RSA keys under [`MIN_RSA_BITS`], malformed members — are skipped, not fatal:
/// providers publish keys for other purposes next to their signing keys.
pub fn parse_jwks(body: &[u8]) -> Result<Vec<VerificationKey>, UpstreamError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| UpstreamError::InvalidResponse {
            what: "JWKS",
            detail: e.to_string(),
        })?;
    let keys = value
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| UpstreamError::InvalidResponse {
            what: "JWKS",
            detail: "no keys array".into(),
        })?;
    Ok(keys.iter().filter_map(parse_key).collect())
}

fn parse_key(jwk: &serde_json::Value) -> Option<VerificationKey> {
    let text = |name: &str| jwk.get(name).and_then(serde_json::Value::as_str);
    if text("use").is_some_and(|u| u != "sig") {
        return None;
    }
    if let Some(ops) = jwk.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|o| o.as_str() == Some("verify")));
        if !verifies {
            return None;
        }
    }
    let decoded_len = |name: &str| text(name).and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
    let (key_type, key) = match text("kty")? {
        "RSA" => {
            let n = decoded_len("n")?;
            let significant = n.iter().skip_while(|b| **b == 0).count();
            if significant * 8 < MIN_RSA_BITS {
                return None;
            }
            decoded_len("e")?;
            let key = DecodingKey::from_rsa_components(text("n")?, text("e")?).ok()?;
            (KeyType::Rsa, key)
        }
        "EC" => {
            let (key_type, len) = match text("crv")? {
                "P-256" => (KeyType::EcP256, 32),
                "P-384" => (KeyType::EcP384, 48),
                _ => return None,
            };
            if decoded_len("x")?.len() != len || decoded_len("y")?.len() != len {
                return None;
            }
            let key = DecodingKey::from_ec_components(text("x")?, text("y")?).ok()?;
            (key_type, key)
        }
        _ => return None,
    };
    Some(VerificationKey {
        kid: text("kid").map(str::to_owned),
        key_type,
        alg: text("alg").map(str::to_owned),
        key,
    })
}

/// Finds the key for a token signed with `alg` under `kid`.
pub fn select<'a>(
    keys: &'a [VerificationKey],
    alg: Algorithm,
    alg_name: &str,
    kid: Option<&str>,
) -> Result<&'a VerificationKey, IdTokenError> {
    let fits = |k: &&VerificationKey| {
        k.key_type.fits(alg) && k.alg.as_deref().is_none_or(|a| a == alg_name)
    };
    match kid {
        Some(kid) => {
            let mut named = keys.iter().filter(|k| k.kid.as_deref() == Some(kid));
            let first = named.clone().next();
            match (named.find(fits), first) {
                (Some(key), _) => Ok(key),
                (None, Some(_)) => Err(IdTokenError::KeyAlgorithmMismatch {
                    kid: kid.to_owned(),
                    alg: alg_name.to_owned(),
                }),
                (None, None) => Err(IdTokenError::UnknownKid(kid.to_owned())),
            }
        }
        // Without a kid the choice must be unambiguous (OIDC Core §10.1).
        None => {
            let mut candidates = keys.iter().filter(fits);
            match (candidates.next(), candidates.next()) {
                (Some(key), None) => Ok(key),
                (None, _) => Err(IdTokenError::NoMatchingKey),
                (Some(_), Some(_)) => Err(IdTokenError::AmbiguousKey),
            }
        }
    }
}

struct Entry {
    uri: Url,
    fetched: Instant,
    keys: Arc<Vec<VerificationKey>>,
}

/// One provider's key set.
pub(crate) struct JwksCache {
    ttl: Duration,
    min_refetch_interval: Duration,
    entry: Mutex<Option<Entry>>,
    /// Serializes refetches, so concurrent tokens with an unknown kid cause one.
    refetch: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("ttl", &self.ttl)
            .field("min_refetch_interval", &self.min_refetch_interval)
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    pub fn new(ttl: Duration, min_refetch_interval: Duration) -> Self {
        Self {
            ttl,
            min_refetch_interval,
            entry: Mutex::new(None),
            refetch: tokio::sync::Mutex::new(()),
        }
    }

    /// The key for (`alg`, `kid`): from the cache when fresh; else fetched; and fetched
    /// once more on a miss unless the last fetch is more recent than the refetch
    /// interval.
    pub async fn key_for(
        &self,
        http: &UpstreamHttp,
        uri: &Url,
        alg: Algorithm,
        alg_name: &str,
        kid: Option<&str>,
    ) -> Result<DecodingKey, UpstreamError> {
        let cached = self.cached(uri);
        let (keys, fetched_now) = match cached {
            Some((fetched, keys)) if fetched.elapsed() < self.ttl => (keys, false),
            _ => (self.fetch(http, uri).await?, true),
        };
        match select(&keys, alg, alg_name, kid) {
            Ok(key) => return Ok(key.key.clone()),
            Err(IdTokenError::UnknownKid(_) | IdTokenError::NoMatchingKey) if !fetched_now => {}
            Err(e) => return Err(e.into()),
        }
        let _one_at_a_time = self.refetch.lock().await;
        // Checked under the lock: a concurrent refetch may just have happened.
        let keys = match self.cached(uri) {
            Some((fetched, current)) if fetched.elapsed() < self.min_refetch_interval => current,
            _ => self.fetch(http, uri).await?,
        };
        Ok(select(&keys, alg, alg_name, kid)?.key.clone())
    }

    fn cached(&self, uri: &Url) -> Option<(Instant, Arc<Vec<VerificationKey>>)> {
        self.lock()
            .as_ref()
            .filter(|e| &e.uri == uri)
            .map(|e| (e.fetched, Arc::clone(&e.keys)))
    }

    async fn fetch(
        &self,
        http: &UpstreamHttp,
        uri: &Url,
    ) -> Result<Arc<Vec<VerificationKey>>, UpstreamError> {
        let response = http
            .get(
                "JWKS",
                uri,
                "application/jwk-set+json, application/json",
                Auth::None,
            )
            .await?;
        if response.status != 200 {
            return Err(UpstreamError::Status {
                what: "JWKS",
                status: response.status,
            });
        }
        let keys = Arc::new(parse_jwks(&response.body)?);
        *self.lock() = Some(Entry {
            uri: uri.clone(),
            fetched: Instant::now(),
            keys: Arc::clone(&keys),
        });
        Ok(keys)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Entry>> {
        self.entry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn rsa_jwk(kid: &str, bits: usize) -> serde_json::Value {
        let mut n = vec![0xc5u8; bits / 8];
        n[bits / 8 - 1] = 0x01;
        serde_json::json!({"kty": "RSA", "kid": kid, "use": "sig", "n": b64(&n), "e": "AQAB"})
    }

    fn ec_jwk(kid: &str) -> serde_json::Value {
        // The P-256 base point: a valid point, enough to build a key.
        serde_json::json!({
            "kty": "EC", "crv": "P-256", "kid": kid,
            "x": "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
            "y": "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU",
        })
    }

    fn parse(keys: serde_json::Value) -> Vec<VerificationKey> {
        parse_jwks(&serde_json::to_vec(&serde_json::json!({ "keys": keys })).unwrap()).unwrap()
    }

    #[test]
    fn unusable_keys_are_skipped() {
        let keys = parse(serde_json::json!([
            rsa_jwk("good", 2048),
            rsa_jwk("small", 1024),
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": b64(&[0xc5; 256]), "e": "AQAB"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA"},
            {"kty": "EC", "crv": "P-256", "kid": "short", "x": "AAAA", "y": "AAAA"},
            ec_jwk("ec"),
        ]));
        let kids: Vec<_> = keys.iter().map(|k| k.kid.clone().unwrap()).collect();
        assert_eq!(kids, ["good", "ec"]);
        assert_eq!(keys[1].key_type, KeyType::EcP256);
    }

    #[test]
    fn a_set_without_keys_is_invalid() {
        assert_eq!(
            parse_jwks(b"{}").unwrap_err(),
            UpstreamError::InvalidResponse {
                what: "JWKS",
                detail: "no keys array".into()
            }
        );
    }

    #[test]
    fn selection_by_kid_and_algorithm() {
        let keys = parse(serde_json::json!([rsa_jwk("r1", 2048), ec_jwk("e1")]));
        assert_eq!(
            select(&keys, Algorithm::RS256, "RS256", Some("r1"))
                .unwrap()
                .kid
                .as_deref(),
            Some("r1")
        );
        assert_eq!(
            select(&keys, Algorithm::ES256, "ES256", Some("e1"))
                .unwrap()
                .kid
                .as_deref(),
            Some("e1")
        );
        assert_eq!(
            select(&keys, Algorithm::ES256, "ES256", Some("r1")).unwrap_err(),
            IdTokenError::KeyAlgorithmMismatch {
                kid: "r1".into(),
                alg: "ES256".into()
            }
        );
        assert_eq!(
            select(&keys, Algorithm::RS256, "RS256", Some("nope")).unwrap_err(),
            IdTokenError::UnknownKid("nope".into())
        );
        // No kid: only an unambiguous choice is made.
        assert_eq!(
            select(&keys, Algorithm::RS256, "RS256", None)
                .unwrap()
                .kid
                .as_deref(),
            Some("r1")
        );
        let two = parse(serde_json::json!([rsa_jwk("a", 2048), rsa_jwk("b", 2048)]));
        assert_eq!(
            select(&two, Algorithm::RS256, "RS256", None).unwrap_err(),
            IdTokenError::AmbiguousKey
        );
        let pinned = parse(serde_json::json!([{
            "kty": "RSA", "kid": "p", "alg": "RS512", "n": b64(&[0xc5; 256]), "e": "AQAB"
        }]));
        assert_eq!(
            select(&pinned, Algorithm::RS256, "RS256", Some("p")).unwrap_err(),
            IdTokenError::KeyAlgorithmMismatch {
                kid: "p".into(),
                alg: "RS256".into()
            }
        );
    }
}
