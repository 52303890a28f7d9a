//! How OAuth answers leave the server: HTML pages with their security headers, `303 See
//! Other` redirects, and the JSON of the token, registration, revocation and device
//! endpoints (RFC 6749 §5.1/§5.2: `Cache-Control: no-store`, `Pragma: no-cache`, errors as
//! `{error, error_description}`). None of them is ever turned into a problem+json: OAuth
//! clients read OAuth's formats (`layers::finish_problems` leaves HTML and JSON alone).

use super::pages;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A rendered page, its status and the cookies to set with it.
pub(crate) struct Page {
    pub status: StatusCode,
    pub html: String,
    pub cookies: Vec<HeaderValue>,
    /// Extra `form-action` sources: the client's redirect origin, because browsers apply
    /// `form-action` to the redirects that follow a form submission too.
    pub form_targets: Vec<String>,
    pub retry_after_secs: Option<u64>,
}

impl Page {
    pub(crate) fn new(status: StatusCode, html: String) -> Self {
        Self {
            status,
            html,
            cookies: Vec::new(),
            form_targets: Vec::new(),
            retry_after_secs: None,
        }
    }

    pub(crate) fn with_cookie(mut self, cookie: Option<HeaderValue>) -> Self {
        self.cookies.extend(cookie);
        self
    }
}

/// The Content-Security-Policy of every page: nothing may load, the inline stylesheet is
/// allowed by hash, forms post only here (and redirect to the client), no framing.
pub(crate) fn content_security_policy(form_targets: &[String]) -> String {
    let mut form_action = String::from("'self'");
    for target in form_targets {
        form_action.push(' ');
        form_action.push_str(target);
    }
    format!(
        "default-src 'none'; style-src {}; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'",
        pages::style_hash()
    )
}

/// Headers every page carries (on top of the layers' `nosniff` and `Referrer-Policy`).
fn page_headers(headers: &mut HeaderMap, form_targets: &[String]) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(csp) = HeaderValue::from_str(&content_security_policy(form_targets)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    no_store(headers);
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

fn set_cookies(headers: &mut HeaderMap, cookies: Vec<HeaderValue>) {
    for cookie in cookies {
        headers.append(header::SET_COOKIE, cookie);
    }
}

fn retry_after(headers: &mut HeaderMap, secs: Option<u64>) {
    if let Some(secs) = secs {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut res = (self.status, self.html).into_response();
        let headers = res.headers_mut();
        page_headers(headers, &self.form_targets);
        set_cookies(headers, self.cookies);
        retry_after(headers, self.retry_after_secs);
        res
    }
}

/// `303 See Other` to `location` (after every POST, and for authorization responses).
/// `location` is a validated redirect URI or one of our own paths, so it is always a valid
/// header value; if it were not, the user gets an error page instead of a broken redirect.
pub(crate) fn see_other(location: &str, cookies: Vec<HeaderValue>) -> Response {
    let Ok(value) = HeaderValue::from_str(location) else {
        return error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The server could not build the address to send you back to.",
        );
    };
    let mut res = StatusCode::SEE_OTHER.into_response();
    let headers = res.headers_mut();
    headers.insert(header::LOCATION, value);
    no_store(headers);
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    set_cookies(headers, cookies);
    res
}

/// An error page: a title and one sentence, nothing from the request but what the caller
/// passes (escaped).
pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    message_page(status, title, message)
}

/// A page with a title and one sentence (an error, a result, "signed out").
pub(crate) fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    Page::new(
        status,
        pages::message(&pages::MessagePage {
            title,
            message,
            detail: None,
            form: None,
        }),
    )
    .into_response()
}

/// An OAuth error answered as JSON (RFC 6749 §5.2, RFC 7591 §3.2.2, RFC 8628 §3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    pub retry_after_secs: Option<u64>,
}

impl JsonError {
    pub(crate) fn invalid_request(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            description: description.into(),
            retry_after_secs: None,
        }
    }
}

impl From<assay_control::oauth::OAuthError> for JsonError {
    fn from(e: assay_control::oauth::OAuthError) -> Self {
        Self {
            status: StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            error: e.error,
            description: e.description,
            retry_after_secs: e.retry_after_secs,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    error_description: &'a str,
}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.error,
            error_description: &self.description,
        };
        let mut res = json(self.status, &body);
        retry_after(res.headers_mut(), self.retry_after_secs);
        res
    }
}

/// A JSON answer of a token-style endpoint: never stored, readable by browser clients
/// (no credentials are involved: `*` without `Allow-Credentials`).
pub(crate) fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut res = (status, bytes).into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    no_store(headers);
    cors(headers);
    res
}

/// `200` with no body (RFC 7009 §2.2), never stored, readable cross-origin.
pub(crate) fn empty_ok() -> Response {
    let mut res = StatusCode::OK.into_response();
    let headers = res.headers_mut();
    no_store(headers);
    cors(headers);
    res
}

fn cors(headers: &mut HeaderMap) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
}

/// The CORS preflight of the JSON endpoints: browser MCP clients POST forms or JSON and
/// may add `MCP-Protocol-Version`; nothing here reads cookies, so `*` is safe.
pub(crate) async fn preflight() -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let headers = res.headers_mut();
    cors(headers);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    res
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_policy_allows_only_the_own_stylesheet_and_forms() {
        let csp = content_security_policy(&["http://127.0.0.1:5555".to_owned()]);
        assert_eq!(
            csp,
            format!(
                "default-src 'none'; style-src {}; form-action 'self' http://127.0.0.1:5555; \
                 frame-ancestors 'none'; base-uri 'none'",
                pages::style_hash()
            )
        );
    }

    #[tokio::test]
    async fn json_errors_have_the_oauth_shape_and_no_store() {
        let res = JsonError {
            status: StatusCode::TOO_MANY_REQUESTS,
            error: "slow_down",
            description: "later".into(),
            retry_after_secs: Some(7),
        }
        .into_response();
        assert_eq!(res.status(), 429);
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(res.headers()[header::PRAGMA], "no-cache");
        assert_eq!(res.headers()[header::RETRY_AFTER], "7");
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            serde_json::json!({"error": "slow_down", "error_description": "later"})
        );
    }
}
