//! Start-up recovery: executions the previous process left behind.
//!
//! - `running`: their processes died with the server. Marked aborted with a reason, open
//!   steps aborted, logs closed.
//! - `queued`: re-queued in their original order, from the recorded plan — except when the
//!   plan had sensitive values, which are never stored: those are aborted and must be run
//!   again.
//!
//! Each decision is audited as a system action in the execution's organization.

use crate::audit;
use crate::audit_log::AuditLog;
use crate::dispatcher::{Dispatcher, QueuedJob, millis_between};
use crate::masking::WITHHELD_KEY;
use assay_core::audit::Outcome;
use assay_core::execution::{Execution, ExecutionPlan, ExecutionStatus};
use assay_core::{ClientInfo, Principal, Result, Timestamp};
use std::collections::HashMap;
use uuid::Uuid;

pub(crate) const RUNNING_REASON: &str =
    "the server stopped while this execution was running (recovered at start-up)";
pub(crate) const SECRETS_REASON: &str =
    "queued execution had sensitive config values, which are never stored; run it again";
pub(crate) const ACTION: &str = "execution.recover";

pub(crate) async fn recover(dispatcher: &Dispatcher, log: &AuditLog) -> Result<()> {
    let store = dispatcher.store().clone();
    let orgs = env_orgs(dispatcher).await?;

    for mut execution in store
        .executions_with_status(&[ExecutionStatus::Running])
        .await?
    {
        let now = crate::stamp::now(dispatcher.clock().as_ref());
        abort(&mut execution, now, RUNNING_REASON);
        store.update_execution(&execution).await?;
        close_logs(dispatcher, execution.id).await;
        // The previous process died without stopping its step processes; stop them now.
        let reaped = dispatcher.executor().reap_orphans(execution.id).await;
        let detail = if reaped > 0 {
            format!("aborted: {RUNNING_REASON}; stopped {reaped} orphaned process group(s)")
        } else {
            format!("aborted: {RUNNING_REASON}")
        };
        audit_recovery(dispatcher, log, &orgs, &execution, detail).await?;
    }

    let mut queued = store
        .executions_with_status(&[ExecutionStatus::Queued])
        .await?;
    queued.sort_by_key(|e| e.queued_at);
    for mut execution in queued {
        match requeueable_plan(&execution) {
            Ok(plan) => {
                let live = dispatcher.events.register(execution.clone());
                audit_recovery(dispatcher, log, &orgs, &execution, "re-queued".into()).await?;
                dispatcher.enqueue(QueuedJob { live, plan });
            }
            Err(reason) => {
                let now = crate::stamp::now(dispatcher.clock().as_ref());
                abort(&mut execution, now, &reason);
                store.update_execution(&execution).await?;
                close_logs(dispatcher, execution.id).await;
                audit_recovery(
                    dispatcher,
                    log,
                    &orgs,
                    &execution,
                    format!("aborted: {reason}"),
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// The plan to re-run, or why it cannot be re-run.
fn requeueable_plan(execution: &Execution) -> std::result::Result<ExecutionPlan, String> {
    let withheld = execution.config.values().any(|v| v.sensitive)
        || execution.plan.get(WITHHELD_KEY) == Some(&serde_json::Value::Bool(true));
    if withheld {
        return Err(SECRETS_REASON.to_string());
    }
    serde_json::from_value(execution.plan.clone()).map_err(|e| {
        format!("the recorded plan of this queued execution could not be read ({e}); run it again")
    })
}

/// Marks an execution that can no longer run as aborted, closing its open steps.
fn abort(execution: &mut Execution, now: Timestamp, reason: &str) {
    execution.status = ExecutionStatus::Aborted;
    execution.error = Some(reason.to_string());
    execution.finished_at = Some(now);
    execution.duration_ms = execution.started_at.map(|s| millis_between(s, now));
    for step in &mut execution.steps {
        if !step.status.is_terminal() {
            step.status = ExecutionStatus::Aborted;
            if step.started_at.is_some() {
                step.finished_at = Some(now);
            }
        }
    }
}

async fn close_logs(dispatcher: &Dispatcher, id: Uuid) {
    if let Err(e) = dispatcher.files().close_logs(id).await {
        tracing::warn!(execution = %id, error = %e, "could not close logs during recovery");
    }
}

/// Environment ID → organization ID, for auditing into the right chain.
async fn env_orgs(dispatcher: &Dispatcher) -> Result<HashMap<Uuid, Uuid>> {
    let store = dispatcher.store();
    let mut map = HashMap::new();
    for org in store.list_orgs().await? {
        for env in store.list_envs(org.id).await? {
            map.insert(env.id, org.id);
        }
    }
    Ok(map)
}

async fn audit_recovery(
    dispatcher: &Dispatcher,
    log: &AuditLog,
    orgs: &HashMap<Uuid, Uuid>,
    execution: &Execution,
    reason: String,
) -> Result<()> {
    let Some(org_id) = orgs.get(&execution.env_id).copied() else {
        tracing::warn!(execution = %execution.id, "execution of an unknown environment; not audited");
        return Ok(());
    };
    let event = audit::event(
        &Principal::system(org_id),
        &ClientInfo::default(),
        org_id,
        Some(execution.env_id),
        ACTION,
        vec![format!("execution:{}", execution.id)],
        Outcome::Success,
        Some(reason),
        dispatcher.clock().as_ref(),
    );
    log.append(event).await.map(|_| ())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use assay_core::actor::{ActorRef, PrincipalKind};
    use assay_core::execution::{ConfigValue, StepResult};
    use serde_json::json;
    use std::collections::BTreeMap;
    use time::macros::datetime;

    fn execution(status: ExecutionStatus) -> Execution {
        Execution {
            id: Uuid::now_v7(),
            env_id: Uuid::now_v7(),
            workflow_id: Uuid::now_v7(),
            workflow_name: "w".into(),
            number: 1,
            name: "w-1".into(),
            status,
            config: BTreeMap::new(),
            tags: BTreeMap::new(),
            labels: BTreeMap::new(),
            started_by: ActorRef {
                kind: PrincipalKind::User,
                id: Uuid::nil(),
                name: "u".into(),
            },
            queued_at: datetime!(2025-01-01 0:00 UTC),
            started_at: Some(datetime!(2025-01-01 0:00:01 UTC)),
            finished_at: None,
            duration_ms: None,
            steps: vec![],
            junit: None,
            error: None,
            plan: json!({"setup": [], "steps": [], "after": []}),
            runner: None,
        }
    }

    fn step(reference: &str, status: ExecutionStatus, started: bool) -> StepResult {
        StepResult {
            reference: reference.into(),
            name: reference.into(),
            status,
            exit_code: None,
            error: None,
            started_at: started.then_some(datetime!(2025-01-01 0:00:01 UTC)),
            finished_at: None,
            attempts: u32::from(started),
            optional: false,
            negative: false,
        }
    }

    #[test]
    fn abort_closes_open_steps_and_sets_duration() {
        let mut e = execution(ExecutionStatus::Running);
        e.steps = vec![
            step("1", ExecutionStatus::Passed, true),
            step("2", ExecutionStatus::Running, true),
            step("3", ExecutionStatus::Queued, false),
        ];
        let now = datetime!(2025-01-01 0:00:03.5 UTC);
        abort(&mut e, now, RUNNING_REASON);
        assert_eq!(e.status, ExecutionStatus::Aborted);
        assert_eq!(e.error.as_deref(), Some(RUNNING_REASON));
        assert_eq!(e.duration_ms, Some(2500));
        assert_eq!(e.steps[0].status, ExecutionStatus::Passed);
        assert_eq!(e.steps[1].status, ExecutionStatus::Aborted);
        assert_eq!(e.steps[1].finished_at, Some(now));
        assert_eq!(e.steps[2].status, ExecutionStatus::Aborted);
        assert_eq!(e.steps[2].finished_at, None);
    }

    #[test]
    fn plans_with_withheld_values_are_not_requeued() {
        let plain = execution(ExecutionStatus::Queued);
        let plan = requeueable_plan(&plain).unwrap();
        assert!(plan.steps.is_empty());

        let mut sensitive = execution(ExecutionStatus::Queued);
        sensitive.config.insert(
            "token".into(),
            ConfigValue {
                value: json!("***"),
                sensitive: true,
            },
        );
        assert_eq!(requeueable_plan(&sensitive).unwrap_err(), SECRETS_REASON);

        let mut marked = execution(ExecutionStatus::Queued);
        marked.plan[WITHHELD_KEY] = json!(true);
        assert_eq!(requeueable_plan(&marked).unwrap_err(), SECRETS_REASON);

        let mut broken = execution(ExecutionStatus::Queued);
        broken.plan = json!({"steps": "nope"});
        assert!(
            requeueable_plan(&broken)
                .unwrap_err()
                .contains("could not be read")
        );
    }
}
