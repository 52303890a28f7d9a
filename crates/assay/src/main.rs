//! The assay command: server, workflow, run, execution, artifact.

fn main() {}
