//! The step environment is built from scratch.

use crate::common::*;
use assay_core::execution::ExecutionStatus::*;
use std::collections::BTreeSet;

#[tokio::test]
async fn environment_is_scrubbed_and_declared_variables_are_set() {
    // Cargo sets this in the test process; it must not reach the step.
    assert!(std::env::var("CARGO_MANIFEST_DIR").is_ok());
    let h = Harness::new();
    let mut step = shell("1", "env | sort");
    step.env.insert("FROM_STEP".into(), "step".into());
    step.env.insert("SHARED".into(), "step wins".into());
    let mut p = plan(vec![step, shell("2", "echo \"shared=$SHARED\"")]);
    p.env.insert("FROM_PLAN".into(), "plan".into());
    p.env.insert("SHARED".into(), "plan".into());
    p.env.insert("LANG".into(), "en_US.UTF-8".into());
    let run = h.run(p).await;
    assert_eq!(run.outcome.status, Passed);

    let ws = std::fs::canonicalize(h.workspace(run.id)).unwrap();
    let ws = ws.to_string_lossy();
    let log = h.log_texts(run.id).await;
    let vars: Vec<(String, String)> = log
        .iter()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let names: BTreeSet<&str> = vars
        .iter()
        .map(|(k, _)| k.as_str())
        // Added by the shell itself.
        .filter(|k| !matches!(*k, "PWD" | "SHLVL" | "_" | "OLDPWD" | "shared"))
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "ASSAY_EXECUTION_ID",
            "ASSAY_WORKSPACE",
            "FROM_PLAN",
            "FROM_STEP",
            "HOME",
            "LANG",
            "LC_ALL",
            "PATH",
            "SHARED",
            "TERM",
            "TMPDIR",
        ])
    );
    let get = |k: &str| vars.iter().find(|(n, _)| n == k).unwrap().1.clone();
    assert_eq!(get("ASSAY_EXECUTION_ID"), run.id.to_string());
    assert_eq!(get("ASSAY_WORKSPACE"), ws);
    assert_eq!(get("HOME"), ws);
    assert_eq!(get("TMPDIR"), format!("{ws}/.tmp"));
    assert_eq!(get("TERM"), "dumb");
    assert_eq!(get("LC_ALL"), "C.UTF-8");
    assert_eq!(get("LANG"), "en_US.UTF-8");
    assert_eq!(get("FROM_PLAN"), "plan");
    assert_eq!(get("FROM_STEP"), "step");
    assert_eq!(get("SHARED"), "step wins");
    assert_eq!(log.last().unwrap(), "shared=plan");
}

#[tokio::test]
async fn stdin_is_empty() {
    let h = Harness::new();
    let run = h
        .run(plan(vec![shell(
            "1",
            "if read line; then echo got $line; else echo eof; fi",
        )]))
        .await;
    assert_eq!(run.outcome.status, Passed);
    assert_eq!(h.log_texts(run.id).await, vec!["eof"]);
}

#[tokio::test]
async fn inline_files_are_written_with_their_mode() {
    let h = Harness::new();
    let mut p = plan(vec![shell("1", "./bin/hello.sh; cat conf/app.txt")]);
    p.files = vec![
        assay_core::execution::InlineFile {
            path: "bin/hello.sh".into(),
            content: "#!/bin/sh\necho hello from file\n".into(),
            mode: Some(0o755),
        },
        assay_core::execution::InlineFile {
            path: "conf/app.txt".into(),
            content: "key=value\n".into(),
            mode: None,
        },
    ];
    let run = h.run(p).await;
    assert_eq!(run.outcome.status, Passed);
    assert_eq!(
        h.log_texts(run.id).await,
        vec!["hello from file", "key=value"]
    );

    let mut bad = plan(vec![shell("1", "echo never")]);
    bad.files = vec![assay_core::execution::InlineFile {
        path: "../escape.txt".into(),
        content: "x".into(),
        mode: None,
    }];
    let run = h.run(bad).await;
    assert_eq!(run.outcome.status, Failed);
    assert_eq!(
        run.outcome.error.as_deref(),
        Some("content file: path \"../escape.txt\" must not contain '..'")
    );
    assert_eq!(run.step("1").status, Skipped);
    assert!(!h.dir.path().join("executions").join("escape.txt").exists());
}
