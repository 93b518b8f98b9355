//! Authorization over every route: anonymous and wrong-role requests are refused, and a partner
//! never sees another tenant's data (404, as if it did not exist).

use std::collections::{BTreeMap, HashSet};

use reqwest::{Client, Method, StatusCode};
use serde_json::Value;
use stellar::http::access::{API_RULES, Access, SERVER_FN_RULES};

use crate::helpers::{TestApp, problem, spawn_app};

const ROLE_USERS: &[(&str, &str)] = &[
    ("admin", "admin"),
    ("secops", "secops"),
    ("platform", "platform"),
    ("reviewer", "reviewer"),
    ("partner", "partner-acme"),
];

async fn tokens(app: &TestApp) -> BTreeMap<&'static str, Client> {
    let mut out = BTreeMap::new();
    for (role, user) in ROLE_USERS {
        out.insert(*role, app.bearer(&app.token(user).await));
    }
    out
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_route_refuses_anonymous_and_wrong_roles() {
    let app = spawn_app().await;
    let clients = tokens(&app).await;
    let doc: Value = app
        .client()
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let victim = app.bearer(&app.token("partner-acme").await);
    let list: Value = victim
        .get(app.url("/api/v1/tokens"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let victim_id = list[0]["id"].as_str().unwrap().to_owned();

    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let url = app.url(
                &path
                    .replace("{slug}", "acme")
                    .replace("{username}", "partner-acme")
                    .replace("{id}", &victim_id)
                    .replace("{seq}", "0"),
            );
            let security = op["security"].as_array().unwrap();
            let public = security.iter().all(|s| s.as_object().unwrap().is_empty());
            let allowed: HashSet<String> = security
                .iter()
                .flat_map(|s| s.as_object().unwrap().values())
                .flat_map(|v| {
                    v.as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r.as_str().unwrap().to_owned())
                })
                .collect();

            let res = call(&app.client(), method, &url).await;
            if public {
                assert!(
                    !matches!(res.status().as_u16(), 401 | 403),
                    "{method} {path} is public but answered {}",
                    res.status()
                );
            } else {
                assert_eq!(
                    res.status(),
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} anonymous"
                );
                problem(res, 401).await;
            }
            for (role, client) in &clients {
                let res = call(client, method, &url).await;
                let status = res.status().as_u16();
                if public || allowed.contains(*role) {
                    assert!(
                        !matches!(status, 401 | 403),
                        "{method} {path} as {role}: {status}"
                    );
                    assert!(status < 500, "{method} {path} as {role}: {status}");
                } else {
                    assert_eq!(status, 403, "{method} {path} as {role} must be refused");
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, API_RULES.len());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_function_refuses_anonymous_and_wrong_roles() {
    let app = spawn_app().await;
    let clients = tokens(&app).await;
    for rule in SERVER_FN_RULES {
        let url = app.url(rule.path);
        let anon = if rule.method == "GET" {
            app.client().get(&url).send().await.unwrap()
        } else {
            app.client()
                .post(&url)
                .form(&[("csrf_token", "x")])
                .send()
                .await
                .unwrap()
        };
        match rule.access {
            Access::Public => assert_eq!(anon.status(), StatusCode::OK, "{}", rule.path),
            Access::Roles(roles) => {
                assert_eq!(
                    anon.status(),
                    StatusCode::UNAUTHORIZED,
                    "{} anonymous",
                    rule.path
                );
                for (role, client) in &clients {
                    let res = if rule.method == "GET" {
                        client.get(&url).send().await.unwrap()
                    } else {
                        client
                            .post(&url)
                            .form(&[("csrf_token", "x")])
                            .send()
                            .await
                            .unwrap()
                    };
                    let status = res.status().as_u16();
                    if roles.iter().any(|r| r.as_str() == *role) {
                        assert!(
                            !matches!(status, 401 | 403),
                            "{} as {role}: {status}",
                            rule.path
                        );
                        assert!(status < 500, "{} as {role}: {status}", rule.path);
                    } else {
                        assert_eq!(status, 403, "{} as {role}", rule.path);
                    }
                }
            }
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_redirect_anonymous_users_and_refuse_wrong_roles() {
    let app = spawn_app().await;
    let clients = tokens(&app).await;
    for (path, roles) in app::routes::PAGES {
        let res = app.client().get(app.url(path)).send().await.unwrap();
        match roles {
            None => assert_eq!(res.status(), StatusCode::OK, "{path}"),
            Some(roles) => {
                assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
                let location = res.headers()["location"].to_str().unwrap();
                assert!(location.starts_with("/login?next="), "{location}");
                for (role, client) in &clients {
                    let res = client.get(app.url(path)).send().await.unwrap();
                    let expected = if roles.iter().any(|r| r.as_str() == *role) {
                        200
                    } else {
                        403
                    };
                    let mut status = res.status().as_u16();
                    // A page about one object (`{id}`): an id that does not exist is "not
                    // found" to those who may open the page, and still "forbidden" to others.
                    if path.contains('{') && expected == 200 && status == 404 {
                        status = 200;
                    }
                    let text = res.text().await.unwrap_or_default();
                    assert_eq!(
                        status,
                        expected,
                        "{path} as {role}: {}",
                        &text[..text.len().min(2000)]
                    );
                }
            }
        }
    }
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
