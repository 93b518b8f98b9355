//! Rule indexing: a decision evaluates only the rules that can fire on the facts at hand.
//!
//! Many rules in a large pack are about one publisher, one licence, one permission: their first
//! deciding conjunct compares a fact with constants (`input.publisher.id == "pub7"`,
//! `input.publisher.id in blocked`, `any(p in input.permissions where p in forbidden)`). Such a
//! conjunct is a *guard*: if the fact's value is not among its constants, the rule cannot fire.
//! The index maps each guarded fact value to the rules it lets through, so a decision reads a
//! few facts and looks them up instead of evaluating every guarded rule.
//!
//! **Invariant:** skipping is exact. A guard is only taken from a conjunct that every conjunct
//! before it cannot fail, so a skipped rule is one the evaluator would have found false, with
//! no error. Explain mode evaluates every rule (it reports why each one did not fire).

use rustc_hash::FxHashMap;

use crate::ast::QuantKind;
use crate::ir::{Builtin, CmpOp, Ir, IrKind};
use crate::types::Type;
use crate::value::Value;

/// What lets a rule through.
enum Guard {
    /// The fact at `path` equals one of `values`.
    Value(Box<[u16]>, Vec<Value>),
    /// Some element of the list at `path` equals one of `values`.
    Element(Box<[u16]>, Vec<Value>),
}

/// Fact path → (value → rules that the value lets through).
type Table = Vec<(Box<[u16]>, FxHashMap<Value, Vec<u32>>)>;

/// The index of a pack's rules.
#[derive(Debug, Default, Clone)]
pub struct RuleIndex {
    /// Rules without a guard: always evaluated.
    always: Vec<u32>,
    by_value: Table,
    by_element: Table,
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

fn guard_of(c: &Ir) -> Option<Guard> {
    match &c.kind {
        IrKind::Cmp(CmpOp::Eq, a, b) => match (path_of(a), &b.kind, path_of(b), &a.kind) {
            (Some(p), IrKind::Const(v), _, _) | (_, _, Some(p), IrKind::Const(v)) => {
                Some(Guard::Value(p.into(), vec![v.clone()]))
            }
            _ => None,
        },
        IrKind::InSet(e, set, _) => {
            let p = path_of(e)?;
            Some(Guard::Value(p.into(), set.iter().cloned().collect()))
        }
        IrKind::Quant(QuantKind::Any, slot, _, list, body) => {
            let IrKind::Path(_, p) = &list.kind else {
                return None;
            };
            let elem = list.ty.element()?;
            if !indexable(elem) {
                return None;
            }
            let is_var = |e: &Ir| matches!(e.kind, IrKind::Local(s) if s == *slot);
            match &body.kind {
                IrKind::InSet(e, set, _) if is_var(e) => {
                    Some(Guard::Element(p.clone(), set.iter().cloned().collect()))
                }
                IrKind::Cmp(CmpOp::Eq, a, b) => match (&a.kind, &b.kind) {
                    (_, IrKind::Const(v)) if is_var(a) => {
                        Some(Guard::Element(p.clone(), vec![v.clone()]))
                    }
                    (IrKind::Const(v), _) if is_var(b) => {
                        Some(Guard::Element(p.clone(), vec![v.clone()]))
                    }
                    _ => None,
                },
                _ => None,
            }
        }
        _ => None,
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

fn add(table: &mut Table, path: Box<[u16]>, values: Vec<Value>, rule: u32) {
    let entry = match table.iter_mut().position(|(p, _)| *p == path) {
        Some(i) => &mut table[i].1,
        None => {
            table.push((path, FxHashMap::default()));
            let last = table.len() - 1;
            &mut table[last].1
        }
    };
    for v in values {
        let rules = entry.entry(v).or_default();
        if rules.last() != Some(&rule) {
            rules.push(rule);
        }
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

impl RuleIndex {
    /// Indexes rules by their conditions (in pack order).
    pub fn build<'r>(conditions: impl IntoIterator<Item = &'r Ir>) -> Self {
        let mut index = RuleIndex::default();
        for (i, when) in conditions.into_iter().enumerate() {
            let i = i as u32;
            match guard(when) {
                Some(Guard::Value(p, vs)) => add(&mut index.by_value, p, vs, i),
                Some(Guard::Element(p, vs)) => add(&mut index.by_element, p, vs, i),
                None => index.always.push(i),
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
        for (path, map) in &self.by_value {
            if let Some(rules) = read(facts, path).and_then(|v| map.get(v)) {
                out.extend_from_slice(rules);
            }
        }
        for (path, map) in &self.by_element {
            if let Some(Value::List(items)) = read(facts, path) {
                for item in items.iter() {
                    if let Some(rules) = map.get(item) {
                        out.extend_from_slice(rules);
                    }
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}
