//! Submission to verdict: latency (p50, p95) of the clean example through the whole server
//! (HTTP upload, intake, the queue, analysis in the sandbox, policy evaluation, the verdict and
//! its ledger entry and signature), side by side with the baseline of the same analysis and
//! evaluation called directly in process; and throughput with two workers.
//!
//! `cargo bench -p stellar-server --bench submissions` (SQLite; PostgreSQL too when
//! `STELLAR_BENCH_PG_URL` or the default `postgres://postgres@127.0.0.1:5432/postgres`
//! answers). `STELLAR_BENCH_SUBMISSIONS` changes the 200 submissions per measurement.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark stops on any setup failure"
)]

use std::path::Path;
use std::time::{Duration, Instant};

use clap::Parser;
use sea_orm::{ConnectionTrait, Database};
use serde_json::Value;
use stellar::cli::args::{Cli, Command};
use stellar::config::Config;
use stellar::startup::Application;
use trust::keys::KeyPair;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn config(url: &str, dir: &Path, workers: usize) -> Config {
    let cli = Cli::try_parse_from([
        "stellar",
        "serve",
        "--demo",
        "--addr",
        "127.0.0.1:0",
        "--database-url",
        url,
        "--key-dir",
        dir.join("keys").to_str().unwrap(),
        "--workers",
        &workers.to_string(),
        "--log",
        "warn",
        "--tenant-max-queued",
        "100000",
        "--tenant-max-bytes",
        "100000000000",
    ])
    .unwrap();
    let Command::Serve(args) = cli.command else {
        unreachable!("serve")
    };
    let mut config = Config::from_args(*args).unwrap();
    config.demo_submissions = false;
    config
}

struct Figures {
    p50: f64,
    p95: f64,
    throughput: f64,
}

/// The clean example packed `n` times as versions 1.0.0, 1.0.1, …: each submission is a new
/// version, as a partner's would be (the same version twice is denied by `version_not_newer`).
fn bundles(key: &KeyPair, n: usize, dir: &Path) -> Vec<Vec<u8>> {
    let clean = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/plugins/clean");
    let work = dir.join("clean");
    std::fs::create_dir_all(&work).unwrap();
    for f in ["plugin.wat", "sbom.cdx.json", "README.md"] {
        std::fs::copy(clean.join(f), work.join(f)).unwrap();
    }
    let manifest = std::fs::read_to_string(clean.join("plugin.toml")).unwrap();
    (0..n)
        .map(|i| {
            let m = manifest.replace("version = \"1.0.0\"", &format!("version = \"1.0.{i}\""));
            std::fs::write(work.join("plugin.toml"), m).unwrap();
            plugin::pack::pack_dir(&work, std::slice::from_ref(key))
                .unwrap()
                .0
        })
        .collect()
}

async fn measure(url: &str, dir: &Path, all: &[Vec<u8>], key: &KeyPair, n: usize) -> Figures {
    let app = Application::build(config(url, dir, 2)).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let token = app
        .services()
        .accounts
        .create_token(
            &app::api::backend::Principal::operator("bench"),
            app::types::NewApiToken {
                name: "bench".into(),
                user: Some("partner-acme".into()),
                expires_in_days: None,
                scopes: None,
            },
        )
        .await
        .unwrap()
        .secret;
    let services = app.services().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let res = client
        .post(format!("{base}/api/v1/publisher-keys"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "bench", "public_key_pem": key.public().to_pem()}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success() || res.status().as_u16() == 409);
    // Approved, as secops would: signatures by it count.
    services
        .submissions
        .approve_key(
            &app::api::backend::Principal::operator("bench"),
            &key.id().0,
        )
        .await
        .unwrap();
    let submit = |client: reqwest::Client, base: String, token: String, bundle: Vec<u8>| async move {
        let form = reqwest::multipart::Form::new().part(
            "bundle",
            reqwest::multipart::Part::bytes(bundle).file_name("clean.tar.gz"),
        );
        let v: Value = client
            .post(format!("{base}/api/v1/submissions"))
            .bearer_auth(&token)
            .multipart(form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["id"].as_str().unwrap().to_owned()
    };
    let done = |client: reqwest::Client, base: String, token: String, id: String| async move {
        loop {
            let v: Value = client
                .get(format!("{base}/api/v1/submissions/{id}"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if v["summary"]["status"] == "done" {
                assert_eq!(v["verdict"]["decision"], "pass", "{}", v["verdict"]);
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    // Latency: one submission at a time, from the upload to the stored verdict.
    let mut lat = Vec::new();
    for bundle in &all[..n] {
        let t = Instant::now();
        let id = submit(client.clone(), base.clone(), token.clone(), bundle.to_vec()).await;
        done(client.clone(), base.clone(), token.clone(), id).await;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    // Throughput: n submissions at once, two workers.
    let t = Instant::now();
    let mut ids = Vec::new();
    for bundle in &all[n..2 * n] {
        ids.push(submit(client.clone(), base.clone(), token.clone(), bundle.to_vec()).await);
    }
    for id in ids {
        done(client.clone(), base.clone(), token.clone(), id).await;
    }
    let throughput = n as f64 / t.elapsed().as_secs_f64();
    let _ = stop.send(());
    let _ = server.await;
    Figures {
        p50: percentile(&lat, 0.5),
        p95: percentile(&lat, 0.95),
        throughput,
    }
}

/// The same work without the server: intake, analysis and evaluation in process.
fn baseline(bundle: &[u8], key: &KeyPair, n: usize) -> (f64, f64) {
    let pack = stellar::services::policy::built_in().unwrap();
    let hosts = plugin::sbom::parse_hosts(plugin::sbom::DEFAULT_HOSTS).unwrap();
    let advisories = plugin::sbom::parse_advisories(plugin::sbom::DEFAULT_ADVISORIES).unwrap();
    let ctx = plugin::Context {
        publisher: plugin::Publisher {
            id: "acme".into(),
            verified: true,
            tier: "partner".into(),
        },
        publisher_keys: vec![key.public().clone()],
        egress: plugin::sandbox::EgressRules::open(),
        caps: plugin::sandbox::Caps::default(),
        previous: None,
        advisories,
        hosts,
    };
    let today = chrono::Utc::now().date_naive();
    let mut lat = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let inspected = plugin::inspect(bundle, &plugin::Limits::default()).unwrap();
        let analysis = plugin::analyse(&inspected, &ctx);
        let verdict = pack
            .pack
            .evaluate_facts(&analysis.facts, &dsl::EvalOptions::new(today))
            .unwrap();
        assert!(verdict.findings.is_empty(), "{:?}", verdict.findings);
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    (percentile(&lat, 0.5), percentile(&lat, 0.95))
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let n: usize = std::env::var("STELLAR_BENCH_SUBMISSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = std::env::temp_dir().join(format!("stellar-bench-sub-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = KeyPair::generate().unwrap();
    let all = bundles(&key, 2 * n, &dir);
    let (b50, b95) = baseline(&all[0], &key, n);
    println!(
        "baseline (in process: intake + analysis + evaluation): p50 {b50:.2} ms, p95 {b95:.2} ms"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut backends = vec![(
        "SQLite".to_owned(),
        format!("sqlite://{}", dir.join("bench.db").display()),
    )];
    let admin = std::env::var("STELLAR_BENCH_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let pg_db = format!("stellar_bench_sub_{}", std::process::id());
    let pg_ok = rt.block_on(async {
        let Ok(conn) = Database::connect(&admin).await else {
            return false;
        };
        let ok = conn
            .execute_unprepared(&format!("CREATE DATABASE \"{pg_db}\""))
            .await
            .is_ok();
        let _ = conn.close().await;
        ok
    });
    if pg_ok {
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        backends.push(("PostgreSQL".to_owned(), format!("{base}/{pg_db}")));
    }
    println!(
        "\n| database | p50 ms | p95 ms | p50 ÷ baseline p50 | throughput, 2 workers (verdicts/s) |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for (name, url) in &backends {
        let f = rt.block_on(measure(url, &dir.join(name), &all, &key, n));
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} |",
            f.p50,
            f.p95,
            f.p50 / b50,
            f.throughput
        );
    }
    if pg_ok {
        rt.block_on(async {
            if let Ok(conn) = Database::connect(&admin).await {
                let _ = conn
                    .execute_unprepared(&format!(
                        "DROP DATABASE IF EXISTS \"{pg_db}\" WITH (FORCE)"
                    ))
                    .await;
                let _ = conn.close().await;
            }
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
}
