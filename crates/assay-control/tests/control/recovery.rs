//! Start-up recovery of executions a previous process left behind.

use crate::harness::*;
use assay_core::actor::{ActorRef, PrincipalKind};
use assay_core::audit::Outcome;
use assay_core::execution::*;
use assay_core::ports::Store;
use serde_json::json;
use std::collections::BTreeMap;
use uuid::Uuid;

fn stored_execution(
    app: &TestApp,
    workflow_id: Uuid,
    status: ExecutionStatus,
    plan: serde_json::Value,
) -> Execution {
    let now = time::OffsetDateTime::now_utc();
    Execution {
        id: Uuid::now_v7(),
        env_id: app.t.dev.id,
        workflow_id,
        workflow_name: "smoke".into(),
        number: 0,
        name: String::new(),
        status,
        config: BTreeMap::new(),
        tags: BTreeMap::new(),
        labels: BTreeMap::new(),
        started_by: ActorRef {
            kind: PrincipalKind::User,
            id: Uuid::now_v7(),
            name: "Ada".into(),
        },
        queued_at: now,
        started_at: (status == ExecutionStatus::Running).then_some(now),
        finished_at: None,
        duration_ms: None,
        steps: Vec::new(),
        junit: None,
        error: None,
        plan,
        runner: None,
    }
}

fn plan_echo(text: &str) -> serde_json::Value {
    json!({
        "setup": [],
        "steps": [{
            "reference": "1",
            "name": "echo",
            "command": {"kind": "shell", "shell": ["/bin/sh"], "script": format!("echo {text}")},
        }],
        "after": [],
    })
}

#[tokio::test]
async fn running_executions_are_aborted_and_queued_ones_requeued() {
    let mut app = TestApp::start(2).await;
    let wf = app.create(&shell_workflow("smoke", "echo hi")).await;
    app.plane.shutdown().await;

    let mut running = stored_execution(
        &app,
        wf.summary.id,
        ExecutionStatus::Running,
        plan_echo("x"),
    );
    running.steps = vec![StepResult {
        reference: "1".into(),
        name: "echo".into(),
        status: ExecutionStatus::Running,
        exit_code: None,
        error: None,
        started_at: running.started_at,
        finished_at: None,
        attempts: 1,
        optional: false,
        negative: false,
    }];
    app.store.insert_execution(&mut running).await.unwrap();
    app.store.update_execution(&running).await.unwrap();

    let mut queued = stored_execution(
        &app,
        wf.summary.id,
        ExecutionStatus::Queued,
        plan_echo("requeued-and-ran"),
    );
    app.store.insert_execution(&mut queued).await.unwrap();

    let mut secret = stored_execution(
        &app,
        wf.summary.id,
        ExecutionStatus::Queued,
        plan_echo("never"),
    );
    secret.config.insert(
        "token".into(),
        ConfigValue {
            value: json!("***"),
            sensitive: true,
        },
    );
    app.store.insert_execution(&mut secret).await.unwrap();

    app.reopen().await;

    let recovered = app.get(running.id).await;
    assert_eq!(recovered.status, ExecutionStatus::Aborted);
    assert_eq!(
        recovered.error.as_deref(),
        Some("the server stopped while this execution was running (recovered at start-up)")
    );
    assert!(recovered.finished_at.is_some());
    assert_eq!(recovered.steps[0].status, ExecutionStatus::Aborted);

    let refused = app.get(secret.id).await;
    assert_eq!(refused.status, ExecutionStatus::Aborted);
    assert_eq!(
        refused.error.as_deref(),
        Some("queued execution had sensitive config values, which are never stored; run it again")
    );

    let rerun = app.finished(queued.id).await;
    assert_eq!(rerun.status, ExecutionStatus::Passed, "{rerun:?}");
    assert!(
        app.log(queued.id)
            .await
            .contains(&"requeued-and-ran".to_string())
    );

    let events = app.audit(app.t.acme.id).await;
    let recovery: Vec<_> = events
        .iter()
        .filter(|e| e.action == "execution.recover")
        .collect();
    assert_eq!(recovery.len(), 3);
    assert!(
        recovery
            .iter()
            .all(|e| e.actor.kind == PrincipalKind::System
                && e.outcome == Outcome::Success
                && e.env_id == Some(app.t.dev.id))
    );
    assert_eq!(
        recovery[0].resources,
        vec![format!("execution:{}", running.id)]
    );
    assert_eq!(recovery[1].reason.as_deref(), Some("re-queued"));
}

#[tokio::test]
async fn an_execution_running_when_the_process_died_is_aborted_by_the_next_one() {
    let mut app = TestApp::start(2).await;
    app.create(&shell_workflow("long", "sleep 30")).await;
    let e = app.run("long", &[]).await;
    app.running(e.id).await;
    // The old plane keeps its process; a new one on the same database finds "running".
    // The old one is dead as far as the database goes: when recovery stops its orphaned
    // process it cannot record anything any more (as a crashed server would not).
    let old = app.plane.clone();
    app.store
        .frozen
        .store(true, std::sync::atomic::Ordering::SeqCst);
    app.reopen().await;
    let recovered = app.get(e.id).await;
    assert_eq!(recovered.status, ExecutionStatus::Aborted);
    assert!(recovered.error.unwrap().contains("recovered at start-up"));
    old.shutdown().await;
}
