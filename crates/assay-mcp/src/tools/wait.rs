//! Waiting for executions to finish, with progress notifications while waiting. Shared by
//! `wait_for_executions` and `run_workflow` with `wait`.

use crate::catalog::Ctx;
use crate::errors::ToolError;
use assay_core::execution::Execution;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::time::Duration;
use tokio::time::Instant;

pub(crate) const DEFAULT_TIMEOUT_SECS: u64 = 60;
pub(crate) const MAX_TIMEOUT_SECS: u64 = 600;
/// Most executions one wait may watch.
pub(crate) const MAX_EXECUTIONS: usize = 50;
/// A progress notification at least this often, so clients that reset their request
/// timeout on progress keep waiting.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The wait limit from `timeoutSeconds` or Testkube's `timeoutMinutes` (0 or absent: the
/// default), capped at ten minutes.
pub(crate) fn timeout(seconds: Option<u64>, minutes: Option<u64>) -> Duration {
    let secs = match (seconds, minutes) {
        (Some(s), _) if s > 0 => s,
        (_, Some(m)) if m > 0 => m.saturating_mul(60),
        _ => DEFAULT_TIMEOUT_SECS,
    };
    Duration::from_secs(secs.min(MAX_TIMEOUT_SECS))
}

pub(crate) struct WaitOutcome {
    /// The executions in the order asked for, as last seen.
    pub executions: Vec<Execution>,
    /// The limit passed (or the client cancelled) before every execution finished.
    pub timed_out: bool,
}

/// Waits until every execution in `ids` (IDs or names) is in a final state, the limit
/// passes, or the client cancels the request. An unknown execution fails at once.
///
/// Event-driven: one `ControlPlane::wait_for_execution` per unfinished execution, each woken
/// by that execution's own state changes; a progress notification goes out whenever one
/// finishes and at least every `PROGRESS_EVERY` in between.
pub(crate) async fn wait_all(
    ctx: &Ctx,
    ids: &[String],
    limit: Duration,
) -> Result<WaitOutcome, ToolError> {
    let started = Instant::now();
    let deadline = started + limit;
    let mut executions = Vec::with_capacity(ids.len());
    for id in ids {
        executions.push(ctx.plane.get_execution(&ctx.actor, &ctx.env, id).await?);
    }
    let mut pending: FuturesUnordered<_> = executions
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.status.is_terminal())
        .map(|(i, e)| {
            let id = e.id.to_string();
            async move {
                let result = ctx
                    .plane
                    .wait_for_execution(&ctx.actor, &ctx.env, &id, limit)
                    .await;
                (i, result)
            }
        })
        .collect();
    let mut last_progress = 0.0_f64;
    loop {
        let done = executions.iter().filter(|e| e.status.is_terminal()).count();
        // Progress must grow with every notification: elapsed seconds do.
        let elapsed = started.elapsed().as_secs_f64().max(last_progress + 0.001);
        last_progress = elapsed;
        ctx.progress
            .report(
                elapsed,
                limit.as_secs_f64(),
                status_message(&executions, done),
            )
            .await;
        if done == executions.len() {
            return Ok(WaitOutcome {
                executions,
                timed_out: false,
            });
        }
        if Instant::now() >= deadline || ctx.cancel.is_cancelled() || pending.is_empty() {
            return Ok(WaitOutcome {
                executions,
                timed_out: true,
            });
        }
        let tick = PROGRESS_EVERY.min(deadline - Instant::now());
        tokio::select! {
            finished = pending.next() => {
                if let Some((i, result)) = finished {
                    executions[i] = result?;
                }
            }
            _ = tokio::time::sleep(tick) => {}
            _ = ctx.cancel.cancelled() => {}
        }
    }
}

fn status_message(executions: &[Execution], done: usize) -> String {
    let pending: Vec<String> = executions
        .iter()
        .filter(|e| !e.status.is_terminal())
        .take(5)
        .map(|e| format!("{} {}", e.name, e.status))
        .collect();
    let mut msg = format!("{done}/{} finished", executions.len());
    if !pending.is_empty() {
        msg.push_str("; waiting for ");
        msg.push_str(&pending.join(", "));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_default_and_are_capped() {
        assert_eq!(timeout(None, None), Duration::from_secs(60));
        assert_eq!(timeout(Some(0), None), Duration::from_secs(60));
        assert_eq!(timeout(Some(5), Some(3)), Duration::from_secs(5));
        assert_eq!(timeout(None, Some(3)), Duration::from_secs(180));
        assert_eq!(timeout(Some(100_000), None), Duration::from_secs(600));
        assert_eq!(timeout(None, Some(u64::MAX)), Duration::from_secs(600));
    }
}
