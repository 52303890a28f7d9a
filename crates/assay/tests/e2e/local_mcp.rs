//! `assay mcp serve`, the local MCP server next to an AI tool, end to end: the official
//! TypeScript SDK's `StdioClientTransport` spawns it as Claude Desktop or Cursor would
//! (mcp-stdio-client.mjs), after `assay login` on the same config directory. Tool calls
//! must succeed as the logged-in user and appear in the server's audit trail as that user
//! with the CLI login method; with a five-second access-token lifetime a session of more
//! than a minute must not notice expiry — neither with the default proactive refresh
//! nor when the client does not know the expiry and the server refuses the token (then
//! the client refreshes and retries). Over `--transport http` the per-launch secret,
//! `Origin` and `Host` are enforced (exact 401). A local server left running after
//! `assay logout` (or after its context was deleted and made anew for another server)
//! says the session ended, without replaying its spent refresh token or taking up the
//! other server's tokens ([`StdioMcp`] drives it between commands).
//!
//! Expiry needs real time: the server accepts a token up to 60 s after `exp` (clock-skew
//! leeway), so a token issued with a 5 s lifetime is refused from 65 s on. The two long
//! sessions run side by side, each against its own server (so each audit trail is that
//! session's alone), and together take about 80 s.
//!
//! Needs Node 22 and the SDK (`ASSAY_TEST_NODE`, `ASSAY_TEST_NODE_MODULES`; scripts/test
//! sets both); without them these tests say SKIPPED on stderr and return.

use super::cli_login::*;
use super::harness::*;
use super::mcp_sdk::node_tools;
use super::oauth_support::*;
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CLIENT_SCRIPT: &str = "mcp-stdio-client.mjs";

/// Runs the client script with `plan` on stdin; returns what it printed, parsed.
pub fn run_plan(node: &Path, modules: &Path, plan: &Value) -> Value {
    let scratch = tempfile::tempdir().expect("tempdir");
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e")
        .join(CLIENT_SCRIPT);
    std::fs::copy(&source, scratch.path().join(CLIENT_SCRIPT)).expect("copy the client script");
    std::os::unix::fs::symlink(modules, scratch.path().join("node_modules"))
        .expect("link node_modules");
    let mut child = Command::new(node)
        .arg(CLIENT_SCRIPT)
        .current_dir(scratch.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", scratch.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(plan.to_string().as_bytes())
        .expect("write the plan");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    // A hang guard, not a timing assertion.
    let out: Output = match rx.recv_timeout(Duration::from_secs(300)) {
        Ok(out) => out.expect("node output"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("the SDK client did not finish within 5 minutes");
        }
    };
    assert!(
        out.status.success(),
        "the SDK client failed ({:?}):\nstderr: {}\nstdout: {}",
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

/// A stdio plan: the SDK spawns `assay mcp serve ARGS` with `cli`'s environment plus `envs`.
pub fn stdio_plan(cli: &CliHome, args: &[&str], envs: &[(&str, &str)], calls: Value) -> Value {
    let mut env = serde_json::Map::new();
    for (k, v) in cli.env() {
        env.insert(k.clone(), Value::from(v.as_str()));
    }
    for (k, v) in envs {
        env.insert((*k).to_owned(), Value::from(*v));
    }
    let mut all = vec!["mcp", "serve"];
    all.extend(args);
    json!({
        "transport": "stdio",
        "command": BIN,
        "args": all,
        "env": env,
        "calls": calls,
    })
}

/// Asserts that no call of a session returned a tool error.
pub fn assert_calls_succeeded(seen: &Value) {
    let calls = seen["calls"].as_array().expect("calls");
    for c in calls {
        assert_eq!(
            c["isError"], false,
            "{} at {} ms failed: {}\nserver stderr:\n{}",
            c["name"], c["at"], c["text"], seen["stderr"]
        );
    }
}

/// Asserts that `action` was done successfully by the user through `assay login`.
fn assert_cli_login_event(events: &[Value], user_id: &str, action: &str) {
    let found = events.iter().any(|e| {
        e["action"] == action
            && e["actor"]["id"] == user_id
            && e["actor"]["kind"] == "user"
            && e["actor"]["auth_method"] == "cli_login"
            && e["actor"]["credential_id"] == "assay-cli"
            && e["outcome"] == "success"
    });
    assert!(
        found,
        "no successful {action} by user {user_id} with method cli_login; the user's events:\n{:#?}",
        events
            .iter()
            .filter(|e| e["actor"]["id"] == user_id)
            .collect::<Vec<_>>()
    );
}

#[test]
fn stdio_tool_calls_run_as_the_logged_in_user() {
    let Some((node, modules)) = node_tools("stdio_tool_calls_run_as_the_logged_in_user") else {
        return;
    };
    let server = Server::start();
    let user_id = member_and_workflow(&server);
    let cli = CliHome::new();
    browser_login(&cli, &server.url, &[], &mut Browser::default());

    let plan = stdio_plan(
        &cli,
        &[],
        &[],
        json!([
            { "name": "list_workflows", "arguments": {} },
            { "name": "run_workflow", "arguments": { "workflowName": WORKFLOW_NAME } },
            { "name": "get_execution_info", "arguments": { "executionId": "${1.id}" } },
        ]),
    );
    let seen = run_plan(&node, &modules, &plan);
    assert_eq!(seen["server"], "assay", "{seen}");
    // The tool list follows the user's role in the context's environment (run on dev).
    assert_eq!(seen["tools"], json!(member_tools()), "{seen}");
    assert_calls_succeeded(&seen);
    let listed = seen["calls"][0]["structured"].to_string();
    assert!(listed.contains(WORKFLOW_NAME), "{listed}");
    let execution = seen["calls"][1]["structured"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("run_workflow returned no id: {seen}"))
        .to_owned();
    assert_eq!(
        seen["calls"][2]["structured"]["id"],
        execution.as_str(),
        "{seen}"
    );
    // Nothing but the server's own words on stderr without --verbose: no tokens.
    let tokens = cli.stored_tokens();
    let server_stderr = seen["stderr"].as_str().unwrap_or_default();
    assert!(
        !server_stderr.contains(tokens["access_token"].as_str().unwrap_or("-"))
            && !server_stderr.contains(tokens["refresh_token"].as_str().unwrap_or("-")),
        "no token on stderr"
    );

    // The server's audit trail: the calls, as the user, through the CLI login.
    let events = audit_events(&server);
    for action in ["workflow.list", "workflow.run", "execution.get"] {
        assert_cli_login_event(&events, &user_id, action);
    }
    assert!(
        events.iter().any(|e| e["action"] == "workflow.run"
            && e["actor"]["id"] == user_id.as_str()
            && e["resources"].as_array().is_some_and(|r| r
                .iter()
                .any(|x| x == &json!(format!("workflow:{WORKFLOW_NAME}"))))),
        "workflow.run names the workflow"
    );
    let finished = server.wait_finished(&execution);
    assert_eq!(finished["status"], "passed", "{finished}");
}

/// What one long session saw and what its server recorded.
struct LongSession {
    seen: Value,
    events: Vec<Value>,
    user_id: String,
    refresh_after_login: String,
    refresh_after_session: String,
    whoami_after: Value,
}

/// Logs in to a server whose access tokens live 5 s, runs `calls` list_workflows calls 10 s
/// apart over stdio with `envs`, then runs `whoami` on the same config directory.
/// `unknown_expiry` drops the stored expiry, so the client refreshes only when refused.
fn long_session(
    node: &Path,
    modules: &Path,
    envs: &[(&str, &str)],
    unknown_expiry: bool,
    calls: usize,
) -> LongSession {
    let server = Server::start_with(&["--oauth-access-token-ttl-secs", "5"], &[]);
    let user_id = member_and_workflow(&server);
    let cli = CliHome::new();
    browser_login(&cli, &server.url, &[], &mut Browser::default());
    let after_login = cli.stored_tokens();
    if unknown_expiry {
        cli.edit_stored_tokens(|t| t["expires_at"] = Value::Null);
    }
    let mut plan_calls = Vec::new();
    for i in 0..calls {
        plan_calls.push(json!({
            "name": "list_workflows",
            "arguments": {},
            "afterMs": if i == 0 { 0 } else { 10_000 },
        }));
    }
    let started = Instant::now();
    let seen = run_plan(
        node,
        modules,
        &stdio_plan(&cli, &[], envs, json!(plan_calls)),
    );
    assert!(
        started.elapsed() >= Duration::from_secs(10 * (calls as u64 - 1)),
        "the session really lasted"
    );
    let refresh_after_session = cli.stored_tokens()["refresh_token"]
        .as_str()
        .expect("a refresh token after the session")
        .to_owned();
    let whoami_after = cli.json(&["whoami"]);
    LongSession {
        seen,
        events: audit_events(&server),
        user_id,
        refresh_after_login: after_login["refresh_token"]
            .as_str()
            .expect("refresh token")
            .to_owned(),
        refresh_after_session,
        whoami_after,
    }
}

fn count(events: &[Value], action: &str) -> usize {
    events.iter().filter(|e| e["action"] == action).count()
}

#[test]
fn access_token_expiry_in_a_long_stdio_session_is_invisible() {
    let Some((node, modules)) =
        node_tools("access_token_expiry_in_a_long_stdio_session_is_invisible")
    else {
        return;
    };
    // 9 calls, 10 s apart: the last ones come more than 65 s after the login's token.
    const CALLS: usize = 9;
    let (proactive, reactive) = std::thread::scope(|s| {
        let proactive = s.spawn(|| long_session(&node, &modules, &[], false, CALLS));
        let reactive = s.spawn(|| {
            long_session(
                &node,
                &modules,
                &[("ASSAY_TOKEN_REFRESH_MARGIN_SECS", "0")],
                true,
                CALLS,
            )
        });
        (
            proactive.join().expect("the proactive session"),
            reactive.join().expect("the reactive session"),
        )
    });

    for (name, session) in [("proactive", &proactive), ("reactive", &reactive)] {
        assert_eq!(
            session.seen["calls"].as_array().map(Vec::len),
            Some(CALLS),
            "{name}: {}",
            session.seen
        );
        assert_calls_succeeded(&session.seen);
        let calls = session.seen["calls"].as_array().expect("calls");
        for c in calls {
            assert!(
                c["structured"].to_string().contains(WORKFLOW_NAME),
                "{name}: every call lists the workflow: {c}"
            );
        }
        assert_cli_login_event(&session.events, &session.user_id, "workflow.list");
        assert!(
            count(&session.events, "oauth.token.refreshed") >= 1,
            "{name}: the session refreshed its token"
        );
        assert_eq!(
            count(&session.events, "oauth.refresh.reuse_detected"),
            0,
            "{name}: no refresh token was used twice"
        );
        // The rotated refresh token was saved: a later command on the same machine
        // refreshes with it (a spent one would end the grant and this would fail).
        assert_ne!(
            session.refresh_after_session, session.refresh_after_login,
            "{name}: the stored refresh token rotated"
        );
        assert_whoami_member(&session.whoami_after, &session.user_id);
    }

    // Proactive (default margin): the server never had to refuse a token.
    let failed: Vec<&Value> = proactive
        .events
        .iter()
        .filter(|e| e["action"] == "auth.failed")
        .collect();
    assert!(failed.is_empty(), "proactive: refusals {failed:#?}");

    // Reactive (expiry unknown, no margin): the server refused the expired token, the
    // client refreshed and retried, and the call still succeeded.
    let expired: Vec<&Value> = reactive
        .events
        .iter()
        .filter(|e| e["action"] == "auth.failed" && e["reason"] == "the access token has expired")
        .collect();
    assert!(
        !expired.is_empty(),
        "reactive: the server refused an expired token at least once; its refusals: {:#?}",
        reactive
            .events
            .iter()
            .filter(|e| e["action"] == "auth.failed")
            .collect::<Vec<_>>()
    );
}

#[test]
fn two_local_servers_on_one_login_refresh_without_reusing_a_refresh_token() {
    let Some((node, modules)) =
        node_tools("two_local_servers_on_one_login_refresh_without_reusing_a_refresh_token")
    else {
        return;
    };
    // Two AI tools on one machine, each with its own `assay mcp serve`, one login. The
    // tokens live 2 s and are refreshed from half their lifetime on (the refresh margin
    // is capped at half the lifetime), so with calls 700 ms apart the refresh token
    // rotates under both processes' feet all the time. Presenting a spent one would
    // revoke the grant (reuse detection); the shared lock prevents that.
    let server = Server::start_with(&["--oauth-access-token-ttl-secs", "2"], &[]);
    let user_id = member_and_workflow(&server);
    let cli = CliHome::new();
    browser_login(&cli, &server.url, &[], &mut Browser::default());
    let calls: Vec<Value> = (0..8)
        .map(|i| {
            json!({
                "name": "list_workflows",
                "arguments": {},
                "afterMs": if i == 0 { 0 } else { 700 },
            })
        })
        .collect();
    let plan = stdio_plan(&cli, &[], &[], json!(calls));
    let sessions: Vec<Value> = std::thread::scope(|s| {
        let running: Vec<_> = (0..2)
            .map(|_| s.spawn(|| run_plan(&node, &modules, &plan)))
            .collect();
        running
            .into_iter()
            .map(|h| h.join().expect("a session"))
            .collect()
    });
    for seen in &sessions {
        assert_calls_succeeded(seen);
    }
    let events = audit_events(&server);
    assert!(
        count(&events, "oauth.token.refreshed") >= 2,
        "both sessions refreshed"
    );
    assert_eq!(
        count(&events, "oauth.refresh.reuse_detected"),
        0,
        "no spent refresh token was presented: {:#?}",
        events
            .iter()
            .filter(|e| e["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("oauth.")))
            .collect::<Vec<_>>()
    );
    assert_eq!(count(&events, "auth.failed"), 0, "no call was refused");
    // The grant is alive: a later command on the machine still works.
    assert_whoami_member(&cli.json(&["whoami"]), &user_id);
}

/// An unused loopback port (bound, then released for the child to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The local server's 401 (`assay mcp serve --transport http` without its secret),
/// written out: a change of the wire text must show up here.
const LOCAL_CHALLENGE: &str = r#"Bearer realm="assay-mcp-serve""#;
const LOCAL_UNAUTHORIZED: &str = "this local MCP server needs its bearer secret: send \
     Authorization: Bearer <secret> (printed by `assay mcp serve` at start, or in its --secret-file)";

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e-raw","version":"1"}}}"#;

#[test]
fn http_transport_requires_the_launch_secret_and_checks_origin_and_host() {
    let Some((node, modules)) =
        node_tools("http_transport_requires_the_launch_secret_and_checks_origin_and_host")
    else {
        return;
    };
    let server = Server::start();
    member_and_workflow(&server);
    // Environment-variable mode (containers, CI): no login, the admin API token.
    let mut cli = CliHome::new();
    cli.set("ASSAY_URL", &server.url);
    cli.set("ASSAY_TOKEN", &server.token);
    cli.set("ASSAY_ORG", "default");
    cli.set("ASSAY_ENV", "dev");
    let port = free_port();
    let secret_file = cli.home_dir().join("mcp-secret");
    let port_text = port.to_string();
    let secret_path = secret_file.display().to_string();
    let mut child = cli
        .command(&[
            "mcp",
            "serve",
            "--transport",
            "http",
            "--port",
            &port_text,
            "--secret-file",
            &secret_path,
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn assay mcp serve");
    let guard = KillOnDrop(child.id());
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        || !std::fs::metadata(&secret_file).is_ok_and(|m| m.len() > 0)
    {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("assay mcp serve --transport http exited ({status}): {err}");
        }
        assert!(Instant::now() < deadline, "assay mcp serve never listened");
        std::thread::sleep(Duration::from_millis(100));
    }
    let secret = std::fs::read_to_string(&secret_file)
        .expect("secret file")
        .trim()
        .to_owned();
    assert!(secret.len() >= 43, "32 random bytes, base64url: {secret:?}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret_file)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the secret file is private");
    }
    let url = format!("http://127.0.0.1:{port}/mcp");

    // The SDK client with the secret: a tool call works.
    let seen = run_plan(
        &node,
        &modules,
        &json!({
            "transport": "http",
            "url": url,
            "headers": { "Authorization": format!("Bearer {secret}") },
            "calls": [{ "name": "list_workflows", "arguments": {} }],
        }),
    );
    assert_calls_succeeded(&seen);
    assert!(
        seen["calls"][0]["structured"]
            .to_string()
            .contains(WORKFLOW_NAME),
        "{seen}"
    );

    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let post = |headers: &[(&str, &str)]| {
        let mut req = http
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(INITIALIZE);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().expect("POST /mcp");
        let status = res.status().as_u16();
        let challenge = res
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (status, challenge, res.text().unwrap_or_default())
    };
    let bearer = format!("Bearer {secret}");

    // The secret opens the door…
    let (status, _, body) = post(&[("authorization", &bearer)]);
    assert_eq!(status, 200, "{body}");
    // …without it, or with another one, it stays shut.
    for headers in [
        vec![],
        vec![("authorization", "Bearer not-the-secret")],
        vec![("authorization", "Basic dXNlcjpwYXNz")],
    ] {
        let (status, challenge, body) = post(&headers);
        assert_eq!(status, 401, "{headers:?}: {body}");
        assert_eq!(
            challenge.as_deref(),
            Some(LOCAL_CHALLENGE),
            "{headers:?}: WWW-Authenticate"
        );
        let parsed: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{headers:?}: a JSON body ({e}): {body}"));
        assert_eq!(
            parsed,
            json!({ "error": "unauthorized", "message": LOCAL_UNAUTHORIZED }),
            "{headers:?}"
        );
        assert!(!body.contains(&secret), "the 401 does not echo the secret");
    }
    // A web page the user visits cannot call it (DNS rebinding, cross-site POST).
    let (status, _, body) = post(&[
        ("authorization", &bearer),
        ("origin", "https://evil.example"),
    ]);
    assert_eq!(status, 403, "{body}");
    assert_eq!(body, "Forbidden: Origin header is not allowed");
    let (status, _, body) = post(&[("authorization", &bearer), ("host", "evil.example")]);
    assert_eq!(status, 403, "{body}");
    assert_eq!(body, "Forbidden: Host header is not allowed");

    // The secret went to the file, not to the terminal.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = wait_output(child, "assay mcp serve --transport http");
    // Waited for: the PID is no longer ours to kill.
    std::mem::forget(guard);
    assert!(
        !stderr(&out).contains(&secret),
        "with --secret-file the secret is not printed:\n{}",
        stderr(&out)
    );
    // SIGTERM (how AI tools stop their servers) is a clean stop that takes the secret
    // file with it.
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        !secret_file.exists(),
        "the secret file is removed at exit: {}",
        secret_file.display()
    );
}

/// Kills a child process by PID when the test ends early.
pub struct KillOnDrop(pub u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", &self.0.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn stdio_stdout_carries_only_json_rpc_even_when_verbose() {
    let server = Server::start();
    member_and_workflow(&server);
    let mut cli = CliHome::new();
    cli.set("ASSAY_URL", &server.url);
    cli.set("ASSAY_TOKEN", &server.token);
    cli.set("ASSAY_ORG", "default");
    cli.set("ASSAY_ENV", "dev");
    let mut child = cli
        .command(&["mcp", "serve", "--verbose"])
        .env("RUST_LOG", "debug")
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn assay mcp serve");
    let requests = [
        INITIALIZE.to_owned(),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_workflows","arguments":{}}}"#.to_owned(),
    ];
    let mut stdin = child.stdin.take().expect("stdin");
    for r in &requests {
        stdin.write_all(r.as_bytes()).expect("write");
        stdin.write_all(b"\n").expect("write");
    }
    // Answers come before EOF is seen only if the server reads on; give it the requests,
    // then wait for the three answers before closing stdin (EOF ends the server).
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines
        .iter()
        .filter(|l: &&String| l.contains(r#""id":3"#))
        .count()
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "no answer to the tool call; stdout so far: {lines:#?}"
        );
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(line);
        }
    }
    drop(stdin);
    let out = wait_output(child, "assay mcp serve");
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
        lines.push(line);
    }
    assert!(
        out.status.success(),
        "EOF on stdin ends the server cleanly: {:?}\n{}",
        out.status,
        stderr(&out)
    );
    let mut ids = Vec::new();
    for line in lines.iter().filter(|l| !l.trim().is_empty()) {
        let message: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout carries a non-JSON line ({e}): {line:?}"));
        assert_eq!(message["jsonrpc"], "2.0", "{line}");
        ids.push(message["id"].clone());
    }
    assert_eq!(ids, vec![json!(1), json!(2), json!(3)], "{lines:#?}");
    let call: Value = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|m| m["id"] == 3)
        .expect("the tool answer");
    assert!(call["result"]["isError"] != json!(true), "{call}");
    assert!(call.to_string().contains(WORKFLOW_NAME), "{call}");
}

/// `assay mcp serve` over stdio driven with raw JSON-RPC lines, one request at a time, so
/// a test can act on the machine (log out, log in again) between two tool calls of one
/// long-lived server process — the AI tool that stays open all day.
pub struct StdioMcp {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    next_id: u64,
    guard: Option<KillOnDrop>,
}

impl StdioMcp {
    /// Starts `assay mcp serve` on `cli` and initializes the session.
    pub fn start(cli: &CliHome) -> StdioMcp {
        let mut child = cli
            .command(&["mcp", "serve"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn assay mcp serve");
        let guard = KillOnDrop(child.id());
        let stdin = child.stdin.take().expect("stdin");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut err = child.stderr.take().expect("stderr");
        let keep = stderr.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut err, &mut chunk) {
                if n == 0 {
                    break;
                }
                if let Ok(mut b) = keep.lock() {
                    b.extend_from_slice(&chunk[..n]);
                }
            }
        });
        let mut mcp = StdioMcp {
            child,
            stdin: Some(stdin),
            lines,
            stderr,
            next_id: 1,
            guard: Some(guard),
        };
        let init = mcp.request(
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": { "name": "e2e-stale", "version": "1" },
            }),
        );
        assert_eq!(init["result"]["serverInfo"]["name"], "assay", "{init}");
        mcp.send(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
        mcp
    }

    fn send(&mut self, message: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("{message}\n").as_bytes())
            .expect("write to assay mcp serve");
        stdin.flush().expect("flush");
    }

    /// Sends one request and waits for its answer (a hang guard, not a timing assertion).
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    let message: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
                        panic!("stdout carries a non-JSON line ({e}): {line:?}")
                    });
                    if message["id"] == id {
                        return message;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        panic!(
                            "assay mcp serve exited ({status}) before answering {method}; stderr:\n{}",
                            self.stderr_text()
                        );
                    }
                    assert!(
                        Instant::now() < deadline,
                        "no answer to {method} within a minute; stderr:\n{}",
                        self.stderr_text()
                    );
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => panic!(
                    "assay mcp serve closed stdout before answering {method}; stderr:\n{}",
                    self.stderr_text()
                ),
            }
        }
    }

    /// `tools/call`: returns (isError, the text content).
    pub fn call_tool(&mut self, name: &str, arguments: Value) -> (bool, String) {
        let answer = self.request(
            "tools/call",
            json!({ "name": name, "arguments": arguments }),
        );
        let result = &answer["result"];
        assert!(
            result.is_object(),
            "a tool result, not a protocol error: {answer}"
        );
        let text = result["content"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter_map(|x| x["text"].as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default();
        (result["isError"] == json!(true), text)
    }

    pub fn stderr_text(&self) -> String {
        self.stderr
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Closes stdin (EOF ends the server) and waits for the exit.
    pub fn finish(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Waited for: the PID is no longer ours to kill.
                std::mem::forget(self.guard.take());
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "assay mcp serve did not end on EOF; stderr:\n{}",
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn a_local_server_left_running_after_logout_says_the_session_ended_and_ends_nothing_else() {
    let server = Server::start();
    let user_id = member_and_workflow(&server);
    let laptop = CliHome::new();
    let desktop = CliHome::new();
    browser_login(&laptop, &server.url, &[], &mut Browser::default());
    browser_login(&desktop, &server.url, &[], &mut Browser::default());

    // An AI tool on the laptop started its local MCP server and used it.
    let mut stale = StdioMcp::start(&laptop);
    let (failed, text) = stale.call_tool("list_workflows", json!({}));
    assert!(!failed && text.contains(WORKFLOW_NAME), "{text}");

    // Behind its back, another command on the laptop refreshes (the refresh token the
    // MCP server holds in memory is spent now), then the person logs out there.
    force_refresh_on_next_use(&laptop);
    assert_whoami_member(&laptop.json(&["whoami"]), &user_id);
    let out = laptop.run(&["logout"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    // The still-running MCP server's next call: its access token is refused (session
    // ended), and there is no stored credential to refresh with — it must say so without
    // asking the server (no fallback on the spent refresh token in its memory, which the
    // server would answer with its own words).
    let (failed, text) = stale.call_tool("list_workflows", json!({}));
    assert!(failed, "a call after logout fails: {text}");
    assert_eq!(
        text,
        "Not authenticated: your session has ended (signed out on this machine); run \
         `assay login` again. Sign in again (assay login) or use a valid API token, then retry.",
        "the tool error says the session ended and what to do; stderr:\n{}",
        stale.stderr_text()
    );
    assert!(stale.finish().success(), "EOF ends the MCP server cleanly");

    // No theft alarm and no collateral damage: the refresh token was never replayed, and
    // the desktop's login (same user, same client) lives on, refresh included.
    let events = audit_events(&server);
    assert_eq!(
        count(&events, "oauth.refresh.reuse_detected"),
        0,
        "the stale server replayed a spent refresh token: {:#?}",
        events
            .iter()
            .filter(|e| e["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("oauth.")))
            .collect::<Vec<_>>()
    );
    assert_whoami_member(&desktop.json(&["whoami"]), &user_id);
    force_refresh_on_next_use(&desktop);
    assert_whoami_member(&desktop.json(&["whoami"]), &user_id);
    let mut fresh = StdioMcp::start(&desktop);
    let (failed, text) = fresh.call_tool("list_workflows", json!({}));
    assert!(!failed && text.contains(WORKFLOW_NAME), "{text}");
    assert!(fresh.finish().success());
}

#[test]
fn a_local_server_left_running_does_not_follow_its_context_to_another_server() {
    let first = Server::start();
    member_and_workflow(&first);
    let second = Server::start();
    let second_user = member_and_workflow(&second);
    let cli = CliHome::new();
    browser_login(
        &cli,
        &first.url,
        &["--context", "work"],
        &mut Browser::default(),
    );
    let mut stale = StdioMcp::start(&cli);
    let (failed, text) = stale.call_tool("list_workflows", json!({}));
    assert!(!failed && text.contains(WORKFLOW_NAME), "{text}");

    // Context work is signed out, deleted and made anew for another server, the MCP
    // server of the old one still running.
    for args in [&["logout"][..], &["context", "delete", "work"][..]] {
        let out = cli.run(args);
        assert!(out.status.success(), "assay {args:?}: {}", stderr(&out));
    }
    browser_login(
        &cli,
        &second.url,
        &["--context", "work"],
        &mut Browser::default(),
    );
    assert_whoami_member(&cli.json(&["whoami"]), &second_user);

    // Its next call: the first server refuses its revoked access token; the stored
    // credential of context work is another server's now, so it is not this session's —
    // adopting it would send the second server's tokens (the refresh token too) to the
    // first one.
    let (failed, text) = stale.call_tool("list_workflows", json!({}));
    assert!(failed, "a call after logout fails: {text}");
    assert_eq!(
        text,
        "Not authenticated: your session has ended (signed out on this machine); run \
         `assay login` again. Sign in again (assay login) or use a valid API token, then retry.",
        "stderr:\n{}",
        stale.stderr_text()
    );
    assert!(stale.finish().success(), "EOF ends the MCP server cleanly");

    // The first server saw only its own (revoked) token, never one the second signed.
    let refused: Vec<Value> = audit_events(&first)
        .into_iter()
        .filter(|e| e["action"] == "auth.failed")
        .collect();
    assert!(!refused.is_empty(), "the stale token was refused");
    assert!(
        refused.iter().all(|e| e["reason"] == ACCESS_TOKEN_REVOKED),
        "the first server was shown another token: {refused:#?}"
    );
    // The new login of context work is unharmed.
    assert_whoami_member(&cli.json(&["whoami"]), &second_user);
}
