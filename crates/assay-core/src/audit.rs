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

/// Which events to export.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub since: Option<Timestamp>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub until: Option<Timestamp>,
    /// Actor ID, or exact actor display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Exact action, or a prefix ending in `*` (`token.*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Environment ID (the control plane resolves slugs before the store sees them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

/// Where retention cut the chain: the last purged event's position and hash, so the
/// remaining events still verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCheckpoint {
    pub org_id: Uuid,
    pub seq: i64,
    pub hash: String,
    #[serde(with = "time::serde::rfc3339")]
    pub purged_before: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainBreak {
    pub seq: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<Uuid>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditVerifyReport {
    pub ok: bool,
    pub events_checked: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seq: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<AuditCheckpoint>,
    /// The first broken link: an edited, deleted, reordered or inserted event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broken: Option<ChainBreak>,
}

/// Seat tracking: one distinct actor active in a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorActivity {
    pub kind: PrincipalKind,
    pub id: Uuid,
    pub name: String,
    pub events: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditSettings {
    pub retention_days: u32,
}
