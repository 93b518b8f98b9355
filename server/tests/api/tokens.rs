//! API tokens: shown once, hashed at rest, bearer authentication, revocation.

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::Value;

use crate::helpers::{problem, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_shown_once_and_stored_hashed() {
    let app = spawn_app().await;
    let s = app.session("partner-acme").await;
    let res = s
        .client
        .post(app.url("/api/v1/tokens"))
        .header("x-csrf-token", &s.csrf)
        .json(&serde_json::json!({"name": "laptop", "expires_in_days": 30}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("stl_"));
    assert!(created["token"]["expires_at"].is_string());

    let list = s
        .client
        .get(app.url("/api/v1/tokens"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(list.contains("laptop"));
    assert!(
        !list.contains(&secret),
        "a listing must never show a secret"
    );

    let conn = Database::connect(&app.db.url).await.unwrap();
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT token_hash FROM api_tokens",
        ))
        .await
        .unwrap();
    for row in rows {
        let stored: String = row.try_get("", "token_hash").unwrap();
        assert_ne!(stored, secret);
        assert_eq!(stored.len(), 64);
    }
    let _ = conn.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_authenticates_until_revoked() {
    let app = spawn_app().await;
    let token = app.token("platform").await;
    let c = app.bearer(&token);
    let me: Value = c
        .get(app.url("/api/v1/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "platform");
    // Bearer requests need no CSRF token.
    let list: Value = c
        .get(app.url("/api/v1/tokens"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = list[0]["id"].as_str().unwrap().to_owned();
    let res = c
        .delete(app.url(&format!("/api/v1/tokens/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = c.get(app.url("/api/v1/me")).send().await.unwrap();
    let body = problem(res, 401).await;
    assert!(
        body["detail"].as_str().unwrap().contains("revoked"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bearer_tokens_are_refused() {
    let app = spawn_app().await;
    for bad in ["stl_nope", "not-a-token", &"x".repeat(4000)] {
        let res = app
            .bearer(bad)
            .get(app.url("/api/v1/me"))
            .send()
            .await
            .unwrap();
        problem(res, 401).await;
    }
    let res = app
        .client()
        .get(app.url("/api/v1/me"))
        .header("authorization", "Basic YWRtaW46eA==")
        .send()
        .await
        .unwrap();
    problem(res, 401).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_create_tokens_for_others() {
    let app = spawn_app().await;
    let partner = app.bearer(&app.token("partner-acme").await);
    let res = partner
        .post(app.url("/api/v1/tokens"))
        .json(&serde_json::json!({"name": "sneaky", "user": "admin"}))
        .send()
        .await
        .unwrap();
    problem(res, 403).await;
    let admin = app.bearer(&app.token("admin").await);
    let res = admin
        .post(app.url("/api/v1/tokens"))
        .json(&serde_json::json!({"name": "for-reviewer", "user": "reviewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token"]["user"], "reviewer");
    let reviewer = app.bearer(body["secret"].as_str().unwrap());
    let me: Value = reviewer
        .get(app.url("/api/v1/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "reviewer");
    app.stop().await;
}
