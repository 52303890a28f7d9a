//! The tool catalog: every tool's definition (name, schemas, annotations, level) and its
//! handler, built once per `AssayMcp` and shared by every request. `tools/list` answers are
//! precomputed per permission level, so listing costs a clone, not a rebuild.

use crate::config::AssayMcpConfig;
use crate::errors::ToolError;
use crate::levels::tool_level;
use crate::progress::Progress;
use crate::schema::{input_schema, output_schema};
use crate::step_up::StepUpSlot;
use assay_core::ports::ControlPlane;
use assay_core::{Actor, EnvRef, Level};
use futures::future::BoxFuture;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What a tool handler works with: the port, who is calling, where, and how to report
/// progress. Owned, so handlers are `'static` futures.
pub(crate) struct Ctx {
    pub plane: Arc<dyn ControlPlane>,
    pub actor: Actor,
    pub env: EnvRef,
    pub config: Arc<AssayMcpConfig>,
    pub progress: Progress,
    /// Cancelled when the client cancels the request.
    pub cancel: CancellationToken,
    /// Where a failure for want of OAuth scope is reported to the HTTP transport (absent
    /// on stdio and legacy SSE, which answer with the `isError` result).
    pub step_up: Option<StepUpSlot>,
}

/// A tool result's compact text rendering (the `content` the model reads when the client
/// does not pass `structuredContent` on).
pub(crate) trait Render {
    fn render(&self) -> String;
}

/// What a tool does to the world, mapped onto MCP's annotation hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    ReadOnly,
    /// Adds something new (a workflow, an execution).
    Additive,
    /// Replaces or removes something; calling again with the same arguments changes nothing more.
    Overwrites,
}

/// The static description of one tool.
pub(crate) struct Meta {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub effect: Effect,
    /// The tool reaches beyond Assay (runs user code that may touch other systems).
    pub open_world: bool,
}

type Handler = Arc<dyn Fn(Ctx, JsonObject) -> BoxFuture<'static, CallToolResult> + Send + Sync>;

pub(crate) struct ToolDef {
    pub tool: Tool,
    pub level: Level,
    pub run: Handler,
}

/// Defines a tool from its metadata and an async handler taking decoded arguments.
pub(crate) fn define<A, O, F, Fut>(meta: Meta, handler: F) -> ToolDef
where
    A: DeserializeOwned + JsonSchema + Send + 'static,
    O: Serialize + JsonSchema + Render + 'static,
    F: Fn(Ctx, A) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<O, ToolError>> + Send + 'static,
{
    let name = meta.name;
    // destructiveHint and idempotentHint only mean something when readOnlyHint is false
    // (MCP spec), so read-only tools leave them out: tools/list must stay small.
    let annotations = ToolAnnotations::with_title(meta.title).open_world(meta.open_world);
    let annotations = match meta.effect {
        Effect::ReadOnly => annotations.read_only(true),
        Effect::Additive => annotations
            .read_only(false)
            .destructive(false)
            .idempotent(false),
        Effect::Overwrites => annotations
            .read_only(false)
            .destructive(true)
            .idempotent(true),
    };
    let tool = Tool::new(meta.name, meta.description, Arc::new(input_schema::<A>()))
        .with_raw_output_schema(Arc::new(output_schema::<O>()))
        .with_annotations(annotations);
    let run: Handler = Arc::new(move |ctx: Ctx, args: JsonObject| {
        Box::pin(async move {
            let step_up = ctx.step_up.clone();
            let outcome = match serde_json::from_value::<A>(serde_json::Value::Object(args)) {
                Ok(args) => handler(ctx, args).await,
                Err(e) => Err(ToolError::Arguments(e.to_string())),
            };
            if let (
                Err(ToolError::Core(assay_core::Error::InsufficientScope { needed })),
                Some(slot),
            ) = (&outcome, &step_up)
            {
                slot.record(*needed);
            }
            match outcome {
                Ok(output) => success(&output, name),
                Err(e) => failure(&e.render(name)),
            }
        })
    });
    ToolDef {
        tool,
        level: tool_level(name),
        run,
    }
}

fn success<O: Serialize + Render>(output: &O, tool: &str) -> CallToolResult {
    match serde_json::to_value(output) {
        // Not `CallToolResult::structured`, which would also print the whole value as
        // text only for that text to be replaced by the rendering.
        Ok(value) => {
            let mut result = CallToolResult::success(vec![ContentBlock::text(output.render())]);
            result.structured_content = Some(value);
            result
        }
        Err(e) => failure(
            &ToolError::Core(assay_core::Error::internal(format!(
                "serializing the {tool} result: {e}"
            )))
            .render(tool),
        ),
    }
}

pub(crate) fn failure(text: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

/// Every tool, indexed by name, with the listing per level precomputed.
pub(crate) struct Catalog {
    tools: Vec<ToolDef>,
    by_name: HashMap<String, usize>,
    /// `listings[level as usize]`: the tools a caller with that level sees, in catalog order.
    listings: [Vec<Tool>; 4],
}

impl Catalog {
    pub(crate) fn build() -> Self {
        Self::from_defs(crate::tools::all())
    }

    fn from_defs(tools: Vec<ToolDef>) -> Self {
        let by_name = tools
            .iter()
            .enumerate()
            .map(|(i, d)| (d.tool.name.to_string(), i))
            .collect();
        let listing = |level: Level| -> Vec<Tool> {
            tools
                .iter()
                .filter(|d| d.level <= level)
                .map(|d| d.tool.clone())
                .collect()
        };
        let listings = [
            listing(Level::Read),
            listing(Level::Run),
            listing(Level::Write),
            listing(Level::Admin),
        ];
        Self {
            tools,
            by_name,
            listings,
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&ToolDef> {
        self.by_name.get(name).and_then(|&i| self.tools.get(i))
    }

    /// The tools a caller whose best level is `level` may use (none for `None`).
    pub(crate) fn listing(&self, level: Option<Level>) -> Vec<Tool> {
        match level {
            None => Vec::new(),
            Some(l) => self.listings[level_index(l)].clone(),
        }
    }

    pub(crate) fn defs(&self) -> &[ToolDef] {
        &self.tools
    }

    /// Names whose level is missing from the table (must be empty; tested).
    #[cfg(test)]
    pub(crate) fn undeclared(&self) -> Vec<String> {
        self.tools
            .iter()
            .filter(|d| crate::levels::declared_level(&d.tool.name).is_none())
            .map(|d| d.tool.name.to_string())
            .collect()
    }
}

fn level_index(level: Level) -> usize {
    match level {
        Level::Read => 0,
        Level::Run => 1,
        Level::Write => 2,
        Level::Admin => 3,
    }
}
