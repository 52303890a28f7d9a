//! What the CIMD fetcher and the upstream client share about reading a response:
//! the body whole under a byte cap, and a transport error with its causes.

use reqwest::header::CONTENT_LENGTH;

pub(crate) enum BodyError {
    TooLarge,
    Transport(reqwest::Error),
}

/// The whole body, or [`BodyError::TooLarge`] past `limit` bytes. Counted while
/// streaming too, since `Content-Length` may be absent or wrong.
pub(crate) async fn read_capped(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::with_capacity(limit.min(declared.unwrap_or(0) as usize));
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The error's message followed by its chain of causes (refused connection, TLS
/// failure), which reqwest's own message leaves out.
pub(crate) fn error_chain(e: &reqwest::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}
