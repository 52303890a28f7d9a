//! RFC 8628 device authorization grant, for headless CLI login: the CLI gets a device
//! code and a user code, the user types the user code on the verification page (signed
//! in) and approves, the CLI polls the token endpoint.
//!
//! Polls faster than the interval get `slow_down` and a longer interval, stored so every
//! replica enforces it. An approved authorization is taken (deleted) by the one poll
//! that receives its tokens; later polls find nothing (`invalid_grant`).

use super::events::{self, OAuthEvent};
use super::issue::{Family, scope_ceiling};
use super::params::given;
use super::sessions::BrowserSession;
use super::{
    AuthorizationServer, ConsentDecision, DEVICE_VERIFICATION_PATH, DeviceAuthorizationResponse,
    DeviceRequestView, OAuthError, RequestContext, TokenParams, TokenResponse, after, ip_key,
};
use assay_auth::device::{PollOutcome, Polling, UserCode, generate_device_code};
use assay_auth::scope::{McpScope, ScopeRequest, granted_mcp_scope};
use assay_auth::secrets::{SecretHash, SecretKind};
use assay_core::Error;
use assay_core::oauth::{DeviceAuthorization, DeviceStatus};
use std::time::Duration;

/// Draws of a fresh user code when the one drawn is held by a pending authorization.
const USER_CODE_ATTEMPTS: usize = 5;

impl AuthorizationServer {
    pub async fn device_authorization(
        &self,
        client_id: Option<&str>,
        scope: Option<&str>,
        resource: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<DeviceAuthorizationResponse, OAuthError> {
        let issuer = self.public()?.issuer();
        self.token_requests
            .acquire(&ip_key(ctx), self.now())
            .map_err(OAuthError::rate_limited)?;
        let client_id = client_id
            .filter(|c| !c.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("client_id is required"))?;
        let client = self.resolve_client(client_id, ctx).await?;
        if !client.may_use_device_grant() {
            return Err(OAuthError::unauthorized_client(
                "this client may not use the device authorization grant",
            ));
        }
        let scope = ScopeRequest::parse(scope.unwrap_or_default())
            .map_err(|e| OAuthError::invalid_scope(e.to_string()))?
            .mcp
            .unwrap_or(McpScope::Read);
        let resource = self
            .resolve_resource(resource.filter(|r| !r.is_empty()))
            .await?;
        let now = self.now();
        let interval = self.config.device_poll_interval.as_secs().max(1);
        let device_code = generate_device_code().map_err(|e| {
            tracing::error!(error = %e, "could not generate a device code");
            OAuthError::server_error()
        })?;
        let mut attempt = 0;
        let user_code = loop {
            attempt += 1;
            let user_code = UserCode::generate().map_err(|e| {
                tracing::error!(error = %e, "could not generate a user code");
                OAuthError::server_error()
            })?;
            let record = DeviceAuthorization {
                device_code_hash: device_code.hash().to_hex(),
                user_code: user_code.as_str().to_owned(),
                client_id: client.id.clone(),
                scope: scope.to_scope_string(),
                resource: resource.url.clone(),
                created_at: now,
                expires_at: after(now, self.config.device_code_ttl),
                interval_secs: u32::try_from(interval).unwrap_or(u32::MAX),
                last_poll_at: None,
                status: DeviceStatus::Pending,
            };
            match self.store.insert_device_authorization(&record).await {
                Ok(()) => break user_code,
                Err(Error::Conflict(_)) if attempt < USER_CODE_ATTEMPTS => continue,
                Err(e) => return Err(e.into()),
            }
        };
        let verification_uri = format!("{issuer}{DEVICE_VERIFICATION_PATH}");
        Ok(DeviceAuthorizationResponse {
            device_code: device_code.expose().to_owned(),
            user_code: user_code.to_string(),
            verification_uri_complete: format!("{verification_uri}?user_code={user_code}"),
            verification_uri,
            expires_in: self.config.device_code_ttl.as_secs(),
            interval,
        })
    }

    /// What a typed user code asks for; `None` when it is malformed, unknown, expired or
    /// already decided.
    pub async fn device_request(&self, user_code: &str) -> Option<DeviceRequestView> {
        let code = UserCode::parse(user_code).ok()?;
        let pending = self
            .store
            .find_pending_device_authorization(code.as_str(), self.now())
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "could not look up a user code"))
            .ok()??;
        let client_name = match self.store.get_oauth_client(&pending.client_id).await {
            Ok(Some(client)) => client.client_name,
            _ => pending.client_id.clone(),
        };
        Some(DeviceRequestView {
            user_code: code.to_string(),
            client_id: pending.client_id,
            client_name,
            scope: granted_mcp_scope(&pending.scope)
                .ok()
                .flatten()
                .unwrap_or(McpScope::Read),
            resource: pending.resource,
            expires_at: pending.expires_at,
        })
    }

    pub async fn device_decide(
        &self,
        s: &BrowserSession,
        user_code: &str,
        d: ConsentDecision,
        ctx: &RequestContext,
    ) -> Result<(), OAuthError> {
        let code = UserCode::parse(user_code)
            .map_err(|e| OAuthError::invalid_request(format!("user code: {e}")))?;
        let pending = self
            .store
            .find_pending_device_authorization(code.as_str(), self.now())
            .await?
            .ok_or_else(|| {
                OAuthError::invalid_grant("the code is unknown, expired or already used")
            })?;
        let user = self.active_user(s.user_id).await?;
        let resource = self.resolve_resource(Some(&pending.resource)).await?;
        let org = self.grant_org(&user, &resource.target).await?;
        let (chain, actor) = self.consenting_user(&user, org, &pending.client_id).await;
        let requested = granted_mcp_scope(&pending.scope)
            .ok()
            .flatten()
            .unwrap_or(McpScope::Read);
        match (d, org) {
            (ConsentDecision::Approve { scope }, Some(org)) => {
                let scope = scope.min(requested);
                let grant = self
                    .store_grant(user.id, org, &pending.client_id, scope, &resource.url)
                    .await?;
                let status = DeviceStatus::Approved {
                    user_id: user.id,
                    org_id: org,
                    grant_id: grant.id,
                };
                if !self
                    .store
                    .set_device_status(&pending.device_code_hash, status)
                    .await?
                {
                    return Err(OAuthError::invalid_grant("the code was already used"));
                }
                let event = OAuthEvent::new(events::DEVICE_APPROVED, org, actor)
                    .resource(format!("grant:{}", grant.id))
                    .resource(format!("client:{}", pending.client_id))
                    .resource(format!("resource:{}", resource.url))
                    .reason(format!("scope {}", scope.to_scope_string()));
                self.record(ctx, event).await
            }
            (decision, _) => {
                let denied_by_user = decision == ConsentDecision::Deny;
                if denied_by_user {
                    self.store
                        .set_device_status(&pending.device_code_hash, DeviceStatus::Denied)
                        .await?;
                }
                let reason = if denied_by_user {
                    "the user denied the request"
                } else {
                    "the user cannot reach the requested resource"
                };
                let event = OAuthEvent::new(events::DEVICE_DENIED, chain, actor)
                    .resource(format!("client:{}", pending.client_id))
                    .resource(format!("resource:{}", resource.url))
                    .denied(reason);
                self.record(ctx, event).await?;
                if denied_by_user {
                    Ok(())
                } else {
                    Err(OAuthError::access_denied(
                        "your account cannot reach the requested resource",
                    ))
                }
            }
        }
    }

    /// The device-code grant at the token endpoint.
    pub(crate) async fn device_grant(
        &self,
        f: &TokenParams,
        client_id: &str,
        ctx: &RequestContext,
    ) -> Result<TokenResponse, OAuthError> {
        let device_code = given(&f.device_code)
            .ok_or_else(|| OAuthError::invalid_request("device_code is required"))?;
        if !SecretKind::DeviceCode.is_well_formed(device_code) {
            return Err(unknown_device_code());
        }
        let hash = SecretHash::of(device_code).to_hex();
        let now = self.now();
        let before = self
            .store
            .record_device_poll(&hash, now)
            .await?
            .ok_or_else(unknown_device_code)?;
        if before.client_id != client_id {
            return Err(OAuthError::invalid_grant(
                "the device code was issued to another client",
            ));
        }
        if before.expires_at <= now {
            return Err(OAuthError::expired_token(
                "the device code has expired; start again",
            ));
        }
        let (user_id, grant_id) = match before.status {
            DeviceStatus::Denied => {
                return Err(OAuthError::access_denied("the user denied the request"));
            }
            DeviceStatus::Pending => {
                let polling = Polling {
                    interval: Duration::from_secs(u64::from(before.interval_secs)),
                    last_poll: before.last_poll_at,
                };
                return match polling.poll(now) {
                    (PollOutcome::AuthorizationPending, _) => {
                        Err(OAuthError::authorization_pending())
                    }
                    (PollOutcome::SlowDown, next) => {
                        let secs = next.interval.as_secs();
                        self.store
                            .set_device_interval(&hash, u32::try_from(secs).unwrap_or(u32::MAX))
                            .await?;
                        Err(OAuthError::slow_down(secs))
                    }
                };
            }
            DeviceStatus::Approved {
                user_id, grant_id, ..
            } => (user_id, grant_id),
        };
        if !self.store.take_approved_device_authorization(&hash).await? {
            return Err(unknown_device_code());
        }
        let grant = self.live_grant(grant_id).await?;
        let user = self.token_holder(user_id).await?;
        let scope = scope_ceiling(&before.scope, &grant.scope);
        let issued = self.issue_tokens(&grant, scope, Family::New).await?;
        let event = issued
            .event(events::TOKEN_ISSUED, &grant, &user, client_id)
            .reason(format!("device_code; scope {}", issued.response.scope));
        self.record(ctx, event).await?;
        Ok(issued.response)
    }
}

fn unknown_device_code() -> OAuthError {
    OAuthError::invalid_grant("the device code is invalid or already used")
}
