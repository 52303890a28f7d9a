//! One audit event per call, committed before the result; fail closed without it.

use crate::harness::*;
use assay_core::actor::{AuthMethod, PrincipalKind};
use assay_core::audit::Outcome;
use assay_core::execution::{ExecutionStatus, LogQuery};
use assay_core::ports::{ControlPlane, Store};
use assay_core::{EnvRef, Error, Level};
use std::sync::atomic::Ordering;
use std::time::Duration;

#[tokio::test]
async fn every_call_appends_exactly_one_event_with_its_outcome() {
    let app = TestApp::start(2).await;
    let admin = app.admin();
    let reader = app.member(&[(app.t.dev.id, Level::Read)]);
    let org = app.t.acme.id;
    let count = || async { app.audit(org).await.len() };

    // success
    let before = count().await;
    let created = app
        .plane
        .create_workflow(&admin, &app.dev(), &shell_workflow("smoke", "echo hi"))
        .await
        .unwrap();
    let events = app.audit(org).await;
    assert_eq!(events.len(), before + 1);
    let event = events.last().unwrap();
    assert_eq!(event.action, "workflow.create");
    assert_eq!(event.outcome, Outcome::Success);
    assert_eq!(event.reason, None);
    assert_eq!(event.org_id, org);
    assert_eq!(event.env_id, Some(app.t.dev.id));
    assert_eq!(event.resources, vec!["workflow:smoke".to_string()]);
    assert_eq!(event.actor.kind, PrincipalKind::User);
    assert_eq!(event.actor.id, admin.principal.id);
    assert_eq!(event.actor.name, "Ada");
    assert_eq!(event.actor.auth_method, AuthMethod::OAuth);
    assert_eq!(event.actor.credential_id.as_deref(), Some("client-1"));
    assert_eq!(event.client.ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(event.client.user_agent.as_deref(), Some("assay-tests/1"));
    assert_eq!(event.client.request_id.as_deref(), Some("req-1"));
    assert!(!event.hash.is_empty());
    assert_eq!(created.summary.name, "smoke");

    // error (unknown workflow)
    app.plane
        .get_workflow(&admin, &app.dev(), "nope")
        .await
        .unwrap_err();
    let events = app.audit(org).await;
    assert_eq!(events.len(), before + 2);
    let event = events.last().unwrap();
    assert_eq!(
        (event.action.as_str(), event.outcome),
        ("workflow.get", Outcome::Error)
    );
    assert_eq!(event.reason.as_deref(), Some("workflow \"nope\" not found"));
    assert_eq!(event.resources, vec!["workflow:nope".to_string()]);

    // denied (forbidden)
    app.plane
        .run_workflow(&reader, &app.dev(), "smoke", &Default::default())
        .await
        .unwrap_err();
    let events = app.audit(org).await;
    assert_eq!(events.len(), before + 3);
    let event = events.last().unwrap();
    assert_eq!(
        (event.action.as_str(), event.outcome),
        ("workflow.run", Outcome::Denied)
    );
    assert_eq!(
        event.reason.as_deref(),
        Some("forbidden: this needs run permission on the environment")
    );
    assert_eq!(event.env_id, Some(app.t.dev.id));

    // denied (environment not visible)
    app.plane
        .list_workflows(
            &reader,
            &app.staging(),
            &Default::default(),
            &Default::default(),
        )
        .await
        .unwrap_err();
    let events = app.audit(org).await;
    assert_eq!(events.len(), before + 4);
    assert_eq!(events.last().unwrap().outcome, Outcome::Denied);
    assert_eq!(events.last().unwrap().action, "workflow.list");

    // denied (unknown org): the principal's own chain
    app.plane
        .list_workflows(
            &reader,
            &EnvRef::new("ghost", "dev"),
            &Default::default(),
            &Default::default(),
        )
        .await
        .unwrap_err();
    let events = app.audit(org).await;
    assert_eq!(events.len(), before + 5);
    assert_eq!(events.last().unwrap().env_id, None);

    // a run names the execution
    let e = app
        .plane
        .run_workflow(&admin, &app.dev(), "smoke", &Default::default())
        .await
        .unwrap();
    let events = app.audit(org).await;
    assert_eq!(events.len(), before + 6);
    assert_eq!(
        events.last().unwrap().resources,
        vec!["workflow:smoke".to_string(), format!("execution:{}", e.id)]
    );
    app.finished(e.id).await;

    // reading by name records the execution ID
    app.plane
        .execution_logs(&admin, &app.dev(), &e.name, &LogQuery::default())
        .await
        .unwrap();
    let events = app.audit(org).await;
    assert_eq!(events.len(), before + 7);
    assert_eq!(events.last().unwrap().action, "execution.logs.read");
    assert_eq!(
        events.last().unwrap().resources,
        vec![format!("execution:{}", e.id)]
    );

    // The chain is consecutive.
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
}

#[tokio::test]
async fn without_an_audit_log_operations_fail_closed() {
    let app = TestApp::start(2).await;
    let marker = app.path("ran");
    app.create(&shell_workflow(
        "marker",
        &format!("touch '{}'", marker.display()),
    ))
    .await;
    let admin = app.admin();
    let before = app.audit(app.t.acme.id).await.len();

    app.store.fail_audit.store(true, Ordering::SeqCst);
    let err = app
        .plane
        .list_workflows(&admin, &app.dev(), &Default::default(), &Default::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Unavailable(m) if m.starts_with("audit log unavailable")),
        "{err:?}"
    );
    let err = app
        .plane
        .get_workflow(&admin, &app.dev(), "missing")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    let err = app
        .plane
        .run_workflow(&admin, &app.dev(), "marker", &Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    // The database's own message does not reach the caller.
    assert!(!err.to_string().contains("locked"));

    app.store.fail_audit.store(false, Ordering::SeqCst);
    assert_eq!(app.audit(app.t.acme.id).await.len(), before);

    // The run was stored (so it could be named) but never started.
    let page = app
        .store
        .list_executions(app.t.dev.id, &Default::default(), &Default::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let refused = app.get(page.items[0].id).await;
    assert_eq!(refused.status, ExecutionStatus::Canceled);
    assert!(refused.error.unwrap().contains("audit log unavailable"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!marker.exists(), "an unaudited execution ran");
}
