//! The device authorization grant (RFC 8628) for machines without a browser: the user
//! types a short code on another device while this one polls the token endpoint.

use super::{AuthServerMetadata, ENDPOINT_TIMEOUT, EndpointError, obtain_tokens, post_form};
use crate::TokenSet;
use assay_core::{Error, Result};
use serde::Deserialize;
use std::future::Future;
use std::time::Duration;

/// RFC 8628 §7.2.
const DEVICE_CODE_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628 §3.2: the interval when the server names none.
const DEFAULT_INTERVAL: u64 = 5;
/// RFC 8628 §3.5: `slow_down` adds this much to the interval.
const SLOW_DOWN_STEP: u64 = 5;

/// What the user needs to approve a device login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCode {
    /// The code to type, e.g. `BCDF-GHJK`.
    pub user_code: String,
    /// Where to type it.
    pub verification_uri: String,
    /// The same page with the code filled in (for a link or QR code).
    pub verification_uri_complete: Option<String>,
    /// Seconds until the code expires.
    pub expires_in: u64,
}

#[derive(Deserialize)]
struct DeviceAuthorization {
    device_code: String,
    user_code: String,
    verification_uri: String,
    #[serde(default)]
    verification_uri_complete: Option<String>,
    expires_in: u64,
    #[serde(default)]
    interval: Option<u64>,
}

/// Signs in with the device flow.
///
/// Asks the device authorization endpoint for a code (`scope`, `resource`), calls `show`
/// with what the user must do, then polls the token endpoint at the server's interval
/// (longer after each `slow_down`) until the user approves, denies, or the code expires.
///
/// Errors: `Unauthenticated` when the user denies or the code expires; `Refused` when the
/// server has no device endpoint; `Unavailable` when the server cannot be reached.
pub async fn device_login(
    http: &reqwest::Client,
    meta: &AuthServerMetadata,
    client_id: &str,
    scope: &str,
    resource: &str,
    show: impl FnOnce(&DeviceCode),
) -> Result<TokenSet> {
    device_login_with(
        http,
        meta,
        client_id,
        scope,
        resource,
        show,
        tokio::time::sleep,
    )
    .await
}

/// [`device_login`] with the wait between polls supplied, so tests can see the
/// intervals without waiting them out.
pub(crate) async fn device_login_with<F: Future<Output = ()>>(
    http: &reqwest::Client,
    meta: &AuthServerMetadata,
    client_id: &str,
    scope: &str,
    resource: &str,
    show: impl FnOnce(&DeviceCode),
    mut wait: impl FnMut(Duration) -> F,
) -> Result<TokenSet> {
    let Some(endpoint) = &meta.device_authorization_endpoint else {
        return Err(Error::Refused(format!(
            "{} does not offer device login; use the browser login",
            meta.issuer
        )));
    };
    let form = [
        ("client_id", client_id),
        ("scope", scope),
        ("resource", resource),
    ];
    let (_, body) = post_form(http, endpoint, &form, ENDPOINT_TIMEOUT)
        .await
        .map_err(|e| e.into_error("starting the device login"))?;
    let auth: DeviceAuthorization = serde_json::from_slice(&body)
        .map_err(|e| Error::Internal(format!("unexpected answer from {endpoint}: {e}")))?;
    show(&DeviceCode {
        user_code: auth.user_code,
        verification_uri: auth.verification_uri,
        verification_uri_complete: auth.verification_uri_complete,
        expires_in: auth.expires_in,
    });

    let mut interval = auth.interval.unwrap_or(DEFAULT_INTERVAL).max(1);
    // Time is counted in the intervals waited: at least as long as really passed before
    // each poll, so the loop never outlives the code by more than one interval.
    let mut waited: u64 = 0;
    let form = [
        ("grant_type", DEVICE_CODE_GRANT_TYPE),
        ("device_code", auth.device_code.as_str()),
        ("client_id", client_id),
    ];
    loop {
        if waited >= auth.expires_in {
            return Err(expired());
        }
        wait(Duration::from_secs(interval)).await;
        waited = waited.saturating_add(interval);
        match obtain_tokens(http, meta, &form).await {
            Ok(tokens) => return Ok(tokens),
            Err(EndpointError::OAuth {
                error, description, ..
            }) => match error.as_str() {
                "authorization_pending" => {}
                // A rate-limited poll is a slow_down by another name.
                "slow_down" | "temporarily_unavailable" => {
                    interval = interval.saturating_add(SLOW_DOWN_STEP);
                }
                "expired_token" => return Err(expired()),
                "access_denied" => {
                    return Err(Error::Unauthenticated("the device login was denied".into()));
                }
                _ => {
                    return Err(EndpointError::OAuth {
                        status: 400,
                        error,
                        description,
                    }
                    .into_error("the device login"));
                }
            },
            Err(other) => return Err(other.into_error("the device login")),
        }
    }
}

fn expired() -> Error {
    Error::Unauthenticated(
        "the device code expired before the login was approved; run `assay login --device` again"
            .into(),
    )
}
