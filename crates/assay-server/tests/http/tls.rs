//! HTTPS: the real server behind `serve_tls` with a certificate from a CA made in the
//! test (by the `openssl` CLI). A client trusting that CA gets answers; plain HTTP to the
//! port and a client that does not trust the CA get none; a client that connects and
//! says nothing holds up no one; handlers still see the peer address (audit `client.ip`).

use crate::support::{TestApp, http_client};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A CA, and a server certificate (subjectAltName IP:127.0.0.1) with its key signed by
/// it: (ca.pem, leaf.pem, leaf.key).
fn test_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let path = |name: &str| dir.join(name);
    let ext = path("leaf.ext");
    std::fs::write(
        &ext,
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let s = |p: &PathBuf| p.to_str().unwrap().to_owned();
    let (ca_key, ca, key, csr, cert) = (
        s(&path("ca.key")),
        s(&path("ca.pem")),
        s(&path("leaf.key")),
        s(&path("leaf.csr")),
        s(&path("leaf.pem")),
    );
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
        "/CN=Assay HTTP test CA",
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
    let ext = s(&ext);
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
    (ca.into(), cert.into(), key.into())
}

/// A client that trusts only `ca`, sending `token` if given.
fn https_client(ca: &Path, token: Option<&str>, timeout: Duration) -> reqwest::Client {
    // Installs the process's rustls provider (reqwest is built without one).
    drop(http_client(None));
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
    }
    reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([ca])
        .default_headers(headers)
        .timeout(timeout)
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_server_answers_over_https_and_only_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_ca(dir.path());
    let tls = assay_server::tls::load_server_config(&cert, &key).unwrap();
    let app = TestApp::start_tls(tls).await;
    assert_eq!(app.base, format!("https://{}", app.addr));

    // A client that connects and never speaks holds up no one: the next client is
    // answered well before that handshake's timeout would end it.
    let _silent = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let fast = https_client(&ca, None, assay_server::tls::HANDSHAKE_TIMEOUT / 2);
    let res = fast.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.version(), reqwest::Version::HTTP_11);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok"}));

    // The public URL is the https one: the OpenAPI document names it.
    let doc: Value = fast
        .get(app.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["servers"][0]["url"], app.base);

    // Authenticated, and the handler saw the peer address (ConnectInfo) over TLS.
    let admin = https_client(&ca, Some(&app.token), Duration::from_secs(30));
    let res = admin.get(app.url("/v1/me")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let events: Vec<Value> = admin
        .get(app.url("/v1/organizations/default/audit/events?action=identity.whoami"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["client"]["ip"], "127.0.0.1");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = http_client(None)
        .get(format!("http://{}/healthz", app.addr))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
    // Nor does a client that does not trust the test CA.
    let untrusting = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([])
        .build()
        .unwrap()
        .get(app.url("/healthz"))
        .send()
        .await;
    let e = untrusting.unwrap_err();
    assert!(e.is_connect(), "{e:?}");
    app.stop().await;
}
