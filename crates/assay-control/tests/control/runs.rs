//! Running, queueing, aborting and tagging executions, end to end with real processes.

use crate::harness::*;
use assay_core::Error;
use assay_core::execution::*;
use assay_core::ports::ControlPlane;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

#[tokio::test]
async fn passing_workflow_runs_end_to_end() {
    let app = TestApp::start(2).await;
    app.create(&workflow(
        "smoke",
        "steps:\n- name: hello\n  shell: echo hello\n- name: world\n  shell: echo world",
    ))
    .await;

    let queued = app.run("smoke", &[]).await;
    assert_eq!(queued.status, ExecutionStatus::Queued);
    assert_eq!(queued.number, 1);
    assert_eq!(queued.name, "smoke-1");
    assert_eq!(queued.workflow_name, "smoke");
    assert_eq!(queued.started_by.name, "Ada");

    let done = app.finished(queued.id).await;
    assert_eq!(done.status, ExecutionStatus::Passed, "{done:?}");
    assert_eq!(done.error, None);
    assert_eq!(done.steps.len(), 2);
    assert_eq!(done.steps[0].name, "hello");
    assert!(
        done.steps
            .iter()
            .all(|s| s.status == ExecutionStatus::Passed)
    );
    assert!(done.started_at.is_some() && done.finished_at.is_some());
    assert!(done.duration_ms.is_some());
    assert!(done.runner.is_some());
    let log = app.log(done.id).await;
    assert!(log.contains(&"hello".to_string()), "{log:?}");
    assert!(log.contains(&"world".to_string()), "{log:?}");

    // The same execution through the control plane, by name.
    let by_name = app
        .plane
        .get_execution(&app.admin(), &app.dev(), "smoke-1")
        .await
        .unwrap();
    assert_eq!(by_name.id, done.id);
    let second = app.run("smoke", &[]).await;
    assert_eq!(second.name, "smoke-2");
    app.finished(second.id).await;
}

#[tokio::test]
async fn failing_workflow_is_failed_with_the_exit_code() {
    let app = TestApp::start(2).await;
    app.create(&shell_workflow("broken", "echo about to fail; exit 3"))
        .await;
    let e = app.run("broken", &[]).await;
    let done = app.finished(e.id).await;
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(done.steps.len(), 1);
    assert_eq!(done.steps[0].status, ExecutionStatus::Failed);
    assert_eq!(done.steps[0].exit_code, Some(3));
    assert!(app.log(e.id).await.contains(&"about to fail".to_string()));

    let logs = app
        .plane
        .execution_logs(&app.admin(), &app.dev(), &e.name, &LogQuery::default())
        .await
        .unwrap();
    assert!(logs.lines.iter().any(|l| l.text == "about to fail"));
}

#[tokio::test]
async fn concurrency_one_keeps_the_second_execution_queued_until_the_first_ends() {
    let app = TestApp::start(1).await;
    let release = app.path("release");
    app.create(&shell_workflow("blocker", &wait_for_file(&release)))
        .await;
    app.create(&shell_workflow("quick", "echo quick")).await;

    let first = app.run("blocker", &[]).await;
    let second = app.run("quick", &[]).await;
    app.running(first.id).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(app.get(second.id).await.status, ExecutionStatus::Queued);

    let runners = app
        .plane
        .list_runners(&app.admin(), &app.dev())
        .await
        .unwrap();
    assert_eq!(runners.len(), 1);
    assert_eq!((runners[0].running, runners[0].queued), (1, 1));
    assert_eq!(runners[0].concurrency, 1);

    std::fs::write(&release, "go").unwrap();
    let first = app.finished(first.id).await;
    let second = app.finished(second.id).await;
    assert_eq!(first.status, ExecutionStatus::Passed);
    assert_eq!(second.status, ExecutionStatus::Passed);
    assert!(second.started_at.unwrap() >= first.finished_at.unwrap());
}

#[tokio::test]
async fn executions_start_in_fifo_order() {
    let app = TestApp::start(1).await;
    let release = app.path("release");
    app.create(&shell_workflow("blocker", &wait_for_file(&release)))
        .await;
    app.create(&shell_workflow("quick", "echo quick")).await;
    let first = app.run("blocker", &[]).await;
    let queued: Vec<Execution> = [
        app.run("quick", &[]).await,
        app.run("quick", &[]).await,
        app.run("quick", &[]).await,
    ]
    .into();
    app.running(first.id).await;
    std::fs::write(&release, "go").unwrap();
    let mut starts = Vec::new();
    for e in &queued {
        starts.push(app.finished(e.id).await.started_at.unwrap());
    }
    assert!(
        starts[0] <= starts[1] && starts[1] <= starts[2],
        "{starts:?}"
    );
}

#[tokio::test]
async fn aborting_a_queued_execution_cancels_it_and_it_never_runs() {
    let app = TestApp::start(1).await;
    let release = app.path("release");
    let marker = app.path("ran");
    app.create(&shell_workflow("blocker", &wait_for_file(&release)))
        .await;
    app.create(&shell_workflow(
        "marker",
        &format!("touch '{}'", marker.display()),
    ))
    .await;
    let first = app.run("blocker", &[]).await;
    let second = app.run("marker", &[]).await;
    app.running(first.id).await;

    let aborted = app
        .plane
        .abort_execution(&app.admin(), &app.dev(), &second.name)
        .await
        .unwrap();
    assert_eq!(aborted.status, ExecutionStatus::Canceled);
    assert!(aborted.finished_at.is_some());
    assert_eq!(app.get(second.id).await.status, ExecutionStatus::Canceled);

    std::fs::write(&release, "go").unwrap();
    assert_eq!(app.finished(first.id).await.status, ExecutionStatus::Passed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.get(second.id).await.status, ExecutionStatus::Canceled);
    assert!(!marker.exists(), "a canceled execution ran");

    // Aborting it again: it is finished.
    let err = app
        .plane
        .abort_execution(&app.admin(), &app.dev(), &second.name)
        .await
        .unwrap_err();
    match err {
        Error::Conflict(message) => assert_eq!(
            message,
            "execution \"marker-1\" already finished with status canceled"
        ),
        other => panic!("expected Conflict, got {other:?}"),
    }
}

fn process_is_gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie has exited; only its table entry is left.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

#[tokio::test]
async fn aborting_a_running_execution_kills_its_processes() {
    let app = TestApp::start(2).await;
    let pidfile = app.path("sleep.pid");
    app.create(&shell_workflow(
        "long",
        &format!("sleep 60 & echo $! > '{}'; wait", pidfile.display()),
    ))
    .await;
    let e = app.run("long", &[]).await;
    app.running(e.id).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let pid = loop {
        if let Ok(pid) = std::fs::read_to_string(&pidfile)
            && !pid.trim().is_empty()
        {
            break pid.trim().to_string();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the step never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!process_is_gone(&pid));

    let aborted = app
        .plane
        .abort_execution(&app.admin(), &app.dev(), &e.id.to_string())
        .await
        .unwrap();
    assert_eq!(aborted.status, ExecutionStatus::Aborted, "{aborted:?}");
    assert!(aborted.finished_at.is_some());
    assert_eq!(app.get(e.id).await.status, ExecutionStatus::Aborted);
    assert!(process_is_gone(&pid), "sleep {pid} survived the abort");
}

#[tokio::test]
async fn config_values_cannot_inject_shell_commands() {
    let app = TestApp::start(2).await;
    let canary = app.path("CANARY");
    app.create(&workflow(
        "echoer",
        "config:\n  x:\n    type: string\nsteps:\n- name: say\n  shell: echo {{config.x}}",
    ))
    .await;
    let payloads = [
        format!("$(touch {})", canary.display()),
        format!("; touch {}", canary.display()),
        format!("`touch {}`", canary.display()),
    ];
    for payload in &payloads {
        let e = app.run("echoer", &[("x", json!(payload))]).await;
        let done = app.finished(e.id).await;
        assert_eq!(done.status, ExecutionStatus::Passed, "{done:?}");
        assert!(!canary.exists(), "payload {payload:?} ran a command");
        let log = app.log(e.id).await;
        assert!(log.contains(payload), "log {log:?} lacks {payload:?}");
    }
}

#[tokio::test]
async fn sensitive_config_is_masked_in_the_record_and_the_logs() {
    let app = TestApp::start(2).await;
    app.create(&workflow(
        "login",
        "config:\n  token:\n    type: string\n    sensitive: true\n  user:\n    type: string\nsteps:\n- name: use\n  shell: echo \"user={{config.user}} token={{config.token}}\"",
    ))
    .await;
    let secret = "hunter2-very-secret";
    let e = app
        .run("login", &[("token", json!(secret)), ("user", json!("ada"))])
        .await;
    let done = app.finished(e.id).await;
    assert_eq!(done.status, ExecutionStatus::Passed, "{done:?}");

    assert!(done.config["token"].sensitive);
    assert_ne!(done.config["token"].value, json!(secret));
    assert_eq!(done.config["user"].value, json!("ada"));
    let record = serde_json::to_string(&done).unwrap();
    assert!(!record.contains(secret), "stored execution leaks: {record}");
    assert!(!serde_json::to_string(&e).unwrap().contains(secret));

    let log = app.log(e.id).await.join("\n");
    assert!(!log.contains(secret), "log leaks: {log}");
    assert!(log.contains("user=ada token=***"), "{log}");

    for event in app.audit(app.t.acme.id).await {
        assert!(!serde_json::to_string(&event).unwrap().contains(secret));
    }
}

#[tokio::test]
async fn tags_come_from_the_document_overlaid_by_the_request_and_can_be_replaced() {
    let app = TestApp::start(2).await;
    app.create(&workflow(
        "tagged",
        "execution:\n  tags:\n    team: qa\n    kind: smoke\nsteps:\n- shell: echo hi",
    ))
    .await;
    let request = RunRequest {
        config: BTreeMap::new(),
        tags: BTreeMap::from([("kind".to_string(), "full".to_string())]),
    };
    let e = app
        .plane
        .run_workflow(&app.admin(), &app.dev(), "tagged", &request)
        .await
        .unwrap();
    let expected = BTreeMap::from([
        ("kind".to_string(), "full".to_string()),
        ("team".to_string(), "qa".to_string()),
    ]);
    assert_eq!(e.tags, expected);

    // Replaced while it may still be running: the final record keeps the new tags.
    let new_tags = BTreeMap::from([("release".to_string(), "1.2.3".to_string())]);
    let updated = app
        .plane
        .update_execution_tags(&app.admin(), &app.dev(), &e.name, &new_tags)
        .await
        .unwrap();
    assert_eq!(updated.tags, new_tags);
    let done = app.finished(e.id).await;
    assert_eq!(done.tags, new_tags);

    // And after it finished.
    let later = BTreeMap::from([("verified".to_string(), "yes".to_string())]);
    app.plane
        .update_execution_tags(&app.admin(), &app.dev(), &e.name, &later)
        .await
        .unwrap();
    assert_eq!(app.get(e.id).await.tags, later);

    let bad = BTreeMap::from([("-bad".to_string(), "x".to_string())]);
    let err = app
        .plane
        .update_execution_tags(&app.admin(), &app.dev(), &e.name, &bad)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Invalid(ref e) if e[0].path == "tags.-bad"),
        "{err:?}"
    );
    assert_eq!(app.get(e.id).await.tags, later);
}

#[tokio::test]
async fn executions_of_another_environment_are_not_found() {
    let app = TestApp::start(2).await;
    app.create(&shell_workflow("smoke", "echo hi")).await;
    let e = app.run("smoke", &[]).await;
    app.finished(e.id).await;
    let err = app
        .plane
        .execution_logs(
            &app.admin(),
            &app.staging(),
            &e.id.to_string(),
            &LogQuery::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { kind: "execution", name } if *name == e.id.to_string()),
        "{err:?}"
    );
    let err = app
        .plane
        .get_execution(&app.admin(), &app.staging(), "smoke-1")
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::NotFound {
            kind: "execution",
            ..
        }
    ));
}

#[tokio::test]
async fn artifacts_are_listed_and_read_through_the_control_plane() {
    let app = TestApp::start(2).await;
    app.create(&workflow(
        "reporter",
        "steps:\n- name: report\n  shell: printf 'line one\\nline two\\n' > report.txt\n  artifacts:\n    paths:\n    - report.txt",
    ))
    .await;
    let e = app.run("reporter", &[]).await;
    assert_eq!(app.finished(e.id).await.status, ExecutionStatus::Passed);
    let artifacts = app
        .plane
        .list_artifacts(&app.admin(), &app.dev(), &e.name)
        .await
        .unwrap();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    assert_eq!(artifacts[0].path, "report.txt");
    let content = app
        .plane
        .read_artifact(
            &app.admin(),
            &app.dev(),
            &e.name,
            "report.txt",
            &ArtifactQuery::default(),
        )
        .await
        .unwrap();
    match content {
        ArtifactContent::Text {
            lines, total_lines, ..
        } => {
            assert_eq!(total_lines, 2);
            assert_eq!(lines[1], (2, "line two".to_string()));
        }
        other => panic!("expected text, got {other:?}"),
    }
    let err = app
        .plane
        .read_artifact(
            &app.admin(),
            &app.dev(),
            &e.name,
            "../../assay.db",
            &ArtifactQuery::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::NotFound { .. } | Error::Invalid(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn health_and_metrics_follow_the_history() {
    let app = TestApp::start(1).await;
    let flag = app.path("fail");
    app.create(&shell_workflow(
        "flaky",
        &format!("sleep 0.5; if [ -f '{}' ]; then exit 1; fi", flag.display()),
    ))
    .await;
    let a = app.run("flaky", &[]).await;
    app.finished(a.id).await;
    std::fs::write(&flag, "").unwrap();
    let b = app.run("flaky", &[]).await;
    let b = app.finished(b.id).await;
    assert_eq!(b.status, ExecutionStatus::Failed);

    let list = app
        .plane
        .list_workflows(
            &app.admin(),
            &app.dev(),
            &Default::default(),
            &Default::default(),
        )
        .await
        .unwrap();
    let flaky = &list.items[0];
    let health = flaky.health.clone().unwrap();
    assert_eq!(health.executions, 2);
    assert_eq!(health.pass_rate, 0.5);
    assert_eq!(health.flip_rate, 1.0);
    assert_eq!(health.overall_health, 0.0);
    assert_eq!(flaky.last_execution.as_ref().unwrap().id, b.id);

    let metrics = app
        .plane
        .workflow_metrics(&app.admin(), &app.dev(), "flaky", 0)
        .await
        .unwrap();
    assert_eq!(metrics.executions, 2);
    assert_eq!(metrics.by_status["passed"], 1);
    assert_eq!(metrics.by_status["failed"], 1);
    assert_eq!(metrics.pass_rate, 0.5);
    assert!(metrics.duration.p50_ms >= 500, "{metrics:?}");
    assert!(metrics.duration.p99_ms >= metrics.duration.p50_ms);

    let exec_metrics = app
        .plane
        .execution_metrics(&app.admin(), &app.dev(), &b.name)
        .await
        .unwrap();
    assert_eq!(exec_metrics.execution_id, b.id);
    assert_eq!(exec_metrics.steps.len(), 1, "{exec_metrics:?}");
    assert!(!exec_metrics.steps[0].samples.is_empty());

    let history = app
        .plane
        .resource_history(&app.admin(), &app.dev(), "flaky", 0)
        .await
        .unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].execution_id, b.id);
    assert_eq!(history[0].status, ExecutionStatus::Failed);
    assert!(history[0].memory_max_bytes > 0);
}

#[tokio::test]
async fn shutdown_aborts_running_executions_and_refuses_new_ones() {
    let app = TestApp::start(2).await;
    app.create(&shell_workflow("long", "sleep 60")).await;
    let e = app.run("long", &[]).await;
    app.running(e.id).await;
    app.plane.shutdown().await;
    let done = app.get(e.id).await;
    assert_eq!(done.status, ExecutionStatus::Aborted);
    let err = app
        .plane
        .run_workflow(&app.admin(), &app.dev(), "long", &RunRequest::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn waiting_returns_when_the_execution_finishes_or_the_timeout_passes() {
    let app = TestApp::start(2).await;
    app.create(&shell_workflow("slowish", "sleep 1; echo done"))
        .await;
    let queued = app.run("slowish", &[]).await;

    // A short wait gives up and returns the execution as it is: not finished.
    let early = app
        .plane
        .wait_for_execution(
            &app.admin(),
            &app.dev(),
            "slowish-1",
            Duration::from_millis(100),
        )
        .await
        .unwrap();
    assert!(!early.status.is_terminal(), "{early:?}");

    // A long wait is woken by the final state, long before its timeout.
    let started = std::time::Instant::now();
    let done = app
        .plane
        .wait_for_execution(
            &app.admin(),
            &app.dev(),
            &queued.id.to_string(),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(done.status, ExecutionStatus::Passed, "{done:?}");
    assert!(started.elapsed() < Duration::from_secs(30));

    // Waiting on a finished execution answers at once with its stored state.
    let again = app
        .plane
        .wait_for_execution(
            &app.admin(),
            &app.dev(),
            "slowish-1",
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(again, done);

    let missing = app
        .plane
        .wait_for_execution(&app.admin(), &app.dev(), "nope-1", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(missing, Error::NotFound { .. }), "{missing:?}");
}
