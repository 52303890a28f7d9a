//! End-to-end tests: the real `assay` binary as server and as CLI, real processes, SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e {
    pub mod cli_login;
    pub mod forward_proxy;
    pub mod harness;
    pub mod identity;
    pub mod local_mcp;
    pub mod mcp_sdk;
    pub mod net_proxy;
    pub mod oauth_rmcp;
    pub mod oauth_sdk;
    pub mod oauth_support;
    pub mod server_tls;
    pub mod sso;
}

use e2e::harness::*;
use serde_json::{Value, json};
use std::time::Duration;

const SLEEPER: &str = r#"
kind: TestWorkflow
metadata:
  name: sleeper
spec:
  steps:
    - name: hang
      shell: |
        echo "PGID=$(cut -d' ' -f5 /proc/$$/stat)"
        sleep 300 &
        sleep 300 &
        wait
"#;

const TIMEOUT: &str = r#"
kind: TestWorkflow
metadata:
  name: slow
spec:
  steps:
    - name: too slow
      timeout: 2s
      shell: |
        echo "PGID=$(cut -d' ' -f5 /proc/$$/stat)"
        sleep 300 &
        sleep 300
    - name: never runs
      shell: echo unreachable
"#;

const ECHO_PARAM: &str = r#"
kind: TestWorkflow
metadata:
  name: echo-param
spec:
  config:
    x: {type: string}
  steps:
    - name: echo
      shell: echo "value:" {{config.x}}
"#;

#[test]
fn cli_runs_passing_and_failing_workflows_with_logs_artifacts_and_junit() {
    let server = Server::start();
    let dir = examples_dir();
    let out = server.cli(&["workflow", "apply", "-f", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "apply: {}{}",
        stdout(&out),
        stderr(&out)
    );

    let listed = server.cli_json(&["workflow", "list"]);
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    for expected in ["failing-junit", "parameterised", "smoke", "template-user"] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }

    // Passing: exit code 0, steps passed, logs streamed.
    let out = server.cli(&["run", "smoke", "--watch"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let exec = server.cli_json(&["execution", "get", "smoke-1"]);
    assert_eq!(exec["status"], "passed");
    assert!(
        exec["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "passed")
    );

    // Failing: exit code 1; JUnit summary names the failing case and its message.
    let out = server.cli(&["run", "failing-junit", "--watch"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let exec = server.cli_json(&["execution", "get", "failing-junit-1"]);
    assert_eq!(exec["status"], "failed");
    let junit = &exec["junit"];
    assert_eq!(junit["tests"], 3);
    assert_eq!(junit["failures"], 1);
    let case = &junit["failed_cases"][0];
    assert!(!case["name"].as_str().unwrap().is_empty());
    assert!(!case["message"].as_str().unwrap().is_empty());
    let watched = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        watched.contains(case["name"].as_str().unwrap()),
        "--watch output names the failing case: {watched}"
    );

    let artifacts = server.cli_json(&["artifact", "list", "failing-junit-1"]);
    let paths: Vec<&str> = artifacts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"reports/junit.xml"), "{paths:?}");
    let out = server.cli(&["artifact", "get", "failing-junit-1", "reports/junit.xml"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("<testsuite"), "{}", stdout(&out));

    let logs = server.cli(&["execution", "logs", "failing-junit-1"]);
    assert!(logs.status.success());
    assert!(!stdout(&logs).trim().is_empty());

    // Listing by workflow and status.
    let failed = server.cli_json(&["execution", "list", "--status", "failed"]);
    assert_eq!(failed["total"], 1);
    assert_eq!(failed["items"][0]["name"], "failing-junit-1");
}

#[test]
fn rest_runs_passing_and_failing_workflows() {
    let server = Server::start();
    let http = server.http();
    let passing = "kind: TestWorkflow\nmetadata: {name: ok}\nspec:\n  steps:\n    - name: hello\n      shell: echo hello-from-assay\n";
    let failing = "kind: TestWorkflow\nmetadata: {name: bad}\nspec:\n  steps:\n    - name: boom\n      shell: echo about-to-fail; exit 3\n    - name: skipped\n      shell: echo never\n";
    for doc in [passing, failing] {
        let resp = http.post_yaml(&server.api("/workflows"), doc);
        assert_eq!(resp.status(), 201, "{}", resp.text().unwrap());
    }
    let run = |name: &str| -> Value {
        let resp = http.post_json(
            &server.api(&format!("/workflows/{name}/executions")),
            &json!({}),
        );
        assert_eq!(resp.status(), 201);
        let exec: Value = resp.json().unwrap();
        server.wait_finished(exec["id"].as_str().unwrap())
    };
    let ok = run("ok");
    assert_eq!(ok["status"], "passed");
    assert_eq!(ok["name"], "ok-1");
    let logs = http.get_json(&server.api("/executions/ok-1/logs"));
    assert!(log_text(&logs).contains("hello-from-assay"));

    let bad = run("bad");
    assert_eq!(bad["status"], "failed");
    let steps = bad["steps"].as_array().unwrap();
    assert_eq!(steps[0]["status"], "failed");
    assert_eq!(steps[0]["exit_code"], 3);
    assert_eq!(steps[1]["status"], "skipped");
}

#[test]
fn abort_and_timeout_leave_no_stray_processes() {
    let server = Server::start();
    let http = server.http();
    for doc in [SLEEPER, TIMEOUT] {
        assert_eq!(http.post_yaml(&server.api("/workflows"), doc).status(), 201);
    }

    // Abort through the CLI.
    let out = server.cli_json(&["run", "sleeper"]);
    let name = out["name"].as_str().unwrap().to_string();
    let log = server.wait_log(&name, "PGID=");
    let pgid = pgid_from_log(&log);
    assert!(
        !processes_in_group(pgid).is_empty(),
        "the step's processes run"
    );
    let aborted = server.cli_json(&["execution", "abort", &name]);
    assert_eq!(aborted["status"], "aborted");
    assert_eq!(
        wait_group_gone(pgid, Duration::from_secs(10)),
        Vec::<i32>::new()
    );

    // Step timeout.
    let resp = http.post_json(&server.api("/workflows/slow/executions"), &json!({}));
    let exec: Value = resp.json().unwrap();
    let id = exec["id"].as_str().unwrap().to_string();
    let log = server.wait_log(&id, "PGID=");
    let pgid = pgid_from_log(&log);
    let done = server.wait_finished(&id);
    assert_eq!(done["steps"][0]["status"], "timeout");
    assert_eq!(done["steps"][1]["status"], "skipped");
    assert!(
        matches!(done["status"].as_str(), Some("timeout" | "failed")),
        "{done}"
    );
    assert_eq!(
        wait_group_gone(pgid, Duration::from_secs(10)),
        Vec::<i32>::new()
    );
}

#[test]
fn kill_dash_nine_during_a_run_is_recovered_at_restart() {
    let mut server = Server::start();
    let http = server.http();
    assert_eq!(
        http.post_yaml(&server.api("/workflows"), SLEEPER).status(),
        201
    );
    assert_eq!(
        http.post_yaml(&server.api("/workflows"), ECHO_PARAM)
            .status(),
        201
    );

    // Something finished before the crash must survive it untouched.
    let before = server.cli_json(&["run", "echo-param", "--config", "x=before"]);
    let before_done = server.wait_finished(before["id"].as_str().unwrap());
    assert_eq!(before_done["status"], "passed");

    let running = server.cli_json(&["run", "sleeper"]);
    let name = running["name"].as_str().unwrap().to_string();
    let log = server.wait_log(&name, "PGID=");
    let pgid = pgid_from_log(&log);

    server.kill9();
    assert!(
        !processes_in_group(pgid).is_empty(),
        "the step's processes outlive a kill -9 of the server"
    );

    let server = server.restart();
    // Recovery stops the orphans that the dead server left behind.
    assert_eq!(
        wait_group_gone(pgid, Duration::from_secs(10)),
        Vec::<i32>::new()
    );
    let http = server.http();
    let recovered = http.get_json(&server.api(&format!("/executions/{name}")));
    assert_eq!(recovered["status"], "aborted", "{recovered}");
    let reason = recovered["error"].as_str().unwrap_or_default();
    assert!(reason.contains("server stopped"), "reason: {reason}");

    let after =
        http.get_json(&server.api(&format!("/executions/{}", before["id"].as_str().unwrap())));
    assert_eq!(
        after, before_done,
        "a finished execution is unchanged by the crash"
    );
    assert!(
        log_text(&http.get_json(&server.api("/executions/echo-param-1/logs")))
            .contains("value: before")
    );

    // The server keeps working, and numbering continues.
    let next = server.cli_json(&["run", "echo-param", "--config", "x=after"]);
    assert_eq!(next["name"], "echo-param-2");
    assert_eq!(server.wait_finished("echo-param-2")["status"], "passed");
}

#[test]
fn shell_metacharacters_in_config_are_data_not_code() {
    let server = Server::start();
    let http = server.http();
    assert_eq!(
        http.post_yaml(&server.api("/workflows"), ECHO_PARAM)
            .status(),
        201
    );
    let canary = server.data_dir.join("CANARY");
    let canary = canary.to_str().unwrap();
    let hostile = [
        format!("$(touch {canary})"),
        format!("`touch {canary}`"),
        format!("; touch {canary}"),
        format!("' ; touch {canary}; echo '"),
        format!("\" && touch {canary} && echo \""),
        format!("x\ntouch {canary}"),
        format!("| touch {canary}"),
    ];
    for value in &hostile {
        let exec = server.cli_json(&["run", "echo-param", "--config", &format!("x={value}")]);
        let done = server.wait_finished(exec["id"].as_str().unwrap());
        assert_eq!(done["status"], "passed", "{value}: {done}");
        let logs = http.get_json(&server.api(&format!(
            "/executions/{}/logs",
            exec["id"].as_str().unwrap()
        )));
        let first_line = value.lines().next().unwrap();
        assert!(
            log_text(&logs).contains(first_line),
            "the value is printed literally: {value:?}\n{}",
            log_text(&logs)
        );
    }
    assert!(
        !std::path::Path::new(canary).exists(),
        "a config value was executed"
    );
}

#[test]
fn git_content_from_a_local_bare_repository() {
    let server = Server::start();
    let scratch = tempfile::tempdir().unwrap();
    let bare = scratch.path().join("tests.git");
    let work = scratch.path().join("work");
    let git = |args: &[&str], cwd: &std::path::Path| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(cwd)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(
        &["init", "--bare", "-b", "main", bare.to_str().unwrap()],
        scratch.path(),
    );
    git(
        &["init", "-b", "main", work.to_str().unwrap()],
        scratch.path(),
    );
    std::fs::create_dir_all(work.join("tests")).unwrap();
    std::fs::write(
        work.join("tests/run.sh"),
        "#!/bin/sh\necho from-the-repo-ok\n",
    )
    .unwrap();
    git(&["add", "."], &work);
    git(&["commit", "-m", "tests"], &work);
    git(&["push", bare.to_str().unwrap(), "main"], &work);

    let dir = examples_dir();
    let out = server.cli(&[
        "workflow",
        "apply",
        "-f",
        dir.join("git-content.yaml").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let repo = format!("repo=file://{}", bare.display());
    let out = server.cli(&["run", "git-content", "--config", &repo, "--watch"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn a_public_url_that_cannot_name_the_server_is_refused_without_echoing_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .args(["server", "--listen", "127.0.0.1:0", "--public-url"])
        .arg("https://admin:hunter2@assay.example.com/")
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    // 2: the command could not do its job (1 is reserved for a failed test run).
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "--public-url: the public URL must not contain a user name or password; pass e.g. https://assay.example.com"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
