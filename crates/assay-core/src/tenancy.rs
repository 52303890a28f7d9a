//! Organizations contain environments; every resource belongs to one environment.

use crate::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    pub id: Uuid,
    /// Human identifier usable in URLs (DNS label).
    pub slug: String,
    pub name: String,
    /// How long audit events are kept (minimum 1).
    #[serde(default = "default_audit_retention_days")]
    pub audit_retention_days: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub id: Uuid,
    pub org_id: Uuid,
    pub slug: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
}

/// DESIGN.md §5: audit events are kept 180 days unless an organization says otherwise.
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 180;

fn default_audit_retention_days() -> u32 {
    DEFAULT_AUDIT_RETENTION_DAYS
}

/// How a caller names an environment: organization and environment, each by ID or slug.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EnvRef {
    pub org: String,
    pub env: String,
}

impl EnvRef {
    pub fn new(org: impl Into<String>, env: impl Into<String>) -> Self {
        Self {
            org: org.into(),
            env: env.into(),
        }
    }
}

/// A DNS label: 1–63 chars of `[a-z0-9-]`, starting and ending alphanumeric.
/// Used for slugs and workflow/template names.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    use super::is_dns_label;

    #[test]
    fn dns_labels() {
        assert!(is_dns_label("smoke-test-1"));
        assert!(!is_dns_label(""));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label("a-"));
        assert!(!is_dns_label("Upper"));
        assert!(!is_dns_label("a_b"));
        assert!(!is_dns_label("../x"));
        assert!(!is_dns_label(&"a".repeat(64)));
    }
}
