//! Step-up (MCP authorization, RFC 6750 §3.1): when a tool call fails only because the
//! OAuth access token's scope is narrower than the tool needs — the user's role would
//! allow it (`Error::InsufficientScope`) — the HTTP transport answers `403` with an
//! `insufficient_scope` challenge instead of an `isError` result, so the client asks the
//! user for the wider scope and retries.
//!
//! The question is decided before rmcp sees the request (or, on legacy HTTP+SSE, before
//! the POST is answered `202`), because afterwards an SSE answer has already sent its
//! `200`: the transport reads a `tools/call` whose tool needs more than the credential's
//! scope ([`scope_falls_short`]) and asks [`crate::AssayMcp`] to run it at once
//! ([`Precheck`]). The tool's own control-plane operation then authorizes — and audits —
//! the refusal exactly as it would inside rmcp; the handler reports a refusal for want of
//! scope through a [`StepUpSlot`]. Any other refusal (the role falls short, the
//! environment is hidden, bad arguments) is the tool's ordinary result, handed on to rmcp
//! as a [`Prechecked`] answer so the operation is not called (nor audited) twice.
//!
//! Why running the handler early is safe: authorization caps the principal's level at its
//! scope (`Principal::level_in`), so an operation of the tool's own level is refused before
//! it does anything, and every tool above `read` calls its own operation first.

use assay_core::{Level, Principal};
use rmcp::model::CallToolResult;
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

/// Whether the credential's scope alone rules out a tool needing `level`: the call is
/// certain to be refused, so it is decided before rmcp sees it.
pub(crate) fn scope_falls_short(principal: &Principal, level: Level) -> bool {
    principal.scope_cap.is_some_and(|cap| cap < level)
}

/// What becomes of a `tools/call` the transport looked at before rmcp.
#[derive(Debug)]
pub(crate) enum Precheck {
    /// Nothing decided: rmcp serves it as usual.
    Proceed,
    /// Refused for want of this scope's level (audited): answer `403 insufficient_scope`.
    StepUp(Level),
    /// Refused otherwise (audited): rmcp serves the request, and the handler answers with
    /// this result instead of calling the tool again.
    Refused(Prechecked),
}

/// A tool call's result decided before rmcp saw the request, carried to the handler in the
/// request's extensions.
#[derive(Debug, Clone)]
pub(crate) struct Prechecked {
    pub tool: String,
    pub result: CallToolResult,
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
