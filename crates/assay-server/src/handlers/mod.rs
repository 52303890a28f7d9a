//! Request handlers: each turns HTTP into one `ControlPlane` call and its result back
//! into HTTP. No authorization or audit here (DESIGN.md §1).

pub mod artifacts;
pub mod audit;
pub mod documents;
pub mod executions;
pub mod grants;
pub mod insight;
pub mod me;
pub mod members;
pub mod system;
pub mod tokens;

use crate::problem::{ApiError, ProblemKind};
use assay_core::{EnvRef, Error};
use axum::http::HeaderValue;
use serde::{Deserialize, Serialize};

/// `{"items": [...]}`: the shape of every unpaged list.
#[derive(Debug, Serialize)]
pub struct Items<T> {
    pub items: Vec<T>,
}

/// `/v1/organizations/{org}/…`
#[derive(Debug, Deserialize)]
pub struct OrgPath {
    pub org: String,
}

/// The default `Forbidden` wording speaks of environments; on organization routes it
/// would mislead, so these say what is actually needed.
pub fn org_admin_error(e: Error) -> ApiError {
    match e {
        Error::Forbidden { .. } => ApiError::new(
            ProblemKind::Forbidden,
            "this needs organization admin rights (an owner or admin user, or an admin API token)",
        ),
        other => other.into(),
    }
}

/// `Forbidden` on the API token routes.
pub fn token_error(e: Error) -> ApiError {
    match e {
        Error::Forbidden { needed } => ApiError::new(
            ProblemKind::Forbidden,
            format!(
                "you may not do this: API tokens are managed by the users who created them and by \
                 organization admins, and no token can carry more power than its creator has \
                 (this needs {needed} permission)"
            ),
        ),
        other => other.into(),
    }
}

#[derive(Debug, Deserialize)]
pub struct EnvPath {
    pub org: String,
    pub env: String,
}

impl EnvPath {
    pub fn env_ref(&self) -> EnvRef {
        EnvRef::new(&self.org, &self.env)
    }
}

#[derive(Debug, Deserialize)]
pub struct NamedPath {
    pub org: String,
    pub env: String,
    pub name: String,
}

impl NamedPath {
    pub fn env_ref(&self) -> EnvRef {
        EnvRef::new(&self.org, &self.env)
    }
}

#[derive(Debug, Deserialize)]
pub struct ExecutionPath {
    pub org: String,
    pub env: String,
    pub execution: String,
}

impl ExecutionPath {
    pub fn env_ref(&self) -> EnvRef {
        EnvRef::new(&self.org, &self.env)
    }
}

/// The absolute URL of a resource under the server's public URL, each segment
/// percent-encoded, for `Location` headers.
pub fn location(base: &url::Url, segments: &[&str]) -> Option<HeaderValue> {
    let mut url = base.clone();
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(segments);
    HeaderValue::from_str(url.as_str()).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::location;

    #[test]
    fn locations_encode_segments_under_the_public_url() {
        let base = url::Url::parse("https://assay.example/prefix/").unwrap();
        let v = location(&base, &["v1", "organizations", "a b", "x/y"]).unwrap();
        assert_eq!(
            v.to_str().unwrap(),
            "https://assay.example/prefix/v1/organizations/a%20b/x%2Fy"
        );
        let base = url::Url::parse("http://127.0.0.1:8080").unwrap();
        let v = location(&base, &["v1", "x"]).unwrap();
        assert_eq!(v.to_str().unwrap(), "http://127.0.0.1:8080/v1/x");
    }
}
