//! Reading execution logs: the tail by default, line ranges, grep, one step.

use crate::args::opt_u64;
use crate::catalog::{Ctx, Effect, Meta, Render, ToolDef, define};
use crate::errors::ToolError;
use crate::views::clip;
use assay_core::execution::LogQuery;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Lines returned when no range and no grep is given.
pub(crate) const DEFAULT_TAIL: u64 = 100;
/// Most grep matches returned.
pub(crate) const MAX_MATCHES: u64 = 100;
/// Most lines returned for a range or tail.
pub(crate) const MAX_LINES: u64 = 500;
const MAX_LINE_CHARS: usize = 2000;

pub(crate) fn tools() -> Vec<ToolDef> {
    vec![define(
        Meta {
            name: "fetch_execution_logs",
            title: "Execution logs",
            description: "Execution log: last 100 lines, a line range, or grep matches (max 100).",
            effect: Effect::ReadOnly,
            open_world: false,
        },
        fetch,
    )]
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct LogArgs {
    execution_id: String,
    #[serde(default, deserialize_with = "opt_u64")]
    #[schemars(range(min = 1, max = 500))]
    tail: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    start_line: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    end_line: Option<u64>,
    /// Regex
    #[serde(default)]
    grep: Option<String>,
    /// Step ref or name
    #[serde(default)]
    step: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Line {
    /// Line number
    n: u64,
    step: String,
    text: String,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Logs {
    /// Lines in the (step's) log.
    total_lines: u64,
    /// More lines matched than were returned.
    truncated: bool,
    /// Steps that have log lines.
    steps: Vec<String>,
    lines: Vec<Line>,
}

impl Render for Logs {
    fn render(&self) -> String {
        let mut out = format!(
            "{} lines of {} (steps: {}){}",
            self.lines.len(),
            self.total_lines,
            self.steps.join(", "),
            if self.truncated { ", truncated" } else { "" }
        );
        for l in &self.lines {
            let _ = write!(out, "\n{:>5} [{}] {}", l.n, l.step, l.text);
        }
        out
    }
}

async fn fetch(ctx: Ctx, args: LogArgs) -> Result<Logs, ToolError> {
    let grep = args.grep.filter(|g| !g.is_empty());
    let ranged = args.start_line.is_some() || args.end_line.is_some();
    let tail = match (args.tail, ranged, grep.is_some()) {
        (Some(n), _, _) => Some(n.clamp(1, MAX_LINES)),
        (None, false, false) => Some(DEFAULT_TAIL),
        _ => None,
    };
    let query = LogQuery {
        step: args.step.filter(|s| !s.trim().is_empty()),
        tail,
        from_line: args.start_line,
        to_line: args.end_line,
        max_lines: Some(if grep.is_some() {
            MAX_MATCHES
        } else {
            MAX_LINES
        }),
        grep,
    };
    let page = ctx
        .plane
        .execution_logs(&ctx.actor, &ctx.env, args.execution_id.trim(), &query)
        .await?;
    Ok(Logs {
        total_lines: page.total_lines,
        truncated: page.truncated,
        steps: page.steps,
        lines: page
            .lines
            .into_iter()
            .map(|l| Line {
                n: l.number,
                step: l.step,
                text: clip(&l.text, MAX_LINE_CHARS),
            })
            .collect(),
    })
}
