//! `assay server --sso-config <file>`: the upstream identity providers (OIDC, GitHub)
//! people may sign in with on the OAuth sign-in pages. See docs/OAUTH.md, "Upstream
//! sign-in (OIDC, GitHub)".
//!
//! The file is YAML (JSON is YAML too) with one key, `upstream_providers`, a list of
//! providers as `assay_auth::upstream::ProviderConfig` describes them. It is read and
//! fully checked at start — every provider's fields, its client secret (from
//! `client_secret_env` or `client_secret_file`, never from the file itself), and each
//! just-in-time provider's organization and environments — so a bad file stops the server
//! with the provider and the problem named, instead of failing at someone's first login.

use anyhow::{Context, bail};
use assay_auth::upstream::{ProviderSettings, UpstreamConfig, UpstreamOptions, UpstreamProvider};
use assay_control::LocalControlPlane;
use assay_control::upstream_login::UpstreamLogins;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A configuration file larger than this is a mistake (a few providers fit in 2 KB).
const MAX_FILE_BYTES: u64 = 256 * 1024;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct SsoArgs {
    /// A YAML file listing upstream sign-in providers (OpenID Connect: Dex, Google,
    /// Keycloak, …; GitHub) under `upstream_providers`. Register
    /// <public URL>/oauth/upstream/<id>/callback as the redirect URI at each provider.
    #[arg(long = "sso-config", env = "ASSAY_SSO_CONFIG")]
    pub sso_config: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SsoFile {
    upstream_providers: UpstreamConfig,
}

/// The providers of `--sso-config`, validated with their secrets resolved (empty without
/// the flag). Call before anything else starts: errors name the file and the provider.
pub fn load(args: &SsoArgs) -> anyhow::Result<Vec<ProviderSettings>> {
    match &args.sso_config {
        None => Ok(Vec::new()),
        Some(path) => load_file(path, &|name| std::env::var(name).ok()),
    }
}

fn load_file(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Vec<ProviderSettings>> {
    let shown = path.display();
    let len = std::fs::metadata(path)
        .with_context(|| format!("--sso-config: cannot read {shown}"))?
        .len();
    if len > MAX_FILE_BYTES {
        bail!("--sso-config: {shown} is larger than {MAX_FILE_BYTES} bytes");
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--sso-config: cannot read {shown} as UTF-8 text"))?;
    let file: SsoFile = serde_saphyr::from_str(&text)
        .map_err(|e| anyhow::anyhow!("--sso-config: {shown} is not a valid configuration: {e}"))?;
    if file.upstream_providers.providers.is_empty() {
        bail!("--sso-config: {shown} lists no provider under upstream_providers");
    }
    file.upstream_providers
        .resolve(env)
        .map_err(|e| anyhow::anyhow!("--sso-config: {shown}: {e}"))
}

/// The sign-in service for the server (`ServerConfig::upstream`); `None` without
/// providers. Checks each just-in-time provider's organization and environments.
pub async fn start(
    providers: Vec<ProviderSettings>,
    control: &LocalControlPlane,
) -> anyhow::Result<Option<Arc<UpstreamLogins>>> {
    if providers.is_empty() {
        return Ok(None);
    }
    let ids: Vec<String> = providers.iter().map(|p| p.id.clone()).collect();
    let providers = UpstreamProvider::all(providers, &UpstreamOptions::default())
        .map_err(|e| anyhow::anyhow!("--sso-config: {e}"))?;
    let logins = control
        .upstream_logins(providers)
        .await
        .map_err(|e| anyhow::anyhow!("--sso-config: {e}"))?;
    tracing::info!(providers = ?ids, "upstream sign-in enabled");
    Ok(Some(logins))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use assay_auth::upstream::{ProviderEndpoints, Provisioning};

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sso.yaml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "DEX_SECRET" => Some("dex-secret".into()),
            "GITHUB_SECRET" => Some("gh-secret".into()),
            _ => None,
        }
    }

    #[test]
    fn a_yaml_file_with_oidc_and_github_providers() {
        let (_dir, path) = write(
            "upstream_providers:
  - id: dex
    kind: oidc
    display_name: Company SSO
    issuer: https://dex.example.com/dex
    client_id: assay
    client_secret_env: DEX_SECRET
    allowed_email_domains: [example.com]
    provisioning:
      mode: jit
      organization: acme
      default_role: member
      environment_levels:
        dev: run
  - id: github
    kind: github
    display_name: GitHub
    client_id: Iv1.0123456789abcdef
    client_secret_env: GITHUB_SECRET
",
        );
        let providers = load_file(&path, &env).unwrap();
        assert_eq!(providers.len(), 2);
        assert_eq!(providers[0].id, "dex");
        assert_eq!(
            providers[0].endpoints,
            ProviderEndpoints::Oidc {
                issuer: "https://dex.example.com/dex".into()
            }
        );
        assert_eq!(providers[0].client_secret.expose(), "dex-secret");
        assert!(matches!(
            providers[0].provisioning,
            Provisioning::Jit { .. }
        ));
        assert_eq!(providers[1].client_secret.expose(), "gh-secret");
        assert_eq!(providers[1].provisioning, Provisioning::InviteOnly);
    }

    #[test]
    fn problems_name_the_file_and_the_provider() {
        let (_dir, path) = write(
            "upstream_providers:
  - id: dex
    kind: oidc
    display_name: Company SSO
    issuer: https://dex.example.com/dex
    client_id: assay
    client_secret: hunter2
",
        );
        let e = load_file(&path, &env).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "--sso-config: {}: upstream provider dex: client_secret must not be written in the configuration; use client_secret_env or client_secret_file",
                path.display()
            )
        );
        assert!(!e.contains("hunter2"));

        let (_dir, path) = write("providers: []\n");
        let e = load_file(&path, &env).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "--sso-config: {} is not a valid configuration: ",
                path.display()
            )),
            "{e}"
        );
        let (_dir, path) = write("upstream_providers: []\n");
        assert_eq!(
            load_file(&path, &env).unwrap_err().to_string(),
            format!(
                "--sso-config: {} lists no provider under upstream_providers",
                path.display()
            )
        );
        let missing = Path::new("/nonexistent/sso.yaml");
        assert!(
            load_file(missing, &env)
                .unwrap_err()
                .to_string()
                .starts_with("--sso-config: cannot read /nonexistent/sso.yaml")
        );
        assert!(load(&SsoArgs::default()).unwrap().is_empty());
    }
}
