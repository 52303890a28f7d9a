//! Workspace retention with an injected clock.

use crate::harness::*;
use assay_core::execution::{ExecutionStatus, LogQuery};
use assay_core::ports::{ControlPlane, ExecutionFiles};
use std::time::Duration;

#[tokio::test]
async fn old_workspaces_are_removed_except_running_ones_and_logs_stay() {
    let app = TestApp::start_with(assay_control::ControlPlaneConfig {
        concurrency: 2,
        workspace_retention: Duration::from_secs(3600),
        retention_interval: Duration::from_millis(50),
        ..assay_control::ControlPlaneConfig::default()
    })
    .await;
    let release = app.path("release");
    app.create(&shell_workflow(
        "done",
        "echo finished > out.txt; echo finished",
    ))
    .await;
    app.create(&shell_workflow("busy", &wait_for_file(&release)))
        .await;

    let finished = app.run("done", &[]).await;
    assert_eq!(
        app.finished(finished.id).await.status,
        ExecutionStatus::Passed
    );
    let busy = app.run("busy", &[]).await;
    app.running(busy.id).await;

    let ids = |list: Vec<(uuid::Uuid, assay_core::Timestamp)>| {
        list.into_iter().map(|(id, _)| id).collect::<Vec<_>>()
    };
    let listed = ids(app.files.workspaces().await.unwrap());
    assert!(
        listed.contains(&finished.id) && listed.contains(&busy.id),
        "{listed:?}"
    );

    // Several sweeps at the real time: nothing is old yet.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(ids(app.files.workspaces().await.unwrap()).contains(&finished.id));

    app.clock.advance(Duration::from_secs(2 * 3600));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let listed = ids(app.files.workspaces().await.unwrap());
        if !listed.contains(&finished.id) {
            assert!(
                listed.contains(&busy.id),
                "a running execution lost its workspace"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "workspace was not removed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs = app
        .plane
        .execution_logs(
            &app.admin(),
            &app.dev(),
            &finished.name,
            &LogQuery::default(),
        )
        .await
        .unwrap();
    assert!(logs.lines.iter().any(|l| l.text == "finished"));

    std::fs::write(&release, "go").unwrap();
    assert_eq!(app.finished(busy.id).await.status, ExecutionStatus::Passed);
}
