//! Settings of the local executor.

use std::path::PathBuf;
use std::time::Duration;

/// How the local executor runs and what it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalExecutorConfig {
    /// Root of everything kept per execution; pass the same directory to
    /// [`FsExecutionFiles::new`](crate::FsExecutionFiles::new).
    pub data_dir: PathBuf,
    /// Largest single artifact file copied (default 100 MiB).
    pub max_artifact_bytes: u64,
    /// Largest total of artifact bytes per execution (default 1 GiB).
    pub max_artifacts_total_bytes: u64,
    /// How often a running step's process group is sampled from /proc (default 1 s).
    pub sample_interval: Duration,
    /// Reported in `RunnerInfo` only; the control plane enforces it.
    pub concurrency: u32,
}

impl Default for LocalExecutorConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./.assay"),
            max_artifact_bytes: 100 * 1024 * 1024,
            max_artifacts_total_bytes: 1024 * 1024 * 1024,
            sample_interval: Duration::from_secs(1),
            concurrency: 1,
        }
    }
}
