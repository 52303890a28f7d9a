//! `assay server` (placeholder until the lead wires the server).

/// Options of `assay server`.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {}

/// Runs the server until it is stopped.
pub async fn run(_args: ServerArgs) -> anyhow::Result<()> {
    anyhow::bail!("not wired yet")
}
