//! Benchmark: `list_executions` latency over 100k executions in one environment.
//!
//! Run: `cargo bench -p assay-store --bench list_executions`
//! (set `ASSAY_TEST_DATABASE_URL` to also run it on PostgreSQL, in a throwaway schema;
//! `ASSAY_BENCH_EXECUTIONS` / `ASSAY_BENCH_CALLS` change the sizes; `ASSAY_BENCH_KEEP=1`
//! keeps the SQLite file and the PostgreSQL schema for inspection).
//!
//! Each call is what the API does for one page: the total count plus the page itself.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use assay_core::actor::{ActorRef, PrincipalKind};
use assay_core::execution::{Execution, ExecutionFilter, ExecutionStatus, StepResult};
use assay_core::page::PageRequest;
use assay_core::ports::Store;
use assay_core::tenancy::{Environment, Organization};
use assay_core::workflow::{ResourceKind, WorkflowRecord};
use assay_store::{Backend, PostgresStore, SqlStore, SqliteStore};
use sqlx::Connection;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::macros::datetime;
use uuid::Uuid;

const WORKFLOWS: usize = 200;
const BATCH: usize = 2_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let executions = env_usize("ASSAY_BENCH_EXECUTIONS", 100_000);
    let calls = env_usize("ASSAY_BENCH_CALLS", 1_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bench.db");
        let store = SqliteStore::open(&path).await.unwrap();
        let env_id = load("sqlite", &store, executions).await;
        drop(store);
        // Reopen, as a restarted server would (refreshes planner statistics).
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
            + std::fs::metadata(dir.path().join("bench.db-wal"))
                .map(|m| m.len())
                .unwrap_or(0);
        println!("sqlite file: {:.1} MiB", size as f64 / 1048576.0);
        measure("sqlite", store, env_id, calls).await;
        if std::env::var_os("ASSAY_BENCH_KEEP").is_some() {
            println!("kept {}", dir.keep().display());
        }

        match std::env::var("ASSAY_TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => postgres(&url, executions, calls).await,
            _ => println!("\nASSAY_TEST_DATABASE_URL not set: PostgreSQL skipped"),
        }
    });
}

async fn postgres(url: &str, executions: usize, calls: usize) {
    let schema = format!("assay_bench_{}", Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let store_url = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let store = PostgresStore::connect(&store_url).await.unwrap();
    let env_id = load("postgres", &store, executions).await;
    // What autovacuum would have done by the time anyone lists.
    sqlx::query(sqlx::AssertSqlSafe(format!("SET search_path = {schema}")))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query("VACUUM ANALYZE")
        .execute(&mut admin)
        .await
        .unwrap();
    let store = Arc::new(store);
    measure("postgres", store.clone(), env_id, calls).await;
    store.close().await;
    if std::env::var_os("ASSAY_BENCH_KEEP").is_some() {
        println!("kept schema {schema}");
        return;
    }
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut admin)
        .await
        .unwrap();
}

fn status_for(i: usize) -> ExecutionStatus {
    match i % 20 {
        0 | 1 => ExecutionStatus::Failed, // 10%
        2 => ExecutionStatus::Aborted,    // 5%
        _ => ExecutionStatus::Passed,
    }
}

async fn load<B: Backend>(label: &str, store: &SqlStore<B>, n: usize) -> Uuid {
    let t0 = datetime!(2025-01-01 00:00:00 UTC);
    let org = Organization {
        id: Uuid::now_v7(),
        slug: "bench".into(),
        name: "Bench".into(),
        audit_retention_days: assay_core::tenancy::DEFAULT_AUDIT_RETENTION_DAYS,
        created_at: t0,
    };
    store.insert_org(&org).await.unwrap();
    let env = Environment {
        id: Uuid::now_v7(),
        org_id: org.id,
        slug: "prod".into(),
        name: "Prod".into(),
        created_at: t0,
    };
    store.insert_env(&env).await.unwrap();
    let mut workflows = Vec::new();
    for w in 0..WORKFLOWS {
        let labels: BTreeMap<String, String> = [
            ("team".to_string(), format!("team-{}", w % 10)),
            ("tier".to_string(), (w % 3).to_string()),
        ]
        .into_iter()
        .collect();
        let wf = WorkflowRecord {
            id: Uuid::now_v7(),
            env_id: env.id,
            kind: ResourceKind::Workflow,
            name: format!("wf-{w:03}"),
            description: String::new(),
            labels,
            source: "kind: TestWorkflow".into(),
            created_at: t0,
            updated_at: t0,
        };
        store.insert_resource(&wf).await.unwrap();
        workflows.push(wf);
    }
    let started = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..n {
        let wf = &workflows[i % WORKFLOWS];
        let queued_at = t0 + Duration::from_secs(i as u64 * 30);
        let mut tags = BTreeMap::new();
        tags.insert(
            "branch".to_string(),
            if i % 2 == 0 {
                "main".to_string()
            } else {
                format!("feature-{}", i % 97)
            },
        );
        if i % 100 == 7 {
            tags.insert("release".to_string(), "v1".to_string()); // 1%
        }
        let step = |r: &str| StepResult {
            reference: r.into(),
            name: format!("step {r}"),
            status: ExecutionStatus::Passed,
            exit_code: Some(0),
            error: None,
            started_at: Some(queued_at),
            finished_at: Some(queued_at + Duration::from_secs(5)),
            attempts: 1,
            optional: false,
            negative: false,
        };
        batch.push(Execution {
            id: Uuid::now_v7(),
            env_id: env.id,
            workflow_id: wf.id,
            workflow_name: wf.name.clone(),
            number: 0,
            name: String::new(),
            status: status_for(i),
            config: BTreeMap::new(),
            tags,
            labels: wf.labels.clone(),
            started_by: ActorRef {
                kind: PrincipalKind::User,
                id: Uuid::nil(),
                name: "bench".into(),
            },
            queued_at,
            started_at: Some(queued_at + Duration::from_secs(1)),
            finished_at: Some(queued_at + Duration::from_secs(20)),
            duration_ms: Some(19_000),
            steps: vec![step("1"), step("2"), step("3")],
            junit: None,
            error: None,
            plan: serde_json::json!({
                "setup": [], "after": [],
                "steps": [{"reference": "1", "name": "test", "command": {"kind": "shell", "shell": ["/bin/sh"], "script": "make test && ./scripts/report.sh --junit out/junit.xml"}}],
                "env": {"CI": "true", "WORKFLOW": wf.name}
            }),
            runner: Some("local".into()),
        });
        if batch.len() == BATCH || i + 1 == n {
            store.bulk_insert_executions(&mut batch).await.unwrap();
            batch.clear();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{label}: inserted {n} executions in {secs:.1}s ({:.0}/s)",
        n as f64 / secs
    );
    env.id
}

struct Scenario {
    name: &'static str,
    filter: ExecutionFilter,
    cursor: Option<String>,
}

async fn measure(label: &str, store: Arc<dyn Store>, env_id: Uuid, calls: usize) {
    // A cursor ~90% of the way down the unfiltered list.
    let mut cursor = None;
    let target = 90_000usize.min(env_usize("ASSAY_BENCH_EXECUTIONS", 100_000) * 9 / 10);
    let mut seen = 0;
    while seen < target {
        let page = store
            .list_executions(
                env_id,
                &ExecutionFilter::default(),
                &PageRequest {
                    limit: Some(500),
                    cursor: cursor.clone(),
                },
            )
            .await
            .unwrap();
        seen += page.items.len();
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let s = |v: &str| Some(v.to_string());
    let scenarios = vec![
        Scenario {
            name: "first page",
            filter: ExecutionFilter::default(),
            cursor: None,
        },
        Scenario {
            name: "deep page (cursor @90%)",
            filter: ExecutionFilter::default(),
            cursor,
        },
        Scenario {
            name: "status=failed (10%)",
            filter: ExecutionFilter {
                statuses: vec![ExecutionStatus::Failed],
                ..Default::default()
            },
            cursor: None,
        },
        Scenario {
            name: "status in (failed,aborted)",
            filter: ExecutionFilter {
                statuses: vec![ExecutionStatus::Failed, ExecutionStatus::Aborted],
                ..Default::default()
            },
            cursor: None,
        },
        Scenario {
            name: "workflow=wf-042 (0.5%)",
            filter: ExecutionFilter {
                workflow: s("wf-042"),
                ..Default::default()
            },
            cursor: None,
        },
        Scenario {
            name: "tag release=v1 (1%)",
            filter: ExecutionFilter {
                tag_selector: s("release=v1"),
                ..Default::default()
            },
            cursor: None,
        },
        Scenario {
            name: "tag branch=main (50%)",
            filter: ExecutionFilter {
                tag_selector: s("branch=main"),
                ..Default::default()
            },
            cursor: None,
        },
        Scenario {
            name: "label team=team-1 + failed",
            filter: ExecutionFilter {
                label_selector: s("team=team-1"),
                statuses: vec![ExecutionStatus::Failed],
                ..Default::default()
            },
            cursor: None,
        },
    ];
    println!("\n{label}: list_executions, page size 50, {calls} calls each (count + page)");
    println!(
        "{:<30} {:>8} {:>10} {:>10}",
        "scenario", "total", "p50 ms", "p99 ms"
    );
    for sc in scenarios {
        let req = PageRequest {
            limit: Some(50),
            cursor: sc.cursor.clone(),
        };
        let mut times = Vec::with_capacity(calls);
        let mut total = 0;
        for _ in 0..calls {
            let t = Instant::now();
            let page = store
                .list_executions(env_id, &sc.filter, &req)
                .await
                .unwrap();
            times.push(t.elapsed());
            total = page.total;
            assert!(!page.items.is_empty(), "{}: empty page", sc.name);
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{:<30} {:>8} {:>10.3} {:>10.3}",
            sc.name,
            total,
            ms(times[times.len() / 2]),
            ms(times[(times.len() * 99 / 100).min(times.len() - 1)])
        );
    }
}
