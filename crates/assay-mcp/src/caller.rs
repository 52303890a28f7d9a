//! Who is calling, and in which environment. The transport that authenticated the request
//! puts an [`McpCaller`] into the HTTP request's extensions (rmcp hands the request parts
//! to every handler); stdio uses one fixed caller for the whole process.

use assay_core::{Actor, EnvRef};
use rmcp::model::Implementation;
use rmcp::service::{RequestContext, RoleServer};

/// The authenticated actor and the environment an MCP endpoint serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpCaller {
    pub actor: Actor,
    pub env: EnvRef,
}

/// The caller of one request: the transport's, else the fixed one; with the MCP client's
/// name/version from `initialize` (or the request's metadata) recorded for the audit trail.
pub(crate) fn resolve(
    context: &RequestContext<RoleServer>,
    fixed: Option<&McpCaller>,
) -> Option<McpCaller> {
    let from_transport = context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<McpCaller>());
    let mut caller = from_transport.or(fixed)?.clone();
    // Stateless HTTP has no handshake: rmcp then reports its own build as the peer
    // (`Implementation::default()`), which must not be audited as the client. Such clients
    // name themselves per request in `_meta` (SEP-2575) or not at all.
    let announced = context.meta.client_info().or_else(|| {
        context
            .client_info()
            .filter(|i| *i != Implementation::default())
    });
    if caller.actor.client.mcp_client.is_none()
        && let Some(info) = announced
    {
        caller.actor.client.mcp_client = Some(client_label(&info.name, &info.version));
    }
    Some(caller)
}

/// `name/version`, bounded: the values come from the client and end up in audit events.
fn client_label(name: &str, version: &str) -> String {
    let clean = |s: &str, max: usize| -> String {
        s.chars()
            .filter(|c| !c.is_control())
            .take(max)
            .collect::<String>()
    };
    let name = clean(name, 100);
    let version = clean(version, 50);
    if version.is_empty() {
        name
    } else {
        format!("{name}/{version}")
    }
}

#[cfg(test)]
mod tests {
    use super::client_label;

    #[test]
    fn client_labels_are_bounded_and_printable() {
        assert_eq!(client_label("claude-code", "2.1.0"), "claude-code/2.1.0");
        assert_eq!(client_label("x", ""), "x");
        assert_eq!(client_label("a\nb\u{7}", "1"), "ab/1");
        assert_eq!(client_label(&"n".repeat(500), "1").len(), 102);
    }
}
