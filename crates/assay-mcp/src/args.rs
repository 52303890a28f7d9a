//! Lenient argument decoding. Schemas advertise numbers as numbers and booleans as
//! booleans, but Testkube's tools declared them as strings, so clients configured for
//! Testkube send `"100"` and `"true"`: both spellings are accepted here.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// `Option<u64>` from a number, a numeric string, `null` or `""`.
pub(crate) fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v)
                .map(Some)
                .map_err(|_| E::custom(format!("{v} is negative; expected a non-negative integer")))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if v.fract() == 0.0 && v >= 0.0 && v <= u64::MAX as f64 {
                Ok(Some(v as u64))
            } else {
                Err(E::custom(format!("{v} is not a non-negative integer")))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let v = v.trim();
            if v.is_empty() {
                return Ok(None);
            }
            v.parse::<u64>()
                .map(Some)
                .map_err(|_| E::custom(format!("{v:?} is not a non-negative integer")))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(self)
        }
    }
    d.deserialize_any(V)
}

/// `Option<bool>` from a boolean, `"true"`/`"false"`, `null` or `""`.
pub(crate) fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<bool>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("true or false")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            match v.trim() {
                "" => Ok(None),
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                other => Err(E::custom(format!("{other:?} is not true or false"))),
            }
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(self)
        }
    }
    d.deserialize_any(V)
}

/// A list of strings from an array or a comma-separated string (Testkube's
/// `executionIds: "a,b"`). Empty entries are dropped.
pub(crate) fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        One(String),
        Many(Vec<String>),
    }
    let raw = match Either::deserialize(d).map_err(|_| {
        de::Error::custom("expected an array of strings or a comma-separated string")
    })? {
        Either::One(s) => s.split(',').map(str::to_owned).collect(),
        Either::Many(v) => v,
    };
    Ok(raw
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect())
}

/// A string map whose values may arrive as numbers or booleans (stringified).
pub(crate) fn string_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = Option::<BTreeMap<String, serde_json::Value>>::deserialize(d)?.unwrap_or_default();
    raw.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            serde_json::Value::Number(n) => Ok((k, n.to_string())),
            serde_json::Value::Bool(b) => Ok((k, b.to_string())),
            other => Err(de::Error::custom(format!(
                "value of {k:?} must be a string, got {other}"
            ))),
        })
        .collect()
}

/// Arguments of a tool that takes none (extra fields are ignored, as clients differ).
#[derive(Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
pub(crate) struct NoArgs {}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize, Debug, PartialEq)]
    struct A {
        #[serde(default, deserialize_with = "opt_u64")]
        n: Option<u64>,
        #[serde(default, deserialize_with = "opt_bool")]
        b: Option<bool>,
        #[serde(default, deserialize_with = "string_list")]
        ids: Vec<String>,
        #[serde(default, deserialize_with = "string_map")]
        tags: BTreeMap<String, String>,
    }

    fn parse(v: serde_json::Value) -> Result<A, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn numbers_and_numeric_strings_are_both_accepted() {
        assert_eq!(parse(json!({"n": 7})).unwrap().n, Some(7));
        assert_eq!(parse(json!({"n": "7"})).unwrap().n, Some(7));
        assert_eq!(parse(json!({"n": " 12 "})).unwrap().n, Some(12));
        assert_eq!(parse(json!({"n": 3.0})).unwrap().n, Some(3));
        assert_eq!(parse(json!({"n": ""})).unwrap().n, None);
        assert_eq!(parse(json!({"n": null})).unwrap().n, None);
        assert_eq!(parse(json!({})).unwrap().n, None);
        let err = parse(json!({"n": "ten"})).unwrap_err();
        assert!(
            err.contains("\"ten\" is not a non-negative integer"),
            "{err}"
        );
        let err = parse(json!({"n": -1})).unwrap_err();
        assert!(err.contains("-1 is negative"), "{err}");
        assert!(parse(json!({"n": 1.5})).is_err());
    }

    #[test]
    fn booleans_and_boolean_strings_are_both_accepted() {
        assert_eq!(parse(json!({"b": true})).unwrap().b, Some(true));
        assert_eq!(parse(json!({"b": "false"})).unwrap().b, Some(false));
        assert!(parse(json!({"b": "yes"})).is_err());
    }

    #[test]
    fn lists_come_as_arrays_or_comma_separated_strings() {
        assert_eq!(parse(json!({"ids": ["a", "b"]})).unwrap().ids, ["a", "b"]);
        assert_eq!(
            parse(json!({"ids": "a, b,,c"})).unwrap().ids,
            ["a", "b", "c"]
        );
        assert!(parse(json!({"ids": 5})).is_err());
    }

    #[test]
    fn string_maps_stringify_scalars_and_reject_nesting() {
        let a = parse(json!({"tags": {"a": "x", "b": 2, "c": true}})).unwrap();
        assert_eq!(a.tags.get("b").map(String::as_str), Some("2"));
        assert_eq!(a.tags.get("c").map(String::as_str), Some("true"));
        let err = parse(json!({"tags": {"a": {"x": 1}}})).unwrap_err();
        assert!(err.contains("value of \"a\" must be a string"), "{err}");
    }
}
