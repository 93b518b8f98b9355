//! Before anything is timed: Stellar, Cedar and regorus return the expected verdicts on the
//! five reference inputs at 22 rules, and the same verdicts as each other on the generated sets.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

#[path = "../engines/mod.rs"]
mod engines;

use engines::{Cedar, Rego, Stellar};

#[test]
fn all_three_engines_return_the_expected_verdicts_on_the_reference_rules() {
    let r = stellar_policy_bench::reference();
    let stellar = Stellar::load(&r.stellar).unwrap();
    let cedar = Cedar::load(&r.cedar, Some(&r.cedar_schema)).unwrap();
    let rego = Rego::load(&r.rego).unwrap();
    let expected = stellar_policy_bench::expected();
    for (name, json) in stellar_policy_bench::inputs() {
        let (_, deny, warn) = expected.iter().find(|(n, _, _)| *n == name).unwrap();
        let want = (deny.clone(), warn.clone());
        assert_eq!(
            Stellar::outcome(&stellar.decide_json(&json).unwrap()),
            want,
            "stellar on {name}"
        );
        assert_eq!(cedar.decide_json(&json).unwrap(), want, "cedar on {name}");
        assert_eq!(rego.decide_json(&json).unwrap(), want, "regorus on {name}");
    }
}

/// Every variant of every family fires on an input built for it, and all three engines return
/// the same verdict on that input (a variant the engines disagree on cannot hide behind inputs
/// that never fire it): every variant of the 200-rule set, and variants 0, 1, 2, 7 and the last
/// of the 2,000-rule set.
#[test]
fn every_family_fires_each_variant_and_the_engines_agree() {
    for n in [200, 2000] {
        let max_k = n / stellar_policy_bench::ALL_FAMILIES - 1;
        let ks: Vec<usize> = if n == 200 {
            (0..=max_k).collect()
        } else {
            vec![0, 1, 2, 7, max_k]
        };
        let checked = fire_and_agree(n, &ks);
        assert_eq!(checked, stellar_policy_bench::ALL_FAMILIES * ks.len());
    }
}

fn fire_and_agree(n: usize, ks: &[usize]) -> usize {
    let (s, r, c) = stellar_policy_bench::generate(n);
    let stellar = Stellar::load(&[("generated.spl".into(), s)]).unwrap();
    let cedar = Cedar::load(&c, Some(&stellar_policy_bench::reference().cedar_schema)).unwrap();
    let rego = Rego::load(&r).unwrap();
    let mut checked = 0;
    for family in 0..stellar_policy_bench::ALL_FAMILIES {
        for &k in ks {
            let input = stellar_policy_bench::trigger(family, k).to_string();
            let ours = Stellar::outcome(&stellar.decide_json(&input).unwrap());
            let id = stellar_policy_bench::rule_id(family, k);
            assert!(
                ours.0.contains(&id) || ours.1.contains(&id),
                "family {family} variant {k}: `{id}` does not fire on its trigger {input}: {ours:?}"
            );
            assert_eq!(
                cedar.decide_json(&input).unwrap(),
                ours,
                "cedar vs stellar: family {family} variant {k} on {input}"
            );
            assert_eq!(
                rego.decide_json(&input).unwrap(),
                ours,
                "regorus vs stellar: family {family} variant {k} on {input}"
            );
            checked += 1;
        }
    }
    checked
}

#[test]
fn all_three_engines_agree_on_the_generated_sets() {
    for (n, hard) in [(200, false), (2000, false), (200, true)] {
        let (s, r, c) = if hard {
            stellar_policy_bench::generate_hard(n)
        } else {
            stellar_policy_bench::generate(n)
        };
        let stellar = Stellar::load(&[("generated.spl".into(), s)]).unwrap();
        assert_eq!(stellar.pack.rules().len(), n);
        let cedar = Cedar::load(&c, Some(&stellar_policy_bench::reference().cedar_schema)).unwrap();
        let rego = Rego::load(&r).unwrap();
        for (name, json) in stellar_policy_bench::inputs() {
            let ours = Stellar::outcome(&stellar.decide_json(&json).unwrap());
            assert_eq!(
                cedar.decide_json(&json).unwrap(),
                ours,
                "cedar vs stellar on {name} at {n}"
            );
            assert_eq!(
                rego.decide_json(&json).unwrap(),
                ours,
                "regorus vs stellar on {name} at {n}"
            );
        }
    }
}
