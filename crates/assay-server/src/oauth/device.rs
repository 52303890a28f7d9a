//! The device authorization grant (RFC 8628) over HTTP: `POST /oauth/device` for the
//! device, and the verification page `/oauth/device/verify` where the user signs in,
//! types (or follows a link with) the user code and approves or denies.
//!
//! The page flow: no session → login form; session, no code → code entry; session and a
//! code the control plane knows → consent for that device; each POST answers 303 back to
//! `GET` (with `?user_code=` or `?result=`), except a failed login or an unknown code,
//! which show their form again with the error.

use super::authorize::consent_decision;
use super::form::{Form, read_form};
use super::pages::{self, ClientFacts, ConsentPage, DeviceEntryPage, LoginPage};
use super::responses::{JsonError, Page, error_page, json, message_page, see_other};
use super::session::{self, LoginFailure, checked_form, csrf_token, login_answer, password_login};
use super::{OAuthState, csrf, request_context};
use assay_control::oauth::DEVICE_VERIFICATION_PATH;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// `POST /oauth/device` (RFC 8628 §3.1–3.2).
pub(crate) async fn authorize(State(st): State<OAuthState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let form = match read_form(&parts.headers, body).await {
        Ok(form) => form,
        Err(e) => return JsonError::invalid_request(e.describe()).into_response(),
    };
    if let Some(name) = form.repeated(&["client_id", "scope", "resource"]) {
        return JsonError::invalid_request(format!("the parameter {name} appears more than once"))
            .into_response();
    }
    match st
        .server
        .device_authorization(
            form.get("client_id"),
            form.get("scope"),
            form.get("resource"),
            &request_context(&parts),
        )
        .await
    {
        Ok(answer) => json(StatusCode::OK, &answer),
        Err(e) => JsonError::from(e).into_response(),
    }
}

/// `GET /oauth/device/verify[?user_code=…][?result=approved|denied]`.
pub(crate) async fn show(State(st): State<OAuthState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let query = Form::query(&parts.uri);
    let code = query.get("user_code").unwrap_or_default();
    let Some(user) = session::current(&st, &parts.headers).await else {
        return login_page(&st, &parts.headers, code, None);
    };
    match query.get("result") {
        Some("approved") => {
            return done(
                "Device connected",
                "You approved the device. Return to it: it is signed in now.",
            );
        }
        Some("denied") => {
            return done(
                "Request denied",
                "You denied the device's request. It has not been signed in.",
            );
        }
        _ => {}
    }
    if code.is_empty() {
        return entry_page(&st, &parts.headers, &user.email, "", None, StatusCode::OK);
    }
    device_consent(&st, &parts.headers, &user, code).await
}

/// `POST /oauth/device/verify`: `action` is `login`, `enter`, `approve`, `deny` or
/// `switch_user`.
pub(crate) async fn submit(State(st): State<OAuthState>, req: Request) -> Response {
    let (parts, form) = match checked_form(&st, req).await {
        Ok(f) => f,
        Err(res) => return res,
    };
    let ctx = request_context(&parts);
    let code = form.get("user_code").unwrap_or_default();
    let back_here = verify_url(&st, &[("user_code", code)]);
    match form.get("action") {
        Some("login") => match password_login(&st, &form, &ctx).await {
            Ok(cookie) => see_other(&back_here, vec![cookie]),
            Err(failure) => login_page(&st, &parts.headers, code, Some(&failure)),
        },
        Some("enter") => see_other(&back_here, Vec::new()),
        Some(action @ ("approve" | "deny")) => {
            let Some(user) = session::current(&st, &parts.headers).await else {
                return see_other(&back_here, Vec::new());
            };
            let decision = match consent_decision(action, &form) {
                Ok(d) => d,
                Err(e) => return e.into_response(),
            };
            match st.server.device_decide(&user, code, decision, &ctx).await {
                Ok(()) => {
                    let result = if action == "deny" {
                        "denied"
                    } else {
                        "approved"
                    };
                    see_other(&verify_url(&st, &[("result", result)]), Vec::new())
                }
                Err(e) => {
                    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
                    entry_page(
                        &st,
                        &parts.headers,
                        &user.email,
                        code,
                        Some(&e.description),
                        status,
                    )
                }
            }
        }
        Some("switch_user") => {
            let clear = session::end(&st, &parts.headers).await;
            see_other(&back_here, vec![clear])
        }
        _ => error_page(
            StatusCode::BAD_REQUEST,
            "This form cannot be used",
            "The form did not say what to do.",
        ),
    }
}

/// The verification page's URL with `query` (empty values left out).
fn verify_url(st: &OAuthState, query: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in query.iter().filter(|(_, v)| !v.is_empty()) {
        q.append_pair(name, value);
    }
    let q = q.finish();
    let path = st.path(DEVICE_VERIFICATION_PATH);
    if q.is_empty() {
        path
    } else {
        format!("{path}?{q}")
    }
}

fn done(title: &str, message: &str) -> Response {
    message_page(StatusCode::OK, title, message)
}

/// The login form (carrying the user code, if any); `failure` shows the last attempt's
/// error and status.
fn login_page(
    st: &OAuthState,
    headers: &HeaderMap,
    code: &str,
    failure: Option<&LoginFailure>,
) -> Response {
    let (token, cookie) = match csrf_token(st, headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let action = st.path(DEVICE_VERIFICATION_PATH);
    let mut hidden = vec![(csrf::FIELD, token.as_str())];
    if !code.is_empty() {
        hidden.push(("user_code", code));
    }
    let html = pages::login(&LoginPage {
        action: &action,
        hidden: &hidden,
        // Upstream sign-in starts from an authorization request; a device has none.
        links: &[],
        client_name: None,
        email: failure.map_or("", |f| f.email.as_str()),
        error: failure.map(|f| f.message.as_str()),
    });
    login_answer(html, cookie, failure).into_response()
}

fn entry_page(
    st: &OAuthState,
    headers: &HeaderMap,
    email: &str,
    code: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let (token, cookie) = match csrf_token(st, headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let action = st.path(DEVICE_VERIFICATION_PATH);
    Page::new(
        status,
        pages::device_entry(&DeviceEntryPage {
            action: &action,
            hidden: &[(csrf::FIELD, &token)],
            user_email: email,
            code,
            error,
        }),
    )
    .with_cookie(cookie)
    .into_response()
}

async fn device_consent(
    st: &OAuthState,
    headers: &HeaderMap,
    user: &assay_control::oauth::BrowserSession,
    code: &str,
) -> Response {
    let Some(request) = st.server.device_request(code).await else {
        return entry_page(
            st,
            headers,
            &user.email,
            code,
            Some(
                "That code is unknown or has expired. Check the code on your device, or start again there.",
            ),
            StatusCode::BAD_REQUEST,
        );
    };
    let (token, cookie) = match csrf_token(st, headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let action = st.path(DEVICE_VERIFICATION_PATH);
    let hidden = [
        (csrf::FIELD, token.as_str()),
        ("user_code", request.user_code.as_str()),
    ];
    Page::new(
        StatusCode::OK,
        pages::consent(&ConsentPage {
            action: &action,
            hidden: &hidden,
            client: ClientFacts {
                name: &request.client_name,
                client_id: &request.client_id,
                client_id_host: None,
                // The device polls; nothing is sent anywhere.
                redirect_host: "",
                redirect_uri: None,
                localhost_only: false,
            },
            requested: request.scope,
            resource: &request.resource,
            user_email: &user.email,
            user_name: &user.display_name,
            user_code: Some(&request.user_code),
            error: None,
        }),
    )
    .with_cookie(cookie)
    .into_response()
}
