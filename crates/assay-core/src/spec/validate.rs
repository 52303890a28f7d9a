//! Semantic checks of a parsed document. Every problem found is reported, each with the path
//! of the field (`spec.steps[2].timeout`) and what is wrong with it.

use super::config::{MAX_PARAMETERS, check_declaration};
use super::document::{
    API_VERSION, Container, Content, EnvList, KIND_TEMPLATE, KIND_WORKFLOW, Parameter,
    ParameterType, RawDocument, Run, Step, TemplateRef,
};
use super::duration::parse_duration;
use super::expr::{self, Template};
use super::shell;
use super::{MAX_NAME_CHARS, MAX_STEP_DEPTH, MAX_STEPS};
use crate::error::FieldError;
use crate::tenancy::is_dns_label;
use crate::workflow::ResourceKind;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Longest description accepted.
pub const MAX_DESCRIPTION_CHARS: usize = 4096;
/// Most labels (and most execution tags) on one document.
pub const MAX_LABELS: usize = 64;
/// Most retries of one step.
pub const MAX_RETRIES: u32 = 100;

pub(crate) fn kind_name(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Workflow => KIND_WORKFLOW,
        ResourceKind::Template => KIND_TEMPLATE,
    }
}

/// How a text field treats `{{config.x}}`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Inserted as is.
    Data,
    /// A shell script: values are quoted.
    Script,
}

struct Checker<'a> {
    params: &'a BTreeMap<String, Parameter>,
    errors: Vec<FieldError>,
    steps: usize,
    too_deep_reported: bool,
}

pub(crate) fn validate(doc: &RawDocument, expected: ResourceKind) -> Vec<FieldError> {
    let mut c = Checker {
        params: &doc.spec.config,
        errors: Vec::new(),
        steps: 0,
        too_deep_reported: false,
    };
    c.header(doc, expected);
    c.spec(doc, expected);
    c.errors
}

impl Checker<'_> {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn header(&mut self, doc: &RawDocument, expected: ResourceKind) {
        if let Some(v) = &doc.api_version
            && v != API_VERSION
        {
            self.err(
                "apiVersion",
                format!("{v:?} is not supported; use {API_VERSION:?} or leave it out"),
            );
        }
        if let Some(kind) = &doc.kind {
            let want = kind_name(expected);
            if kind != KIND_WORKFLOW && kind != KIND_TEMPLATE {
                self.err(
                    "kind",
                    format!("{kind:?} is not a kind; use {KIND_WORKFLOW} or {KIND_TEMPLATE}"),
                );
            } else if kind != want {
                self.err("kind", format!("expected {want}, got {kind}"));
            }
        }
        let name = &doc.metadata.name;
        if !is_dns_label(name) {
            self.err(
                "metadata.name",
                format!(
                    "{name:?} is not a valid name (1-63 lowercase letters, digits and '-', \
                     starting and ending with a letter or digit)"
                ),
            );
        }
        if doc.description.is_some() && doc.metadata.description.is_some() {
            self.err(
                "description",
                "give the description once: at the top level or in metadata.description",
            );
        }
        for (path, d) in [
            ("description", &doc.description),
            ("metadata.description", &doc.metadata.description),
        ] {
            if let Some(d) = d
                && d.chars().count() > MAX_DESCRIPTION_CHARS
            {
                self.err(
                    path,
                    format!("is longer than {MAX_DESCRIPTION_CHARS} characters"),
                );
            }
        }
        if doc.metadata.labels.len() > MAX_LABELS {
            self.err("metadata.labels", format!("more than {MAX_LABELS} labels"));
        }
        for (k, v) in &doc.metadata.labels {
            let path = format!("metadata.labels.{k}");
            if let Err(e) = check_label_key(k) {
                self.err(&path, e);
            }
            if let Err(e) = check_label_value(v) {
                self.err(&path, e);
            }
        }
    }

    fn spec(&mut self, doc: &RawDocument, expected: ResourceKind) {
        let spec = &doc.spec;
        if spec.config.len() > MAX_PARAMETERS {
            self.err(
                "spec.config",
                format!("more than {MAX_PARAMETERS} parameters"),
            );
        }
        for (name, p) in &spec.config {
            let errors = check_declaration(name, p, &format!("spec.config.{name}"));
            self.errors.extend(errors);
        }
        self.template_refs(&spec.uses, "spec.use");
        if let Some(content) = &spec.content {
            self.content(content, "spec.content");
        }
        if let Some(container) = &spec.container {
            self.container(container, "spec.container");
        }
        if let Some(t) = spec.timeouts.as_ref().and_then(|t| t.total.as_ref())
            && let Err(e) = parse_duration(t)
        {
            self.err("spec.timeouts.total", e);
        }
        if let Some(exec) = &spec.execution {
            if exec.tags.len() > MAX_LABELS {
                self.err(
                    "spec.execution.tags",
                    format!("more than {MAX_LABELS} tags"),
                );
            }
            for (k, v) in &exec.tags {
                let path = format!("spec.execution.tags.{k}");
                if let Err(e) = check_label_key(k) {
                    self.err(&path, e);
                }
                if v.chars().count() > 256 || v.chars().any(char::is_control) {
                    self.err(
                        &path,
                        "a tag value is at most 256 characters without control characters",
                    );
                }
            }
        }
        for (list, name) in [
            (&spec.setup, "setup"),
            (&spec.steps, "steps"),
            (&spec.after, "after"),
        ] {
            for (i, step) in list.iter().enumerate() {
                self.step(step, &format!("spec.{name}[{i}]"), 1);
            }
        }
        if self.steps > MAX_STEPS {
            self.err(
                "spec",
                format!("{} steps; the limit is {MAX_STEPS}", self.steps),
            );
        }
        if expected == ResourceKind::Workflow && spec.steps.is_empty() && spec.uses.is_empty() {
            self.err(
                "spec.steps",
                "a workflow needs at least one step (or a template with steps in spec.use)",
            );
        }
    }

    /// Parses the expressions of a text field and checks that every name is a parameter.
    fn text(&mut self, path: &str, text: &str, mode: Mode) -> Option<Template> {
        if text.contains('\0') {
            self.err(path, "must not contain NUL characters");
            return None;
        }
        let template = match expr::parse(text) {
            Ok(t) => t,
            Err(e) => {
                self.err(path, e);
                return None;
            }
        };
        let mut unknown = BTreeSet::new();
        for name in template.params() {
            if !self.params.contains_key(name) && unknown.insert(name.to_owned()) {
                let known: Vec<&str> = self.params.keys().map(String::as_str).collect();
                let hint = if known.is_empty() {
                    "this document declares no parameters (spec.config)".to_owned()
                } else {
                    format!("known parameters: {}", known.join(", "))
                };
                self.err(path, format!("{}; {hint}", expr::unknown_parameter(name)));
            }
        }
        if mode == Mode::Script && unknown.is_empty() {
            let params = self.params;
            let is_string = |name: &str| {
                params
                    .get(name)
                    .is_none_or(|p| p.kind == ParameterType::String)
            };
            for problem in shell::check_script(&template, is_string) {
                self.err(path, problem);
            }
        }
        Some(template)
    }

    /// A path inside the workspace, written literally.
    fn literal_relative_path(&mut self, path: &str, value: &str) {
        if value.contains("{{") {
            self.err(path, "expressions are not supported in this field");
        } else if let Err(e) = check_relative_path(value) {
            self.err(path, e);
        }
    }

    fn env(&mut self, env: &EnvList, path: &str) {
        let mut seen = BTreeSet::new();
        for (i, var) in env.0.iter().enumerate() {
            let p = format!("{path}[{i}]");
            if !is_env_name(&var.name) {
                self.err(
                    format!("{p}.name"),
                    format!(
                        "{:?} is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
                        var.name
                    ),
                );
            } else if !seen.insert(var.name.as_str()) {
                self.err(format!("{p}.name"), format!("{:?} is set twice", var.name));
            }
            self.text(&format!("{p}.value"), &var.value, Mode::Data);
        }
    }

    fn container(&mut self, c: &Container, path: &str) {
        if let Some(wd) = &c.working_dir {
            self.text(&format!("{path}.workingDir"), wd, Mode::Data);
        }
        self.env(&c.env, &format!("{path}.env"));
    }

    fn content(&mut self, content: &Content, path: &str) {
        let mut seen = BTreeSet::new();
        for (i, f) in content.files.iter().enumerate() {
            let p = format!("{path}.files[{i}]");
            self.literal_relative_path(&format!("{p}.path"), &f.path);
            if !seen.insert(f.path.trim_start_matches("./")) {
                self.err(format!("{p}.path"), format!("{:?} is listed twice", f.path));
            }
            let mode = if shell::is_shell_file(&f.path, &f.content) {
                Mode::Script
            } else {
                Mode::Data
            };
            self.text(&format!("{p}.content"), &f.content, mode);
        }
        if let Some(git) = &content.git {
            let p = format!("{path}.git");
            if let Some(t) = self.text(&format!("{p}.uri"), &git.uri, Mode::Data)
                && !t.has_params()
                && let Err(e) = check_git_uri(&git.uri)
            {
                self.err(format!("{p}.uri"), e);
            }
            if let Some(rev) = &git.revision
                && let Some(t) = self.text(&format!("{p}.revision"), rev, Mode::Data)
                && !t.has_params()
                && let Err(e) = check_git_revision(rev)
            {
                self.err(format!("{p}.revision"), e);
            }
            for (i, sparse) in git.paths.iter().enumerate() {
                self.literal_relative_path(&format!("{p}.paths[{i}]"), sparse);
            }
            if let Some(mount) = &git.mount_path {
                self.literal_relative_path(&format!("{p}.mountPath"), mount);
            }
        }
    }

    fn template_refs(&mut self, refs: &[TemplateRef], path: &str) {
        for (i, r) in refs.iter().enumerate() {
            self.template_ref(r, &format!("{path}[{i}]"));
        }
    }

    fn template_ref(&mut self, r: &TemplateRef, p: &str) {
        if !is_dns_label(&r.name) {
            self.err(
                format!("{p}.name"),
                format!("{:?} is not a valid template name", r.name),
            );
        }
        for (key, value) in &r.config {
            let vp = format!("{p}.config.{key}");
            if !expr::is_identifier(key) {
                self.err(&vp, format!("{key:?} is not a valid parameter name"));
            }
            match value {
                Value::String(s) => {
                    self.text(&vp, s, Mode::Data);
                }
                Value::Number(_) | Value::Bool(_) => {}
                _ => self.err(&vp, "must be a string, a number or a boolean"),
            }
        }
    }

    fn step(&mut self, step: &Step, path: &str, depth: usize) {
        self.steps += 1;
        if depth > MAX_STEP_DEPTH && !self.too_deep_reported {
            self.too_deep_reported = true;
            self.err(
                path,
                format!("steps are nested deeper than {MAX_STEP_DEPTH} levels"),
            );
        }
        if let Some(name) = &step.name {
            if name.trim().is_empty() {
                self.err(format!("{path}.name"), "must not be empty");
            } else if name.chars().count() > MAX_NAME_CHARS {
                self.err(
                    format!("{path}.name"),
                    format!("is longer than {MAX_NAME_CHARS} characters"),
                );
            } else if name.chars().any(char::is_control) {
                self.err(
                    format!("{path}.name"),
                    "must not contain control characters",
                );
            }
        }

        let run = step.run.as_ref();
        let run_shell = run.and_then(|r| r.shell.as_ref());
        if step.shell.is_some() && run_shell.is_some() {
            self.err(
                format!("{path}.shell"),
                "give the script once: either shell or run.shell",
            );
        }
        let script = step.shell.as_ref().map(|s| (format!("{path}.shell"), s));
        let script = script.or_else(|| run_shell.map(|s| (format!("{path}.run.shell"), s)));
        if let Some((p, s)) = &script {
            self.text(p, s, Mode::Script);
        }
        let has_exec = run.is_some_and(|r| r.command.is_some() || r.args.is_some());
        if let Some(r) = run {
            self.run(r, &format!("{path}.run"), script.is_some());
        }
        let has_command = script.is_some() || has_exec;
        let has_children = !step.steps.is_empty() || step.template_refs().next().is_some();
        if has_command && has_children {
            self.err(
                path,
                "a step either runs a command (shell/run) or contains steps (steps/use/template), \
                 not both",
            );
        }
        if run.is_some() && !has_command {
            self.err(format!("{path}.run"), "run needs shell or command");
        }
        if !has_command && !has_children && step.artifacts.is_none() && run.is_none() {
            self.err(
                path,
                "a step needs shell, run, steps, use, template or artifacts",
            );
        }

        if let Some(wd) = &step.working_dir {
            self.text(&format!("{path}.workingDir"), wd, Mode::Data);
        }
        self.env(&step.env, &format!("{path}.env"));
        if let Some(c) = &step.container {
            self.container(c, &format!("{path}.container"));
        }
        if let Some(t) = &step.timeout
            && let Err(e) = parse_duration(t)
        {
            self.err(format!("{path}.timeout"), e);
        }
        if let Some(retry) = &step.retry
            && retry.count > MAX_RETRIES
        {
            self.err(
                format!("{path}.retry.count"),
                format!("{} is more than {MAX_RETRIES}", retry.count),
            );
        }
        if let Some(a) = &step.artifacts {
            if a.paths.is_empty() {
                self.err(format!("{path}.artifacts.paths"), "list at least one path");
            }
            for (i, glob) in a.paths.iter().enumerate() {
                let p = format!("{path}.artifacts.paths[{i}]");
                if let Some(t) = self.text(&p, glob, Mode::Data)
                    && !t.has_params()
                    && let Err(e) = check_relative_path(glob)
                {
                    self.err(&p, e);
                }
            }
            if let Some(wd) = &a.working_dir {
                self.text(&format!("{path}.artifacts.workingDir"), wd, Mode::Data);
            }
        }
        self.template_refs(&step.uses, &format!("{path}.use"));
        if let Some(t) = &step.template {
            self.template_ref(t, &format!("{path}.template"));
        }
        for (i, child) in step.steps.iter().enumerate() {
            self.step(child, &format!("{path}.steps[{i}]"), depth + 1);
        }
    }

    fn run(&mut self, run: &Run, path: &str, has_script: bool) {
        if run.args.is_some() && run.command.is_none() {
            self.err(
                format!("{path}.args"),
                "args needs command (there is no image entrypoint to pass them to)",
            );
        }
        if has_script && (run.command.is_some() || run.args.is_some()) {
            self.err(
                path,
                "shell and command/args exclude each other: shell is a script for /bin/sh, \
                 command runs a program without a shell",
            );
        }
        if let Some(command) = &run.command {
            if command.is_empty() {
                self.err(format!("{path}.command"), "must name a program");
            } else if command[0].contains("{{") {
                self.err(
                    format!("{path}.command[0]"),
                    "the program must be written literally, not chosen by an expression",
                );
            } else if command[0].is_empty() {
                self.err(format!("{path}.command[0]"), "must name a program");
            }
            let argv: Vec<String> = command
                .iter()
                .chain(run.args.iter().flatten())
                .cloned()
                .collect();
            let script_at = shell::script_argument(&argv);
            for (i, arg) in argv.iter().enumerate() {
                let p = if i < command.len() {
                    format!("{path}.command[{i}]")
                } else {
                    format!("{path}.args[{}]", i - command.len())
                };
                let mode = if script_at == Some(i) {
                    Mode::Script
                } else {
                    Mode::Data
                };
                self.text(&p, arg, mode);
            }
        }
        if let Some(wd) = &run.working_dir {
            self.text(&format!("{path}.workingDir"), wd, Mode::Data);
        }
        self.env(&run.env, &format!("{path}.env"));
    }
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A path (or glob) inside the workspace: relative, without `..`.
pub(crate) fn check_relative_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("must not be empty".into());
    }
    if path.contains('\0') {
        return Err("must not contain NUL characters".into());
    }
    if path.starts_with('/') || path.starts_with('\\') {
        return Err(format!(
            "{path:?} is absolute; paths are relative to the workspace"
        ));
    }
    if path.split(['/', '\\']).any(|part| part == "..") {
        return Err(format!("{path:?} leaves the workspace (..)"));
    }
    Ok(())
}

/// Git URLs that git would treat as options or remote-helper programs are refused.
pub(crate) fn check_git_uri(uri: &str) -> Result<(), String> {
    if uri.is_empty() {
        return Err("must not be empty".into());
    }
    if uri.starts_with('-') {
        return Err(format!("{uri:?} must not start with '-'"));
    }
    if uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain spaces or control characters".into());
    }
    if uri.contains("::") {
        return Err(format!(
            "{uri:?} uses a git remote helper (transport::address), which is not allowed"
        ));
    }
    if let Some((scheme, _)) = uri.split_once("://")
        && !["file", "http", "https", "ssh", "git"].contains(&scheme.to_ascii_lowercase().as_str())
    {
        return Err(format!(
            "scheme {scheme:?} is not supported (use https, http, ssh, git or file)"
        ));
    }
    Ok(())
}

pub(crate) fn check_git_revision(rev: &str) -> Result<(), String> {
    if rev.is_empty() {
        return Err("must not be empty".into());
    }
    if rev.starts_with('-') {
        return Err(format!("{rev:?} must not start with '-'"));
    }
    if rev.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain spaces or control characters".into());
    }
    Ok(())
}

/// Kubernetes label key: optional `prefix/` (a DNS subdomain) and a name.
fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let ok = !prefix.is_empty() && prefix.len() <= 253 && prefix.split('.').all(is_dns_label);
        if !ok {
            return Err(format!("{key:?}: the prefix must be a DNS subdomain"));
        }
    }
    if name.is_empty() || !is_label_text(name) {
        return Err(format!(
            "{key:?} is not a valid key (at most 63 letters, digits, '-', '_' or '.', starting \
             and ending with a letter or digit, optionally with a DNS prefix and '/')"
        ));
    }
    Ok(())
}

fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_label_text(value) {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not a valid label value (at most 63 letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit)"
        ))
    }
}

fn is_label_text(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(check_relative_path("reports/*.xml"), Ok(()));
        assert_eq!(check_relative_path("./a/b"), Ok(()));
        assert_eq!(check_relative_path("a..b"), Ok(()));
        assert!(
            check_relative_path("/etc/passwd")
                .unwrap_err()
                .contains("absolute")
        );
        assert!(
            check_relative_path("a/../../b")
                .unwrap_err()
                .contains("leaves the workspace")
        );
        assert!(check_relative_path("..").is_err());
        assert!(check_relative_path("").is_err());
    }

    #[test]
    fn git_uris() {
        assert_eq!(check_git_uri("file:///tmp/repo.git"), Ok(()));
        assert_eq!(check_git_uri("https://github.com/a/b"), Ok(()));
        assert_eq!(check_git_uri("git@github.com:a/b.git"), Ok(()));
        assert_eq!(check_git_uri("/srv/repo.git"), Ok(()));
        assert!(check_git_uri("--upload-pack=touch x").is_err());
        assert!(check_git_uri("ext::sh -c touch% /tmp/x").is_err());
        assert!(check_git_uri("ftp://x/y").is_err());
        assert!(check_git_uri("a b").is_err());
        assert!(check_git_revision("main").is_ok());
        assert!(check_git_revision("-x").is_err());
    }

    #[test]
    fn labels() {
        assert_eq!(check_label_key("team"), Ok(()));
        assert_eq!(check_label_key("app.kubernetes.io/name"), Ok(()));
        assert!(check_label_key("-x").is_err());
        assert!(check_label_key("a/").is_err());
        assert!(check_label_key("Bad_Prefix/x").is_err());
        assert!(check_label_key(&"a".repeat(64)).is_err());
        assert_eq!(check_label_value(""), Ok(()));
        assert_eq!(check_label_value("v1.2_x"), Ok(()));
        assert!(check_label_value("has space").is_err());
        assert!(check_label_value(&"a".repeat(64)).is_err());
    }
}
