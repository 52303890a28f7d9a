//! Turns an error response (RFC 9457 `application/problem+json`) back into the
//! `assay_core::Error` the server started from, so remote failures look like local ones.

use assay_core::error::FieldError;
use assay_core::{Error, Level};
use serde::Deserialize;

const TYPE_PREFIX: &str = "urn:assay:problem:";
/// How much of an unexpected body is quoted in the error.
const SNIPPET_CHARS: usize = 200;

/// What the caller was doing, for the parts of an error a problem body may not spell out.
#[derive(Debug, Clone)]
pub(crate) struct Expect {
    /// Resource kind for `NotFound` ("workflow", "execution", "artifact", …).
    pub kind: &'static str,
    pub name: String,
    /// The level the operation needs, for `Forbidden`.
    pub needed: Level,
    /// A `forbidden` problem that names no level is a `Refused` (the operation is not for
    /// this kind of principal at all), not a `Forbidden` at `needed`.
    pub refused_without_level: bool,
}

impl Expect {
    pub fn new(kind: &'static str, name: impl Into<String>, needed: Level) -> Self {
        Self {
            kind,
            name: name.into(),
            needed,
            refused_without_level: false,
        }
    }

    pub fn refused_without_level(mut self) -> Self {
        self.refused_without_level = true;
        self
    }
}

#[derive(Debug, Deserialize)]
struct Problem {
    #[serde(rename = "type")]
    type_uri: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    errors: Vec<FieldError>,
    #[serde(default)]
    request_id: Option<String>,
    /// Optional extension naming the level a `forbidden` operation needs.
    #[serde(default)]
    needed: Option<Level>,
}

/// Maps a non-success response to an error. `request_id` is the `x-request-id` header.
pub(crate) fn error_from_response(
    status: u16,
    body: &[u8],
    request_id: Option<&str>,
    expect: &Expect,
) -> Error {
    let problem = serde_json::from_slice::<Problem>(body).ok().and_then(|p| {
        p.type_uri
            .strip_prefix(TYPE_PREFIX)
            .map(str::to_owned)
            .map(|k| (k, p))
    });
    let Some((kind, problem)) = problem else {
        return Error::Internal(format!(
            "unexpected HTTP {status} response from the server{}: {}",
            request_suffix(request_id),
            snippet(body)
        ));
    };
    let request_id = problem.request_id.as_deref().or(request_id);
    let detail = problem
        .detail
        .clone()
        .or_else(|| problem.title.clone())
        .unwrap_or_else(|| format!("HTTP {status}"));
    match kind.as_str() {
        "not-found" => not_found(&detail, expect),
        "invalid" | "bad-request" => {
            if problem.errors.is_empty() {
                Error::Invalid(vec![FieldError {
                    path: String::new(),
                    message: detail,
                }])
            } else {
                Error::Invalid(problem.errors)
            }
        }
        "forbidden" => match problem.needed.or_else(|| level_in(&detail)) {
            Some(needed) => Error::Forbidden { needed },
            None if expect.refused_without_level => Error::Refused(detail),
            None => Error::Forbidden {
                needed: expect.needed,
            },
        },
        "insufficient-scope" => Error::InsufficientScope {
            needed: problem
                .needed
                .or_else(|| scope_level_in(&detail))
                .unwrap_or(expect.needed),
        },
        "unauthenticated" => Error::Unauthenticated(detail),
        "conflict" => Error::Conflict(detail),
        "too-large" => Error::TooLarge(detail),
        "unavailable" => Error::Unavailable(detail),
        "internal" => Error::Internal(format!(
            "the server failed{}: {detail}",
            request_suffix(request_id)
        )),
        other => Error::Internal(format!(
            "HTTP {status} ({other}){}: {detail}",
            request_suffix(request_id)
        )),
    }
}

fn request_suffix(request_id: Option<&str>) -> String {
    match request_id {
        Some(id) if !id.is_empty() => format!(" (request id {id})"),
        _ => String::new(),
    }
}

/// Resource kinds the server names in `<kind> "<name>" not found`.
const KNOWN_KINDS: &[&str] = &[
    "workflow",
    "template",
    "execution",
    "artifact",
    "step",
    "environment",
    "organization",
    "route",
    "user",
    "token",
    "grant",
];

/// Recovers kind and name from the server's `<kind> "<name>" not found` detail, so that
/// e.g. a missing environment is not reported as a missing workflow.
fn not_found(detail: &str, expect: &Expect) -> Error {
    let parsed = detail
        .trim()
        .strip_suffix(" not found")
        .and_then(|rest| rest.split_once(' '))
        .and_then(|(kind, name)| {
            let kind = KNOWN_KINDS.iter().find(|k| **k == kind)?;
            let name = serde_json::from_str::<String>(name.trim()).ok()?;
            Some((*kind, name))
        });
    match parsed {
        Some((kind, name)) => Error::not_found(kind, name),
        None => Error::not_found(expect.kind, expect.name.clone()),
    }
}

/// Finds the level in a detail like "this needs the mcp:run scope, …".
fn scope_level_in(detail: &str) -> Option<Level> {
    let after = detail.split("mcp:").nth(1)?;
    let word: String = after.chars().take_while(char::is_ascii_lowercase).collect();
    word.parse().ok()
}

/// Finds the level in a detail like "this needs run permission on the environment".
fn level_in(detail: &str) -> Option<Level> {
    let after = detail.split("needs ").nth(1)?;
    after.split_whitespace().next()?.parse().ok()
}

/// The start of an unexpected body, printable and on one line.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return "(empty body)".into();
    }
    let mut out: String = collapsed.chars().take(SNIPPET_CHARS).collect();
    if collapsed.chars().count() > SNIPPET_CHARS {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn expect() -> Expect {
        Expect::new("workflow", "smoke", Level::Write)
    }

    fn map(status: u16, body: &str) -> Error {
        error_from_response(status, body.as_bytes(), Some("req-1"), &expect())
    }

    #[test]
    fn invalid_carries_field_errors() {
        let e = map(
            422,
            r#"{"type":"urn:assay:problem:invalid","title":"Invalid","status":422,
                "detail":"the document is invalid",
                "errors":[{"path":"spec.steps[0].timeout","message":"\"5x\" is not a duration"},
                          {"path":"metadata.name","message":"required"}]}"#,
        );
        match e {
            Error::Invalid(errors) => assert_eq!(
                errors,
                vec![
                    FieldError {
                        path: "spec.steps[0].timeout".into(),
                        message: "\"5x\" is not a duration".into()
                    },
                    FieldError {
                        path: "metadata.name".into(),
                        message: "required".into()
                    },
                ]
            ),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn bad_request_without_errors_becomes_one_field_error() {
        let e = map(
            400,
            r#"{"type":"urn:assay:problem:bad-request","status":400,"detail":"YAML syntax error at line 3"}"#,
        );
        assert_eq!(e.to_string(), "invalid input: YAML syntax error at line 3");
    }

    #[test]
    fn not_found_uses_the_servers_kind_and_name() {
        let e = map(
            404,
            r#"{"type":"urn:assay:problem:not-found","status":404,"detail":"environment \"prod\" not found"}"#,
        );
        match e {
            Error::NotFound { kind, name } => {
                assert_eq!(kind, "environment");
                assert_eq!(name, "prod");
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
    }

    #[test]
    fn not_found_falls_back_to_the_request_subject() {
        let e = map(
            404,
            r#"{"type":"urn:assay:problem:not-found","status":404,"detail":"no such route"}"#,
        );
        assert_eq!(e.to_string(), "workflow \"smoke\" not found");
    }

    #[test]
    fn forbidden_reads_the_level_from_the_detail_or_the_operation() {
        let e = map(
            403,
            r#"{"type":"urn:assay:problem:forbidden","status":403,"detail":"forbidden: this needs run permission on the environment"}"#,
        );
        assert!(
            matches!(e, Error::Forbidden { needed: Level::Run }),
            "{e:?}"
        );
        let e = map(
            403,
            r#"{"type":"urn:assay:problem:forbidden","status":403,"detail":"no"}"#,
        );
        assert!(
            matches!(
                e,
                Error::Forbidden {
                    needed: Level::Write
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn insufficient_scope_and_refusals_come_back_as_themselves() {
        let e = map(
            403,
            r#"{"type":"urn:assay:problem:insufficient-scope","status":403,"detail":"this needs the mcp:run scope, which this access token does not carry; your role allows it, so authorize again granting mcp:run"}"#,
        );
        assert!(
            matches!(e, Error::InsufficientScope { needed: Level::Run }),
            "{e:?}"
        );
        let refused = r#"{"type":"urn:assay:problem:forbidden","status":403,"detail":"an API token acts for no user"}"#;
        let e = error_from_response(
            403,
            refused.as_bytes(),
            None,
            &Expect::new("grant", "g", Level::Admin).refused_without_level(),
        );
        assert_eq!(e.to_string(), "refused: an API token acts for no user");
        // Elsewhere a level-less 403 stays a Forbidden at the operation's level.
        assert!(matches!(
            map(403, refused),
            Error::Forbidden {
                needed: Level::Write
            }
        ));
    }

    #[test]
    fn simple_kinds_keep_the_detail() {
        let cases = [
            ("unauthenticated", 401, "unauthenticated: token expired"),
            ("conflict", 409, "conflict: token expired"),
            ("too-large", 413, "too large: token expired"),
            ("unavailable", 503, "unavailable: token expired"),
        ];
        for (kind, status, shown) in cases {
            let body = format!(
                r#"{{"type":"urn:assay:problem:{kind}","status":{status},"detail":"token expired"}}"#
            );
            assert_eq!(map(status, &body).to_string(), shown, "{kind}");
        }
    }

    #[test]
    fn internal_mentions_the_request_id() {
        let e = map(
            500,
            r#"{"type":"urn:assay:problem:internal","status":500,"detail":"something went wrong","request_id":"abc"}"#,
        );
        assert_eq!(
            e.to_string(),
            "internal error: the server failed (request id abc): something went wrong"
        );
    }

    #[test]
    fn garbled_bodies_become_internal_with_status_and_snippet() {
        let e = map(502, "<html>\n  <body>Bad   gateway</body>\n</html>");
        assert_eq!(
            e.to_string(),
            "internal error: unexpected HTTP 502 response from the server (request id req-1): \
             <html> <body>Bad gateway</body> </html>"
        );
        let e = map(500, r#"{"type":"about:blank","status":500}"#);
        assert!(
            e.to_string()
                .starts_with("internal error: unexpected HTTP 500 response"),
            "{e}"
        );
        let long = "x".repeat(1000);
        let e = error_from_response(500, long.as_bytes(), None, &expect());
        assert_eq!(
            e.to_string(),
            format!(
                "internal error: unexpected HTTP 500 response from the server: {}…",
                "x".repeat(200)
            )
        );
    }

    #[test]
    fn unknown_problem_kind_is_internal() {
        let e = map(
            405,
            r#"{"type":"urn:assay:problem:method-not-allowed","status":405,"detail":"use GET"}"#,
        );
        assert_eq!(
            e.to_string(),
            "internal error: HTTP 405 (method-not-allowed) (request id req-1): use GET"
        );
    }
}
