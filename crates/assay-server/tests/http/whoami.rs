//! `GET /v1/me`: a user's token (no organization in the URL) lists every organization
//! the user belongs to with the environments they reach and their level there; an API
//! token sees its own organization; no token is the exact 401; every answer is audited
//! as `identity.whoami`. Also: a token of the first-party CLI with its top scope acts at
//! the user's own level (org admin work), another client's stays capped.

use crate::oauth_users::{self, member};
use crate::support::{TestApp, expect_problem, http_client};
use assay_auth::jwt::AccessTokenRequest;
use assay_auth::scope::McpScope;
use assay_core::identity::{Membership, OrgRole, User};
use assay_core::oauth::OAuthGrant;
use assay_core::{Environment, Level, Organization};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

const CLI: &str = "assay-cli";

fn me(app: &TestApp) -> String {
    app.url("/v1/me")
}

/// A grant of the pre-registered CLI client (stored by the control plane at start) and
/// an access token of it for the base resource, as `assay login` gets.
async fn cli_token(app: &TestApp, user: Uuid, scope: McpScope) -> String {
    let grant = app
        .store
        .upsert_oauth_grant(&OAuthGrant {
            id: Uuid::now_v7(),
            org_id: app.org_id,
            user_id: user,
            client_id: CLI.into(),
            scope: scope.to_scope_string(),
            resource: app.base.clone(),
            created_at: OffsetDateTime::now_utc(),
            revoked_at: None,
            revoked_reason: None,
        })
        .await
        .unwrap();
    let (subject, grant_id) = (user.to_string(), grant.id.to_string());
    app.plane
        .key_ring()
        .issue(
            &app.base,
            &AccessTokenRequest {
                subject: &subject,
                audience: &app.base,
                client_id: CLI,
                scope,
                lifetime: Duration::from_secs(600),
                grant_id: &grant_id,
                session_id: None,
            },
            OffsetDateTime::now_utc(),
        )
        .unwrap()
        .0
}

/// A second organization, `beta`, with environments `qa` and `prod`.
async fn beta(app: &TestApp) -> (Organization, Environment, Environment) {
    let now = OffsetDateTime::now_utc();
    let org = Organization {
        id: Uuid::now_v7(),
        slug: "beta".into(),
        name: "Beta Corp".into(),
        audit_retention_days: 180,
        created_at: now,
    };
    app.store.insert_org(&org).await.unwrap();
    let env = |slug: &str| Environment {
        id: Uuid::now_v7(),
        org_id: org.id,
        slug: slug.into(),
        name: format!("{slug} env"),
        created_at: now,
    };
    let (qa, prod) = (env("qa"), env("prod"));
    app.store.insert_env(&qa).await.unwrap();
    app.store.insert_env(&prod).await.unwrap();
    (org, qa, prod)
}

async fn get_me(token: &str, app: &TestApp) -> Value {
    let res = http_client(Some(token)).get(me(app)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn whoami_events(app: &TestApp, org: Uuid) -> Vec<assay_core::audit::AuditEvent> {
    app.store
        .audit_events(org, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "identity.whoami")
        .collect()
}

async fn dev(app: &TestApp) -> Environment {
    app.store
        .find_env(app.org_id, "dev")
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_user_sees_every_organization_with_the_environments_they_reach() {
    let app = TestApp::start().await;
    let dev = dev(&app).await;
    // Ada: a member with run on dev in `default` (and nothing on the other env there),
    // an admin in `beta`.
    let ada: User = member(&app, "ada@example.com", Level::Run).await;
    let other = Environment {
        id: Uuid::now_v7(),
        org_id: app.org_id,
        slug: "staging".into(),
        name: "staging".into(),
        created_at: OffsetDateTime::now_utc(),
    };
    app.store.insert_env(&other).await.unwrap();
    let (beta, qa, prod) = beta(&app).await;
    app.store
        .upsert_membership(&Membership {
            org_id: beta.id,
            user_id: ada.id,
            role: OrgRole::Admin,
            grants: BTreeMap::new(),
        })
        .await
        .unwrap();

    let token = cli_token(&app, ada.id, McpScope::Write).await;
    let body = get_me(&token, &app).await;
    let principal = |org: Uuid, access: Value| {
        json!({"kind": "user", "id": ada.id, "display_name": "ada@example.com", "org_id": org,
               "access": access, "auth_method": "cli_login", "credential_id": CLI})
    };
    assert_eq!(
        body,
        json!({
            "kind": "user",
            "id": ada.id,
            "display_name": "ada@example.com",
            "email": "ada@example.com",
            "auth_method": "cli_login",
            "memberships": [
                {
                    "organization": {"id": app.org_id, "slug": "default", "name": "Default"},
                    "role": "member",
                    "principal": principal(app.org_id, json!({"kind": "per_environment", "grants": {dev.id.to_string(): "run"}})),
                    "environments": [{"id": dev.id, "slug": "dev", "name": "dev", "level": "run"}],
                },
                {
                    "organization": {"id": beta.id, "slug": "beta", "name": "Beta Corp"},
                    "role": "admin",
                    "principal": principal(beta.id, json!({"kind": "org_admin"})),
                    "environments": [
                        {"id": prod.id, "slug": "prod", "name": "prod env", "level": "admin"},
                        {"id": qa.id, "slug": "qa", "name": "qa env", "level": "admin"},
                    ],
                },
            ],
        })
    );

    // On the record once in each organization's chain, as Ada through the CLI.
    for org in [app.org_id, beta.id] {
        let events = whoami_events(&app, org).await;
        assert_eq!(events.len(), 1, "{events:?}");
        let e = &events[0];
        assert_eq!(e.outcome, assay_core::audit::Outcome::Success);
        assert_eq!(e.actor.id, ada.id);
        assert_eq!(e.actor.auth_method, assay_core::actor::AuthMethod::CliLogin);
        assert_eq!(e.actor.credential_id.as_deref(), Some(CLI));
        assert_eq!(e.env_id, None);
    }
    assert!(whoami_events(&app, Uuid::nil()).await.is_empty());
    // The admin sees it in the audit export too.
    let res = app
        .client
        .get(app.url("/v1/organizations/default/audit/events?action=identity.whoami"))
        .send()
        .await
        .unwrap();
    let exported: Vec<Value> = res
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(exported.len(), 1, "{exported:?}");
    assert_eq!(exported[0]["actor"]["auth_method"], "cli_login");
    assert_eq!(exported[0]["outcome"], "success");
}

#[tokio::test]
async fn the_scope_bounds_the_levels_shown_except_the_clis_top_scope() {
    let app = TestApp::start().await;
    let owner = app
        .store
        .find_user_by_email(&app.owner_email)
        .await
        .unwrap()
        .unwrap();
    // Another client's top scope caps the owner at write.
    let grant = oauth_users::grant(&app, owner.id, &app.base, McpScope::Write).await;
    let oauth = oauth_users::token(&app, &grant, McpScope::Write);
    let body = get_me(&oauth, &app).await;
    assert_eq!(body["auth_method"], "oauth");
    let m = &body["memberships"][0];
    assert_eq!(m["role"], "owner");
    assert_eq!(m["principal"]["scope_cap"], "write");
    assert_eq!(m["principal"]["credential_id"], oauth_users::CLIENT_ID);
    assert_eq!(m["environments"][0]["level"], "write");
    // …so organization admin work is refused to it,
    let members = app.url("/v1/organizations/default/members");
    let res = http_client(Some(&oauth))
        .get(&members)
        .send()
        .await
        .unwrap();
    expect_problem(res, 403, "forbidden").await;

    // while the CLI's top scope is the owner's own level: admin, members listed.
    let cli = cli_token(&app, owner.id, McpScope::Write).await;
    let body = get_me(&cli, &app).await;
    let m = &body["memberships"][0];
    assert_eq!(m["principal"]["auth_method"], "cli_login");
    assert!(m["principal"].get("scope_cap").is_none(), "{m}");
    assert_eq!(m["environments"][0]["level"], "admin");
    let res = http_client(Some(&cli)).get(&members).send().await.unwrap();
    assert_eq!(res.status(), 200);

    // A narrower CLI grant stays capped.
    let cli_read = cli_token(&app, owner.id, McpScope::Read).await;
    let body = get_me(&cli_read, &app).await;
    let m = &body["memberships"][0];
    assert_eq!(m["principal"]["scope_cap"], "read");
    assert_eq!(m["environments"][0]["level"], "read");
    let res = http_client(Some(&cli_read))
        .get(&members)
        .send()
        .await
        .unwrap();
    expect_problem(res, 403, "forbidden").await;
}

#[tokio::test]
async fn an_api_token_sees_its_own_organization_only() {
    let app = TestApp::start().await;
    let dev = dev(&app).await;
    beta(&app).await;
    // The bootstrap admin token: admin on every environment of `default`.
    let body = get_me(&app.token, &app).await;
    assert_eq!(body["kind"], "api_token");
    assert_eq!(body["auth_method"], "api_token");
    assert!(body.get("email").is_none(), "{body}");
    let memberships = body["memberships"].as_array().unwrap();
    assert_eq!(memberships.len(), 1, "{body}");
    let m = &memberships[0];
    assert_eq!(m["organization"]["slug"], "default");
    assert!(m.get("role").is_none(), "{m}");
    assert_eq!(m["principal"]["access"], json!({"kind": "org_admin"}));
    assert_eq!(
        m["environments"],
        json!([{"id": dev.id, "slug": "dev", "name": "dev", "level": "admin"}])
    );

    // A member token with read on dev, in an organization with a second environment.
    app.store
        .insert_env(&Environment {
            id: Uuid::now_v7(),
            org_id: app.org_id,
            slug: "staging".into(),
            name: "staging".into(),
            created_at: OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();
    let res = app
        .client
        .post(app.url("/v1/organizations/default/tokens"))
        .json(&json!({"name": "ci", "kind": "member", "grants": {"dev": "read"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap();
    let body = get_me(secret, &app).await;
    assert_eq!(body["id"], created["token"]["id"]);
    assert_eq!(body["display_name"], "ci");
    assert_eq!(
        body["memberships"][0]["environments"],
        json!([{"id": dev.id, "slug": "dev", "name": "dev", "level": "read"}])
    );
    assert_eq!(whoami_events(&app, app.org_id).await.len(), 2);
}

#[tokio::test]
async fn without_a_token_it_is_the_exact_401_and_a_user_in_no_organization_sees_none() {
    let app = TestApp::start().await;
    let res = app.anon.get(me(&app)).send().await.unwrap();
    assert_eq!(res.headers()["www-authenticate"], r#"Bearer realm="assay""#);
    let body = expect_problem(res, 401, "unauthenticated").await;
    assert_eq!(
        body["detail"],
        "missing bearer token; pass Authorization: Bearer <token>"
    );
    let res = http_client(Some("assay_not_a_real_token"))
        .get(me(&app))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer realm="assay", error="invalid_token""#
    );
    let body = expect_problem(res, 401, "unauthenticated").await;
    assert_eq!(
        body["detail"],
        "the bearer token is not a valid Assay token"
    );

    // A user whose only membership was removed: still themselves, in no organization,
    // and on the record in the unscoped chain.
    let ada = member(&app, "ada@example.com", Level::Run).await;
    let token = cli_token(&app, ada.id, McpScope::Write).await;
    app.store
        .delete_membership(app.org_id, ada.id)
        .await
        .unwrap();
    let body = get_me(&token, &app).await;
    assert_eq!(body["id"], ada.id.to_string());
    assert_eq!(body["memberships"], json!([]));
    let events = whoami_events(&app, Uuid::nil()).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].actor.id, ada.id);
    // At an organization's routes the token is checked against that organization.
    let res = http_client(Some(&token))
        .get(app.env_url("/workflows"))
        .send()
        .await
        .unwrap();
    expect_problem(res, 401, "unauthenticated").await;
}

/// Only `GET /v1/me` takes an access token without an organization. An organization
/// route whose `{org}` cannot be read (not UTF-8 once percent-decoded) refuses it with the
/// exact 401 it always did, audited into the unscoped chain.
#[tokio::test]
async fn an_access_token_is_refused_where_no_organization_can_be_read() {
    let app = TestApp::start().await;
    let ada = member(&app, "ada@example.com", Level::Run).await;
    let token = cli_token(&app, ada.id, McpScope::Write).await;
    assert_eq!(get_me(&token, &app).await["id"], ada.id.to_string());
    let detail = "an OAuth access token is valid only at an organization's endpoints";
    let paths = [
        "/v1/organizations/%FF/environments/dev/workflows",
        "/v1/organizations/%FF/members",
        "/v1/organizations/%FF/me/grants",
    ];
    for path in paths {
        let res = http_client(Some(&token))
            .get(app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.headers()["www-authenticate"],
            r#"Bearer realm="assay", error="invalid_token""#,
            "{path}"
        );
        let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        let body = expect_problem(res, 401, "unauthenticated").await;
        assert_eq!(
            body,
            json!({
                "type": "urn:assay:problem:unauthenticated",
                "title": "Authentication required",
                "status": 401,
                "detail": detail,
                "request_id": request_id,
            }),
            "{path}"
        );
    }
    let refused: Vec<_> = app
        .store
        .audit_events(Uuid::nil(), 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "auth.failed")
        .collect();
    assert_eq!(refused.len(), paths.len(), "{refused:?}");
    for e in &refused {
        assert_eq!(e.reason.as_deref(), Some(detail));
        assert_eq!(e.actor.credential_id.as_deref(), Some(CLI));
    }
    // The same token still works where the organization is named, and at `/v1/me`.
    let res = http_client(Some(&token))
        .get(app.env_url("/workflows"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(get_me(&token, &app).await["id"], ada.id.to_string());
}
