//! The official TypeScript MCP SDK (`@modelcontextprotocol/sdk`, pinned by
//! `scripts/node-tools`) drives the real `assay server` over Streamable HTTP and over the
//! legacy HTTP+SSE transport, with a member API token: list tools, create a workflow, run
//! it, wait, read its log and its JUnit artifact, get the execution. Then the audit export
//! must show those calls, attributed to the token and to the SDK client by name.
//!
//! Needs Node 22 and the SDK: `ASSAY_TEST_NODE` (the node binary) and
//! `ASSAY_TEST_NODE_MODULES` (the node_modules holding the SDK). `scripts/test` sets both;
//! without them these tests say SKIPPED on stderr and return.

use super::harness::*;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The client script, run by node from a scratch directory (see [`run_client`]).
const CLIENT_SCRIPT: &str = "mcp-sdk-client.mjs";
/// What the script calls itself in `initialize`; the audit trail must name it.
const CLIENT_LABEL: &str = "assay-sdk-e2e/1.32.2";
const TOKEN_NAME: &str = "sdk-e2e";
/// The line the workflow's step prints, looked for in the log the SDK fetched.
const LOG_LINE: &str = "sdk-e2e: 3 tests, 1 failure";
const FAILING_CASE: &str = "divides by zero";
const ASSERTION: &str = "expected DivisionByZero, got 0";

/// One step that prints [`LOG_LINE`], writes a JUnit report with one failing case and
/// fails; the report is declared as an artifact.
fn workflow(name: &str) -> String {
    format!(
        r#"kind: TestWorkflow
metadata:
  name: {name}
spec:
  steps:
    - name: unit tests
      shell: |
        mkdir -p reports
        cat > reports/junit.xml <<'EOF'
        <?xml version="1.0" encoding="UTF-8"?>
        <testsuite name="calculator" tests="2" failures="1" errors="0" skipped="0">
          <testcase classname="calculator.Arithmetic" name="adds two numbers"/>
          <testcase classname="calculator.Arithmetic" name="{FAILING_CASE}">
            <failure message="{ASSERTION}" type="AssertionError">divide(1, 0) returned 0</failure>
          </testcase>
        </testsuite>
        EOF
        echo "{LOG_LINE}"
        exit 1
      artifacts:
        paths:
          - "reports/*.xml"
"#
    )
}

/// Node and the SDK's node_modules, or `None` (after saying SKIPPED) when not configured.
pub(super) fn node_tools(test: &str) -> Option<(PathBuf, PathBuf)> {
    let Some(node) = std::env::var_os("ASSAY_TEST_NODE") else {
        // Straight to stderr, not through the test harness's capture: a skip must be seen.
        // One write, so parallel tests do not interleave the line.
        let line = format!("\n{test}: SKIPPED: set ASSAY_TEST_NODE (scripts/test does)\n");
        let _ = std::io::stderr().write_all(line.as_bytes());
        return None;
    };
    let modules = std::env::var_os("ASSAY_TEST_NODE_MODULES")
        .map(PathBuf::from)
        .expect("ASSAY_TEST_NODE is set, so ASSAY_TEST_NODE_MODULES must be too");
    assert!(
        modules
            .join("@modelcontextprotocol/sdk/package.json")
            .is_file(),
        "no @modelcontextprotocol/sdk under {} (run scripts/node-tools)",
        modules.display()
    );
    Some((PathBuf::from(node), modules))
}

/// `assay token create` as the admin: a member token with `write` (which includes `run`)
/// on dev. Returns (token id, secret).
fn member_token(server: &Server) -> (String, String) {
    let created = server.cli_json(&[
        "token",
        "create",
        "--name",
        TOKEN_NAME,
        "--kind",
        "member",
        "--env",
        "dev=write",
        "--expires",
        "1d",
    ]);
    let id = created["token"]["id"]
        .as_str()
        .expect("token id")
        .to_owned();
    let secret = created["secret"].as_str().expect("secret").to_owned();
    (id, secret)
}

/// Runs the client script with `node` over `transport` (`http` or `sse`), the token in
/// the environment and the workflow on stdin; returns what it printed, parsed.
///
/// An ES module resolves bare imports from the directories above the importing file (not
/// NODE_PATH, not the working directory), so a copy of the script runs from a scratch
/// directory whose `node_modules` is a link to the SDK's.
fn run_client(
    node: &Path,
    modules: &Path,
    url: &str,
    transport: &str,
    token: &str,
    yaml: &str,
) -> Value {
    let scratch = tempfile::tempdir().expect("tempdir");
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e")
        .join(CLIENT_SCRIPT);
    std::fs::copy(&source, scratch.path().join(CLIENT_SCRIPT)).expect("copy the client script");
    std::os::unix::fs::symlink(modules, scratch.path().join("node_modules"))
        .expect("link node_modules");

    let mut child = Command::new(node)
        .arg(CLIENT_SCRIPT)
        .args([url, transport])
        .current_dir(scratch.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ASSAY_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(yaml.as_bytes())
        .expect("write the workflow to the client");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    // A hang guard, not a timing assertion: the run itself takes seconds.
    let out: Output = match rx.recv_timeout(Duration::from_secs(300)) {
        Ok(out) => out.expect("node output"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("the SDK client over {transport} did not finish within 5 minutes");
        }
    };
    assert!(
        out.status.success(),
        "the SDK client over {transport} failed ({:?}):\nstderr: {}\nstdout: {}",
        out.status.code(),
        stderr(&out),
        stdout(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "the SDK client printed no JSON ({e}): {}\nstderr: {}",
            stdout(&out),
            stderr(&out)
        )
    })
}

/// The whole scenario over one transport.
fn sdk_scenario(test: &str, transport: &str) {
    let Some((node, modules)) = node_tools(test) else {
        return;
    };
    let server = Server::start();
    let (token_id, token) = member_token(&server);
    let url = format!("{}/organizations/default/environments/dev/mcp", server.url);
    let name = format!("sdk-{transport}-junit");
    let seen = run_client(&node, &modules, &url, transport, &token, &workflow(&name));

    assert_eq!(seen["server"], "assay", "{seen}");
    assert_eq!(seen["client"], CLIENT_LABEL, "{seen}");
    // A `write` grant on the environment sees every tool, in the catalog's order.
    assert_eq!(
        seen["tools"],
        serde_json::json!(assay_mcp::tool_names()),
        "{seen}"
    );

    // The workflow fails on purpose; the SDK saw it finish, fail, and why.
    assert_eq!(seen["workflow"], name.as_str(), "{seen}");
    let execution_name = format!("{name}-1");
    assert_eq!(seen["execution"]["name"], execution_name.as_str(), "{seen}");
    let execution_id = seen["execution"]["id"].as_str().expect("execution id");
    assert_eq!(seen["allFinished"], true, "{seen}");
    assert_eq!(
        seen["waitedStatus"],
        serde_json::json!(["failed"]),
        "{seen}"
    );
    assert_eq!(seen["status"], "failed", "{seen}");
    assert_eq!(seen["junit"]["tests"], 2, "{seen}");
    assert_eq!(seen["junit"]["failures"], 1, "{seen}");
    let digest = &seen["digest"];
    assert_eq!(digest["failedSteps"][0]["name"], "unit tests", "{digest}");
    let cases = digest["junitFailures"].as_array().expect("junitFailures");
    assert_eq!(cases.len(), 1, "{digest}");
    assert_eq!(cases[0]["name"], FAILING_CASE, "{digest}");
    assert_eq!(cases[0]["classname"], "calculator.Arithmetic", "{digest}");
    assert_eq!(cases[0]["kind"], "failure", "{digest}");
    assert_eq!(cases[0]["message"], ASSERTION, "{digest}");

    let log = seen["log"].as_str().expect("log");
    assert!(
        log.lines().any(|l| l == LOG_LINE),
        "the log names the known line:\n{log}"
    );
    assert_eq!(
        seen["artifacts"],
        serde_json::json!(["reports/junit.xml"]),
        "{seen}"
    );
    assert_eq!(seen["artifact"]["path"], "reports/junit.xml", "{seen}");
    let report = seen["artifact"]["text"].as_str().expect("artifact text");
    assert!(
        report.contains(&format!(
            r#"<testcase classname="calculator.Arithmetic" name="{FAILING_CASE}">"#
        )) && report.contains(&format!(r#"<failure message="{ASSERTION}""#)),
        "read_artifact returns the JUnit report with the failing case:\n{report}"
    );

    // The audit trail: every call the SDK made is there, as this token, by this client.
    let out = server.cli(&["audit", "export", "--format", "jsonl"]);
    assert!(out.status.success(), "audit export: {}", stderr(&out));
    let events: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line ({e}): {l}")))
        .collect();
    let mine: Vec<&Value> = events
        .iter()
        .filter(|e| e["actor"]["credential_id"] == token_id.as_str())
        .collect();
    let execution = format!("execution:{execution_id}");
    let workflow_resource = format!("workflow:{name}");
    for (action, resource) in [
        ("workflow.create", workflow_resource.as_str()),
        ("workflow.run", workflow_resource.as_str()),
        ("execution.wait", execution.as_str()),
        ("execution.logs.read", execution.as_str()),
        ("artifact.list", execution.as_str()),
        ("artifact.read", execution.as_str()),
        ("execution.get", execution.as_str()),
    ] {
        assert!(
            mine.iter().any(|e| e["action"] == action
                && e["resources"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|x| x == resource))),
            "no {action} on {resource} by the token in the audit log:\n{mine:#?}"
        );
    }
    for e in &mine {
        assert_eq!(e["outcome"], "success", "{e}");
        assert_eq!(e["actor"]["name"], TOKEN_NAME, "{e}");
        assert_eq!(e["actor"]["kind"], "api_token", "{e}");
        assert_eq!(e["client"]["ip"], "127.0.0.1", "{e}");
        assert_eq!(
            e["client"]["mcp_client"], CLIENT_LABEL,
            "every MCP call names the SDK client ({transport}): {e}"
        );
    }
}

#[test]
fn typescript_sdk_over_streamable_http() {
    sdk_scenario("typescript_sdk_over_streamable_http", "http");
}

#[test]
fn typescript_sdk_over_legacy_sse() {
    sdk_scenario("typescript_sdk_over_legacy_sse", "sse");
}
