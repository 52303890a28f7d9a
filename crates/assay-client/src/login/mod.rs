//! Signing in to an Assay server with OAuth: discovery (RFC 9728, RFC 8414), the browser
//! flow with a loopback redirect (RFC 8252, PKCE), the device flow (RFC 8628) and token
//! revocation (RFC 7009). Every function takes the HTTP client from
//! [`crate::oauth_http_client`], so TLS settings and proxies apply and no redirect is
//! followed (a followed 307/308 would resend a code or refresh token elsewhere).
//!
//! Errors are `assay_core::Error`s whose text tells the user what to do: `Unauthenticated`
//! for a login that was refused, expired or tampered with; `Unavailable` for a server
//! that cannot be reached; `Invalid` for a server that is not what it claims to be.

mod browser;
mod device;

pub use browser::browser_login;
#[cfg(test)]
pub(crate) use browser::code_challenge as code_challenge_of;
#[cfg(test)]
pub(crate) use device::device_login_with;
pub use device::{DeviceCode, device_login};

use crate::TokenSet;
use assay_core::{Error, Result};
use serde::Deserialize;
use std::time::Duration;
use url::Url;

/// The first-party client of the `assay` CLI, pre-registered on every server.
pub const CLI_CLIENT_ID: &str = "assay-cli";
/// What the CLI asks for: the user's own level (the server caps a CLI grant of the top
/// MCP scope at the user's role, nothing more).
pub const CLI_SCOPE: &str = "mcp:write";
/// Default time the browser flow waits for the user.
pub const DEFAULT_BROWSER_TIMEOUT: Duration = Duration::from_secs(5 * 60);

const AUTHORIZATION_SERVER_WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";
const PROTECTED_RESOURCE_WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";
/// Longest wait for one answer of an OAuth endpoint.
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(30);
/// Discovery documents and error bodies are small; anything larger is not ours.
const MAX_BODY: usize = 256 * 1024;

/// What the server says about itself: its RFC 8414 authorization server metadata, plus
/// the base resource from its RFC 9728 protected resource metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthServerMetadata {
    /// The server's public URL without a trailing slash.
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub device_authorization_endpoint: Option<Url>,
    pub revocation_endpoint: Option<Url>,
    pub scopes_supported: Vec<String>,
    /// RFC 9207: authorization responses carry `iss`, and one without it is refused.
    pub authorization_response_iss_parameter_supported: bool,
    /// The server as a whole (RFC 8707 `resource`): the value to pass as `resource` to
    /// [`browser_login`] and [`device_login`] for tokens that work on the REST API.
    pub resource: String,
}

#[derive(Deserialize)]
struct RawMetadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    #[serde(default)]
    device_authorization_endpoint: Option<String>,
    #[serde(default)]
    revocation_endpoint: Option<String>,
    #[serde(default)]
    scopes_supported: Vec<String>,
    #[serde(default)]
    code_challenge_methods_supported: Vec<String>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

#[derive(Deserialize)]
struct RawResourceMetadata {
    resource: String,
    #[serde(default)]
    authorization_servers: Vec<String>,
}

/// The issuer spelling of a base URL: as the server writes it, without a trailing slash.
fn issuer_of(base: &Url) -> String {
    format!(
        "{}{}",
        base.origin().ascii_serialization(),
        base.path().trim_end_matches('/')
    )
}

/// RFC 8414 §3.1 / RFC 9728 §3.1: the well-known segment goes between host and path.
fn well_known(base: &Url, segment: &str) -> Result<Url> {
    let url = format!(
        "{}{segment}{}",
        base.origin().ascii_serialization(),
        base.path().trim_end_matches('/')
    );
    Url::parse(&url).map_err(|e| Error::invalid("url", format!("{url}: {e}")))
}

/// Reads the server's discovery documents at `base` (its public URL).
///
/// The issuer must be `base` itself (trailing slash aside), every endpoint must be on the
/// issuer's origin (scheme, host and port: codes and refresh tokens go nowhere else, not
/// even to plain `http` under an `https` issuer) and PKCE S256 must be supported. A
/// server whose public URL differs from `base` is refused with a message naming the URL
/// to use.
pub async fn discover(http: &reqwest::Client, base: &Url) -> Result<AuthServerMetadata> {
    let expected = issuer_of(base);
    let prm_url = well_known(base, PROTECTED_RESOURCE_WELL_KNOWN)?;
    let prm: RawResourceMetadata = get_json(http, &prm_url).await?;
    if !prm.authorization_servers.iter().any(|s| s == &expected) {
        return Err(not_this_server(
            base,
            prm.authorization_servers.first().map(String::as_str),
        ));
    }
    let meta_url = well_known(base, AUTHORIZATION_SERVER_WELL_KNOWN)?;
    let raw: RawMetadata = get_json(http, &meta_url).await?;
    if raw.issuer != expected {
        return Err(not_this_server(base, Some(&raw.issuer)));
    }
    if !raw.code_challenge_methods_supported.is_empty()
        && !raw
            .code_challenge_methods_supported
            .iter()
            .any(|m| m == "S256")
    {
        return Err(Error::invalid(
            "url",
            format!("{expected} does not support PKCE S256, which login requires"),
        ));
    }
    let endpoint = |what: &str, url: &str| endpoint_of(base, what, url);
    Ok(AuthServerMetadata {
        authorization_endpoint: endpoint("authorization_endpoint", &raw.authorization_endpoint)?,
        token_endpoint: endpoint("token_endpoint", &raw.token_endpoint)?,
        device_authorization_endpoint: raw
            .device_authorization_endpoint
            .as_deref()
            .map(|u| endpoint("device_authorization_endpoint", u))
            .transpose()?,
        revocation_endpoint: raw
            .revocation_endpoint
            .as_deref()
            .map(|u| endpoint("revocation_endpoint", u))
            .transpose()?,
        scopes_supported: raw.scopes_supported,
        authorization_response_iss_parameter_supported: raw
            .authorization_response_iss_parameter_supported,
        issuer: raw.issuer,
        resource: prm.resource,
    })
}

/// An endpoint from the metadata of the server at `base`: an `http(s)` URL on `base`'s
/// origin. Anywhere else (another host or port, or `http` under an `https` issuer) the
/// codes, refresh tokens and revocations sent there would leave the server.
pub(crate) fn endpoint_of(base: &Url, what: &str, url: &str) -> Result<Url> {
    let parsed = Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| {
            Error::invalid(
                "url",
                format!("the server's metadata has an invalid {what}: {url:?}"),
            )
        })?;
    let origin = base.origin();
    if parsed.origin() != origin {
        return Err(Error::invalid(
            "url",
            format!(
                "the server's metadata puts its {what} at {}, outside {}; refusing to send \
                 credentials there (the server's public URL is misconfigured, or this is not \
                 the server it claims to be)",
                display(&parsed),
                origin.ascii_serialization()
            ),
        ));
    }
    Ok(parsed)
}

fn not_this_server(base: &Url, actual: Option<&str>) -> Error {
    let expected = issuer_of(base);
    match actual {
        Some(actual) => Error::invalid(
            "url",
            format!(
                "the server at {expected} calls itself {actual}; log in with that URL \
                 (its configured public URL)"
            ),
        ),
        None => Error::invalid(
            "url",
            format!("the server at {expected} names no authorization server"),
        ),
    }
}

async fn get_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &Url) -> Result<T> {
    let resp = http
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .timeout(ENDPOINT_TIMEOUT)
        .send()
        .await
        .map_err(|e| transport_error(url, &e))?;
    let status = resp.status();
    if status.is_redirection() {
        let to = redirect_target(&resp, url);
        return Err(Error::invalid(
            "url",
            format!(
                "{} answered {status}, redirecting to {to}; log in with the server's public URL",
                display(url)
            ),
        ));
    }
    let body = read_bounded(resp, url).await?;
    if status == reqwest::StatusCode::NOT_FOUND {
        return Err(Error::invalid(
            "url",
            format!("{url} answered 404: is this an Assay server with a public URL configured?"),
        ));
    }
    if !status.is_success() {
        return Err(Error::Unavailable(format!(
            "{url} answered {status}: {}",
            crate::problem::snippet(&body)
        )));
    }
    serde_json::from_slice(&body).map_err(|e| {
        Error::invalid(
            "url",
            format!("{url} did not answer with the expected document: {e}"),
        )
    })
}

async fn read_bounded(mut resp: reqwest::Response, url: &Url) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| transport_error(url, &e))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            return Err(Error::Unavailable(format!(
                "{url} answered with more than {MAX_BODY} bytes"
            )));
        }
    }
    Ok(body)
}

/// Origin and path only: a query may hold a secret.
fn display(url: &Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}

/// Where a redirect answer points, for the error message.
fn redirect_target(resp: &reqwest::Response, from: &Url) -> String {
    resp.headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| from.join(l).ok())
        .map_or_else(|| "elsewhere".to_owned(), |u| display(&u))
}

fn transport_error(url: &Url, e: &reqwest::Error) -> Error {
    let cause = crate::transport::root_cause(e);
    let at = display(url);
    if e.is_timeout() {
        Error::Unavailable(format!("no answer from {at} in time; try again"))
    } else {
        Error::Unavailable(format!("{} {at}: {cause}", crate::CANNOT_REACH))
    }
}

/// A successful token endpoint answer (RFC 6749 §5.1).
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// How a call to a token-style endpoint failed.
#[derive(Debug)]
pub(crate) enum EndpointError {
    /// An RFC 6749 §5.2 error answer.
    OAuth {
        status: u16,
        error: String,
        description: String,
    },
    /// Transport failure or an answer that is not OAuth's.
    Other(Error),
}

impl EndpointError {
    /// As an `assay_core::Error`, for errors the caller has no special meaning for.
    pub(crate) fn into_error(self, doing: &str) -> Error {
        match self {
            Self::Other(e) => e,
            Self::OAuth {
                status,
                error,
                description,
            } => {
                let what = if description.is_empty() {
                    error.clone()
                } else {
                    format!("{error}: {description}")
                };
                match (status, error.as_str()) {
                    (429, _) | (500.., _) | (_, "temporarily_unavailable") => {
                        Error::Unavailable(format!("{doing} failed, try again later ({what})"))
                    }
                    (_, "access_denied" | "invalid_grant" | "invalid_client") => {
                        Error::Unauthenticated(format!("{doing} was refused ({what})"))
                    }
                    _ => Error::Internal(format!("{doing} failed ({what})")),
                }
            }
        }
    }
}

/// POSTs a form to an OAuth endpoint and reads the answer as a JSON body.
async fn post_form(
    http: &reqwest::Client,
    endpoint: &Url,
    form: &[(&str, &str)],
    timeout: Duration,
) -> std::result::Result<(u16, Vec<u8>), EndpointError> {
    // Encoded here rather than with reqwest's optional `form` feature.
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let resp = http
        .post(endpoint.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| EndpointError::Other(transport_error(endpoint, &e)))?;
    let status = resp.status().as_u16();
    if resp.status().is_redirection() {
        // Only reached with a client that does not follow redirects; the body went to
        // `endpoint` alone.
        let to = redirect_target(&resp, endpoint);
        return Err(EndpointError::Other(Error::invalid(
            "url",
            format!(
                "{} answered {status}, redirecting to {to}; OAuth requests carry credentials \
                 and are not redirected: use the server's public URL",
                display(endpoint)
            ),
        )));
    }
    let body = read_bounded(resp, endpoint)
        .await
        .map_err(EndpointError::Other)?;
    if (200..300).contains(&status) {
        return Ok((status, body));
    }
    Err(match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(e) => EndpointError::OAuth {
            status,
            error: e.error,
            description: e.error_description.unwrap_or_default(),
        },
        Err(_) if status >= 500 || status == 429 => EndpointError::Other(Error::Unavailable(
            format!("{endpoint} answered {status}; try again later"),
        )),
        Err(_) => EndpointError::Other(Error::Internal(format!(
            "{endpoint} answered {status}: {}",
            crate::problem::snippet(&body)
        ))),
    })
}

/// A token endpoint request; the answer's secrets go nowhere but the return value.
pub(crate) async fn token_request(
    http: &reqwest::Client,
    endpoint: &Url,
    form: &[(&str, &str)],
    timeout: Duration,
) -> std::result::Result<TokenResponse, EndpointError> {
    let (_, body) = post_form(http, endpoint, form, timeout).await?;
    let tokens: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
        // Not quoting the body: it may hold a token.
        EndpointError::Other(Error::Internal(format!(
            "unexpected answer from {endpoint}: {e}"
        )))
    })?;
    if let Some(kind) = tokens.token_type.as_deref()
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(EndpointError::Other(Error::Internal(format!(
            "{endpoint} issued a {kind:?} token; only Bearer tokens are supported"
        ))));
    }
    Ok(tokens)
}

/// Exchanges a grant at the token endpoint for a [`TokenSet`].
async fn obtain_tokens(
    http: &reqwest::Client,
    meta: &AuthServerMetadata,
    form: &[(&str, &str)],
) -> std::result::Result<TokenSet, EndpointError> {
    let response = token_request(http, &meta.token_endpoint, form, ENDPOINT_TIMEOUT).await?;
    Ok(TokenSet::from_response(
        response,
        time::OffsetDateTime::now_utc(),
    ))
}

/// RFC 7009: revokes `token` (`hint`: `refresh_token` or `access_token`). Revoking a
/// refresh token ends the whole login on the server. The server answers success for
/// unknown tokens too.
///
/// Errors: `Refused` when the server offers no revocation endpoint.
pub async fn revoke(
    http: &reqwest::Client,
    meta: &AuthServerMetadata,
    client_id: &str,
    token: &str,
    hint: &str,
) -> Result<()> {
    let Some(endpoint) = &meta.revocation_endpoint else {
        return Err(Error::Refused(format!(
            "{} offers no token revocation",
            meta.issuer
        )));
    };
    let form = [
        ("token", token),
        ("token_type_hint", hint),
        ("client_id", client_id),
    ];
    post_form(http, endpoint, &form, ENDPOINT_TIMEOUT)
        .await
        .map(drop)
        .map_err(|e| e.into_error("revoking the token"))
}
