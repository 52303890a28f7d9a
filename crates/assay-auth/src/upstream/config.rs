//! Upstream identity providers as written in the server configuration, and their
//! validation into [`ProviderSettings`].
//!
//! The client secret never appears in the file: it is named by an environment variable
//! (`client_secret_env`) or a file (`client_secret_file`, e.g. a mounted secret), read
//! once at load, kept zeroed-on-drop and redacted from `Debug`. Every problem is reported
//! at load with the provider it concerns, so a bad configuration stops the server
//! instead of failing at the first login.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use assay_core::identity::OrgRole;
use assay_core::permission::Level;
use serde::{Deserialize, Serialize};
use url::Url;
use zeroize::Zeroizing;

/// Scopes asked of an OIDC provider when the configuration names none.
pub const DEFAULT_OIDC_SCOPES: [&str; 3] = ["openid", "email", "profile"];
/// Scopes asked of GitHub when the configuration names none: the profile and the
/// (private) email addresses with their verification state.
pub const DEFAULT_GITHUB_SCOPES: [&str; 2] = ["read:user", "user:email"];
pub const DEFAULT_GITHUB_WEB_URL: &str = "https://github.com";
pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";
/// Provider IDs appear in callback paths (`/oauth/upstream/<id>/callback`).
pub const MAX_PROVIDER_ID_LEN: usize = 32;
/// A secret file larger than this is not a client secret.
const MAX_SECRET_FILE_BYTES: u64 = 4096;

/// The `upstream_providers` list of the server configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct UpstreamConfig {
    pub providers: Vec<ProviderConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Oidc,
    #[serde(rename = "github")]
    GitHub,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Oidc => "oidc",
            ProviderKind::GitHub => "github",
        }
    }
}

/// One provider as written in the configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Lowercase letters, digits and `-`; unique.
    pub id: String,
    pub kind: ProviderKind,
    /// The label of the login button.
    pub display_name: String,
    /// OIDC only: the issuer, compared byte for byte with discovery and id_tokens.
    #[serde(default)]
    pub issuer: Option<String>,
    pub client_id: String,
    /// Name of the environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// Path of a file holding the client secret (surrounding whitespace trimmed).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Present only to give a clear error: secrets are never written in the file.
    #[serde(default, rename = "client_secret")]
    pub inline_client_secret: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// When set, only addresses in these domains (exact match, case-insensitive) may
    /// sign in through this provider.
    #[serde(default)]
    pub allowed_email_domains: Vec<String>,
    /// Accept an email the provider says is unverified for provisioning and linking.
    /// Off by default: an unverified address is a claim anyone can make.
    #[serde(default)]
    pub allow_unverified_email: bool,
    #[serde(default)]
    pub provisioning: Provisioning,
    /// GitHub only (GitHub Enterprise Server): the web base, default https://github.com.
    #[serde(default)]
    pub github_url: Option<String>,
    /// GitHub only: the REST API base, default https://api.github.com
    /// (GitHub Enterprise Server: `https://HOST/api/v3`).
    #[serde(default)]
    pub github_api_url: Option<String>,
}

/// What happens when someone signs in through the provider for the first time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Provisioning {
    /// Only people who already have an account (matched by verified email or by an
    /// earlier link) may sign in.
    #[default]
    InviteOnly,
    /// Just-in-time: an unknown person gets an account and a membership.
    Jit {
        /// Slug of the organization to join; absent: the server's only organization
        /// (the wiring refuses to guess when there are several).
        #[serde(default)]
        organization: Option<String>,
        #[serde(default = "default_jit_role")]
        default_role: OrgRole,
        /// Environment slug → level granted to a new member.
        #[serde(default)]
        environment_levels: BTreeMap<String, Level>,
    },
}

fn default_jit_role() -> OrgRole {
    OrgRole::Member
}

/// A client secret, read from the environment or a file. Zeroed on drop; `Debug`
/// never shows it.
#[derive(Clone)]
pub struct ClientSecret(Zeroizing<String>);

impl ClientSecret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Zeroizing::new(secret.into()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

/// Which email addresses a provider may vouch for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailPolicy {
    /// Lowercase; empty = any domain.
    pub allowed_domains: Vec<String>,
    pub allow_unverified: bool,
}

/// Where the provider lives, by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderEndpoints {
    Oidc {
        /// Exactly as configured.
        issuer: String,
    },
    GitHub {
        web_url: Url,
        api_url: Url,
    },
}

/// A validated provider with its secret resolved.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub id: String,
    pub display_name: String,
    pub endpoints: ProviderEndpoints,
    pub client_id: String,
    pub client_secret: ClientSecret,
    pub scopes: Vec<String>,
    pub email_policy: EmailPolicy,
    pub provisioning: Provisioning,
}

impl ProviderSettings {
    pub fn kind(&self) -> ProviderKind {
        match self.endpoints {
            ProviderEndpoints::Oidc { .. } => ProviderKind::Oidc,
            ProviderEndpoints::GitHub { .. } => ProviderKind::GitHub,
        }
    }
}

/// A configuration problem, with the provider it concerns (its ID, or its position
/// when the ID itself is the problem).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("upstream provider {provider}: {problem}")]
pub struct ConfigError {
    pub provider: String,
    pub problem: String,
}

impl UpstreamConfig {
    /// Validates every provider and resolves its secret; `env` looks up environment
    /// variables (`|name| std::env::var(name).ok()` in the server).
    pub fn resolve(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<ProviderSettings>, ConfigError> {
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(self.providers.len());
        for (index, provider) in self.providers.iter().enumerate() {
            let settings = provider.resolve(index, env)?;
            if !seen.insert(settings.id.clone()) {
                return Err(ConfigError {
                    provider: settings.id,
                    problem: "the id is used by another provider".into(),
                });
            }
            out.push(settings);
        }
        Ok(out)
    }
}

impl ProviderConfig {
    fn resolve(
        &self,
        index: usize,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ProviderSettings, ConfigError> {
        validate_id(&self.id).map_err(|problem| ConfigError {
            provider: format!("#{}", index + 1),
            problem,
        })?;
        let fail = |problem: String| ConfigError {
            provider: self.id.clone(),
            problem,
        };
        if self.display_name.trim().is_empty() {
            return Err(fail("display_name must not be empty".into()));
        }
        if self.client_id.trim().is_empty() || self.client_id.trim() != self.client_id {
            return Err(fail(
                "client_id must be non-empty without surrounding spaces".into(),
            ));
        }
        let endpoints = self.endpoints().map_err(&fail)?;
        let scopes = self.scopes().map_err(&fail)?;
        let email_policy = EmailPolicy {
            allowed_domains: self
                .allowed_email_domains
                .iter()
                .map(|d| normalize_domain(d))
                .collect::<Result<_, _>>()
                .map_err(&fail)?,
            allow_unverified: self.allow_unverified_email,
        };
        validate_provisioning(&self.provisioning).map_err(&fail)?;
        let client_secret = self.client_secret(env).map_err(&fail)?;
        Ok(ProviderSettings {
            id: self.id.clone(),
            display_name: self.display_name.trim().to_owned(),
            endpoints,
            client_id: self.client_id.clone(),
            client_secret,
            scopes,
            email_policy,
            provisioning: self.provisioning.clone(),
        })
    }

    fn endpoints(&self) -> Result<ProviderEndpoints, String> {
        match self.kind {
            ProviderKind::Oidc => {
                if self.github_url.is_some() || self.github_api_url.is_some() {
                    return Err(
                        "github_url and github_api_url are for kind github, not oidc".into(),
                    );
                }
                let issuer = self
                    .issuer
                    .as_deref()
                    .ok_or("issuer is required for kind oidc")?;
                let url = endpoint_url("issuer", issuer)?;
                if url.query().is_some() {
                    return Err("issuer must not have a query".into());
                }
                Ok(ProviderEndpoints::Oidc {
                    issuer: issuer.to_owned(),
                })
            }
            ProviderKind::GitHub => {
                if self.issuer.is_some() {
                    return Err("issuer is for kind oidc; github uses github_url".into());
                }
                let web_url = endpoint_url(
                    "github_url",
                    self.github_url.as_deref().unwrap_or(DEFAULT_GITHUB_WEB_URL),
                )?;
                let api_url = endpoint_url(
                    "github_api_url",
                    self.github_api_url
                        .as_deref()
                        .unwrap_or(DEFAULT_GITHUB_API_URL),
                )?;
                Ok(ProviderEndpoints::GitHub { web_url, api_url })
            }
        }
    }

    fn scopes(&self) -> Result<Vec<String>, String> {
        let scopes: Vec<String> = match (&self.scopes, self.kind) {
            (Some(s), _) => s.clone(),
            (None, ProviderKind::Oidc) => DEFAULT_OIDC_SCOPES.map(str::to_owned).to_vec(),
            (None, ProviderKind::GitHub) => DEFAULT_GITHUB_SCOPES.map(str::to_owned).to_vec(),
        };
        for s in &scopes {
            // RFC 6749 §3.3 scope-token: %x21 / %x23-5B / %x5D-7E.
            let valid = !s.is_empty()
                && s.bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
            if !valid {
                return Err(format!("scope {s:?} is not a valid scope token"));
            }
        }
        match self.kind {
            ProviderKind::Oidc if !scopes.iter().any(|s| s == "openid") => {
                Err("scopes must include openid for kind oidc".into())
            }
            ProviderKind::GitHub if !scopes.iter().any(|s| s == "user:email" || s == "user") => {
                Err("scopes must include user:email for kind github (the verified email is read from /user/emails)".into())
            }
            _ => Ok(scopes),
        }
    }

    fn client_secret(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<ClientSecret, String> {
        if self.inline_client_secret.is_some() {
            return Err(
                "client_secret must not be written in the configuration; use client_secret_env or client_secret_file"
                    .into(),
            );
        }
        let secret = match (&self.client_secret_env, &self.client_secret_file) {
            (Some(_), Some(_)) => {
                return Err("set only one of client_secret_env and client_secret_file".into());
            }
            (None, None) => {
                return Err("client_secret_env or client_secret_file is required".into());
            }
            (Some(var), None) => Zeroizing::new(
                env(var).ok_or_else(|| format!("environment variable {var} is not set"))?,
            ),
            (None, Some(path)) => read_secret_file(path)?,
        };
        let trimmed = secret.trim();
        if trimmed.is_empty() {
            return Err("the client secret is empty".into());
        }
        Ok(ClientSecret::new(trimmed))
    }
}

fn read_secret_file(path: &std::path::Path) -> Result<Zeroizing<String>, String> {
    let shown = path.display();
    let len = std::fs::metadata(path)
        .map_err(|e| format!("cannot read client_secret_file {shown}: {e}"))?
        .len();
    if len > MAX_SECRET_FILE_BYTES {
        return Err(format!(
            "client_secret_file {shown} is larger than {MAX_SECRET_FILE_BYTES} bytes"
        ));
    }
    let bytes = Zeroizing::new(
        std::fs::read(path).map_err(|e| format!("cannot read client_secret_file {shown}: {e}"))?,
    );
    std::str::from_utf8(&bytes)
        .map(|s| Zeroizing::new(s.to_owned()))
        .map_err(|_| format!("client_secret_file {shown} is not UTF-8"))
}

fn validate_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= MAX_PROVIDER_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "id {id:?} must be 1 to {MAX_PROVIDER_ID_LEN} lowercase letters, digits or '-', not starting with '-'"
        ))
    }
}

/// An `https` URL, or `http` to a loopback host (a provider on the same machine, and
/// the in-test identity provider). No credentials, no fragment.
pub(crate) fn endpoint_url(what: &str, value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|e| format!("{what} {value:?} is not a URL: {e}"))?;
    if !is_secure_endpoint(&url) {
        return Err(format!(
            "{what} {value:?} must use https (http only for a loopback host)"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{what} must not contain credentials"));
    }
    if url.fragment().is_some() {
        return Err(format!("{what} must not have a fragment"));
    }
    Ok(url)
}

pub(crate) fn is_secure_endpoint(url: &Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        },
        _ => false,
    }
}

fn normalize_domain(domain: &str) -> Result<String, String> {
    let d = domain.trim().trim_start_matches('@').to_ascii_lowercase();
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(d)
    } else {
        Err(format!(
            "allowed_email_domains entry {domain:?} is not a domain name"
        ))
    }
}

fn validate_provisioning(p: &Provisioning) -> Result<(), String> {
    let Provisioning::Jit {
        organization,
        default_role,
        environment_levels,
    } = p
    else {
        return Ok(());
    };
    if *default_role == OrgRole::Owner {
        return Err(
            "provisioning default_role owner is not allowed; a new account gets member or admin"
                .into(),
        );
    }
    if *default_role == OrgRole::Admin && !environment_levels.is_empty() {
        return Err(
            "environment_levels apply to members only; an admin already reaches every environment"
                .into(),
        );
    }
    if organization.as_deref().is_some_and(|o| o.trim().is_empty()) {
        return Err("provisioning organization must not be empty".into());
    }
    if let Some(env) = environment_levels.keys().find(|e| e.trim().is_empty()) {
        return Err(format!(
            "environment_levels has an empty environment {env:?}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn parse(json: serde_json::Value) -> UpstreamConfig {
        serde_json::from_value(json).unwrap()
    }

    fn env(name: &str) -> Option<String> {
        (name == "IDP_SECRET").then(|| "  s3cret-value \n".to_owned())
    }

    fn oidc() -> serde_json::Value {
        serde_json::json!({
            "id": "corp", "kind": "oidc", "display_name": "Corp SSO",
            "issuer": "https://idp.example.com/realms/corp",
            "client_id": "assay", "client_secret_env": "IDP_SECRET"
        })
    }

    fn resolve_one(json: serde_json::Value) -> Result<ProviderSettings, ConfigError> {
        parse(serde_json::json!([json]))
            .resolve(&env)
            .map(|mut v| v.remove(0))
    }

    fn problem(json: serde_json::Value) -> String {
        resolve_one(json).unwrap_err().to_string()
    }

    fn with(mut base: serde_json::Value, key: &str, value: serde_json::Value) -> serde_json::Value {
        base[key] = value;
        base
    }

    #[test]
    fn a_minimal_oidc_provider_gets_defaults() {
        let p = resolve_one(oidc()).unwrap();
        assert_eq!(p.id, "corp");
        assert_eq!(p.kind(), ProviderKind::Oidc);
        assert_eq!(
            p.endpoints,
            ProviderEndpoints::Oidc {
                issuer: "https://idp.example.com/realms/corp".into()
            }
        );
        assert_eq!(p.client_secret.expose(), "s3cret-value");
        assert_eq!(p.scopes, ["openid", "email", "profile"]);
        assert_eq!(p.provisioning, Provisioning::InviteOnly);
        assert_eq!(p.email_policy, EmailPolicy::default());
    }

    #[test]
    fn the_secret_is_never_in_debug_output() {
        let p = resolve_one(oidc()).unwrap();
        let shown = format!("{p:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("ClientSecret([redacted])"), "{shown}");
    }

    #[test]
    fn github_defaults_and_enterprise_urls() {
        let gh = serde_json::json!({
            "id": "github", "kind": "github", "display_name": "GitHub",
            "client_id": "Iv1.abc", "client_secret_env": "IDP_SECRET",
            "provisioning": {"mode": "jit", "environment_levels": {"staging": "run"}}
        });
        let p = resolve_one(gh.clone()).unwrap();
        assert_eq!(p.scopes, ["read:user", "user:email"]);
        assert_eq!(
            p.endpoints,
            ProviderEndpoints::GitHub {
                web_url: Url::parse("https://github.com").unwrap(),
                api_url: Url::parse("https://api.github.com").unwrap(),
            }
        );
        assert_eq!(
            p.provisioning,
            Provisioning::Jit {
                organization: None,
                default_role: OrgRole::Member,
                environment_levels: BTreeMap::from([("staging".into(), Level::Run)]),
            }
        );
        let ghe = with(
            with(gh, "github_url", "https://ghe.example".into()),
            "github_api_url",
            "https://ghe.example/api/v3".into(),
        );
        let p = resolve_one(ghe).unwrap();
        assert_eq!(
            p.endpoints,
            ProviderEndpoints::GitHub {
                web_url: Url::parse("https://ghe.example").unwrap(),
                api_url: Url::parse("https://ghe.example/api/v3").unwrap(),
            }
        );
    }

    #[test]
    fn invalid_configurations_are_refused_with_the_reason() {
        assert_eq!(
            problem(with(oidc(), "id", "Corp SSO".into())),
            "upstream provider #1: id \"Corp SSO\" must be 1 to 32 lowercase letters, digits or '-', not starting with '-'"
        );
        let mut no_issuer = oidc();
        no_issuer.as_object_mut().unwrap().remove("issuer");
        assert_eq!(
            problem(no_issuer),
            "upstream provider corp: issuer is required for kind oidc"
        );
        assert_eq!(
            problem(with(oidc(), "issuer", "http://idp.example.com".into())),
            "upstream provider corp: issuer \"http://idp.example.com\" must use https (http only for a loopback host)"
        );
        assert_eq!(
            problem(with(oidc(), "client_secret", "hunter2".into())),
            "upstream provider corp: client_secret must not be written in the configuration; use client_secret_env or client_secret_file"
        );
        assert_eq!(
            problem(with(oidc(), "client_secret_env", "MISSING_VAR".into())),
            "upstream provider corp: environment variable MISSING_VAR is not set"
        );
        assert_eq!(
            problem(with(oidc(), "scopes", serde_json::json!(["email"]))),
            "upstream provider corp: scopes must include openid for kind oidc"
        );
        assert_eq!(
            problem(with(
                oidc(),
                "allowed_email_domains",
                serde_json::json!(["not a domain"])
            )),
            "upstream provider corp: allowed_email_domains entry \"not a domain\" is not a domain name"
        );
        assert_eq!(
            problem(with(
                oidc(),
                "provisioning",
                serde_json::json!({"mode": "jit", "default_role": "owner"})
            )),
            "upstream provider corp: provisioning default_role owner is not allowed; a new account gets member or admin"
        );
        assert_eq!(
            problem(with(oidc(), "github_url", "https://github.com".into())),
            "upstream provider corp: github_url and github_api_url are for kind github, not oidc"
        );
        let twice = parse(serde_json::json!([oidc(), oidc()]));
        assert_eq!(
            twice.resolve(&env).unwrap_err().to_string(),
            "upstream provider corp: the id is used by another provider"
        );
    }

    #[test]
    fn unknown_fields_and_modes_fail_to_parse() {
        let typo = serde_json::from_value::<UpstreamConfig>(serde_json::json!([with(
            oidc(),
            "isuer",
            "x".into()
        )]));
        assert!(
            typo.unwrap_err()
                .to_string()
                .contains("unknown field `isuer`"),
            "typos must not be ignored"
        );
        let mode = serde_json::from_value::<UpstreamConfig>(serde_json::json!([with(
            oidc(),
            "provisioning",
            serde_json::json!({"mode": "open"})
        )]));
        assert!(
            mode.unwrap_err()
                .to_string()
                .contains("unknown variant `open`")
        );
    }

    #[test]
    fn secret_from_a_file_and_domains_normalized() {
        let dir = std::env::temp_dir().join(format!("assay-upstream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        std::fs::write(&path, "from-file\n").unwrap();
        let mut cfg = oidc();
        cfg.as_object_mut().unwrap().remove("client_secret_env");
        cfg["client_secret_file"] = path.to_string_lossy().into_owned().into();
        cfg["allowed_email_domains"] = serde_json::json!(["@Example.COM"]);
        let p = resolve_one(cfg).unwrap();
        assert_eq!(p.client_secret.expose(), "from-file");
        assert_eq!(p.email_policy.allowed_domains, ["example.com"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn loopback_http_is_accepted_for_local_providers() {
        let p = resolve_one(with(oidc(), "issuer", "http://127.0.0.1:5556/dex".into())).unwrap();
        assert_eq!(
            p.endpoints,
            ProviderEndpoints::Oidc {
                issuer: "http://127.0.0.1:5556/dex".into()
            }
        );
    }
}
