//! RFC 9457 problem details: the one wire form of every error this server sends.
//!
//! Handlers return [`ApiError`]; the `finish_problems` middleware (see `layers.rs`) adds
//! the request id, logs internal causes, and turns any error response that is not yet a
//! problem (axum or tower-http defaults) into one, so no plain-text error ever leaves.

use assay_core::error::FieldError;
use assay_core::{Error, Level};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// The stable problem kinds; `urn:assay:problem:<slug>` is what clients match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    BadRequest,
    Unauthenticated,
    Forbidden,
    /// 403 for an OAuth access token whose scope is narrower than the operation needs
    /// while the user's role allows it: the client can step up (RFC 6750 §3.1).
    InsufficientScope,
    NotFound,
    MethodNotAllowed,
    Conflict,
    TooLarge,
    UnsupportedMediaType,
    Invalid,
    Internal,
    Unavailable,
}

impl ProblemKind {
    pub fn slug(self) -> &'static str {
        match self {
            Self::BadRequest => "bad-request",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::InsufficientScope => "insufficient-scope",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::Conflict => "conflict",
            Self::TooLarge => "too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::Invalid => "invalid",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::InsufficientScope => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::BadRequest => "Bad request",
            Self::Unauthenticated => "Authentication required",
            Self::Forbidden => "Forbidden",
            Self::InsufficientScope => "Insufficient scope",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::Conflict => "Conflict",
            Self::TooLarge => "Too large",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::Invalid => "Invalid input",
            Self::Internal => "Internal error",
            Self::Unavailable => "Service unavailable",
        }
    }

    /// The kind a bare status stands for, for error responses produced outside our
    /// handlers (timeouts, body limits, framework defaults).
    pub fn for_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => Self::Unauthenticated,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            409 => Self::Conflict,
            413 => Self::TooLarge,
            415 => Self::UnsupportedMediaType,
            422 => Self::Invalid,
            408 | 503 | 504 => Self::Unavailable,
            400..=499 => Self::BadRequest,
            _ => Self::Internal,
        }
    }

    /// What to tell a caller when nothing more specific is known.
    pub fn default_detail(self) -> &'static str {
        match self {
            Self::BadRequest => "the request could not be understood",
            Self::Unauthenticated => "missing bearer token; pass Authorization: Bearer <token>",
            Self::Forbidden => "you may not do this in this environment",
            Self::InsufficientScope => {
                "the access token's scope does not cover this; authorize again with a wider scope"
            }
            Self::NotFound => "no such resource; check the path (see GET /v1/openapi.json)",
            Self::MethodNotAllowed => {
                "this path does not support that method; see the Allow header"
            }
            Self::Conflict => "the request conflicts with the current state",
            Self::TooLarge => "the request body is too large",
            Self::UnsupportedMediaType => "unsupported Content-Type",
            Self::Invalid => "the request is invalid; see errors[]",
            Self::Internal => {
                "an internal error occurred; the server logged the details under this request_id"
            }
            Self::Unavailable => "the service cannot answer right now; try again shortly",
        }
    }
}

/// The serialized problem document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Problem {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            type_uri: format!("urn:assay:problem:{}", kind.slug()),
            title: kind.title().to_owned(),
            status: kind.status().as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            request_id: None,
        }
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The response for this problem, with the problem itself kept in the extensions so
    /// the finishing middleware can re-render it with the request id.
    pub fn into_response_with(self, extra: Option<(header::HeaderName, HeaderValue)>) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = (self.status_code(), body).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        if let Some((name, value)) = extra {
            res.headers_mut().insert(name, value);
        }
        res.extensions_mut().insert(self);
        res
    }
}

/// A cause that must be logged but never shown to the caller.
#[derive(Debug, Clone)]
pub struct InternalCause(pub String);

/// What handlers and extractors return on failure.
#[derive(Debug)]
pub struct ApiError {
    pub problem: Problem,
    /// `WWW-Authenticate` for 401s.
    pub challenge: Option<&'static str>,
    cause: Option<String>,
}

pub const CHALLENGE: &str = r#"Bearer realm="assay""#;
pub const CHALLENGE_INVALID_TOKEN: &str = r#"Bearer realm="assay", error="invalid_token""#;

/// The REST step-up challenge (RFC 6750 §3.1) naming the scope an operation needs. An
/// OAuth scope reaches write at most; `InsufficientScope` is never raised for admin.
pub fn insufficient_scope_challenge(needed: Level) -> &'static str {
    match needed {
        Level::Read => r#"Bearer realm="assay", error="insufficient_scope", scope="mcp:read""#,
        Level::Run => r#"Bearer realm="assay", error="insufficient_scope", scope="mcp:run""#,
        Level::Write | Level::Admin => {
            r#"Bearer realm="assay", error="insufficient_scope", scope="mcp:write""#
        }
    }
}

impl ApiError {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            problem: Problem::new(kind, detail),
            challenge: (kind == ProblemKind::Unauthenticated).then_some(CHALLENGE),
            cause: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::BadRequest, detail)
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::UnsupportedMediaType, detail)
    }

    /// A failure whose details are for the logs only.
    pub fn internal(cause: impl Into<String>) -> Self {
        let kind = ProblemKind::Internal;
        Self {
            problem: Problem::new(kind, kind.default_detail()),
            challenge: None,
            cause: Some(cause.into()),
        }
    }

    pub fn with_challenge(mut self, challenge: &'static str) -> Self {
        self.challenge = Some(challenge);
        self
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let detail = e.to_string();
        match e {
            Error::NotFound { .. } => Self::new(ProblemKind::NotFound, detail),
            Error::Invalid(errors) => {
                let mut err = Self::new(ProblemKind::Invalid, detail);
                err.problem.errors = errors;
                err
            }
            Error::Forbidden { needed } => Self::new(
                ProblemKind::Forbidden,
                format!(
                    "this needs {needed} permission on the environment; ask an organization admin for {needed} access"
                ),
            ),
            Error::InsufficientScope { needed } => Self::new(
                ProblemKind::InsufficientScope,
                format!(
                    "this needs the mcp:{needed} scope, which this access token does not carry; \
                     your role allows it, so authorize again granting mcp:{needed}"
                ),
            )
            .with_challenge(insufficient_scope_challenge(needed)),
            Error::Refused(reason) => Self::new(ProblemKind::Forbidden, reason),
            Error::Unauthenticated(reason) => Self::new(ProblemKind::Unauthenticated, reason),
            Error::Conflict(_) => Self::new(ProblemKind::Conflict, detail),
            Error::TooLarge(_) => Self::new(ProblemKind::TooLarge, detail),
            Error::Unavailable(_) => Self::new(ProblemKind::Unavailable, detail),
            Error::Internal(cause) => Self::internal(cause),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let challenge = self
            .challenge
            .map(|c| (header::WWW_AUTHENTICATE, HeaderValue::from_static(c)));
        let mut res = self.problem.into_response_with(challenge);
        if let Some(cause) = self.cause {
            res.extensions_mut().insert(InternalCause(cause));
        }
        res
    }
}

pub type ApiResult<T> = std::result::Result<T, ApiError>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn mapped(e: Error) -> (u16, String, Vec<FieldError>) {
        let api = ApiError::from(e);
        (api.problem.status, api.problem.type_uri, api.problem.errors)
    }

    #[test]
    fn domain_errors_map_to_the_documented_statuses_and_kinds() {
        let cases: Vec<(Error, u16, &str)> = vec![
            (Error::not_found("workflow", "x"), 404, "not-found"),
            (Error::invalid("spec", "bad"), 422, "invalid"),
            (
                Error::Forbidden {
                    needed: Level::Write,
                },
                403,
                "forbidden",
            ),
            (
                Error::InsufficientScope { needed: Level::Run },
                403,
                "insufficient-scope",
            ),
            (Error::Refused("no".into()), 403, "forbidden"),
            (Error::Unauthenticated("no".into()), 401, "unauthenticated"),
            (Error::Conflict("exists".into()), 409, "conflict"),
            (Error::TooLarge("big".into()), 413, "too-large"),
            (Error::Unavailable("db".into()), 503, "unavailable"),
            (Error::Internal("boom".into()), 500, "internal"),
        ];
        for (e, status, kind) in cases {
            let (s, t, _) = mapped(e);
            assert_eq!(s, status);
            assert_eq!(t, format!("urn:assay:problem:{kind}"));
        }
    }

    #[test]
    fn invalid_keeps_field_errors_and_internal_hides_its_cause() {
        let (_, _, errors) = mapped(Error::invalid("spec.steps[0].run", "required"));
        assert_eq!(
            errors,
            vec![FieldError {
                path: "spec.steps[0].run".into(),
                message: "required".into()
            }]
        );
        let api = ApiError::from(Error::Internal("password=hunter2".into()));
        assert!(!api.problem.detail.contains("hunter2"));
        assert_eq!(api.cause.as_deref(), Some("password=hunter2"));
    }

    #[test]
    fn insufficient_scope_challenges_name_the_scope_and_refusals_keep_their_reason() {
        let api = ApiError::from(Error::InsufficientScope {
            needed: Level::Write,
        });
        assert_eq!(
            api.challenge,
            Some(r#"Bearer realm="assay", error="insufficient_scope", scope="mcp:write""#)
        );
        assert!(
            api.problem.detail.contains("mcp:write"),
            "{:?}",
            api.problem
        );
        let api = ApiError::from(Error::Refused("API tokens have no grants".into()));
        assert_eq!(api.challenge, None);
        assert_eq!(api.problem.detail, "API tokens have no grants");
    }

    #[test]
    fn bare_statuses_get_a_kind() {
        assert_eq!(
            ProblemKind::for_status(StatusCode::PAYLOAD_TOO_LARGE),
            ProblemKind::TooLarge
        );
        assert_eq!(
            ProblemKind::for_status(StatusCode::REQUEST_TIMEOUT),
            ProblemKind::Unavailable
        );
        assert_eq!(
            ProblemKind::for_status(StatusCode::IM_A_TEAPOT),
            ProblemKind::BadRequest
        );
        assert_eq!(
            ProblemKind::for_status(StatusCode::BAD_GATEWAY),
            ProblemKind::Internal
        );
    }
}
