//! OpenID Connect Discovery 1.0: the provider's metadata document, fetched from
//! `<issuer>/.well-known/openid-configuration` and kept for a while.
//!
//! The document's `issuer` must equal the configured issuer byte for byte (Discovery
//! §4.3): otherwise a document served at one URL could speak for another issuer (the
//! mix-up attack). Endpoints must be https (http only on loopback, like the issuer).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use url::Url;

use super::UpstreamError;
use super::config::is_secure_endpoint;
use super::http::{Auth, UpstreamHttp};

/// The parts of the provider metadata that a code flow uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub jwks_uri: Url,
    pub token_auth: TokenEndpointAuth,
    /// Algorithms the provider may sign id_tokens with, as it declares them.
    pub id_token_signing_alg_values_supported: Vec<String>,
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenEndpointAuth {
    ClientSecretBasic,
    ClientSecretPost,
}

#[derive(Deserialize)]
struct RawMetadata {
    issuer: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    jwks_uri: Option<String>,
    #[serde(default)]
    response_types_supported: Option<Vec<String>>,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    id_token_signing_alg_values_supported: Option<Vec<String>>,
}

/// The discovery URL of an issuer: a trailing `/` of the issuer is dropped before the
/// well-known suffix is appended (Discovery §4).
pub fn discovery_url(issuer: &str) -> Result<Url, UpstreamError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    Url::parse(&url).map_err(|e| UpstreamError::InvalidDiscovery(format!("issuer URL: {e}")))
}

/// Checks a fetched document against the configured issuer.
pub fn parse_metadata(body: &[u8], issuer: &str) -> Result<ProviderMetadata, UpstreamError> {
    let raw: RawMetadata =
        serde_json::from_slice(body).map_err(|e| UpstreamError::InvalidResponse {
            what: "discovery document",
            detail: e.to_string(),
        })?;
    let found = raw
        .issuer
        .ok_or_else(|| UpstreamError::InvalidDiscovery("issuer is missing".into()))?;
    if found != issuer {
        return Err(UpstreamError::IssuerMismatch {
            expected: issuer.to_owned(),
            found,
        });
    }
    let endpoint = |name: &'static str, value: Option<String>| -> Result<Url, UpstreamError> {
        let value =
            value.ok_or_else(|| UpstreamError::InvalidDiscovery(format!("{name} is missing")))?;
        let url = Url::parse(&value)
            .map_err(|e| UpstreamError::InvalidDiscovery(format!("{name} {value:?}: {e}")))?;
        if !is_secure_endpoint(&url) || url.fragment().is_some() {
            return Err(UpstreamError::InvalidDiscovery(format!(
                "{name} {value:?} must be an https URL (http only on loopback) without fragment"
            )));
        }
        Ok(url)
    };
    let authorization_endpoint = endpoint("authorization_endpoint", raw.authorization_endpoint)?;
    let token_endpoint = endpoint("token_endpoint", raw.token_endpoint)?;
    let jwks_uri = endpoint("jwks_uri", raw.jwks_uri)?;
    if raw
        .response_types_supported
        .is_some_and(|types| !types.iter().any(|t| t == "code"))
    {
        return Err(UpstreamError::InvalidDiscovery(
            "response_types_supported does not include code".into(),
        ));
    }
    // Discovery §3: absent means client_secret_basic. Basic is preferred when both are
    // offered, as it keeps the secret out of bodies that proxies might log.
    let token_auth = match raw.token_endpoint_auth_methods_supported {
        None => TokenEndpointAuth::ClientSecretBasic,
        Some(methods) if methods.iter().any(|m| m == "client_secret_basic") => {
            TokenEndpointAuth::ClientSecretBasic
        }
        Some(methods) if methods.iter().any(|m| m == "client_secret_post") => {
            TokenEndpointAuth::ClientSecretPost
        }
        Some(methods) => {
            return Err(UpstreamError::InvalidDiscovery(format!(
                "token_endpoint_auth_methods_supported {methods:?} offers neither client_secret_basic nor client_secret_post"
            )));
        }
    };
    Ok(ProviderMetadata {
        issuer: found,
        authorization_endpoint,
        token_endpoint,
        jwks_uri,
        token_auth,
        // Discovery §3 makes this REQUIRED and says RS256 MUST be included; a provider
        // that leaves it out is taken to mean RS256.
        id_token_signing_alg_values_supported: raw
            .id_token_signing_alg_values_supported
            .unwrap_or_else(|| vec!["RS256".to_owned()]),
    })
}

/// The metadata of one issuer, fetched on first use and again after `ttl`. Failures
/// are not cached.
#[derive(Debug)]
pub(crate) struct DiscoveryCache {
    issuer: String,
    ttl: Duration,
    entry: Mutex<Option<(Instant, Arc<ProviderMetadata>)>>,
}

impl DiscoveryCache {
    pub fn new(issuer: String, ttl: Duration) -> Self {
        Self {
            issuer,
            ttl,
            entry: Mutex::new(None),
        }
    }

    pub async fn get(&self, http: &UpstreamHttp) -> Result<Arc<ProviderMetadata>, UpstreamError> {
        if let Some((fetched, metadata)) = self.lock().as_ref()
            && fetched.elapsed() < self.ttl
        {
            return Ok(Arc::clone(metadata));
        }
        let url = discovery_url(&self.issuer)?;
        let response = http
            .get("discovery document", &url, "application/json", Auth::None)
            .await?;
        if response.status != 200 {
            return Err(UpstreamError::Status {
                what: "discovery document",
                status: response.status,
            });
        }
        let metadata = Arc::new(parse_metadata(&response.body, &self.issuer)?);
        *self.lock() = Some((Instant::now(), Arc::clone(&metadata)));
        Ok(metadata)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Arc<ProviderMetadata>)>> {
        self.entry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const ISSUER: &str = "https://idp.example.com/realms/corp";

    fn doc(extra: serde_json::Value) -> Vec<u8> {
        let mut d = serde_json::json!({
            "issuer": ISSUER,
            "authorization_endpoint": "https://idp.example.com/auth",
            "token_endpoint": "https://idp.example.com/token",
            "jwks_uri": "https://idp.example.com/certs",
            "response_types_supported": ["code", "id_token"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        });
        for (k, v) in extra.as_object().unwrap() {
            d[k] = v.clone();
        }
        serde_json::to_vec(&d).unwrap()
    }

    #[test]
    fn discovery_urls_drop_one_trailing_slash_only_for_the_suffix() {
        assert_eq!(
            discovery_url("https://accounts.google.com")
                .unwrap()
                .as_str(),
            "https://accounts.google.com/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://idp.example.com/realms/corp/")
                .unwrap()
                .as_str(),
            "https://idp.example.com/realms/corp/.well-known/openid-configuration"
        );
    }

    #[test]
    fn a_valid_document() {
        let m = parse_metadata(&doc(serde_json::json!({})), ISSUER).unwrap();
        assert_eq!(m.issuer, ISSUER);
        assert_eq!(m.token_endpoint.as_str(), "https://idp.example.com/token");
        assert_eq!(m.token_auth, TokenEndpointAuth::ClientSecretBasic);
        assert_eq!(m.id_token_signing_alg_values_supported, ["RS256", "ES256"]);
        let post = parse_metadata(
            &doc(serde_json::json!({"token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_post"]})),
            ISSUER,
        )
        .unwrap();
        assert_eq!(post.token_auth, TokenEndpointAuth::ClientSecretPost);
    }

    #[test]
    fn the_issuer_must_match_byte_for_byte() {
        for other in [
            "https://idp.example.com/realms/corp/",
            "https://IDP.example.com/realms/corp",
            "https://evil.example/realms/corp",
        ] {
            assert_eq!(
                parse_metadata(&doc(serde_json::json!({ "issuer": other })), ISSUER),
                Err(UpstreamError::IssuerMismatch {
                    expected: ISSUER.into(),
                    found: other.into()
                })
            );
        }
    }

    #[test]
    fn insecure_or_incomplete_documents_are_refused() {
        assert_eq!(
            parse_metadata(
                &doc(serde_json::json!({"token_endpoint": "http://idp.example.com/token"})),
                ISSUER
            ),
            Err(UpstreamError::InvalidDiscovery(
                "token_endpoint \"http://idp.example.com/token\" must be an https URL (http only on loopback) without fragment".into()
            ))
        );
        assert_eq!(
            parse_metadata(
                &doc(serde_json::json!({"jwks_uri": serde_json::Value::Null})),
                ISSUER
            ),
            Err(UpstreamError::InvalidDiscovery(
                "jwks_uri is missing".into()
            ))
        );
        assert_eq!(
            parse_metadata(
                &doc(serde_json::json!({"response_types_supported": ["id_token"]})),
                ISSUER
            ),
            Err(UpstreamError::InvalidDiscovery(
                "response_types_supported does not include code".into()
            ))
        );
        assert_eq!(
            parse_metadata(
                &doc(serde_json::json!({"token_endpoint_auth_methods_supported": ["private_key_jwt"]})),
                ISSUER
            ),
            Err(UpstreamError::InvalidDiscovery(
                "token_endpoint_auth_methods_supported [\"private_key_jwt\"] offers neither client_secret_basic nor client_secret_post".into()
            ))
        );
    }
}
