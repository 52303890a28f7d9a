//! Parameters (`spec.config`) and the values a run gives them.
//!
//! Values arrive as JSON from the API and as `k=v` strings from the CLI, so numeric strings
//! are accepted for `integer`/`number` and `"true"`/`"false"` for `boolean`; every value is
//! normalized to its JSON type before it is checked against `enum` and the limits.

use super::document::{Parameter, ParameterType};
use super::shell::is_plain_token;
use crate::error::FieldError;
use serde_json::Value;
use std::collections::BTreeMap;

/// Most parameters a document may declare.
pub const MAX_PARAMETERS: usize = 100;
/// Longest string value accepted for a parameter, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// A parameter's value for one run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resolved {
    /// How the value is written into text.
    pub text: String,
    /// The normalized value.
    pub json: Value,
    pub kind: ParameterType,
    pub sensitive: bool,
}

/// Normalizes `value` to the parameter's type and checks `enum` and the limits.
/// The error is a phrase for a `FieldError` message (it never repeats a sensitive value).
pub(crate) fn coerce(p: &Parameter, value: &Value) -> Result<Value, String> {
    let normalized = coerce_type(p.kind, value)?;
    if let Some(allowed) = &p.allowed {
        let matches = allowed
            .iter()
            .filter_map(|a| coerce_type(p.kind, a).ok())
            .any(|a| same(&a, &normalized));
        if !matches {
            let list: Vec<String> = allowed.iter().map(display).collect();
            return Err(if p.sensitive {
                format!(
                    "the value is not one of the allowed values ({})",
                    list.join(", ")
                )
            } else {
                format!("{} is not one of {}", display(&normalized), list.join(", "))
            });
        }
    }
    match &normalized {
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(min) = p.min_length
                && len < min
            {
                return Err(format!("must be at least {min} characters long"));
            }
            if let Some(max) = p.max_length
                && len > max
            {
                return Err(format!("must be at most {max} characters long"));
            }
            if let Some(pattern) = &p.pattern {
                let re = compile_pattern(pattern)?;
                if !re.is_match(s) {
                    return Err(format!("does not match the pattern {pattern:?}"));
                }
            }
        }
        Value::Number(n) => {
            let v = n.as_f64().unwrap_or(f64::NAN);
            if let Some(min) = p.minimum
                && v < min
            {
                return Err(format!("must be at least {min}"));
            }
            if let Some(max) = p.maximum
                && v > max
            {
                return Err(format!("must be at most {max}"));
            }
        }
        _ => {}
    }
    Ok(normalized)
}

/// `pattern` must match the whole value.
pub(crate) fn compile_pattern(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("pattern {pattern:?} is not a valid regular expression: {e}"))
}

fn coerce_type(kind: ParameterType, value: &Value) -> Result<Value, String> {
    let wrong = || format!("{} is not {}", describe(value), kind.with_article());
    match kind {
        ParameterType::String => {
            let s = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return Err(wrong()),
            };
            if s.contains('\0') {
                return Err("must not contain NUL characters".into());
            }
            if s.len() > MAX_VALUE_BYTES {
                return Err(format!("is longer than {MAX_VALUE_BYTES} bytes"));
            }
            Ok(Value::String(s))
        }
        ParameterType::Integer => {
            let n = match value {
                Value::Number(n) => n
                    .as_i64()
                    .or_else(|| {
                        n.as_f64()
                            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                            .map(|f| f as i64)
                    })
                    .ok_or_else(wrong)?,
                Value::String(s) => s.parse::<i64>().map_err(|_| wrong())?,
                _ => return Err(wrong()),
            };
            Ok(Value::from(n))
        }
        ParameterType::Number => {
            let n = match value {
                Value::Number(n) => n.clone(),
                Value::String(s) => match s.parse::<i64>() {
                    Ok(i) => i.into(),
                    Err(_) => s
                        .parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite() && is_plain_token(s))
                        .and_then(serde_json::Number::from_f64)
                        .ok_or_else(wrong)?,
                },
                _ => return Err(wrong()),
            };
            Ok(Value::Number(n))
        }
        ParameterType::Boolean => match value {
            Value::Bool(b) => Ok(Value::Bool(*b)),
            Value::String(s) if s == "true" => Ok(Value::Bool(true)),
            Value::String(s) if s == "false" => Ok(Value::Bool(false)),
            _ => Err(wrong()),
        },
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a map".into(),
        other => display(other),
    }
}

fn display(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// How a normalized value is written into text.
pub(crate) fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Problems with a parameter declaration (checked when the document is parsed).
pub(crate) fn check_declaration(name: &str, p: &Parameter, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut err = |field: &str, message: String| {
        errors.push(FieldError {
            path: if field.is_empty() {
                path.to_owned()
            } else {
                format!("{path}.{field}")
            },
            message,
        })
    };
    if !super::expr::is_identifier(name) {
        err(
            "",
            format!(
                "{name:?} is not a valid parameter name (letters, digits and _, starting with a \
                 letter or _, at most 63 characters)"
            ),
        );
    }
    if let Some(pattern) = &p.pattern {
        if p.kind != ParameterType::String {
            err(
                "pattern",
                "pattern applies only to string parameters".into(),
            );
        } else if let Err(e) = compile_pattern(pattern) {
            err("pattern", e);
        }
    }
    if (p.min_length.is_some() || p.max_length.is_some()) && p.kind != ParameterType::String {
        err(
            "",
            "minLength and maxLength apply only to string parameters".into(),
        );
    }
    if (p.minimum.is_some() || p.maximum.is_some())
        && !matches!(p.kind, ParameterType::Integer | ParameterType::Number)
    {
        err(
            "",
            "minimum and maximum apply only to integer and number parameters".into(),
        );
    }
    if let (Some(min), Some(max)) = (p.min_length, p.max_length)
        && min > max
    {
        err(
            "minLength",
            format!("{min} is greater than maxLength {max}"),
        );
    }
    if let (Some(min), Some(max)) = (p.minimum, p.maximum)
        && min > max
    {
        err("minimum", format!("{min} is greater than maximum {max}"));
    }
    if let Some(allowed) = &p.allowed {
        if allowed.is_empty() {
            err("enum", "must list at least one value".into());
        }
        for (i, v) in allowed.iter().enumerate() {
            if let Err(e) = coerce_type(p.kind, v) {
                err(&format!("enum[{i}]"), e);
            }
        }
    }
    if let Some(default) = &p.default
        && let Err(e) = coerce(p, default)
    {
        err("default", e);
    }
    errors
}

/// Checks the values given for a run against the parameters and returns every parameter's
/// value. Errors use `path_prefix` (`config` for a workflow run) and name the parameter.
pub(crate) fn resolve(
    params: &BTreeMap<String, Parameter>,
    given: &BTreeMap<String, Value>,
    path_prefix: &str,
) -> Result<BTreeMap<String, Resolved>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut out = BTreeMap::new();
    for name in given.keys() {
        if !params.contains_key(name) {
            let known: Vec<&str> = params.keys().map(String::as_str).collect();
            errors.push(FieldError {
                path: format!("{path_prefix}.{name}"),
                message: if known.is_empty() {
                    "unknown parameter; this takes no parameters".into()
                } else {
                    format!("unknown parameter; known parameters: {}", known.join(", "))
                },
            });
        }
    }
    for (name, p) in params {
        let path = format!("{path_prefix}.{name}");
        let value = match (given.get(name), &p.default) {
            (Some(v), _) => v,
            (None, Some(default)) => default,
            (None, None) => {
                errors.push(FieldError {
                    path,
                    message: format!(
                        "required: the parameter has no default{}",
                        p.description
                            .as_deref()
                            .map(|d| format!(" ({d})"))
                            .unwrap_or_default()
                    ),
                });
                continue;
            }
        };
        match coerce(p, value) {
            Ok(json) => {
                out.insert(
                    name.clone(),
                    Resolved {
                        text: text_of(&json),
                        json,
                        kind: p.kind,
                        sensitive: p.sensitive,
                    },
                );
            }
            Err(message) => errors.push(FieldError { path, message }),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn param(kind: ParameterType) -> Parameter {
        Parameter {
            kind,
            ..Parameter::default()
        }
    }

    #[test]
    fn strings() {
        let p = param(ParameterType::String);
        assert_eq!(coerce(&p, &json!("a b")), Ok(json!("a b")));
        assert_eq!(coerce(&p, &json!(3)), Ok(json!("3")));
        assert_eq!(coerce(&p, &json!(true)), Ok(json!("true")));
        assert_eq!(coerce(&p, &json!(null)), Err("null is not a string".into()));
        assert_eq!(
            coerce(&p, &json!([1])),
            Err("a list is not a string".into())
        );
        assert_eq!(
            coerce(&p, &json!("a\0b")),
            Err("must not contain NUL characters".into())
        );
        assert_eq!(
            coerce(&p, &json!("x".repeat(MAX_VALUE_BYTES + 1))),
            Err(format!("is longer than {MAX_VALUE_BYTES} bytes"))
        );
    }

    #[test]
    fn integers_numbers_booleans() {
        let i = param(ParameterType::Integer);
        assert_eq!(coerce(&i, &json!(3)), Ok(json!(3)));
        assert_eq!(coerce(&i, &json!("3")), Ok(json!(3)));
        assert_eq!(coerce(&i, &json!("-12")), Ok(json!(-12)));
        assert_eq!(coerce(&i, &json!(3.0)), Ok(json!(3)));
        assert_eq!(coerce(&i, &json!(3.5)), Err("3.5 is not an integer".into()));
        assert_eq!(
            coerce(&i, &json!("3x")),
            Err("\"3x\" is not an integer".into())
        );
        assert_eq!(
            coerce(&i, &json!(" 3")),
            Err("\" 3\" is not an integer".into())
        );
        let n = param(ParameterType::Number);
        assert_eq!(coerce(&n, &json!("2.5")), Ok(json!(2.5)));
        assert_eq!(coerce(&n, &json!("2")), Ok(json!(2)));
        assert_eq!(coerce(&n, &json!(1e3)), Ok(json!(1000.0)));
        assert!(coerce(&n, &json!("inf")).is_err());
        assert!(coerce(&n, &json!("NaN")).is_err());
        assert!(coerce(&n, &json!("1e999")).is_err());
        let b = param(ParameterType::Boolean);
        assert_eq!(coerce(&b, &json!("true")), Ok(json!(true)));
        assert_eq!(coerce(&b, &json!(false)), Ok(json!(false)));
        assert_eq!(
            coerce(&b, &json!("yes")),
            Err("\"yes\" is not a boolean".into())
        );
        assert_eq!(coerce(&b, &json!(1)), Err("1 is not a boolean".into()));
    }

    #[test]
    fn enums_and_limits() {
        let p = Parameter {
            allowed: Some(vec![json!("chrome"), json!("firefox")]),
            ..param(ParameterType::String)
        };
        assert_eq!(coerce(&p, &json!("firefox")), Ok(json!("firefox")));
        assert_eq!(
            coerce(&p, &json!("safari")),
            Err("\"safari\" is not one of \"chrome\", \"firefox\"".into())
        );
        let secret = Parameter {
            sensitive: true,
            ..p.clone()
        };
        assert_eq!(
            coerce(&secret, &json!("hunter2")),
            Err("the value is not one of the allowed values (\"chrome\", \"firefox\")".into())
        );
        let n = Parameter {
            allowed: Some(vec![json!(1), json!(2)]),
            minimum: Some(1.0),
            ..param(ParameterType::Integer)
        };
        assert_eq!(coerce(&n, &json!("2")), Ok(json!(2)));
        assert_eq!(coerce(&n, &json!(3)), Err("3 is not one of 1, 2".into()));
        let len = Parameter {
            min_length: Some(2),
            max_length: Some(3),
            pattern: Some("[a-z]+".into()),
            ..param(ParameterType::String)
        };
        assert_eq!(coerce(&len, &json!("ab")), Ok(json!("ab")));
        assert_eq!(
            coerce(&len, &json!("a")),
            Err("must be at least 2 characters long".into())
        );
        assert_eq!(
            coerce(&len, &json!("abcd")),
            Err("must be at most 3 characters long".into())
        );
        assert_eq!(
            coerce(&len, &json!("a1")),
            Err("does not match the pattern \"[a-z]+\"".into())
        );
        let range = Parameter {
            minimum: Some(0.5),
            maximum: Some(1.5),
            ..param(ParameterType::Number)
        };
        assert_eq!(
            coerce(&range, &json!(0.4)),
            Err("must be at least 0.5".into())
        );
        assert_eq!(coerce(&range, &json!(2)), Err("must be at most 1.5".into()));
    }

    #[test]
    fn declarations() {
        let bad = Parameter {
            default: Some(json!("x")),
            allowed: Some(vec![json!(1), json!("two")]),
            pattern: Some("(".into()),
            ..param(ParameterType::Integer)
        };
        let errors = check_declaration("bad-name", &bad, "spec.config.bad-name");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "spec.config.bad-name",
                "spec.config.bad-name.pattern",
                "spec.config.bad-name.enum[1]",
                "spec.config.bad-name.default"
            ]
        );
        assert_eq!(errors[2].message, "\"two\" is not an integer");
        assert_eq!(errors[3].message, "\"x\" is not an integer");
        let good = Parameter {
            default: Some(json!("chrome")),
            allowed: Some(vec![json!("chrome")]),
            ..param(ParameterType::String)
        };
        assert_eq!(check_declaration("browser", &good, "p"), vec![]);
    }

    #[test]
    fn resolve_collects_every_problem() {
        let mut params = BTreeMap::new();
        params.insert("a".to_string(), param(ParameterType::Integer));
        params.insert(
            "b".to_string(),
            Parameter {
                default: Some(json!(true)),
                ..param(ParameterType::Boolean)
            },
        );
        let given: BTreeMap<String, Value> =
            [("a".to_string(), json!("x")), ("zz".to_string(), json!(1))].into();
        let errors = resolve(&params, &given, "config").unwrap_err();
        assert_eq!(
            errors,
            vec![
                FieldError {
                    path: "config.zz".into(),
                    message: "unknown parameter; known parameters: a, b".into()
                },
                FieldError {
                    path: "config.a".into(),
                    message: "\"x\" is not an integer".into()
                },
            ]
        );
        let ok = resolve(&params, &[("a".to_string(), json!("7"))].into(), "config").unwrap();
        assert_eq!(ok["a"].text, "7");
        assert_eq!(ok["a"].json, json!(7));
        assert_eq!(ok["b"].text, "true");
        let missing = resolve(&params, &BTreeMap::new(), "config").unwrap_err();
        assert_eq!(missing[0].path, "config.a");
        assert_eq!(missing[0].message, "required: the parameter has no default");
    }
}
