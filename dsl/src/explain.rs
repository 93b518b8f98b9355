//! Evidence: why a condition came out as it did, in terms of the values that decided it.
//!
//! The tracer evaluates like the evaluator but records, for the deciding sub-expressions, what
//! they were (`input.resources.memory_mb = 1024 > 512`). Relations are always stated as they
//! actually hold, so evidence is true whether it explains a rule that fired or one that did not.
//! For a comparison with a constant it also says what would change the outcome
//! (`input.resources.memory_mb ≤ 512`).

use std::sync::Arc;

use serde::Serialize;

use crate::ast::QuantKind;
use crate::eval::{EvalError, Evaluator, holds};
use crate::ir::{CmpOp, Ir, IrKind};
use crate::span::{Sources, Span};
use crate::value::Value;

/// Text in evidence, shared: the text of an expression is the same in every verdict, so a
/// verdict holds references to the texts computed when the pack was loaded.
pub type Text = Arc<str>;

/// One fact that decided a condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// The expression, as written.
    pub expr: Text,
    /// Its value.
    pub value: Text,
    /// How the value relates to what it was tested against (`> 512`, `∈ blocked_publishers`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation: Option<Text>,
    /// What would change the outcome (`input.resources.memory_mb ≤ 512`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_pass: Option<Text>,
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

/// The texts evidence shows about one rule's condition, computed the first time the rule is
/// explained and kept with the pack: every expression as written (on one line), and for every
/// comparison with a constant and every membership in a named set, the relation and the change
/// that would flip it in both outcomes. Explaining the rule again shares these texts instead of
/// formatting them again, which is what keeps explain mode (a reason for every rule) about as
/// cheap as a plain decision. A condition has a few nodes: lookups are linear.
#[derive(Debug, Clone)]
pub struct Texts {
    /// The rule's id.
    pub id: Text,
    exprs: Vec<(Span, Text)>,
    relations: Vec<(RelationKey, Relations)>,
    yes: Text,
    no: Text,
}

/// Where a test is written: its own span and its operands' (the same text may be compiled more
/// than once, as the body of a function inlined at several calls), and its operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RelationKey {
    at: Span,
    a: Span,
    b: Span,
    op: Option<CmpOp>,
}

impl RelationKey {
    fn of(ir: &Ir) -> Option<RelationKey> {
        match &ir.kind {
            IrKind::Cmp(op, a, b) => Some(RelationKey {
                at: ir.span,
                a: a.span,
                b: b.span,
                op: Some(*op),
            }),
            IrKind::InSet(e, _, _) => Some(RelationKey {
                at: ir.span,
                a: e.span,
                b: Span::default(),
                op: None,
            }),
            _ => None,
        }
    }
}

/// A test's relation (`> 512`) and the change that would flip it
/// (`input.resources.memory_mb ≤ 512`), indexed by the outcome they state (false, true), with
/// what they were computed from: the constant (or the set's name). A test whose constant
/// differs (a folded expression in an inlined function) is explained afresh.
#[derive(Debug, Clone)]
struct Relations {
    from: Value,
    relation: [Text; 2],
    would: [Text; 2],
}

impl Texts {
    /// The texts of the condition of rule `id`.
    pub fn build(sources: &Sources, id: &str, condition: &Ir) -> Self {
        let mut exprs: Vec<(Span, Text)> = Vec::new();
        let mut relations: Vec<(RelationKey, Relations)> = Vec::new();
        let text = |span: Span| -> Text { one_line(sources.snippet(span)).into() };
        condition.walk(&mut |ir| {
            if matches!(ir.kind, IrKind::And(..) | IrKind::Or(..) | IrKind::Not(_)) {
                return;
            }
            if !exprs.iter().any(|(s, _)| *s == ir.span) {
                exprs.push((ir.span, text(ir.span)));
            }
            let Some(key) = RelationKey::of(ir) else {
                return;
            };
            if relations.iter().any(|(k, _)| *k == key) {
                return;
            }
            // The symbols of the relation in each outcome (false, true).
            let (from, subject, other, symbols) = match &ir.kind {
                IrKind::Cmp(op, a, b) => {
                    let flipped = a.constant().is_some() && b.constant().is_none();
                    let (subject, other, from) = match (a.constant(), b.constant()) {
                        (Some(v), None) => (b, operand_text(&text(a.span), a, v), v.clone()),
                        (_, Some(v)) => (a, operand_text(&text(b.span), b, v), v.clone()),
                        (None, None) => return,
                    };
                    let symbol = |h| shown_relation(*op, h, flipped).pretty();
                    (
                        from,
                        text(subject.span),
                        other,
                        [symbol(false), symbol(true)],
                    )
                }
                IrKind::InSet(e, _, name) => {
                    let set = name.as_deref().unwrap_or("the list");
                    (Value::str(set), text(e.span), set.to_owned(), ["∉", "∈"])
                }
                _ => return,
            };
            let texts = Relations {
                from,
                relation: symbols.map(|s| Text::from(format!("{s} {other}"))),
                would: symbols.map(|s| Text::from(format!("{subject} {s} {other}"))),
            };
            relations.push((key, texts));
        });
        Texts {
            id: Text::from(id),
            exprs,
            relations,
            yes: Text::from("true"),
            no: Text::from("false"),
        }
    }

    fn relation(&self, ir: &Ir) -> Option<&Relations> {
        let key = RelationKey::of(ir)?;
        self.relations
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, r)| r)
    }
}

/// The relation a comparison `op` states when its outcome is `h` (flipped when the constant is
/// on the left, so that the subject comes first).
fn shown_relation(op: CmpOp, h: bool, flipped: bool) -> CmpOp {
    let shown = if h { op } else { op.negate() };
    if flipped { flip(shown) } else { shown }
}

/// The text of the other side of a comparison: a literal as its value, a name with it.
fn operand_text(text: &str, ir: &Ir, v: &Value) -> String {
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

/// Which outcome the change that would flip a test states: the opposite of `h` when the test
/// came out the way that makes the rule fire (`h == positive`), else `h` itself.
fn would_index(h: bool, positive: bool) -> usize {
    usize::from(if h == positive { !h } else { h })
}

/// Evaluates with evidence.
pub struct Tracer<'e, 'a> {
    pub ev: &'e mut Evaluator<'a>,
    pub sources: &'e Sources,
    pub texts: &'e Texts,
    /// Values of fact paths rendered in this evaluation, by path id.
    pub rendered: &'e mut Vec<Option<Text>>,
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
    fn text(&self, ir: &Ir) -> Text {
        match self.texts.exprs.iter().find(|(s, _)| *s == ir.span) {
            Some((_, t)) => t.clone(),
            None => one_line(self.sources.snippet(ir.span)).into(),
        }
    }

    /// A value as evidence shows it; a fact's value is rendered once per evaluation.
    fn shown(&mut self, ir: &Ir, v: &Value) -> Text {
        match (v, &ir.kind) {
            (Value::Bool(true), _) => self.texts.yes.clone(),
            (Value::Bool(false), _) => self.texts.no.clone(),
            (_, IrKind::Path(id, _)) => {
                let i = *id as usize;
                if let Some(Some(t)) = self.rendered.get(i) {
                    return t.clone();
                }
                let t: Text = v.render(Some(&ir.ty)).into();
                if self.rendered.len() <= i {
                    self.rendered.resize(i + 1, None);
                }
                self.rendered[i] = Some(t.clone());
                t
            }
            _ => v.render(Some(&ir.ty)).into(),
        }
    }

    fn leaf(&mut self, ir: &Ir, v: &Value) -> Evidence {
        Evidence {
            expr: self.text(ir),
            value: self.shown(ir, v),
            relation: None,
            would_pass: None,
            span: ir.span,
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
                let h = holds(*op, &va, &vb).ok_or_else(|| EvalError::Internal {
                    span: ir.span,
                    what: "compare".into(),
                })?;
                let constant_lhs = a.constant().is_some();
                let constant_rhs = b.constant().is_some();
                let flipped = constant_lhs && !constant_rhs;
                let (subject, subject_value) = if flipped { (b, &vb) } else { (a, &va) };
                let mut e = self.leaf(subject, subject_value);
                let rel = shown_relation(*op, h, flipped);
                let other_v = if flipped { &va } else { &vb };
                let known = self
                    .texts
                    .relation(ir)
                    .filter(|r| r.from == *other_v && (constant_lhs || constant_rhs));
                if let Some(r) = known {
                    // `x = "a"` says it all; other relations are stated.
                    let said = rel == CmpOp::Eq
                        && r.relation[usize::from(h)]
                            .strip_prefix("= ")
                            .is_some_and(|other| other == &*e.value);
                    if !said {
                        e.relation = Some(r.relation[usize::from(h)].clone());
                    }
                    e.would_pass = Some(r.would[would_index(h, positive)].clone());
                } else {
                    // Not computed at load (no constant side, or an inlined function's folded
                    // constant): said afresh. Without a constant nothing is proposed.
                    let other_ir = if flipped { a } else { b };
                    let other = operand_text(&self.text(other_ir), other_ir, other_v);
                    if !(rel == CmpOp::Eq && other == *e.value) {
                        e.relation = Some(format!("{} {other}", rel.pretty()).into());
                    }
                    if constant_lhs || constant_rhs {
                        let target = shown_relation(*op, would_index(h, positive) == 1, flipped);
                        e.would_pass = Some(
                            format!("{} {} {other}", self.text(subject), target.pretty()).into(),
                        );
                    }
                }
                Ok((h, vec![e]))
            }
            IrKind::InSet(e, set, name) => {
                let v = self.ev.eval(e)?;
                let h = set.contains(&v);
                let mut ev = self.leaf(e, &v);
                let set_name = name.as_deref().unwrap_or("the list");
                let known = self
                    .texts
                    .relation(ir)
                    .filter(|r| r.from.as_str() == Some(set_name));
                match known {
                    Some(r) => {
                        ev.relation = Some(r.relation[usize::from(h)].clone());
                        ev.would_pass = Some(r.would[would_index(h, positive)].clone());
                    }
                    None => {
                        let sym = |h: bool| if h { "∈" } else { "∉" };
                        ev.relation = Some(format!("{} {set_name}", sym(h)).into());
                        let w = would_index(h, positive) == 1;
                        ev.would_pass =
                            Some(format!("{} {} {set_name}", self.text(e), sym(w)).into());
                    }
                }
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
                // MAX_WITNESSES, then a count of the rest). An element is first tested without
                // evidence; only the ones shown are traced.
                let look_for = !matches!(kind, QuantKind::All);
                let body_positive = positive == !matches!(kind, QuantKind::None);
                let mut found: Vec<Evidence> = Vec::new();
                let mut witnesses = 0usize;
                for item in items.iter() {
                    self.ev.set_local(*slot, item.clone());
                    if self.ev.eval_bool(body)? != look_for {
                        continue;
                    }
                    witnesses += 1;
                    if witnesses > MAX_WITNESSES {
                        continue;
                    }
                    let (_, eb) = self.condition(body, body_positive)?;
                    found.push(Evidence {
                        expr: Text::from(&**var),
                        value: item.render(list.ty.element()).into(),
                        relation: Some(format!("∈ {}", self.text(list)).into()),
                        would_pass: None,
                        span: list.span,
                    });
                    found.extend(eb);
                }
                if witnesses > 0 {
                    if witnesses > MAX_WITNESSES {
                        found.push(Evidence {
                            expr: self.text(list),
                            value: format!("{} more", witnesses - MAX_WITNESSES).into(),
                            relation: Some("not listed".into()),
                            would_pass: None,
                            span: list.span,
                        });
                    }
                    let result = matches!(kind, QuantKind::Any);
                    return Ok((result, found));
                }
                let checked = items.len();
                let summary = Evidence {
                    expr: self.text(list),
                    value: self.shown(list, &Value::List(items)),
                    relation: Some(
                        match kind {
                            QuantKind::All => format!(
                                "every element makes the condition true ({checked} checked)"
                            ),
                            _ => format!("no element makes the condition true ({checked} checked)"),
                        }
                        .into(),
                    ),
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
                let shown = operand_text(&self.text(item), item, &iv);
                let mut e = self.leaf(list, &lv);
                let sym = |h: bool| if h { "∋" } else { "∌" };
                e.relation = Some(format!("{} {shown}", sym(h)).into());
                let w = would_index(h, positive) == 1;
                e.would_pass = Some(format!("{} {} {}", self.text(list), sym(w), shown).into());
                Ok((h, vec![e]))
            }
            IrKind::Matches(arg, _) | IrKind::Satisfies(arg, _) => {
                let v = self.ev.eval_bool(ir)?;
                let mut evs = vec![self.leaf(ir, &Value::Bool(v))];
                if !matches!(arg.kind, IrKind::Const(_)) {
                    let av = self.ev.eval(arg)?;
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
