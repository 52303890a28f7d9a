//! "Did you mean" for unknown workflow and template names.
//!
//! `assay_core::Error::NotFound` has no room for suggestions and other crates construct
//! and match it, so we keep it as is and carry the suggestion inside `name`:
//! `workflow "smok; did you mean: smoke?" not found`. This helper is the only place that
//! formats it; when the error grows a dedicated field, only this function changes.

use assay_core::Error;

const MAX_SUGGESTIONS: usize = 3;

/// `NotFound` for `name`, suggesting up to three close `candidates`.
pub fn not_found_with_suggestions(kind: &'static str, name: &str, candidates: &[String]) -> Error {
    let close = closest(name, candidates);
    if close.is_empty() {
        Error::not_found(kind, name)
    } else {
        Error::not_found(kind, format!("{name}; did you mean: {}?", close.join(", ")))
    }
}

/// Candidates within a small edit distance (or containing / contained in `name`),
/// best first, at most three.
pub fn closest(name: &str, candidates: &[String]) -> Vec<String> {
    let wanted = name.to_lowercase();
    let limit = (wanted.chars().count() / 3).max(1);
    let mut scored: Vec<(usize, &String)> = candidates
        .iter()
        .filter(|c| c.as_str() != name)
        .filter_map(|candidate| {
            let lower = candidate.to_lowercase();
            let distance = strsim::damerau_levenshtein(&wanted, &lower);
            let related = wanted.len() >= 3 && (lower.contains(&wanted) || wanted.contains(&lower));
            (distance <= limit || related).then_some((distance, candidate))
        })
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, c)| c.clone())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn suggests_close_names_best_first() {
        let candidates = names(&["smoke", "smoke-api", "load", "regression", "smoky"]);
        assert_eq!(
            closest("smok", &candidates),
            names(&["smoke", "smoky", "smoke-api"])
        );
        assert_eq!(closest("lod", &candidates), names(&["load"]));
        assert!(closest("zzzzzz", &candidates).is_empty());
    }

    #[test]
    fn formats_the_message() {
        let err = not_found_with_suggestions("workflow", "smok", &names(&["smoke", "load"]));
        assert_eq!(
            err.to_string(),
            r#"workflow "smok; did you mean: smoke?" not found"#
        );
        let err = not_found_with_suggestions("workflow", "nothing-like", &names(&["smoke"]));
        assert_eq!(err.to_string(), r#"workflow "nothing-like" not found"#);
        assert!(matches!(
            err,
            Error::NotFound {
                kind: "workflow",
                ..
            }
        ));
    }
}
