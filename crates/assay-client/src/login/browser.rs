//! The browser flow for native apps (RFC 8252): a one-shot HTTP listener on a loopback
//! port the OS picks, the authorization code with PKCE S256, `state` against request
//! forgery and `iss` (RFC 9207) against mix-up.

use super::{AuthServerMetadata, EndpointError, obtain_tokens};
use crate::TokenSet;
use assay_core::{Error, Result};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use url::Url;

/// The redirect path registered for the CLI client (any loopback port matches).
const CALLBACK_PATH: &str = "/callback";
/// A request head larger than this is not the browser coming back to us.
const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// How long one connection may take to send its request line. Browsers open spare
/// connections that never send anything; each is read on its own task so they block
/// nothing.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// RFC 7636 §4.2, S256.
pub(crate) fn code_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Signs in through the user's browser.
///
/// Listens on `127.0.0.1` on a port the OS picks, builds the authorization URL
/// (redirect `http://127.0.0.1:{port}/callback`, PKCE S256, a random `state`, `scope`
/// and `resource`) and calls `open` with it: the caller opens the browser and prints the
/// URL. Then waits up to `timeout` for the browser to come back to `/callback` with this
/// login's `state` (answers with another state are refused and the wait goes on), checks
/// `iss`, exchanges the code and answers the browser with a short page.
///
/// Errors: `Unauthenticated` when the user denies, the answer comes from another issuer
/// or the wait times out; `Unavailable` when the token
/// endpoint cannot be reached.
pub async fn browser_login(
    http: &reqwest::Client,
    meta: &AuthServerMetadata,
    client_id: &str,
    scope: &str,
    resource: &str,
    open: impl FnOnce(&Url),
    timeout: Duration,
) -> Result<TokenSet> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.map_err(|e| {
        Error::Unavailable(format!("cannot listen on 127.0.0.1 for the login: {e}"))
    })?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::Internal(format!("the login listener has no address: {e}")))?
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}{CALLBACK_PATH}");
    // 43 characters: a valid PKCE verifier (RFC 7636 §4.1) and an unguessable state.
    let verifier = crate::random_secret();
    let state = crate::random_secret();
    let mut authorize_url = meta.authorization_endpoint.clone();
    authorize_url
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", scope)
        .append_pair("state", &state)
        .append_pair("code_challenge", &code_challenge(&verifier))
        .append_pair("code_challenge_method", "S256")
        .append_pair("resource", resource);

    let (tx, mut rx) = mpsc::channel(4);
    let acceptor = AbortOnDrop(tokio::spawn(accept_callbacks(listener, tx)));
    open(&authorize_url);

    let deadline = tokio::time::Instant::now() + timeout;
    let (query, mut socket) = loop {
        let (query, mut socket) = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(callback)) => callback,
            Ok(None) => {
                return Err(Error::Unavailable(
                    "the login listener on 127.0.0.1 stopped".into(),
                ));
            }
            Err(_) => {
                return Err(Error::Unauthenticated(format!(
                    "the login was not completed within {} s; run `assay login` again \
                     (or `assay login --device` where no browser can reach this machine)",
                    timeout.as_secs()
                )));
            }
        };
        // An answer without this login's state belongs to another login (a stale tab)
        // or was forged by whatever else can reach the port: it is refused and says
        // nothing about this login, which goes on waiting for its own answer.
        if state_of(&query) == Some(state.as_str()) {
            break (query, socket);
        }
        tracing::debug!("refused a login answer whose state does not match");
        let refusal = page(
            "Sign-in failed",
            "This answer does not belong to the sign-in the terminal is waiting for (state \
             mismatch). Start the sign-in again from the terminal.",
        );
        let _ = socket.write_all(refusal.as_bytes()).await;
        let _ = socket.shutdown().await;
    };
    // Exactly one answer is accepted: the port closes now.
    drop(acceptor);

    let outcome = check_callback(&query, &state, meta).map(str::to_owned);
    let result = match outcome {
        Err(e) => Err(e),
        Ok(code) => {
            let form = [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", redirect_uri.as_str()),
                ("client_id", client_id),
                ("code_verifier", verifier.as_str()),
                ("resource", resource),
            ];
            obtain_tokens(http, meta, &form).await.map_err(|e| match e {
                EndpointError::OAuth {
                    error, description, ..
                } if error == "invalid_grant" => Error::Unauthenticated(format!(
                    "the server did not accept the login ({description}); run `assay login` again"
                )),
                other => other.into_error("completing the login"),
            })
        }
    };
    let page = match &result {
        Ok(_) => page(
            "Signed in",
            "You are signed in to Assay. You can close this tab and return to the terminal.",
        ),
        Err(e) => page(
            "Sign-in failed",
            &format!("{e}. You can close this tab and return to the terminal."),
        ),
    };
    // The browser's page is a courtesy; the login's result stands whatever happens here.
    let _ = socket.write_all(page.as_bytes()).await;
    let _ = socket.shutdown().await;
    result
}

fn state_of(query: &[(String, String)]) -> Option<&str> {
    query
        .iter()
        .find(|(n, _)| n == "state")
        .map(|(_, v)| v.as_str())
}

/// Checks a callback's query; returns the authorization code.
fn check_callback<'a>(
    query: &'a [(String, String)],
    state: &str,
    meta: &AuthServerMetadata,
) -> Result<&'a str> {
    let get = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    // Checked by the caller already; again here so this function stands on its own.
    if get("state") != Some(state) {
        return Err(Error::Unauthenticated(
            "the login answer does not belong to this login (state mismatch)".into(),
        ));
    }
    // RFC 9207 §2.4: the issuer of error answers is checked too.
    match get("iss") {
        Some(iss) if iss != meta.issuer => {
            return Err(Error::Unauthenticated(format!(
                "the login answer came from {iss}, not from {}; run `assay login` again",
                meta.issuer
            )));
        }
        None if meta.authorization_response_iss_parameter_supported => {
            return Err(Error::Unauthenticated(format!(
                "the login answer does not name its issuer although {} promises it; \
                 run `assay login` again",
                meta.issuer
            )));
        }
        _ => {}
    }
    if let Some(error) = get("error") {
        let description = get("error_description").unwrap_or_default();
        return Err(Error::Unauthenticated(match error {
            "access_denied" => "the login was denied in the browser".to_owned(),
            _ if description.is_empty() => format!("the login failed ({error})"),
            _ => format!("the login failed ({error}: {description})"),
        }));
    }
    get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Error::Unauthenticated("the login answer has no code".into()))
}

/// Aborts the accept loop when the login ends, closing the port.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

type Callback = (Vec<(String, String)>, TcpStream);

/// Accepts connections until the login ends; every `GET /callback` goes to `tx` with its
/// socket (answered once the login's outcome is known), anything else gets a 404.
async fn accept_callbacks(listener: TcpListener, tx: mpsc::Sender<Callback>) {
    let mut readers = tokio::task::JoinSet::new();
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            // Out of file descriptors or similar: let it ease instead of spinning.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let tx = tx.clone();
        readers.spawn(async move {
            let read = tokio::time::timeout(READ_TIMEOUT, read_request_target(socket)).await;
            let Ok(Ok(Some((target, mut socket)))) = read else {
                return;
            };
            let Ok(url) = Url::parse("http://127.0.0.1").and_then(|b| b.join(&target)) else {
                let _ = socket.write_all(not_found().as_bytes()).await;
                return;
            };
            if url.path() != CALLBACK_PATH {
                let _ = socket.write_all(not_found().as_bytes()).await;
                return;
            }
            let query = url.query_pairs().into_owned().collect();
            let _ = tx.send((query, socket)).await;
        });
        // Finished readers are reaped so the set does not grow.
        while readers.try_join_next().is_some() {}
    }
}

/// Reads a request head; the target of a `GET`, `None` for anything else.
async fn read_request_target(
    mut socket: TcpStream,
) -> std::io::Result<Option<(String, TcpStream)>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
        if head.len() > MAX_REQUEST_HEAD {
            return Ok(None);
        }
    }
    let line = head
        .split(|b| *b == b'\n')
        .next()
        .and_then(|l| std::str::from_utf8(l).ok())
        .unwrap_or_default();
    let mut parts = line.trim_end().split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) if target.starts_with('/') => {
            Ok(Some((target.to_owned(), socket)))
        }
        _ => {
            let _ = socket.write_all(not_found().as_bytes()).await;
            Ok(None)
        }
    }
}

fn not_found() -> String {
    response("404 Not Found", "text/plain; charset=utf-8", "not found")
}

fn page(title: &str, message: &str) -> String {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title} – Assay</title></head>\
         <body style=\"font-family:sans-serif;max-width:36em;margin:4em auto\">\
         <h1>{title}</h1><p>{message}</p></body></html>",
        title = escape(title),
        message = escape(message),
    );
    response("200 OK", "text/html; charset=utf-8", &body)
}

fn response(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\nreferrer-policy: no-referrer\r\n\
         content-security-policy: default-src 'none'; style-src 'unsafe-inline'\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
