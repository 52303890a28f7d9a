//! The OpenAPI 3.1 document, generated from the route table (`routes::ROUTES`) plus
//! hand-written schemas of the main types. Complex nested bodies are loose objects.

use crate::extract::DOCUMENT_TYPES;
use crate::routes::{ParamType, Reply, RequestBody, Requires, Route, openapi_path, path_params};
use serde_json::{Map, Value, json};

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn path_param_description(name: &str) -> &'static str {
    match name {
        "org" => "Organization ID or slug.",
        "env" => "Environment ID or slug.",
        "name" => "Workflow or template name.",
        "execution" => "Execution ID or name (<workflow>-<number>).",
        "path" => "Artifact path relative to the execution's artifact root.",
        "user" => "User ID or email.",
        "id" => "API token ID, or OAuth grant ID under /me/grants.",
        _ => "",
    }
}

fn param_schema(ty: ParamType) -> Value {
    match ty {
        ParamType::String => json!({"type": "string"}),
        ParamType::Integer => json!({"type": "integer", "minimum": 0}),
        ParamType::Boolean => json!({"type": "boolean"}),
        ParamType::DateTime => json!({"type": "string", "format": "date-time"}),
        ParamType::StatusList => json!({
            "type": "string",
            "pattern": "^[a-z]+(,[a-z]+)*$",
            "examples": ["passed,failed"],
        }),
    }
}

fn parameters(route: &Route) -> Vec<Value> {
    let mut out: Vec<Value> = path_params(route.path)
        .into_iter()
        .map(|name| {
            json!({
                "name": name,
                "in": "path",
                "required": true,
                "description": path_param_description(name),
                "schema": {"type": "string"},
            })
        })
        .collect();
    out.extend(route.query.iter().map(|p| {
        json!({
            "name": p.name,
            "in": "query",
            "required": false,
            "description": p.description,
            "schema": param_schema(p.ty),
        })
    }));
    out
}

fn request_body(body: RequestBody) -> Option<Value> {
    match body {
        RequestBody::None => None,
        RequestBody::Document => {
            let content: Map<String, Value> = DOCUMENT_TYPES
                .iter()
                .map(|t| ((*t).to_owned(), json!({"schema": {"type": "string"}})))
                .collect();
            Some(json!({
                "required": true,
                "description": "A TestWorkflow / TestWorkflowTemplate document, kept exactly as sent.",
                "content": content,
            }))
        }
        RequestBody::Json { schema, required } => Some(json!({
            "required": required,
            "content": {"application/json": {"schema": schema_ref(schema)}},
        })),
    }
}

fn json_content(schema: &str) -> Value {
    json!({"application/json": {"schema": schema_ref(schema)}})
}

fn problem_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": schema_ref("Problem")}},
    })
}

fn responses(route: &Route) -> Value {
    let mut r = Map::new();
    match route.reply {
        Reply::Json { status, schema } => {
            r.insert(
                status.to_string(),
                json!({"description": "Success.", "content": json_content(schema)}),
            );
        }
        Reply::JsonOrYaml { schema } => {
            let mut content = json_content(schema);
            content["text/yaml"] = json!({"schema": {"type": "string"}});
            r.insert(
                "200".into(),
                json!({"description": "The document; with Accept: text/yaml its source verbatim.", "content": content}),
            );
        }
        Reply::JsonOrDownload { schema } => {
            let mut content = json_content(schema);
            content["application/octet-stream"] = json!({"schema": {"type": "string", "contentMediaType": "application/octet-stream"}});
            r.insert(
                "200".into(),
                json!({"description": "Text content as JSON; with ?download=true the raw bytes as an attachment.", "content": content}),
            );
        }
        Reply::Ndjson { schema } => {
            r.insert(
                "200".into(),
                json!({
                    "description": "One JSON object per line, streamed live.",
                    "content": {"application/x-ndjson": {"itemSchema": schema_ref(schema), "schema": {"type": "string"}}},
                }),
            );
        }
        Reply::Export { schema } => {
            r.insert(
                "200".into(),
                json!({
                    "description": "Streamed in chain order: JSON lines (format=jsonl, default), or CSV with a header row (format=csv; RFC 4180, formula cells prefixed with ', control characters written as \\u{..}).",
                    "content": {
                        "application/x-ndjson": {"itemSchema": schema_ref(schema), "schema": {"type": "string"}},
                        "text/csv": {"schema": {"type": "string"}},
                    },
                }),
            );
        }
        Reply::NoContent => {
            r.insert("204".into(), json!({"description": "Done."}));
        }
        Reply::CreatedOrOk { schema } => {
            r.insert(
                "200".into(),
                json!({"description": "Replaced.", "content": json_content(schema)}),
            );
            r.insert(
                "201".into(),
                json!({"description": "Created.", "content": json_content(schema)}),
            );
        }
    }
    if route.requires != Requires::Public {
        r.insert(
            "401".into(),
            problem_response("No or invalid bearer token (see WWW-Authenticate)."),
        );
        r.insert(
            "403".into(),
            problem_response("The caller lacks the permission this needs (x-assay-permission)."),
        );
        r.insert(
            "404".into(),
            problem_response("No such organization, environment or resource."),
        );
    }
    if route.body != RequestBody::None {
        r.insert("400".into(), problem_response("Malformed body."));
        r.insert("413".into(), problem_response("Body too large."));
        r.insert("415".into(), problem_response("Unsupported Content-Type."));
    }
    if route.body != RequestBody::None || !route.query.is_empty() {
        r.insert(
            "422".into(),
            problem_response("Invalid input; errors[] lists each field."),
        );
    }
    r.insert("default".into(), problem_response("Any other problem."));
    Value::Object(r)
}

fn operation(route: &Route) -> Value {
    let mut op = json!({
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "x-assay-permission": route.requires.as_str(),
        "parameters": parameters(route),
        "responses": responses(route),
    });
    if route.requires == Requires::Public {
        op["security"] = json!([]);
    }
    if let Some(body) = request_body(route.body) {
        op["requestBody"] = body;
    }
    op
}

/// The whole document for `routes`, served at `server_url`.
pub fn document(routes: &[Route], server_url: &url::Url) -> Value {
    let mut paths = Map::new();
    for route in routes {
        let item = paths
            .entry(openapi_path(route.path))
            .or_insert_with(|| json!({}));
        item[route.verb.as_str()] = operation(route);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Assay REST API",
            "version": "1",
            "description": "Test-orchestration control plane. Errors are RFC 9457 problem+json; x-assay-permission names what each operation needs: an environment level (read, run, write), org-admin (organization owner/admin users and admin API tokens), or authenticated (any principal of the organization — for /v1/me, any principal at all; the server decides per call).",
        },
        "servers": [{"url": server_url.as_str().trim_end_matches('/')}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API token (assay_…) or access token."},
            },
            "schemas": schemas(),
        },
    })
}

fn schemas() -> Value {
    let time = json!({"type": "string", "format": "date-time"});
    let string_map = json!({"type": "object", "additionalProperties": {"type": "string"}});
    let status = json!({"type": "string", "enum": ["queued", "running", "passed", "failed", "aborted", "canceled", "timeout", "skipped"]});
    let page = |item: &str| {
        json!({
            "type": "object",
            "required": ["items", "total"],
            "properties": {
                "items": {"type": "array", "items": schema_ref(item)},
                "total": {"type": "integer"},
                "next_cursor": {"type": "string"},
            },
        })
    };
    let mut out = json!({
        "Problem": {
            "type": "object",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string", "examples": ["urn:assay:problem:not-found"]},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "errors": {"type": "array", "items": schema_ref("FieldError")},
                "request_id": {"type": "string"},
            },
        },
        "FieldError": {
            "type": "object",
            "required": ["path", "message"],
            "properties": {"path": {"type": "string"}, "message": {"type": "string"}},
        },
        "Status": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
        "OpenApi": {"type": "object"},
        "WorkflowHealth": {
            "type": "object",
            "properties": {
                "executions": {"type": "integer"},
                "pass_rate": {"type": "number"},
                "flip_rate": {"type": "number"},
                "overall_health": {"type": "number"},
            },
        },
        "WorkflowSummary": {
            "type": "object",
            "required": ["id", "kind", "name", "description", "labels", "created_at", "updated_at"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "kind": {"type": "string", "enum": ["workflow", "template"]},
                "name": {"type": "string"},
                "description": {"type": "string"},
                "labels": string_map,
                "created_at": time,
                "updated_at": time,
                "health": schema_ref("WorkflowHealth"),
                "last_execution": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "format": "uuid"},
                        "name": {"type": "string"},
                        "status": status,
                        "queued_at": time,
                    },
                },
            },
        },
        "WorkflowDetail": {
            "allOf": [
                schema_ref("WorkflowSummary"),
                {
                    "type": "object",
                    "required": ["source", "definition"],
                    "properties": {
                        "source": {"type": "string", "description": "The document exactly as submitted."},
                        "definition": {"type": "object", "description": "The parsed document as JSON."},
                    },
                },
            ],
        },
        "WorkflowSummaryPage": page("WorkflowSummary"),
        "RunRequest": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "config": {"type": "object", "description": "Values for spec.config parameters."},
                "tags": string_map,
            },
        },
        "TagsRequest": {
            "type": "object",
            "additionalProperties": false,
            "required": ["tags"],
            "properties": {"tags": string_map},
        },
        "ExecutionSummary": {
            "type": "object",
            "required": ["id", "name", "number", "workflow_name", "status", "queued_at"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "name": {"type": "string"},
                "number": {"type": "integer"},
                "workflow_name": {"type": "string"},
                "status": status,
                "tags": string_map,
                "queued_at": time,
                "started_at": time,
                "finished_at": time,
                "duration_ms": {"type": "integer"},
            },
        },
        "ExecutionSummaryPage": page("ExecutionSummary"),
        "StepResult": {
            "type": "object",
            "required": ["reference", "name", "status"],
            "properties": {
                "reference": {"type": "string"},
                "name": {"type": "string"},
                "status": status,
                "exit_code": {"type": "integer"},
                "error": {"type": "string"},
                "started_at": time,
                "finished_at": time,
                "attempts": {"type": "integer"},
                "optional": {"type": "boolean"},
                "negative": {"type": "boolean"},
            },
        },
        "Execution": {
            "type": "object",
            "required": ["id", "env_id", "workflow_id", "workflow_name", "number", "name", "status", "started_by", "queued_at"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "env_id": {"type": "string", "format": "uuid"},
                "workflow_id": {"type": "string", "format": "uuid"},
                "workflow_name": {"type": "string"},
                "number": {"type": "integer"},
                "name": {"type": "string"},
                "status": status,
                "config": {"type": "object", "description": "name → {value, sensitive}; sensitive values masked."},
                "tags": string_map,
                "labels": string_map,
                "started_by": {
                    "type": "object",
                    "properties": {"kind": {"type": "string"}, "id": {"type": "string"}, "name": {"type": "string"}},
                },
                "queued_at": time,
                "started_at": time,
                "finished_at": time,
                "duration_ms": {"type": "integer"},
                "steps": {"type": "array", "items": schema_ref("StepResult")},
                "junit": {"type": "object", "description": "JUnit totals and failing cases."},
                "error": {"type": "string"},
                "plan": {"type": "object"},
                "runner": {"type": "string"},
            },
        },
        "LogLine": {
            "type": "object",
            "required": ["number", "step", "time", "text"],
            "properties": {
                "number": {"type": "integer"},
                "step": {"type": "string"},
                "time": time,
                "text": {"type": "string"},
            },
        },
        "LogPage": {
            "type": "object",
            "required": ["lines", "total_lines", "truncated", "steps"],
            "properties": {
                "lines": {"type": "array", "items": schema_ref("LogLine")},
                "total_lines": {"type": "integer"},
                "truncated": {"type": "boolean"},
                "steps": {"type": "array", "items": {"type": "string"}},
            },
        },
        "Artifact": {
            "type": "object",
            "required": ["path", "size", "step"],
            "properties": {
                "path": {"type": "string"},
                "size": {"type": "integer"},
                "step": {"type": "string"},
                "content_type": {"type": "string"},
            },
        },
        "ArtifactList": {
            "type": "object",
            "required": ["items", "total"],
            "properties": {
                "items": {"type": "array", "items": schema_ref("Artifact")},
                "total": {"type": "integer"},
            },
        },
        "ArtifactContent": {
            "oneOf": [
                {
                    "type": "object",
                    "required": ["kind", "path", "total_lines", "lines", "truncated"],
                    "properties": {
                        "kind": {"const": "text"},
                        "path": {"type": "string"},
                        "total_lines": {"type": "integer"},
                        "lines": {"type": "array", "items": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]}},
                        "truncated": {"type": "boolean"},
                    },
                },
                {
                    "type": "object",
                    "required": ["kind", "path", "size", "head_hex"],
                    "properties": {
                        "kind": {"const": "binary"},
                        "path": {"type": "string"},
                        "size": {"type": "integer"},
                        "content_type": {"type": ["string", "null"]},
                        "head_hex": {"type": "string"},
                    },
                },
            ],
        },
        "WorkflowMetrics": {
            "type": "object",
            "required": ["workflow", "executions", "by_status", "pass_rate", "duration"],
            "properties": {
                "workflow": {"type": "string"},
                "executions": {"type": "integer"},
                "by_status": {"type": "object", "additionalProperties": {"type": "integer"}},
                "pass_rate": {"type": "number"},
                "duration": {
                    "type": "object",
                    "properties": {
                        "p50_ms": {"type": "integer"},
                        "p90_ms": {"type": "integer"},
                        "p95_ms": {"type": "integer"},
                        "p99_ms": {"type": "integer"},
                    },
                },
            },
        },
        "ExecutionMetrics": {
            "type": "object",
            "required": ["execution_id", "steps"],
            "properties": {
                "execution_id": {"type": "string", "format": "uuid"},
                "steps": {"type": "array", "items": {"type": "object"}},
            },
        },
        "ResourceHistory": {
            "type": "object",
            "required": ["items"],
            "properties": {
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "execution_id": {"type": "string", "format": "uuid"},
                            "execution_name": {"type": "string"},
                            "status": status,
                            "duration_ms": {"type": "integer"},
                            "cpu_max_millicores": {"type": "integer"},
                            "memory_max_bytes": {"type": "integer"},
                        },
                    },
                },
            },
        },
        "Labels": {
            "type": "object",
            "required": ["labels"],
            "properties": {
                "labels": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
            },
        },
        "RunnerInfo": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "kind": {"type": "string"},
                "capabilities": {"type": "array", "items": {"type": "string"}},
                "concurrency": {"type": "integer"},
                "running": {"type": "integer"},
                "queued": {"type": "integer"},
                "version": {"type": "string"},
            },
        },
        "RunnerList": {
            "type": "object",
            "required": ["items"],
            "properties": {"items": {"type": "array", "items": schema_ref("RunnerInfo")}},
        },
    });
    if let (Value::Object(all), Value::Object(more)) = (&mut out, identity_schemas()) {
        all.extend(more);
    }
    out
}

/// Members, API tokens and audit.
fn identity_schemas() -> Value {
    let time = json!({"type": "string", "format": "date-time"});
    let uuid = json!({"type": "string", "format": "uuid"});
    let level = json!({"type": "string", "enum": ["read", "run", "write", "admin"]});
    let grants = json!({
        "type": "object",
        "description": "Environment (slug; ID accepted on input) → level.",
        "additionalProperties": level,
    });
    let role = json!({"type": "string", "enum": ["owner", "admin", "member"]});
    let token_kind = json!({"type": "string", "enum": ["admin", "member", "org-read"]});
    let auth_method =
        json!({"type": "string", "enum": ["api_token", "oauth", "cli_login", "session", "system"]});
    let list = |item: &str| {
        json!({
            "type": "object",
            "required": ["items"],
            "properties": {"items": {"type": "array", "items": schema_ref(item)}},
        })
    };
    json!({
        "MemberInfo": {
            "type": "object",
            "required": ["user_id", "email", "display_name", "role", "grants", "disabled", "created_at"],
            "properties": {
                "user_id": uuid,
                "email": {"type": "string"},
                "display_name": {"type": "string"},
                "role": role,
                "grants": grants,
                "disabled": {"type": "boolean"},
                "created_at": time,
            },
        },
        "MemberList": list("MemberInfo"),
        "NewMember": {
            "type": "object",
            "additionalProperties": false,
            "required": ["email", "role"],
            "properties": {
                "email": {"type": "string"},
                "display_name": {"type": "string"},
                "password": {"type": "string", "writeOnly": true, "description": "Initial password of a new local account; hashed with Argon2id, never stored, logged or audited."},
                "role": role,
                "grants": grants,
            },
        },
        "MemberUpdate": {
            "type": "object",
            "additionalProperties": false,
            "description": "Absent fields stay as they are.",
            "properties": {
                "role": role,
                "grants": {"allOf": [grants], "description": "Replaces all grants."},
                "disabled": {"type": "boolean", "description": "Disabling ends every token and grant of the user at once."},
            },
        },
        "ApiTokenInfo": {
            "type": "object",
            "required": ["id", "org_id", "name", "description", "kind", "grants", "created_at", "never_expires", "state"],
            "properties": {
                "id": uuid,
                "org_id": uuid,
                "name": {"type": "string"},
                "description": {"type": "string"},
                "kind": token_kind,
                "grants": grants,
                "created_by": uuid,
                "created_at": time,
                "expires_at": time,
                "never_expires": {"type": "boolean", "description": "No expiry: asked for explicitly, flagged in listings."},
                "last_used_at": time,
                "last_used_ip": {"type": "string"},
                "revoked_at": time,
                "previous_valid_until": {"allOf": [time], "description": "Until when the pre-rotation secret still works."},
                "state": {"type": "string", "enum": ["active", "expired", "revoked"]},
            },
        },
        "ApiTokenList": list("ApiTokenInfo"),
        "NewApiToken": {
            "type": "object",
            "additionalProperties": false,
            "required": ["name", "kind"],
            "properties": {
                "name": {"type": "string"},
                "description": {"type": "string"},
                "kind": token_kind,
                "grants": {"allOf": [grants], "description": "Only for member tokens: read, run or write per environment."},
                "expires_in_days": {"type": "integer", "minimum": 1, "description": "Default 90."},
                "never_expires": {"type": "boolean", "description": "No expiry at all; must be asked for explicitly."},
            },
        },
        "CreatedApiToken": {
            "type": "object",
            "required": ["token", "secret"],
            "properties": {
                "token": schema_ref("ApiTokenInfo"),
                "secret": {"type": "string", "description": "assay_…: shown this once, stored only as a hash."},
            },
        },
        "RotateRequest": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "grace_secs": {"type": "integer", "minimum": 0, "maximum": 86400, "description": "How long the old secret keeps working (default 0: stops at once)."},
            },
        },
        "GrantInfo": {
            "type": "object",
            "required": ["id", "client_id", "client_name", "client_kind", "scope", "resource", "created_at"],
            "properties": {
                "id": uuid,
                "client_id": {"type": "string", "description": "A generated ID, assay-cli, or the https URL of a client ID metadata document."},
                "client_name": {"type": "string", "description": "The name the client gave itself (unverified)."},
                "client_kind": {"type": "string", "enum": ["registered", "metadata-document", "first-party"]},
                "scope": {"type": "string", "description": "Space-separated scopes, e.g. \"mcp:read mcp:run\"."},
                "resource": {"type": "string", "description": "The resource (RFC 8707) the grant's tokens are bound to."},
                "created_at": time,
            },
        },
        "GrantList": list("GrantInfo"),
        "Identity": {
            "type": "object",
            "required": ["kind", "id", "display_name", "auth_method", "memberships"],
            "properties": {
                "kind": {"type": "string", "enum": ["user", "api_token"]},
                "id": {"allOf": [uuid], "description": "The user ID or the API token ID."},
                "display_name": {"type": "string"},
                "email": {"type": "string", "description": "Users only."},
                "auth_method": auth_method,
                "memberships": {"type": "array", "items": schema_ref("IdentityMembership"), "description": "Every organization a user belongs to; an API token's own organization. Ordered by organization ID."},
            },
        },
        "IdentityMembership": {
            "type": "object",
            "required": ["organization", "principal", "environments"],
            "properties": {
                "organization": {
                    "type": "object",
                    "required": ["id", "slug", "name"],
                    "properties": {"id": uuid, "slug": {"type": "string"}, "name": {"type": "string"}},
                },
                "role": {"allOf": [role], "description": "Users only."},
                "principal": {
                    "type": "object",
                    "description": "The caller as it acts in this organization.",
                    "required": ["kind", "id", "display_name", "org_id", "access", "auth_method"],
                    "properties": {
                        "kind": {"type": "string", "enum": ["user", "api_token"]},
                        "id": uuid,
                        "display_name": {"type": "string"},
                        "org_id": uuid,
                        "access": {
                            "type": "object",
                            "required": ["kind"],
                            "description": "org_admin: admin on every environment; read_all: read on every environment; per_environment: the listed levels (grants: environment ID → level).",
                            "properties": {
                                "kind": {"type": "string", "enum": ["org_admin", "read_all", "per_environment"]},
                                "grants": {"type": "object", "additionalProperties": level},
                            },
                        },
                        "scope_cap": {"allOf": [level], "description": "Upper bound from the credential (OAuth scope); absent: none."},
                        "auth_method": auth_method,
                        "credential_id": {"type": "string", "description": "The API token ID or the OAuth client ID."},
                    },
                },
                "environments": {
                    "type": "array",
                    "description": "The environments the caller can reach, with its effective level, ordered by slug.",
                    "items": {
                        "type": "object",
                        "required": ["id", "slug", "name", "level"],
                        "properties": {"id": uuid, "slug": {"type": "string"}, "name": {"type": "string"}, "level": level},
                    },
                },
            },
        },
        "AuditEvent": {
            "type": "object",
            "required": ["id", "time", "org_id", "actor", "client", "action", "resources", "outcome", "seq", "prev_hash", "hash"],
            "properties": {
                "id": uuid,
                "time": time,
                "org_id": uuid,
                "env_id": uuid,
                "actor": {
                    "type": "object",
                    "required": ["kind", "id", "name", "auth_method"],
                    "properties": {
                        "kind": {"type": "string", "enum": ["user", "api_token", "system"]},
                        "id": uuid,
                        "name": {"type": "string"},
                        "auth_method": {"type": "string", "enum": ["api_token", "oauth", "cli_login", "session", "system"]},
                        "credential_id": {"type": "string"},
                    },
                },
                "client": {
                    "type": "object",
                    "properties": {
                        "ip": {"type": "string"},
                        "user_agent": {"type": "string"},
                        "mcp_client": {"type": "string"},
                        "request_id": {"type": "string"},
                    },
                },
                "action": {"type": "string", "examples": ["token.created", "auth.failed"]},
                "resources": {"type": "array", "items": {"type": "string"}},
                "outcome": {"type": "string", "enum": ["success", "denied", "error"]},
                "reason": {"type": "string"},
                "seq": {"type": "integer"},
                "prev_hash": {"type": "string"},
                "hash": {"type": "string"},
            },
        },
        "AuditCheckpoint": {
            "type": "object",
            "required": ["org_id", "seq", "hash", "purged_before", "created_at"],
            "properties": {
                "org_id": uuid,
                "seq": {"type": "integer"},
                "hash": {"type": "string"},
                "purged_before": time,
                "created_at": time,
            },
        },
        "AuditVerifyReport": {
            "type": "object",
            "required": ["ok", "events_checked"],
            "properties": {
                "ok": {"type": "boolean"},
                "events_checked": {"type": "integer"},
                "first_seq": {"type": "integer"},
                "last_seq": {"type": "integer"},
                "checkpoint": schema_ref("AuditCheckpoint"),
                "broken": {
                    "type": "object",
                    "required": ["seq", "reason"],
                    "description": "The first broken link: an edited, deleted, reordered or inserted event.",
                    "properties": {
                        "seq": {"type": "integer"},
                        "event_id": uuid,
                        "reason": {"type": "string"},
                    },
                },
            },
        },
        "ActorActivity": {
            "type": "object",
            "required": ["kind", "id", "name", "events", "first_seen", "last_seen"],
            "properties": {
                "kind": {"type": "string", "enum": ["user", "api_token", "system"]},
                "id": uuid,
                "name": {"type": "string"},
                "events": {"type": "integer"},
                "first_seen": time,
                "last_seen": time,
            },
        },
        "ActorActivityList": list("ActorActivity"),
        "AuditSettings": {
            "type": "object",
            "additionalProperties": false,
            "required": ["retention_days"],
            "properties": {"retention_days": {"type": "integer", "minimum": 1, "description": "Days audit events are kept (default 180)."}},
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::routes::ROUTES;

    #[test]
    fn every_schema_reference_resolves() {
        let doc = document(ROUTES, &url::Url::parse("http://x/").unwrap());
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r.clone());
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.len() > 30);
        for r in found {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            assert!(schemas.contains_key(name), "dangling {r}");
        }
        assert_eq!(doc["servers"][0]["url"], "http://x");
    }
}
