//! Request extractors that fail as problems, never as axum's plain-text rejections:
//! workflow documents, JSON bodies, path parameters and query strings.

use crate::problem::{ApiError, ProblemKind};
use assay_core::error::FieldError;
use assay_core::execution::ExecutionStatus;
use assay_core::{Error, Timestamp};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

/// Media types accepted for workflow and template documents (JSON is YAML).
pub const DOCUMENT_TYPES: [&str; 4] = [
    "text/yaml",
    "application/yaml",
    "application/x-yaml",
    "application/json",
];

/// The media type of the request without parameters, lower-cased.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = raw.split(';').next().unwrap_or("").trim();
    Some(essence.to_ascii_lowercase())
}

fn body_rejection(r: BytesRejection) -> ApiError {
    if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            ProblemKind::TooLarge,
            "the request body is larger than this server accepts",
        )
    } else {
        ApiError::bad_request(format!(
            "could not read the request body: {}",
            r.body_text()
        ))
    }
}

/// A workflow or template document: the body text exactly as sent.
pub struct Document(pub String);

impl<S: Send + Sync> FromRequest<S> for Document {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match media_type(req.headers()) {
            Some(t) if DOCUMENT_TYPES.contains(&t.as_str()) => {}
            Some(t) => {
                return Err(ApiError::unsupported_media_type(format!(
                    "Content-Type {t:?} is not accepted for documents; send one of {}",
                    DOCUMENT_TYPES.join(", ")
                )));
            }
            None => {
                return Err(ApiError::unsupported_media_type(format!(
                    "missing Content-Type; send one of {}",
                    DOCUMENT_TYPES.join(", ")
                )));
            }
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        String::from_utf8(bytes.to_vec())
            .map(Document)
            .map_err(|e| {
                ApiError::bad_request(format!(
                    "the document is not valid UTF-8 (first bad byte at offset {})",
                    e.utf8_error().valid_up_to()
                ))
            })
    }
}

/// A JSON object body, or `None` when the body is empty (allowed where the request has
/// only optional fields).
pub struct JsonBody(pub Option<serde_json::Map<String, serde_json::Value>>);

fn is_json(media: &str) -> bool {
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let media = media_type(req.headers());
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(None));
        }
        match media.as_deref() {
            Some(m) if is_json(m) => {}
            Some(m) => {
                return Err(ApiError::unsupported_media_type(format!(
                    "Content-Type {m:?} is not accepted here; send application/json"
                )));
            }
            None => {
                return Err(ApiError::unsupported_media_type(
                    "missing Content-Type; send application/json",
                ));
            }
        }
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(serde_json::Value::Object(map)) => Ok(JsonBody(Some(map))),
            Ok(_) => Err(Error::invalid("", "the body must be a JSON object").into()),
            Err(e) => Err(ApiError::bad_request(format!("malformed JSON: {e}"))),
        }
    }
}

/// Rejects keys a body type does not know, so a typo is an error rather than ignored.
pub fn reject_unknown_fields(
    body: &serde_json::Map<String, serde_json::Value>,
    known: &[&str],
) -> Result<(), Error> {
    let errors: Vec<FieldError> = body
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|k| FieldError {
            path: k.clone(),
            message: format!("unknown field; expected one of: {}", known.join(", ")),
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(errors))
    }
}

/// Fields whose values must never be quoted back in an error (they may be secrets).
const SECRET_FIELDS: &[&str] = &["password"];

/// Decodes a JSON object body into `T` after rejecting unknown keys. Every problem names
/// its field (`grants.dev: unknown variant ...`); values of secret fields are never
/// quoted back.
pub fn typed_body<T: DeserializeOwned>(
    body: serde_json::Map<String, serde_json::Value>,
    known: &[&str],
) -> Result<T, Error> {
    reject_unknown_fields(&body, known)?;
    let value = serde_json::Value::Object(body);
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let secret = SECRET_FIELDS
            .iter()
            .any(|f| path == *f || path.starts_with(&format!("{f}.")));
        let message = if secret {
            "must be a string".to_owned()
        } else {
            e.inner().to_string()
        };
        Error::Invalid(vec![FieldError { path, message }])
    })
}

/// Path parameters; a parameter that cannot be decoded is a 400 problem.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|r| ApiError::bad_request(format!("bad path: {}", r.body_text())))
    }
}

/// The query string, decoded. Readers collect every problem so a caller learns all of
/// them at once (422 with one entry per parameter).
pub struct Query {
    pairs: Vec<(String, String)>,
    errors: Vec<FieldError>,
}

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Query::parse(parts.uri.query()))
    }
}

impl Query {
    pub fn parse(query: Option<&str>) -> Self {
        let pairs = query
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            pairs,
            errors: Vec::new(),
        }
    }

    fn error(&mut self, name: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: name.to_owned(),
            message: message.into(),
        });
    }

    /// The first non-empty value of `name`.
    pub fn string(&self, name: &str) -> Option<String> {
        self.pairs
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.clone())
    }

    pub fn u64(&mut self, name: &str) -> Option<u64> {
        let raw = self.string(name)?;
        match raw.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.error(name, format!("{raw:?} is not a non-negative integer"));
                None
            }
        }
    }

    pub fn u32(&mut self, name: &str) -> Option<u32> {
        let n = self.u64(name)?;
        match u32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                self.error(name, format!("{n} is too large"));
                None
            }
        }
    }

    /// An integer in `1..=max`, `default` when absent.
    pub fn count(&mut self, name: &str, default: u32, max: u32) -> u32 {
        match self.u32(name) {
            Some(n) if (1..=max).contains(&n) => n,
            Some(n) => {
                self.error(name, format!("{n} is out of range; use 1 to {max}"));
                default
            }
            None => default,
        }
    }

    pub fn bool(&mut self, name: &str) -> Option<bool> {
        let raw = self.string(name)?;
        match raw.as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => {
                self.error(name, format!("{raw:?} is not a boolean; use true or false"));
                None
            }
        }
    }

    /// An RFC 3339 timestamp.
    pub fn time(&mut self, name: &str) -> Option<Timestamp> {
        let raw = self.string(name)?;
        match Timestamp::parse(&raw, &time::format_description::well_known::Rfc3339) {
            Ok(t) => Some(t),
            Err(_) => {
                self.error(
                    name,
                    format!("{raw:?} is not an RFC 3339 time (e.g. 2025-01-31T12:00:00Z)"),
                );
                None
            }
        }
    }

    /// One of a fixed set of words.
    pub fn one_of(&mut self, name: &str, allowed: &[&'static str]) -> Option<&'static str> {
        let raw = self.string(name)?;
        match allowed.iter().find(|a| **a == raw) {
            Some(a) => Some(*a),
            None => {
                self.error(
                    name,
                    format!("{raw:?} is not allowed; use one of {}", allowed.join(", ")),
                );
                None
            }
        }
    }

    /// Comma-separated execution statuses; every value must be known.
    pub fn statuses(&mut self, name: &str) -> Vec<ExecutionStatus> {
        let Some(raw) = self.string(name) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.parse::<ExecutionStatus>() {
                Ok(s) if !out.contains(&s) => out.push(s),
                Ok(_) => {}
                Err(_) => {
                    let known: Vec<&str> =
                        ExecutionStatus::ALL.iter().map(|s| s.as_str()).collect();
                    self.error(
                        name,
                        format!("unknown status {part:?}; use any of {}", known.join(", ")),
                    );
                }
            }
        }
        out
    }

    /// Every problem found while reading, as one `Invalid` error.
    pub fn finish(self) -> Result<(), Error> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(self.errors))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn query_values_are_decoded_and_validated() {
        let mut q = Query::parse(Some(
            "status=passed,%20failed&limit=7&since=2025-01-31T12%3A00%3A00Z&empty=",
        ));
        assert_eq!(
            q.statuses("status"),
            vec![ExecutionStatus::Passed, ExecutionStatus::Failed]
        );
        assert_eq!(q.u32("limit"), Some(7));
        assert_eq!(
            q.time("since").map(|t| t.unix_timestamp()),
            Some(1_738_324_800)
        );
        assert_eq!(q.string("empty"), None);
        assert_eq!(q.string("absent"), None);
        assert!(q.finish().is_ok());
    }

    #[test]
    fn bad_query_values_become_field_errors() {
        let mut q = Query::parse(Some(
            "status=passed,bogus&limit=-1&since=yesterday&last=0&download=maybe&big=99999999999",
        ));
        q.statuses("status");
        q.u32("limit");
        q.time("since");
        q.count("last", 100, 1000);
        q.bool("download");
        q.u32("big");
        let Err(Error::Invalid(errors)) = q.finish() else {
            panic!("expected Invalid");
        };
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            vec!["status", "limit", "since", "last", "download", "big"]
        );
        assert!(errors[0].message.contains("\"bogus\""));
    }

    #[test]
    fn typed_bodies_name_the_bad_field_and_never_quote_secrets() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            name: String,
            #[serde(default)]
            password: Option<String>,
            #[serde(default)]
            grants: std::collections::BTreeMap<String, assay_core::Level>,
        }
        let map = |s: &str| serde_json::from_str(s).unwrap();
        let known = &["name", "password", "grants"];
        let Err(Error::Invalid(errors)) = typed_body::<Body>(
            map(r#"{"name": "x", "grants": {"dev": "superuser"}}"#),
            known,
        ) else {
            panic!("expected Invalid");
        };
        assert_eq!(errors[0].path, "grants.dev");
        assert!(errors[0].message.contains("superuser"), "{errors:?}");
        let Err(Error::Invalid(errors)) =
            typed_body::<Body>(map(r#"{"name": "x", "password": 1234567}"#), known)
        else {
            panic!("expected Invalid");
        };
        assert_eq!(errors[0].path, "password");
        assert_eq!(errors[0].message, "must be a string");
        let Err(Error::Invalid(errors)) = typed_body::<Body>(map(r#"{"grants": {}}"#), known)
        else {
            panic!("expected Invalid");
        };
        assert_eq!(errors[0].path, "");
        assert_eq!(errors[0].message, "missing field `name`");
        let Err(Error::Invalid(errors)) = typed_body::<Body>(map(r#"{"nme": "x"}"#), known) else {
            panic!("expected Invalid");
        };
        assert_eq!(errors[0].path, "nme");
        let ok = typed_body::<Body>(map(r#"{"name": "x", "grants": {"dev": "run"}}"#), known);
        assert_eq!(ok.unwrap().grants["dev"], assay_core::Level::Run);
    }

    #[test]
    fn one_of_accepts_only_listed_words() {
        let mut q = Query::parse(Some("format=csv&outcome=maybe"));
        assert_eq!(q.one_of("format", &["jsonl", "csv"]), Some("csv"));
        assert_eq!(q.one_of("outcome", &["success", "denied", "error"]), None);
        assert_eq!(q.one_of("absent", &["x"]), None);
        let Err(Error::Invalid(errors)) = q.finish() else {
            panic!("expected Invalid");
        };
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "outcome");
    }

    #[test]
    fn unknown_body_fields_are_named() {
        let body: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"config": {}, "tagz": {}}"#).unwrap();
        let Err(Error::Invalid(errors)) = reject_unknown_fields(&body, &["config", "tags"]) else {
            panic!("expected Invalid");
        };
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "tagz");
    }
}
