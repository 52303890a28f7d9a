//! RFC 7591 dynamic client registration, for public clients only.
//!
//! - `token_endpoint_auth_method` absent or `none` (no client secrets exist here);
//! - `grant_types` ⊆ {authorization_code, refresh_token}, `response_types` ⊆ {code};
//! - `redirect_uris` required, each valid by `assay_auth::redirect::validate`;
//! - the ID is generated (`assay_client_…`), never an `https://` URL, which would read
//!   as a metadata document;
//! - rate-limited per client IP; a registration never used expires
//!   (`OAuthConfig::unused_registration_ttl`) and is deleted by the retention sweep.

use super::events::{self, OAuthEvent};
use super::{AuthorizationServer, OAuthError, RequestContext, after, ip_key};
use assay_auth::cimd::{MAX_CLIENT_NAME_CHARS, MAX_REDIRECT_URIS};
use assay_auth::redirect;
use assay_core::oauth::{OAuthClient, OAuthClientKind};
use rand::TryRngCore as _;
use rand::rngs::OsRng;
use serde_json::{Value, json};
use uuid::Uuid;

pub const CLIENT_ID_PREFIX: &str = "assay_client_";
const DEFAULT_NAME: &str = "Unnamed client";
const ALLOWED_GRANT_TYPES: [&str; 2] = ["authorization_code", "refresh_token"];

/// A registration request after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Registration {
    name: String,
    redirect_uris: Vec<String>,
    grant_types: Vec<String>,
}

impl AuthorizationServer {
    /// Returns the RFC 7591 §3.2.1 response body (the server answers 201).
    pub async fn register(&self, body: &Value, ctx: &RequestContext) -> Result<Value, OAuthError> {
        self.public()?;
        let now = self.now();
        self.registrations
            .acquire(&ip_key(ctx), now)
            .map_err(OAuthError::rate_limited)?;
        let registration = parse(body)?;
        let client = OAuthClient {
            id: new_client_id()?,
            kind: OAuthClientKind::Registered,
            client_name: registration.name.clone(),
            redirect_uris: registration.redirect_uris.clone(),
            created_at: now,
            last_used_at: None,
            expires_at: Some(after(now, self.config.unused_registration_ttl)),
        };
        self.store.insert_oauth_client(&client).await?;
        let event = OAuthEvent::new(
            events::CLIENT_REGISTERED,
            Uuid::nil(),
            events::client_actor(Some(&client.id), Uuid::nil()),
        )
        .resource(format!("client:{}", client.id))
        .reason(format!(
            "dynamic registration of {:?} with {} redirect URI(s)",
            client.client_name,
            client.redirect_uris.len()
        ));
        self.record(ctx, event).await?;
        Ok(json!({
            "client_id": client.id,
            "client_id_issued_at": now.unix_timestamp(),
            "client_name": client.client_name,
            "redirect_uris": client.redirect_uris,
            "grant_types": registration.grant_types,
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }))
    }
}

fn parse(body: &Value) -> Result<Registration, OAuthError> {
    let meta = |d: String| OAuthError::invalid_client_metadata(d);
    let object = body
        .as_object()
        .ok_or_else(|| meta("the registration request must be a JSON object".into()))?;
    match object.get("token_endpoint_auth_method") {
        None | Some(Value::Null) => {}
        Some(Value::String(m)) if m == "none" => {}
        Some(_) => {
            return Err(meta(
                "token_endpoint_auth_method must be \"none\": only public clients can register"
                    .into(),
            ));
        }
    }
    if object.contains_key("client_secret") {
        return Err(meta(
            "client secrets are not supported: register a public client".into(),
        ));
    }
    let grant_types = match object.get("grant_types") {
        None | Some(Value::Null) => vec!["authorization_code".to_owned()],
        Some(value) => strings(value, "grant_types")?,
    };
    if let Some(bad) = grant_types
        .iter()
        .find(|g| !ALLOWED_GRANT_TYPES.contains(&g.as_str()))
    {
        return Err(meta(format!(
            "grant type {bad:?} is not allowed; use authorization_code and refresh_token"
        )));
    }
    let response_types = match object.get("response_types") {
        None | Some(Value::Null) => Vec::new(),
        Some(value) => strings(value, "response_types")?,
    };
    if response_types.iter().any(|r| r != "code") {
        return Err(meta("response_types may only contain \"code\"".into()));
    }
    let redirect_uris = match object.get("redirect_uris") {
        None | Some(Value::Null) => {
            return Err(OAuthError::invalid_redirect_uri(
                "redirect_uris is required",
            ));
        }
        Some(value) => strings(value, "redirect_uris")
            .map_err(|e| OAuthError::invalid_redirect_uri(e.description))?,
    };
    if redirect_uris.is_empty() {
        return Err(OAuthError::invalid_redirect_uri(
            "redirect_uris must not be empty",
        ));
    }
    if redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(OAuthError::invalid_redirect_uri(format!(
            "at most {MAX_REDIRECT_URIS} redirect_uris are allowed"
        )));
    }
    for (index, uri) in redirect_uris.iter().enumerate() {
        redirect::validate(uri).map_err(|e| {
            OAuthError::invalid_redirect_uri(format!("redirect_uris[{index}]: {e}"))
        })?;
    }
    let name = match object.get("client_name") {
        None | Some(Value::Null) => DEFAULT_NAME.to_owned(),
        Some(Value::String(name)) => clean_name(name),
        Some(_) => return Err(meta("client_name must be a string".into())),
    };
    Ok(Registration {
        name,
        redirect_uris,
        grant_types,
    })
}

fn strings(value: &Value, field: &str) -> Result<Vec<String>, OAuthError> {
    let bad =
        || OAuthError::invalid_client_metadata(format!("{field} must be an array of strings"));
    value
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|v| v.as_str().map(str::to_owned).ok_or_else(bad))
        .collect()
}

/// Control and invisible formatting characters removed (they make one name look like
/// another on the consent page), trimmed, bounded.
fn clean_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .filter(|c| !c.is_control() && !is_format_char(*c))
        .take(MAX_CLIENT_NAME_CHARS)
        .collect();
    match cleaned.trim() {
        "" => DEFAULT_NAME.to_owned(),
        trimmed => trimmed.to_owned(),
    }
}

/// Bidi overrides and isolates, zero-width characters, the BOM.
fn is_format_char(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// `assay_client_` + 32 hex characters (128 bits) from the OS CSPRNG.
fn new_client_id() -> Result<String, OAuthError> {
    let mut bytes = [0u8; 16];
    OsRng.try_fill_bytes(&mut bytes).map_err(|e| {
        tracing::error!(error = %e, "could not generate a client ID");
        OAuthError::server_error()
    })?;
    Ok(format!("{CLIENT_ID_PREFIX}{}", hex::encode(bytes)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn err(body: Value) -> OAuthError {
        parse(&body).unwrap_err()
    }

    #[test]
    fn a_public_client_registers() {
        let r = parse(&json!({
            "client_name": "  Claude\u{202E} Code\n ",
            "redirect_uris": ["http://127.0.0.1/callback", "https://app.example/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }))
        .unwrap();
        assert_eq!(r.name, "Claude Code");
        assert_eq!(r.redirect_uris.len(), 2);
        let minimal = parse(&json!({"redirect_uris": ["https://app.example/cb"]})).unwrap();
        assert_eq!(minimal.name, DEFAULT_NAME);
        assert_eq!(minimal.grant_types, ["authorization_code"]);
    }

    #[test]
    fn confidential_clients_and_other_grants_are_refused() {
        let uris = json!(["https://app.example/cb"]);
        for method in [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ] {
            let e = err(json!({"redirect_uris": uris, "token_endpoint_auth_method": method}));
            assert_eq!(e.error, "invalid_client_metadata", "{method}");
        }
        for grants in [
            json!(["client_credentials"]),
            json!(["implicit"]),
            json!(["password"]),
            json!("authorization_code"),
        ] {
            let e = err(json!({"redirect_uris": uris, "grant_types": grants}));
            assert_eq!(e.error, "invalid_client_metadata");
        }
        let e = err(json!({"redirect_uris": uris, "response_types": ["token"]}));
        assert_eq!(e.error, "invalid_client_metadata");
        let e = err(json!({"redirect_uris": uris, "client_secret": "x"}));
        assert_eq!(e.error, "invalid_client_metadata");
        assert_eq!(err(json!([])).error, "invalid_client_metadata");
    }

    #[test]
    fn redirect_uris_are_required_and_validated() {
        for body in [
            json!({}),
            json!({"redirect_uris": []}),
            json!({"redirect_uris": "https://app.example/cb"}),
            json!({"redirect_uris": [1]}),
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            json!({"redirect_uris": ["http://app.example/cb"]}),
            json!({"redirect_uris": ["https://app.example/cb#frag"]}),
        ] {
            assert_eq!(err(body.clone()).error, "invalid_redirect_uri", "{body}");
        }
        let many: Vec<String> = (0..=MAX_REDIRECT_URIS)
            .map(|i| format!("https://app.example/cb{i}"))
            .collect();
        assert_eq!(
            err(json!({"redirect_uris": many})).error,
            "invalid_redirect_uri"
        );
    }

    #[test]
    fn generated_ids_are_never_urls() {
        let a = new_client_id().unwrap();
        assert!(a.starts_with(CLIENT_ID_PREFIX));
        assert!(!a.starts_with("https://") && !a.contains(':'));
        assert_eq!(a.len(), CLIENT_ID_PREFIX.len() + 32);
        assert_ne!(a, new_client_id().unwrap());
    }
}
