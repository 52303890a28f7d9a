//! `assay member …`: the organization's members, their roles and environment grants
//! (organization admins). Passwords are read from stdin only, never from arguments, so
//! they stay out of shell history and process listings.

use super::Context;
use super::output::{self, Table};
use anyhow::Context as _;
use assay_core::Level;
use assay_core::identity::{MemberInfo, MemberUpdate, NewMember, OrgRole};
use assay_core::ports::ControlPlane;
use clap::Subcommand;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    Member,
    Admin,
    Owner,
}

impl From<RoleArg> for OrgRole {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Member => OrgRole::Member,
            RoleArg::Admin => OrgRole::Admin,
            RoleArg::Owner => OrgRole::Owner,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// List the organization's members
    #[command(alias = "ls")]
    List,
    /// Add a member, creating the local account if needed
    Add {
        /// The user's email
        email: String,
        /// Organization role: members get only the environment levels granted to them
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Display name
        #[arg(long)]
        name: Option<String>,
        /// Read the new account's initial password from the first line of stdin
        #[arg(long)]
        password_stdin: bool,
        /// Environment grant ENV=LEVEL (read, run, write or admin); repeat for more
        #[arg(long = "grant", value_name = "ENV=LEVEL", value_parser = grant)]
        grants: Vec<(String, Level)>,
    },
    /// Change a member's role, grants or disabled state
    Set {
        /// The member's email or user ID
        user: String,
        #[arg(long, value_enum)]
        role: Option<RoleArg>,
        /// Replaces ALL grants: ENV=LEVEL; repeat for more
        #[arg(long = "grant", value_name = "ENV=LEVEL", value_parser = grant)]
        grants: Vec<(String, Level)>,
        /// Remove every environment grant
        #[arg(long, conflicts_with = "grants")]
        no_grants: bool,
        /// Disable the account: every token and grant of theirs ends at once
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        /// Enable a disabled account again
        #[arg(long)]
        enable: bool,
    },
    /// Remove a member: their tokens and grants in the organization end at once
    #[command(alias = "rm")]
    Remove {
        /// The member's email or user ID
        user: String,
    },
}

/// `ENV=LEVEL`.
pub fn grant(s: &str) -> Result<(String, Level), String> {
    let (env, level) = s
        .split_once('=')
        .ok_or_else(|| format!("expected ENV=LEVEL (e.g. dev=run), got {s:?}"))?;
    let env = env.trim();
    if env.is_empty() {
        return Err(format!("expected ENV=LEVEL (e.g. dev=run), got {s:?}"));
    }
    Ok((env.to_owned(), level.trim().parse()?))
}

pub fn grants_text(grants: &BTreeMap<String, Level>) -> String {
    grants
        .iter()
        .map(|(env, level)| format!("{env}={level}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The first line of stdin, without its line ending. Empty is refused.
fn password_from_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        anyhow::bail!("--password-stdin: stdin gave an empty password");
    }
    Ok(password)
}

fn print_member(ctx: &Context, m: &MemberInfo) -> anyhow::Result<()> {
    output::emit(ctx.format, m, |out| {
        output::fields(
            out,
            &[
                ("Email", m.email.clone()),
                ("Name", m.display_name.clone()),
                ("User ID", m.user_id.to_string()),
                ("Role", m.role.as_str().to_owned()),
                ("Grants", grants_text(&m.grants)),
                ("Status", status(m).to_owned()),
                ("Added", output::timestamp(m.created_at)),
            ],
        )
    })
}

fn status(m: &MemberInfo) -> &'static str {
    if m.disabled { "disabled" } else { "active" }
}

pub async fn run(ctx: &Context, command: MemberCommand) -> anyhow::Result<ExitCode> {
    let org = ctx.env.org.as_str();
    match command {
        MemberCommand::List => {
            let members = ctx.client.list_members(&ctx.actor, org).await?;
            output::emit(ctx.format, &members, |out| {
                if members.is_empty() {
                    return writeln!(out, "no members");
                }
                let mut t = Table::new(["EMAIL", "NAME", "ROLE", "GRANTS", "STATUS", "AGE"]);
                for m in &members {
                    t.row(vec![
                        m.email.clone(),
                        m.display_name.clone(),
                        m.role.as_str().to_owned(),
                        grants_text(&m.grants),
                        status(m).to_owned(),
                        output::age(m.created_at),
                    ]);
                }
                t.write(out)
            })?;
        }
        MemberCommand::Add {
            email,
            role,
            name,
            password_stdin,
            grants,
        } => {
            let password = if password_stdin {
                Some(password_from_stdin()?)
            } else {
                None
            };
            let member = NewMember {
                email,
                display_name: name.unwrap_or_default(),
                password,
                role: role.into(),
                grants: grants.into_iter().collect(),
            };
            let added = ctx.client.add_member(&ctx.actor, org, &member).await?;
            print_member(ctx, &added)?;
        }
        MemberCommand::Set {
            user,
            role,
            grants,
            no_grants,
            disable,
            enable,
        } => {
            let update = MemberUpdate {
                role: role.map(Into::into),
                grants: if no_grants {
                    Some(BTreeMap::new())
                } else if grants.is_empty() {
                    None
                } else {
                    Some(grants.into_iter().collect())
                },
                disabled: match (disable, enable) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                },
            };
            if update == MemberUpdate::default() {
                anyhow::bail!(
                    "nothing to change: pass --role, --grant, --no-grants, --disable or --enable"
                );
            }
            let changed = ctx
                .client
                .update_member(&ctx.actor, org, &user, &update)
                .await?;
            print_member(ctx, &changed)?;
        }
        MemberCommand::Remove { user } => {
            ctx.client.remove_member(&ctx.actor, org, &user).await?;
            eprintln!("removed {user} from organization {org}; their tokens and grants ended");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn grants_are_env_equals_level() {
        assert_eq!(grant("dev=run").unwrap(), ("dev".into(), Level::Run));
        assert_eq!(
            grant(" prod = read ").unwrap(),
            ("prod".into(), Level::Read)
        );
        assert!(grant("dev").unwrap_err().contains("ENV=LEVEL"));
        assert!(grant("=run").is_err());
        assert!(
            grant("dev=root")
                .unwrap_err()
                .contains("unknown permission level")
        );
        let map: BTreeMap<String, Level> =
            [("prod".into(), Level::Read), ("dev".into(), Level::Run)].into();
        assert_eq!(grants_text(&map), "dev=run,prod=read");
    }
}
