//! Whole logins against the in-test identity provider on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;
use url::Url;

use super::fake_idp::{
    FakeClientAuth, FakeEndpoint, FakeIdp, FakeIdpConfig, FakeSigning, FakeUser,
};
use super::*;

const REDIRECT: &str = "http://127.0.0.1:7357/oauth/upstream/test/callback";

fn options() -> UpstreamOptions {
    UpstreamOptions {
        http: HttpSettings {
            max_body_bytes: 32 * 1024,
            ..HttpSettings::default()
        },
        ..UpstreamOptions::default()
    }
}

fn settings(fake: &FakeIdp, kind: ProviderKind) -> ProviderSettings {
    let mut provider = json!({
        "id": "test", "kind": kind.as_str(), "display_name": "Test IdP",
        "client_id": fake.config().client_id, "client_secret_env": "TEST_IDP_SECRET",
    });
    match kind {
        ProviderKind::Oidc => provider["issuer"] = fake.issuer().into(),
        ProviderKind::GitHub => {
            provider["github_url"] = fake.base_url().as_str().into();
            provider["github_api_url"] = fake.base_url().as_str().into();
        }
    }
    let secret = fake.config().client_secret.clone();
    let config: UpstreamConfig = serde_json::from_value(json!([provider])).unwrap();
    config
        .resolve(&|name| (name == "TEST_IDP_SECRET").then(|| secret.clone()))
        .unwrap()
        .remove(0)
}

async fn setup(
    config: FakeIdpConfig,
    kind: ProviderKind,
    options: &UpstreamOptions,
) -> (FakeIdp, UpstreamProvider) {
    let fake = FakeIdp::start(config).await;
    let provider = UpstreamProvider::new(settings(&fake, kind), options).unwrap();
    (fake, provider)
}

fn query(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

fn callback_of(location: &Url) -> CallbackParams {
    let q = query(location);
    CallbackParams {
        code: q.get("code").cloned(),
        state: q.get("state").cloned(),
        error: q.get("error").cloned(),
        error_description: q.get("error_description").cloned(),
        iss: q.get("iss").cloned(),
    }
}

/// begin → the provider's redirect back → finish.
async fn login(
    fake: &FakeIdp,
    provider: &UpstreamProvider,
) -> Result<UpstreamIdentity, UpstreamError> {
    let start = provider.begin(REDIRECT).await?;
    let location = fake
        .follow_authorization(&start.authorization_url)
        .await
        .unwrap();
    provider
        .finish(&start.pending, &callback_of(&location))
        .await
}

fn ada(email_verified: bool) -> UpstreamIdentity {
    UpstreamIdentity {
        provider_id: "test".into(),
        subject: "248289761001".into(),
        email: Some("ada@example.com".into()),
        email_verified,
        name: Some("Ada Lovelace".into()),
    }
}

#[tokio::test]
async fn oidc_login_with_basic_client_auth_and_rs256() {
    let (fake, provider) = setup(FakeIdpConfig::default(), ProviderKind::Oidc, &options()).await;
    let start = provider.begin(REDIRECT).await.unwrap();

    let url = &start.authorization_url;
    assert_eq!(
        url.as_str().split('?').next().unwrap(),
        format!("{}/protocol/openid-connect/auth", fake.issuer())
    );
    let q = query(url);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "assay-test-client");
    assert_eq!(q["redirect_uri"], REDIRECT);
    assert_eq!(q["scope"], "openid email profile");
    assert_eq!(q["state"], start.pending.state);
    assert_eq!(Some(&q["nonce"]), start.pending.nonce.as_ref());
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(
        q["code_challenge"],
        crate::pkce::s256_challenge(&start.pending.code_verifier)
    );
    crate::pkce::validate_verifier(&start.pending.code_verifier).unwrap();
    assert_ne!(start.pending.state, *start.pending.nonce.as_ref().unwrap());
    assert!(!format!("{:?}", start.pending).contains(&start.pending.code_verifier));

    let location = fake.follow_authorization(url).await.unwrap();
    assert!(location.as_str().starts_with(REDIRECT));
    let identity = provider
        .finish(&start.pending, &callback_of(&location))
        .await
        .unwrap();
    assert_eq!(identity, ada(true));
    assert_eq!(
        identity.admitted_email(&provider.settings().email_policy),
        Ok("ada@example.com".into())
    );
    // Discovery and keys were fetched once and reused.
    assert_eq!(fake.hits(FakeEndpoint::Discovery), 1);
    assert_eq!(fake.hits(FakeEndpoint::Jwks), 1);
    assert_eq!(login(&fake, &provider).await.unwrap(), ada(true));
    assert_eq!(fake.hits(FakeEndpoint::Discovery), 1);
    assert_eq!(fake.hits(FakeEndpoint::Jwks), 1);
    assert_eq!(fake.hits(FakeEndpoint::Token), 2);
}

#[tokio::test]
async fn oidc_login_with_post_client_auth_and_es256() {
    let config = FakeIdpConfig {
        client_auth: FakeClientAuth::Post,
        signing: FakeSigning::Es256,
        ..FakeIdpConfig::default()
    };
    let (fake, provider) = setup(config, ProviderKind::Oidc, &options()).await;
    assert_eq!(login(&fake, &provider).await.unwrap(), ada(true));
    assert_eq!(fake.signing_key().jwk["kty"], "EC");
}

#[tokio::test]
async fn the_code_is_single_use_and_the_client_secret_checked() {
    let (fake, provider) = setup(FakeIdpConfig::default(), ProviderKind::Oidc, &options()).await;
    let start = provider.begin(REDIRECT).await.unwrap();
    let location = fake
        .follow_authorization(&start.authorization_url)
        .await
        .unwrap();
    let callback = callback_of(&location);
    provider.finish(&start.pending, &callback).await.unwrap();
    assert_eq!(
        provider.finish(&start.pending, &callback).await,
        Err(UpstreamError::TokenRefused {
            error: "invalid_grant".into(),
            description: Some("fake IdP: invalid_grant".into())
        })
    );

    let mut wrong = settings(&fake, ProviderKind::Oidc);
    wrong.client_secret = ClientSecret::new("not-the-secret");
    let provider = UpstreamProvider::new(wrong, &options()).unwrap();
    assert_eq!(
        login(&fake, &provider).await,
        Err(UpstreamError::TokenRefused {
            error: "invalid_client".into(),
            description: Some("fake IdP: invalid_client".into())
        })
    );
}

#[tokio::test]
async fn callbacks_are_checked_before_any_token_request() {
    let (fake, provider) = setup(FakeIdpConfig::default(), ProviderKind::Oidc, &options()).await;
    let start = provider.begin(REDIRECT).await.unwrap();
    let location = fake
        .follow_authorization(&start.authorization_url)
        .await
        .unwrap();
    let good = callback_of(&location);
    assert_eq!(good.iss.as_deref(), Some(fake.issuer()));

    let forged_state = CallbackParams {
        state: Some("attacker-state".into()),
        ..good.clone()
    };
    assert_eq!(
        provider.finish(&start.pending, &forged_state).await,
        Err(UpstreamError::StateMismatch)
    );
    let no_state = CallbackParams {
        state: None,
        ..good.clone()
    };
    assert_eq!(
        provider.finish(&start.pending, &no_state).await,
        Err(UpstreamError::StateMismatch)
    );
    let mixed_up = CallbackParams {
        iss: Some("https://other-idp.example".into()),
        ..good.clone()
    };
    assert_eq!(
        provider.finish(&start.pending, &mixed_up).await,
        Err(UpstreamError::ResponseIssuerMismatch {
            found: "https://other-idp.example".into()
        })
    );
    let denied = CallbackParams {
        code: None,
        error: Some("access_denied".into()),
        error_description: Some("the user said no".into()),
        ..good.clone()
    };
    assert_eq!(
        provider.finish(&start.pending, &denied).await,
        Err(UpstreamError::Denied {
            error: "access_denied".into(),
            description: Some("the user said no".into())
        })
    );
    let other_provider = PendingLogin {
        provider_id: "other".into(),
        ..start.pending.clone()
    };
    assert_eq!(
        provider.finish(&other_provider, &good).await,
        Err(UpstreamError::ProviderMismatch("other".into()))
    );
    assert_eq!(fake.hits(FakeEndpoint::Token), 0);
    // The genuine callback still works afterwards.
    assert_eq!(
        provider.finish(&start.pending, &good).await.unwrap(),
        ada(true)
    );
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_refused() {
    let (fake, provider) = setup(FakeIdpConfig::default(), ProviderKind::Oidc, &options()).await;
    let other = format!(
        "{}/realms/other",
        fake.base_url().as_str().trim_end_matches('/')
    );
    fake.set_discovery_issuer(&other);
    assert_eq!(
        provider.begin(REDIRECT).await.unwrap_err(),
        UpstreamError::IssuerMismatch {
            expected: fake.issuer().into(),
            found: other
        }
    );
}

/// Logs in with the next id_token changed by `tweak`.
async fn login_with_tweak(
    tweak: impl FnOnce(&mut Value, &mut Value) + Send + 'static,
) -> Result<UpstreamIdentity, UpstreamError> {
    let (fake, provider) = setup(FakeIdpConfig::default(), ProviderKind::Oidc, &options()).await;
    fake.tweak_next_id_token(tweak);
    login(&fake, &provider).await
}

#[tokio::test]
async fn id_tokens_with_wrong_claims_are_refused_in_a_login() {
    assert_eq!(
        login_with_tweak(|_, c| c["iss"] = "https://evil.example".into()).await,
        Err(UpstreamError::IdToken(IdTokenError::WrongIssuer {
            found: "https://evil.example".into()
        }))
    );
    assert_eq!(
        login_with_tweak(|_, c| c["aud"] = "another-client".into()).await,
        Err(UpstreamError::IdToken(IdTokenError::WrongAudience))
    );
    assert_eq!(
        login_with_tweak(|_, c| c["aud"] = json!(["assay-test-client", "another-client"])).await,
        Err(UpstreamError::IdToken(IdTokenError::MissingAuthorizedParty))
    );
    assert_eq!(
        login_with_tweak(|_, c| {
            c["aud"] = json!(["assay-test-client", "another-client"]);
            c["azp"] = "another-client".into();
        })
        .await,
        Err(UpstreamError::IdToken(IdTokenError::WrongAuthorizedParty))
    );
    assert_eq!(
        login_with_tweak(|_, c| {
            let now = OffsetDateTime::now_utc().unix_timestamp();
            c["iat"] = (now - 1000).into();
            c["exp"] = (now - 61).into();
        })
        .await,
        Err(UpstreamError::IdToken(IdTokenError::Expired))
    );
    assert_eq!(
        login_with_tweak(|_, c| c["nonce"] = "a-nonce-from-another-login".into()).await,
        Err(UpstreamError::IdToken(IdTokenError::NonceMismatch))
    );
    assert_eq!(
        login_with_tweak(|_, c| {
            c.as_object_mut().unwrap().remove("nonce");
        })
        .await,
        Err(UpstreamError::IdToken(IdTokenError::NonceMismatch))
    );
    assert_eq!(
        login_with_tweak(|h, _| h["kid"] = "not-a-published-key".into()).await,
        Err(UpstreamError::IdToken(IdTokenError::UnknownKid(
            "not-a-published-key".into()
        )))
    );
}

/// A provider with one fetched discovery and JWKS, and a nonce to test tokens with.
async fn validator(options: &UpstreamOptions) -> (FakeIdp, UpstreamProvider) {
    let (fake, provider) = setup(FakeIdpConfig::default(), ProviderKind::Oidc, options).await;
    let good = fake.sign(&fake.header(), &fake.claims("n-1"));
    provider
        .check_id_token(&good, "n-1", OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(fake.hits(FakeEndpoint::Jwks), 1);
    (fake, provider)
}

fn b64(v: &Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn forged_id_tokens_are_refused() {
    let (fake, provider) = validator(&options()).await;
    let now = OffsetDateTime::now_utc();
    let claims = fake.claims("n-1");
    let check = |token: String| {
        let provider = &provider;
        async move { provider.check_id_token(&token, "n-1", now).await }
    };

    // alg none, with and without a signature part.
    let none = format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&claims));
    assert_eq!(
        check(none).await,
        Err(UpstreamError::IdToken(IdTokenError::AlgorithmNotAllowed(
            "none".into()
        )))
    );
    // HS256 keyed with the provider's public key (the algorithm-confusion attack).
    let key = fake.signing_key();
    let hs256_header = jsonwebtoken::Header {
        kid: Some(key.kid.clone()),
        ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
    };
    let hs256 = jsonwebtoken::encode(
        &hs256_header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&key.public_der).unwrap(),
    )
    .unwrap();
    assert_eq!(
        check(hs256).await,
        Err(UpstreamError::IdToken(IdTokenError::AlgorithmNotAllowed(
            "HS256".into()
        )))
    );
    // A claim changed after signing.
    let good = fake.sign(&fake.header(), &claims);
    let parts: Vec<&str> = good.split('.').collect();
    let mut altered = claims.clone();
    altered["email"] = "mallory@example.com".into();
    let tampered = format!("{}.{}.{}", parts[0], b64(&altered), parts[2]);
    assert_eq!(
        check(tampered).await,
        Err(UpstreamError::IdToken(IdTokenError::BadSignature))
    );
    // An EC signature under the kid of the published RSA key.
    let es = FakeIdp::start(FakeIdpConfig {
        signing: FakeSigning::Es256,
        ..FakeIdpConfig::default()
    })
    .await;
    let other_key = es.signing_key();
    let mut header = fake.header();
    header["alg"] = "ES256".into();
    let wrong_family = super::fake_idp::sign_with(&other_key, &header, &claims);
    assert_eq!(
        check(wrong_family).await,
        Err(UpstreamError::IdToken(IdTokenError::KeyAlgorithmMismatch {
            kid: key.kid.clone(),
            alg: "ES256".into()
        }))
    );
    // A header extension nobody understands.
    let mut crit = fake.header();
    crit["crit"] = json!(["exp"]);
    assert_eq!(
        check(fake.sign(&crit, &claims)).await,
        Err(UpstreamError::IdToken(IdTokenError::CriticalHeader))
    );
    // Not yet valid, and issued in the future, beyond the leeway.
    let mut early = claims.clone();
    early["nbf"] = (now.unix_timestamp() + 120).into();
    assert_eq!(
        check(fake.sign(&fake.header(), &early)).await,
        Err(UpstreamError::IdToken(IdTokenError::NotYetValid))
    );
    let mut future = claims.clone();
    future["iat"] = (now.unix_timestamp() + 120).into();
    assert_eq!(
        check(fake.sign(&fake.header(), &future)).await,
        Err(UpstreamError::IdToken(IdTokenError::IssuedInFuture))
    );
    // Within the leeway, a slightly skewed clock is fine.
    let mut skewed = claims.clone();
    skewed["iat"] = (now.unix_timestamp() + 30).into();
    assert!(check(fake.sign(&fake.header(), &skewed)).await.is_ok());
    // No subject.
    let mut anonymous = claims.clone();
    anonymous.as_object_mut().unwrap().remove("sub");
    assert_eq!(
        check(fake.sign(&fake.header(), &anonymous)).await,
        Err(UpstreamError::IdToken(IdTokenError::MissingSubject))
    );
    // None of this caused another JWKS fetch.
    assert_eq!(fake.hits(FakeEndpoint::Jwks), 1);
}

#[tokio::test]
async fn unknown_kids_refetch_the_jwks_at_most_once_per_interval() {
    // Default interval (60 s): the keys were fetched moments ago, so a token under a
    // new key is refused without asking the provider again.
    let (fake, provider) = validator(&options()).await;
    fake.rotate_key();
    let rotated = fake.sign(&fake.header(), &fake.claims("n-1"));
    for _ in 0..3 {
        assert_eq!(
            provider
                .check_id_token(&rotated, "n-1", OffsetDateTime::now_utc())
                .await,
            Err(UpstreamError::IdToken(IdTokenError::UnknownKid(
                "rsa-2".into()
            )))
        );
    }
    assert_eq!(fake.hits(FakeEndpoint::Jwks), 1);

    // With the interval elapsed, one refetch finds the rotated key.
    let eager = UpstreamOptions {
        jwks_min_refetch_interval: Duration::ZERO,
        ..options()
    };
    let (fake, provider) = validator(&eager).await;
    fake.rotate_key();
    let rotated = fake.sign(&fake.header(), &fake.claims("n-1"));
    let claims = provider
        .check_id_token(&rotated, "n-1", OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(claims.subject, "248289761001");
    assert_eq!(fake.hits(FakeEndpoint::Jwks), 2);
    // A kid the provider never published costs one fetch, and is refused.
    let mut header = fake.header();
    header["kid"] = "made-up".into();
    assert_eq!(
        provider
            .check_id_token(
                &fake.sign(&header, &fake.claims("n-1")),
                "n-1",
                OffsetDateTime::now_utc()
            )
            .await,
        Err(UpstreamError::IdToken(IdTokenError::UnknownKid(
            "made-up".into()
        )))
    );
    assert_eq!(fake.hits(FakeEndpoint::Jwks), 3);
}

#[tokio::test]
async fn unverified_emails_are_not_admitted() {
    let config = FakeIdpConfig {
        user: FakeUser {
            email_verified: false,
            ..FakeUser::default()
        },
        ..FakeIdpConfig::default()
    };
    let (fake, provider) = setup(config.clone(), ProviderKind::Oidc, &options()).await;
    let identity = login(&fake, &provider).await.unwrap();
    assert_eq!(identity, ada(false));
    assert_eq!(
        identity.admitted_email(&provider.settings().email_policy),
        Err(UpstreamError::EmailUnverified)
    );

    let (fake, provider) = setup(config, ProviderKind::GitHub, &options()).await;
    let identity = login(&fake, &provider).await.unwrap();
    assert!(!identity.email_verified);
    assert_eq!(
        identity.admitted_email(&provider.settings().email_policy),
        Err(UpstreamError::EmailUnverified)
    );
}

#[tokio::test]
async fn oversized_responses_are_refused() {
    let limit = options().http.max_body_bytes;
    let too_large = |what| Err::<(), _>(UpstreamError::TooLarge { what, limit });

    // Declared by Content-Length.
    let (fake, provider) = setup(FakeIdpConfig::default(), ProviderKind::Oidc, &options()).await;
    fake.pad(FakeEndpoint::Discovery, limit, false);
    assert_eq!(
        provider.begin(REDIRECT).await.map(drop),
        too_large("discovery document")
    );

    // Streamed without Content-Length: counted while reading.
    let (fake, provider) = setup(FakeIdpConfig::default(), ProviderKind::Oidc, &options()).await;
    fake.pad(FakeEndpoint::Jwks, limit, true);
    assert_eq!(login(&fake, &provider).await.map(drop), too_large("JWKS"));

    let (fake, provider) = setup(FakeIdpConfig::default(), ProviderKind::Oidc, &options()).await;
    fake.pad(FakeEndpoint::Token, limit, true);
    assert_eq!(login(&fake, &provider).await.map(drop), too_large("token"));

    let (fake, provider) = setup(FakeIdpConfig::default(), ProviderKind::GitHub, &options()).await;
    fake.pad(FakeEndpoint::GitHubEmails, limit, false);
    assert_eq!(
        login(&fake, &provider).await.map(drop),
        too_large("user emails")
    );

    // Just under the limit is fine.
    let (fake, provider) = setup(FakeIdpConfig::default(), ProviderKind::Oidc, &options()).await;
    fake.pad(FakeEndpoint::Jwks, limit - 2048, true);
    assert_eq!(login(&fake, &provider).await.unwrap(), ada(true));
}

#[tokio::test]
async fn github_login() {
    let (fake, provider) = setup(FakeIdpConfig::default(), ProviderKind::GitHub, &options()).await;
    let start = provider.begin(REDIRECT).await.unwrap();
    let url = &start.authorization_url;
    assert_eq!(
        url.as_str().split('?').next().unwrap(),
        format!("{}login/oauth/authorize", fake.base_url())
    );
    let q = query(url);
    assert_eq!(q["client_id"], "assay-test-client");
    assert_eq!(q["redirect_uri"], REDIRECT);
    assert_eq!(q["scope"], "read:user user:email");
    assert_eq!(q["state"], start.pending.state);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(
        q["code_challenge"],
        crate::pkce::s256_challenge(&start.pending.code_verifier)
    );
    assert!(!q.contains_key("nonce"));
    assert_eq!(start.pending.nonce, None);

    let location = fake.follow_authorization(url).await.unwrap();
    let identity = provider
        .finish(&start.pending, &callback_of(&location))
        .await
        .unwrap();
    assert_eq!(
        identity,
        UpstreamIdentity {
            provider_id: "test".into(),
            subject: "583231".into(),
            email: Some("ada@example.com".into()),
            email_verified: true,
            name: Some("Ada Lovelace".into()),
        }
    );
    assert_eq!(fake.hits(FakeEndpoint::GitHubUser), 1);
    assert_eq!(fake.hits(FakeEndpoint::GitHubEmails), 1);

    // The code is single use; GitHub reports that with 200 and an error body.
    assert_eq!(
        provider
            .finish(&start.pending, &callback_of(&location))
            .await,
        Err(UpstreamError::TokenRefused {
            error: "bad_verification_code".into(),
            description: Some("fake GitHub: bad_verification_code".into())
        })
    );
}

#[tokio::test]
async fn github_refusals() {
    // A wrong PKCE verifier.
    let (fake, provider) = setup(FakeIdpConfig::default(), ProviderKind::GitHub, &options()).await;
    let start = provider.begin(REDIRECT).await.unwrap();
    let location = fake
        .follow_authorization(&start.authorization_url)
        .await
        .unwrap();
    let mut pending = start.pending.clone();
    pending.code_verifier = "a".repeat(43);
    assert_eq!(
        provider.finish(&pending, &callback_of(&location)).await,
        Err(UpstreamError::TokenRefused {
            error: "bad_verification_code".into(),
            description: Some("fake GitHub: bad_verification_code".into())
        })
    );

    // A wrong client secret.
    let mut wrong = settings(&fake, ProviderKind::GitHub);
    wrong.client_secret = ClientSecret::new("nope");
    let provider = UpstreamProvider::new(wrong, &options()).unwrap();
    assert_eq!(
        login(&fake, &provider).await,
        Err(UpstreamError::TokenRefused {
            error: "incorrect_client_credentials".into(),
            description: Some("fake GitHub: incorrect_client_credentials".into())
        })
    );

    // No primary address.
    let config = FakeIdpConfig {
        github_emails: Some(vec![
            json!({"email": "ada@example.com", "primary": false, "verified": true}),
        ]),
        ..FakeIdpConfig::default()
    };
    let (fake, provider) = setup(config, ProviderKind::GitHub, &options()).await;
    assert_eq!(
        login(&fake, &provider).await,
        Err(UpstreamError::NoPrimaryEmail)
    );
}

#[test]
fn provider_error_texts_are_bounded() {
    let long = "é".repeat(500);
    let body =
        serde_json::to_vec(&json!({"error": "invalid_grant", "error_description": long})).unwrap();
    let (error, description) = oauth_error(&body).unwrap();
    assert_eq!(error, "invalid_grant");
    assert_eq!(description.unwrap(), format!("{}…", "é".repeat(200)));
    assert_eq!(oauth_error(b"<html>busy</html>"), None);
}

#[test]
fn token_refusals_carry_the_bounded_oauth_error_or_the_status() {
    let long = "é".repeat(500);
    let refusal = http::BoundedResponse {
        // GitHub's way: 200 with an error body.
        status: 200,
        body: serde_json::to_vec(
            &json!({"error": "bad_verification_code", "error_description": long}),
        )
        .unwrap(),
    };
    assert_eq!(
        token_refusal(&refusal),
        UpstreamError::TokenRefused {
            error: "bad_verification_code".into(),
            description: Some(format!("{}…", "é".repeat(200))),
        }
    );
    let busy = http::BoundedResponse {
        status: 502,
        body: b"<html>busy</html>".to_vec(),
    };
    assert_eq!(
        token_refusal(&busy),
        UpstreamError::Status {
            what: "token",
            status: 502,
        }
    );
}
