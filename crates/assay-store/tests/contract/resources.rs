//! Workflows and templates.

use super::support::*;
use assay_core::Error;
use assay_core::page::PageRequest;
use assay_core::ports::Store;
use assay_core::workflow::{ResourceKind, WorkflowFilter, WorkflowRecord};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use uuid::Uuid;

const W: ResourceKind = ResourceKind::Workflow;
const T: ResourceKind = ResourceKind::Template;

pub async fn resource_crud(store: Arc<dyn Store>) {
    let (_, e) = org_env(store.as_ref()).await;
    let mut wf = workflow(e.id, W, "smoke");
    wf.labels = map(&[("team", "qa"), ("tier", "1")]);
    store.insert_resource(&wf).await.unwrap();
    assert_eq!(
        store.get_resource(e.id, W, "smoke").await.unwrap(),
        Some(wf.clone())
    );
    // Kinds are separate namespaces.
    assert_eq!(store.get_resource(e.id, T, "smoke").await.unwrap(), None);
    let tpl = workflow(e.id, T, "smoke");
    store.insert_resource(&tpl).await.unwrap();
    assert_eq!(
        store.get_resource(e.id, T, "smoke").await.unwrap(),
        Some(tpl.clone())
    );

    let mut dup = workflow(e.id, W, "smoke");
    dup.source = "other".into();
    let message = assert_conflict(store.insert_resource(&dup).await);
    assert!(message.contains("smoke"), "{message}");
    // The failed insert left nothing behind (no stray labels either).
    assert_eq!(
        store.get_resource(e.id, W, "smoke").await.unwrap(),
        Some(wf.clone())
    );

    // Update replaces source, description, labels, updated_at; keeps id and created_at.
    let mut changed = wf.clone();
    changed.source = "kind: TestWorkflow # v2".into();
    changed.description = "Second version".into();
    changed.labels = map(&[("team", "platform")]);
    changed.updated_at = at(30);
    store.update_resource(&changed).await.unwrap();
    assert_eq!(
        store.get_resource(e.id, W, "smoke").await.unwrap(),
        Some(changed.clone())
    );
    let page = store
        .list_resources(e.id, W, &selector("team=qa"), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.total, 0, "old labels must be gone from the index");

    let missing = workflow(e.id, W, "nope");
    match store.update_resource(&missing).await {
        Err(Error::NotFound { kind, name }) => {
            assert_eq!(kind, "workflow");
            assert_eq!(name, "nope");
        }
        other => panic!("expected NotFound, got {other:?}"),
    }

    assert!(store.delete_resource(e.id, W, "smoke").await.unwrap());
    assert!(!store.delete_resource(e.id, W, "smoke").await.unwrap());
    assert_eq!(store.get_resource(e.id, W, "smoke").await.unwrap(), None);
    // The template of the same name is untouched.
    assert_eq!(
        store.get_resource(e.id, T, "smoke").await.unwrap(),
        Some(tpl)
    );
    // Re-creating after delete works (labels of the old record do not collide).
    store.insert_resource(&wf).await.unwrap();
    assert_eq!(
        store.get_resource(e.id, W, "smoke").await.unwrap(),
        Some(wf)
    );
    // Other environments do not see it.
    let (_, other) = org_env(store.as_ref()).await;
    assert_eq!(
        store.get_resource(other.id, W, "smoke").await.unwrap(),
        None
    );
    assert!(!store.delete_resource(other.id, W, "smoke").await.unwrap());
}

fn selector(s: &str) -> WorkflowFilter {
    WorkflowFilter {
        selector: Some(s.into()),
        search: None,
    }
}

fn search(s: &str) -> WorkflowFilter {
    WorkflowFilter {
        selector: None,
        search: Some(s.into()),
    }
}

/// Every page of a listing, checking totals and cursors on the way.
async fn all_pages(
    store: &dyn Store,
    env_id: Uuid,
    kind: ResourceKind,
    filter: &WorkflowFilter,
    limit: u32,
) -> (Vec<String>, usize) {
    let mut names = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    let mut total = None;
    loop {
        let page = store
            .list_resources(
                env_id,
                kind,
                filter,
                &PageRequest {
                    limit: Some(limit),
                    cursor,
                },
            )
            .await
            .unwrap();
        pages += 1;
        if let Some(t) = total {
            assert_eq!(page.total, t, "total changed between pages");
        }
        total = Some(page.total);
        assert!(page.items.len() <= limit as usize);
        names.extend(page.items.iter().map(|w| w.name.clone()));
        match page.next_cursor {
            Some(c) => {
                assert_eq!(page.items.len(), limit as usize, "short page with a cursor");
                cursor = Some(c);
            }
            None => break,
        }
        assert!(pages < 1000, "pagination does not end");
    }
    assert_eq!(total, Some(names.len() as u64));
    (names, pages)
}

fn names(range: impl IntoIterator<Item = usize>, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = range
        .into_iter()
        .map(|i| format!("{prefix}{i:03}"))
        .collect();
    v.sort();
    v
}

pub async fn resource_pagination(store: Arc<dyn Store>) {
    let (_, e) = org_env(store.as_ref()).await;
    // Inserted in a scrambled order; listed by name.
    for i in (0..123).map(|i| (i * 37) % 123) {
        store
            .insert_resource(&workflow(e.id, W, &format!("wf-{i:03}")))
            .await
            .unwrap();
    }
    store
        .insert_resource(&workflow(e.id, T, "tpl-000"))
        .await
        .unwrap();

    let (listed, pages) = all_pages(store.as_ref(), e.id, W, &WorkflowFilter::default(), 50).await;
    assert_eq!(pages, 3);
    assert_eq!(listed, names(0..123, "wf-"));

    let first = store
        .list_resources(
            e.id,
            W,
            &WorkflowFilter::default(),
            &PageRequest {
                limit: Some(50),
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(first.total, 123);
    assert_eq!(first.items.len(), 50);
    assert_eq!(first.items[0].name, "wf-000");
    assert_eq!(first.items[49].name, "wf-049");

    // Exactly one page's worth: no cursor on the last page.
    let (listed, pages) = all_pages(store.as_ref(), e.id, T, &WorkflowFilter::default(), 1).await;
    assert_eq!((listed, pages), (vec!["tpl-000".to_string()], 1));
    // Default page size is 50; limits are clamped to 1..=500.
    let page = store
        .list_resources(e.id, W, &WorkflowFilter::default(), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 50);
    let page = store
        .list_resources(
            e.id,
            W,
            &WorkflowFilter::default(),
            &PageRequest {
                limit: Some(0),
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let page = store
        .list_resources(
            e.id,
            W,
            &WorkflowFilter::default(),
            &PageRequest {
                limit: Some(10_000),
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!((page.items.len(), page.next_cursor), (123, None));
    // An empty environment.
    let (_, empty) = org_env(store.as_ref()).await;
    let page = store
        .list_resources(
            empty.id,
            W,
            &WorkflowFilter::default(),
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        (page.items.len(), page.total, page.next_cursor),
        (0, 0, None)
    );
}

pub async fn resource_filters(store: Arc<dyn Store>) {
    let (_, e) = org_env(store.as_ref()).await;
    // 60 workflows: team = qa (i%3==0) | dev (1) | none (2); tier = i%2; "flaky" on i%5==0.
    let mut expected_all = Vec::new();
    for i in 0..60usize {
        let mut wf = workflow(e.id, W, &format!("api-{i:03}"));
        if i % 3 == 0 {
            wf.labels.insert("team".into(), "qa".into());
        } else if i % 3 == 1 {
            wf.labels.insert("team".into(), "dev".into());
        }
        wf.labels.insert("tier".into(), (i % 2).to_string());
        if i % 5 == 0 {
            wf.labels.insert("flaky".into(), "true".into());
        }
        if i == 7 {
            wf.description = "Checks the PAYMENTS flow (100% coverage_x)".into();
        }
        store.insert_resource(&wf).await.unwrap();
        expected_all.push((i, wf));
    }
    // A template with matching labels must never appear in workflow lists.
    let mut tpl = workflow(e.id, T, "api-000-template");
    tpl.labels = map(&[("team", "qa")]);
    store.insert_resource(&tpl).await.unwrap();

    let expect = |pred: &dyn Fn(usize) -> bool| -> Vec<String> {
        expected_all
            .iter()
            .filter(|(i, _)| pred(*i))
            .map(|(_, w)| w.name.clone())
            .collect()
    };
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("team=qa", expect(&|i| i % 3 == 0)),
        ("team!=qa", expect(&|i| i % 3 != 0)),
        ("team", expect(&|i| i % 3 != 2)),
        ("team=qa,tier=1", expect(&|i| i % 3 == 0 && i % 2 == 1)),
        ("tier=0,team!=dev", expect(&|i| i % 2 == 0 && i % 3 != 1)),
        ("flaky,team=dev", expect(&|i| i % 5 == 0 && i % 3 == 1)),
        ("flaky!=true", expect(&|i| i % 5 != 0)),
        ("team=nobody", vec![]),
        ("missing", vec![]),
        ("", expect(&|_| true)),
    ];
    for (sel, want) in cases {
        for limit in [7, 500] {
            let (got, _) = all_pages(store.as_ref(), e.id, W, &selector(sel), limit).await;
            assert_eq!(got, want, "selector {sel:?} limit {limit}");
        }
    }
    let (got, _) = all_pages(store.as_ref(), e.id, T, &selector("team=qa"), 10).await;
    assert_eq!(got, vec!["api-000-template".to_string()]);

    // Search: case-insensitive substring of name or description; LIKE wildcards are literal.
    let search_cases: Vec<(&str, Vec<String>)> = vec![
        ("API-01", expect(&|i| (10..20).contains(&i))),
        ("payments", vec!["api-007".into()]),
        ("100%", vec!["api-007".into()]),
        ("e_x", vec!["api-007".into()]),
        ("%", vec!["api-007".into()]),
        ("_", vec!["api-007".into()]),
        ("nothing-like-this", vec![]),
    ];
    for (s, want) in search_cases {
        let (got, _) = all_pages(store.as_ref(), e.id, W, &search(s), 4).await;
        assert_eq!(got, want, "search {s:?}");
    }
    // Search and selector together.
    let both = WorkflowFilter {
        selector: Some("team=qa".into()),
        search: Some("api-00".into()),
    };
    let (got, _) = all_pages(store.as_ref(), e.id, W, &both, 3).await;
    assert_eq!(got, expect(&|i| i % 3 == 0 && i < 10));
}

pub async fn resource_invalid_input(store: Arc<dyn Store>) {
    let (_, e) = org_env(store.as_ref()).await;
    for i in 0..5 {
        store
            .insert_resource(&workflow(e.id, W, &format!("w{i}")))
            .await
            .unwrap();
    }
    for bad in ["a=b,,c", "=x", "a b", "k=v=w"] {
        assert_invalid(
            store
                .list_resources(e.id, W, &selector(bad), &PageRequest::default())
                .await,
            "selector",
        );
    }
    let page = store
        .list_resources(
            e.id,
            W,
            &WorkflowFilter::default(),
            &PageRequest {
                limit: Some(2),
                cursor: None,
            },
        )
        .await
        .unwrap();
    let cursor = page.next_cursor.unwrap();
    // The untouched cursor works.
    let next = store
        .list_resources(
            e.id,
            W,
            &WorkflowFilter::default(),
            &PageRequest {
                limit: Some(2),
                cursor: Some(cursor.clone()),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        next.items
            .iter()
            .map(|w| w.name.as_str())
            .collect::<Vec<_>>(),
        ["w2", "w3"]
    );
    for tampered in tamper(&cursor) {
        assert_invalid(
            store
                .list_resources(
                    e.id,
                    W,
                    &WorkflowFilter::default(),
                    &PageRequest {
                        limit: Some(2),
                        cursor: Some(tampered),
                    },
                )
                .await,
            "cursor",
        );
    }
}

/// Variants of a valid cursor that must all be rejected.
pub fn tamper(cursor: &str) -> Vec<String> {
    let mut out = vec![
        String::new(),
        "not-a-cursor".into(),
        format!("{cursor}00"),
        cursor[..cursor.len() - 2].to_string(),
    ];
    // Change one character at the start, middle and end.
    for i in [0, cursor.len() / 2, cursor.len() - 1] {
        let mut b = cursor.as_bytes().to_vec();
        b[i] = if b[i] == b'0' { b'1' } else { b'0' };
        out.push(String::from_utf8(b).unwrap());
    }
    out.retain(|c| c != cursor);
    out
}

pub async fn label_values(store: Arc<dyn Store>) {
    let (_, e) = org_env(store.as_ref()).await;
    let mut a = workflow(e.id, W, "a");
    a.labels = map(&[("team", "qa"), ("tier", "1")]);
    let mut b = workflow(e.id, W, "b");
    b.labels = map(&[("team", "dev"), ("tier", "1")]);
    let mut tpl = workflow(e.id, T, "t");
    tpl.labels = map(&[("template-only", "x")]);
    for r in [&a, &b, &tpl] {
        store.insert_resource(r).await.unwrap();
    }
    let (_, other) = org_env(store.as_ref()).await;
    let mut elsewhere = workflow(other.id, W, "a");
    elsewhere.labels = map(&[("region", "eu")]);
    store.insert_resource(&elsewhere).await.unwrap();

    let want = |pairs: &[(&str, &[&str])]| -> BTreeMap<String, BTreeSet<String>> {
        pairs
            .iter()
            .map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect()))
            .collect()
    };
    assert_eq!(
        store.label_values(e.id).await.unwrap(),
        want(&[("team", &["dev", "qa"]), ("tier", &["1"])])
    );
    let mut b2: WorkflowRecord = b.clone();
    b2.labels = map(&[("owner", "ada")]);
    store.update_resource(&b2).await.unwrap();
    assert_eq!(
        store.label_values(e.id).await.unwrap(),
        want(&[("owner", &["ada"]), ("team", &["qa"]), ("tier", &["1"])])
    );
    assert!(store.delete_resource(e.id, W, "a").await.unwrap());
    assert_eq!(
        store.label_values(e.id).await.unwrap(),
        want(&[("owner", &["ada"])])
    );
    assert_eq!(
        store.label_values(other.id).await.unwrap(),
        want(&[("region", &["eu"])])
    );
    assert_eq!(
        store.label_values(Uuid::now_v7()).await.unwrap(),
        BTreeMap::new()
    );
}
