//! Liveness, readiness, metrics and the version endpoint.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestDb, problem, spawn_app, spawn_app_with, spawn_on, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_readyz_answer_ok() {
    let app = spawn_app().await;
    let c = app.client();
    let res = c.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = c.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().contains_key("x-request-id"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.db.destroy().await;
    let res = app.client().get(app.url("/readyz")).send().await.unwrap();
    let body = problem(res, 503).await;
    // What went wrong, and nothing about paths, hosts or drivers.
    assert_eq!(body["detail"], "not ready: database unreachable", "{body}");
    assert!(
        !body.to_string().contains(&app.db.dir.display().to_string()),
        "{body}"
    );
    // The process itself is still alive.
    let res = app.client().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_until_migrations_are_applied() {
    let db = TestDb::new().await;
    let mut config = test_config(&db);
    config.services.migrate = false;
    config.demo = false;
    let app = spawn_on(db, config).await;
    let res = app.client().get(app.url("/readyz")).send().await.unwrap();
    let body = problem(res, 503).await;
    assert!(
        body["detail"].as_str().unwrap().contains("stellar migrate"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_use_route_templates_never_raw_paths() {
    let app = spawn_app().await;
    let token = app.token("admin").await;
    let c = app.bearer(&token);
    let res = c.get(app.url("/api/v1/tenants/acme")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let _ = c
        .get(app.url("/api/v1/no-such-thing/123"))
        .send()
        .await
        .unwrap();
    let text = app
        .client()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("# TYPE stellar_http_requests_total counter"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE stellar_http_request_duration_seconds histogram"),
        "{text}"
    );
    assert!(text.contains(r#"route="/api/v1/tenants/{slug}""#), "{text}");
    assert!(
        !text.contains("/api/v1/tenants/acme"),
        "raw path leaked into labels"
    );
    assert!(
        !text.contains("no-such-thing"),
        "raw path leaked into labels"
    );
    assert!(text.contains(r#"route="unmatched""#));
    // promtool rejects a family without help text: every TYPE needs its HELP.
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split_whitespace().nth(2).unwrap_or_default();
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "metric {name} has no help text: describe it in telemetry.rs"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_token_is_required_when_configured() {
    let app =
        spawn_app_with(|c| c.http.metrics_token = stellar::config::Secret::new("scrape-secret"))
            .await;
    let res = app.client().get(app.url("/metrics")).send().await.unwrap();
    problem(res, 401).await;
    let res = app
        .client()
        .get(app.url("/metrics"))
        .bearer_auth("scrape-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_lists_the_api_versions() {
    let app = spawn_app().await;
    let body: Value = app
        .client()
        .get(app.url("/api/v1/version"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["server_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["api_versions"], serde_json::json!(["v1"]));
    assert_eq!(body["current_api_version"], "v1");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_kept_or_made() {
    let app = spawn_app().await;
    let res = app
        .client()
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-me-123");
    let res = app
        .client()
        .get(app.url("/healthz"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id, "bad id with spaces");
    assert_eq!(id.len(), 36);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_requests_finish_during_graceful_shutdown() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let body = "username=admin&password=stellar-demo";
    let head = format!(
        "POST /auth/login HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        app.addr,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..5]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // Shut down while the request is half-sent.
    let stopping = tokio::spawn(app.stop());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stream.write_all(&body.as_bytes()[5..]).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    stopping.await.unwrap();
}
