//! Progress notifications for long tool calls (waiting on executions), sent only when the
//! client asked for them with a progress token.

use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::{Peer, RoleServer};

pub(crate) struct Progress {
    target: Option<(Peer<RoleServer>, ProgressToken)>,
}

impl Progress {
    pub(crate) fn new(peer: Peer<RoleServer>, token: Option<ProgressToken>) -> Self {
        Self {
            target: token.map(|t| (peer, t)),
        }
    }

    /// Reports nothing: a call decided before rmcp served it has no peer to report to.
    pub(crate) fn none() -> Self {
        Self { target: None }
    }

    /// Sends `progress` (which must grow from call to call) of `total`. Best effort: a client
    /// that went away is noticed by the request's cancellation, not here.
    pub(crate) async fn report(&self, progress: f64, total: f64, message: String) {
        if let Some((peer, token)) = &self.target {
            let param = ProgressNotificationParam::new(token.clone(), progress)
                .with_total(total)
                .with_message(message);
            if let Err(e) = peer.notify_progress(param).await {
                tracing::debug!(error = %e, "progress notification not delivered");
            }
        }
    }
}
