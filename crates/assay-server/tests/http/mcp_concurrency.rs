//! Isolation under load: 1,000 MCP tool calls in flight at once from 10 principals, each
//! confined to its own environment, with JSON-RPC ids that collide across principals.
//! Every answer must reach the request that asked for it, and say only what that
//! principal may see; the audit log must hold exactly one event per call, on the right
//! token.
//!
//! No REST route creates environments, so they go into the store directly, before any
//! request names them.

use crate::support::{TestApp, http_client};
use assay_core::tenancy::Environment;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

const PRINCIPALS: usize = 10;
const CALLS_EACH: u64 = 100;
const PROTOCOL: &str = "2025-11-25";

/// One principal: a member token with read on exactly its own environment, which holds
/// exactly one workflow whose name appears nowhere else.
struct Tenant {
    env_slug: String,
    env_id: uuid::Uuid,
    workflow: String,
    token_id: String,
    client: reqwest::Client,
}

struct Setup {
    base: String,
    admin: reqwest::Client,
    tenants: Vec<Tenant>,
    _app: TestApp,
}

async fn start() -> Setup {
    let app = TestApp::start().await;
    let mut envs = Vec::new();
    for i in 0..PRINCIPALS {
        let env = Environment {
            id: uuid::Uuid::now_v7(),
            org_id: app.org_id,
            slug: format!("team-{i:02}"),
            name: format!("team {i:02}"),
            created_at: time::OffsetDateTime::now_utc(),
        };
        app.store.insert_env(&env).await.unwrap();
        envs.push(env);
    }
    let base = app.base.clone();
    let admin = app.client.clone();

    let mut tenants = Vec::new();
    for env in envs {
        let workflow = format!("only-in-{}", env.slug);
        let yaml = format!(
            "kind: TestWorkflow\nmetadata:\n  name: {workflow}\nspec:\n  steps:\n  - shell: echo hi\n"
        );
        let res = admin
            .post(format!(
                "{base}/v1/organizations/default/environments/{}/workflows",
                env.slug
            ))
            .header("content-type", "text/yaml")
            .body(yaml)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let res = admin
            .post(format!("{base}/v1/organizations/default/tokens"))
            .json(
                &json!({"name": format!("agent-{}", env.slug), "kind": "member",
                          "grants": {env.slug.as_str(): "read"}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let created: Value = res.json().await.unwrap();
        assert_eq!(
            created["token"]["grants"],
            json!({env.slug.as_str(): "read"})
        );
        tenants.push(Tenant {
            workflow,
            token_id: created["token"]["id"].as_str().unwrap().to_owned(),
            client: http_client(Some(created["secret"].as_str().unwrap())),
            env_slug: env.slug,
            env_id: env.id,
        });
    }
    Setup {
        base,
        admin,
        tenants,
        _app: app,
    }
}

/// Even ids list the environment's workflows, odd ids read its one workflow by name.
fn request(id: u64, tenant: &Tenant) -> Value {
    let (tool, arguments) = if id.is_multiple_of(2) {
        ("list_workflows", json!({}))
    } else {
        ("get_workflow", json!({"workflowName": tenant.workflow}))
    };
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": tool, "arguments": arguments}})
}

/// What came back for one call: (principal index, id sent, HTTP status, body).
type Answer = (usize, u64, u16, String);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_from_ten_principals_never_cross() {
    let setup = start().await;
    let total = PRINCIPALS * CALLS_EACH as usize;
    // Every task waits here, so all requests are built before the first is sent.
    let gate = Arc::new(Barrier::new(total));
    let mut calls: JoinSet<Answer> = JoinSet::new();
    for (who, tenant) in setup.tenants.iter().enumerate() {
        let url = format!(
            "{}/organizations/default/environments/{}/mcp",
            setup.base, tenant.env_slug
        );
        for id in 1..=CALLS_EACH {
            let (client, url, gate) = (tenant.client.clone(), url.clone(), gate.clone());
            let body = request(id, tenant);
            calls.spawn(async move {
                gate.wait().await;
                let res = client
                    .post(&url)
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", PROTOCOL)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = res.status().as_u16();
                (who, id, status, res.text().await.unwrap())
            });
        }
    }
    let answers: Vec<Answer> = calls.join_all().await;
    assert_eq!(answers.len(), total);

    let workflows: Vec<&str> = setup.tenants.iter().map(|t| t.workflow.as_str()).collect();
    for (who, id, status, body) in &answers {
        let own = workflows[*who];
        assert_eq!(*status, 200, "principal {who}, id {id}: {body}");
        let message: Value = serde_json::from_str(body).unwrap();
        assert_eq!(message["id"], json!(id), "principal {who}: {body}");
        let result = &message["result"];
        assert_eq!(result["isError"], false, "principal {who}, id {id}: {body}");
        let structured = &result["structuredContent"];
        if id.is_multiple_of(2) {
            assert_eq!(structured["total"], 1, "{body}");
            assert_eq!(structured["workflows"].as_array().unwrap().len(), 1);
            assert_eq!(structured["workflows"][0]["name"], own, "{body}");
        } else {
            assert_eq!(structured["name"], own, "{body}");
            assert_eq!(structured["definition"]["metadata"]["name"], own, "{body}");
        }
        assert!(body.contains(own), "principal {who}, id {id}: {body}");
        for (other, name) in workflows.iter().enumerate() {
            assert!(
                other == *who || !body.contains(name),
                "principal {who} (id {id}) saw {name}: {body}"
            );
        }
    }

    // One audit event per call, on the calling token, in its own environment; nothing
    // else done by these tokens. (Events are committed before the answers were sent.)
    let res = setup
        .admin
        .get(format!(
            "{}/v1/organizations/default/audit/events",
            setup.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let export = res.text().await.unwrap();
    let by_token: BTreeMap<&str, &Tenant> = setup
        .tenants
        .iter()
        .map(|t| (t.token_id.as_str(), t))
        .collect();
    let mut per_token: BTreeMap<&str, BTreeMap<String, u64>> = BTreeMap::new();
    for line in export.lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        let Some(credential) = event["actor"]["credential_id"].as_str() else {
            continue;
        };
        let Some((token_id, tenant)) = by_token.get_key_value(credential) else {
            continue;
        };
        assert_eq!(event["outcome"], "success", "{event}");
        assert_eq!(event["env_id"], tenant.env_id.to_string(), "{event}");
        let action = event["action"].as_str().unwrap().to_owned();
        if action == "workflow.get" {
            assert_eq!(
                event["resources"],
                json!([format!("workflow:{}", tenant.workflow)]),
                "{event}"
            );
        }
        *per_token
            .entry(*token_id)
            .or_default()
            .entry(action)
            .or_default() += 1;
    }
    let expected: BTreeMap<String, u64> = [
        ("workflow.get".to_owned(), CALLS_EACH / 2),
        ("workflow.list".to_owned(), CALLS_EACH / 2),
    ]
    .into();
    assert_eq!(per_token.len(), PRINCIPALS, "{per_token:?}");
    for tenant in &setup.tenants {
        assert_eq!(
            per_token.get(tenant.token_id.as_str()),
            Some(&expected),
            "{}",
            tenant.env_slug
        );
    }
    let audited: u64 = per_token.values().flat_map(|m| m.values()).sum();
    assert_eq!(audited, total as u64);
}
