//! Keeps sensitive config values out of everything we store: the recorded plan, step and
//! execution errors. (The executor masks logs; `BuiltPlan.config` is masked by the spec.)

use assay_core::execution::{ExecutionPlan, StepResult};
use serde_json::Value;

pub(crate) const MASK: &str = "***";

/// Key added to the recorded plan when values were withheld, so recovery knows the plan
/// cannot be re-run from the database alone.
pub(crate) const WITHHELD_KEY: &str = "sensitive_values_withheld";

/// Secrets longest first, so a secret containing another is masked whole.
fn ordered(secrets: &[String]) -> Vec<&str> {
    let mut ordered: Vec<&str> = secrets
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    ordered.sort_by_key(|s| std::cmp::Reverse(s.len()));
    ordered.dedup();
    ordered
}

pub(crate) fn mask_text(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for secret in ordered(secrets) {
        if out.contains(secret) {
            out = out.replace(secret, MASK);
        }
    }
    out
}

pub(crate) fn mask_json(value: &mut Value, secrets: &[String]) {
    match value {
        Value::String(s) => *s = mask_text(s, secrets),
        Value::Array(items) => items.iter_mut().for_each(|v| mask_json(v, secrets)),
        Value::Object(map) => map.values_mut().for_each(|v| mask_json(v, secrets)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

pub(crate) fn mask_steps(steps: &[StepResult], secrets: &[String]) -> Vec<StepResult> {
    steps
        .iter()
        .map(|step| {
            let mut step = step.clone();
            step.error = step.error.map(|e| mask_text(&e, secrets));
            step
        })
        .collect()
}

/// The plan as recorded on the execution: serialized (the `secrets` list is never
/// serialized) with every secret value masked wherever it was substituted.
pub(crate) fn recorded_plan(plan: &ExecutionPlan) -> Value {
    let mut value = serde_json::to_value(plan).unwrap_or(Value::Null);
    if !plan.secrets.is_empty() {
        mask_json(&mut value, &plan.secrets);
        if let Value::Object(map) = &mut value {
            map.insert(WITHHELD_KEY.into(), Value::Bool(true));
        }
    }
    value
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use assay_core::execution::{PlannedStep, StepCommand, StepCondition};
    use serde_json::json;
    use std::collections::BTreeMap;

    #[test]
    fn masks_longest_secret_first_and_ignores_empty() {
        let secrets = vec!["ab".to_string(), "abcd".to_string(), String::new()];
        assert_eq!(mask_text("x abcd y ab", &secrets), "x *** y ***");
        assert_eq!(mask_text("nothing", &secrets), "nothing");
    }

    #[test]
    fn masks_nested_json_strings() {
        let mut v = json!({"a": ["pw=hunter2", 3, {"b": "hunter2"}], "c": null});
        mask_json(&mut v, &["hunter2".to_string()]);
        assert_eq!(v, json!({"a": ["pw=***", 3, {"b": "***"}], "c": null}));
    }

    #[test]
    fn recorded_plan_masks_and_marks_withheld_values() {
        let step = PlannedStep {
            reference: "1".into(),
            name: "login".into(),
            command: Some(StepCommand::Shell {
                shell: vec!["/bin/sh".into()],
                script: "login --password 'hunter2'".into(),
            }),
            working_dir: None,
            env: BTreeMap::from([("PW".to_string(), "hunter2".to_string())]),
            condition: StepCondition::Passed,
            timeout: None,
            retries: 0,
            optional: false,
            negative: false,
            artifacts: None,
            steps: vec![],
        };
        let mut plan = ExecutionPlan {
            files: vec![],
            git: None,
            env: BTreeMap::new(),
            working_dir: None,
            setup: vec![],
            steps: vec![step],
            after: vec![],
            timeout: None,
            secrets: vec!["hunter2".into()],
        };
        let recorded = recorded_plan(&plan);
        let text = recorded.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(recorded["steps"][0]["env"]["PW"], json!("***"));
        assert_eq!(
            recorded["steps"][0]["command"]["script"],
            json!("login --password '***'")
        );
        assert_eq!(recorded[WITHHELD_KEY], json!(true));

        plan.secrets.clear();
        let recorded = recorded_plan(&plan);
        assert!(recorded.get(WITHHELD_KEY).is_none());
        assert_eq!(recorded["steps"][0]["env"]["PW"], json!("hunter2"));
    }
}
