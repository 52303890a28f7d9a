//! What the OAuth end-to-end tests share: a member who signs in with a password, a
//! headless "person at the browser" for the sign-in pages, and the audit trail read back.
//!
//! The browser behaves like one and nothing more: a cookie jar, `Origin` on form POSTs,
//! every hidden field sent back as rendered (the CSRF token among them), 303s followed by
//! GET until the server sends it outside itself — to the client's redirect URI, whose
//! URL (with `code`, `state`, `iss`) is the result; on the device flow's verification
//! page, the page it ends on ("Device connected") is. It knows the pages only by their
//! form fields (`email`/`password`; the `granted_scope` radios and the `action=approve`
//! button), as scripts/oauth-browser.mjs does for the Node side.
//!
//! For registration by Client ID Metadata Document, which the spec (and the clients)
//! only take over https: a throwaway CA with a certificate for 127.0.0.1 made with the
//! `openssl` command ([`test_ca`]; the server trusts the CA through `SSL_CERT_FILE`),
//! and a small https server for the document ([`MetadataDocumentServer`]).

use super::harness::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub const MEMBER_EMAIL: &str = "oauth-member@example.com";
pub const MEMBER_PASSWORD: &str = "correct horse battery staple 5";

/// One workflow the member may run (created by the admin: the member may not write).
pub const WORKFLOW: &str = "kind: TestWorkflow\nmetadata:\n  name: oauth-green\nspec:\n  steps:\n  - name: hello\n    shell: echo hello-from-oauth\n";
pub const WORKFLOW_NAME: &str = "oauth-green";

/// Adds the member (local account, password from stdin) with `run` on `dev`, so the
/// role allows `run_workflow` and only the token's scope can stop it; creates
/// [`WORKFLOW`]. Returns the member's user ID.
pub fn member_and_workflow(server: &Server) -> String {
    let out = server.cli_with_stdin(
        &[
            "member",
            "add",
            MEMBER_EMAIL,
            "--role",
            "member",
            "--name",
            "OAuth Member",
            "--grant",
            "dev=run",
            "--password-stdin",
            "-o",
            "json",
        ],
        Some(&format!("{MEMBER_PASSWORD}\n")),
    );
    assert!(
        out.status.success(),
        "member add: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let added: Value = serde_json::from_slice(&out.stdout).expect("member add prints JSON");
    let res = server.http().post_yaml(&server.api("/workflows"), WORKFLOW);
    assert_eq!(res.status(), 201, "{:?}", res.text());
    added["user_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no user_id in {added}"))
        .to_owned()
}

/// The tools the member (role `run` on dev) sees: the catalog without the write tools.
/// Listing follows the role, not the token's scope, so a client holding mcp:read still
/// sees `run_workflow` and learns about the step-up only when it calls it.
pub fn member_tools() -> Vec<String> {
    const WRITE_TOOLS: [&str; 5] = [
        "create_workflow",
        "update_workflow",
        "delete_workflow",
        "create_workflowtemplate",
        "update_workflowtemplate",
    ];
    assay_mcp::tool_names()
        .into_iter()
        .filter(|t| !WRITE_TOOLS.contains(&t.as_str()))
        .collect()
}

/// The MCP endpoint of the default environment.
pub fn mcp_url(server: &Server) -> String {
    format!("{}/organizations/default/environments/dev/mcp", server.url)
}

/// A browser: a cookie jar over a client that follows no redirect by itself.
pub struct Browser {
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::with_builder(reqwest::Client::builder())
    }
}

impl Browser {
    /// A browser that also trusts the CA in the PEM file `ca` (an https server of a test).
    pub fn trusting(ca: &Path) -> Self {
        assay_client::install_crypto_provider();
        let pem = std::fs::read(ca).expect("read the CA");
        let certs = reqwest::Certificate::from_pem_bundle(&pem).expect("PEM CA");
        Self::with_builder(reqwest::Client::builder().tls_certs_merge(certs))
    }

    fn with_builder(builder: reqwest::ClientBuilder) -> Self {
        assay_client::install_crypto_provider();
        Self {
            client: builder
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .expect("client"),
            cookies: BTreeMap::new(),
        }
    }
}

/// A form of a page: where it posts, its hidden and text fields, its radios, its buttons.
#[derive(Debug, Default)]
pub struct PageForm {
    pub action: String,
    pub fields: Vec<(String, String)>,
    pub radios: Vec<(String, String, bool)>,
    pub buttons: Vec<(String, String)>,
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// `name="value"` pairs and bare names of one tag's attribute text.
fn attributes(tag: &str) -> BTreeMap<String, Option<String>> {
    let mut found = BTreeMap::new();
    let mut rest = tag;
    loop {
        rest = rest.trim_start();
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        let name = rest[..end].to_ascii_lowercase();
        rest = &rest[end..];
        if let Some(after) = rest.strip_prefix("=\"") {
            let close = after.find('"').unwrap_or(after.len());
            found.insert(name, Some(unescape(&after[..close])));
            rest = after.get(close + 1..).unwrap_or("");
        } else {
            found.insert(name, None);
        }
    }
    found
}

/// The first `<form>` of a page.
pub fn parse_form(html: &str) -> Option<PageForm> {
    let start = html.find("<form")?;
    let open_end = start + html[start..].find('>')?;
    let close = open_end + html[open_end..].find("</form>")?;
    let attrs = attributes(&html[start + "<form".len()..open_end]);
    let mut form = PageForm {
        action: attrs.get("action").cloned().flatten().unwrap_or_default(),
        ..PageForm::default()
    };
    let inner = &html[open_end + 1..close];
    let mut at = 0;
    while let Some(pos) = inner[at..].find('<') {
        let tag_start = at + pos + 1;
        let Some(len) = inner[tag_start..].find('>') else {
            break;
        };
        let tag = &inner[tag_start..tag_start + len];
        at = tag_start + len;
        let (kind, rest) = tag.split_once(char::is_whitespace).unwrap_or((tag, ""));
        let a = attributes(rest);
        let get = |k: &str| a.get(k).cloned().flatten().unwrap_or_default();
        match kind.to_ascii_lowercase().as_str() {
            "button" if a.contains_key("name") => form.buttons.push((get("name"), get("value"))),
            "input" => match get("type").as_str() {
                "radio" => form
                    .radios
                    .push((get("name"), get("value"), a.contains_key("checked"))),
                _ if a.contains_key("name") => form.fields.push((get("name"), get("value"))),
                _ => {}
            },
            _ => {}
        }
    }
    Some(form)
}

impl Browser {
    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, res: &reqwest::Response) {
        for line in res.headers().get_all(reqwest::header::SET_COOKIE) {
            let Ok(line) = line.to_str() else { continue };
            let pair = line.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let cleared =
                    value.trim().is_empty() || line.to_ascii_lowercase().contains("max-age=0");
                if cleared {
                    self.cookies.remove(name.trim());
                } else {
                    self.cookies
                        .insert(name.trim().to_owned(), value.trim().to_owned());
                }
            }
        }
    }

    /// Signs in (if the jar holds no session) and approves `scope` (default: what the
    /// client asked for) for the sign-in `authorization_url` starts; returns the URL the
    /// server finally redirects to (the client's callback). Panics with the steps taken
    /// when a page is not what a person would expect.
    pub async fn approve(
        &mut self,
        authorization_url: &str,
        email: &str,
        password: &str,
        scope: Option<&str>,
    ) -> String {
        match self.walk(authorization_url, email, password, scope).await {
            Ok(redirect) => redirect,
            Err((steps, html)) => panic!("no form (steps {steps:?}): {html}"),
        }
    }

    /// The device flow's verification page (RFC 8628): signs in (if the jar holds no
    /// session) and approves `scope` (default: what the device asked for) for the code in
    /// `verification_url` (`verification_uri_complete`); returns the page it ends on
    /// ("Device connected").
    pub async fn approve_device(
        &mut self,
        verification_url: &str,
        email: &str,
        password: &str,
        scope: Option<&str>,
    ) -> String {
        match self.walk(verification_url, email, password, scope).await {
            Ok(redirect) => panic!("the verification page sent the browser to {redirect}"),
            Err((_, html)) => html,
        }
    }

    /// Fills the pages from `start` on: `Ok(URL)` when the server redirects outside its
    /// own page, `Err((steps, html))` at a page without a form.
    async fn walk(
        &mut self,
        authorization_url: &str,
        email: &str,
        password: &str,
        scope: Option<&str>,
    ) -> Result<String, (Vec<String>, String)> {
        let start = url::Url::parse(authorization_url).expect("authorization URL");
        let origin = start.origin().ascii_serialization();
        let authorize_path = start.path().to_owned();
        let mut method = reqwest::Method::GET;
        let mut target = start.clone();
        let mut body: Option<String> = None;
        let mut steps = Vec::new();
        for _ in 0..10 {
            let mut req = self
                .client
                .request(method.clone(), target.clone())
                .header(reqwest::header::COOKIE, self.cookie_header());
            if let Some(form) = body.take() {
                req = req
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .header(reqwest::header::ORIGIN, &origin)
                    .body(form);
            }
            let res = req.send().await.expect("the sign-in page answers");
            self.keep_cookies(&res);
            let status = res.status().as_u16();
            steps.push(format!("{method} {} -> {status}", target.path()));
            if status == 302 || status == 303 {
                let location = res
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .expect("a redirect has a Location");
                let next = target.join(location).expect("Location is a URL");
                if next.origin().ascii_serialization() == origin && next.path() == authorize_path {
                    method = reqwest::Method::GET;
                    target = next;
                    continue;
                }
                return Ok(next.to_string());
            }
            let html = res.text().await.unwrap_or_default();
            assert_eq!(status, 200, "steps {steps:?}: {html}");
            let Some(form) = parse_form(&html) else {
                return Err((steps, html));
            };
            let mut fields = url::form_urlencoded::Serializer::new(String::new());
            let is_login = form.fields.iter().any(|(n, _)| n == "password");
            for (name, value) in &form.fields {
                match name.as_str() {
                    "email" => fields.append_pair(name, email),
                    "password" => fields.append_pair(name, password),
                    _ => fields.append_pair(name, value),
                };
            }
            if !is_login {
                let offered: Vec<&(String, String, bool)> = form
                    .radios
                    .iter()
                    .filter(|(n, _, _)| n == "granted_scope")
                    .collect();
                let chosen = match scope {
                    Some(s) => s.to_owned(),
                    None => offered
                        .iter()
                        .find(|(_, _, checked)| *checked)
                        .map(|(_, v, _)| v.clone())
                        .unwrap_or_else(|| panic!("no scope preselected: {offered:?}")),
                };
                assert!(
                    offered.iter().any(|(_, v, _)| *v == chosen),
                    "the consent page offers {offered:?}, not {chosen}"
                );
                fields.append_pair("granted_scope", &chosen);
                let (name, value) = form
                    .buttons
                    .iter()
                    .find(|(_, v)| v == "approve")
                    .unwrap_or_else(|| panic!("no approve button: {:?}", form.buttons));
                fields.append_pair(name, value);
            }
            method = reqwest::Method::POST;
            target = target.join(&form.action).expect("form action");
            body = Some(fields.finish());
        }
        panic!("the sign-in did not finish in 10 steps: {steps:?}");
    }
}

/// The audit export as JSON lines.
pub fn audit_events(server: &Server) -> Vec<Value> {
    let out = server.cli(&["audit", "export", "--format", "jsonl"]);
    assert!(out.status.success(), "audit export: {}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line ({e}): {l}")))
        .collect()
}

/// How the audit trail spells the OAuth authentication method.
pub fn oauth_method() -> Value {
    // The wire spelling, written out: a rename of the enum must show up here.
    Value::String("oauth".to_owned())
}

/// How the audit trail spells the method of an access token of `client_id`: the
/// first-party CLI client's tokens authenticate as `cli_login`, every other client's as
/// `oauth`.
pub fn auth_method_of(client_id: &str) -> Value {
    if client_id == "assay-cli" {
        Value::String("cli_login".to_owned())
    } else {
        oauth_method()
    }
}

/// Asserts that `action` (on a resource containing `resource`, if given) was done by the
/// user through `client_id` with an OAuth access token, successfully.
pub fn assert_audited_as_user(
    events: &[Value],
    user_id: &str,
    client_id: &str,
    action: &str,
    resource: Option<&str>,
) {
    let found = events.iter().any(|e| {
        e["action"] == action
            && e["actor"]["id"] == user_id
            && e["actor"]["kind"] == "user"
            && e["actor"]["auth_method"] == auth_method_of(client_id)
            && e["actor"]["credential_id"] == client_id
            && e["outcome"] == "success"
            && resource.is_none_or(|r| {
                e["resources"]
                    .as_array()
                    .is_some_and(|rs| rs.iter().any(|x| x.as_str().is_some_and(|x| x.contains(r))))
            })
    });
    let mine: Vec<&Value> = events
        .iter()
        .filter(|e| e["actor"]["id"] == user_id)
        .collect();
    assert!(
        found,
        "no successful {action} by user {user_id} via {client_id} (OAuth) in the audit trail; the user's events:\n{mine:#?}"
    );
}

/// A throwaway CA and a certificate for 127.0.0.1 it signed, made with `openssl`:
/// returns (CA PEM, leaf certificate PEM, leaf key PEM) paths inside `dir`.
pub fn test_ca(dir: &Path) -> (String, String, String) {
    test_ca_for(dir, "IP:127.0.0.1")
}

/// [`test_ca`] with the leaf certificate's subjectAltName `san` (e.g.
/// `IP:127.0.0.1,DNS:localhost`).
pub fn test_ca_for(dir: &Path, san: &str) -> (String, String, String) {
    let path = |name: &str| dir.join(name).to_str().expect("utf-8 path").to_owned();
    let (ca_key, ca, key, csr, cert, ext) = (
        path("ca.key"),
        path("ca.pem"),
        path("leaf.key"),
        path("leaf.csr"),
        path("leaf.pem"),
        path("leaf.ext"),
    );
    std::fs::write(
        &ext,
        format!(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\nsubjectAltName={san}\n"
        ),
    )
    .expect("write the extensions");
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend([
        "-keyout",
        &ca_key,
        "-out",
        &ca,
        "-days",
        "2",
        "-subj",
        "/CN=Assay e2e test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&args);
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=127.0.0.1"]);
    openssl(&args);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-out",
        &cert,
        "-days",
        "2",
        "-extfile",
        &ext,
    ]);
    (ca, cert, key)
}

/// Serves one Client ID Metadata Document over https on 127.0.0.1 (rustls, one thread a
/// connection, `Connection: close`), and counts the fetches. `client_id` is the
/// document's own URL, as the spec requires; `redirect_uris` are the caller's.
pub struct MetadataDocumentServer {
    url: String,
    fetches: Arc<AtomicUsize>,
    stopped: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

impl MetadataDocumentServer {
    /// The path the document is served at; every other request gets 404.
    pub const PATH: &str = "/oauth/client-metadata.json";

    /// Starts serving with the leaf certificate and key PEM files of [`test_ca`].
    pub fn start(cert: &str, key: &str, client_name: &str, redirect_uris: &[&str]) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        assay_client::install_crypto_provider();
        let chain = CertificateDer::pem_file_iter(cert)
            .expect("read the certificate")
            .collect::<Result<Vec<_>, _>>()
            .expect("PEM certificate");
        let key = PrivateKeyDer::from_pem_file(key).expect("PEM key");
        let config = Arc::new(
            rustls::ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .expect("TLS server config"),
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let url = format!("https://{addr}{}", Self::PATH);
        let document = serde_json::json!({
            "client_id": url,
            "client_name": client_name,
            "redirect_uris": redirect_uris,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })
        .to_string();
        let fetches = Arc::new(AtomicUsize::new(0));
        let stopped = Arc::new(AtomicBool::new(false));
        let (counter, stop) = (fetches.clone(), stopped.clone());
        std::thread::spawn(move || {
            for socket in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(socket) = socket else { continue };
                let (config, document, counter) =
                    (config.clone(), document.clone(), counter.clone());
                std::thread::spawn(move || serve_document(socket, config, &document, &counter));
            }
        });
        Self {
            url,
            fetches,
            stopped,
            addr,
        }
    }

    /// The document's URL: the client ID.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many times the document was fetched.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl Drop for MetadataDocumentServer {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

/// Answers one connection: the document for `GET PATH`, 404 otherwise. A failed
/// handshake or a half-sent request just ends the connection (the fetcher reports it).
fn serve_document(
    socket: std::net::TcpStream,
    config: Arc<rustls::ServerConfig>,
    document: &str,
    fetches: &AtomicUsize,
) {
    let _ = socket.set_read_timeout(Some(std::time::Duration::from_secs(30)));
    let Ok(connection) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(connection, socket);
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 16 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&head);
    let request_line = head.lines().next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next(), parts.next());
    let response = if method == Some("GET") && target == Some(MetadataDocumentServer::PATH) {
        fetches.fetch_add(1, Ordering::SeqCst);
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: no-store\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{document}",
            document.len()
        )
    } else {
        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned()
    };
    let _ = tls.write_all(response.as_bytes());
    let _ = tls.flush();
    tls.conn.send_close_notify();
    let _ = tls.flush();
}
