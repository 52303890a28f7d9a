//! Workspace retention: execution workspaces (checkouts, build output) are large and only
//! useful for a while; logs and artifacts stay. Ages are measured with the injected clock.

use crate::dispatcher::Dispatcher;
use assay_core::Timestamp;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Workspaces last modified more than `retention` before `now`, except active executions.
pub(crate) fn expired(
    workspaces: &[(Uuid, Timestamp)],
    now: Timestamp,
    retention: Duration,
    active: &HashSet<Uuid>,
) -> Vec<Uuid> {
    let retention = time::Duration::try_from(retention).unwrap_or(time::Duration::MAX);
    workspaces
        .iter()
        .filter(|(id, modified)| !active.contains(id) && now - *modified > retention)
        .map(|(id, _)| *id)
        .collect()
}

/// One sweep; returns how many workspaces were removed.
pub(crate) async fn sweep(dispatcher: &Dispatcher, retention: Duration) -> usize {
    let workspaces = match dispatcher.files().workspaces().await {
        Ok(list) => list,
        Err(e) => {
            tracing::warn!(error = %e, "retention: could not list workspaces");
            return 0;
        }
    };
    let active: HashSet<Uuid> = dispatcher.events.active_ids().into_iter().collect();
    let now = dispatcher.clock().now();
    let mut removed = 0;
    for id in expired(&workspaces, now, retention, &active) {
        match dispatcher.files().remove_workspace(id).await {
            Ok(()) => removed += 1,
            Err(e) => {
                tracing::warn!(execution = %id, error = %e, "retention: could not remove workspace")
            }
        }
    }
    if removed > 0 {
        tracing::info!(removed, "retention: removed old execution workspaces");
    }
    removed
}

/// Sweeps every `interval` (the first sweep right away) until `shutdown`.
pub(crate) async fn run(
    dispatcher: Arc<Dispatcher>,
    interval: Duration,
    retention: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {
                sweep(&dispatcher, retention).await;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn only_old_inactive_workspaces_expire() {
        let now = datetime!(2025-01-02 12:00 UTC);
        let old = Uuid::now_v7();
        let old_but_running = Uuid::now_v7();
        let fresh = Uuid::now_v7();
        let exactly_at_limit = Uuid::now_v7();
        let list = vec![
            (old, datetime!(2025-01-01 11:59 UTC)),
            (old_but_running, datetime!(2025-01-01 0:00 UTC)),
            (fresh, datetime!(2025-01-02 11:00 UTC)),
            (exactly_at_limit, datetime!(2025-01-01 12:00 UTC)),
        ];
        let active = HashSet::from([old_but_running]);
        let day = Duration::from_secs(24 * 3600);
        assert_eq!(expired(&list, now, day, &active), vec![old]);
        assert!(expired(&list, now, Duration::MAX, &HashSet::new()).is_empty());
    }
}
