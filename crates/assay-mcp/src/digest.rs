//! The failure digest: everything a model needs to start analysing a failed execution,
//! gathered in one call (failed steps, failing JUnit cases, the end of the failing step's
//! log) instead of four.

use crate::catalog::Ctx;
use crate::views::{CaseView, Digest, StepView, clip, did_not_pass};
use assay_core::execution::{Execution, ExecutionStatus, LogQuery, StepResult};

/// Failing JUnit cases listed in a digest.
const MAX_CASES: usize = 10;
/// Log lines of the failing step in a digest.
const TAIL_LINES: u64 = 20;
const MAX_LINE_CHARS: usize = 300;

/// The digest of `e`, or `None` when it passed or has not finished.
pub(crate) async fn digest(ctx: &Ctx, e: &Execution) -> Option<Digest> {
    if !did_not_pass(e.status) {
        return None;
    }
    let failed = failed_leaves(&e.steps);
    let (cases, truncated) = match &e.junit {
        Some(j) => (
            j.failed_cases
                .iter()
                .take(MAX_CASES)
                .map(CaseView::from)
                .collect::<Vec<_>>(),
            j.truncated || j.failed_cases.len() > MAX_CASES,
        ),
        None => (Vec::new(), false),
    };
    let id = e.id.to_string();

    // The failing step's own log first; the whole log's tail when it has none (e.g. the
    // execution failed before any step ran).
    let mut log_step = None;
    let mut lines = Vec::new();
    if let Some(step) = failed.first() {
        lines = tail(ctx, &id, Some(step.reference.clone())).await;
        if !lines.is_empty() {
            log_step = Some(step.reference.clone());
        }
    }
    if lines.is_empty() {
        lines = tail(ctx, &id, None).await;
    }

    let mut next = match &log_step {
        Some(step) => format!(
            "fetch_execution_logs executionId={id} step={step} (add grep or a line range) for more of the log"
        ),
        None => format!("fetch_execution_logs executionId={id} for the log"),
    };
    if let Some(report) = e.junit.as_ref().and_then(|j| j.reports.first()) {
        next.push_str(&format!(
            "; read_artifact executionId={id} fileName={report} for the JUnit report"
        ));
    } else {
        next.push_str(&format!(
            "; list_artifacts executionId={id} for produced files"
        ));
    }
    Some(Digest {
        failed_steps: failed.iter().map(|s| StepView::from(*s)).collect(),
        junit_failures: cases,
        junit_failures_truncated: truncated,
        log_step,
        last_log_lines: lines,
        next,
    })
}

async fn tail(ctx: &Ctx, execution: &str, step: Option<String>) -> Vec<String> {
    let query = LogQuery {
        step,
        tail: Some(TAIL_LINES),
        ..LogQuery::default()
    };
    match ctx
        .plane
        .execution_logs(&ctx.actor, &ctx.env, execution, &query)
        .await
    {
        Ok(page) => page
            .lines
            .iter()
            .map(|l| clip(&l.text, MAX_LINE_CHARS))
            .collect(),
        // The digest is a convenience: a log that cannot be read leaves it without lines.
        Err(e) => {
            tracing::debug!(error = %e, "digest: log tail unavailable");
            Vec::new()
        }
    }
}

fn is_failure(s: ExecutionStatus) -> bool {
    matches!(
        s,
        ExecutionStatus::Failed
            | ExecutionStatus::Timeout
            | ExecutionStatus::Aborted
            | ExecutionStatus::Canceled
    )
}

/// Failed steps that have no failed sub-step (a group fails because a child did; the
/// child is the interesting one), in execution order.
pub(crate) fn failed_leaves(steps: &[StepResult]) -> Vec<&StepResult> {
    let failed: Vec<&StepResult> = steps.iter().filter(|s| is_failure(s.status)).collect();
    failed
        .iter()
        .filter(|s| {
            let prefix = format!("{}.", s.reference);
            !failed.iter().any(|o| o.reference.starts_with(&prefix))
        })
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(reference: &str, status: ExecutionStatus) -> StepResult {
        StepResult {
            reference: reference.into(),
            name: format!("step {reference}"),
            status,
            exit_code: None,
            error: None,
            started_at: None,
            finished_at: None,
            attempts: 1,
            optional: false,
            negative: false,
        }
    }

    #[test]
    fn failed_leaves_skip_groups_whose_children_failed() {
        let steps = vec![
            step("1", ExecutionStatus::Passed),
            step("2", ExecutionStatus::Failed),
            step("2.1", ExecutionStatus::Passed),
            step("2.2", ExecutionStatus::Failed),
            step("3", ExecutionStatus::Skipped),
            step("after.1", ExecutionStatus::Timeout),
        ];
        let refs: Vec<&str> = failed_leaves(&steps)
            .iter()
            .map(|s| s.reference.as_str())
            .collect();
        assert_eq!(refs, ["2.2", "after.1"]);
    }
}
