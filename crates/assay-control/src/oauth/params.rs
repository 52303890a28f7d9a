//! Raw request values, as the server reads them from a query string or form body. Every
//! field is an optional string: validation happens here in the control plane, not in the
//! HTTP layer. A parameter sent more than once is refused (RFC 6749 §3.1), so the
//! constructors from `(name, value)` pairs remember which ones were repeated.

use serde::Deserialize;

/// `GET /oauth/authorize` (and the POSTed form that resumes it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    /// RFC 8707; repeated `resource` → `invalid_target` (one resource per token).
    pub resource: Option<String>,
    /// Names of known parameters that appeared more than once.
    #[serde(skip)]
    pub repeated: Vec<String>,
}

impl AuthorizeParams {
    /// From decoded query pairs; unknown parameters are ignored (RFC 6749 §3.1).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut p = Self::default();
        for (name, value) in pairs {
            let slot = match name {
                "response_type" => &mut p.response_type,
                "client_id" => &mut p.client_id,
                "redirect_uri" => &mut p.redirect_uri,
                "scope" => &mut p.scope,
                "state" => &mut p.state,
                "code_challenge" => &mut p.code_challenge,
                "code_challenge_method" => &mut p.code_challenge_method,
                "resource" => &mut p.resource,
                _ => continue,
            };
            set(slot, value, name, &mut p.repeated);
        }
        p
    }
}

/// `POST /oauth/token`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TokenParams {
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub device_code: Option<String>,
    pub scope: Option<String>,
    pub resource: Option<String>,
    /// Names of known parameters that appeared more than once.
    #[serde(skip)]
    pub repeated: Vec<String>,
}

impl TokenParams {
    /// From decoded form pairs; unknown parameters are ignored.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut p = Self::default();
        for (name, value) in pairs {
            let slot = match name {
                "grant_type" => &mut p.grant_type,
                "client_id" => &mut p.client_id,
                "code" => &mut p.code,
                "redirect_uri" => &mut p.redirect_uri,
                "code_verifier" => &mut p.code_verifier,
                "refresh_token" => &mut p.refresh_token,
                "device_code" => &mut p.device_code,
                "scope" => &mut p.scope,
                "resource" => &mut p.resource,
                _ => continue,
            };
            set(slot, value, name, &mut p.repeated);
        }
        p
    }
}

fn set(slot: &mut Option<String>, value: &str, name: &str, repeated: &mut Vec<String>) {
    if slot.is_some() {
        if !repeated.iter().any(|r| r == name) {
            repeated.push(name.to_owned());
        }
    } else {
        *slot = Some(value.to_owned());
    }
}

/// An empty value counts as absent (RFC 6749 §3.1).
pub(crate) fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_recorded_and_the_first_value_kept() {
        let p = AuthorizeParams::from_pairs([
            ("resource", "a"),
            ("client_id", "c"),
            ("resource", "b"),
            ("resource", "c"),
            ("unknown", "1"),
            ("unknown", "2"),
        ]);
        assert_eq!(p.resource.as_deref(), Some("a"));
        assert_eq!(p.client_id.as_deref(), Some("c"));
        assert_eq!(p.repeated, ["resource"]);
        let t = TokenParams::from_pairs([("code", "x"), ("code", "y"), ("grant_type", "g")]);
        assert_eq!(t.code.as_deref(), Some("x"));
        assert_eq!(t.repeated, ["code"]);
    }

    #[test]
    fn empty_values_are_absent() {
        assert_eq!(given(&Some(String::new())), None);
        assert_eq!(given(&Some("x".into())), Some("x"));
        assert_eq!(given(&None), None);
    }
}
