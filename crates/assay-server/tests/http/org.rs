//! Organization routes: members, API tokens and audit. The scripted control plane checks
//! what the HTTP edge does (org passed to the authenticator, streamed CSV/JSON lines,
//! problem wording, secrets never echoed); the real one checks a token's life end to end.

use crate::fake::{FakeApp, GOOD_TOKEN};
use crate::support::{CapturedLogs, TestApp, expect_problem, http_client};
use futures::StreamExt;
use serde_json::{Value, json};

#[tokio::test]
async fn the_addressed_organization_reaches_the_authenticator_decoded() {
    let app = FakeApp::start().await;
    let res = app
        .client
        .get(app.org_url("ac%20me", "/members"))
        .send()
        .await
        .unwrap();
    expect_problem(res, 404, "not-found").await;
    assert_eq!(
        *app.fake.last_auth_org.lock().unwrap(),
        Some(Some("ac me".to_owned()))
    );
    let res = app
        .client
        .get(app.env_url("/workflows"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        *app.fake.last_auth_org.lock().unwrap(),
        Some(Some("acme".to_owned()))
    );
}

#[tokio::test]
async fn csv_exports_stream_a_header_and_defused_rows() {
    let app = FakeApp::start().await;
    let res = app
        .client
        .get(app.org_url("hostile", "/audit/events?format=csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body = res.text().await.unwrap();
    let rows: Vec<&str> = body.split_terminator("\r\n").collect();
    assert_eq!(rows.len(), 4, "{body:?}");
    assert_eq!(
        rows[0],
        "seq,time,org_id,env_id,actor_kind,actor_id,actor_name,auth_method,credential_id,\
         action,resources,outcome,reason,ip,user_agent,mcp_client,request_id,prev_hash,hash"
    );
    let nil = uuid::Uuid::nil();
    assert_eq!(
        rows[1],
        format!(
            "1,2025-01-02T03:04:05Z,{nil},,user,{nil},'=1+2,session,,member.add,\"user:a;user:b\",\
             success,'@SUM(A1),127.0.0.1,\"a,\"\"b\"\"\\u{{a}}c\\u{{1b}}\",,r1,{},{}",
            "0".repeat(64),
            "f".repeat(64)
        )
    );
    assert!(rows[3].starts_with("3,"));
}

#[tokio::test]
async fn jsonl_is_the_default_export_and_the_filter_is_passed_on() {
    let app = FakeApp::start().await;
    let res = app
        .client
        .get(app.org_url(
            "hostile",
            "/audit/events?since=2025-01-01T00:00:00Z&until=2025-02-01T00:00:00Z\
             &actor=ci&action=token.*&env=dev&outcome=denied",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let body = res.text().await.unwrap();
    let seqs: Vec<i64> = body
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    let filter = app.fake.last_audit_filter.lock().unwrap().clone().unwrap();
    assert_eq!(
        serde_json::to_value(&filter).unwrap(),
        json!({"since": "2025-01-01T00:00:00Z", "until": "2025-02-01T00:00:00Z",
               "actor": "ci", "action": "token.*", "env": "dev", "outcome": "denied"})
    );
}

#[tokio::test]
async fn bad_export_parameters_are_named_before_anything_is_exported() {
    let app = FakeApp::start().await;
    let res = app
        .client
        .get(app.org_url(
            "hostile",
            "/audit/events?format=xlsx&outcome=maybe&since=yesterday",
        ))
        .send()
        .await
        .unwrap();
    let body = expect_problem(res, 422, "invalid").await;
    let paths: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, vec!["since", "outcome", "format"]);
    let res = app
        .client
        .get(app.org_url(
            "hostile",
            "/audit/events?since=2025-02-01T00:00:00Z&until=2025-01-01T00:00:00Z",
        ))
        .send()
        .await
        .unwrap();
    let body = expect_problem(res, 422, "invalid").await;
    assert_eq!(body["errors"][0]["path"], "until");
    assert!(app.fake.last_audit_filter.lock().unwrap().is_none());
}

#[tokio::test]
async fn a_failing_export_is_cut_off_not_completed() {
    let app = FakeApp::start().await;
    let res = app
        .client
        .get(app.org_url("broken-export", "/audit/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut body = res.bytes_stream();
    let mut got = Vec::new();
    let mut failed = false;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => got.extend_from_slice(&c),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the client must see a broken body, got {got:?}");
    assert_eq!(
        String::from_utf8_lossy(&got).lines().count(),
        1,
        "the event before the failure was sent"
    );
}

#[tokio::test]
async fn forbidden_on_organization_routes_says_what_is_needed() {
    let app = FakeApp::start().await;
    let res = app
        .client
        .get(app.org_url("forbidden", "/members"))
        .send()
        .await
        .unwrap();
    let body = expect_problem(res, 403, "forbidden").await;
    assert_eq!(
        body["detail"],
        "this needs organization admin rights (an owner or admin user, or an admin API token)"
    );
    let res = app
        .client
        .get(app.org_url("forbidden", "/tokens"))
        .send()
        .await
        .unwrap();
    let body = expect_problem(res, 403, "forbidden").await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .ends_with("(this needs write permission)"),
        "{body}"
    );
}

#[tokio::test]
async fn a_secret_where_a_token_id_belongs_is_never_echoed() {
    let app = FakeApp::start().await;
    let (secret, _) = assay_control::tokens::generate();
    for path in [
        format!("/tokens/{secret}"),
        format!("/tokens/{secret}/revoke"),
    ] {
        let method = if path.ends_with("revoke") {
            reqwest::Method::POST
        } else {
            reqwest::Method::GET
        };
        let res = app
            .client
            .request(method, app.org_url("acme", &path))
            .send()
            .await
            .unwrap();
        let body = expect_problem(res, 404, "not-found").await;
        assert!(!body.to_string().contains(&secret), "{body}");
    }
}

#[tokio::test]
async fn member_bodies_are_checked_field_by_field_without_quoting_passwords() {
    let app = FakeApp::start().await;
    let res = app
        .client
        .post(app.org_url("acme", "/members"))
        .json(&json!({"email": "a@b.c", "role": "member", "pasword": "hunter2"}))
        .send()
        .await
        .unwrap();
    let body = expect_problem(res, 422, "invalid").await;
    assert_eq!(body["errors"][0]["path"], "pasword");
    let res = app
        .client
        .post(app.org_url("acme", "/members"))
        .json(&json!({"email": "a@b.c", "role": "member", "password": 31337}))
        .send()
        .await
        .unwrap();
    let body = expect_problem(res, 422, "invalid").await;
    assert_eq!(
        body["errors"],
        json!([{"path": "password", "message": "must be a string"}])
    );
    assert!(!body.to_string().contains("31337"), "{body}");
    let res = app
        .client
        .post(app.org_url("acme", "/members"))
        .json(&json!({"email": "a@b.c", "role": "superuser"}))
        .send()
        .await
        .unwrap();
    let body = expect_problem(res, 422, "invalid").await;
    assert_eq!(body["errors"][0]["path"], "role");
    // A well-formed body reaches the control plane (which scripts a 404 here).
    let res = app
        .client
        .post(app.org_url("acme", "/members"))
        .json(&json!({"email": "a@b.c", "role": "member", "grants": {"dev": "run"}}))
        .send()
        .await
        .unwrap();
    expect_problem(res, 404, "not-found").await;
    assert!(app.fake.last_actor.lock().unwrap().is_some());
    let _ = GOOD_TOKEN;
}

// --- the real control plane --------------------------------------------------------------

async fn post(client: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let res = client.post(url).json(&body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_member_token_lives_is_rotated_and_revoked_over_rest() {
    let app = TestApp::start().await;
    let tokens_url = app.url("/v1/organizations/default/tokens");
    let res = app
        .client
        .post(&tokens_url)
        .json(
            &json!({"name": "ci", "kind": "member", "grants": {"dev": "read"},
                      "expires_in_days": 30}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = res.json().await.unwrap();
    let id = created["token"]["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("{tokens_url}/{id}"));
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("assay_"), "{created}");
    assert_eq!(created["token"]["grants"], json!({"dev": "read"}));
    assert_eq!(created["token"]["state"], "active");
    assert_eq!(created["token"]["never_expires"], false);

    // Read is allowed, run is not.
    let member = http_client(Some(&secret));
    let res = member.get(app.env_url("/workflows")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    app.create_workflow(
        "kind: TestWorkflow\nmetadata:\n  name: hello\nspec:\n  steps:\n  - shell: echo hi\n",
    )
    .await;
    let res = member
        .post(app.env_url("/workflows/hello/executions"))
        .send()
        .await
        .unwrap();
    let body = expect_problem(res, 403, "forbidden").await;
    assert!(body["detail"].as_str().unwrap().contains("run"), "{body}");
    // A member token manages no tokens and no members.
    let (status, _) = post(
        &member,
        tokens_url.clone(),
        json!({"name": "escalate", "kind": "admin"}),
    )
    .await;
    assert_eq!(status, 403);
    let res = member
        .get(app.url("/v1/organizations/default/members"))
        .send()
        .await
        .unwrap();
    expect_problem(res, 403, "forbidden").await;

    // Listing and showing never reveal a secret or its hash.
    let listed: Value = app
        .client
        .get(&tokens_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!listed.to_string().contains(&secret));
    assert!(!listed.to_string().contains("secret"), "{listed}");
    let shown: Value = app
        .client
        .get(format!("{tokens_url}/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["name"], "ci");

    // Rotation without grace: the old secret stops at once, the new one works.
    let (status, rotated) = post(&app.client, format!("{tokens_url}/{id}/rotate"), json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    let res = member.get(app.env_url("/workflows")).send().await.unwrap();
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer realm="assay", error="invalid_token""#
    );
    expect_problem(res, 401, "unauthenticated").await;
    let rotated_client = http_client(Some(&new_secret));
    let res = rotated_client
        .get(app.env_url("/workflows"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // A grace period beyond 24 h is refused.
    let (status, body) = post(
        &app.client,
        format!("{tokens_url}/{id}/rotate"),
        json!({"grace_secs": 86_401}),
    )
    .await;
    assert_eq!(status, 422, "{body}");

    // Revocation stops it at once.
    let (status, revoked) = post(&app.client, format!("{tokens_url}/{id}/revoke"), json!({})).await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["state"], "revoked");
    let res = rotated_client
        .get(app.env_url("/workflows"))
        .send()
        .await
        .unwrap();
    expect_problem(res, 401, "unauthenticated").await;

    // The chain verifies and records the lifecycle.
    let report: Value = app
        .client
        .get(app.url("/v1/organizations/default/audit/verify"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["ok"], true, "{report}");
    let export = app
        .client
        .get(app.url("/v1/organizations/default/audit/events?action=token.*"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let actions: Vec<String> = export
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for expected in ["token.created", "token.rotated", "token.revoked"] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} in {actions:?}"
        );
    }
    assert!(!export.contains(&secret) && !export.contains(&new_secret));
    app.stop().await;
}

#[tokio::test]
async fn members_are_added_changed_and_removed_over_rest() {
    let app = TestApp::start().await;
    let members_url = app.url("/v1/organizations/default/members");
    let res = app
        .client
        .post(&members_url)
        .json(&json!({"email": "bob@example.com", "display_name": "Bob",
                      "password": "correct horse battery staple", "role": "member",
                      "grants": {"dev": "run"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let added: Value = res.json().await.unwrap();
    assert_eq!(added["email"], "bob@example.com");
    assert_eq!(added["grants"], json!({"dev": "run"}));
    assert!(!added.to_string().contains("correct horse"));

    let res = app
        .client
        .patch(format!("{members_url}/bob@example.com"))
        .json(&json!({"grants": {"dev": "write"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let changed: Value = res.json().await.unwrap();
    assert_eq!(changed["grants"], json!({"dev": "write"}));
    assert_eq!(changed["disabled"], false);
    // Disabling ends every grant at once.
    let res = app
        .client
        .patch(format!("{members_url}/bob@example.com"))
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let changed: Value = res.json().await.unwrap();
    assert_eq!(changed["grants"], json!({}));
    assert_eq!(changed["disabled"], true);

    let listed: Value = app
        .client
        .get(&members_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let emails: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert!(emails.contains(&"bob@example.com"), "{listed}");

    let res = app
        .client
        .delete(format!("{members_url}/bob@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = app
        .client
        .delete(format!("{members_url}/bob@example.com"))
        .send()
        .await
        .unwrap();
    expect_problem(res, 404, "not-found").await;

    // Settings round-trip; less than a day is refused.
    let url = app.url("/v1/organizations/default/audit/settings");
    let got: Value = app
        .client
        .get(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, json!({"retention_days": 180}));
    let res = app
        .client
        .put(&url)
        .json(&json!({"retention_days": 30}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"retention_days": 30})
    );
    let res = app
        .client
        .put(&url)
        .json(&json!({"retention_days": 0}))
        .send()
        .await
        .unwrap();
    expect_problem(res, 422, "invalid").await;
    app.stop().await;
}

#[tokio::test]
async fn values_pasted_into_url_paths_never_reach_the_logs() {
    let (logs, _guard) = CapturedLogs::start();

    let app = FakeApp::start().await;
    let password = "Tr0ub4dor-pasted-by-mistake";
    // A token ID route answers GET (404: no such token); a member route has no GET (405).
    for (path, status, kind) in [
        (format!("/tokens/{password}"), 404, "not-found"),
        (format!("/members/{password}"), 405, "method-not-allowed"),
    ] {
        let res = app
            .client
            .get(app.org_url("acme", &path))
            .send()
            .await
            .unwrap();
        expect_problem(res, status, kind).await;
    }
    // A path no route matches is logged (for debugging), secrets masked.
    let res = app
        .client
        .get(format!("{}/v2/assay_not_for_logs", app.base))
        .send()
        .await
        .unwrap();
    expect_problem(res, 404, "not-found").await;

    let logs = logs.text();
    assert!(!logs.contains(password), "{logs}");
    assert!(!logs.contains("assay_not_for_logs"), "{logs}");
    assert!(
        logs.contains("/v1/organizations/{org}/tokens/{id}"),
        "the route template is logged:\n{logs}"
    );
    assert!(logs.contains("/v2/assay_***"), "{logs}");
}
