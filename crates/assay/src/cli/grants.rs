//! `assay grants …`: the OAuth grants you gave to MCP clients (and the CLI) in this
//! organization — list them, revoke one. Users only: an API token has no grants, and the
//! server says so.

use super::Context;
use super::output::{self, Table};
use assay_core::oauth::GrantInfo;
use assay_core::ports::ControlPlane;
use clap::Subcommand;
use std::process::ExitCode;
use uuid::Uuid;

#[derive(Debug, Subcommand)]
pub enum GrantsCommand {
    /// List your OAuth grants: which client may act for you, with what scope, where
    #[command(alias = "ls")]
    List,
    /// Revoke one of your grants: its client's refresh and access tokens stop at once
    Revoke {
        /// Grant ID (from `assay grants list`)
        id: String,
    },
}

/// A grant ID. The argument is never echoed: a token pasted by mistake would be.
fn grant_id(s: &str) -> anyhow::Result<Uuid> {
    Uuid::parse_str(s.trim()).map_err(|_| {
        anyhow::anyhow!("that is not a grant ID: pass an ID shown by `assay grants list`")
    })
}

/// The client as people know it: its name, and its ID when that says more (a URL).
fn client(g: &GrantInfo) -> String {
    if g.client_name == g.client_id {
        g.client_name.clone()
    } else {
        format!("{} ({})", g.client_name, g.client_id)
    }
}

pub async fn run(ctx: &Context, command: GrantsCommand) -> anyhow::Result<ExitCode> {
    let org = ctx.env.org.as_str();
    match command {
        GrantsCommand::List => {
            let grants = ctx.client.list_my_grants(&ctx.actor, org).await?;
            output::emit(ctx.format, &grants, |out| {
                if grants.is_empty() {
                    return writeln!(out, "no OAuth grants");
                }
                let mut t = Table::new(["ID", "CLIENT", "SCOPE", "RESOURCE", "GRANTED"]);
                for g in &grants {
                    t.row(vec![
                        g.id.to_string(),
                        client(g),
                        g.scope.clone(),
                        g.resource.clone(),
                        format!("{} ago", output::age(g.created_at)),
                    ]);
                }
                t.write(out)
            })?;
        }
        GrantsCommand::Revoke { id } => {
            let id = grant_id(&id)?;
            ctx.client.revoke_my_grant(&ctx.actor, org, id).await?;
            eprintln!("revoked grant {id}: its client must be authorized again");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use assay_core::oauth::OAuthClientKind;

    #[test]
    fn ids_are_uuids_and_bad_ones_are_never_echoed() {
        let id = Uuid::now_v7();
        assert_eq!(grant_id(&format!(" {id} ")).unwrap(), id);
        let pasted = "eyJhbGciOiJFZERTQSJ9.secret.sig";
        let err = grant_id(pasted).unwrap_err().to_string();
        assert!(!err.contains(pasted), "{err}");
        assert!(err.contains("assay grants list"), "{err}");
    }

    #[test]
    fn clients_show_their_name_and_a_differing_id() {
        let mut g = GrantInfo {
            id: Uuid::now_v7(),
            client_id: "https://client.example/oauth.json".into(),
            client_name: "Example".into(),
            client_kind: OAuthClientKind::MetadataDocument,
            scope: "mcp:read".into(),
            resource: "https://assay.example".into(),
            created_at: time::OffsetDateTime::now_utc(),
        };
        assert_eq!(client(&g), "Example (https://client.example/oauth.json)");
        g.client_name = g.client_id.clone();
        assert_eq!(client(&g), "https://client.example/oauth.json");
    }
}
