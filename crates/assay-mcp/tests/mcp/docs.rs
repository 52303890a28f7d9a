//! docs/MCP-TOOLS.md is generated from the tool definitions; the committed file must match.

use std::path::PathBuf;

#[test]
fn docs_mcp_tools_md_matches_the_tool_definitions() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/MCP-TOOLS.md");
    let generated = assay_mcp::tools_markdown();
    if std::env::var("ASSAY_UPDATE_DOCS").as_deref() == Ok("1") {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/MCP-TOOLS.md is out of date; regenerate it with \
         `ASSAY_UPDATE_DOCS=1 cargo test -p assay-mcp --test mcp docs`"
    );
}
