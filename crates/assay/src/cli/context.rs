//! `assay context list|use|show|delete`: the saved server + organization + environment
//! combinations `assay login` creates. Local only: nothing here talks to a server.

use super::GlobalArgs;
use super::config::{ConfigDir, ContextConfig};
use super::credentials::{CredentialStore, Location, off_runtime};
use super::output::{self, Table};
use super::target::EnvVars;
use anyhow::bail;
use clap::Subcommand;
use serde::Serialize;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum ContextCommand {
    /// List the saved contexts (* marks the current one)
    #[command(alias = "ls")]
    List,
    /// Make a context the current one
    Use {
        /// Context name (from `assay context list`)
        name: String,
    },
    /// Show a context (default: the current one) and whether it has credentials
    Show {
        /// Context name (from `assay context list`)
        name: Option<String>,
    },
    /// Forget a context and its credentials on this machine (no server revocation: run
    /// `assay logout --context NAME` first for that)
    #[command(alias = "rm")]
    Delete {
        /// Context name (from `assay context list`)
        name: String,
    },
}

#[derive(Debug, Serialize)]
struct ContextView<'a> {
    name: &'a str,
    current: bool,
    #[serde(flatten)]
    context: &'a ContextConfig,
    /// Where its secret is: `keyring`, `file`, or absent when logged out.
    #[serde(skip_serializing_if = "Option::is_none")]
    credentials: Option<Location>,
}

pub async fn run(global: &GlobalArgs, cmd: ContextCommand) -> anyhow::Result<ExitCode> {
    // The credentials lock may be waited for, and the keyring may be slow.
    let global = global.clone();
    off_runtime(move || run_blocking(&global, cmd)).await
}

fn run_blocking(global: &GlobalArgs, cmd: ContextCommand) -> anyhow::Result<ExitCode> {
    let Some(dir) = ConfigDir::locate() else {
        if matches!(cmd, ContextCommand::List) {
            return list(global, &super::config::Config::default());
        }
        ConfigDir::required()?;
        bail!("no configuration directory");
    };
    match cmd {
        ContextCommand::List => list(global, &dir.load()?),
        ContextCommand::Use { name } => {
            let store = CredentialStore::open(dir.clone())?;
            let _lock = store.lock()?;
            let mut config = dir.load()?;
            let ctx = config.context(&name)?.clone();
            config.current_context = Some(name.clone());
            dir.save(&config)?;
            eprintln!(
                "Switched to context {name} ({}, org {}, env {}).",
                ctx.url, ctx.org, ctx.env
            );
            Ok(ExitCode::SUCCESS)
        }
        ContextCommand::Show { name } => {
            let config = dir.load()?;
            let Some(name) = name
                .or_else(|| EnvVars::read().context)
                .or_else(|| config.current_context.clone())
            else {
                bail!("there is no current context; see `assay context list`");
            };
            let ctx = config.context(&name)?;
            let store = CredentialStore::open(dir.clone())?;
            let credentials = store.load(&name)?.map(|(_, at)| at);
            let view = ContextView {
                name: &name,
                current: config.current_context.as_deref() == Some(name.as_str()),
                context: ctx,
                credentials,
            };
            output::emit(global.output, &view, |out| {
                output::fields(
                    out,
                    &[
                        ("Name", name.clone()),
                        ("Current", if view.current { "yes" } else { "no" }.into()),
                        ("URL", ctx.url.clone()),
                        ("Organization", ctx.org.clone()),
                        ("Environment", ctx.env.clone()),
                        ("Auth", ctx.auth.as_str().into()),
                        ("User", ctx.user.clone().unwrap_or_default()),
                        (
                            "CA certificate",
                            ctx.ca_cert
                                .as_ref()
                                .map(|p| p.display().to_string())
                                .unwrap_or_default(),
                        ),
                        (
                            "TLS checks",
                            if ctx.insecure { "OFF (insecure)" } else { "" }.into(),
                        ),
                        (
                            "Credentials",
                            match credentials {
                                Some(Location::Keyring) => "in the OS keyring".into(),
                                Some(Location::File) => {
                                    format!("in {}", store.credentials_file().display())
                                }
                                None => format!(
                                    "none (logged out; `assay login {} --context {name}`)",
                                    ctx.url
                                ),
                            },
                        ),
                    ],
                )
            })?;
            Ok(ExitCode::SUCCESS)
        }
        ContextCommand::Delete { name } => {
            let store = CredentialStore::open(dir.clone())?;
            let _lock = store.lock()?;
            let mut config = dir.load()?;
            config.context(&name)?;
            let deletion = store.delete(&name)?;
            config.contexts.remove(&name);
            if config.current_context.as_deref() == Some(name.as_str()) {
                config.current_context = None;
            }
            dir.save(&config)?;
            if deletion.had {
                eprintln!(
                    "Deleted context {name} and its credentials on this machine (the server \
                     session was not revoked; `assay logout` does that)."
                );
            } else {
                eprintln!("Deleted context {name}.");
            }
            if let Some(warning) = deletion.warning() {
                eprintln!("{warning}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list(global: &GlobalArgs, config: &super::config::Config) -> anyhow::Result<ExitCode> {
    let views: Vec<ContextView<'_>> = config
        .contexts
        .iter()
        .map(|(name, ctx)| ContextView {
            name,
            current: config.current_context.as_deref() == Some(name.as_str()),
            context: ctx,
            credentials: None,
        })
        .collect();
    output::emit(global.output, &views, |out| {
        let mut table = Table::new(["CURRENT", "NAME", "URL", "ORG", "ENV", "AUTH", "USER"]);
        for v in &views {
            table.row(vec![
                if v.current { "*" } else { "" }.into(),
                v.name.to_owned(),
                v.context.url.clone(),
                v.context.org.clone(),
                v.context.env.clone(),
                v.context.auth.as_str().into(),
                v.context.user.clone().unwrap_or_default(),
            ]);
        }
        table.write(out)
    })?;
    Ok(ExitCode::SUCCESS)
}
