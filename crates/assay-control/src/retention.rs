//! Retention, measured with the injected clock:
//! - execution workspaces (checkouts, build output) are large and only useful for a while;
//!   logs and artifacts stay;
//! - audit events older than their organization's `audit_retention_days` are purged, the
//!   store leaving a checkpoint (seq and hash of the last purged event) so the remaining
//!   chain still verifies. Each purge is itself recorded in the chain (`audit.purged`);
//! - expired OAuth records (codes, device authorizations, browser sessions, denied
//!   access tokens) and dynamic registrations never used are deleted.

use crate::audit;
use crate::audit_log::AuditLog;
use crate::dispatcher::Dispatcher;
use assay_core::audit::Outcome;
use assay_core::ports::{Clock, Store};
use assay_core::tenancy::DEFAULT_AUDIT_RETENTION_DAYS;
use assay_core::{ClientInfo, Principal, Timestamp};
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

pub(crate) const PURGED_ACTION: &str = "audit.purged";

/// One audit sweep over every organization (and the unscoped chain of authentication
/// failures nobody could be attributed to, kept for the default period); returns how many
/// chains had events purged. Failures are logged and retried at the next sweep.
pub(crate) async fn purge_audit(store: &dyn Store, log: &AuditLog, clock: &dyn Clock) -> usize {
    let orgs = match store.list_orgs().await {
        Ok(orgs) => orgs,
        Err(e) => {
            tracing::warn!(error = %e, "audit retention: could not list organizations");
            return 0;
        }
    };
    let chains = orgs
        .iter()
        .map(|o| (o.id, o.audit_retention_days))
        .chain([(Uuid::nil(), DEFAULT_AUDIT_RETENTION_DAYS)]);
    let mut purged = 0;
    for (org_id, days) in chains {
        let now = crate::stamp::now(clock);
        let before = now - time::Duration::days(i64::from(days.max(1)));
        let checkpoint = match store.purge_audit_before(org_id, before, now).await {
            Ok(Some(checkpoint)) => checkpoint,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(org = %org_id, error = %e, "audit retention: purge failed");
                continue;
            }
        };
        purged += 1;
        tracing::info!(org = %org_id, through_seq = checkpoint.seq, "audit retention: purged old events");
        let event = audit::event(
            &Principal::system(org_id),
            &ClientInfo::default(),
            org_id,
            None,
            PURGED_ACTION,
            Vec::new(),
            Outcome::Success,
            Some(format!(
                "retention ({days} days): purged events through seq {}; checkpoint hash {}",
                checkpoint.seq, checkpoint.hash
            )),
            clock,
        );
        if let Err(e) = log.append(event).await {
            tracing::error!(org = %org_id, error = %e, "audit retention: could not record the purge");
        }
    }
    purged
}

/// Deletes expired OAuth records: authorization codes, device authorizations, browser
/// sessions, denied access tokens past their expiry, and dynamic registrations that
/// were never used. Failures are logged and retried at the next sweep; returns how many
/// records were deleted.
pub(crate) async fn purge_oauth(store: &dyn Store, clock: &dyn Clock) -> u64 {
    let now = crate::stamp::now(clock);
    let results = [
        (
            "authorization codes",
            store.purge_expired_authorization_codes(now).await,
        ),
        (
            "device authorizations",
            store.purge_expired_device_authorizations(now).await,
        ),
        (
            "browser sessions",
            store.purge_expired_browser_sessions(now).await,
        ),
        (
            "denied access tokens",
            store.purge_revoked_access_tokens(now).await,
        ),
        // After the device authorizations: a client they pointed at may now go.
        (
            "unused client registrations",
            store.delete_expired_oauth_clients(now).await,
        ),
    ];
    let mut deleted = 0;
    for (what, result) in results {
        match result {
            Ok(0) => {}
            Ok(n) => {
                deleted += n;
                tracing::info!(deleted = n, "OAuth retention: purged expired {what}");
            }
            Err(e) => tracing::warn!(error = %e, "OAuth retention: could not purge {what}"),
        }
    }
    deleted
}

/// Sweeps every `interval` (the first sweep right away) until `shutdown`.
pub(crate) async fn run(
    dispatcher: Arc<Dispatcher>,
    log: Arc<AuditLog>,
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
                purge_audit(dispatcher.store().as_ref(), &log, dispatcher.clock().as_ref()).await;
                purge_oauth(dispatcher.store().as_ref(), dispatcher.clock().as_ref()).await;
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
