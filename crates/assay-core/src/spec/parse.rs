//! Turning YAML (or JSON, which is YAML) text into the serde model, safely.
//!
//! The parser is `serde-saphyr`: pure Rust, no `unsafe`, fuzzed, panic-free on malformed input,
//! and with explicit budgets. The budgets below bound what a hostile document under
//! `MAX_DOCUMENT_BYTES` can cost: nesting depth (no stack overflow), node count, aliases
//! and replayed alias events (no "billion laughs"). Syntax and type errors carry the field
//! path (via `serde_path_to_error`) and the line and column.

use super::document::RawDocument;
use crate::error::{Error, FieldError};
use serde_saphyr::budget::BudgetBreach;

/// Deepest YAML nesting accepted (mappings + sequences). Step nesting is limited separately;
/// 16 levels of nested steps need about 40.
pub const MAX_YAML_DEPTH: usize = 64;
/// Stack of the thread that deserializes. Deserialization recurses once per nesting level
/// (about 25 KiB a level in unoptimized builds), so it runs on a thread of its own with a
/// stack sized for `MAX_YAML_DEPTH`, whatever the stack of the caller (a 2 MiB async worker).
const PARSE_STACK_BYTES: usize = 8 * 1024 * 1024;
/// Most YAML nodes (scalars, mappings, sequences) in one document, aliases expanded.
pub const MAX_YAML_NODES: usize = 100_000;
/// Most alias uses (`*name`) in one document.
pub const MAX_YAML_ALIASES: usize = 1_000;
/// Most events replayed from aliases in one document.
pub const MAX_YAML_ALIAS_EVENTS: usize = 100_000;

fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_YAML_DEPTH,
            max_nodes: MAX_YAML_NODES,
            max_aliases: MAX_YAML_ALIASES,
            max_anchors: MAX_YAML_ALIASES,
            max_events: 4 * MAX_YAML_NODES,
            max_documents: 1,
            flow_nesting_limit: MAX_YAML_DEPTH,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: MAX_YAML_ALIAS_EVENTS,
        },
        // Testkube reads YAML with Go's parser, where `mode: 0755` is octal.
        legacy_octal_numbers: true,
        with_snippet: false,
    }
}

/// Deserializes one document. Errors are `Error::Invalid` with one `FieldError`.
pub(crate) fn load(source: &str) -> Result<RawDocument, Error> {
    let blank = source.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#') || line == "---" || line == "..."
    });
    if blank {
        return Err(Error::invalid("", "the document is empty"));
    }
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("assay-spec-parse".into())
            .stack_size(PARSE_STACK_BYTES)
            .spawn_scoped(scope, || load_here(source))
            .map_err(|e| Error::Unavailable(format!("cannot start the parser thread: {e}")))?;
        worker
            .join()
            .map_err(|_| Error::Internal("the YAML parser panicked".into()))?
    })
}

fn load_here(source: &str) -> Result<RawDocument, Error> {
    let mut path = String::new();
    let result = serde_saphyr::with_deserializer_from_str_with_options(source, options(), |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = clean_path(&e.path().to_string());
            e.into_inner()
        })
    });
    result.map_err(|e| {
        Error::Invalid(vec![FieldError {
            path,
            message: describe(&e),
        }])
    })
}

/// `serde_path_to_error` writes `.` for the root and `?` for keys it could not name.
fn clean_path(path: &str) -> String {
    let path = path.replace(".?", "");
    if path == "." || path == "?" {
        String::new()
    } else {
        path
    }
}

fn describe(e: &serde_saphyr::Error) -> String {
    use serde_saphyr::Error as E;
    let e = e.without_snippet();
    let at = |text: String| match e.location() {
        Some(l) => format!("{text} at line {}, column {}", l.line(), l.column()),
        None => text,
    };
    match e {
        E::MultipleDocuments { .. } => at(
            "the input holds more than one YAML document (`---`); submit one document at a time"
                .into(),
        ),
        E::Budget { breach, .. } => at(describe_breach(breach)),
        E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. }
        | E::AliasReplayCounterOverflow { .. } => at(format!(
            "YAML aliases expand to more than {MAX_YAML_ALIAS_EVENTS} events; \
             the document is rejected to protect the server (alias bomb)"
        )),
        E::AliasError { error, .. } => describe(error),
        E::DuplicateMappingKey { key, .. } => at(match key {
            Some(k) => format!("duplicate key {k:?}"),
            None => "duplicate key".into(),
        }),
        other => {
            let text = other.to_string();
            // The scanner's own nesting guard (flow collections) words it differently.
            match text.strip_prefix("recursion limit exceeded") {
                Some(rest) => {
                    format!("the document is nested deeper than {MAX_YAML_DEPTH} levels{rest}")
                }
                None => text,
            }
        }
    }
}

fn describe_breach(breach: &BudgetBreach) -> String {
    match breach {
        BudgetBreach::Depth { .. } => {
            format!("the document is nested deeper than {MAX_YAML_DEPTH} levels")
        }
        BudgetBreach::Nodes { .. } | BudgetBreach::Events { .. } => format!(
            "the document has more than {MAX_YAML_NODES} values once YAML aliases are expanded; \
             it is rejected to protect the server (alias bomb or oversized document)"
        ),
        BudgetBreach::Aliases { .. } | BudgetBreach::Anchors { .. } => {
            format!("the document uses more than {MAX_YAML_ALIASES} YAML aliases or anchors")
        }
        BudgetBreach::AliasAnchorRatio { .. }
        | BudgetBreach::RecordedAnchorEvents { .. }
        | BudgetBreach::RecordedAnchorBytes { .. } => {
            "the document uses YAML aliases excessively; it is rejected to protect the server \
             (alias bomb)"
                .into()
        }
        BudgetBreach::Documents { .. } => {
            "the input holds more than one YAML document (`---`); submit one document at a time"
                .into()
        }
        other => format!("the document exceeds a parser limit ({other:?})"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::time::{Duration, Instant};

    fn only_error(source: &str) -> FieldError {
        match load(source) {
            Err(Error::Invalid(mut errors)) => {
                assert_eq!(errors.len(), 1, "{errors:?}");
                errors.remove(0)
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn unknown_field_has_path_line_and_column() {
        let e = only_error(
            "kind: TestWorkflow\nmetadata:\n  name: x\nspec:\n  steps:\n  - shell: echo\n  - shell: echo\n    timeot: 5s\n",
        );
        assert_eq!(e.path, "spec.steps[1].timeot");
        assert!(
            e.message
                .starts_with("unknown field `timeot`, expected one of"),
            "{}",
            e.message
        );
        assert!(e.message.ends_with("at line 8, column 5"), "{}", e.message);
    }

    #[test]
    fn type_error_has_path_and_location() {
        let e = only_error("metadata:\n  name: x\nspec:\n  steps:\n  - retry: {count: many}\n");
        assert_eq!(e.path, "spec.steps[0].retry.count");
        assert!(e.message.contains("at line 5, column"), "{}", e.message);
    }

    #[test]
    fn syntax_error_has_location() {
        let e = only_error("metadata:\n  name: [x\n");
        assert!(e.message.contains("line"), "{}", e.message);
    }

    #[test]
    fn run_string_or_object_and_env_list_or_map() {
        let doc = load(
            "metadata: {name: x}\nspec:\n  steps:\n  - run: echo hi\n    env: {B: '1', A: x}\n  - run:\n      command: [ls]\n      env: [{name: C, value: y}]\n",
        )
        .unwrap();
        let s = &doc.spec.steps;
        assert_eq!(s[0].run.as_ref().unwrap().shell.as_deref(), Some("echo hi"));
        let names: Vec<_> = s[0].env.0.iter().map(|e| (&*e.name, &*e.value)).collect();
        assert_eq!(names, vec![("B", "1"), ("A", "x")]);
        let run = s[1].run.as_ref().unwrap();
        assert_eq!(run.command, Some(vec!["ls".to_string()]));
        assert_eq!(run.env.0[0].name, "C");
    }

    #[test]
    fn unknown_field_inside_run_object_keeps_path() {
        let e = only_error("metadata: {name: x}\nspec:\n  steps:\n  - run: {comand: [ls]}\n");
        assert_eq!(e.path, "spec.steps[0].run.comand");
        assert!(
            e.message.starts_with("unknown field `comand`"),
            "{}",
            e.message
        );
    }

    #[test]
    fn file_modes() {
        let doc = load(
            "metadata: {name: x}\nspec:\n  content:\n    files:\n    - {path: a, mode: 0755}\n    - {path: b, mode: \"0644\"}\n    - {path: c, mode: 493}\n    - {path: d, mode: '755'}\n",
        )
        .unwrap();
        let modes: Vec<u32> = doc
            .spec
            .content
            .unwrap()
            .files
            .iter()
            .map(|f| f.mode.unwrap().0)
            .collect();
        assert_eq!(modes, vec![0o755, 0o644, 0o755, 0o755]);
        let e = only_error(
            "metadata: {name: x}\nspec:\n  content:\n    files:\n    - {path: a, mode: 755}\n",
        );
        assert_eq!(e.path, "spec.content.files[0].mode");
        assert!(
            e.message.starts_with("mode 755 is not a permission mode"),
            "{}",
            e.message
        );
        let e = only_error(
            "metadata: {name: x}\nspec:\n  content:\n    files:\n    - {path: a, mode: \"0799\"}\n",
        );
        assert!(
            e.message.starts_with("\"0799\" is not an octal file mode"),
            "{}",
            e.message
        );
    }

    #[test]
    fn json_is_accepted() {
        let doc = load(r#"{"kind": "TestWorkflow", "metadata": {"name": "j"}, "spec": {"steps": [{"shell": "echo"}]}}"#)
            .unwrap();
        assert_eq!(doc.metadata.name, "j");
        assert_eq!(doc.spec.steps[0].shell.as_deref(), Some("echo"));
    }

    #[test]
    fn multiple_documents_are_rejected() {
        let e = only_error("metadata: {name: a}\n---\nmetadata: {name: b}\n");
        assert_eq!(e.path, "");
        assert!(
            e.message
                .starts_with("the input holds more than one YAML document"),
            "{}",
            e.message
        );
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let e = only_error("metadata: {name: a}\nmetadata: {name: b}\n");
        assert!(
            e.message.starts_with("duplicate key \"metadata\""),
            "{}",
            e.message
        );
    }

    #[test]
    fn empty_document() {
        let e = only_error("  \n# nothing\n");
        assert_eq!(e.message, "the document is empty");
    }

    /// The classic "billion laughs": nine levels of nine aliases each, 9^9 strings once
    /// expanded. It must fail quickly with a clear error instead of eating memory and CPU.
    #[test]
    fn alias_bomb_fails_fast() {
        let mut doc = String::from(
            "metadata:\n  name: bomb\nspec:\n  pod:\n    a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        for w in names.windows(2) {
            let (prev, cur) = (w[0], w[1]);
            let refs = vec![format!("*{prev}"); 9].join(",");
            doc.push_str(&format!("    {cur}: &{cur} [{refs}]\n"));
        }
        assert!(doc.len() < 1024);
        let started = Instant::now();
        let e = only_error(&doc);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(
            e.message.contains("alias bomb"),
            "unexpected message: {}",
            e.message
        );
        assert!(e.path.starts_with("spec.pod"), "{}", e.path);
    }

    /// Same attack with mappings and nested aliases in a sequence of sequences.
    #[test]
    fn alias_bomb_in_sequences_fails_fast() {
        let mut doc = String::from(
            "metadata: {name: x}\nspec:\n  pod:\n    a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
        );
        for i in 1..20 {
            doc.push_str(&format!("    a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n", p = i - 1));
        }
        let started = Instant::now();
        let e = only_error(&doc);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(e.message.contains("alias bomb"), "{}", e.message);
    }

    /// 100k levels of `[` must not overflow the stack: the depth budget stops it early.
    #[test]
    fn deep_flow_nesting_is_rejected_without_stack_overflow() {
        let depth = 100_000;
        let doc = format!(
            "metadata: {{name: x}}\nspec:\n  pod: {}{}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert!(doc.len() < crate::spec::MAX_DOCUMENT_BYTES);
        let e = only_error(&doc);
        assert!(
            e.message
                .starts_with("the document is nested deeper than 64 levels at line 3"),
            "{}",
            e.message
        );
    }

    #[test]
    fn deep_block_nesting_is_rejected() {
        let mut doc = String::from("metadata: {name: x}\nspec:\n  pod:\n");
        for i in 0..100 {
            doc.push_str(&" ".repeat(4 + i));
            doc.push_str("- \n");
        }
        let e = only_error(&doc);
        assert!(
            e.message
                .starts_with("the document is nested deeper than 64 levels"),
            "{}",
            e.message
        );
    }

    #[test]
    fn deep_json_nesting_is_rejected() {
        let depth = 200_000;
        let doc = format!(
            "{{\"metadata\": {{\"name\": \"x\"}}, \"spec\": {{\"pod\": {}{}}}}}",
            "{\"a\":".repeat(depth),
            "}".repeat(depth)
        );
        let e = only_error(&doc);
        assert!(
            e.message
                .starts_with("the document is nested deeper than 64 levels"),
            "{}",
            e.message
        );
    }

    /// The deepest document the limit allows parses even when the caller has a small stack
    /// (the parser runs on its own thread).
    #[test]
    fn deepest_allowed_document_parses_on_a_small_caller_stack() {
        let depth = MAX_YAML_DEPTH - 3; // root map, spec, pod
        let doc = format!(
            "metadata: {{name: x}}\nspec:\n  pod: {}{}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let parsed = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                load(&doc)
                    .map(|d| d.spec.pod.is_some())
                    .map_err(|e| e.to_string())
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(parsed, Ok(true));
        let too_deep = format!(
            "metadata: {{name: x}}\nspec:\n  pod: {}{}\n",
            "[".repeat(depth + 2),
            "]".repeat(depth + 2)
        );
        assert!(load(&too_deep).is_err());
    }

    #[test]
    fn reasonable_anchor_use_still_works() {
        let doc = load(
            "metadata: {name: x}\nspec:\n  container:\n    env: &env [{name: A, value: b}]\n  steps:\n  - shell: echo\n    env: *env\n",
        )
        .unwrap();
        assert_eq!(doc.spec.steps[0].env.0[0].value, "b");
    }
}
