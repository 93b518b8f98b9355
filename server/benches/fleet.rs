//! The fleet's hot paths on real databases, each against its side-by-side baseline in the same
//! run:
//! - channel polls per second (a host sends its last ETag and gets 304; and the changed case, a
//!   200 with the body), against a bare axum route on the same machine returning the same bytes;
//! - report ingestion (samples per second, batches of 20 samples from 1,000 hosts), against the
//!   same bare route taking the same request body;
//! - the analysis of one interval with 10,000 hosts reporting (20,000 report rows in the
//!   window), and the fleet_reports table's size per million samples.
//!
//! `cargo bench -p stellar-server --bench fleet` (SQLite; PostgreSQL too when
//! `STELLAR_BENCH_PG_URL` or the default `postgres://postgres@127.0.0.1:5432/postgres`
//! answers). `STELLAR_BENCH_SECONDS` changes the 3 s each load runs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark stops on any setup failure"
)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use app::delivery::{DecisionInput, NewRelease, Verdict};
use axum::routing::{get, post};
use clap::Parser;
use delivery::rollout::Histogram;
use sea_orm::{ConnectionTrait, Database, EntityTrait, Set};
use stellar::cli::args::{Cli, Command};
use stellar::clock::Clock;
use stellar::config::Config;
use stellar::db::entities::{fleet_host, fleet_report};
use stellar::services::Services;
use stellar::startup::Application;

const CONCURRENCY: usize = 32;
const HOSTS: u32 = 1_000;
const BATCH: usize = 20;
const ANALYSIS_HOSTS: u32 = 10_000;

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
        "0",
        "--log",
        "warn",
    ])
    .unwrap();
    let Command::Serve(args) = cli.command else {
        unreachable!("serve")
    };
    let mut config = Config::from_args(*args).unwrap();
    config.demo_submissions = true;
    config.demo_releases = false;
    // Jobs run when the bench says (no workers), on a clock it moves.
    config.services.clock = Clock::manual(chrono::Utc::now());
    config
}

async fn drain(s: &Services) {
    while s.work_once("bench").await.unwrap() {}
}

async fn release(s: &Services, plugin: &str, version: &str) -> String {
    let partner = s.accounts.act_as("partner-acme").await.unwrap();
    let platform = s.accounts.act_as("platform").await.unwrap();
    let reviewer = s.accounts.act_as("reviewer").await.unwrap();
    let sub = s
        .submissions
        .list(
            &partner,
            app::types::SubmissionFilter {
                plugin: Some(plugin.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|x| x.version == version)
        .unwrap()
        .id;
    let r = s
        .releases
        .create(&platform, NewRelease { submission: sub })
        .await
        .unwrap();
    drain(s).await;
    s.releases
        .decide(
            &reviewer,
            &r.summary.id,
            DecisionInput {
                decision: Verdict::Approve,
                reason: String::new(),
            },
        )
        .await
        .unwrap();
    drain(s).await;
    r.summary.id
}

/// Runs `CONCURRENCY` loops of `request` for `secs`; requests per second.
async fn load<F, Fut>(secs: f64, request: F) -> f64
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let request = Arc::new(request);
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|w| {
            let request = request.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let mut i = w as u64;
                while Instant::now() < deadline {
                    request(i).await;
                    done.fetch_add(1, Ordering::Relaxed);
                    i += CONCURRENCY as u64;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn sample(plugin: &str, version: &str, start: i64) -> serde_json::Value {
    let mut h = Histogram::default();
    for ms in [3, 5, 8, 12, 20, 40, 90] {
        for _ in 0..10 {
            h.record(ms);
        }
    }
    serde_json::json!({"plugin": plugin, "version": version, "interval_start": start,
        "interval_secs": 60, "calls": 70, "errors": 1, "crashes": 0, "latency": h})
}

struct Figures {
    bare_polls: f64,
    etag_polls: f64,
    changed_polls: f64,
    bare_posts: f64,
    samples_per_s: f64,
    analysis_ms: f64,
    bytes_per_million: f64,
}

async fn measure(url: &str, dir: &Path, secs: f64) -> Figures {
    let app = Application::build(config(url, dir)).await.unwrap();
    let addr = app.local_addr();
    let services = app.services().clone();
    let clock = services.queue.clock().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let base = format!("http://{addr}");
    // GA 1.0.0, then an analysed rollout of 1.0.1 (5 % → 100 %, every 5 minutes).
    release(&services, "acme-hello", "1.0.0").await;
    let platform = services.accounts.act_as("platform").await.unwrap();
    let spec = "format = 1\n[[pipeline]]\nname = \"canary\"\n[[pipeline.stage]]\nname = \"review\"\n\
         kind = \"approval\"\nrole = \"reviewer\"\napprovers = 1\n[[pipeline.stage]]\nname = \"sign\"\n\
         kind = \"sign\"\n[[pipeline.stage]]\nname = \"canary\"\nkind = \"rollout\"\nanalysis = \"default\"\n\
         steps = [{ percent = 5, hold = \"1h\" }, { percent = 100, hold = \"0s\" }]\n\
         [[pipeline.stage]]\nname = \"ga\"\nkind = \"ga\"\n";
    services
        .pipelines
        .publish(&platform, spec, None)
        .await
        .unwrap();
    let rolling = release(&services, "acme-hello", "1.0.1").await;
    let token = services
        .fleet
        .create_token(
            &platform,
            app::fleet::NewFleetToken {
                name: "bench".into(),
                host: None,
                group: Some("bench".into()),
                expires_in_days: None,
            },
        )
        .await
        .unwrap()
        .secret;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    // Every host polls once (its heartbeat, its cohort).
    let mut bodies = Vec::new();
    let mut etags = Vec::new();
    for h in 0..HOSTS {
        let res = client
            .get(format!("{base}/api/v1/fleet/channel"))
            .bearer_auth(&token)
            .header("stellar-host", format!("host-{h:05}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        etags.push(res.headers()["etag"].to_str().unwrap().to_owned());
        bodies.push(res.bytes().await.unwrap());
    }

    // The baseline: a bare axum route answering the same bytes (a 200 with the body, no
    // database, no authentication), and taking a body of the same size.
    let body = bodies[0].clone();
    let bare = axum::Router::new()
        .route(
            "/bare",
            get(move || {
                let body = body.clone();
                async move { ([("content-type", "application/json")], body) }
            }),
        )
        .route(
            "/bare",
            post(|b: axum::body::Bytes| async move { b.len().to_string() }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bare_addr = listener.local_addr().unwrap();
    let bare_server = tokio::spawn(async move { axum::serve(listener, bare).await });
    let bare_url = format!("http://{bare_addr}/bare");

    let c = client.clone();
    let u = bare_url.clone();
    let bare_polls = load(secs, move |_| {
        let c = c.clone();
        let u = u.clone();
        async move {
            let r = c.get(&u).send().await.unwrap();
            let _ = r.bytes().await.unwrap();
        }
    })
    .await;
    let etags = Arc::new(etags);
    let (c, b, t, e) = (client.clone(), base.clone(), token.clone(), etags.clone());
    let etag_polls = load(secs, move |i| {
        let (c, b, t, e) = (c.clone(), b.clone(), t.clone(), e.clone());
        async move {
            let h = (i % u64::from(HOSTS)) as usize;
            let r = c
                .get(format!("{b}/api/v1/fleet/channel"))
                .bearer_auth(&t)
                .header("stellar-host", format!("host-{h:05}"))
                .header("if-none-match", &e[h])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 304);
        }
    })
    .await;
    let (c, b, t) = (client.clone(), base.clone(), token.clone());
    let changed_polls = load(secs, move |i| {
        let (c, b, t) = (c.clone(), b.clone(), t.clone());
        async move {
            let h = i % u64::from(HOSTS);
            let r = c
                .get(format!("{b}/api/v1/fleet/channel"))
                .bearer_auth(&t)
                .header("stellar-host", format!("host-{h:05}"))
                .send()
                .await
                .unwrap();
            let _ = r.bytes().await.unwrap();
        }
    })
    .await;

    // Reports: each request a batch of 20 thirty-second samples of one host, of the version the
    // channel told it to run, all distinct (110 intervals in the last hour per host).
    let now = clock.now().timestamp();
    let versions: Arc<Vec<String>> = Arc::new(
        bodies
            .iter()
            .map(|b| {
                let v: serde_json::Value = serde_json::from_slice(b).unwrap();
                v["entries"][0]["version"].as_str().unwrap().to_owned()
            })
            .collect(),
    );
    let batch = {
        let versions = versions.clone();
        move |i: u64| {
            let host = (i % u64::from(HOSTS)) as usize;
            let round = (i / u64::from(HOSTS)) as i64;
            let samples: Vec<serde_json::Value> = (0..BATCH as i64)
                .map(|k| {
                    let slot = round * BATCH as i64 + k;
                    let mut s = sample("acme-hello", &versions[host], now - 3_300 + slot * 30);
                    s["interval_secs"] = serde_json::json!(30);
                    s
                })
                .collect();
            serde_json::json!({"host": format!("host-{host:05}"), "product_version": "2.3.0",
                "policy_pack": "marketplace-guardrails", "samples": samples})
        }
    };
    let bytes_len = serde_json::to_vec(&batch(0)).unwrap().len();
    let post_body = Arc::new(vec![b'x'; bytes_len]);
    let (c, u, pb) = (client.clone(), bare_url.clone(), post_body.clone());
    let bare_posts = load(secs, move |_| {
        let (c, u, pb) = (c.clone(), u.clone(), pb.clone());
        async move {
            let r = c.post(&u).body(pb.as_ref().clone()).send().await.unwrap();
            let _ = r.bytes().await.unwrap();
        }
    })
    .await;
    // At most five rounds per host (100 of its 110 intervals): no duplicates.
    let limit = u64::from(HOSTS) * 5;
    let next = Arc::new(AtomicU64::new(0));
    let (c, b, t, n) = (client.clone(), base.clone(), token.clone(), next.clone());
    let batch = Arc::new(batch);
    let batches = load(secs, move |_| {
        let (c, b, t, n, batch) = (c.clone(), b.clone(), t.clone(), n.clone(), batch.clone());
        async move {
            let i = n.fetch_add(1, Ordering::Relaxed);
            if i >= limit {
                return;
            }
            let r = c
                .post(format!("{b}/api/v1/fleet/reports"))
                .bearer_auth(&t)
                .json(&batch(i))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 202, "{:?}", r.text().await);
        }
    })
    .await;
    let sent = next.load(Ordering::Relaxed).min(limit);
    let samples_per_s =
        batches * BATCH as f64 * (sent as f64 / next.load(Ordering::Relaxed).max(1) as f64);

    // The analysis of one interval with 10,000 hosts: two intervals of reports each in the
    // window, inserted directly; the rollout's next analysis is due; one job judges it.
    let conn = &services.db.conn;
    let t0 = clock.now();
    let hosts: Vec<fleet_host::ActiveModel> = (0..ANALYSIS_HOSTS)
        .map(|h| fleet_host::ActiveModel {
            id: Set(format!("big-{h:05}")),
            token_id: Set(1),
            host_group: Set(Some("bench".into())),
            product_version: Set(Some("2.3.0".into())),
            region: Set(Some("eu-west".into())),
            policy_pack: Set(None),
            first_seen: Set(t0),
            last_poll: Set(t0 + chrono::TimeDelta::seconds(200)),
            last_report: Set(None),
        })
        .collect();
    for chunk in hosts.chunks(1000) {
        fleet_host::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(conn)
            .await
            .unwrap();
    }
    let latency = stellar::services::fleet::histogram_text(&{
        let mut h = Histogram::default();
        for ms in [3, 5, 8, 12, 20, 40, 90] {
            for _ in 0..10 {
                h.record(ms);
            }
        }
        h
    });
    let row = |h: u32, start: i64| {
        let canary = delivery::rollout::in_canary(&format!("big-{h:05}"), &rolling, 5);
        fleet_report::ActiveModel {
            host: Set(format!("big-{h:05}")),
            plugin_id: Set("acme-hello".into()),
            version: Set(if canary { "1.0.1" } else { "1.0.0" }.into()),
            interval_start: Set(start),
            interval_secs: Set(300),
            calls: Set(70),
            errors: Set(1),
            crashes: Set(0),
            latency: Set(latency.clone()),
            product_version: Set("2.3.0".into()),
            policy_pack: Set("marketplace-guardrails".into()),
            received_at: Set(t0.timestamp()),
            ..Default::default()
        }
    };
    let size = |conn: sea_orm::DatabaseConnection| async move {
        let sql = match conn.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => {
                "SELECT pg_total_relation_size('fleet_reports')::bigint AS n".to_owned()
            }
            // The whole file's growth: only fleet_reports (and its indexes) change meanwhile.
            _ => "SELECT page_count * page_size AS n FROM pragma_page_count(), pragma_page_size()"
                .to_owned(),
        };
        let r = conn
            .query_one_raw(sea_orm::Statement::from_string(
                conn.get_database_backend(),
                sql,
            ))
            .await
            .ok()
            .flatten();
        r.and_then(|r| r.try_get::<i64>("", "n").ok()).unwrap_or(0)
    };
    let before = size(conn.clone()).await;
    let mut rows = Vec::new();
    for h in 0..ANALYSIS_HOSTS {
        // Two intervals per host that end inside the first analysis' window.
        rows.push(row(h, t0.timestamp() - 290));
        rows.push(row(h, t0.timestamp() - 30));
    }
    for chunk in rows.chunks(1000) {
        fleet_report::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(conn)
            .await
            .unwrap();
    }
    let after = size(conn.clone()).await;
    let added = 2 * u64::from(ANALYSIS_HOSTS);
    let bytes_per_million = if after > before {
        (after - before) as f64 / added as f64 * 1e6
    } else {
        0.0
    };
    // The rollout's first analysis is due 5 minutes after it began.
    clock.advance(Duration::from_secs(301));
    let t = Instant::now();
    drain(&services).await;
    let analysis_ms = t.elapsed().as_secs_f64() * 1000.0;
    let judged = stellar::db::entities::rollout_interval::Entity::find()
        .all(conn)
        .await
        .unwrap();
    assert_eq!(judged.len(), 1, "one interval judged");
    let facts: serde_json::Value = serde_json::from_str(&judged[0].facts).unwrap();
    assert!(
        facts["baseline"]["hosts"].as_u64().unwrap() > 9_000,
        "the analysis saw the 10,000 hosts: {facts}"
    );

    bare_server.abort();
    let _ = stop.send(());
    let _ = server.await;
    Figures {
        bare_polls,
        etag_polls,
        changed_polls,
        bare_posts,
        samples_per_s,
        analysis_ms,
        bytes_per_million,
    }
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let secs: f64 = std::env::var("STELLAR_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("stellar-bench-fleet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    rt.block_on(async {
        let mut rows = Vec::new();
        let sqlite = format!("sqlite://{}", dir.join("bench.db").display());
        rows.push(("SQLite", measure(&sqlite, &dir.join("sqlite"), secs).await));
        let admin = std::env::var("STELLAR_BENCH_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        if let Ok(conn) = Database::connect(&admin).await {
            let db = format!("stellar_bench_fleet_{}", std::process::id());
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
                measure(&format!("{base}/{db}"), &dir.join("pg"), secs).await,
            ));
            let _ = conn
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
                .await;
        } else {
            eprintln!("PostgreSQL not reachable at {admin}: SQLite only");
        }
        println!(
            "\nfleet, {CONCURRENCY} concurrent clients, {secs} s per load, against a bare axum route in the same run"
        );
        println!(
            "{:<11} {:>10} {:>16} {:>16} {:>10} {:>18} {:>14} {:>16}",
            "backend",
            "bare GET/s",
            "304 polls/s (×)",
            "200 polls/s (×)",
            "bare POST/s",
            "samples/s (batches ×)",
            "analysis (ms)",
            "MB / 1M samples"
        );
        for (name, f) in rows {
            println!(
                "{:<11} {:>10.0} {:>9.0} ({:.2}×) {:>9.0} ({:.2}×) {:>10.0} {:>10.0} ({:.2}×) {:>14.1} {:>16.1}",
                name,
                f.bare_polls,
                f.etag_polls,
                f.etag_polls / f.bare_polls,
                f.changed_polls,
                f.changed_polls / f.bare_polls,
                f.bare_posts,
                f.samples_per_s,
                f.samples_per_s / BATCH as f64 / f.bare_posts,
                f.analysis_ms,
                f.bytes_per_million / 1e6
            );
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}
