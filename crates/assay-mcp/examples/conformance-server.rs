//! The MCP conformance fixture (`@modelcontextprotocol/conformance`, server suite) served
//! through Assay's own Streamable HTTP transport (`assay_mcp::streamable_http_service_for`,
//! configured exactly as the product configures it) and mounted the way the product mounts
//! it (an axum `route_service` behind the same request timeout). Only the handler differs:
//! it offers the fixed tool, resource and prompt names the suite calls, and needs no
//! credential, because the suite cannot send one.
//!
//! Run: `cargo run -p assay-mcp --example conformance-server [-- PORT]`; it prints
//! `listening on http://127.0.0.1:PORT/mcp` once it accepts connections.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The 2025-11-25 suite exercises sampling and logging, which rmcp marks deprecated (SEP-2577).
#![allow(deprecated)]

use assay_mcp::{McpHttpConfig, streamable_http_service_for};
use axum::Router;
use axum::http::StatusCode;
use rmcp::ErrorData as McpError;
use rmcp::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams, CompleteResult,
    CreateMessageRequestParams, ElicitRequestParams, GetPromptRequestParams, GetPromptResponse,
    GetPromptResult, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
    ListToolsResult, LoggingMessageNotificationParam, PaginatedRequestParams,
    ProgressNotificationParam, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    ServerCapabilities, ServerConfig, SetLevelRequestParams, SubscribeRequestParams, Tool,
    UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, RoleServer};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;

/// The product's MCP request timeout (assay-server `DEFAULT_MCP_REQUEST_TIMEOUT`).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(11 * 60);

/// A 1×1 PNG and a tiny WAV, base64: the suite checks type and MIME type, not pixels.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
const WAV: &str = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA=";

#[derive(Clone, Default)]
struct Fixture;

fn de<T: DeserializeOwned>(v: Value) -> Result<T, McpError> {
    serde_json::from_value(v).map_err(|e| McpError::internal_error(e.to_string(), None))
}

fn text_result(text: impl Into<String>) -> Value {
    json!({"content": [{"type": "text", "text": text.into()}]})
}

fn tools() -> Value {
    let empty = json!({"type": "object", "properties": {}});
    let tool = |name: &str, description: &str| json!({"name": name, "description": description, "inputSchema": empty});
    json!([
        tool("test_simple_text", "Returns simple text content"),
        tool("test_image_content", "Returns image content"),
        tool("test_audio_content", "Returns audio content"),
        tool("test_embedded_resource", "Returns an embedded resource"),
        tool("test_multiple_content_types", "Returns text, image and resource content"),
        tool("test_tool_with_logging", "Sends log messages while running"),
        tool("test_tool_with_progress", "Reports progress while running"),
        tool("test_error_handling", "Always returns an error result"),
        {"name": "test_sampling", "description": "Asks the client's LLM",
         "inputSchema": {"type": "object", "properties": {"prompt": {"type": "string"}}, "required": ["prompt"]}},
        {"name": "test_elicitation", "description": "Asks the user for input",
         "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}},
        tool("test_elicitation_sep1034_defaults", "Elicitation with default values"),
        tool("test_elicitation_sep1330_enums", "Elicitation with every enum form"),
        {"name": "json_schema_2020_12_tool", "description": "Declares a JSON Schema 2020-12 input schema",
         "inputSchema": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "$defs": {"address": {"type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
            "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
            "additionalProperties": false}},
    ])
}

async fn log(ctx: &RequestContext<RoleServer>, text: &str) {
    let param: Result<LoggingMessageNotificationParam, _> =
        de(json!({"level": "info", "logger": "conformance", "data": text}));
    if let Ok(param) = param {
        let _ = ctx.peer.notify_logging_message(param).await;
    }
}

impl Fixture {
    async fn call(
        &self,
        name: &str,
        args: serde_json::Map<String, Value>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Value, McpError> {
        let embedded = json!({"type": "resource", "resource": {"uri": "test://embedded-resource",
            "mimeType": "text/plain", "text": "This is an embedded resource content."}});
        let image = json!({"type": "image", "data": PNG, "mimeType": "image/png"});
        Ok(match name {
            "test_simple_text" => text_result("This is a simple text response for testing."),
            "test_image_content" => json!({"content": [image]}),
            "test_audio_content" => {
                json!({"content": [{"type": "audio", "data": WAV, "mimeType": "audio/wav"}]})
            }
            "test_embedded_resource" => json!({"content": [embedded]}),
            "test_multiple_content_types" => json!({"content": [
                {"type": "text", "text": "Multiple content types test:"}, image, embedded]}),
            "test_tool_with_logging" => {
                for line in [
                    "Tool execution started",
                    "Tool processing data",
                    "Tool execution completed",
                ] {
                    log(&ctx, line).await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                text_result("Tool with logging executed successfully")
            }
            "test_tool_with_progress" => {
                if let Some(token) = ctx.meta.get_progress_token() {
                    for p in [0.0, 50.0, 100.0] {
                        let param = ProgressNotificationParam::new(token.clone(), p)
                            .with_total(100.0)
                            .with_message(format!("Completed step {p}"));
                        let _ = ctx.peer.notify_progress(param).await;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                text_result("Tool with progress executed successfully")
            }
            "test_error_handling" => json!({"isError": true, "content": [{"type": "text",
                "text": "This tool intentionally returns an error for testing"}]}),
            "test_sampling" => {
                let prompt = args.get("prompt").and_then(Value::as_str).unwrap_or("");
                let params: CreateMessageRequestParams = de(json!({"messages": [{"role": "user",
                    "content": {"type": "text", "text": prompt}}], "maxTokens": 100}))?;
                let answer = ctx.peer.create_message(params).await;
                match answer {
                    Ok(res) => {
                        let v = serde_json::to_value(&res).unwrap_or(Value::Null);
                        let text = v["content"]["text"].as_str().unwrap_or("").to_owned();
                        text_result(format!("LLM response: {text}"))
                    }
                    Err(e) => json!({"isError": true, "content": [{"type": "text",
                        "text": format!("Sampling failed: {e}")}]}),
                }
            }
            "test_elicitation" => {
                let message = args
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("Please provide your information");
                elicit(
                    &ctx,
                    json!({"message": message, "requestedSchema": {"type": "object",
                    "properties": {"username": {"type": "string", "description": "Your username"},
                                   "email": {"type": "string", "description": "Your email"}},
                    "required": ["username", "email"]}}),
                )
                .await?
            }
            "test_elicitation_sep1034_defaults" => {
                elicit(
                    &ctx,
                    json!({"message": "Please review and update the form fields with defaults",
                    "requestedSchema": {"type": "object", "properties": {
                        "name": {"type": "string", "description": "User name", "default": "John Doe"},
                        "age": {"type": "integer", "description": "User age", "default": 30},
                        "score": {"type": "number", "description": "User score", "default": 95.5},
                        "status": {"type": "string", "description": "User status",
                                   "enum": ["active", "inactive", "pending"], "default": "active"},
                        "verified": {"type": "boolean", "description": "Verification status", "default": true}}}}),
                )
                .await?
            }
            "test_elicitation_sep1330_enums" => {
                elicit(
                    &ctx,
                    json!({"message": "Please select options from the enum fields",
                    "requestedSchema": {"type": "object", "properties": {
                        "untitledSingle": {"type": "string", "description": "Select one option",
                            "enum": ["option1", "option2", "option3"]},
                        "titledSingle": {"type": "string", "description": "Select one option with titles",
                            "oneOf": [{"const": "value1", "title": "First Option"},
                                      {"const": "value2", "title": "Second Option"},
                                      {"const": "value3", "title": "Third Option"}]},
                        "legacyEnum": {"type": "string", "description": "Select one option (legacy)",
                            "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"]},
                        "untitledMulti": {"type": "array", "description": "Select multiple options",
                            "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                        "titledMulti": {"type": "array", "description": "Select multiple options with titles",
                            "items": {"anyOf": [{"const": "value1", "title": "First Choice"},
                                                {"const": "value2", "title": "Second Choice"},
                                                {"const": "value3", "title": "Third Choice"}]}}}}}),
                )
                .await?
            }
            "json_schema_2020_12_tool" => {
                text_result(format!("Received: {}", Value::Object(args)))
            }
            other => {
                return Err(McpError::invalid_params(
                    format!("unknown tool {other:?}"),
                    None,
                ));
            }
        })
    }
}

async fn elicit(ctx: &RequestContext<RoleServer>, params: Value) -> Result<Value, McpError> {
    let params: ElicitRequestParams = de(params)?;
    Ok(match ctx.peer.create_elicitation(params).await {
        Ok(res) => {
            let v = serde_json::to_value(&res).unwrap_or(Value::Null);
            text_result(format!(
                "User response: action={}, content={}",
                v["action"].as_str().unwrap_or(""),
                v.get("content").cloned().unwrap_or(Value::Null)
            ))
        }
        Err(e) => json!({"isError": true, "content": [{"type": "text",
            "text": format!("Elicitation failed: {e}")}]}),
    })
}

fn read(uri: &str) -> Option<Value> {
    let text =
        |text: String| json!({"contents": [{"uri": uri, "mimeType": "text/plain", "text": text}]});
    match uri {
        "test://static-text" => Some(text(
            "This is the content of the static text resource.".into(),
        )),
        "test://static-binary" => {
            Some(json!({"contents": [{"uri": uri, "mimeType": "image/png", "blob": PNG}]}))
        }
        "test://watched-resource" => Some(text("Watched resource content".into())),
        _ => {
            let id = uri
                .strip_prefix("test://template/")?
                .strip_suffix("/data")?;
            Some(
                json!({"contents": [{"uri": uri, "mimeType": "application/json",
                "text": json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")}).to_string()}]}),
            )
        }
    }
}

impl ServerHandler for Fixture {
    fn get_info(&self) -> ServerConfig {
        let caps: ServerCapabilities = serde_json::from_value(json!({
            "tools": {"listChanged": true},
            "resources": {"subscribe": true, "listChanged": true},
            "prompts": {"listChanged": true},
            "logging": {},
            "completions": {}
        }))
        .expect("static capabilities");
        ServerConfig::new(caps).with_server_info(rmcp::model::Implementation::new(
            "assay-conformance-fixture",
            env!("CARGO_PKG_VERSION"),
        ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let tools: Vec<Tool> = de(tools())?;
        Ok(ListToolsResult::with_all_items(tools))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        let tools: Vec<Tool> = serde_json::from_value(tools()).ok()?;
        tools.into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let args = request.arguments.unwrap_or_default();
        let value = self.call(&request.name, args, context).await?;
        let result: CallToolResult = de(value)?;
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        de(json!({"resources": [
            {"uri": "test://static-text", "name": "Static Text Resource", "mimeType": "text/plain"},
            {"uri": "test://static-binary", "name": "Static Binary Resource", "mimeType": "image/png"},
            {"uri": "test://watched-resource", "name": "Watched Resource", "mimeType": "text/plain"}
        ]}))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        de(
            json!({"resourceTemplates": [{"uriTemplate": "test://template/{id}/data",
            "name": "Template Resource", "mimeType": "application/json"}]}),
        )
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let Some(v) = read(&request.uri) else {
            return Err(McpError::resource_not_found(
                format!("no resource {}", request.uri),
                None,
            ));
        };
        let result: ReadResourceResult = de(v)?;
        Ok(result.into())
    }

    async fn subscribe(
        &self,
        _request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        Ok(())
    }

    async fn unsubscribe(
        &self,
        _request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        de(json!({"prompts": [
            {"name": "test_simple_prompt", "description": "A simple prompt without arguments"},
            {"name": "test_prompt_with_arguments", "description": "A prompt with arguments",
             "arguments": [{"name": "arg1", "description": "First argument", "required": true},
                           {"name": "arg2", "description": "Second argument", "required": true}]},
            {"name": "test_prompt_with_embedded_resource", "description": "A prompt with an embedded resource",
             "arguments": [{"name": "resourceUri", "description": "URI of the resource to embed", "required": true}]},
            {"name": "test_prompt_with_image", "description": "A prompt with an image"}
        ]}))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let args = request.arguments.unwrap_or_default();
        let arg = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let user = |content: Value| json!({"role": "user", "content": content});
        let text = |t: String| json!({"type": "text", "text": t});
        let messages = match request.name.as_str() {
            "test_simple_prompt" => vec![user(text("This is a simple prompt for testing.".into()))],
            "test_prompt_with_arguments" => vec![user(text(format!(
                "Prompt with arguments: arg1='{}', arg2='{}'",
                arg("arg1"),
                arg("arg2")
            )))],
            "test_prompt_with_embedded_resource" => {
                let uri = arg("resourceUri");
                vec![
                    user(
                        json!({"type": "resource", "resource": {"uri": uri, "mimeType": "text/plain",
                        "text": "Embedded resource content for testing."}}),
                    ),
                    user(text("Please process the embedded resource above.".into())),
                ]
            }
            "test_prompt_with_image" => vec![
                user(json!({"type": "image", "data": PNG, "mimeType": "image/png"})),
                user(text("Please analyze the image above.".into())),
            ],
            other => {
                return Err(McpError::invalid_params(
                    format!("unknown prompt {other:?}"),
                    None,
                ));
            }
        };
        let result: GetPromptResult = de(json!({"messages": messages}))?;
        Ok(result.into())
    }

    async fn complete(
        &self,
        _request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        de(
            json!({"completion": {"values": ["paris", "park", "party"], "total": 3, "hasMore": false}}),
        )
    }

    async fn set_level(
        &self,
        _request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::args().nth(1).map_or(Ok(0), |p| p.parse())?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let public_url = format!("http://{}", listener.local_addr()?);
    // The product's transport settings for a loopback public URL: loopback Host names, the
    // public URL as the one allowed browser Origin, JSON answers (assay-server's
    // `mcp::router`), with sessions on (`assay server --mcp-sessions`): the 2025-11-25 suite
    // answers server→client requests (sampling, elicitation) in separate POSTs, which only
    // a session routes back. ASSAY_CONFORMANCE_SESSIONS=0 serves statelessly instead.
    let config = McpHttpConfig {
        allowed_origins: vec![public_url.clone()],
        sessions: std::env::var("ASSAY_CONFORMANCE_SESSIONS").map_or(true, |v| v != "0"),
        ..McpHttpConfig::default()
    };
    let shutdown = CancellationToken::new();
    let service = streamable_http_service_for(Fixture, &config, shutdown.clone());
    let app =
        Router::new()
            .route_service("/mcp", service)
            .route_layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                REQUEST_TIMEOUT,
            ));
    // stdout is this program's interface: scripts/conformance waits for this line.
    #[allow(clippy::print_stdout)]
    {
        println!("listening on {public_url}/mcp");
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            shutdown.cancel();
        })
        .await?;
    Ok(())
}
