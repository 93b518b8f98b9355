//! The pipeline spec's parser, tested as data.

use super::*;

#[test]
fn the_default_spec_parses() {
    let spec = parse(DEFAULT_SPEC).expect("default");
    assert_eq!(spec.pipelines.len(), 1);
    let kinds: Vec<&str> = spec.pipelines[0]
        .stages
        .iter()
        .map(|s| s.kind.name())
        .collect();
    assert_eq!(kinds, ["approval", "sign", "ga"]);
}

#[test]
fn durations_read_and_write() {
    for (text, secs) in [
        ("90s", 90),
        ("15m", 900),
        ("1h30m", 5400),
        ("2d", 172_800),
        ("0s", 0),
    ] {
        let d = parse_duration(text).expect(text);
        assert_eq!(d.as_secs(), secs, "{text}");
        assert_eq!(parse_duration(&format_duration(d)).expect("again"), d);
    }
    for bad in ["", "5", "m", "1y", "5 m", "400d"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn selectors_pick_the_first_pipeline_that_matches() {
    let spec = parse(
        r#"format = 1
[[pipeline]]
name = "acme"
select = { plugin = "acme-*", tier = "partner" }
[[pipeline.stage]]
name = "sign"
kind = "sign"
[[pipeline.stage]]
name = "ga"
kind = "ga"
[[pipeline]]
name = "rest"
[[pipeline.stage]]
name = "sign"
kind = "sign"
[[pipeline.stage]]
name = "ga"
kind = "ga"
"#,
    )
    .expect("spec");
    let pick = |plugin, tier| {
        spec.select(Candidate {
            plugin,
            tier,
            verified: true,
        })
        .map(|p| p.name.as_str())
    };
    assert_eq!(pick("acme-hello", Tier::Partner), Some("acme"));
    assert_eq!(pick("acme-hello", Tier::Community), Some("rest"));
    assert_eq!(pick("globex-cache", Tier::Partner), Some("rest"));
}

/// Each bad spec, and the line, column and words of its first error.
#[test]
fn bad_specs_are_errors_with_a_position() {
    let stages = "[[pipeline.stage]]\nname = \"sign\"\nkind = \"sign\"\n[[pipeline.stage]]\nname = \"ga\"\nkind = \"ga\"\n";
    let cases: Vec<(String, (usize, usize), &str)> = vec![
        ("format = 2\n[[pipeline]]\nname = \"p\"\n".to_owned() + stages, (1, 10), "format 2 is not supported"),
        ("[[pipeline]]\nname = \"p\"\n".to_owned() + stages, (1, 1), "format = 1"),
        ("format = 1\n".into(), (1, 1), "no pipeline"),
        (
            "format = 1\n[[pipeline]]\nname = \"p\"\n[[pipeline.stage]]\nname = \"x\"\nkind = \"deploy\"\n".into(),
            (6, 8),
            "`deploy` is not a stage kind",
        ),
        (
            "format = 1\n[[pipeline]]\nname = \"p\"\ncolour = \"red\"\n".to_owned() + stages,
            (4, 1),
            "unknown field `colour`",
        ),
        (
            "format = 1\n[[pipeline]]\nname = \"p\"\n[[pipeline.stage]]\nname = \"ga\"\nkind = \"ga\"\n".into(),
            (4, 1),
            "before any `sign` stage",
        ),
        (
            "format = 1\n[[pipeline]]\nname = \"p\"\n[[pipeline.stage]]\nname = \"r\"\nkind = \"approval\"\nrole = \"partner\"\n".to_owned() + stages,
            (7, 8),
            "partners never approve",
        ),
        (
            "format = 1\n[[pipeline]]\nname = \"p\"\n[[pipeline.stage]]\nname = \"r\"\nkind = \"approval\"\nrole = \"reviewer\"\napprovers = 0\n".to_owned() + stages,
            (8, 13),
            "1 to 10 distinct people",
        ),
        (
            "format = 1\n[[pipeline]]\nname = \"p\"\n[[pipeline.stage]]\nname = \"s\"\nkind = \"sign\"\nkey = \"validator\"\n[[pipeline.stage]]\nname = \"ga\"\nkind = \"ga\"\n".into(),
            (7, 7),
            "signs with the `release` key",
        ),
        (
            "format = 1\n[[pipeline]]\nname = \"p\"\n".to_owned() + stages + "[[pipeline.stage]]\nname = \"c\"\nkind = \"rollout\"\nsteps = [{ percent = 50, hold = \"1h\" }, { percent = 20, hold = \"soon\" }]\n",
            (3, 8),
            "exactly one `ga` stage",
        ),
        (
            "format = 1\n[[pipeline]]\nname = \"p\"\n[[pipeline.stage]]\nname = \"judge\"\nkind = \"sign\"\n[[pipeline.stage]]\nname = \"ga\"\nkind = \"ga\"\n".into(),
            (5, 8),
            "Stellar's own first step",
        ),
        (
            "format = 1\n[[pipeline]]\nname = \"a\"\n".to_owned() + stages + "[[pipeline]]\nname = \"b\"\n" + stages,
            (11, 8),
            "can never be chosen",
        ),
        (
            "format = 1\n[[pipeline]]\nname = \"p\"\n[[pipeline.stage]]\nname = \"s\"\nkind = \"sign\"\n[[pipeline.stage]]\nname = \"c\"\nkind = \"rollout\"\nsteps = [{ percent = 50, hold = \"1h\" }]\ninterval = \"5m\"\nwindow = \"7m\"\n[[pipeline.stage]]\nname = \"ga\"\nkind = \"ga\"\n".into(),
            (12, 10),
            "whole number of intervals",
        ),
        (
            "format = 1\n[[pipeline]]\nname = \"p\"\n[[pipeline.stage]]\nname = \"s\"\nkind = \"sign\"\n[[pipeline.stage]]\nname = \"c\"\nkind = \"rollout\"\nsteps = [{ percent = 50, hold = \"1h\" }]\ninterval = \"90s\"\n[[pipeline.stage]]\nname = \"ga\"\nkind = \"ga\"\n".into(),
            (11, 12),
            "whole minutes",
        ),
        (
            "format = 1\n[[pipeline]]\nname = \"p\"\n[[pipeline.stage]]\nname = \"s\"\nkind = \"sign\"\n[[pipeline.stage]]\nname = \"c\"\nkind = \"rollout\"\nsteps = [{ percent = 50, hold = \"1h\" }]\nmin_samples = 0\n[[pipeline.stage]]\nname = \"ga\"\nkind = \"ga\"\n".into(),
            (11, 15),
            "`min_samples` is 0",
        ),
        (
            "format = 1\n[[pipeline]]\nname = \"p\"\n[[pipeline.stage]]\nname = \"s\"\nkind = \"sign\"\ninterval = \"5m\"\n[[pipeline.stage]]\nname = \"ga\"\nkind = \"ga\"\n".into(),
            (7, 12),
            "`interval` belongs to rollout stages",
        ),
    ];
    for (text, (line, column), words) in cases {
        let errors = parse(&text).expect_err(&text);
        let first = &errors[0];
        assert!(
            errors.iter().any(|e| e.message.contains(words)),
            "{text}\nwanted `{words}`, got {errors:?}"
        );
        let hit = errors
            .iter()
            .find(|e| e.message.contains(words))
            .expect("hit");
        assert_eq!(
            (hit.line, hit.column),
            (line, column),
            "{text}\n{errors:?} (first {first})"
        );
    }
}

#[test]
fn rollout_steps_must_rise_and_hold_a_duration() {
    let text = "format = 1\n[[pipeline]]\nname = \"p\"\n[[pipeline.stage]]\nname = \"s\"\nkind = \"sign\"\n[[pipeline.stage]]\nname = \"c\"\nkind = \"rollout\"\nsteps = [{ percent = 50, hold = \"1h\" }, { percent = 20, hold = \"soon\" }]\n[[pipeline.stage]]\nname = \"ga\"\nkind = \"ga\"\n";
    let errors = parse(text).expect_err("bad steps");
    let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    assert!(
        messages.iter().any(|m| m.contains("does not rise")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("`soon` is not a duration")),
        "{messages:?}"
    );
    assert!(errors.iter().all(|e| e.line == 10), "{errors:?}");
}
