//! The workflow document model (Testkube's `TestWorkflow` shape): parsing, validation,
//! templates, `{{config.x}}` expressions and expansion into an `ExecutionPlan`.
//!
//! PUBLIC API CONTRACT (other crates code against exactly these signatures):
//! - `MAX_DOCUMENT_BYTES`
//! - `parse(source, expected_kind) -> Result<WorkflowDocument>`
//! - `WorkflowDocument::{kind, name, description, labels}` fields, `to_json()`,
//!   `template_names()`, `execution_tags()`
//! - `build_plan(workflow, templates, config) -> Result<BuiltPlan>`
//!
//! Also public: `WorkflowDocument::{spec(), parameters()}` (the typed document, e.g. to list
//! a workflow's parameters), `mask_secrets` / `masked_plan` (what may be logged or stored),
//! `shell_quote`, the `duration` helpers and the limits below.
//!
//! Layout: `document` (serde types), `parse` (YAML with budgets), `validate` (semantic
//! checks), `expr` (`{{ }}` expressions), `shell` (quoting values into scripts), `config`
//! (parameter values), `duration` (Go durations), `plan` (templates + plan).

mod config;
pub mod document;
pub mod duration;
mod expr;
mod parse;
pub mod plan;
mod shell;
mod validate;

#[cfg(test)]
mod tests;

use crate::error::{Error, Result};
use crate::execution::{ConfigValue, ExecutionPlan};
use crate::workflow::{Labels, ResourceKind};
use document::{API_VERSION, Metadata, Parameter, Spec};
use std::collections::{BTreeMap, BTreeSet};

pub use config::{MAX_PARAMETERS, MAX_VALUE_BYTES};
pub use parse::{MAX_YAML_ALIASES, MAX_YAML_DEPTH, MAX_YAML_NODES};
pub use plan::{
    DEFAULT_MOUNT_PATH, DEFAULT_SHELL, MAX_TEMPLATE_EXPANSIONS, mask_secrets, masked_plan,
};
pub use shell::quote as shell_quote;

/// Largest document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Most steps in a document, and in a plan once templates are expanded.
pub const MAX_STEPS: usize = 500;
/// Deepest nesting of steps (a top-level step is at depth 1).
pub const MAX_STEP_DEPTH: usize = 16;
/// Deepest chain of templates using templates.
pub const MAX_TEMPLATE_DEPTH: usize = 10;
/// Longest step name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// A parsed, validated `TestWorkflow` or `TestWorkflowTemplate`.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowDocument {
    pub kind: ResourceKind,
    pub name: String,
    pub description: String,
    pub labels: Labels,
    spec: Spec,
}

impl WorkflowDocument {
    /// The document as JSON (for queries and the API's `definition` field), in canonical
    /// form: `apiVersion` and `kind` always present, the description in
    /// `metadata.description`, `run: "x"` as `run: {shell: x}`, env as `[{name, value}]`,
    /// file modes as octal strings. Parsing it gives back an equal document.
    pub fn to_json(&self) -> serde_json::Value {
        let metadata = Metadata {
            name: self.name.clone(),
            labels: self.labels.clone(),
            description: (!self.description.is_empty()).then(|| self.description.clone()),
        };
        serde_json::json!({
            "apiVersion": API_VERSION,
            "kind": validate::kind_name(self.kind),
            "metadata": serde_json::to_value(&metadata).unwrap_or(serde_json::Value::Null),
            "spec": serde_json::to_value(&self.spec).unwrap_or(serde_json::Value::Null),
        })
    }

    /// Names of templates referenced by `use:` (or a step's `template:`) anywhere in the
    /// document, sorted and without repeats. Only direct references: the caller fetches
    /// those templates and asks each of them in turn.
    pub fn template_names(&self) -> Vec<String> {
        fn steps(list: &[document::Step], out: &mut BTreeSet<String>) {
            for s in list {
                out.extend(s.template_refs().map(|r| r.name.clone()));
                steps(&s.steps, out);
            }
        }
        let mut out: BTreeSet<String> = self.spec.uses.iter().map(|r| r.name.clone()).collect();
        steps(&self.spec.setup, &mut out);
        steps(&self.spec.steps, &mut out);
        steps(&self.spec.after, &mut out);
        out.into_iter().collect()
    }

    /// `spec.execution.tags`.
    pub fn execution_tags(&self) -> BTreeMap<String, String> {
        self.spec
            .execution
            .as_ref()
            .map(|e| e.tags.clone())
            .unwrap_or_default()
    }

    /// The typed `spec`.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The parameters (`spec.config`), by name.
    pub fn parameters(&self) -> &BTreeMap<String, Parameter> {
        &self.spec.config
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
/// YAML syntax and type errors stop at the first one (with its line and column);
/// semantic problems are all reported together.
pub fn parse(source: &str, expected: ResourceKind) -> Result<WorkflowDocument> {
    if source.len() > MAX_DOCUMENT_BYTES {
        return Err(Error::TooLarge(format!(
            "the document is {} bytes; the limit is {MAX_DOCUMENT_BYTES} bytes",
            source.len()
        )));
    }
    let raw = parse::load(source)?;
    let errors = validate::validate(&raw, expected);
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    let description = raw
        .metadata
        .description
        .or(raw.description)
        .unwrap_or_default();
    Ok(WorkflowDocument {
        kind: expected,
        name: raw.metadata.name,
        description,
        labels: raw.metadata.labels,
        spec: raw.spec,
    })
}

/// Validates `config` against the workflow's parameters (type, enum, required, unknown
/// names), resolves `use:` from `templates` (every transitively referenced template must
/// be present, keyed by name), substitutes `{{config.x}}` (shell-quoted inside scripts)
/// and returns the plan to execute. See the `plan` module for the precise semantics.
pub fn build_plan(
    workflow: &WorkflowDocument,
    templates: &BTreeMap<String, WorkflowDocument>,
    config: &BTreeMap<String, serde_json::Value>,
) -> Result<BuiltPlan> {
    plan::build(workflow, templates, config)
}
