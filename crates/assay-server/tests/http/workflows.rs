//! Workflow and template documents: create, get (JSON and verbatim YAML), put, delete.

use crate::support::{TestApp, expect_problem};
use serde_json::Value;

/// Comments, odd spacing and key order that a re-serialization would lose.
const CHECKOUT: &str = "\
# The checkout smoke test.   
kind: TestWorkflow
apiVersion: testworkflows.testkube.io/v1
metadata:
  name: checkout
  labels: {team: shop,   tier: '1'}
  description: Checks out.
spec:
  steps:
    - name: pay
      shell: |
        echo paying
";

#[tokio::test]
async fn create_get_put_and_delete_a_workflow() {
    let app = TestApp::start().await;

    // Create: 201, Location, the detail.
    let res = app
        .client
        .post(app.env_url("/workflows"))
        .header("content-type", "text/yaml")
        .body(CHECKOUT)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(
        res.headers()["location"],
        app.env_url("/workflows/checkout").as_str()
    );
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["name"], "checkout");
    assert_eq!(created["kind"], "workflow");
    assert_eq!(created["source"], CHECKOUT);
    assert_eq!(
        created["labels"],
        serde_json::json!({"team": "shop", "tier": "1"})
    );

    // Creating it again conflicts.
    let res = app
        .client
        .post(app.env_url("/workflows"))
        .header("content-type", "text/yaml")
        .body(CHECKOUT)
        .send()
        .await
        .unwrap();
    expect_problem(res, 409, "conflict").await;

    // Get as JSON.
    let res = app
        .client
        .get(app.env_url("/workflows/checkout"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let got: Value = res.json().await.unwrap();
    assert_eq!(got["name"], "checkout");
    assert_eq!(got["source"], CHECKOUT);

    // Get as YAML: the bytes as submitted.
    let res = app
        .client
        .get(app.env_url("/workflows/checkout"))
        .header("accept", "text/yaml")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/yaml; charset=utf-8");
    assert_eq!(res.text().await.unwrap(), CHECKOUT);

    // List.
    let page: Value = app
        .client
        .get(app.env_url("/workflows?search=check"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["name"], "checkout");

    // Delete, then it is gone.
    let res = app
        .client
        .delete(app.env_url("/workflows/checkout"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(res.content_length(), Some(0));
    let res = app
        .client
        .get(app.env_url("/workflows/checkout"))
        .send()
        .await
        .unwrap();
    expect_problem(res, 404, "not-found").await;
    let res = app
        .client
        .delete(app.env_url("/workflows/checkout"))
        .send()
        .await
        .unwrap();
    expect_problem(res, 404, "not-found").await;
}

#[tokio::test]
async fn put_creates_then_replaces() {
    let app = TestApp::start().await;
    let put = |body: String| {
        app.client
            .put(app.env_url("/workflows/checkout"))
            .header("content-type", "application/yaml")
            .body(body)
            .send()
    };
    let res = put(CHECKOUT.to_owned()).await.unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(
        res.headers()["location"],
        app.env_url("/workflows/checkout").as_str()
    );
    let changed = CHECKOUT.replace("Checks out.", "Checks out, again.");
    let res = put(changed.clone()).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("location").is_none());
    let detail: Value = res.json().await.unwrap();
    assert_eq!(detail["description"], "Checks out, again.");
    assert_eq!(detail["source"], changed);

    // The name in the document must be the name in the URL.
    let res = app
        .client
        .put(app.env_url("/workflows/other"))
        .header("content-type", "text/yaml")
        .body(CHECKOUT)
        .send()
        .await
        .unwrap();
    let body = expect_problem(res, 422, "invalid").await;
    assert_eq!(body["errors"][0]["path"], "metadata.name");
    let res = app
        .client
        .get(app.env_url("/workflows/other"))
        .send()
        .await
        .unwrap();
    expect_problem(res, 404, "not-found").await;

    // If-Match: * only replaces.
    let res = app
        .client
        .put(app.env_url("/workflows/ghost"))
        .header("content-type", "text/yaml")
        .header("if-match", "*")
        .body(CHECKOUT.replace("name: checkout", "name: ghost"))
        .send()
        .await
        .unwrap();
    expect_problem(res, 404, "not-found").await;
    let res = app
        .client
        .put(app.env_url("/workflows/checkout"))
        .header("content-type", "text/yaml")
        .header("if-match", "*")
        .body(CHECKOUT)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn templates_have_the_same_routes() {
    let app = TestApp::start().await;
    let template = "\
kind: TestWorkflowTemplate
metadata:
  name: greet
spec:
  steps:
  - shell: echo hi
";
    let res = app
        .client
        .post(app.env_url("/templates"))
        .header("content-type", "text/yaml")
        .body(template)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(
        res.headers()["location"],
        app.env_url("/templates/greet").as_str()
    );
    let res = app
        .client
        .get(app.env_url("/templates/greet"))
        .header("accept", "application/yaml")
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), template);
    let page: Value = app
        .client
        .get(app.env_url("/templates"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["kind"], "template");
    // A template is not a workflow.
    let res = app
        .client
        .get(app.env_url("/workflows/greet"))
        .send()
        .await
        .unwrap();
    expect_problem(res, 404, "not-found").await;
    let res = app
        .client
        .delete(app.env_url("/templates/greet"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
}
