//! `AssayMcp`: the MCP server handler. Lists the tools a caller may use and runs tool calls
//! as that caller through the `ControlPlane` port.

use crate::caller::{self, ClientNames, McpCaller};
use crate::catalog::{Catalog, Ctx, failure};
use crate::config::AssayMcpConfig;
use crate::levels::listing_level;
use crate::progress::Progress;
use crate::step_up::{Precheck, Prechecked, StepUpSlot, scope_falls_short};
use assay_core::ports::ControlPlane;
use rmcp::ErrorData as McpError;
use rmcp::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, InitializeRequestParams,
    InitializeResult, JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
    ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

const INSTRUCTIONS: &str = "Assay runs test workflows (Testkube TestWorkflow YAML) and keeps their logs, artifacts and JUnit results. \
Typical flow: list_workflows → run_workflow with wait=true → on failure read the digest, then fetch_execution_logs or read_artifact. \
get_workflow_schema shows how to write a workflow. \
Wherever an executionId is asked, an execution name (<workflow>-<number>) works too. Lists return nextCursor; pass it as cursor for the next page.";

/// The MCP tool set over a control plane. Cheap to clone: the tool catalog is built once
/// and shared by every clone and every request.
#[derive(Clone)]
pub struct AssayMcp {
    inner: Arc<Inner>,
}

struct Inner {
    plane: Arc<dyn ControlPlane>,
    config: Arc<AssayMcpConfig>,
    catalog: Catalog,
    /// The caller when the transport provides none per request (stdio).
    fixed_caller: Option<McpCaller>,
    /// Client names from `initialize`, for stateless clients' later calls.
    client_names: ClientNames,
}

impl AssayMcp {
    /// A tool set whose callers come from each HTTP request (`McpCaller` in the request's
    /// extensions, inserted by the authenticating layer).
    pub fn new(plane: Arc<dyn ControlPlane>, config: AssayMcpConfig) -> Self {
        Self::build(plane, config, None)
    }

    /// A tool set with one caller for every request (stdio: the process's own credential).
    pub fn with_caller(
        plane: Arc<dyn ControlPlane>,
        config: AssayMcpConfig,
        caller: McpCaller,
    ) -> Self {
        Self::build(plane, config, Some(caller))
    }

    fn build(
        plane: Arc<dyn ControlPlane>,
        config: AssayMcpConfig,
        fixed_caller: Option<McpCaller>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                plane,
                config: Arc::new(config),
                catalog: Catalog::build(),
                fixed_caller,
                client_names: ClientNames::new(),
            }),
        }
    }

    /// Decides a `tools/call` before rmcp sees it when the credential's scope alone rules
    /// the tool out (see `crate::step_up`): runs the tool, whose own control-plane operation
    /// refuses (and audits) the call before doing anything. `announced`: the client info of
    /// the request's `_meta`, for the audit trail.
    pub(crate) async fn precheck(
        &self,
        parts: &http::request::Parts,
        tool: &str,
        arguments: JsonObject,
        announced: Option<Implementation>,
    ) -> Precheck {
        let Some(def) = self.inner.catalog.get(tool) else {
            return Precheck::Proceed;
        };
        let Some(caller) = caller::of_request(parts, announced, &self.inner.client_names) else {
            return Precheck::Proceed;
        };
        if !scope_falls_short(&caller.actor.principal, def.level) {
            return Precheck::Proceed;
        }
        let slot = StepUpSlot::default();
        let ctx = Ctx {
            plane: self.inner.plane.clone(),
            actor: caller.actor,
            env: caller.env,
            config: self.inner.config.clone(),
            progress: Progress::none(),
            cancel: CancellationToken::new(),
            step_up: Some(slot.clone()),
        };
        let result = (def.run)(ctx, arguments).await;
        match slot.needed() {
            Some(needed) => Precheck::StepUp(needed),
            None => Precheck::Refused(Prechecked {
                tool: tool.to_owned(),
                result,
            }),
        }
    }

    fn resolve(&self, context: &RequestContext<RoleServer>) -> Option<McpCaller> {
        caller::resolve(
            context,
            self.inner.fixed_caller.as_ref(),
            &self.inner.client_names,
        )
    }
}

impl ServerHandler for AssayMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "assay",
                self.inner.config.server_version.clone(),
            ))
            .with_instructions(INSTRUCTIONS)
    }

    /// rmcp's own handshake, after noting the client's name: a stateless client names
    /// itself only here, and its later calls are audited with that name (`ClientNames`).
    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        if let Some(parts) = context.extensions.get::<http::request::Parts>() {
            self.inner
                .client_names
                .remember(parts, &request.client_info);
        }
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let caller = self.resolve(&context).ok_or_else(unauthenticated)?;
        let level = listing_level(&caller.actor.principal, &caller.env);
        Ok(ListToolsResult::with_all_items(
            self.inner.catalog.listing(level),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let Some(def) = self.inner.catalog.get(&request.name) else {
            return Err(McpError::invalid_params(
                format!("unknown tool {:?}; call tools/list", request.name),
                None,
            ));
        };
        let parts = context.extensions.get::<http::request::Parts>();
        // Decided before rmcp saw the request (and audited then): answer, do not call again.
        if let Some(decided) = parts
            .and_then(|p| p.extensions.get::<Prechecked>())
            .filter(|d| d.tool == request.name)
        {
            return Ok(decided.result.clone().into());
        }
        let Some(caller) = self.resolve(&context) else {
            return Ok(failure("Not authenticated: this request carries no identity.").into());
        };
        let ctx = Ctx {
            plane: self.inner.plane.clone(),
            actor: caller.actor,
            env: caller.env,
            config: self.inner.config.clone(),
            progress: Progress::new(context.peer.clone(), context.meta.get_progress_token()),
            cancel: context.ct.clone(),
            step_up: parts
                .and_then(|p| p.extensions.get::<StepUpSlot>())
                .cloned(),
        };
        let args = request.arguments.unwrap_or_default();
        Ok((def.run)(ctx, args).await.into())
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.inner.catalog.get(name).map(|d| d.tool.clone())
    }
}

fn unauthenticated() -> McpError {
    McpError::invalid_request("unauthenticated: this request carries no identity", None)
}
