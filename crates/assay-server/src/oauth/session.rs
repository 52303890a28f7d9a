//! What the pages share: the browser login session cookie, the CSRF token of a rendered
//! form and the check of a submitted one, password login, and the logout page.

use super::cookies::Cookie;
use super::csrf::{self, CsrfFailure};
use super::form::{Form, FormError, read_form};
use super::pages::{self, ButtonForm, MessagePage};
use super::responses::{Page, error_page, message_page, see_other};
use super::{LOGOUT_PATH, OAuthState};
use assay_control::oauth::{BrowserSession, LoginError, RequestContext};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The OS could not give randomness for a CSRF token: no form is rendered unprotected.
pub(crate) struct NoRandomness;

impl IntoResponse for NoRandomness {
    fn into_response(self) -> Response {
        error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The server could not prepare a secure form. Try again.",
        )
    }
}

/// The CSRF token for a form about to be rendered: the browser's current one if it has
/// a well-formed one (so two open tabs both work), else a new one and its cookie.
pub(crate) fn csrf_token(
    st: &OAuthState,
    headers: &HeaderMap,
) -> Result<(String, Option<HeaderValue>), NoRandomness> {
    if let Some(token) = st.cookies.read(headers, Cookie::Csrf)
        && csrf::is_well_formed(&token)
    {
        return Ok((token, None));
    }
    let token = csrf::new_token().ok_or(NoRandomness)?;
    let cookie = st.cookies.set(Cookie::Csrf, &token, None);
    Ok((token, cookie))
}

/// Reads a submitted form and checks its CSRF token and origin. Refusals are pages: 403
/// for CSRF, 400/413 for a body that is not a small form.
pub(crate) async fn checked_form(
    st: &OAuthState,
    req: Request,
) -> Result<(axum::http::request::Parts, Form), Response> {
    let (parts, body) = req.into_parts();
    let form = match read_form(&parts.headers, body).await {
        Ok(form) => form,
        Err(e) => {
            let status = match e {
                FormError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                FormError::ContentType | FormError::Unreadable => StatusCode::BAD_REQUEST,
            };
            return Err(error_page(status, "This form cannot be used", e.describe()));
        }
    };
    let cookie = st.cookies.read(&parts.headers, Cookie::Csrf);
    match csrf::check(
        &parts.headers,
        &st.origin,
        cookie.as_deref(),
        form.get(csrf::FIELD),
    ) {
        Ok(()) => Ok((parts, form)),
        Err(failure) => Err(csrf_refused(failure)),
    }
}

/// 403: the form did not come from a page of ours, or its page is too old.
fn csrf_refused(failure: CsrfFailure) -> Response {
    let message = match failure {
        CsrfFailure::CrossOrigin => {
            "This form was sent from another website, so it was not accepted."
        }
        CsrfFailure::Missing | CsrfFailure::Mismatch => {
            "This form has expired or was not sent from this site. Go back, reload the page and try again."
        }
    };
    error_page(StatusCode::FORBIDDEN, "Request refused", message)
}

/// The browser's login session, if its cookie names a live one.
pub(crate) async fn current(st: &OAuthState, headers: &HeaderMap) -> Option<BrowserSession> {
    let secret = st.cookies.read(headers, Cookie::Session)?;
    st.server.session(&secret).await
}

/// A failed login, ready to be shown above the login form again.
pub(crate) struct LoginFailure {
    pub status: StatusCode,
    pub message: String,
    pub retry_after_secs: Option<u64>,
    /// What was typed, so the form keeps it (never the password).
    pub email: String,
}

/// Signs in with the form's email and password: the session cookie on success.
pub(crate) async fn password_login(
    st: &OAuthState,
    form: &Form,
    ctx: &RequestContext,
) -> Result<HeaderValue, LoginFailure> {
    let email = form.get("email").unwrap_or_default();
    let password = form.get("password").unwrap_or_default();
    match st.server.login_password(email, password, ctx).await {
        Ok(session) => session_cookie(st, &session).ok_or(LoginFailure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "The server could not start your session. Try again.".into(),
            retry_after_secs: None,
            email: email.to_owned(),
        }),
        // One message for every failure: it must not tell which part was wrong.
        Err(LoginError::InvalidCredentials) => Err(LoginFailure {
            status: StatusCode::BAD_REQUEST,
            message: LoginError::GENERIC_MESSAGE.into(),
            retry_after_secs: None,
            email: email.to_owned(),
        }),
        Err(LoginError::RateLimited { retry_after_secs }) => Err(LoginFailure {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!(
                "Too many failed sign-in attempts. Try again in {}.",
                minutes(retry_after_secs)
            ),
            retry_after_secs: Some(retry_after_secs),
            email: email.to_owned(),
        }),
    }
}

/// The session cookie of a new login session; it ends with the session (the server
/// checks the expiry anyway). `None` if the secret is not cookie-safe (it always is).
pub(crate) fn session_cookie(st: &OAuthState, session: &BrowserSession) -> Option<HeaderValue> {
    let left = session.expires_at - time::OffsetDateTime::now_utc();
    let max_age = u64::try_from(left.whole_seconds()).unwrap_or(0);
    st.cookies
        .set(Cookie::Session, session.secret(), Some(max_age))
}

/// The login page `html` as answered: with the last attempt's status and `Retry-After`
/// when it shows a failure.
pub(crate) fn login_answer(
    html: String,
    cookie: Option<HeaderValue>,
    failure: Option<&LoginFailure>,
) -> Page {
    let mut page =
        Page::new(failure.map_or(StatusCode::OK, |f| f.status), html).with_cookie(cookie);
    page.retry_after_secs = failure.and_then(|f| f.retry_after_secs);
    page
}

fn minutes(secs: u64) -> String {
    match secs.div_ceil(60) {
        0 | 1 => "a minute".to_owned(),
        n => format!("{n} minutes"),
    }
}

/// Ends the browser's session (if any) and returns the cookie that deletes it.
pub(crate) async fn end(st: &OAuthState, headers: &HeaderMap) -> HeaderValue {
    if let Some(secret) = st.cookies.read(headers, Cookie::Session) {
        st.server.end_session(&secret).await;
    }
    st.cookies.clear(Cookie::Session)
}

/// `GET /oauth/logout`: who is signed in, with a button to sign out.
pub(crate) async fn show(State(st): State<OAuthState>, headers: HeaderMap) -> Response {
    let Some(session) = current(&st, &headers).await else {
        return message_page(
            StatusCode::OK,
            "Signed out",
            "You are not signed in to Assay in this browser.",
        );
    };
    let (token, cookie) = match csrf_token(&st, &headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let action = st.path(LOGOUT_PATH);
    let message = format!("You are signed in as {}.", session.email);
    Page::new(
        StatusCode::OK,
        pages::message(&MessagePage {
            title: "Sign out",
            message: &message,
            detail: None,
            form: Some(ButtonForm {
                action: &action,
                hidden: &[(csrf::FIELD, &token)],
                button: "Sign out",
            }),
        }),
    )
    .with_cookie(cookie)
    .into_response()
}

/// `POST /oauth/logout`: ends the session, then shows the logout page (303).
pub(crate) async fn logout(State(st): State<OAuthState>, req: Request) -> Response {
    let (parts, _form) = match checked_form(&st, req).await {
        Ok(f) => f,
        Err(res) => return res,
    };
    let clear = end(&st, &parts.headers).await;
    see_other(&st.path(LOGOUT_PATH), vec![clear])
}
