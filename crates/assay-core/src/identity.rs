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
}
