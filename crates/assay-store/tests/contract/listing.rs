//! Listing executions: keyset pagination, totals, and every filter.

use super::resources::tamper;
use super::support::*;
use assay_core::execution::{Execution, ExecutionFilter, ExecutionStatus};
use assay_core::page::PageRequest;
use assay_core::ports::Store;
use assay_core::workflow::ResourceKind;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

const W: ResourceKind = ResourceKind::Workflow;

/// Every page of a listing: checks totals, page sizes and cursors; returns the IDs.
async fn all_pages(
    store: &dyn Store,
    env_id: Uuid,
    filter: &ExecutionFilter,
    limit: u32,
) -> Vec<Uuid> {
    let mut ids = Vec::new();
    let mut cursor = None;
    let mut total = None;
    for _ in 0..10_000 {
        let page = store
            .list_executions(
                env_id,
                filter,
                &PageRequest {
                    limit: Some(limit),
                    cursor,
                },
            )
            .await
            .unwrap();
        if let Some(t) = total {
            assert_eq!(page.total, t, "total changed between pages");
        }
        total = Some(page.total);
        ids.extend(page.items.iter().map(|s| s.id));
        match page.next_cursor {
            Some(c) => {
                assert_eq!(page.items.len(), limit as usize, "short page with a cursor");
                cursor = Some(c);
            }
            None => {
                assert_eq!(total, Some(ids.len() as u64), "total vs items listed");
                return ids;
            }
        }
    }
    panic!("pagination does not end");
}

/// Newest first: queued_at desc, then id desc.
fn newest_first(executions: &[&Execution]) -> Vec<Uuid> {
    let mut v: Vec<_> = executions.iter().map(|e| (e.queued_at, e.id)).collect();
    v.sort_by(|a, b| b.cmp(a));
    v.into_iter().map(|(_, id)| id).collect()
}

pub async fn execution_pagination(store: Arc<dyn Store>) {
    let (_, e) = org_env(store.as_ref()).await;
    let wfs = [
        workflow(e.id, W, "a"),
        workflow(e.id, W, "b"),
        workflow(e.id, W, "c"),
    ];
    // 130 executions; groups of five share a queued_at (ties are broken by id).
    let mut all = Vec::new();
    for i in 0..130i64 {
        let mut ex = execution(e.id, &wfs[(i % 3) as usize], at(1000 - (i / 5) * 7));
        store.insert_execution(&mut ex).await.unwrap();
        all.push(ex);
    }
    // Noise in another environment.
    let (_, other) = org_env(store.as_ref()).await;
    let mut noise = execution(other.id, &workflow(other.id, W, "a"), at(5000));
    store.insert_execution(&mut noise).await.unwrap();

    let want = newest_first(&all.iter().collect::<Vec<_>>());
    for limit in [50, 13, 1, 130, 500] {
        let got = all_pages(store.as_ref(), e.id, &ExecutionFilter::default(), limit).await;
        assert_eq!(got.len(), 130, "limit {limit}");
        assert_eq!(
            got.iter().collect::<HashSet<_>>().len(),
            130,
            "duplicates at limit {limit}"
        );
        assert_eq!(got, want, "order at limit {limit}");
    }
    let first = store
        .list_executions(
            e.id,
            &ExecutionFilter::default(),
            &PageRequest {
                limit: Some(50),
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(first.total, 130);
    assert_eq!(first.items.len(), 50);
    let by_id: BTreeMap<_, _> = all.iter().map(|x| (x.id, x)).collect();
    assert_eq!(
        first.items[0],
        assay_core::execution::ExecutionSummary::from(by_id[&want[0]])
    );

    // A page taken later still continues after its cursor when newer executions arrive.
    let mut newer = execution(e.id, &wfs[0], at(99_999));
    store.insert_execution(&mut newer).await.unwrap();
    let second = store
        .list_executions(
            e.id,
            &ExecutionFilter::default(),
            &PageRequest {
                limit: Some(50),
                cursor: first.next_cursor.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        second.items.iter().map(|s| s.id).collect::<Vec<_>>(),
        want[50..100].to_vec()
    );
    assert_eq!(second.total, 131);
}

struct Fixture {
    env_id: Uuid,
    all: Vec<Execution>,
}

/// 90 executions over workflows a/b/c with statuses, tags and labels in known patterns.
async fn fixture(store: &dyn Store) -> Fixture {
    let (_, e) = org_env(store).await;
    let mut a = workflow(e.id, W, "a");
    a.labels = map(&[("team", "qa"), ("tier", "1")]);
    let mut b = workflow(e.id, W, "b");
    b.labels = map(&[("team", "dev")]);
    let c = workflow(e.id, W, "c");
    let statuses = [
        ExecutionStatus::Passed,
        ExecutionStatus::Failed,
        ExecutionStatus::Running,
        ExecutionStatus::Queued,
        ExecutionStatus::Passed,
    ];
    let mut all = Vec::new();
    for i in 0..90usize {
        let wf = [&a, &b, &c][i % 3];
        let mut ex = execution(e.id, wf, at(i as i64 * 10));
        ex.status = statuses[i % 5];
        ex.tags.insert(
            "branch".into(),
            if i % 2 == 0 { "main" } else { "dev" }.into(),
        );
        if i % 4 == 0 {
            ex.tags.insert("nightly".into(), "true".into());
        }
        if i % 7 == 0 {
            ex.tags.insert("pr".into(), (i / 7).to_string());
        }
        store.insert_execution(&mut ex).await.unwrap();
        all.push(ex);
    }
    // Same tags and labels in another environment must never leak in.
    let (_, other) = org_env(store).await;
    let mut twin = workflow(other.id, W, "a");
    twin.labels = a.labels.clone();
    let mut stranger = execution(other.id, &twin, at(5));
    stranger.tags = map(&[("branch", "main"), ("nightly", "true")]);
    store.insert_execution(&mut stranger).await.unwrap();
    Fixture { env_id: e.id, all }
}

fn tag(e: &Execution, k: &str) -> Option<String> {
    e.tags.get(k).cloned()
}

fn label(e: &Execution, k: &str) -> Option<String> {
    e.labels.get(k).cloned()
}

pub async fn execution_filters(store: Arc<dyn Store>) {
    let fx = fixture(store.as_ref()).await;
    let s = |v: &str| Some(v.to_string());
    type Pred = Box<dyn Fn(&Execution) -> bool + Send + Sync>;
    let cases: Vec<(&str, ExecutionFilter, Pred)> = vec![
        ("none", ExecutionFilter::default(), Box::new(|_| true)),
        (
            "workflow",
            ExecutionFilter {
                workflow: s("b"),
                ..Default::default()
            },
            Box::new(|e| e.workflow_name == "b"),
        ),
        (
            "unknown workflow",
            ExecutionFilter {
                workflow: s("zzz"),
                ..Default::default()
            },
            Box::new(|_| false),
        ),
        (
            "one status",
            ExecutionFilter {
                statuses: vec![ExecutionStatus::Failed],
                ..Default::default()
            },
            Box::new(|e| e.status == ExecutionStatus::Failed),
        ),
        (
            "statuses",
            ExecutionFilter {
                statuses: vec![
                    ExecutionStatus::Queued,
                    ExecutionStatus::Running,
                    ExecutionStatus::Queued,
                ],
                ..Default::default()
            },
            Box::new(|e| matches!(e.status, ExecutionStatus::Queued | ExecutionStatus::Running)),
        ),
        (
            "tag k=v",
            ExecutionFilter {
                tag_selector: s("branch=main"),
                ..Default::default()
            },
            Box::new(|e| tag(e, "branch").as_deref() == Some("main")),
        ),
        (
            "tag k!=v",
            ExecutionFilter {
                tag_selector: s("nightly!=true"),
                ..Default::default()
            },
            Box::new(|e| tag(e, "nightly").as_deref() != Some("true")),
        ),
        (
            "tag exists",
            ExecutionFilter {
                tag_selector: s("pr"),
                ..Default::default()
            },
            Box::new(|e| tag(e, "pr").is_some()),
        ),
        (
            "tag k=v,k!=v,k",
            ExecutionFilter {
                tag_selector: s("branch=main,nightly!=true,pr"),
                ..Default::default()
            },
            Box::new(|e| {
                tag(e, "branch").as_deref() == Some("main")
                    && tag(e, "nightly").as_deref() != Some("true")
                    && tag(e, "pr").is_some()
            }),
        ),
        (
            "two tag equalities",
            ExecutionFilter {
                tag_selector: s("nightly=true,branch=dev"),
                ..Default::default()
            },
            Box::new(|e| tag(e, "nightly").is_some() && tag(e, "branch").as_deref() == Some("dev")),
        ),
        (
            "label k=v",
            ExecutionFilter {
                label_selector: s("team=qa"),
                ..Default::default()
            },
            Box::new(|e| label(e, "team").as_deref() == Some("qa")),
        ),
        (
            "label k!=v",
            ExecutionFilter {
                label_selector: s("team!=qa"),
                ..Default::default()
            },
            Box::new(|e| label(e, "team").as_deref() != Some("qa")),
        ),
        (
            "label exists",
            ExecutionFilter {
                label_selector: s("team"),
                ..Default::default()
            },
            Box::new(|e| label(e, "team").is_some()),
        ),
        (
            "since/until (inclusive)",
            ExecutionFilter {
                since: Some(at(200)),
                until: Some(at(400)),
                ..Default::default()
            },
            Box::new(|e| e.queued_at >= at(200) && e.queued_at <= at(400)),
        ),
        (
            "tag driver with since",
            ExecutionFilter {
                tag_selector: s("branch=dev"),
                since: Some(at(450)),
                ..Default::default()
            },
            Box::new(|e| tag(e, "branch").as_deref() == Some("dev") && e.queued_at >= at(450)),
        ),
        (
            "everything",
            ExecutionFilter {
                workflow: s("a"),
                statuses: vec![ExecutionStatus::Passed, ExecutionStatus::Failed],
                tag_selector: s("branch=main,nightly!=true"),
                label_selector: s("team=qa,tier"),
                since: Some(at(50)),
                until: Some(at(800)),
            },
            Box::new(|e| {
                e.workflow_name == "a"
                    && matches!(e.status, ExecutionStatus::Passed | ExecutionStatus::Failed)
                    && tag(e, "branch").as_deref() == Some("main")
                    && tag(e, "nightly").as_deref() != Some("true")
                    && label(e, "team").as_deref() == Some("qa")
                    && e.queued_at >= at(50)
                    && e.queued_at <= at(800)
            }),
        ),
        (
            "label driver with status",
            ExecutionFilter {
                label_selector: s("team=dev"),
                statuses: vec![ExecutionStatus::Passed],
                ..Default::default()
            },
            Box::new(|e| {
                label(e, "team").as_deref() == Some("dev") && e.status == ExecutionStatus::Passed
            }),
        ),
    ];
    for (name, filter, pred) in cases {
        let matching: Vec<&Execution> = fx.all.iter().filter(|e| pred(e)).collect();
        let want = newest_first(&matching);
        let got = all_pages(store.as_ref(), fx.env_id, &filter, 500).await;
        assert_eq!(got, want, "filter {name}");
        let first = store
            .list_executions(
                fx.env_id,
                &filter,
                &PageRequest {
                    limit: Some(1),
                    cursor: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(first.total, want.len() as u64, "total for {name}");
    }
}

/// Filtered listings paginate over more than two pages with exact totals.
pub async fn execution_filters_paginate(store: Arc<dyn Store>) {
    let fx = fixture(store.as_ref()).await;
    let filters = [
        ExecutionFilter {
            tag_selector: Some("branch=main".into()),
            ..Default::default()
        },
        ExecutionFilter {
            workflow: Some("a".into()),
            ..Default::default()
        },
        ExecutionFilter {
            statuses: vec![ExecutionStatus::Passed],
            ..Default::default()
        },
        ExecutionFilter {
            label_selector: Some("team!=dev".into()),
            ..Default::default()
        },
    ];
    let expected_sizes = [45, 30, 36, 60];
    for (filter, size) in filters.iter().zip(expected_sizes) {
        let full = all_pages(store.as_ref(), fx.env_id, filter, 500).await;
        assert_eq!(full.len(), size, "{filter:?}");
        let paged = all_pages(store.as_ref(), fx.env_id, filter, 7).await;
        assert_eq!(paged, full, "{filter:?}");
        assert!(size > 14, "the fixture must give more than two pages");
    }
}

pub async fn execution_invalid_input(store: Arc<dyn Store>) {
    let fx = fixture(store.as_ref()).await;
    for bad in ["a=b,,c", "=x", "a b", "k=v=w", "x,"] {
        let tags = ExecutionFilter {
            tag_selector: Some(bad.into()),
            ..Default::default()
        };
        assert_invalid(
            store
                .list_executions(fx.env_id, &tags, &PageRequest::default())
                .await,
            "selector",
        );
        let labels = ExecutionFilter {
            label_selector: Some(bad.into()),
            ..Default::default()
        };
        assert_invalid(
            store
                .list_executions(fx.env_id, &labels, &PageRequest::default())
                .await,
            "selector",
        );
    }
    let page = store
        .list_executions(
            fx.env_id,
            &ExecutionFilter::default(),
            &PageRequest {
                limit: Some(5),
                cursor: None,
            },
        )
        .await
        .unwrap();
    let cursor = page.next_cursor.unwrap();
    for tampered in tamper(&cursor) {
        assert_invalid(
            store
                .list_executions(
                    fx.env_id,
                    &ExecutionFilter::default(),
                    &PageRequest {
                        limit: Some(5),
                        cursor: Some(tampered),
                    },
                )
                .await,
            "cursor",
        );
    }
    // A workflow-list cursor is not an execution cursor.
    for i in 0..3 {
        store
            .insert_resource(&workflow(fx.env_id, W, &format!("w{i}")))
            .await
            .unwrap();
    }
    let wf_page = store
        .list_resources(
            fx.env_id,
            W,
            &Default::default(),
            &PageRequest {
                limit: Some(1),
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_invalid(
        store
            .list_executions(
                fx.env_id,
                &ExecutionFilter::default(),
                &PageRequest {
                    limit: Some(5),
                    cursor: wf_page.next_cursor.clone(),
                },
            )
            .await,
        "cursor",
    );
    assert_invalid(
        store
            .list_resources(
                fx.env_id,
                W,
                &Default::default(),
                &PageRequest {
                    limit: Some(5),
                    cursor: Some(cursor),
                },
            )
            .await,
        "cursor",
    );
}
