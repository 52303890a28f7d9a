//! The command line: global options, the command tree, and dispatch.
//!
//! Every client command talks to a server through `assay_client::RemoteControlPlane`,
//! so the server authorizes and audits it like any other call.

mod artifact;
mod audit;
mod config;
mod context;
mod credentials;
mod error;
mod execution;
mod grants;
mod login;
mod mcp;
mod member;
mod output;
mod run;
mod target;
mod token;
mod when;
mod workflow;

use crate::serve;
use anyhow::Context as _;
use assay_client::{ClientConfig, Credential, RemoteControlPlane};
use assay_core::{Actor, EnvRef};
use clap::{Args, Parser, Subcommand};
use config::ConfigDir;
use output::Format;
use std::process::ExitCode;
use std::time::Duration;
use target::{Auth, Target};

/// Self-hostable test orchestration: define test workflows, run them, read their logs,
/// artifacts and JUnit results.
#[derive(Debug, Parser)]
#[command(
    name = "assay",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the server is, who you are, and how to print.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Server URL [default: the context's, else http://127.0.0.1:7357]
    #[arg(long, env = "ASSAY_URL", global = true)]
    pub url: Option<url::Url>,
    /// API token (sent as a bearer token); with it no context is used
    #[arg(long, env = "ASSAY_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Organization (ID or slug) [default: the context's, else default]
    #[arg(long, env = "ASSAY_ORG", global = true)]
    pub org: Option<String>,
    /// Environment (ID or slug) [env: ASSAY_ENV] [default: the context's, else dev]
    // No clap `env`/`default_value` here: `token create --env ENV=LEVEL` and
    // `audit export --env ENV` reuse this id for their own meaning, and clap would push a
    // default or environment value down into them. See `target::resolve`.
    #[arg(long, global = true, value_name = "ENV")]
    pub env: Option<String>,
    /// Saved context to use (see `assay context list`) [env: ASSAY_CONTEXT]
    // Read from the environment by `target::EnvVars`, not clap: `assay login --context`
    // names the context to create, which only the flag may do.
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// Extra trusted CA certificate (PEM) for the server's TLS certificate
    #[arg(long, env = "ASSAY_CA_CERT", global = true, value_name = "FILE")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Do not check the server's TLS certificate (throwaway test servers only) [env:
    /// ASSAY_INSECURE]
    // The variable is read by `target::EnvVars`, not clap: `assay login` keeps only the
    // explicit flag in the context, so a variable left set in a shell is never persisted.
    #[arg(long, global = true)]
    pub insecure: bool,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = Format::Table, global = true)]
    pub output: Format,
    /// Seconds to wait for an answer (log streams and downloads are not limited)
    #[arg(long, env = "ASSAY_TIMEOUT", default_value_t = 30, global = true)]
    pub timeout: u64,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Assay server
    Server(serve::ServerArgs),
    /// Sign in to a server (browser, device code or API token) and save it as a context
    Login(login::LoginArgs),
    /// Sign out: revoke this machine's session on the server and forget its credentials
    Logout,
    /// List, switch, show and delete saved contexts (server, organization, environment)
    #[command(subcommand, alias = "contexts")]
    Context(context::ContextCommand),
    /// Show who you are: user or token, sign-in method, organizations and environments
    Whoami,
    /// Serve Assay's MCP tools on this machine (stdio or loopback HTTP), acting as you
    #[command(subcommand)]
    Mcp(mcp::McpCommand),
    /// Manage workflows (TestWorkflow documents)
    #[command(subcommand)]
    Workflow(workflow::ResourceCommand),
    /// Manage templates (TestWorkflowTemplate documents)
    #[command(subcommand)]
    Template(workflow::ResourceCommand),
    /// Run a workflow, optionally watching it to the end
    Run(run::RunArgs),
    /// Inspect and control executions
    #[command(subcommand, alias = "executions")]
    Execution(execution::ExecutionCommand),
    /// List and download the artifacts of an execution
    #[command(subcommand, alias = "artifacts")]
    Artifact(artifact::ArtifactCommand),
    /// Manage the organization's members and their grants (organization admins)
    #[command(subcommand, alias = "members")]
    Member(member::MemberCommand),
    /// Create, list, rotate and revoke API tokens
    #[command(subcommand, alias = "tokens")]
    Token(token::TokenCommand),
    /// List and revoke the OAuth grants you gave to MCP clients (users only)
    #[command(subcommand, alias = "grant")]
    Grants(grants::GrantsCommand),
    /// Export and verify the audit log, see who was active, set retention
    #[command(subcommand)]
    Audit(audit::AuditCommand),
}

impl Cli {
    /// The log level when RUST_LOG says nothing: the server logs its work, `mcp serve
    /// --verbose` too (on stderr; stdout is JSON-RPC's), other commands only warnings.
    pub fn default_log_level(&self) -> &'static str {
        match &self.command {
            Command::Server(_) => "info",
            Command::Mcp(mcp::McpCommand::Serve(args)) if args.verbose => "info",
            _ => "warn",
        }
    }
}

/// The user agent of every request the CLI makes.
pub fn user_agent() -> String {
    format!("assay-cli/{}", env!("CARGO_PKG_VERSION"))
}

/// What every client command needs: the remote control plane, the environment it acts
/// in, and how to print.
pub struct Context {
    pub client: RemoteControlPlane,
    pub env: EnvRef,
    /// Passed to the trait methods; the server identifies the caller by the token.
    pub actor: Actor,
    pub format: Format,
    /// Where and as whom, as resolved from flags, variables and the context.
    pub target: Target,
}

impl Context {
    async fn new(global: &GlobalArgs, target: Target) -> anyhow::Result<Self> {
        warn_if_insecure(&target.tls);
        let timeout = Duration::from_secs(global.timeout.max(1));
        let credential = match &target.auth {
            Auth::Token(token) => Credential::Bearer(token.clone()),
            Auth::None => Credential::None,
            Auth::Context { name, .. } => {
                login::context_credential(name, &target.url, &target.tls).await?
            }
        };
        let client = RemoteControlPlane::new(ClientConfig {
            base_url: target.url.clone(),
            credential,
            tls: target.tls.clone(),
            org: target.org.clone(),
            env: target.env.clone(),
            user_agent: user_agent(),
            timeout,
        })
        .context("cannot set up the client")?;
        Ok(Self {
            env: client.env_ref(),
            actor: client.actor(),
            client,
            format: global.output,
            target,
        })
    }
}

/// The loud warning `--insecure` deserves, on stderr.
pub fn warn_if_insecure(tls: &assay_client::TlsOptions) {
    if tls.insecure {
        eprintln!(
            "WARNING: --insecure: the server's TLS certificate is NOT checked. Anyone on the \
             network path can impersonate the server and read your credentials. Use --ca-cert \
             FILE to trust a private CA instead."
        );
    }
}

/// The target of a client command: flags and variables, then the configuration.
fn resolve_target(global: &GlobalArgs) -> anyhow::Result<Target> {
    let vars = target::EnvVars::read();
    let explicit_token = global
        .token
        .as_deref()
        .is_some_and(|t| !t.trim().is_empty());
    // Environment-variable mode needs no configuration (containers, CI).
    let config = match ConfigDir::locate() {
        Some(dir) if !explicit_token => dir.load()?,
        _ => config::Config::default(),
    };
    target::resolve(global, &config, &vars)
}

/// Runs the command and turns its outcome into the process exit code:
/// 0 success, 1 a run that did not pass, 2 any error (usage, connection, server refusal).
pub async fn run(cli: Cli) -> ExitCode {
    let global = cli.global.clone();
    let mut hints = error::Hints::from_global(&global);
    let result = match cli.command {
        Command::Server(args) => serve::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Login(args) => login::login(&global, args).await,
        Command::Logout => login::logout(&global).await,
        Command::Context(cmd) => context::run(&global, cmd).await,
        command => match resolve_target(&global) {
            Ok(target) => {
                hints = error::Hints::from_target(&target);
                match Context::new(&global, target).await {
                    Ok(ctx) => dispatch(&ctx, command).await,
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(code) => code,
        Err(e) if error::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            error::report(&e, &hints);
            ExitCode::from(2)
        }
    }
}

async fn dispatch(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Server(_) | Command::Login(_) | Command::Logout | Command::Context(_) => {
            unreachable_local()
        }
        Command::Whoami => login::whoami(ctx).await,
        Command::Mcp(cmd) => mcp::run(ctx, cmd).await,
        Command::Workflow(cmd) => {
            workflow::run(ctx, assay_core::workflow::ResourceKind::Workflow, cmd).await
        }
        Command::Template(cmd) => {
            workflow::run(ctx, assay_core::workflow::ResourceKind::Template, cmd).await
        }
        Command::Run(args) => run::run(ctx, args).await,
        Command::Execution(cmd) => execution::run(ctx, cmd).await,
        Command::Artifact(cmd) => artifact::run(ctx, cmd).await,
        Command::Member(cmd) => member::run(ctx, cmd).await,
        Command::Token(cmd) => token::run(ctx, cmd).await,
        Command::Grants(cmd) => grants::run(ctx, cmd).await,
        Command::Audit(cmd) => audit::run(ctx, cmd).await,
    }
}

/// `server`, `login`, `logout` and `context` are handled before a client is built;
/// reaching here is a dispatch bug.
fn unreachable_local() -> anyhow::Result<ExitCode> {
    anyhow::bail!("internal: a local command reached client dispatch")
}

/// `key=value` arguments (`--config`, `--tag`).
pub fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn key_value_splits_at_the_first_equals_sign() {
        assert_eq!(
            key_value("url=http://x/?a=b").unwrap(),
            ("url".into(), "http://x/?a=b".into())
        );
        assert_eq!(
            key_value("empty=").unwrap(),
            ("empty".into(), String::new())
        );
        assert!(key_value("novalue").is_err());
        assert!(key_value("=v").is_err());
    }

    #[test]
    fn global_options_work_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "assay",
            "execution",
            "list",
            "--org",
            "acme",
            "-o",
            "json",
            "--env",
            "prod",
        ])
        .unwrap();
        assert_eq!(cli.global.org.as_deref(), Some("acme"));
        assert_eq!(cli.global.env.as_deref(), Some("prod"));
        assert_eq!(cli.global.output, Format::Json);
    }

    #[test]
    fn token_create_reads_env_as_grants() {
        let cli = Cli::try_parse_from([
            "assay",
            "token",
            "create",
            "--name",
            "ci",
            "--kind",
            "member",
            "--env",
            "dev=run",
            "--env",
            "prod=read",
            "--expires",
            "30d",
        ])
        .unwrap();
        let Command::Token(token::TokenCommand::Create {
            grants, expires, ..
        }) = cli.command
        else {
            panic!("expected token create");
        };
        assert_eq!(grants, vec!["dev=run".to_owned(), "prod=read".to_owned()]);
        assert_eq!(expires, Some(30));
        assert!(
            Cli::try_parse_from([
                "assay", "token", "create", "--name", "ci", "--kind", "member", "--env", "dev",
            ])
            .is_err(),
            "a grant needs a level"
        );
        assert!(
            Cli::try_parse_from([
                "assay",
                "token",
                "create",
                "--name",
                "ci",
                "--kind",
                "admin",
                "--expires",
                "30d",
                "--no-expiry",
            ])
            .is_err()
        );
    }

    #[test]
    fn audit_export_filters_by_env_only_when_asked() {
        let parse = |args: &[&str]| {
            let cli = Cli::try_parse_from(args).unwrap();
            match cli.command {
                Command::Audit(audit::AuditCommand::Export { env, .. }) => env,
                _ => panic!("expected audit export"),
            }
        };
        assert_eq!(parse(&["assay", "audit", "export"]), None);
        assert_eq!(
            parse(&["assay", "audit", "export", "--env", "prod"]).as_deref(),
            Some("prod")
        );
        let cli =
            Cli::try_parse_from(["assay", "audit", "export", "--format", "csv", "-O", "x.csv"])
                .unwrap();
        assert_eq!(cli.global.env, None);
    }

    #[test]
    fn login_flags_parse_and_secrets_are_never_arguments() {
        let cli = Cli::try_parse_from([
            "assay",
            "login",
            "https://assay.example.com",
            "--device",
            "--org",
            "acme",
            "--env",
            "dev",
            "--context",
            "work",
            "--ca-cert",
            "/corp.pem",
            "--insecure",
        ])
        .unwrap();
        let Command::Login(args) = &cli.command else {
            panic!("expected login");
        };
        assert_eq!(args.server.as_deref(), Some("https://assay.example.com"));
        assert!(args.device && !args.api_token_stdin && !args.no_browser);
        assert_eq!(cli.global.context.as_deref(), Some("work"));
        assert_eq!(cli.global.org.as_deref(), Some("acme"));
        assert!(cli.global.insecure);
        assert_eq!(
            cli.global.ca_cert.as_deref(),
            Some(std::path::Path::new("/corp.pem"))
        );
        let cli = Cli::try_parse_from(["assay", "login", "--api-token-stdin"]).unwrap();
        let Command::Login(args) = &cli.command else {
            panic!("expected login");
        };
        assert!(args.api_token_stdin && args.server.is_none());
        // The token comes on stdin only, and one way of signing in at a time.
        for bad in [
            &["assay", "login", "--api-token", "assay_x"][..],
            &["assay", "login", "--api-token-stdin", "assay_x", "extra"][..],
            &["assay", "login", "--password", "hunter2"][..],
            &["assay", "login", "--refresh-token", "r"][..],
            &["assay", "login", "--api-token-stdin", "--device"][..],
            &["assay", "login", "--api-token-stdin", "--no-browser"][..],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn context_whoami_and_logout_parse() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).unwrap().command;
        assert!(matches!(
            parse(&["assay", "context", "list"]),
            Command::Context(context::ContextCommand::List)
        ));
        assert!(matches!(
            parse(&["assay", "context", "use", "prod"]),
            Command::Context(context::ContextCommand::Use { name }) if name == "prod"
        ));
        assert!(matches!(
            parse(&["assay", "context", "show"]),
            Command::Context(context::ContextCommand::Show { name: None })
        ));
        assert!(matches!(
            parse(&["assay", "context", "delete", "old"]),
            Command::Context(context::ContextCommand::Delete { name }) if name == "old"
        ));
        assert!(Cli::try_parse_from(["assay", "context", "use"]).is_err());
        let cli = Cli::try_parse_from(["assay", "whoami", "-o", "json"]).unwrap();
        assert!(matches!(cli.command, Command::Whoami));
        assert_eq!(cli.global.output, Format::Json);
        let cli = Cli::try_parse_from(["assay", "logout", "--context", "prod"]).unwrap();
        assert!(matches!(cli.command, Command::Logout));
        assert_eq!(cli.global.context.as_deref(), Some("prod"));
    }

    #[test]
    fn passwords_cannot_be_given_as_arguments() {
        assert!(
            Cli::try_parse_from([
                "assay",
                "member",
                "add",
                "bob@example.com",
                "--role",
                "member",
                "--password",
                "hunter2",
            ])
            .is_err()
        );
        assert!(
            Cli::try_parse_from([
                "assay",
                "member",
                "add",
                "bob@example.com",
                "--role",
                "member",
                "--password-stdin",
                "--grant",
                "dev=run",
            ])
            .is_ok()
        );
    }
}
