//! Bearer authentication at the HTTP edge: turns `Authorization: Bearer <token>` into an
//! [`Actor`] through the [`Authenticator`] port. Deciding what the actor may do is the
//! control plane's job, never this module's.

use crate::AppState;
use crate::layers::RequestId;
use crate::problem::{ApiError, CHALLENGE_INVALID_TOKEN, ProblemKind};
use assay_core::{Actor, ClientInfo, Error};
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

const MAX_USER_AGENT: usize = 256;

/// The credential part of an `Authorization` header, if it uses the Bearer scheme.
/// Tokens in query strings are never looked at.
pub(crate) enum Bearer<'a> {
    Missing,
    Token(&'a str),
    Empty,
}

pub(crate) fn bearer(headers: &HeaderMap) -> Bearer<'_> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Bearer::Missing;
    };
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Bearer::Missing;
    }
    match rest.trim() {
        "" => Bearer::Empty,
        token => Bearer::Token(token),
    }
}

/// What we know about the caller for the audit trail.
pub(crate) fn client_info(req: &Request) -> ClientInfo {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    ClientInfo {
        ip,
        user_agent,
        mcp_client: None,
        request_id,
    }
}

/// The organization the request addresses (`/v1/organizations/{org}/…`), percent-decoded.
/// A credential of another organization is refused by the authenticator, and failures are
/// audited into this organization's chain.
fn addressed_org(params: &Result<RawPathParams, RawPathParamsRejection>) -> Option<String> {
    let params = params.as_ref().ok()?;
    params
        .iter()
        .find(|(name, _)| *name == "org")
        .map(|(_, value)| value.to_owned())
}

/// Where a route sits: under an organization, or (`GET /v1/me`) outside every one.
enum Scope {
    /// The addressed organization; `None` when the route's `{org}` could not be read (an
    /// OAuth access token is then refused).
    Organization(Option<String>),
    /// The caller itself: an OAuth access token stands for its user in no organization.
    Caller,
}

/// Route layer for every non-public route but [`require_bearer_orgless`]'s.
pub async fn require_bearer(
    State(state): State<AppState>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    req: Request,
    next: Next,
) -> Response {
    let org = addressed_org(&params);
    authenticate(&state, Scope::Organization(org), req, next).await
}

/// Route layer for `GET /v1/me` (`routes::ME`), the one authenticated route that
/// addresses no organization: only here may an OAuth access token authenticate without
/// one (`Authenticator::authenticate_orgless`).
pub async fn require_bearer_orgless(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    authenticate(&state, Scope::Caller, req, next).await
}

async fn authenticate(state: &AppState, scope: Scope, mut req: Request, next: Next) -> Response {
    let client = client_info(&req);
    let principal = match bearer(req.headers()) {
        Bearer::Missing => {
            return ApiError::new(
                ProblemKind::Unauthenticated,
                ProblemKind::Unauthenticated.default_detail(),
            )
            .into_response();
        }
        Bearer::Empty => {
            return ApiError::new(
                ProblemKind::Unauthenticated,
                "empty bearer token; pass Authorization: Bearer <token>",
            )
            .with_challenge(CHALLENGE_INVALID_TOKEN)
            .into_response();
        }
        Bearer::Token(token) => match &scope {
            Scope::Organization(org) => {
                state
                    .auth
                    .authenticate(token, &client, org.as_deref())
                    .await
            }
            Scope::Caller => state.auth.authenticate_orgless(token, &client).await,
        },
    };
    match principal {
        Ok(principal) => {
            req.extensions_mut().insert(Actor { principal, client });
            next.run(req).await
        }
        Err(Error::Unauthenticated(reason)) => ApiError::new(ProblemKind::Unauthenticated, reason)
            .with_challenge(CHALLENGE_INVALID_TOKEN)
            .into_response(),
        Err(other) => ApiError::from(other).into_response(),
    }
}

/// The authenticated actor of this request. Absent only if a route was wired without
/// `require_bearer`; that fails closed as unauthenticated.
pub struct Authed(pub Actor);

impl<S: Send + Sync> FromRequestParts<S> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Actor>()
            .cloned()
            .map(Authed)
            .ok_or_else(|| {
                ApiError::new(
                    ProblemKind::Unauthenticated,
                    ProblemKind::Unauthenticated.default_detail(),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn parse(v: &str) -> String {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(header::AUTHORIZATION, v);
        }
        match bearer(&h) {
            Bearer::Missing => "missing".into(),
            Bearer::Empty => "empty".into(),
            Bearer::Token(t) => format!("token:{t}"),
        }
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(parse("Bearer abc"), "token:abc");
        assert_eq!(parse("bearer   abc "), "token:abc");
        assert_eq!(parse("BEARER abc"), "token:abc");
        assert_eq!(parse("Bearer"), "empty");
        assert_eq!(parse("Bearer   "), "empty");
        assert_eq!(parse("Basic dXNlcjpwYXNz"), "missing");
        assert_eq!(parse("Bearerabc"), "missing");
        assert_eq!(parse(""), "missing");
        assert!(matches!(bearer(&HeaderMap::new()), Bearer::Missing));
    }
}
