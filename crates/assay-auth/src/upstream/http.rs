//! Outbound HTTP to identity providers: bounded in time and size, no redirects.
//!
//! The providers are chosen by the operator, not by a caller, so there is no SSRF guard
//! here (unlike [`crate::cimd`]), and the usual `HTTPS_PROXY`/`NO_PROXY` environment is
//! honoured (reqwest's default) for installations that reach the internet through a
//! proxy. Responses are read while counting bytes, since `Content-Length` may be absent
//! or wrong; redirects are not followed, because every endpoint is known exactly.

use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use url::Url;

use super::UpstreamError;
use crate::capped_body::{self, BodyError};

/// Tunables of the outbound client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    pub connect_timeout: Duration,
    /// For one whole request: connect, TLS, response and body.
    pub total_timeout: Duration,
    /// Largest response body accepted from any endpoint (discovery, JWKS, token, user).
    pub max_body_bytes: usize,
    pub user_agent: String,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(10),
            // Large JWKS with certificate chains run to tens of KB; nothing legitimate
            // comes near this.
            max_body_bytes: 256 * 1024,
            user_agent: concat!("assay/", env!("CARGO_PKG_VERSION"), " (sso)").to_owned(),
        }
    }
}

/// A response that was read whole, within the cap.
#[derive(Debug)]
pub(crate) struct BoundedResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl BoundedResponse {
    pub fn json<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
    ) -> Result<T, UpstreamError> {
        serde_json::from_slice(&self.body).map_err(|e| UpstreamError::InvalidResponse {
            what,
            detail: e.to_string(),
        })
    }
}

/// How the client authenticates a request.
pub(crate) enum Auth<'a> {
    None,
    /// `Authorization: Basic` with both parts form-encoded first (RFC 6749 §2.3.1).
    ClientSecretBasic {
        id: &'a str,
        secret: &'a str,
    },
    Bearer(&'a str),
}

#[derive(Clone)]
pub(crate) struct UpstreamHttp {
    client: reqwest::Client,
    max_body_bytes: usize,
}

impl std::fmt::Debug for UpstreamHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamHttp")
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

impl UpstreamHttp {
    pub fn new(settings: &HttpSettings) -> Result<Self, UpstreamError> {
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(&settings.user_agent)
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.total_timeout)
            .build()
            .map_err(|e| UpstreamError::Internal(e.to_string()))?;
        Ok(Self {
            client,
            max_body_bytes: settings.max_body_bytes,
        })
    }

    pub async fn get(
        &self,
        what: &'static str,
        url: &Url,
        accept: &'static str,
        auth: Auth<'_>,
    ) -> Result<BoundedResponse, UpstreamError> {
        let request = self
            .client
            .get(url.clone())
            .header(ACCEPT, HeaderValue::from_static(accept));
        self.send(what, with_auth(request, auth)?).await
    }

    /// POSTs `application/x-www-form-urlencoded` pairs.
    pub async fn post_form(
        &self,
        what: &'static str,
        url: &Url,
        form: &[(&str, &str)],
        auth: Auth<'_>,
    ) -> Result<BoundedResponse, UpstreamError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .client
            .post(url.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            )
            .body(body);
        self.send(what, with_auth(request, auth)?).await
    }

    async fn send(
        &self,
        what: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<BoundedResponse, UpstreamError> {
        let mut response = request.send().await.map_err(|e| transport(what, &e))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(UpstreamError::Status {
                what,
                status: status.as_u16(),
            });
        }
        let limit = self.max_body_bytes;
        let body = capped_body::read_capped(&mut response, limit)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge => UpstreamError::TooLarge { what, limit },
                BodyError::Transport(e) => transport(what, &e),
            })?;
        Ok(BoundedResponse {
            status: status.as_u16(),
            body,
        })
    }
}

fn with_auth(
    request: reqwest::RequestBuilder,
    auth: Auth<'_>,
) -> Result<reqwest::RequestBuilder, UpstreamError> {
    use base64::Engine as _;
    let value = zeroize::Zeroizing::new(match auth {
        Auth::None => return Ok(request),
        Auth::ClientSecretBasic { id, secret } => {
            let encode =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = zeroize::Zeroizing::new(format!("{}:{}", encode(id), encode(secret)));
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair.as_bytes())
            )
        }
        Auth::Bearer(token) => format!("Bearer {token}"),
    });
    let mut value = HeaderValue::from_str(&value)
        .map_err(|_| UpstreamError::Internal("credentials are not a valid header value".into()))?;
    value.set_sensitive(true);
    Ok(request.header(AUTHORIZATION, value))
}

/// The error of a failed request. reqwest's message names the URL, which is the
/// provider's public endpoint: no secret is in it (credentials travel in headers and
/// bodies, never in URLs).
fn transport(what: &'static str, e: &reqwest::Error) -> UpstreamError {
    if e.is_timeout() {
        return UpstreamError::Timeout { what };
    }
    UpstreamError::Transport {
        what,
        message: capped_body::error_chain(e),
    }
}
