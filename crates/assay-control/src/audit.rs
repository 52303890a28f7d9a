//! One audit event per control-plane call, committed (through the group-commit writer,
//! `audit_log`) before the caller sees the result.
//!
//! Order of events for a call: resolve + authorize → act → append the event → return.
//! For mutations the event is written after acting (it records what actually happened,
//! including failures). If the append fails the caller gets `Unavailable` even though the
//! mutation may have been applied: we never confirm an operation that is not on the record,
//! and a retry is safe for every mutation here (create answers `Conflict`, update/apply/delete
//! converge). The one mutation that is not idempotent — starting an execution — is written
//! before it takes effect: the execution is only handed to the dispatcher after its event is
//! committed, and is canceled otherwise (see `runs`).

use crate::audit_log::{Appended, AuditLog};
use crate::permissions::Operation;
use assay_core::actor::{Actor, Principal};
use assay_core::audit::{AuditActor, AuditEvent, Outcome};
use assay_core::ports::Clock;
use assay_core::{ClientInfo, Result};
use uuid::Uuid;

/// Longest resource reference recorded; names come from callers and are bounded here.
const MAX_RESOURCE_CHARS: usize = 256;

/// What is known about one call so far, filled in as the call proceeds.
pub(crate) struct Call<'a> {
    pub actor: &'a Actor,
    pub operation: Operation,
    /// The chain the event goes to: the environment's organization once resolved and
    /// visible to the principal, else the principal's own organization.
    pub org_id: Uuid,
    pub env_id: Option<Uuid>,
    pub resources: Vec<String>,
    /// Set by authorization when it refuses the call (outcome `denied`).
    pub denied: bool,
    /// A more specific action than the operation's own (e.g. `member.disabled` for an
    /// update that disables).
    pub action: Option<&'static str>,
}

impl<'a> Call<'a> {
    pub fn new(actor: &'a Actor, operation: Operation) -> Self {
        Self {
            actor,
            operation,
            org_id: actor.principal.org_id,
            env_id: None,
            resources: Vec::new(),
            denied: false,
            action: None,
        }
    }

    pub fn with(mut self, resource: impl AsRef<str>) -> Self {
        self.add(resource);
        self
    }

    pub fn add(&mut self, resource: impl AsRef<str>) {
        self.resources.push(bounded(resource.as_ref()));
    }

    /// Replaces a reference given by the caller (e.g. an execution name) with the
    /// canonical one once resolved (its ID).
    pub fn refine(&mut self, given: &str, canonical: impl AsRef<str>) {
        let given = bounded(given);
        let canonical = bounded(canonical.as_ref());
        match self.resources.iter_mut().find(|r| **r == given) {
            Some(slot) => *slot = canonical,
            None => self.resources.push(canonical),
        }
    }

    fn event(&self, outcome: Outcome, reason: Option<String>, clock: &dyn Clock) -> AuditEvent {
        event(
            &self.actor.principal,
            &self.actor.client,
            self.org_id,
            self.env_id,
            self.action.unwrap_or(self.operation.action()),
            self.resources.clone(),
            outcome,
            reason,
            clock,
        )
    }
}

fn bounded(text: &str) -> String {
    if text.chars().count() <= MAX_RESOURCE_CHARS {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(MAX_RESOURCE_CHARS).collect();
        cut.push('…');
        cut
    }
}

/// An event ready to append (`seq` and hashes are assigned by the store).
#[allow(clippy::too_many_arguments)]
pub(crate) fn event(
    principal: &Principal,
    client: &ClientInfo,
    org_id: Uuid,
    env_id: Option<Uuid>,
    action: &str,
    resources: Vec<String>,
    outcome: Outcome,
    reason: Option<String>,
    clock: &dyn Clock,
) -> AuditEvent {
    AuditEvent {
        id: Uuid::now_v7(),
        time: crate::stamp::now(clock),
        org_id,
        env_id,
        actor: AuditActor {
            kind: principal.kind,
            id: principal.id,
            name: principal.display_name.clone(),
            auth_method: principal.auth_method,
            credential_id: principal.credential_id.clone(),
        },
        client: client.clone(),
        action: action.to_string(),
        resources,
        outcome,
        reason,
        seq: 0,
        prev_hash: String::new(),
        hash: String::new(),
    }
}

/// How `result` is recorded for `call`. Computed before any await so results that are
/// not `Sync` (streams) can be held across the append.
pub(crate) fn outcome_of<T>(call: &Call<'_>, result: &Result<T>) -> (Outcome, Option<String>) {
    match result {
        Ok(_) => (Outcome::Success, None),
        Err(e) if call.denied => (Outcome::Denied, Some(e.to_string())),
        Err(e) => (Outcome::Error, Some(e.to_string())),
    }
}

/// Records the outcome of a call; where its event landed (`None` when auditing is off).
pub(crate) async fn record(
    log: &AuditLog,
    clock: &dyn Clock,
    call: &Call<'_>,
    (outcome, reason): (Outcome, Option<String>),
) -> Result<Option<Appended>> {
    log.append(call.event(outcome, reason, clock)).await
}

/// Records the outcome and returns the result only once its event is committed.
pub(crate) async fn commit<T>(
    log: &AuditLog,
    clock: &dyn Clock,
    call: Call<'_>,
    result: Result<T>,
) -> Result<T> {
    let outcome = outcome_of(&call, &result);
    record(log, clock, &call, outcome).await?;
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use assay_core::ports::SystemClock;

    #[test]
    fn resources_are_bounded_and_refined() {
        let actor = Actor::new(Principal::system(Uuid::nil()), ClientInfo::default());
        let mut call = Call::new(&actor, Operation::GetExecution).with("execution:smoke-1");
        call.refine("execution:smoke-1", "execution:0000");
        assert_eq!(call.resources, vec!["execution:0000".to_string()]);
        call.add("x".repeat(300));
        assert_eq!(call.resources[1].chars().count(), MAX_RESOURCE_CHARS + 1);
        assert!(call.resources[1].ends_with('…'));
        let event = call.event(Outcome::Denied, Some("no".into()), &SystemClock);
        assert_eq!(event.action, "execution.get");
        assert_eq!(event.org_id, Uuid::nil());
        assert_eq!(event.outcome, Outcome::Denied);
    }
}
