//! Property tests: formatting round-trips, and nothing panics or runs unbounded, whatever the
//! policy and the facts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

use chrono::NaiveDate;
use dsl::ast::{BinOp, Expr, ExprKind, QuantKind, UnOp};
use dsl::span::{FileId, Node, Span};
use dsl::{CheckOptions, EvalOptions, Limits, Schema};
use proptest::prelude::*;

fn node(kind: ExprKind) -> Expr {
    Node::new(kind, Span::default())
}

fn ident(s: &str) -> Node<dsl::ast::Name> {
    Node::new(s.into(), Span::default())
}

const NAMES: &[&str] = &["input", "x", "max_memory_mb", "hosts"];
const FIELDS: &[&str] = &[
    "resources",
    "memory_mb",
    "name",
    "version",
    "publisher",
    "verified",
    "permissions",
];
const FUNCS: &[&str] = &[
    "len",
    "starts_with",
    "lower",
    "semver",
    "is_semver",
    "contains",
    "max",
    "net_host",
];

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        any::<bool>().prop_map(|b| node(ExprKind::Bool(b))),
        (0i64..100_000).prop_map(|i| node(ExprKind::Int(i))),
        "[a-z0-9 :.\\-]{0,8}".prop_map(|s| node(ExprKind::Str(s))),
        prop::sample::select(NAMES).prop_map(|n| node(ExprKind::Name(n.into()))),
        prop::collection::vec(prop::sample::select(FIELDS), 1..3).prop_map(|path| {
            let mut segs = vec![ident("input")];
            segs.extend(path.into_iter().map(ident));
            node(ExprKind::Has(segs))
        }),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(5, 48, 3, |inner| {
        let ops = prop::sample::select(vec![
            BinOp::Or,
            BinOp::And,
            BinOp::Eq,
            BinOp::Ne,
            BinOp::Lt,
            BinOp::Le,
            BinOp::Gt,
            BinOp::Ge,
            BinOp::In,
            BinOp::NotIn,
            BinOp::Default,
            BinOp::Add,
            BinOp::Sub,
            BinOp::Mul,
            BinOp::Div,
            BinOp::Rem,
        ]);
        let quants = prop::sample::select(vec![
            QuantKind::Any,
            QuantKind::All,
            QuantKind::None,
            QuantKind::Count,
            QuantKind::Filter,
        ]);
        prop_oneof![
            (ops, inner.clone(), inner.clone()).prop_map(|(op, a, b)| node(ExprKind::Binary(
                op,
                Box::new(a),
                Box::new(b)
            ))),
            (any::<bool>(), inner.clone()).prop_map(|(not, e)| {
                node(ExprKind::Unary(
                    if not { UnOp::Not } else { UnOp::Neg },
                    Box::new(e),
                ))
            }),
            (inner.clone(), prop::sample::select(FIELDS))
                .prop_map(|(e, f)| node(ExprKind::Field(Box::new(e), ident(f)))),
            (
                prop::sample::select(FUNCS),
                prop::collection::vec(inner.clone(), 0..3)
            )
                .prop_map(|(f, args)| node(ExprKind::Call(ident(f), args))),
            (quants, inner.clone(), inner.clone()).prop_map(|(k, l, b)| {
                node(ExprKind::Quant(k, ident("p"), Box::new(l), Box::new(b)))
            }),
            prop::collection::vec(inner, 0..4).prop_map(|items| node(ExprKind::List(items))),
        ]
    })
}

fn options() -> CheckOptions {
    CheckOptions {
        schema: Schema::submission(),
        today: NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
    }
}

fn facts() -> impl Strategy<Value = String> {
    (
        "[a-zA-Z0-9_-]{0,12}",
        "[0-9.]{0,7}",
        any::<bool>(),
        prop::collection::vec("(net|fs|proc):[a-z.*/]{0,10}", 0..12),
        (any::<i32>(), any::<i32>(), any::<i32>(), any::<i16>()),
        prop::collection::vec(prop_oneof!["[A-Z0-9.-]{0,8}", Just("MIT".to_owned()), Just("GPL-3.0".to_owned())], 0..4),
        prop::option::of("[ -~]{0,30}"),
    )
        .prop_map(
            |(name, version, verified, perms, (mem, cpu, size, sigs), licenses, description)| {
                let mut v = serde_json::json!({
                    "name": name,
                    "version": version,
                    "publisher": {"id": if verified { "acme" } else { "shady-llc" }, "verified": verified, "tier": "community"},
                    "permissions": perms,
                    "resources": {"memory_mb": mem, "cpu_millis": cpu, "wasm_size_kb": size},
                    "compat": {"min_host": version, "max_host": "3.0.0"},
                    "sbom": {"licenses": licenses},
                    "signatures": sigs,
                });
                if let Some(d) = description {
                    v["description"] = serde_json::Value::String(d);
                }
                v.to_string()
            },
        )
}

const PRELUDE: &str = "pack \"p\" version \"1.0.0\" language 1\n\
    const max_memory_mb = 512\n\
    set hosts = [\"a\", \"b\"]\n\
    fn net_host(p: string) -> string = trim_prefix(p, \"net:\")\n";

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Printing an expression and parsing it back gives the same expression.
    #[test]
    fn expressions_round_trip_through_the_formatter(e in expr()) {
        let text = dsl::fmt::expr_text(&e);
        let parsed = dsl::parse::parse_expr(FileId(0), 0, &text);
        prop_assert!(parsed.is_ok(), "`{text}` does not parse: {:?}", parsed.err());
        prop_assert_eq!(parsed.unwrap(), e, "`{}`", text);
    }

    /// Formatting a pack is idempotent and keeps its syntax tree.
    #[test]
    fn packs_round_trip_and_formatting_is_idempotent(e in expr(), msg in "[a-z {}]{0,12}") {
        let msg = msg.replace(['{', '}'], "");
        let text = format!("{PRELUDE}rule r {{\n  effect deny\n  when {}\n  message \"{msg}\"\n}}\n", dsl::fmt::expr_text(&e));
        let (file, diags) = dsl::parse::parse_file(FileId(0), &text);
        prop_assert!(diags.is_empty(), "{text}\n{diags:?}");
        let once = dsl::fmt::format_file(&text, &file);
        let (again, diags) = dsl::parse::parse_file(FileId(0), &once);
        prop_assert!(diags.is_empty(), "{once}\n{diags:?}");
        prop_assert_eq!(&again.items, &file.items);
        let twice = dsl::fmt::format_file(&once, &again);
        prop_assert_eq!(once, twice);
    }

    /// Arbitrary text never makes the parser or checker panic.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let loaded = dsl::load_str("junk.spl", &text, &options());
        let _ = loaded.render(false);
    }
}

// ----- well-typed policies: evaluation itself is exercised, not only the checker -------------

fn path(segs: &[&str]) -> Expr {
    let mut e = node(ExprKind::Name("input".into()));
    for s in segs {
        e = node(ExprKind::Field(Box::new(e), ident(s)));
    }
    e
}

fn call(f: &str, args: Vec<Expr>) -> Expr {
    node(ExprKind::Call(ident(f), args))
}

fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
    node(ExprKind::Binary(op, Box::new(a), Box::new(b)))
}

fn int_expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        (-1000i64..100_000).prop_map(|i| node(ExprKind::Int(i))),
        Just(path(&["resources", "memory_mb"])),
        Just(path(&["resources", "cpu_millis"])),
        Just(path(&["signatures"])),
        Just(node(ExprKind::Name("max_memory_mb".into()))),
        Just(call("len", vec![path(&["permissions"])])),
        Just(call("len", vec![path(&["name"])])),
    ];
    leaf.prop_recursive(2, 8, 2, |inner| {
        prop_oneof![
            (
                prop::sample::select(vec![
                    BinOp::Add,
                    BinOp::Sub,
                    BinOp::Mul,
                    BinOp::Div,
                    BinOp::Rem
                ]),
                inner.clone(),
                inner.clone()
            )
                .prop_map(|(op, a, b)| bin(op, a, b)),
            (inner.clone(), inner).prop_map(|(a, b)| call("max", vec![a, b])),
        ]
    })
}

fn str_expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        "[a-z0-9:.\\-]{0,8}".prop_map(|s| node(ExprKind::Str(s))),
        Just(path(&["name"])),
        Just(path(&["version"])),
        Just(path(&["publisher", "id"])),
    ];
    leaf.prop_recursive(2, 6, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| call("lower", vec![e])),
            inner.clone().prop_map(|e| call("net_host", vec![e])),
            (inner.clone(), inner).prop_map(|(a, b)| call("trim_prefix", vec![a, b])),
        ]
    })
}

fn list_expr() -> impl Strategy<Value = Expr> {
    prop_oneof![
        Just(path(&["permissions"])),
        Just(path(&["sbom", "licenses"])),
        Just(node(ExprKind::Name("hosts".into()))),
        prop::collection::vec(str_expr(), 0..3).prop_map(|items| node(ExprKind::List(items))),
    ]
}

/// A condition on one element `p` of a list of strings.
fn element_condition() -> impl Strategy<Value = Expr> {
    let p = || node(ExprKind::Name("p".into()));
    prop_oneof![
        str_expr().prop_map(move |s| call("starts_with", vec![p(), s])),
        str_expr().prop_map(move |s| bin(BinOp::Eq, p(), s)),
        list_expr().prop_map(move |l| bin(BinOp::In, p(), l)),
        Just(call(
            "matches",
            vec![p(), node(ExprKind::Str("^net:[a-z.]+$".into()))]
        )),
    ]
}

/// Boolean expressions that type-check against the submission schema.
fn bool_expr() -> impl Strategy<Value = Expr> {
    let cmp = prop::sample::select(vec![
        BinOp::Eq,
        BinOp::Ne,
        BinOp::Lt,
        BinOp::Le,
        BinOp::Gt,
        BinOp::Ge,
    ]);
    let quant = prop::sample::select(vec![QuantKind::Any, QuantKind::All, QuantKind::None]);
    let leaf = prop_oneof![
        any::<bool>().prop_map(|b| node(ExprKind::Bool(b))),
        Just(path(&["publisher", "verified"])),
        (cmp, int_expr(), int_expr()).prop_map(|(op, a, b)| bin(op, a, b)),
        (str_expr(), str_expr()).prop_map(|(a, b)| bin(BinOp::Eq, a, b)),
        (str_expr(), list_expr()).prop_map(|(a, l)| bin(BinOp::In, a, l)),
        (list_expr(), str_expr()).prop_map(|(l, a)| call("contains", vec![l, a])),
        (str_expr(), str_expr()).prop_map(|(a, b)| call("ends_with", vec![a, b])),
        str_expr().prop_map(|s| call("is_semver", vec![s])),
        (quant, list_expr(), element_condition()).prop_map(|(k, l, c)| node(ExprKind::Quant(
            k,
            ident("p"),
            Box::new(l),
            Box::new(c)
        ))),
        (list_expr(), element_condition(), int_expr()).prop_map(|(l, c, n)| {
            bin(
                BinOp::Gt,
                node(ExprKind::Quant(
                    QuantKind::Count,
                    ident("p"),
                    Box::new(l),
                    Box::new(c),
                )),
                n,
            )
        }),
    ];
    leaf.prop_recursive(3, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| bin(BinOp::And, a, b)),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| bin(BinOp::Or, a, b)),
            inner.prop_map(|e| node(ExprKind::Unary(UnOp::Not, Box::new(e)))),
        ]
    })
}

/// Generated policies check or fail with diagnostics, and evaluate on generated facts; nothing
/// panics and evaluation stays within its budget. The test counts the cases that reach
/// evaluation (a generator that only ever produced ill-typed policies would test the checker
/// alone) and requires most do.
#[test]
fn evaluation_never_panics() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let total = AtomicUsize::new(0);
    let evaluated = AtomicUsize::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 400,
        ..ProptestConfig::default()
    });
    let strategy = (prop_oneof![3 => bool_expr(), 1 => expr()], facts());
    runner
        .run(&strategy, |(e, input)| {
            total.fetch_add(1, Ordering::Relaxed);
            let text = format!(
                "{PRELUDE}rule r {{\n  effect deny\n  when {}\n  message \"{{input.name}}\"\n}}\n",
                dsl::fmt::expr_text(&e)
            );
            let loaded = dsl::load_str("gen.spl", &text, &options());
            if let Some(pack) = loaded.pack {
                evaluated.fetch_add(1, Ordering::Relaxed);
                let mut opts = EvalOptions::new(options().today);
                opts.explain = true;
                opts.limits = Limits {
                    steps: 20_000,
                    max_list: 1_000,
                    max_string: 10_000,
                };
                if let Ok(verdict) = pack.evaluate_json(&input, &opts) {
                    prop_assert_eq!(verdict.rules_evaluated, 1);
                }
            }
            Ok(())
        })
        .unwrap();
    let (total, evaluated) = (total.into_inner(), evaluated.into_inner());
    assert!(
        evaluated * 10 >= total * 6,
        "only {evaluated} of {total} generated policies reached evaluation: the generator tests the checker, not the evaluator"
    );
    eprintln!("{evaluated} of {total} generated policies reached evaluation");
}

#[test]
fn budget_exhaustion_is_reported_and_fails_closed() {
    let text = "pack \"p\" version \"1.0.0\" language 1\n\
        rule heavy {\n  effect deny\n  when count(a in input.permissions where count(b in input.permissions where count(c in input.permissions where a == b and b == c) > 0) > 0) > 5\n}\n\
        rule later {\n  effect warn\n  when input.signatures < 0\n}\n";
    let loaded = dsl::load_str("heavy.spl", text, &options());
    assert!(loaded.diagnostics.is_empty(), "{}", loaded.render(false));
    let pack = loaded.pack.unwrap();
    let perms: Vec<String> = (0..200).map(|i| format!("p{i}")).collect();
    let input = serde_json::json!({
        "name": "x", "version": "1.0.0",
        "publisher": {"id": "a", "verified": true, "tier": "partner"},
        "permissions": perms,
        "resources": {"memory_mb": 1, "cpu_millis": 1, "wasm_size_kb": 1},
        "compat": {"min_host": "1.0.0", "max_host": "2.0.0"},
        "sbom": {"licenses": []}, "signatures": 1
    })
    .to_string();
    let mut opts = EvalOptions::new(options().today);
    opts.limits.steps = 100_000;
    let verdict = pack.evaluate_json(&input, &opts).unwrap();
    assert_eq!(
        verdict.decision,
        dsl::Decision::Deny,
        "an enforced deny that cannot be evaluated denies"
    );
    assert!(
        verdict.errors[0]
            .error
            .contains("budget of 100000 steps is exhausted"),
        "{:?}",
        verdict.errors
    );
    assert!(
        verdict.errors[1].error.contains("not evaluated"),
        "{:?}",
        verdict.errors
    );
}

#[test]
fn overflow_and_bad_versions_are_evaluation_errors_not_panics() {
    let text = "pack \"p\" version \"1.0.0\" language 1\n\
        rule big {\n  effect warn\n  when input.resources.memory_mb * input.resources.memory_mb > 0\n}\n\
        rule ver {\n  effect warn\n  when semver(input.version) > semver(\"1.0.0\")\n}\n";
    let pack = dsl::load_str("err.spl", text, &options()).pack.unwrap();
    let input = serde_json::json!({
        "name": "x", "version": "not-a-version",
        "publisher": {"id": "a", "verified": true, "tier": "partner"},
        "permissions": [],
        "resources": {"memory_mb": i64::MAX, "cpu_millis": 1, "wasm_size_kb": 1},
        "compat": {"min_host": "1.0.0", "max_host": "2.0.0"},
        "sbom": {"licenses": []}, "signatures": 1
    })
    .to_string();
    let verdict = pack
        .evaluate_json(&input, &EvalOptions::new(options().today))
        .unwrap();
    assert_eq!(verdict.errors.len(), 2, "{verdict:?}");
    assert!(
        verdict.errors[0].error.starts_with("integer overflow"),
        "{:?}",
        verdict.errors[0]
    );
    assert!(
        verdict.errors[1]
            .error
            .contains("`not-a-version` is not a semver version"),
        "{:?}",
        verdict.errors[1]
    );
    assert_eq!(verdict.decision, dsl::Decision::Warn);
}

#[test]
fn an_expired_waiver_never_applies() {
    let text = "pack \"p\" version \"1.0.0\" language 1\n\
        rule mem {\n  effect deny\n  when input.resources.memory_mb > 512\n}\n\
        waiver \"pilot\" {\n  rule mem\n  plugin \"big\"\n  reason \"pilot\"\n  approver \"sam\"\n  expires \"2026-06-30\"\n}\n";
    let loaded = dsl::load_str("w.spl", text, &options());
    let pack = loaded.pack.unwrap();
    let input = serde_json::json!({
        "name": "big", "version": "1.0.0",
        "publisher": {"id": "a", "verified": true, "tier": "partner"},
        "permissions": [],
        "resources": {"memory_mb": 1024, "cpu_millis": 1, "wasm_size_kb": 1},
        "compat": {"min_host": "1.0.0", "max_host": "2.0.0"},
        "sbom": {"licenses": []}, "signatures": 1
    })
    .to_string();
    let on = |y, m, d| EvalOptions::new(NaiveDate::from_ymd_opt(y, m, d).unwrap());
    let before = pack.evaluate_json(&input, &on(2026, 6, 30)).unwrap();
    assert_eq!(before.decision, dsl::Decision::Pass);
    let w = before.findings[0]
        .waiver
        .as_ref()
        .expect("waived on its last day");
    assert_eq!(
        (w.approver.as_str(), w.expires.as_str()),
        ("sam", "2026-06-30")
    );
    let after = pack.evaluate_json(&input, &on(2026, 7, 1)).unwrap();
    assert_eq!(after.decision, dsl::Decision::Deny);
    assert!(after.findings[0].waiver.is_none());
    assert!(
        pack.applicable_waiver(
            "mem",
            &pack.facts_from_json(&input).unwrap(),
            NaiveDate::from_ymd_opt(2026, 7, 1).unwrap()
        )
        .is_none()
    );
}

/// Boolean conditions that always type-check.
fn condition() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        (0i64..2000).prop_map(|n| format!("input.resources.memory_mb > {n}")),
        (0i64..5).prop_map(|n| format!("input.signatures <= {n}")),
        Just("input.publisher.verified".to_owned()),
        "[a-z:.]{0,8}".prop_map(|s| format!("\"{s}\" in input.permissions")),
        Just("input.publisher.id in blocked".to_owned()),
        "[a-z]{0,4}"
            .prop_map(|s| format!("any(p in input.permissions where starts_with(p, \"{s}\"))")),
        (0i64..6)
            .prop_map(|n| format!("count(p in input.permissions where contains(p, \":\")) >= {n}")),
        (0i64..20).prop_map(|n| format!("len(input.name) < {n}")),
        Just("is_semver(input.version) and major(semver(input.version)) == 0".to_owned()),
        Just("has input.description and len(input.description) > 3".to_owned()),
        Just("(input.description ?? \"\") == \"\"".to_owned()),
        Just("matches(input.name, r\"^[a-z][a-z0-9-]{2,63}$\")".to_owned()),
        Just("all(l in input.sbom.licenses where l not in blocked)".to_owned()),
        Just("input.resources.cpu_millis * 2 + input.resources.wasm_size_kb > 100".to_owned()),
        // Indexable guards (see `dsl::index`).
        prop::sample::select(vec!["acme", "shady-llc", "x"])
            .prop_map(|p| format!("input.publisher.id == \"{p}\"")),
        Just("any(p in input.permissions where p in blocked)".to_owned()),
        Just(
            "any(l in input.sbom.licenses where l == \"MIT\") and input.signatures < 3".to_owned()
        ),
        Just("input.signatures < 4 and input.publisher.tier == \"community\"".to_owned()),
        "[a-z0-9]{0,2}".prop_map(|s| format!("ends_with(input.name, \"{s}\")")),
        "[a-z]{0,2}"
            .prop_map(|s| format!("starts_with(input.name, \"{s}\") and input.signatures < 3")),
        "[a-z.]{0,2}".prop_map(|s| format!(
            "any(p in input.permissions where ends_with(p, \"{s}\") and contains(p, \":\"))"
        )),
        prop::sample::select(vec![
            r#"^(a|b[0-9])[a-z]"#,
            r#"(?i)^ab"#,
            r#"^a{2}"#,
            r#"^(x|)[0-9]"#,
            r#"^[ab]c?-"#,
            r#"\Aa|^b"#,
            r#"^a|b"#,
        ])
        .prop_map(|re| format!("matches(input.name, r\"{re}\")")),
        Just("any(p in input.permissions where matches(p, r\"^(net|fs):[a-c]\"))".to_owned()),
        Just("\"fs:a\" in input.permissions".to_owned()),
    ];
    atom.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) and ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or ({b})")),
            inner.prop_map(|a| format!("not ({a})")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Well-typed policies always check, and evaluating them never hits an internal error: the
    /// checker and the evaluator agree on every type. Explain mode gives the same decision.
    #[test]
    fn well_typed_policies_evaluate(conds in prop::collection::vec(condition(), 1..6), input in facts()) {
        let mut text = String::from("pack \"p\" version \"1.0.0\" language 1\nset blocked = [\"shady-llc\", \"GPL-3.0\"]\n");
        for (i, c) in conds.iter().enumerate() {
            text.push_str(&format!("rule r{i} {{\n  effect {}\n  when {c}\n  message \"{{input.name}} {{input.resources.memory_mb}}\"\n}}\n", if i % 2 == 0 { "deny" } else { "warn" }));
        }
        let loaded = dsl::load_str("typed.spl", &text, &options());
        prop_assert!(!loaded.has_errors(), "{text}\n{}", loaded.render(false));
        let pack = loaded.pack.unwrap();
        let fast = pack.evaluate_json(&input, &EvalOptions::new(options().today)).unwrap();
        for e in &fast.errors {
            prop_assert!(!e.error.contains("internal error"), "{text}\n{input}\n{e:?}");
        }
        let mut opts = EvalOptions::new(options().today);
        opts.explain = true;
        let explained = pack.evaluate_json(&input, &opts).unwrap();
        prop_assert_eq!(fast.decision, explained.decision);
        let ids = |v: &dsl::Verdict| v.findings.iter().map(|f| f.rule.clone()).collect::<Vec<_>>();
        prop_assert_eq!(ids(&fast), ids(&explained), "the index skipped a rule that fires");
        prop_assert_eq!(explained.findings.len() + explained.not_fired.len() + explained.errors.len(), conds.len());
    }
}
