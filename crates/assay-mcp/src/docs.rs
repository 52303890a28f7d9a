//! `docs/MCP-TOOLS.md`, generated from the tool definitions so it cannot drift from them.
//! A test compares the committed file with this output (`ASSAY_UPDATE_DOCS=1` rewrites it).

use crate::catalog::{Catalog, ToolDef};
use serde_json::{Map, Value};
use std::fmt::Write as _;

/// The Markdown reference of every tool.
pub fn tools_markdown() -> String {
    let catalog = Catalog::build();
    let mut out = String::from(
        "# MCP tools\n\n\
         <!-- Generated from crates/assay-mcp by `ASSAY_UPDATE_DOCS=1 cargo test -p assay-mcp --test mcp docs`. Do not edit by hand. -->\n\n\
         Assay's MCP server exposes these tools, with Testkube's tool and parameter names. Each tool \
         needs a permission level on the environment (`read < run < write`); `tools/list` shows a \
         caller only the tools its role allows, and the control plane checks every call again. An \
         OAuth access token's scope does not narrow the listing: a listed tool beyond the token's \
         scope answers HTTP 403 `insufficient_scope` naming the scope, so the client steps up.\n\n\
         Numbers are JSON numbers; numeric strings (`\"100\"`) and boolean strings (`\"true\"`) are \
         accepted too, as Testkube declared them as strings. Every result carries `structuredContent` \
         (matching the tool's output schema) and a compact text rendering. Failures are `isError` \
         results that say what to do next.\n\n\
         Conventions: wherever an `executionId` is asked, an execution name (`<workflow>-<number>`) \
         works too. Lists return `nextCursor`; pass it as `cursor` for the next page. Testkube \
         spellings are accepted where they differ: `executionIds` as a comma-separated string, \
         `timeoutMinutes` on `wait_for_executions`, `startDate` for `since`; unknown parameters \
         (such as Testkube's `target` or `resourceGroup`) are ignored. The `tools/list` response \
         is kept under 16 KB (tested), so descriptions are short and output schemas list the \
         top-level result fields.\n\n\
         | tool | level | effect |\n|---|---|---|\n",
    );
    for d in catalog.defs() {
        let _ = writeln!(
            out,
            "| [`{name}`](#{name}) | {level} | {effect} |",
            name = d.tool.name,
            level = d.level,
            effect = effect(d)
        );
    }
    for d in catalog.defs() {
        tool_section(&mut out, d);
    }
    out
}

fn effect(d: &ToolDef) -> &'static str {
    let a = d.tool.annotations.as_ref();
    let flag = |f: fn(&rmcp::model::ToolAnnotations) -> Option<bool>| a.and_then(f) == Some(true);
    if flag(|a| a.read_only_hint) {
        "read-only"
    } else if flag(|a| a.destructive_hint) {
        "overwrites"
    } else {
        "additive"
    }
}

fn tool_section(out: &mut String, d: &ToolDef) {
    let t = &d.tool;
    let title = t
        .annotations
        .as_ref()
        .and_then(|a| a.title.clone())
        .unwrap_or_default();
    let _ = write!(
        out,
        "\n## {}\n\n**{title}** — {}\n\nLevel: `{}`. Effect: {}{}.\n",
        t.name,
        t.description.as_deref().unwrap_or(""),
        d.level,
        effect(d),
        if t.annotations.as_ref().and_then(|a| a.open_world_hint) == Some(true) {
            "; runs user code that may reach other systems"
        } else {
            ""
        }
    );
    let props = t
        .input_schema
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let required: Vec<&str> = t
        .input_schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if props.is_empty() {
        out.push_str("\nNo parameters.\n");
    } else {
        out.push_str("\n| parameter | type | required | description |\n|---|---|---|---|\n");
        for (name, schema) in &props {
            let _ = writeln!(
                out,
                "| `{name}` | {} | {} | {} |",
                type_of(schema),
                if required.contains(&name.as_str()) {
                    "yes"
                } else {
                    ""
                },
                cell(&describe(schema))
            );
        }
    }
    if let Some(output) = &t.output_schema {
        let fields = output
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| {
                p.iter()
                    .map(|(k, v)| format!("`{k}` ({})", type_of(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let _ = writeln!(out, "\nResult fields: {fields}.");
    }
}

fn type_of(schema: &Value) -> String {
    let base = match schema.get("type") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" \\| "),
        _ => "any".into(),
    };
    match (base.as_str(), schema.get("items")) {
        ("array", Some(items)) => format!("{}[]", type_of(items)),
        _ => base,
    }
}

fn describe(schema: &Value) -> String {
    let obj = schema.as_object().cloned().unwrap_or_else(Map::new);
    let mut parts = Vec::new();
    if let Some(d) = obj.get("description").and_then(Value::as_str) {
        parts.push(d.to_owned());
    }
    if let Some(max) = obj.get("maximum") {
        parts.push(format!("max {max}"));
    }
    if let Some(Value::Array(values)) = obj.get("enum") {
        let values: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
        parts.push(format!("one of {}", values.join(", ")));
    }
    parts.join("; ")
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
