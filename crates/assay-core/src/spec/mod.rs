//! The workflow document model (Testkube's `TestWorkflow` shape): parsing, validation,
//! templates, `{{config.x}}` expressions and expansion into an `ExecutionPlan`.
//!
//! PUBLIC API CONTRACT (other crates code against exactly these signatures):
//! - `MAX_DOCUMENT_BYTES`
//! - `parse(source, expected_kind) -> Result<WorkflowDocument>`
//! - `WorkflowDocument::{kind, name, description, labels}` fields, `to_json()`,
//!   `template_names()`, `execution_tags()`
//! - `build_plan(workflow, templates, config) -> Result<BuiltPlan>`

use crate::error::{Error, Result};
use crate::execution::{ConfigValue, ExecutionPlan};
use crate::workflow::{Labels, ResourceKind};
use std::collections::BTreeMap;

/// Largest document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// A parsed, validated `TestWorkflow` or `TestWorkflowTemplate`.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowDocument {
    pub kind: ResourceKind,
    pub name: String,
    pub description: String,
    pub labels: Labels,
}

impl WorkflowDocument {
    /// The document as JSON (for queries and the API's `definition` field).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Names of templates referenced by `use:` anywhere in the document.
    pub fn template_names(&self) -> Vec<String> {
        Vec::new()
    }

    /// `spec.execution.tags`.
    pub fn execution_tags(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
}

/// A plan plus the config as it is recorded on the execution (sensitive values masked).
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltPlan {
    pub plan: ExecutionPlan,
    pub config: BTreeMap<String, ConfigValue>,
}

/// Parses and validates a document. Errors: `TooLarge` above `MAX_DOCUMENT_BYTES`,
/// `Invalid` with one `FieldError` per problem (path like `spec.steps[2].timeout`).
pub fn parse(_source: &str, _expected: ResourceKind) -> Result<WorkflowDocument> {
    Err(Error::Internal(
        "workflow parsing is not implemented yet".into(),
    ))
}

/// Validates `config` against the workflow's parameters (type, enum, required, unknown
/// names), resolves `use:` from `templates` (every transitively referenced template must
/// be present, keyed by name), substitutes `{{config.x}}` (shell-quoted inside scripts)
/// and returns the plan to execute.
pub fn build_plan(
    _workflow: &WorkflowDocument,
    _templates: &BTreeMap<String, WorkflowDocument>,
    _config: &BTreeMap<String, serde_json::Value>,
) -> Result<BuiltPlan> {
    Err(Error::Internal(
        "plan building is not implemented yet".into(),
    ))
}
