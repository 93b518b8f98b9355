//! The holes found when Stellar was tried as an attacker would, each with the test that failed
//! before it was closed: parallel sign-in guesses, a forged `X-Forwarded-For`, publisher keys a
//! partner approves alone, plugin ids taken from another tenant, ledger verification that
//! trusts what it verifies, modules that exhaust memory, uploads and quotas, GETs that change
//! state, missing security headers, CSRF tokens in URLs, tokens that outlive a password, and
//! internal errors that say too much.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::multipart::{Form, Part};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use trust::keys::KeyPair;

use crate::helpers::{TestApp, count, json, problem, spawn_app, spawn_app_with, sql, stellar_cli};

/// The clean example, with its manifest edited (`from` → `to`).
fn clean_files(edits: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/plugins/clean");
    let mut files = BTreeMap::new();
    for name in ["plugin.toml", "plugin.wat", "sbom.cdx.json"] {
        files.insert(name.to_owned(), std::fs::read(dir.join(name)).unwrap());
    }
    let mut manifest = String::from_utf8(files["plugin.toml"].clone()).unwrap();
    for (from, to) in edits {
        manifest = manifest.replace(from, to);
    }
    files.insert("plugin.toml".into(), manifest.into_bytes());
    files
}

fn bundle(edits: &[(&str, &str)], keys: &[KeyPair]) -> Vec<u8> {
    plugin::pack::pack_files(&clean_files(edits), keys)
        .unwrap()
        .0
}

async fn upload(app: &TestApp, client: &Client, bytes: Vec<u8>) -> reqwest::Response {
    let form = Form::new().part("bundle", Part::bytes(bytes).file_name("b.tar.gz"));
    client
        .post(app.url("/api/v1/submissions"))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn judged(app: &TestApp, client: &Client, res: reqwest::Response) -> Value {
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let created: Value = res.json().await.unwrap();
    app.drain().await;
    client
        .get(app.url(&format!(
            "/api/v1/submissions/{}",
            created["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn fired(detail: &Value) -> Vec<String> {
    detail["verdict"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_owned())
        .collect()
}

async fn ledger_entries(app: &TestApp, query: &str) -> Value {
    let admin = app.bearer(&app.token("admin").await);
    admin
        .get(app.url(&format!("/api/v1/ledger/entries?{query}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_wrong_sign_ins_check_no_more_passwords_than_the_limit() {
    let app = spawn_app().await;
    // Taken before the burst: afterwards this address is locked too.
    let admin = app.bearer(&app.token("admin").await);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let c = app.client();
        let url = app.url("/auth/login");
        tasks.push(tokio::spawn(async move {
            c.post(url)
                .form(&[("username", "secops"), ("password", "wrong-password-x")])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert!(
        statuses.iter().all(|s| matches!(s, 401 | 429)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&429), "{statuses:?}");
    // Each password check that fails writes one `login.failed` entry: exactly the limit.
    let failed: Value =
        json(admin.get(app.url("/api/v1/ledger/entries?action=login.failed&actor=secops"))).await;
    assert_eq!(failed["total"], 5, "{failed}");
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 5);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_address_is_the_right_most_hop_the_proxies_did_not_write() {
    let app = spawn_app_with(|c| c.http.proxy.trust = true).await;
    let res = app
        .client()
        .post(app.url("/auth/login"))
        .header("x-forwarded-for", "6.6.6.6, 203.0.113.9")
        .form(&[
            ("username", "reviewer"),
            ("password", crate::helpers::PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let logins = ledger_entries(&app, "action=login&actor=reviewer").await;
    let details = logins["entries"][0]["details"].as_str().unwrap();
    assert!(details.contains("203.0.113.9"), "{details}");
    assert!(!details.contains("6.6.6.6"), "{details}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_keys_count_only_once_approved_and_stop_counting_when_revoked() {
    let app = spawn_app().await;
    let acme = app.bearer(&app.token("partner-acme").await);
    let key = KeyPair::generate().unwrap();
    let res = acme
        .post(app.url("/api/v1/publisher-keys"))
        .json(&json!({"name": "laptop", "public_key_pem": key.public().to_pem()}))
        .send()
        .await
        .unwrap();
    let registered: Value = res.json().await.unwrap();
    assert_eq!(registered["state"], "pending", "{registered}");
    let id = registered["key_id"].as_str().unwrap().to_owned();
    let plugin_id = ("id = \"acme-hello\"", "id = \"acme-keyed\"");

    // Registered is not enough: the signature does not count.
    let d = judged(
        &app,
        &acme,
        upload(
            &app,
            &acme,
            bundle(&[plugin_id], std::slice::from_ref(&key)),
        )
        .await,
    )
    .await;
    assert!(fired(&d).contains(&"unsigned".to_owned()), "{d}");
    // The partner cannot approve their own key.
    let res = acme
        .post(app.url(&format!("/api/v1/publisher-keys/{id}/approve")))
        .send()
        .await
        .unwrap();
    problem(res, 403).await;
    // Secops approves: now it counts.
    let secops = app.bearer(&app.token("secops").await);
    let res = secops
        .post(app.url(&format!("/api/v1/publisher-keys/{id}/approve")))
        .send()
        .await
        .unwrap();
    let approved: Value = res.json().await.unwrap();
    assert_eq!(approved["state"], "approved", "{approved}");
    assert_eq!(approved["approved_by"], "secops");
    let v2 = [plugin_id, ("version = \"1.0.0\"", "version = \"1.0.1\"")];
    let d = judged(
        &app,
        &acme,
        upload(&app, &acme, bundle(&v2, std::slice::from_ref(&key))).await,
    )
    .await;
    assert!(!fired(&d).contains(&"unsigned".to_owned()), "{d}");
    assert_eq!(d["facts"]["signatures"], 1, "{d}");
    // The partner revokes it: it no longer counts.
    let res = acme
        .post(app.url(&format!("/api/v1/publisher-keys/{id}/revoke")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v3 = [plugin_id, ("version = \"1.0.0\"", "version = \"1.0.2\"")];
    let d = judged(
        &app,
        &acme,
        upload(&app, &acme, bundle(&v3, std::slice::from_ref(&key))).await,
    )
    .await;
    assert!(fired(&d).contains(&"unsigned".to_owned()), "{d}");
    // Both changes are in the ledger.
    for action in ["publisher-key.approve", "publisher-key.revoke"] {
        let e = ledger_entries(&app, &format!("action={action}")).await;
        let subjects: Vec<&str> = e["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["subject"].as_str().unwrap())
            .collect();
        assert!(subjects.contains(&id.as_str()), "{action}: {e}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_id_belongs_to_the_tenant_that_first_published_it() {
    let app = spawn_app_with(|c| c.demo_submissions = true).await;
    // acme-hello is acme's (the demo published it).
    let globex = app.bearer(&app.token("partner-globex").await);
    let before = count(&app.db.url, "SELECT COUNT(*) AS n FROM submissions").await;
    let bytes = bundle(&[("publisher = \"acme\"", "publisher = \"globex\"")], &[]);
    let body = problem(upload(&app, &globex, bytes).await, 409).await;
    assert_eq!(body["code"], "plugin_id_taken", "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("`acme-hello` belongs to another publisher"),
        "{body}"
    );
    assert_eq!(
        count(&app.db.url, "SELECT COUNT(*) AS n FROM submissions").await,
        before,
        "nothing stored"
    );
    app.stop().await;
}

fn verify_db(app: &TestApp, root: &std::path::Path, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec![
        "ledger",
        "verify",
        "--database-url",
        &app.db.url,
        "--trust-root",
        root.to_str().unwrap(),
        "--origin",
        "stellar.test/ledger",
    ];
    args.extend_from_slice(extra);
    stellar_cli(&args, None, false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_verification_fails_closed() {
    let app = spawn_app().await;
    let admin = app.bearer(&app.token("admin").await);
    let root_text = app
        .client()
        .get(app.url("/api/v1/trust-root"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let root = app.db.dir.join("root.json");
    std::fs::write(&root, root_text).unwrap();

    // No checkpoint yet: nothing proves the entries.
    let (ok, _, err) = verify_db(&app, &root, &[]);
    assert!(!ok && err.contains("no signed checkpoint covers"), "{err}");
    let res = admin
        .post(app.url("/api/v1/ledger/checkpoints"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let (ok, out, err) = verify_db(&app, &root, &[]);
    assert!(ok, "{out}{err}");
    // Entries after the newest checkpoint: refused, or accepted with a warning when asked.
    app.session("reviewer").await;
    let (ok, _, err) = verify_db(&app, &root, &[]);
    assert!(
        !ok && err.contains("not covered by any signed checkpoint"),
        "{err}"
    );
    let (ok, _, err) = verify_db(&app, &root, &["--allow-unsigned-tail"]);
    assert!(ok && err.contains("WARNING"), "{err}");
    // A checkpoint of another ledger.
    let args_origin = [
        "ledger",
        "verify",
        "--database-url",
        &app.db.url,
        "--trust-root",
        root.to_str().unwrap(),
        "--origin",
        "other.example/ledger",
        "--allow-unsigned-tail",
    ];
    let (ok, _, err) = stellar_cli(&args_origin, None, false);
    assert!(!ok && err.contains("not `other.example/ledger`"), "{err}");

    // The server verifies against the trust root pinned in its key directory: a key added to
    // the database signs nothing it accepts.
    let v: Value = json(admin.post(app.url("/api/v1/ledger/verifications"))).await;
    assert_eq!(v["ok"], true, "{v}");
    let forger = KeyPair::generate().unwrap();
    // A checkpoint with the true root of the first two entries, signed by a key registered
    // in the database only: it verifies against the database's registry, not the pinned root.
    let root = app.services.ledger_store.root(2).await.unwrap();
    sql(&app.db.url, "DELETE FROM ledger_checkpoints WHERE size = 2").await;
    sql(
        &app.db.url,
        &format!(
            "INSERT INTO signing_keys (key_id, purpose, public_pem, valid_from, created_at) \
             VALUES ('{}', 'ledger-checkpoint', '{}', '2020-01-01 00:00:00+00:00', '2020-01-01 00:00:00+00:00')",
            forger.id().0,
            forger.public().to_pem()
        ),
    )
    .await;
    let forged = trust::checkpoint::Checkpoint {
        origin: "stellar.test/ledger".into(),
        size: 2,
        root,
        time: Some(chrono::Utc::now()),
    }
    .sign("stellar.test/ledger", &forger);
    sql(
        &app.db.url,
        &format!(
            "INSERT INTO ledger_checkpoints (size, root_hash, note, key_id, created_at) \
             VALUES (2, '{}', '{}', '{}', '2026-01-01 00:00:00+00:00')",
            hex::encode(root),
            forged.replace('\'', "''"),
            forger.id().0
        ),
    )
    .await;
    let v: Value = json(admin.post(app.url("/api/v1/ledger/verifications"))).await;
    assert_eq!(v["ok"], false, "{v}");
    assert!(v["message"].as_str().unwrap().contains("key"), "{v}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_cut_back_is_caught_by_the_pinned_checkpoint() {
    let app = spawn_app().await;
    let admin = app.bearer(&app.token("admin").await);
    let verify = || {
        let admin = admin.clone();
        let url = app.url("/api/v1/ledger/verifications");
        async move {
            admin
                .post(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(verify().await["ok"], true);
    // Someone with the database removes the newest entries, their nodes and checkpoints,
    // and sets the head back: the database is consistent again, only the pin remembers.
    let size = count(&app.db.url, "SELECT COUNT(*) AS n FROM ledger_entries").await;
    let keep = size - 3;
    for statement in [
        format!("DELETE FROM ledger_entries WHERE seq >= {keep}"),
        format!("DELETE FROM ledger_checkpoints WHERE size > {keep}"),
        format!(
            "UPDATE ledger_head SET size = {keep}, last_hash = (SELECT entry_hash FROM ledger_entries WHERE seq = {})",
            keep - 1
        ),
    ] {
        sql(&app.db.url, &statement).await;
    }
    let v = verify().await;
    assert_eq!(v["ok"], false, "{v}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_of_endless_custom_sections_is_refused_at_intake_naming_the_limit() {
    let app = spawn_app().await;
    let acme = app.bearer(&app.token("partner-acme").await);
    // Ten thousand small custom sections with different names (so that the bundle does
    // not trip the compression-ratio limit first).
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..10_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        wasm.extend_from_slice(&[0, 9, 8]);
        wasm.extend_from_slice(&seed.to_le_bytes().map(|b| b'a' + b % 26));
    }
    let mut files = clean_files(&[("id = \"acme-hello\"", "id = \"acme-sections\"")]);
    files.remove("plugin.wat");
    files.insert("plugin.wasm".into(), wasm);
    let bytes = plugin::pack::tar_gz(&files.into_iter().collect::<Vec<_>>()).unwrap();

    let before = count(&app.db.url, "SELECT COUNT(*) AS n FROM submissions").await;
    let body = problem(upload(&app, &acme, bytes).await, 422).await;
    assert_eq!(body["code"], "module_too_large", "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("more than 64 custom sections"),
        "{body}"
    );
    assert_eq!(
        count(&app.db.url, "SELECT COUNT(*) AS n FROM submissions").await,
        before
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_hold_per_tenant_and_the_queue_is_fair_between_tenants() {
    let app = spawn_app_with(|c| {
        c.workers = 0;
        c.services.analysis.quotas.max_queued = 2;
    })
    .await;
    let acme = app.bearer(&app.token("partner-acme").await);
    let globex = app.bearer(&app.token("partner-globex").await);
    let acme_v = |v: &str| {
        bundle(
            &[
                ("id = \"acme-hello\"", "id = \"acme-queue\""),
                ("version = \"1.0.0\"", v),
            ],
            &[],
        )
    };
    for v in ["version = \"1.0.1\"", "version = \"1.0.2\""] {
        assert_eq!(
            upload(&app, &acme, acme_v(v)).await.status(),
            StatusCode::ACCEPTED
        );
    }
    // A third waiting submission is one too many for acme…
    let body = problem(
        upload(&app, &acme, acme_v("version = \"1.0.3\"")).await,
        429,
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("the limit is 2"),
        "{body}"
    );
    // …but not for globex, whose one job is claimed before acme's second.
    let g = bundle(
        &[
            ("id = \"acme-hello\"", "id = \"globex-queue\""),
            ("publisher = \"acme\"", "publisher = \"globex\""),
        ],
        &[],
    );
    assert_eq!(
        upload(&app, &globex, g).await.status(),
        StatusCode::ACCEPTED
    );
    let mut order = Vec::new();
    while let Some(job) = app.services.queue.claim("test").await.unwrap() {
        order.push(job.tenant_id);
    }
    assert_eq!(order.len(), 3);
    assert_eq!(order[0], order[2], "acme, globex, acme: {order:?}");
    assert_ne!(order[0], order[1], "{order:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_store_more_bundle_bytes_than_its_quota() {
    let app = spawn_app_with(|c| c.services.analysis.quotas.max_bytes = 10_000).await;
    let globex = app.bearer(&app.token("partner-globex").await);
    let mut refused = None;
    for patch in 1..40 {
        let version = format!("version = \"1.0.{patch}\"");
        let bytes = bundle(
            &[
                ("id = \"acme-hello\"", "id = \"globex-bytes\""),
                ("publisher = \"acme\"", "publisher = \"globex\""),
                ("version = \"1.0.0\"", &version),
            ],
            &[],
        );
        let res = upload(&app, &globex, bytes).await;
        if res.status() != StatusCode::ACCEPTED {
            refused = Some(problem(res, 413).await);
            break;
        }
        app.drain().await;
    }
    let body = refused.expect("the quota was reached");
    assert_eq!(body["code"], "tenant_storage_full", "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("10000 bytes"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_waits_its_turn_and_is_refused_when_it_waits_too_long() {
    let app = spawn_app_with(|c| {
        c.services.analysis.max_concurrent_uploads = 1;
        c.services.analysis.upload_wait = Duration::from_millis(300);
    })
    .await;
    let partner = app.services.accounts.act_as("partner-acme").await.unwrap();
    let held = app
        .services
        .submissions
        .upload_permit(&partner)
        .await
        .unwrap();
    let acme = app.bearer(&app.token("partner-acme").await);
    let body = problem(upload(&app, &acme, bundle(&[], &[])).await, 429).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("uploads are being read"),
        "{body}"
    );
    drop(held);
    let res = upload(
        &app,
        &acme,
        bundle(&[("version = \"1.0.0\"", "version = \"1.0.9\"")], &[]),
    )
    .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_get_request_changes_state() {
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
    let clients = [
        app.bearer(&app.token("admin").await),
        app.bearer(&app.token("secops").await),
        app.bearer(&app.token("platform").await),
    ];
    let snapshot = || async {
        let mut out = Vec::new();
        for table in [
            "ledger_entries",
            "ledger_checkpoints",
            "ledger_verifications",
            "signing_keys",
            "attestations",
            "jobs",
            "submissions",
            "api_tokens",
        ] {
            out.push(count(&app.db.url, &format!("SELECT COUNT(*) AS n FROM {table}")).await);
        }
        out
    };
    let before = snapshot().await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if item.get("get").is_none() {
            continue;
        }
        let url = app.url(
            &path
                .replace("{slug}", "acme")
                .replace("{username}", "admin")
                .replace("{id}", "01000000-0000-7000-8000-000000000000")
                .replace("{seq}", "0"),
        );
        for c in &clients {
            let status = c.get(&url).send().await.unwrap().status();
            assert!(status.as_u16() < 500, "GET {path}: {status}");
        }
    }
    assert_eq!(snapshot().await, before, "a GET changed something");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    let res = app.client().get(app.url("/login")).send().await.unwrap();
    let h = res.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap().to_owned();
    let html = res.text().await.unwrap();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .expect("a nonce in the policy")
        .to_owned();
    assert!(
        csp.contains("'wasm-unsafe-eval'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    // Every executable inline script carries this response's nonce.
    for script in html.split("<script").skip(1) {
        let tag = script.split('>').next().unwrap_or_default();
        if tag.contains("application/json") || tag.contains(" src=") {
            continue;
        }
        assert!(tag.contains(&format!("nonce=\"{nonce}\"")), "<script{tag}>");
    }
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "same-origin");
    assert_eq!(h["cache-control"], "no-store");
    // Another response, another nonce.
    let again = app.client().get(app.url("/login")).send().await.unwrap();
    assert_ne!(
        again.headers()["content-security-policy"].to_str().unwrap(),
        csp
    );
    // The API allows nothing to run.
    let res = app
        .client()
        .get(app.url("/api/v1/version"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
    );
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upload_form_carries_its_csrf_token_in_the_body_never_in_the_url() {
    let app = spawn_app().await;
    let s = app.session("partner-acme").await;
    let page = s
        .client
        .get(app.url("/submissions/new"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("csrf_token="), "the token is in a URL");
    assert!(page.contains("action=\"/submissions/upload\""));
    let form = |token: Option<&str>| {
        let mut f = Form::new();
        if let Some(t) = token {
            f = f.text("csrf_token", t.to_owned());
        }
        f.part(
            "bundle",
            Part::bytes(bundle(
                &[("version = \"1.0.0\"", "version = \"1.0.7\"")],
                &[],
            ))
            .file_name("b.tar.gz"),
        )
    };
    let res = s
        .client
        .post(app.url("/submissions/upload"))
        .multipart(form(None))
        .send()
        .await
        .unwrap();
    problem(res, 403).await;
    let res = s
        .client
        .post(app.url("/submissions/upload"))
        .multipart(form(Some("wrong")))
        .send()
        .await
        .unwrap();
    problem(res, 403).await;
    let res = s
        .client
        .post(app.url("/submissions/upload"))
        .multipart(form(Some(&s.csrf)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let location = res.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("/submissions/0"), "{location}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_can_revoke_the_users_tokens() {
    let app = spawn_app().await;
    let token = app.token("reviewer").await;
    let reviewer = app.bearer(&token);
    assert_eq!(
        reviewer
            .get(app.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let admin = app.bearer(&app.token("admin").await);
    let res = admin
        .patch(app.url("/api/v1/users/reviewer"))
        .json(&json!({"password": "a new long password", "revoke_tokens": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    problem(
        reviewer.get(app.url("/api/v1/me")).send().await.unwrap(),
        401,
    )
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_errors_say_nothing_but_the_request_id() {
    let app = spawn_app_with(|c| c.demo_submissions = true).await;
    let acme = app.bearer(&app.token("partner-acme").await);
    let list: Value = json(acme.get(app.url("/api/v1/submissions"))).await;
    let id = list["items"][0]["id"].as_str().unwrap().to_owned();
    sql(
        &app.db.url,
        &format!("UPDATE verdicts SET verdict = 'not json' WHERE submission_id = '{id}'"),
    )
    .await;
    let res = acme
        .get(app.url(&format!("/api/v1/submissions/{id}")))
        .send()
        .await
        .unwrap();
    let body = problem(res, 500).await;
    assert_eq!(
        body["detail"],
        "the server failed to answer: try again, and report the request id if it persists"
    );
    assert!(!body.to_string().contains("damaged"), "{body}");
    // The same through the portal's page.
    let s = app.session("partner-acme").await;
    let page = s
        .client
        .get(app.url(&format!("/submissions/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("damaged"), "the page says too much");
    app.stop().await;
}
