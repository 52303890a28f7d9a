//! The HTTP side of the OAuth 2.1 authorization server: routes, forms, HTML pages,
//! cookies, CSRF, headers and error → response mapping. Every OAuth rule (which client,
//! which redirect, which scope, PKCE, rate limits, audit) lives in
//! `assay_control::oauth::AuthorizationServer`; the handlers here only translate.
//!
//! Endpoints (paths at the root; a public URL with a path prefix expects a proxy that
//! strips it, like every other route):
//! - `GET/POST /oauth/authorize` — the authorization endpoint and its pages (login,
//!   consent); answers with pages or `303` redirects, never JSON, never CORS.
//! - `POST /oauth/token`, `/oauth/register`, `/oauth/revoke`, `/oauth/device` — JSON
//!   endpoints for clients (no-store, CORS `*`, errors as `{error, error_description}`).
//! - `GET/POST /oauth/device/verify` — where a user types a device flow's code.
//! - `GET/POST /oauth/logout` — ends the browser login session.

// Shared with `crate::oauth_upstream` (sign-in through an upstream identity provider),
// whose pages and forms are built from the same parts.
pub(crate) mod authorize;
pub(crate) mod cookies;
pub(crate) mod csrf;
mod device;
pub(crate) mod form;
pub(crate) mod pages;
mod register;
pub(crate) mod responses;
mod revoke;
pub(crate) mod session;
mod token;

use assay_auth::metadata::{
    AUTHORIZATION_PATH, DEVICE_AUTHORIZATION_PATH, REGISTRATION_PATH, REVOCATION_PATH, TOKEN_PATH,
};
use assay_control::oauth::{AuthorizationServer, DEVICE_VERIFICATION_PATH, RequestContext};
use assay_control::upstream_login::UpstreamLogins;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::header;
use axum::http::request::Parts;
use axum::routing::{get, post};
use cookies::CookiePolicy;
use std::net::SocketAddr;
use std::sync::Arc;

/// Where the browser login session is ended.
pub const LOGOUT_PATH: &str = "/oauth/logout";

/// The authorization server behind `/oauth/*` (`ServerConfig::oauth`).
#[derive(Clone)]
pub struct OAuthServer(pub Arc<AuthorizationServer>);

impl std::fmt::Debug for OAuthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OAuthServer")
    }
}

/// What every OAuth handler needs.
#[derive(Clone)]
pub(crate) struct OAuthState {
    pub server: Arc<AuthorizationServer>,
    pub cookies: CookiePolicy,
    /// `scheme://host[:port]` of the public URL: the only `Origin` a form may come from.
    pub origin: String,
    /// The public URL's path prefix (`""` or e.g. `/assay`), for links and form actions.
    pub prefix: String,
    /// Sign-in through upstream identity providers, when configured.
    pub upstream: Option<Arc<UpstreamLogins>>,
}

impl OAuthState {
    /// A path of ours as the browser must request it (with the public URL's prefix).
    pub(crate) fn path(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }
}

/// The OAuth routes (with the upstream sign-in routes). `public_url` is the checked
/// public URL the issuer is made from.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(
    server: OAuthServer,
    upstream: Option<Arc<UpstreamLogins>>,
    public_url: &url::Url,
) -> Router<S> {
    let state = OAuthState {
        server: server.0,
        cookies: CookiePolicy::for_public_url(public_url),
        origin: public_url.origin().ascii_serialization(),
        prefix: public_url.path().trim_end_matches('/').to_owned(),
        upstream,
    };
    Router::new()
        .route(
            AUTHORIZATION_PATH,
            get(authorize::show).post(authorize::submit),
        )
        .route(TOKEN_PATH, post(token::token).options(responses::preflight))
        .route(
            REGISTRATION_PATH,
            post(register::register).options(responses::preflight),
        )
        .route(
            REVOCATION_PATH,
            post(revoke::revoke).options(responses::preflight),
        )
        .route(
            DEVICE_AUTHORIZATION_PATH,
            post(device::authorize).options(responses::preflight),
        )
        .route(
            DEVICE_VERIFICATION_PATH,
            get(device::show).post(device::submit),
        )
        .route(LOGOUT_PATH, get(session::show).post(session::logout))
        .merge(crate::oauth_upstream::routes())
        .with_state(state)
}

/// Longest user agent kept for rate limits and the audit trail.
const MAX_USER_AGENT: usize = 256;

/// The peer (never `X-Forwarded-For`: whoever sends it would choose their own rate-limit
/// key), the user agent and the request id.
pub(crate) fn request_context(parts: &Parts) -> RequestContext {
    RequestContext {
        ip: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip()),
        user_agent: parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT).collect()),
        request_id: parts
            .extensions
            .get::<crate::RequestId>()
            .map(|r| r.0.clone()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use axum::body::Body;
    use axum::extract::Request;

    #[test]
    fn the_request_log_never_shows_the_query_of_an_oauth_request() {
        for uri in [
            "/oauth/authorize?code=assay_ac_secret&state=s3cret&code_challenge=c",
            "/oauth/device/verify?user_code=BCDF-GHJK",
            "/oauth/token?refresh_token=assay_rt_secret",
        ] {
            let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
            let logged = crate::layers::request_log_path(&req);
            assert_eq!(logged, uri.split_once('?').unwrap().0, "{uri}");
        }
    }
}
