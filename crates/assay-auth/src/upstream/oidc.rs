//! The OpenID Connect authorization code flow with PKCE (OIDC Core §3.1, RFC 7636).

use serde::Deserialize;
use time::OffsetDateTime;
use url::Url;

use super::discovery::{DiscoveryCache, ProviderMetadata, TokenEndpointAuth};
use super::http::{Auth, UpstreamHttp};
use super::id_token::{self, Expected};
use super::jwks::JwksCache;
use super::{PendingLogin, ProviderSettings, UpstreamError, UpstreamIdentity, UpstreamOptions};
use crate::pkce;

#[derive(Debug)]
pub(crate) struct OidcFlow {
    issuer: String,
    discovery: DiscoveryCache,
    jwks: JwksCache,
    leeway: std::time::Duration,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
}

impl OidcFlow {
    pub fn new(issuer: &str, options: &UpstreamOptions) -> Self {
        Self {
            issuer: issuer.to_owned(),
            discovery: DiscoveryCache::new(issuer.to_owned(), options.discovery_ttl),
            jwks: JwksCache::new(options.jwks_ttl, options.jwks_min_refetch_interval),
            leeway: options.id_token_leeway,
        }
    }

    pub async fn authorization_endpoint(&self, http: &UpstreamHttp) -> Result<Url, UpstreamError> {
        Ok(self
            .discovery
            .get(http)
            .await?
            .authorization_endpoint
            .clone())
    }

    pub async fn authorization_url(
        &self,
        http: &UpstreamHttp,
        settings: &ProviderSettings,
        pending: &PendingLogin,
    ) -> Result<Url, UpstreamError> {
        let mut url = self.authorization_endpoint(http).await?;
        let challenge = pkce::s256_challenge(&pending.code_verifier);
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &settings.client_id)
                .append_pair("redirect_uri", &pending.redirect_uri)
                .append_pair("scope", &settings.scopes.join(" "))
                .append_pair("state", &pending.state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            if let Some(nonce) = &pending.nonce {
                query.append_pair("nonce", nonce);
            }
        }
        Ok(url)
    }

    pub async fn finish(
        &self,
        http: &UpstreamHttp,
        settings: &ProviderSettings,
        pending: &PendingLogin,
        code: &str,
        response_iss: Option<&str>,
    ) -> Result<UpstreamIdentity, UpstreamError> {
        // RFC 9207: a provider that names itself in the response must name itself.
        if let Some(found) = response_iss
            && found != self.issuer
        {
            return Err(UpstreamError::ResponseIssuerMismatch {
                found: found.to_owned(),
            });
        }
        let nonce = pending
            .nonce
            .as_deref()
            .ok_or_else(|| UpstreamError::Internal("an OIDC login without nonce".into()))?;
        let metadata = self.discovery.get(http).await?;
        let secret = settings.client_secret.expose();
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", pending.redirect_uri.as_str()),
            ("code_verifier", pending.code_verifier.as_str()),
        ];
        let auth = match metadata.token_auth {
            TokenEndpointAuth::ClientSecretBasic => Auth::ClientSecretBasic {
                id: &settings.client_id,
                secret,
            },
            TokenEndpointAuth::ClientSecretPost => {
                form.push(("client_id", &settings.client_id));
                form.push(("client_secret", secret));
                Auth::None
            }
        };
        let response = http
            .post_form("token", &metadata.token_endpoint, &form, auth)
            .await?;
        if response.status != 200 {
            return Err(super::token_refusal(&response));
        }
        let tokens: TokenResponse = response.json("token")?;
        if !tokens
            .token_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer"))
        {
            return Err(UpstreamError::InvalidResponse {
                what: "token",
                detail: "token_type is not Bearer".into(),
            });
        }
        let token = tokens.id_token.ok_or(UpstreamError::MissingIdToken)?;

        let claims = self
            .validate_id_token(
                http,
                &metadata,
                &settings.client_id,
                &token,
                nonce,
                OffsetDateTime::now_utc(),
            )
            .await?;
        Ok(UpstreamIdentity {
            provider_id: settings.id.clone(),
            subject: claims.subject,
            email: claims.email,
            email_verified: claims.email_verified,
            name: claims.name,
        })
    }

    /// Checks an id_token against this provider's discovered keys and the login's
    /// nonce.
    pub(crate) async fn validate_id_token(
        &self,
        http: &UpstreamHttp,
        metadata: &ProviderMetadata,
        client_id: &str,
        token: &str,
        nonce: &str,
        now: OffsetDateTime,
    ) -> Result<id_token::IdTokenClaims, UpstreamError> {
        let header = id_token::read_header(token, &metadata.id_token_signing_alg_values_supported)?;
        let key = self
            .jwks
            .key_for(
                http,
                &metadata.jwks_uri,
                header.alg,
                &header.alg_name,
                header.kid.as_deref(),
            )
            .await?;
        let expected = Expected {
            issuer: &self.issuer,
            client_id,
            nonce,
            now,
            leeway: self.leeway,
        };
        Ok(id_token::verify(token, &header, &key, &expected)?)
    }
}

#[cfg(test)]
impl OidcFlow {
    /// Validates an id_token as a login would, through discovery and the JWKS cache.
    pub async fn check_id_token(
        &self,
        http: &UpstreamHttp,
        client_id: &str,
        token: &str,
        nonce: &str,
        now: OffsetDateTime,
    ) -> Result<id_token::IdTokenClaims, UpstreamError> {
        let metadata = self.discovery.get(http).await?;
        self.validate_id_token(http, &metadata, client_id, token, nonce, now)
            .await
    }
}
