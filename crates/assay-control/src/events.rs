//! Live state of executions that are queued or running in this process, and a way to
//! watch them change.
//!
//! Each active execution has ONE in-memory copy ([`LiveExecution`]) that every writer
//! (the runner, the step observer, tag edits, abort) modifies before persisting. Store writes
//! go through a per-execution lock and always write the latest copy, so the last write wins
//! with every change in it and nothing older can overwrite a newer state. Watchers only see
//! states that have been committed to the store (durable before visible).
//!
//! Later issues (an event-driven "wait for execution" tool) subscribe through
//! [`ExecutionEvents::subscribe`] and [`wait_until_finished`].

use assay_core::Result;
use assay_core::execution::{Execution, ExecutionStatus};
use assay_core::ports::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// One queued or running execution.
pub(crate) struct LiveExecution {
    id: Uuid,
    state: Mutex<Execution>,
    /// Serialises store writes of this execution.
    write: tokio::sync::Mutex<()>,
    committed: watch::Sender<Arc<Execution>>,
}

impl LiveExecution {
    fn new(execution: Execution) -> Self {
        let (committed, _) = watch::channel(Arc::new(execution.clone()));
        Self {
            id: execution.id,
            state: Mutex::new(execution),
            write: tokio::sync::Mutex::new(()),
            committed,
        }
    }

    pub(crate) fn id(&self) -> Uuid {
        self.id
    }

    pub(crate) fn status(&self) -> ExecutionStatus {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .status
    }

    /// Changes the in-memory copy; call [`Self::persist`] afterwards.
    pub(crate) fn modify<R>(&self, change: impl FnOnce(&mut Execution) -> R) -> R {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut state)
    }

    pub(crate) fn snapshot(&self) -> Execution {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Writes the latest in-memory copy and then publishes it to watchers.
    pub(crate) async fn persist(&self, store: &dyn Store) -> Result<Arc<Execution>> {
        let _guard = self.write.lock().await;
        let snapshot = Arc::new(self.snapshot());
        store.update_execution(&snapshot).await?;
        self.committed.send_replace(snapshot.clone());
        Ok(snapshot)
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<Execution>> {
        self.committed.subscribe()
    }
}

/// Registry of active executions, keyed by ID.
#[derive(Default)]
pub(crate) struct ExecutionEvents {
    active: Mutex<HashMap<Uuid, Arc<LiveExecution>>>,
}

impl ExecutionEvents {
    /// Starts tracking an execution that was just stored (queued).
    pub(crate) fn register(&self, execution: Execution) -> Arc<LiveExecution> {
        let live = Arc::new(LiveExecution::new(execution.clone()));
        self.lock().insert(execution.id, live.clone());
        live
    }

    pub(crate) fn get(&self, id: Uuid) -> Option<Arc<LiveExecution>> {
        self.lock().get(&id).cloned()
    }

    /// Committed states of an active execution. `None` when it is not active here (it has
    /// finished, or never existed): read the store instead. A receiver taken while the
    /// execution is active sees its final state even after it is forgotten.
    pub(crate) fn subscribe(&self, id: Uuid) -> Option<watch::Receiver<Arc<Execution>>> {
        self.get(id).map(|live| live.subscribe())
    }

    /// Stops tracking a finished execution (after its final state was persisted).
    pub(crate) fn forget(&self, id: Uuid) {
        self.lock().remove(&id);
    }

    pub(crate) fn active_ids(&self) -> Vec<Uuid> {
        self.lock().keys().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<LiveExecution>>> {
        self.active.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Waits until the watched execution reaches a terminal status, or `timeout` passes.
/// Returns the latest committed state either way.
pub(crate) async fn wait_until_finished(
    mut receiver: watch::Receiver<Arc<Execution>>,
    timeout: Duration,
) -> Arc<Execution> {
    let wait = async {
        loop {
            if receiver.borrow_and_update().status.is_terminal() {
                break;
            }
            // Err: the execution was forgotten; its final state is the last value.
            if receiver.changed().await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(timeout, wait).await;
    receiver.borrow().clone()
}
