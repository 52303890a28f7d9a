//! Assay executors: local processes (default); logs, artifacts, JUnit, metrics.
//!
//! [`LocalExecutor`] runs an [`ExecutionPlan`](assay_core::execution::ExecutionPlan) as child
//! processes on this machine and [`FsExecutionFiles`] serves what those processes left behind
//! (logs, artifacts) to the control plane.
//!
//! **Linux only.** Process-tree supervision (process groups, `killpg`) and resource metrics
//! (`/proc/<pid>/stat`, `/proc/<pid>/statm`) use Linux interfaces; this is where Assay runs.
//!
//! On-disk layout under `data_dir`:
//! ```text
//! executions/<id>/workspace/        working directory of the execution (HOME, TMPDIR=.tmp)
//! executions/<id>/logs/log          one record per line: number \t micros \t step \t text
//! executions/<id>/logs/index        u64 LE byte offset of every 4096th line (1, 4097, …)
//! executions/<id>/logs/segments     "first_line \t step" each time the writing step changes
//! executions/<id>/logs/steps.json   the step table (reference, name, parent)
//! executions/<id>/logs/closed       present once the log is finished
//! executions/<id>/artifacts/…       copied artifact files, relative paths preserved
//! executions/<id>/artifacts.json    artifact index: path, size, step, content type
//! ```

mod artifacts;
mod config;
mod executor;
mod files;
mod junit;
mod layout;
mod logs;
mod metrics;
mod process;
mod procfs;
mod safe_path;
mod workspace;

pub use config::LocalExecutorConfig;
pub use executor::LocalExecutor;
pub use files::FsExecutionFiles;
