//! Where the CLI keeps its settings: the config directory and `config.yaml`, the contexts
//! `assay login` saves (server, organization, environment; never a secret — those are in
//! the OS keyring or `credentials.json`, see `credentials`).

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "config.yaml";
pub const CREDENTIALS_FILE: &str = "credentials.json";
pub const LOCK_FILE: &str = "credentials.lock";

/// The config directory: `$ASSAY_CONFIG_DIR`, else `$XDG_CONFIG_HOME/assay`, else
/// `$HOME/.config/assay`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigDir {
    path: PathBuf,
}

impl ConfigDir {
    /// `None` when none of the variables is set (e.g. a CI job with a cleared environment):
    /// then there are no contexts, and only commands that must write one fail.
    pub fn locate() -> Option<Self> {
        Self::from_vars(|name| std::env::var_os(name))
    }

    pub fn from_vars(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<Self> {
        let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let path = set("ASSAY_CONFIG_DIR")
            .or_else(|| set("XDG_CONFIG_HOME").map(|p| p.join("assay")))
            .or_else(|| set("HOME").map(|p| p.join(".config").join("assay")))?;
        Some(Self { path })
    }

    /// A given directory (tests).
    #[cfg(test)]
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Like [`ConfigDir::locate`], for commands that must write: an error saying what to set.
    pub fn required() -> anyhow::Result<Self> {
        Self::locate()
            .context("cannot tell where to keep the configuration: set ASSAY_CONFIG_DIR (or HOME)")
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn config_file(&self) -> PathBuf {
        self.path.join(CONFIG_FILE)
    }

    pub fn credentials_file(&self) -> PathBuf {
        self.path.join(CREDENTIALS_FILE)
    }

    pub fn lock_file(&self) -> PathBuf {
        self.path.join(LOCK_FILE)
    }

    /// Creates the directory (and parents) when missing; a new directory is 0700.
    pub fn ensure(&self) -> anyhow::Result<()> {
        if self.path.is_dir() {
            return Ok(());
        }
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(&self.path)
            .with_context(|| format!("cannot create {}", self.path.display()))
    }

    /// `config.yaml`, or an empty configuration when there is none yet.
    pub fn load(&self) -> anyhow::Result<Config> {
        let file = self.config_file();
        match std::fs::read_to_string(&file) {
            Ok(text) if text.trim().is_empty() => Ok(Config::default()),
            Ok(text) => Config::parse(&text).with_context(|| format!("in {}", file.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", file.display())),
        }
    }

    /// Writes `config.yaml` atomically (a reader never sees half a file). Callers that
    /// read, change and write hold the credentials lock so two processes do not race.
    pub fn save(&self, config: &Config) -> anyhow::Result<()> {
        self.ensure()?;
        let text = serde_saphyr::to_string(config).context("cannot write the configuration")?;
        write_private(&self.config_file(), text.as_bytes())
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename;
/// the file is 0600 from its creation on.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("assay");
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// `config.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_context: Option<String>,
    #[serde(default)]
    pub contexts: BTreeMap<String, ContextConfig>,
}

/// One saved server + organization + environment, and how its credential authenticates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ContextConfig {
    pub url: String,
    pub org: String,
    pub env: String,
    pub auth: AuthKind,
    /// Who signed in, for display only (authorization is the server's business).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Extra trusted CA certificate (PEM) for this server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthKind {
    /// `assay login` through the browser or a device code: refreshable tokens.
    #[serde(rename = "oauth")]
    OAuth,
    /// `assay login --api-token-stdin`.
    #[serde(rename = "api-token")]
    ApiToken,
}

impl AuthKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthKind::OAuth => "oauth",
            AuthKind::ApiToken => "api-token",
        }
    }
}

impl Config {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let config: Config =
            serde_saphyr::from_str(text).context("the configuration is not valid")?;
        for (name, ctx) in &config.contexts {
            if let Err(e) = parse_url(&ctx.url) {
                bail!("context {name:?}: {e:#}");
            }
        }
        Ok(config)
    }

    pub fn context(&self, name: &str) -> anyhow::Result<&ContextConfig> {
        match self.contexts.get(name) {
            Some(ctx) => Ok(ctx),
            None => bail!("{}", self.unknown(name)),
        }
    }

    /// "no context X" plus the ones there are.
    pub fn unknown(&self, name: &str) -> String {
        if self.contexts.is_empty() {
            format!("no context {name:?}: there are none yet; create one with `assay login URL`")
        } else {
            let names: Vec<&str> = self.contexts.keys().map(String::as_str).collect();
            format!("no context {name:?}; there are: {}", names.join(", "))
        }
    }
}

/// A server URL as given by a user or read from the configuration.
pub fn parse_url(raw: &str) -> anyhow::Result<url::Url> {
    let url = match url::Url::parse(raw.trim()) {
        Ok(url) => url,
        // The text may hold a password; say what is wrong without repeating it.
        Err(_) if raw.contains('@') => bail!("the server URL is not a URL"),
        Err(_) => bail!("{raw:?} is not a URL"),
    };
    check_url(&url)?;
    Ok(url)
}

/// What a server URL must be: http(s), a host, and no user name or password (those would
/// be sent nowhere useful and could end up in error messages and `config.yaml`).
pub fn check_url(url: &url::Url) -> anyhow::Result<()> {
    if !url.username().is_empty() || url.password().is_some() {
        bail!(
            "the server URL must not contain a user name or password; sign in with `assay login` \
             instead"
        );
    }
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        bail!("{:?} is not an http:// or https:// URL", url.as_str());
    }
    Ok(())
}

/// The name a context gets when none is given: the server's `host[:port]`.
pub fn default_context_name(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("assay");
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// Compares server URLs the way they are meant (a trailing slash is no other server).
pub fn same_server(a: &url::Url, b: &url::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
        && a.path().trim_end_matches('/') == b.path().trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn the_config_dir_follows_assay_then_xdg_then_home() {
        let vars = |set: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                set.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(*v))
            }
        };
        static ALL: [(&str, &str); 3] = [
            ("ASSAY_CONFIG_DIR", "/a"),
            ("XDG_CONFIG_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(
            ConfigDir::from_vars(vars(&ALL)).unwrap().path(),
            Path::new("/a")
        );
        assert_eq!(
            ConfigDir::from_vars(vars(&[("ASSAY_CONFIG_DIR", ""), ("XDG_CONFIG_HOME", "/x")]))
                .unwrap()
                .path(),
            Path::new("/x/assay")
        );
        assert_eq!(
            ConfigDir::from_vars(vars(&[("HOME", "/h")]))
                .unwrap()
                .path(),
            Path::new("/h/.config/assay")
        );
        assert_eq!(ConfigDir::from_vars(vars(&[])), None);
    }

    #[test]
    fn the_configuration_round_trips_in_the_documented_shape() {
        let text = "\
current-context: assay.example.com
contexts:
  assay.example.com:
    url: https://assay.example.com
    org: acme
    env: dev
    auth: oauth
    user: alice@example.com
    ca-cert: /etc/ssl/corp.pem
    insecure: true
  ci:
    url: http://127.0.0.1:7357
    org: default
    env: prod
    auth: api-token
";
        let config = Config::parse(text).unwrap();
        assert_eq!(config.current_context.as_deref(), Some("assay.example.com"));
        let ctx = config.context("assay.example.com").unwrap();
        assert_eq!(ctx.auth, AuthKind::OAuth);
        assert_eq!(ctx.ca_cert.as_deref(), Some(Path::new("/etc/ssl/corp.pem")));
        assert!(ctx.insecure);
        assert_eq!(config.context("ci").unwrap().auth, AuthKind::ApiToken);
        assert!(!config.context("ci").unwrap().insecure);

        let dir = tempfile::tempdir().unwrap();
        let store = ConfigDir::at(dir.path().join("nested").join("assay"));
        assert_eq!(store.load().unwrap(), Config::default());
        store.save(&config).unwrap();
        assert_eq!(store.load().unwrap(), config);
        let written = std::fs::read_to_string(store.config_file()).unwrap();
        assert!(
            written.contains("current-context: assay.example.com"),
            "{written}"
        );
        assert!(written.contains("ca-cert: /etc/ssl/corp.pem"), "{written}");
        assert!(!written.contains("insecure: false"), "{written}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(store.path()), 0o700);
            assert_eq!(mode(&store.config_file()), 0o600);
        }
    }

    #[test]
    fn bad_configurations_are_refused_with_the_context_named() {
        let err = Config::parse(
            "contexts:\n  x:\n    url: ftp://h\n    org: o\n    env: e\n    auth: oauth\n",
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("context \"x\""), "{err:#}");
        assert!(Config::parse("contexts:\n  x:\n    url: http://h\n    org: o\n").is_err());
        assert!(Config::parse("colour: blue\n").is_err());
        let config = Config::default();
        assert_eq!(
            config.context("nope").unwrap_err().to_string(),
            "no context \"nope\": there are none yet; create one with `assay login URL`"
        );
    }

    #[test]
    fn server_urls_with_credentials_are_refused_without_repeating_them() {
        for raw in [
            "https://user:hunter2@assay.example.com",
            "https://user@assay.example.com/",
            "http://:hunter2@127.0.0.1:7357",
        ] {
            let err = format!("{:#}", parse_url(raw).unwrap_err());
            assert_eq!(
                err,
                "the server URL must not contain a user name or password; sign in with \
                 `assay login` instead",
                "{raw}"
            );
        }
        let err = Config::parse(
            "contexts:\n  x:\n    url: https://u:hunter2@h\n    org: o\n    env: e\n    auth: oauth\n",
        )
        .unwrap_err();
        assert!(!format!("{err:#}").contains("hunter2"), "{err:#}");
        assert!(
            !format!("{:#}", parse_url("https://u:hunter2@[bad").unwrap_err()).contains("hunter2")
        );
        assert!(parse_url("https://assay.example.com/base/").is_ok());
    }

    #[test]
    fn context_names_default_to_host_and_port() {
        assert_eq!(
            default_context_name(&parse_url("https://assay.example.com/").unwrap()),
            "assay.example.com"
        );
        assert_eq!(
            default_context_name(&parse_url("http://127.0.0.1:7357").unwrap()),
            "127.0.0.1:7357"
        );
        assert!(same_server(
            &parse_url("https://A.example.com:443/x/").unwrap(),
            &parse_url("https://a.example.com/x").unwrap()
        ));
        assert!(!same_server(
            &parse_url("http://a.example.com").unwrap(),
            &parse_url("https://a.example.com").unwrap()
        ));
    }
}
