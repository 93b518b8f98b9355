//! Rule indexing: a decision evaluates only the rules that can fire on the facts at hand.
//!
//! Many rules in a large pack are about one publisher, one licence, one permission, one name
//! pattern: their first deciding conjunct tests a fact against constants. Such a conjunct is a
//! *guard*: if the fact does not pass it, the rule cannot fire. Guards are
//! - equality with constants: `input.publisher.id == "pub7"`, `input.publisher.id in blocked`;
//! - the same for some element of a list fact: `"fs:write" in input.permissions`,
//!   `any(p in input.permissions where p in forbidden)`;
//! - prefixes and suffixes, of a fact or of some element: `starts_with(input.name, "acme-")`,
//!   `any(p in input.permissions where ends_with(p, ".example.com") and …)`;
//! - regular expressions anchored at the start, by the literal prefixes every match begins
//!   with (`matches(input.name, r"^(miner|jack)-v7")` needs `miner-v7` or `jack-v7`).
//!
//! The index maps each guarded value (or prefix, or suffix) to the rules it lets through, so a
//! decision reads a few facts and looks them up instead of evaluating every guarded rule. A
//! prefix table is probed once per distinct key length, so its cost grows with the lengths in
//! use, not with the number of rules. Counting quantifiers, `contains`, unanchored patterns and
//! comparisons of order have no guard: such rules are always evaluated.
//!
//! **Invariant:** skipping is exact. A guard is only taken from a conjunct that every conjunct
//! before it cannot fail, so a skipped rule is one the evaluator would have found false, with
//! no error. Explain mode evaluates every rule (it reports why each one did not fire).

use rustc_hash::FxHashMap;

use crate::ast::QuantKind;
use crate::ir::{Builtin, CmpOp, Ir, IrKind};
use crate::types::Type;
use crate::value::Value;

/// How a guard tests the fact's value (or each element of a list fact).
enum Test {
    /// Equals one of these values.
    Equals(Vec<Value>),
    /// Starts with one of these byte strings (`starts_with`, or a regular expression anchored at
    /// the start whose every match begins with one of its literal prefixes).
    Prefix(Vec<Box<[u8]>>),
    /// Ends with one of these byte strings (`ends_with`).
    Suffix(Vec<Box<[u8]>>),
}

/// What lets a rule through: the fact at `path` (or, with `each`, some element of the list
/// there) passes `test`.
struct Guard {
    path: Box<[u16]>,
    each: bool,
    test: Test,
}

/// Rules by the value that lets them through, for one fact path.
#[derive(Debug, Clone)]
struct ValueTable {
    path: Box<[u16]>,
    each: bool,
    rules: FxHashMap<Value, Vec<u32>>,
}

/// Rules by the prefix (or suffix) that lets them through, for one fact path: a string is
/// looked up once per distinct key length.
#[derive(Debug, Clone)]
struct AffixTable {
    path: Box<[u16]>,
    each: bool,
    suffix: bool,
    /// The distinct key lengths, ascending.
    lengths: Vec<usize>,
    rules: FxHashMap<Box<[u8]>, Vec<u32>>,
}

/// The index of a pack's rules.
#[derive(Debug, Default, Clone)]
pub struct RuleIndex {
    /// Rules without a guard: always evaluated.
    always: Vec<u32>,
    values: Vec<ValueTable>,
    affixes: Vec<AffixTable>,
}

/// Whether values of this type compare equal exactly when they hash equal.
fn indexable(t: &Type) -> bool {
    matches!(t, Type::Str | Type::Int | Type::Bool)
}

fn path_of(ir: &Ir) -> Option<&[u16]> {
    match &ir.kind {
        IrKind::Path(_, p) if indexable(&ir.ty) => Some(p),
        _ => None,
    }
}

fn const_str(ir: &Ir) -> Option<Box<[u8]>> {
    match &ir.kind {
        IrKind::Const(Value::Str(s)) => Some(s.as_bytes().into()),
        _ => None,
    }
}

/// The literal prefixes every match of `re` begins with, when it is anchored at the start of
/// the text and they are few; `None` when it cannot be said (then the rule is not indexed).
fn regex_prefixes(re: &regex::Regex) -> Option<Vec<Box<[u8]>>> {
    use regex_syntax::hir::Look;
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    // Parsed as the checker compiled it (`check::builtins`), so the language is the same.
    let hir = regex_syntax::ParserBuilder::new()
        .nest_limit(64)
        .build()
        .parse(re.as_str())
        .ok()?;
    if !hir.properties().look_set_prefix().contains(Look::Start) {
        return None;
    }
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    let mut literals: Vec<&[u8]> = seq.literals()?.iter().map(|l| l.as_bytes()).collect();
    // A literal that begins with another one in the set says nothing more: keep the shortest.
    literals.sort_by_key(|l| l.len());
    let mut kept: Vec<Box<[u8]>> = Vec::new();
    for l in literals {
        if !kept.iter().any(|k| l.starts_with(k)) {
            kept.push(l.into());
        }
    }
    (!kept.is_empty() && kept.len() <= 64).then_some(kept)
}

/// A test of one subject alone, if `c` is one, with that subject: the fact (a path) or the
/// quantifier's variable, as `is_subject` says.
fn test_of<'i>(c: &'i Ir, is_subject: &dyn Fn(&Ir) -> bool) -> Option<(Test, &'i Ir)> {
    match &c.kind {
        IrKind::Cmp(CmpOp::Eq, a, b) => match (&a.kind, &b.kind) {
            (_, IrKind::Const(v)) if is_subject(a) => Some((Test::Equals(vec![v.clone()]), a)),
            (IrKind::Const(v), _) if is_subject(b) => Some((Test::Equals(vec![v.clone()]), b)),
            _ => None,
        },
        IrKind::InSet(e, set, _) if is_subject(e) => {
            Some((Test::Equals(set.iter().cloned().collect()), e))
        }
        IrKind::Call(b @ (Builtin::StartsWith | Builtin::EndsWith), args)
            if args.len() == 2 && is_subject(&args[0]) && args[0].ty == Type::Str =>
        {
            let affix = const_str(&args[1])?;
            let test = if *b == Builtin::StartsWith {
                Test::Prefix(vec![affix])
            } else {
                Test::Suffix(vec![affix])
            };
            Some((test, &args[0]))
        }
        IrKind::Matches(e, re) if is_subject(e) && e.ty == Type::Str => {
            Some((Test::Prefix(regex_prefixes(re)?), e))
        }
        _ => None,
    }
}

/// The test of the first conjunct of `body` that has one, when every conjunct before it
/// cannot fail.
fn first_test(body: &Ir, is_subject: &dyn Fn(&Ir) -> bool) -> Option<Test> {
    let mut cs = Vec::new();
    conjuncts(body, &mut cs);
    for c in cs {
        if let Some((t, _)) = test_of(c, is_subject) {
            return Some(t);
        }
        if !infallible(c) {
            return None;
        }
    }
    None
}

fn guard_of(c: &Ir) -> Option<Guard> {
    match &c.kind {
        // `"c" in input.list`: some element equals the constant.
        IrKind::InList(item, list) => {
            let IrKind::Const(v) = &item.kind else {
                return None;
            };
            let IrKind::Path(_, p) = &list.kind else {
                return None;
            };
            if !indexable(list.ty.element()?) {
                return None;
            }
            Some(Guard {
                path: p.clone(),
                each: true,
                test: Test::Equals(vec![v.clone()]),
            })
        }
        IrKind::Quant(QuantKind::Any, slot, _, list, body) => {
            let IrKind::Path(_, p) = &list.kind else {
                return None;
            };
            if !indexable(list.ty.element()?) {
                return None;
            }
            // An element passes the whole body only if it passes the body's guard.
            let is_var = |e: &Ir| matches!(e.kind, IrKind::Local(s) if s == *slot);
            Some(Guard {
                path: p.clone(),
                each: true,
                test: first_test(body, &is_var)?,
            })
        }
        _ => {
            let (test, subject) = test_of(c, &|e| path_of(e).is_some())?;
            Some(Guard {
                path: path_of(subject)?.into(),
                each: false,
                test,
            })
        }
    }
}

/// Whether evaluating a conjunct can never fail (so a later conjunct may serve as the guard).
fn infallible(c: &Ir) -> bool {
    let simple = |e: &Ir| {
        matches!(e.kind, IrKind::Path(..) | IrKind::Const(_)) && !matches!(e.ty, Type::Optional(_))
    };
    match &c.kind {
        IrKind::Const(Value::Bool(_)) => true,
        IrKind::Path(..) => c.ty == Type::Bool,
        IrKind::Not(e) => infallible(e),
        IrKind::And(a, b) | IrKind::Or(a, b) => infallible(a) && infallible(b),
        IrKind::Cmp(_, a, b) => simple(a) && simple(b) && !matches!(a.ty, Type::Semver),
        IrKind::InSet(e, _, _) | IrKind::Has(e, _) => simple(e) || matches!(e.kind, IrKind::Input),
        IrKind::Call(
            Builtin::IsSemver | Builtin::StartsWith | Builtin::EndsWith | Builtin::Contains,
            args,
        )
        | IrKind::Call(Builtin::Len | Builtin::IsEmpty, args) => args.iter().all(simple),
        _ => false,
    }
}

fn conjuncts<'i>(ir: &'i Ir, out: &mut Vec<&'i Ir>) {
    match &ir.kind {
        IrKind::And(a, b) => {
            conjuncts(a, out);
            conjuncts(b, out);
        }
        _ => out.push(ir),
    }
}

/// The guard of a condition, if it has one.
fn guard(when: &Ir) -> Option<Guard> {
    let mut cs = Vec::new();
    conjuncts(when, &mut cs);
    for c in cs {
        if let Some(g) = guard_of(c) {
            return Some(g);
        }
        if !infallible(c) {
            return None;
        }
    }
    None
}

fn push(rules: &mut Vec<u32>, rule: u32) {
    if rules.last() != Some(&rule) {
        rules.push(rule);
    }
}

fn read<'v>(facts: &'v Value, path: &[u16]) -> Option<&'v Value> {
    let mut v = facts;
    for i in path {
        match v {
            Value::Record(fields) => v = fields.get(*i as usize)?,
            _ => return None,
        }
    }
    Some(v)
}

/// The table of `tables` that `is` picks, added by `make` when there is none.
fn table_of<T>(tables: &mut Vec<T>, is: impl Fn(&T) -> bool, make: impl FnOnce() -> T) -> &mut T {
    let at = match tables.iter().position(is) {
        Some(at) => at,
        None => {
            tables.push(make());
            tables.len() - 1
        }
    };
    &mut tables[at]
}

impl RuleIndex {
    /// Indexes rules by their conditions (in pack order).
    pub fn build<'r>(conditions: impl IntoIterator<Item = &'r Ir>) -> Self {
        let mut index = RuleIndex::default();
        for (i, when) in conditions.into_iter().enumerate() {
            let i = i as u32;
            let Some(Guard { path, each, test }) = guard(when) else {
                index.always.push(i);
                continue;
            };
            let (keys, suffix) = match test {
                Test::Equals(values) => {
                    let is = |t: &ValueTable| t.path == path && t.each == each;
                    let make = || ValueTable {
                        path: path.clone(),
                        each,
                        rules: FxHashMap::default(),
                    };
                    let table = table_of(&mut index.values, is, make);
                    for v in values {
                        push(table.rules.entry(v).or_default(), i);
                    }
                    continue;
                }
                Test::Prefix(keys) => (keys, false),
                Test::Suffix(keys) => (keys, true),
            };
            let is = |t: &AffixTable| t.path == path && t.each == each && t.suffix == suffix;
            let make = || AffixTable {
                path: path.clone(),
                each,
                suffix,
                lengths: Vec::new(),
                rules: FxHashMap::default(),
            };
            let table = table_of(&mut index.affixes, is, make);
            for k in keys {
                if let Err(at) = table.lengths.binary_search(&k.len()) {
                    table.lengths.insert(at, k.len());
                }
                push(table.rules.entry(k).or_default(), i);
            }
        }
        index
    }

    /// How many rules have a guard.
    pub fn guarded(&self, total: usize) -> usize {
        total - self.always.len()
    }

    /// The rules that can fire on these facts, in pack order.
    pub fn candidates(&self, facts: &Value) -> Vec<u32> {
        let mut out = self.always.clone();
        for t in &self.values {
            match read(facts, &t.path) {
                Some(Value::List(items)) if t.each => {
                    for item in items.iter() {
                        if let Some(rules) = t.rules.get(item) {
                            out.extend_from_slice(rules);
                        }
                    }
                }
                Some(v) if !t.each => {
                    if let Some(rules) = t.rules.get(v) {
                        out.extend_from_slice(rules);
                    }
                }
                _ => {}
            }
        }
        for t in &self.affixes {
            let mut probe = |s: &str| {
                let s = s.as_bytes();
                for &n in &t.lengths {
                    if n > s.len() {
                        break;
                    }
                    let key = if t.suffix { &s[s.len() - n..] } else { &s[..n] };
                    if let Some(rules) = t.rules.get(key) {
                        out.extend_from_slice(rules);
                    }
                }
            };
            match read(facts, &t.path) {
                Some(Value::List(items)) if t.each => {
                    for item in items.iter() {
                        if let Value::Str(s) = item {
                            probe(s);
                        }
                    }
                }
                Some(Value::Str(s)) if !t.each => probe(s),
                _ => {}
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixes(pattern: &str) -> Option<Vec<String>> {
        let re = regex::Regex::new(pattern).ok()?;
        let mut v: Vec<String> = regex_prefixes(&re)?
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        v.sort();
        Some(v)
    }

    #[test]
    fn anchored_regexes_give_their_literal_prefixes_and_others_none() {
        let cases: &[(&str, Option<&[&str]>)] = &[
            ("^(miner|jack)-v7[0-9]*$", Some(&["jack-v7", "miner-v7"])),
            ("^abc", Some(&["abc"])),
            (r"\Aab+", Some(&["ab"])),
            // Not anchored: a match may start anywhere.
            ("abc", None),
            ("(?m)^abc", None),
            ("^abc|xyz", None),
            // No literal prefix to speak of.
            ("^[a-z]+$", None),
            ("^.*x", None),
        ];
        for (pattern, want) in cases {
            let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(prefixes(pattern), want, "{pattern}");
        }
    }
}
