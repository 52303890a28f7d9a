//! Step-up (MCP authorization, RFC 6750 §3.1): when a tool call fails only because the
//! OAuth access token's scope is narrower than the tool needs — the user's role would
//! allow it (`Error::InsufficientScope`) — the HTTP transport answers `403` with an
//! `insufficient_scope` challenge instead of an `isError` result, so the client asks the
//! user for the wider scope and retries.
//!
//! The tool handler and the transport meet through a [`StepUpSlot`] the transport puts
//! into the request's extensions before rmcp sees the request (rmcp hands the handler a
//! clone of the request parts; the slot is shared, not copied).

use assay_core::Level;
use std::sync::{Arc, Mutex};

/// The scope one request's tool call turned out to need, if it failed for want of it.
#[derive(Debug, Clone, Default)]
pub(crate) struct StepUpSlot(Arc<Mutex<Option<Level>>>);

impl StepUpSlot {
    pub(crate) fn record(&self, needed: Level) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(needed);
        }
    }

    pub(crate) fn needed(&self) -> Option<Level> {
        self.0.lock().ok().and_then(|slot| *slot)
    }
}

/// What the transport reports on a step-up `403` (in the response's extensions) for the
/// server crate, which knows the protected resource metadata URL, to complete the
/// `WWW-Authenticate` challenge with `resource_metadata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsufficientScope {
    /// The scope the call needs, e.g. `mcp:run`.
    pub scope: &'static str,
    /// Why, in a sentence fit for `error_description` (plain ASCII, no quotes).
    pub description: String,
}

/// The OAuth scope that carries `needed` (an OAuth scope reaches write at most).
pub(crate) fn scope_for(needed: Level) -> &'static str {
    match needed {
        Level::Read => "mcp:read",
        Level::Run => "mcp:run",
        Level::Write | Level::Admin => "mcp:write",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_shared_by_its_clones() {
        let slot = StepUpSlot::default();
        let seen_by_handler = slot.clone();
        assert_eq!(slot.needed(), None);
        seen_by_handler.record(Level::Run);
        assert_eq!(slot.needed(), Some(Level::Run));
        assert_eq!(scope_for(Level::Write), "mcp:write");
    }
}
