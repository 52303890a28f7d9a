//! The SQLite backend's connections: one writer and a few readers, each held by one caller
//! at a time behind an async mutex, instead of sqlx pools.
//!
//! Why not a pool: every SQLite statement already goes through its connection's worker
//! thread, and sqlx's pool adds a ping through that thread each time a connection is
//! returned, from a spawned task. Per statement that was a second round trip, and the
//! single writer could not be taken again until that task had run — under load the audit
//! writer waited longer for its connection than for its commit.
//!
//! Write transactions are plain `BEGIN IMMEDIATE` / `COMMIT` / `ROLLBACK` statements on the
//! writer. A transaction dropped without commit (an error, or a canceled request) is rolled
//! back by a task that owns the writer until the rollback has run; and the writer remembers
//! that a transaction may be open, so whoever takes it next rolls back first should that
//! task not have run (no runtime at drop).

use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// The writer connection and whether a transaction may be open on it.
pub(crate) struct Writer {
    pub conn: SqliteConnection,
    /// Set before `BEGIN` is sent, cleared once `COMMIT` or `ROLLBACK` has returned.
    maybe_in_tx: bool,
}

pub(crate) struct Connections {
    writer: Arc<Mutex<Writer>>,
    /// Empty for an in-memory database, whose reads go to the writer (a second
    /// connection would see another database).
    readers: Vec<Arc<Mutex<SqliteConnection>>>,
    next_reader: AtomicUsize,
    acquire_timeout: Duration,
}

/// A connection taken for reading: a reader, or the writer of an in-memory database.
pub(crate) enum ReadConn {
    Reader(OwnedMutexGuard<SqliteConnection>),
    Writer(OwnedMutexGuard<Writer>),
}

impl ReadConn {
    pub fn conn(&mut self) -> &mut SqliteConnection {
        match self {
            Self::Reader(c) => c,
            Self::Writer(w) => &mut w.conn,
        }
    }
}

impl Connections {
    /// The writer alone; until [`Self::with_readers`], reads go to it too.
    pub async fn open(
        writer: &SqliteConnectOptions,
        acquire_timeout: Duration,
    ) -> Result<Self, sqlx::Error> {
        let writer = Writer {
            conn: SqliteConnection::connect_with(writer).await?,
            maybe_in_tx: false,
        };
        Ok(Self {
            writer: Arc::new(Mutex::new(writer)),
            readers: Vec::new(),
            next_reader: AtomicUsize::new(0),
            acquire_timeout,
        })
    }

    /// Adds `count` reader connections.
    pub async fn with_readers(
        mut self,
        options: &SqliteConnectOptions,
        count: usize,
    ) -> Result<Self, sqlx::Error> {
        for _ in 0..count {
            let conn = SqliteConnection::connect_with(options).await?;
            self.readers.push(Arc::new(Mutex::new(conn)));
        }
        Ok(self)
    }

    /// The writer with no transaction open (a leftover one is rolled back first).
    pub async fn writer(&self) -> Result<OwnedMutexGuard<Writer>, sqlx::Error> {
        let mut writer = self.lock(&self.writer).await?;
        if writer.maybe_in_tx {
            rollback(&mut writer).await?;
        }
        Ok(writer)
    }

    /// A free reader if there is one, else the next in turn once it is free.
    pub async fn reader(&self) -> Result<ReadConn, sqlx::Error> {
        if self.readers.is_empty() {
            return Ok(ReadConn::Writer(self.writer().await?));
        }
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        let n = self.readers.len();
        for i in 0..n {
            if let Ok(conn) = self.readers[(start + i) % n].clone().try_lock_owned() {
                return Ok(ReadConn::Reader(conn));
            }
        }
        Ok(ReadConn::Reader(self.lock(&self.readers[start % n]).await?))
    }

    async fn lock<T>(&self, conn: &Arc<Mutex<T>>) -> Result<OwnedMutexGuard<T>, sqlx::Error> {
        tokio::time::timeout(self.acquire_timeout, conn.clone().lock_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)
    }
}

async fn run(conn: &mut SqliteConnection, statement: &'static str) -> Result<(), sqlx::Error> {
    sqlx::query(statement).execute(conn).await.map(|_| ())
}

async fn rollback(writer: &mut Writer) -> Result<(), sqlx::Error> {
    match run(&mut writer.conn, "ROLLBACK").await {
        Ok(()) => {}
        // The BEGIN never ran, or the COMMIT did: nothing to undo.
        Err(sqlx::Error::Database(e)) if e.message().contains("no transaction is active") => {}
        Err(e) => return Err(e),
    }
    writer.maybe_in_tx = false;
    Ok(())
}

/// An open write transaction on the writer. Dropping it without [`WriteTx::commit`]
/// rolls back.
pub struct SqliteTx {
    writer: Option<OwnedMutexGuard<Writer>>,
}

impl SqliteTx {
    pub(crate) async fn begin(mut writer: OwnedMutexGuard<Writer>) -> Result<Self, sqlx::Error> {
        writer.maybe_in_tx = true;
        // Built before `BEGIN` is awaited, so a canceled begin is rolled back too.
        let mut tx = Self {
            writer: Some(writer),
        };
        run(tx.conn()?, "BEGIN IMMEDIATE").await?;
        Ok(tx)
    }

    pub(crate) fn conn(&mut self) -> Result<&mut SqliteConnection, sqlx::Error> {
        self.writer
            .as_mut()
            .map(|w| &mut w.conn)
            .ok_or(sqlx::Error::PoolClosed)
    }

    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        let Some(mut writer) = self.writer.take() else {
            return Err(sqlx::Error::PoolClosed);
        };
        match run(&mut writer.conn, "COMMIT").await {
            Ok(_) => {
                writer.maybe_in_tx = false;
                Ok(())
            }
            Err(e) => {
                // A failed COMMIT may leave the transaction open; roll back now.
                self.writer = Some(writer);
                Err(e)
            }
        }
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        let Some(mut writer) = self.writer.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = rollback(&mut writer).await {
                    tracing::warn!(error = %e, "rolling back an abandoned SQLite transaction failed; the next writer retries");
                }
            });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    async fn open(dir: &tempfile::TempDir) -> Connections {
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("t.db"))
            .create_if_missing(true);
        let c = Connections::open(&options, Duration::from_secs(5))
            .await
            .unwrap();
        run(
            &mut c.writer().await.unwrap().conn,
            "CREATE TABLE t (x INTEGER)",
        )
        .await
        .unwrap();
        c
    }

    async fn count(c: &Connections) -> i64 {
        let mut conn = c.reader().await.unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(conn.conn())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_dropped_transaction_is_rolled_back_and_the_writer_reusable() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(&dir).await;
        let mut tx = SqliteTx::begin(c.writer().await.unwrap()).await.unwrap();
        run(tx.conn().unwrap(), "INSERT INTO t VALUES (1)")
            .await
            .unwrap();
        drop(tx);
        let mut tx = SqliteTx::begin(c.writer().await.unwrap()).await.unwrap();
        run(tx.conn().unwrap(), "INSERT INTO t VALUES (2)")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(count(&c).await, 1);
    }

    #[tokio::test]
    async fn a_leftover_transaction_is_rolled_back_by_the_next_writer() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(&dir).await;
        // As if a transaction had been abandoned with no runtime to roll it back.
        let mut writer = c.writer().await.unwrap();
        writer.maybe_in_tx = true;
        run(&mut writer.conn, "BEGIN IMMEDIATE").await.unwrap();
        run(&mut writer.conn, "INSERT INTO t VALUES (1)")
            .await
            .unwrap();
        drop(writer);
        let mut writer = c.writer().await.unwrap();
        assert!(!writer.maybe_in_tx);
        run(&mut writer.conn, "INSERT INTO t VALUES (2)")
            .await
            .unwrap();
        drop(writer);
        assert_eq!(count(&c).await, 1);
    }
}
