//! Organization members: local accounts, roles and environment grants.
//!
//! Rules:
//! - only an owner (or the system, or an admin token minted by a current owner) may add an
//!   owner, or change or remove an owner's membership;
//! - nobody may demote, disable or remove the last active owner (`Conflict`);
//! - disabling a user or removing their membership ends their power at once: every API
//!   token they created in the organization is revoked, their grants are dropped, their
//!   OAuth grants are revoked (all of them when disabled, this organization's when
//!   removed) with their refresh and access tokens, and the authenticator's caches forget
//!   them before the call returns.
//!   (`User::disabled` is an account-wide flag; the tokens revoked are those of this
//!   organization — the one whose admin acted.)
//! - any change to a member (added, role, grants, disabled, removed) makes the principals
//!   cached for their access tokens be read again on the next request.

use crate::LocalControlPlane;
use crate::audit::Call;
use crate::env_index::{EnvIndex, grant_refs};
use crate::passwords::{hash_password, password_problem};
use assay_core::actor::PrincipalKind;
use assay_core::error::FieldError;
use assay_core::identity::{
    ApiTokenKind, MemberInfo, MemberUpdate, Membership, NewMember, OrgRole, User,
};
use assay_core::{Error, Level, Organization, Principal, Result};
use uuid::Uuid;

const MAX_EMAIL_CHARS: usize = 254;
const MAX_DISPLAY_NAME_CHARS: usize = 100;

pub(crate) const DISABLED_ACTION: &str = "member.disabled";

impl LocalControlPlane {
    pub(crate) async fn list_members_in(&self, org: &Organization) -> Result<Vec<MemberInfo>> {
        let envs = EnvIndex::load(self.store.as_ref(), org.id).await?;
        let mut members = Vec::new();
        for membership in self.store.list_memberships(org.id).await? {
            match self.store.find_user(membership.user_id).await? {
                Some(user) => members.push(member_info(&user, &membership, &envs)),
                None => tracing::warn!(user = %membership.user_id, "membership of a missing user"),
            }
        }
        members.sort_by(|a, b| a.email.cmp(&b.email));
        Ok(members)
    }

    pub(crate) async fn add_member_in(
        &self,
        call: &mut Call<'_>,
        org: &Organization,
        new: &NewMember,
    ) -> Result<MemberInfo> {
        let mut errors = Vec::new();
        let email = new.email.trim();
        if let Some(problem) = email_problem(email) {
            errors.push(field("email", problem));
        }
        let display_name = match new.display_name.trim() {
            "" => email.split('@').next().unwrap_or_default().to_string(),
            name => name.to_string(),
        };
        if display_name.chars().count() > MAX_DISPLAY_NAME_CHARS
            || display_name.chars().any(char::is_control)
        {
            errors.push(field(
                "display_name",
                format!("must be at most {MAX_DISPLAY_NAME_CHARS} characters, without control characters"),
            ));
        }
        if let Some(problem) = new.password.as_deref().and_then(password_problem) {
            errors.push(field("password", problem));
        }
        let envs = EnvIndex::load(self.store.as_ref(), org.id).await?;
        let grants = envs.resolve_grants(&new.grants, "grants", &mut errors);
        if new.role != OrgRole::Member && !grants.is_empty() {
            errors.push(field("grants", ROLE_GRANTS));
        }
        let existing = if email_problem(email).is_none() {
            self.store.find_user_by_email(email).await?
        } else {
            None
        };
        if existing.is_some() && new.password.is_some() {
            errors.push(field(
                "password",
                "an account with this email exists; its password cannot be set here",
            ));
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        call.add(format!("role:{}", new.role.as_str()));
        call.resources.extend(grant_refs(&envs.by_slug(&grants)));
        if new.role == OrgRole::Owner {
            self.require_owner(call, org).await?;
        }

        let user = match existing {
            Some(user) => {
                if self.store.find_membership(org.id, user.id).await?.is_some() {
                    call.add(format!("user:{}", user.id));
                    return Err(Error::Conflict(format!(
                        "{} is already a member of the organization; change the membership instead",
                        user.email
                    )));
                }
                user
            }
            None => {
                let password_hash = match &new.password {
                    Some(password) => Some(hash_password(password)?),
                    None => None,
                };
                let user = User {
                    id: Uuid::now_v7(),
                    email: email.to_string(),
                    display_name,
                    password_hash,
                    disabled: false,
                    created_at: crate::stamp::now(self.clock.as_ref()),
                };
                self.store.insert_user(&user).await?;
                user
            }
        };
        call.resources.insert(0, format!("user:{}", user.id));
        let membership = Membership {
            org_id: org.id,
            user_id: user.id,
            role: new.role,
            grants,
        };
        let added = self.store.upsert_membership(&membership).await;
        self.authenticator.forget_principals_of(user.id);
        added?;
        Ok(member_info(&user, &membership, &envs))
    }

    pub(crate) async fn update_member_in(
        &self,
        call: &mut Call<'_>,
        org: &Organization,
        user_ref: &str,
        update: &MemberUpdate,
    ) -> Result<MemberInfo> {
        let (mut user, mut membership) = self.find_member(call, org, user_ref).await?;
        let envs = EnvIndex::load(self.store.as_ref(), org.id).await?;
        let mut errors = Vec::new();
        let new_grants = update
            .grants
            .as_ref()
            .map(|g| envs.resolve_grants(g, "grants", &mut errors));
        let role = update.role.unwrap_or(membership.role);
        if role != OrgRole::Member && new_grants.as_ref().is_some_and(|g| !g.is_empty()) {
            errors.push(field("grants", ROLE_GRANTS));
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let disabling = update.disabled == Some(true);
        if disabling {
            call.action = Some(DISABLED_ACTION);
        }
        if let Some(role) = update.role {
            call.add(format!("role:{}", role.as_str()));
        }
        if let Some(grants) = &new_grants {
            call.resources.extend(grant_refs(&envs.by_slug(grants)));
        }
        if let Some(disabled) = update.disabled {
            call.add(format!("disabled:{disabled}"));
        }
        if membership.role == OrgRole::Owner || role == OrgRole::Owner {
            self.require_owner(call, org).await?;
        }
        let stops_being_owner = role != OrgRole::Owner || disabling;
        if membership.role == OrgRole::Owner && !user.disabled && stops_being_owner {
            self.keep_an_owner(org, &user).await?;
        }

        membership.role = role;
        if let Some(grants) = new_grants {
            membership.grants = grants;
        }
        if role != OrgRole::Member || disabling {
            membership.grants.clear();
        }
        let written = self
            .write_member(&mut user, update.disabled, &membership)
            .await;
        // The principals of the member's access tokens are read again, even if a write
        // failed part-way.
        self.authenticator.forget_principals_of(user.id);
        written?;
        if disabling {
            self.end_tokens_of(org, user.id).await?;
            // The account is disabled everywhere, so are its grants.
            self.end_grants_of(call, None, user.id, "user disabled")
                .await?;
        }
        Ok(member_info(&user, &membership, &envs))
    }

    pub(crate) async fn remove_member_in(
        &self,
        call: &mut Call<'_>,
        org: &Organization,
        user_ref: &str,
    ) -> Result<()> {
        let (user, membership) = self.find_member(call, org, user_ref).await?;
        if membership.role == OrgRole::Owner {
            self.require_owner(call, org).await?;
            if !user.disabled {
                self.keep_an_owner(org, &user).await?;
            }
        }
        let removed = self.store.delete_membership(org.id, user.id).await;
        self.authenticator.forget_principals_of(user.id);
        removed?;
        self.end_tokens_of(org, user.id).await?;
        self.end_grants_of(call, Some(org.id), user.id, "membership removed")
            .await
    }

    /// Stores the account flag (when it changes) and the membership.
    async fn write_member(
        &self,
        user: &mut User,
        disabled: Option<bool>,
        membership: &Membership,
    ) -> Result<()> {
        if let Some(disabled) = disabled
            && disabled != user.disabled
        {
            user.disabled = disabled;
            self.store.update_user(user).await?;
        }
        self.store.upsert_membership(membership).await
    }

    /// Revokes the user's OAuth grants (in `org` only, when given) with their refresh
    /// tokens, and makes the access-token validator forget them, so their access tokens
    /// stop at once. A non-zero count goes on the call's audit event
    /// (`oauth-grants-revoked:N`).
    async fn end_grants_of(
        &self,
        call: &mut Call<'_>,
        org: Option<Uuid>,
        user_id: Uuid,
        reason: &str,
    ) -> Result<()> {
        let now = crate::stamp::now(self.clock.as_ref());
        let revoked = self
            .store
            .revoke_oauth_grants_of_user(user_id, org, now, reason)
            .await;
        // Forget cached grants even if the store failed part-way.
        self.authenticator.forget_grants_of(user_id);
        let revoked = revoked?;
        if revoked > 0 {
            call.add(format!("oauth-grants-revoked:{revoked}"));
            tracing::info!(user = %user_id, revoked, "revoked the OAuth grants of a member");
        }
        Ok(())
    }

    /// Revokes every token the user created in the organization and makes sure none of
    /// them is still accepted from the cache.
    async fn end_tokens_of(&self, org: &Organization, user_id: Uuid) -> Result<()> {
        let now = crate::stamp::now(self.clock.as_ref());
        let revoked = self
            .store
            .revoke_api_tokens_created_by(org.id, user_id, now)
            .await;
        // Forget cached tokens even if the store failed part-way.
        self.authenticator.forget_created_by(user_id);
        let revoked = revoked?;
        if revoked > 0 {
            tracing::info!(user = %user_id, org = %org.id, revoked, "revoked the API tokens of a member");
        }
        Ok(())
    }

    /// The user (by ID or email) and their membership; `NotFound` when not a member.
    async fn find_member(
        &self,
        call: &mut Call<'_>,
        org: &Organization,
        user_ref: &str,
    ) -> Result<(User, Membership)> {
        let given = format!("user:{user_ref}");
        call.add(&given);
        let user = match Uuid::parse_str(user_ref) {
            Ok(id) => self.store.find_user(id).await?,
            Err(_) => self.store.find_user_by_email(user_ref.trim()).await?,
        };
        let missing = || Error::not_found("member", user_ref);
        let user = user.ok_or_else(missing)?;
        let membership = self
            .store
            .find_membership(org.id, user.id)
            .await?
            .ok_or_else(missing)?;
        call.refine(&given, format!("user:{}", user.id));
        Ok((user, membership))
    }

    /// Ownership changes are for owners only.
    async fn require_owner(&self, call: &mut Call<'_>, org: &Organization) -> Result<()> {
        if self.acts_as_owner(&call.actor.principal, org).await? {
            Ok(())
        } else {
            call.denied = true;
            Err(Error::Forbidden {
                needed: Level::Admin,
            })
        }
    }

    /// Owners: owner users (not disabled), the system, and admin tokens minted by a
    /// current owner (a token never has more power than its creator).
    async fn acts_as_owner(&self, principal: &Principal, org: &Organization) -> Result<bool> {
        let user_id = match principal.kind {
            PrincipalKind::System => return Ok(true),
            PrincipalKind::User => principal.id,
            PrincipalKind::ApiToken => {
                let token = self.store.get_api_token(org.id, principal.id).await?;
                match token {
                    Some(t) if t.kind == ApiTokenKind::Admin && t.revoked_at.is_none() => {
                        match t.created_by {
                            Some(creator) => creator,
                            None => return Ok(false),
                        }
                    }
                    _ => return Ok(false),
                }
            }
        };
        let role = self.store.find_membership(org.id, user_id).await?;
        let active = self
            .store
            .find_user(user_id)
            .await?
            .is_some_and(|u| !u.disabled);
        Ok(active && role.is_some_and(|m| m.role == OrgRole::Owner))
    }

    /// `Conflict` when `owner` is the organization's only active owner.
    async fn keep_an_owner(&self, org: &Organization, owner: &User) -> Result<()> {
        for m in self.store.list_memberships(org.id).await? {
            if m.role != OrgRole::Owner || m.user_id == owner.id {
                continue;
            }
            if self
                .store
                .find_user(m.user_id)
                .await?
                .is_some_and(|u| !u.disabled)
            {
                return Ok(());
            }
        }
        Err(Error::Conflict(format!(
            "{} is the last owner of the organization; make someone else owner first",
            owner.email
        )))
    }
}

const ROLE_GRANTS: &str =
    "owners and admins have admin on every environment; grants are for members only";

fn field(path: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        path: path.to_string(),
        message: message.into(),
    }
}

/// A plausible address: one `@` between non-empty parts, no spaces or control characters.
fn email_problem(email: &str) -> Option<String> {
    let parts: Vec<&str> = email.split('@').collect();
    let shaped = parts.len() == 2 && parts.iter().all(|p| !p.is_empty());
    let clean = !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if email.chars().count() > MAX_EMAIL_CHARS {
        Some(format!("must be at most {MAX_EMAIL_CHARS} characters"))
    } else if !shaped || !clean {
        Some("must be an email address (name@domain)".into())
    } else {
        None
    }
}

pub(crate) fn member_info(user: &User, membership: &Membership, envs: &EnvIndex) -> MemberInfo {
    MemberInfo {
        user_id: user.id,
        email: user.email.clone(),
        display_name: user.display_name.clone(),
        role: membership.role,
        grants: envs.by_slug(&membership.grants),
        disabled: user.disabled,
        created_at: user.created_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_shapes() {
        assert_eq!(email_problem("ada@example.com"), None);
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "a@b@c",
            "ada @x.io",
            "a\u{7}@x.io",
        ] {
            assert!(email_problem(bad).is_some(), "{bad:?}");
        }
        assert!(email_problem(&format!("{}@x.io", "a".repeat(260))).is_some());
    }
}
