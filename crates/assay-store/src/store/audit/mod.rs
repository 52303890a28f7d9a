//! The append-only audit log, one hash chain per organization: appending (also in
//! groups), reading and filtering for export, the activity report, and retention.
//!
//! Each row keeps the whole event as JSON (`event`), which is what the chain hash
//! covers and what readers return; the other columns are copies for filtering and
//! indexing only.

mod append;
mod query;
mod retention;

pub use append::{append, append_batch};
pub use query::{actors, events, query};
pub use retention::{checkpoint, head, purge_before};
