//! Merkle proofs at 1,000,000 entries: generating and verifying inclusion and consistency
//! proofs, side by side with the baseline a verifier without proofs would need (recomputing the
//! root from every leaf), and a checkpoint signature check, all in one run.
//!
//! `cargo bench -p stellar-trust --bench merkle` prints criterion's figures, then a table of
//! medians, proof sizes and ratios against the full recomputation.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark stops on any setup failure"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use trust::checkpoint::Checkpoint;
use trust::keys::KeyPair;
use trust::merkle::{self, Hash, MemoryTree};

const N: u64 = 1_000_000;

fn leaves(n: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| merkle::leaf_hash(format!("{{\"seq\":{i},\"action\":\"bench\"}}").as_bytes()))
        .collect()
}

/// The median of `runs` timings of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    t.sort();
    t[runs / 2]
}

fn main() {
    let leaves = leaves(N);
    let mut tree = MemoryTree::new();
    for l in &leaves {
        tree.push(*l);
    }
    let root = tree.root();
    let old = N / 2 + 12_345;
    let old_root = merkle::root(&tree, old).unwrap();
    let key = KeyPair::generate().unwrap();
    let note = Checkpoint {
        origin: "bench/ledger".into(),
        size: N,
        root,
        time: None,
    }
    .sign("bench/ledger", &key);
    let publics = [key.public().clone()];

    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(200)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    let idx = [0, 1, N / 3, N / 2 + 7, N - 1];
    c.bench_function("inclusion proof: generate (1M)", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % idx.len();
            black_box(merkle::inclusion_proof(&tree, idx[i], N).unwrap())
        })
    });
    let proofs: Vec<Vec<Hash>> = idx
        .iter()
        .map(|&i| merkle::inclusion_proof(&tree, i, N).unwrap())
        .collect();
    c.bench_function("inclusion proof: verify (1M)", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % idx.len();
            assert!(merkle::verify_inclusion(
                &leaves[idx[i] as usize],
                idx[i],
                N,
                &proofs[i],
                &root
            ))
        })
    });
    c.bench_function("consistency proof: generate (1M)", |b| {
        b.iter(|| black_box(merkle::consistency_proof(&tree, old, N).unwrap()))
    });
    let cproof = merkle::consistency_proof(&tree, old, N).unwrap();
    c.bench_function("consistency proof: verify (1M)", |b| {
        b.iter(|| {
            assert!(merkle::verify_consistency(
                old, N, &old_root, &root, &cproof
            ))
        })
    });
    c.bench_function("checkpoint: verify signature", |b| {
        b.iter(|| black_box(Checkpoint::verify(&note, &publics).unwrap()))
    });
    c.final_summary();

    // The table, measured again side by side in this run.
    let runs = 201;
    let gen_inc = median(runs, || {
        black_box(merkle::inclusion_proof(&tree, N / 2 + 7, N).unwrap());
    });
    let ver_inc = median(runs, || {
        assert!(merkle::verify_inclusion(
            &leaves[(N / 2 + 7) as usize],
            N / 2 + 7,
            N,
            &proofs[3],
            &root
        ));
    });
    let gen_con = median(runs, || {
        black_box(merkle::consistency_proof(&tree, old, N).unwrap());
    });
    let ver_con = median(runs, || {
        assert!(merkle::verify_consistency(
            old, N, &old_root, &root, &cproof
        ));
    });
    let sig = median(runs, || {
        black_box(Checkpoint::verify(&note, &publics).unwrap());
    });
    let full = median(5, || {
        let mut t = MemoryTree::new();
        for l in &leaves {
            t.push(*l);
        }
        assert_eq!(t.root(), root);
    });
    let ratio = |d: Duration| full.as_secs_f64() / d.as_secs_f64();
    println!("\nMerkle proofs at {N} entries (medians of this run)");
    println!(
        "{:<34} {:>12} {:>8} {:>22}",
        "operation", "time", "hashes", "x faster than baseline"
    );
    let row = |name: &str, d: Duration, hashes: usize| {
        println!(
            "{name:<34} {:>10.2}µs {hashes:>8} {:>21.0}x",
            d.as_secs_f64() * 1e6,
            ratio(d)
        );
    };
    row("inclusion proof: generate", gen_inc, proofs[3].len());
    row("inclusion proof: verify", ver_inc, proofs[3].len());
    row("consistency proof: generate", gen_con, cproof.len());
    row("consistency proof: verify", ver_con, cproof.len());
    row("checkpoint signature: verify", sig, 0);
    println!(
        "{:<34} {:>10.2}ms {:>8} {:>22}",
        "baseline: recompute root of all",
        full.as_secs_f64() * 1e3,
        N,
        "1x"
    );
}
