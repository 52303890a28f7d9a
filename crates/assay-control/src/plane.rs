//! The `LocalControlPlane` value: its parts, start-up and shutdown.

use crate::ControlPlaneConfig;
use crate::access::{self, Scope};
use crate::audit::{self, Call};
use crate::auth::ApiTokenAuthenticator;
use crate::dispatcher::Dispatcher;
use crate::{recovery, retention};
use assay_core::ports::{Authenticator, Clock, ExecutionFiles, Executor, Store};
use assay_core::{EnvRef, Result};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Every operation a user can cause, performed here: resolve the environment, authorize,
/// act, audit. Use it as `Arc<LocalControlPlane>` (what [`LocalControlPlane::start`]
/// returns); it implements `assay_core::ports::ControlPlane`.
pub struct LocalControlPlane {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) executor: Arc<dyn Executor>,
    pub(crate) files: Arc<dyn ExecutionFiles>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) dispatcher: Arc<Dispatcher>,
    authenticator: Arc<ApiTokenAuthenticator>,
    background: TaskTracker,
    stop: CancellationToken,
}

impl LocalControlPlane {
    /// Recovers what the previous process left behind, then starts the dispatcher and the
    /// retention task. Must be called inside a Tokio runtime.
    pub async fn start(
        config: ControlPlaneConfig,
        store: Arc<dyn Store>,
        executor: Arc<dyn Executor>,
        files: Arc<dyn ExecutionFiles>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>> {
        let dispatcher = Arc::new(Dispatcher::new(
            config.concurrency,
            store.clone(),
            executor.clone(),
            files.clone(),
            clock.clone(),
        ));
        recovery::recover(&dispatcher).await?;

        let stop = CancellationToken::new();
        let background = TaskTracker::new();
        background.spawn(dispatcher.clone().run_loop(stop.clone()));
        background.spawn(retention::run(
            dispatcher.clone(),
            config.retention_interval,
            config.workspace_retention,
            stop.clone(),
        ));
        background.close();

        Ok(Arc::new(Self {
            authenticator: Arc::new(ApiTokenAuthenticator::new(store.clone(), clock.clone())),
            store,
            executor,
            files,
            clock,
            dispatcher,
            background,
            stop,
        }))
    }

    /// Stops accepting executions, stops the background tasks and aborts running
    /// executions (their final state is recorded). Queued ones stay queued in the store.
    pub async fn shutdown(&self) {
        self.dispatcher.abort_all();
        self.stop.cancel();
        self.background.wait().await;
        self.dispatcher.shutdown().await;
    }

    /// Bearer credential → principal (API tokens).
    pub fn authenticator(&self) -> Arc<dyn Authenticator> {
        self.authenticator.clone()
    }

    pub(crate) async fn authorize(&self, call: &mut Call<'_>, env: &EnvRef) -> Result<Scope> {
        access::authorize(self.store.as_ref(), call, env).await
    }

    pub(crate) async fn commit<T>(&self, call: Call<'_>, result: Result<T>) -> Result<T> {
        audit::commit(self.store.as_ref(), self.clock.as_ref(), call, result).await
    }
}

impl Drop for LocalControlPlane {
    /// Dropped without `shutdown`: at least stop the background loops and the processes.
    fn drop(&mut self) {
        self.stop.cancel();
        self.dispatcher.abort_all();
    }
}
