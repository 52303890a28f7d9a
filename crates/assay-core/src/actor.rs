//! Who is acting: the authenticated principal plus what we know about the client.

use crate::permission::Level;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    User,
    ApiToken,
    /// The server itself (start-up recovery, retention); never reachable from a request.
    System,
}

/// How the credential arrived; recorded on audit events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ApiToken,
    // Spelled "oauth" (snake_case would make it "o_auth").
    #[serde(rename = "oauth")]
    OAuth,
    CliLogin,
    Session,
    System,
}

/// What a principal may do across the environments of its organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Access {
    /// Organization owner/admin, or an admin API token: admin on every environment.
    OrgAdmin,
    /// Read on every environment (org-read tokens).
    ReadAll,
    /// Only the listed environments, at the listed level.
    PerEnvironment { grants: BTreeMap<Uuid, Level> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// User ID or API token ID.
    pub id: Uuid,
    pub display_name: String,
    pub org_id: Uuid,
    pub access: Access,
    /// Upper bound from the credential itself (e.g. OAuth scope); `None` = unbounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_cap: Option<Level>,
    pub auth_method: AuthMethod,
    /// For users authenticated by an API token or OAuth client, the credential's ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
}

impl Principal {
    /// The effective level in an environment of `org_id`: `min(role, scope)`, or `None`
    /// when the principal may not even know the environment exists.
    pub fn level_in(&self, org_id: Uuid, env_id: Uuid) -> Option<Level> {
        let role = self.role_level_in(org_id, env_id)?;
        Some(match self.scope_cap {
            Some(cap) => role.min(cap),
            None => role,
        })
    }

    /// The level the principal's role (or token kind) gives in an environment of
    /// `org_id`, before any credential scope caps it. Tells "the scope is too narrow"
    /// (the user could consent to more: step-up) from "the role is too low".
    pub fn role_level_in(&self, org_id: Uuid, env_id: Uuid) -> Option<Level> {
        if org_id != self.org_id {
            return None;
        }
        match &self.access {
            Access::OrgAdmin => Some(Level::Admin),
            Access::ReadAll => Some(Level::Read),
            Access::PerEnvironment { grants } => grants.get(&env_id).copied(),
        }
    }

    /// The server acting on its own behalf (recovery, retention).
    pub fn system(org_id: Uuid) -> Self {
        Self {
            kind: PrincipalKind::System,
            id: Uuid::nil(),
            display_name: "assay".into(),
            org_id,
            access: Access::OrgAdmin,
            scope_cap: None,
            auth_method: AuthMethod::System,
            credential_id: None,
        }
    }
}

/// Facts about the calling client, for the audit trail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// MCP client name/version from `initialize`, when the call came over MCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_client: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Every operation on the control plane is performed by an actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub principal: Principal,
    pub client: ClientInfo,
}

impl Actor {
    pub fn new(principal: Principal, client: ClientInfo) -> Self {
        Self { principal, client }
    }
}

/// Who started an execution, as shown to other users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorRef {
    pub kind: PrincipalKind,
    pub id: Uuid,
    pub name: String,
}

impl From<&Principal> for ActorRef {
    fn from(p: &Principal) -> Self {
        Self {
            kind: p.kind,
            id: p.id,
            name: p.display_name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(grants: &[(Uuid, Level)], cap: Option<Level>) -> Principal {
        Principal {
            kind: PrincipalKind::User,
            id: Uuid::now_v7(),
            display_name: "m".into(),
            org_id: Uuid::nil(),
            access: Access::PerEnvironment {
                grants: grants.iter().copied().collect(),
            },
            scope_cap: cap,
            auth_method: AuthMethod::OAuth,
            credential_id: None,
        }
    }

    #[test]
    fn effective_level_is_min_of_role_and_scope() {
        let env = Uuid::now_v7();
        let p = member(&[(env, Level::Write)], Some(Level::Run));
        assert_eq!(p.level_in(Uuid::nil(), env), Some(Level::Run));
        let p = member(&[(env, Level::Read)], Some(Level::Write));
        assert_eq!(p.level_in(Uuid::nil(), env), Some(Level::Read));
    }

    #[test]
    fn the_role_level_ignores_the_scope() {
        let env = Uuid::now_v7();
        let p = member(&[(env, Level::Run)], Some(Level::Read));
        assert_eq!(p.level_in(Uuid::nil(), env), Some(Level::Read));
        assert_eq!(p.role_level_in(Uuid::nil(), env), Some(Level::Run));
        assert_eq!(p.role_level_in(Uuid::now_v7(), env), None);
        assert_eq!(p.role_level_in(Uuid::nil(), Uuid::now_v7()), None);
    }

    #[test]
    fn other_org_and_ungranted_env_are_invisible() {
        let env = Uuid::now_v7();
        let p = member(&[(env, Level::Admin)], None);
        assert_eq!(p.level_in(Uuid::now_v7(), env), None);
        assert_eq!(p.level_in(Uuid::nil(), Uuid::now_v7()), None);
    }
}
