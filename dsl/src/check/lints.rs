//! Analyses of whole rules: a condition that can never hold (constant false, or contradictory
//! bounds on one path) is reported where it is written.

use super::*;

// ----- rule-level analyses -------------------------------------------------------------------

/// A bound on one integer path, from a conjunction of comparisons with constants.
#[derive(Debug, Default, Clone)]
struct Bounds {
    lo: Option<i64>,
    hi: Option<i64>,
    eq_str: Option<Value>,
    ne_str: Vec<Value>,
}

/// Whether a condition can never hold: constant false, or contradictory bounds on one path.
pub(super) fn never_fires(ir: &Ir) -> bool {
    if let IrKind::Const(Value::Bool(false)) = ir.kind {
        return true;
    }
    let mut conj = Vec::new();
    flatten_and(ir, &mut conj);
    // A contradiction needs two comparisons.
    if conj
        .iter()
        .filter(|c| matches!(c.kind, IrKind::Cmp(..)))
        .count()
        < 2
    {
        return false;
    }
    let mut bounds: BTreeMap<String, Bounds> = BTreeMap::new();
    for c in conj {
        let IrKind::Cmp(op, a, b) = &c.kind else {
            continue;
        };
        let (path, op, k) = match (
            Checker::path_of(a),
            b.constant(),
            a.constant(),
            Checker::path_of(b),
        ) {
            (Some(p), Some(k), _, _) => (p, *op, k.clone()),
            (_, _, Some(k), Some(p)) => (p, flip(*op), k.clone()),
            _ => continue,
        };
        let bd = bounds.entry(path).or_default();
        match (&k, op) {
            (Value::Int(v), CmpOp::Gt) => {
                bd.lo = Some(
                    bd.lo
                        .map_or(v.saturating_add(1), |x| x.max(v.saturating_add(1))),
                )
            }
            (Value::Int(v), CmpOp::Ge) => bd.lo = Some(bd.lo.map_or(*v, |x| x.max(*v))),
            (Value::Int(v), CmpOp::Lt) => {
                bd.hi = Some(
                    bd.hi
                        .map_or(v.saturating_sub(1), |x| x.min(v.saturating_sub(1))),
                )
            }
            (Value::Int(v), CmpOp::Le) => bd.hi = Some(bd.hi.map_or(*v, |x| x.min(*v))),
            (Value::Int(v), CmpOp::Eq) => {
                bd.lo = Some(bd.lo.map_or(*v, |x| x.max(*v)));
                bd.hi = Some(bd.hi.map_or(*v, |x| x.min(*v)));
            }
            (_, CmpOp::Eq) => {
                if bd.eq_str.as_ref().is_some_and(|e| *e != k) {
                    return true;
                }
                bd.eq_str = Some(k.clone());
            }
            (_, CmpOp::Ne) => bd.ne_str.push(k.clone()),
            _ => {}
        }
        if let (Some(lo), Some(hi)) = (bd.lo, bd.hi)
            && lo > hi
        {
            return true;
        }
        if let Some(e) = &bd.eq_str
            && bd.ne_str.contains(e)
        {
            return true;
        }
    }
    false
}

pub(super) fn flip(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        other => other,
    }
}

pub(super) fn flatten_and<'i>(ir: &'i Ir, out: &mut Vec<&'i Ir>) {
    match &ir.kind {
        IrKind::And(a, b) => {
            flatten_and(a, out);
            flatten_and(b, out);
        }
        _ => out.push(ir),
    }
}

pub(super) fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}
