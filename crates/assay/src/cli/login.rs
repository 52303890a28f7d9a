//! `assay login`, `assay logout`, `assay whoami`, and turning a context's stored secret
//! into the credential the client sends.
//!
//! Login: the browser flow (RFC 8252 loopback redirect, PKCE) by default, `--device` for
//! machines without a browser (RFC 8628), or `--api-token-stdin`. Then `GET /v1/me`
//! says which organizations and environments the new credential reaches, one of each is
//! chosen (flags, the only one, or a numbered list on a terminal), and the result is
//! saved as a context and made current. Secrets never appear on the command line.

use super::config::{
    AuthKind, Config, ConfigDir, ContextConfig, check_url, default_context_name, parse_url,
    same_server,
};
use super::credentials::{
    ContextTokenStore, CredentialStore, Deletion, Location, StoreMode, StoredCredential,
    off_runtime,
};
use super::output::{self, Table};
use super::target::{DEFAULT_URL, EnvVars, insecure_now, merge_tls};
use super::{Context, GlobalArgs, user_agent, warn_if_insecure};
use anyhow::{Context as _, bail};
use assay_client::login::{
    AuthServerMetadata, CLI_CLIENT_ID, CLI_SCOPE, DEFAULT_BROWSER_TIMEOUT, DeviceCode,
    browser_login, device_login, discover, revoke,
};
use assay_client::{
    ClientConfig, Credential, OAuthSession, RemoteControlPlane, TlsOptions, oauth_http_client,
};
use assay_core::identity::{Identity, IdentityMembership};
use assay_core::ports::ControlPlane;
use clap::Args;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// `ASSAY_TOKEN_REFRESH_MARGIN_SECS`: refresh this long before the access token expires
/// (default 60). A test knob: short-lived tokens in end-to-end tests.
const REFRESH_MARGIN_VAR: &str = "ASSAY_TOKEN_REFRESH_MARGIN_SECS";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Logout's limit for each request to the server: it holds the credentials lock (which
/// other assay processes wait up to a minute for) across the revocations.
const LOGOUT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Server URL [default: --url, ASSAY_URL, else http://127.0.0.1:7357]
    #[arg(value_name = "URL")]
    pub server: Option<String>,
    /// Sign in with a code on another device (for machines without a browser)
    #[arg(long, conflicts_with = "api_token_stdin")]
    pub device: bool,
    /// Read an API token from stdin instead of signing in as a user
    #[arg(long)]
    pub api_token_stdin: bool,
    /// Do not open a browser; print the sign-in URL only
    #[arg(long, conflicts_with = "api_token_stdin")]
    pub no_browser: bool,
}

/// The URL as people write it (no trailing slash on a bare host).
fn display_url(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

pub async fn login(global: &GlobalArgs, args: LoginArgs) -> anyhow::Result<ExitCode> {
    // `--token` is global (other commands take it); here it would be a secret on the
    // command line, in shell history and process lists. ASSAY_TOKEN is simply not used.
    let from_env = std::env::var("ASSAY_TOKEN").ok();
    if global.token.is_some() && global.token != from_env {
        bail!("`assay login` does not take --token: pipe an API token in with --api-token-stdin");
    }
    let dir = ConfigDir::required()?;
    let url = match (&args.server, &global.url) {
        (Some(raw), _) => parse_url(raw)?,
        (None, Some(url)) => {
            check_url(url)?;
            url.clone()
        }
        (None, None) => parse_url(DEFAULT_URL)?,
    };
    let config = dir.load()?;
    let vars = EnvVars::read();
    let name = global
        .context
        .clone()
        .unwrap_or_else(|| default_context_name(&url));
    // Signing in again to the same server keeps that context's CA certificate.
    let previous = existing_context(&config, &name, &url)?.cloned();
    let (ca_cert, insecure) = saved_tls(
        previous.as_ref(),
        global.ca_cert.as_deref(),
        global.insecure,
    )?;
    let tls = merge_tls(
        previous.as_ref().and_then(|p| p.ca_cert.as_deref()),
        false,
        ca_cert.as_deref(),
        insecure_now(global, &vars),
    );
    warn_if_insecure(&tls);
    let http = oauth_http_client(&user_agent(), &tls, CONNECT_TIMEOUT)?;

    let mut meta = None;
    let credential = if args.api_token_stdin {
        StoredCredential::ApiToken {
            token: read_token_from_stdin()?,
        }
    } else {
        let meta = &*meta.insert(discover(&http, &url).await?);
        let tokens = if args.device {
            device_login(
                &http,
                meta,
                CLI_CLIENT_ID,
                CLI_SCOPE,
                &meta.resource,
                show_device_code,
            )
            .await?
        } else {
            browser_login(
                &http,
                meta,
                CLI_CLIENT_ID,
                CLI_SCOPE,
                &meta.resource,
                |authorize| open_browser(authorize, args.no_browser),
                DEFAULT_BROWSER_TIMEOUT,
            )
            .await?
        };
        StoredCredential::OAuth {
            tokens,
            client_id: CLI_CLIENT_ID.to_owned(),
            token_endpoint: Some(meta.token_endpoint.to_string()),
            revocation_endpoint: meta.revocation_endpoint.as_ref().map(Url::to_string),
        }
    };

    // Ask the server who this is, with the fresh credential as it is (no refresh needed).
    let bearer = match &credential {
        StoredCredential::OAuth { tokens, .. } => tokens.access_token.clone(),
        StoredCredential::ApiToken { token } => token.clone(),
    };
    let client = RemoteControlPlane::new(ClientConfig {
        base_url: url.clone(),
        credential: Credential::Bearer(bearer),
        tls: tls.clone(),
        org: String::new(),
        env: String::new(),
        user_agent: user_agent(),
        timeout: Duration::from_secs(global.timeout.max(1)),
    })?;
    let me = client.whoami(&client.actor()).await?;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let env_wanted = global.env.clone().or(vars.env);
    let membership = choose_org(&me, global.org.as_deref(), interactive)?;
    let env = choose_env(membership, env_wanted.as_deref(), interactive)?;
    let user = me.email.clone().unwrap_or_else(|| me.display_name.clone());

    let store = Arc::new(CredentialStore::open(dir.clone())?);
    let context = ContextConfig {
        url: display_url(&url),
        org: membership.organization.slug.clone(),
        env: env.slug.clone(),
        auth: match credential {
            StoredCredential::OAuth { .. } => AuthKind::OAuth,
            StoredCredential::ApiToken { .. } => AuthKind::ApiToken,
        },
        user: Some(user.clone()),
        ca_cert,
        insecure,
    };
    let (replaced, location) = {
        let (store, name, url, credential) =
            (store.clone(), name.clone(), url.clone(), credential.clone());
        off_runtime(move || save_login(&store, &dir, &name, &url, &credential, context)).await?
    };
    // Said once, at login (not at every refresh): where the secret went instead.
    if location == Location::File && store.mode() == StoreMode::Auto {
        eprintln!(
            "note: no OS keyring is available; credentials are kept in {} (readable only by \
             you)",
            store.credentials_file().display()
        );
    }
    if let Some((tokens, client_id)) = replaced {
        end_replaced_login(&http, meta, &url, &credential, &client_id, &tokens).await;
    }
    eprintln!(
        "Logged in to {} as {user} (org {}, env {}); context {name}",
        display_url(&url),
        membership.organization.slug,
        env.slug
    );
    Ok(ExitCode::SUCCESS)
}

/// A login's context named `name`: the one there is when it is for the same server,
/// `None` when there is none. A context for another server is not re-pointed: its
/// credential, and an `assay mcp serve` running on it, belong to that server.
fn existing_context<'a>(
    config: &'a Config,
    name: &str,
    url: &Url,
) -> anyhow::Result<Option<&'a ContextConfig>> {
    let Some(ctx) = config.contexts.get(name) else {
        return Ok(None);
    };
    if !parse_url(&ctx.url).is_ok_and(|u| same_server(&u, url)) {
        bail!(
            "context {name:?} is for {}, not {}: delete it first with `assay context delete \
             {name}`, or choose another name with --context NAME",
            ctx.url,
            display_url(url)
        );
    }
    Ok(Some(ctx))
}

/// The TLS settings a login keeps in its context: the CA certificate given now (absolute:
/// later commands run from other directories), else the one the context had; and
/// certificate checks off only when this login's own `--insecure` flag says so —
/// `ASSAY_INSECURE` counts for one command, and signing in again without the flag turns
/// the checks back on.
fn saved_tls(
    previous: Option<&ContextConfig>,
    ca_flag: Option<&Path>,
    insecure_flag: bool,
) -> anyhow::Result<(Option<PathBuf>, bool)> {
    let ca_cert =
        match ca_flag {
            Some(path) => Some(std::path::absolute(path).with_context(|| {
                format!("--ca-cert {}: cannot make it absolute", path.display())
            })?),
            None => previous.and_then(|p| p.ca_cert.clone()),
        };
    Ok((ca_cert, insecure_flag))
}

/// Saves a new login under the credentials lock: its credential, and its context made
/// current. Returns the OAuth tokens of the login it replaces on the same server (to end
/// it on the server) and where the secret went.
fn save_login(
    store: &CredentialStore,
    dir: &ConfigDir,
    name: &str,
    url: &Url,
    credential: &StoredCredential,
    context: ContextConfig,
) -> anyhow::Result<(Option<(assay_client::TokenSet, String)>, Location)> {
    let _lock = store.lock()?;
    // Re-read under the lock: another process may have changed the contexts meanwhile.
    let mut config = dir.load()?;
    let same_server = existing_context(&config, name, url)?.is_some();
    let replaced = match store.load(name)? {
        Some((
            StoredCredential::OAuth {
                tokens, client_id, ..
            },
            _,
        )) if same_server => Some((tokens, client_id)),
        _ => None,
    };
    let location = store.save(name, credential)?;
    config.contexts.insert(name.to_owned(), context);
    config.current_context = Some(name.to_owned());
    dir.save(&config)?;
    Ok((replaced, location))
}

/// Revokes the replaced login's tokens on the server, best effort: the new login is
/// saved already, and a failure leaves only a session that expires by itself. A server
/// whose access tokens carry `sid` ends just that login's session; an older one would
/// end the whole grant, the new login's included, so a new OAuth login without `sid`
/// leaves the old session alone (an API token replacing a login loses nothing either way).
async fn end_replaced_login(
    http: &reqwest::Client,
    meta: Option<AuthServerMetadata>,
    url: &Url,
    new: &StoredCredential,
    client_id: &str,
    old: &assay_client::TokenSet,
) {
    if let StoredCredential::OAuth { tokens, .. } = new
        && !has_session_claim(&tokens.access_token)
    {
        return;
    }
    let meta = match meta {
        Some(meta) => meta,
        None => match discover(http, url).await {
            Ok(meta) => meta,
            Err(e) => {
                eprintln!("note: could not end the previous login on the server: {e}");
                return;
            }
        },
    };
    if let Err(e) = revoke_session(http, &meta, client_id, old).await {
        eprintln!("note: could not end the previous login on the server: {e}");
    }
}

/// Whether an access token (a JWT from the server, read unverified: only to learn what
/// the server supports) names its sign-in session in `sid`.
fn has_session_claim(access_token: &str) -> bool {
    use base64::Engine as _;
    access_token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|claims| claims.get("sid").is_some_and(serde_json::Value::is_string))
}

/// The whole of stdin, trimmed: `assay login --api-token-stdin < token.txt` or a pipe.
fn read_token_from_stdin() -> anyhow::Result<String> {
    let mut text = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut text)
        .context("cannot read the API token from stdin")?;
    let token = text.trim();
    if token.is_empty() {
        bail!(
            "no API token on stdin: pipe it in, e.g. `assay login URL --api-token-stdin < token.txt`"
        );
    }
    if token.contains(char::is_whitespace) {
        bail!("stdin holds more than one word; --api-token-stdin expects the token alone");
    }
    Ok(token.to_owned())
}

/// Device flow: what to type where. Line prefixes are stable (scripts and tests read them).
fn show_device_code(code: &DeviceCode) {
    let visit = code
        .verification_uri_complete
        .as_deref()
        .unwrap_or(&code.verification_uri);
    eprintln!("To sign in, open the URL on any device and confirm the code.");
    eprintln!("Code: {}", code.user_code);
    eprintln!("Visit: {visit}");
    eprintln!(
        "Waiting for your approval (the code expires in {} minutes)…",
        code.expires_in.div_ceil(60)
    );
}

/// Browser flow: print the URL (always, on stderr) and open a browser unless told not to
/// or there is no display to open one on.
fn open_browser(authorize: &Url, no_browser: bool) {
    if no_browser || !has_display() {
        eprintln!("Open this URL to sign in: {authorize}");
        return;
    }
    eprintln!("Opening your browser… If it does not open, visit: {authorize}");
    if let Err(e) = webbrowser::open(authorize.as_str()) {
        eprintln!("(could not open a browser: {e})");
    }
}

/// Linux and the BSDs need X11 or Wayland for a browser; macOS and Windows always have one.
fn has_display() -> bool {
    if cfg!(any(target_os = "macos", target_os = "windows")) {
        return true;
    }
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()))
}

fn choose_org<'a>(
    me: &'a Identity,
    wanted: Option<&str>,
    interactive: bool,
) -> anyhow::Result<&'a IdentityMembership> {
    let items = &me.memberships;
    let label = |m: &IdentityMembership| match m.role {
        Some(role) => format!(
            "{} ({}), {}",
            m.organization.slug,
            m.organization.name,
            role.as_str()
        ),
        None => format!("{} ({})", m.organization.slug, m.organization.name),
    };
    if let Some(wanted) = wanted {
        return items
            .iter()
            .find(|m| m.organization.is(wanted))
            .with_context(|| {
                format!(
                    "--org {wanted:?} is none of your organizations: {}",
                    slugs(items.iter().map(|m| &m.organization.slug))
                )
            });
    }
    match items.len() {
        0 => bail!(
            "{} belongs to no organization on this server; ask an organization admin to add you",
            me.email.as_deref().unwrap_or(&me.display_name)
        ),
        1 => Ok(&items[0]),
        _ if interactive => {
            let labels: Vec<String> = items.iter().map(label).collect();
            Ok(&items[pick("organization", &labels)?])
        }
        _ => bail!(
            "you belong to several organizations; choose one with --org: {}",
            slugs(items.iter().map(|m| &m.organization.slug))
        ),
    }
}

fn choose_env<'a>(
    membership: &'a IdentityMembership,
    wanted: Option<&str>,
    interactive: bool,
) -> anyhow::Result<&'a assay_core::identity::EnvironmentAccess> {
    let items = &membership.environments;
    let org = &membership.organization.slug;
    if let Some(wanted) = wanted {
        return items
            .iter()
            .find(|e| e.slug == wanted || e.id.to_string() == wanted)
            .with_context(|| {
                if items.is_empty() {
                    format!("--env {wanted:?}: you can reach no environment in organization {org}")
                } else {
                    format!(
                        "--env {wanted:?} is none of the environments you can reach in organization {org}: {}",
                        slugs(items.iter().map(|e| &e.slug))
                    )
                }
            });
    }
    match items.len() {
        0 => bail!(
            "you can reach no environment in organization {org}; ask an organization admin for a grant"
        ),
        1 => Ok(&items[0]),
        _ if interactive => {
            let labels: Vec<String> = items
                .iter()
                .map(|e| format!("{} ({}), {}", e.slug, e.name, e.level))
                .collect();
            Ok(&items[pick("environment", &labels)?])
        }
        _ => bail!(
            "you can reach several environments in organization {org}; choose one with --env: {}",
            slugs(items.iter().map(|e| &e.slug))
        ),
    }
}

fn slugs<'a>(items: impl Iterator<Item = &'a String>) -> String {
    items.map(String::as_str).collect::<Vec<_>>().join(", ")
}

/// A numbered list on stderr, the answer from stdin (a terminal).
fn pick(what: &str, labels: &[String]) -> anyhow::Result<usize> {
    let stdin = std::io::stdin();
    let mut stderr = std::io::stderr();
    writeln!(stderr, "Choose an {what}:")?;
    for (i, label) in labels.iter().enumerate() {
        writeln!(stderr, "  {}) {label}", i + 1)?;
    }
    for _ in 0..3 {
        write!(stderr, "Number [1-{}]: ", labels.len())?;
        stderr.flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        match line.trim().parse::<usize>() {
            Ok(n) if (1..=labels.len()).contains(&n) => return Ok(n - 1),
            _ => writeln!(
                stderr,
                "Please answer with a number from 1 to {}.",
                labels.len()
            )?,
        }
    }
    bail!("no {what} chosen")
}

/// The credential of a saved context: its API token, or an OAuth session that refreshes
/// (and persists rotated tokens through the credentials lock) as needed.
pub async fn context_credential(
    name: &str,
    url: &Url,
    tls: &TlsOptions,
) -> anyhow::Result<Credential> {
    let dir = ConfigDir::required()?;
    let store = Arc::new(CredentialStore::open(dir)?);
    let loaded = {
        let store = store.clone();
        let name = name.to_owned();
        off_runtime(move || store.load(&name)).await?
    };
    let not_signed_in = || {
        anyhow::anyhow!(assay_core::Error::Unauthenticated(format!(
            "context {name:?} has no stored credentials (logged out?)"
        )))
    };
    let (stored, _) = loaded.ok_or_else(not_signed_in)?;
    Ok(match stored {
        StoredCredential::ApiToken { token } => Credential::Bearer(token),
        StoredCredential::OAuth {
            tokens,
            client_id,
            token_endpoint,
            ..
        } => {
            let http = oauth_http_client(&user_agent(), tls, CONNECT_TIMEOUT)?;
            let endpoint = match token_endpoint.as_deref().map(Url::parse) {
                Some(Ok(endpoint)) => endpoint,
                _ => discover(&http, url).await?.token_endpoint,
            };
            let mut session = OAuthSession::new(
                http,
                endpoint,
                client_id,
                tokens,
                Arc::new(ContextTokenStore::new(store, name, token_endpoint)),
            );
            if let Some(margin) = refresh_margin()? {
                session = session.with_refresh_margin(margin);
            }
            Credential::OAuth(Arc::new(session))
        }
    })
}

fn refresh_margin() -> anyhow::Result<Option<Duration>> {
    match std::env::var(REFRESH_MARGIN_VAR) {
        Ok(v) if !v.trim().is_empty() => {
            let secs: u64 = v.trim().parse().with_context(|| {
                format!("{REFRESH_MARGIN_VAR}={v:?} is not a number of seconds")
            })?;
            Ok(Some(Duration::from_secs(secs)))
        }
        _ => Ok(None),
    }
}

/// `assay logout`: revoke the context's refresh token (which ends the login on the server)
/// and its access token, then forget them here. The context itself stays, signed out, so
/// `assay login URL --context NAME` brings it back.
pub async fn logout(global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let dir = ConfigDir::required()?;
    let config = dir.load()?;
    let vars = EnvVars::read();
    let Some(name) = global
        .context
        .clone()
        .or_else(|| vars.context.clone())
        .or_else(|| config.current_context.clone())
    else {
        bail!("there is no current context to log out of; see `assay context list`");
    };
    let ctx = config.context(&name)?;
    let url = parse_url(&ctx.url)?;
    let tls = merge_tls(
        ctx.ca_cert.as_deref(),
        ctx.insecure,
        global.ca_cert.as_deref(),
        insecure_now(global, &vars),
    );
    let store = Arc::new(CredentialStore::open(dir)?);
    let load = |store: &Arc<CredentialStore>| {
        let (store, name) = (store.clone(), name.clone());
        off_runtime(move || store.load(&name))
    };
    let unreachable = || {
        format!(
            "cannot reach {} to revoke the session; nothing was removed. Try again, or forget \
             it locally only with `assay context delete {name}`",
            display_url(&url)
        )
    };
    // Discovery needs no lock: done before taking it, so the lock is held for the
    // revocations alone (at most two requests of LOGOUT_REQUEST_TIMEOUT).
    let http = oauth_http_client(&user_agent(), &tls, CONNECT_TIMEOUT)?;
    let mut meta = None;
    if let Some((StoredCredential::OAuth { .. }, _)) = load(&store).await? {
        warn_if_insecure(&tls);
        meta = Some(
            within(LOGOUT_REQUEST_TIMEOUT, discover(&http, &url))
                .await
                .with_context(unreachable)?,
        );
    }
    // Held across the revocation: a refresh by another process in between would make the
    // token revoked here a spent one.
    let (lock, stored) = {
        let (store, name) = (store.clone(), name.clone());
        off_runtime(move || {
            let lock = store.lock()?;
            let stored = store.load(&name)?;
            Ok((lock, stored))
        })
        .await?
    };
    let delete = |store: &Arc<CredentialStore>| {
        let (store, name) = (store.clone(), name.clone());
        off_runtime(move || store.delete(&name))
    };
    let deletion: Option<Deletion> = match stored {
        None => {
            eprintln!("Context {name} has no stored credentials; nothing to log out of.");
            None
        }
        Some((StoredCredential::ApiToken { .. }, _)) => {
            let deletion = delete(&store).await?;
            eprintln!(
                "Removed the API token of context {name} from this machine. The token itself \
                 still works until it expires or is revoked (`assay token revoke ID`)."
            );
            Some(deletion)
        }
        Some((
            StoredCredential::OAuth {
                tokens, client_id, ..
            },
            _,
        )) => {
            let meta = match meta {
                Some(meta) => meta,
                None => {
                    warn_if_insecure(&tls);
                    within(LOGOUT_REQUEST_TIMEOUT, discover(&http, &url))
                        .await
                        .with_context(unreachable)?
                }
            };
            revoke_session(&http, &meta, &client_id, &tokens)
                .await
                .with_context(|| {
                    format!(
                        "the server did not revoke the session; nothing was removed. Try again, \
                         or forget it locally only with `assay context delete {name}`"
                    )
                })?;
            let deletion = delete(&store).await?;
            eprintln!(
                "Logged out of {} (context {name}): the session is revoked on the server and \
                 its credentials are removed from this machine.",
                display_url(&url)
            );
            Some(deletion)
        }
    };
    drop(lock);
    if let Some(warning) = deletion.and_then(|d| d.warning()) {
        eprintln!("{warning}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `fut`, or an error once `limit` has passed.
async fn within<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = assay_core::Result<T>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(result) => Ok(result?),
        Err(_) => bail!("the server did not answer within {} s", limit.as_secs()),
    }
}

/// Refresh token first: revoking it ends this login's session (on servers before
/// per-login sessions, the whole grant), access tokens included.
async fn revoke_session(
    http: &reqwest::Client,
    meta: &AuthServerMetadata,
    client_id: &str,
    tokens: &assay_client::TokenSet,
) -> anyhow::Result<()> {
    if let Some(refresh) = &tokens.refresh_token {
        within(
            LOGOUT_REQUEST_TIMEOUT,
            revoke(http, meta, client_id, refresh, "refresh_token"),
        )
        .await?;
    }
    within(
        LOGOUT_REQUEST_TIMEOUT,
        revoke(http, meta, client_id, &tokens.access_token, "access_token"),
    )
    .await?;
    Ok(())
}

/// `assay whoami`.
pub async fn whoami(ctx: &Context) -> anyhow::Result<ExitCode> {
    let me = ctx.client.whoami(&ctx.actor).await?;
    output::emit(ctx.format, &me, |out| {
        let kind = match me.kind {
            assay_core::PrincipalKind::User => "user",
            assay_core::PrincipalKind::ApiToken => "API token",
            assay_core::PrincipalKind::System => "system",
        };
        let who = match &me.email {
            Some(email) if *email != me.display_name => format!("{} <{email}>", me.display_name),
            _ => me.display_name.clone(),
        };
        output::fields(
            out,
            &[
                ("Server", display_url(&ctx.target.url)),
                (
                    "Context",
                    ctx.target.context_name().unwrap_or_default().to_owned(),
                ),
                (if kind == "user" { "User" } else { "Token" }, who),
                ("Kind", kind.to_owned()),
                ("Signed in with", method(me.auth_method)),
                (
                    "Using",
                    format!("org {}, env {}", ctx.target.org, ctx.target.env),
                ),
            ],
        )?;
        writeln!(out)?;
        let mut table = Table::new(["ORGANIZATION", "ROLE", "ENVIRONMENT", "LEVEL"]);
        for m in &me.memberships {
            let role = m.role.map_or("-", |r| r.as_str()).to_owned();
            if m.environments.is_empty() {
                table.row(vec![
                    m.organization.slug.clone(),
                    role.clone(),
                    "-".into(),
                    "-".into(),
                ]);
            }
            for e in &m.environments {
                table.row(vec![
                    m.organization.slug.clone(),
                    role.clone(),
                    e.slug.clone(),
                    e.level.to_string(),
                ]);
            }
        }
        table.write(out)
    })?;
    Ok(ExitCode::SUCCESS)
}

fn method(m: assay_core::actor::AuthMethod) -> String {
    serde_json::to_value(m)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use assay_core::actor::{Access, AuthMethod};
    use assay_core::identity::{EnvironmentAccess, OrgRole, OrgSummary};
    use assay_core::{Level, Principal, PrincipalKind};
    use clap::Parser as _;
    use uuid::Uuid;

    #[test]
    fn the_session_claim_tells_whether_a_login_can_end_alone() {
        use base64::Engine as _;
        let jwt = |claims: &str| {
            let b64 = |t: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(t);
            format!("{}.{}.sig", b64(r#"{"alg":"EdDSA"}"#), b64(claims))
        };
        assert!(has_session_claim(&jwt(r#"{"gid":"g","sid":"s"}"#)));
        assert!(!has_session_claim(&jwt(r#"{"gid":"g"}"#)));
        assert!(!has_session_claim(&jwt(r#"{"sid":1}"#)));
        assert!(!has_session_claim("assay_secret"));
        assert!(!has_session_claim("a.%%%.c"));
    }

    fn context(url: &str, ca_cert: Option<&str>, insecure: bool) -> ContextConfig {
        ContextConfig {
            url: url.into(),
            org: "acme".into(),
            env: "dev".into(),
            auth: AuthKind::OAuth,
            user: Some("alice@example.com".into()),
            ca_cert: ca_cert.map(PathBuf::from),
            insecure,
        }
    }

    #[test]
    fn a_context_is_not_re_pointed_at_another_server() {
        let mut config = Config::default();
        config.contexts.insert(
            "work".into(),
            context("https://assay.example.com", None, false),
        );
        let other = parse_url("https://other.example.com").unwrap();
        assert_eq!(
            existing_context(&config, "work", &other)
                .unwrap_err()
                .to_string(),
            "context \"work\" is for https://assay.example.com, not https://other.example.com: \
             delete it first with `assay context delete work`, or choose another name with \
             --context NAME"
        );
        // Another scheme or port is another server too.
        for url in ["http://assay.example.com", "https://assay.example.com:8443"] {
            assert!(existing_context(&config, "work", &parse_url(url).unwrap()).is_err());
        }
        // The same server (however spelled) is signing in again; a new name is new.
        let same = parse_url("https://ASSAY.example.com/").unwrap();
        assert_eq!(
            existing_context(&config, "work", &same).unwrap(),
            config.contexts.get("work")
        );
        assert_eq!(existing_context(&config, "home", &other).unwrap(), None);
    }

    #[test]
    fn saving_a_login_refuses_to_re_point_a_context_created_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let config_dir = ConfigDir::at(dir.path().join("assay"));
        let store = CredentialStore::new(
            config_dir.clone(),
            StoreMode::File,
            Arc::new(super::super::credentials::OsKeyring),
        );
        let mut config = Config::default();
        config.contexts.insert(
            "work".into(),
            context("https://assay.example.com", None, false),
        );
        config_dir.save(&config).unwrap();
        let api = StoredCredential::ApiToken {
            token: "assay_x".into(),
        };
        let other = parse_url("https://other.example.com").unwrap();
        let err = save_login(
            &store,
            &config_dir,
            "work",
            &other,
            &api,
            context("https://other.example.com", None, false),
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("context \"work\" is for"),
            "{err}"
        );
        assert_eq!(store.load("work").unwrap(), None, "nothing was saved");
        assert_eq!(config_dir.load().unwrap(), config);
    }

    #[test]
    fn insecure_is_kept_only_from_this_logins_flag() {
        let previous = context("https://h", Some("/corp.pem"), true);
        // Signing in again without --insecure turns the checks back on.
        assert_eq!(
            saved_tls(Some(&previous), None, false).unwrap(),
            (Some(PathBuf::from("/corp.pem")), false)
        );
        assert_eq!(saved_tls(None, None, true).unwrap(), (None, true));
        // ASSAY_INSECURE reaches only `insecure_now`, never the flag: the parser ignores it.
        let cli = crate::cli::Cli::try_parse_from(["assay", "login", "https://h"]).unwrap();
        assert!(!cli.global.insecure);
    }

    #[test]
    fn a_relative_ca_cert_is_saved_absolute() {
        let (ca, _) = saved_tls(None, Some(Path::new("certs/corp.pem")), false).unwrap();
        let ca = ca.unwrap();
        assert!(ca.is_absolute(), "{}", ca.display());
        assert_eq!(
            ca,
            std::env::current_dir()
                .unwrap()
                .join("certs")
                .join("corp.pem")
        );
        // A new CA replaces the context's; none given keeps it.
        let previous = context("https://h", Some("/corp.pem"), false);
        assert_eq!(
            saved_tls(Some(&previous), Some(Path::new("/new.pem")), false).unwrap(),
            (Some(PathBuf::from("/new.pem")), false)
        );
    }

    fn membership(slug: &str, envs: &[&str]) -> IdentityMembership {
        let org = Uuid::new_v4();
        IdentityMembership {
            organization: OrgSummary {
                id: org,
                slug: slug.into(),
                name: slug.to_uppercase(),
            },
            role: Some(OrgRole::Member),
            principal: Principal {
                kind: PrincipalKind::User,
                id: Uuid::new_v4(),
                display_name: "alice".into(),
                org_id: org,
                access: Access::PerEnvironment {
                    grants: Default::default(),
                },
                scope_cap: None,
                auth_method: AuthMethod::CliLogin,
                credential_id: Some("assay-cli".into()),
            },
            environments: envs
                .iter()
                .map(|e| EnvironmentAccess {
                    id: Uuid::new_v4(),
                    slug: (*e).into(),
                    name: e.to_uppercase(),
                    level: Level::Run,
                })
                .collect(),
        }
    }

    fn identity(memberships: Vec<IdentityMembership>) -> Identity {
        Identity {
            kind: PrincipalKind::User,
            id: Uuid::new_v4(),
            display_name: "Alice".into(),
            email: Some("alice@example.com".into()),
            auth_method: AuthMethod::CliLogin,
            memberships,
        }
    }

    #[test]
    fn organization_and_environment_come_from_flags_or_the_only_choice() {
        let me = identity(vec![membership("acme", &["dev", "prod"])]);
        let org = choose_org(&me, None, false).unwrap();
        assert_eq!(org.organization.slug, "acme");
        assert_eq!(choose_env(org, Some("prod"), false).unwrap().slug, "prod");
        let by_id = org.environments[0].id.to_string();
        assert_eq!(choose_env(org, Some(&by_id), false).unwrap().slug, "dev");
        let single = membership("solo", &["dev"]);
        assert_eq!(choose_env(&single, None, false).unwrap().slug, "dev");
    }

    #[test]
    fn without_a_terminal_an_open_choice_is_an_error_listing_the_options() {
        let me = identity(vec![
            membership("acme", &["dev", "prod"]),
            membership("beta", &[]),
        ]);
        assert_eq!(
            choose_org(&me, None, false).unwrap_err().to_string(),
            "you belong to several organizations; choose one with --org: acme, beta"
        );
        assert_eq!(
            choose_org(&me, Some("gamma"), false)
                .unwrap_err()
                .to_string(),
            "--org \"gamma\" is none of your organizations: acme, beta"
        );
        let acme = choose_org(&me, Some("acme"), false).unwrap();
        assert_eq!(
            choose_env(acme, None, false).unwrap_err().to_string(),
            "you can reach several environments in organization acme; choose one with --env: \
             dev, prod"
        );
        assert_eq!(
            choose_env(acme, Some("qa"), false).unwrap_err().to_string(),
            "--env \"qa\" is none of the environments you can reach in organization acme: dev, prod"
        );
        let beta = choose_org(&me, Some("beta"), false).unwrap();
        assert!(choose_env(beta, None, false).is_err());
        assert!(choose_org(&identity(vec![]), None, false).is_err());
    }
}
