//! Fixtures shared by the contract tests.

use assay_core::actor::{ActorRef, PrincipalKind};
use assay_core::execution::{
    ConfigValue, Execution, ExecutionStatus, JunitCase, JunitSummary, StepResult,
};
use assay_core::ports::Store;
use assay_core::workflow::{ResourceKind, WorkflowRecord};
use assay_core::{Environment, Error, Organization, Timestamp};
use std::collections::BTreeMap;
use time::macros::datetime;
use uuid::Uuid;

/// A fixed instant with microsecond precision (what the store keeps).
pub const T0: Timestamp = datetime!(2025-06-01 12:00:00.123456 UTC);

pub fn at(seconds: i64) -> Timestamp {
    T0 + time::Duration::seconds(seconds)
}

pub fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn org(slug: &str) -> Organization {
    Organization {
        id: Uuid::now_v7(),
        slug: slug.into(),
        name: format!("Org {slug}"),
        audit_retention_days: assay_core::tenancy::DEFAULT_AUDIT_RETENTION_DAYS,
        created_at: T0,
    }
}

pub fn env(org_id: Uuid, slug: &str) -> Environment {
    Environment {
        id: Uuid::now_v7(),
        org_id,
        slug: slug.into(),
        name: format!("Env {slug}"),
        created_at: T0,
    }
}

/// A fresh organization with one environment.
pub async fn org_env(store: &dyn Store) -> (Organization, Environment) {
    let o = org(&format!("org-{}", Uuid::now_v7().simple()));
    store.insert_org(&o).await.unwrap();
    let e = env(o.id, "dev");
    store.insert_env(&e).await.unwrap();
    (o, e)
}

pub fn workflow(env_id: Uuid, kind: ResourceKind, name: &str) -> WorkflowRecord {
    WorkflowRecord {
        id: Uuid::now_v7(),
        env_id,
        kind,
        name: name.into(),
        description: format!("The {name} suite"),
        labels: BTreeMap::new(),
        source: format!("kind: TestWorkflow\nmetadata:\n  name: {name}\n"),
        created_at: T0,
        updated_at: T0,
    }
}

pub fn starter() -> ActorRef {
    ActorRef {
        kind: PrincipalKind::User,
        id: Uuid::now_v7(),
        name: "Ada".into(),
    }
}

/// A queued execution of `workflow` (number and name are assigned by the store).
pub fn execution(env_id: Uuid, workflow: &WorkflowRecord, queued_at: Timestamp) -> Execution {
    Execution {
        id: Uuid::now_v7(),
        env_id,
        workflow_id: workflow.id,
        workflow_name: workflow.name.clone(),
        number: 0,
        name: String::new(),
        status: ExecutionStatus::Queued,
        config: BTreeMap::new(),
        tags: BTreeMap::new(),
        labels: workflow.labels.clone(),
        started_by: starter(),
        queued_at,
        started_at: None,
        finished_at: None,
        duration_ms: None,
        steps: Vec::new(),
        junit: None,
        error: None,
        plan: serde_json::json!({"steps": []}),
        runner: None,
    }
}

/// An execution with every optional field filled, including nested JSON.
pub fn rich_execution(env_id: Uuid, workflow: &WorkflowRecord) -> Execution {
    let mut e = execution(env_id, workflow, at(0));
    e.status = ExecutionStatus::Failed;
    e.config = [
        (
            "url".to_string(),
            ConfigValue {
                value: serde_json::json!("https://example.test/ü"),
                sensitive: false,
            },
        ),
        (
            "token".to_string(),
            ConfigValue {
                value: serde_json::json!("***"),
                sensitive: true,
            },
        ),
        (
            "retries".to_string(),
            ConfigValue {
                value: serde_json::json!(3),
                sensitive: false,
            },
        ),
    ]
    .into_iter()
    .collect();
    e.tags = map(&[("branch", "main"), ("commit", "abc123")]);
    e.labels = map(&[("team", "qa")]);
    e.started_at = Some(at(1));
    e.finished_at = Some(at(61));
    e.duration_ms = Some(60_000);
    e.steps = vec![StepResult {
        reference: "1".into(),
        name: "run tests".into(),
        status: ExecutionStatus::Failed,
        exit_code: Some(2),
        error: Some("exit status 2\u{0}with a NUL".into()),
        started_at: Some(datetime!(2025-06-01 12:00:01.000000789 UTC)),
        finished_at: Some(at(61)),
        attempts: 2,
        optional: false,
        negative: false,
    }];
    e.junit = Some(JunitSummary {
        tests: 10,
        failures: 1,
        errors: 0,
        skipped: 2,
        time_seconds: 1.25,
        reports: vec!["reports/junit.xml".into()],
        failed_cases: vec![JunitCase {
            name: "adds".into(),
            classname: "math".into(),
            kind: "failure".into(),
            message: "expected 4".into(),
            output: "stdout \"quoted\"\nline 2".into(),
            report: "reports/junit.xml".into(),
        }],
        truncated: false,
    });
    e.error = Some("step 1 failed".into());
    e.plan = serde_json::json!({
        "setup": [],
        "steps": [{"reference": "1", "name": "run tests", "command": {"kind": "shell", "shell": ["/bin/sh"], "script": "make test"}}],
        "after": [],
        "env": {"A": "1"},
        "big": 12345678901234i64,
        "float": 0.1,
        "nested": {"z": [1, 2, {"y": null}], "a": true}
    });
    e.runner = Some("local-1".into());
    e
}

pub fn assert_invalid(result: Result<impl std::fmt::Debug, Error>, path: &str) {
    match result {
        Err(Error::Invalid(errors)) => {
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert_eq!(errors[0].path, path, "{errors:?}");
        }
        other => panic!("expected Invalid at {path:?}, got {other:?}"),
    }
}

pub fn assert_conflict(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(Error::Conflict(message)) => message,
        other => panic!("expected Conflict, got {other:?}"),
    }
}
