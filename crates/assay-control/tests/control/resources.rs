//! Workflows and templates: create, read, update, apply, delete, templates in runs.

use crate::harness::*;
use assay_core::Error;
use assay_core::execution::ExecutionStatus;
use assay_core::ports::ControlPlane;
use assay_core::workflow::{ResourceKind, WorkflowFilter};
use std::collections::{BTreeMap, BTreeSet};

const SMOKE: &str = "# a comment the server must keep
apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata:
  name: smoke
  labels:
    team: qa
description: checks the basics
spec:
  steps:
  - name: hello
    shell: echo hello
";

#[tokio::test]
async fn workflow_lifecycle_keeps_the_source_exactly() {
    let app = TestApp::start(2).await;
    let admin = app.admin();
    let env = app.dev();

    let created = app
        .plane
        .create_workflow(&admin, &env, SMOKE)
        .await
        .unwrap();
    assert_eq!(created.source, SMOKE);
    assert_eq!(created.summary.name, "smoke");
    assert_eq!(created.summary.kind, ResourceKind::Workflow);
    assert_eq!(created.summary.description, "checks the basics");
    assert_eq!(created.summary.labels["team"], "qa");
    assert_eq!(created.definition["metadata"]["name"], "smoke");
    let health = created.summary.health.clone().unwrap();
    assert_eq!(health.executions, 0);
    assert!(created.summary.last_execution.is_none());

    let err = app
        .plane
        .create_workflow(&admin, &env, SMOKE)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");

    let got = app.plane.get_workflow(&admin, &env, "smoke").await.unwrap();
    assert_eq!(got, created);

    let changed = SMOKE.replace("echo hello", "echo changed");
    let updated = app
        .plane
        .update_workflow(&admin, &env, "smoke", &changed)
        .await
        .unwrap();
    assert_eq!(updated.source, changed);
    assert_eq!(updated.summary.id, created.summary.id);
    assert_eq!(updated.summary.created_at, created.summary.created_at);

    let err = app
        .plane
        .update_workflow(&admin, &env, "other-name", &changed)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(e) if e[0].path == "metadata.name"),
        "{err:?}"
    );

    let applied = app
        .plane
        .apply_workflow(&admin, &env, &shell_workflow("nightly", "echo n"))
        .await
        .unwrap();
    assert!(applied.created);
    let reapplied = app
        .plane
        .apply_workflow(&admin, &env, &shell_workflow("nightly", "echo m"))
        .await
        .unwrap();
    assert!(!reapplied.created);
    assert_eq!(reapplied.workflow.summary.id, applied.workflow.summary.id);
    assert!(reapplied.workflow.source.contains("echo m"));

    let list = app
        .plane
        .list_workflows(
            &admin,
            &env,
            &WorkflowFilter::default(),
            &Default::default(),
        )
        .await
        .unwrap();
    let names: Vec<&str> = list.items.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["nightly", "smoke"]);
    assert_eq!(list.total, 2);

    let labels = app.plane.list_labels(&admin, &env).await.unwrap();
    assert_eq!(
        labels,
        BTreeMap::from([("team".to_string(), BTreeSet::from(["qa".to_string()]))])
    );

    app.plane
        .delete_workflow(&admin, &env, "nightly")
        .await
        .unwrap();
    let err = app
        .plane
        .get_workflow(&admin, &env, "nightly")
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
        .delete_workflow(&admin, &env, "nightly")
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
}

#[tokio::test]
async fn unknown_names_suggest_close_ones() {
    let app = TestApp::start(2).await;
    app.create(SMOKE).await;
    let err = app
        .plane
        .get_workflow(&app.admin(), &app.dev(), "smok")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"workflow "smok; did you mean: smoke?" not found"#
    );
    let err = app
        .plane
        .run_workflow(&app.admin(), &app.dev(), "smkoe", &Default::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"workflow "smkoe; did you mean: smoke?" not found"#
    );
    let err = app
        .plane
        .get_workflow(&app.admin(), &app.dev(), "unrelated")
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), r#"workflow "unrelated" not found"#);
}

#[tokio::test]
async fn documents_of_the_wrong_kind_or_invalid_are_rejected() {
    let app = TestApp::start(2).await;
    let template =
        "kind: TestWorkflowTemplate\nmetadata:\n  name: t\nspec:\n  steps:\n  - shell: echo t\n";
    let err = app
        .plane
        .create_workflow(&app.admin(), &app.dev(), template)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    let err = app
        .plane
        .create_workflow(&app.admin(), &app.dev(), "metadata: [")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    let created = app
        .plane
        .create_template(&app.admin(), &app.dev(), template)
        .await
        .unwrap();
    assert_eq!(created.summary.kind, ResourceKind::Template);
    assert_eq!(created.summary.health, None);
}

fn template(name: &str, spec: &str) -> String {
    let spec: String = spec.lines().map(|l| format!("  {l}\n")).collect();
    format!("kind: TestWorkflowTemplate\nmetadata:\n  name: {name}\nspec:\n{spec}")
}

#[tokio::test]
async fn templates_are_resolved_transitively_when_running() {
    let app = TestApp::start(2).await;
    let admin = app.admin();
    let env = app.dev();
    app.plane
        .create_template(
            &admin,
            &env,
            &template("base", "steps:\n- name: base-step\n  shell: echo from-base"),
        )
        .await
        .unwrap();
    app.plane
        .create_template(
            &admin,
            &env,
            &template(
                "greet",
                "use:\n- name: base\nsteps:\n- name: greet-step\n  shell: echo from-greet",
            ),
        )
        .await
        .unwrap();
    app.create(&workflow(
        "uses",
        "use:\n- name: greet\nsteps:\n- name: own\n  shell: echo from-own",
    ))
    .await;
    let e = app.run("uses", &[]).await;
    let done = app.finished(e.id).await;
    assert_eq!(done.status, ExecutionStatus::Passed, "{done:?}");
    let log = app.log(e.id).await;
    for line in ["from-base", "from-greet", "from-own"] {
        assert!(
            log.contains(&line.to_string()),
            "{line} missing from {log:?}"
        );
    }
}

#[tokio::test]
async fn template_cycles_and_missing_templates_are_invalid() {
    let app = TestApp::start(2).await;
    let admin = app.admin();
    let env = app.dev();
    app.plane
        .create_template(
            &admin,
            &env,
            &template("a", "use:\n- name: b\nsteps:\n- shell: echo a"),
        )
        .await
        .unwrap();
    app.plane
        .create_template(
            &admin,
            &env,
            &template("b", "use:\n- name: a\nsteps:\n- shell: echo b"),
        )
        .await
        .unwrap();
    app.create(&workflow(
        "cyclic",
        "use:\n- name: a\nsteps:\n- shell: echo x",
    ))
    .await;
    app.create(&workflow(
        "missing",
        "use:\n- name: nowhere\nsteps:\n- shell: echo x",
    ))
    .await;

    let err = app
        .plane
        .run_workflow(&admin, &env, "cyclic", &Default::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid input: use: templates use each other in a cycle: a → b → a"
    );
    let err = app
        .plane
        .run_workflow(&admin, &env, "missing", &Default::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid input: use: template \"nowhere\" does not exist in this environment"
    );
    // Nothing was stored for the refused runs.
    let page = app
        .plane
        .list_executions(&admin, &env, &Default::default(), &Default::default())
        .await
        .unwrap();
    assert_eq!(page.total, 0);
}
