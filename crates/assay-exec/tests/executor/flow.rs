//! Step ordering, statuses, conditions, groups, optional/negative steps, retries.

use crate::common::*;
use assay_core::execution::{ExecutionStatus::*, StepCondition};
use assay_core::ports::Executor;

#[tokio::test]
async fn passing_plan_runs_setup_steps_and_after_in_order() {
    let h = Harness::new();
    let mut p = plan(vec![
        shell("1", "echo main >> order"),
        shell("2", "echo two >> order"),
    ]);
    p.setup = vec![shell("setup.1", "echo setup > order")];
    p.after = vec![shell("after.1", "echo after >> order")];
    let run = h.run(p).await;

    assert_eq!(run.outcome.status, Passed);
    assert_eq!(run.outcome.error, None);
    assert_eq!(
        run.statuses(),
        vec![
            ("setup.1".into(), Passed),
            ("1".into(), Passed),
            ("2".into(), Passed),
            ("after.1".into(), Passed)
        ]
    );
    let order = std::fs::read_to_string(h.workspace(run.id).join("order")).unwrap();
    assert_eq!(order, "setup\nmain\ntwo\nafter\n");
    for s in &run.outcome.steps {
        assert_eq!(s.exit_code, Some(0));
        assert_eq!(s.attempts, 1);
        assert!(s.started_at.unwrap() <= s.finished_at.unwrap());
    }
    // First report: everything queued; each step reported running, then passed.
    let snapshots = run.recorder.snapshots.lock().unwrap().clone();
    assert!(snapshots[0].iter().all(|s| s.status == Queued));
    for (i, reference) in ["setup.1", "1", "2", "after.1"].iter().enumerate() {
        let seen: Vec<_> = snapshots.iter().map(|snap| snap[i].status).collect();
        let running = seen.iter().position(|s| *s == Running).unwrap();
        let passed = seen.iter().position(|s| *s == Passed).unwrap();
        assert!(running < passed, "step {reference}: {seen:?}");
    }
    assert_eq!(snapshots.last().unwrap(), &run.outcome.steps);
}

#[tokio::test]
async fn failing_step_reports_its_exit_code_and_skips_later_steps() {
    let h = Harness::new();
    let mut p = plan(vec![
        shell("1", "echo before; exit 3"),
        shell("2", "echo never"),
    ]);
    p.after = vec![shell("after.1", "echo cleanup")];
    let run = h.run(p).await;

    assert_eq!(run.outcome.status, Failed);
    assert_eq!(
        run.outcome.error.as_deref(),
        Some("step 1 (\"step 1\") failed: exit code 3")
    );
    let s1 = run.step("1");
    assert_eq!((s1.status, s1.exit_code), (Failed, Some(3)));
    assert_eq!(s1.error.as_deref(), Some("exit code 3"));
    let s2 = run.step("2");
    assert_eq!((s2.status, s2.started_at, s2.attempts), (Skipped, None, 0));
    assert_eq!(run.step("after.1").status, Passed);
    assert_eq!(h.log_texts(run.id).await, vec!["before", "cleanup"]);
}

#[tokio::test]
async fn conditions_failed_and_always() {
    let h = Harness::new();
    let with = |reference: &str, condition| {
        let mut s = shell(reference, &format!("echo ran {reference}"));
        s.condition = condition;
        s
    };
    let run = h
        .run(plan(vec![
            with("1", StepCondition::Failed),
            shell("2", "exit 1"),
            with("3", StepCondition::Passed),
            with("4", StepCondition::Failed),
            with("5", StepCondition::Always),
        ]))
        .await;
    assert_eq!(run.outcome.status, Failed);
    assert_eq!(
        run.statuses(),
        vec![
            ("1".into(), Skipped),
            ("2".into(), Failed),
            ("3".into(), Skipped),
            ("4".into(), Passed),
            ("5".into(), Passed)
        ]
    );
    assert_eq!(h.log_texts(run.id).await, vec!["ran 4", "ran 5"]);
}

#[tokio::test]
async fn optional_failure_does_not_fail_the_execution() {
    let h = Harness::new();
    let mut optional = shell("1", "exit 7");
    optional.optional = true;
    let run = h
        .run(plan(vec![optional, shell("2", "echo still runs")]))
        .await;
    assert_eq!(run.outcome.status, Passed);
    let s1 = run.step("1");
    assert_eq!(
        (s1.status, s1.exit_code, s1.optional),
        (Failed, Some(7), true)
    );
    assert_eq!(run.step("2").status, Passed);
}

#[tokio::test]
async fn negative_steps_invert_the_exit_code() {
    let h = Harness::new();
    let mut expect_failure = shell("1", "exit 4");
    expect_failure.negative = true;
    let mut wrongly_passes = shell("2", "true");
    wrongly_passes.negative = true;
    let run = h.run(plan(vec![expect_failure, wrongly_passes])).await;
    let s1 = run.step("1");
    assert_eq!(
        (s1.status, s1.exit_code, s1.error.clone()),
        (Passed, Some(4), None)
    );
    let s2 = run.step("2");
    assert_eq!((s2.status, s2.exit_code), (Failed, Some(0)));
    assert!(s2.error.as_deref().unwrap().contains("negative"));
    assert_eq!(run.outcome.status, Failed);
}

#[tokio::test]
async fn retries_rerun_a_failing_step() {
    let h = Harness::new();
    // Fails on the first attempt, passes on the second.
    let mut flaky = shell(
        "1",
        "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo attempt $n; [ $n -ge 2 ]",
    );
    flaky.retries = 3;
    let mut hopeless = shell("2", "echo nope; exit 2");
    hopeless.retries = 2;
    hopeless.optional = true;
    let run = h.run(plan(vec![flaky, hopeless])).await;

    let s1 = run.step("1");
    assert_eq!(
        (s1.status, s1.attempts, s1.exit_code, s1.error.clone()),
        (Passed, 2, Some(0), None)
    );
    let s2 = run.step("2");
    assert_eq!((s2.status, s2.attempts, s2.exit_code), (Failed, 3, Some(2)));
    assert_eq!(run.outcome.status, Passed);
    let count = std::fs::read_to_string(h.workspace(run.id).join("count")).unwrap();
    assert_eq!(count.trim(), "2");
    let log = h.log_texts(run.id).await;
    assert_eq!(log[0], "attempt 1");
    assert_eq!(
        log[1],
        "assay: attempt 1 of 4 failed (exit code 1); retrying"
    );
    assert_eq!(log[2], "attempt 2");
    assert_eq!(log.iter().filter(|l| *l == "nope").count(), 3);
}

#[tokio::test]
async fn groups_fail_when_a_child_fails() {
    let h = Harness::new();
    let mut optional_group = group(
        "2",
        vec![shell("2.1", "exit 1"), shell("2.2", "echo skipped")],
    );
    optional_group.optional = true;
    let run = h
        .run(plan(vec![
            group("1", vec![shell("1.1", "echo a"), shell("1.2", "echo b")]),
            optional_group,
            group("3", vec![shell("3.1", "exit 5"), shell("3.2", "echo no")]),
            shell("4", "echo no"),
        ]))
        .await;
    assert_eq!(
        run.statuses(),
        vec![
            ("1".into(), Passed),
            ("1.1".into(), Passed),
            ("1.2".into(), Passed),
            ("2".into(), Failed),
            ("2.1".into(), Failed),
            ("2.2".into(), Skipped),
            ("3".into(), Failed),
            ("3.1".into(), Failed),
            ("3.2".into(), Skipped),
            ("4".into(), Skipped),
        ]
    );
    assert_eq!(run.outcome.status, Failed);
    assert_eq!(
        run.outcome.error.as_deref(),
        Some("step 3.1 (\"step 3.1\") failed: exit code 5")
    );
}

#[tokio::test]
async fn working_directories_stay_inside_the_workspace() {
    let h = Harness::new();
    let mut inside = shell("1", "pwd");
    inside.working_dir = Some("sub/dir".into());
    let mut outside = shell("2", "pwd");
    outside.working_dir = Some("/etc".into());
    outside.optional = true;
    let mut climbing = shell("3", "pwd");
    climbing.working_dir = Some("../..".into());
    climbing.optional = true;
    let run = h.run(plan(vec![inside, outside, climbing])).await;

    assert_eq!(run.step("1").status, Passed);
    let ws = std::fs::canonicalize(h.workspace(run.id)).unwrap();
    let s2 = run.step("2");
    assert_eq!(s2.status, Failed);
    assert_eq!(
        s2.error.as_deref(),
        Some("working directory \"/etc\" is outside the workspace")
    );
    assert_eq!(run.step("3").status, Failed);
    assert!(run.step("3").error.as_deref().unwrap().contains("'..'"));
    let log = h.log_texts(run.id).await;
    assert_eq!(log[0], ws.join("sub/dir").to_string_lossy());
}

#[tokio::test]
async fn unstartable_commands_fail_the_step() {
    let h = Harness::new();
    let mut exec = shell("1", "");
    exec.command = Some(assay_core::execution::StepCommand::Exec {
        command: vec!["/nonexistent/program".into()],
    });
    let run = h.run(plan(vec![exec])).await;
    let s1 = run.step("1");
    assert_eq!((s1.status, s1.exit_code), (Failed, None));
    assert!(
        s1.error
            .as_deref()
            .unwrap()
            .starts_with("cannot start \"/nonexistent/program\""),
        "{:?}",
        s1.error
    );
}

#[tokio::test]
async fn runner_info_describes_the_local_runner() {
    let h = Harness::with(|c| c.concurrency = 3);
    let info = h.executor.runner();
    assert_eq!(info.id, "local");
    assert_eq!(info.kind, "local");
    assert_eq!(
        info.capabilities,
        vec!["runner", "logs", "artifacts", "junit", "metrics"]
    );
    assert_eq!((info.concurrency, info.running, info.queued), (3, 0, 0));
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
}
