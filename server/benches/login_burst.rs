//! `/healthz` latency during a burst of wrong sign-ins, as a ratio against the same probe on
//! an idle server, in one run: the throttle counts attempts before any password check and the
//! password hasher runs off the async workers, so a burst must not stall other requests.
//!
//! Two bursts: from **one address** (the throttle refuses most attempts before any work), and
//! the hard case, from **many addresses** through a trusted proxy, each attempt a different
//! username (every attempt reaches the password hasher).
//!
//! `cargo bench -p stellar-server --bench login_burst` (SQLite). `STELLAR_BENCH_PROBES` changes
//! the 300 probes per measurement.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark stops on any setup failure"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use clap::Parser;
use stellar::cli::args::{Cli, Command};
use stellar::config::Config;
use stellar::startup::Application;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn probe(client: &reqwest::Client, base: &str, n: usize) -> (f64, f64) {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let res = client.get(format!("{base}/healthz")).send().await.unwrap();
        assert!(res.status().is_success());
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    (percentile(&times, 0.5), percentile(&times, 0.95))
}

/// Runs waves of 50 parallel wrong sign-ins until `stop`; returns how many were sent.
fn burst(base: String, spread: bool, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let sent = Arc::new(AtomicU64::new(0));
        let mut wave = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let mut tasks = Vec::with_capacity(50);
            for i in 0..50u64 {
                let (client, base, sent) = (client.clone(), base.clone(), sent.clone());
                let n = wave * 50 + i;
                tasks.push(tokio::spawn(async move {
                    let user = if spread {
                        format!("user-{n}")
                    } else {
                        "secops".into()
                    };
                    let mut req = client.post(format!("{base}/auth/login")).form(&[
                        ("username", user.as_str()),
                        ("password", "wrong-password-x"),
                    ]);
                    if spread {
                        let addr = format!("198.51.{}.{}", (n / 250) % 250, n % 250 + 1);
                        req = req.header("x-forwarded-for", addr);
                    }
                    let _ = req.send().await;
                    sent.fetch_add(1, Ordering::Relaxed);
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
            wave += 1;
        }
        sent.load(Ordering::Relaxed)
    })
}

async fn scenario(spread: bool, probes: usize) {
    let dir = std::env::temp_dir().join(format!("stellar-bench-login-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/b.db", dir.display());
    let cli = Cli::try_parse_from([
        "stellar",
        "serve",
        "--demo",
        "--addr",
        "127.0.0.1:0",
        "--database-url",
        &url,
        "--key-dir",
        dir.join("keys").to_str().unwrap(),
        "--log",
        "error",
        "--trust-proxy",
    ])
    .unwrap();
    let Command::Serve(args) = cli.command else {
        unreachable!("serve")
    };
    let mut config = Config::from_args(*args).unwrap();
    config.demo_submissions = false;
    let app = Application::build(config).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    probe(&client, &base, 20).await; // warm up
    let (idle50, idle95) = probe(&client, &base, probes).await;
    let stop = Arc::new(AtomicBool::new(false));
    let attacker = burst(base.clone(), spread, stop.clone());
    let started = Instant::now();
    let (b50, b95) = probe(&client, &base, probes).await;
    stop.store(true, Ordering::Relaxed);
    let sent = attacker.await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}: idle p50 {idle50:.2} ms p95 {idle95:.2} ms; during the burst ({:.0} sign-ins/s) p50 {b50:.2} ms p95 {b95:.2} ms; ratio p50 {:.2}, p95 {:.2}",
        if spread {
            "many addresses, a new username each (the hard case)"
        } else {
            "one address, one username"
        },
        sent as f64 / secs,
        b50 / idle50,
        b95 / idle95
    );
    let _ = stop_server.send(());
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    // reqwest is built without a default TLS provider (see server/Cargo.toml).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let probes: usize = std::env::var("STELLAR_BENCH_PROBES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        scenario(false, probes).await;
        scenario(true, probes).await;
    });
}
