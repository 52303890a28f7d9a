//! Cross-cutting middleware: request ids, security headers, the problem+json safety net
//! and panic recovery. Each function has one job; `lib.rs` stacks them.

use crate::problem::{InternalCause, PROBLEM_CONTENT_TYPE, Problem, ProblemKind};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::any::Any;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id, in the request extensions for handlers and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// A client-chosen id is kept only if it is short and plain, so it is safe in logs.
fn acceptable_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Takes the client's `x-request-id` (if acceptable) or makes one, and echoes it on the
/// response.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable_request_id(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let value = HeaderValue::from_str(&id).ok();
    if let Some(v) = &value {
        req.headers_mut().insert(X_REQUEST_ID.clone(), v.clone());
    }
    req.extensions_mut().insert(RequestId(id));
    let mut res = next.run(req).await;
    if let Some(v) = value {
        res.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    res
}

/// Headers every response carries. API responses are per-user and must never be cached
/// by intermediaries; nothing we send is meant to be sniffed into HTML.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// The request path as it may be logged. A routed request logs its route template
/// (`/v1/organizations/{org}/tokens/{id}`), never the values: a caller who pastes a
/// secret or a password where an ID or a name belongs must not put it in the server log.
/// (Which resources a call touched is on its audit event, linked by the request id.) An
/// unrouted request logs its raw path for debugging, with secret-shaped segments masked.
pub fn loggable_path<'a>(matched: Option<&'a str>, raw: &'a str) -> std::borrow::Cow<'a, str> {
    if let Some(route) = matched {
        return std::borrow::Cow::Borrowed(route);
    }
    if !raw.contains(SECRET_PREFIX) {
        return std::borrow::Cow::Borrowed(raw);
    }
    let masked: Vec<&str> = raw
        .split('/')
        .map(|seg| {
            if seg.starts_with(SECRET_PREFIX) {
                "assay_***"
            } else {
                seg
            }
        })
        .collect();
    std::borrow::Cow::Owned(masked.join("/"))
}

/// The loggable path of a request (see [`loggable_path`]).
pub fn request_log_path(req: &Request) -> String {
    let matched = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str());
    loggable_path(matched, req.uri().path()).into_owned()
}

/// How every Assay API token secret starts.
const SECRET_PREFIX: &str = "assay_";

/// Largest non-problem error body we read to reuse its text as the detail.
const MAX_FOREIGN_ERROR_BODY: usize = 4096;

/// Every error response leaves as problem+json carrying the request id; internal causes
/// are logged here, next to that id, and nowhere shown.
pub async fn finish_problems(req: Request, next: Next) -> Response {
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    let method = req.method().clone();
    let path = request_log_path(&req);
    let mut res = next.run(req).await;

    if let Some(InternalCause(cause)) = res.extensions_mut().remove::<InternalCause>() {
        tracing::error!(
            request_id = request_id.as_deref().unwrap_or("-"),
            %method,
            path,
            cause,
            "internal error"
        );
    }

    let problem = match res.extensions_mut().remove::<Problem>() {
        Some(p) => p,
        None if is_error(res.status()) && !kept_as_is(&res) => {
            foreign_error_to_problem(&mut res).await
        }
        None => return res,
    };
    let problem = Problem {
        request_id,
        ..problem
    };
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    *res.body_mut() = Body::from(body);
    let h = res.headers_mut();
    h.remove(header::CONTENT_LENGTH);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
    );
    res
}

fn is_error(status: StatusCode) -> bool {
    status.is_client_error() || status.is_server_error()
}

/// An error body that is already a problem, or one made for its reader on purpose: JSON
/// that is not a problem is a JSON-RPC error of the MCP endpoint (MCP clients read its
/// `error.code`) or an OAuth error (`{error, error_description}`), and HTML is a page of
/// the OAuth sign-in flow (`crate::oauth`) made for a person in a browser. (REST errors
/// are always problems; framework defaults are plain text or empty.)
fn kept_as_is(res: &Response) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            [PROBLEM_CONTENT_TYPE, "application/json", "text/html"]
                .iter()
                .any(|kept| ct.starts_with(kept))
        })
}

/// A framework default (empty or plain text) becomes a problem of the status' kind. Plain
/// text of a client error is kept as the detail because it says what was wrong; server
/// errors keep only the generic text.
async fn foreign_error_to_problem(res: &mut Response) -> Problem {
    let kind = ProblemKind::for_status(res.status());
    let is_text = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/plain"));
    let body = std::mem::take(res.body_mut());
    let text = match axum::body::to_bytes(body, MAX_FOREIGN_ERROR_BODY).await {
        Ok(b) if is_text && res.status().is_client_error() => {
            String::from_utf8_lossy(&b).trim().to_owned()
        }
        _ => String::new(),
    };
    let detail = match kind {
        ProblemKind::TooLarge => "the request body is larger than this server accepts".to_owned(),
        // Only the timeout layer produces bare 503/408 responses.
        ProblemKind::Unavailable => {
            "the request did not complete within the server's time limit; try again shortly"
                .to_owned()
        }
        _ if !text.is_empty() => text,
        _ => kind.default_detail().to_owned(),
    };
    let mut problem = Problem::new(kind, detail);
    // Keep the status the framework chose (e.g. 408), only the body changes.
    problem.status = res.status().as_u16();
    problem
}

/// A panicking handler answers 500 like any internal error; the panic text goes to the
/// log (through `InternalCause`), not to the caller.
pub fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response {
    let message = if let Some(s) = err.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = err.downcast_ref::<&str>() {
        (*s).to_owned()
    } else {
        "unknown panic payload".to_owned()
    };
    crate::problem::ApiError::internal(format!("handler panicked: {message}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::{acceptable_request_id, loggable_path};

    #[test]
    fn routed_requests_log_their_template_and_unrouted_ones_a_masked_path() {
        assert_eq!(
            loggable_path(
                Some("/v1/organizations/{org}/tokens/{id}"),
                "/v1/organizations/acme/tokens/hunter2"
            ),
            "/v1/organizations/{org}/tokens/{id}"
        );
        assert_eq!(
            loggable_path(None, "/v2/tokens/assay_abcDEF123/revoke"),
            "/v2/tokens/assay_***/revoke"
        );
        assert_eq!(loggable_path(None, "/v2/nothing"), "/v2/nothing");
        // Only whole segments that start like a secret are masked.
        assert_eq!(loggable_path(None, "/x/my_assay_y"), "/x/my_assay_y");
    }

    #[test]
    fn only_plain_client_request_ids_are_kept() {
        assert!(acceptable_request_id("abc-123_x.y:z"));
        assert!(!acceptable_request_id(""));
        assert!(!acceptable_request_id("a b"));
        assert!(!acceptable_request_id("line\nbreak"));
        assert!(!acceptable_request_id(&"a".repeat(129)));
    }
}
