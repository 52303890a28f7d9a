//! Stored workflows and templates. The parsed document model lives in `spec`;
//! records keep the YAML exactly as the user submitted it.

use crate::Timestamp;
use crate::execution::ExecutionStatus;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

pub type Labels = BTreeMap<String, String>;

/// `TestWorkflow` or `TestWorkflowTemplate`: both are stored the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    Workflow,
    Template,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Workflow => "workflow",
            ResourceKind::Template => "template",
        }
    }
}

/// A workflow or template as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowRecord {
    pub id: Uuid,
    pub env_id: Uuid,
    pub kind: ResourceKind,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub labels: Labels,
    /// The document exactly as submitted (YAML or JSON text).
    pub source: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: Timestamp,
}

/// Filters for listing workflows or templates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowFilter {
    /// Label selector: `key=value`, `key!=value`, `key` (exists), comma-separated (AND).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Case-insensitive substring of name or description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
}

/// Health over the recent executions of a workflow (Testkube's passRate/flipRate).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkflowHealth {
    /// Finished executions the figures are computed over.
    pub executions: u32,
    /// Passed / finished, 0.0–1.0.
    pub pass_rate: f64,
    /// Status changes between consecutive finished executions / (finished − 1).
    pub flip_rate: f64,
    /// `pass_rate × (1 − flip_rate)`.
    pub overall_health: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastExecution {
    pub id: Uuid,
    pub name: String,
    pub status: ExecutionStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub queued_at: Timestamp,
}

/// What list and get return for a workflow or template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowSummary {
    pub id: Uuid,
    pub kind: ResourceKind,
    pub name: String,
    pub description: String,
    pub labels: Labels,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: Timestamp,
    /// Only for workflows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<WorkflowHealth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_execution: Option<LastExecution>,
}

/// A workflow or template with its definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowDetail {
    #[serde(flatten)]
    pub summary: WorkflowSummary,
    /// The document as submitted.
    pub source: String,
    /// The parsed document as JSON (for queries and schema-aware clients).
    pub definition: serde_json::Value,
}

/// Result of create-or-update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyResult {
    pub created: bool,
    pub workflow: WorkflowDetail,
}
