//! PostgreSQL: the backend for several server replicas sharing one database. Row locks
//! (`SELECT … FOR UPDATE`, `INSERT … ON CONFLICT DO UPDATE`) serialize execution
//! numbering and each organization's audit chain across replicas.

use crate::backend::{Backend, RowExt, WriteTx, sealed};
use crate::codec;
use crate::error::db;
use crate::sql::{Arg, Sql};
use crate::store::SqlStore;
use assay_core::{Result, Timestamp};
use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Postgres, Row, Transaction};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

const MAX_CONNECTIONS: u32 = 16;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL backend. Use it through [`PostgresStore`].
pub struct PgBackend {
    pool: PgPool,
}

/// The PostgreSQL store.
pub type PostgresStore = SqlStore<PgBackend>;

impl SqlStore<PgBackend> {
    /// Connects to `postgres://…` and migrates the database (or the schema first in
    /// `search_path`, e.g. `?options=-c%20search_path%3Dassay`).
    pub async fn connect(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            assay_core::Error::invalid("database_url", format!("not a PostgreSQL URL: {e}"))
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(db)?;
        MIGRATOR.run(&pool).await.map_err(|e| db(e.into()))?;
        Ok(SqlStore::new(PgBackend { pool }))
    }

    /// Closes the pool's connections (e.g. before dropping a test database).
    pub async fn close(&self) {
        self.backend().pool.close().await;
    }
}

/// PostgreSQL text cannot hold U+0000; free-form text columns lose it rather than
/// failing the write (JSON columns escape it and keep it).
fn pg_text(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s
    }
}

fn query(q: Sql) -> sqlx::query::Query<'static, Postgres, <Postgres as sqlx::Database>::Arguments> {
    let mut query = sqlx::query(AssertSqlSafe(q.text));
    for arg in q.args {
        query = match arg {
            Arg::Uuid(v) => query.bind(v),
            Arg::OptUuid(v) => query.bind(v),
            Arg::Text(v) => query.bind(pg_text(v)),
            Arg::OptText(v) => query.bind(v.map(pg_text)),
            Arg::I64(v) => query.bind(v),
            Arg::OptI64(v) => query.bind(v),
            Arg::Bool(v) => query.bind(v),
            // Rounded the same way as on SQLite (down), whatever the sign.
            Arg::Time(v) => query.bind(codec::truncate_micros(v)),
            Arg::OptTime(v) => query.bind(v.map(codec::truncate_micros)),
        };
    }
    query
}

impl sealed::Sealed for PgBackend {}

#[async_trait]
impl Backend for PgBackend {
    type Row = PgRow;
    type Tx = Transaction<'static, Postgres>;
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const NO_INDEX: &'static str = "";

    async fn fetch_all(&self, q: Sql) -> Result<Vec<PgRow>, sqlx::Error> {
        query(q).fetch_all(&self.pool).await
    }

    async fn fetch_optional(&self, q: Sql) -> Result<Option<PgRow>, sqlx::Error> {
        query(q).fetch_optional(&self.pool).await
    }

    async fn execute(&self, q: Sql) -> Result<u64, sqlx::Error> {
        Ok(query(q).execute(&self.pool).await?.rows_affected())
    }

    async fn begin(&self) -> Result<Self::Tx, sqlx::Error> {
        self.pool.begin().await
    }
}

#[async_trait]
impl WriteTx for Transaction<'static, Postgres> {
    type Row = PgRow;

    async fn fetch_all(&mut self, q: Sql) -> Result<Vec<PgRow>, sqlx::Error> {
        query(q).fetch_all(&mut **self).await
    }

    async fn fetch_optional(&mut self, q: Sql) -> Result<Option<PgRow>, sqlx::Error> {
        query(q).fetch_optional(&mut **self).await
    }

    async fn execute(&mut self, q: Sql) -> Result<u64, sqlx::Error> {
        Ok(query(q).execute(&mut **self).await?.rows_affected())
    }

    async fn commit(self) -> Result<(), sqlx::Error> {
        Transaction::commit(self).await
    }
}

impl RowExt for PgRow {
    fn uuid(&self, col: &str) -> Result<Uuid, sqlx::Error> {
        self.try_get(col)
    }
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>, sqlx::Error> {
        self.try_get(col)
    }
    fn text(&self, col: &str) -> Result<String, sqlx::Error> {
        self.try_get(col)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(col)
    }
    fn i64(&self, col: &str) -> Result<i64, sqlx::Error> {
        self.try_get(col)
    }
    fn opt_i64(&self, col: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(col)
    }
    fn bool(&self, col: &str) -> Result<bool, sqlx::Error> {
        self.try_get(col)
    }
    fn time(&self, col: &str) -> Result<Timestamp, sqlx::Error> {
        self.try_get(col)
    }
    fn opt_time(&self, col: &str) -> Result<Option<Timestamp>, sqlx::Error> {
        self.try_get(col)
    }
}
