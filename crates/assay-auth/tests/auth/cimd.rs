//! The CIMD fetcher end to end. The server is plain http on 127.0.0.1, so the fetcher
//! under test runs with both test relaxations of the SSRF policy; one test shows the
//! default policy refusing the same URLs before any connection is made.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use assay_auth::cimd::{CimdConfig, CimdError, CimdFetcher, ClientIdError};
use assay_auth::ssrf::{AddressClass, SsrfError, SsrfPolicy};
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Clone)]
struct ServerState {
    base: String,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

struct TestServer {
    base: String,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl TestServer {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let state = ServerState {
            base: base.clone(),
            hits: Arc::clone(&hits),
        };
        let app = axum::Router::new()
            .fallback(serve_document)
            .with_state(state);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    fn total_hits(&self) -> usize {
        self.hits.lock().unwrap().values().sum()
    }
}

fn document(client_id: &str) -> serde_json::Value {
    json!({
        "client_id": client_id,
        "client_name": "Loopback Test Client",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "token_endpoint_auth_method": "none"
    })
}

fn json_response(body: &serde_json::Value, cache_control: Option<&'static str>) -> Response {
    let mut r = (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    if let Some(cc) = cache_control {
        r.headers_mut()
            .insert(header::CACHE_CONTROL, cc.parse().unwrap());
    }
    r
}

async fn serve_document(
    State(state): State<ServerState>,
    headers: axum::http::HeaderMap,
    uri: Uri,
) -> Response {
    let path = uri.path().to_owned();
    let hit = {
        let mut hits = state.hits.lock().unwrap();
        let n = hits.entry(path.clone()).or_insert(0);
        *n += 1;
        *n
    };
    // The URL the client used, so that a document fetched by host name names itself
    // by that name too.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let own_id = format!("http://{host}{path}");
    match path.as_str() {
        "/ok.json" | "/redirect-target.json" => {
            json_response(&document(&own_id), Some("public, max-age=60"))
        }
        "/no-store.json" => json_response(&document(&own_id), Some("no-store")),
        "/flaky.json" if hit == 1 => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        "/flaky.json" => json_response(&document(&own_id), Some("max-age=60")),
        "/invalid-then-valid.json" if hit == 1 => {
            let mut d = document(&own_id);
            d["redirect_uris"] = json!([]);
            json_response(&d, Some("max-age=60"))
        }
        "/invalid-then-valid.json" => json_response(&document(&own_id), Some("max-age=60")),
        "/big-streamed.json" => {
            // A valid document padded past 5 KB, sent in chunks without Content-Length.
            let mut d = document(&own_id);
            d["client_uri"] = json!(format!("https://client.example/{}", "a".repeat(8 * 1024)));
            let bytes = d.to_string().into_bytes();
            let chunks: Vec<Result<Vec<u8>, Infallible>> =
                bytes.chunks(512).map(|c| Ok(c.to_vec())).collect();
            (
                [(header::CONTENT_TYPE, "application/json")],
                Body::from_stream(futures::stream::iter(chunks)),
            )
                .into_response()
        }
        "/big-declared.json" => {
            let mut d = document(&own_id);
            d["client_uri"] = json!(format!("https://client.example/{}", "a".repeat(8 * 1024)));
            json_response(&d, None)
        }
        "/redirect.json" => (
            StatusCode::FOUND,
            [(
                header::LOCATION,
                format!("{}/redirect-target.json", state.base),
            )],
        )
            .into_response(),
        "/error.json" => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        "/wrong-id.json" => json_response(&document(&format!("{}/ok.json", state.base)), None),
        "/secret.json" => {
            let mut d = document(&own_id);
            d["token_endpoint_auth_method"] = json!("client_secret_basic");
            json_response(&d, None)
        }
        "/html.json" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            document(&own_id).to_string(),
        )
            .into_response(),
        "/hang.json" => std::future::pending().await,
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn relaxed_config() -> CimdConfig {
    CimdConfig {
        policy: SsrfPolicy::strict()
            .allow_private_for_tests_and_airgapped()
            .allow_plain_http_to_loopback_for_tests(),
        ..CimdConfig::default()
    }
}

fn relaxed() -> CimdFetcher {
    CimdFetcher::new(relaxed_config())
}

#[tokio::test]
async fn valid_document_is_fetched_then_served_from_cache_for_max_age() {
    let server = TestServer::start().await;
    let fetcher = relaxed();
    let id = server.url("/ok.json");
    let first = fetcher.fetch(&id).await.unwrap();
    assert_eq!(first.client_id, id);
    assert_eq!(first.client_name, "Loopback Test Client");
    assert_eq!(first.redirect_uris[0].as_str(), "http://127.0.0.1/callback");
    assert!(first.has_only_loopback_redirects());
    let second = fetcher.fetch(&id).await.unwrap();
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(server.hits("/ok.json"), 1);
}

#[tokio::test]
async fn a_host_name_is_resolved_once_and_the_fetch_pinned_to_its_addresses() {
    let server = TestServer::start().await;
    let id = server.url("/ok.json").replacen("127.0.0.1", "localhost", 1);
    let metadata = relaxed().fetch(&id).await.unwrap();
    assert_eq!(metadata.client_id, id);
    assert_eq!(server.hits("/ok.json"), 1);
}

#[tokio::test]
async fn no_store_is_fetched_every_time() {
    let server = TestServer::start().await;
    let fetcher = relaxed();
    let id = server.url("/no-store.json");
    fetcher.fetch(&id).await.unwrap();
    fetcher.fetch(&id).await.unwrap();
    assert_eq!(server.hits("/no-store.json"), 2);
}

#[tokio::test]
async fn errors_and_invalid_documents_are_not_cached() {
    let server = TestServer::start().await;
    let fetcher = relaxed();

    let id = server.url("/flaky.json");
    assert_eq!(fetcher.fetch(&id).await, Err(CimdError::Status(500)));
    fetcher.fetch(&id).await.unwrap();
    fetcher.fetch(&id).await.unwrap();
    assert_eq!(
        server.hits("/flaky.json"),
        2,
        "the error was not cached, the success was"
    );

    let id = server.url("/invalid-then-valid.json");
    assert_eq!(fetcher.fetch(&id).await, Err(CimdError::NoRedirectUris));
    fetcher.fetch(&id).await.unwrap();
    assert_eq!(server.hits("/invalid-then-valid.json"), 2);
}

#[tokio::test]
async fn oversized_body_is_refused_while_streaming() {
    let server = TestServer::start().await;
    // The premise: this response really comes without Content-Length. (A plain reqwest
    // client needs the process crypto provider; the fetcher installs its own.)
    let _ = rustls::crypto::ring::default_provider().install_default();
    let raw = reqwest::get(server.url("/big-streamed.json"))
        .await
        .unwrap();
    assert_eq!(raw.headers().get(header::CONTENT_LENGTH), None);
    assert!(raw.bytes().await.unwrap().len() > 8 * 1024);

    let fetcher = relaxed();
    let id = server.url("/big-streamed.json");
    assert_eq!(
        fetcher.fetch(&id).await,
        Err(CimdError::TooLarge { limit: 5 * 1024 })
    );
    assert_eq!(
        fetcher.fetch(&id).await,
        Err(CimdError::TooLarge { limit: 5 * 1024 })
    );
    assert_eq!(server.hits("/big-streamed.json"), 3);

    let id = server.url("/big-declared.json");
    assert_eq!(
        fetcher.fetch(&id).await,
        Err(CimdError::TooLarge { limit: 5 * 1024 })
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = TestServer::start().await;
    let fetcher = relaxed();
    assert_eq!(
        fetcher.fetch(&server.url("/redirect.json")).await,
        Err(CimdError::Redirect { status: 302 })
    );
    assert_eq!(server.hits("/redirect.json"), 1);
    assert_eq!(server.hits("/redirect-target.json"), 0);
}

#[tokio::test]
async fn non_200_is_an_error() {
    let server = TestServer::start().await;
    let fetcher = relaxed();
    assert_eq!(
        fetcher.fetch(&server.url("/missing.json")).await,
        Err(CimdError::Status(404))
    );
    assert_eq!(
        fetcher.fetch(&server.url("/error.json")).await,
        Err(CimdError::Status(500))
    );
}

#[tokio::test]
async fn document_must_name_its_own_url() {
    let server = TestServer::start().await;
    let fetcher = relaxed();
    assert_eq!(
        fetcher.fetch(&server.url("/wrong-id.json")).await,
        Err(CimdError::ClientIdMismatch {
            document: server.url("/ok.json")
        })
    );
}

#[tokio::test]
async fn secret_auth_method_is_refused() {
    let server = TestServer::start().await;
    let fetcher = relaxed();
    assert_eq!(
        fetcher.fetch(&server.url("/secret.json")).await,
        Err(CimdError::SecretAuthMethod("client_secret_basic".into()))
    );
}

#[tokio::test]
async fn content_type_must_be_json() {
    let server = TestServer::start().await;
    let fetcher = relaxed();
    assert_eq!(
        fetcher.fetch(&server.url("/html.json")).await,
        Err(CimdError::ContentType(Some(
            "text/html; charset=utf-8".into()
        )))
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = TestServer::start().await;
    let fetcher = CimdFetcher::new(CimdConfig {
        total_timeout: Duration::from_millis(300),
        ..relaxed_config()
    });
    assert_eq!(
        fetcher.fetch(&server.url("/hang.json")).await,
        Err(CimdError::Timeout)
    );
    assert_eq!(server.hits("/hang.json"), 1);
}

#[tokio::test]
async fn default_policy_refuses_loopback_before_connecting() {
    let server = TestServer::start().await;
    let id = server.url("/ok.json");
    let https_id = id.replacen("http://", "https://", 1);
    let loopback = |addr: &str| {
        Err(CimdError::Ssrf(SsrfError::SpecialUseAddress {
            addr: addr.parse().unwrap(),
            class: AddressClass::Loopback,
        }))
    };

    let strict = CimdFetcher::new(CimdConfig::default());
    assert_eq!(
        strict.fetch(&id).await,
        Err(CimdError::InvalidClientId(ClientIdError::NotHttps(
            "http".into()
        )))
    );
    assert_eq!(strict.fetch(&https_id).await, loopback("127.0.0.1"));

    // The http knob alone does not open loopback.
    let http_only = CimdFetcher::new(CimdConfig {
        policy: SsrfPolicy::strict().allow_plain_http_to_loopback_for_tests(),
        ..CimdConfig::default()
    });
    assert_eq!(http_only.fetch(&id).await, loopback("127.0.0.1"));
    let by_name = id.replacen("127.0.0.1", "localhost", 1);
    match http_only.fetch(&by_name).await {
        Err(CimdError::Ssrf(SsrfError::SpecialUseAddress {
            class: AddressClass::Loopback,
            ..
        })) => {}
        other => panic!("{other:?}"),
    }

    assert_eq!(server.total_hits(), 0, "nothing reached the server");
    // The same URL works once the relaxations are on, so the refusals above were the
    // policy and not a dead server.
    relaxed().fetch(&id).await.unwrap();
    assert_eq!(server.hits("/ok.json"), 1);
}
