//! Label and tag selectors: `key=value`, `key!=value`, `key` (exists), comma-separated
//! and AND-ed. One parser for workflow labels, execution labels and execution tags.
//!
//! Semantics follow Kubernetes: `key!=value` also matches items without `key`.

use assay_core::{Error, Result};
use std::collections::BTreeMap;

/// More terms than this is not a real query; bounding it bounds the SQL we build.
pub const MAX_TERMS: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Equals { key: String, value: String },
    NotEquals { key: String, value: String },
    Exists { key: String },
}

impl Requirement {
    pub fn key(&self) -> &str {
        match self {
            Requirement::Equals { key, .. }
            | Requirement::NotEquals { key, .. }
            | Requirement::Exists { key } => key,
        }
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::Equals { key, value } => labels.get(key) == Some(value),
            Requirement::NotEquals { key, value } => labels.get(key) != Some(value),
            Requirement::Exists { key } => labels.contains_key(key),
        }
    }
}

/// A parsed selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    pub requirements: Vec<Requirement>,
}

fn invalid(message: String) -> Error {
    Error::invalid("selector", message)
}

fn check_key(term: &str, key: &str) -> Result<String> {
    let ok = !key.is_empty()
        && key.len() <= 253
        && key
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !matches!(c, '=' | '!' | ','));
    if ok {
        Ok(key.to_owned())
    } else {
        Err(invalid(format!(
            "{term:?} has an invalid key (expected key=value, key!=value or key)"
        )))
    }
}

fn check_value(term: &str, value: &str) -> Result<String> {
    if value.len() > 1024 || value.chars().any(|c| c.is_control() || c == '=') {
        return Err(invalid(format!("{term:?} has an invalid value")));
    }
    Ok(value.to_owned())
}

impl Selector {
    /// Parses `k=v,k!=v,k`. Whitespace around terms, keys and values is ignored; an
    /// empty or blank selector matches everything.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self::default());
        }
        let mut requirements = Vec::new();
        for raw in text.split(',') {
            let term = raw.trim();
            if term.is_empty() {
                return Err(invalid(format!("{text:?} has an empty term")));
            }
            if requirements.len() == MAX_TERMS {
                return Err(invalid(format!("more than {MAX_TERMS} terms")));
            }
            let requirement = if let Some((k, v)) = term.split_once("!=") {
                Requirement::NotEquals {
                    key: check_key(term, k.trim())?,
                    value: check_value(term, v.trim())?,
                }
            } else if let Some((k, v)) = term.split_once('=') {
                Requirement::Equals {
                    key: check_key(term, k.trim())?,
                    value: check_value(term, v.trim())?,
                }
            } else {
                Requirement::Exists {
                    key: check_key(term, term)?,
                }
            };
            requirements.push(requirement);
        }
        Ok(Self { requirements })
    }

    /// Parses an optional selector; `None` matches everything.
    pub fn parse_opt(text: Option<&str>) -> Result<Self> {
        text.map_or_else(|| Ok(Self::default()), Self::parse)
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn eq(k: &str, v: &str) -> Requirement {
        Requirement::Equals {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn parses_the_grammar() {
        let s = Selector::parse(" team=qa , env!=prod,smoke, app.io/tier = web ").unwrap();
        assert_eq!(
            s.requirements,
            vec![
                eq("team", "qa"),
                Requirement::NotEquals {
                    key: "env".into(),
                    value: "prod".into()
                },
                Requirement::Exists {
                    key: "smoke".into()
                },
                eq("app.io/tier", "web"),
            ]
        );
        assert!(Selector::parse("").unwrap().is_empty());
        assert!(Selector::parse_opt(None).unwrap().is_empty());
        assert_eq!(
            Selector::parse("k=").unwrap().requirements,
            vec![eq("k", "")]
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "a=b,,c",
            ",",
            "=v",
            "!=v",
            "a=b=c",
            "a b=c",
            "a!b",
            "a\u{1}b=c",
            "x=\u{7}",
        ] {
            match Selector::parse(bad) {
                Err(Error::Invalid(v)) => assert_eq!(v[0].path, "selector", "{bad}"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
        let many = vec!["k"; MAX_TERMS + 1].join(",");
        assert!(Selector::parse(&many).is_err());
    }

    #[test]
    fn matches_like_kubernetes() {
        let labels: BTreeMap<String, String> = [("team".to_string(), "qa".to_string())]
            .into_iter()
            .collect();
        assert!(Selector::parse("team=qa").unwrap().matches(&labels));
        assert!(!Selector::parse("team!=qa").unwrap().matches(&labels));
        assert!(Selector::parse("env!=prod").unwrap().matches(&labels));
        assert!(!Selector::parse("team,env").unwrap().matches(&labels));
    }
}
