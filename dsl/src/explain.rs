//! Evidence: why a condition came out as it did, in terms of the values that decided it.
//!
//! The tracer evaluates like the evaluator but records, for the deciding sub-expressions, what
//! they were (`input.resources.memory_mb = 1024 > 512`). Relations are always stated as they
//! actually hold, so evidence is true whether it explains a rule that fired or one that did not.
//! For a comparison with a constant it also says what would change the outcome
//! (`input.resources.memory_mb ≤ 512`).

use serde::Serialize;

use crate::ast::QuantKind;
use crate::eval::{EvalError, Evaluator, holds};
use crate::ir::{Ir, IrKind};
use crate::span::{Sources, Span};
use crate::value::Value;

/// One fact that decided a condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// The expression, as written.
    pub expr: String,
    /// Its value.
    pub value: String,
    /// How the value relates to what it was tested against (`> 512`, `∈ blocked_publishers`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
    /// What would change the outcome (`input.resources.memory_mb ≤ 512`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_pass: Option<String>,
    #[serde(skip)]
    pub span: Span,
}

impl Evidence {
    /// `expr = value relation`.
    pub fn text(&self) -> String {
        match &self.relation {
            Some(r) => format!("{} = {} {r}", self.expr, self.value),
            None => format!("{} = {}", self.expr, self.value),
        }
    }
}

type R<T> = Result<T, EvalError>;

/// Most elements a quantifier's evidence lists; the rest are counted.
pub const MAX_WITNESSES: usize = 50;

/// Evaluates with evidence.
pub struct Tracer<'e, 'a> {
    pub ev: &'e mut Evaluator<'a>,
    pub sources: &'e Sources,
}

fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last_space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    if out.chars().count() > 120 {
        let cut: String = out.chars().take(117).collect();
        format!("{cut}…")
    } else {
        out
    }
}

impl Tracer<'_, '_> {
    fn text(&self, ir: &Ir) -> String {
        one_line(self.sources.snippet(ir.span))
    }

    fn leaf(&self, ir: &Ir, v: &Value) -> Evidence {
        Evidence {
            expr: self.text(ir),
            value: v.render(Some(&ir.ty)),
            relation: None,
            would_pass: None,
            span: ir.span,
        }
    }

    /// The text of the other side of a comparison: a literal as its value, a name with it.
    fn operand(&self, ir: &Ir, v: &Value) -> String {
        let text = self.text(ir);
        let shown = v.render(Some(&ir.ty));
        if text == shown
            || text.is_empty()
            || matches!(ir.kind, IrKind::Const(_)) && text.starts_with('"')
        {
            shown
        } else {
            format!("{text} ({shown})")
        }
    }

    /// Evaluates a boolean condition with its evidence. `positive` is whether the condition
    /// being true makes the rule fire (it flips under `not`).
    pub fn condition(&mut self, ir: &Ir, positive: bool) -> R<(bool, Vec<Evidence>)> {
        match &ir.kind {
            IrKind::And(a, b) => {
                let (va, ea) = self.condition(a, positive)?;
                if !va {
                    return Ok((false, ea));
                }
                let (vb, eb) = self.condition(b, positive)?;
                if !vb {
                    return Ok((false, eb));
                }
                Ok((true, [ea, eb].concat()))
            }
            IrKind::Or(a, b) => {
                let (va, ea) = self.condition(a, positive)?;
                if va {
                    return Ok((true, ea));
                }
                let (vb, eb) = self.condition(b, positive)?;
                if vb {
                    return Ok((true, eb));
                }
                Ok((false, [ea, eb].concat()))
            }
            IrKind::Not(a) => {
                let (v, e) = self.condition(a, !positive)?;
                Ok((!v, e))
            }
            IrKind::Cmp(op, a, b) => {
                let va = self.ev.eval(a)?;
                let vb = self.ev.eval(b)?;
                let h = holds(*op, &va, &vb).unwrap_or(false);
                let shown = if h { *op } else { op.negate() };
                let constant_rhs = matches!(b.kind, IrKind::Const(_));
                let constant_lhs = matches!(a.kind, IrKind::Const(_));
                let (subject, subject_value, other, rel) = if constant_lhs && !constant_rhs {
                    (b, &vb, self.operand(a, &va), flip(shown))
                } else {
                    (a, &va, self.operand(b, &vb), shown)
                };
                // The rule fires when this comparison is `h == positive`; the change that would
                // flip it is the opposite relation.
                let would_pass = (constant_rhs || constant_lhs).then(|| {
                    let target = if h == positive { rel.negate() } else { rel };
                    format!("{} {} {}", self.text(subject), target.pretty(), other)
                });
                let mut e = self.leaf(subject, subject_value);
                // `x = "a"` says it all; other relations are stated.
                if !(rel == crate::ir::CmpOp::Eq && other == e.value) {
                    e.relation = Some(format!("{} {other}", rel.pretty()));
                }
                e.would_pass = would_pass;
                Ok((h, vec![e]))
            }
            IrKind::InSet(e, set, name) => {
                let v = self.ev.eval(e)?;
                let h = set.contains(&v);
                let set_name = name
                    .as_deref()
                    .map(|n| n.to_owned())
                    .unwrap_or_else(|| "the list".into());
                let mut ev = self.leaf(e, &v);
                ev.relation = Some(format!("{} {set_name}", if h { "∈" } else { "∉" }));
                ev.would_pass = Some(format!(
                    "{} {} {set_name}",
                    self.text(e),
                    if h == positive {
                        if h { "∉" } else { "∈" }
                    } else if h {
                        "∈"
                    } else {
                        "∉"
                    }
                ));
                Ok((h, vec![ev]))
            }
            IrKind::Quant(
                kind @ (QuantKind::Any | QuantKind::All | QuantKind::None),
                slot,
                var,
                list,
                body,
            ) => {
                let items = match self.ev.eval(list)? {
                    Value::List(l) => l,
                    other => {
                        return Err(EvalError::Internal {
                            span: list.span,
                            what: format!("expected a list, found {other}"),
                        });
                    }
                };
                // any: its witnesses; all: its counterexamples; none: the witnesses that break
                // it. Every one of them, so that a partner fixes them all in one round (up to
                // MAX_WITNESSES, then a count of the rest).
                let look_for = !matches!(kind, QuantKind::All);
                let mut found: Vec<Evidence> = Vec::new();
                let mut witnesses = 0usize;
                for item in items.iter() {
                    self.ev.set_local(*slot, item.clone());
                    let (b, eb) =
                        self.condition(body, positive == !matches!(kind, QuantKind::None))?;
                    if b != look_for {
                        continue;
                    }
                    witnesses += 1;
                    if witnesses > MAX_WITNESSES {
                        continue;
                    }
                    found.push(Evidence {
                        expr: var.to_string(),
                        value: item.render(list.ty.element()),
                        relation: Some(format!("∈ {}", self.text(list))),
                        would_pass: None,
                        span: list.span,
                    });
                    found.extend(eb);
                }
                if witnesses > 0 {
                    if witnesses > MAX_WITNESSES {
                        found.push(Evidence {
                            expr: self.text(list),
                            value: format!("{} more", witnesses - MAX_WITNESSES),
                            relation: Some("not listed".into()),
                            would_pass: None,
                            span: list.span,
                        });
                    }
                    let result = matches!(kind, QuantKind::Any);
                    return Ok((result, found));
                }
                let summary = Evidence {
                    expr: self.text(list),
                    value: Value::List(items.clone()).render(Some(&list.ty)),
                    relation: Some(match kind {
                        QuantKind::Any => format!(
                            "no element makes the condition true ({} checked)",
                            items.len()
                        ),
                        QuantKind::All => format!(
                            "every element makes the condition true ({} checked)",
                            items.len()
                        ),
                        _ => format!(
                            "no element makes the condition true ({} checked)",
                            items.len()
                        ),
                    }),
                    would_pass: None,
                    span: list.span,
                };
                Ok((!matches!(kind, QuantKind::Any), vec![summary]))
            }
            IrKind::Const(Value::Bool(b)) => Ok((*b, Vec::new())),
            IrKind::InList(item, list) => {
                let iv = self.ev.eval(item)?;
                let lv = self.ev.eval(list)?;
                let h = lv
                    .as_list()
                    .is_some_and(|l| l.iter().any(|x| crate::eval::equal(x, &iv)));
                let shown = self.operand(item, &iv);
                let mut e = self.leaf(list, &lv);
                e.relation = Some(format!("{} {shown}", if h { "∋" } else { "∌" }));
                e.would_pass = Some(format!(
                    "{} {} {}",
                    self.text(list),
                    if h == positive {
                        if h { "∌" } else { "∋" }
                    } else if h {
                        "∋"
                    } else {
                        "∌"
                    },
                    shown
                ));
                Ok((h, vec![e]))
            }
            IrKind::Matches(arg, _) | IrKind::Satisfies(arg, _) => {
                let v = self.ev.eval_bool(ir)?;
                let av = self.ev.eval(arg)?;
                let mut evs = vec![self.leaf(ir, &Value::Bool(v))];
                if !matches!(arg.kind, IrKind::Const(_)) {
                    evs.push(self.leaf(arg, &av));
                }
                Ok((v, evs))
            }
            IrKind::Call(_, args) => {
                let v = self.ev.eval_bool(ir)?;
                let mut evs = vec![self.leaf(ir, &Value::Bool(v))];
                for a in args {
                    // Quantifier variables are shown with their witness already.
                    if is_path(a) && !matches!(a.kind, IrKind::Local(_)) {
                        let av = self.ev.eval(a)?;
                        evs.push(self.leaf(a, &av));
                    }
                }
                Ok((v, evs))
            }
            _ => {
                let v = self.ev.eval_bool(ir)?;
                Ok((v, vec![self.leaf(ir, &Value::Bool(v))]))
            }
        }
    }
}

fn is_path(ir: &Ir) -> bool {
    match &ir.kind {
        IrKind::Input | IrKind::Local(_) | IrKind::Path(..) => true,
        IrKind::Field(inner, _) => is_path(inner),
        _ => false,
    }
}

fn flip(op: crate::ir::CmpOp) -> crate::ir::CmpOp {
    use crate::ir::CmpOp::*;
    match op {
        Lt => Gt,
        Le => Ge,
        Gt => Lt,
        Ge => Le,
        other => other,
    }
}
