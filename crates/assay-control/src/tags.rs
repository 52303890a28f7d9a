//! Execution tags: label-like keys, bounded values.

use assay_core::error::FieldError;
use assay_core::{Error, Result};
use std::collections::BTreeMap;

const MAX_TAGS: usize = 50;
const MAX_KEY_CHARS: usize = 63;
const MAX_VALUE_CHARS: usize = 256;

/// Keys: 1–63 characters of `[A-Za-z0-9._/-]`, starting and ending alphanumeric.
/// Values: at most 256 characters, no control characters and no `,` (the selector
/// separator, so every tag stays selectable).
pub(crate) fn validate(tags: &BTreeMap<String, String>) -> Result<()> {
    let mut errors = Vec::new();
    if tags.len() > MAX_TAGS {
        errors.push(FieldError {
            path: "tags".into(),
            message: format!("at most {MAX_TAGS} tags are allowed, got {}", tags.len()),
        });
    }
    for (key, value) in tags {
        if !is_key(key) {
            errors.push(FieldError {
                path: format!("tags.{key}"),
                message: format!(
                    "tag keys are 1–{MAX_KEY_CHARS} characters of letters, digits, '.', '_', '/' \
                     and '-', starting and ending with a letter or digit"
                ),
            });
        }
        if value.chars().count() > MAX_VALUE_CHARS {
            errors.push(FieldError {
                path: format!("tags.{key}"),
                message: format!("tag values are at most {MAX_VALUE_CHARS} characters"),
            });
        } else if value.chars().any(|c| c.is_control() || c == ',') {
            errors.push(FieldError {
                path: format!("tags.{key}"),
                message: "tag values may not contain control characters or ','".into(),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(errors))
    }
}

fn is_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    bytes.len() <= MAX_KEY_CHARS
        && first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn accepts_label_like_keys_and_plain_values() {
        validate(&tags(&[
            ("branch", "feature/x"),
            ("ci.run_id", "12345"),
            ("team/owner", ""),
            ("a", &"v".repeat(256)),
        ]))
        .unwrap();
    }

    #[test]
    fn rejects_bad_keys_and_values_listing_each() {
        let err = validate(&tags(&[
            ("-bad", "x"),
            ("ok", "a,b"),
            (&"k".repeat(64), "x"),
            ("v", &"v".repeat(257)),
            ("nl", "a\nb"),
            ("", "x"),
        ]))
        .unwrap_err();
        let Error::Invalid(errors) = err else {
            panic!("expected Invalid");
        };
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(errors.len(), 6, "{errors:?}");
        assert!(paths.contains(&"tags.-bad"));
        assert!(paths.contains(&"tags.ok"));
        assert!(paths.contains(&"tags.v"));
        assert!(paths.contains(&"tags.nl"));
        assert!(paths.contains(&"tags."));
    }

    #[test]
    fn rejects_too_many_tags() {
        let many: BTreeMap<String, String> = (0..51)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        assert!(matches!(validate(&many), Err(Error::Invalid(e)) if e.len() == 1));
    }
}
