//! The 22 reference guardrails (`policies/marketplace`) give exactly the expected verdicts on
//! the five reference inputs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use dsl::{CheckOptions, Decision, Effect, EvalOptions, Schema};

fn pack_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/marketplace")
}

fn load() -> dsl::Pack {
    let dir = pack_dir();
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let loaded = dsl::load(
        vec![("guardrails.spl".into(), read("guardrails.spl"))],
        |_, import| {
            Ok((
                import.to_owned(),
                std::fs::read_to_string(dir.join(import)).map_err(|e| e.to_string())?,
            ))
        },
        &CheckOptions {
            schema: Schema::submission(),
            today: NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
        },
    );
    assert!(loaded.diagnostics.is_empty(), "{}", loaded.render(false));
    loaded.pack.unwrap()
}

/// `[22 rules] bad allow=false deny=["a", "b"] warn=["c"]`
fn expected() -> Vec<(String, bool, Vec<String>, Vec<String>)> {
    let text = std::fs::read_to_string(pack_dir().join("inputs/expected-verdicts.txt")).unwrap();
    let ids = |s: &str| -> Vec<String> {
        s.trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .map(|x| x.trim().trim_matches('"').to_owned())
            .filter(|x| !x.is_empty())
            .collect()
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let rest = l.split_once(']').unwrap().1.trim();
            let (name, rest) = rest.split_once(' ').unwrap();
            let allow = rest.contains("allow=true");
            let deny = ids(rest
                .split("deny=")
                .nth(1)
                .unwrap()
                .split(" warn=")
                .next()
                .unwrap());
            let warn = ids(rest.split("warn=").nth(1).unwrap());
            (name.trim().to_owned(), allow, deny, warn)
        })
        .collect()
}

#[test]
fn the_reference_rules_give_the_expected_verdicts() {
    let pack = load();
    assert_eq!(pack.rules().len(), 22);
    let cases = expected();
    assert_eq!(cases.len(), 5);
    for (name, allow, deny, warn) in cases {
        let text = std::fs::read_to_string(pack_dir().join(format!("inputs/{name}.json"))).unwrap();
        let verdict = pack
            .evaluate_json(
                &text,
                &EvalOptions::new(NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()),
            )
            .unwrap();
        let mut want_deny: Vec<&str> = deny.iter().map(String::as_str).collect();
        want_deny.sort_unstable();
        let mut want_warn: Vec<&str> = warn.iter().map(String::as_str).collect();
        want_warn.sort_unstable();
        assert_eq!(verdict.fired(Effect::Deny), want_deny, "{name}: deny");
        assert_eq!(verdict.fired(Effect::Warn), want_warn, "{name}: warn");
        assert_eq!(verdict.decision != Decision::Deny, allow, "{name}: allow");
        assert!(verdict.errors.is_empty(), "{name}: {:?}", verdict.errors);
        for f in &verdict.findings {
            assert!(!f.evidence.is_empty(), "{name}: {} has no evidence", f.rule);
            assert!(
                f.fix.is_some() && f.docs.is_some(),
                "{name}: {} lacks a fix or docs",
                f.rule
            );
        }
    }
}

#[test]
fn findings_carry_evidence_and_what_would_pass() {
    let pack = load();
    let text = std::fs::read_to_string(pack_dir().join("inputs/bad.json")).unwrap();
    let verdict = pack
        .evaluate_json(
            &text,
            &EvalOptions::new(NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()),
        )
        .unwrap();
    let mem = verdict
        .findings
        .iter()
        .find(|f| f.rule == "mem_limit")
        .unwrap();
    assert_eq!(
        mem.message,
        "the plugin asks for 1024 MiB of memory; the limit is 512 MiB"
    );
    assert_eq!(
        mem.evidence[0].text(),
        "input.resources.memory_mb = 1024 > max_memory_mb (512)"
    );
    assert_eq!(
        mem.evidence[0].would_pass.as_deref(),
        Some("input.resources.memory_mb ≤ max_memory_mb (512)")
    );
    assert_eq!(&*mem.location.file, "guardrails.spl");
    let blocked = verdict
        .findings
        .iter()
        .find(|f| f.rule == "blocked_publisher")
        .unwrap();
    assert_eq!(
        blocked.evidence[0].text(),
        "input.publisher.id = \"shady-llc\" ∈ blocked_publishers"
    );
}

#[test]
fn a_quantifier_names_every_element_that_made_it_true() {
    let pack = load();
    let mut facts: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(pack_dir().join("inputs/clean.json")).unwrap(),
    )
    .unwrap();
    facts["permissions"] = serde_json::json!([
        "net:api.example.com",
        "net:evil.example.net",
        "net:tracker.example.org"
    ]);
    let verdict = pack
        .evaluate_json(
            &facts.to_string(),
            &EvalOptions::new(NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()),
        )
        .unwrap();
    let net = verdict
        .findings
        .iter()
        .find(|f| f.rule == "net_host_not_allowlisted")
        .expect("fires");
    let named: Vec<&str> = net
        .evidence
        .iter()
        .filter(|e| &*e.expr == "p")
        .map(|e| &*e.value)
        .collect();
    assert_eq!(
        named,
        ["\"net:evil.example.net\"", "\"net:tracker.example.org\""],
        "{:#?}",
        net.evidence
    );
}

#[test]
fn explain_mode_says_which_condition_stopped_each_rule() {
    let pack = load();
    let text = std::fs::read_to_string(pack_dir().join("inputs/clean.json")).unwrap();
    let mut opts = EvalOptions::new(NaiveDate::from_ymd_opt(2026, 11, 28).unwrap());
    opts.explain = true;
    let verdict = pack.evaluate_json(&text, &opts).unwrap();
    assert_eq!(verdict.decision, Decision::Pass);
    assert_eq!(verdict.not_fired.len(), 22);
    let community = verdict
        .not_fired
        .iter()
        .find(|n| &*n.rule == "community_memory")
        .unwrap();
    assert_eq!(
        community.stopped_by[0].text(),
        "input.publisher.tier = \"partner\" ≠ \"community\""
    );
}
