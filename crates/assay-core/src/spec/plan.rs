//! From a validated document, its templates and the caller's config to an `ExecutionPlan`.
//!
//! Semantics (after Testkube):
//! - Spec-level `use`: each template's `setup`/`steps`/`after` come before the user's own,
//!   in `use` order; templates' content files, git, container env and working directory and
//!   `timeouts.total` are merged with later definitions winning and the user's document last.
//! - Step-level `use` (and `template`): the templates' `setup`, `steps` and `after` become the
//!   step's nested steps (the `after` ones with `condition: always` unless they say otherwise),
//!   before the step's own nested steps. Their container env and working directory apply to
//!   those nested steps only (the step's own env wins); their content joins the workspace.
//! - A template's parameters take their values from the `config` of the `use` entry (which
//!   may use `{{config.x}}` of the document holding the `use`), else their defaults.
//! - Groups pass their env and working directory down: a nested step gets every variable of
//!   its group that it does not set itself.
//! - References: `setup.1`, `1`, `2.1`, `after.1`, numbered after templates are expanded.
//! - A step without a name is named after its command (first line of the script, or the
//!   program and arguments, as written with `{{config.x}}` unexpanded so no value leaks),
//!   after its templates for a `use` group, `artifacts` for an artifact-only step, and
//!   `step <reference>` otherwise.
//! - Shell scripts run as `/bin/sh -e -c <script>` (`StepCommand::Shell { shell: ["/bin/sh",
//!   "-e"], .. }`; the executor adds `-c`): like Testkube, which prepends `set -e`, a failing
//!   command fails the step.

use super::config::{self, Resolved};
use super::document::{Condition, Content, EnvList, Spec, Step, TemplateRef};
use super::duration::parse_duration;
use super::expr;
use super::shell;
use super::validate::{check_git_revision, check_git_uri, check_relative_path};
use super::{BuiltPlan, MAX_STEP_DEPTH, MAX_STEPS, MAX_TEMPLATE_DEPTH, WorkflowDocument};
use crate::error::{Error, FieldError, Result};
use crate::execution::{
    ArtifactSpec, ConfigValue, ExecutionPlan, GitContent, InlineFile, PlannedStep, StepCommand,
    StepCondition,
};
use crate::workflow::ResourceKind;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The interpreter of shell steps, run as `<shell…> -c <script>` (see `StepCommand::Shell`):
/// `-e` so a failing command fails the step, like Testkube's `set -e`.
pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-e"];
/// Where git content is cloned when `mountPath` is not given.
pub const DEFAULT_MOUNT_PATH: &str = "repo";
/// Most template expansions in one plan (bounds fan-out: a template using another twice, …).
pub const MAX_TEMPLATE_EXPANSIONS: usize = 200;

type Values = BTreeMap<String, Resolved>;

struct Scope<'a> {
    spec: &'a Spec,
    values: Values,
    /// Prefix of error paths: empty for the workflow, `templates[name].` inside a template.
    prefix: String,
    /// Templates being expanded, outermost first (for cycle detection).
    chain: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Spec,
    Step,
}

#[derive(Default)]
struct Parts {
    setup: Vec<PlannedStep>,
    steps: Vec<PlannedStep>,
    after: Vec<PlannedStep>,
    /// Step level only: the templates' container env and working directory.
    env: BTreeMap<String, String>,
    working_dir: Option<String>,
}

struct Builder<'a> {
    templates: &'a BTreeMap<String, WorkflowDocument>,
    errors: Vec<FieldError>,
    secrets: BTreeSet<String>,
    files: Vec<InlineFile>,
    git: Option<GitContent>,
    env: BTreeMap<String, String>,
    working_dir: Option<String>,
    timeout: Option<Duration>,
    produced_steps: usize,
    expansions: usize,
    over_budget: bool,
}

pub(crate) fn build(
    workflow: &WorkflowDocument,
    templates: &BTreeMap<String, WorkflowDocument>,
    config: &BTreeMap<String, Value>,
) -> Result<BuiltPlan> {
    if workflow.kind != ResourceKind::Workflow {
        return Err(Error::invalid(
            "kind",
            "a template cannot run by itself; use it from a workflow",
        ));
    }
    let values =
        config::resolve(&workflow.spec.config, config, "config").map_err(Error::Invalid)?;
    let recorded = values
        .iter()
        .map(|(name, r)| {
            let value = if r.sensitive {
                Value::String("***".into())
            } else {
                r.json.clone()
            };
            (
                name.clone(),
                ConfigValue {
                    value,
                    sensitive: r.sensitive,
                },
            )
        })
        .collect();

    let mut b = Builder {
        templates,
        errors: Vec::new(),
        secrets: BTreeSet::new(),
        files: Vec::new(),
        git: None,
        env: BTreeMap::new(),
        working_dir: None,
        timeout: None,
        produced_steps: 0,
        expansions: 0,
        over_budget: false,
    };
    b.add_secrets(&values);
    let scope = Scope {
        spec: &workflow.spec,
        values,
        prefix: String::new(),
        chain: Vec::new(),
    };
    let parts = b.expand(&scope, Level::Spec);
    let mut plan = ExecutionPlan {
        files: std::mem::take(&mut b.files),
        git: b.git.take(),
        env: std::mem::take(&mut b.env),
        working_dir: b.working_dir.take(),
        setup: parts.setup,
        steps: parts.steps,
        after: parts.after,
        timeout: b.timeout,
        secrets: Vec::new(),
    };
    number(&mut plan.setup, "setup.");
    number(&mut plan.steps, "");
    number(&mut plan.after, "after.");

    let total = plan.all_steps().len();
    if total > MAX_STEPS && !b.over_budget {
        b.error(
            "spec",
            format!(
                "the plan has {total} steps once templates are expanded; the limit is {MAX_STEPS}"
            ),
        );
    }
    let depth = [&plan.setup, &plan.steps, &plan.after]
        .iter()
        .map(|s| depth_of(s))
        .max()
        .unwrap_or(0);
    if depth > MAX_STEP_DEPTH {
        b.error(
            "spec",
            format!(
                "steps are nested {depth} levels deep once templates are expanded; the limit \
                 is {MAX_STEP_DEPTH}"
            ),
        );
    }
    if plan.steps.is_empty() && b.errors.is_empty() {
        b.error(
            "spec.steps",
            "the workflow has no steps, not even from its templates",
        );
    }
    if !b.errors.is_empty() {
        let mut seen = BTreeSet::new();
        let errors = b
            .errors
            .into_iter()
            .filter(|e| seen.insert((e.path.clone(), e.message.clone())))
            .collect();
        return Err(Error::Invalid(errors));
    }
    plan.secrets = ordered_secrets(b.secrets);
    Ok(BuiltPlan {
        plan,
        config: recorded,
    })
}

/// Every form the secrets take in a plan (see `secret_forms`), longest first so masking
/// replaces a secret before any secret it contains.
fn ordered_secrets(secrets: BTreeSet<String>) -> Vec<String> {
    let mut list: Vec<String> = secrets
        .iter()
        .flat_map(|s| secret_forms(s))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    list.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    list
}

/// A secret as given, and as written inside single quotes (`'` → `'\''`, also what
/// `set -x` traces print) and inside a here-document (`\`, `$`, `` ` `` escaped).
fn secret_forms(secret: &str) -> Vec<String> {
    if secret.is_empty() {
        return Vec::new();
    }
    let mut heredoc = String::new();
    for c in secret.chars() {
        if matches!(c, '\\' | '$' | '`') {
            heredoc.push('\\');
        }
        heredoc.push(c);
    }
    let mut forms = vec![secret.to_owned(), secret.replace('\'', "'\\''"), heredoc];
    forms.sort();
    forms.dedup();
    forms
}

fn depth_of(steps: &[PlannedStep]) -> usize {
    steps
        .iter()
        .map(|s| 1 + depth_of(&s.steps))
        .max()
        .unwrap_or(0)
}

fn number(steps: &mut [PlannedStep], prefix: &str) {
    for (i, step) in steps.iter_mut().enumerate() {
        step.reference = format!("{prefix}{}", i + 1);
        if step.name.is_empty() {
            step.name = format!("step {}", step.reference);
        }
        let child_prefix = format!("{}.", step.reference);
        number(&mut step.steps, &child_prefix);
    }
}

/// Gives `step` (and its nested steps) every variable of `env` it does not set, and the
/// working directory if it has none.
fn inherit(step: &mut PlannedStep, env: &BTreeMap<String, String>, working_dir: Option<&String>) {
    for (k, v) in env {
        step.env.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if step.working_dir.is_none() {
        step.working_dir = working_dir.cloned();
    }
    for child in &mut step.steps {
        inherit(child, env, working_dir);
    }
}

/// A short label from text as written (expressions unexpanded): its first non-empty line.
fn label(text: &str) -> String {
    const MAX: usize = 60;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if line.chars().count() > MAX {
        let cut: String = line.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        line.to_owned()
    }
}

impl<'a> Builder<'a> {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn add_secrets(&mut self, values: &Values) {
        for r in values.values() {
            if r.sensitive && !r.text.is_empty() {
                self.secrets.insert(r.text.clone());
            }
        }
    }

    /// Text inserted as is.
    fn data(&mut self, text: &str, path: &str, scope: &Scope<'_>) -> String {
        let rendered = expr::parse(text).and_then(|t| {
            t.render_verbatim(|name| scope.values.get(name).map(|r| r.text.as_str()))
        });
        match rendered {
            Ok(s) => s,
            Err(e) => {
                self.error(path, e);
                text.to_owned()
            }
        }
    }

    /// A shell script: values quoted for their place in it.
    fn script(&mut self, text: &str, path: &str, scope: &Scope<'_>) -> String {
        let rendered = expr::parse(text).and_then(|t| shell::render_script(&t, &scope.values));
        match rendered {
            Ok(s) => s,
            Err(e) => {
                self.error(path, e);
                String::new()
            }
        }
    }

    fn env_map(
        &mut self,
        env: &EnvList,
        path: &str,
        scope: &Scope<'_>,
    ) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (i, var) in env.0.iter().enumerate() {
            let value = self.data(&var.value, &format!("{path}[{i}].value"), scope);
            out.insert(var.name.clone(), value);
        }
        out
    }

    /// Resolves a `use` entry to the template's scope, reporting why when it cannot.
    fn enter(&mut self, r: &TemplateRef, path: &str, scope: &Scope<'_>) -> Option<Scope<'a>> {
        let name_path = format!("{path}.name");
        if self.over_budget {
            return None;
        }
        self.expansions += 1;
        if self.expansions > MAX_TEMPLATE_EXPANSIONS {
            self.over_budget = true;
            self.error(
                path,
                format!(
                    "templates are expanded more than {MAX_TEMPLATE_EXPANSIONS} times; the plan \
                     would be too large"
                ),
            );
            return None;
        }
        if scope.chain.contains(&r.name) {
            let mut cycle = scope.chain.clone();
            cycle.push(r.name.clone());
            self.error(
                name_path,
                format!("template {:?} uses itself ({})", r.name, cycle.join(" → ")),
            );
            return None;
        }
        if scope.chain.len() >= MAX_TEMPLATE_DEPTH {
            self.error(
                name_path,
                format!("templates are nested deeper than {MAX_TEMPLATE_DEPTH} levels"),
            );
            return None;
        }
        let templates = self.templates;
        let Some(doc) = templates.get(&r.name) else {
            self.error(name_path, format!("template {:?} not found", r.name));
            return None;
        };
        if doc.kind != ResourceKind::Template {
            self.error(
                name_path,
                format!("{:?} is a workflow, not a template", r.name),
            );
            return None;
        }
        let mut given = BTreeMap::new();
        for (key, value) in &r.config {
            let value = match value {
                Value::String(s) => {
                    Value::String(self.data(s, &format!("{path}.config.{key}"), scope))
                }
                other => other.clone(),
            };
            given.insert(key.clone(), value);
        }
        let values = match config::resolve(&doc.spec.config, &given, &format!("{path}.config")) {
            Ok(v) => v,
            Err(errors) => {
                self.errors.extend(errors);
                return None;
            }
        };
        self.add_secrets(&values);
        let mut chain = scope.chain.clone();
        chain.push(r.name.clone());
        Some(Scope {
            spec: &doc.spec,
            values,
            prefix: format!("templates[{}].", r.name),
            chain,
        })
    }

    fn expand(&mut self, scope: &Scope<'_>, level: Level) -> Parts {
        let mut parts = Parts::default();
        let prefix = scope.prefix.clone();
        for (i, r) in scope.spec.uses.iter().enumerate() {
            if let Some(inner) = self.enter(r, &format!("{prefix}spec.use[{i}]"), scope) {
                let sub = self.expand(&inner, level);
                parts.setup.extend(sub.setup);
                parts.steps.extend(sub.steps);
                parts.after.extend(sub.after);
                parts.env.extend(sub.env);
                if sub.working_dir.is_some() {
                    parts.working_dir = sub.working_dir;
                }
            }
        }
        if let Some(content) = &scope.spec.content {
            self.content(content, &format!("{prefix}spec.content"), scope);
        }
        if let Some(c) = &scope.spec.container {
            let env = self.env_map(&c.env, &format!("{prefix}spec.container.env"), scope);
            let wd = c
                .working_dir
                .as_ref()
                .map(|w| self.data(w, &format!("{prefix}spec.container.workingDir"), scope));
            let (target_env, target_wd) = match level {
                Level::Spec => (&mut self.env, &mut self.working_dir),
                Level::Step => (&mut parts.env, &mut parts.working_dir),
            };
            target_env.extend(env);
            if wd.is_some() {
                *target_wd = wd;
            }
        }
        if level == Level::Spec
            && let Some(total) = scope.spec.timeouts.as_ref().and_then(|t| t.total.as_ref())
        {
            match parse_duration(total) {
                Ok(d) => self.timeout = Some(d),
                Err(e) => self.error(format!("{prefix}spec.timeouts.total"), e),
            }
        }
        for (i, s) in scope.spec.setup.iter().enumerate() {
            let step = self.step(s, &format!("{prefix}spec.setup[{i}]"), scope, false);
            parts.setup.push(step);
        }
        for (i, s) in scope.spec.steps.iter().enumerate() {
            let step = self.step(s, &format!("{prefix}spec.steps[{i}]"), scope, false);
            parts.steps.push(step);
        }
        let always = level == Level::Step;
        for (i, s) in scope.spec.after.iter().enumerate() {
            let step = self.step(s, &format!("{prefix}spec.after[{i}]"), scope, always);
            parts.after.push(step);
        }
        parts
    }

    fn content(&mut self, content: &Content, path: &str, scope: &Scope<'_>) {
        for (i, f) in content.files.iter().enumerate() {
            let p = format!("{path}.files[{i}].content");
            let text = if shell::is_shell_file(&f.path, &f.content) {
                self.script(&f.content, &p, scope)
            } else {
                self.data(&f.content, &p, scope)
            };
            let normalized = f.path.trim_start_matches("./").to_owned();
            self.files.retain(|existing| existing.path != normalized);
            self.files.push(InlineFile {
                path: normalized,
                content: text,
                mode: f.mode.map(|m| m.0),
            });
        }
        if let Some(git) = &content.git {
            let p = format!("{path}.git");
            let uri = self.data(&git.uri, &format!("{p}.uri"), scope);
            if let Err(e) = check_git_uri(&uri) {
                self.error(format!("{p}.uri"), e);
            }
            let revision = git.revision.as_ref().map(|r| {
                let rev = self.data(r, &format!("{p}.revision"), scope);
                if let Err(e) = check_git_revision(&rev) {
                    self.error(format!("{p}.revision"), e);
                }
                rev
            });
            self.git = Some(GitContent {
                uri,
                revision,
                paths: git.paths.clone(),
                mount_path: git
                    .mount_path
                    .clone()
                    .unwrap_or_else(|| DEFAULT_MOUNT_PATH.to_owned()),
            });
        }
    }

    fn step(&mut self, s: &Step, path: &str, scope: &Scope<'_>, after: bool) -> PlannedStep {
        self.produced_steps += 1;
        if self.produced_steps > MAX_STEPS && !self.over_budget {
            self.over_budget = true;
            self.error(
                "spec",
                format!("the plan has more than {MAX_STEPS} steps once templates are expanded"),
            );
        }
        let run = s.run.as_ref();

        // Env: container, then the step's own, then run's (the most specific wins).
        let mut env = BTreeMap::new();
        if let Some(c) = &s.container {
            env.extend(self.env_map(&c.env, &format!("{path}.container.env"), scope));
        }
        env.extend(self.env_map(&s.env, &format!("{path}.env"), scope));
        if let Some(r) = run {
            env.extend(self.env_map(&r.env, &format!("{path}.run.env"), scope));
        }
        let working_dir = match (
            run.and_then(|r| r.working_dir.as_ref()),
            s.working_dir.as_ref(),
            s.container.as_ref().and_then(|c| c.working_dir.as_ref()),
        ) {
            (Some(w), _, _) => Some(self.data(w, &format!("{path}.run.workingDir"), scope)),
            (None, Some(w), _) => Some(self.data(w, &format!("{path}.workingDir"), scope)),
            (None, None, Some(w)) => {
                Some(self.data(w, &format!("{path}.container.workingDir"), scope))
            }
            (None, None, None) => None,
        };

        let mut default_name = String::new();
        let script = match (&s.shell, run.and_then(|r| r.shell.as_ref())) {
            (Some(script), _) => Some((script, format!("{path}.shell"))),
            (None, Some(script)) => Some((script, format!("{path}.run.shell"))),
            (None, None) => None,
        };
        let command = if let Some((script, p)) = script {
            default_name = label(script);
            Some(StepCommand::Shell {
                shell: DEFAULT_SHELL.iter().map(|s| s.to_string()).collect(),
                script: self.script(script, &p, scope),
            })
        } else if let Some(program) = run.and_then(|r| r.command.as_ref()) {
            let argv: Vec<String> = program
                .iter()
                .chain(run.and_then(|r| r.args.as_ref()).into_iter().flatten())
                .cloned()
                .collect();
            default_name = label(&argv.join(" "));
            let script_at = shell::script_argument(&argv);
            let mut rendered = Vec::with_capacity(argv.len());
            for (i, arg) in argv.iter().enumerate() {
                let p = if i < program.len() {
                    format!("{path}.run.command[{i}]")
                } else {
                    format!("{path}.run.args[{}]", i - program.len())
                };
                rendered.push(if script_at == Some(i) {
                    self.script(arg, &p, scope)
                } else {
                    self.data(arg, &p, scope)
                });
            }
            Some(StepCommand::Exec { command: rendered })
        } else {
            None
        };

        let artifacts = s.artifacts.as_ref().map(|a| {
            let mut paths = Vec::with_capacity(a.paths.len());
            for (i, glob) in a.paths.iter().enumerate() {
                let p = format!("{path}.artifacts.paths[{i}]");
                let rendered = self.data(glob, &p, scope);
                if let Err(e) = check_relative_path(&rendered) {
                    self.error(p, e);
                }
                paths.push(rendered);
            }
            let working_dir = a
                .working_dir
                .as_ref()
                .map(|w| self.data(w, &format!("{path}.artifacts.workingDir"), scope));
            ArtifactSpec { paths, working_dir }
        });

        // Nested steps: the templates' first, then the step's own.
        let mut children = Vec::new();
        let mut template_names = Vec::new();
        let refs: Vec<(String, &TemplateRef)> = s
            .uses
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("{path}.use[{i}]"), r))
            .chain(s.template.iter().map(|r| (format!("{path}.template"), r)))
            .collect();
        for (ref_path, r) in refs {
            template_names.push(r.name.clone());
            if let Some(inner) = self.enter(r, &ref_path, scope) {
                let sub = self.expand(&inner, Level::Step);
                for mut child in sub.setup.into_iter().chain(sub.steps).chain(sub.after) {
                    inherit(&mut child, &env, working_dir.as_ref());
                    inherit(&mut child, &sub.env, sub.working_dir.as_ref());
                    children.push(child);
                }
            }
        }
        for (i, child) in s.steps.iter().enumerate() {
            let mut planned = self.step(child, &format!("{path}.steps[{i}]"), scope, false);
            inherit(&mut planned, &env, working_dir.as_ref());
            children.push(planned);
        }
        if command.is_none() && default_name.is_empty() {
            if !template_names.is_empty() {
                default_name = template_names.join(", ");
            } else if children.is_empty() && artifacts.is_some() {
                default_name = "artifacts".into();
            }
        }
        let artifact_only = command.is_none() && children.is_empty() && artifacts.is_some();

        let condition = match s.condition {
            Some(Condition::Passed) => StepCondition::Passed,
            Some(Condition::Failed) => StepCondition::Failed,
            Some(Condition::Always) => StepCondition::Always,
            // Collecting artifacts is most useful after a failure; cleanup always runs.
            None if artifact_only || after => StepCondition::Always,
            None => StepCondition::Passed,
        };
        let timeout = s.timeout.as_ref().and_then(|t| match parse_duration(t) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(format!("{path}.timeout"), e);
                None
            }
        });

        PlannedStep {
            reference: String::new(),
            name: s.name.clone().unwrap_or(default_name),
            command,
            working_dir,
            env,
            condition,
            timeout,
            retries: s.retry.as_ref().map_or(0, |r| r.count),
            optional: s.optional,
            negative: s.negative,
            artifacts,
            steps: children,
        }
    }
}

/// Replaces every secret in `text` with `***`, including the escaped forms a secret takes
/// inside a plan's scripts. (`ExecutionPlan::secrets` from `build_plan` already lists those
/// forms, so any plain substring masking of it is enough too.)
pub fn mask_secrets(text: &str, secrets: &[String]) -> String {
    let mut variants: Vec<String> = secrets.iter().flat_map(|s| secret_forms(s)).collect();
    variants.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    variants.dedup();
    let mut out = text.to_owned();
    for v in &variants {
        if out.contains(v.as_str()) {
            out = out.replace(v.as_str(), "***");
        }
    }
    out
}

/// The plan as JSON with every secret masked: what may be stored on an execution.
pub fn masked_plan(plan: &ExecutionPlan) -> Value {
    fn walk(v: &mut Value, secrets: &[String]) {
        match v {
            Value::String(s) => *s = mask_secrets(s, secrets),
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, secrets)),
            Value::Object(map) => map.values_mut().for_each(|i| walk(i, secrets)),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(plan).unwrap_or(Value::Null);
    walk(&mut value, &plan.secrets);
    value
}
