//! The checker: resolves names, checks types against the fact schema, compiles expressions to
//! [`Ir`], and reports every problem it finds (errors and warnings) in one pass.
//!
//! - [`items`]: the pass over a pack's items (header, constants, sets, functions, rules,
//!   waivers, tests), the entry point [`check`];
//! - [`expr`]: expressions, user functions (inlined), message templates;
//! - [`builtins`]: the built-in functions, one table;
//! - [`lints`]: analyses of whole rules (a condition that can never hold).
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
use crate::ir::{ArithOp, Builtin, CmpOp, Ir, IrKind};
use crate::span::{Node, Span};
use crate::types::{RecordType, Schema, Type};
use crate::value::Value;

mod builtins;
mod expr;
mod items;
mod lints;

pub use builtins::{BUILTINS, BuiltinFn};
pub use items::check;

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
    /// The facts the pack judges (named by its header, else the caller's default).
    pub schema: Schema,
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

fn record_of(t: &Type) -> Option<&Arc<RecordType>> {
    match t {
        Type::Record(r) => Some(r),
        _ => None,
    }
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
}

/// Which rules a test expects (for coverage): the names in its `expect fired`.
pub fn expected_rules(t: &Test) -> Vec<String> {
    t.expect_fired.clone().unwrap_or_default()
}

/// The spans of every definition the rule `id` refers to are not needed by callers; this keeps
/// `Node` in use for the public re-export.
pub type SpannedName = Node<String>;
