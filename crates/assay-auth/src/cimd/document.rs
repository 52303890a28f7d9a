//! The contents of a Client ID Metadata Document and the rules it must satisfy.

use serde::Deserialize;
use url::Url;

use super::CimdError;
use crate::redirect::{self, RedirectUri};

/// Longest `client_name` kept, in characters; longer names are cut.
pub const MAX_CLIENT_NAME_CHARS: usize = 100;
pub const MAX_REDIRECT_URIS: usize = 20;

/// A validated client description, as the consent page and the authorization
/// endpoint need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMetadata {
    /// The document URL, equal to the document's `client_id`.
    pub client_id: String,
    /// Display name, control and bidi-override characters removed, at most
    /// [`MAX_CLIENT_NAME_CHARS`] characters.
    pub client_name: String,
    pub redirect_uris: Vec<RedirectUri>,
    /// An `https` homepage, if the document gives a valid one. Never fetched here.
    pub client_uri: Option<String>,
    /// An `https` logo URL, if the document gives a valid one. Never fetched here.
    pub logo_uri: Option<String>,
    /// The scope the client says it wants by default, as written.
    pub scope: Option<String>,
}

impl ClientMetadata {
    /// The host of the `client_id` URL, which the consent page shows next to the name.
    pub fn client_id_host(&self) -> Option<String> {
        Url::parse(&self.client_id)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
    }

    /// Every redirect URI is loopback: anyone can run such a client locally under this
    /// `client_id`, so the consent page should warn (localhost impersonation).
    pub fn has_only_loopback_redirects(&self) -> bool {
        self.redirect_uris.iter().all(RedirectUri::is_loopback)
    }
}

#[derive(Deserialize)]
struct RawDocument {
    client_id: Option<String>,
    client_name: Option<String>,
    redirect_uris: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    client_uri: Option<String>,
    logo_uri: Option<String>,
    scope: Option<String>,
}

/// Parses and checks a fetched document. `client_id` is the URL it was fetched from,
/// exactly as the client sent it.
pub(crate) fn parse(body: &[u8], client_id: &str) -> Result<ClientMetadata, CimdError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| CimdError::InvalidJson(e.to_string()))?;
    if !value.is_object() {
        return Err(CimdError::InvalidJson(
            "the document is not a JSON object".into(),
        ));
    }
    // Checked on the raw object: `"client_secret": null` is still a secret-bearing
    // client by intent, and serde would read it as absent.
    let has_secret = value.get("client_secret").is_some();
    let raw: RawDocument =
        serde_json::from_value(value).map_err(|e| CimdError::InvalidJson(e.to_string()))?;

    let document_id = raw.client_id.ok_or(CimdError::MissingField("client_id"))?;
    // Simple string comparison, no normalisation (CIMD §4).
    if document_id != client_id {
        return Err(CimdError::ClientIdMismatch {
            document: document_id,
        });
    }
    if has_secret {
        return Err(CimdError::ClientSecretPresent);
    }
    match raw.token_endpoint_auth_method.as_deref() {
        None | Some("none") => {}
        Some(m) if m.starts_with("client_secret") => {
            return Err(CimdError::SecretAuthMethod(m.to_owned()));
        }
        Some(m) => return Err(CimdError::UnsupportedAuthMethod(m.to_owned())),
    }

    let uris = raw.redirect_uris.unwrap_or_default();
    if uris.is_empty() {
        return Err(CimdError::NoRedirectUris);
    }
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(CimdError::TooManyRedirectUris(uris.len()));
    }
    let redirect_uris = uris
        .iter()
        .enumerate()
        .map(|(index, uri)| {
            redirect::validate(uri).map_err(|error| CimdError::InvalidRedirectUri { index, error })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let client_name = clean_name(
        &raw.client_name
            .ok_or(CimdError::MissingField("client_name"))?,
    );
    if client_name.is_empty() {
        return Err(CimdError::EmptyClientName);
    }

    Ok(ClientMetadata {
        client_id: document_id,
        client_name,
        redirect_uris,
        client_uri: raw.client_uri.filter(|u| is_https_url(u)),
        logo_uri: raw.logo_uri.filter(|u| is_https_url(u)),
        scope: raw.scope,
    })
}

/// Removes control characters and the invisible direction/format characters used to
/// make one name look like another, trims, and cuts to [`MAX_CLIENT_NAME_CHARS`].
fn clean_name(name: &str) -> String {
    let is_format = |c: char| {
        matches!(c,
            '\u{00ad}' | '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}' | '\u{feff}')
    };
    let kept: String = name
        .chars()
        .filter(|c| !c.is_control() && !is_format(*c))
        .collect();
    kept.trim()
        .chars()
        .take(MAX_CLIENT_NAME_CHARS)
        .collect::<String>()
        .trim_end()
        .to_owned()
}

fn is_https_url(s: &str) -> bool {
    s.len() <= redirect::MAX_LEN
        && Url::parse(s).is_ok_and(|u| {
            u.scheme() == "https"
                && u.as_str() == s
                && u.username().is_empty()
                && u.password().is_none()
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::redirect::RedirectUriError;
    use serde_json::{Value, json};

    const ID: &str = "https://client.example/cimd.json";

    fn doc() -> Value {
        json!({
            "client_id": ID,
            "client_name": "Example Client",
            "redirect_uris": ["http://127.0.0.1/callback", "https://client.example/cb"],
            "token_endpoint_auth_method": "none",
            "client_uri": "https://client.example/",
            "logo_uri": "https://client.example/logo.png",
            "scope": "mcp:read",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"]
        })
    }

    fn parse_value(v: &Value) -> Result<ClientMetadata, CimdError> {
        parse(v.to_string().as_bytes(), ID)
    }

    fn with(key: &str, value: Value) -> Value {
        let mut d = doc();
        d[key] = value;
        d
    }

    fn without(key: &str) -> Value {
        let mut d = doc();
        d.as_object_mut().unwrap().remove(key);
        d
    }

    #[test]
    fn valid_document() {
        let m = parse_value(&doc()).unwrap();
        assert_eq!(m.client_id, ID);
        assert_eq!(m.client_name, "Example Client");
        assert_eq!(
            m.redirect_uris
                .iter()
                .map(RedirectUri::as_str)
                .collect::<Vec<_>>(),
            ["http://127.0.0.1/callback", "https://client.example/cb"]
        );
        assert_eq!(m.client_uri.as_deref(), Some("https://client.example/"));
        assert_eq!(
            m.logo_uri.as_deref(),
            Some("https://client.example/logo.png")
        );
        assert_eq!(m.scope.as_deref(), Some("mcp:read"));
        assert_eq!(m.client_id_host().as_deref(), Some("client.example"));
        assert!(!m.has_only_loopback_redirects());
        // The auth method may be omitted: it defaults to none for these clients.
        assert!(parse_value(&without("token_endpoint_auth_method")).is_ok());
        let loopback =
            parse_value(&with("redirect_uris", json!(["http://localhost:1/cb"]))).unwrap();
        assert!(loopback.has_only_loopback_redirects());
    }

    #[test]
    fn refusals() {
        let cases: Vec<(Value, CimdError)> = vec![
            (without("client_id"), CimdError::MissingField("client_id")),
            (
                with("client_id", json!("https://client.example/cimd.json/")),
                CimdError::ClientIdMismatch {
                    document: "https://client.example/cimd.json/".into(),
                },
            ),
            (
                with("client_id", json!("https://CLIENT.example/cimd.json")),
                CimdError::ClientIdMismatch {
                    document: "https://CLIENT.example/cimd.json".into(),
                },
            ),
            (
                with("client_id", json!("https://evil.example/cimd.json")),
                CimdError::ClientIdMismatch {
                    document: "https://evil.example/cimd.json".into(),
                },
            ),
            (
                with("client_secret", json!("s3cret")),
                CimdError::ClientSecretPresent,
            ),
            (
                with("client_secret", json!(null)),
                CimdError::ClientSecretPresent,
            ),
            (
                with("token_endpoint_auth_method", json!("client_secret_basic")),
                CimdError::SecretAuthMethod("client_secret_basic".into()),
            ),
            (
                with("token_endpoint_auth_method", json!("client_secret_post")),
                CimdError::SecretAuthMethod("client_secret_post".into()),
            ),
            (
                with("token_endpoint_auth_method", json!("client_secret_jwt")),
                CimdError::SecretAuthMethod("client_secret_jwt".into()),
            ),
            (
                with("token_endpoint_auth_method", json!("private_key_jwt")),
                CimdError::UnsupportedAuthMethod("private_key_jwt".into()),
            ),
            (
                with("token_endpoint_auth_method", json!("None")),
                CimdError::UnsupportedAuthMethod("None".into()),
            ),
            (without("redirect_uris"), CimdError::NoRedirectUris),
            (with("redirect_uris", json!([])), CimdError::NoRedirectUris),
            (
                with(
                    "redirect_uris",
                    json!(vec!["https://client.example/cb"; 21]),
                ),
                CimdError::TooManyRedirectUris(21),
            ),
            (
                with(
                    "redirect_uris",
                    json!(["https://client.example/cb", "javascript:alert(1)"]),
                ),
                CimdError::InvalidRedirectUri {
                    index: 1,
                    error: RedirectUriError::ForbiddenScheme("javascript".into()),
                },
            ),
            (
                with("redirect_uris", json!(["http://client.example/cb"])),
                CimdError::InvalidRedirectUri {
                    index: 0,
                    error: RedirectUriError::HttpRequiresLoopback,
                },
            ),
            (
                with("redirect_uris", json!(["https://client.example/cb#x"])),
                CimdError::InvalidRedirectUri {
                    index: 0,
                    error: RedirectUriError::Fragment,
                },
            ),
            (
                without("client_name"),
                CimdError::MissingField("client_name"),
            ),
            (
                with("client_name", json!(" \u{202e}\u{7}\t ")),
                CimdError::EmptyClientName,
            ),
        ];
        for (d, expected) in cases {
            assert_eq!(parse_value(&d), Err(expected), "{d}");
        }
        for bad in [
            &b"not json"[..],
            b"[]",
            b"\"https://client.example/cimd.json\"",
            b"{\"client_id\": 7}",
            b"{\"redirect_uris\": \"https://x/cb\"}",
        ] {
            assert!(
                matches!(parse(bad, ID), Err(CimdError::InvalidJson(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn client_name_is_cleaned_and_bounded() {
        let cases: &[(&str, &str)] = &[
            ("  Example  ", "Example"),
            ("Ex\u{0}am\u{1b}[31mple", "Exam[31mple"),
            ("Good\u{202e}lanigiro", "Goodlanigiro"),
            ("A\u{200b}B\u{feff}C\u{2066}D", "ABCD"),
            ("Line\nBreak", "LineBreak"),
            ("Café ☕", "Café ☕"),
        ];
        for (input, expected) in cases {
            let m = parse_value(&with("client_name", json!(input))).unwrap();
            assert_eq!(m.client_name, *expected, "{input:?}");
        }
        let long = "é".repeat(300);
        let m = parse_value(&with("client_name", json!(long))).unwrap();
        assert_eq!(m.client_name.chars().count(), MAX_CLIENT_NAME_CHARS);
    }

    #[test]
    fn optional_urls_are_dropped_when_not_https() {
        for bad in [
            "http://client.example/",
            "javascript:alert(1)",
            "https://u@client.example/",
            "not a url",
        ] {
            let m = parse_value(&with("logo_uri", json!(bad))).unwrap();
            assert_eq!(m.logo_uri, None, "{bad}");
            let m = parse_value(&with("client_uri", json!(bad))).unwrap();
            assert_eq!(m.client_uri, None, "{bad}");
        }
    }
}
