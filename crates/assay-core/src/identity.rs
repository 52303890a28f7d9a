//! Users, memberships and API tokens as stored. (The Identity issue grows this module.)

use crate::Timestamp;
use crate::permission::Level;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    /// Argon2id PHC string; `None` for SSO-only users.
    #[serde(default, skip_serializing)]
    pub password_hash: Option<String>,
    #[serde(default)]
    pub disabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrgRole {
    Owner,
    Admin,
    Member,
}

impl OrgRole {
    pub fn as_str(self) -> &'static str {
        match self {
            OrgRole::Owner => "owner",
            OrgRole::Admin => "admin",
            OrgRole::Member => "member",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Membership {
    pub org_id: Uuid,
    pub user_id: Uuid,
    pub role: OrgRole,
    /// Environment grants (only meaningful for members).
    #[serde(default)]
    pub grants: BTreeMap<Uuid, Level>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApiTokenKind {
    Admin,
    Member,
    OrgRead,
}

impl ApiTokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiTokenKind::Admin => "admin",
            ApiTokenKind::Member => "member",
            ApiTokenKind::OrgRead => "org-read",
        }
    }
}

/// An API token as stored: only the SHA-256 of the secret is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiTokenRecord {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub kind: ApiTokenKind,
    #[serde(default)]
    pub grants: BTreeMap<Uuid, Level>,
    /// Hex SHA-256 of the secret.
    #[serde(skip_serializing)]
    pub secret_hash: String,
    pub created_by: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<Timestamp>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<Timestamp>,
    #[serde(default)]
    pub last_used_ip: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<Timestamp>,
    /// After a rotation with a grace period: the old secret's hash, accepted until
    /// `previous_valid_until`. Never serialized.
    #[serde(default, skip_serializing)]
    pub previous_secret_hash: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub previous_valid_until: Option<Timestamp>,
}

/// Longest grace period a rotation may leave the old secret working.
pub const MAX_ROTATION_GRACE_SECS: u64 = 24 * 3600;
/// Expiry of a new API token when none is asked for.
pub const DEFAULT_TOKEN_EXPIRY_DAYS: u32 = 90;

/// What a caller asks for when creating an API token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewApiToken {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub kind: ApiTokenKind,
    /// Environment (ID or slug) → level; only for `member` tokens.
    #[serde(default)]
    pub grants: BTreeMap<String, Level>,
    /// Days until expiry; `None` = `DEFAULT_TOKEN_EXPIRY_DAYS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_days: Option<u32>,
    /// No expiry at all; must be asked for explicitly and is flagged in listings.
    #[serde(default)]
    pub never_expires: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenState {
    Active,
    Expired,
    Revoked,
}

/// An API token as shown to people: never the secret or its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiTokenInfo {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    pub description: String,
    pub kind: ApiTokenKind,
    /// Environment slug → level.
    pub grants: BTreeMap<String, Level>,
    pub created_by: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<Timestamp>,
    /// True when the token has no expiry (flagged in listings).
    pub never_expires: bool,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<Timestamp>,
    #[serde(default)]
    pub last_used_ip: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<Timestamp>,
    /// Until when the pre-rotation secret still works, if a grace period was given.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub previous_valid_until: Option<Timestamp>,
    pub state: TokenState,
}

/// A token just created or rotated: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedApiToken {
    pub token: ApiTokenInfo,
    pub secret: String,
}

/// A member of an organization as shown to admins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberInfo {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: OrgRole,
    /// Environment slug → level (members only).
    pub grants: BTreeMap<String, Level>,
    pub disabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
}

/// Adding someone to an organization (creating the local account if needed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewMember {
    pub email: String,
    #[serde(default)]
    pub display_name: String,
    /// Initial password for a new local account (hashed with Argon2id; never stored in
    /// clear, never logged or audited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    pub role: OrgRole,
    /// Environment (ID or slug) → level.
    #[serde(default)]
    pub grants: BTreeMap<String, Level>,
}

/// A change to a membership; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemberUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<OrgRole>,
    /// Replaces all grants. Environment (ID or slug) → level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<BTreeMap<String, Level>>,
    /// Disabling ends every token and grant of the user at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// Who the caller is and where it may act: the answer to `GET /v1/me` (`assay whoami`,
/// and the organization/environment choice after `assay login`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// `user` or `api_token`.
    pub kind: crate::actor::PrincipalKind,
    /// The user ID or the API token ID.
    pub id: Uuid,
    pub display_name: String,
    /// Users only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub auth_method: crate::actor::AuthMethod,
    /// Every organization the caller may act in (an API token: its own), ordered by
    /// organization ID.
    pub memberships: Vec<IdentityMembership>,
}

/// The caller in one organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityMembership {
    pub organization: OrgSummary,
    /// The user's role; `None` for API tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<OrgRole>,
    /// The principal as it is in this organization (access, scope cap, method,
    /// credential): what `assay mcp serve` acts as.
    pub principal: crate::actor::Principal,
    /// The environments the caller can reach, with its effective level (role capped by
    /// the credential's scope), ordered by slug. Environments it cannot reach are absent.
    pub environments: Vec<EnvironmentAccess>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgSummary {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
}

impl OrgSummary {
    /// Whether `id_or_slug` names this organization (as `--org` and `ASSAY_ORG` may).
    pub fn is(&self, id_or_slug: &str) -> bool {
        self.slug == id_or_slug || self.id.to_string() == id_or_slug
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentAccess {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub level: Level,
}
