//! `GET/DELETE /v1/organizations/{org}/me/grants`: a user lists and revokes their own OAuth
//! grants with an OAuth access token; another user's grant is a 404 like a missing one;
//! an API token is a 403 saying why.

use crate::oauth_users::{CLIENT_ID, CLIENT_NAME, grant, member, refresh_token, token};
use crate::support::{TestApp, expect_problem, http_client};
use assay_auth::scope::McpScope;
use assay_core::Level;
use assay_core::oauth::RefreshRedemption;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn grants_url(app: &TestApp) -> String {
    app.url("/v1/organizations/default/me/grants")
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

#[tokio::test]
async fn users_list_and_revoke_their_own_grants_only() {
    let app = TestApp::start().await;
    let ada = member(&app, "ada@example.com", Level::Run).await;
    let bob = member(&app, "bob@example.com", Level::Read).await;
    let (_, dev_resource) = crate::oauth_users::dev_mcp(&app);
    // Ada's grant for the base resource (what her REST token names), and one for the
    // dev MCP endpoint; Bob's grant.
    let ada_base = grant(&app, ada.id, &app.base, McpScope::Run).await;
    let ada_dev = grant(&app, ada.id, &dev_resource, McpScope::Read).await;
    let bobs = grant(&app, bob.id, &app.base, McpScope::Read).await;
    let ada_refresh = refresh_token(&app, &ada_dev).await;
    let ada_client = http_client(Some(&token(&app, &ada_base, McpScope::Run)));
    let bob_client = http_client(Some(&token(&app, &bobs, McpScope::Read)));

    let res = ada_client.get(grants_url(&app)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let listed: Value = res.json().await.unwrap();
    assert_eq!(
        listed,
        json!({"items": [
            {"id": ada_dev.id, "client_id": CLIENT_ID, "client_name": CLIENT_NAME,
             "client_kind": "metadata-document", "scope": "mcp:read",
             "resource": dev_resource, "created_at": rfc3339(ada_dev.created_at)},
            {"id": ada_base.id, "client_id": CLIENT_ID, "client_name": CLIENT_NAME,
             "client_kind": "metadata-document", "scope": "mcp:read mcp:run",
             "resource": app.base, "created_at": rfc3339(ada_base.created_at)},
        ]})
    );

    // Bob cannot revoke Ada's grant; he is told exactly what a missing ID tells him.
    let res = bob_client
        .delete(format!("{}/{}", grants_url(&app), ada_dev.id))
        .send()
        .await
        .unwrap();
    let body = expect_problem(res, 404, "not-found").await;
    assert_eq!(
        body["detail"],
        format!("grant \"{}\" not found", ada_dev.id)
    );
    let missing = uuid::Uuid::now_v7();
    let res = bob_client
        .delete(format!("{}/{missing}", grants_url(&app)))
        .send()
        .await
        .unwrap();
    let body = expect_problem(res, 404, "not-found").await;
    assert_eq!(body["detail"], format!("grant \"{missing}\" not found"));
    let res = bob_client
        .delete(format!("{}/not-a-grant", grants_url(&app)))
        .send()
        .await
        .unwrap();
    let body = expect_problem(res, 404, "not-found").await;
    assert_eq!(
        body["detail"],
        "no such grant; use a grant ID as listed by GET …/me/grants"
    );
    // Bob sees only his own.
    let res = bob_client.get(grants_url(&app)).send().await.unwrap();
    let listed: Value = res.json().await.unwrap();
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [bobs.id.to_string()]);

    // Ada revokes her dev grant: 204, empty.
    let res = ada_client
        .delete(format!("{}/{}", grants_url(&app), ada_dev.id))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(res.text().await.unwrap(), "");
    // The grant and its refresh token are revoked in the store (the token endpoint
    // refuses a revoked refresh token through this very redemption).
    let stored = app
        .store
        .get_oauth_grant(ada_dev.id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.revoked_at.is_some(), "{stored:?}");
    assert_eq!(
        stored.revoked_reason.as_deref(),
        Some("revoked by the user")
    );
    let redeemed = app
        .store
        .use_refresh_token(&ada_refresh.token_hash, OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(
        matches!(redeemed, Some(RefreshRedemption::Revoked(_))),
        "{redeemed:?}"
    );
    // Gone from her list; a second revocation is a 404 like any other ID.
    let listed: Value = ada_client
        .get(grants_url(&app))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["items"][0]["id"], ada_base.id.to_string());
    let res = ada_client
        .delete(format!("{}/{}", grants_url(&app), ada_dev.id))
        .send()
        .await
        .unwrap();
    let body = expect_problem(res, 404, "not-found").await;
    assert_eq!(
        body["detail"],
        format!("grant \"{}\" not found", ada_dev.id)
    );
    // Bob's grant is untouched.
    assert!(
        app.store
            .get_oauth_grant(bobs.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );

    // On the record: Ada's revocation as a success, Bob's attempts as denied.
    let res = app
        .client
        .get(app.url("/v1/organizations/default/audit/events?action=oauth.grant.revoked"))
        .send()
        .await
        .unwrap();
    let events: Vec<Value> = res
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["actor"]["id"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let (a, b) = (ada.id.to_string(), bob.id.to_string());
    assert_eq!(
        summary,
        [
            (b.clone(), "denied".to_owned()),
            (b, "denied".to_owned()),
            (a.clone(), "success".to_owned()),
            (a, "denied".to_owned()),
        ]
    );
    assert_eq!(
        events[2]["resources"],
        json!([
            format!("grant:{}", ada_dev.id),
            format!("client:{CLIENT_ID}")
        ])
    );
    assert_eq!(events[2]["actor"]["auth_method"], "oauth");
}

#[tokio::test]
async fn an_api_token_has_no_grants_and_gets_a_403_saying_why() {
    let app = TestApp::start().await;
    let ada = member(&app, "ada@example.com", Level::Run).await;
    let adas = grant(&app, ada.id, &app.base, McpScope::Read).await;
    let why = "OAuth grants belong to users, and an API token acts for no user: sign in as \
               yourself (OAuth or `assay login`) to list or revoke your grants";

    let res = app.client.get(grants_url(&app)).send().await.unwrap();
    assert!(res.headers().get("www-authenticate").is_none());
    let body = expect_problem(res, 403, "forbidden").await;
    assert_eq!(body["detail"], why);
    // Even the admin token cannot revoke a user's grant.
    let res = app
        .client
        .delete(format!("{}/{}", grants_url(&app), adas.id))
        .send()
        .await
        .unwrap();
    let body = expect_problem(res, 403, "forbidden").await;
    assert_eq!(body["detail"], why);
    assert!(
        app.store
            .get_oauth_grant(adas.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
    // Without any token: the ordinary 401.
    let res = app.anon.get(grants_url(&app)).send().await.unwrap();
    expect_problem(res, 401, "unauthenticated").await;
}
