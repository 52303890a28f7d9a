//! Tunables of the local control plane.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPlaneConfig {
    /// Executions running at once; further ones wait in FIFO order. `0` is treated as `1`.
    pub concurrency: u32,
    /// Execution workspaces older than this are removed (logs and artifacts stay).
    pub workspace_retention: Duration,
    /// How often the retention sweep runs.
    pub retention_interval: Duration,
}

impl Default for ControlPlaneConfig {
    fn default() -> Self {
        Self {
            concurrency: 4,
            workspace_retention: Duration::from_secs(24 * 60 * 60),
            retention_interval: Duration::from_secs(10 * 60),
        }
    }
}
