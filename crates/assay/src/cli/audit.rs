//! `assay audit …`: export (streamed, bounded memory), verify the hash chain, list who was
//! active, and show or set retention (organization admins).

use super::Context;
use super::output::{self, Table};
use super::when::{When, parse_when};
use anyhow::Context as _;
use assay_client::AuditExportFormat;
use assay_core::audit::{AuditFilter, AuditSettings, AuditVerifyReport, Outcome};
use assay_core::ports::ControlPlane;
use clap::Subcommand;
use futures::StreamExt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutcomeArg {
    Success,
    Denied,
    Error,
}

impl From<OutcomeArg> for Outcome {
    fn from(o: OutcomeArg) -> Self {
        match o {
            OutcomeArg::Success => Outcome::Success,
            OutcomeArg::Denied => Outcome::Denied,
            OutcomeArg::Error => Outcome::Error,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormatArg {
    /// One JSON event per line
    Jsonl,
    /// CSV with a header row, safe to open in a spreadsheet
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Export audit events in chain order (streamed; any size)
    Export {
        /// Events at or after: a span back from now (30d, 12h) or an RFC 3339 time
        #[arg(long, value_parser = parse_when)]
        since: Option<When>,
        /// Events at or before: a span back from now or an RFC 3339 time
        #[arg(long, value_parser = parse_when)]
        until: Option<When>,
        /// Actor ID or exact display name
        #[arg(long)]
        actor: Option<String>,
        /// Exact action, or a prefix ending in * (token.*)
        #[arg(long)]
        action: Option<String>,
        /// Only events of this environment (ID or slug)
        // Shares the id of the global --env on purpose: here it filters.
        #[arg(long = "env", id = "env", value_name = "ENV")]
        env: Option<String>,
        #[arg(long, value_enum)]
        outcome: Option<OutcomeArg>,
        #[arg(long, value_enum, default_value_t = ExportFormatArg::Jsonl)]
        format: ExportFormatArg,
        /// Write to this file instead of stdout
        #[arg(short = 'O', long = "output-file", value_name = "FILE")]
        output_file: Option<PathBuf>,
    },
    /// Verify the hash chain; exit status 1 names the first broken link
    Verify,
    /// Who was active (users and tokens), with event counts
    Actors {
        /// Start of the period: a span back from now or an RFC 3339 time
        #[arg(long, value_parser = parse_when, default_value = "30d")]
        since: When,
        /// End of the period (default now)
        #[arg(long, value_parser = parse_when)]
        until: Option<When>,
    },
    /// Show the retention, or set it to DAYS (at least 1)
    Retention {
        #[arg(value_parser = clap::value_parser!(u32).range(1..))]
        days: Option<u32>,
    },
}

pub async fn run(ctx: &Context, command: AuditCommand) -> anyhow::Result<ExitCode> {
    let org = ctx.env.org.as_str();
    let now = time::OffsetDateTime::now_utc();
    match command {
        AuditCommand::Export {
            since,
            until,
            actor,
            action,
            env,
            outcome,
            format,
            output_file,
        } => {
            let filter = AuditFilter {
                since: since.map(|w| w.resolve(now)),
                until: until.map(|w| w.resolve(now)),
                actor,
                action,
                env,
                outcome: outcome.map(Into::into),
            };
            export(ctx, org, &filter, format, output_file.as_deref()).await
        }
        AuditCommand::Verify => {
            let report = ctx.client.verify_audit(&ctx.actor, org).await?;
            output::emit(ctx.format, &report, |out| write_report(out, &report))?;
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        AuditCommand::Actors { since, until } => {
            let until = until.map_or(now, |w| w.resolve(now));
            let since = since.resolve(now);
            let actors = ctx
                .client
                .audit_actors(&ctx.actor, org, since, until)
                .await?;
            output::emit(ctx.format, &actors, |out| {
                if actors.is_empty() {
                    return writeln!(out, "no activity in that period");
                }
                let mut t = Table::new(["KIND", "NAME", "ID", "EVENTS", "FIRST SEEN", "LAST SEEN"]);
                for a in &actors {
                    t.row(vec![
                        serde_name(&a.kind),
                        a.name.clone(),
                        a.id.to_string(),
                        a.events.to_string(),
                        output::timestamp(a.first_seen),
                        output::timestamp(a.last_seen),
                    ]);
                }
                t.write(out)
            })?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Retention { days } => {
            let settings = match days {
                Some(retention_days) => {
                    ctx.client
                        .set_audit_settings(&ctx.actor, org, &AuditSettings { retention_days })
                        .await?
                }
                None => ctx.client.audit_settings(&ctx.actor, org).await?,
            };
            output::emit(ctx.format, &settings, |out| {
                writeln!(
                    out,
                    "audit events of organization {org} are kept {} days",
                    settings.retention_days
                )
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn serde_name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn write_report(out: &mut dyn Write, r: &AuditVerifyReport) -> std::io::Result<()> {
    let range = match (r.first_seq, r.last_seq) {
        (Some(a), Some(b)) => format!(" (seq {a}..{b})"),
        _ => String::new(),
    };
    match &r.broken {
        None if r.ok => writeln!(out, "ok: {} events verified{range}", r.events_checked)?,
        None => writeln!(out, "BROKEN: the chain does not verify")?,
        Some(b) => {
            let id = b
                .event_id
                .map(|i| format!(" (event {i})"))
                .unwrap_or_default();
            writeln!(
                out,
                "BROKEN at seq {}{id}: {}\n{} events checked",
                b.seq, b.reason, r.events_checked
            )?;
        }
    }
    if let Some(c) = &r.checkpoint {
        writeln!(
            out,
            "retention checkpoint: events before {} purged up to seq {}",
            output::timestamp(c.purged_before),
            c.seq
        )?;
    }
    Ok(())
}

/// Streams the export to stdout or a file without holding it: JSON lines are written
/// event by event from the typed stream; CSV is the server's bytes as they arrive.
async fn export(
    ctx: &Context,
    org: &str,
    filter: &AuditFilter,
    format: ExportFormatArg,
    file: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let sink: Box<dyn Write> = match file {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = std::io::BufWriter::new(sink);
    let written = write_export(ctx, org, filter, format, &mut out).await;
    let written = written.and_then(|n| {
        out.flush()?;
        Ok(n)
    });
    match (written, file) {
        (Ok(n), Some(path)) => {
            eprintln!("exported {n} events to {}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        (Ok(_), None) => Ok(ExitCode::SUCCESS),
        (Err(e), Some(path)) => {
            // A truncated export looks like a whole one later.
            drop(out);
            let _ = std::fs::remove_file(path);
            Err(e)
        }
        (Err(e), None) => Err(e),
    }
}

/// Returns how many events were written.
async fn write_export(
    ctx: &Context,
    org: &str,
    filter: &AuditFilter,
    format: ExportFormatArg,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let mut count = 0u64;
    match format {
        ExportFormatArg::Jsonl => {
            let mut events = ctx.client.export_audit(&ctx.actor, org, filter).await?;
            while let Some(event) = events.next().await {
                serde_json::to_writer(&mut *out, &event?)?;
                out.write_all(b"\n")?;
                count += 1;
            }
        }
        ExportFormatArg::Csv => {
            let mut chunks = ctx
                .client
                .export_audit_raw(org, filter, AuditExportFormat::Csv)
                .await?;
            let mut newlines = 0u64;
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk?;
                // Cells never contain a raw line break (the server escapes them), so
                // rows are line ends minus the header.
                newlines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
                out.write_all(&chunk)?;
            }
            count = newlines.saturating_sub(1);
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use assay_core::audit::ChainBreak;

    fn report(broken: Option<ChainBreak>) -> String {
        let r = AuditVerifyReport {
            ok: broken.is_none(),
            events_checked: 41,
            first_seq: Some(1),
            last_seq: Some(41),
            checkpoint: None,
            broken,
        };
        let mut out = Vec::new();
        write_report(&mut out, &r).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn verify_reports_ok_or_the_first_broken_link() {
        assert_eq!(report(None), "ok: 41 events verified (seq 1..41)\n");
        let text = report(Some(ChainBreak {
            seq: 7,
            event_id: None,
            reason: "hash does not match its content (edited)".into(),
        }));
        assert_eq!(
            text,
            "BROKEN at seq 7: hash does not match its content (edited)\n\
             41 events checked\n"
        );
    }
}
