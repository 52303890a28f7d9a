//! Storage adapters for Assay: SQLite (embedded default) and PostgreSQL (scale).
//!
//! Both implement [`assay_core::ports::Store`] as one [`SqlStore`]: the SQL is written
//! once (module `store`, with `$n` placeholders both engines understand) over a small
//! [`Backend`] seam that owns connections, transactions and the few type differences
//! (UUID and timestamp encodings). Both pass one contract suite (`tests/contract.rs`).
//!
//! Call [`connect`] with a URL from configuration, or [`SqliteStore::open`] /
//! [`PostgresStore::connect`] directly. Constructors apply the embedded migrations.

pub mod audit_chain;
mod backend;
mod codec;
mod cursor;
mod error;
mod postgres;
pub mod selector;
mod sql;
mod sqlite;
mod store;

pub use backend::Backend;
pub use postgres::{PgBackend, PostgresStore};
pub use sqlite::{SqliteBackend, SqliteStore};
pub use store::SqlStore;

use assay_core::Result;
use assay_core::ports::Store;
use std::sync::Arc;

/// Opens the store a URL names: `postgres://…` / `postgresql://…` is PostgreSQL;
/// `sqlite://path?…`, `sqlite:path`, `sqlite::memory:` or a plain file path is SQLite
/// (the file is created when missing).
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open_url(url).await?))
    } else if let Some((scheme, _)) = url.split_once("://") {
        Err(assay_core::Error::invalid(
            "database_url",
            format!("unsupported database scheme {scheme:?} (expected sqlite or postgres)"),
        ))
    } else {
        Ok(Arc::new(
            SqliteStore::open(std::path::Path::new(url)).await?,
        ))
    }
}
