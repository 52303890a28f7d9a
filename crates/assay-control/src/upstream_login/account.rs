//! Who an upstream identity is in Assay: the account with the admitted (verified,
//! allowed-domain) email, or — for a just-in-time provider — a new account with a
//! membership in the configured organization.
//!
//! Decisions:
//! - Accounts are matched by the admitted email only (there is no table linking
//!   `(provider, subject)` yet). The email is trusted because the provider verified it
//!   (unless the configuration explicitly accepts unverified addresses).
//! - Invite-only: any existing account may sign in, whatever its organizations; reaching
//!   the requested resource is `AuthorizationServer::decide`'s check (an account outside
//!   the resource's organization gets `access_denied` there, as with a password login).
//! - Just-in-time: only a *new* account gets the provider's membership. An existing
//!   account is used as it is, so an administrator's removal of a membership sticks and
//!   an existing owner is never "re-provisioned" to the default role.
//! - A disabled account is refused either way.

use super::UpstreamLoginError;
use assay_auth::upstream::{Provisioning, UpstreamIdentity};
use assay_core::identity::{Membership, OrgRole, User};
use assay_core::ports::{Clock, Store};
use assay_core::{Level, Organization};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Longest display name taken from a provider (as for members added by an admin).
const MAX_DISPLAY_NAME_CHARS: usize = 100;

/// Where a just-in-time provider puts new accounts, resolved against the store.
#[derive(Debug, Clone)]
pub(crate) struct JitTarget {
    pub org: Organization,
    pub role: OrgRole,
    /// Environment ID → level, for a member.
    pub grants: BTreeMap<Uuid, Level>,
}

/// The account an upstream login resolves to.
pub(crate) enum Account {
    Existing(User),
    Provisioned { user: User, target: JitTarget },
}

impl Account {
    pub(crate) fn user(&self) -> &User {
        match self {
            Account::Existing(user) | Account::Provisioned { user, .. } => user,
        }
    }
}

/// Resolves a provider's provisioning settings: the organization (named, or the only one)
/// and the environments of its levels. `Ok(None)` for invite-only.
pub(crate) async fn jit_target(
    store: &dyn Store,
    provisioning: &Provisioning,
) -> Result<Option<JitTarget>, String> {
    let Provisioning::Jit {
        organization,
        default_role,
        environment_levels,
    } = provisioning
    else {
        return Ok(None);
    };
    let org = match organization {
        Some(slug) => store
            .find_org(slug)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("provisioning organization {slug:?} does not exist"))?,
        None => {
            let mut orgs = store.list_orgs().await.map_err(|e| e.to_string())?;
            if orgs.len() != 1 {
                return Err(format!(
                    "provisioning names no organization and the server has {}; set provisioning.organization",
                    orgs.len()
                ));
            }
            orgs.remove(0)
        }
    };
    let mut grants = BTreeMap::new();
    for (slug, level) in environment_levels {
        let env = store
            .find_env(org.id, slug)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!(
                    "provisioning environment {slug:?} does not exist in organization {:?}",
                    org.slug
                )
            })?;
        grants.insert(env.id, *level);
    }
    Ok(Some(JitTarget {
        org,
        role: *default_role,
        grants,
    }))
}

/// The account for `email` (already admitted by the provider's email policy), creating
/// it for a just-in-time provider.
pub(crate) async fn find_or_provision(
    store: &dyn Store,
    clock: &dyn Clock,
    provisioning: &Provisioning,
    identity: &UpstreamIdentity,
    email: &str,
) -> Result<Account, UpstreamLoginError> {
    if let Some(user) = store.find_user_by_email(email).await? {
        return if user.disabled {
            Err(UpstreamLoginError::AccountDisabled)
        } else {
            Ok(Account::Existing(user))
        };
    }
    let target = jit_target(store, provisioning)
        .await
        .map_err(UpstreamLoginError::Provisioning)?
        .ok_or(UpstreamLoginError::NoAccount)?;
    let candidate = User {
        id: Uuid::now_v7(),
        email: email.to_owned(),
        display_name: display_name(identity.name.as_deref(), email),
        // Signs in through the provider only; a password can be set later by recovery.
        password_hash: None,
        disabled: false,
        created_at: crate::stamp::now(clock),
    };
    let user = match store.insert_user(&candidate).await {
        Ok(()) => candidate,
        // Two first logins at once: the other one created the account; use it, and
        // leave its membership to the login that made it.
        Err(e) => match store.find_user_by_email(email).await? {
            Some(user) if user.disabled => return Err(UpstreamLoginError::AccountDisabled),
            Some(user) => return Ok(Account::Existing(user)),
            None => return Err(e.into()),
        },
    };
    let grants = match target.role {
        OrgRole::Member => target.grants.clone(),
        // Validated at load: an admin gets no environment levels (it reaches them all).
        OrgRole::Admin | OrgRole::Owner => BTreeMap::new(),
    };
    store
        .upsert_membership(&Membership {
            org_id: target.org.id,
            user_id: user.id,
            role: target.role,
            grants,
        })
        .await?;
    Ok(Account::Provisioned { user, target })
}

/// The provider's name for the person, tidied; else the email's local part.
fn display_name(name: Option<&str>, email: &str) -> String {
    let cleaned: String = name
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_DISPLAY_NAME_CHARS)
        .collect();
    match cleaned.trim() {
        "" => email.split('@').next().unwrap_or(email).to_owned(),
        name => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::display_name;

    #[test]
    fn display_names_are_bounded_and_printable() {
        assert_eq!(
            display_name(Some(" Ada Lovelace "), "ada@example.com"),
            "Ada Lovelace"
        );
        assert_eq!(display_name(Some("A\u{0}da\n"), "ada@example.com"), "Ada");
        assert_eq!(display_name(None, "ada@example.com"), "ada");
        assert_eq!(display_name(Some("  "), "ada@example.com"), "ada");
        assert_eq!(
            display_name(Some(&"x".repeat(500)), "a@b.c")
                .chars()
                .count(),
            100
        );
    }
}
