//! Running, waiting on, aborting and tagging executions.

use crate::args::{opt_bool, opt_u64, string_list, string_map};
use crate::catalog::{Ctx, Effect, Meta, Render, ToolDef, define};
use crate::digest::digest;
use crate::errors::ToolError;
use crate::tools::wait::{self, MAX_EXECUTIONS, wait_all};
use crate::views::{ExecutionInfo, ExecutionItem};
use assay_core::execution::RunRequest;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub(crate) fn tools() -> Vec<ToolDef> {
    vec![
        define(
            Meta {
                name: "run_workflow",
                title: "Run workflow",
                description: "Start an execution. wait=true returns the final result with a failure digest.",
                effect: Effect::Additive,
                open_world: true,
            },
            run,
        ),
        define(
            Meta {
                name: "wait_for_executions",
                title: "Wait for executions",
                description: "Wait until executions finish or time out, reporting progress.",
                effect: Effect::ReadOnly,
                open_world: false,
            },
            wait_for,
        ),
        define(
            Meta {
                name: "abort_workflow_execution",
                title: "Abort execution",
                description: "Abort a queued or running execution.",
                effect: Effect::Overwrites,
                open_world: false,
            },
            abort,
        ),
        define(
            Meta {
                name: "update_execution_tags",
                title: "Set execution tags",
                description: "Replace an execution's tags ({} clears them).",
                effect: Effect::Overwrites,
                open_world: false,
            },
            tags,
        ),
    ]
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct RunArgs {
    workflow_name: String,
    /// spec.config values
    #[serde(default)]
    config: BTreeMap<String, serde_json::Value>,
    #[serde(default, deserialize_with = "string_map")]
    tags: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "opt_bool")]
    wait: Option<bool>,
    /// Default 60
    #[serde(default, deserialize_with = "opt_u64")]
    #[schemars(range(min = 1, max = 600))]
    timeout_seconds: Option<u64>,
}

async fn run(ctx: Ctx, args: RunArgs) -> Result<ExecutionInfo, ToolError> {
    let request = RunRequest {
        config: args.config,
        tags: args.tags,
    };
    let started = ctx
        .plane
        .run_workflow(&ctx.actor, &ctx.env, &args.workflow_name, &request)
        .await?;
    if args.wait != Some(true) {
        return Ok(ExecutionInfo::new(&started));
    }
    let limit = wait::timeout(args.timeout_seconds, None);
    let outcome = wait_all(&ctx, &[started.id.to_string()], limit).await?;
    let Some(last) = outcome.executions.first() else {
        return Ok(ExecutionInfo::new(&started));
    };
    let mut info = ExecutionInfo::new(last);
    info.digest = digest(&ctx, last).await;
    if outcome.timed_out {
        info.timed_out = Some(true);
    }
    Ok(info)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct WaitArgs {
    #[serde(deserialize_with = "string_list")]
    execution_ids: Vec<String>,
    /// Default 60
    #[serde(default, deserialize_with = "opt_u64")]
    #[schemars(range(min = 1, max = 600))]
    timeout_seconds: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct WaitResult {
    executions: Vec<ExecutionItem>,
    all_finished: bool,
}

impl Render for WaitResult {
    fn render(&self) -> String {
        let mut out = if self.all_finished {
            "All finished:".to_owned()
        } else {
            "Timed out; not all finished (call again to keep waiting):".to_owned()
        };
        for e in &self.executions {
            let _ = write!(out, "\n- {}", e.line());
        }
        out
    }
}

/// Testkube's `timeoutMinutes` is accepted too, without being advertised (the schema
/// stays small); `timeoutSeconds` wins when both are given.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacyTimeout {
    #[serde(default, deserialize_with = "opt_u64")]
    timeout_minutes: Option<u64>,
}

async fn wait_for(ctx: Ctx, args: WaitArgsWithLegacy) -> Result<WaitResult, ToolError> {
    let WaitArgsWithLegacy { args, legacy } = args;
    if args.execution_ids.is_empty() {
        return Err(ToolError::message(
            "executionIds is empty: pass the IDs (or names) of the executions to wait for.",
        ));
    }
    if args.execution_ids.len() > MAX_EXECUTIONS {
        return Err(ToolError::message(format!(
            "At most {MAX_EXECUTIONS} executions per wait; split the list."
        )));
    }
    let limit = wait::timeout(args.timeout_seconds, legacy.timeout_minutes);
    let outcome = wait_all(&ctx, &args.execution_ids, limit).await?;
    Ok(WaitResult {
        all_finished: !outcome.timed_out,
        executions: outcome.executions.iter().map(ExecutionItem::from).collect(),
    })
}

/// The advertised arguments plus the silently accepted legacy ones.
#[derive(Debug, Deserialize)]
struct WaitArgsWithLegacy {
    #[serde(flatten)]
    args: WaitArgs,
    #[serde(flatten)]
    legacy: LegacyTimeout,
}

impl JsonSchema for WaitArgsWithLegacy {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        WaitArgs::schema_name()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        WaitArgs::json_schema(generator)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct ExecutionArgs {
    execution_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Aborted {
    execution: ExecutionItem,
}

impl Render for Aborted {
    fn render(&self) -> String {
        format!("Abort requested: {}", self.execution.line())
    }
}

async fn abort(ctx: Ctx, args: ExecutionArgs) -> Result<Aborted, ToolError> {
    let e = ctx
        .plane
        .abort_execution(&ctx.actor, &ctx.env, &args.execution_id)
        .await?;
    Ok(Aborted {
        execution: ExecutionItem::from(&e),
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct TagArgs {
    execution_id: String,
    /// String values
    #[serde(deserialize_with = "string_map")]
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Tagged {
    id: String,
    name: String,
    tags: BTreeMap<String, String>,
}

impl Render for Tagged {
    fn render(&self) -> String {
        let tags: Vec<String> = self.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("Tags of {} are now: {}", self.name, tags.join(", "))
    }
}

async fn tags(ctx: Ctx, args: TagArgs) -> Result<Tagged, ToolError> {
    let e = ctx
        .plane
        .update_execution_tags(&ctx.actor, &ctx.env, &args.execution_id, &args.tags)
        .await?;
    Ok(Tagged {
        id: e.id.to_string(),
        name: e.name,
        tags: e.tags,
    })
}
