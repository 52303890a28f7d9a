//! Running one process for a step: spawn it in its own group, stream its output into the
//! log, sample its resources, enforce the deadline and cancellation, and make sure that
//! nothing of its process group outlives it.

use crate::logs::mask::{LineAssembler, Masker};
use crate::logs::now_micros;
use crate::logs::writer::LogWriter;
use crate::metrics::Sampler;
use crate::process::{self, TERM_GRACE};
use assay_core::ports::ExecutionObserver;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const CHUNK: usize = 64 * 1024;
/// Chunks in flight between the pipe and the log file; bounds memory, and a full channel
/// makes a fast producer wait on its pipe (back-pressure) instead of growing a buffer.
const CHANNEL_CHUNKS: usize = 16;
/// Followers see new lines at least this often even under a constant stream…
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// …and this soon after output pauses.
const FLUSH_IDLE: Duration = Duration::from_millis(10);
/// After the group is gone, how long to wait for the pipe to reach end-of-file (a process
/// that escaped the group with setsid could hold it open forever).
const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// Which limit ended a process early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    Step,
    /// The group (by node index) whose timeout expired.
    Group(usize),
    Execution,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deadline {
    pub at: Instant,
    pub budget: Duration,
    pub limit: Limit,
}

#[derive(Debug)]
pub(crate) enum ProcessEnd {
    Exited(ExitStatus),
    /// Could not be started (or waited for).
    Failed(String),
    Deadline(Deadline),
    Aborted,
}

/// What the process runner shares with the tasks it starts.
#[derive(Clone)]
pub(crate) struct Sink {
    pub log: Arc<Mutex<LogWriter>>,
    pub masker: Arc<Masker>,
    pub observer: Arc<dyn ExecutionObserver>,
    pub sample_interval: Duration,
}

pub(crate) struct ProcessSpec<'a> {
    pub program: &'a str,
    pub args: &'a [String],
    pub cwd: &'a Path,
    pub env: &'a BTreeMap<String, String>,
    /// Index of the step in the log's step table.
    pub log_step: usize,
    /// Step reference for resource samples (none for workspace preparation).
    pub metrics_step: Option<&'a str>,
}

pub(crate) async fn run(
    sink: &Sink,
    spec: ProcessSpec<'_>,
    deadline: Option<Deadline>,
    cancel: &CancellationToken,
) -> ProcessEnd {
    if let Some(d) = deadline
        && Instant::now() >= d.at
    {
        return ProcessEnd::Deadline(d);
    }
    let spawned = match process::spawn(spec.program, spec.args, spec.cwd, spec.env) {
        Ok(s) => s,
        Err(e) => return ProcessEnd::Failed(format!("cannot start {:?}: {e}", spec.program)),
    };
    let process::Spawned {
        mut child,
        pgid,
        output,
    } = spawned;

    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    let stop_reading = CancellationToken::new();
    let mut reader = tokio::spawn(read_pipe(output, tx, stop_reading.clone()));
    let writer = {
        let (log, masker, step) = (
            Arc::clone(&sink.log),
            Arc::clone(&sink.masker),
            spec.log_step,
        );
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || write_chunks(rx, &log, &masker, step, &runtime))
    };
    let sampler = spec.metrics_step.map(|step| {
        Sampler::start(
            pgid,
            sink.sample_interval,
            step.to_string(),
            Arc::clone(&sink.observer),
        )
    });

    let expiry = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d.at.into()).await,
            None => std::future::pending().await,
        }
    };
    let end = tokio::select! {
        status = child.wait() => match status {
            Ok(status) => ProcessEnd::Exited(status),
            Err(e) => ProcessEnd::Failed(format!("waiting for the process failed: {e}")),
        },
        () = expiry => match deadline {
            Some(d) => ProcessEnd::Deadline(d),
            None => ProcessEnd::Failed("deadline without a limit".into()),
        },
        () = cancel.cancelled() => ProcessEnd::Aborted,
    };

    // Whatever happened, nothing of this step may outlive it: background processes left
    // behind by a finished step are ended too.
    let all_gone = process::terminate_group(pgid, TERM_GRACE).await;
    if !matches!(end, ProcessEnd::Exited(_)) {
        let _ = child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    }
    if tokio::time::timeout(DRAIN_WAIT, &mut reader).await.is_err() {
        stop_reading.cancel();
        let _ = reader.await;
    }
    match writer.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("writing a step's log failed: {e}"),
        Err(e) => tracing::warn!("the log writer task failed: {e}"),
    }
    if let Some(sampler) = sampler {
        sampler.finish().await;
    }
    if !all_gone {
        message(
            sink,
            spec.log_step,
            "assay: warning: some processes of this step survived SIGKILL",
        )
        .await;
    }
    end
}

/// Appends an executor message to the log under `step`.
pub(crate) async fn message(sink: &Sink, step: usize, text: &str) {
    let log = Arc::clone(&sink.log);
    let text = text.to_string();
    let result = tokio::task::spawn_blocking(move || match log.lock() {
        Ok(mut w) => w.write_message(step, &text),
        Err(_) => Err(std::io::Error::other("log writer poisoned")),
    })
    .await;
    if let Ok(Err(e)) = result {
        tracing::warn!("writing to an execution log failed: {e}");
    }
}

async fn read_pipe(
    mut output: pipe::Receiver,
    tx: mpsc::Sender<(u64, Vec<u8>)>,
    stop: CancellationToken,
) {
    loop {
        let mut buf = vec![0u8; CHUNK];
        let read = tokio::select! {
            r = output.read(&mut buf) => r,
            () = stop.cancelled() => break,
        };
        let mut filled = match read {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Take whatever else is already in the pipe: fewer, larger chunks mean fewer
        // wake-ups, lock round-trips and writes on the way to the file.
        let mut at_end = false;
        while filled < CHUNK {
            match output.try_read(&mut buf[filled..]) {
                Ok(0) => {
                    at_end = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(_) => break,
            }
        }
        buf.truncate(filled);
        if tx.send((now_micros(), buf)).await.is_err() || at_end {
            break;
        }
    }
}

/// Runs on a blocking thread: cuts chunks into lines, masks them and appends them. After a
/// write error it keeps draining (so the child never blocks on a full pipe) and reports
/// the first error at the end.
///
/// Written lines become visible (flush) when output pauses for `FLUSH_IDLE`, and at least
/// every `FLUSH_EVERY` under a constant stream; not after every chunk, which would cost a
/// write per pipe read.
fn write_chunks(
    mut rx: mpsc::Receiver<(u64, Vec<u8>)>,
    log: &Mutex<LogWriter>,
    masker: &Masker,
    step: usize,
    runtime: &tokio::runtime::Handle,
) -> std::io::Result<()> {
    let mut assembler = LineAssembler::default();
    let mut failure: Option<std::io::Error> = None;
    let mut last_flush = Instant::now();
    let mut dirty = false;
    let mut micros = now_micros();
    let lock = || {
        log.lock()
            .map_err(|_| std::io::Error::other("log writer poisoned"))
    };
    loop {
        let next = if dirty {
            match runtime.block_on(tokio::time::timeout(FLUSH_IDLE, rx.recv())) {
                Ok(next) => next,
                Err(_) => {
                    if failure.is_none()
                        && let Err(e) = lock().and_then(|mut w| w.flush())
                    {
                        failure = Some(e);
                    }
                    dirty = false;
                    last_flush = Instant::now();
                    continue;
                }
            }
        } else {
            rx.blocking_recv()
        };
        let Some((at, chunk)) = next else {
            break;
        };
        if failure.is_some() {
            continue;
        }
        micros = at;
        let result = (|| {
            let mut w = lock()?;
            assembler.push(&chunk, masker, &mut |piece, known| {
                w.write_piece(step, at, piece, known)
            })?;
            if last_flush.elapsed() >= FLUSH_EVERY {
                w.flush()?;
                last_flush = Instant::now();
                return Ok(false);
            }
            Ok(true)
        })();
        match result {
            Ok(d) => dirty = d,
            Err(e) => failure = Some(e),
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let mut w = lock()?;
    assembler.finish(masker, &mut |piece, known| {
        w.write_piece(step, micros, piece, known)
    })?;
    w.flush()
}
