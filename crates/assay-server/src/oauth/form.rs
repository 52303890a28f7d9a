//! Form bodies (`application/x-www-form-urlencoded`) and query strings, read with a size
//! limit far below the server's general body limit: no OAuth form needs more than a few
//! kilobytes. Values are kept as a list, so a repeated parameter is visible (RFC 6749 §3.1:
//! parameters must not appear more than once).

use axum::body::Body;
use axum::http::{HeaderMap, Uri, header};

/// Largest form body read: an authorization request (redirect URI ≤ 2000 characters, a
/// URL client id, state) plus login fields fits many times over.
pub(crate) const MAX_FORM_BYTES: usize = 16 * 1024;

/// Largest JSON body read (dynamic client registration).
pub(crate) const MAX_JSON_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Form(Vec<(String, String)>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FormError {
    /// The body is not `application/x-www-form-urlencoded`.
    ContentType,
    TooLarge,
    /// The connection failed while the body was read.
    Unreadable,
}

impl FormError {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            FormError::ContentType => "the request body must be application/x-www-form-urlencoded",
            FormError::TooLarge => "the request body is too large",
            FormError::Unreadable => "the request body could not be read",
        }
    }
}

impl Form {
    pub(crate) fn parse(text: &[u8]) -> Self {
        Self(
            url::form_urlencoded::parse(text)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// A request's query string (none: an empty form).
    pub(crate) fn query(uri: &Uri) -> Self {
        Self::parse(uri.query().unwrap_or_default().as_bytes())
    }

    /// Every pair, in order, empty values included (the control plane's parameter
    /// parsers see exactly what was sent).
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The first value of `name`; an empty value counts as absent (RFC 6749 §3.1).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// How many times `name` appears with a value.
    pub(crate) fn count(&self, name: &str) -> usize {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .count()
    }

    /// The first of `names` that appears more than once.
    pub(crate) fn repeated<'a>(&self, names: &[&'a str]) -> Option<&'a str> {
        names.iter().copied().find(|n| self.count(n) > 1)
    }

    /// The pairs whose names are in `names`, in order (to carry a request through a form).
    pub(crate) fn only<'a>(&'a self, names: &[&str]) -> Vec<(&'a str, &'a str)> {
        self.0
            .iter()
            .filter(|(k, v)| names.contains(&k.as_str()) && !v.is_empty())
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// Whether the request says its body is `essence` (parameters such as `charset` allowed).
pub(crate) fn has_content_type(headers: &HeaderMap, essence: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(essence))
}

/// Reads a body of at most `limit` bytes.
pub(crate) async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, FormError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        // `to_bytes` reports the limit as a `LengthLimitError` somewhere in the source chain.
        let mut source: Option<&dyn std::error::Error> = Some(&e);
        while let Some(err) = source {
            if err.is::<http_body_util::LengthLimitError>() {
                return FormError::TooLarge;
            }
            source = err.source();
        }
        FormError::Unreadable
    })
}

/// Reads a form body (checking its content type).
pub(crate) async fn read_form(headers: &HeaderMap, body: Body) -> Result<Form, FormError> {
    if !has_content_type(headers, "application/x-www-form-urlencoded") {
        return Err(FormError::ContentType);
    }
    let bytes = read_body(body, MAX_FORM_BYTES).await?;
    Ok(Form::parse(&bytes))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn values_are_decoded_and_repeats_are_seen() {
        let f = Form::parse(b"a=1&b=x%20y+z&a=2&c=&resource=r");
        assert_eq!(f.get("a"), Some("1"));
        assert_eq!(f.get("b"), Some("x y z"));
        assert_eq!(f.get("c"), None);
        assert_eq!(f.count("a"), 2);
        assert_eq!(f.repeated(&["b", "a"]), Some("a"));
        assert_eq!(f.repeated(&["b", "c"]), None);
        assert_eq!(
            f.only(&["resource", "b"]),
            vec![("b", "x y z"), ("resource", "r")]
        );
    }

    #[tokio::test]
    async fn bodies_over_the_limit_and_wrong_types_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=UTF-8"),
        );
        let big = "a=".to_owned() + &"x".repeat(MAX_FORM_BYTES);
        assert_eq!(
            read_form(&h, Body::from(big)).await,
            Err(FormError::TooLarge)
        );
        assert_eq!(
            read_form(&h, Body::from("a=1")).await.unwrap().get("a"),
            Some("1")
        );
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        assert_eq!(
            read_form(&h, Body::from("a=1")).await,
            Err(FormError::ContentType)
        );
    }
}
