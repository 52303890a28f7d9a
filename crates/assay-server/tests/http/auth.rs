//! Bearer authentication at the edge.

use crate::support::{TestApp, expect_problem, http_client};

#[tokio::test]
async fn a_request_without_a_token_is_401_with_a_bearer_challenge() {
    let app = TestApp::start().await;
    let res = app
        .anon
        .get(app.env_url("/workflows"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["www-authenticate"], r#"Bearer realm="assay""#);
    let body = expect_problem(res, 401, "unauthenticated").await;
    assert_eq!(
        body["detail"],
        "missing bearer token; pass Authorization: Bearer <token>"
    );
}

#[tokio::test]
async fn an_unknown_token_is_401_invalid_token() {
    let app = TestApp::start().await;
    let res = http_client(Some("assay_not_a_real_token"))
        .get(app.env_url("/workflows"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer realm="assay", error="invalid_token""#
    );
    let body = expect_problem(res, 401, "unauthenticated").await;
    assert!(
        !body["detail"]
            .as_str()
            .unwrap()
            .contains("assay_not_a_real_token")
    );
}

#[tokio::test]
async fn tokens_in_the_query_string_or_other_schemes_are_ignored() {
    let app = TestApp::start().await;
    for query in ["access_token", "token", "bearer"] {
        let url = format!("{}?{query}={}", app.env_url("/workflows"), app.token);
        let res = app.anon.get(url).send().await.unwrap();
        assert_eq!(res.headers()["www-authenticate"], r#"Bearer realm="assay""#);
        expect_problem(res, 401, "unauthenticated").await;
    }
    let res = app
        .anon
        .get(app.env_url("/workflows"))
        .header("authorization", format!("Basic {}", app.token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["www-authenticate"], r#"Bearer realm="assay""#);
    expect_problem(res, 401, "unauthenticated").await;
}

#[tokio::test]
async fn the_bootstrap_admin_token_is_accepted() {
    let app = TestApp::start().await;
    let res = app
        .client
        .get(app.env_url("/workflows"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let page: serde_json::Value = res.json().await.unwrap();
    assert_eq!(page["total"], 0);
    assert_eq!(page["items"], serde_json::json!([]));
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_environment_is_404_not_403() {
    let app = TestApp::start().await;
    let res = app
        .client
        .get(app.url("/v1/organizations/default/environments/nope/workflows"))
        .send()
        .await
        .unwrap();
    expect_problem(res, 404, "not-found").await;
}

#[tokio::test]
async fn a_token_addressed_to_another_organization_is_401_whether_it_exists_or_not() {
    let app = TestApp::start().await;
    // "other" does not exist; the answer is the one a real other organization would get,
    // so it tells nothing about which organizations exist.
    for path in [
        "/v1/organizations/other/environments/dev/workflows",
        "/v1/organizations/other/members",
    ] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(
            res.headers()["www-authenticate"],
            r#"Bearer realm="assay", error="invalid_token""#
        );
        let body = expect_problem(res, 401, "unauthenticated").await;
        assert_eq!(body["detail"], assay_control::auth::OTHER_ORGANIZATION);
    }
}
