//! Stellar's policy language side by side with Cedar and regorus, in one run:
//! - the 22 reference guardrails, and 200 and 2,000 rules generated from all 28 families
//!   (the typical case: most rules test one publisher, licence or permission, which Stellar's
//!   rule index looks up instead of evaluating);
//! - 22, 200 and 2,000 rules from the 6 hard families only (prefix, suffix and regex tests,
//!   quantifiers, membership in a list fact), on inputs that fire them: the worst case;
//! - explain mode (a reason for every rule that did not fire, which evaluates every rule) at
//!   2,000 rules of both kinds, against the other engines' plain decisions.
//!
//! First it checks that all three engines return the expected verdicts (and the same verdicts
//! as each other on the generated sets); then it times a decision from a prepared input, a
//! decision end to end from the JSON text, and loading (parse + check) the 2,000-rule set. Each
//! timed iteration decides five inputs; per-decision figures are that time divided by five.
//! Stellar's verdicts include the evidence of every finding.
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The reference rules (at 22) or all families.
    Typical,
    /// The hard families only.
    Hard,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Typical => "typical",
            Kind::Hard => "hard",
        }
    }
}

struct Set {
    n: usize,
    kind: Kind,
    stellar: Stellar,
    cedar: Cedar,
    rego: Rego,
    /// The five inputs each iteration decides.
    inputs: Vec<(String, String)>,
}

fn load_set(n: usize, kind: Kind) -> Set {
    let r = stellar_policy_bench::reference();
    if n == 22 && kind == Kind::Typical {
        return Set {
            n,
            kind,
            stellar: Stellar::load(&r.stellar).unwrap(),
            cedar: Cedar::load(&r.cedar, Some(&r.cedar_schema)).unwrap(),
            rego: Rego::load(&r.rego).unwrap(),
            inputs: stellar_policy_bench::inputs(),
        };
    }
    let (s, g, c) = match kind {
        Kind::Typical => stellar_policy_bench::generate(n),
        Kind::Hard => stellar_policy_bench::generate_hard(n),
    };
    let inputs = match kind {
        Kind::Typical => stellar_policy_bench::inputs(),
        // Inputs that fire a hard rule each (and carry the extra permissions that do it).
        Kind::Hard => (0..5)
            .map(|i| {
                let family = stellar_policy_bench::FAMILIES + i;
                (
                    format!("fires family {family}"),
                    stellar_policy_bench::trigger(family, i % (n / 6).max(1)).to_string(),
                )
            })
            .collect(),
    };
    Set {
        n,
        kind,
        stellar: Stellar::load(&[("generated.spl".into(), s)]).unwrap(),
        cedar: Cedar::load(&c, Some(&r.cedar_schema)).unwrap(),
        rego: Rego::load(&g).unwrap(),
        inputs,
    }
}

/// Stops the run if any engine disagrees with the expected verdicts (or with Stellar's), or
/// explain mode with the plain decision.
fn verify(set: &Set) {
    let expected = stellar_policy_bench::expected();
    for (name, json) in &set.inputs {
        let ours = Stellar::outcome(&set.stellar.decide_json(json).unwrap());
        if set.n == 22 && set.kind == Kind::Typical {
            let (_, d, w) = expected.iter().find(|(n, _, _)| n == name).unwrap();
            assert_eq!(ours, (d.clone(), w.clone()), "stellar on {name}");
        }
        if set.kind == Kind::Hard {
            assert!(
                !ours.0.is_empty() || !ours.1.is_empty(),
                "{name} fires nothing"
            );
        }
        let explained = set.stellar.explain_json(json).unwrap();
        assert_eq!(Stellar::outcome(&explained), ours, "explain mode on {name}");
        assert_eq!(
            explained.findings.len() + explained.not_fired.len() + explained.errors.len(),
            set.n,
            "explain mode explains every rule"
        );
        let at = format!("{name} at {} {}", set.n, set.kind.name());
        assert_eq!(set.cedar.decide_json(json).unwrap(), ours, "cedar on {at}");
        assert_eq!(set.rego.decide_json(json).unwrap(), ours, "regorus on {at}");
    }
    println!(
        "verdicts agree at {} rules ({}): stellar = stellar explain = cedar = regorus",
        set.n,
        set.kind.name()
    );
}

fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| stellar_policy_bench::root().join("target"));
    target.join("criterion-policies")
}

fn group(mode: &str, set: &Set) -> String {
    match set.kind {
        Kind::Typical => format!("{mode}_{}", set.n),
        Kind::Hard => format!("{mode}_hard_{}", set.n),
    }
}

fn main() {
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

    let sets: Vec<Set> = [Kind::Typical, Kind::Hard]
        .into_iter()
        .flat_map(|k| SIZES.iter().map(move |&n| load_set(n, k)))
        .collect();
    for set in &sets {
        verify(set);
    }

    for set in &sets {
        let inputs = &set.inputs;
        let prepared_s: Vec<_> = inputs.iter().map(|(_, j)| set.stellar.prepare(j)).collect();
        let prepared_c: Vec<_> = inputs
            .iter()
            .map(|(_, j)| set.cedar.prepare(j).unwrap())
            .collect();
        let prepared_r: Vec<_> = inputs
            .iter()
            .map(|(_, j)| Rego::prepare(j).unwrap())
            .collect();
        let mut g = c.benchmark_group(group("prepared", set));
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

        let mut g = c.benchmark_group(group("end_to_end", set));
        g.bench_function("stellar", |b| {
            b.iter(|| {
                for (_, j) in inputs {
                    black_box(set.stellar.decide_json(black_box(j)).unwrap());
                }
            })
        });
        if set.n == 2000 {
            g.bench_function("stellar_explain", |b| {
                b.iter(|| {
                    for (_, j) in inputs {
                        black_box(set.stellar.explain_json(black_box(j)).unwrap());
                    }
                })
            });
        }
        g.bench_function("cedar", |b| {
            b.iter(|| {
                for (_, j) in inputs {
                    black_box(set.cedar.decide_json(black_box(j)).unwrap());
                }
            })
        });
        g.bench_function("regorus", |b| {
            b.iter(|| {
                for (_, j) in inputs {
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

/// Per decision, in µs.
fn per_decision(group: &str, name: &str) -> Option<f64> {
    median(group, name).map(|ns| ns / 5.0 / 1000.0)
}

fn report() {
    println!("\nmedians per decision (µs; each iteration decides 5 inputs)\n");
    println!("| rules | mode | n | stellar | cedar | regorus | stellar/cedar | stellar/regorus |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut misses = Vec::new();
    for kind in ["typical", "hard"] {
        for mode in ["prepared", "end_to_end"] {
            for n in SIZES {
                let group = match kind {
                    "typical" => format!("{mode}_{n}"),
                    _ => format!("{mode}_hard_{n}"),
                };
                let t: Vec<Option<f64>> = ENGINES.iter().map(|e| per_decision(&group, e)).collect();
                let (Some(s), Some(ce), Some(r)) = (t[0], t[1], t[2]) else {
                    continue;
                };
                println!(
                    "| {kind} | {mode} | {n} | {s:.2} | {ce:.2} | {r:.2} | {:.3} | {:.3} |",
                    s / ce,
                    s / r
                );
                if s >= ce.min(r) {
                    misses.push(format!(
                        "{kind} {mode} at {n} rules: not ahead of the fastest anchor"
                    ));
                }
                if mode == "end_to_end" {
                    let limit = match (kind, n) {
                        ("typical", 22) => Some(10.0),
                        ("typical", 2000) => Some(100.0),
                        ("hard", 22) => Some(5.0),
                        ("hard", 2000) => Some(60.0),
                        _ => None,
                    };
                    if let Some(l) = limit
                        && s > l
                    {
                        misses.push(format!(
                            "{kind} end to end at {n} rules: {s:.1} µs > {l} µs"
                        ));
                    }
                }
            }
        }
    }
    println!("\nexplain mode at 2,000 rules, end to end (µs per decision)\n");
    println!("| rules | stellar explain | stellar | regorus | explain/regorus |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (kind, group) in [
        ("typical", "end_to_end_2000"),
        ("hard", "end_to_end_hard_2000"),
    ] {
        let (Some(x), Some(s), Some(r)) = (
            per_decision(group, "stellar_explain"),
            per_decision(group, "stellar"),
            per_decision(group, "regorus"),
        ) else {
            continue;
        };
        println!("| {kind} | {x:.1} | {s:.1} | {r:.1} | {:.3} |", x / r);
        if x > r {
            misses.push(format!(
                "{kind} explain mode at 2,000 rules: {x:.0} µs > regorus's plain decision {r:.0} µs"
            ));
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
