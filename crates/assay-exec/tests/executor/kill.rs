//! Timeouts and cancellation end whole process trees.

use crate::common::*;
use assay_core::execution::ExecutionStatus::*;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Starts two background sleeps and records `$$` (the group leader) and their pids.
const TREE: &str = "echo $$ > pids; sleep 300 & echo $! >> pids; sleep 300 & echo $! >> pids; wait";

fn assert_tree_gone(pids: &[String]) {
    let pids: Vec<i32> = pids.iter().map(|p| p.trim().parse().unwrap()).collect();
    assert_eq!(pids.len(), 3, "{pids:?}");
    assert_eq!(live_group_members(pids[0]), Vec::<i32>::new());
    for pid in &pids {
        assert!(!alive(*pid), "process {pid} survived");
    }
}

#[tokio::test]
async fn step_timeout_kills_the_whole_process_group() {
    let h = Harness::new();
    let mut slow = shell("1", TREE);
    slow.timeout = Some(secs(1.0));
    let started = Instant::now();
    let run = h.run(plan(vec![slow, shell("2", "echo never")])).await;

    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(run.outcome.status, Failed);
    let s1 = run.step("1");
    assert_eq!((s1.status, s1.exit_code), (Timeout, None));
    assert_eq!(s1.error.as_deref(), Some("timed out after 1s"));
    assert_eq!(
        run.outcome.error.as_deref(),
        Some("step 1 (\"step 1\") timed out: timed out after 1s")
    );
    assert_eq!(run.step("2").status, Skipped);
    let pids = std::fs::read_to_string(h.workspace(run.id).join("pids")).unwrap();
    assert_tree_gone(&pids.lines().map(str::to_string).collect::<Vec<_>>());
}

#[tokio::test]
async fn processes_ignoring_sigterm_are_killed() {
    let h = Harness::new();
    // The ignored disposition is inherited by the background sleeps too.
    let mut stubborn = shell("1", &format!("trap '' TERM; {TREE}"));
    stubborn.timeout = Some(secs(0.5));
    let started = Instant::now();
    let run = h.run(plan(vec![stubborn])).await;
    // SIGTERM is ignored, so the group only ends with SIGKILL after the grace period.
    assert!(
        started.elapsed() >= Duration::from_millis(2400),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(run.step("1").status, Timeout);
    let pids = std::fs::read_to_string(h.workspace(run.id).join("pids")).unwrap();
    assert_tree_gone(&pids.lines().map(str::to_string).collect::<Vec<_>>());
}

#[tokio::test]
async fn background_processes_do_not_outlive_their_step() {
    let h = Harness::new();
    let run = h
        .run(plan(vec![shell(
            "1",
            "echo $$ > pids; sleep 300 & echo $! >> pids; sleep 300 & echo $! >> pids; echo done",
        )]))
        .await;
    assert_eq!(run.outcome.status, Passed);
    let pids = std::fs::read_to_string(h.workspace(run.id).join("pids")).unwrap();
    assert_tree_gone(&pids.lines().map(str::to_string).collect::<Vec<_>>());
}

#[tokio::test]
async fn abort_kills_the_running_step_and_skips_the_rest() {
    let h = Harness::new();
    let mut p = plan(vec![shell("1", TREE), shell("2", "echo never")]);
    p.after = vec![shell("after.1", "echo never either")];
    let cancel = CancellationToken::new();
    let id = uuid::Uuid::new_v4();
    let recorder = std::sync::Arc::new(Recorder::default());
    let executor = h.executor.clone();
    let task = {
        let (cancel, recorder) = (cancel.clone(), recorder.clone());
        tokio::spawn(async move {
            assay_core::ports::Executor::execute(&*executor, job(id, p), recorder, cancel).await
        })
    };
    let pids = wait_for_lines(&h.workspace(id).join("pids"), 3).await;
    assert_eq!(h.executor.runner().running, 1);
    cancel.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .unwrap()
        .unwrap();

    assert_eq!(outcome.status, Aborted);
    assert_eq!(outcome.error.as_deref(), Some("aborted"));
    let status = |r: &str| {
        outcome
            .steps
            .iter()
            .find(|s| s.reference == r)
            .unwrap()
            .clone()
    };
    assert_eq!(status("1").status, Aborted);
    assert_eq!(status("1").error.as_deref(), Some("aborted"));
    assert_eq!(status("2").status, Skipped);
    assert_eq!(status("after.1").status, Skipped);
    assert_eq!(
        status("after.1").error.as_deref(),
        Some("not run: the execution was aborted")
    );
    assert_tree_gone(&pids);
    assert_eq!(h.executor.runner().running, 0);
}

#[tokio::test]
async fn execution_timeout_stops_steps_but_runs_after_steps() {
    let h = Harness::new();
    let mut p = plan(vec![shell("1", TREE), shell("2", "echo never")]);
    p.after = vec![shell("after.1", "echo cleanup")];
    p.timeout = Some(secs(1.0));
    let started = Instant::now();
    let run = h.run(p).await;

    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(run.outcome.status, Timeout);
    assert_eq!(
        run.outcome.error.as_deref(),
        Some("execution timed out after 1s")
    );
    let s1 = run.step("1");
    assert_eq!(s1.status, Timeout);
    assert_eq!(
        s1.error.as_deref(),
        Some("timed out: the execution exceeded 1s")
    );
    assert_eq!(run.step("2").status, Skipped);
    assert_eq!(
        run.step("2").error.as_deref(),
        Some("not run: the execution timed out")
    );
    assert_eq!(run.step("after.1").status, Passed);
    assert_eq!(h.log_texts(run.id).await, vec!["cleanup"]);
    let pids = std::fs::read_to_string(h.workspace(run.id).join("pids")).unwrap();
    assert_tree_gone(&pids.lines().map(str::to_string).collect::<Vec<_>>());
}

#[tokio::test]
async fn group_timeout_bounds_its_children() {
    let h = Harness::new();
    let mut g = group(
        "1",
        vec![shell("1.1", "sleep 300"), shell("1.2", "echo never")],
    );
    g.timeout = Some(secs(0.5));
    let run = h.run(plan(vec![g])).await;
    assert_eq!(run.step("1").status, Timeout);
    assert_eq!(run.step("1.1").status, Timeout);
    assert_eq!(
        run.step("1.1").error.as_deref(),
        Some("timed out: group 1 exceeded 0.5s")
    );
    assert_eq!(run.step("1.2").status, Skipped);
    assert_eq!(run.outcome.status, Failed);
}
