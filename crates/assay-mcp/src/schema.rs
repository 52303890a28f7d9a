//! JSON Schemas for tool inputs and outputs, generated from the Rust types and then
//! compacted: `tools/list` is sent to the model on every turn, so every byte counts
//! (the whole list must stay under 16 KB). Compaction keeps what a client needs to call a
//! tool and read its result (types, required fields, enums, bounds, short descriptions on
//! inputs) and drops the rest (`$schema`, titles, integer formats, defaults, `null`
//! alternatives of optional fields, which are simply omitted on the wire). Output schemas
//! give the top-level fields and their types.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

/// How deep output schemas describe nested values; below this only the type is given.
const OUTPUT_DEPTH: usize = 1;

pub(crate) fn input_schema<T: JsonSchema>() -> Map<String, Value> {
    let root = generate::<T>(false);
    let mut out = compact(&root, 0, usize::MAX, true);
    // An input schema must be an object schema even for tools without arguments.
    out.insert("type".into(), Value::from("object"));
    out.entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    out
}

pub(crate) fn output_schema<T: JsonSchema>() -> Map<String, Value> {
    let root = generate::<T>(true);
    let mut out = compact(&root, 0, OUTPUT_DEPTH, false);
    out.insert("type".into(), Value::from("object"));
    out
}

fn generate<T: JsonSchema>(for_output: bool) -> Value {
    let settings = SchemaSettings::draft2020_12().with(|s| s.inline_subschemas = true);
    let settings = if for_output {
        settings.for_serialize()
    } else {
        settings.for_deserialize()
    };
    settings
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value()
}

/// Compacts one (sub)schema. `depth` counts object/array nesting from the root.
fn compact(
    schema: &Value,
    depth: usize,
    max_depth: usize,
    descriptions: bool,
) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(obj) = schema.as_object() else {
        return out;
    };
    // `anyOf: [X, {type: null}]` (an optional enum or struct) is just X.
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(alts)) = obj.get(key) {
            let non_null: Vec<&Value> = alts.iter().filter(|a| !is_null_schema(a)).collect();
            if let [only] = non_null.as_slice() {
                let mut merged = compact(only, depth, max_depth, descriptions);
                if descriptions && let Some(d) = obj.get("description") {
                    merged.insert("description".into(), d.clone());
                }
                return merged;
            }
            let alts: Vec<Value> = non_null
                .into_iter()
                .map(|a| Value::Object(compact(a, depth, max_depth, descriptions)))
                .collect();
            out.insert(key.into(), Value::Array(alts));
        }
    }
    if let Some(t) = obj.get("type") {
        out.insert("type".into(), without_null(t));
    }
    if descriptions
        && depth > 0
        && let Some(d) = obj.get("description")
    {
        out.insert("description".into(), d.clone());
    }
    if let Some(Value::Array(values)) = obj.get("enum") {
        let values: Vec<Value> = values.iter().filter(|v| !v.is_null()).cloned().collect();
        out.insert("enum".into(), Value::Array(values));
    }
    if let Some(c) = obj.get("const") {
        out.insert("const".into(), c.clone());
    }
    if descriptions {
        // Upper bounds tell the model what it may ask for. Lower bounds (0 or 1 for counts)
        // and schemars' `default: {}` for every `#[serde(default)]` map add bytes, not
        // information; defaults that matter are in descriptions.
        if let Some(v) = obj.get("maximum")
            && !v.is_null()
        {
            out.insert("maximum".into(), v.clone());
        }
    }
    if depth >= max_depth {
        return out;
    }
    if let Some(Value::Object(props)) = obj.get("properties") {
        let props: Map<String, Value> = props
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    Value::Object(compact(v, depth + 1, max_depth, descriptions)),
                )
            })
            .collect();
        out.insert("properties".into(), Value::Object(props));
        // Inputs say what must be passed; outputs leave `required` out for size (every
        // field that is always present is documented by its type; absent = not applicable).
        if descriptions
            && let Some(Value::Array(req)) = obj.get("required")
            && !req.is_empty()
        {
            out.insert("required".into(), Value::Array(req.clone()));
        }
    }
    if let Some(items) = obj.get("items")
        && items.is_object()
    {
        let items = compact(items, depth + 1, max_depth, descriptions);
        if !items.is_empty() {
            out.insert("items".into(), Value::Object(items));
        }
    }
    if let Some(extra) = obj.get("additionalProperties")
        && extra.is_object()
    {
        let extra = compact(extra, depth + 1, max_depth, descriptions);
        if !extra.is_empty() {
            out.insert("additionalProperties".into(), Value::Object(extra));
        }
    }
    out
}

fn is_null_schema(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("null") || v.get("const") == Some(&Value::Null)
}

/// `["integer", "null"]` → `"integer"`; other unions keep their non-null members.
fn without_null(t: &Value) -> Value {
    match t {
        Value::Array(types) => {
            let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
            match kept.as_slice() {
                [one] => one.clone(),
                _ => Value::Array(kept),
            }
        }
        other => other.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct In {
        /// Workflow name.
        workflow_name: String,
        /// Last N lines.
        #[schemars(range(max = 1000))]
        tail: Option<u64>,
        mode: Option<Mode>,
    }

    #[derive(Deserialize, Serialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Fast,
        Slow,
    }

    #[derive(Serialize, JsonSchema)]
    struct Out {
        /// Not shown.
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
        nested: Vec<Inner>,
    }

    #[derive(Serialize, JsonSchema)]
    struct Inner {
        deep: Deeper,
    }

    #[derive(Serialize, JsonSchema)]
    struct Deeper {
        x: u8,
    }

    #[test]
    fn input_schemas_keep_types_descriptions_and_bounds_only() {
        assert_eq!(
            Value::Object(input_schema::<In>()),
            json!({
                "type": "object",
                "properties": {
                    "workflowName": {"type": "string", "description": "Workflow name."},
                    "tail": {"type": "integer", "description": "Last N lines.", "maximum": 1000},
                    "mode": {"type": "string", "enum": ["fast", "slow"]},
                },
                "required": ["workflowName"],
            })
        );
    }

    #[test]
    fn output_schemas_stop_at_the_depth_limit_and_drop_descriptions() {
        assert_eq!(
            Value::Object(output_schema::<Out>()),
            json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "count": {"type": "integer"},
                    "nested": {"type": "array"},
                },
            })
        );
    }
}
