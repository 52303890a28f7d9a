//! API token authentication.

use crate::harness::*;
use assay_control::tokens;
use assay_core::actor::{Access, AuthMethod, ClientInfo, PrincipalKind};
use assay_core::audit::Outcome;
use assay_core::identity::{ApiTokenKind, ApiTokenRecord};
use assay_core::ports::{ControlPlane, Store};
use assay_core::{Error, Level};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;
use uuid::Uuid;

async fn token(
    app: &TestApp,
    kind: ApiTokenKind,
    grants: BTreeMap<Uuid, Level>,
) -> (String, ApiTokenRecord) {
    token_with(app, kind, grants, |_| {}).await
}

async fn token_with(
    app: &TestApp,
    kind: ApiTokenKind,
    grants: BTreeMap<Uuid, Level>,
    adjust: impl FnOnce(&mut ApiTokenRecord),
) -> (String, ApiTokenRecord) {
    let (secret, secret_hash) = tokens::generate();
    let mut record = ApiTokenRecord {
        id: Uuid::now_v7(),
        org_id: app.t.acme.id,
        name: format!("{}-token", kind.as_str()),
        description: String::new(),
        kind,
        grants,
        secret_hash,
        created_by: None,
        created_at: time::OffsetDateTime::now_utc(),
        expires_at: None,
        last_used_at: None,
        last_used_ip: None,
        revoked_at: None,
    };
    adjust(&mut record);
    app.store.insert_api_token(&record).await.unwrap();
    (secret, record)
}

#[tokio::test]
async fn tokens_become_principals_by_kind() {
    let app = TestApp::start(1).await;
    let auth = app.plane.authenticator();
    let client = ClientInfo::default();

    let (secret, record) = token(&app, ApiTokenKind::Admin, BTreeMap::new()).await;
    let p = auth.authenticate(&secret, &client).await.unwrap();
    assert_eq!(p.kind, PrincipalKind::ApiToken);
    assert_eq!(p.id, record.id);
    assert_eq!(p.org_id, app.t.acme.id);
    assert_eq!(p.access, Access::OrgAdmin);
    assert_eq!(p.auth_method, AuthMethod::ApiToken);
    assert_eq!(p.credential_id, Some(record.id.to_string()));
    assert_eq!(p.display_name, "admin-token");

    let (secret, _) = token(&app, ApiTokenKind::OrgRead, BTreeMap::new()).await;
    assert_eq!(
        auth.authenticate(&secret, &client).await.unwrap().access,
        Access::ReadAll
    );

    let grants = BTreeMap::from([(app.t.dev.id, Level::Run)]);
    let (secret, _) = token(&app, ApiTokenKind::Member, grants.clone()).await;
    let member = auth.authenticate(&secret, &client).await.unwrap();
    assert_eq!(member.access, Access::PerEnvironment { grants });

    // The principal works against the control plane with its level.
    app.create(&shell_workflow("smoke", "echo hi")).await;
    let as_member = actor(member);
    let e = app
        .plane
        .run_workflow(&as_member, &app.dev(), "smoke", &Default::default())
        .await
        .unwrap();
    app.finished(e.id).await;
    let last = app.audit(app.t.acme.id).await.pop().unwrap();
    assert_eq!(last.actor.kind, PrincipalKind::ApiToken);
    assert_eq!(last.actor.auth_method, AuthMethod::ApiToken);
}

#[tokio::test]
async fn malformed_and_unknown_tokens_are_refused_without_an_event() {
    let app = TestApp::start(1).await;
    let auth = app.plane.authenticator();
    let before = app.audit(app.t.acme.id).await.len();
    for bearer in ["", "garbage", "assay_short", "Bearer assay_x"] {
        let err = auth
            .authenticate(bearer, &ClientInfo::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Unauthenticated(_)),
            "{bearer}: {err:?}"
        );
    }
    // Right shape, bad checksum.
    let (secret, _) = tokens::generate();
    let mut tampered: Vec<char> = secret.chars().collect();
    tampered[8] = if tampered[8] == 'x' { 'y' } else { 'x' };
    let tampered: String = tampered.into_iter().collect();
    let err = auth
        .authenticate(&tampered, &ClientInfo::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unauthenticated: the bearer token is not a valid Assay token"
    );
    // None of the above reached the database.
    assert_eq!(app.store.token_lookups.load(Ordering::SeqCst), 0);
    // Well formed but never issued.
    let err = auth
        .authenticate(&secret, &ClientInfo::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unauthenticated: unknown or deleted API token"
    );
    assert_eq!(app.store.token_lookups.load(Ordering::SeqCst), 1);
    assert_eq!(app.audit(app.t.acme.id).await.len(), before);
}

#[tokio::test]
async fn revoked_and_expired_tokens_are_refused_and_audited() {
    let app = TestApp::start(1).await;
    let auth = app.plane.authenticator();
    let client = ClientInfo {
        ip: Some("198.51.100.1".into()),
        ..ClientInfo::default()
    };

    let (secret2, revoked) = token_with(&app, ApiTokenKind::Admin, BTreeMap::new(), |t| {
        t.revoked_at = Some(time::OffsetDateTime::now_utc());
    })
    .await;
    let err = auth.authenticate(&secret2, &client).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "unauthenticated: the API token has been revoked"
    );

    let (secret3, expiring) = token_with(&app, ApiTokenKind::Admin, BTreeMap::new(), |t| {
        t.expires_at = Some(time::OffsetDateTime::now_utc() + time::Duration::hours(1));
    })
    .await;
    auth.authenticate(&secret3, &client).await.unwrap();
    app.clock.advance(Duration::from_secs(2 * 3600));
    let err = auth.authenticate(&secret3, &client).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "unauthenticated: the API token has expired"
    );

    let events = app.audit(app.t.acme.id).await;
    let failures: Vec<_> = events
        .iter()
        .filter(|e| e.action == "auth.failed")
        .collect();
    assert_eq!(failures.len(), 2);
    assert!(failures.iter().all(|e| e.outcome == Outcome::Denied));
    assert_eq!(failures[0].resources, vec![format!("token:{}", revoked.id)]);
    assert_eq!(
        failures[0].reason.as_deref(),
        Some("the API token has been revoked")
    );
    assert_eq!(
        failures[1].resources,
        vec![format!("token:{}", expiring.id)]
    );
    assert_eq!(failures[1].client.ip.as_deref(), Some("198.51.100.1"));
    // Secrets never reach the log.
    for e in &events {
        let text = serde_json::to_string(e).unwrap();
        assert!(!text.contains(&secret2) && !text.contains(&secret3));
    }
}
