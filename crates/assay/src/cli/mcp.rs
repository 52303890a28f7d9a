//! `assay mcp serve`: the hosted endpoint's tool set, served on this machine over stdio
//! (for AI tools that start it as a child process) or loopback HTTP, acting through the
//! REST API with this process's credential — so the server authorizes and audits every
//! call as the signed-in user.
//!
//! stdout carries JSON-RPC and nothing else (stdio); everything said to people goes to
//! stderr. HTTP mode is not an open door on the machine: it binds loopback by default,
//! refuses foreign `Host`s (DNS rebinding) and browser `Origin`s not allowed explicitly,
//! and every request must carry a random bearer secret made at start.

use super::Context;
use super::config::write_private;
use anyhow::{Context as _, bail};
use assay_core::ports::ControlPlane;
use assay_core::{Actor, ClientInfo, EnvRef};
use assay_mcp::{AssayMcp, AssayMcpConfig, McpCaller, McpHttpConfig, streamable_http_service};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use clap::{Args, Subcommand};
use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

/// Where the HTTP transport serves MCP.
pub const MCP_HTTP_PATH: &str = "/mcp";
pub const DEFAULT_PORT: u16 = 7358;

#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// Serve the MCP tools locally, acting as the signed-in user (or the token)
    Serve(ServeArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// JSON-RPC on stdin/stdout (the AI tool starts this process)
    Stdio,
    /// Streamable HTTP (and legacy HTTP+SSE) at http://HOST:PORT/mcp
    Http,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[arg(long, value_enum, default_value_t = Transport::Stdio)]
    pub transport: Transport,
    /// HTTP: port to listen on (0: any free port; the URL is printed)
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// HTTP: address to listen on (loopback unless --allow-remote)
    #[arg(long, default_value = "127.0.0.1", value_parser = parse_host)]
    pub host: IpAddr,
    /// HTTP: allow a non-loopback --host (others on the network can then reach this
    /// server; the bearer secret is all that stands in their way, over plain HTTP)
    #[arg(long)]
    pub allow_remote: bool,
    /// HTTP: write the bearer secret to FILE (0600, removed at exit) instead of printing
    /// it; recommended when another program (an AI tool) starts this one and keeps its
    /// stderr
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// HTTP: another Host name clients may use besides loopback names and --host (e.g.
    /// this machine's DNS name with --allow-remote); repeatable
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,
    /// HTTP: a browser Origin allowed to call (e.g. http://localhost:6274); repeatable.
    /// Requests with any other Origin are refused
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    /// Log what happens (info) to stderr
    #[arg(short, long)]
    pub verbose: bool,
}

fn parse_host(s: &str) -> Result<IpAddr, String> {
    if s.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    s.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| format!("{s:?} is not an IP address (or localhost)"))
}

pub async fn run(ctx: &Context, cmd: McpCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        McpCommand::Serve(args) => serve(ctx, args).await,
    }
}

async fn serve(ctx: &Context, args: ServeArgs) -> anyhow::Result<ExitCode> {
    // Refuse a bad HTTP setup before any request leaves.
    if args.transport == Transport::Http && !args.host.is_loopback() && !args.allow_remote {
        bail!(
            "--host {} is not a loopback address: anyone who can reach it could use your \
             credentials through this server. Pass --allow-remote if that is really meant",
            args.host
        );
    }
    let caller = fixed_caller(ctx).await?;
    tracing::info!(
        principal = %caller.actor.principal.display_name,
        org = %ctx.env.org,
        env = %ctx.env.env,
        server = %ctx.target.url,
        "acting through the REST API"
    );
    let mcp = AssayMcp::with_caller(
        Arc::new(ctx.client.clone()),
        AssayMcpConfig {
            public_url: Some(ctx.target.url.as_str().trim_end_matches('/').to_owned()),
            ..AssayMcpConfig::default()
        },
        caller.clone(),
    );
    match args.transport {
        Transport::Stdio => {
            assay_mcp::serve_stdio(mcp).await?;
            Ok(ExitCode::SUCCESS)
        }
        Transport::Http => serve_http(mcp, caller, &args).await,
    }
}

/// Who the tools act as: the credential's principal in the context's organization, from
/// `GET /v1/me`, so `tools/list` shows what the role allows. (The server decides again on
/// every call; this only shapes the listing.)
async fn fixed_caller(ctx: &Context) -> anyhow::Result<McpCaller> {
    let me = ctx
        .client
        .whoami(&ctx.actor)
        .await
        .context("cannot find out who this credential is (GET /v1/me)")?;
    let org = &ctx.env.org;
    let Some(membership) = me.memberships.into_iter().find(|m| m.organization.is(org)) else {
        return Err(anyhow::Error::new(assay_core::Error::not_found(
            "organization",
            org.clone(),
        )));
    };
    Ok(McpCaller {
        actor: Actor::new(
            membership.principal,
            ClientInfo {
                user_agent: Some(super::user_agent()),
                ..ClientInfo::default()
            },
        ),
        env: EnvRef::new(ctx.env.org.clone(), ctx.env.env.clone()),
    })
}

/// The per-launch bearer secret; wiped from memory when the last holder drops it.
type Secret = Arc<zeroize::Zeroizing<String>>;

/// What the HTTP guard checks on every request.
#[derive(Clone)]
struct Guard {
    secret: Secret,
    /// Lower-case host names (no port, no brackets).
    hosts: Vec<String>,
    /// ASCII-serialized origins.
    origins: Vec<String>,
    caller: McpCaller,
}

const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl Guard {
    fn new(
        secret: Secret,
        host: IpAddr,
        allowed_hosts: &[String],
        allowed_origins: &[String],
        caller: McpCaller,
    ) -> anyhow::Result<Self> {
        let mut hosts: Vec<String> = LOOPBACK_NAMES.iter().map(|h| (*h).to_owned()).collect();
        if !host.is_loopback() && !host.is_unspecified() {
            hosts.push(host.to_string());
        }
        for raw in allowed_hosts {
            match raw.parse::<axum::http::uri::Authority>() {
                Ok(a) if a.port().is_none() => hosts.push(normalize_host(a.host())),
                _ => bail!("--allowed-host {raw:?} is not a host name (without port)"),
            }
        }
        let mut origins = Vec::new();
        for raw in allowed_origins {
            match origin_of(raw) {
                Some(o) => origins.push(o),
                None => {
                    bail!("--allowed-origin {raw:?} is not an origin like http://localhost:6274")
                }
            }
        }
        Ok(Self {
            secret,
            hosts,
            origins,
            caller,
        })
    }

    fn host_allowed(&self, authority: &str) -> bool {
        authority
            .parse::<axum::http::uri::Authority>()
            .is_ok_and(|a| self.hosts.contains(&normalize_host(a.host())))
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        origin_of(origin).is_some_and(|o| self.origins.contains(&o))
    }

    fn bearer_ok(&self, req: &Request) -> bool {
        let Some(value) = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let Some((scheme, token)) = value.split_once(' ') else {
            return false;
        };
        scheme.eq_ignore_ascii_case("bearer")
            && bool::from(token.trim().as_bytes().ct_eq(self.secret.as_bytes()))
    }
}

fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

fn origin_of(raw: &str) -> Option<String> {
    let origin = url::Url::parse(raw.trim()).ok()?.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// The 403 bodies, the same as assay-mcp's transport answers (it checks again behind
/// this guard): one answer for one refusal, whichever layer gives it.
pub const HOST_REFUSED: &str = "Forbidden: Host header is not allowed";
pub const ORIGIN_REFUSED: &str = "Forbidden: Origin header is not allowed";

fn forbidden(text: &'static str) -> Response {
    let mut response = (StatusCode::FORBIDDEN, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The JSON body of the 401.
fn refusal(status: StatusCode, error: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": error, "message": message }).to_string();
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub const UNAUTHORIZED_MESSAGE: &str = "this local MCP server needs its bearer secret: send \
     Authorization: Bearer <secret> (printed by `assay mcp serve` at start, or in its --secret-file)";

/// Host, then Origin, then the bearer secret; then the fixed caller for the tools.
async fn guard(State(guard): State<Arc<Guard>>, mut req: Request, next: Next) -> Response {
    // HTTP/2 carries the host in `:authority` instead of a header.
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()));
    if !host.is_some_and(|h| guard.host_allowed(&h)) {
        return forbidden(HOST_REFUSED);
    }
    if let Some(origin) = req.headers().get(header::ORIGIN)
        && !origin.to_str().is_ok_and(|o| guard.origin_allowed(o))
    {
        return forbidden(ORIGIN_REFUSED);
    }
    if !guard.bearer_ok(&req) {
        let mut response = refusal(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            UNAUTHORIZED_MESSAGE,
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"assay-mcp-serve\""),
        );
        return response;
    }
    req.extensions_mut().insert(guard.caller.clone());
    next.run(req).await
}

fn router(mcp: AssayMcp, guard: Guard, shutdown: CancellationToken) -> Router {
    let http = McpHttpConfig {
        allowed_hosts: guard.hosts.clone(),
        allowed_origins: guard.origins.clone(),
        ..McpHttpConfig::default()
    };
    let service = streamable_http_service(mcp, &http, shutdown);
    Router::new()
        .route_service(MCP_HTTP_PATH, service)
        // On every path, so nothing here answers without the secret.
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(guard),
            self::guard,
        ))
}

/// A new per-launch secret: 32 random bytes, base64url.
fn new_secret() -> Secret {
    Arc::new(zeroize::Zeroizing::new(assay_client::random_secret()))
}

/// The `--secret-file` this launch wrote; removed when the server stops (dropped), unless
/// another launch has put its own secret there meanwhile.
struct SecretFile {
    path: PathBuf,
    secret: Secret,
}

impl SecretFile {
    fn write(path: &Path, secret: Secret) -> anyhow::Result<Self> {
        write_private(path, secret.as_bytes())?;
        Ok(Self {
            path: path.to_path_buf(),
            secret,
        })
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        let ours = std::fs::read(&self.path)
            .map(zeroize::Zeroizing::new)
            .is_ok_and(|text| bool::from(text.as_slice().ct_eq(self.secret.as_bytes())));
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Ctrl-C, or (Unix) SIGTERM, which is how AI tools stop the servers they started.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn serve_http(
    mcp: AssayMcp,
    caller: McpCaller,
    args: &ServeArgs,
) -> anyhow::Result<ExitCode> {
    let secret = new_secret();
    let guard = Guard::new(
        secret.clone(),
        args.host,
        &args.allowed_hosts,
        &args.allowed_origins,
        caller,
    )?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.host, args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let addr = listener
        .local_addr()
        .context("the listener has no address")?;
    let url = format!("http://{addr}{MCP_HTTP_PATH}");
    let secret_file = match &args.secret_file {
        Some(path) => Some(SecretFile::write(path, secret.clone())?),
        None => None,
    };
    announce(
        &url,
        &secret,
        args.secret_file.as_deref(),
        std::io::stderr().is_terminal(),
    );
    // From here only the guard (and the file's owner) hold the secret.
    drop(secret);

    let shutdown = CancellationToken::new();
    let app = router(mcp, guard, shutdown.clone());
    let stop = shutdown.clone();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            stop_signal().await;
            stop.cancel();
        })
        .await;
    drop(secret_file);
    served.context("the MCP HTTP server failed")?;
    Ok(ExitCode::SUCCESS)
}

/// The start message on stderr: the URL (first line, stable: `Listening on URL`) and how
/// to configure a client — with the secret, unless it went to a file.
fn announce(url: &str, secret: &str, secret_file: Option<&Path>, stderr_is_terminal: bool) {
    for line in announcement(url, secret, secret_file, stderr_is_terminal) {
        eprintln!("{line}");
    }
}

/// A note for when stderr goes somewhere other than a person's terminal (AI tools keep
/// their servers' stderr, often in log files on disk).
pub const SECRET_FILE_NOTE: &str = "note: stderr is not a terminal, so the secret above may \
     end up in a log file; pass --secret-file FILE to keep it out of logs";

fn announcement(
    url: &str,
    secret: &str,
    secret_file: Option<&Path>,
    stderr_is_terminal: bool,
) -> Vec<String> {
    let mut lines = vec![format!("Listening on {url}")];
    match secret_file {
        Some(path) => lines.push(format!(
            "Every request needs the header `Authorization: Bearer <secret>`; the secret is in {} \
             (it changes at every start).",
            path.display()
        )),
        None => {
            let config = serde_json::json!({
                "mcpServers": { "assay": {
                    "type": "http",
                    "url": url,
                    "headers": { "Authorization": format!("Bearer {secret}") },
                }}
            });
            lines.push(format!(
                "Every request needs this bearer secret (it changes at every start; keep it \
                 private):\nSecret: {secret}\nClient configuration (e.g. .mcp.json):\n{config:#}\n\
                 Claude Code: claude mcp add --transport http assay {url} --header \
                 \"Authorization: Bearer {secret}\""
            ));
            if !stderr_is_terminal {
                lines.push(SECRET_FILE_NOTE.to_owned());
            }
        }
    }
    lines.push("Press Ctrl-C to stop.".to_owned());
    lines
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::cli::Cli;
    use assay_core::actor::{Access, AuthMethod};
    use assay_core::{Principal, PrincipalKind};
    use clap::Parser;

    fn caller() -> McpCaller {
        McpCaller {
            actor: Actor::new(
                Principal {
                    kind: PrincipalKind::User,
                    id: uuid::Uuid::new_v4(),
                    display_name: "alice".into(),
                    org_id: uuid::Uuid::new_v4(),
                    access: Access::OrgAdmin,
                    scope_cap: None,
                    auth_method: AuthMethod::CliLogin,
                    credential_id: None,
                },
                ClientInfo::default(),
            ),
            env: EnvRef::new("acme", "dev"),
        }
    }

    /// The guard in front of a handler that says which caller it got.
    async fn guarded(hosts: &[String], origins: &[String]) -> (SocketAddr, String) {
        let secret = new_secret();
        let text = String::clone(&secret);
        let guard = Arc::new(
            Guard::new(
                secret.clone(),
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                hosts,
                origins,
                caller(),
            )
            .unwrap(),
        );
        let app = Router::new()
            .route(
                MCP_HTTP_PATH,
                axum::routing::post(|req: Request| async move {
                    req.extensions()
                        .get::<McpCaller>()
                        .map(|c| c.actor.principal.display_name.clone())
                        .unwrap_or_default()
                }),
            )
            .layer(axum::middleware::from_fn_with_state(guard, self::guard));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, text)
    }

    fn client() -> reqwest::Client {
        assay_client::install_crypto_provider();
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    async fn post(
        addr: SocketAddr,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Option<String>, String) {
        let mut req = client().post(format!("http://{addr}{MCP_HTTP_PATH}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        let status = StatusCode::from_u16(res.status().as_u16()).unwrap();
        let challenge = res
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, challenge, res.text().await.unwrap())
    }

    fn unauthorized_body() -> String {
        serde_json::json!({"error": "unauthorized", "message": UNAUTHORIZED_MESSAGE}).to_string()
    }

    #[tokio::test]
    async fn requests_without_the_right_secret_get_401_with_a_challenge() {
        let (addr, secret) = guarded(&[], &[]).await;
        for headers in [
            vec![],
            vec![("authorization", "Bearer wrong")],
            vec![("authorization", "Basic Zm9vOmJhcg==")],
            vec![("authorization", "Bearer")],
        ] {
            let (status, challenge, body) = post(addr, &headers).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}");
            assert_eq!(
                challenge.as_deref(),
                Some("Bearer realm=\"assay-mcp-serve\"")
            );
            assert_eq!(body, unauthorized_body());
        }
        // The secret with one character changed is as wrong as any other.
        let mut near = secret.clone().into_bytes();
        near[0] = if near[0] == b'A' { b'B' } else { b'A' };
        let near = format!("Bearer {}", String::from_utf8(near).unwrap());
        assert_eq!(
            post(addr, &[("authorization", &near)]).await.0,
            StatusCode::UNAUTHORIZED
        );

        let good = format!("Bearer {secret}");
        let (status, _, body) = post(addr, &[("authorization", &good)]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "alice", "the fixed caller reaches the handler");
        let lower = format!("bearer {secret}");
        assert_eq!(
            post(addr, &[("authorization", &lower)]).await.0,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn a_foreign_host_is_refused_before_the_secret_is_looked_at() {
        let (addr, secret) = guarded(&[], &[]).await;
        let good = format!("Bearer {secret}");
        let (status, challenge, body) = post(
            addr,
            &[("host", "evil.example.com"), ("authorization", &good)],
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(challenge, None);
        assert_eq!(body, "Forbidden: Host header is not allowed");
        // Without a secret too: 403, not 401 (rebinding learns nothing about the secret).
        assert_eq!(
            post(addr, &[("host", "evil.example.com:7358")]).await.0,
            StatusCode::FORBIDDEN
        );
        let (named, named_secret) = guarded(&["Dev-Box.example.com".to_owned()], &[]).await;
        let named_bearer = format!("Bearer {named_secret}");
        assert_eq!(
            post(
                named,
                &[
                    ("host", "dev-box.example.com:7358"),
                    ("authorization", &named_bearer)
                ]
            )
            .await
            .0,
            StatusCode::OK,
            "an --allowed-host name is accepted"
        );
        for host in ["localhost:7358", "127.0.0.1", "[::1]:1"] {
            assert_eq!(
                post(addr, &[("host", host), ("authorization", &good)])
                    .await
                    .0,
                StatusCode::OK,
                "{host}"
            );
        }
    }

    #[tokio::test]
    async fn browser_origins_are_refused_unless_allowed() {
        let (addr, secret) = guarded(&[], &["http://localhost:6274".to_owned()]).await;
        let good = format!("Bearer {secret}");
        let (status, _, body) = post(
            addr,
            &[
                ("origin", "https://evil.example.com"),
                ("authorization", &good),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body, "Forbidden: Origin header is not allowed");
        assert_eq!(
            post(addr, &[("origin", "null"), ("authorization", &good)])
                .await
                .0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            post(
                addr,
                &[
                    ("origin", "http://localhost:6274"),
                    ("authorization", &good)
                ]
            )
            .await
            .0,
            StatusCode::OK
        );
        // An allowed origin still needs the secret.
        assert_eq!(
            post(addr, &[("origin", "http://localhost:6274")]).await.0,
            StatusCode::UNAUTHORIZED
        );
    }

    #[test]
    fn secrets_are_32_random_bytes_base64url() {
        let (a, b) = (new_secret(), new_secret());
        let (a, b) = (a.as_str(), b.as_str());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn the_secret_file_is_removed_at_exit_unless_another_launch_took_it_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let file = SecretFile::write(&path, new_secret()).unwrap();
        #[cfg(unix)]
        assert!(super::super::credentials::is_private(&path));
        drop(file);
        assert!(!path.exists());

        let file = SecretFile::write(&path, new_secret()).unwrap();
        let newer = new_secret();
        write_private(&path, newer.as_bytes()).unwrap();
        drop(file);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), newer.as_str());
    }

    #[test]
    fn a_printed_secret_gets_a_note_when_stderr_is_no_terminal() {
        let url = "http://127.0.0.1:7358/mcp";
        let to_log = announcement(url, "s3cret", None, false);
        assert_eq!(to_log[0], "Listening on http://127.0.0.1:7358/mcp");
        assert!(to_log[1].contains("Secret: s3cret"));
        assert_eq!(
            to_log[2],
            "note: stderr is not a terminal, so the secret above may end up in a log file; pass \
             --secret-file FILE to keep it out of logs"
        );
        assert_eq!(to_log.len(), 4);
        let on_terminal = announcement(url, "s3cret", None, true);
        assert!(!on_terminal.iter().any(|l| l.starts_with("note:")));
        let in_file = announcement(url, "s3cret", Some(Path::new("/run/s")), false);
        assert!(!in_file.iter().any(|l| l.contains("s3cret")), "{in_file:?}");
        assert!(!in_file.iter().any(|l| l.starts_with("note:")));
    }

    #[test]
    fn serve_flags_parse_and_hosts_are_addresses() {
        let cli = Cli::try_parse_from([
            "assay",
            "mcp",
            "serve",
            "--transport",
            "http",
            "--port",
            "0",
            "--host",
            "localhost",
            "--secret-file",
            "/tmp/s",
            "--allowed-origin",
            "http://localhost:6274",
            "-v",
        ])
        .unwrap();
        let super::super::Command::Mcp(McpCommand::Serve(args)) = &cli.command else {
            panic!("expected mcp serve");
        };
        assert_eq!(args.transport, Transport::Http);
        assert_eq!(args.port, 0);
        assert_eq!(args.host, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert!(args.verbose);
        assert_eq!(cli.default_log_level(), "info");
        let cli = Cli::try_parse_from(["assay", "mcp", "serve"]).unwrap();
        assert_eq!(cli.default_log_level(), "warn");
        let super::super::Command::Mcp(McpCommand::Serve(args)) = &cli.command else {
            panic!("expected mcp serve");
        };
        assert_eq!(
            (args.transport, args.port),
            (Transport::Stdio, DEFAULT_PORT)
        );
        assert!(Cli::try_parse_from(["assay", "mcp", "serve", "--host", "example.com"]).is_err());
        // There is no way to give the secret: it is made at start.
        assert!(Cli::try_parse_from(["assay", "mcp", "serve", "--secret", "x"]).is_err());
    }
}
