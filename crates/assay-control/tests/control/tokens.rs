//! API token lifecycle through the control plane: defaults, validation, no escalation,
//! own tokens only.

use crate::auth::new_token;
use crate::harness::*;
use assay_control::tokens;
use assay_core::actor::Access;
use assay_core::audit::Outcome;
use assay_core::identity::{ApiTokenKind, OrgRole, TokenState};
use assay_core::ports::{ControlPlane, Store};
use assay_core::{Error, Level};
use std::collections::BTreeMap;
use uuid::Uuid;

fn invalid_paths(err: &Error) -> Vec<String> {
    match err {
        Error::Invalid(fields) => fields.iter().map(|f| f.path.clone()).collect(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn tokens_are_created_with_safe_defaults_and_shown_without_secrets() {
    let app = TestApp::start(1).await;
    let owner = app.person("owner@acme.test", OrgRole::Owner, &[]).await;
    let mut request = new_token(
        ApiTokenKind::Member,
        &[
            ("dev", Level::Run),
            (&app.t.staging.id.to_string(), Level::Read),
        ],
    );
    request.description = "CI for the web app".into();
    let created = app
        .plane
        .create_api_token(&owner, "acme", &request)
        .await
        .unwrap();
    assert!(tokens::is_well_formed(&created.secret));
    let info = &created.token;
    assert_eq!(info.name, "member-token");
    assert_eq!(info.description, "CI for the web app");
    assert_eq!(info.kind, ApiTokenKind::Member);
    assert_eq!(
        info.grants,
        BTreeMap::from([
            ("dev".to_string(), Level::Run),
            ("staging".to_string(), Level::Read)
        ])
    );
    assert_eq!(info.created_by, Some(owner.principal.id));
    assert_eq!(
        info.expires_at,
        Some(info.created_at + time::Duration::days(90))
    );
    assert!(!info.never_expires);
    assert_eq!(info.state, TokenState::Active);
    assert_eq!(
        (
            info.last_used_at,
            info.revoked_at,
            info.previous_valid_until
        ),
        (None, None, None)
    );
    // Stored by hash only.
    let record = app
        .store
        .get_api_token(app.t.acme.id, info.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.secret_hash, tokens::hash(&created.secret));
    assert_eq!(
        record.grants,
        BTreeMap::from([(app.t.dev.id, Level::Run), (app.t.staging.id, Level::Read)])
    );

    let mut forever = new_token(ApiTokenKind::Admin, &[]);
    forever.never_expires = true;
    let forever = app
        .plane
        .create_api_token(&owner, "acme", &forever)
        .await
        .unwrap();
    assert_eq!(forever.token.expires_at, None);
    assert!(forever.token.never_expires);
    let mut short = new_token(ApiTokenKind::OrgRead, &[]);
    short.expires_in_days = Some(1);
    let short = app
        .plane
        .create_api_token(&owner, "acme", &short)
        .await
        .unwrap();
    assert_eq!(
        short.token.expires_at,
        Some(short.token.created_at + time::Duration::days(1))
    );

    let listed = app.plane.list_api_tokens(&owner, "acme").await.unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed.iter().filter(|t| t.never_expires).count(), 1);
    let shown = app
        .plane
        .get_api_token(&owner, "acme", info.id)
        .await
        .unwrap();
    assert_eq!(&shown, info);

    let events = app.audit(app.t.acme.id).await;
    let created_event = events.iter().find(|e| e.action == "token.created").unwrap();
    assert_eq!(
        created_event.resources,
        vec![
            format!("token:{}", info.id),
            "kind:member".to_string(),
            "grant:dev=run".to_string(),
            "grant:staging=read".to_string(),
        ]
    );
    for e in &events {
        let text = serde_json::to_string(e).unwrap();
        for secret in [&created.secret, &forever.secret, &short.secret] {
            assert!(!text.contains(secret.as_str()));
        }
        assert!(!text.contains(&record.secret_hash));
    }
}

#[tokio::test]
async fn bad_token_requests_are_reported_field_by_field() {
    let app = TestApp::start(1).await;
    let owner = app.person("owner@acme.test", OrgRole::Owner, &[]).await;
    let check = |request: assay_core::identity::NewApiToken, paths: Vec<String>| {
        let app = &app;
        let owner = owner.clone();
        async move {
            let err = app
                .plane
                .create_api_token(&owner, "acme", &request)
                .await
                .unwrap_err();
            assert_eq!(invalid_paths(&err), paths, "{request:?}");
        }
    };
    let mut r = new_token(ApiTokenKind::Member, &[("dev", Level::Read)]);
    r.name = "  ".into();
    r.expires_in_days = Some(0);
    check(r, vec!["name".into(), "expires_in_days".into()]).await;
    let mut r = new_token(ApiTokenKind::Member, &[("dev", Level::Read)]);
    r.name = "x".repeat(101);
    r.expires_in_days = Some(3651);
    check(r, vec!["name".into(), "expires_in_days".into()]).await;
    let mut r = new_token(ApiTokenKind::Admin, &[]);
    r.never_expires = true;
    r.expires_in_days = Some(30);
    check(r, vec!["expires_in_days".into()]).await;
    check(new_token(ApiTokenKind::Member, &[]), vec!["grants".into()]).await;
    check(
        new_token(ApiTokenKind::Admin, &[("dev", Level::Read)]),
        vec!["grants".into()],
    )
    .await;
    check(
        new_token(
            ApiTokenKind::Member,
            &[("dev", Level::Admin), ("nowhere", Level::Read)],
        ),
        vec!["grants.dev".into(), "grants.nowhere".into()],
    )
    .await;
    let mut r = new_token(ApiTokenKind::Member, &[("dev", Level::Read)]);
    r.expires_in_days = Some(3650);
    app.plane
        .create_api_token(&owner, "acme", &r)
        .await
        .unwrap();
    let id = app.plane.list_api_tokens(&owner, "acme").await.unwrap()[0].id;
    let err = app
        .plane
        .rotate_api_token(&owner, "acme", id, Some(24 * 3600 + 1))
        .await
        .unwrap_err();
    assert_eq!(invalid_paths(&err), vec!["grace_secs"]);
    app.plane
        .rotate_api_token(&owner, "acme", id, Some(24 * 3600))
        .await
        .unwrap();
    app.plane
        .revoke_api_token(&owner, "acme", id)
        .await
        .unwrap();
    let err = app
        .plane
        .rotate_api_token(&owner, "acme", id, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains("revoked")),
        "{err:?}"
    );
    // Revoking twice is harmless and keeps the first revocation time.
    let first = app
        .plane
        .get_api_token(&owner, "acme", id)
        .await
        .unwrap()
        .revoked_at;
    let again = app
        .plane
        .revoke_api_token(&owner, "acme", id)
        .await
        .unwrap();
    assert_eq!(again.revoked_at, first);
}

#[tokio::test]
async fn nobody_mints_a_token_with_more_power_than_they_have() {
    let app = TestApp::start(1).await;
    let dev = app.t.dev.id;
    let alice = app
        .person("alice@acme.test", OrgRole::Member, &[(dev, Level::Run)])
        .await;
    let mint = |who: assay_core::Actor, request: assay_core::identity::NewApiToken| {
        let plane = app.plane.clone();
        async move { plane.create_api_token(&who, "acme", &request).await }
    };
    let err = mint(
        alice.clone(),
        new_token(ApiTokenKind::Member, &[("dev", Level::Write)]),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Forbidden {
                needed: Level::Write
            }
        ),
        "{err:?}"
    );
    for kind in [ApiTokenKind::Admin, ApiTokenKind::OrgRead] {
        let err = mint(alice.clone(), new_token(kind, &[])).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Forbidden {
                    needed: Level::Admin
                }
            ),
            "{err:?}"
        );
    }
    // An environment she cannot see is as unknown as a missing one.
    let err = mint(
        alice.clone(),
        new_token(ApiTokenKind::Member, &[("staging", Level::Read)]),
    )
    .await
    .unwrap_err();
    assert_eq!(invalid_paths(&err), vec!["grants.staging"]);
    let run = mint(
        alice.clone(),
        new_token(ApiTokenKind::Member, &[("dev", Level::Run)]),
    )
    .await
    .unwrap();
    mint(
        alice.clone(),
        new_token(ApiTokenKind::Member, &[("dev", Level::Read)]),
    )
    .await
    .unwrap();

    // Token principals: only admin tokens manage tokens.
    let as_run_token = app.bearer(&run.secret).await;
    let err = mint(
        as_run_token.clone(),
        new_token(ApiTokenKind::Member, &[("dev", Level::Read)]),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Forbidden {
                needed: Level::Admin
            }
        ),
        "{err:?}"
    );
    let err = app
        .plane
        .list_api_tokens(&as_run_token, "acme")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Forbidden {
                needed: Level::Admin
            }
        ),
        "{err:?}"
    );

    // A credential scope bounds what an admin may mint.
    let mut capped = user(app.t.acme.id, Access::OrgAdmin);
    capped.scope_cap = Some(Level::Run);
    let err = mint(
        actor(capped),
        new_token(ApiTokenKind::Member, &[("dev", Level::Write)]),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Forbidden {
                needed: Level::Write
            }
        ),
        "{err:?}"
    );

    let events = app.audit(app.t.acme.id).await;
    let outcomes: Vec<Outcome> = events
        .iter()
        .filter(|e| e.action.starts_with("token."))
        .map(|e| e.outcome)
        .collect();
    let (d, e, s) = (Outcome::Denied, Outcome::Error, Outcome::Success);
    assert_eq!(outcomes, vec![d, d, d, e, s, s, d, d, d]);
}

#[tokio::test]
async fn members_manage_only_their_own_tokens_and_admins_manage_all() {
    let app = TestApp::start(1).await;
    let dev = app.t.dev.id;
    let admin = app.person("admin@acme.test", OrgRole::Admin, &[]).await;
    let alice = app
        .person("alice@acme.test", OrgRole::Member, &[(dev, Level::Run)])
        .await;
    let bob = app
        .person("bob@acme.test", OrgRole::Member, &[(dev, Level::Run)])
        .await;
    let request = new_token(ApiTokenKind::Member, &[("dev", Level::Read)]);
    let alices = app
        .plane
        .create_api_token(&alice, "acme", &request)
        .await
        .unwrap();
    let bobs = app
        .plane
        .create_api_token(&bob, "acme", &request)
        .await
        .unwrap();

    let ids = |list: Vec<assay_core::identity::ApiTokenInfo>| {
        list.into_iter().map(|t| t.id).collect::<Vec<Uuid>>()
    };
    assert_eq!(
        ids(app.plane.list_api_tokens(&alice, "acme").await.unwrap()),
        vec![alices.token.id]
    );
    let mut all = ids(app.plane.list_api_tokens(&admin, "acme").await.unwrap());
    all.sort();
    let mut expected = vec![alices.token.id, bobs.token.id];
    expected.sort();
    assert_eq!(all, expected);

    // Bob's token does not exist for Alice.
    let hidden = |err: Error| {
        assert!(
            matches!(&err, Error::NotFound { kind: "api token", name } if *name == bobs.token.id.to_string()),
            "{err:?}"
        );
    };
    hidden(
        app.plane
            .get_api_token(&alice, "acme", bobs.token.id)
            .await
            .unwrap_err(),
    );
    hidden(
        app.plane
            .rotate_api_token(&alice, "acme", bobs.token.id, None)
            .await
            .unwrap_err(),
    );
    hidden(
        app.plane
            .revoke_api_token(&alice, "acme", bobs.token.id)
            .await
            .unwrap_err(),
    );
    app.bearer(&bobs.secret).await;

    // Her own she may rotate and revoke.
    let rotated = app
        .plane
        .rotate_api_token(&alice, "acme", alices.token.id, None)
        .await
        .unwrap();
    assert_ne!(rotated.secret, alices.secret);
    assert_eq!(rotated.token.id, alices.token.id);
    app.plane
        .revoke_api_token(&alice, "acme", alices.token.id)
        .await
        .unwrap();

    // An admin manages everyone's.
    let revoked = app
        .plane
        .revoke_api_token(&admin, "acme", bobs.token.id)
        .await
        .unwrap();
    assert_eq!(revoked.state, TokenState::Revoked);
    let err = app
        .plane
        .authenticator()
        .authenticate(&bobs.secret, &Default::default(), Some("acme"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthenticated(_)));
    let actions: Vec<String> = app
        .audit(app.t.acme.id)
        .await
        .into_iter()
        .filter(|e| {
            e.action.starts_with("token.")
                && e.resources.first() == Some(&format!("token:{}", bobs.token.id))
        })
        .map(|e| format!("{}:{:?}", e.action, e.outcome))
        .collect();
    assert_eq!(
        actions,
        vec![
            "token.created:Success",
            "token.get:Denied",
            "token.rotated:Denied",
            "token.revoked:Denied",
            "token.revoked:Success",
        ]
    );
}
