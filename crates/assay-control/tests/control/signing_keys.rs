//! Access-token signing keys: sealed in the store with the key-encryption key, legacy
//! plain records re-sealed, a wrong KEK refused at start, rotation on the plane's clock,
//! and a rotation made by one plane picked up by another on the same database.

use super::*;
use assay_auth::jwt::SigningKey;
use assay_auth::key_seal::KeyEncryptionKey;
use assay_core::oauth::SigningKeyRecord;
use assay_exec::{FsExecutionFiles, LocalExecutor, LocalExecutorConfig};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// A fresh access token for a new user of acme's dev environment, from the plane's own
/// authorization server.
async fn access_token(t: &OAuthApp, server: &AuthorizationServer, email: &str) -> String {
    t.user(email, OrgRole::Member, &[(t.app.t.dev.id, Level::Run)])
        .await;
    let session = server
        .login_password(email, PASSWORD, &ctx())
        .await
        .unwrap();
    let r = server
        .begin_authorization(&authorize(CLI, CLI_REDIRECT), &ctx())
        .await
        .unwrap();
    let location = server
        .decide(
            &session,
            &r,
            ConsentDecision::Approve {
                scope: McpScope::Run,
            },
            &ctx(),
        )
        .await
        .unwrap();
    let code = query(&location).get("code").cloned().unwrap();
    server
        .token(&code_exchange(CLI, &code, VERIFIER), &ctx())
        .await
        .unwrap()
        .access_token
}

async fn validate_at(plane: &LocalControlPlane, token: &str) -> Result<Principal, Error> {
    plane
        .authenticator()
        .authenticate_for_resource(
            token,
            &ClientInfo::default(),
            Some("acme"),
            Some(&dev_resource()),
        )
        .await
}

/// The `kid` of a JWT's header.
fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

fn jwks_kids(plane: &LocalControlPlane) -> Vec<String> {
    plane.key_ring().jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// Every key record, retired ones too.
async fn all_records(store: &dyn Store) -> Vec<SigningKeyRecord> {
    store
        .list_signing_keys(time::OffsetDateTime::UNIX_EPOCH)
        .await
        .unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Neither the PKCS#8 document nor the 32-byte seed (its tail) shows in the record.
fn assert_sealed(record: &SigningKeyRecord, key: &SigningKey) {
    assert_eq!(record.kid, key.kid());
    assert!(
        record.private_pkcs8.starts_with(b"v1:"),
        "{} is not sealed",
        record.kid
    );
    let pkcs8 = key.to_pkcs8_der();
    assert!(!contains(&record.private_pkcs8, &pkcs8));
    assert!(!contains(&record.private_pkcs8, &pkcs8[pkcs8.len() - 32..]));
}

#[tokio::test]
async fn the_store_holds_only_sealed_keys() {
    let t = OAuthApp::start().await;
    let ring = t.plane().key_ring();
    let records = all_records(t.app.store.as_ref()).await;
    assert_eq!(records.len(), 1);
    assert_sealed(&records[0], ring.current());
    // Sealed with the configured KEK and this kid: it opens, and to the same key.
    let kek = t.app.config.key_encryption_key.clone().unwrap();
    let opened = kek
        .open(&records[0].kid, &records[0].private_pkcs8)
        .unwrap();
    assert_eq!(opened.as_slice(), ring.current().to_pkcs8_der().as_slice());
    assert!(kek.open("another-kid", &records[0].private_pkcs8).is_err());
}

#[tokio::test]
async fn plain_legacy_records_are_resealed_at_start_and_keep_signing() {
    let t = OAuthApp::start().await;
    let original = t.plane().key_ring().current().kid().to_owned();
    let now = time::OffsetDateTime::now_utc();
    // As written before sealing existed: a newer current key and an old retired one.
    let legacy = SigningKey::generate().unwrap();
    let retired = SigningKey::generate().unwrap();
    for (key, created_at, retired_at) in [
        (&legacy, now + time::Duration::seconds(1), None),
        (
            &retired,
            now - time::Duration::days(90),
            Some(now - time::Duration::days(40)),
        ),
    ] {
        t.app
            .store
            .insert_signing_key(&SigningKeyRecord {
                kid: key.kid().to_owned(),
                private_pkcs8: key.to_pkcs8_der().to_vec(),
                created_at,
                retired_at,
            })
            .await
            .unwrap();
    }

    let mut app = t.app;
    app.reopen().await;
    let records = all_records(app.store.as_ref()).await;
    assert_eq!(records.len(), 3);
    for record in &records {
        let key = [&legacy, &retired]
            .into_iter()
            .find(|k| k.kid() == record.kid);
        if let Some(key) = key {
            assert_sealed(record, key);
        } else {
            assert_eq!(record.kid, original);
            assert!(record.private_pkcs8.starts_with(b"v1:"));
        }
    }
    // The legacy key is the newest: it signs, the original one is previous.
    let ring = app.plane.key_ring();
    assert_eq!(ring.current().kid(), legacy.kid());
    assert_eq!(ring.previous().map(|k| k.kid()), Some(original.as_str()));
    let t = OAuthApp {
        server: app.plane.oauth(),
        app,
    };
    let token = access_token(&t, &t.server, "lee@acme.test").await;
    assert_eq!(kid_of(&token), legacy.kid());
    validate_at(t.plane(), &token).await.unwrap();
}

#[tokio::test]
async fn a_wrong_key_encryption_key_stops_the_start_with_a_clear_error() {
    let t = OAuthApp::start().await;
    let wrong = KeyEncryptionKey::generate().unwrap();
    let config = ControlPlaneConfig {
        key_encryption_key: Some(wrong.clone()),
        ..t.app.config.clone()
    };
    let data_dir = t.app.dir.path().join("data");
    let files = Arc::new(FsExecutionFiles::new(data_dir.clone()));
    let executor = Arc::new(LocalExecutor::new(
        LocalExecutorConfig {
            data_dir,
            ..LocalExecutorConfig::default()
        },
        files.clone(),
    ));
    let Err(err) = LocalControlPlane::start(
        config,
        t.app.store.clone(),
        executor,
        files,
        t.app.clock.clone(),
    )
    .await
    else {
        panic!("a plane started with the wrong key-encryption key");
    };
    let kid = t.plane().key_ring().current().kid().to_owned();
    assert_eq!(
        err.to_string(),
        format!(
            "internal error: signing key {kid}: the sealed key cannot be opened with this \
             key-encryption key. Start the server with the key-encryption key it was sealed \
             with (--key-encryption-key-file or ASSAY_KEY_ENCRYPTION_KEY_FILE; by default \
             <data-dir>/signing-kek)"
        )
    );
    let right = t.app.config.key_encryption_key.clone().unwrap();
    for secret in [wrong.to_hex(), right.to_hex()] {
        assert!(!err.to_string().contains(secret.as_str()));
    }
}

#[tokio::test]
async fn keys_rotate_on_schedule_and_the_previous_one_validates_until_retired() {
    let t = OAuthApp::start().await;
    let first = t.plane().key_ring().current().kid().to_owned();

    // Not due yet: nothing changes.
    t.app.clock.advance(29 * DAY);
    t.plane().refresh_signing_keys().await.unwrap();
    assert_eq!(jwks_kids(t.plane()), [first.as_str()]);

    // A token signed a minute before the key is due.
    t.app.clock.advance(DAY - Duration::from_secs(60));
    let old_token = access_token(&t, &t.server, "old@acme.test").await;
    assert_eq!(kid_of(&old_token), first);

    t.app.clock.advance(Duration::from_secs(120));
    t.plane().refresh_signing_keys().await.unwrap();
    let ring = t.plane().key_ring();
    let second = ring.current().kid().to_owned();
    assert_ne!(second, first);
    assert_eq!(ring.previous().map(|k| k.kid()), Some(first.as_str()));
    assert_eq!(jwks_kids(t.plane()), [second.clone(), first.clone()]);
    // New tokens use the new key; the old token still validates.
    let new_token = access_token(&t, &t.server, "new@acme.test").await;
    assert_eq!(kid_of(&new_token), second);
    validate_at(t.plane(), &old_token).await.unwrap();
    validate_at(t.plane(), &new_token).await.unwrap();
    let records = all_records(t.app.store.as_ref()).await;
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.retired_at.is_none()));
    assert_sealed(&records[0], ring.current());

    // Still inside the grace (access-token lifetime + reload interval = 15 min).
    t.app.clock.advance(Duration::from_secs(14 * 60));
    t.plane().refresh_signing_keys().await.unwrap();
    assert_eq!(jwks_kids(t.plane()), [second.clone(), first.clone()]);

    // Past it: the previous key is retired, in the store and in the ring.
    t.app.clock.advance(Duration::from_secs(2 * 60));
    t.plane().refresh_signing_keys().await.unwrap();
    assert_eq!(jwks_kids(t.plane()), [second.as_str()]);
    let retired = all_records(t.app.store.as_ref())
        .await
        .into_iter()
        .find(|r| r.kid == first)
        .unwrap();
    assert!(retired.retired_at.is_some());
    assert!(t.plane().key_ring().find(&first).is_none());
}

#[tokio::test]
async fn another_plane_on_the_same_database_picks_up_a_rotation() {
    let t =
        OAuthApp::start_with(|o| o.signing_key_reload_interval = Duration::from_millis(100)).await;
    let first_plane = t.plane().clone();
    let mut app = t.app;
    app.reopen().await;
    let second_plane = app.plane.clone();
    let before = first_plane.key_ring().current().kid().to_owned();
    assert_eq!(second_plane.key_ring().current().kid(), before);

    first_plane.rotate_signing_key().await.unwrap();
    let after = first_plane.key_ring().current().kid().to_owned();
    assert_ne!(after, before);
    // The second plane's background reload brings it over (every 100 ms here).
    let mut waited = 0;
    while jwks_kids(&second_plane) != [after.clone(), before.clone()] {
        assert!(waited < 200, "the second plane never reloaded the keys");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    // A token signed by the new key on the first plane validates on the second.
    let t = OAuthApp {
        server: first_plane.oauth(),
        app,
    };
    let token = access_token(&t, &first_plane.oauth(), "rae@acme.test").await;
    assert_eq!(kid_of(&token), after);
    validate_at(&second_plane, &token).await.unwrap();
    first_plane.shutdown().await;
}
