//! Every shipped scenario (`examples/rollouts/`) played offline against the shipped rollback
//! rules (`policies/rollout/`) ends as the scenario expects, the same seed gives the same
//! decisions, and every rollback names both cohorts' numbers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use delivery::rollout::{Outcome, Phase};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn pack() -> dsl::Pack {
    let dir = root().join("policies/rollout");
    let text = std::fs::read_to_string(dir.join("rollout.spl")).unwrap();
    let loaded = dsl::load_str(
        "rollout.spl",
        &text,
        &dsl::CheckOptions {
            schema: dsl::Schema::submission(),
            today: today(),
        },
    );
    assert!(!loaded.has_errors(), "{}", loaded.render(false));
    loaded.pack.unwrap()
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
}

fn scenarios() -> Vec<(String, delivery::scenario::Scenario)> {
    let mut out: Vec<_> = std::fs::read_dir(root().join("examples/rollouts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let s = delivery::scenario::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, s)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn every_shipped_scenario_ends_as_it_expects() {
    let pack = pack();
    let options = dsl::EvalOptions::new(today());
    let all = scenarios();
    assert_eq!(
        all.len(),
        5,
        "{:?}",
        all.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    for (name, s) in &all {
        let sim = delivery::simulate::simulate(s, &pack, &options, s.seed, None).unwrap();
        let trace: Vec<String> = sim
            .intervals
            .iter()
            .map(|i| {
                let rules: Vec<&str> = i.fired.iter().map(|f| f.rule.as_str()).collect();
                format!(
                    "{}m step {} {:?} {:?} {rules:?}",
                    i.minute, i.step, i.judgement, i.outcome
                )
            })
            .collect();
        assert!(s.expect.is_some(), "{name} says what it must produce");
        assert_eq!(
            sim.expectation,
            Some(Ok(())),
            "{name}:\n{}",
            trace.join("\n")
        );
        // The same seed gives the same decisions.
        let again = delivery::simulate::simulate(s, &pack, &options, s.seed, None).unwrap();
        assert_eq!(again.sequence(), sim.sequence(), "{name}");
        // A rollback is explained with both cohorts' numbers.
        if sim.phase == Phase::RolledBack {
            let last = sim.intervals.last().unwrap();
            assert_eq!(last.outcome, Outcome::RollBack);
            let f = last.fired.iter().find(|f| f.effect == "deny").unwrap();
            let canary = s.canary.version.as_str();
            let baseline = s.baseline.as_ref().unwrap().version.as_str();
            assert!(
                f.message.contains(canary) && f.message.contains(baseline),
                "{name}: {}",
                f.message
            );
            assert!(
                f.evidence.iter().any(|e| e.contains("input.canary.")),
                "{:?}",
                f.evidence
            );
        }
        // A silent canary never promotes.
        if name == "silent-canary.toml" {
            assert!(
                sim.intervals
                    .iter()
                    .all(|i| i.outcome == Outcome::Hold || i.outcome == Outcome::Pause)
            );
        }
    }
}

#[test]
fn rollback_rules_must_judge_rollout_facts() {
    let marketplace = dsl::load_str(
        "p.spl",
        "pack \"m\" version \"1.0.0\" language 1\nrule r {\n  effect deny\n  when input.signatures < 1\n}\n",
        &dsl::CheckOptions {
            schema: dsl::Schema::submission(),
            today: today(),
        },
    )
    .pack
    .unwrap();
    let (_, s) = scenarios().remove(0);
    let err =
        delivery::simulate::simulate(&s, &marketplace, &dsl::EvalOptions::new(today()), 1, None)
            .unwrap_err();
    assert!(err.contains("facts rollout"), "{err}");
}
