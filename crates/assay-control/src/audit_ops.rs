//! Reading the audit log: export (streamed), chain verification, activity, retention
//! settings. Everything here reads page by page: memory stays bounded however long the
//! chain is.

use crate::LocalControlPlane;
use crate::audit::Call;
use assay_core::audit::{
    ActorActivity, AuditCheckpoint, AuditEvent, AuditFilter, AuditSettings, AuditVerifyReport,
    ChainBreak,
};
use assay_core::audit_chain::{self, ChainError};
use assay_core::ports::Store;
use assay_core::{Error, Organization, Result, Timestamp};
use futures::StreamExt;
use futures::stream::BoxStream;
use std::collections::VecDeque;
use std::sync::Arc;
use uuid::Uuid;

/// Events read per store call.
pub(crate) const PAGE: u32 = 1000;
pub const MIN_RETENTION_DAYS: u32 = 1;
pub const MAX_RETENTION_DAYS: u32 = 3650;
/// Longest filter description recorded on the export's own event.
const MAX_FILTER_CHARS: usize = 200;

impl LocalControlPlane {
    /// The filter as the store needs it: the environment (ID or slug) as an ID. An
    /// environment ID that no longer resolves is kept (events outlive environments).
    pub(crate) async fn export_filter(
        &self,
        call: &mut Call<'_>,
        org: &Organization,
        filter: &AuditFilter,
    ) -> Result<AuditFilter> {
        if let (Some(since), Some(until)) = (filter.since, filter.until)
            && since > until
        {
            return Err(Error::invalid("since", "must not be after until"));
        }
        let mut resolved = filter.clone();
        if let Some(env) = &filter.env
            && Uuid::parse_str(env).is_err()
        {
            match self.store.find_env(org.id, env).await? {
                Some(found) => resolved.env = Some(found.id.to_string()),
                None => {
                    return Err(Error::invalid(
                        "env",
                        format!("unknown environment {env:?}"),
                    ));
                }
            }
        }
        let described = serde_json::to_string(filter).unwrap_or_default();
        if described != "{}" {
            call.add(format!(
                "filter:{}",
                described.chars().take(MAX_FILTER_CHARS).collect::<String>()
            ));
        }
        Ok(resolved)
    }

    pub(crate) async fn verify_chain(&self, org_id: Uuid) -> Result<AuditVerifyReport> {
        verify_chain(self.store.as_ref(), org_id).await
    }

    pub(crate) async fn audit_actors_in(
        &self,
        org: &Organization,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<ActorActivity>> {
        if since > until {
            return Err(Error::invalid("since", "must not be after until"));
        }
        self.store.audit_actors(org.id, since, until).await
    }

    pub(crate) async fn set_audit_settings_in(
        &self,
        call: &mut Call<'_>,
        org: &Organization,
        settings: &AuditSettings,
    ) -> Result<AuditSettings> {
        let days = settings.retention_days;
        if !(MIN_RETENTION_DAYS..=MAX_RETENTION_DAYS).contains(&days) {
            return Err(Error::invalid(
                "retention_days",
                format!("must be between {MIN_RETENTION_DAYS} and {MAX_RETENTION_DAYS}"),
            ));
        }
        call.add(format!(
            "retention_days:{}->{days}",
            org.audit_retention_days
        ));
        self.store.set_audit_retention_days(org.id, days).await?;
        Ok(AuditSettings {
            retention_days: days,
        })
    }
}

/// Matching events in chain order, read `PAGE` at a time, up to (excluding) `before_seq`.
pub(crate) fn export_stream(
    store: Arc<dyn Store>,
    org_id: Uuid,
    filter: AuditFilter,
    before_seq: Option<i64>,
) -> BoxStream<'static, Result<AuditEvent>> {
    struct State {
        store: Arc<dyn Store>,
        org_id: Uuid,
        filter: AuditFilter,
        after_seq: i64,
        before_seq: Option<i64>,
        buffer: VecDeque<AuditEvent>,
        done: bool,
    }
    let state = State {
        store,
        org_id,
        filter,
        after_seq: 0,
        before_seq,
        buffer: VecDeque::new(),
        done: false,
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(event) = st.buffer.pop_front() {
                return Some((Ok(event), st));
            }
            if st.done {
                return None;
            }
            match st
                .store
                .query_audit(st.org_id, &st.filter, st.after_seq, PAGE)
                .await
            {
                Ok(page) => {
                    st.done = page.len() < PAGE as usize;
                    if let Some(last) = page.last() {
                        st.after_seq = last.seq;
                    }
                    for event in page {
                        if st.before_seq.is_some_and(|end| event.seq >= end) {
                            st.done = true;
                            break;
                        }
                        st.buffer.push_back(event);
                    }
                }
                Err(e) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
            }
        }
    })
    .boxed()
}

/// Walks the chain from the retention checkpoint (or its start), `PAGE` events at a time,
/// and reports the first break.
pub(crate) async fn verify_chain(store: &dyn Store, org_id: Uuid) -> Result<AuditVerifyReport> {
    let checkpoint: Option<AuditCheckpoint> = store.audit_checkpoint(org_id).await?;
    let mut anchor: Option<(i64, String)> = checkpoint.as_ref().map(|c| (c.seq, c.hash.clone()));
    let mut cursor = anchor.as_ref().map_or(0, |(seq, _)| *seq);
    let mut report = AuditVerifyReport {
        ok: true,
        events_checked: 0,
        first_seq: None,
        last_seq: None,
        checkpoint,
        broken: None,
    };
    loop {
        let page = store.audit_events(org_id, cursor, PAGE).await?;
        let Some(last) = page.last() else {
            break;
        };
        // One event at a time, so the break is pinned to its exact position even when
        // the stored `seq` values themselves were tampered with.
        for event in &page {
            let linked = audit_chain::verify(
                std::slice::from_ref(event),
                anchor.as_ref().map(|(s, h)| (*s, h.as_str())),
            );
            if let Err(error) = linked {
                let seq = match &error {
                    ChainError::Gap { seq, .. }
                    | ChainError::BrokenLink { seq }
                    | ChainError::BadHash { seq } => *seq,
                };
                report.ok = false;
                report.broken = Some(ChainBreak {
                    seq,
                    event_id: Some(event.id),
                    reason: error.to_string(),
                });
                return Ok(report);
            }
            report.first_seq = report.first_seq.or(Some(event.seq));
            report.last_seq = Some(event.seq);
            report.events_checked += 1;
            anchor = Some((event.seq, event.hash.clone()));
        }
        cursor = last.seq;
        if page.len() < PAGE as usize {
            break;
        }
    }
    // Events deleted from the end leave a chain that still links; the head the store
    // keeps apart from the events says where the chain must end.
    if let Some((head_seq, head_hash)) = store.audit_head(org_id).await? {
        let reached = anchor.as_ref();
        if reached.map(|(seq, _)| *seq) != Some(head_seq)
            || reached.map(|(_, hash)| hash.as_str()) != Some(head_hash.as_str())
        {
            let after = reached.map_or(0, |(seq, _)| *seq);
            report.ok = false;
            report.broken = Some(ChainBreak {
                seq: after + 1,
                event_id: None,
                reason: format!(
                    "the chain ends at seq {after} but its head is seq {head_seq}: \
                     events at the end were deleted or altered"
                ),
            });
        }
    }
    Ok(report)
}
