//! `assay artifact …`: list an execution's artifacts and download one.

use super::Context;
use super::output::{self, Table};
use anyhow::Context as _;
use assay_core::ports::ControlPlane;
use clap::Subcommand;
use futures::StreamExt;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum ArtifactCommand {
    /// List the artifacts of an execution
    #[command(alias = "ls")]
    List {
        /// Execution ID or name
        execution: String,
    },
    /// Download an artifact to a file or to stdout
    Get {
        /// Execution ID or name
        execution: String,
        /// Artifact path as listed, e.g. reports/junit.xml
        path: String,
        /// Write to this file instead of stdout
        #[arg(short = 'O', long = "output-file", value_name = "FILE")]
        output_file: Option<PathBuf>,
    },
}

pub async fn run(ctx: &Context, command: ArtifactCommand) -> anyhow::Result<ExitCode> {
    match command {
        ArtifactCommand::List { execution } => {
            let artifacts = ctx
                .client
                .list_artifacts(&ctx.actor, &ctx.env, &execution)
                .await?;
            output::emit(ctx.format, &artifacts, |out| {
                if artifacts.is_empty() {
                    return writeln!(out, "no artifacts");
                }
                let mut t = Table::new(["PATH", "SIZE", "STEP", "TYPE"]);
                for a in &artifacts {
                    t.row(vec![
                        a.path.clone(),
                        a.size.to_string(),
                        a.step.clone(),
                        a.content_type.clone().unwrap_or_default(),
                    ]);
                }
                t.write(out)
            })?;
            Ok(ExitCode::SUCCESS)
        }
        ArtifactCommand::Get {
            execution,
            path,
            output_file,
        } => {
            let (artifact, mut chunks) = ctx
                .client
                .download_artifact(&ctx.actor, &ctx.env, &execution, &path)
                .await?;
            match output_file {
                Some(file) => {
                    let written = save(&mut chunks, &file).await;
                    match written {
                        Ok(n) => {
                            eprintln!("saved {} ({n} bytes) to {}", artifact.path, file.display());
                            Ok(ExitCode::SUCCESS)
                        }
                        Err(e) => {
                            // A half-written file looks like a whole one later.
                            let _ = std::fs::remove_file(&file);
                            Err(e)
                        }
                    }
                }
                None => {
                    let to_terminal = std::io::stdout().is_terminal();
                    let mut out = std::io::stdout().lock();
                    let mut first = true;
                    while let Some(chunk) = chunks.next().await {
                        let chunk = chunk?;
                        if first
                            && to_terminal
                            && looks_binary(artifact.content_type.as_deref(), &chunk)
                        {
                            anyhow::bail!(
                                "{} is binary ({}); save it with -O FILE or redirect stdout",
                                artifact.path,
                                artifact
                                    .content_type
                                    .as_deref()
                                    .unwrap_or("application/octet-stream")
                            );
                        }
                        first = false;
                        out.write_all(&chunk)?;
                    }
                    out.flush()?;
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
    }
}

async fn save(
    chunks: &mut futures::stream::BoxStream<'static, assay_core::Result<Vec<u8>>>,
    file: &std::path::Path,
) -> anyhow::Result<u64> {
    use tokio::io::AsyncWriteExt;
    let mut f = tokio::fs::File::create(file)
        .await
        .with_context(|| format!("cannot create {}", file.display()))?;
    let mut written = 0u64;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        f.write_all(&chunk)
            .await
            .with_context(|| format!("cannot write {}", file.display()))?;
        written += chunk.len() as u64;
    }
    f.flush().await?;
    Ok(written)
}

/// Whether printing this to a terminal would garble it: a non-text type, or NUL bytes or
/// invalid UTF-8 at the start.
fn looks_binary(content_type: Option<&str>, head: &[u8]) -> bool {
    let textual_type = content_type.is_some_and(|t| {
        let t = t
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        t.starts_with("text/")
            || t.ends_with("+json")
            || t.ends_with("+xml")
            || matches!(
                t.as_str(),
                "application/json"
                    | "application/xml"
                    | "application/yaml"
                    | "application/x-yaml"
                    | "application/x-ndjson"
                    | "application/javascript"
            )
    });
    if head.contains(&0) {
        return true;
    }
    let sample = &head[..head.len().min(8192)];
    let valid_utf8 = match std::str::from_utf8(sample) {
        Ok(_) => true,
        // A multi-byte character cut at the end of the sample is still text.
        Err(e) => e.error_len().is_none() && e.valid_up_to() + 4 > sample.len(),
    };
    !valid_utf8 || !(textual_type || content_type.is_none_or(|t| t == "application/octet-stream"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_printable_and_binary_is_not() {
        assert!(!looks_binary(Some("text/plain; charset=utf-8"), b"hello\n"));
        assert!(!looks_binary(Some("application/xml"), b"<testsuite/>"));
        assert!(!looks_binary(
            Some("application/octet-stream"),
            "héllo".as_bytes()
        ));
        assert!(!looks_binary(None, b"plain"));
        assert!(looks_binary(Some("text/plain"), b"a\0b"));
        assert!(looks_binary(Some("image/png"), b"\x89PNG\r\n"));
        assert!(looks_binary(
            Some("application/octet-stream"),
            b"\xff\xfe\x00"
        ));
        // A UTF-8 character split at the sample's end does not make it binary.
        let cut = &"aé".as_bytes()[..2];
        assert!(!looks_binary(Some("text/plain"), cut));
    }
}
