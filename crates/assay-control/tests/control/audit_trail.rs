//! The audit trail as a whole: export, verification (against tampering done directly in
//! the database file), retention, settings, activity, group commit, and exactly one event
//! per call under concurrency.

use crate::auth::new_token;
use crate::harness::*;
use assay_control::ControlPlaneConfig;
use assay_core::actor::{AuthMethod, ClientInfo, PrincipalKind};
use assay_core::audit::{AuditActor, AuditEvent, AuditFilter, AuditSettings, Outcome};
use assay_core::audit_chain::chain_hash;
use assay_core::identity::{ApiTokenKind, OrgRole};
use assay_core::ports::{ControlPlane, Store};
use assay_core::{Actor, EnvRef, Error, Level};
use futures::StreamExt;
use sqlx::{Connection, SqliteConnection};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use uuid::Uuid;

async fn export(app: &TestApp, who: &Actor, filter: AuditFilter) -> Vec<AuditEvent> {
    let stream = app.plane.export_audit(who, "acme", &filter).await.unwrap();
    stream.map(|e| e.unwrap()).collect().await
}

async fn list(app: &TestApp, who: &Actor, env: EnvRef) {
    app.plane
        .list_workflows(who, &env, &Default::default(), &Default::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn export_streams_matching_events_in_chain_order_up_to_itself() {
    let app = TestApp::start(1).await;
    let admin = app.admin();
    let reader = app.member(&[(app.t.dev.id, Level::Read)]);
    app.create(&shell_workflow("smoke", "echo hi")).await;
    list(&app, &admin, app.dev()).await;
    list(&app, &admin, app.staging()).await;
    app.plane
        .get_workflow(&admin, &app.dev(), "missing")
        .await
        .unwrap_err();
    app.plane
        .run_workflow(&reader, &app.dev(), "smoke", &Default::default())
        .await
        .unwrap_err();
    let before = app.audit(app.t.acme.id).await;
    assert_eq!(before.len(), 5);

    // Everything, exactly as stored, without the export's own event…
    let all = export(&app, &admin, AuditFilter::default()).await;
    assert_eq!(all, before);
    // …which is committed before the stream is handed out.
    let after = app.audit(app.t.acme.id).await;
    assert_eq!(after.len(), 6);
    assert_eq!(after[5].action, "audit.export");
    assert!(after[5].resources.is_empty());

    // Environment by slug; the store sees its ID.
    let staging = export(
        &app,
        &admin,
        AuditFilter {
            env: Some("staging".into()),
            ..AuditFilter::default()
        },
    )
    .await;
    assert_eq!(staging.len(), 1);
    assert_eq!(staging[0].env_id, Some(app.t.staging.id));
    assert_eq!(
        app.audit(app.t.acme.id).await.last().unwrap().resources,
        vec![r#"filter:{"env":"staging"}"#.to_string()]
    );

    let workflow_successes = export(
        &app,
        &admin,
        AuditFilter {
            action: Some("workflow.*".into()),
            outcome: Some(Outcome::Success),
            ..AuditFilter::default()
        },
    )
    .await;
    let actions: Vec<&str> = workflow_successes
        .iter()
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(
        actions,
        vec!["workflow.create", "workflow.list", "workflow.list"]
    );
    let denied = export(
        &app,
        &admin,
        AuditFilter {
            outcome: Some(Outcome::Denied),
            actor: Some(reader.principal.id.to_string()),
            ..AuditFilter::default()
        },
    )
    .await;
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].action, "workflow.run");

    let err = app
        .plane
        .export_audit(
            &admin,
            "acme",
            &AuditFilter {
                env: Some("nowhere".into()),
                ..AuditFilter::default()
            },
        )
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&err, Error::Invalid(f) if f[0].path == "env"),
        "{err:?}"
    );
    let err = app
        .plane
        .export_audit(&reader, "acme", &AuditFilter::default())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            Error::Forbidden {
                needed: Level::Admin
            }
        ),
        "{err:?}"
    );
    let last = app.audit(app.t.acme.id).await.pop().unwrap();
    assert_eq!(
        (last.action.as_str(), last.outcome),
        ("audit.export", Outcome::Denied)
    );
}

fn synthetic(org_id: Uuid, i: usize) -> AuditEvent {
    AuditEvent {
        id: Uuid::now_v7(),
        time: time::OffsetDateTime::now_utc(),
        org_id,
        env_id: None,
        actor: AuditActor {
            kind: PrincipalKind::User,
            id: Uuid::nil(),
            name: if i.is_multiple_of(2) { "even" } else { "odd" }.into(),
            auth_method: AuthMethod::OAuth,
            credential_id: None,
        },
        client: ClientInfo::default(),
        action: "synthetic.event".into(),
        resources: vec![format!("n:{i}")],
        outcome: Outcome::Success,
        reason: None,
        seq: 0,
        prev_hash: String::new(),
        hash: String::new(),
    }
}

#[tokio::test]
async fn export_and_verify_page_through_long_chains() {
    let app = TestApp::start(1).await;
    let acme = app.t.acme.id;
    for chunk in 0..5 {
        let mut batch: Vec<AuditEvent> =
            (0..500).map(|i| synthetic(acme, chunk * 500 + i)).collect();
        app.store.append_audit_batch(&mut batch).await.unwrap();
    }
    let admin = app.admin();
    let all = export(&app, &admin, AuditFilter::default()).await;
    assert_eq!(all.len(), 2500);
    assert!(all.iter().enumerate().all(|(i, e)| e.seq == i as i64 + 1));
    assert_eq!(all[2499].resources, vec!["n:2499".to_string()]);
    let odd = export(
        &app,
        &admin,
        AuditFilter {
            actor: Some("odd".into()),
            ..AuditFilter::default()
        },
    )
    .await;
    assert_eq!(odd.len(), 1250);
    assert!(odd.iter().all(|e| e.actor.name == "odd"));

    let report = app.plane.verify_audit(&admin, "acme").await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.events_checked, 2502); // + the two exports
    assert_eq!((report.first_seq, report.last_seq), (Some(1), Some(2502)));
    assert_eq!(report.broken, None);
    assert_eq!(report.checkpoint, None);
}

/// Runs `sql` statements directly on the database file, as someone with disk access could.
async fn tamper(app: &TestApp, statements: &[&str]) {
    let url = format!("sqlite://{}", app.db_path().display());
    let mut conn = SqliteConnection::connect(&url).await.unwrap();
    // The append-only trigger is no obstacle to someone holding the file.
    sqlx::query("DROP TRIGGER IF EXISTS audit_events_no_update")
        .execute(&mut conn)
        .await
        .unwrap();
    for statement in statements {
        // Test-only statements written above; nothing comes from input.
        sqlx::query(sqlx::AssertSqlSafe(*statement))
            .bind(app.t.acme.id)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn.close().await.unwrap();
}

/// Eight real events (seq 1..=8) in acme's chain.
async fn eight_events(app: &TestApp) -> Vec<AuditEvent> {
    let admin = app.admin();
    for _ in 0..8 {
        list(app, &admin, app.dev()).await;
    }
    let events = app.audit(app.t.acme.id).await;
    assert_eq!(events.len(), 8);
    events
}

async fn broken_at(app: &TestApp, seq: i64, event_id: Uuid, reason: &str, checked: u64) {
    let report = app.plane.verify_audit(&app.admin(), "acme").await.unwrap();
    assert!(!report.ok);
    let broken = report.broken.clone().unwrap();
    assert_eq!(broken.seq, seq, "{report:?}");
    assert_eq!(broken.event_id, Some(event_id), "{report:?}");
    assert_eq!(broken.reason, reason);
    assert_eq!(report.events_checked, checked);
    // The verification itself is on the record, naming the break.
    let last = app.audit(app.t.acme.id).await.pop().unwrap();
    assert_eq!(last.action, "audit.verify");
    assert_eq!(last.resources, vec![format!("broken_seq:{seq}")]);
}

#[tokio::test]
async fn verify_finds_an_edited_event() {
    let app = TestApp::start(1).await;
    let events = eight_events(&app).await;
    assert!(
        app.plane
            .verify_audit(&app.admin(), "acme")
            .await
            .unwrap()
            .ok
    );
    tamper(
        &app,
        &["UPDATE audit_events SET event = json_set(event, '$.outcome', 'denied') WHERE org_id = ? AND seq = 5"],
    )
    .await;
    broken_at(
        &app,
        5,
        events[4].id,
        "event seq 5: hash does not match its content (edited)",
        4,
    )
    .await;
}

#[tokio::test]
async fn verify_finds_a_deleted_event() {
    let app = TestApp::start(1).await;
    let events = eight_events(&app).await;
    tamper(
        &app,
        &["DELETE FROM audit_events WHERE org_id = ? AND seq = 5"],
    )
    .await;
    broken_at(
        &app,
        6,
        events[5].id,
        "event seq 6: expected seq 5 (an event is missing or reordered)",
        4,
    )
    .await;
}

#[tokio::test]
async fn verify_finds_events_deleted_from_the_end() {
    let app = TestApp::start(1).await;
    eight_events(&app).await;
    tamper(
        &app,
        &["DELETE FROM audit_events WHERE org_id = ? AND seq >= 7"],
    )
    .await;
    let report = app.plane.verify_audit(&app.admin(), "acme").await.unwrap();
    assert!(!report.ok, "{report:?}");
    assert_eq!(report.events_checked, 6);
    let broken = report.broken.unwrap();
    assert_eq!(broken.seq, 7);
    assert_eq!(broken.event_id, None);
    assert_eq!(
        broken.reason,
        "the chain ends at seq 6 but its head is seq 8: events at the end were deleted or altered"
    );
}

#[tokio::test]
async fn verify_finds_reordered_events() {
    let app = TestApp::start(1).await;
    let events = eight_events(&app).await;
    tamper(
        &app,
        &[
            "UPDATE audit_events SET seq = -5 WHERE org_id = ? AND seq = 5",
            "UPDATE audit_events SET seq = 5 WHERE org_id = ? AND seq = 6",
            "UPDATE audit_events SET seq = 6 WHERE org_id = ? AND seq = -5",
        ],
    )
    .await;
    broken_at(
        &app,
        6,
        events[5].id,
        "event seq 6: expected seq 5 (an event is missing or reordered)",
        4,
    )
    .await;
}

#[tokio::test]
async fn verify_finds_an_inserted_event_even_with_correct_hashes() {
    let app = TestApp::start(1).await;
    let events = eight_events(&app).await;
    // A forged event slipped in at position 5, correctly linked to event 4 and hashed;
    // the genuine events from 5 on are moved up by one.
    let mut forged = events[4].clone();
    forged.id = Uuid::now_v7();
    forged.action = "workflow.delete".into();
    forged.prev_hash = events[3].hash.clone();
    forged.hash = chain_hash(&forged);
    let json = serde_json::to_string(&forged).unwrap().replace('\'', "''");
    let micros = forged.time.unix_timestamp_nanos() / 1000;
    let insert = format!(
        "INSERT INTO audit_events (org_id, seq, id, time, env_id, actor_id, action, outcome, hash, \
         event, actor_kind, actor_name) SELECT org_id, 5, x'{}', {micros}, env_id, actor_id, \
         'workflow.delete', outcome, '{}', '{json}', actor_kind, actor_name FROM audit_events \
         WHERE org_id = ? AND seq = -5",
        hex(forged.id.as_bytes()),
        forged.hash,
    );
    tamper(
        &app,
        &[
            "UPDATE audit_events SET seq = -seq WHERE org_id = ? AND seq >= 5",
            "UPDATE audit_events SET seq = 1 - seq WHERE org_id = ? AND seq < 0 AND seq != -5",
            &insert,
            "UPDATE audit_events SET seq = 6 WHERE org_id = ? AND seq = -5",
            // …and the head moved along, so appends continue after the forged chain.
            "UPDATE audit_heads SET seq = seq + 1 WHERE org_id = ?",
        ],
    )
    .await;
    let stored = app.store.audit_events(app.t.acme.id, 0, 100).await.unwrap();
    assert_eq!(stored.len(), 9);
    assert_eq!(stored[4].id, forged.id);
    broken_at(
        &app,
        5,
        events[4].id,
        "event seq 5: expected seq 6 (an event is missing or reordered)",
        5,
    )
    .await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn retention_purges_old_events_leaves_a_checkpoint_and_the_rest_verifies() {
    let app = TestApp::start_with(ControlPlaneConfig {
        retention_interval: Duration::from_millis(50),
        ..ControlPlaneConfig::default()
    })
    .await;
    let admin = app.admin();
    let acme = app.t.acme.id;
    for _ in 0..5 {
        list(&app, &admin, app.dev()).await;
    }
    let settings = app
        .plane
        .set_audit_settings(&admin, "acme", &AuditSettings { retention_days: 1 })
        .await
        .unwrap();
    assert_eq!(settings.retention_days, 1);
    let old = app.audit(acme).await;
    assert_eq!(old.len(), 6);
    assert_eq!(old[5].resources, vec!["retention_days:180->1".to_string()]);

    // Nothing is old yet: several sweeps leave everything.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.store.audit_checkpoint(acme).await.unwrap(), None);

    app.clock.advance(Duration::from_secs(2 * 24 * 3600));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let checkpoint = loop {
        if let Some(c) = app.store.audit_checkpoint(acme).await.unwrap() {
            break c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "retention did not purge"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(checkpoint.seq, 6);
    assert_eq!(checkpoint.hash, old[5].hash);
    // Wait for the purge's own event.
    while app.audit(acme).await.is_empty() {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    for _ in 0..3 {
        list(&app, &admin, app.dev()).await;
    }
    let remaining = app.audit(acme).await;
    let seqs: Vec<i64> = remaining.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![7, 8, 9, 10]);
    assert_eq!(remaining[0].action, "audit.purged");
    assert_eq!(remaining[0].actor.kind, PrincipalKind::System);
    assert!(
        remaining[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("through seq 6")
    );

    let report = app.plane.verify_audit(&admin, "acme").await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.checkpoint.map(|c| c.seq), Some(6));
    assert_eq!((report.first_seq, report.last_seq), (Some(7), Some(10)));
    assert_eq!(report.events_checked, 4);
}

#[tokio::test]
async fn retention_settings_and_the_activity_report() {
    let app = TestApp::start(1).await;
    let admin = app.person("admin@acme.test", OrgRole::Admin, &[]).await;
    let alice = app
        .person(
            "alice@acme.test",
            OrgRole::Member,
            &[(app.t.dev.id, Level::Read)],
        )
        .await;
    assert_eq!(
        app.plane
            .audit_settings(&admin, "acme")
            .await
            .unwrap()
            .retention_days,
        180
    );
    for days in [0, 3651] {
        let err = app
            .plane
            .set_audit_settings(
                &admin,
                "acme",
                &AuditSettings {
                    retention_days: days,
                },
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Invalid(f) if f[0].path == "retention_days"),
            "{err:?}"
        );
    }
    app.plane
        .set_audit_settings(&admin, "acme", &AuditSettings { retention_days: 30 })
        .await
        .unwrap();
    assert_eq!(
        app.plane
            .audit_settings(&admin, "acme")
            .await
            .unwrap()
            .retention_days,
        30
    );
    let org = app.store.find_org("acme").await.unwrap().unwrap();
    assert_eq!(org.audit_retention_days, 30);
    let err = app.plane.audit_settings(&alice, "acme").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Forbidden {
                needed: Level::Admin
            }
        ),
        "{err:?}"
    );

    list(&app, &alice, app.dev()).await;
    list(&app, &alice, app.dev()).await;
    let now = time::OffsetDateTime::now_utc();
    let hour = time::Duration::hours(1);
    let actors = app
        .plane
        .audit_actors(&admin, "acme", now - hour, now + hour)
        .await
        .unwrap();
    let summary: Vec<(String, u64)> = actors.iter().map(|a| (a.name.clone(), a.events)).collect();
    // Alice: 2 lists + the refused settings read. The admin: 5 settings calls.
    assert_eq!(
        summary,
        vec![
            ("admin@acme.test".to_string(), 5),
            ("alice@acme.test".to_string(), 3)
        ]
    );
    assert_eq!(actors[1].id, alice.principal.id);
    assert_eq!(actors[1].kind, PrincipalKind::User);
    let err = app
        .plane
        .audit_actors(&admin, "acme", now + hour, now)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(f) if f[0].path == "since"),
        "{err:?}"
    );
}

#[tokio::test]
async fn concurrent_events_share_one_transaction() {
    let app = TestApp::start(1).await;
    app.store.audit_delay_ms.store(500, Ordering::SeqCst);
    let admin = app.admin();
    let first = {
        let (plane, admin, env) = (app.plane.clone(), admin.clone(), app.dev());
        tokio::spawn(async move {
            plane
                .list_workflows(&admin, &env, &Default::default(), &Default::default())
                .await
        })
    };
    // The first batch is being written (slowly); these queue up behind it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let rest: Vec<_> = (0..20)
        .map(|_| {
            let (plane, admin, env) = (app.plane.clone(), admin.clone(), app.dev());
            tokio::spawn(async move {
                plane
                    .list_workflows(&admin, &env, &Default::default(), &Default::default())
                    .await
            })
        })
        .collect();
    first.await.unwrap().unwrap();
    for task in rest {
        task.await.unwrap().unwrap();
    }
    assert_eq!(*app.store.batch_sizes.lock().unwrap(), vec![1, 20]);
    app.store.audit_delay_ms.store(0, Ordering::SeqCst);
    assert_eq!(app.audit(app.t.acme.id).await.len(), 21);
    assert!(app.plane.verify_audit(&admin, "acme").await.unwrap().ok);
}

fn with_request(actor: &Actor, request_id: &str) -> Actor {
    let mut actor = actor.clone();
    actor.client.request_id = Some(request_id.into());
    actor
}

#[tokio::test]
async fn two_hundred_concurrent_mixed_calls_leave_exactly_one_event_each_and_a_valid_chain() {
    let app = Arc::new(TestApp::start(4).await);
    app.create(&shell_workflow("smoke", "echo hi")).await;
    let owner = app.person("owner@acme.test", OrgRole::Owner, &[]).await;
    let reader = app.member(&[(app.t.dev.id, Level::Read)]);
    let runner_token = app
        .plane
        .create_api_token(
            &owner,
            "acme",
            &new_token(ApiTokenKind::Member, &[("dev", Level::Run)]),
        )
        .await
        .unwrap()
        .secret;
    let revoked = app
        .plane
        .create_api_token(&owner, "acme", &new_token(ApiTokenKind::OrgRead, &[]))
        .await
        .unwrap();
    app.plane
        .revoke_api_token(&owner, "acme", revoked.token.id)
        .await
        .unwrap();
    let (unknown, _) = assay_control::tokens::generate();
    let bad = [
        String::from("assay_garbage"),
        revoked.secret.clone(),
        unknown,
    ];

    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let app = app.clone();
            let (owner, reader, runner_token) =
                (owner.clone(), reader.clone(), runner_token.clone());
            let bad = bad[i % 3].clone();
            tokio::spawn(async move {
                let request = format!("mixed-{i}");
                let client = ClientInfo {
                    request_id: Some(request.clone()),
                    ..ClientInfo::default()
                };
                let auth = app.plane.authenticator();
                match i % 5 {
                    0 => {
                        list(&app, &with_request(&owner, &request), app.dev()).await;
                    }
                    1 => {
                        let principal = auth
                            .authenticate(&runner_token, &client, Some("acme"))
                            .await
                            .unwrap();
                        app.plane
                            .run_workflow(
                                &Actor::new(principal, client),
                                &app.dev(),
                                "smoke",
                                &Default::default(),
                            )
                            .await
                            .unwrap();
                    }
                    2 => {
                        let err = app
                            .plane
                            .run_workflow(
                                &with_request(&reader, &request),
                                &app.dev(),
                                "smoke",
                                &Default::default(),
                            )
                            .await
                            .unwrap_err();
                        assert!(matches!(err, Error::Forbidden { needed: Level::Run }));
                    }
                    3 => {
                        let err = auth
                            .authenticate(&bad, &client, Some("acme"))
                            .await
                            .unwrap_err();
                        assert!(matches!(err, Error::Unauthenticated(_)));
                    }
                    _ => {
                        let principal = auth
                            .authenticate(&runner_token, &client, Some("acme"))
                            .await
                            .unwrap();
                        app.plane
                            .get_workflow(&Actor::new(principal, client), &app.dev(), "smoke")
                            .await
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }

    let events = app.audit(app.t.acme.id).await;
    let mut per_request: BTreeMap<String, Vec<&AuditEvent>> = BTreeMap::new();
    for e in &events {
        if let Some(id) = e
            .client
            .request_id
            .as_deref()
            .filter(|r| r.starts_with("mixed-"))
        {
            per_request.entry(id.to_string()).or_default().push(e);
        }
    }
    assert_eq!(per_request.len(), 200);
    for (request, found) in &per_request {
        assert_eq!(found.len(), 1, "{request}: {found:?}");
        let i: usize = request["mixed-".len()..].parse().unwrap();
        let (action, outcome) = (found[0].action.as_str(), found[0].outcome);
        let expected = match i % 5 {
            0 => ("workflow.list", Outcome::Success),
            1 => ("workflow.run", Outcome::Success),
            2 => ("workflow.run", Outcome::Denied),
            3 => ("auth.failed", Outcome::Denied),
            _ => ("workflow.get", Outcome::Success),
        };
        assert_eq!((action, outcome), expected, "{request}");
    }
    assert!(app.audit(Uuid::nil()).await.is_empty());
    let report = app.plane.verify_audit(&owner, "acme").await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.events_checked as usize, events.len());

    // Let the 40 runs finish before the app goes away.
    let page = app
        .store
        .list_executions(
            app.t.dev.id,
            &Default::default(),
            &assay_core::PageRequest {
                limit: Some(100),
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 40);
    for e in page.items {
        app.finished(e.id).await;
    }
}
