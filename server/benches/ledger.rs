//! The audit ledger on real databases: appends per second on SQLite and on PostgreSQL, side by
//! side with the baseline of a plain single-row insert of the same columns into the same
//! database (what writing an audit log without a chain, a tree or a lock costs); and inclusion
//! and consistency proofs served from the stored nodes of a 1,000,000-entry ledger, with their
//! offline verification.
//!
//! `cargo bench -p stellar-server --bench ledger` (PostgreSQL from `STELLAR_BENCH_PG_URL`,
//! default `postgres://postgres@127.0.0.1:5432/postgres`; `STELLAR_BENCH_ENTRIES` changes the
//! 1,000,000). Prints one table per backend.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark stops on any setup failure"
)]

use std::time::{Duration, Instant};

use sea_orm::{ActiveValue::Set, ConnectionTrait, Database, EntityTrait, Statement};
use stellar::db::Db;
use stellar::db::entities::{ledger_checkpoint, ledger_entry, ledger_node};
use stellar::services::keys::Keyring;
use stellar::services::ledger::Ledger;
use stellar::services::ledger_store::{LedgerStore, Record};
use trust::keys::TrustRoot;
use trust::ledger::{ConsistencyBundle, Entry, GENESIS, InclusionBundle};
use trust::merkle::MemoryTree;

const APPENDS: usize = 2000;
const WRITERS: usize = 8;

fn record(i: usize) -> Record {
    Record {
        actor: "bench".into(),
        tenant: Some("acme".into()),
        action: "bench.append".into(),
        subject: format!("thing-{i}"),
        details: serde_json::json!({"i": i, "note": "a typical small details object"}),
    }
}

struct Backend {
    name: &'static str,
    url: String,
    cleanup: Box<dyn FnOnce()>,
}

fn sqlite(dir: &std::path::Path, name: &str) -> Backend {
    let path = dir.join(format!("{name}.db"));
    let p2 = path.clone();
    Backend {
        name: "SQLite",
        url: format!("sqlite://{}", path.display()),
        cleanup: Box::new(move || {
            for s in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{s}", p2.display()));
            }
        }),
    }
}

async fn postgres(admin: &str, name: &str) -> Option<Backend> {
    let conn = Database::connect(admin).await.ok()?;
    let db = format!("stellar_bench_{name}_{}", std::process::id());
    conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{db}\""))
        .await
        .ok()?;
    conn.execute_unprepared(&format!("CREATE DATABASE \"{db}\""))
        .await
        .ok()?;
    let _ = conn.close().await;
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(admin)
        .to_owned();
    let admin = admin.to_owned();
    Some(Backend {
        name: "PostgreSQL",
        url: format!("{base}/{db}"),
        // Called from inside the benchmark's runtime: drop the database from another thread.
        cleanup: Box::new(move || {
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    if let Ok(c) = Database::connect(&admin).await {
                        let _ = c
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"
                            ))
                            .await;
                    }
                });
            })
            .join();
        }),
    })
}

fn per_sec(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// Appends per second (one writer, then `WRITERS` concurrent writers) against plain inserts.
async fn appends(b: &Backend) -> (f64, f64, f64, f64) {
    let db = Db::connect(&b.url).await.unwrap();
    db.migrate().await.unwrap();
    let conn = db.conn.clone();
    conn.execute_unprepared(
        "CREATE TABLE bench_plain (id INTEGER PRIMARY KEY, time TEXT, actor TEXT, tenant TEXT, action TEXT, subject TEXT, details TEXT, prev_hash TEXT, entry_hash TEXT)",
    )
    .await
    .unwrap();
    let ledger = LedgerStore::new(conn.clone(), "bench/ledger");
    let backend = conn.get_database_backend();
    let plain = |i: usize| {
        let r = record(i);
        Statement::from_sql_and_values(
            backend,
            match backend {
                sea_orm::DatabaseBackend::Postgres => {
                    "INSERT INTO bench_plain (id, time, actor, tenant, action, subject, details, prev_hash, entry_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                }
                _ => {
                    "INSERT INTO bench_plain (id, time, actor, tenant, action, subject, details, prev_hash, entry_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                }
            },
            [
                (i as i64).into(),
                chrono::Utc::now().to_rfc3339().into(),
                r.actor.into(),
                r.tenant.into(),
                r.action.into(),
                r.subject.into(),
                r.details.to_string().into(),
                GENESIS.into(),
                GENESIS.into(),
            ],
        )
    };

    // Warm up both paths.
    for i in 0..50 {
        ledger.record(record(i)).await.unwrap();
        conn.execute_raw(plain(1_000_000 + i)).await.unwrap();
    }

    let t = Instant::now();
    for i in 0..APPENDS {
        ledger.record(record(i)).await.unwrap();
    }
    let ledger_one = per_sec(APPENDS, t.elapsed());
    let t = Instant::now();
    for i in 0..APPENDS {
        conn.execute_raw(plain(i)).await.unwrap();
    }
    let plain_one = per_sec(APPENDS, t.elapsed());

    let per = APPENDS / WRITERS;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                ledger.record(record(w * per + i)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let ledger_many = per_sec(per * WRITERS, t.elapsed());
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let conn = conn.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                let id = 2_000_000 + w * per + i;
                let r = record(id);
                let st = Statement::from_sql_and_values(
                    backend,
                    match backend {
                        sea_orm::DatabaseBackend::Postgres => "INSERT INTO bench_plain (id, time, actor, tenant, action, subject, details, prev_hash, entry_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        _ => "INSERT INTO bench_plain (id, time, actor, tenant, action, subject, details, prev_hash, entry_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    },
                    [
                        (id as i64).into(),
                        chrono::Utc::now().to_rfc3339().into(),
                        r.actor.into(),
                        r.tenant.into(),
                        r.action.into(),
                        r.subject.into(),
                        r.details.to_string().into(),
                        GENESIS.into(),
                        GENESIS.into(),
                    ],
                );
                conn.execute_raw(st).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let plain_many = per_sec(per * WRITERS, t.elapsed());

    // The appended ledger is intact.
    let entries = ledger.all_entries().await.unwrap();
    trust::ledger::verify_chain(&entries).unwrap();
    db.close().await;
    (ledger_one, plain_one, ledger_many, plain_many)
}

/// Loads `n` chained entries and their Merkle nodes directly (as `n` appends would leave them).
async fn bulk_load(conn: &sea_orm::DatabaseConnection, n: u64) {
    let mut tree = MemoryTree::new();
    let mut prev = GENESIS.to_owned();
    let mut batch = Vec::with_capacity(1000);
    for seq in 0..n {
        let mut e = Entry {
            seq,
            time: format!("2026-11-28T00:00:00.{:06}Z", seq % 1_000_000),
            actor: format!("user-{}", seq % 97),
            tenant: Some(format!("tenant-{}", seq % 13)),
            action: "bench.load".into(),
            subject: format!("thing-{seq}"),
            details: "{}".into(),
            prev_hash: prev.clone(),
            entry_hash: String::new(),
        };
        e.entry_hash = e.compute_hash();
        prev = e.entry_hash.clone();
        tree.push(e.leaf());
        batch.push(ledger_entry::ActiveModel {
            seq: Set(e.seq as i64),
            time: Set(e.time),
            actor: Set(e.actor),
            tenant: Set(e.tenant),
            action: Set(e.action),
            subject: Set(e.subject),
            details: Set(e.details),
            prev_hash: Set(e.prev_hash),
            entry_hash: Set(e.entry_hash),
        });
        if batch.len() == 1000 {
            ledger_entry::Entity::insert_many(std::mem::take(&mut batch))
                .exec_without_returning(conn)
                .await
                .unwrap();
        }
    }
    if !batch.is_empty() {
        ledger_entry::Entity::insert_many(batch)
            .exec_without_returning(conn)
            .await
            .unwrap();
    }
    let mut nodes = Vec::with_capacity(1000);
    let mut level = 0u32;
    loop {
        let mut any = false;
        let mut idx = 0u64;
        while let Some(h) = trust::merkle::Nodes::node(&tree, level, idx) {
            any = true;
            nodes.push(ledger_node::ActiveModel {
                level: Set(level as i32),
                idx: Set(idx as i64),
                hash: Set(hex::encode(h)),
            });
            if nodes.len() == 1000 {
                ledger_node::Entity::insert_many(std::mem::take(&mut nodes))
                    .exec_without_returning(conn)
                    .await
                    .unwrap();
            }
            idx += 1;
        }
        if !any {
            break;
        }
        level += 1;
    }
    if !nodes.is_empty() {
        ledger_node::Entity::insert_many(nodes)
            .exec_without_returning(conn)
            .await
            .unwrap();
    }
    conn.execute_unprepared(&format!(
        "UPDATE ledger_head SET size = {n}, last_hash = '{prev}' WHERE id = 1"
    ))
    .await
    .unwrap();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

struct ProofFigures {
    load: Duration,
    inclusion: Duration,
    inclusion_hashes: usize,
    consistency: Duration,
    consistency_hashes: usize,
    verify_inclusion: Duration,
    verify_consistency: Duration,
}

async fn proofs(b: &Backend, n: u64, keys_dir: &std::path::Path) -> ProofFigures {
    let db = Db::connect(&b.url).await.unwrap();
    db.migrate().await.unwrap();
    let conn = db.conn.clone();
    let t = Instant::now();
    bulk_load(&conn, n - 1).await;
    let load = t.elapsed();
    let ledger = LedgerStore::new(conn.clone(), "bench/ledger");
    let keys = Keyring::new(conn.clone(), keys_dir.to_path_buf(), None);
    let service = Ledger::new(ledger.clone(), keys.clone());
    // The old checkpoint, then one more append (the key generation entry) and the new one.
    let old = n - 1 - 12_345;
    let old_cp = {
        service.sign_checkpoint().await.unwrap(); // generates the ledger key: size n
        let root = ledger.root(old).await.unwrap();
        let key = keys
            .private(
                &keys
                    .active(trust::keys::Purpose::LedgerCheckpoint)
                    .await
                    .unwrap()
                    .unwrap()
                    .key_id,
            )
            .unwrap()
            .unwrap();
        let cp = trust::checkpoint::Checkpoint {
            origin: "bench/ledger".into(),
            size: old,
            root,
            time: Some(chrono::Utc::now()),
        };
        let cp = trust::checkpoint::Checkpoint {
            time: cp
                .time
                .map(|t| chrono::Timelike::with_nanosecond(&t, 0).unwrap()),
            ..cp
        };
        let note = cp.sign("bench/ledger", &key);
        ledger_checkpoint::Entity::insert(ledger_checkpoint::ActiveModel {
            size: Set(old as i64),
            root_hash: Set(hex::encode(root)),
            note: Set(note),
            key_id: Set(key.id().0),
            created_at: Set(chrono::Utc::now()),
        })
        .exec_without_returning(&conn)
        .await
        .unwrap();
        old
    };
    let size = ledger.size().await.unwrap();
    assert_eq!(size, n);
    let root: TrustRoot = keys.trust_root().await.unwrap();

    let seqs = [0, 1, n / 3, n / 2 + 7, n - 2];
    let mut times = Vec::new();
    let mut bundle = None;
    for r in 0..60 {
        let seq = seqs[r % seqs.len()];
        let t = Instant::now();
        let p = ledger.inclusion(seq, Some(size)).await.unwrap();
        times.push(t.elapsed());
        // Verified below: a leaf in the middle, whose path is the full log2(n) long.
        if seq == n / 2 + 7 {
            bundle = Some(p);
        }
    }
    let inclusion = median(times);
    let p = bundle.unwrap();
    let inc: InclusionBundle = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
    let mut times = Vec::new();
    for _ in 0..60 {
        let t = Instant::now();
        inc.verify(&root).unwrap();
        times.push(t.elapsed());
    }
    let verify_inclusion = median(times);

    let mut times = Vec::new();
    let mut cbundle = None;
    for _ in 0..60 {
        let t = Instant::now();
        cbundle = Some(ledger.consistency(old_cp, size).await.unwrap());
        times.push(t.elapsed());
    }
    let consistency = median(times);
    let c = cbundle.unwrap();
    let con: ConsistencyBundle = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
    let mut times = Vec::new();
    for _ in 0..60 {
        let t = Instant::now();
        con.verify(&root).unwrap();
        times.push(t.elapsed());
    }
    let verify_consistency = median(times);
    db.close().await;
    ProofFigures {
        load,
        inclusion,
        inclusion_hashes: inc.proof.len(),
        consistency,
        consistency_hashes: con.proof.len(),
        verify_inclusion,
        verify_consistency,
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let n: u64 = std::env::var("STELLAR_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let pg_admin = std::env::var("STELLAR_BENCH_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let dir = std::env::temp_dir().join(format!("stellar-ledger-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    rt.block_on(async {
        let mut backends = vec![(sqlite(&dir, "appends"), sqlite(&dir, "proofs"))];
        match (
            postgres(&pg_admin, "appends").await,
            postgres(&pg_admin, "proofs").await,
        ) {
            (Some(a), Some(p)) => backends.push((a, p)),
            _ => println!("PostgreSQL at {pg_admin} is not reachable: its rows are skipped"),
        }
        for (a, p) in backends {
            let (l1, p1, lm, pm) = appends(&a).await;
            println!("\n{}: ledger appends per second (this run)", a.name);
            println!(
                "{:<28} {:>12} {:>16} {:>8}",
                "writers", "ledger", "plain insert", "ratio"
            );
            println!("{:<28} {l1:>12.0} {p1:>16.0} {:>8.2}", "1", l1 / p1);
            println!("{:<28} {lm:>12.0} {pm:>16.0} {:>8.2}", WRITERS, lm / pm);
            (a.cleanup)();

            let keys_dir = dir.join(format!("keys-{}", p.name));
            let f = proofs(&p, n, &keys_dir).await;
            println!(
                "\n{}: proofs from the stored nodes of a {n}-entry ledger (medians)",
                p.name
            );
            println!(
                "bulk load of {n} entries and their nodes: {:.1} s",
                f.load.as_secs_f64()
            );
            println!("{:<40} {:>10} {:>8}", "operation", "time", "hashes");
            let row = |name: &str, d: Duration, h: usize| {
                println!("{name:<40} {:>8.3}ms {h:>8}", d.as_secs_f64() * 1e3);
            };
            row(
                "inclusion proof: generate (server)",
                f.inclusion,
                f.inclusion_hashes,
            );
            row(
                "inclusion bundle: verify (offline)",
                f.verify_inclusion,
                f.inclusion_hashes,
            );
            row(
                "consistency proof: generate (server)",
                f.consistency,
                f.consistency_hashes,
            );
            row(
                "consistency bundle: verify (offline)",
                f.verify_consistency,
                f.consistency_hashes,
            );
            (p.cleanup)();
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}
