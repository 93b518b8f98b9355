//! The checker: resolves names, checks types against the fact schema, compiles expressions to
//! [`Ir`], and reports every problem it finds (errors and warnings) in one pass.
//!
//! **Invariant:** the checker is pure and total: it does no IO, never panics on any tree, and
//! user functions are inlined only after the call graph is known to be acyclic, so compiling
//! (and evaluating) always terminates.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::sync::Arc;

use chrono::NaiveDate;
use rustc_hash::FxHashSet;

use crate::ast::*;
use crate::diag::{Code, Diagnostic, did_you_mean};
use crate::eval::{Evaluator, Limits};
use crate::ir::{ArithOp, Builtin, CmpOp, FUNCTION_NAMES, Ir, IrKind};
use crate::span::{Node, Span};
use crate::types::{RecordType, Schema, Type};
use crate::value::Value;

/// The largest expression a rule may compile to, after functions are inlined.
pub const MAX_RULE_NODES: usize = 20_000;

/// What the checker is told besides the files.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub schema: Schema,
    /// The date waivers are judged against (expired waivers are reported).
    pub today: NaiveDate,
}

/// The pack header.
#[derive(Debug, Clone)]
pub struct Header {
    pub name: String,
    pub version: semver::Version,
    pub language: u64,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub id_span: Span,
    pub span: Span,
    pub effect: Effect,
    pub mode: Mode,
    pub severity: Severity,
    pub tags: Vec<String>,
    pub docs: Option<String>,
    pub when: Ir,
    pub message: Option<CompiledTemplate>,
    pub fix: Option<CompiledTemplate>,
}

/// A message or fix with compiled holes.
#[derive(Debug, Clone)]
pub struct CompiledTemplate {
    pub parts: Vec<CompiledPart>,
}

#[derive(Debug, Clone)]
pub enum CompiledPart {
    Text(String),
    Expr(Ir),
}

/// A checked waiver.
#[derive(Debug, Clone)]
pub struct Waiver {
    pub name: String,
    pub rule: String,
    pub subject: WaiverSubject,
    pub reason: String,
    pub approver: String,
    /// The last day the waiver applies.
    pub expires: NaiveDate,
    pub span: Span,
}

/// A checked test.
#[derive(Debug, Clone)]
pub struct Test {
    pub name: String,
    pub span: Span,
    pub input: Option<TestSource>,
    pub now: Option<NaiveDate>,
    pub expect_decision: Option<Decision>,
    pub expect_fired: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub enum TestSource {
    Value(Value),
    /// A JSON file, relative to the file of the test.
    File {
        path: String,
        file: crate::span::FileId,
    },
}

/// The result of checking: the compiled pack and every diagnostic.
#[derive(Debug, Clone)]
pub struct Checked {
    pub header: Option<Header>,
    pub rules: Vec<Rule>,
    pub waivers: Vec<Waiver>,
    pub tests: Vec<Test>,
    pub diagnostics: Vec<Diagnostic>,
}

enum Local {
    Let {
        name: Name,
        ir: Ir,
        span: Span,
        used: bool,
    },
    Var {
        name: Name,
        slot: u16,
        ty: Type,
    },
    Param {
        name: Name,
        index: u16,
        ty: Type,
    },
}

impl Local {
    fn name(&self) -> &str {
        match self {
            Local::Let { name, .. } | Local::Var { name, .. } | Local::Param { name, .. } => name,
        }
    }
}

enum GlobalState<'a> {
    Const {
        decl: &'a ConstDecl,
        value: Option<(Value, Type)>,
        visiting: bool,
    },
    Set {
        decl: &'a SetDecl,
        value: Option<(Value, Type, Arc<FxHashSet<Value>>)>,
    },
    Fn {
        decl: &'a FnDecl,
        compiled: Option<Option<(Ir, Vec<Type>, Type)>>,
        visiting: bool,
    },
}

struct Global<'a> {
    state: GlobalState<'a>,
    span: Span,
    used: bool,
}

struct Checker<'a> {
    schema: &'a Schema,
    diags: Vec<Diagnostic>,
    globals: HashMap<Name, Global<'a>>,
    scopes: Vec<Local>,
    next_slot: u16,
    present: Vec<String>,
    /// Names of functions being compiled, innermost last (for recursion messages).
    fn_stack: Vec<String>,
}

fn err(code: Code, span: Span, message: impl Into<String>) -> Diagnostic {
    Diagnostic::new(code, span, message)
}

fn type_of_expr(t: &TypeExpr) -> Type {
    match t {
        TypeExpr::Bool => Type::Bool,
        TypeExpr::Int => Type::Int,
        TypeExpr::String => Type::Str,
        TypeExpr::Semver => Type::Semver,
        TypeExpr::List(t) => Type::list(type_of_expr(&t.node)),
        TypeExpr::Set(t) => Type::set(type_of_expr(&t.node)),
        TypeExpr::Optional(t) => Type::optional(type_of_expr(&t.node)),
    }
}

fn bool_ir(b: bool, span: Span) -> Ir {
    Ir::new(IrKind::Const(Value::Bool(b)), Type::Bool, span)
}

fn error_ir(span: Span) -> Ir {
    Ir::new(IrKind::Const(Value::Absent), Type::Error, span)
}

/// Whether every direct child of a node is a constant (and so the node may be computed now).
fn children_const(ir: &Ir) -> bool {
    if matches!(ir.ty, Type::Error) {
        return false;
    }
    let c = |e: &Ir| matches!(e.kind, IrKind::Const(_)) && !matches!(e.ty, Type::Error);
    match &ir.kind {
        IrKind::Input
        | IrKind::Local(_)
        | IrKind::Param(_)
        | IrKind::Path(..)
        | IrKind::Quant(..)
        | IrKind::Const(_) => false,
        IrKind::Field(e, _)
        | IrKind::Has(e, _)
        | IrKind::Not(e)
        | IrKind::Neg(e)
        | IrKind::InSet(e, _, _)
        | IrKind::Matches(e, _)
        | IrKind::Satisfies(e, _)
        | IrKind::Inlined(_, e) => c(e),
        IrKind::And(a, b)
        | IrKind::Or(a, b)
        | IrKind::Cmp(_, a, b)
        | IrKind::Arith(_, a, b)
        | IrKind::InList(a, b)
        | IrKind::Default(a, b) => c(a) && c(b),
        IrKind::Call(_, args) | IrKind::List(args) | IrKind::Record(args) => args.iter().all(c),
    }
}

impl<'a> Checker<'a> {
    fn fold(&mut self, ir: Ir) -> Ir {
        // Children are folded before their parents, so a node is constant when its direct
        // children are.
        if matches!(ir.kind, IrKind::Const(_)) || !children_const(&ir) {
            return ir;
        }
        let input = Value::Absent;
        let mut ev = Evaluator::new(&input, Limits::default());
        match ev.eval(&ir) {
            Ok(v) => Ir::new(IrKind::Const(v), ir.ty, ir.span),
            Err(e) => {
                self.diags.push(
                    err(
                        Code::NumberRange,
                        ir.span,
                        format!("this constant expression fails: {e}"),
                    )
                    .label("cannot be computed")
                    .help("change the constants so that the expression has a value"),
                );
                error_ir(ir.span)
            }
        }
    }

    fn lookup_local(&mut self, name: &str) -> Option<Ir> {
        for local in self.scopes.iter_mut().rev() {
            if local.name() != name {
                continue;
            }
            return Some(match local {
                Local::Let { ir, used, .. } => {
                    *used = true;
                    ir.clone()
                }
                Local::Var { slot, ty, .. } => {
                    Ir::new(IrKind::Local(*slot), ty.clone(), Span::default())
                }
                Local::Param { index, ty, .. } => {
                    Ir::new(IrKind::Param(*index), ty.clone(), Span::default())
                }
            });
        }
        None
    }

    fn name(&mut self, name: &str, span: Span) -> Ir {
        if let Some(mut ir) = self.lookup_local(name) {
            if matches!(ir.kind, IrKind::Local(_) | IrKind::Param(_)) {
                ir.span = span;
            }
            return ir;
        }
        if name == "input" {
            return Ir::new(IrKind::Input, self.schema.root.clone(), span);
        }
        if self.globals.contains_key(name) {
            if let Some((v, t)) = self.global_value(name) {
                return Ir::new(IrKind::Const(v), t, span);
            }
            if matches!(
                self.globals.get(name).map(|g| &g.state),
                Some(GlobalState::Fn { .. })
            ) {
                self.diags.push(
                    err(
                        Code::TypeMismatch,
                        span,
                        format!("`{name}` is a function, not a value"),
                    )
                    .label("a function")
                    .help(format!("call it: `{name}(…)`")),
                );
            }
            return error_ir(span);
        }
        let mut candidates: Vec<String> = self.scopes.iter().map(|l| l.name().to_owned()).collect();
        candidates.extend(self.globals.keys().map(|k| k.to_string()));
        candidates.push("input".into());
        let mut d =
            err(Code::UnknownName, span, format!("unknown name `{name}`")).label("not defined");
        d = match did_you_mean(name, candidates.iter().map(String::as_str)) {
            Some(s) => d.help(s),
            None => d.help("facts are under `input` (`input.name`); define constants with `const` and sets with `set`"),
        };
        self.diags.push(d);
        error_ir(span)
    }

    /// The value of a constant or set, computed on first use.
    fn global_value(&mut self, name: &str) -> Option<(Value, Type)> {
        let g = self.globals.get_mut(name)?;
        g.used = true;
        match &mut g.state {
            GlobalState::Const { value: Some(v), .. } => Some(v.clone()),
            GlobalState::Set {
                value: Some((v, t, _)),
                ..
            } => Some((v.clone(), t.clone())),
            GlobalState::Const { visiting: true, .. } => {
                let span = g.span;
                self.diags.push(
                    err(
                        Code::Recursion,
                        span,
                        format!("the constant `{name}` is defined in terms of itself"),
                    )
                    .label("refers back to itself")
                    .help("give the constant a value that does not depend on itself"),
                );
                None
            }
            GlobalState::Const { decl, visiting, .. } => {
                *visiting = true;
                let decl: &ConstDecl = decl;
                let ir = self.expr(&decl.value);
                let ir = self.fold(ir);
                let declared = decl.ty.as_ref().map(|t| type_of_expr(&t.node));
                let result = match (&ir.kind, declared) {
                    (IrKind::Const(v), Some(t)) if ir.ty.fits(&t) => Some((v.clone(), t)),
                    (IrKind::Const(_), Some(t)) => {
                        self.diags.push(
                            err(
                                Code::TypeMismatch,
                                decl.value.span,
                                format!(
                                    "the constant `{name}` is declared `{t}` but its value is `{}`",
                                    ir.ty
                                ),
                            )
                            .label(format!("a `{}`", ir.ty))
                            .help(format!(
                                "give it a `{t}` value, or change the declared type"
                            )),
                        );
                        None
                    }
                    (IrKind::Const(v), None) => Some((v.clone(), ir.ty.clone())),
                    _ => {
                        if !matches!(ir.ty, Type::Error) {
                            self.diags.push(
                                err(Code::TypeMismatch, decl.value.span, format!("the constant `{name}` depends on the input"))
                                    .label("not a constant")
                                    .help("a constant must be computable from literals and other constants; use `let` in a rule for values that depend on facts"),
                            );
                        }
                        None
                    }
                };
                if let Some(GlobalState::Const {
                    value, visiting, ..
                }) = self.globals.get_mut(name).map(|g| &mut g.state)
                {
                    *visiting = false;
                    *value = result.clone();
                }
                result
            }
            GlobalState::Set { decl, .. } => {
                let decl: &SetDecl = decl;
                let mut elems = Vec::new();
                let mut elem_ty: Option<Type> = None;
                let mut ok = true;
                for e in &decl.items.node {
                    let ir = self.expr(e);
                    let ir = self.fold(ir);
                    match (&ir.kind, &elem_ty) {
                        (IrKind::Const(v), None) => {
                            elem_ty = Some(ir.ty.clone());
                            elems.push(v.clone());
                        }
                        (IrKind::Const(v), Some(t)) if ir.ty.fits(t) => elems.push(v.clone()),
                        (IrKind::Const(_), Some(t)) => {
                            ok = false;
                            self.diags.push(
                                err(
                                    Code::TypeMismatch,
                                    e.span,
                                    format!(
                                        "the set `{name}` holds `{t}` values, but this is `{}`",
                                        ir.ty
                                    ),
                                )
                                .label(format!("a `{}`", ir.ty))
                                .help("every element of a set has the same type"),
                            );
                        }
                        _ => {
                            ok = false;
                            if !matches!(ir.ty, Type::Error) {
                                self.diags.push(
                                    err(Code::TypeMismatch, e.span, "a set element must be a constant")
                                        .label("not a constant")
                                        .help("sets hold literals and constants; compute lists from facts with `filter(…)`"),
                                );
                            }
                        }
                    }
                }
                let t = Type::set(elem_ty.unwrap_or(Type::Error));
                let value = Value::List(Arc::from(elems.clone()));
                let hash: FxHashSet<Value> = elems.into_iter().collect();
                let result = (value.clone(), t.clone(), Arc::new(hash));
                if let Some(GlobalState::Set { value: slot, .. }) =
                    self.globals.get_mut(name).map(|g| &mut g.state)
                {
                    *slot = Some(result);
                }
                ok.then_some((value, t))
            }
            GlobalState::Fn { .. } => None,
        }
    }

    fn set_index(&self, name: &str) -> Option<Arc<FxHashSet<Value>>> {
        match self.globals.get(name).map(|g| &g.state) {
            Some(GlobalState::Set {
                value: Some((_, _, h)),
                ..
            }) => Some(h.clone()),
            _ => None,
        }
    }

    /// A readable path for narrowing (`input.description`), if the expression is one.
    fn path_of(ir: &Ir) -> Option<String> {
        match &ir.kind {
            IrKind::Input => Some("input".into()),
            IrKind::Local(s) => Some(format!("${s}")),
            IrKind::Param(s) => Some(format!("%{s}")),
            IrKind::Field(inner, i) => {
                let base = Self::path_of(inner)?;
                let name = record_of(&inner.ty)?.fields.get(*i as usize)?.name.clone();
                Some(format!("{base}.{name}"))
            }
            _ => None,
        }
    }

    fn require_present(&mut self, ir: &Ir, what_span: Span) -> bool {
        if let Type::Optional(inner) = &ir.ty {
            let (shown, help) = match Self::path_of(ir).filter(|p| p.starts_with("input")) {
                Some(p) => (
                    format!("`{p}`"),
                    format!("check it first (`has {p} and …`) or give a default (`{p} ?? …`)"),
                ),
                None => (
                    "this value".to_owned(),
                    "check the field with `has` first, or give a default with `??`".to_owned(),
                ),
            };
            self.diags.push(
                err(
                    Code::UncheckedOptional,
                    what_span,
                    format!("{shown} may be absent"),
                )
                .label(format!("an optional `{inner}`"))
                .help(help),
            );
            return false;
        }
        true
    }

    fn mismatch(&mut self, span: Span, expected: &str, found: &Type, help: &str) {
        if matches!(found, Type::Error) {
            return;
        }
        self.diags.push(
            err(
                Code::TypeMismatch,
                span,
                format!("expected {expected}, found `{found}`"),
            )
            .label(format!("this is a `{found}`"))
            .help(help.to_owned()),
        );
    }

    fn expect_type(&mut self, ir: &Ir, expected: &Type, help: &str) -> bool {
        if !self.require_present(ir, ir.span) {
            return false;
        }
        if ir.ty.fits(expected) {
            true
        } else {
            self.mismatch(ir.span, &format!("`{expected}`"), &ir.ty.clone(), help);
            false
        }
    }

    fn expr(&mut self, e: &Expr) -> Ir {
        let span = e.span;
        match &e.node {
            ExprKind::Bool(b) => bool_ir(*b, span),
            ExprKind::Int(i) => Ir::new(IrKind::Const(Value::Int(*i)), Type::Int, span),
            ExprKind::Str(s) => Ir::new(IrKind::Const(Value::str(s)), Type::Str, span),
            ExprKind::Name(n) => self.name(n, span),
            ExprKind::Field(inner, field) => {
                let base = self.expr(inner);
                self.field(base, field, span)
            }
            ExprKind::Has(path) => self.has(path, span),
            ExprKind::Unary(UnOp::Not, inner) => {
                let ir = self.expr(inner);
                self.expect_type(&ir, &Type::Bool, "`not` applies to a condition");
                let ir = Ir::new(IrKind::Not(Box::new(ir)), Type::Bool, span);
                self.fold(ir)
            }
            ExprKind::Unary(UnOp::Neg, inner) => {
                let ir = self.expr(inner);
                self.expect_type(&ir, &Type::Int, "only integers can be negated");
                let ir = Ir::new(IrKind::Neg(Box::new(ir)), Type::Int, span);
                self.fold(ir)
            }
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b, span),
            ExprKind::Call(name, args) => self.call(name, args, span),
            ExprKind::Quant(kind, var, list, body) => self.quant(*kind, var, list, body, span),
            ExprKind::List(items) => {
                let mut irs = Vec::with_capacity(items.len());
                let mut elem: Option<Type> = None;
                for item in items {
                    let ir = self.expr(item);
                    self.require_present(&ir, ir.span);
                    match &elem {
                        None => elem = Some(ir.ty.clone()),
                        Some(t) if ir.ty.fits(t) => {}
                        Some(t) => {
                            let t = t.clone();
                            self.mismatch(
                                ir.span,
                                &format!("`{t}` like the first element"),
                                &ir.ty.clone(),
                                "every element of a list has the same type",
                            );
                        }
                    }
                    irs.push(ir);
                }
                let ir = Ir::new(
                    IrKind::List(irs),
                    Type::list(elem.unwrap_or(Type::Error)),
                    span,
                );
                self.fold(ir)
            }
            ExprKind::Record(_) => {
                self.diags.push(
                    err(
                        Code::TypeMismatch,
                        span,
                        "a record literal is only allowed as a test input",
                    )
                    .label("not allowed here")
                    .help("read facts through `input`"),
                );
                error_ir(span)
            }
        }
    }

    fn field(&mut self, base: Ir, field: &Ident, span: Span) -> Ir {
        if matches!(base.ty, Type::Error) {
            return error_ir(span);
        }
        if let Type::Optional(_) = base.ty {
            self.require_present(&base, base.span);
            return error_ir(span);
        }
        let Some(rec) = record_of(&base.ty).cloned() else {
            self.diags.push(
                err(
                    Code::TypeMismatch,
                    field.span,
                    format!("a `{}` has no fields", base.ty),
                )
                .label(format!("no field `{}` here", field.node))
                .help("only records (such as `input`) have fields"),
            );
            return error_ir(span);
        };
        let Some(index) = rec.index_of(&field.node) else {
            let mut d = err(
                Code::UnknownField,
                field.span,
                format!(
                    "unknown field `{}` of {}",
                    field.node,
                    describe_record(&base, &rec)
                ),
            )
            .label("no such field");
            let names: Vec<&str> = rec.fields.iter().map(|f| f.name.as_str()).collect();
            d = match did_you_mean(&field.node, names.iter().copied()) {
                Some(s) => d.help(format!("{s} (fields: {})", names.join(", "))),
                None => d.help(format!("the fields are: {}", names.join(", "))),
            };
            self.diags.push(d);
            return error_ir(span);
        };
        let fty = rec.fields[index].ty.clone();
        let ir = Ir::new(
            IrKind::Field(Box::new(base), index as u16),
            fty.clone(),
            span,
        );
        if let Type::Optional(inner) = &fty
            && let Some(p) = Self::path_of(&ir)
            && self.present.contains(&p)
        {
            return Ir {
                ty: (**inner).clone(),
                ..ir
            };
        }
        ir
    }

    fn has(&mut self, path: &[Ident], span: Span) -> Ir {
        let Some(first) = path.first() else {
            return error_ir(span);
        };
        let mut base = self.name(&first.node, first.span);
        let mut checks: Vec<Ir> = Vec::new();
        for (k, seg) in path.iter().enumerate().skip(1) {
            let last = k == path.len() - 1;
            let Some(rec) = record_of(&base.ty).cloned() else {
                if !matches!(base.ty, Type::Error) {
                    self.diags.push(
                        err(
                            Code::TypeMismatch,
                            seg.span,
                            format!("a `{}` has no fields", base.ty),
                        )
                        .label("not a record")
                        .help("`has` tests a field of a record: `has input.description`"),
                    );
                }
                return error_ir(span);
            };
            let Some(index) = rec.index_of(&seg.node) else {
                // Reuse the field lookup for its message.
                let _ = self.field(base, seg, seg.span);
                return error_ir(span);
            };
            let fty = rec.fields[index].ty.clone();
            let record_base = base.clone();
            let field_ir = Ir::new(
                IrKind::Field(Box::new(base), index as u16),
                fty.clone(),
                seg.span,
            );
            match &fty {
                Type::Optional(inner) => {
                    checks.push(Ir::new(
                        IrKind::Has(Box::new(record_base), index as u16),
                        Type::Bool,
                        span,
                    ));
                    base = Ir {
                        ty: (**inner).clone(),
                        ..field_ir
                    };
                }
                _ => {
                    if last && checks.is_empty() {
                        self.diags.push(
                            err(
                                Code::AlwaysTrue,
                                span,
                                format!(
                                    "`{}` is always present",
                                    path.iter()
                                        .map(|p| p.node.as_str())
                                        .collect::<Vec<_>>()
                                        .join(".")
                                ),
                            )
                            .label("this test is always true")
                            .help("the schema requires this field; remove the `has` test"),
                        );
                    }
                    base = field_ir;
                }
            }
        }
        let mut it = checks.into_iter();
        let Some(first) = it.next() else {
            return bool_ir(true, span);
        };
        it.fold(first, |acc, c| {
            Ir::new(IrKind::And(Box::new(acc), Box::new(c)), Type::Bool, span)
        })
    }

    fn binary(&mut self, op: BinOp, a: &Expr, b: &Expr, span: Span) -> Ir {
        match op {
            BinOp::And | BinOp::Or => {
                let l = self.expr(a);
                self.expect_type(&l, &Type::Bool, "`and` and `or` join conditions");
                let pushed = if op == BinOp::And {
                    let proven = proven_present(&l);
                    let n = proven.len();
                    self.present.extend(proven);
                    n
                } else {
                    0
                };
                let r = self.expr(b);
                self.present.truncate(self.present.len() - pushed);
                self.expect_type(&r, &Type::Bool, "`and` and `or` join conditions");
                // Short-circuit with a constant side: `true or x` is true, `true and x` is x.
                let is_and = op == BinOp::And;
                match (l.constant(), r.constant()) {
                    (Some(Value::Bool(b)), _) if *b != is_and => return bool_ir(*b, span),
                    (_, Some(Value::Bool(b))) if *b != is_and && matches!(l.ty, Type::Bool) => {
                        return bool_ir(*b, span);
                    }
                    (Some(Value::Bool(_)), _) if matches!(r.ty, Type::Bool) => return r,
                    (_, Some(Value::Bool(_))) if matches!(l.ty, Type::Bool) => return l,
                    _ => {}
                }
                let kind = if is_and {
                    IrKind::And(Box::new(l), Box::new(r))
                } else {
                    IrKind::Or(Box::new(l), Box::new(r))
                };
                let ir = Ir::new(kind, Type::Bool, span);
                self.fold(ir)
            }
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let l = self.expr(a);
                let r = self.expr(b);
                let ok = self.require_present(&l, l.span) & self.require_present(&r, r.span);
                let cmp = match op {
                    BinOp::Eq => CmpOp::Eq,
                    BinOp::Ne => CmpOp::Ne,
                    BinOp::Lt => CmpOp::Lt,
                    BinOp::Le => CmpOp::Le,
                    BinOp::Gt => CmpOp::Gt,
                    _ => CmpOp::Ge,
                };
                if ok && !(l.ty.fits(&r.ty) || r.ty.fits(&l.ty)) {
                    self.diags.push(
                        err(
                            Code::TypeMismatch,
                            span,
                            format!("cannot compare `{}` with `{}`", l.ty, r.ty),
                        )
                        .label(format!("`{}` {} `{}`", l.ty, op.symbol(), r.ty))
                        .help(compare_help(&l.ty, &r.ty)),
                    );
                } else if ok && !matches!(cmp, CmpOp::Eq | CmpOp::Ne) && !l.ty.is_ordered() {
                    self.diags.push(
                        err(
                            Code::TypeMismatch,
                            span,
                            format!("`{}` values have no order", l.ty),
                        )
                        .label(format!("`{}` is not ordered", op.symbol()))
                        .help("`<`, `<=`, `>`, `>=` compare integers, strings and semver versions"),
                    );
                }
                let ir = Ir::new(IrKind::Cmp(cmp, Box::new(l), Box::new(r)), Type::Bool, span);
                self.fold(ir)
            }
            BinOp::In | BinOp::NotIn => {
                let l = self.expr(a);
                let r = self.expr(b);
                self.require_present(&l, l.span);
                self.require_present(&r, r.span);
                let ir = self.membership(l, r, b, span);
                let ir = if op == BinOp::NotIn {
                    Ir::new(IrKind::Not(Box::new(ir)), Type::Bool, span)
                } else {
                    ir
                };
                self.fold(ir)
            }
            BinOp::Default => {
                let l = self.expr(a);
                let r = self.expr(b);
                let inner = match &l.ty {
                    Type::Optional(t) => (**t).clone(),
                    Type::Error => Type::Error,
                    other => {
                        self.diags.push(
                            err(
                                Code::AlwaysTrue,
                                l.span,
                                "the left side of `??` is never absent",
                            )
                            .label(format!("always a `{other}`"))
                            .help("`??` gives a default for optional fields; remove it"),
                        );
                        other.clone()
                    }
                };
                if !r.ty.fits(&inner) {
                    self.mismatch(
                        r.span,
                        &format!("`{inner}` as the default"),
                        &r.ty.clone(),
                        "the default has the type of the optional value",
                    );
                }
                Ir::new(IrKind::Default(Box::new(l), Box::new(r)), inner, span)
            }
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => {
                let l = self.expr(a);
                let r = self.expr(b);
                let help = "arithmetic works on integers; join strings with `concat(a, b)`";
                self.expect_type(&l, &Type::Int, help);
                self.expect_type(&r, &Type::Int, help);
                let aop = match op {
                    BinOp::Add => ArithOp::Add,
                    BinOp::Sub => ArithOp::Sub,
                    BinOp::Mul => ArithOp::Mul,
                    BinOp::Div => ArithOp::Div,
                    _ => ArithOp::Rem,
                };
                let ir = Ir::new(
                    IrKind::Arith(aop, Box::new(l), Box::new(r)),
                    Type::Int,
                    span,
                );
                self.fold(ir)
            }
        }
    }

    fn membership(&mut self, l: Ir, r: Ir, r_expr: &Expr, span: Span) -> Ir {
        let Some(elem) = r.ty.element().cloned() else {
            if !matches!(r.ty, Type::Error) {
                let help = if r.ty == Type::Str {
                    "for text inside a string use `contains(text, part)`"
                } else {
                    "`in` tests membership in a list or set"
                };
                self.mismatch(r.span, "a list or set", &r.ty.clone(), help);
            }
            return Ir::new(IrKind::InList(Box::new(l), Box::new(r)), Type::Bool, span);
        };
        if !l.ty.fits(&elem) && !matches!(elem, Type::Error) {
            self.mismatch(
                l.span,
                &format!("`{elem}` (the element type)"),
                &l.ty.clone(),
                "only a value of the element type can be in the list",
            );
        }
        let named = match &r_expr.node {
            ExprKind::Name(n) if self.set_index(n).is_some() => Some(n.clone()),
            _ => None,
        };
        if let Some(n) = named
            && let Some(idx) = self.set_index(&n)
        {
            return Ir::new(
                IrKind::InSet(Box::new(l), idx, Some(Arc::from(n.as_str()))),
                Type::Bool,
                span,
            );
        }
        if let IrKind::Const(Value::List(items)) = &r.kind {
            let hash: FxHashSet<Value> = items.iter().cloned().collect();
            let name = match &r_expr.node {
                ExprKind::Name(n) => Some(Arc::from(n.as_str())),
                _ => None,
            };
            return Ir::new(
                IrKind::InSet(Box::new(l), Arc::new(hash), name),
                Type::Bool,
                span,
            );
        }
        Ir::new(IrKind::InList(Box::new(l), Box::new(r)), Type::Bool, span)
    }

    fn quant(&mut self, kind: QuantKind, var: &Ident, list: &Expr, body: &Expr, span: Span) -> Ir {
        let l = self.expr(list);
        self.require_present(&l, l.span);
        let elem = match l.ty.element() {
            Some(t) => t.clone(),
            None => {
                self.mismatch(
                    l.span,
                    "a list or set",
                    &l.ty.clone(),
                    &format!("`{}` ranges over the elements of a list", kind.name()),
                );
                Type::Error
            }
        };
        let slot = self.next_slot;
        self.next_slot += 1;
        self.scopes.push(Local::Var {
            name: var.node.clone(),
            slot,
            ty: elem.clone(),
        });
        let b = self.expr(body);
        self.scopes.pop();
        self.next_slot -= 1;
        self.expect_type(
            &b,
            &Type::Bool,
            "the condition after `where` must be true or false",
        );
        let ty = match kind {
            QuantKind::Any | QuantKind::All | QuantKind::None => Type::Bool,
            QuantKind::Count => Type::Int,
            QuantKind::Filter => l.ty.clone(),
        };
        Ir::new(
            IrKind::Quant(
                kind,
                slot,
                Arc::from(var.node.as_str()),
                Box::new(l),
                Box::new(b),
            ),
            ty,
            span,
        )
    }

    fn arity(&mut self, name: &Ident, args: &[Expr], span: Span, expected: &str, ok: bool) -> bool {
        if !ok {
            self.diags.push(
                err(
                    Code::Arity,
                    span,
                    format!("`{}` takes {expected}, given {}", name.node, args.len()),
                )
                .label("wrong number of arguments")
                .help(format!("call it with {expected}")),
            );
        }
        ok
    }

    /// A constant string argument (a regex or semver range), or a diagnostic.
    fn const_string(&mut self, ir: &Ir, what: &str) -> Option<String> {
        match &ir.kind {
            IrKind::Const(Value::Str(s)) => Some(s.to_string()),
            _ => {
                if !matches!(ir.ty, Type::Error) {
                    self.diags.push(
                        err(Code::TypeMismatch, ir.span, format!("the {what} must be a constant string"))
                            .label("not a constant")
                            .help(format!("write the {what} as a literal or a `const` so that it is checked before the policy runs")),
                    );
                }
                None
            }
        }
    }

    fn call(&mut self, name: &Ident, args: &[Expr], span: Span) -> Ir {
        if let Some(g) = self.globals.get(&name.node)
            && matches!(g.state, GlobalState::Fn { .. })
        {
            return self.user_call(name, args, span);
        }
        let irs: Vec<Ir> = args.iter().map(|a| self.expr(a)).collect();
        let n = irs.len();
        let f = name.node.as_str();
        let simple = |b: Builtin, irs: Vec<Ir>, ty: Type| Ir::new(IrKind::Call(b, irs), ty, span);
        let out = match f {
            "len" | "is_empty" => {
                if !self.arity(name, args, span, "1 argument", n == 1) {
                    return error_ir(span);
                }
                let t = irs[0].ty.clone();
                if self.require_present(&irs[0], irs[0].span)
                    && !(matches!(t, Type::Str | Type::List(_) | Type::Set(_) | Type::Error))
                {
                    self.mismatch(
                        irs[0].span,
                        "a string, list or set",
                        &t,
                        "length is defined for strings, lists and sets",
                    );
                }
                if f == "len" {
                    simple(Builtin::Len, irs, Type::Int)
                } else {
                    simple(Builtin::IsEmpty, irs, Type::Bool)
                }
            }
            "contains" => {
                if !self.arity(name, args, span, "2 arguments", n == 2) {
                    return error_ir(span);
                }
                match irs[0].ty.element().cloned() {
                    Some(elem) => {
                        self.expect_type(
                            &irs[1],
                            &elem,
                            "the second argument must have the element type of the list",
                        );
                        let mut it = irs.into_iter();
                        let (Some(list), Some(item)) = (it.next(), it.next()) else {
                            return error_ir(span);
                        };
                        let r_expr = &args[0];
                        self.membership(item, list, r_expr, span)
                    }
                    None => {
                        self.expect_type(
                            &irs[0],
                            &Type::Str,
                            "`contains(text, part)` or `contains(list, item)`",
                        );
                        self.expect_type(
                            &irs[1],
                            &Type::Str,
                            "`contains(text, part)` looks for a string in a string",
                        );
                        simple(Builtin::Contains, irs, Type::Bool)
                    }
                }
            }
            "starts_with" | "ends_with" | "trim_prefix" | "trim_suffix" | "split" => {
                if !self.arity(name, args, span, "2 arguments", n == 2) {
                    return error_ir(span);
                }
                self.expect_type(&irs[0], &Type::Str, "this function works on strings");
                self.expect_type(&irs[1], &Type::Str, "this function works on strings");
                match f {
                    "starts_with" => simple(Builtin::StartsWith, irs, Type::Bool),
                    "ends_with" => simple(Builtin::EndsWith, irs, Type::Bool),
                    "trim_prefix" => simple(Builtin::TrimPrefix, irs, Type::Str),
                    "trim_suffix" => simple(Builtin::TrimSuffix, irs, Type::Str),
                    _ => simple(Builtin::Split, irs, Type::list(Type::Str)),
                }
            }
            "lower" | "upper" | "trim" | "is_semver" => {
                if !self.arity(name, args, span, "1 argument", n == 1) {
                    return error_ir(span);
                }
                self.expect_type(&irs[0], &Type::Str, "this function works on strings");
                match f {
                    "lower" => simple(Builtin::Lower, irs, Type::Str),
                    "upper" => simple(Builtin::Upper, irs, Type::Str),
                    "trim" => simple(Builtin::Trim, irs, Type::Str),
                    _ => simple(Builtin::IsSemver, irs, Type::Bool),
                }
            }
            "concat" => {
                if !self.arity(name, args, span, "2 or more arguments", n >= 2) {
                    return error_ir(span);
                }
                for ir in &irs {
                    self.expect_type(ir, &Type::Str, "`concat` joins strings");
                }
                simple(Builtin::Concat, irs, Type::Str)
            }
            "matches" => {
                if !self.arity(name, args, span, "2 arguments (text, pattern)", n == 2) {
                    return error_ir(span);
                }
                self.expect_type(
                    &irs[0],
                    &Type::Str,
                    "`matches(text, pattern)` tests a string",
                );
                let Some(pattern) = self.const_string(&irs[1], "regular expression") else {
                    return error_ir(span);
                };
                match regex::RegexBuilder::new(&pattern)
                    .size_limit(1 << 20)
                    .nest_limit(64)
                    .build()
                {
                    Ok(re) => {
                        let mut it = irs.into_iter();
                        let Some(text) = it.next() else {
                            return error_ir(span);
                        };
                        Ir::new(
                            IrKind::Matches(Box::new(text), Arc::new(re)),
                            Type::Bool,
                            span,
                        )
                    }
                    Err(e) => {
                        let reason = e.to_string();
                        let short = reason
                            .lines()
                            .last()
                            .unwrap_or("")
                            .trim()
                            .trim_start_matches("error: ")
                            .to_owned();
                        self.diags.push(
                            err(Code::InvalidRegex, irs[1].span, format!("invalid regular expression: {short}"))
                                .label("does not compile")
                                .help("the syntax is that of the `regex` crate (no look-around or backreferences, so matching is linear-time)"),
                        );
                        error_ir(span)
                    }
                }
            }
            "semver" => {
                if !self.arity(name, args, span, "1 argument", n == 1) {
                    return error_ir(span);
                }
                self.expect_type(
                    &irs[0],
                    &Type::Str,
                    "`semver(text)` parses a version string",
                );
                if let IrKind::Const(Value::Str(s)) = &irs[0].kind {
                    return match semver::Version::parse(s) {
                        Ok(v) => Ir::new(
                            IrKind::Const(Value::Semver(Arc::new(v))),
                            Type::Semver,
                            span,
                        ),
                        Err(e) => {
                            self.diags.push(
                                err(
                                    Code::InvalidSemver,
                                    irs[0].span,
                                    format!("`{s}` is not a semver version: {e}"),
                                )
                                .label("not a version")
                                .help("write MAJOR.MINOR.PATCH, such as `2.5.0`"),
                            );
                            error_ir(span)
                        }
                    };
                }
                simple(Builtin::Semver, irs, Type::Semver)
            }
            "major" | "minor" | "patch" | "is_prerelease" => {
                if !self.arity(name, args, span, "1 argument", n == 1) {
                    return error_ir(span);
                }
                self.expect_type(
                    &irs[0],
                    &Type::Semver,
                    "convert text first: `major(semver(input.version))`",
                );
                match f {
                    "major" => simple(Builtin::Major, irs, Type::Int),
                    "minor" => simple(Builtin::Minor, irs, Type::Int),
                    "patch" => simple(Builtin::Patch, irs, Type::Int),
                    _ => simple(Builtin::IsPrerelease, irs, Type::Bool),
                }
            }
            "satisfies" => {
                if !self.arity(name, args, span, "2 arguments (version, range)", n == 2) {
                    return error_ir(span);
                }
                self.expect_type(
                    &irs[0],
                    &Type::Semver,
                    "convert text first: `satisfies(semver(input.version), \">=1.0.0\")`",
                );
                let Some(range) = self.const_string(&irs[1], "version range") else {
                    return error_ir(span);
                };
                match semver::VersionReq::parse(&range) {
                    Ok(req) => {
                        let mut it = irs.into_iter();
                        let Some(v) = it.next() else {
                            return error_ir(span);
                        };
                        Ir::new(
                            IrKind::Satisfies(Box::new(v), Arc::new(req)),
                            Type::Bool,
                            span,
                        )
                    }
                    Err(e) => {
                        self.diags.push(
                            err(
                                Code::InvalidSemver,
                                irs[1].span,
                                format!("`{range}` is not a version range: {e}"),
                            )
                            .label("not a range")
                            .help(
                                "write comparators separated by commas, such as `>=2.0.0, <3.0.0`",
                            ),
                        );
                        error_ir(span)
                    }
                }
            }
            "min" | "max" => {
                if !self.arity(name, args, span, "2 arguments", n == 2) {
                    return error_ir(span);
                }
                self.expect_type(&irs[0], &Type::Int, "`min` and `max` compare integers");
                self.expect_type(&irs[1], &Type::Int, "`min` and `max` compare integers");
                simple(
                    if f == "min" {
                        Builtin::Min
                    } else {
                        Builtin::Max
                    },
                    irs,
                    Type::Int,
                )
            }
            "abs" => {
                if !self.arity(name, args, span, "1 argument", n == 1) {
                    return error_ir(span);
                }
                self.expect_type(&irs[0], &Type::Int, "`abs` takes an integer");
                simple(Builtin::Abs, irs, Type::Int)
            }
            _ => {
                let mut candidates: Vec<&str> = FUNCTION_NAMES.to_vec();
                let user: Vec<String> = self
                    .globals
                    .iter()
                    .filter(|(_, g)| matches!(g.state, GlobalState::Fn { .. }))
                    .map(|(k, _)| k.to_string())
                    .collect();
                candidates.extend(user.iter().map(String::as_str));
                let mut d = err(
                    Code::UnknownFunction,
                    name.span,
                    format!("unknown function `{}`", name.node),
                )
                .label("not defined");
                d = match did_you_mean(&name.node, candidates.iter().copied()) {
                    Some(s) => d.help(s),
                    None => d.help("define it with `fn`, or see the list of built-in functions in the language reference"),
                };
                self.diags.push(d);
                return error_ir(span);
            }
        };
        self.fold(out)
    }

    /// Compiles a user function (once) and inlines it at this call.
    fn user_call(&mut self, name: &Ident, args: &[Expr], span: Span) -> Ir {
        let irs: Vec<Ir> = args.iter().map(|a| self.expr(a)).collect();
        let Some(compiled) = self.compile_fn(&name.node, name.span) else {
            return error_ir(span);
        };
        let (body, params, ret) = compiled;
        if !self.arity(
            name,
            args,
            span,
            &format!("{} argument(s)", params.len()),
            params.len() == irs.len(),
        ) {
            return error_ir(span);
        }
        for (ir, p) in irs.iter().zip(&params) {
            self.expect_type(ir, p, "the argument must have the parameter's type");
        }
        let offset = self.next_slot;
        let inlined = body.map(&mut |node| match node.kind {
            IrKind::Param(i) => {
                // Quantifier slots of the argument are the caller's; leave them.
                irs.get(i as usize)
                    .cloned()
                    .unwrap_or_else(|| error_ir(node.span))
            }
            IrKind::Quant(k, s, n, l, b) => {
                Ir::new(IrKind::Quant(k, s + offset, n, l, b), node.ty, node.span)
            }
            IrKind::Local(s) => Ir::new(IrKind::Local(s + offset), node.ty, node.span),
            _ => node,
        });
        let ir = Ir::new(
            IrKind::Inlined(Arc::from(name.node.as_str()), Box::new(inlined)),
            ret,
            span,
        );
        self.fold(ir)
    }

    fn compile_fn(&mut self, name: &str, call_span: Span) -> Option<(Ir, Vec<Type>, Type)> {
        let g = self.globals.get_mut(name)?;
        g.used = true;
        let fn_span = g.span;
        let GlobalState::Fn {
            decl,
            compiled,
            visiting,
        } = &mut g.state
        else {
            return None;
        };
        if let Some(c) = compiled {
            return c.clone();
        }
        if *visiting {
            let mut cycle: Vec<String> = self
                .fn_stack
                .iter()
                .skip_while(|f| f.as_str() != name)
                .cloned()
                .collect();
            cycle.push(name.to_owned());
            self.diags.push(
                err(Code::Recursion, call_span, format!("the function `{name}` calls itself: {}", cycle.join(" → ")))
                    .label("recursive call")
                    .related(fn_span, "defined here")
                    .help("functions cannot recurse, so that every evaluation ends; use a quantifier (`any`, `all`, `count`, `filter`) over a list instead"),
            );
            return None;
        }
        *visiting = true;
        let decl: &FnDecl = decl;
        let params: Vec<Type> = decl
            .params
            .iter()
            .map(|p| type_of_expr(&p.ty.node))
            .collect();
        let ret = type_of_expr(&decl.ret.node);
        // A function body sees its parameters and the globals, not the caller's bindings.
        let saved_scopes = std::mem::take(&mut self.scopes);
        let saved_slot = std::mem::replace(&mut self.next_slot, 0);
        let saved_present = std::mem::take(&mut self.present);
        for (i, p) in decl.params.iter().enumerate() {
            self.scopes.push(Local::Param {
                name: p.name.node.clone(),
                index: i as u16,
                ty: params[i].clone(),
            });
        }
        self.fn_stack.push(name.to_owned());
        let body = self.expr(&decl.body);
        self.fn_stack.pop();
        let ok_type = if body.ty.fits(&ret) {
            true
        } else {
            self.mismatch(
                decl.body.span,
                &format!("`{ret}` (the declared return type)"),
                &body.ty.clone(),
                "the body must produce the declared return type",
            );
            false
        };
        self.scopes = saved_scopes;
        self.next_slot = saved_slot;
        self.present = saved_present;
        let result = (ok_type && !matches!(body.ty, Type::Error)).then_some((body, params, ret));
        if let Some(GlobalState::Fn {
            compiled, visiting, ..
        }) = self.globals.get_mut(name).map(|g| &mut g.state)
        {
            *visiting = false;
            *compiled = Some(result.clone());
        }
        result
    }

    fn template(&mut self, t: &Template) -> CompiledTemplate {
        let mut parts = Vec::new();
        for p in &t.parts {
            match p {
                TemplatePart::Text(s) => parts.push(CompiledPart::Text(s.clone())),
                TemplatePart::Expr(e) => {
                    let ir = self.expr(e);
                    parts.push(CompiledPart::Expr(ir));
                }
            }
        }
        CompiledTemplate { parts }
    }
}

fn record_of(t: &Type) -> Option<&Arc<RecordType>> {
    match t {
        Type::Record(r) => Some(r),
        _ => None,
    }
}

fn describe_record(base: &Ir, rec: &RecordType) -> String {
    match Checker::path_of(base) {
        Some(p) if p.starts_with("input") => format!("`{p}`"),
        _ => format!("record `{}`", rec.name),
    }
}

fn compare_help(a: &Type, b: &Type) -> String {
    match (a, b) {
        (Type::Str, Type::Semver) | (Type::Semver, Type::Str) => {
            "convert the text to a version first: `semver(input.version) < semver(\"2.0.0\")`"
                .into()
        }
        (Type::Str, Type::Int) | (Type::Int, Type::Str) => {
            "compare numbers with numbers: remove the quotes around the number".into()
        }
        _ => "both sides must have the same type".into(),
    }
}

/// Paths proven present by a condition (`has` tests in its top-level conjunction).
fn proven_present(ir: &Ir) -> Vec<String> {
    let mut out = Vec::new();
    fn go(ir: &Ir, out: &mut Vec<String>) {
        match &ir.kind {
            IrKind::And(a, b) => {
                go(a, out);
                go(b, out);
            }
            IrKind::Has(rec, i) => {
                if let Some(base) = Checker::path_of(rec)
                    && let Some(r) = record_of(&rec.ty)
                    && let Some(f) = r.fields.get(*i as usize)
                {
                    out.push(format!("{base}.{}", f.name));
                }
            }
            _ => {}
        }
    }
    go(ir, &mut out);
    out
}

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
fn never_fires(ir: &Ir) -> bool {
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

fn flip(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        other => other,
    }
}

fn flatten_and<'i>(ir: &'i Ir, out: &mut Vec<&'i Ir>) {
    match &ir.kind {
        IrKind::And(a, b) => {
            flatten_and(a, out);
            flatten_and(b, out);
        }
        _ => out.push(ir),
    }
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// Checks the files of one pack.
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
            if FUNCTION_NAMES.contains(&name.node.as_str()) || name.node == "input" {
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

    let mut ck = Checker {
        schema: &options.schema,
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
        rules: compiled_rules,
        waivers: compiled_waivers,
        tests: compiled_tests,
        diagnostics,
    }
}

/// A test input written as a record literal, checked against the schema.
fn literal_value(ck: &mut Checker<'_>, e: &Expr, ty: &Type, path: &str) -> Option<Value> {
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

/// Which rules a test expects (for coverage): the names in its `expect fired`.
pub fn expected_rules(t: &Test) -> Vec<String> {
    t.expect_fired.clone().unwrap_or_default()
}

/// The spans of every definition the rule `id` refers to are not needed by callers; this keeps
/// `Node` in use for the public re-export.
pub type SpannedName = Node<String>;
