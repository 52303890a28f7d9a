//! The assay command: server, workflow, run, execution, artifact.

mod cli;
mod kek;
mod serve;
mod sso;

use clap::Parser;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // The server logs its work; client commands only say something when asked (RUST_LOG).
    let default = match cli.command {
        cli::Command::Server(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)),
        )
        .init();
    cli::run(cli).await
}
