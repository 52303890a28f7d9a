//! Group commit for audit events: every append in the process goes through one writer
//! task, which takes whatever is pending (up to [`MAX_BATCH`] events) and writes it in ONE
//! store transaction. Each caller waits for its own batch to commit, so an event is still
//! durable before the operation's result is returned, but concurrent operations share the
//! cost of a commit instead of queueing for one each.
//!
//! Fail closed: when a batch cannot be written, every caller in it gets `Unavailable`; when
//! the writer is gone, every append does.

use crate::config::AuditMode;
use assay_core::audit::AuditEvent;
use assay_core::ports::Store;
use assay_core::{Error, Result};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most events written in one transaction.
pub(crate) const MAX_BATCH: usize = 256;
/// Appends waiting for the writer before callers are made to wait for queue space.
const QUEUE_CAPACITY: usize = 8 * MAX_BATCH;

/// Where an appended event landed in its organization's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Appended {
    pub seq: i64,
}

struct Pending {
    event: AuditEvent,
    done: oneshot::Sender<Result<Appended>>,
}

/// Handle to the writer task; cheap to share. The task ends once every handle is gone.
pub(crate) struct AuditLog {
    queue: Option<mpsc::Sender<Pending>>,
}

impl AuditLog {
    /// Starts the writer task (needs a Tokio runtime). With `OffForBenchmarks` nothing is
    /// started and appends are no-ops.
    pub(crate) fn start(store: Arc<dyn Store>, mode: AuditMode) -> Self {
        match mode {
            AuditMode::On => {
                let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
                tokio::spawn(write_loop(store, rx));
                Self { queue: Some(tx) }
            }
            AuditMode::OffForBenchmarks => Self { queue: None },
        }
    }

    /// Appends `event` and waits until it is committed. `None` when auditing is off.
    /// Errors are always [`unavailable`]; the store's own message goes to the server log.
    pub(crate) async fn append(&self, event: AuditEvent) -> Result<Option<Appended>> {
        let Some(queue) = &self.queue else {
            return Ok(None);
        };
        let action = event.action.clone();
        let (done, committed) = oneshot::channel();
        if queue.send(Pending { event, done }).await.is_err() {
            tracing::error!(%action, "audit writer is gone; failing closed");
            return Err(unavailable());
        }
        match committed.await {
            Ok(result) => result.map(Some),
            Err(_) => {
                tracing::error!(%action, "audit writer dropped an event; failing closed");
                Err(unavailable())
            }
        }
    }
}

/// The error every caller gets when its event could not be committed.
pub(crate) fn unavailable() -> Error {
    Error::Unavailable(
        "audit log unavailable: the operation cannot be confirmed because its audit event \
         could not be recorded (a change may have been applied; retry later)"
            .into(),
    )
}

async fn write_loop(store: Arc<dyn Store>, mut queue: mpsc::Receiver<Pending>) {
    let mut pending: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    // `recv_many` waits for at least one event, then takes what is already queued.
    while queue.recv_many(&mut pending, MAX_BATCH).await > 0 {
        let (mut events, waiters): (Vec<AuditEvent>, Vec<oneshot::Sender<Result<Appended>>>) =
            pending.drain(..).map(|p| (p.event, p.done)).unzip();
        match store.append_audit_batch(&mut events).await {
            Ok(()) => {
                for (event, waiter) in events.iter().zip(waiters) {
                    // A caller that went away (request canceled) still has its event
                    // recorded; nobody is left to tell.
                    let _ = waiter.send(Ok(Appended { seq: event.seq }));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = events.len(), "audit batch failed; failing closed");
                for waiter in waiters {
                    let _ = waiter.send(Err(unavailable()));
                }
            }
        }
    }
}
