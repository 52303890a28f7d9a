//! `assay execution …`: list, inspect, read logs, abort and tag executions.

use super::output::{self, Format, Table};
use super::run::{failed_case_lines, junit_totals};
use super::workflow::more_hint;
use super::{Context, key_value};
use anyhow::Context as _;
use assay_core::PageRequest;
use assay_core::execution::{Execution, ExecutionFilter, ExecutionStatus, LogLine, LogQuery};
use assay_core::ports::ControlPlane;
use clap::Subcommand;
use futures::StreamExt;
use std::io::Write;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum ExecutionCommand {
    /// List executions, newest first
    #[command(alias = "ls")]
    List {
        /// Only executions of this workflow
        #[arg(short, long)]
        workflow: Option<String>,
        /// Only these statuses (comma-separated): queued, running, passed, failed,
        /// aborted, canceled, timeout, skipped
        #[arg(short, long, value_delimiter = ',')]
        status: Vec<ExecutionStatus>,
        /// Tag selector: `key=value`, `key!=value` or `key`; may be repeated (all must match)
        #[arg(short, long, value_name = "SELECTOR")]
        tag: Vec<String>,
        /// Most items to show
        #[arg(long)]
        limit: Option<u32>,
        /// Continue after a previous page (its `next_cursor`)
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show an execution: status, steps, JUnit results and error
    Get {
        /// Execution ID or name (e.g. smoke-3)
        execution: String,
    },
    /// Print an execution's log
    Logs(LogsArgs),
    /// Abort a queued or running execution
    Abort {
        /// Execution ID or name
        execution: String,
    },
    /// Set tags on an execution (`key=value` sets, `key-` removes; others are kept)
    Tag {
        /// Execution ID or name
        execution: String,
        /// `key=value` to set a tag, `key-` to remove one
        #[arg(value_name = "KEY=VALUE|KEY-", required = true)]
        tags: Vec<String>,
    },
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Execution ID or name
    pub execution: String,
    /// Only this step (reference like `1` or `1.2`, or its name)
    #[arg(long)]
    pub step: Option<String>,
    /// Only the last N lines (default without a range: 200)
    #[arg(long, value_name = "N")]
    pub tail: Option<u64>,
    /// First line to print (1-based, inclusive)
    #[arg(long, value_name = "N", conflicts_with = "tail")]
    pub from: Option<u64>,
    /// Last line to print (inclusive)
    #[arg(long, value_name = "M", conflicts_with = "tail")]
    pub to: Option<u64>,
    /// Only lines matching this regular expression
    #[arg(long, value_name = "RE")]
    pub grep: Option<String>,
    /// Most lines to print (the server caps it at 10000)
    #[arg(long, value_name = "N")]
    pub max_lines: Option<u64>,
    /// Keep printing new lines until the execution finishes
    #[arg(short, long, conflicts_with_all = ["from", "to"])]
    pub follow: bool,
}

pub async fn run(ctx: &Context, command: ExecutionCommand) -> anyhow::Result<ExitCode> {
    match command {
        ExecutionCommand::List {
            workflow,
            status,
            tag,
            limit,
            cursor,
        } => {
            let filter = ExecutionFilter {
                workflow,
                statuses: status,
                tag_selector: (!tag.is_empty()).then(|| tag.join(",")),
                ..ExecutionFilter::default()
            };
            let page = ctx
                .client
                .list_executions(
                    &ctx.actor,
                    &ctx.env,
                    &filter,
                    &PageRequest { limit, cursor },
                )
                .await?;
            output::emit(ctx.format, &page, |out| {
                if page.items.is_empty() {
                    return writeln!(out, "no executions found");
                }
                let mut t = Table::new(["NAME", "STATUS", "WORKFLOW", "AGE", "DURATION", "TAGS"]);
                for e in &page.items {
                    let duration = e
                        .duration_ms
                        .or_else(|| output::between(e.started_at, e.finished_at))
                        .map(output::duration_ms)
                        .unwrap_or_else(|| "-".into());
                    t.row(vec![
                        e.name.clone(),
                        e.status.to_string(),
                        e.workflow_name.clone(),
                        output::age(e.queued_at),
                        duration,
                        output::key_values(&e.tags),
                    ]);
                }
                t.write(out)?;
                more_hint(page.items.len(), page.total, page.next_cursor.as_deref());
                Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        ExecutionCommand::Get { execution } => {
            let e = ctx
                .client
                .get_execution(&ctx.actor, &ctx.env, &execution)
                .await?;
            output::emit(ctx.format, &e, |out| describe(&e, out))?;
            Ok(ExitCode::SUCCESS)
        }
        ExecutionCommand::Logs(args) => logs(ctx, args).await,
        ExecutionCommand::Abort { execution } => {
            let e = ctx
                .client
                .abort_execution(&ctx.actor, &ctx.env, &execution)
                .await?;
            output::emit(ctx.format, &e, |out| {
                writeln!(out, "execution {} is {}", e.name, e.status)
            })?;
            Ok(ExitCode::SUCCESS)
        }
        ExecutionCommand::Tag { execution, tags } => {
            let changes = tags
                .iter()
                .map(|t| tag_change(t))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!(e))?;
            let current = ctx
                .client
                .get_execution(&ctx.actor, &ctx.env, &execution)
                .await?;
            let mut merged = current.tags.clone();
            for (key, value) in changes {
                match value {
                    Some(v) => merged.insert(key, v),
                    None => merged.remove(&key),
                };
            }
            let e = ctx
                .client
                .update_execution_tags(&ctx.actor, &ctx.env, &current.id.to_string(), &merged)
                .await?;
            output::emit(ctx.format, &e, |out| {
                let tags = output::key_values(&e.tags);
                writeln!(
                    out,
                    "execution {} tags: {}",
                    e.name,
                    if tags.is_empty() { "(none)" } else { &tags }
                )
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `key=value` sets a tag, `key-` removes it.
fn tag_change(arg: &str) -> Result<(String, Option<String>), String> {
    if let Some(key) = arg.strip_suffix('-').filter(|k| !k.contains('=')) {
        if key.is_empty() {
            return Err(format!("expected key=value or key-, got {arg:?}"));
        }
        return Ok((key.to_owned(), None));
    }
    key_value(arg)
        .map(|(k, v)| (k, Some(v)))
        .map_err(|_| format!("expected key=value or key-, got {arg:?}"))
}

fn describe(e: &Execution, out: &mut dyn Write) -> std::io::Result<()> {
    let config = e
        .config
        .iter()
        .map(|(k, v)| format!("{k}={}", output::plain(&v.value)))
        .collect::<Vec<_>>()
        .join(",");
    let duration = e
        .duration_ms
        .or_else(|| output::between(e.started_at, e.finished_at))
        .map(output::duration_ms)
        .unwrap_or_default();
    output::fields(
        out,
        &[
            ("Name", e.name.clone()),
            ("ID", e.id.to_string()),
            ("Workflow", e.workflow_name.clone()),
            ("Status", e.status.to_string()),
            ("Queued", output::timestamp(e.queued_at)),
            ("Started", output::opt_timestamp(e.started_at)),
            ("Finished", output::opt_timestamp(e.finished_at)),
            ("Duration", duration),
            ("Started by", e.started_by.name.clone()),
            ("Runner", e.runner.clone().unwrap_or_default()),
            ("Tags", output::key_values(&e.tags)),
            ("Config", config),
            ("Error", e.error.clone().unwrap_or_default()),
        ],
    )?;
    if !e.steps.is_empty() {
        writeln!(out)?;
        let mut t = Table::new([
            "STEP", "NAME", "STATUS", "EXIT", "DURATION", "ATTEMPTS", "ERROR",
        ]);
        for s in &e.steps {
            t.row(vec![
                s.reference.clone(),
                s.name.clone(),
                s.status.to_string(),
                s.exit_code.map(|c| c.to_string()).unwrap_or_default(),
                output::between(s.started_at, s.finished_at)
                    .map(output::duration_ms)
                    .unwrap_or_default(),
                s.attempts.to_string(),
                s.error.clone().unwrap_or_default(),
            ]);
        }
        t.write(out)?;
    }
    if let Some(j) = &e.junit {
        writeln!(out)?;
        writeln!(out, "{}", junit_totals(j))?;
        for line in failed_case_lines(Some(j)) {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

async fn logs(ctx: &Context, args: LogsArgs) -> anyhow::Result<ExitCode> {
    let query = LogQuery {
        step: args.step.clone(),
        tail: args.tail,
        from_line: args.from,
        to_line: args.to,
        grep: args.grep.clone(),
        max_lines: args.max_lines,
    };
    if !args.follow {
        let page = ctx
            .client
            .execution_logs(&ctx.actor, &ctx.env, &args.execution, &query)
            .await?;
        output::emit(ctx.format, &page, |out| {
            for line in &page.lines {
                writeln!(out, "{}", line.text)?;
            }
            Ok(())
        })?;
        if ctx.format.is_table() && page.truncated {
            eprintln!(
                "(more lines matched than shown; narrow with --from/--to, --tail or --max-lines)"
            );
        }
        return Ok(ExitCode::SUCCESS);
    }

    // --follow: what is already there (the last --tail lines, or everything), then live.
    let grep = match &args.grep {
        Some(re) => Some(
            regex::Regex::new(re)
                .with_context(|| format!("--grep {re:?} is not a valid regular expression"))?,
        ),
        None => None,
    };
    let mut after = 0;
    if args.tail.is_some() {
        let page = ctx
            .client
            .execution_logs(&ctx.actor, &ctx.env, &args.execution, &query)
            .await?;
        for line in &page.lines {
            print_line(ctx.format, line)?;
        }
        after = page.lines.last().map(|l| l.number).unwrap_or(0);
        if page.lines.is_empty() {
            // Nothing matched: start after the current end so only new lines follow.
            after = page.total_lines;
        }
    }
    let mut stream = ctx
        .client
        .follow_execution_logs(
            &ctx.actor,
            &ctx.env,
            &args.execution,
            args.step.clone(),
            after,
        )
        .await?;
    while let Some(line) = stream.next().await {
        let line = line?;
        if grep.as_ref().is_none_or(|re| re.is_match(&line.text)) {
            print_line(ctx.format, &line)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Text for people; one JSON object per line (NDJSON) with -o json, so a consumer can
/// read a followed log as it comes.
fn print_line(format: Format, line: &LogLine) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Table => writeln!(out, "{}", line.text)?,
        Format::Json => {
            serde_json::to_writer(&mut out, line)?;
            writeln!(out)?;
        }
        Format::Yaml => {
            writeln!(out, "---")?;
            output::structured(Format::Yaml, line, &mut out)?;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn tag_changes_set_and_remove() {
        assert_eq!(
            tag_change("ci=true").unwrap(),
            ("ci".into(), Some("true".into()))
        );
        assert_eq!(tag_change("ci-").unwrap(), ("ci".into(), None));
        assert_eq!(tag_change("a=b-").unwrap(), ("a".into(), Some("b-".into())));
        assert!(tag_change("-").is_err());
        assert!(tag_change("plain").is_err());
    }
}
