//! The pass over a pack's items: the header, constants and sets (computed now), functions
//! (checked for recursion, then inlined where called), rules, waivers and tests, and the
//! diagnostics that need the whole pack (unused names, duplicate ids).

use std::sync::Arc;

use super::expr::proven_present;
use super::lints::*;
use super::*;

pub fn check(files: &[File], options: &CheckOptions) -> Checked {
    let mut diags = Vec::new();
    let mut globals: HashMap<Name, Global<'_>> = HashMap::default();
    let mut headers: Vec<&PackDecl> = Vec::new();
    let mut rules: Vec<&RuleDecl> = Vec::new();
    let mut waivers: Vec<&WaiverDecl> = Vec::new();
    let mut tests: Vec<&TestDecl> = Vec::new();

    for file in files {
        for item in &file.items {
            let (name, span, state) = match item {
                Item::Pack(p) => {
                    headers.push(p);
                    continue;
                }
                Item::Import(_) => continue,
                Item::Rule(r) => {
                    rules.push(r);
                    continue;
                }
                Item::Waiver(w) => {
                    waivers.push(w);
                    continue;
                }
                Item::Test(t) => {
                    tests.push(t);
                    continue;
                }
                Item::Const(c) => (
                    &c.name,
                    c.name.span,
                    GlobalState::Const {
                        decl: c,
                        value: None,
                        visiting: false,
                    },
                ),
                Item::Set(s) => (
                    &s.name,
                    s.name.span,
                    GlobalState::Set {
                        decl: s,
                        value: None,
                    },
                ),
                Item::Fn(f) => (
                    &f.name,
                    f.name.span,
                    GlobalState::Fn {
                        decl: f,
                        compiled: None,
                        visiting: false,
                    },
                ),
            };
            if builtins::builtin(&name.node).is_some() || name.node == "input" {
                diags.push(
                    err(
                        Code::Duplicate,
                        span,
                        format!("`{}` is a built-in name", name.node),
                    )
                    .label("already defined by the language")
                    .help("choose another name"),
                );
                continue;
            }
            if let Some(prev) = globals.get(&name.node) {
                diags.push(
                    err(
                        Code::Duplicate,
                        span,
                        format!("`{}` is defined twice", name.node),
                    )
                    .label("second definition")
                    .related(prev.span, "first defined here")
                    .help("constants, sets and functions share one namespace: rename one of them"),
                );
                continue;
            }
            globals.insert(
                name.node.clone(),
                Global {
                    state,
                    span,
                    used: false,
                },
            );
        }
    }

    let header = match headers.as_slice() {
        [] => {
            let span = files
                .first()
                .map(|f| Span::new(f.id, 0, 0))
                .unwrap_or_default();
            diags.push(
                err(Code::PackHeader, span, "the pack has no header")
                    .label("expected `pack \"name\" version \"1.0.0\" language 1`")
                    .help("start one file of the pack with `pack \"my-pack\" version \"1.0.0\" language 1`"),
            );
            None
        }
        [h, rest @ ..] => {
            for extra in rest {
                diags.push(
                    err(
                        Code::PackHeader,
                        *extra.span,
                        "a pack has exactly one header",
                    )
                    .label("second header")
                    .related(*h.span, "first header")
                    .help("keep the header in one file and `import` the others"),
                );
            }
            if h.language.node != 1 {
                diags.push(
                    err(
                        Code::PackHeader,
                        h.language.span,
                        format!("language version {} is not supported", h.language.node),
                    )
                    .label("unsupported")
                    .help("this Stellar understands language 1"),
                );
            }
            match semver::Version::parse(&h.version.node) {
                Ok(version) => Some(Header {
                    name: h.name.node.clone(),
                    version,
                    language: h.language.node,
                }),
                Err(e) => {
                    diags.push(
                        err(
                            Code::InvalidSemver,
                            h.version.span,
                            format!("`{}` is not a semver version: {e}", h.version.node),
                        )
                        .label("pack version")
                        .help("write MAJOR.MINOR.PATCH, such as `1.0.0`"),
                    );
                    None
                }
            }
        }
    };

    // The facts the rules are checked against: the header's `facts NAME`, else the caller's.
    let named = headers.first().and_then(|h| h.facts.as_ref());
    let schema = match named {
        None => options.schema.clone(),
        Some(n) => match Schema::named(&n.node) {
            Some(s) => s,
            None => {
                let d = err(
                    Code::PackHeader,
                    n.span,
                    format!("`{}` is not a kind of facts", n.node),
                )
                .label("unknown facts");
                let known = Schema::NAMES.join(", ");
                diags.push(match did_you_mean(&n.node, Schema::NAMES) {
                    Some(s) => d.help(format!("{s} (the kinds are: {known})")),
                    None => d.help(format!("the kinds of facts are: {known}")),
                });
                options.schema.clone()
            }
        },
    };
    let mut ck = Checker {
        schema: &schema,
        diags,
        globals,
        scopes: Vec::new(),
        next_slot: 0,
        present: Vec::new(),
        fn_stack: Vec::new(),
    };

    // Every definition is checked, even unused ones, so that their errors show.
    let mut names: Vec<Name> = ck.globals.keys().cloned().collect();
    names.sort();
    for n in &names {
        let is_fn = matches!(
            ck.globals.get(n).map(|g| &g.state),
            Some(GlobalState::Fn { .. })
        );
        let was_used = ck.globals.get(n).is_some_and(|g| g.used);
        if is_fn {
            let span = ck.globals.get(n).map(|g| g.span).unwrap_or_default();
            let _ = ck.compile_fn(n, span);
        } else {
            let _ = ck.global_value(n);
        }
        if let Some(g) = ck.globals.get_mut(n) {
            g.used = was_used;
        }
    }

    let mut compiled_rules = Vec::new();
    let mut seen_ids: HashMap<Name, Span> = HashMap::default();
    // Conditions by hash, to find shadowed rules without comparing every pair.
    let mut seen_conditions: HashMap<u64, Vec<(&Expr, Effect, &str, Span)>> = HashMap::default();
    for r in &rules {
        if let Some(prev) = seen_ids.get(&r.id.node) {
            ck.diags.push(
                err(
                    Code::Duplicate,
                    r.id.span,
                    format!("the rule id `{}` is used twice", r.id.node),
                )
                .label("second rule")
                .related(*prev, "first rule")
                .help("rule ids are stable names for findings: give each rule its own"),
            );
        } else {
            seen_ids.insert(r.id.node.clone(), r.id.span);
        }
        for (field, span) in &r.repeated {
            ck.diags.push(
                err(
                    Code::RepeatedField,
                    **span,
                    format!("`{field}` is given twice in rule `{}`", r.id.node),
                )
                .label("repeated")
                .help(format!(
                    "a rule has one `{field}`; join conditions with `and`"
                )),
            );
        }
        let Some(effect) = r.effect.as_ref().map(|e| e.node) else {
            ck.diags.push(
                err(
                    Code::Missing,
                    r.id.span,
                    format!("the rule `{}` has no `effect`", r.id.node),
                )
                .label("missing `effect`")
                .help("add `effect deny`, `effect warn` or `effect info`"),
            );
            continue;
        };
        let Some(when) = &r.when else {
            ck.diags.push(
                err(
                    Code::Missing,
                    r.id.span,
                    format!("the rule `{}` has no `when` condition", r.id.node),
                )
                .label("missing `when`")
                .help("add `when <condition>`: the rule fires when the condition is true"),
            );
            continue;
        };
        // Bindings, in order; each sees the ones before it.
        let base = ck.scopes.len();
        for (name, value) in &r.lets {
            let ir = ck.expr(value);
            ck.scopes.push(Local::Let {
                name: name.node.clone(),
                ir,
                span: name.span,
                used: false,
            });
        }
        let cond = ck.expr(when);
        ck.expect_type(
            &cond,
            &Type::Bool,
            "`when` takes a condition: true or false",
        );
        // Messages and fixes are rendered only when the rule fired, so what `when` proves
        // present (`has input.x and …`) is present in them too.
        let proven = proven_present(&cond);
        let pushed = proven.len();
        ck.present.extend(proven);
        let message = r.message.as_ref().map(|t| ck.template(t));
        let fix = r.fix.as_ref().map(|t| ck.template(t));
        ck.present.truncate(ck.present.len() - pushed);
        for local in ck.scopes.drain(base..) {
            if let Local::Let {
                name,
                span,
                used: false,
                ..
            } = local
            {
                ck.diags.push(
                    err(
                        Code::UnusedBinding,
                        span,
                        format!("the binding `{name}` is never used"),
                    )
                    .label("unused")
                    .help("use it in `when`, `message` or `fix`, or remove it"),
                );
            }
        }
        if cond.size() > MAX_RULE_NODES {
            ck.diags.push(
                err(
                    Code::TooLarge,
                    when.span,
                    format!(
                        "the condition of `{}` is too large after expanding functions",
                        r.id.node
                    ),
                )
                .label(format!(
                    "{} nodes, the limit is {MAX_RULE_NODES}",
                    cond.size()
                ))
                .help("simplify the condition or the functions it calls"),
            );
            continue;
        }
        if !matches!(cond.ty, Type::Error) {
            if never_fires(&cond) {
                ck.diags.push(
                    err(
                        Code::NeverFires,
                        when.span,
                        format!("the rule `{}` can never fire", r.id.node),
                    )
                    .label("this condition is never true")
                    .help("check the constants and comparisons: as written no input can match"),
                );
            } else if let IrKind::Const(Value::Bool(true)) = cond.kind {
                ck.diags.push(
                    err(
                        Code::AlwaysTrue,
                        when.span,
                        format!("the condition of `{}` is always true", r.id.node),
                    )
                    .label("true for every input")
                    .help("the rule fires on every submission: is that intended?"),
                );
            }
        }
        let key = {
            use std::hash::{Hash, Hasher};
            let mut h = rustc_hash::FxHasher::default();
            when.hash(&mut h);
            h.finish()
        };
        let bucket = seen_conditions.entry(key).or_default();
        if let Some((_, _, first_id, first_span)) = bucket
            .iter()
            .find(|(c, e, _, _)| **c == *when && *e == effect)
        {
            ck.diags.push(
                err(
                    Code::Shadowed,
                    when.span,
                    format!(
                        "the rule `{}` has the same condition as `{first_id}`",
                        r.id.node
                    ),
                )
                .label("same condition")
                .related(*first_span, "first written here")
                .help("the two rules always fire together: merge them, or change one condition"),
            );
        } else {
            bucket.push((when, effect, r.id.node.as_str(), when.span));
        }
        let default_severity = match effect {
            Effect::Deny => Severity::High,
            Effect::Warn => Severity::Medium,
            Effect::Info => Severity::Low,
        };
        compiled_rules.push(Rule {
            id: r.id.node.to_string(),
            id_span: r.id.span,
            span: *r.span,
            effect,
            mode: r.mode.as_ref().map_or(Mode::Enforce, |m| m.node),
            severity: r.severity.as_ref().map_or(default_severity, |s| s.node),
            tags: r
                .tags
                .as_ref()
                .map(|t| t.node.iter().map(|s| s.node.clone()).collect())
                .unwrap_or_default(),
            docs: r.docs.as_ref().map(|d| d.node.clone()),
            when: cond,
            message,
            fix,
        });
    }
    let rule_ids: HashSet<&str> = rules.iter().map(|r| r.id.node.as_str()).collect();
    let unknown_rule = |ck: &mut Checker<'_>, id: &Ident, what: &str| {
        let mut d = err(
            Code::UnknownRule,
            id.span,
            format!("{what} names the unknown rule `{}`", id.node),
        )
        .label("no such rule");
        if let Some(s) = did_you_mean(&id.node, rule_ids.iter().copied()) {
            d = d.help(s);
        } else {
            d = d.help("name a rule defined in this pack");
        }
        ck.diags.push(d);
    };

    let mut compiled_waivers = Vec::new();
    let mut waiver_names: HashMap<&str, Span> = HashMap::default();
    for w in &waivers {
        if let Some(prev) = waiver_names.insert(&w.name.node, w.name.span) {
            ck.diags.push(
                err(
                    Code::Duplicate,
                    w.name.span,
                    format!("the waiver `{}` is defined twice", w.name.node),
                )
                .label("second waiver")
                .related(prev, "first waiver")
                .help("give each waiver its own name"),
            );
        }
        for (field, span) in &w.repeated {
            ck.diags.push(
                err(
                    Code::RepeatedField,
                    **span,
                    format!("`{field}` is given twice in waiver `{}`", w.name.node),
                )
                .label("repeated")
                .help("write a separate waiver for each rule and subject"),
            );
        }
        let mut missing = Vec::new();
        if w.rule.is_none() {
            missing.push("`rule`");
        }
        if w.subject.is_none() {
            missing.push("`plugin` or `publisher`");
        }
        if w.reason.is_none() {
            missing.push("`reason`");
        }
        if w.approver.is_none() {
            missing.push("`approver`");
        }
        if w.expires.is_none() {
            missing.push("`expires`");
        }
        if !missing.is_empty() {
            ck.diags.push(
                err(Code::Missing, w.name.span, format!("the waiver `{}` lacks {}", w.name.node, missing.join(", ")))
                    .label("incomplete waiver")
                    .help("a waiver names its rule, its plugin or publisher, a reason, an approver and an expiry date"),
            );
            continue;
        }
        let (Some(rule), Some(subject), Some(reason), Some(approver), Some(expires)) =
            (&w.rule, &w.subject, &w.reason, &w.approver, &w.expires)
        else {
            continue;
        };
        if !rule_ids.contains(rule.node.as_str()) {
            unknown_rule(&mut ck, rule, "the waiver");
            continue;
        }
        let Some(date) = parse_date(&expires.node) else {
            ck.diags.push(
                err(
                    Code::InvalidDate,
                    expires.span,
                    format!("`{}` is not a date", expires.node),
                )
                .label("expected YYYY-MM-DD")
                .help("write the last day the waiver applies, such as `2027-03-31`"),
            );
            continue;
        };
        if date < options.today {
            ck.diags.push(
                err(
                    Code::ExpiredWaiver,
                    expires.span,
                    format!("the waiver `{}` expired on {date}", w.name.node),
                )
                .label("expired")
                .help(
                    "it no longer applies: remove it, or renew it with a new expiry and approval",
                ),
            );
        }
        compiled_waivers.push(Waiver {
            name: w.name.node.clone(),
            rule: rule.node.to_string(),
            subject: subject.node.clone(),
            reason: reason.node.clone(),
            approver: approver.node.clone(),
            expires: date,
            span: *w.span,
        });
    }

    let mut compiled_tests = Vec::new();
    let mut test_names: HashMap<&str, Span> = HashMap::default();
    for t in &tests {
        if let Some(prev) = test_names.insert(&t.name.node, t.name.span) {
            ck.diags.push(
                err(
                    Code::Duplicate,
                    t.name.span,
                    format!("the test `{}` is defined twice", t.name.node),
                )
                .label("second test")
                .related(prev, "first test")
                .help("give each test its own name"),
            );
        }
        for (field, span) in &t.repeated {
            ck.diags.push(
                err(
                    Code::RepeatedField,
                    **span,
                    format!("`{field}` is given twice in test `{}`", t.name.node),
                )
                .label("repeated")
                .help("a test has one input and one expectation of each kind"),
            );
        }
        let input = match t.input.as_ref().map(|i| &i.node) {
            Some(TestInput::Inline(e)) => {
                let root = ck.schema.root.clone();
                literal_value(&mut ck, e, &root, "input").map(TestSource::Value)
            }
            Some(TestInput::File(path)) => Some(TestSource::File {
                path: path.clone(),
                file: t.span.file,
            }),
            None => {
                ck.diags.push(
                    err(
                        Code::Missing,
                        t.name.span,
                        format!("the test `{}` has no input", t.name.node),
                    )
                    .label("missing `input`")
                    .help("add `input { … }` or `input file \"facts.json\"`"),
                );
                None
            }
        };
        if t.expect_decision.is_none() && t.expect_fired.is_none() {
            ck.diags.push(
                err(
                    Code::Missing,
                    t.name.span,
                    format!("the test `{}` expects nothing", t.name.node),
                )
                .label("missing `expect`")
                .help("add `expect decision deny` and/or `expect fired [rule_a, rule_b]`"),
            );
        }
        if let Some(fired) = &t.expect_fired {
            for id in &fired.node {
                if !rule_ids.contains(id.node.as_str()) {
                    unknown_rule(&mut ck, id, "the test");
                }
            }
        }
        let now = match &t.now {
            Some(n) => match parse_date(&n.node) {
                Some(d) => Some(d),
                None => {
                    ck.diags.push(
                        err(
                            Code::InvalidDate,
                            n.span,
                            format!("`{}` is not a date", n.node),
                        )
                        .label("expected YYYY-MM-DD")
                        .help("write the date the test runs at, such as `2027-01-15`"),
                    );
                    None
                }
            },
            None => None,
        };
        compiled_tests.push(Test {
            name: t.name.node.clone(),
            span: *t.span,
            input,
            now,
            expect_decision: t.expect_decision.as_ref().map(|d| d.node),
            expect_fired: t
                .expect_fired
                .as_ref()
                .map(|f| f.node.iter().map(|i| i.node.to_string()).collect()),
        });
    }

    // Unused definitions.
    let mut unused: Vec<(Name, Span, &'static str)> = ck
        .globals
        .iter()
        .filter(|(_, g)| !g.used)
        .map(|(n, g)| {
            let kind = match g.state {
                GlobalState::Const { .. } => "constant",
                GlobalState::Set { .. } => "set",
                GlobalState::Fn { .. } => "function",
            };
            (n.clone(), g.span, kind)
        })
        .collect();
    unused.sort_by_key(|(_, s, _)| (s.file, s.start));
    for (n, span, kind) in unused {
        ck.diags.push(
            err(
                Code::UnusedDefinition,
                span,
                format!("the {kind} `{n}` is never used"),
            )
            .label("unused")
            .help("use it in a rule, or remove it"),
        );
    }

    let mut diagnostics = ck.diags;
    diagnostics.sort_by_key(|d| (d.span.file, d.span.start, d.code));
    diagnostics.dedup();
    Checked {
        header,
        schema,
        rules: compiled_rules,
        waivers: compiled_waivers,
        tests: compiled_tests,
        diagnostics,
    }
}
pub(super) fn literal_value(
    ck: &mut Checker<'_>,
    e: &Expr,
    ty: &Type,
    path: &str,
) -> Option<Value> {
    match (&e.node, ty) {
        (_, Type::Optional(inner)) => literal_value(ck, e, inner, path),
        (ExprKind::Record(entries), Type::Record(rec)) => {
            let mut values = vec![None; rec.fields.len()];
            let mut ok = true;
            for (key, value) in entries {
                match rec.index_of(&key.node) {
                    Some(i) => {
                        let p = format!("{path}.{}", key.node);
                        values[i] = literal_value(ck, value, &rec.fields[i].ty, &p);
                        ok &= values[i].is_some();
                    }
                    None => {
                        ok = false;
                        let names: Vec<&str> = rec.fields.iter().map(|f| f.name.as_str()).collect();
                        let mut d = err(
                            Code::UnknownField,
                            key.span,
                            format!("unknown field `{}` of `{path}`", key.node),
                        )
                        .label("no such field");
                        d = match did_you_mean(&key.node, names.iter().copied()) {
                            Some(s) => d.help(s),
                            None => d.help(format!("the fields are: {}", names.join(", "))),
                        };
                        ck.diags.push(d);
                    }
                }
            }
            let mut out = Vec::with_capacity(values.len());
            for (i, v) in values.into_iter().enumerate() {
                match v {
                    Some(v) => out.push(v),
                    None if matches!(rec.fields[i].ty, Type::Optional(_)) => {
                        out.push(Value::Absent)
                    }
                    None => {
                        if ok {
                            ck.diags.push(
                                err(Code::Missing, e.span, format!("the test input lacks `{path}.{}`", rec.fields[i].name))
                                    .label("incomplete input")
                                    .help("give every field the schema requires (see `stellar policy schema`)"),
                            );
                        }
                        return None;
                    }
                }
            }
            ok.then(|| Value::Record(Arc::from(out)))
        }
        (ExprKind::List(items), Type::List(elem) | Type::Set(elem)) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                out.push(literal_value(ck, item, elem, &format!("{path}[{i}]"))?);
            }
            Some(Value::List(Arc::from(out)))
        }
        _ => {
            let ir = ck.expr(e);
            let ir = ck.fold(ir);
            match (&ir.kind, ty) {
                (IrKind::Const(Value::Str(s)), Type::Semver) => match semver::Version::parse(s) {
                    Ok(v) => Some(Value::Semver(Arc::new(v))),
                    Err(err_) => {
                        ck.diags.push(
                            err(
                                Code::InvalidSemver,
                                e.span,
                                format!("`{s}` is not a semver version: {err_}"),
                            )
                            .label("not a version")
                            .help("write MAJOR.MINOR.PATCH"),
                        );
                        None
                    }
                },
                (IrKind::Const(v), _) if ir.ty.fits(ty) => Some(v.clone()),
                _ => {
                    ck.mismatch(
                        e.span,
                        &format!("`{ty}` for `{path}`"),
                        &ir.ty,
                        "test inputs follow the fact schema",
                    );
                    None
                }
            }
        }
    }
}
