//! Validating an authorization request (OAuth 2.1 §4.1.1, RFC 7636, RFC 8707, RFC 9207).
//!
//! Order matters: until the client and its redirect URI are trusted, nothing may be sent
//! to that URI — an unknown client or an unregistered redirect gets an error page. After
//! that, every problem goes back to the client as an error redirect carrying `state` and
//! `iss`.

use super::clients::ResolvedClient;
use super::params::given;
use super::{
    AuthorizationServer, AuthorizeParams, AuthorizeRejection, AuthorizeRequest, OAuthError,
    RequestContext,
};
use assay_auth::pkce;
use assay_auth::redirect;
use assay_auth::scope::{McpScope, ScopeRequest};
use url::Url;

/// Longest `state` echoed back; a client needs far less (it is a CSRF nonce).
pub const MAX_STATE_LEN: usize = 1024;

impl AuthorizationServer {
    pub async fn begin_authorization(
        &self,
        p: &AuthorizeParams,
        ctx: &RequestContext,
    ) -> Result<AuthorizeRequest, AuthorizeRejection> {
        let public = self.public().map_err(page)?;
        let issuer = public.issuer();
        for trusted in ["client_id", "redirect_uri"] {
            if p.repeated.iter().any(|r| r == trusted) {
                return Err(page(OAuthError::invalid_request(format!(
                    "{trusted} was sent more than once"
                ))));
            }
        }
        let client_id = given(&p.client_id)
            .ok_or_else(|| page(OAuthError::invalid_request("client_id is required")))?;
        let client = self.resolve_client(client_id, ctx).await.map_err(page)?;
        let redirect_uri = trusted_redirect(&client, given(&p.redirect_uri)).map_err(page)?;
        let fail = |e: OAuthError| AuthorizeRejection::Redirect {
            location: error_location(&redirect_uri, &e, given(&p.state), &issuer),
        };

        if let Some(name) = p.repeated.first() {
            return Err(fail(if name == "resource" {
                OAuthError::invalid_target("only one resource may be requested")
            } else {
                OAuthError::invalid_request(format!("{name} was sent more than once"))
            }));
        }
        let state = given(&p.state).map(str::to_owned);
        if state.as_ref().is_some_and(|s| s.len() > MAX_STATE_LEN) {
            return Err(fail(OAuthError::invalid_request(format!(
                "state is longer than {MAX_STATE_LEN} characters"
            ))));
        }
        match given(&p.response_type) {
            Some("code") => {}
            None => {
                return Err(fail(OAuthError::invalid_request(
                    "response_type is required",
                )));
            }
            Some(_) => {
                return Err(fail(OAuthError {
                    error: "unsupported_response_type",
                    ..OAuthError::invalid_request("only response_type=code is supported")
                }));
            }
        }
        let code_challenge = pkce_challenge(p).map_err(fail)?;
        let scope = ScopeRequest::parse(p.scope.as_deref().unwrap_or_default())
            .map_err(|e| fail(OAuthError::invalid_scope(e.to_string())))?;
        let resource = self
            .resolve_resource(given(&p.resource))
            .await
            .map_err(fail)?;
        Ok(AuthorizeRequest {
            client: client.view(&redirect_uri),
            redirect_uri,
            state,
            code_challenge,
            // Unknown scope tokens are ignored (never granted), as RFC 6749 §3.3 allows.
            scope: scope.mcp.unwrap_or(McpScope::Read),
            offline_access: scope.offline_access,
            resource: resource.url,
        })
    }
}

/// The redirect URI to use, once it matches a registered one (loopback: any port). A
/// request without one may only rely on a sole registered URI that is not loopback
/// (a loopback one needs the port).
pub(crate) fn trusted_redirect(
    client: &ResolvedClient,
    requested: Option<&str>,
) -> Result<String, OAuthError> {
    match requested {
        Some(uri) => redirect::match_registered(&client.redirect_uris, uri)
            .map(|_| uri.to_owned())
            .map_err(|e| {
                OAuthError::invalid_request(format!("redirect_uri is not acceptable: {e}"))
            }),
        None => match client.redirect_uris.as_slice() {
            [only] if redirect::validate(only).is_ok_and(|u| !u.is_loopback()) => Ok(only.clone()),
            _ => Err(OAuthError::invalid_request("redirect_uri is required")),
        },
    }
}

/// The S256 challenge, or why it is missing or unacceptable.
fn pkce_challenge(p: &AuthorizeParams) -> Result<String, OAuthError> {
    pkce::parse_method(given(&p.code_challenge_method))
        .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    let challenge = given(&p.code_challenge)
        .ok_or_else(|| OAuthError::invalid_request("code_challenge is required (PKCE S256)"))?;
    pkce::validate_challenge(challenge).map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    Ok(challenge.to_owned())
}

fn page(e: OAuthError) -> AuthorizeRejection {
    AuthorizeRejection::Page {
        error: e.error,
        description: e.description,
    }
}

/// `redirect_uri` with `pairs` added to its query (existing query parameters kept).
pub(crate) fn with_query(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(pairs);
            url.to_string()
        }
        // Unreachable for a URI that passed `redirect::validate`; never panic on it.
        Err(_) => redirect_uri.to_owned(),
    }
}

/// An error response to the client (OAuth 2.1 §4.1.2.1, RFC 9207 `iss`).
pub(crate) fn error_location(
    redirect_uri: &str,
    e: &OAuthError,
    state: Option<&str>,
    issuer: &str,
) -> String {
    let mut pairs = vec![
        ("error", e.error),
        ("error_description", e.description.as_str()),
    ];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    pairs.push(("iss", issuer));
    with_query(redirect_uri, &pairs)
}

/// A successful response: the code, `state` and `iss`.
pub(crate) fn code_location(
    redirect_uri: &str,
    code: &str,
    state: Option<&str>,
    issuer: &str,
) -> String {
    let mut pairs = vec![("code", code)];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    pairs.push(("iss", issuer));
    with_query(redirect_uri, &pairs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use assay_core::oauth::OAuthClientKind;

    fn client(redirects: &[&str]) -> ResolvedClient {
        ResolvedClient {
            id: "c".into(),
            kind: OAuthClientKind::Registered,
            name: "C".into(),
            redirect_uris: redirects.iter().map(|s| (*s).to_owned()).collect(),
            client_id_host: None,
        }
    }

    #[test]
    fn redirects_match_exactly_or_by_loopback_port() {
        let c = client(&["https://app.example/cb", "http://127.0.0.1/callback"]);
        assert_eq!(
            trusted_redirect(&c, Some("http://127.0.0.1:4711/callback")).unwrap(),
            "http://127.0.0.1:4711/callback"
        );
        assert!(trusted_redirect(&c, Some("https://app.example/cb")).is_ok());
        for bad in [
            "https://app.example/cb/",
            "https://APP.example/cb",
            "https://app.example/cb?x=1",
            "http://127.0.0.1:4711/other",
            "http://localhost:4711/callback",
            "javascript:alert(1)//https://app.example/cb",
        ] {
            let e = trusted_redirect(&c, Some(bad)).unwrap_err();
            assert_eq!(e.error, "invalid_request", "{bad}");
        }
        // Absent: only a sole, non-loopback registration stands in.
        assert!(trusted_redirect(&c, None).is_err());
        assert_eq!(
            trusted_redirect(&client(&["https://app.example/cb"]), None).unwrap(),
            "https://app.example/cb"
        );
        assert!(trusted_redirect(&client(&["http://127.0.0.1/cb"]), None).is_err());
    }

    #[test]
    fn locations_carry_state_and_iss() {
        let e = OAuthError::invalid_scope("bad scope");
        assert_eq!(
            error_location(
                "https://app.example/cb?x=1",
                &e,
                Some("s t"),
                "https://as.example"
            ),
            "https://app.example/cb?x=1&error=invalid_scope&error_description=bad+scope&state=s+t&iss=https%3A%2F%2Fas.example"
        );
        assert_eq!(
            code_location(
                "http://127.0.0.1:9/cb",
                "assay_ac_x",
                None,
                "https://as.example"
            ),
            "http://127.0.0.1:9/cb?code=assay_ac_x&iss=https%3A%2F%2Fas.example"
        );
    }

    #[test]
    fn pkce_is_s256_with_a_valid_challenge() {
        let ok = AuthorizeParams {
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            code_challenge_method: Some("S256".into()),
            ..AuthorizeParams::default()
        };
        assert!(pkce_challenge(&ok).is_ok());
        for (challenge, method) in [
            (
                Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
                Some("plain"),
            ),
            (Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"), None),
            (None, Some("S256")),
            (Some("short"), Some("S256")),
        ] {
            let p = AuthorizeParams {
                code_challenge: challenge.map(Into::into),
                code_challenge_method: method.map(Into::into),
                ..AuthorizeParams::default()
            };
            assert_eq!(pkce_challenge(&p).unwrap_err().error, "invalid_request");
        }
    }
}
