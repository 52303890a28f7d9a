//! `assay run`: queue an execution and, with `--watch`, follow it to the end with step
//! progress and live logs; the exit code tells whether it passed.

use super::output::{self, Format};
use super::{Context, key_value};
use assay_core::execution::{
    Execution, ExecutionStatus, JunitSummary, LogLine, RunRequest, StepResult,
};
use assay_core::ports::ControlPlane;
use clap::Args;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The workflow to run
    pub workflow: String,
    /// A configuration value (spec.config), may be repeated
    #[arg(short, long = "config", value_name = "KEY=VALUE", value_parser = key_value)]
    pub config: Vec<(String, String)>,
    /// A tag to put on the execution, may be repeated
    #[arg(short, long = "tag", value_name = "KEY=VALUE", value_parser = key_value)]
    pub tag: Vec<(String, String)>,
    /// Follow the execution to the end: step progress, live logs and a summary; the exit
    /// code is 0 when it passed and 1 otherwise
    #[arg(short, long)]
    pub watch: bool,
}

/// How often the execution is polled for step changes while watching.
const POLL: Duration = Duration::from_millis(400);
/// After the execution finished, how long to wait for the rest of its log.
const LOG_DRAIN: Duration = Duration::from_secs(5);

pub async fn run(ctx: &Context, args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = typed_config(ctx, &args.workflow, args.config).await?;
    let request = RunRequest {
        config,
        tags: args.tag.into_iter().collect(),
    };
    let execution = ctx
        .client
        .run_workflow(&ctx.actor, &ctx.env, &args.workflow, &request)
        .await?;

    if !args.watch {
        output::emit(ctx.format, &execution, |out| {
            writeln!(
                out,
                "execution {} {} (id {})",
                execution.name, execution.status, execution.id
            )
        })?;
        return Ok(ExitCode::SUCCESS);
    }

    // Progress is for people; with -o json/yaml it goes to stderr so stdout carries only
    // the final document.
    let mut progress: Box<dyn Write + Send> = if ctx.format.is_table() {
        Box::new(std::io::stdout())
    } else {
        Box::new(std::io::stderr())
    };
    writeln!(
        progress,
        "execution {} {} (id {})",
        execution.name, execution.status, execution.id
    )?;
    let finished = watch(ctx, execution, &mut *progress).await?;
    let Some(finished) = finished else {
        return Ok(ExitCode::from(130));
    };
    writeln!(progress, "{}", summary_line(&finished))?;
    for line in failed_case_lines(finished.junit.as_ref()) {
        writeln!(progress, "{line}")?;
    }
    progress.flush()?;
    if ctx.format != Format::Table {
        output::emit(ctx.format, &finished, |_| Ok(()))?;
    }
    Ok(if finished.status == ExecutionStatus::Passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The CLI can only write text; the workflow's `spec.config` says which values are
/// numbers or booleans, so convert those before sending.
async fn typed_config(
    ctx: &Context,
    workflow: &str,
    values: Vec<(String, String)>,
) -> anyhow::Result<BTreeMap<String, serde_json::Value>> {
    if values.is_empty() {
        return Ok(BTreeMap::new());
    }
    let detail = ctx
        .client
        .get_workflow(&ctx.actor, &ctx.env, workflow)
        .await?;
    Ok(values
        .into_iter()
        .map(|(name, text)| {
            let declared = detail
                .definition
                .pointer(&format!("/spec/config/{}/type", escape_pointer(&name)))
                .and_then(|t| t.as_str());
            let value = convert(declared, text);
            (name, value)
        })
        .collect())
}

fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Text to the declared type; text that does not convert is sent as is, so the
/// server's validation explains the problem.
fn convert(declared: Option<&str>, text: String) -> serde_json::Value {
    use serde_json::Value;
    match declared {
        Some("integer") => text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or(Value::String(text)),
        Some("number") => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::String(text)),
        Some("boolean") => match text.trim() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(text),
        },
        _ => Value::String(text),
    }
}

/// Follows an execution until it is finished; `None` when the user pressed Ctrl-C.
pub async fn watch(
    ctx: &Context,
    mut execution: Execution,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<Option<Execution>> {
    let mut steps = StepTracker::default();
    let mut logs: Option<BoxStream<'static, assay_core::Result<LogLine>>> = match ctx
        .client
        .follow_execution_logs(&ctx.actor, &ctx.env, &execution.name, None, 0)
        .await
    {
        Ok(stream) => Some(stream),
        Err(e) if assay_client::is_connection_error(&e) => return Err(e.into()),
        Err(e) => {
            writeln!(out, "(live logs are not available: {e})")?;
            None
        }
    };
    let mut tick = tokio::time::interval(POLL);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);

    while !execution.status.is_terminal() {
        tokio::select! {
            line = next_line(&mut logs) => match line {
                Some(Ok(line)) => {
                    if !steps.has_shown(&line.step) {
                        // A new step is logging: the previous one has ended, so say how
                        // before its successor's first line.
                        if let Ok(fresh) = ctx
                            .client
                            .get_execution(&ctx.actor, &ctx.env, &execution.name)
                            .await
                        {
                            execution = fresh;
                        }
                        for l in steps.starting(&line, &execution.steps) {
                            writeln!(out, "{l}")?;
                        }
                    }
                    writeln!(out, "{}", line.text)?;
                }
                Some(Err(e)) => {
                    writeln!(out, "(the log stream broke off: {e})")?;
                    logs = None;
                }
                None => logs = None,
            },
            _ = tick.tick() => {
                execution = ctx
                    .client
                    .get_execution(&ctx.actor, &ctx.env, &execution.name)
                    .await?;
                // Finished steps are reported once their remaining log lines are out.
                if !execution.status.is_terminal() {
                    for l in steps.update(&execution.steps) {
                        writeln!(out, "{l}")?;
                    }
                }
            },
            _ = &mut ctrl_c => {
                writeln!(
                    out,
                    "stopped watching; {} goes on (abort it with: assay execution abort {})",
                    execution.name, execution.name
                )?;
                return Ok(None);
            }
        }
        out.flush()?;
    }

    // The log closes when the execution finishes; print what is still in flight.
    if let Some(mut stream) = logs {
        let deadline = tokio::time::Instant::now() + LOG_DRAIN;
        while let Ok(Some(Ok(line))) = tokio::time::timeout_at(deadline, stream.next()).await {
            for l in steps.starting(&line, &execution.steps) {
                writeln!(out, "{l}")?;
            }
            writeln!(out, "{}", line.text)?;
        }
    }
    for l in steps.update(&execution.steps) {
        writeln!(out, "{l}")?;
    }
    out.flush()?;
    Ok(Some(execution))
}

async fn next_line(
    logs: &mut Option<BoxStream<'static, assay_core::Result<LogLine>>>,
) -> Option<assay_core::Result<LogLine>> {
    match logs {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

/// Remembers the last state shown for each step so each change prints one line.
#[derive(Debug, Default)]
pub struct StepTracker {
    shown: HashMap<String, ExecutionStatus>,
}

impl StepTracker {
    /// Lines for steps whose status changed since the last call.
    pub fn update(&mut self, steps: &[StepResult]) -> Vec<String> {
        self.update_holding(steps, None)
    }

    /// Like `update`, but `held` (a step whose log lines are still being printed) is at
    /// most shown as started: its end is reported after its output.
    pub fn update_holding(&mut self, steps: &[StepResult], held: Option<&str>) -> Vec<String> {
        let mut lines = Vec::new();
        for step in steps {
            let mut status = step.status;
            if held == Some(step.reference.as_str()) && status.is_terminal() {
                status = ExecutionStatus::Running;
            }
            if status == ExecutionStatus::Queued || self.shown.get(&step.reference) == Some(&status)
            {
                continue;
            }
            if status == ExecutionStatus::Running && self.shown.contains_key(&step.reference) {
                continue;
            }
            self.shown.insert(step.reference.clone(), status);
            if status == step.status {
                lines.push(step_line(step));
            } else {
                lines.push(step_line(&StepResult {
                    status,
                    ..step.clone()
                }));
            }
        }
        lines
    }

    pub fn has_shown(&self, step: &str) -> bool {
        self.shown.contains_key(step)
    }

    /// What to print before a log line: for a step not shown yet, how the steps before
    /// it ended and that it started. Nothing for a step already shown.
    pub fn starting(&mut self, line: &LogLine, steps: &[StepResult]) -> Vec<String> {
        if self.has_shown(&line.step) {
            return Vec::new();
        }
        let mut lines = self.update_holding(steps, Some(&line.step));
        lines.extend(self.log_line(line, steps));
        lines
    }

    /// A log line of a step not yet shown as started announces it first.
    pub fn log_line(&mut self, line: &LogLine, steps: &[StepResult]) -> Vec<String> {
        if self.shown.contains_key(&line.step) {
            return Vec::new();
        }
        let name = steps
            .iter()
            .find(|s| s.reference == line.step)
            .map(|s| s.name.as_str())
            .unwrap_or("");
        self.shown
            .insert(line.step.clone(), ExecutionStatus::Running);
        vec![format!("▶ {} {name}", line.step).trim_end().to_owned()]
    }
}

/// `▶ 1 run tests`, `✔ 1 run tests (2.1s)`, `✘ 2 build (0.3s): exit code 1`.
pub fn step_line(step: &StepResult) -> String {
    let head = format!("{} {}", step.reference, step.name);
    let head = head.trim_end();
    let took = output::between(step.started_at, step.finished_at)
        .map(|ms| format!(" ({})", output::duration_ms(ms)))
        .unwrap_or_default();
    match step.status {
        ExecutionStatus::Queued | ExecutionStatus::Running => format!("▶ {head}"),
        ExecutionStatus::Passed => format!("✔ {head}{took}"),
        ExecutionStatus::Skipped => format!("- {head} (skipped)"),
        status => {
            let reason = match (&step.error, step.exit_code) {
                (Some(error), _) => error.clone(),
                (None, Some(code)) if status == ExecutionStatus::Failed => {
                    format!("exit code {code}")
                }
                _ => status.to_string(),
            };
            let optional = if step.optional { " [optional]" } else { "" };
            format!("✘ {head}{took}: {reason}{optional}")
        }
    }
}

/// The last line of a watched run: verdict, duration, error and JUnit totals.
pub fn summary_line(e: &Execution) -> String {
    let mark = if e.status == ExecutionStatus::Passed {
        "✔"
    } else {
        "✘"
    };
    let mut line = format!("{mark} {} {}", e.name, e.status);
    if let Some(ms) = e
        .duration_ms
        .or_else(|| output::between(e.started_at, e.finished_at))
    {
        line.push_str(&format!(" in {}", output::duration_ms(ms)));
    }
    if let Some(error) = &e.error {
        line.push_str(&format!(": {error}"));
    }
    if let Some(j) = &e.junit {
        line.push_str(&format!(" · {}", junit_totals(j)));
    }
    line
}

/// `JUnit: 12 tests, 2 failures, 0 errors, 1 skipped`.
pub fn junit_totals(j: &JunitSummary) -> String {
    format!(
        "JUnit: {} tests, {} failures, {} errors, {} skipped",
        j.tests, j.failures, j.errors, j.skipped
    )
}

/// One line per failed case: `  ✘ Class.name: message`.
pub fn failed_case_lines(junit: Option<&JunitSummary>) -> Vec<String> {
    let Some(j) = junit else {
        return Vec::new();
    };
    let mut lines: Vec<String> = j
        .failed_cases
        .iter()
        .map(|c| {
            let name = if c.classname.is_empty() {
                c.name.clone()
            } else {
                format!("{}.{}", c.classname, c.name)
            };
            let message = c.message.lines().next().unwrap_or("").trim();
            if message.is_empty() {
                format!("  ✘ {name} ({})", c.kind)
            } else {
                format!("  ✘ {name}: {message}")
            }
        })
        .collect();
    if j.truncated {
        lines.push("  … more failed cases not shown".into());
    }
    lines
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use assay_core::execution::JunitCase;
    use time::macros::datetime;

    fn step(reference: &str, name: &str, status: ExecutionStatus) -> StepResult {
        StepResult {
            reference: reference.into(),
            name: name.into(),
            status,
            exit_code: None,
            error: None,
            started_at: None,
            finished_at: None,
            attempts: 1,
            optional: false,
            negative: false,
        }
    }

    #[test]
    fn step_lines_show_state_duration_and_reason() {
        let mut s = step("1", "run tests", ExecutionStatus::Passed);
        s.started_at = Some(datetime!(2025-01-01 00:00:00 UTC));
        s.finished_at = Some(datetime!(2025-01-01 00:00:02.1 UTC));
        assert_eq!(step_line(&s), "✔ 1 run tests (2.1s)");
        s.status = ExecutionStatus::Failed;
        s.exit_code = Some(1);
        assert_eq!(step_line(&s), "✘ 1 run tests (2.1s): exit code 1");
        s.status = ExecutionStatus::Timeout;
        assert_eq!(step_line(&s), "✘ 1 run tests (2.1s): timeout");
        s.error = Some("killed after 5s".into());
        assert_eq!(step_line(&s), "✘ 1 run tests (2.1s): killed after 5s");
        assert_eq!(
            step_line(&step("2", "lint", ExecutionStatus::Running)),
            "▶ 2 lint"
        );
        assert_eq!(
            step_line(&step("3", "deploy", ExecutionStatus::Skipped)),
            "- 3 deploy (skipped)"
        );
    }

    #[test]
    fn the_tracker_prints_each_change_once() {
        let mut t = StepTracker::default();
        let running = [
            step("1", "build", ExecutionStatus::Running),
            step("2", "test", ExecutionStatus::Queued),
        ];
        assert_eq!(t.update(&running), vec!["▶ 1 build"]);
        assert!(t.update(&running).is_empty());
        let line = LogLine {
            number: 1,
            step: "2".into(),
            time: datetime!(2025-01-01 00:00:00 UTC),
            text: "hello".into(),
        };
        assert_eq!(t.log_line(&line, &running), vec!["▶ 2 test"]);
        assert!(t.log_line(&line, &running).is_empty());
        let done = [
            step("1", "build", ExecutionStatus::Passed),
            step("2", "test", ExecutionStatus::Running),
        ];
        assert_eq!(t.update(&done), vec!["✔ 1 build"]);
    }

    #[test]
    fn a_held_step_is_shown_started_but_not_ended() {
        let mut t = StepTracker::default();
        let steps = [
            step("1", "build", ExecutionStatus::Passed),
            step("2", "test", ExecutionStatus::Failed),
        ];
        assert_eq!(
            t.update_holding(&steps, Some("2")),
            vec!["✔ 1 build", "▶ 2 test"]
        );
        assert!(t.update_holding(&steps, Some("2")).is_empty());
        assert_eq!(t.update(&steps), vec!["✘ 2 test: failed"]);
    }

    #[test]
    fn a_new_steps_first_line_ends_the_previous_step_then_starts_its_own() {
        let mut t = StepTracker::default();
        let mut steps = vec![
            step("1", "build", ExecutionStatus::Running),
            step("2", "test", ExecutionStatus::Queued),
        ];
        assert_eq!(t.update(&steps), vec!["▶ 1 build"]);
        steps[0].status = ExecutionStatus::Passed;
        steps[1].status = ExecutionStatus::Passed;
        let line = LogLine {
            number: 7,
            step: "2".into(),
            time: datetime!(2025-01-01 00:00:00 UTC),
            text: "ok".into(),
        };
        assert_eq!(t.starting(&line, &steps), vec!["✔ 1 build", "▶ 2 test"]);
        assert!(t.starting(&line, &steps).is_empty());
        assert_eq!(t.update(&steps), vec!["✔ 2 test"]);
    }

    #[test]
    fn config_text_is_converted_to_the_declared_type() {
        use serde_json::json;
        assert_eq!(convert(Some("integer"), "42".into()), json!(42));
        assert_eq!(convert(Some("integer"), "4x".into()), json!("4x"));
        assert_eq!(convert(Some("number"), "0.5".into()), json!(0.5));
        assert_eq!(convert(Some("boolean"), "true".into()), json!(true));
        assert_eq!(convert(Some("boolean"), "yes".into()), json!("yes"));
        assert_eq!(convert(Some("string"), "42".into()), json!("42"));
        assert_eq!(convert(None, "42".into()), json!("42"));
    }

    #[test]
    fn the_summary_names_the_verdict_and_the_failed_cases() {
        let junit = JunitSummary {
            tests: 3,
            failures: 1,
            errors: 0,
            skipped: 1,
            time_seconds: 0.5,
            reports: vec!["junit.xml".into()],
            failed_cases: vec![JunitCase {
                name: "rejects_bad_password".into(),
                classname: "LoginTest".into(),
                kind: "failure".into(),
                message: "expected 401\ngot 500".into(),
                output: String::new(),
                report: "junit.xml".into(),
            }],
            truncated: false,
        };
        assert_eq!(
            junit_totals(&junit),
            "JUnit: 3 tests, 1 failures, 0 errors, 1 skipped"
        );
        assert_eq!(
            failed_case_lines(Some(&junit)),
            vec!["  ✘ LoginTest.rejects_bad_password: expected 401"]
        );
    }
}
