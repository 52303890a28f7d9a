//! Errors of the token, registration, revocation and device endpoints: RFC 6749 §5.2
//! (`error`, `error_description`), with the HTTP status the server answers with.

/// An OAuth error response. `description` is for developers; it never contains a
/// secret or a store error's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {description}")]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
    pub status: u16,
    /// Seconds, for a `Retry-After` header (429 only).
    pub retry_after_secs: Option<u64>,
}

impl OAuthError {
    fn new(error: &'static str, status: u16, description: impl Into<String>) -> Self {
        Self {
            error,
            description: description.into(),
            status,
            retry_after_secs: None,
        }
    }

    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", 400, d)
    }

    /// Unknown client: 401 (RFC 6749 §5.2).
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new("invalid_client", 401, d)
    }

    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", 400, d)
    }

    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new("unauthorized_client", 400, d)
    }

    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new("unsupported_grant_type", 400, d)
    }

    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new("invalid_scope", 400, d)
    }

    /// RFC 8707 §2.
    pub fn invalid_target(d: impl Into<String>) -> Self {
        Self::new("invalid_target", 400, d)
    }

    /// RFC 8628 §3.5.
    pub fn authorization_pending() -> Self {
        Self::new(
            "authorization_pending",
            400,
            "the user has not yet approved or denied the request",
        )
    }

    pub fn slow_down(interval_secs: u64) -> Self {
        Self::new(
            "slow_down",
            400,
            format!("polling too fast: wait at least {interval_secs} seconds between requests"),
        )
    }

    pub fn expired_token(d: impl Into<String>) -> Self {
        Self::new("expired_token", 400, d)
    }

    pub fn access_denied(d: impl Into<String>) -> Self {
        Self::new("access_denied", 400, d)
    }

    /// RFC 7591 §3.2.2.
    pub fn invalid_redirect_uri(d: impl Into<String>) -> Self {
        Self::new("invalid_redirect_uri", 400, d)
    }

    /// RFC 7591 §3.2.2.
    pub fn invalid_client_metadata(d: impl Into<String>) -> Self {
        Self::new("invalid_client_metadata", 400, d)
    }

    /// 429 with `Retry-After`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(
                "temporarily_unavailable",
                429,
                format!("too many requests; retry in {retry_after_secs} seconds"),
            )
        }
    }

    pub fn server_error() -> Self {
        Self::new(
            "server_error",
            500,
            "the authorization server hit an internal error",
        )
    }

    pub(crate) fn not_configured() -> Self {
        Self::new(
            "server_error",
            500,
            "the authorization server is not configured: the server has no public URL",
        )
    }
}

/// Store and audit failures: the detail goes to the server log, never to the client.
impl From<assay_core::Error> for OAuthError {
    fn from(e: assay_core::Error) -> Self {
        match e {
            assay_core::Error::Unavailable(detail) => {
                tracing::warn!(%detail, "OAuth operation failed: a dependency is unavailable");
                Self::new(
                    "temporarily_unavailable",
                    503,
                    "the authorization server cannot serve the request now; retry later",
                )
            }
            other => {
                tracing::error!(error = %other, "OAuth operation failed");
                Self::server_error()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_are_not_echoed() {
        let e = OAuthError::from(assay_core::Error::Internal("SELECT secret".into()));
        assert_eq!((e.error, e.status), ("server_error", 500));
        assert!(!e.description.contains("SELECT"));
        let e = OAuthError::from(assay_core::Error::Unavailable("db down at 10.0.0.1".into()));
        assert_eq!((e.error, e.status), ("temporarily_unavailable", 503));
        assert!(!e.description.contains("10.0.0.1"));
    }

    #[test]
    fn rate_limited_is_429_with_retry_after() {
        let e = OAuthError::rate_limited(42);
        assert_eq!(e.status, 429);
        assert_eq!(e.retry_after_secs, Some(42));
        assert_eq!(OAuthError::invalid_client("x").status, 401);
    }
}
