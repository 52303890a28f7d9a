//! One execution from start to end: workspace preparation, then setup, steps and after
//! steps in order, with conditions, groups, retries, timeouts and cancellation.

use super::env;
use super::leaf::{self, Deadline, Limit, ProcessEnd, ProcessSpec, Sink};
use crate::artifacts::collect::Collector;
use crate::safe_path::{relative_components, resolve_working_dir};
use crate::workspace;
use assay_core::execution::{
    ExecutionPlan, ExecutionStatus, PlannedStep, StepCommand, StepCondition, StepResult,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Time after-steps get once the execution's own timeout has expired.
pub(crate) const AFTER_BUDGET: Duration = Duration::from_secs(30);
/// Steps nested deeper than this are refused (recursion stays bounded).
pub(crate) const MAX_DEPTH: usize = 32;
/// Upper bound on retries, whatever the plan says.
const MAX_ATTEMPTS: u32 = 100;

/// A step of the plan with its place in the tree; indexes follow `ExecutionPlan::all_steps`.
pub(crate) struct Node {
    pub step: PlannedStep,
    pub children: Vec<usize>,
    pub parent: Option<usize>,
}

/// The plan's steps flattened in `all_steps` order, and the top-level lists.
pub(crate) struct Tree {
    pub nodes: Vec<Node>,
    pub setup: Vec<usize>,
    pub main: Vec<usize>,
    pub after: Vec<usize>,
}

impl Tree {
    pub(crate) fn new(plan: &ExecutionPlan) -> Result<Self, String> {
        let mut nodes = Vec::new();
        let setup = flatten(&plan.setup, None, 0, &mut nodes)?;
        let main = flatten(&plan.steps, None, 0, &mut nodes)?;
        let after = flatten(&plan.after, None, 0, &mut nodes)?;
        Ok(Self {
            nodes,
            setup,
            main,
            after,
        })
    }
}

fn flatten(
    steps: &[PlannedStep],
    parent: Option<usize>,
    depth: usize,
    nodes: &mut Vec<Node>,
) -> Result<Vec<usize>, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "steps are nested more than {MAX_DEPTH} levels deep"
        ));
    }
    let mut ids = Vec::with_capacity(steps.len());
    for step in steps {
        let id = nodes.len();
        nodes.push(Node {
            step: PlannedStep {
                steps: Vec::new(),
                ..step.clone()
            },
            children: Vec::new(),
            parent,
        });
        let children = flatten(&step.steps, Some(id), depth + 1, nodes)?;
        if let Some(node) = nodes.get_mut(id) {
            node.children = children;
        }
        ids.push(id);
    }
    Ok(ids)
}

pub(crate) fn initial_results(tree: &Tree) -> Vec<StepResult> {
    tree.nodes
        .iter()
        .map(|n| StepResult {
            reference: n.step.reference.clone(),
            name: n.step.name.clone(),
            status: ExecutionStatus::Queued,
            exit_code: None,
            error: None,
            started_at: None,
            finished_at: None,
            attempts: 0,
            optional: n.step.optional,
            negative: n.step.negative,
        })
        .collect()
}

pub(crate) struct Run {
    pub id: Uuid,
    pub plan: ExecutionPlan,
    pub tree: Tree,
    pub results: Vec<StepResult>,
    /// Canonical workspace path, and as spelled in the layout.
    pub workspace: PathBuf,
    pub alias: PathBuf,
    pub base_env: BTreeMap<String, String>,
    pub sink: Sink,
    pub collector: Arc<Mutex<Collector>>,
    pub cancel: CancellationToken,
    pub execution_deadline: Option<Deadline>,
    /// Failure flags of the enclosing scopes (root, then each running group).
    scopes: Vec<bool>,
    /// Timeouts of the running groups.
    group_deadlines: Vec<Deadline>,
    expired_groups: BTreeSet<usize>,
    pub aborted: bool,
    pub timed_out: bool,
    in_after: bool,
}

/// Why a step did not run, recorded as its error.
const NOT_RUN_ABORTED: &str = "not run: the execution was aborted";
const NOT_RUN_TIMEOUT: &str = "not run: the execution timed out";

impl Run {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: Uuid,
        plan: ExecutionPlan,
        tree: Tree,
        workspace: PathBuf,
        alias: PathBuf,
        sink: Sink,
        collector: Arc<Mutex<Collector>>,
        cancel: CancellationToken,
    ) -> Self {
        let results = initial_results(&tree);
        let tmp = workspace.join(".tmp");
        let execution_deadline = plan.timeout.map(|t| Deadline {
            at: Instant::now() + t,
            budget: t,
            limit: Limit::Execution,
        });
        Self {
            id,
            plan,
            tree,
            results,
            base_env: env::base(&workspace, &tmp),
            workspace,
            alias,
            sink,
            collector,
            cancel,
            execution_deadline,
            scopes: vec![false],
            group_deadlines: Vec::new(),
            expired_groups: BTreeSet::new(),
            aborted: false,
            timed_out: false,
            in_after: false,
        }
    }

    pub(crate) fn content_step(&self) -> usize {
        self.tree.nodes.len()
    }

    pub(crate) fn failed(&self) -> bool {
        self.scopes.iter().any(|f| *f)
    }

    async fn notify(&self) {
        self.sink.observer.steps_changed(&self.results).await;
    }

    /// Whether everything from here on is skipped (abort; execution timeout outside the
    /// after-steps).
    fn stopped(&mut self) -> bool {
        if self.cancel.is_cancelled() {
            self.aborted = true;
        }
        if let Some(d) = self.execution_deadline
            && Instant::now() >= d.at
        {
            // Before the after-steps this is the execution's timeout; during them, their
            // budget (or, if the execution had not timed out, still its timeout).
            self.timed_out = true;
            return true;
        }
        self.aborted || (self.timed_out && !self.in_after)
    }

    // --- workspace -----------------------------------------------------------------

    /// Clones the git content and writes the inline files; the error says what failed.
    pub(crate) async fn prepare_content(&mut self) -> Result<(), String> {
        let step = self.content_step();
        if let Some(git) = self.plan.git.clone() {
            let mount = if git.mount_path.trim().is_empty() {
                "repo".to_string()
            } else {
                git.mount_path.clone()
            };
            let dest = self.mount_dir(&mount)?;
            let commands = workspace::git_commands(&git, &dest)?;
            let uri = workspace::redact_uri(&git.uri);
            leaf::message(
                &self.sink,
                step,
                &format!("assay: cloning {uri} into {mount}"),
            )
            .await;
            let git_env = env::for_git(&self.base_env);
            for command in &commands {
                let Some((program, args)) = command.split_first() else {
                    continue;
                };
                let spec = ProcessSpec {
                    program,
                    args,
                    cwd: &self.workspace,
                    env: &git_env,
                    log_step: step,
                    metrics_step: None,
                };
                let deadline = self.effective_deadline(None);
                match leaf::run(&self.sink, spec, deadline, &self.cancel).await {
                    ProcessEnd::Exited(status) if status.success() => {}
                    ProcessEnd::Exited(status) => {
                        return Err(format!(
                            "git checkout of {uri} failed: `git {}` ended with {}",
                            args.first().map_or("", |a| a.as_str()),
                            describe_exit(status)
                        ));
                    }
                    ProcessEnd::Failed(e) => {
                        return Err(format!("git checkout of {uri} failed: {e}"));
                    }
                    ProcessEnd::Deadline(_) => {
                        self.timed_out = true;
                        return Err(format!("git checkout of {uri} timed out"));
                    }
                    ProcessEnd::Aborted => {
                        self.aborted = true;
                        return Err("aborted during workspace preparation".into());
                    }
                }
            }
        }
        if !self.plan.files.is_empty() {
            let (ws, files) = (self.workspace.clone(), self.plan.files.clone());
            tokio::task::spawn_blocking(move || workspace::write_files(&ws, &files))
                .await
                .map_err(|e| format!("writing content files failed: {e}"))??;
        }
        Ok(())
    }

    /// The clone target: a relative path inside the workspace whose parent exists.
    fn mount_dir(&self, mount: &str) -> Result<PathBuf, String> {
        let components = relative_components(mount).map_err(|e| format!("git mount path: {e}"))?;
        let (last, parents) = components
            .split_last()
            .ok_or_else(|| "git mount path is empty".to_string())?;
        let parent = crate::safe_path::ensure_dir_inside(&self.workspace, parents)
            .map_err(|e| format!("git mount path: {e}"))?;
        let dest = parent.join(last);
        if std::fs::symlink_metadata(&dest).is_ok() {
            return Err(format!("git mount path {mount:?} already exists"));
        }
        Ok(dest)
    }

    // --- steps ---------------------------------------------------------------------

    pub(crate) async fn run_list(&mut self, ids: &[usize], top_after: bool) {
        for id in ids {
            Box::pin(self.run_node(*id, top_after)).await;
        }
    }

    pub(crate) async fn run_after(&mut self) {
        self.in_after = true;
        if self.timed_out {
            self.execution_deadline = Some(Deadline {
                at: Instant::now() + AFTER_BUDGET,
                budget: AFTER_BUDGET,
                limit: Limit::Execution,
            });
        }
        let after = self.tree.after.clone();
        self.run_list(&after, true).await;
    }

    fn condition_met(&self, condition: StepCondition, top_after: bool) -> bool {
        match condition {
            // After-steps are cleanup: the default condition does not hold them back.
            StepCondition::Passed if top_after => true,
            StepCondition::Passed => !self.failed(),
            StepCondition::Failed => self.failed(),
            StepCondition::Always => true,
        }
    }

    fn group_expired(&mut self) -> bool {
        let now = Instant::now();
        let mut expired = false;
        for d in &self.group_deadlines {
            if now >= d.at
                && let Limit::Group(g) = d.limit
            {
                self.expired_groups.insert(g);
                expired = true;
            }
        }
        expired
    }

    async fn run_node(&mut self, id: usize, top_after: bool) {
        let Some(node) = self.tree.nodes.get(id) else {
            return;
        };
        let step = node.step.clone();
        let children = node.children.clone();
        if self.stopped() {
            let why = if self.aborted {
                NOT_RUN_ABORTED
            } else {
                NOT_RUN_TIMEOUT
            };
            self.skip_subtree(id, Some(why)).await;
            return;
        }
        if self.group_expired() || !self.condition_met(step.condition, top_after) {
            self.skip_subtree(id, None).await;
            return;
        }
        self.start(id).await;

        let is_group = !children.is_empty();
        let own_timeout = step.timeout.map(|t| Deadline {
            at: Instant::now() + t,
            budget: t,
            limit: if is_group {
                Limit::Group(id)
            } else {
                Limit::Step
            },
        });
        let mut status = ExecutionStatus::Passed;
        // Where the step ran; artifacts are looked for there.
        let mut cwd: Option<PathBuf> = None;
        if is_group {
            self.scopes.push(false);
            if let Some(d) = own_timeout {
                self.group_deadlines.push(d);
            }
        }
        if let Some(command) = &step.command {
            let (s, dir) = self
                .run_command(id, &step, command, own_timeout.filter(|_| !is_group))
                .await;
            status = s;
            cwd = dir;
            if is_group
                && matches!(status, ExecutionStatus::Failed | ExecutionStatus::Timeout)
                && let Some(scope) = self.scopes.last_mut()
            {
                *scope = true;
            }
        } else if step.artifacts.is_some() {
            cwd = self.working_dir(&step).ok();
        }
        if is_group {
            for child in &children {
                Box::pin(self.run_node(*child, false)).await;
            }
            let failed_inside = self.scopes.pop().unwrap_or(false);
            if own_timeout.is_some() {
                self.group_deadlines.pop();
            }
            let children_aborted = children.iter().any(|c| {
                self.results
                    .get(*c)
                    .is_some_and(|r| r.status == ExecutionStatus::Aborted)
            });
            status = if status == ExecutionStatus::Aborted || children_aborted {
                ExecutionStatus::Aborted
            } else if self.expired_groups.contains(&id) {
                self.set_error(
                    id,
                    format!(
                        "timed out after {}",
                        human(step.timeout.unwrap_or_default())
                    ),
                );
                ExecutionStatus::Timeout
            } else if failed_inside {
                if self.results.get(id).is_some_and(|r| r.error.is_none()) {
                    self.set_error(id, "a sub-step failed".into());
                }
                ExecutionStatus::Failed
            } else {
                ExecutionStatus::Passed
            };
            if step.negative {
                status = match status {
                    ExecutionStatus::Passed => {
                        self.set_error(
                            id,
                            "every sub-step passed, but the group is negative".into(),
                        );
                        ExecutionStatus::Failed
                    }
                    ExecutionStatus::Failed => {
                        if let Some(r) = self.results.get_mut(id) {
                            r.error = None;
                        }
                        ExecutionStatus::Passed
                    }
                    other => other,
                };
            }
        }
        // A step whose directory could not be resolved has nothing to collect from.
        if let (Some(spec), Some(dir)) = (step.artifacts.clone(), cwd) {
            self.collect_artifacts(id, &step.reference, spec, dir).await;
        }
        self.finish(id, status).await;
    }

    fn working_dir(&self, step: &PlannedStep) -> Result<PathBuf, String> {
        let dir = step
            .working_dir
            .as_deref()
            .or(self.plan.working_dir.as_deref());
        resolve_working_dir(&self.workspace, &self.alias, dir)
    }

    /// Runs a step's own command with its retries; returns the status and the directory
    /// it ran in (for artifact collection).
    async fn run_command(
        &mut self,
        id: usize,
        step: &PlannedStep,
        command: &StepCommand,
        own_timeout: Option<Deadline>,
    ) -> (ExecutionStatus, Option<PathBuf>) {
        let cwd = match self.working_dir(step) {
            Ok(dir) => dir,
            Err(e) => return (self.fail_before_start(id, e).await, None),
        };
        let env = match env::for_step(&self.base_env, &self.plan, step, self.id, &self.workspace) {
            Ok(env) => env,
            Err(e) => return (self.fail_before_start(id, e).await, Some(cwd)),
        };
        let (program, args) = match command {
            StepCommand::Shell { shell, script } => {
                let mut argv = if shell.is_empty() {
                    vec!["/bin/sh".to_string()]
                } else {
                    shell.clone()
                };
                argv.push("-c".into());
                argv.push(script.clone());
                let program = argv.remove(0);
                (program, argv)
            }
            StepCommand::Exec { command } => match command.split_first() {
                Some((program, args)) => (program.clone(), args.to_vec()),
                None => {
                    let status = self.fail_before_start(id, "the step has an empty command".into());
                    return (status.await, Some(cwd));
                }
            },
        };
        let attempts = step.retries.saturating_add(1).min(MAX_ATTEMPTS);
        let mut status = ExecutionStatus::Failed;
        for attempt in 1..=attempts {
            if let Some(r) = self.results.get_mut(id) {
                r.attempts = attempt;
            }
            let spec = ProcessSpec {
                program: &program,
                args: &args,
                cwd: &cwd,
                env: &env,
                log_step: id,
                metrics_step: Some(&step.reference),
            };
            let own = own_timeout.map(|d| Deadline {
                at: Instant::now() + d.budget,
                ..d
            });
            let deadline = self.effective_deadline(own);
            let end = leaf::run(&self.sink, spec, deadline, &self.cancel).await;
            let (s, exit_code, error, retryable) = self.judge(step, end);
            status = s;
            if let Some(r) = self.results.get_mut(id) {
                r.exit_code = exit_code;
                r.error = error.clone();
            }
            if !retryable || attempt == attempts || self.stopped() || self.group_expired() {
                break;
            }
            let why = error.unwrap_or_default();
            leaf::message(
                &self.sink,
                id,
                &format!("assay: attempt {attempt} of {attempts} failed ({why}); retrying"),
            )
            .await;
            self.notify().await;
        }
        (status, Some(cwd))
    }

    /// Status, exit code, error and whether a retry may help.
    fn judge(
        &mut self,
        step: &PlannedStep,
        end: ProcessEnd,
    ) -> (ExecutionStatus, Option<i32>, Option<String>, bool) {
        match end {
            ProcessEnd::Exited(status) => {
                let code = status.code();
                let success = status.success();
                if success != step.negative {
                    (ExecutionStatus::Passed, code, None, false)
                } else if step.negative {
                    let error = "exit code 0, but the step is negative (a failure was expected)";
                    (ExecutionStatus::Failed, code, Some(error.into()), true)
                } else {
                    (
                        ExecutionStatus::Failed,
                        code,
                        Some(describe_exit(status)),
                        true,
                    )
                }
            }
            ProcessEnd::Failed(e) => (ExecutionStatus::Failed, None, Some(e), true),
            ProcessEnd::Deadline(d) => {
                let (error, retryable) = match d.limit {
                    Limit::Step => (format!("timed out after {}", human(d.budget)), true),
                    Limit::Group(g) => {
                        self.expired_groups.insert(g);
                        let group = self
                            .tree
                            .nodes
                            .get(g)
                            .map_or_else(String::new, |n| n.step.reference.clone());
                        (
                            format!("timed out: group {group} exceeded {}", human(d.budget)),
                            false,
                        )
                    }
                    Limit::Execution => {
                        self.timed_out = true;
                        (
                            format!("timed out: the execution exceeded {}", human(d.budget)),
                            false,
                        )
                    }
                };
                (ExecutionStatus::Timeout, None, Some(error), retryable)
            }
            ProcessEnd::Aborted => {
                self.aborted = true;
                (
                    ExecutionStatus::Aborted,
                    None,
                    Some("aborted".into()),
                    false,
                )
            }
        }
    }

    fn effective_deadline(&self, own: Option<Deadline>) -> Option<Deadline> {
        own.into_iter()
            .chain(self.group_deadlines.iter().copied())
            .chain(self.execution_deadline)
            .min_by_key(|d| d.at)
    }

    async fn fail_before_start(&mut self, id: usize, error: String) -> ExecutionStatus {
        leaf::message(&self.sink, id, &format!("assay: error: {error}")).await;
        if let Some(r) = self.results.get_mut(id) {
            r.attempts = 1;
        }
        self.set_error(id, error);
        ExecutionStatus::Failed
    }

    fn set_error(&mut self, id: usize, error: String) {
        if let Some(r) = self.results.get_mut(id) {
            r.error = Some(error);
        }
    }

    async fn collect_artifacts(
        &mut self,
        id: usize,
        reference: &str,
        spec: assay_core::execution::ArtifactSpec,
        dir: PathBuf,
    ) {
        let collector = Arc::clone(&self.collector);
        let reference = reference.to_string();
        let warnings = tokio::task::spawn_blocking(move || match collector.lock() {
            Ok(mut c) => c.collect(&reference, &spec, &dir),
            Err(_) => vec!["artifact collection is unavailable".to_string()],
        })
        .await
        .unwrap_or_else(|e| vec![format!("artifact collection failed: {e}")]);
        for warning in warnings {
            leaf::message(&self.sink, id, &format!("assay: warning: {warning}")).await;
        }
    }

    async fn start(&mut self, id: usize) {
        if let Some(r) = self.results.get_mut(id) {
            r.status = ExecutionStatus::Running;
            r.started_at = Some(time::OffsetDateTime::now_utc());
        }
        self.notify().await;
    }

    async fn finish(&mut self, id: usize, status: ExecutionStatus) {
        let optional = self.tree.nodes.get(id).is_some_and(|n| n.step.optional);
        if matches!(status, ExecutionStatus::Failed | ExecutionStatus::Timeout)
            && !optional
            && let Some(scope) = self.scopes.last_mut()
        {
            *scope = true;
        }
        if let Some(r) = self.results.get_mut(id) {
            r.status = status;
            r.finished_at = Some(time::OffsetDateTime::now_utc());
        }
        self.notify().await;
    }

    /// Why the execution failed: the first failing step whose failure counts (neither it
    /// nor a group around it is optional), described with its error.
    pub(crate) fn failure_summary(&self) -> Option<String> {
        let failing = |id: usize| {
            self.results.get(id).is_some_and(|r| {
                matches!(r.status, ExecutionStatus::Failed | ExecutionStatus::Timeout)
            })
        };
        // The failure reached the top: no optional step and no negated group on the way.
        let counts = |mut id: usize| loop {
            let Some(node) = self.tree.nodes.get(id) else {
                return false;
            };
            if node.step.optional || !failing(id) {
                return false;
            }
            match node.parent {
                Some(p) => id = p,
                None => return true,
            }
        };
        self.results
            .iter()
            .enumerate()
            .filter(|(i, r)| {
                matches!(r.status, ExecutionStatus::Failed | ExecutionStatus::Timeout)
                    && self
                        .tree
                        .nodes
                        .get(*i)
                        .is_some_and(|n| n.children.is_empty() || n.step.command.is_some())
                    && counts(*i)
            })
            .map(|(_, r)| {
                format!(
                    "step {} ({:?}) {}: {}",
                    r.reference,
                    r.name,
                    if r.status == ExecutionStatus::Timeout {
                        "timed out"
                    } else {
                        "failed"
                    },
                    r.error.as_deref().unwrap_or("failed")
                )
            })
            .next()
            .or_else(|| {
                // A negative group whose sub-steps all passed fails without a failing leaf.
                self.results
                    .iter()
                    .enumerate()
                    .find(|(i, r)| r.status == ExecutionStatus::Failed && counts(*i))
                    .map(|(_, r)| {
                        format!(
                            "step {} ({:?}) failed: {}",
                            r.reference,
                            r.name,
                            r.error.as_deref().unwrap_or("failed")
                        )
                    })
            })
    }

    /// Marks a step and everything below it skipped (those still queued).
    pub(crate) async fn skip_subtree(&mut self, id: usize, why: Option<&str>) {
        let mut stack = vec![id];
        while let Some(n) = stack.pop() {
            if let Some(r) = self.results.get_mut(n)
                && r.status == ExecutionStatus::Queued
            {
                r.status = ExecutionStatus::Skipped;
                r.error = why.map(str::to_string);
            }
            if let Some(node) = self.tree.nodes.get(n) {
                stack.extend(node.children.iter().copied());
            }
        }
        self.notify().await;
    }

    pub(crate) async fn skip_all(&mut self, ids: &[usize], why: &str) {
        for id in ids {
            self.skip_subtree(*id, Some(why)).await;
        }
    }
}

/// "exit code 3" or "killed by signal 9 (SIGKILL)".
pub(crate) fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("exit code {code}");
    }
    match status.signal() {
        Some(sig) => match nix::sys::signal::Signal::try_from(sig) {
            Ok(name) => format!("killed by signal {sig} ({name})"),
            Err(_) => format!("killed by signal {sig}"),
        },
        None => "an unknown exit status".into(),
    }
}

/// "5s", "1.5s", "0.25s".
pub(crate) fn human(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}
