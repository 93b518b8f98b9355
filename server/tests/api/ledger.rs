//! The audit ledger: every account change is an entry; the API's proofs verify offline; direct
//! database tampering is caught and the first bad entry named; exports verify offline.

use chrono::Timelike;
use reqwest::{Client, StatusCode};
use serde_json::Value;
use trust::keys::TrustRoot;
use trust::ledger::{ConsistencyBundle, InclusionBundle};

use crate::helpers::{PASSWORD, TestApp, problem, spawn_app, sql, stellar_cli};

async fn get(client: &Client, url: &str) -> Value {
    let res = client.get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{url}");
    res.json().await.unwrap()
}

async fn trust_root(app: &TestApp) -> (TrustRoot, std::path::PathBuf) {
    let text = app
        .client()
        .get(app.url("/api/v1/trust-root"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let path = app.db.dir.join("trust-root.json");
    std::fs::write(&path, &text).unwrap();
    (TrustRoot::from_json(&text).expect("trust root"), path)
}

fn actions(page: &Value) -> Vec<String> {
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_account_change_writes_an_entry_and_the_list_filters() {
    let app = spawn_app().await;
    // A failed sign-in, a sign-in, token and user changes, a sign-out.
    let res = app
        .client()
        .post(app.url("/auth/login"))
        .form(&[("username", "admin"), ("password", "wrong-password")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let s = app.session("admin").await;
    let res = s
        .client
        .post(app.url("/api/v1/tokens"))
        .header("x-csrf-token", &s.csrf)
        .json(&serde_json::json!({"name": "audit-me"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = res.json::<Value>().await.unwrap()["token"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = s
        .client
        .delete(app.url(&format!("/api/v1/tokens/{id}")))
        .header("x-csrf-token", &s.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = s
        .client
        .post(app.url("/api/v1/users"))
        .header("x-csrf-token", &s.csrf)
        .json(&serde_json::json!({"username": "auditee", "role": "reviewer", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = s
        .client
        .patch(app.url("/api/v1/users/auditee"))
        .header("x-csrf-token", &s.csrf)
        .json(&serde_json::json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    app.session("partner-acme").await;
    let res = s
        .client
        .post(app.url("/auth/logout"))
        .header("x-csrf-token", &s.csrf)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success() || res.status().is_redirection());

    let secops = app.bearer(&app.token("secops").await);
    let page = get(&secops, &app.url("/api/v1/ledger/entries?per_page=200")).await;
    let all = actions(&page);
    for a in [
        "key.generate",
        "tenant.create",
        "user.create",
        "login.failed",
        "login",
        "token.create",
        "token.revoke",
        "user.update",
        "logout",
    ] {
        assert!(all.iter().any(|x| x == a), "no `{a}` entry in {all:?}");
    }
    assert_eq!(page["total"], page["size"]);
    // Newest first.
    let seqs: Vec<u64> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]));

    // The user change names who did it and what changed, never the secret.
    let page = get(
        &secops,
        &app.url("/api/v1/ledger/entries?action=user.update"),
    )
    .await;
    let e = &page["entries"][0];
    assert_eq!(e["actor"], "admin");
    assert_eq!(e["subject"], "auditee");
    assert!(e["details"].as_str().unwrap().contains("disabled"));

    // Filters: an action prefix, an actor, a tenant, a time window.
    let page = get(&secops, &app.url("/api/v1/ledger/entries?action=token.")).await;
    assert!(actions(&page).iter().all(|a| a.starts_with("token.")));
    assert!(page["total"].as_u64().unwrap() >= 3);
    let page = get(
        &secops,
        &app.url("/api/v1/ledger/entries?actor=partner-acme"),
    )
    .await;
    assert!(actions(&page).contains(&"login".to_owned()));
    assert!(
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == "partner-acme")
    );
    let page = get(&secops, &app.url("/api/v1/ledger/entries?tenant=acme")).await;
    assert!(page["total"].as_u64().unwrap() >= 2);
    assert!(
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["tenant"] == "acme")
    );
    let page = get(&secops, &app.url("/api/v1/ledger/entries?until=2000-01-01")).await;
    assert_eq!(page["total"], 0);
    let page = get(
        &secops,
        &app.url("/api/v1/ledger/entries?since=2000-01-01&per_page=2&page=2"),
    )
    .await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    assert_eq!(page["page"], 2);

    // Bad filters are 422 problems naming the field.
    let res = secops
        .get(app.url("/api/v1/ledger/entries?per_page=0"))
        .send()
        .await
        .unwrap();
    let body = problem(res, 422).await;
    assert_eq!(body["field"], "per_page");
    let res = secops
        .get(app.url("/api/v1/ledger/entries?since=yesterday"))
        .send()
        .await
        .unwrap();
    let body = problem(res, 422).await;
    assert_eq!(body["field"], "since");

    // Reviewers and partners may not read it.
    let reviewer = app.bearer(&app.token("reviewer").await);
    let res = reviewer
        .get(app.url("/api/v1/ledger/entries"))
        .send()
        .await
        .unwrap();
    problem(res, 403).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inclusion_and_consistency_proofs_verify_offline_and_are_logarithmic() {
    let app = spawn_app().await;
    let admin = app.bearer(&app.token("admin").await);
    let (root, _) = trust_root(&app).await;

    let res = admin
        .post(app.url("/api/v1/ledger/checkpoints"))
        .send()
        .await
        .unwrap();
    // 201, or 200 when the periodic checkpoint (it ticks at start-up) signed this size first.
    assert!(
        matches!(res.status(), StatusCode::CREATED | StatusCode::OK),
        "{}",
        res.status()
    );
    let first: Value = res.json().await.unwrap();
    let old = first["size"].as_u64().unwrap();
    // No growth: the same checkpoint, 200.
    let res = admin
        .post(app.url("/api/v1/ledger/checkpoints"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    for _ in 0..20 {
        app.session("reviewer").await;
    }
    let res = admin
        .post(app.url("/api/v1/ledger/checkpoints"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let second: Value = res.json().await.unwrap();
    let new = second["size"].as_u64().unwrap();
    assert!(new >= old + 20);

    let bound = 64 - (new - 1).leading_zeros() as usize; // ceil(log2(new))
    for seq in [0, 1, old - 1, old, new / 2, new - 1] {
        let body = get(
            &admin,
            &app.url(&format!("/api/v1/ledger/entries/{seq}/proof")),
        )
        .await;
        let bundle: InclusionBundle = serde_json::from_value(body).expect("an inclusion bundle");
        assert_eq!(bundle.tree_size, new);
        assert!(
            bundle.proof.len() <= bound,
            "{} > {bound}",
            bundle.proof.len()
        );
        let cp = bundle.verify(&root).expect("the proof verifies");
        assert_eq!(cp.size, new);

        // A changed entry, or a proof against a forged checkpoint, does not verify.
        let mut changed = bundle.clone();
        changed.entry.subject.push('!');
        changed.entry.entry_hash = changed.entry.compute_hash();
        assert!(changed.verify(&root).is_err());
        let mut forged = bundle.clone();
        forged.checkpoint =
            forged
                .checkpoint
                .replacen(&format!("\n{new}\n"), &format!("\n{}\n", new + 1), 1);
        let err = forged.verify(&root).unwrap_err();
        assert!(err.to_string().contains("forged"), "{err}");
    }
    // Inclusion in the older checkpoint, by size.
    let body = get(
        &admin,
        &app.url(&format!("/api/v1/ledger/entries/0/proof?size={old}")),
    )
    .await;
    let bundle: InclusionBundle = serde_json::from_value(body).unwrap();
    assert_eq!(bundle.verify(&root).unwrap().size, old);

    let body = get(
        &admin,
        &app.url(&format!(
            "/api/v1/ledger/proofs/consistency?old={old}&new={new}"
        )),
    )
    .await;
    let bundle: ConsistencyBundle = serde_json::from_value(body).expect("a consistency bundle");
    assert!(bundle.proof.len() <= 2 * bound);
    bundle
        .verify(&root)
        .expect("the old tree is a prefix of the new one");
    let mut bad = bundle.clone();
    bad.proof[0] = "00".repeat(32);
    assert!(bad.verify(&root).is_err());

    // Sizes that are not checkpoints are 404 problems; nonsense is 422.
    let res = admin
        .get(app.url(&format!(
            "/api/v1/ledger/proofs/consistency?old=1&new={new}"
        )))
        .send()
        .await
        .unwrap();
    problem(res, 404).await;
    let res = admin
        .get(app.url("/api/v1/ledger/proofs/consistency?old=5&new=2"))
        .send()
        .await
        .unwrap();
    problem(res, 422).await;
    let res = admin
        .get(app.url("/api/v1/ledger/entries/999999/proof"))
        .send()
        .await
        .unwrap();
    problem(res, 404).await;
    app.stop().await;
}

/// Runs `stellar ledger verify` against the test database.
fn verify_db(app: &TestApp, root: &std::path::Path) -> (bool, String, String) {
    stellar_cli(
        &[
            "ledger",
            "verify",
            "--database-url",
            &app.db.url,
            "--trust-root",
            root.to_str().unwrap(),
            "--origin",
            "stellar.test/ledger",
        ],
        None,
        false,
    )
}

const COLUMNS: &str = "time, actor, tenant, action, subject, details, prev_hash, entry_hash";

/// Sets row `to` to the content the `kept` table holds for `from`.
async fn copy_row(url: &str, to: u64, from: u64) {
    let sets = COLUMNS
        .split(", ")
        .map(|c| format!("{c} = (SELECT {c} FROM kept WHERE seq = {from})"))
        .collect::<Vec<_>>()
        .join(", ");
    sql(
        url,
        &format!("UPDATE ledger_entries SET {sets} WHERE seq = {to}"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_deleting_or_reordering_rows_is_caught_and_the_first_bad_entry_named() {
    let app = spawn_app().await;
    for _ in 0..6 {
        app.session("reviewer").await;
    }
    let admin = app.bearer(&app.token("admin").await);
    let res = admin
        .post(app.url("/api/v1/ledger/checkpoints"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let (_, root) = trust_root(&app).await;
    let (ok, out, err) = verify_db(&app, &root);
    assert!(ok, "{out}{err}");
    assert!(out.contains("hash chain is intact"), "{out}");
    let server_check = |expect_ok: bool| {
        let admin = admin.clone();
        let url = app.url("/api/v1/ledger/verifications");
        async move {
            let v: Value = admin.post(url).send().await.unwrap().json().await.unwrap();
            assert_eq!(v["ok"], expect_ok, "{v}");
            v["message"].as_str().unwrap().to_owned()
        }
    };
    server_check(true).await;
    let url = &app.db.url;

    // Edit one row.
    sql(
        url,
        "CREATE TABLE kept AS SELECT * FROM ledger_entries WHERE seq = 3",
    )
    .await;
    sql(
        url,
        "UPDATE ledger_entries SET subject = 'forged' WHERE seq = 3",
    )
    .await;
    let (ok, _, err) = verify_db(&app, &root);
    assert!(!ok);
    assert!(err.contains("entry 3 was changed"), "{err}");
    assert!(server_check(false).await.contains("entry 3"));
    copy_row(url, 3, 3).await;
    sql(url, "DROP TABLE kept").await;
    let (ok, out, err) = verify_db(&app, &root);
    assert!(ok, "restored: {out}{err}");

    // Delete one row (kept aside, then put back).
    sql(
        url,
        "CREATE TABLE kept AS SELECT * FROM ledger_entries WHERE seq = 5",
    )
    .await;
    sql(url, "DELETE FROM ledger_entries WHERE seq = 5").await;
    let (ok, _, err) = verify_db(&app, &root);
    assert!(!ok);
    assert!(err.contains("entry 5 is missing"), "{err}");
    assert!(server_check(false).await.contains("entry 5"));
    sql(url, "INSERT INTO ledger_entries SELECT * FROM kept").await;
    sql(url, "DROP TABLE kept").await;
    assert!(verify_db(&app, &root).0);

    // Reorder two rows: swap their contents, keeping the positions.
    sql(
        url,
        "CREATE TABLE kept AS SELECT * FROM ledger_entries WHERE seq IN (6, 7)",
    )
    .await;
    copy_row(url, 6, 7).await;
    copy_row(url, 7, 6).await;
    let (ok, _, err) = verify_db(&app, &root);
    assert!(!ok);
    assert!(err.contains("entry 6 does not link to entry 5"), "{err}");
    assert!(server_check(false).await.contains("entry 6"));
    copy_row(url, 6, 6).await;
    copy_row(url, 7, 7).await;
    sql(url, "DROP TABLE kept").await;
    assert!(verify_db(&app, &root).0);

    // A forged checkpoint (its size changed, the signature kept) is rejected.
    sql(
        url,
        "UPDATE ledger_checkpoints SET note = REPLACE(note, 'stellar.test/ledger', 'stellar.evil/ledger')",
    )
    .await;
    let (ok, _, err) = verify_db(&app, &root);
    assert!(!ok);
    assert!(err.contains("forged"), "{err}");
    assert!(!server_check(false).await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_verifies_offline_and_a_changed_line_is_named() {
    let app = spawn_app().await;
    let admin = app.bearer(&app.token("admin").await);
    let res = admin
        .post(app.url("/api/v1/ledger/checkpoints"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = admin
        .get(app.url("/api/v1/ledger/export"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let text = res.text().await.unwrap();
    let (_, root) = trust_root(&app).await;
    let export = app.db.dir.join("ledger.jsonl");
    std::fs::write(&export, &text).unwrap();
    let args = |file: &std::path::Path| {
        vec![
            "ledger".to_owned(),
            "verify".into(),
            "--export".into(),
            file.to_str().unwrap().into(),
            "--trust-root".into(),
            root.to_str().unwrap().into(),
            "--origin".into(),
            "stellar.test/ledger".into(),
        ]
    };
    let run = |file: &std::path::Path| {
        let a = args(file);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        stellar_cli(&refs, None, true)
    };
    let (ok, out, err) = run(&export);
    assert!(ok, "{out}{err}");
    assert!(out.contains("signed checkpoint(s)"), "{out}");

    // Change the actor of the third entry (line 4).
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut e: Value = serde_json::from_str(&lines[3]).unwrap();
    e["actor"] = "mallory".into();
    lines[3] = e.to_string();
    let bad = app.db.dir.join("bad.jsonl");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let (ok, _, err) = run(&bad);
    assert!(!ok);
    assert!(err.contains("entry 2 was changed"), "{err}");

    // A history rewritten and re-signed with the ledger key itself verifies on its own, but
    // not against a checkpoint saved before the rewrite.
    let trusted = app.db.dir.join("trusted-checkpoint.txt");
    let header: Value = serde_json::from_str(&lines[0]).unwrap();
    let saved = header["checkpoints"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap();
    std::fs::write(&trusted, saved).unwrap();
    let mut entries: Vec<trust::ledger::Entry> = text
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    entries[2].actor = "mallory".into();
    let mut tree = trust::merkle::MemoryTree::new();
    for i in 0..entries.len() {
        if i > 0 {
            entries[i].prev_hash = entries[i - 1].entry_hash.clone();
        }
        entries[i].entry_hash = entries[i].compute_hash();
        tree.push(entries[i].leaf());
    }
    let key_id = admin
        .get(app.url("/api/v1/ledger/checkpoint"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pem =
        std::fs::read_to_string(app.db.dir.join("keys").join(format!("{key_id}.pem"))).unwrap();
    let stolen = trust::keys::KeyPair::from_pkcs8_pem(&pem, None).unwrap();
    let note = trust::checkpoint::Checkpoint {
        origin: "stellar.test/ledger".into(),
        size: entries.len() as u64,
        root: tree.root(),
        time: Some(chrono::Utc::now().with_nanosecond(0).unwrap()),
    }
    .sign("stellar.test/ledger", &stolen);
    let forked_header = serde_json::json!({
        "format": "stellar-ledger/v1",
        "origin": "stellar.test/ledger",
        "size": entries.len(),
        "checkpoints": [note],
    });
    let mut forked = vec![forked_header.to_string()];
    forked.extend(entries.iter().map(|e| serde_json::to_string(e).unwrap()));
    let fork = app.db.dir.join("fork.jsonl");
    std::fs::write(&fork, forked.join("\n")).unwrap();
    let (ok, out, err) = run(&fork);
    assert!(ok, "the fork is self-consistent: {out}{err}");
    let mut with_trusted = args(&fork);
    with_trusted.extend(["--checkpoint".into(), trusted.to_str().unwrap().into()]);
    let refs: Vec<&str> = with_trusted.iter().map(String::as_str).collect();
    let (ok, _, err) = stellar_cli(&refs, None, true);
    assert!(!ok);
    assert!(err.contains("do not match the signed checkpoint"), "{err}");

    // A cut export.
    let cut = app.db.dir.join("cut.jsonl");
    std::fs::write(&cut, text.lines().take(3).collect::<Vec<_>>().join("\n")).unwrap();
    let (ok, _, err) = run(&cut);
    assert!(!ok);
    assert!(err.contains("entries but 2 follow"), "{err}");
    app.stop().await;
}
