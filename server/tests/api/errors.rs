//! Bad input gets a problem document with a message a person can act on: never a 500.

use reqwest::StatusCode;

use crate::helpers::{problem, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_400() {
    let app = spawn_app().await;
    let c = app.bearer(&app.token("admin").await);
    let res = c
        .post(app.url("/api/v1/tenants"))
        .header("content-type", "application/json")
        .body("{\"slug\": ")
        .send()
        .await
        .unwrap();
    let body = problem(res, 400).await;
    assert!(
        body["detail"].as_str().unwrap().contains("line 1"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_types_are_422_naming_the_field() {
    let app = spawn_app().await;
    let c = app.bearer(&app.token("admin").await);
    let res = c
        .post(app.url("/api/v1/users"))
        .json(&serde_json::json!({"username": "zed", "role": "root", "password": "long-enough-password"}))
        .send()
        .await
        .unwrap();
    let body = problem(res, 422).await;
    assert!(body["detail"].as_str().unwrap().contains("root"), "{body}");
    let res = c
        .post(app.url("/api/v1/tenants"))
        .json(&serde_json::json!({"slug": 42, "name": "Numbers"}))
        .send()
        .await
        .unwrap();
    let body = problem(res, 422).await;
    assert!(body["detail"].as_str().unwrap().contains("slug"), "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_values_name_the_field_and_the_fix() {
    let app = spawn_app().await;
    let c = app.bearer(&app.token("admin").await);
    let res = c
        .post(app.url("/api/v1/tenants"))
        .json(&serde_json::json!({"slug": "Bad Slug!", "name": "x"}))
        .send()
        .await
        .unwrap();
    let body = problem(res, 422).await;
    assert_eq!(body["field"], "slug");
    assert!(
        body["detail"].as_str().unwrap().contains("lowercase"),
        "{body}"
    );
    let res = c
        .post(app.url("/api/v1/users"))
        .json(&serde_json::json!({"username": "newbie", "role": "partner", "password": "short"}))
        .send()
        .await
        .unwrap();
    let body = problem(res, 422).await;
    assert_eq!(body["field"], "password");
    let res = c
        .post(app.url("/api/v1/users"))
        .json(&serde_json::json!({"username": "newbie", "role": "partner", "password": "long-enough-password"}))
        .send()
        .await
        .unwrap();
    let body = problem(res, 422).await;
    assert_eq!(body["field"], "tenant");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_409() {
    let app = spawn_app().await;
    let c = app.bearer(&app.token("admin").await);
    let res = c
        .post(app.url("/api/v1/tenants"))
        .json(&serde_json::json!({"slug": "acme", "name": "Acme again"}))
        .send()
        .await
        .unwrap();
    let body = problem(res, 409).await;
    assert!(body["detail"].as_str().unwrap().contains("acme"), "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_media_type_is_415() {
    let app = spawn_app().await;
    let c = app.bearer(&app.token("admin").await);
    let res = c
        .post(app.url("/api/v1/tenants"))
        .header("content-type", "text/plain")
        .body("slug=acme")
        .send()
        .await
        .unwrap();
    problem(res, 415).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_are_413() {
    let app = spawn_app().await;
    let c = app.bearer(&app.token("admin").await);
    let huge = format!("{{\"slug\":\"x\",\"name\":\"{}\"}}", "a".repeat(200 * 1024));
    let res = c
        .post(app.url("/api/v1/tenants"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    let body = problem(res, 413).await;
    assert!(
        body["detail"].as_str().unwrap().contains("larger"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_are_problems() {
    let app = spawn_app().await;
    let c = app.client();
    let res = c.get(app.url("/api/v1/nothing-here")).send().await.unwrap();
    let body = problem(res, 404).await;
    assert!(
        body["detail"].as_str().unwrap().contains("openapi.json"),
        "{body}"
    );
    let res = c.put(app.url("/api/v1/version")).send().await.unwrap();
    problem(res, 405).await;
    // Portal paths that match nothing get the portal's not-found page.
    let res = c.get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res.text().await.unwrap().contains("Not found"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_are_431() {
    let app = spawn_app().await;
    let res = app
        .client()
        .get(app.url("/api/v1/version"))
        .header("x-padding", "p".repeat(20 * 1024))
        .send()
        .await
        .unwrap();
    let body = problem(res, 431).await;
    assert!(body["detail"].as_str().unwrap().contains("limit"), "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_paths_and_queries_never_cause_a_500() {
    let app = spawn_app().await;
    let c = app.bearer(&app.token("partner-acme").await);
    for path in [
        "/api/v1/tenants/%00",
        "/api/v1/tenants/..%2F..%2Fetc%2Fpasswd",
        "/api/v1/users/%E2%80%AE",
        "/api/v1/tokens/'%20OR%201=1--",
        "/api/v1/tenants/acme/members?x=%ff",
        "/api/v1/tenants/%ff%fe",
        "/pkg/../../Cargo.toml",
    ] {
        let res = c.get(app.url(path)).send().await.unwrap();
        assert!(!res.status().is_server_error(), "{path}: {}", res.status());
    }
    app.stop().await;
}
