//! SQLite: the embedded default. One file in WAL mode; one writer connection (SQLite
//! allows one writer at a time anyway, and queueing for it is cheaper than `SQLITE_BUSY`
//! retries) plus a few `query_only` reader connections that read concurrently with the
//! writer (see `connections`). Write transactions start with `BEGIN IMMEDIATE`, so they
//! take the write lock up front and never fail half-way on a lock upgrade; together
//! with the single writer this serializes execution numbering and the audit chain,
//! even against another process using the same file (via `busy_timeout`).
//!
//! Rule for the code above this backend: while a write transaction is open, do not
//! issue a statement through `Backend::execute` (it needs the one writer connection the
//! transaction holds, and would wait for itself until the acquire timeout).

use crate::backend::{Backend, RowExt, WriteTx, sealed};
use crate::codec;
use crate::error::db;
use crate::sql::{Arg, Sql};
use crate::store::SqlStore;
use assay_core::{Error, Result, Timestamp};
use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteRow, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Row, Sqlite};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

mod connections;

use connections::Connections;
pub use connections::SqliteTx;

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a statement waits for a lock held by another process before failing
/// (`Unavailable`).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a caller waits for the writer or a reader connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
const READERS: usize = 4;

/// The SQLite backend. Use it through [`SqliteStore`].
pub struct SqliteBackend {
    connections: Connections,
}

/// The SQLite store.
pub type SqliteStore = SqlStore<SqliteBackend>;

impl SqlStore<SqliteBackend> {
    /// Opens (creating when missing) the database file at `path` and migrates it.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        Self::open_with(options).await
    }

    /// Opens a `sqlite:` URL, e.g. `sqlite://data/assay.db?mode=rwc` or `sqlite::memory:`.
    pub async fn open_url(url: &str) -> Result<Self> {
        if url.contains(":memory:") || url.contains("mode=memory") {
            return Self::in_memory().await;
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::invalid("database_url", format!("not a SQLite URL: {e}")))?;
        Self::open_with(options).await
    }

    /// A private in-memory database (tests): one connection serves reads and writes.
    pub async fn in_memory() -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(db)?
            .shared_cache(false)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let connections = Connections::open(&options, ACQUIRE_TIMEOUT)
            .await
            .map_err(db)?;
        migrate(&connections).await?;
        Ok(SqlStore::new(SqliteBackend { connections }))
    }

    async fn open_with(options: SqliteConnectOptions) -> Result<Self> {
        let options = options
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            // FULL: a commit is on disk when it returns; the audit log requires it.
            .synchronous(SqliteSynchronous::Full)
            .pragma("temp_store", "memory");
        let writer_options = options
            .clone()
            .journal_mode(SqliteJournalMode::Wal)
            // ANALYZE samples instead of reading whole tables, so start-up stays fast
            // at millions of rows.
            .analysis_limit(1000)
            .optimize_on_close(true, 1000);
        // Readers connect after the writer has created (and migrated) the file.
        let reader_options = options.create_if_missing(false).pragma("query_only", "ON");
        let writer_only = Connections::open(&writer_options, ACQUIRE_TIMEOUT)
            .await
            .map_err(db)?;
        migrate(&writer_only).await?;
        let connections = writer_only
            .with_readers(&reader_options, READERS)
            .await
            .map_err(db)?;
        Ok(SqlStore::new(SqliteBackend { connections }))
    }
}

/// Migrates, then refreshes planner statistics (cheap when nothing changed; it matters
/// for choosing between the execution indexes).
async fn migrate(connections: &Connections) -> Result<()> {
    let mut writer = connections.writer().await.map_err(db)?;
    MIGRATOR
        .run(&mut writer.conn)
        .await
        .map_err(|e| db(e.into()))?;
    sqlx::query("PRAGMA optimize=0x10002")
        .execute(&mut writer.conn)
        .await
        .map_err(db)?;
    Ok(())
}

fn query(q: Sql) -> sqlx::query::Query<'static, Sqlite, <Sqlite as sqlx::Database>::Arguments> {
    let mut query = sqlx::query(AssertSqlSafe(q.text));
    for arg in q.args {
        query = match arg {
            Arg::Uuid(v) => query.bind(v),
            Arg::OptUuid(v) => query.bind(v),
            Arg::Text(v) => query.bind(v),
            Arg::OptText(v) => query.bind(v),
            Arg::I64(v) => query.bind(v),
            Arg::OptI64(v) => query.bind(v),
            Arg::Bool(v) => query.bind(v),
            Arg::Time(v) => query.bind(codec::to_micros(v)),
            Arg::OptTime(v) => query.bind(v.map(codec::to_micros)),
        };
    }
    query
}

impl sealed::Sealed for SqliteBackend {}

#[async_trait]
impl Backend for SqliteBackend {
    type Row = SqliteRow;
    type Tx = SqliteTx;
    const FOR_UPDATE: &'static str = "";
    const NO_INDEX: &'static str = "+";

    async fn fetch_all(&self, q: Sql) -> Result<Vec<SqliteRow>, sqlx::Error> {
        let mut conn = self.connections.reader().await?;
        query(q).fetch_all(conn.conn()).await
    }

    async fn fetch_optional(&self, q: Sql) -> Result<Option<SqliteRow>, sqlx::Error> {
        let mut conn = self.connections.reader().await?;
        query(q).fetch_optional(conn.conn()).await
    }

    async fn execute(&self, q: Sql) -> Result<u64, sqlx::Error> {
        let mut writer = self.connections.writer().await?;
        Ok(query(q).execute(&mut writer.conn).await?.rows_affected())
    }

    async fn begin(&self) -> Result<Self::Tx, sqlx::Error> {
        SqliteTx::begin(self.connections.writer().await?).await
    }
}

#[async_trait]
impl WriteTx for SqliteTx {
    type Row = SqliteRow;

    async fn fetch_all(&mut self, q: Sql) -> Result<Vec<SqliteRow>, sqlx::Error> {
        query(q).fetch_all(self.conn()?).await
    }

    async fn fetch_optional(&mut self, q: Sql) -> Result<Option<SqliteRow>, sqlx::Error> {
        query(q).fetch_optional(self.conn()?).await
    }

    async fn execute(&mut self, q: Sql) -> Result<u64, sqlx::Error> {
        Ok(query(q).execute(self.conn()?).await?.rows_affected())
    }

    async fn commit(self) -> Result<(), sqlx::Error> {
        SqliteTx::commit(self).await
    }
}

fn decode_time(micros: i64) -> Result<Timestamp, sqlx::Error> {
    codec::from_micros(micros).map_err(|e| sqlx::Error::Decode(e.to_string().into()))
}

impl RowExt for SqliteRow {
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
        decode_time(self.try_get(col)?)
    }
    fn opt_time(&self, col: &str) -> Result<Option<Timestamp>, sqlx::Error> {
        self.try_get::<Option<i64>, _>(col)?
            .map(decode_time)
            .transpose()
    }
}
