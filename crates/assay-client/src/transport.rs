//! Sending requests and turning every kind of failure into an `assay_core::Error` that
//! tells the user what to do.

use crate::problem::{Expect, error_from_response};
use crate::{Credential, RemoteControlPlane};
use assay_core::{Error, Result};
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use url::Url;

/// Start of the `Unavailable` message for a server that cannot be reached at all.
pub const CANNOT_REACH: &str = "cannot reach";

/// Whether `e` says the server could not be reached (as opposed to a server that
/// answered `unavailable`).
pub fn is_connection_error(e: &Error) -> bool {
    matches!(e, Error::Unavailable(m) if m.starts_with(CANNOT_REACH))
}

/// Error bodies are read up to this size; the rest is not worth holding.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Whether the request may take as long as it needs (log streams, downloads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deadline {
    Bounded,
    Unbounded,
}

impl RemoteControlPlane {
    pub(crate) fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.request_accepting(method, url, "application/json, application/problem+json")
    }

    pub(crate) fn request_accepting(
        &self,
        method: Method,
        url: Url,
        accept: &'static str,
    ) -> RequestBuilder {
        // The credential is attached by `send`, which may have to refresh it first.
        self.http.request(method, url).header(ACCEPT, accept)
    }

    /// The bearer for the next request, refreshed first when an OAuth token is about to
    /// expire.
    async fn bearer(&self) -> Result<Option<String>> {
        match &self.config.credential {
            Credential::None => Ok(None),
            Credential::Bearer(token) if token.is_empty() => Ok(None),
            Credential::Bearer(token) => Ok(Some(token.clone())),
            Credential::OAuth(session) => session.access_token().await.map(Some),
        }
    }

    async fn send_with(&self, req: RequestBuilder, bearer: Option<&str>) -> Result<Response> {
        let req = match bearer {
            Some(token) => req.bearer_auth(token),
            None => req,
        };
        req.send().await.map_err(|e| self.transport_error(&e))
    }

    /// Sends and checks the status: success responses are returned, anything else is
    /// mapped to an error.
    pub(crate) async fn send(
        &self,
        req: RequestBuilder,
        expect: &Expect,
        deadline: Deadline,
    ) -> Result<Response> {
        let req = match deadline {
            Deadline::Bounded => req.timeout(self.config.timeout),
            Deadline::Unbounded => req,
        };
        // Kept for one resend after a refresh; every body here is buffered, so the
        // clone only fails for a streaming body, whose 401 is then returned as is.
        let resend = match &self.config.credential {
            Credential::OAuth(_) => req.try_clone(),
            _ => None,
        };
        let bearer = self.bearer().await?;
        let mut resp = self.send_with(req, bearer.as_deref()).await?;
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED
            && let (Credential::OAuth(session), Some(resend), Some(rejected)) =
                (&self.config.credential, resend, bearer.as_deref())
        {
            tracing::debug!(path = %resp.url().path(), "access token rejected; refreshing once");
            let fresh = session.refresh_after_rejection(rejected).await?;
            resp = self.send_with(resend, Some(&fresh)).await?;
        }
        tracing::debug!(
            path = %resp.url().path(),
            status = resp.status().as_u16(),
            "assay API answered"
        );
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let request_id = request_id(resp.headers());
        let body = self.read_bounded(resp).await?;
        Err(error_from_response(
            status,
            &body,
            request_id.as_deref(),
            expect,
        ))
    }

    /// Sends and decodes a JSON success body.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        req: RequestBuilder,
        expect: &Expect,
    ) -> Result<T> {
        let resp = self.send(req, expect, Deadline::Bounded).await?;
        self.decode(resp).await
    }

    pub(crate) async fn decode<T: DeserializeOwned>(&self, resp: Response) -> Result<T> {
        let url = resp.url().path().to_owned();
        let body = resp.bytes().await.map_err(|e| self.transport_error(&e))?;
        serde_json::from_slice(&body).map_err(|e| {
            Error::Internal(format!(
                "unexpected response from the server for {url} ({e}): {}",
                crate::problem::snippet(&body)
            ))
        })
    }

    /// The body as a stream of chunks, transport failures mapped.
    pub(crate) fn body_stream(&self, resp: Response) -> BoxStream<'static, Result<Bytes>> {
        let this = self.clone();
        resp.bytes_stream()
            .map(move |chunk| chunk.map_err(|e| this.transport_error(&e)))
            .boxed()
    }

    async fn read_bounded(&self, mut resp: Response) -> Result<Vec<u8>> {
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport_error(&e))? {
            let room = MAX_ERROR_BODY.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= MAX_ERROR_BODY {
                break;
            }
        }
        Ok(body)
    }

    pub(crate) fn transport_error(&self, e: &reqwest::Error) -> Error {
        let base = &self.config.base_url;
        let cause = root_cause(e);
        if e.is_connect() {
            Error::Unavailable(format!(
                "{CANNOT_REACH} {base}: {cause}; check --url/ASSAY_URL"
            ))
        } else if e.is_timeout() {
            Error::Unavailable(format!(
                "no answer from {base} within {}s; the server may be overloaded, try again",
                self.config.timeout.as_secs_f64()
            ))
        } else if e.is_body() || e.is_decode() {
            Error::Unavailable(format!("the connection to {base} broke: {cause}"))
        } else if e.is_request() {
            Error::Unavailable(format!(
                "{CANNOT_REACH} {base}: {cause}; check --url/ASSAY_URL"
            ))
        } else {
            Error::Internal(format!("request to {base} failed: {cause}"))
        }
    }
}

/// The request's documents are YAML unless they are plainly JSON (JSON is YAML too, the
/// server accepts either; the type only helps its error messages).
pub(crate) fn document_request(req: RequestBuilder, source: &str) -> RequestBuilder {
    let content_type = if source.trim_start().starts_with('{') {
        "application/json"
    } else {
        "application/yaml"
    };
    req.header(CONTENT_TYPE, content_type)
        .body(source.to_owned())
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The innermost message of an error chain ("Connection refused (os error 111)"), which
/// is what a user can act on; the outer ones repeat the URL.
pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}
