//! The stage engine on real databases: releases per second through review → sign → GA (the
//! built-in pipeline; a reviewer approves each release as soon as it waits), side by side with
//! the submission pipeline's throughput (upload → analysis → signed verdict) on the same server
//! in the same run; and the fast-review package's assembly time for a plugin with 50 prior GA
//! versions (the hard case: the newest GA version is found among 50, and both bundles are read
//! again for their SBOM and signatures).
//!
//! `cargo bench -p stellar-server --bench releases` (SQLite; PostgreSQL too when
//! `STELLAR_BENCH_PG_URL` or the default `postgres://postgres@127.0.0.1:5432/postgres`
//! answers). `STELLAR_BENCH_RELEASES` changes the 60 releases per measurement.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark stops on any setup failure"
)]

use std::path::Path;
use std::time::{Duration, Instant};

use app::api::backend::Principal;
use app::delivery::{DecisionInput, NewRelease, ReleaseFilter, ReleaseState, Verdict};
use clap::Parser;
use sea_orm::{ConnectionTrait, Database, EntityTrait};
use stellar::cli::args::{Cli, Command};
use stellar::config::Config;
use stellar::services::Services;
use stellar::startup::Application;
use trust::keys::KeyPair;

fn config(url: &str, dir: &Path) -> Config {
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
        "2",
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
    config.demo_releases = false;
    config
}

/// The clean example as plugin `id` at `version`, signed with `key`.
fn bundle(key: &KeyPair, dir: &Path, id: &str, version: &str) -> Vec<u8> {
    let clean = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/plugins/clean");
    let work = dir.join(format!("src-{id}"));
    std::fs::create_dir_all(&work).unwrap();
    for f in ["plugin.wat", "sbom.cdx.json", "README.md"] {
        std::fs::copy(clean.join(f), work.join(f)).unwrap();
    }
    let m = std::fs::read_to_string(clean.join("plugin.toml"))
        .unwrap()
        .replace("id = \"acme-hello\"", &format!("id = \"{id}\""))
        .replace("version = \"1.0.0\"", &format!("version = \"{version}\""));
    std::fs::write(work.join("plugin.toml"), m).unwrap();
    plugin::pack::pack_dir(&work, std::slice::from_ref(key))
        .unwrap()
        .0
}

struct Bench {
    services: Services,
    partner: Principal,
    platform: Principal,
    reviewer: Principal,
}

impl Bench {
    async fn submit_and_judge(&self, bundles: Vec<Vec<u8>>) -> Vec<String> {
        let mut ids = Vec::new();
        for b in bundles {
            let s = match self
                .services
                .submissions
                .submit(&self.partner, "b.tar.gz", b)
                .await
            {
                Ok(s) => s,
                Err(_) => panic!("a bench bundle was refused"),
            };
            ids.push(s.id);
        }
        self.idle().await;
        ids
    }

    /// Waits until no job is due or running.
    async fn idle(&self) {
        while self.services.queue.busy().await.unwrap() > 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Releases each submission and approves each release as soon as it waits, until all GA.
    async fn release_all(&self, submissions: &[String]) {
        for s in submissions {
            self.services
                .releases
                .create(
                    &self.platform,
                    NewRelease {
                        submission: s.clone(),
                    },
                )
                .await
                .unwrap();
        }
        loop {
            self.idle().await;
            let waiting = self
                .services
                .releases
                .awaiting(&self.reviewer)
                .await
                .unwrap();
            if waiting.is_empty() {
                break;
            }
            for id in waiting {
                self.services
                    .releases
                    .decide(
                        &self.reviewer,
                        &id,
                        DecisionInput {
                            decision: Verdict::Approve,
                            reason: String::new(),
                        },
                    )
                    .await
                    .unwrap();
            }
        }
        let running = self
            .services
            .releases
            .list(
                &self.platform,
                ReleaseFilter {
                    state: Some(ReleaseState::Running),
                    ..ReleaseFilter::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(running.total, 0, "every release ended");
    }
}

struct Figures {
    submissions_per_s: f64,
    releases_per_s: f64,
    package_p50_ms: f64,
    package_p95_ms: f64,
}

async fn measure(name: &str, url: &str, dir: &Path, n: usize) -> Figures {
    let app = Application::build(config(url, dir)).await.unwrap();
    let services = app.services().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let bench = Bench {
        partner: services.accounts.act_as("partner-acme").await.unwrap(),
        platform: services.accounts.act_as("platform").await.unwrap(),
        reviewer: services.accounts.act_as("reviewer").await.unwrap(),
        services,
    };
    let key = KeyPair::generate().unwrap();
    let registered = bench
        .services
        .submissions
        .register_key(
            &bench.partner,
            app::types::NewPublisherKey {
                name: "bench".into(),
                public_key_pem: key.public().to_pem(),
                tenant: None,
            },
        )
        .await
        .unwrap();
    bench
        .services
        .submissions
        .approve_key(&Principal::operator("bench"), &registered.key_id)
        .await
        .unwrap();

    // The submission pipeline: n distinct plugins from upload to signed verdict.
    let bundles: Vec<Vec<u8>> = (0..n)
        .map(|i| bundle(&key, dir, &format!("bench-{i}"), "1.0.0"))
        .collect();
    let t = Instant::now();
    let subs = bench.submit_and_judge(bundles).await;
    let submissions_per_s = n as f64 / t.elapsed().as_secs_f64();

    // The stage engine: the same n versions released, each reviewed at once, to GA.
    let t = Instant::now();
    bench.release_all(&subs).await;
    let releases_per_s = n as f64 / t.elapsed().as_secs_f64();

    // The package of a plugin with 50 GA versions before it.
    let history: Vec<Vec<u8>> = (0..51)
        .map(|i| bundle(&key, dir, "bench-history", &format!("1.0.{i}")))
        .collect();
    let subs = bench.submit_and_judge(history).await;
    for s in &subs[..50] {
        bench.release_all(std::slice::from_ref(s)).await;
    }
    let newest = bench
        .services
        .releases
        .create(
            &bench.platform,
            NewRelease {
                submission: subs[50].clone(),
            },
        )
        .await
        .unwrap();
    bench.idle().await;
    let row = stellar::db::entities::release::Entity::find_by_id(newest.summary.id.clone())
        .one(&bench.services.db.conn)
        .await
        .unwrap()
        .unwrap();
    let mut times = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let p = bench
            .services
            .releases
            .build_package(&bench.services.db.conn, &row, chrono::Utc::now())
            .await
            .unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(p.previous_version.as_deref(), Some("1.0.49"), "{name}");
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let _ = stop.send(());
    let _ = server.await;
    Figures {
        submissions_per_s,
        releases_per_s,
        package_p50_ms: times[times.len() / 2],
        package_p95_ms: times[(times.len() * 95 / 100).min(times.len() - 1)],
    }
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let n: usize = std::env::var("STELLAR_BENCH_RELEASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("stellar-bench-releases-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    rt.block_on(async {
        let mut rows = Vec::new();
        let sqlite = format!("sqlite://{}", dir.join("bench.db").display());
        rows.push((
            "SQLite",
            measure("SQLite", &sqlite, &dir.join("sqlite"), n).await,
        ));
        let admin = std::env::var("STELLAR_BENCH_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        if let Ok(conn) = Database::connect(&admin).await {
            let db = format!("stellar_bench_releases_{}", std::process::id());
            let _ = conn
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{db}\""))
                .await;
            conn.execute_unprepared(&format!("CREATE DATABASE \"{db}\""))
                .await
                .unwrap();
            let base = admin
                .rsplit_once('/')
                .map(|(b, _)| b)
                .unwrap_or(&admin)
                .to_owned();
            rows.push((
                "PostgreSQL",
                measure("PostgreSQL", &format!("{base}/{db}"), &dir.join("pg"), n).await,
            ));
            let _ = conn
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
                .await;
        } else {
            eprintln!("PostgreSQL not reachable at {admin}: SQLite only");
        }
        println!("\nstage engine, {n} releases (review → sign → GA, approved at once), 2 workers");
        println!(
            "{:<11} {:>14} {:>13} {:>8} {:>22}",
            "backend", "submissions/s", "releases/s", "ratio", "package p50 / p95 (ms)"
        );
        for (name, f) in rows {
            println!(
                "{:<11} {:>14.1} {:>13.1} {:>7.2}× {:>13.1} / {:.1}",
                name,
                f.submissions_per_s,
                f.releases_per_s,
                f.releases_per_s / f.submissions_per_s,
                f.package_p50_ms,
                f.package_p95_ms
            );
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}
