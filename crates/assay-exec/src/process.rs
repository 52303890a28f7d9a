//! Child processes of steps: each in its own process group with one pipe for stdout and
//! stderr, and the means to end the whole group, grandchildren included.

use crate::procfs;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};

/// How long a group gets between SIGTERM and SIGKILL.
pub(crate) const TERM_GRACE: Duration = Duration::from_secs(2);
/// How long to wait for a SIGKILLed group to disappear.
const KILL_WAIT: Duration = Duration::from_secs(5);

pub(crate) struct Spawned {
    pub child: Child,
    pub pgid: i32,
    /// Combined stdout and stderr (one pipe, so their order is kept).
    pub output: pipe::Receiver,
}

/// Starts `program args` in `cwd` with exactly `env`, stdin from /dev/null, in a new
/// process group whose id is the child's pid.
pub(crate) fn spawn(
    program: &str,
    args: &[String],
    cwd: &Path,
    env: &BTreeMap<String, String>,
) -> std::io::Result<Spawned> {
    let (reader, writer) = std::io::pipe()?;
    let writer_err = writer.try_clone()?;
    let child = {
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(cwd)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(writer_err)
            .process_group(0)
            .kill_on_drop(true);
        command.spawn()?
        // `command` drops here, closing our copies of the pipe's write end so that the
        // reader sees end-of-file once the group is gone.
    };
    let pgid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .ok_or_else(|| std::io::Error::other("child exited before its id was known"))?;
    let output = pipe::Receiver::from_owned_fd(OwnedFd::from(reader))?;
    Ok(Spawned {
        child,
        pgid,
        output,
    })
}

/// Ends every process of the group: SIGTERM (and SIGCONT, so stopped processes see it),
/// then SIGKILL after `grace`, then waits until no live member is left.
/// Returns false if something survived even SIGKILL (it is logged by the caller).
pub(crate) async fn terminate_group(pgid: i32, grace: Duration) -> bool {
    if !alive(pgid).await {
        return true;
    }
    signal_group(pgid, Signal::SIGTERM);
    signal_group(pgid, Signal::SIGCONT);
    if wait_group_gone(pgid, grace).await {
        return true;
    }
    signal_group(pgid, Signal::SIGKILL);
    wait_group_gone(pgid, KILL_WAIT).await
}

fn signal_group(pgid: i32, signal: Signal) {
    if pgid <= 1 {
        return; // never signal "every process" or init's group by accident
    }
    // ESRCH (already gone) is the expected race here.
    let _ = killpg(Pid::from_raw(pgid), signal);
}

async fn alive(pgid: i32) -> bool {
    tokio::task::spawn_blocking(move || procfs::group_alive(pgid))
        .await
        .unwrap_or(true)
}

async fn wait_group_gone(pgid: i32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if !alive(pgid).await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
