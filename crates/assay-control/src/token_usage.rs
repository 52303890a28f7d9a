//! API-token last use (time, client IP), kept in memory and written in one batch every few
//! seconds and at shutdown, so authenticating a request costs no database write.

use assay_core::Result;
use assay_core::Timestamp;
use assay_core::ports::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

type Usage = (Timestamp, Option<String>);

/// Latest use per token since the last flush (at most one entry per existing token).
#[derive(Default)]
pub(crate) struct TokenUsage {
    pending: Mutex<HashMap<Uuid, Usage>>,
}

impl TokenUsage {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Usage>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn record(&self, token_id: Uuid, at: Timestamp, ip: Option<String>) {
        merge(&mut self.lock(), token_id, (at, ip));
    }

    /// Writes everything pending in one store call; returns how many tokens it covered.
    /// On failure the uses are kept for the next attempt.
    pub(crate) async fn flush(&self, store: &dyn Store) -> Result<usize> {
        let batch: Vec<(Uuid, Timestamp, Option<String>)> = {
            let mut pending = self.lock();
            pending.drain().map(|(id, (at, ip))| (id, at, ip)).collect()
        };
        if batch.is_empty() {
            return Ok(0);
        }
        match store.record_token_usage(&batch).await {
            Ok(()) => Ok(batch.len()),
            Err(e) => {
                let mut pending = self.lock();
                for (id, at, ip) in batch {
                    merge(&mut pending, id, (at, ip));
                }
                Err(e)
            }
        }
    }
}

/// Keeps the later of two uses.
fn merge(pending: &mut HashMap<Uuid, Usage>, id: Uuid, usage: Usage) {
    match pending.get(&id) {
        Some((at, _)) if *at >= usage.0 => {}
        _ => {
            pending.insert(id, usage);
        }
    }
}

/// Flushes every `interval` until `shutdown`, then once more.
pub(crate) async fn run(
    usage: Arc<TokenUsage>,
    store: Arc<dyn Store>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => flush_logged(&usage, store.as_ref()).await,
        }
    }
    flush_logged(&usage, store.as_ref()).await;
}

async fn flush_logged(usage: &TokenUsage, store: &dyn Store) {
    if let Err(e) = usage.flush(store).await {
        tracing::warn!(error = %e, "could not record API token usage; will retry");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_latest_use_wins() {
        let usage = TokenUsage::default();
        let id = Uuid::now_v7();
        usage.record(id, datetime!(2025-01-01 10:00 UTC), Some("a".into()));
        usage.record(id, datetime!(2025-01-01 09:00 UTC), Some("old".into()));
        usage.record(id, datetime!(2025-01-01 11:00 UTC), Some("b".into()));
        let pending = usage.lock();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            pending.get(&id),
            Some(&(datetime!(2025-01-01 11:00 UTC), Some("b".into())))
        );
    }
}
