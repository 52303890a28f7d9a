//! `assay server`: one process with the control plane, the local runner and the HTTP API.
//! Embedded defaults (SQLite under the data dir, local process executor) need no setup.

use anyhow::{Context, bail};
use assay_auth::ssrf::SsrfPolicy;
use assay_control::oauth::OAuthConfig;
use assay_control::{ControlPlaneConfig, LocalControlPlane, bootstrap::Bootstrap};
use assay_core::ports::{Clock, ControlPlane, ExecutionFiles, Executor, Store, SystemClock};
use assay_exec::{FsExecutionFiles, LocalExecutor, LocalExecutorConfig};
use assay_server::{AppState, ServerConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Address to listen on. Loopback by default: exposing Assay is an explicit choice.
    #[arg(long, env = "ASSAY_LISTEN", default_value = "127.0.0.1:7357")]
    pub listen: SocketAddr,
    /// The URL clients use to reach this server (defaults to http://<listen>, or
    /// https://<listen> with --tls-cert).
    #[arg(long, env = "ASSAY_PUBLIC_URL")]
    pub public_url: Option<url::Url>,
    /// Serve HTTPS with this PEM certificate chain (the server's certificate first, then
    /// any intermediates). Needs --tls-key. Without both, plain HTTP: put a TLS-terminating
    /// proxy in front of any non-loopback --listen.
    #[arg(long, env = "ASSAY_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1; unencrypted).
    #[arg(long, env = "ASSAY_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Where the embedded database, workspaces, logs and artifacts live.
    #[arg(long, env = "ASSAY_DATA_DIR", default_value = ".assay")]
    pub data_dir: PathBuf,
    /// `postgres://…` for PostgreSQL; defaults to SQLite at <data-dir>/assay.db.
    #[arg(long, env = "ASSAY_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// How many executions run at the same time on the local runner.
    #[arg(long, env = "ASSAY_RUNNER_CONCURRENCY", default_value_t = 4)]
    pub runner_concurrency: u32,
    /// How long execution workspaces are kept after they were last written, in hours.
    /// Logs and artifacts are kept.
    #[arg(long, env = "ASSAY_WORKSPACE_RETENTION_HOURS", default_value_t = 24)]
    pub workspace_retention_hours: u64,
    /// A browser origin (e.g. https://app.example.com) allowed to call the MCP endpoints,
    /// besides the public URL's own. Repeatable; the environment variable takes a
    /// comma-separated list. Clients that send no Origin (CLI agents, IDEs) need none.
    #[arg(
        long = "allowed-origin",
        env = "ASSAY_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,
    /// Keep MCP sessions (Mcp-Session-Id) for Streamable HTTP clients of protocol versions
    /// before 2026-07-28 that want them (e.g. for server-to-client requests). Each session
    /// is bound to the credential's principal and endpoint that opened it. Sessions live in
    /// this process: behind several replicas, route a client to one replica or leave this off.
    /// The environment variable takes true/false, 1/0, yes/no or on/off.
    #[arg(
        long,
        env = "ASSAY_MCP_SESSIONS",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub mcp_sessions: bool,
    /// Lifetime of OAuth access tokens (JWTs), in seconds. Short, because a JWT is checked
    /// without the database; revoking a grant still ends its tokens within seconds.
    #[arg(long, env = "ASSAY_OAUTH_ACCESS_TOKEN_TTL_SECS", default_value_t = 600)]
    pub oauth_access_token_ttl_secs: u64,
    /// An OAuth refresh token unused for this many days stops working.
    #[arg(long, env = "ASSAY_OAUTH_REFRESH_IDLE_DAYS", default_value_t = 14)]
    pub oauth_refresh_idle_days: u64,
    /// No OAuth refresh token lives longer than this many days after the sign-in that
    /// started it; then the user signs in again.
    #[arg(long, env = "ASSAY_OAUTH_REFRESH_ABSOLUTE_DAYS", default_value_t = 30)]
    pub oauth_refresh_absolute_days: u64,
    /// How long a browser stays signed in on the sign-in and consent pages, in hours.
    #[arg(long, env = "ASSAY_OAUTH_BROWSER_SESSION_HOURS", default_value_t = 8)]
    pub oauth_browser_session_hours: u64,
    /// Let Client ID Metadata Document fetches reach private and loopback addresses (and
    /// plain http on loopback). Only for air-gapped installations whose MCP clients
    /// publish their metadata inside the network: it opens the server to SSRF otherwise.
    #[arg(
        long,
        env = "ASSAY_OAUTH_CIMD_ALLOW_PRIVATE_NETWORKS",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub oauth_cimd_allow_private_networks: bool,
    /// The access-token signing key is replaced when it is older than this many days;
    /// the old one keeps validating until its tokens have expired.
    #[arg(
        long,
        env = "ASSAY_OAUTH_SIGNING_KEY_ROTATION_DAYS",
        default_value_t = 30
    )]
    pub oauth_signing_key_rotation_days: u64,
    /// A file holding the key-encryption key (32 random bytes as hex or base64, e.g. from
    /// `openssl rand -hex 32`) that seals the signing keys in the database. Keep it out of
    /// the database and its backups. Default: <data-dir>/signing-kek, created (mode 0600)
    /// at first start.
    #[arg(long, env = "ASSAY_KEY_ENCRYPTION_KEY_FILE")]
    pub key_encryption_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub sso: crate::sso::SsoArgs,
}

impl ServerArgs {
    /// The TLS configuration from --tls-cert/--tls-key (both or neither), read and checked.
    fn tls(&self) -> anyhow::Result<Option<Arc<assay_server::tls::TlsConfig>>> {
        match (&self.tls_cert, &self.tls_key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(assay_server::tls::load_server_config(cert, key)?)),
            (Some(_), None) => bail!(
                "--tls-cert needs --tls-key (ASSAY_TLS_KEY): pass the certificate's private key too"
            ),
            (None, Some(_)) => {
                bail!("--tls-key needs --tls-cert (ASSAY_TLS_CERT): pass the certificate too")
            }
        }
    }

    /// The authorization server's tunables from the flags; the rest keep their defaults.
    fn oauth_config(&self) -> anyhow::Result<OAuthConfig> {
        const HOUR: u64 = 3600;
        const DAY: u64 = 24 * HOUR;
        if self.oauth_access_token_ttl_secs == 0 {
            bail!("--oauth-access-token-ttl-secs must be at least 1");
        }
        if self.oauth_refresh_idle_days == 0
            || self.oauth_refresh_absolute_days < self.oauth_refresh_idle_days
        {
            bail!(
                "--oauth-refresh-idle-days must be at least 1 and at most \
                 --oauth-refresh-absolute-days"
            );
        }
        if self.oauth_browser_session_hours == 0 {
            bail!("--oauth-browser-session-hours must be at least 1");
        }
        if self.oauth_signing_key_rotation_days == 0 {
            bail!("--oauth-signing-key-rotation-days must be at least 1");
        }
        let days = |n: u64| Duration::from_secs(n.saturating_mul(DAY));
        let mut cimd_policy = SsrfPolicy::strict();
        if self.oauth_cimd_allow_private_networks {
            cimd_policy = cimd_policy
                .allow_private_for_tests_and_airgapped()
                .allow_plain_http_to_loopback_for_tests();
        }
        Ok(OAuthConfig {
            access_token_ttl: Duration::from_secs(self.oauth_access_token_ttl_secs),
            refresh_idle_ttl: days(self.oauth_refresh_idle_days),
            refresh_absolute_ttl: days(self.oauth_refresh_absolute_days),
            browser_session_ttl: Duration::from_secs(
                self.oauth_browser_session_hours.saturating_mul(HOUR),
            ),
            cimd_policy,
            signing_key_rotation: days(self.oauth_signing_key_rotation_days),
            ..OAuthConfig::default()
        })
    }
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    if args.runner_concurrency == 0 {
        bail!("--runner-concurrency must be at least 1");
    }
    let oauth = args.oauth_config()?;
    // Read and checked before anything starts: a bad file names the provider and stops here.
    let sso_providers = crate::sso::load(&args.sso)?;
    let tls = args.tls()?;
    std::fs::create_dir_all(&args.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}; pass --data-dir or ASSAY_DATA_DIR",
            args.data_dir.display()
        )
    })?;
    let data_dir = args
        .data_dir
        .canonicalize()
        .context("cannot resolve the data directory")?;
    let key_encryption_key = crate::kek::load(args.key_encryption_key_file.as_deref(), &data_dir)?;
    // Bind first so `--listen 127.0.0.1:0` yields a usable public URL.
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; is another server running there? pass --listen",
                args.listen
            )
        })?;
    let bound = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let public_url = match &args.public_url {
        Some(u) => u.clone(),
        None => {
            let scheme = if tls.is_some() { "https" } else { "http" };
            url::Url::parse(&format!("{scheme}://{bound}"))
                .context("cannot derive the public URL from --listen; pass --public-url")?
        }
    };
    assay_server::check_public_url(&public_url)
        .map_err(|e| anyhow::anyhow!("--public-url: {e}; pass e.g. https://assay.example.com"))?;

    let database_url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data_dir.join("assay.db").display()));
    let store: Arc<dyn Store> = assay_store::connect(&database_url)
        .await
        .with_context(|| format!("cannot open the database ({})", redact(&database_url)))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);

    let first_start = assay_control::bootstrap::bootstrap(&*store, &*clock)
        .await
        .context("cannot prepare the first organization")?;

    let files = Arc::new(FsExecutionFiles::new(data_dir.clone()));
    let executor: Arc<dyn Executor> = Arc::new(LocalExecutor::new(
        LocalExecutorConfig {
            data_dir: data_dir.clone(),
            concurrency: args.runner_concurrency,
            ..LocalExecutorConfig::default()
        },
        files.clone(),
    ));
    let control = LocalControlPlane::start(
        ControlPlaneConfig {
            concurrency: args.runner_concurrency,
            workspace_retention: Duration::from_secs(args.workspace_retention_hours * 3600),
            public_url: Some(public_url.clone()),
            oauth,
            key_encryption_key: Some(key_encryption_key),
            ..ControlPlaneConfig::default()
        },
        store.clone(),
        executor,
        files as Arc<dyn ExecutionFiles>,
        clock,
    )
    .await
    // As text: the CLI's hints are about calls to a server (e.g. "a bug or a server
    // failure" for an internal error), not about this start, whose message says what to do
    // (e.g. name the key-encryption key flag).
    .map_err(|e| anyhow::anyhow!("cannot start the control plane: {e}"))?;

    let ready_store = store.clone();
    let mut config = ServerConfig::new(public_url.clone());
    config.allowed_origins = args
        .allowed_origins
        .iter()
        .map(|o| o.trim().to_owned())
        .filter(|o| !o.is_empty())
        .collect();
    config.mcp_sessions = args.mcp_sessions;
    let keys = control.clone();
    config.jwks = Some(assay_server::jwks::JwksSource(Arc::new(move || {
        keys.key_ring().jwks()
    })));
    config.oauth = Some(assay_server::oauth::OAuthServer(control.oauth()));
    config.upstream = crate::sso::start(sso_providers, &control).await?;
    let stopping = config.shutdown.clone();
    let state = AppState {
        control: control.clone() as Arc<dyn ControlPlane>,
        auth: control.authenticator(),
        ready: Arc::new(move || {
            let store = ready_store.clone();
            Box::pin(async move { store.list_orgs().await.is_ok() })
        }),
        config,
    };
    tracing::info!(%bound, %public_url, tls = tls.is_some(), data_dir = %data_dir.display(), "assay server listening");
    announce(&public_url, bound, first_start.as_ref());

    let shutdown = async move {
        shutdown_signal().await;
        stopping.cancel();
    };
    let router = assay_server::router(state);
    match tls {
        Some(tls) => assay_server::serve_tls(listener, tls, router, shutdown).await,
        None => assay_server::serve(listener, router, shutdown).await,
    }
    .context("the HTTP server failed")?;
    control.shutdown().await;
    Ok(())
}

/// What a newcomer needs after the first start; printed once, since only hashes are kept.
#[allow(clippy::print_stdout)]
fn announce(public_url: &url::Url, bound: SocketAddr, first: Option<&Bootstrap>) {
    let base = public_url.as_str().trim_end_matches('/');
    println!("Assay is listening on {bound} (public URL {base})");
    let Some(b) = first else {
        return;
    };
    let mcp_url = format!(
        "{base}/organizations/{}/environments/{}/mcp",
        b.org.slug, b.env.slug
    );
    let mcp_config = serde_json::json!({
        "mcpServers": { "assay": {
            "type": "http",
            "url": mcp_url,
            "headers": { "Authorization": format!("Bearer {}", b.admin_token) }
        }}
    });
    println!(
        "\nFirst start: created organization '{org}', environment '{env}' and owner {email}.\n\
         These secrets are shown once and stored only as hashes:\n\n  \
         admin API token:  {token}\n  \
         owner password:   {password}\n\n\
         Use the CLI:\n  export ASSAY_URL={base} ASSAY_TOKEN={token}\n  \
         assay workflow apply -f examples/workflows/smoke.yaml && assay run smoke --watch\n\n\
         MCP client config (Claude Code, VS Code, Cursor):\n{config}\n",
        org = b.org.slug,
        env = b.env.slug,
        email = b.owner_email,
        token = b.admin_token,
        password = b.owner_password,
        config = serde_json::to_string_pretty(&mcp_config).unwrap_or_default(),
    );
}

/// Hides the password of a database URL in messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
