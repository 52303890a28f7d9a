//! `assay token …`: API tokens. A secret is printed once, when it is created or rotated;
//! the server keeps only its hash. The secret goes to stdout alone (so
//! `TOKEN=$(assay token create …)` captures just it) and everything said about it to
//! stderr; `-o json` prints the whole `CreatedApiToken` instead.

use super::Context;
use super::member::{grant, grants_text};
use super::output::{self, Table};
use super::when::{parse_days, parse_grace};
use assay_core::identity::{ApiTokenInfo, ApiTokenKind, CreatedApiToken, NewApiToken, TokenState};
use assay_core::ports::ControlPlane;
use clap::Subcommand;
use std::io::Write;
use std::process::ExitCode;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KindArg {
    /// Admin on every environment of the organization
    Admin,
    /// Only the environments given with --env, at the level given there
    Member,
    /// Read on every environment
    OrgRead,
}

impl From<KindArg> for ApiTokenKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Admin => ApiTokenKind::Admin,
            KindArg::Member => ApiTokenKind::Member,
            KindArg::OrgRead => ApiTokenKind::OrgRead,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token and print its secret (shown only this once)
    Create {
        /// A name saying what the token is for, e.g. ci-nightly
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        kind: KindArg,
        /// Member tokens: ENV=LEVEL (read, run or write); repeat for more environments
        // Shares the id of the global --env on purpose: here it means a grant.
        #[arg(long = "env", id = "env", value_name = "ENV=LEVEL", value_parser = grant_text)]
        grants: Vec<String>,
        /// Expiry: 30d, 12w, … (default 90 days)
        #[arg(long, value_name = "DAYS", value_parser = parse_days)]
        expires: Option<u32>,
        /// No expiry at all (flagged in `assay token list`)
        #[arg(long, conflicts_with = "expires")]
        no_expiry: bool,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List API tokens (admins see all, others their own)
    #[command(alias = "ls")]
    List,
    /// Show one API token
    Show {
        /// Token ID (from `assay token list`)
        id: String,
    },
    /// Give a token a new secret; the old one stops now or after --grace
    Rotate {
        /// Token ID (from `assay token list`)
        id: String,
        /// Keep the old secret working this long: 30m, 1h, … at most 24h
        #[arg(long, value_parser = parse_grace)]
        grace: Option<u64>,
    },
    /// Revoke a token: it stops working at once
    Revoke {
        /// Token ID (from `assay token list`)
        id: String,
    },
}

/// Checks `ENV=LEVEL` and keeps it as text (the argument shares its id with the global
/// `--env`, whose values are strings).
fn grant_text(s: &str) -> Result<String, String> {
    grant(s).map(|(env, level)| format!("{env}={level}"))
}

/// A token ID. The argument is never echoed: a secret pasted by mistake would be.
fn token_id(s: &str) -> anyhow::Result<Uuid> {
    Uuid::parse_str(s.trim()).map_err(|_| {
        anyhow::anyhow!(
            "that is not a token ID: pass the ID shown by `assay token list` \
             (a token's secret is never needed here)"
        )
    })
}

fn state(t: &ApiTokenInfo) -> &'static str {
    match t.state {
        TokenState::Active => "active",
        TokenState::Expired => "expired",
        TokenState::Revoked => "revoked",
    }
}

fn expires(t: &ApiTokenInfo) -> String {
    match (t.never_expires, t.expires_at) {
        (true, _) | (false, None) => "never (!)".into(),
        (false, Some(at)) => output::timestamp(at),
    }
}

fn last_used(t: &ApiTokenInfo) -> String {
    match (t.last_used_at, &t.last_used_ip) {
        (Some(at), Some(ip)) => format!("{} ago from {ip}", output::age(at)),
        (Some(at), None) => format!("{} ago", output::age(at)),
        (None, _) => "never".into(),
    }
}

fn kind(t: &ApiTokenInfo) -> &'static str {
    t.kind.as_str()
}

fn print_token(ctx: &Context, t: &ApiTokenInfo) -> anyhow::Result<()> {
    output::emit(ctx.format, t, |out| {
        output::fields(
            out,
            &[
                ("ID", t.id.to_string()),
                ("Name", t.name.clone()),
                ("Description", t.description.clone()),
                ("Kind", kind(t).to_owned()),
                ("Grants", grants_text(&t.grants)),
                ("State", state(t).to_owned()),
                ("Created", output::timestamp(t.created_at)),
                (
                    "Created by",
                    t.created_by.map(|u| u.to_string()).unwrap_or_default(),
                ),
                ("Expires", expires(t)),
                ("Last used", last_used(t)),
                ("Revoked", output::opt_timestamp(t.revoked_at)),
                (
                    "Old secret until",
                    output::opt_timestamp(t.previous_valid_until),
                ),
            ],
        )
    })
}

/// The secret alone on stdout (table mode), or the whole answer as JSON/YAML.
fn print_secret(ctx: &Context, created: &CreatedApiToken, what: &str) -> anyhow::Result<()> {
    if !ctx.format.is_table() {
        return output::emit(ctx.format, created, |_| Ok(()));
    }
    let t = &created.token;
    let scope = match grants_text(&t.grants) {
        g if g.is_empty() => kind(t).to_owned(),
        g => format!("{}: {g}", kind(t)),
    };
    eprintln!(
        "{what} API token {:?} (ID {}; {scope}; expires {}).",
        t.name,
        t.id,
        expires(t)
    );
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", created.secret)?;
    out.flush()?;
    eprintln!("Copy the secret now: it will not be shown again (the server keeps only its hash).");
    Ok(())
}

pub async fn run(ctx: &Context, command: TokenCommand) -> anyhow::Result<ExitCode> {
    let org = ctx.env.org.as_str();
    match command {
        TokenCommand::Create {
            name,
            kind,
            grants,
            expires,
            no_expiry,
            description,
        } => {
            let mut parsed = std::collections::BTreeMap::new();
            for g in &grants {
                let (env, level) = grant(g).map_err(|e| anyhow::anyhow!("--env: {e}"))?;
                parsed.insert(env, level);
            }
            let request = NewApiToken {
                name,
                description,
                kind: kind.into(),
                grants: parsed,
                expires_in_days: expires,
                never_expires: no_expiry,
            };
            let created = ctx
                .client
                .create_api_token(&ctx.actor, org, &request)
                .await?;
            print_secret(ctx, &created, "Created")?;
        }
        TokenCommand::List => {
            let tokens = ctx.client.list_api_tokens(&ctx.actor, org).await?;
            output::emit(ctx.format, &tokens, |out| {
                if tokens.is_empty() {
                    return writeln!(out, "no API tokens");
                }
                let mut t = Table::new([
                    "ID",
                    "NAME",
                    "KIND",
                    "GRANTS",
                    "STATE",
                    "EXPIRES",
                    "LAST USED",
                ]);
                for token in &tokens {
                    t.row(vec![
                        token.id.to_string(),
                        token.name.clone(),
                        kind(token).to_owned(),
                        grants_text(&token.grants),
                        state(token).to_owned(),
                        expires(token),
                        last_used(token),
                    ]);
                }
                t.write(out)?;
                let forever = tokens
                    .iter()
                    .filter(|t| t.never_expires && t.state == TokenState::Active)
                    .count();
                if forever > 0 {
                    writeln!(
                        out,
                        "\n(!) {forever} active token(s) never expire: rotate them regularly, \
                         or replace them with tokens that expire"
                    )?;
                }
                Ok(())
            })?;
        }
        TokenCommand::Show { id } => {
            let token = ctx
                .client
                .get_api_token(&ctx.actor, org, token_id(&id)?)
                .await?;
            print_token(ctx, &token)?;
        }
        TokenCommand::Rotate { id, grace } => {
            let rotated = ctx
                .client
                .rotate_api_token(&ctx.actor, org, token_id(&id)?, grace)
                .await?;
            print_secret(ctx, &rotated, "Rotated")?;
            if ctx.format.is_table() {
                match rotated.token.previous_valid_until {
                    Some(until) => eprintln!(
                        "The old secret keeps working until {}.",
                        output::timestamp(until)
                    ),
                    None => eprintln!("The old secret has stopped working."),
                }
            }
        }
        TokenCommand::Revoke { id } => {
            let token = ctx
                .client
                .revoke_api_token(&ctx.actor, org, token_id(&id)?)
                .await?;
            if ctx.format.is_table() {
                eprintln!("revoked API token {:?} ({})", token.name, token.id);
            } else {
                print_token(ctx, &token)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn ids_are_uuids_and_secrets_are_never_echoed() {
        let id = Uuid::now_v7();
        assert_eq!(token_id(&id.to_string()).unwrap(), id);
        let secret = "assay_0123456789abcdefghijABCDEFGHIJ0123456789abcdef";
        let err = token_id(secret).unwrap_err().to_string();
        assert!(!err.contains(secret), "{err}");
        assert!(err.contains("assay token list"), "{err}");
    }

    #[test]
    fn grant_texts_are_normalised() {
        assert_eq!(grant_text(" dev = run ").unwrap(), "dev=run");
        assert!(grant_text("dev").is_err());
    }
}
