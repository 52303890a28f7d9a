//! The environment of step processes: built from nothing, so the server's own variables
//! (credentials, tokens) never leak into a workflow.

use assay_core::execution::{ExecutionPlan, PlannedStep};
use std::collections::BTreeMap;
use std::path::Path;
use uuid::Uuid;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Variables passed from the server to `git` only, so clones work behind proxies and with
/// custom certificate bundles.
const GIT_PASSTHROUGH: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "GIT_SSL_CAINFO",
];

/// PATH, HOME (the workspace), LANG/LC_ALL, TMPDIR (inside the workspace), TERM.
pub(crate) fn base(workspace: &Path, tmp: &Path) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert(
        "PATH".into(),
        std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into()),
    );
    env.insert("HOME".into(), workspace.to_string_lossy().into_owned());
    env.insert("LANG".into(), "C.UTF-8".into());
    env.insert("LC_ALL".into(), "C.UTF-8".into());
    env.insert("TMPDIR".into(), tmp.to_string_lossy().into_owned());
    env.insert("TERM".into(), "dumb".into());
    env
}

/// Base, then the plan's env, then the step's, then Assay's own variables (which win).
pub(crate) fn for_step(
    base: &BTreeMap<String, String>,
    plan: &ExecutionPlan,
    step: &PlannedStep,
    execution_id: Uuid,
    workspace: &Path,
) -> Result<BTreeMap<String, String>, String> {
    let mut env = base.clone();
    for (k, v) in plan.env.iter().chain(step.env.iter()) {
        check(k, v)?;
        env.insert(k.clone(), v.clone());
    }
    env.insert("ASSAY_EXECUTION_ID".into(), execution_id.to_string());
    env.insert(
        "ASSAY_WORKSPACE".into(),
        workspace.to_string_lossy().into_owned(),
    );
    Ok(env)
}

pub(crate) fn for_git(base: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut env = base.clone();
    env.insert("GIT_TERMINAL_PROMPT".into(), "0".into());
    // Local transports and the network ones; never `ext::` and friends.
    env.insert(
        "GIT_ALLOW_PROTOCOL".into(),
        "file:git:http:https:ssh".into(),
    );
    for name in GIT_PASSTHROUGH {
        if let Ok(value) = std::env::var(name) {
            env.insert((*name).to_string(), value);
        }
    }
    env
}

fn check(name: &str, value: &str) -> Result<(), String> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return Err(format!("environment variable name {name:?} is invalid"));
    }
    if value.contains('\0') {
        return Err(format!("environment variable {name} contains a NUL byte"));
    }
    Ok(())
}
