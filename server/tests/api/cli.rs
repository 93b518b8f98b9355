//! The command line: `stellar migrate`, `stellar admin create-user`, `create-token`.

use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestDb, spawn_on, test_config};

fn stellar(args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stellar"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run stellar");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_create_a_tenant_a_user_and_a_working_token() {
    let db = TestDb::new().await;
    let url = db.url.clone();
    let (ok, out, err) = stellar(&["migrate", "--database-url", &url], None);
    assert!(ok, "{err}");
    assert!(out.contains("migrations applied"));
    let (ok, _, err) = stellar(
        &[
            "admin",
            "create-tenant",
            "--database-url",
            &url,
            "--slug",
            "initech",
            "--name",
            "Initech",
        ],
        None,
    );
    assert!(ok, "{err}");
    let (ok, out, err) = stellar(
        &[
            "admin",
            "create-user",
            "--database-url",
            &url,
            "--username",
            "milton",
            "--role",
            "partner",
            "--tenant",
            "initech",
            "--password-stdin",
        ],
        Some("red-stapler-forever\n"),
    );
    assert!(ok, "{err}");
    assert!(out.contains("created user milton"));
    let (ok, _, err) = stellar(
        &[
            "admin",
            "create-user",
            "--database-url",
            &url,
            "--username",
            "bob",
            "--role",
            "partner",
        ],
        None,
    );
    assert!(!ok);
    assert!(err.contains("tenant"), "{err}");
    let (ok, out, err) = stellar(
        &[
            "admin",
            "create-token",
            "--database-url",
            &url,
            "--user",
            "milton",
        ],
        None,
    );
    assert!(ok, "{err}");
    let token = out.trim().to_owned();
    assert!(token.starts_with("stl_"), "{out}");
    let (ok, _, err) = stellar(
        &[
            "admin",
            "create-token",
            "--database-url",
            &url,
            "--user",
            "nobody",
        ],
        None,
    );
    assert!(!ok);
    assert!(err.contains("no user `nobody`"), "{err}");

    let mut config = test_config(&db);
    config.demo = false;
    let app = spawn_on(db, config).await;
    let me: Value = app
        .bearer(&token)
        .get(app.url("/api/v1/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "milton");
    assert_eq!(me["tenant"]["slug"], "initech");
    let res = app
        .client()
        .post(app.url("/auth/login"))
        .form(&[("username", "milton"), ("password", "red-stapler-forever")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flags_and_urls_are_explained() {
    let (ok, _, err) = stellar(
        &[
            "serve",
            "--database-url",
            "mysql://x/y",
            "--addr",
            "127.0.0.1:0",
        ],
        None,
    );
    assert!(!ok);
    assert!(err.contains("unsupported database URL"), "{err}");
    let (ok, _, err) = stellar(
        &["serve", "--public-url", "ftp://x", "--addr", "127.0.0.1:0"],
        None,
    );
    assert!(!ok);
    assert!(err.contains("--public-url"), "{err}");
}
