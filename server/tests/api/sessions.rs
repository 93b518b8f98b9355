//! Sign-in, sign-out, throttling, session expiry, CSRF and cross-site checks.

use std::time::Duration;

use reqwest::{Client, StatusCode, redirect};
use serde_json::Value;

use crate::helpers::{PASSWORD, problem, spawn_app, spawn_app_with};

fn form_login(user: &str, password: &str) -> Vec<(&'static str, String)> {
    vec![
        ("username", user.to_owned()),
        ("password", password.to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sets_an_http_only_same_site_cookie_and_me_works() {
    let app = spawn_app().await;
    let client = Client::builder()
        .cookie_store(true)
        .redirect(redirect::Policy::none())
        .build()
        .unwrap();
    let res = client
        .post(app.url("/auth/login"))
        .form(&form_login("partner-acme", PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("stellar_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP must not set Secure: {cookie}"
    );
    let me: Value = client
        .get(app.url("/api/v1/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "partner-acme");
    assert_eq!(me["role"], "partner");
    assert_eq!(me["tenant"]["slug"], "acme");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_tls_the_cookie_is_secure_and_host_prefixed() {
    let app = spawn_app_with(|c| {
        c.http.public_origin = Some("https://stellar.example".into());
        c.http.secure_cookies = true;
    })
    .await;
    let res = app
        .client()
        .post(app.url("/auth/login"))
        .header("origin", "https://stellar.example")
        .form(&form_login("admin", PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("__Host-stellar_session="), "{cookie}");
    assert!(cookie.contains("Secure"), "{cookie}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_user_look_the_same() {
    let app = spawn_app().await;
    let c = app.client();
    let a = problem(
        c.post(app.url("/auth/login"))
            .form(&form_login("admin", "nope-nope-nope"))
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    let b = problem(
        c.post(app.url("/auth/login"))
            .form(&form_login("ghost", "nope-nope-nope"))
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    assert_eq!(a["detail"], b["detail"]);
    assert_eq!(a["detail"], "the username or password is wrong");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_form_failure_redirects_back_with_the_reason() {
    let app = spawn_app().await;
    let res = app
        .client()
        .post(app.url("/auth/login"))
        .header("accept", "text/html")
        .form(&[
            ("username", "admin"),
            ("password", "wrong-password"),
            ("next", "/admin"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let location = res.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("/login?error=invalid&next=%2Fadmin"),
        "{location}"
    );
    let res = app
        .client()
        .post(app.url("/auth/login"))
        .header("accept", "text/html")
        .form(&[
            ("username", "admin"),
            ("password", PASSWORD),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/", "open redirect");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_throttle_sign_in_even_with_the_right_password() {
    let app = spawn_app().await;
    let c = app.client();
    for _ in 0..5 {
        let res = c
            .post(app.url("/auth/login"))
            .form(&form_login("secops", "wrong-password"))
            .send()
            .await
            .unwrap();
        problem(res, 401).await;
    }
    let res = c
        .post(app.url("/auth/login"))
        .form(&form_login("secops", PASSWORD))
        .send()
        .await
        .unwrap();
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "retry after {retry}");
    let body = problem(res, 429).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("too many failed sign-ins"),
        "{body}"
    );
    // Another account is not locked by it.
    let res = c
        .post(app.url("/auth/login"))
        .form(&form_login("platform", PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session() {
    let app = spawn_app().await;
    let s = app.session("reviewer").await;
    let res = s.client.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = s
        .client
        .post(app.url("/auth/logout"))
        .header("x-csrf-token", &s.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = s.client.get(app.url("/api/v1/me")).send().await.unwrap();
    problem(res, 401).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire() {
    let app = spawn_app_with(|c| c.services.auth.session_ttl = Duration::from_secs(1)).await;
    // Keep sending the cookie after it expired, as a client that ignores Max-Age would.
    let res = app
        .client()
        .post(app.url("/auth/login"))
        .form(&form_login("admin", PASSWORD))
        .send()
        .await
        .unwrap();
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let res = app
        .client()
        .get(app.url("/api/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let res = app
        .client()
        .get(app.url("/api/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let cleared = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cleared.contains("Max-Age=0"),
        "the stale cookie is cleared: {cleared}"
    );
    let body = problem(res, 401).await;
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    // A page redirects to sign-in, saying why.
    let res = app
        .client()
        .get(app.url("/tokens"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, "/login?next=%2Ftokens&error=expired");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_expire() {
    let app = spawn_app_with(|c| c.services.auth.session_idle = Duration::from_secs(1)).await;
    let s = app.session("admin").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let res = s.client.get(app.url("/api/v1/me")).send().await.unwrap();
    problem(res, 401).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_with_a_cookie_need_the_csrf_token() {
    let app = spawn_app().await;
    let s = app.session("admin").await;
    let new_tenant = serde_json::json!({"slug": "initech", "name": "Initech"});
    // No token.
    let res = s
        .client
        .post(app.url("/api/v1/tenants"))
        .json(&new_tenant)
        .send()
        .await
        .unwrap();
    let body = problem(res, 403).await;
    assert!(body["detail"].as_str().unwrap().contains("CSRF"), "{body}");
    // Wrong token.
    let res = s
        .client
        .post(app.url("/api/v1/tenants"))
        .header("x-csrf-token", "forged")
        .json(&new_tenant)
        .send()
        .await
        .unwrap();
    problem(res, 403).await;
    // Right token.
    let res = s
        .client
        .post(app.url("/api/v1/tenants"))
        .header("x-csrf-token", &s.csrf)
        .json(&new_tenant)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    // Server functions too: a form post without the token is refused, with it accepted.
    let res = s
        .client
        .post(app.url("/portal/api/tenants/create"))
        .form(&[
            ("csrf_token", "forged"),
            ("slug", "hooli"),
            ("name", "Hooli"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains("CSRF"));
    let res = s
        .client
        .post(app.url("/portal/api/tenants/create"))
        .form(&[
            ("csrf_token", s.csrf.as_str()),
            ("slug", "hooli"),
            ("name", "Hooli"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
    // Logout without the token is refused, too.
    let res = s.client.post(app.url("/auth/logout")).send().await.unwrap();
    problem(res, 403).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_requests_are_refused() {
    let app = spawn_app().await;
    let s = app.session("admin").await;
    let res = s
        .client
        .post(app.url("/api/v1/tenants"))
        .header("x-csrf-token", &s.csrf)
        .header("origin", "https://evil.example")
        .json(&serde_json::json!({"slug": "evil", "name": "Evil"}))
        .send()
        .await
        .unwrap();
    let body = problem(res, 403).await;
    assert!(
        body["detail"].as_str().unwrap().contains("evil.example"),
        "{body}"
    );
    // Login CSRF: a cross-site sign-in form is refused.
    let res = app
        .client()
        .post(app.url("/auth/login"))
        .header("sec-fetch-site", "cross-site")
        .form(&form_login("admin", PASSWORD))
        .send()
        .await
        .unwrap();
    problem(res, 403).await;
    // The same origin is fine.
    let res = app
        .client()
        .post(app.url("/auth/login"))
        .header("origin", app.base.as_str())
        .form(&form_login("admin", PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_user_ends_their_sessions() {
    let app = spawn_app().await;
    let admin = app.session("admin").await;
    let victim = app.session("partner-globex").await;
    let res = admin
        .client
        .patch(app.url("/api/v1/users/partner-globex"))
        .header("x-csrf-token", &admin.csrf)
        .json(&serde_json::json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = victim
        .client
        .get(app.url("/api/v1/me"))
        .send()
        .await
        .unwrap();
    problem(res, 401).await;
    let res = app
        .client()
        .post(app.url("/auth/login"))
        .form(&form_login("partner-globex", PASSWORD))
        .send()
        .await
        .unwrap();
    problem(res, 401).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_usernames_are_wrong_credentials_not_errors() {
    let app = spawn_app().await;
    for name in [
        "adm\0in",
        &"x".repeat(5000),
        "ADMIN' OR 1=1 --",
        "\u{202e}nimda",
    ] {
        let res = app
            .client()
            .post(app.url("/auth/login"))
            .form(&form_login(name, PASSWORD))
            .send()
            .await
            .unwrap();
        problem(res, 401).await;
    }
    app.stop().await;
}

/// With `--local-sign-in admins`, a password opens only an administrator's account (break-glass,
/// ledgered as such); anyone else is told to use single sign-on, and the refusal is ledgered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_leaves_passwords_to_administrators_and_ledgers_each_use() {
    let app = spawn_app_with(|c| {
        c.services.auth.local_sign_in = stellar::cli::args::LocalSignIn::Admins;
    })
    .await;
    let c = app.client();
    let p = problem(
        c.post(app.url("/auth/login"))
            .form(&form_login("secops", PASSWORD))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains("single sign-on"),
        "{p}"
    );
    let res = c
        .post(app.url("/auth/login"))
        .form(&form_login("admin", PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // A browser is sent back to the sign-in page, which says why.
    let browser = Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap();
    let res = browser
        .post(app.url("/auth/login"))
        .header("accept", "text/html")
        .form(&form_login("reviewer", PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        res.headers()["location"]
            .to_str()
            .unwrap()
            .contains("error=local_off")
    );
    let token = app.token("admin").await;
    let entries: serde_json::Value = c
        .get(app.url("/api/v1/ledger/entries?action=login."))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"login.break_glass"), "{actions:?}");
    assert!(actions.contains(&"login.local_refused"), "{actions:?}");
    app.stop().await;
}
