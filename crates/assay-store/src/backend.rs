//! The seam between the shared SQL in `store` and a concrete database: connections,
//! write transactions, and decoding of the types whose encodings differ.
//!
//! The traits are public only because [`crate::SqlStore`] is generic over them; they
//! are sealed (implemented here for SQLite and PostgreSQL only).

use crate::sql::Sql;
use assay_core::Timestamp;
use async_trait::async_trait;
use uuid::Uuid;

pub(crate) mod sealed {
    pub trait Sealed {}
}

/// A database engine Assay can store to. Sealed.
#[async_trait]
pub trait Backend: sealed::Sealed + Send + Sync + 'static {
    #[doc(hidden)]
    type Row: RowExt + Send + Sync;
    #[doc(hidden)]
    type Tx: WriteTx<Row = Self::Row>;

    /// Appended to a `SELECT` that must lock the rows it reads for the rest of the
    /// transaction. Empty on SQLite, where the one writer already serializes writes.
    #[doc(hidden)]
    const FOR_UPDATE: &'static str;

    /// Put before a column in a comparison so the planner does not pick an index for it
    /// (SQLite's unary `+`). Empty on PostgreSQL, whose planner has the statistics to
    /// choose well; SQLite's does not, and would pick a range index plus a full sort
    /// over an ordered key seek.
    #[doc(hidden)]
    const NO_INDEX: &'static str;

    /// Reads outside a transaction (SQLite: on the reader pool).
    #[doc(hidden)]
    async fn fetch_all(&self, q: Sql) -> Result<Vec<Self::Row>, sqlx::Error>;
    #[doc(hidden)]
    async fn fetch_optional(&self, q: Sql) -> Result<Option<Self::Row>, sqlx::Error>;
    /// A single-statement write in its own transaction; returns rows affected.
    #[doc(hidden)]
    async fn execute(&self, q: Sql) -> Result<u64, sqlx::Error>;
    /// A write transaction (SQLite: `BEGIN IMMEDIATE` on the single writer connection).
    #[doc(hidden)]
    async fn begin(&self) -> Result<Self::Tx, sqlx::Error>;
}

/// An open write transaction. Dropping it without `commit` rolls back.
#[async_trait]
pub trait WriteTx: Send {
    type Row: RowExt + Send + Sync;
    async fn fetch_all(&mut self, q: Sql) -> Result<Vec<Self::Row>, sqlx::Error>;
    async fn fetch_optional(&mut self, q: Sql) -> Result<Option<Self::Row>, sqlx::Error>;
    async fn execute(&mut self, q: Sql) -> Result<u64, sqlx::Error>;
    async fn commit(self) -> Result<(), sqlx::Error>;
}

/// Typed column access by name, hiding per-engine encodings.
pub trait RowExt {
    fn uuid(&self, col: &str) -> Result<Uuid, sqlx::Error>;
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>, sqlx::Error>;
    fn text(&self, col: &str) -> Result<String, sqlx::Error>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error>;
    fn i64(&self, col: &str) -> Result<i64, sqlx::Error>;
    fn opt_i64(&self, col: &str) -> Result<Option<i64>, sqlx::Error>;
    fn bool(&self, col: &str) -> Result<bool, sqlx::Error>;
    fn time(&self, col: &str) -> Result<Timestamp, sqlx::Error>;
    fn opt_time(&self, col: &str) -> Result<Option<Timestamp>, sqlx::Error>;
}
