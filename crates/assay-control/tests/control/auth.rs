//! API token authentication: principals, every kind of refusal (each audited once, in the
//! right chain), the cache never outliving a revocation or rotation, batched last use.

use crate::harness::*;
use assay_control::{ControlPlaneConfig, auth, tokens};
use assay_core::actor::{Access, AuthMethod, ClientInfo, PrincipalKind};
use assay_core::audit::{AuditEvent, Outcome};
use assay_core::identity::{
    ApiTokenKind, ApiTokenRecord, MemberUpdate, NewApiToken, OrgRole, TokenState,
};
use assay_core::ports::{ControlPlane, Store};
use assay_core::{Error, Level};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;
use uuid::Uuid;

pub async fn stored_token(
    app: &TestApp,
    org_id: Uuid,
    kind: ApiTokenKind,
    grants: BTreeMap<Uuid, Level>,
    adjust: impl FnOnce(&mut ApiTokenRecord),
) -> (String, ApiTokenRecord) {
    let (secret, secret_hash) = tokens::generate();
    let mut record = ApiTokenRecord {
        id: Uuid::now_v7(),
        org_id,
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
        previous_secret_hash: None,
        previous_valid_until: None,
    };
    adjust(&mut record);
    app.store.insert_api_token(&record).await.unwrap();
    (secret, record)
}

pub fn new_token(kind: ApiTokenKind, grants: &[(&str, Level)]) -> NewApiToken {
    NewApiToken {
        name: format!("{}-token", kind.as_str()),
        description: String::new(),
        kind,
        grants: grants.iter().map(|(e, l)| (e.to_string(), *l)).collect(),
        expires_in_days: None,
        never_expires: false,
    }
}

fn client(request_id: &str) -> ClientInfo {
    ClientInfo {
        ip: Some("198.51.100.1".into()),
        user_agent: Some("curl/8".into()),
        mcp_client: None,
        request_id: Some(request_id.into()),
    }
}

/// Every `auth.failed` event per chain: acme, other, unscoped.
async fn failures(app: &TestApp) -> [Vec<AuditEvent>; 3] {
    let of = |events: Vec<AuditEvent>| {
        events
            .into_iter()
            .filter(|e| e.action == "auth.failed")
            .collect::<Vec<_>>()
    };
    [
        of(app.audit(app.t.acme.id).await),
        of(app.audit(app.t.other.id).await),
        of(app.audit(Uuid::nil()).await),
    ]
}

#[tokio::test]
async fn tokens_become_principals_by_kind() {
    let app = TestApp::start(1).await;
    let auth = app.plane.authenticator();
    let client = ClientInfo::default();
    let acme = app.t.acme.id;

    let (secret, record) =
        stored_token(&app, acme, ApiTokenKind::Admin, BTreeMap::new(), |_| {}).await;
    let p = auth.authenticate(&secret, &client, None).await.unwrap();
    assert_eq!(p.kind, PrincipalKind::ApiToken);
    assert_eq!(p.id, record.id);
    assert_eq!(p.org_id, acme);
    assert_eq!(p.access, Access::OrgAdmin);
    assert_eq!(p.auth_method, AuthMethod::ApiToken);
    assert_eq!(p.credential_id, Some(record.id.to_string()));
    assert_eq!(p.display_name, "admin-token");
    // The organization may be named by slug or ID.
    let by_id = auth
        .authenticate(&secret, &client, Some(&acme.to_string()))
        .await
        .unwrap();
    assert_eq!(by_id.id, record.id);

    let (secret, _) =
        stored_token(&app, acme, ApiTokenKind::OrgRead, BTreeMap::new(), |_| {}).await;
    assert_eq!(
        auth.authenticate(&secret, &client, Some("acme"))
            .await
            .unwrap()
            .access,
        Access::ReadAll
    );

    let grants = BTreeMap::from([(app.t.dev.id, Level::Run)]);
    let (secret, _) = stored_token(&app, acme, ApiTokenKind::Member, grants.clone(), |_| {}).await;
    let member = auth
        .authenticate(&secret, &client, Some("acme"))
        .await
        .unwrap();
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
    let last = app.audit(acme).await.pop().unwrap();
    assert_eq!(last.actor.kind, PrincipalKind::ApiToken);
    assert_eq!(last.actor.auth_method, AuthMethod::ApiToken);
    // A successful authentication writes nothing by itself.
    assert!(failures(&app).await.iter().all(Vec::is_empty));
}

/// One refusal: the message, and exactly one `auth.failed` event in chain `chain`
/// (0 = acme, 1 = other, 2 = unscoped) and none elsewhere.
async fn refused(
    app: &TestApp,
    bearer: &str,
    org: Option<&str>,
    request_id: &str,
    reason: &str,
    chain: usize,
    token: Option<&ApiTokenRecord>,
) {
    let before = failures(app).await.map(|f| f.len());
    let err = app
        .plane
        .authenticator()
        .authenticate(bearer, &client(request_id), org)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Unauthenticated(m) if m == reason),
        "{request_id}: {err:?}"
    );
    let after = failures(app).await;
    for (i, events) in after.iter().enumerate() {
        let expected = before[i] + usize::from(i == chain);
        assert_eq!(events.len(), expected, "{request_id}: chain {i}");
    }
    let event = after[chain].last().unwrap();
    assert_eq!(event.client.request_id.as_deref(), Some(request_id));
    assert_eq!(event.client.ip.as_deref(), Some("198.51.100.1"));
    assert_eq!(event.outcome, Outcome::Denied);
    assert_eq!(event.reason.as_deref(), Some(reason));
    assert_eq!(event.actor.kind, PrincipalKind::ApiToken);
    assert_eq!(event.actor.auth_method, AuthMethod::ApiToken);
    assert_eq!(event.env_id, None);
    match token {
        Some(t) => {
            assert_eq!(event.actor.id, t.id, "{request_id}");
            assert_eq!(event.actor.name, t.name);
            assert_eq!(event.resources, vec![format!("token:{}", t.id)]);
        }
        None => {
            assert_eq!(event.actor.id, Uuid::nil(), "{request_id}");
            assert_eq!(event.actor.name, "unknown");
            assert!(event.resources.is_empty());
        }
    }
    // No secret is ever recorded.
    if !bearer.is_empty() {
        assert!(!serde_json::to_string(event).unwrap().contains(bearer));
    }
}

#[tokio::test]
async fn every_refusal_is_unauthenticated_and_audited_once_in_the_right_chain() {
    let app = TestApp::start(1).await;
    let acme = app.t.acme.id;
    let now = time::OffsetDateTime::now_utc();

    // Malformed and wrong-checksum bearers never reach the token table.
    refused(
        &app,
        "garbage",
        Some("acme"),
        "malformed",
        auth::MALFORMED,
        0,
        None,
    )
    .await;
    let (secret, _) = tokens::generate();
    let mut chars: Vec<char> = secret.chars().collect();
    chars[8] = if chars[8] == 'x' { 'y' } else { 'x' };
    let wrong_checksum: String = chars.into_iter().collect();
    refused(
        &app,
        &wrong_checksum,
        None,
        "checksum",
        auth::MALFORMED,
        2,
        None,
    )
    .await;
    refused(&app, "", Some("other"), "empty", auth::MALFORMED, 1, None).await;
    assert_eq!(app.store.token_lookups.load(Ordering::SeqCst), 0);

    // Well formed but never issued: into the addressed organization if it exists.
    refused(
        &app,
        &secret,
        Some("nowhere"),
        "unknown",
        auth::UNKNOWN,
        2,
        None,
    )
    .await;
    refused(
        &app,
        &secret,
        Some("acme"),
        "unknown-acme",
        auth::UNKNOWN,
        0,
        None,
    )
    .await;
    assert_eq!(app.store.token_lookups.load(Ordering::SeqCst), 2);

    let (revoked, revoked_t) =
        stored_token(&app, acme, ApiTokenKind::Admin, BTreeMap::new(), |t| {
            t.revoked_at = Some(now);
        })
        .await;
    refused(
        &app,
        &revoked,
        Some("acme"),
        "revoked",
        auth::REVOKED,
        0,
        Some(&revoked_t),
    )
    .await;

    let (expired, expired_t) =
        stored_token(&app, acme, ApiTokenKind::Admin, BTreeMap::new(), |t| {
            t.expires_at = Some(now - time::Duration::minutes(1));
        })
        .await;
    refused(
        &app,
        &expired,
        None,
        "expired",
        auth::EXPIRED,
        0,
        Some(&expired_t),
    )
    .await;

    // Another organization's token: refused, and recorded in that token's chain.
    let (foreign, foreign_t) = stored_token(
        &app,
        app.t.other.id,
        ApiTokenKind::Admin,
        BTreeMap::new(),
        |_| {},
    )
    .await;
    refused(
        &app,
        &foreign,
        Some("acme"),
        "other-org",
        auth::OTHER_ORGANIZATION,
        1,
        Some(&foreign_t),
    )
    .await;
    refused(
        &app,
        &foreign,
        Some(&acme.to_string()),
        "other-org-by-id",
        auth::OTHER_ORGANIZATION,
        1,
        Some(&foreign_t),
    )
    .await;

    // Rotated away: immediately without grace, and after the grace period.
    let owner = app.person("owner@acme.test", OrgRole::Owner, &[]).await;
    let created = app
        .plane
        .create_api_token(&owner, "acme", &new_token(ApiTokenKind::Admin, &[]))
        .await
        .unwrap();
    let record = app
        .store
        .get_api_token(acme, created.token.id)
        .await
        .unwrap()
        .unwrap();
    app.bearer(&created.secret).await;
    let rotated = app
        .plane
        .rotate_api_token(&owner, "acme", created.token.id, None)
        .await
        .unwrap();
    refused(
        &app,
        &created.secret,
        Some("acme"),
        "rotated-now",
        auth::ROTATED,
        0,
        Some(&record),
    )
    .await;
    app.bearer(&rotated.secret).await;

    let graced = app
        .plane
        .rotate_api_token(&owner, "acme", created.token.id, Some(3600))
        .await
        .unwrap();
    app.bearer(&rotated.secret).await;
    app.bearer(&graced.secret).await;
    app.clock.advance(Duration::from_secs(3601));
    refused(
        &app,
        &rotated.secret,
        Some("acme"),
        "rotated-after-grace",
        auth::ROTATED,
        0,
        Some(&record),
    )
    .await;
    app.bearer(&graced.secret).await;
    // The first secret is two rotations old: not even recognised as this token's.
    refused(
        &app,
        &created.secret,
        Some("acme"),
        "rotated-twice",
        auth::UNKNOWN,
        0,
        None,
    )
    .await;
}

#[tokio::test]
async fn revocation_and_rotation_take_effect_at_once_despite_the_cache() {
    let app = TestApp::start(1).await;
    let owner = app.person("owner@acme.test", OrgRole::Owner, &[]).await;
    let created = app
        .plane
        .create_api_token(&owner, "acme", &new_token(ApiTokenKind::Admin, &[]))
        .await
        .unwrap();
    let lookups = || app.store.token_lookups.load(Ordering::SeqCst);

    // The second authentication is served from the cache.
    app.bearer(&created.secret).await;
    assert_eq!(lookups(), 1);
    app.bearer(&created.secret).await;
    assert_eq!(lookups(), 1);

    // Rotation without grace: the cached old secret stops on the very next call.
    let rotated = app
        .plane
        .rotate_api_token(&owner, "acme", created.token.id, None)
        .await
        .unwrap();
    assert_eq!(rotated.token.previous_valid_until, None);
    let err = app
        .plane
        .authenticator()
        .authenticate(&created.secret, &ClientInfo::default(), Some("acme"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("unauthenticated: {}", auth::ROTATED)
    );
    app.bearer(&rotated.secret).await;
    app.bearer(&rotated.secret).await;

    // Rotation with grace: the old secret works (cached) until the grace ends, by the clock.
    let graced = app
        .plane
        .rotate_api_token(&owner, "acme", created.token.id, Some(600))
        .await
        .unwrap();
    assert!(graced.token.previous_valid_until.is_some());
    app.bearer(&rotated.secret).await;
    let before = lookups();
    app.bearer(&rotated.secret).await;
    assert_eq!(lookups(), before, "served from the cache");
    app.clock.advance(Duration::from_secs(599));
    app.bearer(&rotated.secret).await;
    app.clock.advance(Duration::from_secs(2));
    let err = app
        .plane
        .authenticator()
        .authenticate(&rotated.secret, &ClientInfo::default(), Some("acme"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("unauthenticated: {}", auth::ROTATED)
    );
    app.bearer(&graced.secret).await;

    // Revocation: the cached secret is refused on the very next call.
    app.bearer(&graced.secret).await;
    let info = app
        .plane
        .revoke_api_token(&owner, "acme", created.token.id)
        .await
        .unwrap();
    assert_eq!(info.state, TokenState::Revoked);
    let err = app
        .plane
        .authenticator()
        .authenticate(&graced.secret, &ClientInfo::default(), Some("acme"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("unauthenticated: {}", auth::REVOKED)
    );
}

#[tokio::test]
async fn expiry_is_checked_against_the_clock_on_cached_tokens() {
    let app = TestApp::start(1).await;
    let owner = app.person("owner@acme.test", OrgRole::Owner, &[]).await;
    let mut request = new_token(ApiTokenKind::OrgRead, &[]);
    request.expires_in_days = Some(1);
    let created = app
        .plane
        .create_api_token(&owner, "acme", &request)
        .await
        .unwrap();
    app.bearer(&created.secret).await;
    app.clock.advance(Duration::from_secs(24 * 3600 + 1));
    let err = app
        .plane
        .authenticator()
        .authenticate(&created.secret, &ClientInfo::default(), Some("acme"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("unauthenticated: {}", auth::EXPIRED)
    );
    assert_eq!(app.store.token_lookups.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn last_use_is_kept_in_memory_and_written_in_one_batch() {
    let app = TestApp::start_with(ControlPlaneConfig {
        concurrency: 1,
        token_usage_flush_interval: Duration::from_secs(3600),
        ..ControlPlaneConfig::default()
    })
    .await;
    let acme = app.t.acme.id;
    let (a, a_t) = stored_token(&app, acme, ApiTokenKind::Admin, BTreeMap::new(), |_| {}).await;
    let (b, b_t) = stored_token(&app, acme, ApiTokenKind::OrgRead, BTreeMap::new(), |_| {}).await;
    let auth = app.plane.authenticator();
    for i in 0..5 {
        let client = ClientInfo {
            ip: Some(format!("192.0.2.{i}")),
            ..ClientInfo::default()
        };
        auth.authenticate(&a, &client, Some("acme")).await.unwrap();
    }
    for _ in 0..3 {
        auth.authenticate(&b, &ClientInfo::default(), None)
            .await
            .unwrap();
    }
    let calls = || app.store.usage_calls.load(Ordering::SeqCst);
    assert_eq!(calls(), 0, "authentication must not write per request");
    let stored = app
        .store
        .get_api_token(acme, a_t.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.last_used_at, None);

    assert_eq!(app.plane.flush_token_usage().await.unwrap(), 2);
    assert_eq!(calls(), 1);
    assert_eq!(app.store.usage_entries.load(Ordering::SeqCst), 2);
    let owner = app.person("owner@acme.test", OrgRole::Owner, &[]).await;
    let shown = app
        .plane
        .get_api_token(&owner, "acme", a_t.id)
        .await
        .unwrap();
    assert_eq!(shown.last_used_ip.as_deref(), Some("192.0.2.4"));
    let used_at = shown.last_used_at.unwrap();
    assert!((time::OffsetDateTime::now_utc() - used_at).abs() < time::Duration::minutes(1));
    let shown = app
        .plane
        .get_api_token(&owner, "acme", b_t.id)
        .await
        .unwrap();
    assert!(shown.last_used_at.is_some());
    assert_eq!(shown.last_used_ip, None);

    // Nothing pending: no call at all.
    assert_eq!(app.plane.flush_token_usage().await.unwrap(), 0);
    assert_eq!(calls(), 1);
    // Shutdown writes what is pending.
    auth.authenticate(&b, &ClientInfo::default(), None)
        .await
        .unwrap();
    app.plane.shutdown().await;
    assert_eq!(calls(), 2);
}

#[tokio::test]
async fn disabling_or_removing_a_member_ends_their_tokens_at_once() {
    let app = TestApp::start(1).await;
    let owner = app.person("owner@acme.test", OrgRole::Owner, &[]).await;
    let dev = app.t.dev.id;
    let alice = app
        .person("alice@acme.test", OrgRole::Member, &[(dev, Level::Run)])
        .await;
    let bob = app.person("bob@acme.test", OrgRole::Admin, &[]).await;
    let alices = app
        .plane
        .create_api_token(
            &alice,
            "acme",
            &new_token(ApiTokenKind::Member, &[("dev", Level::Run)]),
        )
        .await
        .unwrap();
    let bobs = app
        .plane
        .create_api_token(&bob, "acme", &new_token(ApiTokenKind::Admin, &[]))
        .await
        .unwrap();
    // Minted by Bob's admin token: Bob answers for it too.
    let via_token = app
        .plane
        .create_api_token(
            &app.bearer(&bobs.secret).await,
            "acme",
            &new_token(ApiTokenKind::OrgRead, &[]),
        )
        .await
        .unwrap();
    assert_eq!(via_token.token.created_by, Some(bob.principal.id));
    for secret in [&alices.secret, &bobs.secret, &via_token.secret] {
        app.bearer(secret).await; // now cached
    }

    let disabled = app
        .plane
        .update_member(
            &owner,
            "acme",
            "alice@acme.test",
            &MemberUpdate {
                disabled: Some(true),
                ..MemberUpdate::default()
            },
        )
        .await
        .unwrap();
    assert!(disabled.disabled);
    assert!(disabled.grants.is_empty());
    let refused = |secret: String| {
        let auth = app.plane.authenticator();
        async move {
            auth.authenticate(&secret, &ClientInfo::default(), Some("acme"))
                .await
                .unwrap_err()
                .to_string()
        }
    };
    assert_eq!(
        refused(alices.secret.clone()).await,
        format!("unauthenticated: {}", auth::REVOKED)
    );
    app.bearer(&bobs.secret).await;

    app.plane
        .remove_member(&owner, "acme", &bob.principal.id.to_string())
        .await
        .unwrap();
    assert_eq!(
        refused(bobs.secret.clone()).await,
        format!("unauthenticated: {}", auth::REVOKED)
    );
    assert_eq!(
        refused(via_token.secret.clone()).await,
        format!("unauthenticated: {}", auth::REVOKED)
    );

    let listed = app.plane.list_api_tokens(&owner, "acme").await.unwrap();
    assert_eq!(listed.len(), 3);
    assert!(
        listed.iter().all(|t| t.state == TokenState::Revoked),
        "{listed:?}"
    );
    let events = app.audit(app.t.acme.id).await;
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"member.disabled"), "{actions:?}");
    assert!(actions.contains(&"member.removed"), "{actions:?}");
}
