//! Environment resolution and permissions: refusals, and no existence oracle.

use crate::harness::*;
use assay_core::actor::Access;
use assay_core::audit::Outcome;
use assay_core::ports::ControlPlane;
use assay_core::{EnvRef, Error, Level};

#[tokio::test]
async fn a_read_member_may_read_but_not_run() {
    let app = TestApp::start(2).await;
    app.create(&shell_workflow("smoke", "echo hi")).await;
    let reader = app.member(&[(app.t.dev.id, Level::Read)]);

    let list = app
        .plane
        .list_workflows(
            &reader,
            &app.dev(),
            &Default::default(),
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    app.plane
        .get_workflow(&reader, &app.dev(), "smoke")
        .await
        .unwrap();

    let err = app
        .plane
        .run_workflow(&reader, &app.dev(), "smoke", &Default::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Forbidden { needed: Level::Run }),
        "{err:?}"
    );
    let err = app
        .plane
        .create_workflow(&reader, &app.dev(), &shell_workflow("x", "true"))
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

    let page = app
        .plane
        .list_executions(
            &app.admin(),
            &app.dev(),
            &Default::default(),
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(page.total, 0, "a refused run must not create an execution");
}

#[tokio::test]
async fn an_ungranted_environment_looks_exactly_like_a_missing_one() {
    let app = TestApp::start(2).await;
    let reader = app.member(&[(app.t.dev.id, Level::Read)]);
    let list = |env: EnvRef| {
        let plane = app.plane.clone();
        let reader = reader.clone();
        async move {
            plane
                .list_workflows(&reader, &env, &Default::default(), &Default::default())
                .await
                .unwrap_err()
        }
    };
    let ungranted = list(EnvRef::new("acme", "staging")).await;
    let missing = list(EnvRef::new("acme", "nowhere")).await;
    let missing_org = list(EnvRef::new("nowhere", "staging")).await;
    let by_id = list(EnvRef::new(
        app.t.acme.id.to_string(),
        app.t.staging.id.to_string(),
    ))
    .await;
    for (err, name) in [
        (&ungranted, "acme/staging"),
        (&missing, "acme/nowhere"),
        (&missing_org, "nowhere/staging"),
    ] {
        assert!(
            matches!(err, Error::NotFound { kind: "environment", name: n } if n == name),
            "{err:?}"
        );
        assert_eq!(err.to_string(), format!("environment {name:?} not found"));
    }
    assert!(matches!(
        by_id,
        Error::NotFound {
            kind: "environment",
            ..
        }
    ));
}

#[tokio::test]
async fn another_organizations_principal_sees_nothing() {
    let app = TestApp::start(2).await;
    app.create(&shell_workflow("smoke", "echo hi")).await;
    let outsider = actor(user(app.t.other.id, Access::OrgAdmin));
    let err = app
        .plane
        .get_workflow(&outsider, &app.dev(), "smoke")
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "environment \"acme/dev\" not found");
    let err = app
        .plane
        .run_workflow(&outsider, &app.dev(), "smoke", &Default::default())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::NotFound {
            kind: "environment",
            ..
        }
    ));

    // Their own organization works as usual.
    let own = EnvRef::new(app.t.other.id.to_string(), app.t.other_dev.id.to_string());
    let list = app
        .plane
        .list_workflows(&outsider, &own, &Default::default(), &Default::default())
        .await
        .unwrap();
    assert_eq!(list.total, 0);

    // Audited as denied in the outsider's own chain; nothing in acme's.
    let theirs = app.audit(app.t.other.id).await;
    assert_eq!(theirs.len(), 3);
    assert!(
        theirs[..2]
            .iter()
            .all(|e| e.outcome == Outcome::Denied && e.env_id.is_none())
    );
    assert_eq!(theirs[2].outcome, Outcome::Success);
    assert_eq!(theirs[2].env_id, Some(app.t.other_dev.id));
    assert_eq!(theirs[0].action, "workflow.get");
    assert_eq!(theirs[1].action, "workflow.run");
    let acme = app.audit(app.t.acme.id).await;
    assert!(
        acme.iter().all(|e| e.action == "workflow.create"),
        "{acme:?}"
    );
}

#[tokio::test]
async fn org_read_and_scope_caps_bound_the_level() {
    let app = TestApp::start(2).await;
    app.create(&shell_workflow("smoke", "echo hi")).await;
    let org_read = actor(user(app.t.acme.id, Access::ReadAll));
    // Staging has no "smoke", but the environment itself is visible to org-read.
    let err = app
        .plane
        .get_workflow(&org_read, &app.staging(), "smoke")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                kind: "workflow",
                ..
            }
        ),
        "{err:?}"
    );
    let err = app
        .plane
        .run_workflow(&org_read, &app.dev(), "smoke", &Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden { needed: Level::Run }));

    let mut capped = user(app.t.acme.id, Access::OrgAdmin);
    capped.scope_cap = Some(Level::Run);
    let capped = actor(capped);
    let e = app
        .plane
        .run_workflow(&capped, &app.dev(), "smoke", &Default::default())
        .await
        .unwrap();
    app.finished(e.id).await;
    // The role would allow it; only the scope falls short: a step-up could help.
    let err = app
        .plane
        .delete_workflow(&capped, &app.dev(), "smoke")
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::InsufficientScope {
            needed: Level::Write
        }
    ));
}

#[tokio::test]
async fn run_level_may_run_abort_and_tag_but_not_edit() {
    let app = TestApp::start(2).await;
    app.create(&shell_workflow("smoke", "echo hi")).await;
    let runner = app.member(&[(app.t.dev.id, Level::Run)]);
    let e = app
        .plane
        .run_workflow(&runner, &app.dev(), "smoke", &Default::default())
        .await
        .unwrap();
    app.finished(e.id).await;
    app.plane
        .update_execution_tags(&runner, &app.dev(), &e.name, &Default::default())
        .await
        .unwrap();
    let err = app
        .plane
        .apply_workflow(
            &runner,
            &app.dev(),
            &shell_workflow("smoke", "echo changed"),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Forbidden {
            needed: Level::Write
        }
    ));
}
