//! Audit events (DESIGN.md §5). One per operation, allowed or denied.

use crate::Timestamp;
use crate::actor::{AuthMethod, ClientInfo, PrincipalKind};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Denied,
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditActor {
    pub kind: PrincipalKind,
    pub id: Uuid,
    pub name: String,
    pub auth_method: AuthMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub time: Timestamp,
    pub org_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_id: Option<Uuid>,
    pub actor: AuditActor,
    pub client: ClientInfo,
    /// e.g. `workflow.create`, `execution.abort`, `mcp.tool.run_workflow`.
    pub action: String,
    /// Affected resources, e.g. `workflow:smoke`, `execution:0192…`.
    #[serde(default)]
    pub resources: Vec<String>,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Position in the organization's chain; assigned by the store.
    #[serde(default)]
    pub seq: i64,
    /// Hex SHA-256 of the previous event in the chain; assigned by the store.
    #[serde(default)]
    pub prev_hash: String,
    /// Hex SHA-256 over this event's canonical form and `prev_hash`; assigned by the store.
    #[serde(default)]
    pub hash: String,
}

impl AuditEvent {
    /// The bytes the chain hash covers: every field except `hash` itself, in a fixed
    /// order (serde_json with struct field order), so any edit changes the hash.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut copy = self.clone();
        copy.hash = String::new();
        serde_json::to_vec(&copy).unwrap_or_default()
    }
}
