//! Runs each contract test on every backend: a fresh SQLite file per test, and a fresh
//! PostgreSQL schema per test (dropped afterwards, even when the test panics).

use assay_core::ports::Store;
use assay_store::{PostgresStore, SqliteStore};
use futures::future::BoxFuture;
use libtest_mimic::{Failed, Trial};
use sqlx::Connection;
use std::future::Future;
use std::sync::Arc;

pub const PG_URL_VAR: &str = "ASSAY_TEST_DATABASE_URL";

type TestFn = Arc<dyn Fn(Arc<dyn Store>) -> BoxFuture<'static, ()> + Send + Sync>;

#[derive(Default)]
pub struct Suite {
    tests: Vec<(&'static str, TestFn)>,
}

impl Suite {
    pub fn test<F, Fut>(mut self, name: &'static str, f: F) -> Self
    where
        F: Fn(Arc<dyn Store>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.tests.push((name, Arc::new(move |s| Box::pin(f(s)))));
        self
    }

    pub fn into_trials(self) -> Vec<Trial> {
        let pg_url = std::env::var(PG_URL_VAR).ok().filter(|u| !u.is_empty());
        if pg_url.is_none() {
            eprintln!(
                "{PG_URL_VAR} is not set: the postgres::* contract tests are SKIPPED \
                 (reported as ignored). Set it, e.g. to postgres://postgres@127.0.0.1:5432/test, \
                 to run them."
            );
        }
        let mut trials = Vec::new();
        for (name, f) in self.tests {
            let sqlite_f = f.clone();
            trials.push(Trial::test(format!("sqlite::{name}"), move || {
                runtime()?.block_on(run_sqlite(sqlite_f))
            }));
            let url = pg_url.clone();
            trials.push(
                Trial::test(format!("postgres::{name}"), move || match &url {
                    Some(url) => runtime()?.block_on(run_postgres(url, f)),
                    None => Err(format!("{PG_URL_VAR} is not set").into()),
                })
                .with_ignored_flag(pg_url.is_none()),
            );
        }
        trials
    }
}

pub fn runtime() -> Result<tokio::runtime::Runtime, Failed> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Runs the test body as a task so a panic is caught, reported, and does not skip cleanup.
async fn run_body(store: Arc<dyn Store>, f: TestFn) -> Result<(), Failed> {
    match tokio::spawn(f(store)).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "test panicked".into());
            Err(msg.into())
        }
        Err(e) => Err(e.to_string().into()),
    }
}

async fn run_sqlite(f: TestFn) -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(&dir.path().join("assay.db")).await?;
    run_body(Arc::new(store), f).await
}

/// Runs a test body against `store` the way the suite does (panics become failures).
pub async fn run_checked<F, Fut>(store: Arc<dyn Store>, f: F) -> Result<(), Failed>
where
    F: Fn(Arc<dyn Store>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    run_body(store, Arc::new(move |s| Box::pin(f(s)))).await
}

async fn run_postgres(url: &str, f: TestFn) -> Result<(), Failed> {
    with_pg_schema(url, |store_url| async move {
        let store = Arc::new(PostgresStore::connect(&store_url).await?);
        let r = run_body(store.clone(), f).await;
        store.close().await;
        r
    })
    .await
}

/// Creates a fresh schema, runs `f` with a URL whose `search_path` is that schema, and
/// drops the schema afterwards whatever `f` returned.
pub async fn with_pg_schema<F, Fut>(url: &str, f: F) -> Result<(), Failed>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<(), Failed>>,
{
    let schema = format!("assay_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await?;
    let sep = if url.contains('?') { '&' } else { '?' };
    let result = f(format!("{url}{sep}options=-c%20search_path%3D{schema}")).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut admin)
        .await?;
    result
}

/// Tests of the constructors themselves (SQLite needs no server).
pub fn sqlite_only_trials() -> Vec<Trial> {
    vec![
        Trial::test("sqlite::connect_dispatches_on_url", || {
            runtime()?.block_on(super::tenancy::connect_dispatches_on_url())
        }),
        Trial::test("sqlite::reopen_keeps_data", || {
            runtime()?.block_on(super::tenancy::reopen_keeps_data())
        }),
    ]
}
