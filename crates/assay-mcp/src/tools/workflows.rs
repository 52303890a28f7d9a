//! Workflows: list, read, write, delete, metrics.

use crate::args::opt_u64;
use crate::catalog::{Ctx, Effect, Meta, Render, ToolDef, define};
use crate::errors::ToolError;
use crate::tools::page_size;
use crate::views::{HealthView, LatestView, WorkflowItem, human_ms, ts};
use assay_core::page::PageRequest;
use assay_core::workflow::{WorkflowDetail, WorkflowFilter};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub(crate) fn tools() -> Vec<ToolDef> {
    vec![
        define(
            Meta {
                name: "list_workflows",
                title: "List workflows",
                description: "Workflows with health and latest execution.",
                effect: Effect::ReadOnly,
                open_world: false,
            },
            list,
        ),
        define(
            Meta {
                name: "get_workflow",
                title: "Get workflow",
                description: "A workflow with health and parsed definition.",
                effect: Effect::ReadOnly,
                open_world: false,
            },
            get,
        ),
        define(
            Meta {
                name: "get_workflow_definition",
                title: "Workflow YAML",
                description: "A workflow's YAML as submitted.",
                effect: Effect::ReadOnly,
                open_world: false,
            },
            definition,
        ),
        define(
            Meta {
                name: "get_workflow_metrics",
                title: "Workflow metrics",
                description: "Pass rate, status counts, duration percentiles.",
                effect: Effect::ReadOnly,
                open_world: false,
            },
            metrics,
        ),
        define(
            Meta {
                name: "create_workflow",
                title: "Create workflow",
                description: "Create a workflow from TestWorkflow YAML (format: get_workflow_schema).",
                effect: Effect::Additive,
                open_world: false,
            },
            create,
        ),
        define(
            Meta {
                name: "update_workflow",
                title: "Update workflow",
                description: "Replace a workflow's YAML (same metadata.name).",
                effect: Effect::Overwrites,
                open_world: false,
            },
            update,
        ),
        define(
            Meta {
                name: "delete_workflow",
                title: "Delete workflow",
                description: "Delete a workflow. Its past executions stay.",
                effect: Effect::Overwrites,
                open_world: false,
            },
            delete,
        ),
    ]
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListArgs {
    /// Label selector k=v,k2!=v2
    #[serde(default)]
    pub selector: Option<String>,
    /// Name/description substring
    #[serde(default)]
    pub text_search: Option<String>,
    #[serde(default, deserialize_with = "opt_u64")]
    #[schemars(range(min = 1, max = 100))]
    pub page_size: Option<u64>,
    #[serde(default)]
    pub cursor: Option<String>,
}

impl ListArgs {
    pub(crate) fn filter(&self) -> (WorkflowFilter, PageRequest) {
        (
            WorkflowFilter {
                selector: self.selector.clone().filter(|s| !s.trim().is_empty()),
                search: self.text_search.clone().filter(|s| !s.trim().is_empty()),
            },
            PageRequest {
                limit: Some(page_size(self.page_size)),
                cursor: self.cursor.clone().filter(|s| !s.is_empty()),
            },
        )
    }
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WorkflowList {
    pub total: u64,
    pub workflows: Vec<WorkflowItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl Render for WorkflowList {
    fn render(&self) -> String {
        render_list("workflows", self.total, &self.workflows, &self.next_cursor)
    }
}

pub(crate) fn render_list(
    what: &str,
    total: u64,
    items: &[WorkflowItem],
    next: &Option<String>,
) -> String {
    let mut out = format!("{} of {total} {what}", items.len());
    for w in items {
        let _ = write!(out, "\n- {}", w.line());
    }
    if let Some(c) = next {
        let _ = write!(out, "\nMore: cursor={c}");
    }
    out
}

async fn list(ctx: Ctx, args: ListArgs) -> Result<WorkflowList, ToolError> {
    let (filter, page) = args.filter();
    let page = ctx
        .plane
        .list_workflows(&ctx.actor, &ctx.env, &filter, &page)
        .await?;
    Ok(WorkflowList {
        total: page.total,
        workflows: page.items.iter().map(WorkflowItem::from).collect(),
        next_cursor: page.next_cursor,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NameArgs {
    pub workflow_name: String,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WorkflowInfo {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    pub updated: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest: Option<LatestView>,
    /// The document as JSON (canonical form).
    pub definition: serde_json::Value,
}

impl Render for WorkflowInfo {
    fn render(&self) -> String {
        let mut out = self.name.clone();
        if !self.description.is_empty() {
            let _ = write!(out, " — {}", self.description);
        }
        if let Some(l) = &self.latest {
            let _ = write!(out, "\nLatest: {} {} ({})", l.name, l.status, l.queued_at);
        }
        if let Some(h) = &self.health {
            let _ = write!(
                out,
                "\nHealth: pass rate {:.0}%, flip rate {:.0}% over {} executions",
                h.pass_rate * 100.0,
                h.flip_rate * 100.0,
                h.executions
            );
        }
        let _ = write!(out, "\nDefinition: {}", self.definition);
        out
    }
}

async fn get(ctx: Ctx, args: NameArgs) -> Result<WorkflowInfo, ToolError> {
    let w = ctx
        .plane
        .get_workflow(&ctx.actor, &ctx.env, &args.workflow_name)
        .await?;
    Ok(info(w))
}

fn info(w: WorkflowDetail) -> WorkflowInfo {
    let s = &w.summary;
    WorkflowInfo {
        name: s.name.clone(),
        description: s.description.clone(),
        labels: s.labels.clone(),
        updated: ts(s.updated_at),
        health: s.health.as_ref().map(HealthView::from),
        latest: s.last_execution.as_ref().map(LatestView::from),
        definition: w.definition,
    }
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Definition {
    pub name: String,
    pub yaml: String,
}

impl Render for Definition {
    fn render(&self) -> String {
        self.yaml.clone()
    }
}

async fn definition(ctx: Ctx, args: NameArgs) -> Result<Definition, ToolError> {
    let w = ctx
        .plane
        .get_workflow(&ctx.actor, &ctx.env, &args.workflow_name)
        .await?;
    Ok(Definition {
        name: w.summary.name,
        yaml: w.source,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MetricsArgs {
    pub workflow_name: String,
    /// Default 50
    #[serde(default, deserialize_with = "opt_u64")]
    #[schemars(range(min = 1, max = 500))]
    pub last_n: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MetricsView {
    #[serde(skip)]
    #[schemars(skip)]
    pub workflow_name: String,
    pub executions: u64,
    pub pass_rate: f64,
    pub by_status: BTreeMap<String, u64>,
    /// Duration percentiles in milliseconds: p50, p90, p95, p99.
    pub duration_ms: BTreeMap<String, i64>,
}

impl Render for MetricsView {
    fn render(&self) -> String {
        let counts: Vec<String> = self
            .by_status
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let durations: Vec<String> = ["p50", "p90", "p95", "p99"]
            .iter()
            .filter_map(|p| {
                self.duration_ms
                    .get(*p)
                    .map(|ms| format!("{p} {}", human_ms(*ms)))
            })
            .collect();
        format!(
            "{}: {} executions, pass rate {:.0}% ({}); duration {}",
            self.workflow_name,
            self.executions,
            self.pass_rate * 100.0,
            counts.join(", "),
            durations.join(" "),
        )
    }
}

async fn metrics(ctx: Ctx, args: MetricsArgs) -> Result<MetricsView, ToolError> {
    let last_n = args
        .last_n
        .map(|n| u32::try_from(n.min(500)).unwrap_or(500))
        .unwrap_or(50)
        .max(1);
    let m = ctx
        .plane
        .workflow_metrics(&ctx.actor, &ctx.env, &args.workflow_name, last_n)
        .await?;
    Ok(MetricsView {
        workflow_name: m.workflow,
        executions: m.executions,
        pass_rate: m.pass_rate,
        by_status: m.by_status,
        duration_ms: [
            ("p50".to_owned(), m.duration.p50_ms),
            ("p90".to_owned(), m.duration.p90_ms),
            ("p95".to_owned(), m.duration.p95_ms),
            ("p99".to_owned(), m.duration.p99_ms),
        ]
        .into(),
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct YamlArgs {
    pub yaml: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UpdateArgs {
    pub workflow_name: String,
    pub yaml: String,
}

/// A workflow or template just written.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Saved {
    /// "workflow" or "template" (the tool says which).
    #[serde(skip)]
    #[schemars(skip)]
    pub kind: String,
    pub name: String,
    pub updated: String,
    #[serde(skip)]
    #[schemars(skip)]
    pub verb: &'static str,
}

impl Saved {
    /// `verb`: "Created" or "Updated", for the text rendering.
    pub(crate) fn new(verb: &'static str, kind: &str, w: &WorkflowDetail) -> Self {
        let s = &w.summary;
        Self {
            verb,
            kind: kind.into(),
            name: s.name.clone(),
            updated: ts(s.updated_at),
        }
    }
}

impl Render for Saved {
    fn render(&self) -> String {
        let mut out = format!("{} {} {}.", self.verb, self.kind, self.name);
        if self.kind == "workflow" {
            out.push_str(" Run it with run_workflow.");
        }
        out
    }
}

async fn create(ctx: Ctx, args: YamlArgs) -> Result<Saved, ToolError> {
    let w = ctx
        .plane
        .create_workflow(&ctx.actor, &ctx.env, &args.yaml)
        .await?;
    Ok(Saved::new("Created", "workflow", &w))
}

async fn update(ctx: Ctx, args: UpdateArgs) -> Result<Saved, ToolError> {
    let w = ctx
        .plane
        .update_workflow(&ctx.actor, &ctx.env, &args.workflow_name, &args.yaml)
        .await?;
    Ok(Saved::new("Updated", "workflow", &w))
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Deleted {
    pub name: String,
    pub deleted: bool,
}

impl Render for Deleted {
    fn render(&self) -> String {
        format!("Deleted workflow {}.", self.name)
    }
}

async fn delete(ctx: Ctx, args: NameArgs) -> Result<Deleted, ToolError> {
    ctx.plane
        .delete_workflow(&ctx.actor, &ctx.env, &args.workflow_name)
        .await?;
    Ok(Deleted {
        name: args.workflow_name,
        deleted: true,
    })
}
