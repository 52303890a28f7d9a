//! Assay executors: local processes (default); logs, artifacts, JUnit, metrics.
