//! Identity end to end through the real binary: API tokens bounded by their grants,
//! members, the exact 401 answers (each audited), a tamper-evident audit chain, and a
//! scan for leaked secrets in logs, database files and exports.
//!
//! Not covered here, and why:
//! - expired tokens: expiry is days away and the server runs on the system clock; the
//!   control plane's tests cover expiry with an injected clock;
//! - a second real organization: there is no API to create one; the control plane's tests
//!   cover tokens of another organization. Here a token addressing an organization it does
//!   not belong to is checked (the same refusal, whether or not that organization exists).

use super::harness::*;
use assay_control::auth::{MALFORMED, OTHER_ORGANIZATION, REVOKED, ROTATED, UNKNOWN};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

const HELLO: &str =
    "kind: TestWorkflow\nmetadata:\n  name: hello\nspec:\n  steps:\n  - shell: echo hi\n";

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({:?}): {}\n{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

fn json(out: &Output, what: &str) -> Value {
    let text = ok(out, what);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what} printed no JSON ({e}): {text}"))
}

/// `assay token create … -o json` as the admin; returns (token id, secret).
fn create_token(server: &Server, args: &[&str]) -> (String, String) {
    let mut all = vec!["token", "create"];
    all.extend_from_slice(args);
    all.extend(["-o", "json"]);
    let created = json(&server.cli(&all), "token create");
    let id = created["token"]["id"].as_str().expect("id").to_owned();
    let secret = created["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("assay_"), "{created}");
    (id, secret)
}

/// The same token with one character of its random part changed: the checksum fails.
fn flip_one_char(secret: &str) -> String {
    let mut chars: Vec<char> = secret.chars().collect();
    let i = "assay_".len() + 10;
    chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
    chars.into_iter().collect()
}

fn add_workflow(server: &Server) {
    let res = server.http().post_yaml(&server.api("/workflows"), HELLO);
    assert_eq!(res.status().as_u16(), 201, "{:?}", res.text());
}

/// A GET with `token` (or none) on `path` under the server.
fn get(server: &Server, path: &str, token: Option<&str>) -> reqwest::blocking::Response {
    let mut req = server.http().client.get(format!("{}{path}", server.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().expect("GET")
}

/// Asserts the exact 401: status, challenge, and problem body.
pub fn assert_401(res: reqwest::blocking::Response, challenge: &str, detail: &str, what: &str) {
    assert_eq!(res.status().as_u16(), 401, "{what}");
    assert_eq!(
        res.headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some(challenge),
        "{what}"
    );
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "{what}"
    );
    let request_id = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = res.json().expect("problem body");
    assert_eq!(
        body["type"], "urn:assay:problem:unauthenticated",
        "{what}: {body}"
    );
    assert_eq!(body["title"], "Authentication required", "{what}: {body}");
    assert_eq!(body["status"], 401, "{what}: {body}");
    assert_eq!(body["detail"], detail, "{what}: {body}");
    assert_eq!(body["request_id"].as_str(), request_id.as_deref(), "{what}");
}

pub const INVALID_TOKEN: &str = r#"Bearer realm="assay", error="invalid_token""#;

fn export_jsonl(server: &Server, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["audit", "export", "--format", "jsonl"];
    all.extend_from_slice(args);
    ok(&server.cli(&all), "audit export")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line ({e}): {l}")))
        .collect()
}

#[test]
fn member_tokens_and_members_are_bounded_by_their_grants() {
    let server = Server::start();
    add_workflow(&server);

    // A member token with read on dev: it lists, but may not run.
    let (reader_id, reader) = create_token(
        &server,
        &[
            "--name",
            "reader",
            "--kind",
            "member",
            "--env",
            "dev=read",
            "--expires",
            "30d",
        ],
    );
    let listed = json(
        &server.cli_as(&reader, &["workflow", "list", "-o", "json"], None),
        "workflow list as reader",
    );
    assert_eq!(listed["items"][0]["name"], "hello", "{listed}");
    let out = server.cli_as(&reader, &["run", "hello"], None);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("forbidden") && stderr(&out).contains("run permission"),
        "{}",
        stderr(&out)
    );
    let res = server
        .http()
        .client
        .post(server.api("/workflows/hello/executions"))
        .bearer_auth(&reader)
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let body: Value = res.json().unwrap();
    assert_eq!(body["type"], "urn:assay:problem:forbidden", "{body}");

    // The reader cannot mint tokens or see members.
    let out = server.cli_as(
        &reader,
        &["token", "create", "--name", "escalate", "--kind", "admin"],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("forbidden"), "{}", stderr(&out));
    let out = server.cli_as(&reader, &["member", "list"], None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // Listings flag tokens without expiry; the secret is never shown again.
    let (_, forever) = create_token(
        &server,
        &["--name", "forever", "--kind", "org-read", "--no-expiry"],
    );
    let table = ok(&server.cli(&["token", "list"]), "token list");
    let forever_row = table
        .lines()
        .find(|l| l.contains("forever"))
        .unwrap_or_else(|| panic!("no forever row:\n{table}"));
    assert!(
        forever_row.contains("org-read") && forever_row.contains("never (!)"),
        "{table}"
    );
    let reader_row = table.lines().find(|l| l.contains("reader")).unwrap();
    assert!(
        reader_row.contains("dev=read") && reader_row.contains("active"),
        "{table}"
    );
    // The bootstrap token has no expiry either, and is flagged like any other.
    let bootstrap_row = table.lines().find(|l| l.contains("bootstrap")).unwrap();
    assert!(bootstrap_row.contains("never (!)"), "{table}");
    assert!(
        table.contains("(!) 2 active token(s) never expire"),
        "{table}"
    );
    assert!(!table.contains(&reader) && !table.contains(&forever));
    let shown = ok(&server.cli(&["token", "show", &reader_id]), "token show");
    assert!(
        shown.contains("Name:") && shown.contains("reader"),
        "{shown}"
    );
    assert!(
        shown.contains("Kind:") && shown.contains("member"),
        "{shown}"
    );

    // Table mode: the secret alone on stdout, the warning on stderr.
    let out = server.cli(&["token", "create", "--name", "plain", "--kind", "admin"]);
    let secret_line = ok(&out, "token create");
    assert_eq!(secret_line.lines().count(), 1, "{secret_line}");
    assert!(secret_line.trim().starts_with("assay_"));
    assert!(
        stderr(&out).contains("it will not be shown again"),
        "{}",
        stderr(&out)
    );

    // A member with a password (stdin only) and a run grant; then changed and removed.
    let added = json(
        &server.cli_with_stdin(
            &[
                "member",
                "add",
                "bob@example.com",
                "--role",
                "member",
                "--name",
                "Bob",
                "--password-stdin",
                "--grant",
                "dev=run",
                "-o",
                "json",
            ],
            Some("correct horse battery staple\n"),
        ),
        "member add",
    );
    assert_eq!(added["email"], "bob@example.com");
    assert_eq!(added["display_name"], "Bob");
    assert_eq!(added["role"], "member");
    assert_eq!(added["grants"], serde_json::json!({"dev": "run"}));
    let changed = json(
        &server.cli(&[
            "member",
            "set",
            "bob@example.com",
            "--grant",
            "dev=write",
            "-o",
            "json",
        ]),
        "member set",
    );
    assert_eq!(changed["grants"], serde_json::json!({"dev": "write"}));
    let members = json(
        &server.cli(&["member", "list", "-o", "json"]),
        "member list",
    );
    let bob = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "bob@example.com")
        .unwrap_or_else(|| panic!("bob missing: {members}"));
    assert_eq!(bob["grants"], serde_json::json!({"dev": "write"}));
    ok(
        &server.cli(&["member", "remove", "bob@example.com"]),
        "member remove",
    );
    let members = json(
        &server.cli(&["member", "list", "-o", "json"]),
        "member list",
    );
    assert!(
        members
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["email"] != "bob@example.com"),
        "{members}"
    );
    let out = server.cli(&["member", "set", "bob@example.com", "--role", "admin"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
}

#[test]
fn refused_credentials_get_exact_401s_each_audited_and_tampering_is_found() {
    let server = Server::start();
    let workflows = "/v1/organizations/default/environments/dev/workflows";

    // No credential at all: the plain challenge (no attempt, nothing to audit).
    assert_401(
        get(&server, workflows, None),
        r#"Bearer realm="assay""#,
        "missing bearer token; pass Authorization: Bearer <token>",
        "no token",
    );

    let (_, real) = create_token(&server, &["--name", "real", "--kind", "admin"]);
    let (revoked_id, revoked) = create_token(&server, &["--name", "to-revoke", "--kind", "admin"]);
    ok(
        &server.cli(&["token", "revoke", &revoked_id]),
        "token revoke",
    );
    let (rotated_id, rotated_old) =
        create_token(&server, &["--name", "to-rotate", "--kind", "admin"]);
    let rotation = json(
        &server.cli(&["token", "rotate", &rotated_id, "-o", "json"]),
        "token rotate",
    );
    let rotated_new = rotation["secret"].as_str().unwrap().to_owned();
    let (unknown, _) = assay_control::tokens::generate();

    // (what, token, path, detail)
    let attempts: Vec<(&str, String, String, &str)> = vec![
        (
            "malformed",
            "assay_not-a-token".into(),
            workflows.into(),
            MALFORMED,
        ),
        (
            "wrong checksum",
            flip_one_char(&real),
            workflows.into(),
            MALFORMED,
        ),
        ("unknown", unknown.clone(), workflows.into(), UNKNOWN),
        ("revoked", revoked.clone(), workflows.into(), REVOKED),
        (
            "rotated away",
            rotated_old.clone(),
            workflows.into(),
            ROTATED,
        ),
        (
            "another organization",
            real.clone(),
            "/v1/organizations/elsewhere/environments/dev/workflows".into(),
            OTHER_ORGANIZATION,
        ),
    ];
    for (what, token, path, detail) in &attempts {
        assert_401(get(&server, path, Some(token)), INVALID_TOKEN, detail, what);
    }
    // The good ones still work.
    for (what, token) in [("real", &real), ("rotated new", &rotated_new)] {
        assert_eq!(
            get(&server, workflows, Some(token)).status().as_u16(),
            200,
            "{what}"
        );
    }

    // One auth.failed event per attempt, with its reason, in the organization's chain.
    let failed = export_jsonl(&server, &["--action", "auth.failed"]);
    let mut reasons: Vec<&str> = failed
        .iter()
        .map(|e| e["reason"].as_str().unwrap_or_default())
        .collect();
    reasons.sort_unstable();
    let mut expected: Vec<&str> = attempts.iter().map(|a| a.3).collect();
    expected.sort_unstable();
    assert_eq!(reasons, expected, "{failed:#?}");
    for e in &failed {
        assert_eq!(e["action"], "auth.failed");
        assert_eq!(e["outcome"], "denied", "{e}");
        assert_eq!(e["client"]["ip"], "127.0.0.1", "{e}");
    }
    let by_reason = |r: &str| failed.iter().find(|e| e["reason"] == r).unwrap().clone();
    assert_eq!(
        by_reason(REVOKED)["resources"],
        serde_json::json!([format!("token:{revoked_id}")])
    );
    assert_eq!(
        by_reason(ROTATED)["resources"],
        serde_json::json!([format!("token:{rotated_id}")])
    );
    let all = export_jsonl(&server, &[]);
    assert_eq!(
        all.iter().filter(|e| e["action"] == "auth.failed").count(),
        attempts.len()
    );
    let text = serde_json::to_string(&all).unwrap();
    for (what, token, _, _) in &attempts {
        assert!(
            !text.contains(token.as_str()),
            "{what} secret in the export"
        );
    }

    // CSV: a header and one row per event, to a file.
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("failed.csv");
    let out = server.cli(&[
        "audit",
        "export",
        "--action",
        "auth.failed",
        "--outcome",
        "denied",
        "--format",
        "csv",
        "-O",
        csv_path.to_str().unwrap(),
    ]);
    ok(&out, "audit export csv");
    assert!(
        stderr(&out).contains(&format!("exported {} events", attempts.len())),
        "{}",
        stderr(&out)
    );
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let rows: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert_eq!(rows.len(), attempts.len() + 1, "{csv}");
    assert!(
        rows[0].starts_with("seq,time,org_id,env_id,actor_kind,"),
        "{}",
        rows[0]
    );

    // The chain verifies…
    let out = server.cli(&["audit", "verify"]);
    assert!(
        ok(&out, "audit verify").starts_with("ok: "),
        "{}",
        stdout(&out)
    );

    // …until one event is edited in the database file behind the server's back.
    let target = by_reason(REVOKED);
    let seq = target["seq"].as_i64().unwrap();
    tamper(
        &server.data_dir.join("assay.db"),
        target["id"].as_str().unwrap(),
    );
    let out = server.cli(&["audit", "verify"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).starts_with(&format!("BROKEN at seq {seq}")),
        "{}",
        stdout(&out)
    );
    let out = server.cli(&["audit", "verify", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["broken"]["seq"], seq, "{report}");
}

/// Rewrites one audit event's stored JSON the way an intruder with file access could:
/// drop the append-only trigger, then edit.
fn tamper(db: &Path, event_id: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use sqlx::ConnectOptions;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(db)
            .busy_timeout(std::time::Duration::from_secs(10))
            .connect()
            .await
            .unwrap();
        let triggers: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_events'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        for (name,) in triggers {
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP TRIGGER \"{name}\"")))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        let changed = sqlx::query(
            "UPDATE audit_events SET event = json_set(event, '$.reason', 'nothing to see here') \
             WHERE json_extract(event, '$.id') = ?1",
        )
        .bind(event_id)
        .execute(&mut conn)
        .await
        .unwrap()
        .rows_affected();
        assert_eq!(changed, 1, "the event to tamper with was not found");
    });
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &str) -> Option<usize> {
    let needle = needle.as_bytes();
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The text around a hit, the secret itself masked, so a failure shows where it leaked.
fn context(haystack: &[u8], at: usize, secret: &str) -> String {
    let start = at.saturating_sub(160);
    let end = (at + secret.len() + 160).min(haystack.len());
    String::from_utf8_lossy(&haystack[start..end])
        .replace(secret, "<SECRET>")
        .replace('\n', "⏎")
}

/// The value after `label` on a line of the first-start announcement.
fn announced(stdout: &[u8], label: &str) -> String {
    String::from_utf8_lossy(stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix(label).map(|v| v.trim().to_owned()))
        .unwrap_or_else(|| panic!("no {label:?} line in the announcement"))
}

#[test]
fn secrets_never_reach_logs_database_files_or_exports() {
    let (server, log) = Server::start_logged("debug");
    add_workflow(&server);
    let bootstrap_password = announced(&log.stdout(), "owner password:");

    // Secrets this test makes, by label.
    let mut secrets: BTreeMap<String, String> = BTreeMap::new();
    let (admin_id, admin) = create_token(&server, &["--name", "hyg-admin", "--kind", "admin"]);
    secrets.insert("admin token".into(), admin.clone());
    let (member_id, member) = create_token(
        &server,
        &[
            "--name",
            "hyg-member",
            "--kind",
            "member",
            "--env",
            "dev=read",
        ],
    );
    secrets.insert("member token".into(), member.clone());
    let password = "Tr0ub4dor&3-never-log-me";
    secrets.insert("member password".into(), password.into());
    let added = server.cli_with_stdin(
        &[
            "member",
            "add",
            "carol@example.com",
            "--role",
            "member",
            "--password-stdin",
            "--grant",
            "dev=run",
        ],
        Some(&format!("{password}\n")),
    );
    ok(&added, "member add");
    let rest_password = "correct-horse-REST-password";
    secrets.insert("REST member password".into(), rest_password.into());
    let res = server.http().post_json(
        &format!("{}/v1/organizations/default/members", server.url),
        &serde_json::json!({"email": "dave@example.com", "role": "member",
                            "password": rest_password}),
    );
    assert_eq!(res.status().as_u16(), 201);

    // Rotation with grace, then without: three secrets of one token.
    let graced = json(
        &server.cli(&["token", "rotate", &member_id, "--grace", "1h", "-o", "json"]),
        "rotate with grace",
    );
    let member_v2 = graced["secret"].as_str().unwrap().to_owned();
    secrets.insert("member token v2".into(), member_v2.clone());
    assert_eq!(
        get(
            &server,
            "/v1/organizations/default/environments/dev/workflows",
            Some(&member)
        )
        .status()
        .as_u16(),
        200,
        "old secret within grace"
    );
    let hard = json(
        &server.cli(&["token", "rotate", &member_id, "-o", "json"]),
        "rotate without grace",
    );
    let member_v3 = hard["secret"].as_str().unwrap().to_owned();
    secrets.insert("member token v3".into(), member_v3.clone());
    ok(&server.cli(&["token", "revoke", &admin_id]), "revoke");
    let near_miss = flip_one_char(&member_v3);
    secrets.insert("mistyped token".into(), near_miss.clone());

    // Failing calls with every one of them, in every place a careless client puts one.
    let workflows = "/v1/organizations/default/environments/dev/workflows";
    for secret in secrets.values() {
        let status = get(&server, workflows, Some(secret)).status().as_u16();
        assert!(status == 401 || status == 200, "{status}");
        let _ = get(&server, &format!("{workflows}?access_token={secret}"), None);
        let _ = get(
            &server,
            &format!("/v1/organizations/default/tokens/{secret}"),
            Some(&member_v3),
        );
        let _ = server.cli_as(secret, &["workflow", "list"], None);
    }
    let out = server.cli(&["token", "show", &member_v3]);
    assert_eq!(out.status.code(), Some(2));
    // A member token may not run: a denied call, audited.
    let _ = server.cli_as(&member_v3, &["run", "hello"], None);

    // Exports, both formats.
    let exports = tempfile::tempdir().unwrap();
    let jsonl = exports.path().join("audit.jsonl");
    let csv = exports.path().join("audit.csv");
    ok(
        &server.cli(&["audit", "export", "-O", jsonl.to_str().unwrap()]),
        "export jsonl",
    );
    ok(
        &server.cli(&[
            "audit",
            "export",
            "--format",
            "csv",
            "-O",
            csv.to_str().unwrap(),
        ]),
        "export csv",
    );
    assert!(std::fs::metadata(&jsonl).unwrap().len() > 1000);
    // Let batched writes (last use, audit) reach the files, then scan.
    std::thread::sleep(std::time::Duration::from_secs(6));

    let mut places: Vec<(String, Vec<u8>)> = vec![
        ("server stderr (logs)".into(), log.stderr()),
        (
            "audit export (jsonl)".into(),
            std::fs::read(&jsonl).unwrap(),
        ),
        ("audit export (csv)".into(), std::fs::read(&csv).unwrap()),
    ];
    for file in files_under(&server.data_dir) {
        if let Ok(bytes) = std::fs::read(&file) {
            places.push((file.display().to_string(), bytes));
        }
    }
    assert!(
        places.iter().any(|(p, _)| p.ends_with("assay.db")),
        "the database file was scanned"
    );
    // stdout carries only the first-start announcement, which shows the bootstrap secrets
    // once by design; nothing made later may appear there.
    places.push(("server stdout".into(), log.stdout()));
    let bootstrap: BTreeMap<String, String> = [
        ("bootstrap admin token".to_owned(), server.token.clone()),
        ("bootstrap owner password".to_owned(), bootstrap_password),
    ]
    .into();

    let mut leaks = Vec::new();
    for (place, bytes) in &places {
        for (label, secret) in secrets.iter().chain(&bootstrap) {
            if place == "server stdout" && bootstrap.contains_key(label) {
                continue;
            }
            if let Some(at) = find(bytes, secret) {
                leaks.push(format!(
                    "{label} found in {place}: …{}…",
                    context(bytes, at, secret)
                ));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "secrets leaked:\n  {}",
        leaks.join("\n  ")
    );
    // The scan looked at real content: the logs saw the requests, the export the events.
    let stderr_text = String::from_utf8_lossy(&log.stderr()).into_owned();
    assert!(
        stderr_text.contains("refused a bearer token"),
        "logs were captured"
    );
    assert!(
        String::from_utf8_lossy(&std::fs::read(&jsonl).unwrap()).contains("auth.failed"),
        "the export holds the failures"
    );
}

/// `assay grants`: OAuth grants are a user's own, so the admin API token is refused with
/// the server's reason and a hint (a user's listing and revocation are covered by the
/// server's HTTP tests, which can mint that user's access tokens); a malformed grant ID
/// is refused before any request, without being echoed.
#[test]
fn grants_are_for_users_and_an_api_token_is_told_why() {
    let server = Server::start();
    for args in [
        &["grants", "list"][..],
        &["grants", "revoke", "0193a0a0-0000-7000-8000-0000000000cc"][..],
    ] {
        let out = server.cli(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stdout(&out));
        assert_eq!(stdout(&out), "", "{args:?}");
        assert_eq!(
            stderr(&out),
            "error: refused: OAuth grants belong to users, and an API token acts for no user: \
             sign in as yourself (OAuth or `assay login`) to list or revoke your grants\n\
             hint: use a user's credential (OAuth or `assay login`), not an API token\n",
            "{args:?}"
        );
    }
    let pasted = "eyJhbGciOiJFZERTQSJ9.pasted.by-mistake";
    let out = server.cli(&["grants", "revoke", pasted]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(!err.contains(pasted), "{err}");
    assert!(err.contains("that is not a grant ID"), "{err}");
}
