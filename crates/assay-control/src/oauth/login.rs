//! Local password login for the authorization server's pages.
//!
//! - One generic failure for an unknown email, a wrong password, an account without a
//!   password and a disabled account; an unknown email still costs one Argon2
//!   verification, so timing does not tell which it was.
//! - Failures are counted per client IP and per email address; at the limit the answer
//!   is `RateLimited` before any password is checked. A success clears the email's
//!   count, never the IP's (one address trying many accounts stays limited).
//! - Every attempt is audited (`oauth.login.succeeded` / `oauth.login.failed`); the
//!   password never appears, and neither does the email of an unknown account.

use super::events::{self, OAuthEvent};
use super::sessions::BrowserSession;
use super::{AuthorizationServer, LoginError, RequestContext, ip_key};
use crate::passwords::{MAX_PASSWORD_CHARS, hash_password};
use argon2::Argon2;
use argon2::password_hash::PasswordVerifier;
use argon2::password_hash::phc::PasswordHash;
use assay_core::actor::AuthMethod;
use assay_core::identity::User;
use std::sync::OnceLock;
use uuid::Uuid;

pub const PASSWORD_METHOD: &str = "password";

/// Why a login failed, for the audit trail only (the caller always sees the same error).
const UNKNOWN_EMAIL: &str = "no account has this email";
const WRONG_PASSWORD: &str = "wrong password";
const NO_PASSWORD: &str = "the account has no local password";
const DISABLED: &str = "the account is disabled";
const RATE_LIMITED: &str = "too many failed logins";

impl AuthorizationServer {
    pub async fn login_password(
        &self,
        email: &str,
        password: &str,
        ctx: &RequestContext,
    ) -> Result<BrowserSession, LoginError> {
        let email = email.trim();
        let email_key = email.to_lowercase();
        let ip = ip_key(ctx);
        let now = self.now();
        let user = self.store.find_user_by_email(email).await.ok().flatten();
        let blocked = self
            .login_ip
            .blocked(&ip, now)
            .max(self.login_email.blocked(&email_key, now));
        if let Some(retry_after_secs) = blocked {
            self.login_failed(user.as_ref(), RATE_LIMITED, ctx).await;
            return Err(LoginError::RateLimited { retry_after_secs });
        }
        let verdict = match &user {
            None => {
                burn_a_verification(password).await;
                Err(UNKNOWN_EMAIL)
            }
            Some(user) => match &user.password_hash {
                None => {
                    burn_a_verification(password).await;
                    Err(NO_PASSWORD)
                }
                Some(phc) if verify(phc.clone(), password).await => {
                    if user.disabled {
                        Err(DISABLED)
                    } else {
                        Ok(())
                    }
                }
                Some(_) => Err(WRONG_PASSWORD),
            },
        };
        match (verdict, user) {
            (Ok(()), Some(user)) => {
                let session = match self.start_session(&user, PASSWORD_METHOD).await {
                    Ok(session) => session,
                    Err(e) => {
                        tracing::error!(error = %e, "could not start a browser session");
                        return Err(LoginError::InvalidCredentials);
                    }
                };
                self.login_email.reset(&email_key);
                let org = self.chain_of(user.id).await;
                let event = OAuthEvent::new(
                    events::LOGIN_SUCCEEDED,
                    org,
                    events::user_actor(user.id, &user.display_name, org, AuthMethod::Session, None),
                )
                .resource(format!("user:{}", user.id))
                .reason(format!("method {PASSWORD_METHOD}"));
                if self.record(ctx, event).await.is_err() {
                    // Not on the record: no login (fail closed).
                    self.end_session(session.secret()).await;
                    return Err(LoginError::InvalidCredentials);
                }
                Ok(session)
            }
            (verdict, user) => {
                let reason = verdict.err().unwrap_or(UNKNOWN_EMAIL);
                self.login_ip.hit(&ip, now);
                self.login_email.hit(&email_key, now);
                self.login_failed(user.as_ref(), reason, ctx).await;
                Err(LoginError::InvalidCredentials)
            }
        }
    }

    async fn login_failed(&self, user: Option<&User>, reason: &str, ctx: &RequestContext) {
        let event = match user {
            Some(user) => {
                let org = self.chain_of(user.id).await;
                OAuthEvent::new(
                    events::LOGIN_FAILED,
                    org,
                    events::user_actor(user.id, &user.display_name, org, AuthMethod::Session, None),
                )
                .resource(format!("user:{}", user.id))
            }
            None => OAuthEvent::new(
                events::LOGIN_FAILED,
                Uuid::nil(),
                events::client_actor(None, Uuid::nil()),
            ),
        };
        self.record_refusal(ctx, event.denied(reason)).await;
    }

    /// The audit chain for events about a user: their first organization, else the
    /// unscoped chain.
    pub(crate) async fn chain_of(&self, user_id: Uuid) -> Uuid {
        self.first_org_of(user_id)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(Uuid::nil)
    }
}

/// Argon2 off the async threads; bounded input (an overlong password never matches).
async fn verify(phc: String, password: &str) -> bool {
    if password.is_empty() || password.chars().count() > MAX_PASSWORD_CHARS {
        return false;
    }
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// The same work as a real verification, for an account that cannot match.
async fn burn_a_verification(password: &str) {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    let dummy = DUMMY
        .get_or_init(|| hash_password("not the password of any account").ok())
        .clone();
    if let Some(phc) = dummy {
        let _ = verify(phc, password).await;
    }
}
