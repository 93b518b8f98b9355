//! The rollback rules (`policies/rollout`): a pack that names its facts (`facts rollout`) is
//! checked against the rollout schema, its tests over recorded telemetry pass and cover every
//! rule, and a wrong name of facts is a clear error.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use dsl::{CheckOptions, Decision, EvalOptions, Schema};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/rollout")
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
}

/// Checked with the submission schema as the caller's default, as `stellar policy` does: the
/// header decides.
fn options() -> CheckOptions {
    CheckOptions {
        schema: Schema::submission(),
        today: today(),
    }
}

fn load_str(text: &str) -> dsl::Loaded {
    dsl::load_str("p.spl", text, &options())
}

#[test]
fn the_rollout_pack_checks_against_the_rollout_facts_and_its_tests_cover_every_rule() {
    let text = std::fs::read_to_string(dir().join("rollout.spl")).unwrap();
    let loaded = dsl::load_str("rollout.spl", &text, &options());
    assert!(loaded.diagnostics.is_empty(), "{}", loaded.render(false));
    assert_eq!(
        dsl::fmt::format_file(&text, &loaded.files[0]),
        text,
        "policies/rollout/rollout.spl is formatted"
    );
    let pack = loaded.pack.unwrap();
    assert_eq!(pack.schema().name, "rollout");
    let report = pack.run_tests(today(), |_, path| {
        std::fs::read_to_string(dir().join(path)).map_err(|e| e.to_string())
    });
    for r in &report.results {
        assert!(r.passed, "{}: {:?}", r.name, r.failures);
    }
    assert!(report.results.len() >= 10);
    assert_eq!(
        report.uncovered,
        Vec::<String>::new(),
        "rules no test makes fire"
    );

    // A rollback explains itself with both cohorts' numbers.
    let spike = std::fs::read_to_string(dir().join("telemetry/error_spike.json")).unwrap();
    let v = pack
        .evaluate_json(&spike, &EvalOptions::new(today()))
        .unwrap();
    assert_eq!(v.decision, Decision::Deny);
    let f = &v.findings[0];
    assert!(f.message.contains("fails 700 in 10,000"), "{}", f.message);
    assert!(
        f.message.contains("version 1.4.0 fails 10 in 10,000"),
        "{}",
        f.message
    );
    let evidence: Vec<String> = f.evidence.iter().map(|e| e.text()).collect();
    assert!(
        evidence
            .iter()
            .any(|e| e.contains("input.canary.error_rate_bp = 700")),
        "{evidence:?}"
    );
}

#[test]
fn a_pack_names_its_facts_and_rules_are_checked_against_them() {
    let ok = load_str(
        "pack \"r\" version \"1.0.0\" language 1 facts rollout\nrule slow {\n  effect deny\n  when input.canary.p95_ms > 100\n}\n",
    );
    assert!(ok.diagnostics.is_empty(), "{}", ok.render(false));

    // A submission's field is not a rollout fact.
    let wrong_field = load_str(
        "pack \"r\" version \"1.0.0\" language 1 facts rollout\nrule big {\n  effect deny\n  when input.resources.memory_mb > 100\n}\n",
    );
    assert!(wrong_field.has_errors());
    assert!(
        wrong_field.render(false).contains("resources"),
        "{}",
        wrong_field.render(false)
    );

    // Without `facts`, the caller's default (a submission).
    let default = load_str(
        "pack \"r\" version \"1.0.0\" language 1\nrule big {\n  effect deny\n  when input.resources.memory_mb > 100\n}\n",
    );
    assert!(default.diagnostics.is_empty(), "{}", default.render(false));
    assert_eq!(default.pack.unwrap().schema().name, "submission");

    // A misspelt kind of facts says which kinds there are.
    let typo = load_str(
        "pack \"r\" version \"1.0.0\" language 1 facts rollouts\nrule slow {\n  effect deny\n  when input.canary.p95_ms > 100\n}\n",
    );
    let text = typo.render(false);
    assert!(typo.has_errors(), "{text}");
    assert!(text.contains("`rollouts` is not a kind of facts"), "{text}");
    assert!(text.contains("did you mean `rollout`?"), "{text}");
}

#[test]
fn the_formatter_keeps_the_facts_clause() {
    let text = "pack \"r\" version \"1.0.0\"   language 1   facts   rollout\n";
    let loaded = load_str(text);
    let out = dsl::fmt::format_file(text, &loaded.files[0]);
    assert!(
        out.starts_with("pack \"r\" version \"1.0.0\" language 1 facts rollout\n"),
        "{out}"
    );
}
