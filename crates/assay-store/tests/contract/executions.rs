//! Executions: round trips, numbering, updates, recovery queries, resource samples.

use super::support::*;
use assay_core::execution::{
    ExecutionFilter, ExecutionStatus, ExecutionSummary, ResourceSample, StepResult,
};
use assay_core::page::PageRequest;
use assay_core::ports::Store;
use assay_core::workflow::ResourceKind;
use assay_core::{Error, Timestamp};
use std::collections::BTreeSet;
use std::sync::Arc;
use time::macros::datetime;
use uuid::Uuid;

const W: ResourceKind = ResourceKind::Workflow;

pub async fn execution_round_trip(store: Arc<dyn Store>) {
    let (_, e) = org_env(store.as_ref()).await;
    let wf = workflow(e.id, W, "checkout");
    store.insert_resource(&wf).await.unwrap();
    let mut ex = rich_execution(e.id, &wf);
    store.insert_execution(&mut ex).await.unwrap();
    assert_eq!(ex.number, 1);
    assert_eq!(ex.name, "checkout-1");

    let by_id = store.get_execution(e.id, &ex.id.to_string()).await.unwrap();
    assert_eq!(by_id.as_ref(), Some(&ex));
    let by_name = store.get_execution(e.id, "checkout-1").await.unwrap();
    assert_eq!(by_name.as_ref(), Some(&ex));
    // Spot-check JSON fields beyond PartialEq (exact nested values).
    let got = by_id.unwrap();
    assert_eq!(got.plan["nested"]["z"][2]["y"], serde_json::Value::Null);
    assert_eq!(got.plan["big"], serde_json::json!(12345678901234i64));
    assert_eq!(got.plan["float"], serde_json::json!(0.1));
    assert_eq!(
        got.steps[0].error.as_deref(),
        Some("exit status 2\u{0}with a NUL")
    );
    assert_eq!(
        got.steps[0].started_at,
        Some(datetime!(2025-06-01 12:00:01.000000789 UTC)),
        "timestamps inside JSON keep full precision"
    );
    assert!(got.config["token"].sensitive);

    // Not visible from another environment, by ID or by name; unknown names are None.
    let (_, other) = org_env(store.as_ref()).await;
    assert_eq!(
        store
            .get_execution(other.id, &ex.id.to_string())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.get_execution(other.id, "checkout-1").await.unwrap(),
        None
    );
    assert_eq!(store.get_execution(e.id, "checkout-2").await.unwrap(), None);
    assert_eq!(
        store
            .get_execution(e.id, &Uuid::now_v7().to_string())
            .await
            .unwrap(),
        None
    );

    // A second insert with the same ID is a conflict and consumes nothing visible.
    let mut again = ex.clone();
    assert_conflict(store.insert_execution(&mut again).await);
    let page = store
        .list_executions(e.id, &ExecutionFilter::default(), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.items, vec![ExecutionSummary::from(&ex)]);
}

pub async fn timestamps_exact_to_microsecond(store: Arc<dyn Store>) {
    let (_, e) = org_env(store.as_ref()).await;
    let wf = workflow(e.id, W, "clock");
    let cases: Vec<(Timestamp, Timestamp)> = vec![
        (
            datetime!(2025-06-01 12:00:00.123456 UTC),
            datetime!(2025-06-01 12:00:00.123456 UTC),
        ),
        (
            datetime!(2025-06-01 12:00:00.000001 UTC),
            datetime!(2025-06-01 12:00:00.000001 UTC),
        ),
        (
            datetime!(2025-06-01 12:00:00.999999 UTC),
            datetime!(2025-06-01 12:00:00.999999 UTC),
        ),
        (
            datetime!(1970-01-01 00:00:00 UTC),
            datetime!(1970-01-01 00:00:00 UTC),
        ),
        (
            datetime!(1999-12-31 23:59:59.999999 UTC),
            datetime!(1999-12-31 23:59:59.999999 UTC),
        ),
        (
            datetime!(2262-04-11 23:47:16.854775 UTC),
            datetime!(2262-04-11 23:47:16.854775 UTC),
        ),
        // Sub-microsecond digits are dropped (rounded down), the same on every backend.
        (
            datetime!(2025-06-01 12:00:00.123456789 UTC),
            datetime!(2025-06-01 12:00:00.123456 UTC),
        ),
        // A non-UTC offset is stored as the same instant, read back in UTC.
        (
            datetime!(2025-06-01 14:00:00.5 +02:00),
            datetime!(2025-06-01 12:00:00.5 UTC),
        ),
    ];
    for (i, (given, want)) in cases.into_iter().enumerate() {
        let mut ex = execution(e.id, &wf, given);
        ex.started_at = Some(given);
        ex.finished_at = Some(given + time::Duration::microseconds(1));
        store.insert_execution(&mut ex).await.unwrap();
        assert_eq!(ex.queued_at, want, "case {i}: caller's copy is normalized");
        let got = store
            .get_execution(e.id, &ex.id.to_string())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.queued_at, want, "case {i}");
        assert_eq!(got.queued_at.offset(), time::UtcOffset::UTC, "case {i}");
        assert_eq!(got.started_at, Some(want), "case {i}");
        assert_eq!(
            got.finished_at,
            Some(want + time::Duration::microseconds(1)),
            "case {i}"
        );
    }
    // Also on the other tables.
    let mut o = org("clock-org");
    o.created_at = datetime!(2031-07-08 09:10:11.121314 UTC);
    store.insert_org(&o).await.unwrap();
    assert_eq!(
        store
            .find_org("clock-org")
            .await
            .unwrap()
            .unwrap()
            .created_at,
        o.created_at
    );
}

pub async fn execution_numbering(store: Arc<dyn Store>) {
    let (_, e) = org_env(store.as_ref()).await;
    let a = workflow(e.id, W, "a");
    let b = workflow(e.id, W, "b");
    let mut seen = Vec::new();
    for (i, wf) in [&a, &a, &b, &a, &b].into_iter().enumerate() {
        let mut ex = execution(e.id, wf, at(i as i64));
        store.insert_execution(&mut ex).await.unwrap();
        seen.push(ex.name.clone());
    }
    assert_eq!(seen, ["a-1", "a-2", "b-1", "a-3", "b-2"]);
    // Numbering is per environment.
    let (_, other) = org_env(store.as_ref()).await;
    let mut ex = execution(other.id, &workflow(other.id, W, "a"), at(0));
    store.insert_execution(&mut ex).await.unwrap();
    assert_eq!((ex.number, ex.name.as_str()), (1, "a-1"));
}

pub async fn concurrent_insert_execution(store: Arc<dyn Store>) {
    let (_, e) = org_env(store.as_ref()).await;
    let wf = workflow(e.id, W, "busy");
    store.insert_resource(&wf).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = store.clone();
        let mut ex = execution(e.id, &wf, at(i));
        tasks.push(tokio::spawn(async move {
            store.insert_execution(&mut ex).await.unwrap();
            (ex.number, ex.name)
        }));
    }
    let mut numbers = Vec::new();
    for t in tasks {
        let (n, name) = t.await.unwrap();
        assert_eq!(name, format!("busy-{n}"));
        numbers.push(n);
    }
    numbers.sort();
    assert_eq!(numbers, (1..=50).collect::<Vec<i64>>());
    let page = store
        .list_executions(
            e.id,
            &ExecutionFilter::default(),
            &PageRequest {
                limit: Some(500),
                cursor: None,
            },
        )
        .await
        .unwrap();
    let mut stored: Vec<i64> = page.items.iter().map(|s| s.number).collect();
    stored.sort();
    assert_eq!(stored, (1..=50).collect::<Vec<i64>>());
    assert_eq!(page.total, 50);
}

pub async fn update_execution(store: Arc<dyn Store>) {
    let (_, e) = org_env(store.as_ref()).await;
    let wf = workflow(e.id, W, "upd");
    let mut ex = execution(e.id, &wf, at(0));
    ex.tags = map(&[("branch", "main"), ("pr", "7")]);
    ex.labels = map(&[("team", "qa")]);
    store.insert_execution(&mut ex).await.unwrap();
    let original = ex.clone();
    // Filters combining a selector with status or workflow must follow updates.
    let count_with =
        |tags: Option<&'static str>, labels: Option<&'static str>, status: ExecutionStatus| {
            let store = store.clone();
            async move {
                let filter = ExecutionFilter {
                    tag_selector: tags.map(Into::into),
                    label_selector: labels.map(Into::into),
                    statuses: vec![status],
                    workflow: Some("upd".into()),
                    ..Default::default()
                };
                let total = store
                    .list_executions(e.id, &filter, &PageRequest::default())
                    .await
                    .unwrap()
                    .total;
                let listed = store
                    .list_executions(e.id, &filter, &PageRequest::default())
                    .await
                    .unwrap()
                    .items
                    .len() as u64;
                assert_eq!(total, listed);
                total
            }
        };
    assert_eq!(
        count_with(Some("branch=main"), None, ExecutionStatus::Queued).await,
        1
    );
    assert_eq!(
        count_with(None, Some("team=qa"), ExecutionStatus::Queued).await,
        1
    );
    assert_eq!(
        count_with(None, Some("team=qa"), ExecutionStatus::Passed).await,
        0
    );

    let mut changed = ex.clone();
    changed.status = ExecutionStatus::Passed;
    changed.started_at = Some(at(1));
    changed.finished_at = Some(at(3));
    changed.duration_ms = Some(2000);
    changed.steps = vec![StepResult {
        reference: "1".into(),
        name: "only".into(),
        status: ExecutionStatus::Passed,
        exit_code: Some(0),
        error: None,
        started_at: Some(at(1)),
        finished_at: Some(at(3)),
        attempts: 1,
        optional: true,
        negative: false,
    }];
    changed.junit = Some(Default::default());
    changed.error = Some("none really".into());
    changed.runner = Some("runner-9".into());
    changed.tags = map(&[("branch", "release"), ("new", "yes")]);
    store.update_execution(&changed).await.unwrap();
    let got = store
        .get_execution(e.id, &ex.id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, changed);
    assert_eq!(
        count_with(Some("branch=release"), None, ExecutionStatus::Passed).await,
        1
    );
    assert_eq!(
        count_with(Some("branch=release"), None, ExecutionStatus::Queued).await,
        0
    );
    assert_eq!(
        count_with(None, Some("team=qa"), ExecutionStatus::Passed).await,
        1
    );
    assert_eq!(
        count_with(None, Some("team=qa"), ExecutionStatus::Queued).await,
        0
    );
    // Status change without a tag change updates the tag rows' status too.
    let mut failed = changed.clone();
    failed.status = ExecutionStatus::Failed;
    store.update_execution(&failed).await.unwrap();
    assert_eq!(
        count_with(Some("new=yes"), None, ExecutionStatus::Failed).await,
        1
    );
    assert_eq!(
        count_with(Some("new=yes"), None, ExecutionStatus::Passed).await,
        0
    );
    assert_eq!(
        count_with(None, Some("team=qa"), ExecutionStatus::Failed).await,
        1
    );
    store.update_execution(&changed).await.unwrap();

    // Tags are filterable by their new values only.
    let count = |sel: &'static str| {
        let store = store.clone();
        async move {
            store
                .list_executions(
                    e.id,
                    &ExecutionFilter {
                        tag_selector: Some(sel.into()),
                        ..Default::default()
                    },
                    &PageRequest::default(),
                )
                .await
                .unwrap()
                .total
        }
    };
    assert_eq!(count("branch=main").await, 0);
    assert_eq!(count("pr").await, 0);
    assert_eq!(count("branch=release").await, 1);
    assert_eq!(count("new=yes").await, 1);

    // Clearing optional fields and tags.
    let mut cleared = changed.clone();
    cleared.junit = None;
    cleared.error = None;
    cleared.runner = None;
    cleared.tags.clear();
    cleared.duration_ms = None;
    store.update_execution(&cleared).await.unwrap();
    assert_eq!(
        store
            .get_execution(e.id, &ex.id.to_string())
            .await
            .unwrap()
            .unwrap(),
        cleared
    );
    assert_eq!(count("branch").await, 0);

    // Immutable fields are not replaced.
    let mut sneaky = cleared.clone();
    sneaky.config.insert(
        "x".into(),
        assay_core::execution::ConfigValue {
            value: 1.into(),
            sensitive: false,
        },
    );
    sneaky.plan = serde_json::json!({"changed": true});
    sneaky.workflow_name = "other".into();
    store.update_execution(&sneaky).await.unwrap();
    let got = store
        .get_execution(e.id, &ex.id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.config, original.config);
    assert_eq!(got.plan, original.plan);
    assert_eq!(got.workflow_name, "upd");

    // Missing execution, or one in another environment: NotFound.
    let mut missing = cleared.clone();
    missing.id = Uuid::now_v7();
    assert!(matches!(
        store.update_execution(&missing).await,
        Err(Error::NotFound {
            kind: "execution",
            ..
        })
    ));
    let (_, other) = org_env(store.as_ref()).await;
    let mut wrong_env = cleared.clone();
    wrong_env.env_id = other.id;
    assert!(matches!(
        store.update_execution(&wrong_env).await,
        Err(Error::NotFound {
            kind: "execution",
            ..
        })
    ));
}

pub async fn execution_survives_workflow_deletion(store: Arc<dyn Store>) {
    let (_, e) = org_env(store.as_ref()).await;
    let wf = workflow(e.id, W, "doomed");
    store.insert_resource(&wf).await.unwrap();
    let mut names = Vec::new();
    for i in 0..3 {
        let mut ex = execution(e.id, &wf, at(i));
        store.insert_execution(&mut ex).await.unwrap();
        names.push(ex.name.clone());
    }
    assert!(store.delete_resource(e.id, W, "doomed").await.unwrap());
    for name in &names {
        let got = store.get_execution(e.id, name).await.unwrap().unwrap();
        assert_eq!(got.workflow_id, wf.id);
    }
    let filter = ExecutionFilter {
        workflow: Some("doomed".into()),
        ..Default::default()
    };
    let page = store
        .list_executions(e.id, &filter, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(store.recent_executions(wf.id, 10).await.unwrap().len(), 3);

    // Re-created under the same name (new ID): numbering continues, names stay unique.
    let again = workflow(e.id, W, "doomed");
    store.insert_resource(&again).await.unwrap();
    let mut ex = execution(e.id, &again, at(10));
    store.insert_execution(&mut ex).await.unwrap();
    assert_eq!(ex.name, "doomed-4");
    assert_eq!(
        store.recent_executions(again.id, 10).await.unwrap().len(),
        1
    );
    let page = store
        .list_executions(e.id, &filter, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.total, 4);
    // Updating an execution of the deleted workflow still works.
    let mut old = store
        .get_execution(e.id, "doomed-1")
        .await
        .unwrap()
        .unwrap();
    old.status = ExecutionStatus::Aborted;
    store.update_execution(&old).await.unwrap();
    assert_eq!(
        store
            .get_execution(e.id, "doomed-1")
            .await
            .unwrap()
            .unwrap()
            .status,
        ExecutionStatus::Aborted
    );
}

pub async fn executions_with_status(store: Arc<dyn Store>) {
    let (_, e1) = org_env(store.as_ref()).await;
    let (_, e2) = org_env(store.as_ref()).await;
    let w1 = workflow(e1.id, W, "w");
    let w2 = workflow(e2.id, W, "w");
    // (env, queued offset, status)
    let plan = [
        (&e1, &w1, 50, ExecutionStatus::Running),
        (&e2, &w2, 10, ExecutionStatus::Queued),
        (&e1, &w1, 30, ExecutionStatus::Passed),
        (&e2, &w2, 40, ExecutionStatus::Running),
        (&e1, &w1, 20, ExecutionStatus::Queued),
    ];
    let mut ids = Vec::new();
    for (env, wf, offset, status) in plan {
        let mut ex = execution(env.id, wf, at(offset));
        ex.status = status;
        store.insert_execution(&mut ex).await.unwrap();
        ids.push(ex.id);
    }
    let got = store
        .executions_with_status(&[ExecutionStatus::Queued, ExecutionStatus::Running])
        .await
        .unwrap();
    // Oldest first across environments: offsets 10, 20, 40, 50.
    assert_eq!(
        got.iter().map(|x| x.id).collect::<Vec<_>>(),
        vec![ids[1], ids[4], ids[3], ids[0]]
    );
    assert_eq!(got[0].env_id, e2.id);
    let passed = store
        .executions_with_status(&[ExecutionStatus::Passed])
        .await
        .unwrap();
    assert_eq!(
        passed.iter().map(|x| x.id).collect::<Vec<_>>(),
        vec![ids[2]]
    );
    assert!(store.executions_with_status(&[]).await.unwrap().is_empty());
    assert!(
        store
            .executions_with_status(&[ExecutionStatus::Timeout])
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn recent_executions(store: Arc<dyn Store>) {
    let (_, e) = org_env(store.as_ref()).await;
    let a = workflow(e.id, W, "a");
    let b = workflow(e.id, W, "b");
    for i in 0..12 {
        let wf = if i % 3 == 0 { &b } else { &a };
        let mut ex = execution(e.id, wf, at(i));
        store.insert_execution(&mut ex).await.unwrap();
    }
    let recent = store.recent_executions(a.id, 5).await.unwrap();
    assert_eq!(
        recent.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["a-8", "a-7", "a-6", "a-5", "a-4"]
    );
    let all_b = store.recent_executions(b.id, 100).await.unwrap();
    assert_eq!(
        all_b.iter().map(|s| s.number).collect::<Vec<_>>(),
        [4, 3, 2, 1]
    );
    assert!(
        store
            .recent_executions(Uuid::now_v7(), 5)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.recent_executions(a.id, 0).await.unwrap().is_empty());
}

pub async fn recent_executions_for_workflows(store: Arc<dyn Store>) {
    let (_, e) = org_env(store.as_ref()).await;
    let (_, other) = org_env(store.as_ref()).await;
    let a = workflow(e.id, W, "a");
    let b = workflow(e.id, W, "b");
    let idle = workflow(e.id, W, "idle");
    let foreign = workflow(other.id, W, "a");
    for i in 0..12 {
        let wf = if i % 3 == 0 { &b } else { &a };
        let mut ex = execution(e.id, wf, at(i));
        store.insert_execution(&mut ex).await.unwrap();
    }
    let mut ex = execution(other.id, &foreign, at(0));
    store.insert_execution(&mut ex).await.unwrap();

    let ids = [a.id, b.id, idle.id, foreign.id, a.id];
    let recent = store
        .recent_executions_for_workflows(e.id, &ids, 5)
        .await
        .unwrap();
    // Same answer as one `recent_executions` per workflow; no entry for a workflow
    // without executions or of another environment.
    assert_eq!(
        recent.keys().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([a.id, b.id])
    );
    for wf in [&a, &b] {
        assert_eq!(
            recent[&wf.id],
            store.recent_executions(wf.id, 5).await.unwrap(),
            "{}",
            wf.name
        );
    }
    assert_eq!(
        recent[&a.id]
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["a-8", "a-7", "a-6", "a-5", "a-4"]
    );
    assert_eq!(
        recent[&b.id].iter().map(|s| s.number).collect::<Vec<_>>(),
        [4, 3, 2, 1]
    );
    assert!(
        store
            .recent_executions_for_workflows(e.id, &ids, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .recent_executions_for_workflows(e.id, &[], 5)
            .await
            .unwrap()
            .is_empty()
    );

    // More workflows than one statement takes (a page can hold 500).
    let many: Vec<_> = (0..230)
        .map(|i| workflow(other.id, W, &format!("w{i}")))
        .collect();
    for (i, wf) in many.iter().enumerate() {
        for _ in 0..(i % 3) {
            let mut ex = execution(other.id, wf, at(i as i64));
            store.insert_execution(&mut ex).await.unwrap();
        }
    }
    let ids: Vec<Uuid> = many.iter().map(|w| w.id).collect();
    let recent = store
        .recent_executions_for_workflows(other.id, &ids, 1)
        .await
        .unwrap();
    assert_eq!(recent.len(), many.len() * 2 / 3);
    for (i, wf) in many.iter().enumerate() {
        let numbers: Vec<i64> = recent
            .get(&wf.id)
            .map(|l| l.iter().map(|s| s.number).collect())
            .unwrap_or_default();
        let expected: Vec<i64> = if i % 3 == 0 {
            vec![]
        } else {
            vec![(i % 3) as i64]
        };
        assert_eq!(numbers, expected, "{}", wf.name);
    }
}

pub async fn resource_samples(store: Arc<dyn Store>) {
    let (_, e) = org_env(store.as_ref()).await;
    let wf = workflow(e.id, W, "metrics");
    let mut ex = execution(e.id, &wf, at(0));
    store.insert_execution(&mut ex).await.unwrap();
    let sample = |ms: i64, cpu: u64, mem: u64| ResourceSample {
        time: T0 + time::Duration::milliseconds(ms),
        cpu_millicores: cpu,
        memory_bytes: mem,
    };
    // 450 samples for step "1" (several INSERT batches), interleaved in time with "2".
    let step1: Vec<_> = (0..450)
        .map(|i| sample(i * 100, i as u64, 1 << 30))
        .collect();
    let step2: Vec<_> = (0..3)
        .map(|i| sample(i * 100 + 50, 7, u64::from(u32::MAX) * 4))
        .collect();
    store
        .insert_resource_samples(ex.id, "1", &step1)
        .await
        .unwrap();
    store
        .insert_resource_samples(ex.id, "2", &step2)
        .await
        .unwrap();
    store
        .insert_resource_samples(ex.id, "3", &[])
        .await
        .unwrap();
    let got = store.resource_samples(ex.id).await.unwrap();
    assert_eq!(got.len(), 453);
    let times: Vec<_> = got.iter().map(|(_, s)| s.time).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "time order");
    assert_eq!(got[0], ("1".to_string(), step1[0].clone()));
    assert_eq!(got[1], ("2".to_string(), step2[0].clone()));
    assert_eq!(got[2], ("1".to_string(), step1[1].clone()));
    assert_eq!(got.last().unwrap(), &("1".to_string(), step1[449].clone()));
    let steps: BTreeSet<_> = got.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(steps, BTreeSet::from(["1", "2"]));
    assert!(
        store
            .resource_samples(Uuid::now_v7())
            .await
            .unwrap()
            .is_empty()
    );
}
