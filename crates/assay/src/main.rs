//! The assay command: server, login, context, mcp serve, workflow, run, execution, artifact.

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
    // The server logs its work; client commands only say something when asked (RUST_LOG,
    // `mcp serve --verbose`). Always on stderr: `mcp serve` speaks JSON-RPC on stdout.
    let default = cli.default_log_level();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)),
        )
        .init();
    cli::run(cli).await
}
