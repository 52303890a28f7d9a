//! Discovery documents: RFC 9728 protected resource metadata (PRM), RFC 8414
//! authorization server metadata and OpenID Connect Discovery.
//!
//! Every URL is built from the configured public URL, never from a request's `Host` or
//! `X-Forwarded-*` headers: a document built from request headers would let whoever
//! controls those headers point clients at another authorization server.
//!
//! # The issuer has no trailing slash
//!
//! MCP clients (and the conformance suite) compare `issuer` with the URL they built the
//! metadata URL from byte for byte, and RFC 9728 §3.3 asks the same of `resource`. The
//! configured public URL reaches us as a parsed [`Url`], whose serialization always
//! ends a bare origin with `/` (`https://a.example/`) — the form as typed is gone. So one
//! spelling is chosen and used everywhere: the parsed URL **without** its trailing
//! slash (`https://a.example`, `https://a.example/assay`). That is the form the MCP
//! specification recommends for canonical resource URIs, it is what people type for a
//! bare origin, and with it RFC 8414 §3.1 puts the metadata at the plain
//! `/.well-known/oauth-authorization-server` for a server at the root. The same string
//! is the `iss` of access tokens and the `authorization_servers` entry of every PRM.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::scope::{McpScope, OFFLINE_ACCESS};

/// RFC 9728 §3: inserted between the host and the path of a resource URL.
pub const PROTECTED_RESOURCE_WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";
/// RFC 8414 §3: inserted between the host and the path of the issuer.
pub const AUTHORIZATION_SERVER_WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";
/// OpenID Connect Discovery 1.0 §4: appended to the issuer.
pub const OPENID_CONFIGURATION_WELL_KNOWN: &str = "/.well-known/openid-configuration";

// Endpoint paths, relative to the public URL (so under its path prefix, if any). The
// server routes exactly these.
pub const AUTHORIZATION_PATH: &str = "/oauth/authorize";
pub const TOKEN_PATH: &str = "/oauth/token";
pub const REGISTRATION_PATH: &str = "/oauth/register";
pub const REVOCATION_PATH: &str = "/oauth/revoke";
pub const DEVICE_AUTHORIZATION_PATH: &str = "/oauth/device";
pub const JWKS_PATH: &str = "/oauth/jwks.json";

/// RFC 8628 §7.2.
pub const DEVICE_CODE_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// RFC 3986 unreserved characters stay; everything else is percent-encoded, so an
/// organization or environment value can never add a path segment, a query or a quote.
const PATH_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("the public URL must use http or https")]
    UnsupportedScheme,
    #[error("the public URL must have a host")]
    NoHost,
    #[error("the public URL must not contain a user name or password")]
    Userinfo,
    #[error("the public URL must not have a query or a fragment")]
    QueryOrFragment,
    /// Empty, `.` and `..` would be removed or resolved by URL normalisation, so the
    /// resource URL a client sends back would not be the one issued.
    #[error("{0:?} cannot be an organization or environment in a resource URL")]
    InvalidPathValue(String),
}

/// The server's public URL, checked, in the one spelling used for the issuer and every
/// URL derived from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicBase {
    /// `scheme://host[:port]`, as the `url` crate normalises it (lowercase scheme and
    /// host, default port dropped).
    origin: String,
    /// The path prefix without a trailing slash: `""` or e.g. `/assay`.
    path: String,
}

/// A protected resource: its canonical URL (the RFC 8707 `resource` value and the
/// access-token audience) and where its RFC 9728 metadata is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub url: String,
    pub metadata_url: String,
    /// Human-readable, for the PRM `resource_name`.
    pub name: String,
}

impl PublicBase {
    /// RFC 8414 §2: the issuer is a URL with no query or fragment. Plain `http` is not
    /// refused here: local development on loopback needs it, and the HTTPS policy belongs
    /// to the server configuration.
    pub fn new(public_url: &Url) -> Result<Self, MetadataError> {
        if !matches!(public_url.scheme(), "http" | "https") {
            return Err(MetadataError::UnsupportedScheme);
        }
        if public_url.host_str().is_none_or(str::is_empty) {
            return Err(MetadataError::NoHost);
        }
        if !public_url.username().is_empty() || public_url.password().is_some() {
            return Err(MetadataError::Userinfo);
        }
        if public_url.query().is_some() || public_url.fragment().is_some() {
            return Err(MetadataError::QueryOrFragment);
        }
        Ok(Self {
            origin: public_url.origin().ascii_serialization(),
            path: public_url.path().trim_end_matches('/').to_owned(),
        })
    }

    /// The issuer: the public URL without a trailing slash (see the module docs).
    pub fn issuer(&self) -> String {
        format!("{}{}", self.origin, self.path)
    }

    /// The path prefix of the public URL without a trailing slash (`""` at the root);
    /// the server needs it to route the path-inserted well-known URLs.
    pub fn path_prefix(&self) -> &str {
        &self.path
    }

    /// An endpoint under the public URL, e.g. `endpoint(TOKEN_PATH)`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}{path}", self.origin, self.path)
    }

    /// The MCP endpoint of an environment. Both values are percent-encoded to RFC 3986
    /// unreserved characters, the same spelling the server's own URLs use.
    pub fn mcp_resource(&self, org: &str, env: &str) -> Result<Resource, MetadataError> {
        let suffix = format!(
            "/organizations/{}/environments/{}/mcp",
            encode_path_value(org)?,
            encode_path_value(env)?
        );
        Ok(self.resource(&suffix, format!("Assay MCP server ({org}/{env})")))
    }

    /// The server as a whole, for the root-form PRM: `resource` is the base URL itself.
    pub fn base_resource(&self) -> Resource {
        self.resource("", "Assay".to_owned())
    }

    /// RFC 9728 §3.1: the well-known segment goes between the host and the resource's
    /// path; a resource without a path gets the bare well-known URL.
    fn resource(&self, suffix: &str, name: String) -> Resource {
        let path = format!("{}{suffix}", self.path);
        Resource {
            url: format!("{}{path}", self.origin),
            metadata_url: format!("{}{PROTECTED_RESOURCE_WELL_KNOWN}{path}", self.origin),
            name,
        }
    }

    /// RFC 8414 §3.1: where clients look for [`AuthorizationServerMetadata`].
    pub fn authorization_server_metadata_url(&self) -> String {
        format!(
            "{}{AUTHORIZATION_SERVER_WELL_KNOWN}{}",
            self.origin, self.path
        )
    }

    /// OpenID Connect Discovery §4: where clients look for [`OpenIdConfiguration`]. MCP
    /// clients also try the path-inserted form for an issuer with a path; the server may
    /// serve the same document there.
    pub fn openid_configuration_url(&self) -> String {
        self.endpoint(OPENID_CONFIGURATION_WELL_KNOWN)
    }

    /// The PRM document of a resource, naming this server as its authorization server.
    pub fn protected_resource_metadata(&self, resource: &Resource) -> ProtectedResourceMetadata {
        ProtectedResourceMetadata {
            resource: resource.url.clone(),
            authorization_servers: vec![self.issuer()],
            // No `offline_access`: a refresh token is not something the resource needs
            // (MCP authorization, "Refresh Tokens"); it is listed in the AS metadata only.
            scopes_supported: mcp_scopes(),
            bearer_methods_supported: vec!["header".to_owned()],
            resource_name: resource.name.clone(),
        }
    }

    /// The RFC 8414 document.
    pub fn authorization_server_metadata(&self) -> AuthorizationServerMetadata {
        let mut scopes = mcp_scopes();
        // Lets clients ask for a refresh token (MCP authorization: clients MAY add
        // `offline_access` when the AS lists it). No `openid`: this server issues no ID
        // tokens, and listing it would promise them.
        scopes.push(OFFLINE_ACCESS.to_owned());
        AuthorizationServerMetadata {
            issuer: self.issuer(),
            authorization_endpoint: self.endpoint(AUTHORIZATION_PATH),
            token_endpoint: self.endpoint(TOKEN_PATH),
            registration_endpoint: self.endpoint(REGISTRATION_PATH),
            revocation_endpoint: self.endpoint(REVOCATION_PATH),
            device_authorization_endpoint: self.endpoint(DEVICE_AUTHORIZATION_PATH),
            jwks_uri: self.endpoint(JWKS_PATH),
            scopes_supported: scopes,
            response_types_supported: vec!["code".to_owned()],
            grant_types_supported: vec![
                "authorization_code".to_owned(),
                "refresh_token".to_owned(),
                DEVICE_CODE_GRANT_TYPE.to_owned(),
            ],
            code_challenge_methods_supported: vec!["S256".to_owned()],
            // Public clients only: no client secrets exist to authenticate with.
            token_endpoint_auth_methods_supported: vec!["none".to_owned()],
            revocation_endpoint_auth_methods_supported: vec!["none".to_owned()],
            client_id_metadata_document_supported: true,
            authorization_response_iss_parameter_supported: true,
        }
    }

    /// The OpenID Connect Discovery document: the RFC 8414 document plus the members
    /// Discovery requires. Served because MCP clients probe this URL too.
    pub fn openid_configuration(&self) -> OpenIdConfiguration {
        OpenIdConfiguration {
            oauth: self.authorization_server_metadata(),
            subject_types_supported: vec!["public".to_owned()],
            id_token_signing_alg_values_supported: vec!["EdDSA".to_owned()],
        }
    }
}

fn mcp_scopes() -> Vec<String> {
    McpScope::ALL
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect()
}

fn encode_path_value(value: &str) -> Result<String, MetadataError> {
    if matches!(value, "" | "." | "..") {
        return Err(MetadataError::InvalidPathValue(value.to_owned()));
    }
    Ok(utf8_percent_encode(value, PATH_VALUE).to_string())
}

/// RFC 9728 §2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectedResourceMetadata {
    pub resource: String,
    pub authorization_servers: Vec<String>,
    pub scopes_supported: Vec<String>,
    pub bearer_methods_supported: Vec<String>,
    pub resource_name: String,
}

/// RFC 8414 §2, with the members MCP clients look for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub registration_endpoint: String,
    pub revocation_endpoint: String,
    pub device_authorization_endpoint: String,
    pub jwks_uri: String,
    pub scopes_supported: Vec<String>,
    pub response_types_supported: Vec<String>,
    pub grant_types_supported: Vec<String>,
    pub code_challenge_methods_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// draft-ietf-oauth-client-id-metadata-document.
    pub client_id_metadata_document_supported: bool,
    /// RFC 9207: authorization responses carry `iss`.
    pub authorization_response_iss_parameter_supported: bool,
}

/// OpenID Connect Discovery 1.0 §3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenIdConfiguration {
    #[serde(flatten)]
    pub oauth: AuthorizationServerMetadata,
    pub subject_types_supported: Vec<String>,
    pub id_token_signing_alg_values_supported: Vec<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base(s: &str) -> PublicBase {
        PublicBase::new(&Url::parse(s).unwrap()).unwrap()
    }

    #[test]
    fn the_issuer_is_the_public_url_without_a_trailing_slash() {
        for (configured, issuer) in [
            ("https://a.example", "https://a.example"),
            ("https://a.example/", "https://a.example"),
            ("https://A.Example:443/", "https://a.example"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("https://a.example/assay/", "https://a.example/assay"),
            ("https://a.example/assay", "https://a.example/assay"),
            ("https://a.example:8443/x/y/", "https://a.example:8443/x/y"),
        ] {
            assert_eq!(base(configured).issuer(), issuer, "{configured}");
        }
    }

    #[test]
    fn public_urls_that_cannot_be_an_issuer_are_refused() {
        for (url, err) in [
            ("ftp://a.example/", MetadataError::UnsupportedScheme),
            ("https://u:p@a.example/", MetadataError::Userinfo),
            ("https://u@a.example/", MetadataError::Userinfo),
            ("https://a.example/?x=1", MetadataError::QueryOrFragment),
            ("https://a.example/#f", MetadataError::QueryOrFragment),
            ("mailto:a@a.example", MetadataError::UnsupportedScheme),
        ] {
            assert_eq!(
                PublicBase::new(&Url::parse(url).unwrap()),
                Err(err),
                "{url}"
            );
        }
    }

    #[test]
    fn resource_urls_and_their_path_inserted_metadata_urls() {
        let root = base("https://a.example/");
        let r = root.mcp_resource("acme", "prod").unwrap();
        assert_eq!(
            r.url,
            "https://a.example/organizations/acme/environments/prod/mcp"
        );
        assert_eq!(
            r.metadata_url,
            "https://a.example/.well-known/oauth-protected-resource/organizations/acme/environments/prod/mcp"
        );
        let b = root.base_resource();
        assert_eq!(b.url, "https://a.example");
        assert_eq!(
            b.metadata_url,
            "https://a.example/.well-known/oauth-protected-resource"
        );

        let prefixed = base("https://a.example/assay/");
        let r = prefixed.mcp_resource("acme", "prod").unwrap();
        assert_eq!(
            r.url,
            "https://a.example/assay/organizations/acme/environments/prod/mcp"
        );
        assert_eq!(
            r.metadata_url,
            "https://a.example/.well-known/oauth-protected-resource/assay/organizations/acme/environments/prod/mcp"
        );
        let b = prefixed.base_resource();
        assert_eq!(b.url, "https://a.example/assay");
        assert_eq!(
            b.metadata_url,
            "https://a.example/.well-known/oauth-protected-resource/assay"
        );
        assert_eq!(prefixed.path_prefix(), "/assay");
        assert_eq!(root.path_prefix(), "");
    }

    #[test]
    fn org_and_env_are_encoded_to_unreserved_characters() {
        let root = base("http://127.0.0.1:8080");
        let r = root.mcp_resource("a b/c", "x\"y?z#é").unwrap();
        assert_eq!(
            r.url,
            "http://127.0.0.1:8080/organizations/a%20b%2Fc/environments/x%22y%3Fz%23%C3%A9/mcp"
        );
        // Unreserved characters are left alone, as RFC 3986 §6.2.2.2 normalisation would.
        let r = root.mcp_resource("a-b.c_d~e", "E1").unwrap();
        assert_eq!(
            r.url,
            "http://127.0.0.1:8080/organizations/a-b.c_d~e/environments/E1/mcp"
        );
        for bad in ["", ".", ".."] {
            assert_eq!(
                root.mcp_resource(bad, "prod"),
                Err(MetadataError::InvalidPathValue(bad.to_owned()))
            );
            assert_eq!(
                root.mcp_resource("acme", bad),
                Err(MetadataError::InvalidPathValue(bad.to_owned()))
            );
        }
    }

    #[test]
    fn metadata_urls_of_the_authorization_server() {
        let root = base("https://a.example/");
        assert_eq!(
            root.authorization_server_metadata_url(),
            "https://a.example/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            root.openid_configuration_url(),
            "https://a.example/.well-known/openid-configuration"
        );
        let prefixed = base("https://a.example/assay");
        assert_eq!(
            prefixed.authorization_server_metadata_url(),
            "https://a.example/.well-known/oauth-authorization-server/assay"
        );
        assert_eq!(
            prefixed.openid_configuration_url(),
            "https://a.example/assay/.well-known/openid-configuration"
        );
    }

    #[test]
    fn protected_resource_metadata_document() {
        let b = base("https://a.example/assay/");
        let doc = b.protected_resource_metadata(&b.mcp_resource("acme", "prod").unwrap());
        assert_eq!(
            serde_json::to_value(&doc).unwrap(),
            json!({
                "resource": "https://a.example/assay/organizations/acme/environments/prod/mcp",
                "authorization_servers": ["https://a.example/assay"],
                "scopes_supported": ["mcp:read", "mcp:run", "mcp:write"],
                "bearer_methods_supported": ["header"],
                "resource_name": "Assay MCP server (acme/prod)"
            })
        );
        let root = b.protected_resource_metadata(&b.base_resource());
        assert_eq!(
            serde_json::to_value(&root).unwrap(),
            json!({
                "resource": "https://a.example/assay",
                "authorization_servers": ["https://a.example/assay"],
                "scopes_supported": ["mcp:read", "mcp:run", "mcp:write"],
                "bearer_methods_supported": ["header"],
                "resource_name": "Assay"
            })
        );
    }

    fn oauth_json() -> serde_json::Value {
        json!({
            "issuer": "https://a.example",
            "authorization_endpoint": "https://a.example/oauth/authorize",
            "token_endpoint": "https://a.example/oauth/token",
            "registration_endpoint": "https://a.example/oauth/register",
            "revocation_endpoint": "https://a.example/oauth/revoke",
            "device_authorization_endpoint": "https://a.example/oauth/device",
            "jwks_uri": "https://a.example/oauth/jwks.json",
            "scopes_supported": ["mcp:read", "mcp:run", "mcp:write", "offline_access"],
            "response_types_supported": ["code"],
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:device_code"
            ],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "revocation_endpoint_auth_methods_supported": ["none"],
            "client_id_metadata_document_supported": true,
            "authorization_response_iss_parameter_supported": true
        })
    }

    #[test]
    fn authorization_server_metadata_document() {
        let doc = base("https://a.example/").authorization_server_metadata();
        let value = serde_json::to_value(&doc).unwrap();
        assert_eq!(value, oauth_json());
        let back: AuthorizationServerMetadata = serde_json::from_value(value).unwrap();
        assert_eq!(back, doc);
    }

    #[test]
    fn openid_configuration_document() {
        let doc = base("https://a.example").openid_configuration();
        let mut expected = oauth_json();
        let members = expected.as_object_mut().unwrap();
        members.insert("subject_types_supported".into(), json!(["public"]));
        members.insert(
            "id_token_signing_alg_values_supported".into(),
            json!(["EdDSA"]),
        );
        let value = serde_json::to_value(&doc).unwrap();
        assert_eq!(value, expected);
        let back: OpenIdConfiguration = serde_json::from_value(value).unwrap();
        assert_eq!(back, doc);
    }

    #[test]
    fn endpoints_sit_under_the_path_prefix() {
        let doc = base("https://a.example/assay/").authorization_server_metadata();
        assert_eq!(doc.issuer, "https://a.example/assay");
        assert_eq!(doc.token_endpoint, "https://a.example/assay/oauth/token");
        assert_eq!(doc.jwks_uri, "https://a.example/assay/oauth/jwks.json");
    }
}
