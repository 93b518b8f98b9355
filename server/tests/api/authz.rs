//! Authorization over every route, checked against tables written by hand in this file (role ×
//! route × expected answer), not against the route table the server enforces; tokens act only
//! within their scopes; and a partner never sees another tenant's data (404, as if it did not
//! exist).

use std::collections::HashSet;

use reqwest::{Client, Method, StatusCode};
use serde_json::Value;
use stellar::http::access::{API_RULES, SERVER_FN_RULES};

use crate::helpers::{TestApp, problem, spawn_app};

async fn call(client: &Client, method: &str, url: &str) -> reqwest::Response {
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut req = client.request(method.clone(), url);
    if method == Method::POST || method == Method::PATCH || method == Method::PUT {
        req = req.json(&serde_json::json!({}));
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_and_the_access_table_agree() {
    let app = spawn_app().await;
    let doc: Value = app
        .client()
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "OpenAPI 3.1"
    );
    let mut documented = HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let table: HashSet<(String, String)> = API_RULES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    assert_eq!(
        documented, table,
        "every API route is documented and has an access rule"
    );
    app.stop().await;
}

/// What a caller must get from a route, written by hand from the product's rules (who may do
/// what), independently of the route table the server enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum E {
    /// Anyone may call it: never 401 or 403, never a server error.
    P,
    /// Allowed: not 401, 403 or 404, never a server error (the empty body may be refused
    /// with 400, 409, 415 or 422).
    A,
    /// Allowed, but the object named is not one this caller can see: 404.
    N,
    /// Anonymous: 401.
    U,
    /// Signed in, but not allowed: 403.
    F,
}
use E::{A, F, N, P, U};

/// The callers, in the order of every row: anonymous, then one user per role.
const CALLERS: [&str; 6] = [
    "anonymous",
    "partner",
    "reviewer",
    "secops",
    "platform",
    "admin",
];

/// Every API route × caller. `{slug}` is acme (the partner's own tenant), `{username}` is
/// partner-acme, `{id}` a token id of partner-acme (no submission or request has it),
/// `{seq}` is 0, `{key}` a key id nobody registered.
const API: &[(&str, &str, [E; 6])] = &[
    ("GET", "/api/v1/version", [P, P, P, P, P, P]),
    ("GET", "/api/openapi.json", [P, P, P, P, P, P]),
    ("GET", "/healthz", [P, P, P, P, P, P]),
    ("GET", "/readyz", [P, P, P, P, P, P]),
    ("GET", "/metrics", [P, P, P, P, P, P]),
    ("POST", "/auth/login", [P, P, P, P, P, P]),
    ("GET", "/auth/oidc/start", [P, P, P, P, P, P]),
    ("GET", "/auth/oidc/callback", [P, P, P, P, P, P]),
    ("POST", "/auth/logout", [U, A, A, A, A, A]),
    ("GET", "/api/v1/me", [U, A, A, A, A, A]),
    ("GET", "/api/v1/dashboard", [U, A, A, A, A, A]),
    ("GET", "/api/v1/tenants", [U, A, A, A, A, A]),
    ("POST", "/api/v1/tenants", [U, F, F, F, F, A]),
    ("GET", "/api/v1/tenants/{slug}", [U, A, A, A, A, A]),
    ("GET", "/api/v1/tenants/{slug}/members", [U, A, A, A, A, A]),
    ("GET", "/api/v1/users", [U, F, F, F, F, A]),
    ("POST", "/api/v1/users", [U, F, F, F, F, A]),
    ("GET", "/api/v1/users/{username}", [U, A, N, N, N, A]),
    ("PATCH", "/api/v1/users/{username}", [U, F, F, F, F, A]),
    ("GET", "/api/v1/tokens", [U, A, A, A, A, A]),
    ("POST", "/api/v1/tokens", [U, A, A, A, A, A]),
    ("DELETE", "/api/v1/tokens/{id}", [U, A, N, N, N, A]),
    ("GET", "/api/v1/submissions", [U, A, A, A, A, A]),
    ("POST", "/api/v1/submissions", [U, A, F, F, F, F]),
    ("GET", "/api/v1/submissions/{id}", [U, N, N, N, N, N]),
    ("POST", "/submissions/upload", [U, A, F, F, F, F]),
    (
        "GET",
        "/api/v1/tenants/{slug}/publisher",
        [U, A, A, A, A, A],
    ),
    (
        "PATCH",
        "/api/v1/tenants/{slug}/publisher",
        [U, F, F, F, F, A],
    ),
    ("GET", "/api/v1/publisher-keys", [U, A, A, A, A, A]),
    ("POST", "/api/v1/publisher-keys", [U, A, F, F, F, A]),
    (
        "POST",
        "/api/v1/publisher-keys/{key}/approve",
        [U, F, F, N, F, N],
    ),
    (
        "POST",
        "/api/v1/publisher-keys/{key}/revoke",
        [U, N, F, N, F, N],
    ),
    ("GET", "/api/v1/ledger", [U, F, F, A, F, A]),
    ("GET", "/api/v1/ledger/entries", [U, F, F, A, F, A]),
    ("GET", "/api/v1/ledger/entries/{seq}", [U, F, F, A, F, A]),
    (
        "GET",
        "/api/v1/ledger/entries/{seq}/proof",
        [U, F, F, A, F, A],
    ),
    ("GET", "/api/v1/ledger/checkpoints", [U, F, F, A, F, A]),
    ("POST", "/api/v1/ledger/checkpoints", [U, F, F, A, F, A]),
    ("GET", "/api/v1/ledger/checkpoint", [U, F, F, A, F, A]),
    (
        "GET",
        "/api/v1/ledger/proofs/consistency",
        [U, F, F, A, F, A],
    ),
    ("GET", "/api/v1/ledger/export", [U, F, F, A, F, A]),
    ("POST", "/api/v1/ledger/verifications", [U, F, F, A, F, A]),
    ("GET", "/api/v1/trust-root", [P, P, P, P, P, P]),
    ("GET", "/api/v1/keys", [U, A, A, A, A, A]),
    ("GET", "/api/v1/signing-requests", [U, F, F, F, A, A]),
    ("GET", "/api/v1/signing-requests/{id}", [U, F, F, F, N, N]),
    (
        "POST",
        "/api/v1/signing-requests/{id}/signature",
        [U, F, F, F, A, A],
    ),
    ("POST", "/releases/{id}/decision", [U, F, A, A, A, A]),
    ("POST", "/releases/{id}/abort", [U, F, F, F, A, A]),
    ("GET", "/api/v1/releases", [U, A, A, A, A, A]),
    ("POST", "/api/v1/releases", [U, A, F, F, A, A]),
    ("GET", "/api/v1/releases/{id}", [U, N, N, N, N, N]),
    (
        "POST",
        "/api/v1/releases/{id}/approvals",
        [U, F, A, A, A, A],
    ),
    ("POST", "/api/v1/releases/{id}/abort", [U, F, F, F, A, A]),
    ("POST", "/api/v1/releases/{id}/override", [U, F, F, F, F, A]),
    ("GET", "/api/v1/releases/{id}/package", [U, N, N, N, N, N]),
    (
        "GET",
        "/api/v1/releases/{id}/attestations",
        [U, N, N, N, N, N],
    ),
    ("GET", "/api/v1/inbox", [U, A, A, A, A, A]),
    ("GET", "/api/v1/pipeline", [U, A, A, A, A, A]),
    ("GET", "/api/v1/pipeline/versions", [U, A, A, A, A, A]),
    ("POST", "/api/v1/pipeline/versions", [U, F, F, F, A, A]),
    (
        "GET",
        "/api/v1/pipeline/versions/{version}",
        [U, N, N, N, N, N],
    ),
    ("POST", "/api/v1/pipeline/check", [U, A, A, A, A, A]),
    ("GET", "/api/v1/calendar", [U, A, A, A, A, A]),
    ("GET", "/api/v1/calendar/windows", [U, A, A, A, A, A]),
    ("POST", "/api/v1/calendar/windows", [U, F, F, F, A, A]),
    (
        "DELETE",
        "/api/v1/calendar/windows/{id}",
        [U, F, F, F, A, A],
    ),
    // The host protocol takes fleet tokens only: a user's API token is refused (403).
    ("GET", "/api/v1/fleet/channel", [U, F, F, F, F, F]),
    ("GET", "/api/v1/fleet/bundles/{digest}", [U, F, F, F, F, F]),
    (
        "GET",
        "/api/v1/fleet/bundles/{digest}/attestations",
        [U, F, F, F, F, F],
    ),
    ("POST", "/api/v1/fleet/reports", [U, F, F, F, F, F]),
    ("GET", "/api/v1/fleet", [U, F, F, F, A, A]),
    ("GET", "/api/v1/fleet/tokens", [U, F, F, F, A, A]),
    ("POST", "/api/v1/fleet/tokens", [U, F, F, F, A, A]),
    (
        "POST",
        "/api/v1/fleet/tokens/{id}/revoke",
        [U, F, F, F, N, N],
    ),
    ("POST", "/api/v1/releases/{id}/rollout", [U, F, F, F, A, A]),
    ("POST", "/releases/{id}/rollout", [U, F, F, F, A, A]),
    ("GET", "/api/v1/webhooks", [U, F, F, F, F, A]),
    ("POST", "/api/v1/webhooks", [U, F, F, F, F, A]),
    ("DELETE", "/api/v1/webhooks/{id}", [U, F, F, F, F, A]),
    (
        "GET",
        "/api/v1/webhooks/{id}/deliveries",
        [U, F, F, F, F, A],
    ),
];

/// The portal's server functions × caller (state changes carry a wrong CSRF token only
/// where no session is used: these callers use API tokens).
const SERVER_FNS: &[(&str, &str, [E; 6])] = &[
    ("GET", "/portal/api/dashboard", [U, A, A, A, A, A]),
    ("GET", "/portal/api/tenants", [U, A, A, A, A, A]),
    ("POST", "/portal/api/tenants/create", [U, F, F, F, F, A]),
    ("GET", "/portal/api/users", [U, F, F, F, F, A]),
    ("POST", "/portal/api/users/create", [U, F, F, F, F, A]),
    ("POST", "/portal/api/users/set-disabled", [U, F, F, F, F, A]),
    (
        "POST",
        "/portal/api/users/reset-password",
        [U, F, F, F, F, A],
    ),
    ("GET", "/portal/api/tokens", [U, A, A, A, A, A]),
    ("POST", "/portal/api/tokens/create", [U, A, A, A, A, A]),
    ("POST", "/portal/api/tokens/revoke", [U, A, A, A, A, A]),
    ("GET", "/portal/api/ledger/status", [U, F, F, A, F, A]),
    ("GET", "/portal/api/ledger/entries", [U, F, F, A, F, A]),
    ("GET", "/portal/api/ledger/proof", [U, F, F, A, F, A]),
    ("POST", "/portal/api/ledger/verify", [U, F, F, A, F, A]),
    ("POST", "/portal/api/ledger/checkpoint", [U, F, F, A, F, A]),
    ("GET", "/portal/api/submissions", [U, A, A, A, A, A]),
    ("GET", "/portal/api/submission", [U, A, A, A, A, A]),
    ("GET", "/portal/api/releases", [U, A, A, A, A, A]),
    ("GET", "/portal/api/release", [U, A, A, A, A, A]),
    ("GET", "/portal/api/release/package", [U, A, A, A, A, A]),
    ("GET", "/portal/api/inbox", [U, A, A, A, A, A]),
    ("GET", "/portal/api/calendar", [U, A, A, A, A, A]),
    ("GET", "/portal/api/webhooks", [U, F, F, F, F, A]),
    ("GET", "/portal/api/webhooks/deliveries", [U, F, F, F, F, A]),
    ("GET", "/portal/api/fleet", [U, F, F, F, A, A]),
];

/// The portal's pages × caller: 303 to sign in for anonymous callers, 200 or 403 for others.
const PAGES: &[(&str, [u16; 6])] = &[
    ("/login", [200, 200, 200, 200, 200, 200]),
    ("/", [303, 200, 200, 200, 200, 200]),
    ("/tokens", [303, 200, 200, 200, 200, 200]),
    ("/admin", [303, 403, 403, 403, 403, 200]),
    ("/ledger", [303, 403, 403, 200, 403, 200]),
    ("/submissions", [303, 200, 200, 200, 200, 200]),
    ("/submissions/new", [303, 200, 403, 403, 403, 403]),
    // No submission has this id: "not found" to those who may open the page.
    ("/submissions/{id}", [303, 404, 404, 404, 404, 404]),
    ("/releases", [303, 200, 200, 200, 200, 200]),
    ("/releases/{id}", [303, 404, 404, 404, 404, 404]),
    ("/approvals", [303, 403, 200, 200, 200, 200]),
    ("/calendar", [303, 200, 200, 200, 200, 200]),
    ("/webhooks", [303, 403, 403, 403, 403, 200]),
    ("/fleet", [303, 403, 403, 403, 200, 200]),
];

fn judge(expected: E, status: u16, what: &str) {
    let ok = match expected {
        P => !matches!(status, 401 | 403) && status < 500,
        A => !matches!(status, 401 | 403 | 404) && status < 500,
        N => status == 404,
        U => status == 401,
        F => status == 403,
    };
    assert!(ok, "{what}: expected {expected:?}, got {status}");
}

/// One client per caller, in [`CALLERS`] order (API tokens with every scope).
async fn callers(app: &TestApp) -> Vec<Client> {
    let mut out = vec![app.client()];
    for user in ["partner-acme", "reviewer", "secops", "platform", "admin"] {
        out.push(app.bearer(&app.token(user).await));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_route_answers_each_role_as_the_hand_written_table_says() {
    let app = spawn_app().await;
    let doc: Value = app
        .client()
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut documented = HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let written: HashSet<(String, String)> = API
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(
        documented, written,
        "every route is in the hand-written table, and nothing else"
    );
    let clients = callers(&app).await;
    // A second token of the partner's, newest in their list: the one `{id}` names.
    app.token("partner-acme").await;
    let victim: Value = clients[1]
        .get(app.url("/api/v1/tokens"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let victim_id = victim[0]["id"].as_str().unwrap().to_owned();
    for (method, path, expected) in API {
        let url = app.url(
            &path
                .replace("{slug}", "acme")
                .replace("{username}", "partner-acme")
                .replace("{id}", &victim_id)
                .replace("{seq}", "0")
                .replace("{digest}", &"ab".repeat(32))
                .replace("{version}", "999")
                .replace("{key}", "0123456789abcdef"),
        );
        for (i, client) in clients.iter().enumerate() {
            let res = call(client, method, &url).await;
            let status = res.status().as_u16();
            judge(
                expected[i],
                status,
                &format!("{method} {path} as {}", CALLERS[i]),
            );
            if matches!(expected[i], U) {
                problem(res, 401).await;
            }
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_function_answers_each_role_as_the_hand_written_table_says() {
    let app = spawn_app().await;
    let clients = callers(&app).await;
    let listed: HashSet<(&str, &str)> =
        SERVER_FN_RULES.iter().map(|r| (r.method, r.path)).collect();
    let written: HashSet<(&str, &str)> = SERVER_FNS.iter().map(|(m, p, _)| (*m, *p)).collect();
    assert_eq!(
        listed, written,
        "every server function is in the hand-written table"
    );
    for (method, path, expected) in SERVER_FNS {
        let url = app.url(path);
        for (i, client) in clients.iter().enumerate() {
            let res = if *method == "GET" {
                client.get(&url).send().await.unwrap()
            } else {
                client
                    .post(&url)
                    .form(&[("csrf_token", "x")])
                    .send()
                    .await
                    .unwrap()
            };
            judge(
                expected[i],
                res.status().as_u16(),
                &format!("{method} {path} as {}", CALLERS[i]),
            );
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_answer_each_role_as_the_hand_written_table_says() {
    let app = spawn_app().await;
    let clients = callers(&app).await;
    let listed: HashSet<&str> = app::routes::PAGES.iter().map(|(p, _)| *p).collect();
    let written: HashSet<&str> = PAGES.iter().map(|(p, _)| *p).collect();
    assert_eq!(listed, written, "every page is in the hand-written table");
    let missing = uuid::Uuid::now_v7().to_string();
    for (path, expected) in PAGES {
        let url = app.url(&path.replace("{id}", &missing));
        for (i, client) in clients.iter().enumerate() {
            let res = client.get(&url).send().await.unwrap();
            let status = res.status().as_u16();
            if status == 303 {
                let location = res.headers()["location"].to_str().unwrap();
                assert!(location.starts_with("/login?next="), "{location}");
            }
            assert_eq!(status, expected[i], "{path} as {}", CALLERS[i]);
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_acts_only_within_its_scopes() {
    let app = spawn_app().await;
    let admin = app.session("admin").await;
    let res = admin
        .client
        .post(app.url("/api/v1/tokens"))
        .header("x-csrf-token", &admin.csrf)
        .json(&serde_json::json!({"name": "read only", "scopes": ["read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["token"]["scopes"], serde_json::json!(["read"]));
    let reader = app.bearer(created["secret"].as_str().unwrap());
    // Reading works; a change does not, whatever the role allows.
    let res = reader.get(app.url("/api/v1/users")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = reader
        .post(app.url("/api/v1/tenants"))
        .json(&serde_json::json!({"slug": "initech", "name": "Initech"}))
        .send()
        .await
        .unwrap();
    let body = problem(res, 403).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("lacks the `admin` scope"),
        "{body}"
    );
    // Nor can it mint a token with more scopes than it has.
    let res = reader
        .post(app.url("/api/v1/tokens"))
        .json(&serde_json::json!({"name": "escalate", "scopes": ["admin"]}))
        .send()
        .await
        .unwrap();
    problem(res, 403).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_never_reads_another_tenants_data() {
    let app = spawn_app().await;
    let acme = app.bearer(&app.token("partner-acme").await);
    let globex_token = app.token("partner-globex").await;
    let globex = app.bearer(&globex_token);
    let globex_tokens: Value = globex
        .get(app.url("/api/v1/tokens"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let globex_token_id = globex_tokens[0]["id"].as_str().unwrap().to_owned();

    for path in [
        "/api/v1/tenants/globex",
        "/api/v1/tenants/globex/members",
        "/api/v1/users/partner-globex",
        "/api/v1/tenants/does-not-exist",
    ] {
        let res = acme.get(app.url(path)).send().await.unwrap();
        let body = problem(res, 404).await;
        assert!(
            !body.to_string().contains("Globex Corporation"),
            "{path} leaked: {body}"
        );
    }
    // Revoking another tenant's token: 404, and the token still works.
    let res = acme
        .delete(app.url(&format!("/api/v1/tokens/{globex_token_id}")))
        .send()
        .await
        .unwrap();
    problem(res, 404).await;
    let res = globex.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // Listings are scoped.
    let tenants: Value = acme
        .get(app.url("/api/v1/tenants"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let slugs: Vec<&str> = tenants
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["acme"]);
    let tokens: Value = acme
        .get(app.url("/api/v1/tokens"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        tokens
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["user"] == "partner-acme"),
        "{tokens}"
    );
    let dash: Value = acme
        .get(app.url("/api/v1/dashboard"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dash["tenant"]["slug"], "acme");
    assert_eq!(dash["tenants"], 1);
    assert_eq!(dash["users"], 1);
    // The same through the portal's server functions.
    let res = acme
        .get(app.url("/portal/api/tenants"))
        .send()
        .await
        .unwrap();
    let body = res.text().await.unwrap();
    assert!(body.contains("acme") && !body.contains("globex"), "{body}");
    // Staff see both.
    let staff = app.bearer(&app.token("reviewer").await);
    let res = staff
        .get(app.url("/api/v1/tenants/globex/members"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    app.stop().await;
}
