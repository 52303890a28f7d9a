#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use ed25519_dalek::Signer as _;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use serde_json::{Value, json};

const ISS: &str = "https://assay.example";
const AUD: &str = "https://assay.example/organizations/acme/environments/prod/mcp";
const HOUR: Duration = Duration::from_secs(3600);
const LEEWAY: Duration = Duration::from_secs(30);

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn request() -> AccessTokenRequest<'static> {
    AccessTokenRequest {
        subject: "0190d1c2-0000-7000-8000-000000000001",
        audience: AUD,
        client_id: "https://client.example/cimd.json",
        scope: McpScope::Run,
        lifetime: HOUR,
        grant_id: "0190d1c2-0000-7000-8000-0000000000aa",
        session_id: Some("0190d1c2-0000-7000-8000-0000000000bb"),
    }
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// Signs any header and payload with `key`, for tokens the issuer would never make.
fn sign_raw(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let dalek = ed25519_dalek::SigningKey::from_pkcs8_der(&key.to_pkcs8_der()).unwrap();
    let message = format!("{}.{}", b64(header), b64(claims));
    let signature = dalek.sign(message.as_bytes());
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

fn good_claims() -> Value {
    let t = now().unix_timestamp();
    json!({
        "iss": ISS, "sub": "u1", "aud": AUD, "client_id": "c1", "scope": "mcp:read",
        "iat": t, "exp": t + 3600, "jti": "j1", "gid": "g1"
    })
}

fn header(ring: &KeyRing) -> Value {
    json!({"alg": "EdDSA", "typ": "at+jwt", "kid": ring.current().kid()})
}

fn validate(ring: &KeyRing, token: &str) -> Result<AccessTokenClaims, JwtError> {
    ring.validate(token, ISS, &[AUD], now(), LEEWAY)
}

#[test]
fn issue_then_validate() {
    let ring = KeyRing::generate().unwrap();
    let (token, claims) = ring.issue(ISS, &request(), now()).unwrap();
    assert_eq!(validate(&ring, &token), Ok(claims.clone()));
    assert_eq!(claims.iss, ISS);
    assert_eq!(claims.aud, AUD);
    assert_eq!(claims.scope, "mcp:read mcp:run");
    assert_eq!(claims.mcp_scope(), Ok(Some(McpScope::Run)));
    assert_eq!(claims.iat, now().unix_timestamp());
    assert_eq!(claims.exp, now().unix_timestamp() + 3600);
    assert_eq!(URL_SAFE_NO_PAD.decode(&claims.jti).unwrap().len(), 16);
    assert_eq!(
        claims.sid.as_deref(),
        Some("0190d1c2-0000-7000-8000-0000000000bb")
    );

    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.kid.as_deref(), Some(ring.current().kid()));

    let (second, second_claims) = ring.issue(ISS, &request(), now()).unwrap();
    assert_ne!(second, token);
    assert_ne!(second_claims.jti, claims.jti);
}

#[test]
fn rfc_8037_signature_vector() {
    let seed: [u8; 32] = URL_SAFE_NO_PAD
        .decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
        .unwrap()
        .try_into()
        .unwrap();
    let dalek = ed25519_dalek::SigningKey::from_bytes(&seed);
    let der = ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_der(&dalek).unwrap();
    let key = SigningKey::from_pkcs8_der(der.as_bytes()).unwrap();
    let message = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), key.encoding(), Algorithm::EdDSA).unwrap();
    assert_eq!(
        signature,
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
    );
}

#[test]
fn previous_key_still_validates_dropped_key_does_not() {
    let mut ring = KeyRing::generate().unwrap();
    let (old, _) = ring.issue(ISS, &request(), now()).unwrap();
    ring.rotate().unwrap();
    assert!(validate(&ring, &old).is_ok());
    let (new, _) = ring.issue(ISS, &request(), now()).unwrap();
    assert!(validate(&ring, &new).is_ok());
    let old_kid = ring.previous().unwrap().kid().to_owned();
    ring.rotate().unwrap();
    assert_eq!(validate(&ring, &old), Err(JwtError::UnknownKid(old_kid)));
    assert!(validate(&ring, &new).is_ok());
}

#[test]
fn token_from_another_ring_is_refused() {
    let ring = KeyRing::generate().unwrap();
    let other = KeyRing::generate().unwrap();
    let (token, _) = other.issue(ISS, &request(), now()).unwrap();
    assert_eq!(
        validate(&ring, &token),
        Err(JwtError::UnknownKid(other.current().kid().to_owned()))
    );
    // Same kid, different key: the signature decides.
    let forged = sign_raw(other.current(), &header(&ring), &good_claims());
    assert_eq!(validate(&ring, &forged), Err(JwtError::BadSignature));
}

#[test]
fn algorithm_is_pinned() {
    let ring = KeyRing::generate().unwrap();
    let kid = ring.current().kid();
    let claims = b64(&good_claims());
    let cases: &[(Value, &str)] = &[
        (json!("none"), "none"),
        (json!("None"), "None"),
        (json!("NONE"), "NONE"),
        (json!("HS256"), "HS256"),
        (json!("HS512"), "HS512"),
        (json!("RS256"), "RS256"),
        (json!("PS256"), "PS256"),
        (json!("ES256"), "ES256"),
        (json!("Ed25519"), "Ed25519"),
        (json!("eddsa"), "eddsa"),
        (json!("EdDSA "), "EdDSA "),
        (json!(""), ""),
        (json!(null), "null"),
        (json!(["EdDSA"]), "[\"EdDSA\"]"),
    ];
    for (alg, shown) in cases {
        let h = json!({"alg": alg, "typ": "at+jwt", "kid": kid});
        // Any signature: the algorithm is refused before the signature is looked at.
        for sig in ["", "c2ln"] {
            let token = format!("{}.{claims}.{sig}", b64(&h));
            let expected = if sig.is_empty() {
                JwtError::Malformed
            } else {
                JwtError::UnsupportedAlgorithm((*shown).to_owned())
            };
            assert_eq!(validate(&ring, &token), Err(expected), "{alg} sig={sig:?}");
        }
    }
    let h = json!({"typ": "at+jwt", "kid": kid});
    let token = format!("{}.{claims}.c2ln", b64(&h));
    assert_eq!(
        validate(&ring, &token),
        Err(JwtError::UnsupportedAlgorithm("(missing)".into()))
    );
    // HS256 "signed" with the public key as the HMAC secret, the classic confusion:
    // refused by name, whatever the MAC.
    let x = ring.current().public_jwk()["x"]
        .as_str()
        .unwrap()
        .to_owned();
    let hs = jsonwebtoken::encode(
        &{
            let mut h = Header::new(Algorithm::HS256);
            h.typ = Some("at+jwt".into());
            h.kid = Some(kid.to_owned());
            h
        },
        &good_claims(),
        &jsonwebtoken::EncodingKey::from_secret(x.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        validate(&ring, &hs),
        Err(JwtError::UnsupportedAlgorithm("HS256".into()))
    );
}

#[test]
fn header_allow_list() {
    let ring = KeyRing::generate().unwrap();
    let kid = ring.current().kid();
    for member in [
        "jku", "x5u", "jwk", "x5c", "x5t", "x5t#S256", "crit", "b64", "cty", "zip", "enc", "custom",
    ] {
        let mut h = header(&ring);
        h[member] = json!("https://attacker.example/jwks.json");
        let token = sign_raw(ring.current(), &h, &good_claims());
        assert_eq!(
            validate(&ring, &token),
            Err(JwtError::ForbiddenHeader(member.to_owned())),
            "{member}"
        );
    }
    let typ_cases: &[(Option<Value>, Result<(), JwtError>)] = &[
        (Some(json!("at+jwt")), Ok(())),
        (Some(json!("AT+JWT")), Ok(())),
        (Some(json!("application/at+jwt")), Ok(())),
        (
            Some(json!("JWT")),
            Err(JwtError::WrongType(Some("JWT".into()))),
        ),
        (
            Some(json!("jwt")),
            Err(JwtError::WrongType(Some("jwt".into()))),
        ),
        (
            Some(json!("at+jwt ")),
            Err(JwtError::WrongType(Some("at+jwt ".into()))),
        ),
        (Some(json!(1)), Err(JwtError::WrongType(Some("1".into())))),
        (None, Err(JwtError::WrongType(None))),
    ];
    for (typ, expected) in typ_cases {
        let mut h = json!({"alg": "EdDSA", "kid": kid});
        if let Some(t) = typ {
            h["typ"] = t.clone();
        }
        let token = sign_raw(ring.current(), &h, &good_claims());
        assert_eq!(validate(&ring, &token).map(|_| ()), *expected, "{typ:?}");
    }
    let kid_cases: &[(Option<Value>, JwtError)] = &[
        (None, JwtError::MissingKid),
        (Some(json!("")), JwtError::MissingKid),
        (Some(json!(7)), JwtError::MissingKid),
        (Some(json!("nope")), JwtError::UnknownKid("nope".into())),
    ];
    for (kid, expected) in kid_cases {
        let mut h = json!({"alg": "EdDSA", "typ": "at+jwt"});
        if let Some(k) = kid {
            h["kid"] = k.clone();
        }
        let token = sign_raw(ring.current(), &h, &good_claims());
        assert_eq!(validate(&ring, &token), Err(expected.clone()), "{kid:?}");
    }
}

#[test]
fn structure() {
    let ring = KeyRing::generate().unwrap();
    let (token, _) = ring.issue(ISS, &request(), now()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let cases: Vec<(String, JwtError)> = vec![
        (String::new(), JwtError::Malformed),
        ("abc".into(), JwtError::Malformed),
        (format!("{}.{}", parts[0], parts[1]), JwtError::Malformed),
        (format!("{token}.x"), JwtError::Malformed),
        (format!("{token}.x.y"), JwtError::Malformed),
        (format!("{}.{}.", parts[0], parts[1]), JwtError::Malformed),
        (
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
            JwtError::Malformed,
        ),
        (format!("!!.{}.{}", parts[1], parts[2]), JwtError::Malformed),
        (
            format!("{}.{}.{}", b64(&json!("str")), parts[1], parts[2]),
            JwtError::Malformed,
        ),
        ("a".repeat(MAX_TOKEN_LEN + 1), JwtError::TooLarge),
    ];
    for (t, expected) in cases {
        assert_eq!(validate(&ring, &t), Err(expected), "{t:.60}");
    }
    // A flipped payload or signature byte breaks the signature.
    let mut claims = good_claims();
    claims["scope"] = json!("mcp:read mcp:run mcp:write");
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    assert_eq!(validate(&ring, &tampered), Err(JwtError::BadSignature));
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[0] ^= 1;
    let tampered = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
    assert_eq!(validate(&ring, &tampered), Err(JwtError::BadSignature));
}

#[test]
fn issuer_and_audience_are_exact() {
    let ring = KeyRing::generate().unwrap();
    let (token, _) = ring.issue(ISS, &request(), now()).unwrap();
    for iss in [
        "https://assay.example/",
        "https://ASSAY.example",
        "http://assay.example",
        "https://assay.example.evil",
        "",
    ] {
        assert_eq!(
            ring.validate(&token, iss, &[AUD], now(), LEEWAY),
            Err(JwtError::WrongIssuer),
            "{iss}"
        );
    }
    let other_env = "https://assay.example/organizations/acme/environments/dev/mcp";
    for auds in [
        vec![other_env],
        vec![&AUD[..AUD.len() - 1]],
        vec!["https://assay.example/organizations/acme/environments/prod/mcp/"],
        vec!["https://assay.example"],
        vec![],
    ] {
        assert_eq!(
            ring.validate(&token, ISS, &auds, now(), LEEWAY),
            Err(JwtError::WrongAudience),
            "{auds:?}"
        );
    }
    assert!(
        ring.validate(&token, ISS, &[other_env, AUD], now(), LEEWAY)
            .is_ok()
    );

    // An audience array is not what this issuer makes.
    let mut claims = good_claims();
    claims["aud"] = json!([AUD]);
    let token = sign_raw(ring.current(), &header(&ring), &claims);
    assert!(matches!(
        validate(&ring, &token),
        Err(JwtError::InvalidClaims(_))
    ));
}

#[test]
fn required_claims() {
    let ring = KeyRing::generate().unwrap();
    for missing in [
        "iss",
        "sub",
        "aud",
        "client_id",
        "scope",
        "iat",
        "exp",
        "jti",
        "gid",
    ] {
        let mut claims = good_claims();
        claims.as_object_mut().unwrap().remove(missing);
        let token = sign_raw(ring.current(), &header(&ring), &claims);
        match validate(&ring, &token) {
            Err(JwtError::InvalidClaims(msg)) => assert!(msg.contains(missing), "{missing}: {msg}"),
            other => panic!("{missing}: {other:?}"),
        }
    }
    // `sid` is optional: tokens signed before it existed still validate, without one.
    let token = sign_raw(ring.current(), &header(&ring), &good_claims());
    assert_eq!(validate(&ring, &token).unwrap().sid, None);
    let mut claims = good_claims();
    claims["sid"] = json!("s1");
    let token = sign_raw(ring.current(), &header(&ring), &claims);
    assert_eq!(validate(&ring, &token).unwrap().sid.as_deref(), Some("s1"));
    // A token issued outside any session has no `sid` member at all.
    let (token, claims) = ring
        .issue(
            ISS,
            &AccessTokenRequest {
                session_id: None,
                ..request()
            },
            now(),
        )
        .unwrap();
    assert_eq!(claims.sid, None);
    let payload = URL_SAFE_NO_PAD
        .decode(token.split('.').nth(1).unwrap())
        .unwrap();
    let payload: Value = serde_json::from_slice(&payload).unwrap();
    assert!(payload.get("sid").is_none());
    let mut claims = good_claims();
    claims["exp"] = json!("tomorrow");
    let token = sign_raw(ring.current(), &header(&ring), &claims);
    assert!(matches!(
        validate(&ring, &token),
        Err(JwtError::InvalidClaims(_))
    ));
}

#[test]
fn time_claims_with_leeway() {
    let ring = KeyRing::generate().unwrap();
    let t = now().unix_timestamp();
    let leeway = 30;
    let cases: &[(&str, i64, Result<(), JwtError>)] = &[
        // exp: valid strictly before exp + leeway.
        ("exp", t + 1, Ok(())),
        ("exp", t, Ok(())),
        ("exp", t - leeway + 1, Ok(())),
        ("exp", t - leeway, Err(JwtError::Expired)),
        ("exp", t - 3600, Err(JwtError::Expired)),
        // nbf: valid when nbf <= now + leeway.
        ("nbf", t + leeway, Ok(())),
        ("nbf", t + leeway + 1, Err(JwtError::NotYetValid)),
        // iat: not after now + leeway.
        ("iat", t + leeway, Ok(())),
        ("iat", t + leeway + 1, Err(JwtError::IssuedInFuture)),
    ];
    for (claim, value, expected) in cases {
        let mut claims = good_claims();
        claims[*claim] = json!(value);
        let token = sign_raw(ring.current(), &header(&ring), &claims);
        assert_eq!(
            validate(&ring, &token).map(|_| ()),
            *expected,
            "{claim}={}",
            value - t
        );
    }
    // Issued tokens expire after their lifetime.
    let (token, _) = ring.issue(ISS, &request(), now()).unwrap();
    let later = now() + time::Duration::seconds(3600 + 30);
    assert_eq!(
        ring.validate(&token, ISS, &[AUD], later, LEEWAY),
        Err(JwtError::Expired)
    );
    let earlier = now() - time::Duration::seconds(31);
    assert_eq!(
        ring.validate(&token, ISS, &[AUD], earlier, LEEWAY),
        Err(JwtError::IssuedInFuture)
    );
}

#[test]
fn lifetime_bounds() {
    let ring = KeyRing::generate().unwrap();
    let mut r = request();
    r.lifetime = Duration::ZERO;
    assert_eq!(
        ring.issue(ISS, &r, now()).unwrap_err(),
        JwtError::InvalidLifetime
    );
    r.lifetime = Duration::from_secs(u64::MAX);
    assert_eq!(
        ring.issue(ISS, &r, now()).unwrap_err(),
        JwtError::InvalidLifetime
    );
}
