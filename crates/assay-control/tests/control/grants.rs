//! A user's own OAuth grants through the control plane (list, revoke), and the step-up
//! refusal: a scope narrower than the role is `InsufficientScope`, a role too low stays
//! `Forbidden`.

use crate::harness::*;
use assay_core::actor::Access;
use assay_core::audit::Outcome;
use assay_core::identity::{ApiTokenKind, OrgRole};
use assay_core::oauth::{
    OAuthClient, OAuthClientKind, OAuthGrant, RefreshRedemption, RefreshToken,
};
use assay_core::ports::{ControlPlane, Store};
use assay_core::{Error, Level};
use uuid::Uuid;

pub const CLIENT_ID: &str = "https://client.example/oauth.json";
const OTHER_CLIENT: &str = "https://other.example/client.json";
const RESOURCE: &str = "https://assay.example/organizations/acme/environments/dev/mcp";

/// Stores `CLIENT_ID` once.
async fn ensure_client(app: &TestApp, id: &str, name: &str) {
    if app.store.get_oauth_client(id).await.unwrap().is_some() {
        return;
    }
    app.store
        .insert_oauth_client(&OAuthClient {
            id: id.into(),
            kind: OAuthClientKind::MetadataDocument,
            client_name: name.into(),
            redirect_uris: vec!["https://client.example/callback".into()],
            created_at: time::OffsetDateTime::now_utc(),
            last_used_at: None,
            expires_at: None,
        })
        .await
        .unwrap();
}

async fn grant_in(
    app: &TestApp,
    org: Uuid,
    user: Uuid,
    client: &str,
    resource: &str,
    scope: &str,
) -> OAuthGrant {
    ensure_client(app, client, "Example Client").await;
    app.store
        .upsert_oauth_grant(&OAuthGrant {
            id: Uuid::now_v7(),
            org_id: org,
            user_id: user,
            client_id: client.into(),
            scope: scope.into(),
            resource: resource.into(),
            created_at: time::OffsetDateTime::now_utc(),
            revoked_at: None,
            revoked_reason: None,
        })
        .await
        .unwrap()
}

/// A live grant of `user` in acme for `CLIENT_ID` and a fresh resource (so each call
/// makes a new grant rather than replacing one).
pub async fn grant_for(app: &TestApp, user: Uuid, scope: &str) -> OAuthGrant {
    let resource = format!("{RESOURCE}?n={}", Uuid::now_v7());
    grant_in(app, app.t.acme.id, user, CLIENT_ID, &resource, scope).await
}

fn refresh_token(grant: &OAuthGrant) -> RefreshToken {
    let now = time::OffsetDateTime::now_utc();
    RefreshToken {
        token_hash: format!("{:064x}", grant.id.as_u128()),
        family_id: Uuid::now_v7(),
        grant_id: grant.id,
        client_id: grant.client_id.clone(),
        resource: grant.resource.clone(),
        scope: grant.scope.clone(),
        created_at: now,
        expires_at: now + time::Duration::days(30),
        idle_expires_at: now + time::Duration::days(14),
        used_at: None,
        revoked_at: None,
    }
}

#[tokio::test]
async fn a_user_lists_only_their_own_live_grants_in_the_organization() {
    let app = TestApp::start(1).await;
    let ada = app.person("ada@acme.test", OrgRole::Member, &[]).await;
    let bob = app.person("bob@acme.test", OrgRole::Member, &[]).await;
    let ada_id = ada.principal.id;

    let first = grant_in(&app, app.t.acme.id, ada_id, CLIENT_ID, RESOURCE, "mcp:read").await;
    ensure_client(&app, OTHER_CLIENT, "Other Client").await;
    let second = grant_in(
        &app,
        app.t.acme.id,
        ada_id,
        OTHER_CLIENT,
        "https://assay.example",
        "mcp:read mcp:run",
    )
    .await;
    // Bob's grant, Ada's grant in another organization, and a revoked one are not shown.
    grant_in(
        &app,
        app.t.acme.id,
        bob.principal.id,
        CLIENT_ID,
        RESOURCE,
        "mcp:read",
    )
    .await;
    grant_in(
        &app,
        app.t.other.id,
        ada_id,
        CLIENT_ID,
        RESOURCE,
        "mcp:read",
    )
    .await;
    let gone = grant_for(&app, ada_id, "mcp:write").await;
    assert!(
        app.store
            .revoke_oauth_grant(gone.id, time::OffsetDateTime::now_utc(), "test")
            .await
            .unwrap()
    );

    let listed = app.plane.list_my_grants(&ada, "acme").await.unwrap();
    let ids: Vec<Uuid> = listed.iter().map(|g| g.id).collect();
    assert_eq!(ids, vec![second.id, first.id], "newest first: {listed:?}");
    let cli = &listed[0];
    assert_eq!(cli.client_id, OTHER_CLIENT);
    assert_eq!(cli.client_name, "Other Client");
    assert_eq!(cli.client_kind, OAuthClientKind::MetadataDocument);
    assert_eq!(cli.scope, "mcp:read mcp:run");
    assert_eq!(cli.resource, "https://assay.example");
    assert_eq!(cli.created_at, second.created_at);
    assert_eq!(listed[1].client_name, "Example Client");
    assert_eq!(listed[1].resource, RESOURCE);

    // By ID as well as by slug; another organization is not found.
    let by_id = app
        .plane
        .list_my_grants(&ada, &app.t.acme.id.to_string())
        .await
        .unwrap();
    assert_eq!(by_id, listed);
    let err = app.plane.list_my_grants(&ada, "other").await.unwrap_err();
    assert_eq!(err.to_string(), r#"organization "other" not found"#);

    let events = app.audit(app.t.acme.id).await;
    let lists: Vec<_> = events
        .iter()
        .filter(|e| e.action == "oauth.grant.list")
        .collect();
    // Reads are audited like other reads; the other organization's refusal lands in
    // Ada's own chain.
    let outcomes: Vec<Outcome> = lists.iter().map(|e| e.outcome).collect();
    assert_eq!(
        outcomes,
        vec![Outcome::Success, Outcome::Success, Outcome::Denied]
    );
    assert!(lists.iter().all(|e| e.actor.id == ada_id));
}

#[tokio::test]
async fn revoking_ends_the_grant_and_its_refresh_tokens_and_others_grants_are_not_found() {
    let app = TestApp::start(1).await;
    let ada = app.person("ada@acme.test", OrgRole::Member, &[]).await;
    let bob = app.person("bob@acme.test", OrgRole::Owner, &[]).await;
    let grant = grant_for(&app, ada.principal.id, "mcp:run").await;
    let refresh = refresh_token(&grant);
    app.store.insert_refresh_token(&refresh).await.unwrap();
    let bobs = grant_for(&app, bob.principal.id, "mcp:read").await;

    // Bob — an owner — cannot revoke Ada's grant, and cannot tell it exists.
    let not_found = format!(r#"grant "{}" not found"#, grant.id);
    let err = app
        .plane
        .revoke_my_grant(&bob, "acme", grant.id)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::NotFound { kind: "grant", .. }),
        "{err:?}"
    );
    assert_eq!(err.to_string(), not_found);
    let missing = Uuid::now_v7();
    let err = app
        .plane
        .revoke_my_grant(&bob, "acme", missing)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), format!(r#"grant "{missing}" not found"#));
    assert!(
        app.store
            .get_oauth_grant(grant.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );

    app.plane
        .revoke_my_grant(&ada, "acme", grant.id)
        .await
        .unwrap();
    let stored = app.store.get_oauth_grant(grant.id).await.unwrap().unwrap();
    assert!(stored.revoked_at.is_some());
    assert_eq!(
        stored.revoked_reason.as_deref(),
        Some("revoked by the user")
    );
    let redeemed = app
        .store
        .use_refresh_token(&refresh.token_hash, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(
        matches!(redeemed, Some(RefreshRedemption::Revoked(_))),
        "{redeemed:?}"
    );
    assert!(
        app.plane
            .list_my_grants(&ada, "acme")
            .await
            .unwrap()
            .is_empty()
    );
    // A second revocation is not found, like any other ID; Bob's grant is untouched.
    let err = app
        .plane
        .revoke_my_grant(&ada, "acme", grant.id)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), not_found);
    assert_eq!(
        app.plane.list_my_grants(&bob, "acme").await.unwrap()[0].id,
        bobs.id
    );

    let events = app.audit(app.t.acme.id).await;
    let revokes: Vec<_> = events
        .iter()
        .filter(|e| e.action == "oauth.grant.revoked")
        .collect();
    let summary: Vec<(Uuid, Outcome)> = revokes.iter().map(|e| (e.actor.id, e.outcome)).collect();
    assert_eq!(
        summary,
        vec![
            (bob.principal.id, Outcome::Denied),
            (bob.principal.id, Outcome::Denied),
            (ada.principal.id, Outcome::Success),
            (ada.principal.id, Outcome::Denied),
        ]
    );
    assert_eq!(
        revokes[2].resources,
        vec![format!("grant:{}", grant.id), format!("client:{CLIENT_ID}")]
    );
    assert_eq!(revokes[0].resources, vec![format!("grant:{}", grant.id)]);
}

#[tokio::test]
async fn api_tokens_have_no_grants_and_are_told_why() {
    let app = TestApp::start(1).await;
    let owner = app.person("owner@acme.test", OrgRole::Owner, &[]).await;
    let grant = grant_for(&app, owner.principal.id, "mcp:read").await;
    let created = app
        .plane
        .create_api_token(
            &owner,
            "acme",
            &crate::auth::new_token(ApiTokenKind::Admin, &[]),
        )
        .await
        .unwrap();
    let token = app.bearer(&created.secret).await;
    let expected = "refused: OAuth grants belong to users, and an API token acts for no user: \
                    sign in as yourself (OAuth or `assay login`) to list or revoke your grants";
    let err = app.plane.list_my_grants(&token, "acme").await.unwrap_err();
    assert!(matches!(err, Error::Refused(_)), "{err:?}");
    assert_eq!(err.to_string(), expected);
    let err = app
        .plane
        .revoke_my_grant(&token, "acme", grant.id)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), expected);
    // The admin token's creator's grant is untouched.
    assert_eq!(
        app.plane
            .list_my_grants(&owner, "acme")
            .await
            .unwrap()
            .len(),
        1
    );
    let events = app.audit(app.t.acme.id).await;
    let refused: Vec<_> = events
        .iter()
        .filter(|e| e.action.starts_with("oauth.grant.") && e.actor.id == token.principal.id)
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    for e in refused {
        assert_eq!(e.outcome, Outcome::Denied);
        assert_eq!(e.reason.as_deref(), Some(expected));
    }
}

#[tokio::test]
async fn a_scope_narrower_than_the_role_is_insufficient_scope_and_a_low_role_is_forbidden() {
    let app = TestApp::start(1).await;
    app.create(&shell_workflow("smoke", "echo hi")).await;
    let dev = app.t.dev.id;

    // Role run, scope read: the scope is what falls short → step-up.
    let mut runner = app.member(&[(dev, Level::Run)]);
    runner.principal.scope_cap = Some(Level::Read);
    let err = app
        .plane
        .run_workflow(&runner, &app.dev(), "smoke", &Default::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InsufficientScope { needed: Level::Run }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "insufficient scope: this needs the mcp:run scope, which the access token does not carry"
    );
    // Reading is within both.
    app.plane
        .get_workflow(&runner, &app.dev(), "smoke")
        .await
        .unwrap();

    // Role read, scope write: the role falls short → no step-up can help.
    let mut reader = app.member(&[(dev, Level::Read)]);
    reader.principal.scope_cap = Some(Level::Write);
    let err = app
        .plane
        .run_workflow(&reader, &app.dev(), "smoke", &Default::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Forbidden { needed: Level::Run }),
        "{err:?}"
    );

    // An admin with a run scope deleting: write is reachable by a scope.
    let mut admin = actor(user(app.t.acme.id, Access::OrgAdmin));
    admin.principal.scope_cap = Some(Level::Run);
    let err = app
        .plane
        .delete_workflow(&admin, &app.dev(), "smoke")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InsufficientScope {
                needed: Level::Write
            }
        ),
        "{err:?}"
    );
    // Without a scope cap (API tokens, sessions) a low level is plainly forbidden.
    let member = app.member(&[(dev, Level::Read)]);
    let err = app
        .plane
        .run_workflow(&member, &app.dev(), "smoke", &Default::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Forbidden { needed: Level::Run }),
        "{err:?}"
    );

    // The step-up refusal is on the record as denied, with its reason.
    let events = app.audit(app.t.acme.id).await;
    let denied: Vec<_> = events
        .iter()
        .filter(|e| e.action == "workflow.run" && e.outcome == Outcome::Denied)
        .collect();
    assert_eq!(denied.len(), 3, "{denied:?}");
    assert_eq!(
        denied[0].reason.as_deref(),
        Some(
            "insufficient scope: this needs the mcp:run scope, which the access token does not carry"
        )
    );
    assert_eq!(
        denied[1].reason.as_deref(),
        Some("forbidden: this needs run permission on the environment")
    );
}
