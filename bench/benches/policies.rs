//! Stellar's policy language side by side with Cedar and regorus on the same 22 guardrails, and
//! on 200 and 2,000 rules generated from the same families for all three.
//!
//! First it checks that all three engines return the expected verdicts (and the same verdicts
//! as each other on the generated sets); then it times, in this one run: a decision from a
//! prepared input, a decision end to end from the JSON text, and loading (parse + check) the
//! 2,000-rule set. Each timed iteration decides all five reference inputs; per-decision figures
//! are that time divided by five. Stellar's verdicts include the evidence of every finding.
//!
//! `cargo bench -p stellar-policy-bench` prints the table of medians and the ratios at the end.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark stops on any setup failure"
)]

#[path = "../engines/mod.rs"]
mod engines;

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::Criterion;
use engines::{Cedar, Rego, Stellar};

const SIZES: [usize; 3] = [22, 200, 2000];
const ENGINES: [&str; 3] = ["stellar", "cedar", "regorus"];

struct Set {
    n: usize,
    stellar: Stellar,
    cedar: Cedar,
    rego: Rego,
    texts: (String, String, String),
}

fn load_set(n: usize) -> Set {
    let r = stellar_policy_bench::reference();
    if n == 22 {
        return Set {
            n,
            stellar: Stellar::load(&r.stellar).unwrap(),
            cedar: Cedar::load(&r.cedar, Some(&r.cedar_schema)).unwrap(),
            rego: Rego::load(&r.rego).unwrap(),
            texts: (String::new(), r.rego.clone(), r.cedar.clone()),
        };
    }
    let (s, g, c) = stellar_policy_bench::generate(n);
    Set {
        n,
        stellar: Stellar::load(&[("generated.spl".into(), s.clone())]).unwrap(),
        cedar: Cedar::load(&c, Some(&r.cedar_schema)).unwrap(),
        rego: Rego::load(&g).unwrap(),
        texts: (s, g, c),
    }
}

/// Stops the run if any engine disagrees with the expected verdicts (or with Stellar's).
fn verify(set: &Set, inputs: &[(String, String)]) {
    let expected = stellar_policy_bench::expected();
    for (name, json) in inputs {
        let ours = Stellar::outcome(&set.stellar.decide_json(json).unwrap());
        if set.n == 22 {
            let (_, d, w) = expected.iter().find(|(n, _, _)| n == name).unwrap();
            assert_eq!(ours, (d.clone(), w.clone()), "stellar on {name}");
        }
        assert_eq!(
            set.cedar.decide_json(json).unwrap(),
            ours,
            "cedar on {name} at {}",
            set.n
        );
        assert_eq!(
            set.rego.decide_json(json).unwrap(),
            ours,
            "regorus on {name} at {}",
            set.n
        );
    }
    println!(
        "verdicts agree at {} rules: stellar = cedar = regorus = expected",
        set.n
    );
}

fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| stellar_policy_bench::root().join("target"));
    target.join("criterion-policies")
}

fn main() {
    let inputs = stellar_policy_bench::inputs();
    let mut c = Criterion::default()
        .output_directory(&out_dir())
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();

    // Loading is timed first, in a fresh process for all three engines alike (a pack is loaded
    // when the server starts or a pack is published, not after hours of work).
    let (big_s, big_r, big_c) = stellar_policy_bench::generate(2000);
    let schema = stellar_policy_bench::reference().cedar_schema;
    let mut g = c.benchmark_group("load_2000");
    g.sample_size(10);
    g.bench_function("stellar", |b| {
        b.iter(|| Stellar::load(&[("generated.spl".into(), black_box(big_s.clone()))]).unwrap())
    });
    g.bench_function("cedar", |b| {
        b.iter(|| Cedar::load(black_box(&big_c), Some(&schema)).unwrap())
    });
    g.bench_function("regorus", |b| {
        b.iter(|| Rego::parse_only(black_box(&big_r)).unwrap())
    });
    g.bench_function("regorus_compiled", |b| {
        b.iter(|| Rego::load(black_box(&big_r)).unwrap())
    });
    g.finish();

    let sets: Vec<Set> = SIZES.iter().map(|&n| load_set(n)).collect();
    for set in &sets {
        verify(set, &inputs);
    }

    for set in &sets {
        let prepared_s: Vec<_> = inputs.iter().map(|(_, j)| set.stellar.prepare(j)).collect();
        let prepared_c: Vec<_> = inputs
            .iter()
            .map(|(_, j)| set.cedar.prepare(j).unwrap())
            .collect();
        let prepared_r: Vec<_> = inputs
            .iter()
            .map(|(_, j)| Rego::prepare(j).unwrap())
            .collect();
        let mut g = c.benchmark_group(format!("prepared_{}", set.n));
        g.bench_function("stellar", |b| {
            b.iter(|| {
                for f in &prepared_s {
                    black_box(set.stellar.decide_prepared(black_box(f)));
                }
            })
        });
        g.bench_function("cedar", |b| {
            b.iter(|| {
                for f in &prepared_c {
                    black_box(set.cedar.decide_prepared(black_box(f)));
                }
            })
        });
        g.bench_function("regorus", |b| {
            b.iter(|| {
                for f in &prepared_r {
                    black_box(set.rego.decide_prepared(black_box(f)).unwrap());
                }
            })
        });
        g.finish();

        let mut g = c.benchmark_group(format!("end_to_end_{}", set.n));
        g.bench_function("stellar", |b| {
            b.iter(|| {
                for (_, j) in &inputs {
                    black_box(set.stellar.decide_json(black_box(j)).unwrap());
                }
            })
        });
        g.bench_function("cedar", |b| {
            b.iter(|| {
                for (_, j) in &inputs {
                    black_box(set.cedar.decide_json(black_box(j)).unwrap());
                }
            })
        });
        g.bench_function("regorus", |b| {
            b.iter(|| {
                for (_, j) in &inputs {
                    black_box(set.rego.decide_json(black_box(j)).unwrap());
                }
            })
        });
        g.finish();
    }

    c.final_summary();
    report();
}

/// The median of one benchmark, in nanoseconds, from criterion's estimates.
fn median(group: &str, name: &str) -> Option<f64> {
    let path = out_dir().join(group).join(name).join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn report() {
    println!("\nmedians per decision (µs; each iteration decides the 5 reference inputs)\n");
    println!("| mode | rules | stellar | cedar | regorus | stellar/cedar | stellar/regorus |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut misses = Vec::new();
    for mode in ["prepared", "end_to_end"] {
        for n in SIZES {
            let group = format!("{mode}_{n}");
            let t: Vec<Option<f64>> = ENGINES
                .iter()
                .map(|e| median(&group, e).map(|ns| ns / 5.0 / 1000.0))
                .collect();
            let (Some(s), Some(ce), Some(r)) = (t[0], t[1], t[2]) else {
                continue;
            };
            println!(
                "| {mode} | {n} | {s:.2} | {ce:.2} | {r:.2} | {:.3} | {:.3} |",
                s / ce,
                s / r
            );
            if s >= ce.min(r) {
                misses.push(format!(
                    "{mode} at {n} rules: not ahead of the fastest anchor"
                ));
            }
            if mode == "end_to_end" {
                let limit = match n {
                    22 => Some(10.0),
                    2000 => Some(100.0),
                    _ => None,
                };
                if let Some(l) = limit
                    && s > l
                {
                    misses.push(format!("end to end at {n} rules: {s:.1} µs > {l} µs"));
                }
            }
        }
    }
    let load: Vec<Option<f64>> = ["stellar", "cedar", "regorus", "regorus_compiled"]
        .iter()
        .map(|e| median("load_2000", e).map(|ns| ns / 1e6))
        .collect();
    if let (Some(s), Some(ce), Some(r), Some(rc)) = (load[0], load[1], load[2], load[3]) {
        println!(
            "\nload 2,000 rules (ms): stellar parse+check {s:.2} | cedar parse+validate {ce:.2} | regorus parse {r:.2} (+ compile to VM {rc:.2})"
        );
        println!(
            "ratios: stellar/cedar {:.3}, stellar/regorus {:.3}",
            s / ce,
            s / r
        );
        if s > 20.0 {
            misses.push(format!("load at 2,000 rules: {s:.1} ms > 20 ms"));
        }
        if s >= ce.min(r) {
            misses.push("load at 2,000 rules: not ahead of the fastest anchor".into());
        }
    }
    if misses.is_empty() {
        println!("\nall targets met");
    } else {
        println!("\ntargets missed:");
        for m in misses {
            println!("- {m}");
        }
    }
}
