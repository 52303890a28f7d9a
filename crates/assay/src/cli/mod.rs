//! The command line: global options, the command tree, and dispatch.
//!
//! Every client command talks to a server through `assay_client::RemoteControlPlane`,
//! so the server authorizes and audits it like any other call.

mod artifact;
mod audit;
mod error;
mod execution;
mod grants;
mod member;
mod output;
mod run;
mod token;
mod when;
mod workflow;

use crate::serve;
use anyhow::Context as _;
use assay_client::{ClientConfig, RemoteControlPlane};
use assay_core::{Actor, EnvRef};
use clap::{Args, Parser, Subcommand};
use output::Format;
use std::process::ExitCode;
use std::time::Duration;

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
    /// Server URL
    #[arg(
        long,
        env = "ASSAY_URL",
        default_value = "http://127.0.0.1:7357",
        global = true
    )]
    pub url: url::Url,
    /// API token (sent as a bearer token)
    #[arg(long, env = "ASSAY_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Organization (ID or slug)
    #[arg(long, env = "ASSAY_ORG", default_value = "default", global = true)]
    pub org: String,
    /// Environment (ID or slug) [env: ASSAY_ENV] [default: dev]
    // No clap `env`/`default_value` here: `token create --env ENV=LEVEL` and
    // `audit export --env ENV` reuse this id for their own meaning, and clap would push a
    // default or environment value down into them. See `GlobalArgs::environment`.
    #[arg(long, global = true, value_name = "ENV")]
    pub env: Option<String>,
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

/// The environment when none is named.
pub const DEFAULT_ENV: &str = "dev";

impl GlobalArgs {
    /// `--env`, else `ASSAY_ENV`, else `dev`.
    pub fn environment(&self) -> String {
        self.env
            .clone()
            .or_else(|| std::env::var("ASSAY_ENV").ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| DEFAULT_ENV.to_owned())
    }
}

/// What every client command needs: the remote control plane, the environment it acts
/// in, and how to print.
pub struct Context {
    pub client: RemoteControlPlane,
    pub env: EnvRef,
    /// Passed to the trait methods; the server identifies the caller by the token.
    pub actor: Actor,
    pub format: Format,
}

impl Context {
    fn new(global: &GlobalArgs) -> anyhow::Result<Self> {
        let client = RemoteControlPlane::new(ClientConfig {
            base_url: global.url.clone(),
            token: global.token.clone().unwrap_or_default(),
            org: global.org.clone(),
            env: global.environment(),
            user_agent: format!("assay-cli/{}", env!("CARGO_PKG_VERSION")),
            timeout: Duration::from_secs(global.timeout.max(1)),
        })
        .context("cannot set up the client")?;
        Ok(Self {
            env: client.env_ref(),
            actor: client.actor(),
            client,
            format: global.output,
        })
    }
}

/// Runs the command and turns its outcome into the process exit code:
/// 0 success, 1 a run that did not pass, 2 any error (usage, connection, server refusal).
pub async fn run(cli: Cli) -> ExitCode {
    let global = cli.global.clone();
    let result = match cli.command {
        Command::Server(args) => serve::run(args).await.map(|()| ExitCode::SUCCESS),
        command => match Context::new(&global) {
            Ok(ctx) => dispatch(&ctx, command).await,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(code) => code,
        Err(e) if error::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            error::report(&e, &global);
            ExitCode::from(2)
        }
    }
}

async fn dispatch(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Server(_) => unreachable_server(),
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

/// `server` is handled before a client is built; reaching here is a dispatch bug.
fn unreachable_server() -> anyhow::Result<ExitCode> {
    anyhow::bail!("internal: the server command reached client dispatch")
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
        assert_eq!(cli.global.org, "acme");
        assert_eq!(cli.global.env.as_deref(), Some("prod"));
        assert_eq!(cli.global.environment(), "prod");
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
