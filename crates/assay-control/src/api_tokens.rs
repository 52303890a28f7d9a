//! API token lifecycle: create, list, show, rotate, revoke.
//!
//! - Nobody mints a token with more power than they have: admin and org-read tokens need an
//!   organization admin; a member token's level in each environment must not exceed the
//!   creator's own (`Forbidden` naming the level asked for). An environment the creator
//!   cannot see is reported like an unknown one.
//! - Users manage their own tokens; organization admins (and admin tokens) manage all.
//!   Another user's token is `NotFound` to a non-admin, like a missing one.
//! - A token created by an admin token records that token's creator as `created_by`, so
//!   disabling that person ends those tokens too.
//! - Revocation and rotation drop the token from the authenticator's cache before the call
//!   returns. A rotation keeps the old secret's hash with `previous_valid_until` = end of
//!   the grace (now, without grace), so a late use of the old secret is refused *as
//!   rotated away* and attributed to the token; a second rotation replaces it.
//! - The secret appears only in the `CreatedApiToken` returned, never in events or logs.

use crate::LocalControlPlane;
use crate::access::is_org_admin;
use crate::audit::Call;
use crate::env_index::{EnvIndex, grant_refs};
use crate::tokens;
use assay_core::actor::PrincipalKind;
use assay_core::error::FieldError;
use assay_core::identity::{
    ApiTokenInfo, ApiTokenKind, ApiTokenRecord, CreatedApiToken, DEFAULT_TOKEN_EXPIRY_DAYS,
    MAX_ROTATION_GRACE_SECS, NewApiToken, TokenState,
};
use assay_core::{Error, Level, Organization, Principal, Result, Timestamp};
use std::collections::BTreeMap;
use uuid::Uuid;

pub const MAX_TOKEN_NAME_CHARS: usize = 100;
pub const MAX_TOKEN_DESCRIPTION_CHARS: usize = 1000;
pub const MAX_TOKEN_EXPIRY_DAYS: u32 = 3650;

impl LocalControlPlane {
    pub(crate) async fn create_api_token_in(
        &self,
        call: &mut Call<'_>,
        org: &Organization,
        request: &NewApiToken,
    ) -> Result<CreatedApiToken> {
        let principal = &call.actor.principal;
        let mut errors = Vec::new();
        let name = request.name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_TOKEN_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            errors.push(field(
                "name",
                format!("must be 1–{MAX_TOKEN_NAME_CHARS} characters, without control characters"),
            ));
        }
        if request.description.chars().count() > MAX_TOKEN_DESCRIPTION_CHARS {
            errors.push(field(
                "description",
                format!("must be at most {MAX_TOKEN_DESCRIPTION_CHARS} characters"),
            ));
        }
        let lifetime_days = match (request.never_expires, request.expires_in_days) {
            (true, Some(_)) => {
                errors.push(field(
                    "expires_in_days",
                    "cannot be combined with never_expires",
                ));
                None
            }
            (true, None) => None,
            (false, days) => {
                let days = days.unwrap_or(DEFAULT_TOKEN_EXPIRY_DAYS);
                if !(1..=MAX_TOKEN_EXPIRY_DAYS).contains(&days) {
                    errors.push(field(
                        "expires_in_days",
                        format!("must be between 1 and {MAX_TOKEN_EXPIRY_DAYS}"),
                    ));
                }
                Some(days)
            }
        };

        let envs = EnvIndex::load(self.store.as_ref(), org.id).await?;
        let mut grants = BTreeMap::new();
        // The highest level asked for beyond the creator's own, if any.
        let mut beyond: Option<Level> = None;
        match request.kind {
            ApiTokenKind::Admin | ApiTokenKind::OrgRead => {
                if !request.grants.is_empty() {
                    errors.push(field(
                        "grants",
                        "only member tokens have environment grants",
                    ));
                }
            }
            ApiTokenKind::Member => {
                if request.grants.is_empty() {
                    errors.push(field(
                        "grants",
                        "a member token needs at least one environment grant",
                    ));
                }
                for (key, level) in &request.grants {
                    let path = format!("grants.{key}");
                    // Unknown and invisible environments look the same.
                    let visible = envs
                        .resolve(key)
                        .and_then(|env| principal.level_in(org.id, env.id).map(|own| (env, own)));
                    let Some((env, own)) = visible else {
                        errors.push(field(&path, format!("unknown environment {key:?}")));
                        continue;
                    };
                    if *level == Level::Admin {
                        errors.push(field(&path, "member tokens may have read, run or write"));
                        continue;
                    }
                    if *level > own {
                        beyond = beyond.max(Some(*level));
                    }
                    grants.insert(env.id, *level);
                }
            }
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        call.add(format!("kind:{}", request.kind.as_str()));
        call.resources.extend(grant_refs(&envs.by_slug(&grants)));
        let wide = matches!(request.kind, ApiTokenKind::Admin | ApiTokenKind::OrgRead);
        if wide && !is_org_admin(principal) {
            call.denied = true;
            return Err(Error::Forbidden {
                needed: Level::Admin,
            });
        }
        if let Some(needed) = beyond {
            call.denied = true;
            return Err(Error::Forbidden { needed });
        }

        let now = crate::stamp::now(self.clock.as_ref());
        let (secret, secret_hash) = tokens::generate();
        let record = ApiTokenRecord {
            id: Uuid::now_v7(),
            org_id: org.id,
            name: name.to_string(),
            description: request.description.clone(),
            kind: request.kind,
            grants,
            secret_hash,
            created_by: self.creator_of_new_tokens(principal, org).await?,
            created_at: now,
            expires_at: lifetime_days.map(|d| now + time::Duration::days(i64::from(d))),
            last_used_at: None,
            last_used_ip: None,
            revoked_at: None,
            previous_secret_hash: None,
            previous_valid_until: None,
        };
        self.store.insert_api_token(&record).await?;
        call.resources.insert(0, format!("token:{}", record.id));
        Ok(CreatedApiToken {
            token: token_info(&record, &envs, now),
            secret,
        })
    }

    pub(crate) async fn list_api_tokens_in(
        &self,
        call: &Call<'_>,
        org: &Organization,
    ) -> Result<Vec<ApiTokenInfo>> {
        let principal = &call.actor.principal;
        let envs = EnvIndex::load(self.store.as_ref(), org.id).await?;
        let now = self.clock.now();
        Ok(self
            .store
            .list_api_tokens(org.id)
            .await?
            .iter()
            .filter(|t| may_manage(principal, t))
            .map(|t| token_info(t, &envs, now))
            .collect())
    }

    pub(crate) async fn get_api_token_in(
        &self,
        call: &mut Call<'_>,
        org: &Organization,
        id: Uuid,
    ) -> Result<ApiTokenInfo> {
        let record = self.find_token(call, org, id).await?;
        let envs = EnvIndex::load(self.store.as_ref(), org.id).await?;
        Ok(token_info(&record, &envs, self.clock.now()))
    }

    pub(crate) async fn rotate_api_token_in(
        &self,
        call: &mut Call<'_>,
        org: &Organization,
        id: Uuid,
        grace_secs: Option<u64>,
    ) -> Result<CreatedApiToken> {
        let grace = grace_secs.unwrap_or(0);
        if grace > MAX_ROTATION_GRACE_SECS {
            return Err(Error::invalid(
                "grace_secs",
                format!("must be at most {MAX_ROTATION_GRACE_SECS} (24 hours)"),
            ));
        }
        let mut record = self.find_token(call, org, id).await?;
        let now = crate::stamp::now(self.clock.as_ref());
        match state(&record, now) {
            TokenState::Active => {}
            TokenState::Revoked => {
                return Err(Error::Conflict(
                    "the API token has been revoked; create a new one".into(),
                ));
            }
            TokenState::Expired => {
                return Err(Error::Conflict(
                    "the API token has expired; create a new one".into(),
                ));
            }
        }
        let (secret, secret_hash) = tokens::generate();
        let grace = time::Duration::seconds(i64::try_from(grace).unwrap_or(i64::MAX));
        record.previous_secret_hash = Some(std::mem::replace(&mut record.secret_hash, secret_hash));
        record.previous_valid_until = Some(now + grace);
        let updated = self.store.update_api_token(&record).await;
        self.authenticator.forget_token(record.id);
        updated?;
        let envs = EnvIndex::load(self.store.as_ref(), org.id).await?;
        Ok(CreatedApiToken {
            token: token_info(&record, &envs, now),
            secret,
        })
    }

    pub(crate) async fn revoke_api_token_in(
        &self,
        call: &mut Call<'_>,
        org: &Organization,
        id: Uuid,
    ) -> Result<ApiTokenInfo> {
        let mut record = self.find_token(call, org, id).await?;
        let now = crate::stamp::now(self.clock.as_ref());
        if record.revoked_at.is_none() {
            record.revoked_at = Some(now);
            let updated = self.store.update_api_token(&record).await;
            self.authenticator.forget_token(record.id);
            updated?;
        }
        let envs = EnvIndex::load(self.store.as_ref(), org.id).await?;
        Ok(token_info(&record, &envs, now))
    }

    /// A token the caller may manage; others are `NotFound`, like missing ones (and
    /// recorded as denied).
    async fn find_token(
        &self,
        call: &mut Call<'_>,
        org: &Organization,
        id: Uuid,
    ) -> Result<ApiTokenRecord> {
        match self.store.get_api_token(org.id, id).await? {
            Some(t) if may_manage(&call.actor.principal, &t) => Ok(t),
            Some(_) => {
                call.denied = true;
                Err(Error::not_found("api token", id.to_string()))
            }
            None => Err(Error::not_found("api token", id.to_string())),
        }
    }

    /// The person answerable for a token the principal creates.
    async fn creator_of_new_tokens(
        &self,
        principal: &Principal,
        org: &Organization,
    ) -> Result<Option<Uuid>> {
        Ok(match principal.kind {
            PrincipalKind::User => Some(principal.id),
            PrincipalKind::ApiToken => self
                .store
                .get_api_token(org.id, principal.id)
                .await?
                .and_then(|t| t.created_by),
            PrincipalKind::System => None,
        })
    }
}

/// Admins manage every token; users their own. (Other API tokens never get this far.)
fn may_manage(principal: &Principal, token: &ApiTokenRecord) -> bool {
    is_org_admin(principal)
        || (principal.kind == PrincipalKind::User && token.created_by == Some(principal.id))
}

fn field(path: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        path: path.to_string(),
        message: message.into(),
    }
}

pub(crate) fn state(token: &ApiTokenRecord, now: Timestamp) -> TokenState {
    if token.revoked_at.is_some() {
        TokenState::Revoked
    } else if token.expires_at.is_some_and(|at| at <= now) {
        TokenState::Expired
    } else {
        TokenState::Active
    }
}

/// A token as shown to people: never its secret or hashes.
pub(crate) fn token_info(token: &ApiTokenRecord, envs: &EnvIndex, now: Timestamp) -> ApiTokenInfo {
    ApiTokenInfo {
        id: token.id,
        org_id: token.org_id,
        name: token.name.clone(),
        description: token.description.clone(),
        kind: token.kind,
        grants: envs.by_slug(&token.grants),
        created_by: token.created_by,
        created_at: token.created_at,
        expires_at: token.expires_at,
        never_expires: token.expires_at.is_none(),
        last_used_at: token.last_used_at,
        last_used_ip: token.last_used_ip.clone(),
        revoked_at: token.revoked_at,
        // Only while the pre-rotation secret still works.
        previous_valid_until: token.previous_valid_until.filter(|until| *until > now),
        state: state(token, now),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn states_and_flags() {
        let now = datetime!(2025-01-05 0:00 UTC);
        let mut t = ApiTokenRecord {
            id: Uuid::now_v7(),
            org_id: Uuid::nil(),
            name: "ci".into(),
            description: String::new(),
            kind: ApiTokenKind::Member,
            grants: BTreeMap::new(),
            secret_hash: "x".into(),
            created_by: None,
            created_at: now,
            expires_at: None,
            last_used_at: None,
            last_used_ip: None,
            revoked_at: None,
            previous_secret_hash: Some("y".into()),
            previous_valid_until: Some(datetime!(2025-01-04 0:00 UTC)),
        };
        let envs = EnvIndex::empty();
        let info = token_info(&t, &envs, now);
        assert_eq!(info.state, TokenState::Active);
        assert!(info.never_expires);
        assert_eq!(info.previous_valid_until, None);
        t.expires_at = Some(now);
        t.previous_valid_until = Some(datetime!(2025-01-06 0:00 UTC));
        let info = token_info(&t, &envs, now);
        assert_eq!(info.state, TokenState::Expired);
        assert!(!info.never_expires);
        assert_eq!(
            info.previous_valid_until,
            Some(datetime!(2025-01-06 0:00 UTC))
        );
        t.revoked_at = Some(now);
        assert_eq!(state(&t, now), TokenState::Revoked);
    }
}
