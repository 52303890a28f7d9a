//! `error: …` plus a hint saying what to do about it.

use super::GlobalArgs;
use super::target::{self, Auth, Target};
use assay_core::Error;

/// What the hints may name: where the command went and with which credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hints {
    pub url: String,
    pub org: String,
    pub env: String,
    pub credential: HintCredential,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HintCredential {
    None,
    Token,
    Context(String),
}

impl Hints {
    /// Before the target is resolved (or when it could not be): the flags alone.
    pub fn from_global(global: &GlobalArgs) -> Self {
        Self {
            url: global
                .url
                .as_ref()
                .map_or_else(|| target::DEFAULT_URL.to_owned(), |u| u.to_string()),
            org: global
                .org
                .clone()
                .unwrap_or_else(|| target::DEFAULT_ORG.to_owned()),
            env: global
                .env
                .clone()
                .unwrap_or_else(|| target::DEFAULT_ENV.to_owned()),
            credential: if global
                .token
                .as_deref()
                .is_some_and(|t| !t.trim().is_empty())
            {
                HintCredential::Token
            } else {
                HintCredential::None
            },
        }
    }

    pub fn from_target(target: &Target) -> Self {
        Self {
            url: target.url.to_string(),
            org: target.org.clone(),
            env: target.env.clone(),
            credential: match &target.auth {
                Auth::Token(_) => HintCredential::Token,
                Auth::Context { name, .. } => HintCredential::Context(name.clone()),
                Auth::None => HintCredential::None,
            },
        }
    }
}

/// Prints the error and, when there is one, a hint to stderr.
pub fn report(err: &anyhow::Error, global: &Hints) {
    let domain = err.chain().find_map(|e| e.downcast_ref::<Error>());
    match domain {
        Some(Error::Invalid(errors)) if errors.len() > 1 => {
            eprintln!("error: the input is invalid:");
            for e in errors {
                eprintln!("  - {e}");
            }
        }
        _ => eprintln!("error: {err:#}"),
    }
    if let Some(hint) = domain.and_then(|e| hint(e, global)) {
        eprintln!("hint: {hint}");
    }
}

fn hint(err: &Error, global: &Hints) -> Option<String> {
    let place = format!(
        "organization {:?}, environment {:?}",
        global.org, global.env
    );
    Some(match err {
        Error::Unauthenticated(_) => match &global.credential {
            HintCredential::None => "you are not signed in: run `assay login URL`, or pass \
                                     --token / set ASSAY_TOKEN"
                .into(),
            HintCredential::Token => {
                "check --token / ASSAY_TOKEN: the token may be wrong, expired or revoked".into()
            }
            HintCredential::Context(name) => format!(
                "the credential of context {name:?} was refused (expired, revoked or logged \
                 out); sign in again with `assay login {} --context {name}`",
                global.url.trim_end_matches('/')
            ),
        },
        Error::Forbidden {
            needed: assay_core::Level::Admin,
        } => format!(
            "this needs admin rights in organization {:?} (members, tokens of others and \
             audit are for organization admins); ask an organization admin",
            global.org
        ),
        Error::Forbidden { needed } => match global.credential {
            HintCredential::Context(_) => {
                format!("you need {needed} permission in {place}; ask an organization admin")
            }
            _ => format!(
                "your token needs {needed} permission in {place}; ask an organization admin"
            ),
        },
        Error::InsufficientScope { needed } => format!(
            "your access token's scope stops short of this; sign in again granting mcp:{needed} \
             (your role allows it)"
        ),
        Error::Refused(_) => {
            "use a user's credential (OAuth or `assay login`), not an API token".into()
        }
        Error::NotFound { kind, .. } => match *kind {
            "workflow" => "see the workflows with `assay workflow list`".into(),
            "template" => "see the templates with `assay template list`".into(),
            "execution" => "see the executions with `assay execution list`".into(),
            "artifact" => "see the artifacts with `assay artifact list EXECUTION`".into(),
            "step" => "see the steps with `assay execution get EXECUTION`".into(),
            "user" => "see the members with `assay member list`".into(),
            "token" => "see the tokens with `assay token list`".into(),
            "grant" => "see your grants with `assay grants list`".into(),
            "environment" | "organization" => {
                format!("check --org/--env (ASSAY_ORG/ASSAY_ENV); now {place}")
            }
            _ => return None,
        },
        Error::Unavailable(_) if assay_client::is_connection_error(err) => format!(
            "is the server running? start it with `assay server`, or point --url/ASSAY_URL \
             (now {}) at it",
            global.url
        ),
        Error::Unavailable(_) => "the server cannot serve this now; try again shortly".into(),
        Error::TooLarge(_) => "split the input or ask for less (e.g. --limit, --tail)".into(),
        Error::Internal(_) => {
            "this is a bug or a server failure; the server log has the details".into()
        }
        Error::Invalid(_) | Error::Conflict(_) => return None,
    })
}

/// `assay … | head` closes the pipe early; that is not an error worth a message.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == BrokenPipe)
            || e.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(BrokenPipe))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use clap::Parser;

    fn global(token: Option<&str>) -> Hints {
        let mut args = vec![
            "assay",
            "--org",
            "acme",
            "--env",
            "dev",
            "execution",
            "list",
        ];
        if let Some(t) = token {
            args.extend(["--token", t]);
        }
        let mut g = super::super::Cli::try_parse_from(args).unwrap().global;
        g.token = token.map(str::to_owned);
        g.org = Some("acme".into());
        Hints::from_global(&g)
    }

    #[test]
    fn hints_say_what_to_do() {
        assert_eq!(
            hint(&Error::Unauthenticated("bad".into()), &global(None)).unwrap(),
            "you are not signed in: run `assay login URL`, or pass --token / set ASSAY_TOKEN"
        );
        let in_context = Hints {
            credential: HintCredential::Context("prod".into()),
            url: "https://assay.example.com/".into(),
            ..global(None)
        };
        assert_eq!(
            hint(&Error::Unauthenticated("bad".into()), &in_context).unwrap(),
            "the credential of context \"prod\" was refused (expired, revoked or logged out); \
             sign in again with `assay login https://assay.example.com --context prod`"
        );
        assert_eq!(
            hint(
                &Error::Forbidden {
                    needed: assay_core::Level::Write
                },
                &in_context
            )
            .unwrap(),
            "you need write permission in organization \"acme\", environment \"dev\"; ask an \
             organization admin"
        );
        assert_eq!(
            hint(&Error::Unauthenticated("bad".into()), &global(Some("t"))).unwrap(),
            "check --token / ASSAY_TOKEN: the token may be wrong, expired or revoked"
        );
        assert_eq!(
            hint(
                &Error::Forbidden {
                    needed: assay_core::Level::Run
                },
                &global(Some("t"))
            )
            .unwrap(),
            "your token needs run permission in organization \"acme\", environment \"dev\"; \
             ask an organization admin"
        );
        assert_eq!(
            hint(&Error::not_found("execution", "x"), &global(None)).unwrap(),
            "see the executions with `assay execution list`"
        );
        let refused = Error::Unavailable(format!(
            "{} http://127.0.0.1:1/: Connection refused",
            assay_client::CANNOT_REACH
        ));
        assert!(
            hint(&refused, &global(None))
                .unwrap()
                .starts_with("is the server running? start it with `assay server`")
        );
        assert_eq!(hint(&Error::Conflict("x".into()), &global(None)), None);
    }

    #[test]
    fn organization_hints_name_the_right_thing() {
        assert_eq!(
            hint(
                &Error::Forbidden {
                    needed: assay_core::Level::Admin
                },
                &global(Some("t"))
            )
            .unwrap(),
            "this needs admin rights in organization \"acme\" (members, tokens of others and \
             audit are for organization admins); ask an organization admin"
        );
        assert_eq!(
            hint(&Error::not_found("user", "bob@example.com"), &global(None)).unwrap(),
            "see the members with `assay member list`"
        );
        assert_eq!(
            hint(&Error::not_found("token", "x"), &global(None)).unwrap(),
            "see the tokens with `assay token list`"
        );
    }

    #[test]
    fn broken_pipes_are_recognised_through_context() {
        let e = anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            .context("writing output");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
        let json = serde_json::Error::io(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(is_broken_pipe(
            &anyhow::Error::from(json).context("cannot write JSON")
        ));
    }
}
