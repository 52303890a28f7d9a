//! `assay workflow …` and `assay template …`: the same commands for both kinds.

use super::Context;
use super::output::{self, Table};
use anyhow::Context as _;
use assay_core::ports::ControlPlane;
use assay_core::workflow::{ResourceKind, WorkflowDetail, WorkflowFilter, WorkflowSummary};
use assay_core::{Page, PageRequest};
use clap::Subcommand;
use serde::Serialize;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum ResourceCommand {
    /// Create or update from YAML/JSON files (templates are applied before workflows)
    Apply {
        /// A file, a directory (every *.yaml, *.yml and *.json in it) or `-` for stdin;
        /// may be repeated. A file may hold several documents separated by `---`.
        #[arg(short = 'f', long = "file", value_name = "FILE|DIR|-", required = true)]
        files: Vec<PathBuf>,
    },
    /// List them
    #[command(alias = "ls")]
    List {
        /// Label selector: `key=value`, `key!=value`, `key`, comma-separated (all must match)
        #[arg(short = 'l', long)]
        selector: Option<String>,
        /// Case-insensitive substring of the name or description
        #[arg(long)]
        search: Option<String>,
        /// Most items to show
        #[arg(long)]
        limit: Option<u32>,
        /// Continue after a previous page (its `next_cursor`)
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show one
    Get {
        /// The name (metadata.name)
        name: String,
        /// Print the document exactly as it was submitted
        #[arg(long)]
        yaml: bool,
    },
    /// Delete one
    #[command(alias = "rm")]
    Delete {
        /// The name (metadata.name)
        name: String,
    },
}

pub async fn run(
    ctx: &Context,
    kind: ResourceKind,
    command: ResourceCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        ResourceCommand::Apply { files } => apply(ctx, kind, &files).await,
        ResourceCommand::List {
            selector,
            search,
            limit,
            cursor,
        } => {
            let filter = WorkflowFilter { selector, search };
            let page = PageRequest { limit, cursor };
            let result = match kind {
                ResourceKind::Workflow => {
                    ctx.client
                        .list_workflows(&ctx.actor, &ctx.env, &filter, &page)
                        .await
                }
                ResourceKind::Template => {
                    ctx.client
                        .list_templates(&ctx.actor, &ctx.env, &filter, &page)
                        .await
                }
            }?;
            output::emit(ctx.format, &result, |out| list_table(kind, &result, out))?;
            Ok(ExitCode::SUCCESS)
        }
        ResourceCommand::Get { name, yaml } => {
            let detail = match kind {
                ResourceKind::Workflow => {
                    ctx.client.get_workflow(&ctx.actor, &ctx.env, &name).await
                }
                ResourceKind::Template => {
                    ctx.client.get_template(&ctx.actor, &ctx.env, &name).await
                }
            }?;
            if yaml {
                let mut out = std::io::stdout().lock();
                out.write_all(detail.source.as_bytes())?;
                if !detail.source.ends_with('\n') {
                    out.write_all(b"\n")?;
                }
                out.flush()?;
            } else {
                output::emit(ctx.format, &detail, |out| detail_fields(&detail, out))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        ResourceCommand::Delete { name } => {
            match kind {
                ResourceKind::Workflow => {
                    ctx.client
                        .delete_workflow(&ctx.actor, &ctx.env, &name)
                        .await
                }
                ResourceKind::Template => {
                    ctx.client
                        .delete_template(&ctx.actor, &ctx.env, &name)
                        .await
                }
            }?;
            let result = serde_json::json!({"kind": kind, "name": name, "deleted": true});
            output::emit(ctx.format, &result, |out| {
                writeln!(out, "{}/{name} deleted", kind.as_str())
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list_table(
    kind: ResourceKind,
    page: &Page<WorkflowSummary>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    if page.items.is_empty() {
        writeln!(out, "no {}s found", kind.as_str())?;
        return Ok(());
    }
    match kind {
        ResourceKind::Workflow => {
            let mut t = Table::new([
                "NAME",
                "LAST EXECUTION",
                "STATUS",
                "PASS RATE",
                "LABELS",
                "AGE",
            ]);
            for w in &page.items {
                let (last, status) = match &w.last_execution {
                    Some(e) => (e.name.clone(), e.status.to_string()),
                    None => ("-".into(), "-".into()),
                };
                let pass_rate = match &w.health {
                    Some(h) if h.executions > 0 => output::percent(h.pass_rate),
                    _ => "-".into(),
                };
                t.row(vec![
                    w.name.clone(),
                    last,
                    status,
                    pass_rate,
                    output::key_values(&w.labels),
                    output::age(w.updated_at),
                ]);
            }
            t.write(out)?;
        }
        ResourceKind::Template => {
            let mut t = Table::new(["NAME", "DESCRIPTION", "LABELS", "AGE"]);
            for w in &page.items {
                t.row(vec![
                    w.name.clone(),
                    w.description.clone(),
                    output::key_values(&w.labels),
                    output::age(w.updated_at),
                ]);
            }
            t.write(out)?;
        }
    }
    more_hint(page.items.len(), page.total, page.next_cursor.as_deref());
    Ok(())
}

/// Tells on stderr (so stdout stays a clean table) how to get the next page.
pub fn more_hint(shown: usize, total: u64, next_cursor: Option<&str>) {
    if let Some(cursor) = next_cursor {
        eprintln!("showing {shown} of {total}; next page: --cursor {cursor}");
    }
}

fn detail_fields(detail: &WorkflowDetail, out: &mut dyn Write) -> std::io::Result<()> {
    let s = &detail.summary;
    let health = s.health.as_ref().filter(|h| h.executions > 0).map(|h| {
        format!(
            "pass rate {} · flip rate {} · over the last {} executions",
            output::percent(h.pass_rate),
            output::percent(h.flip_rate),
            h.executions
        )
    });
    let last = s
        .last_execution
        .as_ref()
        .map(|e| format!("{} {} ({} ago)", e.name, e.status, output::age(e.queued_at)));
    output::fields(
        out,
        &[
            ("Name", s.name.clone()),
            ("Kind", s.kind.as_str().to_owned()),
            ("Description", s.description.clone()),
            ("Labels", output::key_values(&s.labels)),
            ("Created", output::timestamp(s.created_at)),
            ("Updated", output::timestamp(s.updated_at)),
            ("Health", health.unwrap_or_default()),
            ("Last execution", last.unwrap_or_default()),
        ],
    )?;
    writeln!(
        out,
        "\n(the document: assay {} get {} --yaml)",
        s.kind.as_str(),
        s.name
    )
}

// ---------------------------------------------------------------------------------------
// apply
// ---------------------------------------------------------------------------------------

/// One document to apply, with where it came from.
#[derive(Debug, Clone, PartialEq)]
struct Document {
    origin: String,
    kind: ResourceKind,
    source: String,
}

#[derive(Debug, Serialize)]
struct Applied {
    file: String,
    kind: ResourceKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// created | updated | failed
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

async fn apply(
    ctx: &Context,
    default_kind: ResourceKind,
    inputs: &[PathBuf],
) -> anyhow::Result<ExitCode> {
    let mut documents = Vec::new();
    for input in inputs {
        for (origin, text) in read_inputs(input)? {
            documents.extend(split_documents(&origin, &text, default_kind));
        }
    }
    if documents.is_empty() {
        anyhow::bail!("no documents found in {}", display_paths(inputs));
    }
    // Workflows may `use:` templates, so templates go first.
    documents.sort_by_key(|d| d.kind != ResourceKind::Template);

    let mut results = Vec::new();
    let stdout = std::io::stdout();
    for doc in documents {
        let outcome = match doc.kind {
            ResourceKind::Workflow => {
                ctx.client
                    .apply_workflow(&ctx.actor, &ctx.env, &doc.source)
                    .await
            }
            ResourceKind::Template => {
                ctx.client
                    .apply_template(&ctx.actor, &ctx.env, &doc.source)
                    .await
            }
        };
        let applied = match outcome {
            Ok(r) => Applied {
                file: doc.origin,
                kind: doc.kind,
                name: Some(r.workflow.summary.name),
                result: if r.created { "created" } else { "updated" },
                error: None,
            },
            Err(e) => {
                // A server that cannot be reached will not answer the next file either.
                if assay_client::is_connection_error(&e) {
                    return Err(e.into());
                }
                Applied {
                    file: doc.origin,
                    kind: doc.kind,
                    name: None,
                    result: "failed",
                    error: Some(e.to_string()),
                }
            }
        };
        if ctx.format.is_table() {
            let mut out = stdout.lock();
            match (&applied.name, &applied.error) {
                (Some(name), _) => writeln!(
                    out,
                    "{}/{name} {} ({})",
                    applied.kind.as_str(),
                    applied.result,
                    applied.file
                )?,
                (None, error) => {
                    out.flush()?;
                    eprintln!(
                        "error: {}: {}",
                        applied.file,
                        error.as_deref().unwrap_or("failed")
                    );
                }
            }
        }
        results.push(applied);
    }
    if !ctx.format.is_table() {
        output::emit(ctx.format, &results, |_| Ok(()))?;
    }
    let failed = results.iter().filter(|r| r.error.is_some()).count();
    if failed > 0 {
        anyhow::bail!("{failed} of {} documents were not applied", results.len());
    }
    Ok(ExitCode::SUCCESS)
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// (origin, text) of a file, of every document file in a directory, or of stdin.
fn read_inputs(input: &Path) -> anyhow::Result<Vec<(String, String)>> {
    if input == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the document from stdin")?;
        return Ok(vec![("stdin".into(), text)]);
    }
    let meta =
        std::fs::metadata(input).with_context(|| format!("cannot read {}", input.display()))?;
    if !meta.is_dir() {
        return Ok(vec![(input.display().to_string(), read_text(input)?)]);
    }
    let mut paths = Vec::new();
    for entry in
        std::fs::read_dir(input).with_context(|| format!("cannot list {}", input.display()))?
    {
        let path = entry?.path();
        let is_document = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "yaml" | "yml" | "json"));
        if is_document && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|p| Ok((p.display().to_string(), read_text(&p)?)))
        .collect()
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", path.display()))
}

/// Splits a file at `---` lines and tells each document's kind; the text of each
/// document is kept verbatim (it is what the server stores).
fn split_documents(origin: &str, text: &str, default_kind: ResourceKind) -> Vec<Document> {
    let mut parts: Vec<String> = vec![String::new()];
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end();
        if bare == "---" || bare.starts_with("--- #") {
            parts.push(String::new());
        } else if bare == "..." {
            // End-of-document marker: not part of the document.
        } else if let Some(last) = parts.last_mut() {
            last.push_str(line);
        }
    }
    let parts: Vec<String> = parts.into_iter().filter(|p| has_content(p)).collect();
    let several = parts.len() > 1;
    parts
        .into_iter()
        .enumerate()
        .map(|(i, source)| Document {
            origin: if several {
                format!("{origin} #{}", i + 1)
            } else {
                origin.to_owned()
            },
            kind: document_kind(&source).unwrap_or(default_kind),
            source,
        })
        .collect()
}

/// Whether a document has anything but blank lines and comments.
fn has_content(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim();
        !l.is_empty() && !l.starts_with('#')
    })
}

/// The document's `kind`, when it names one of ours. Anything else (no kind, a typo,
/// unparsable text) is left to the server, which explains what is wrong.
fn document_kind(source: &str) -> Option<ResourceKind> {
    #[derive(serde::Deserialize)]
    struct KindOnly {
        #[serde(default)]
        kind: Option<String>,
    }
    let doc: KindOnly = serde_saphyr::from_str(source).ok()?;
    match doc.kind.as_deref()? {
        "TestWorkflowTemplate" => Some(ResourceKind::Template),
        "TestWorkflow" => Some(ResourceKind::Workflow),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn documents_are_split_at_separator_lines_and_kept_verbatim() {
        let text = "# leading comment\n---\nkind: TestWorkflowTemplate\nmetadata:\n  name: base\n---\n\
                    kind: TestWorkflow\nmetadata:\n  name: smoke\nspec:\n  steps:\n  - shell: |\n      echo ---x\n...\n";
        let docs = split_documents("all.yaml", text, ResourceKind::Workflow);
        assert_eq!(
            docs,
            vec![
                Document {
                    origin: "all.yaml #1".into(),
                    kind: ResourceKind::Template,
                    source: "kind: TestWorkflowTemplate\nmetadata:\n  name: base\n".into(),
                },
                Document {
                    origin: "all.yaml #2".into(),
                    kind: ResourceKind::Workflow,
                    source: "kind: TestWorkflow\nmetadata:\n  name: smoke\nspec:\n  steps:\n  - shell: |\n      echo ---x\n"
                        .into(),
                },
            ]
        );
    }

    #[test]
    fn a_single_document_keeps_the_file_name_and_the_default_kind() {
        let docs = split_documents("t.yaml", "metadata:\n  name: t\n", ResourceKind::Template);
        assert_eq!(
            docs,
            vec![Document {
                origin: "t.yaml".into(),
                kind: ResourceKind::Template,
                source: "metadata:\n  name: t\n".into(),
            }]
        );
        assert!(split_documents("e.yaml", "# nothing\n\n", ResourceKind::Workflow).is_empty());
    }

    #[test]
    fn kinds_are_read_from_yaml_and_json() {
        assert_eq!(
            document_kind("{\"kind\": \"TestWorkflowTemplate\", \"metadata\": {\"name\": \"x\"}}"),
            Some(ResourceKind::Template)
        );
        assert_eq!(
            document_kind("kind: 'TestWorkflow'\nmetadata: {name: x}\n"),
            Some(ResourceKind::Workflow)
        );
        assert_eq!(document_kind("kind: Pod\n"), None);
        assert_eq!(document_kind("kind: [unclosed\n"), None);
    }

    #[test]
    fn directories_are_read_in_name_order_and_only_documents() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.yml"), "b").unwrap();
        std::fs::write(dir.path().join("a.json"), "a").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "n").unwrap();
        std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();
        let read = read_inputs(dir.path()).unwrap();
        let names: Vec<(String, String)> = read
            .into_iter()
            .map(|(origin, text)| {
                let name = Path::new(&origin)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                (name, text)
            })
            .collect();
        assert_eq!(
            names,
            vec![("a.json".into(), "a".into()), ("b.yml".into(), "b".into())]
        );
    }
}
