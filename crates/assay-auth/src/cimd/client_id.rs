//! Which `client_id` values are Client ID Metadata Document URLs, and which of those
//! are acceptable: `https`, a path, no fragment, no user information, no dot segments,
//! and written in the one form the URL parser would produce — because the document's
//! own `client_id` must equal the URL byte for byte, two spellings of one URL would be
//! two clients.

use url::Url;

pub const MAX_CLIENT_ID_LEN: usize = 2000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientIdError {
    #[error("the client_id URL is longer than {MAX_CLIENT_ID_LEN} characters")]
    TooLong,
    #[error("the client_id is not a URL")]
    NotUrl,
    #[error("the client_id URL must use https, not {0:?}")]
    NotHttps(String),
    #[error("the client_id URL must not contain user information")]
    Userinfo,
    #[error("the client_id URL must not contain a fragment")]
    Fragment,
    #[error("the client_id URL must have a path")]
    MissingPath,
    #[error("the client_id URL must not contain . or .. path segments")]
    DotSegment,
    #[error("the client_id URL is not in normalized form (expected {0:?})")]
    NotNormalized(String),
}

/// Whether a `client_id` is meant as a metadata document URL (as opposed to an ID this
/// server issued, which never starts with `https://`).
pub fn is_metadata_document_url(client_id: &str) -> bool {
    client_id.starts_with("https://")
}

/// Validates a metadata document `client_id`. `allow_http` admits `http` URLs for a
/// loopback test server; the SSRF policy then insists the host is loopback.
pub fn parse_client_id(client_id: &str, allow_http: bool) -> Result<Url, ClientIdError> {
    if client_id.len() > MAX_CLIENT_ID_LEN {
        return Err(ClientIdError::TooLong);
    }
    if client_id.contains('#') {
        return Err(ClientIdError::Fragment);
    }
    let url = Url::parse(client_id).map_err(|_| ClientIdError::NotUrl)?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        other => return Err(ClientIdError::NotHttps(other.to_owned())),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ClientIdError::Userinfo);
    }
    if has_dot_segment(client_id) {
        return Err(ClientIdError::DotSegment);
    }
    if url.path().is_empty() || url.path() == "/" {
        return Err(ClientIdError::MissingPath);
    }
    if url.as_str() != client_id {
        return Err(ClientIdError::NotNormalized(url.as_str().to_owned()));
    }
    Ok(url)
}

/// Dot segments as written, including the percent-encoded spellings (`%2e`, `.%2E`)
/// that URL parsers also treat as dots.
fn has_dot_segment(raw: &str) -> bool {
    let Some((_, after_scheme)) = raw.split_once("://") else {
        return false;
    };
    let before_query = after_scheme.split('?').next().unwrap_or_default();
    let Some(path_start) = before_query.find(['/', '\\']) else {
        return false;
    };
    before_query[path_start..]
        .split(['/', '\\'])
        .map(|segment| segment.to_ascii_lowercase().replace("%2e", "."))
        .any(|segment| segment == "." || segment == "..")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use ClientIdError as E;

    #[test]
    fn accepted() {
        for ok in [
            "https://client.example/cimd.json",
            "https://client.example/oauth/client-metadata.json",
            "https://client.example:8443/c",
            "https://client.example/c?v=1",
            "https://client.example/a.b/c..d/.e",
        ] {
            assert_eq!(
                parse_client_id(ok, false).map(|u| u.to_string()),
                Ok(ok.to_owned())
            );
        }
        assert!(parse_client_id("http://127.0.0.1:8080/c.json", true).is_ok());
    }

    #[test]
    fn refused() {
        let long = format!("https://client.example/{}", "a".repeat(MAX_CLIENT_ID_LEN));
        let cases: &[(&str, ClientIdError)] = &[
            (&long, E::TooLong),
            ("client-123", E::NotUrl),
            ("", E::NotUrl),
            ("http://client.example/c.json", E::NotHttps("http".into())),
            ("ftp://client.example/c.json", E::NotHttps("ftp".into())),
            ("urn:client:1", E::NotHttps("urn".into())),
            ("https://client.example/c.json#x", E::Fragment),
            ("https://client.example/c.json#", E::Fragment),
            ("https://user@client.example/c.json", E::Userinfo),
            ("https://user:pw@client.example/c.json", E::Userinfo),
            ("https://client.example", E::MissingPath),
            ("https://client.example/", E::MissingPath),
            ("https://client.example/?x=1", E::MissingPath),
            ("https://client.example/a/../c.json", E::DotSegment),
            ("https://client.example/./c.json", E::DotSegment),
            ("https://client.example/a/%2e%2e/c.json", E::DotSegment),
            ("https://client.example/a/.%2E/c.json", E::DotSegment),
            ("https://client.example/a/%2E/c.json", E::DotSegment),
            ("https://client.example/a/..", E::DotSegment),
            ("https://client.example/a\\..\\c.json", E::DotSegment),
            (
                "https://Client.Example/c.json",
                E::NotNormalized("https://client.example/c.json".into()),
            ),
            (
                "HTTPS://client.example/c.json",
                E::NotNormalized("https://client.example/c.json".into()),
            ),
            (
                "https://client.example:443/c.json",
                E::NotNormalized("https://client.example/c.json".into()),
            ),
            (
                " https://client.example/c.json",
                E::NotNormalized("https://client.example/c.json".into()),
            ),
            (
                "https://client.example/c.json\t",
                E::NotNormalized("https://client.example/c.json".into()),
            ),
            (
                "https://client.example/c d.json",
                E::NotNormalized("https://client.example/c%20d.json".into()),
            ),
            (
                "https://0x7f.1/c.json",
                E::NotNormalized("https://127.0.0.1/c.json".into()),
            ),
            (
                "https://client.example\\c.json",
                E::NotNormalized("https://client.example/c.json".into()),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                parse_client_id(input, false),
                Err(expected.clone()),
                "{input:?}"
            );
        }
        assert_eq!(
            parse_client_id("http://127.0.0.1/c.json", false),
            Err(E::NotHttps("http".into()))
        );
    }

    #[test]
    fn detection() {
        assert!(is_metadata_document_url("https://client.example/c.json"));
        assert!(!is_metadata_document_url("http://client.example/c.json"));
        assert!(!is_metadata_document_url(
            "0190d1c2-0000-7000-8000-000000000001"
        ));
    }
}
