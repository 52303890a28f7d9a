//! Which server, organization, environment and credential a command uses.
//!
//! Precedence:
//! 1. An explicit token (`--token` / `ASSAY_TOKEN`): environment-variable mode. `--url` /
//!    `ASSAY_URL`, `--org` / `ASSAY_ORG`, `--env` / `ASSAY_ENV`, else the defaults; no
//!    context is read (containers and CI need no config directory).
//! 2. A context (`--context` / `ASSAY_CONTEXT`, else the current one): its URL,
//!    organization, environment, TLS settings and stored credential; `--org`/`--env` (and
//!    their variables) override; `--ca-cert` adds a CA to the context's, `--insecure` turns
//!    checks off for this command (see [`merge_tls`]). A `--url` naming another server is
//!    refused: the context's credential is for its own server only.
//! 3. Neither: the defaults (`http://127.0.0.1:7357`, organization `default`,
//!    environment `dev`) and no credential.

use super::GlobalArgs;
use super::config::{AuthKind, Config, check_url, parse_url, same_server};
use anyhow::bail;
use assay_client::TlsOptions;
use std::path::{Path, PathBuf};
use url::Url;

pub const DEFAULT_URL: &str = "http://127.0.0.1:7357";
pub const DEFAULT_ORG: &str = "default";
/// The environment when none is named.
pub const DEFAULT_ENV: &str = "dev";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: Url,
    pub org: String,
    pub env: String,
    pub auth: Auth,
    pub tls: TlsOptions,
}

#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// `--token` / `ASSAY_TOKEN`.
    Token(String),
    /// The stored credential of a context.
    Context { name: String, kind: AuthKind },
    /// Nothing (the server will answer 401 to most things).
    None,
}

/// Never shows the token.
impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(***)"),
            Self::Context { name, kind } => f
                .debug_struct("Context")
                .field("name", name)
                .field("kind", kind)
                .finish(),
            Self::None => f.write_str("None"),
        }
    }
}

impl Target {
    pub fn context_name(&self) -> Option<&str> {
        match &self.auth {
            Auth::Context { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// What the environment says besides clap's arguments (read by the caller, so this stays
/// a pure function).
#[derive(Debug, Clone, Default)]
pub struct EnvVars {
    /// `ASSAY_CONTEXT`.
    pub context: Option<String>,
    /// `ASSAY_ENV` (read here, not by clap: see `GlobalArgs::env`).
    pub env: Option<String>,
    /// `ASSAY_INSECURE` (read here, not by clap: `assay login` keeps only an explicit
    /// `--insecure` in the context; the variable counts for one command at a time).
    pub insecure: bool,
}

impl EnvVars {
    pub fn read() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self {
            context: var("ASSAY_CONTEXT"),
            env: var("ASSAY_ENV"),
            insecure: var("ASSAY_INSECURE").is_some_and(|v| truthy(&v)),
        }
    }
}

/// A boolean variable the way clap reads one: set, and not `0`, `false`, `no`, `off`, `n`
/// or `f` (any case).
fn truthy(value: &str) -> bool {
    !matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "" | "0" | "false" | "no" | "off" | "n" | "f"
    )
}

/// Whether this command skips certificate checks by its own choice (`--insecure` or
/// `ASSAY_INSECURE`), whatever the context says.
pub fn insecure_now(global: &GlobalArgs, vars: &EnvVars) -> bool {
    global.insecure || vars.insecure
}

/// The TLS settings of one command against a context's server: the context's CA
/// certificate plus the one `--ca-cert`/`ASSAY_CA_CERT` adds (both are trusted), and
/// certificate checks off when the context or this command says so.
pub fn merge_tls(
    context_ca: Option<&Path>,
    context_insecure: bool,
    extra_ca: Option<&Path>,
    insecure: bool,
) -> TlsOptions {
    let mut ca_certs: Vec<PathBuf> = context_ca.into_iter().map(Path::to_path_buf).collect();
    if let Some(extra) = extra_ca
        && !ca_certs.iter().any(|c| c == extra)
    {
        ca_certs.push(extra.to_path_buf());
    }
    TlsOptions {
        ca_certs,
        insecure: context_insecure || insecure,
    }
}

pub fn resolve(global: &GlobalArgs, config: &Config, vars: &EnvVars) -> anyhow::Result<Target> {
    if let Some(url) = &global.url {
        check_url(url)?;
    }
    let insecure = insecure_now(global, vars);
    let flag_tls = |ctx_ca: Option<&Path>, ctx_insecure: bool| {
        merge_tls(ctx_ca, ctx_insecure, global.ca_cert.as_deref(), insecure)
    };
    let env_or = |fallback: &str| {
        global
            .env
            .clone()
            .or_else(|| vars.env.clone())
            .unwrap_or_else(|| fallback.to_owned())
    };
    let default_url = || parse_url(DEFAULT_URL);

    if let Some(token) = global.token.as_deref().filter(|t| !t.trim().is_empty()) {
        if global.context.is_some() {
            bail!(
                "--context and --token/ASSAY_TOKEN exclude each other: a token names its own \
                 server through --url/ASSAY_URL; drop one of them"
            );
        }
        return Ok(Target {
            url: match &global.url {
                Some(url) => url.clone(),
                None => default_url()?,
            },
            org: global.org.clone().unwrap_or_else(|| DEFAULT_ORG.to_owned()),
            env: env_or(DEFAULT_ENV),
            auth: Auth::Token(token.trim().to_owned()),
            tls: flag_tls(None, false),
        });
    }

    let named = global.context.clone().or_else(|| vars.context.clone());
    let chosen = named.clone().or_else(|| config.current_context.clone());
    if let Some(name) = chosen {
        let ctx = match config.contexts.get(&name) {
            Some(ctx) => ctx,
            None if named.is_some() => bail!("{}", config.unknown(&name)),
            None => bail!(
                "the current context {name:?} is not in the configuration; choose one with \
                 `assay context use NAME` or sign in with `assay login URL`"
            ),
        };
        let url = parse_url(&ctx.url)?;
        if let Some(flag) = &global.url
            && !same_server(flag, &url)
        {
            bail!(
                "--url/ASSAY_URL ({flag}) is not the server of context {name:?} ({url}); its \
                 credential is for that server only. Sign in to the other one with \
                 `assay login {flag}`, or pick its context with --context"
            );
        }
        return Ok(Target {
            url,
            org: global.org.clone().unwrap_or_else(|| ctx.org.clone()),
            env: env_or(&ctx.env),
            auth: Auth::Context {
                name,
                kind: ctx.auth,
            },
            tls: flag_tls(ctx.ca_cert.as_deref(), ctx.insecure),
        });
    }

    Ok(Target {
        url: match &global.url {
            Some(url) => url.clone(),
            None => default_url()?,
        },
        org: global.org.clone().unwrap_or_else(|| DEFAULT_ORG.to_owned()),
        env: env_or(DEFAULT_ENV),
        auth: Auth::None,
        tls: flag_tls(None, false),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::cli::Cli;
    use crate::cli::config::ContextConfig;
    use clap::Parser;
    use std::path::PathBuf;

    fn global(args: &[&str]) -> GlobalArgs {
        let mut all = vec!["assay"];
        all.extend_from_slice(args);
        all.extend(["workflow", "list"]);
        let mut g = Cli::try_parse_from(all).unwrap().global;
        // clap also reads ASSAY_* from the test process's environment; only the flags count.
        if !args.contains(&"--token") {
            g.token = None;
        }
        if !args.contains(&"--url") {
            g.url = None;
        }
        if !args.contains(&"--org") {
            g.org = None;
        }
        if !args.contains(&"--ca-cert") {
            g.ca_cert = None;
        }
        if !args.contains(&"--insecure") {
            g.insecure = false;
        }
        g
    }

    fn config() -> Config {
        let mut config = Config {
            current_context: Some("prod".into()),
            ..Config::default()
        };
        config.contexts.insert(
            "prod".into(),
            ContextConfig {
                url: "https://assay.example.com".into(),
                org: "acme".into(),
                env: "staging".into(),
                auth: AuthKind::OAuth,
                user: Some("alice@example.com".into()),
                ca_cert: Some(PathBuf::from("/corp.pem")),
                insecure: false,
            },
        );
        config.contexts.insert(
            "local".into(),
            ContextConfig {
                url: "http://127.0.0.1:7357".into(),
                org: "default".into(),
                env: "dev".into(),
                auth: AuthKind::ApiToken,
                user: None,
                ca_cert: None,
                insecure: false,
            },
        );
        config
    }

    #[test]
    fn an_explicit_token_is_environment_variable_mode() {
        let vars = EnvVars {
            context: Some("prod".into()),
            env: Some("qa".into()),
            ..EnvVars::default()
        };
        let t = resolve(
            &global(&["--token", "assay_x", "--url", "http://ci:1", "--org", "o"]),
            &config(),
            &vars,
        )
        .unwrap();
        assert_eq!(t.auth, Auth::Token("assay_x".into()));
        assert_eq!(t.url.as_str(), "http://ci:1/");
        assert_eq!((t.org.as_str(), t.env.as_str()), ("o", "qa"));
        assert_eq!(t.tls, TlsOptions::default(), "the context's CA is not used");

        let t = resolve(
            &global(&["--token", "assay_x"]),
            &config(),
            &EnvVars::default(),
        )
        .unwrap();
        assert_eq!(t.url.as_str(), "http://127.0.0.1:7357/");
        assert_eq!((t.org.as_str(), t.env.as_str()), ("default", "dev"));
        assert!(
            resolve(
                &global(&["--token", "assay_x", "--context", "prod"]),
                &config(),
                &EnvVars::default()
            )
            .is_err()
        );
        assert!(format!("{:?}", t.auth) == "Token(***)");
    }

    #[test]
    fn a_context_gives_url_org_env_and_tls_and_flags_override() {
        let none = EnvVars::default();
        let t = resolve(&global(&[]), &config(), &none).unwrap();
        assert_eq!(t.url.as_str(), "https://assay.example.com/");
        assert_eq!((t.org.as_str(), t.env.as_str()), ("acme", "staging"));
        assert_eq!(
            t.auth,
            Auth::Context {
                name: "prod".into(),
                kind: AuthKind::OAuth
            }
        );
        assert_eq!(t.tls.ca_certs, vec![PathBuf::from("/corp.pem")]);

        let t = resolve(
            &global(&["--org", "other", "--env", "prod", "--insecure"]),
            &config(),
            &none,
        )
        .unwrap();
        assert_eq!((t.org.as_str(), t.env.as_str()), ("other", "prod"));
        assert!(t.tls.insecure);

        // ASSAY_ENV overrides the context's environment; --env overrides both.
        let vars = EnvVars {
            env: Some("qa".into()),
            ..EnvVars::default()
        };
        assert_eq!(resolve(&global(&[]), &config(), &vars).unwrap().env, "qa");
        assert_eq!(
            resolve(&global(&["--env", "x"]), &config(), &vars)
                .unwrap()
                .env,
            "x"
        );

        // The same server spelled with a trailing slash is fine; another one is refused.
        assert!(
            resolve(
                &global(&["--url", "https://assay.example.com/"]),
                &config(),
                &none
            )
            .is_ok()
        );
        let err = resolve(
            &global(&["--url", "https://evil.example.com"]),
            &config(),
            &none,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("is not the server of context \"prod\""),
            "{err}"
        );
    }

    #[test]
    fn the_context_is_chosen_by_flag_then_variable_then_current() {
        let vars = EnvVars {
            context: Some("local".into()),
            ..EnvVars::default()
        };
        let name = |t: Target| t.context_name().map(str::to_owned);
        assert_eq!(
            name(resolve(&global(&[]), &config(), &vars).unwrap()).as_deref(),
            Some("local")
        );
        assert_eq!(
            name(resolve(&global(&["--context", "prod"]), &config(), &vars).unwrap()).as_deref(),
            Some("prod")
        );
        let err = resolve(&global(&["--context", "nope"]), &config(), &vars)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "no context \"nope\"; there are: local, prod");
        let mut dangling = config();
        dangling.current_context = Some("gone".into());
        assert!(resolve(&global(&[]), &dangling, &EnvVars::default()).is_err());
    }

    #[test]
    fn a_ca_cert_flag_adds_to_the_context_ca() {
        let none = EnvVars::default();
        let t = resolve(&global(&["--ca-cert", "/proxy.pem"]), &config(), &none).unwrap();
        assert_eq!(
            t.tls.ca_certs,
            vec![PathBuf::from("/corp.pem"), PathBuf::from("/proxy.pem")]
        );
        assert!(!t.tls.insecure);
        // The same file twice is one root.
        let t = resolve(&global(&["--ca-cert", "/corp.pem"]), &config(), &none).unwrap();
        assert_eq!(t.tls.ca_certs, vec![PathBuf::from("/corp.pem")]);
        assert_eq!(
            merge_tls(None, false, Some(Path::new("/x.pem")), false).ca_certs,
            vec![PathBuf::from("/x.pem")]
        );
        assert!(merge_tls(None, true, None, false).insecure);
        // ASSAY_INSECURE counts for the command like the flag.
        let vars = EnvVars {
            insecure: true,
            ..EnvVars::default()
        };
        assert!(
            resolve(&global(&[]), &config(), &vars)
                .unwrap()
                .tls
                .insecure
        );
        assert!(
            !resolve(&global(&[]), &config(), &none)
                .unwrap()
                .tls
                .insecure
        );
    }

    #[test]
    fn insecure_variable_values_read_like_clap_reads_them() {
        for yes in ["1", "true", "TRUE", "yes", "on", "anything"] {
            assert!(truthy(yes), "{yes}");
        }
        for no in ["", " ", "0", "false", "False", "no", "off", "n", "f"] {
            assert!(!truthy(no), "{no}");
        }
    }

    #[test]
    fn a_url_with_credentials_is_refused() {
        let err = resolve(
            &global(&["--url", "https://u:hunter2@assay.example.com"]),
            &Config::default(),
            &EnvVars::default(),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "the server URL must not contain a user name or password; sign in with `assay \
             login` instead"
        );
    }

    #[test]
    fn without_token_or_context_the_defaults_apply() {
        let t = resolve(&global(&[]), &Config::default(), &EnvVars::default()).unwrap();
        assert_eq!(t.url.as_str(), "http://127.0.0.1:7357/");
        assert_eq!((t.org.as_str(), t.env.as_str()), ("default", "dev"));
        assert_eq!(t.auth, Auth::None);
        let t = resolve(
            &global(&["--url", "http://other:9", "--ca-cert", "/ca.pem"]),
            &Config::default(),
            &EnvVars::default(),
        )
        .unwrap();
        assert_eq!(t.url.as_str(), "http://other:9/");
        assert_eq!(t.tls.ca_certs, vec![PathBuf::from("/ca.pem")]);
        // An empty ASSAY_TOKEN is no token.
        let mut g = global(&[]);
        g.token = Some(String::new());
        assert_eq!(
            resolve(&g, &Config::default(), &EnvVars::default())
                .unwrap()
                .auth,
            Auth::None
        );
    }
}
