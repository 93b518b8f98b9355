//! The checked, compiled form of expressions: names resolved to slots and constants, record
//! fields to indexes, regular expressions and semver ranges compiled, user functions inlined.
//! The evaluator runs this; nothing here refers back to the syntax tree except spans.

use std::sync::Arc;

use rustc_hash::FxHashSet;

use crate::ast::QuantKind;
use crate::span::Span;
use crate::types::Type;
use crate::value::Value;

/// A compiled expression with the span of the source it came from.
#[derive(Debug, Clone)]
pub struct Ir {
    pub kind: IrKind,
    pub span: Span,
    pub ty: Type,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// The relation that holds when this one does not.
    pub fn negate(self) -> CmpOp {
        match self {
            CmpOp::Eq => CmpOp::Ne,
            CmpOp::Ne => CmpOp::Eq,
            CmpOp::Lt => CmpOp::Ge,
            CmpOp::Le => CmpOp::Gt,
            CmpOp::Gt => CmpOp::Le,
            CmpOp::Ge => CmpOp::Lt,
        }
    }

    /// The mathematical symbol, for people.
    pub fn pretty(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "≠",
            CmpOp::Lt => "<",
            CmpOp::Le => "≤",
            CmpOp::Gt => ">",
            CmpOp::Ge => "≥",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// Built-in functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Len,
    IsEmpty,
    Contains,
    ListContains,
    StartsWith,
    EndsWith,
    Lower,
    Upper,
    Trim,
    TrimPrefix,
    TrimSuffix,
    Split,
    Concat,
    Semver,
    IsSemver,
    Major,
    Minor,
    Patch,
    IsPrerelease,
    Min,
    Max,
    Abs,
}

#[derive(Debug, Clone)]
pub enum IrKind {
    Const(Value),
    /// The facts.
    Input,
    /// A quantifier's variable.
    Local(u16),
    /// A parameter of a function being compiled (replaced when the call is inlined).
    Param(u16),
    /// A record field by index.
    Field(Box<Ir>, u16),
    /// A chain of fields from the facts, by index (`input.resources.memory_mb`); made from
    /// `Field` chains by [`optimize`] so that evaluation reads it without recursion.
    Path(u32, Box<[u16]>),
    /// Whether an optional record field is present.
    Has(Box<Ir>, u16),
    Not(Box<Ir>),
    Neg(Box<Ir>),
    And(Box<Ir>, Box<Ir>),
    Or(Box<Ir>, Box<Ir>),
    Cmp(CmpOp, Box<Ir>, Box<Ir>),
    Arith(ArithOp, Box<Ir>, Box<Ir>),
    /// Membership in a constant set, by hash. The name is the set's, if it has one.
    InSet(Box<Ir>, Arc<FxHashSet<Value>>, Option<Arc<str>>),
    /// Membership in a computed list.
    InList(Box<Ir>, Box<Ir>),
    /// `a ?? b`
    Default(Box<Ir>, Box<Ir>),
    Call(Builtin, Vec<Ir>),
    Matches(Box<Ir>, Arc<regex::Regex>),
    Satisfies(Box<Ir>, Arc<semver::VersionReq>),
    /// A quantifier: kind, the variable's slot and name, the list, the condition.
    Quant(QuantKind, u16, Arc<str>, Box<Ir>, Box<Ir>),
    List(Vec<Ir>),
    Record(Vec<Ir>),
    /// An inlined call of a user function: evidence shows the call, not the body.
    Inlined(Arc<str>, Box<Ir>),
}

impl Ir {
    pub fn new(kind: IrKind, ty: Type, span: Span) -> Self {
        Ir { kind, span, ty }
    }

    pub fn constant(&self) -> Option<&Value> {
        match &self.kind {
            IrKind::Const(v) => Some(v),
            _ => None,
        }
    }

    /// Number of nodes.
    pub fn size(&self) -> usize {
        let mut n = 0;
        self.walk(&mut |_| n += 1);
        n
    }

    /// Visits every node, parents first.
    pub fn walk(&self, f: &mut impl FnMut(&Ir)) {
        f(self);
        match &self.kind {
            IrKind::Const(_)
            | IrKind::Input
            | IrKind::Local(_)
            | IrKind::Param(_)
            | IrKind::Path(..) => {}
            IrKind::Field(e, _)
            | IrKind::Has(e, _)
            | IrKind::Not(e)
            | IrKind::Neg(e)
            | IrKind::InSet(e, _, _)
            | IrKind::Matches(e, _)
            | IrKind::Satisfies(e, _)
            | IrKind::Inlined(_, e) => e.walk(f),
            IrKind::And(a, b)
            | IrKind::Or(a, b)
            | IrKind::Cmp(_, a, b)
            | IrKind::Arith(_, a, b)
            | IrKind::InList(a, b)
            | IrKind::Default(a, b)
            | IrKind::Quant(_, _, _, a, b) => {
                a.walk(f);
                b.walk(f);
            }
            IrKind::Call(_, args) | IrKind::List(args) | IrKind::Record(args) => {
                for a in args {
                    a.walk(f);
                }
            }
        }
    }

    /// Rewrites every node, children first.
    pub fn map(self, f: &mut impl FnMut(Ir) -> Ir) -> Ir {
        let Ir { kind, span, ty } = self;
        let kind = match kind {
            k @ (IrKind::Const(_)
            | IrKind::Input
            | IrKind::Local(_)
            | IrKind::Param(_)
            | IrKind::Path(..)) => k,
            IrKind::Field(e, i) => IrKind::Field(Box::new(e.map(f)), i),
            IrKind::Has(e, i) => IrKind::Has(Box::new(e.map(f)), i),
            IrKind::Not(e) => IrKind::Not(Box::new(e.map(f))),
            IrKind::Neg(e) => IrKind::Neg(Box::new(e.map(f))),
            IrKind::InSet(e, s, n) => IrKind::InSet(Box::new(e.map(f)), s, n),
            IrKind::Matches(e, r) => IrKind::Matches(Box::new(e.map(f)), r),
            IrKind::Satisfies(e, r) => IrKind::Satisfies(Box::new(e.map(f)), r),
            IrKind::Inlined(n, e) => IrKind::Inlined(n, Box::new(e.map(f))),
            IrKind::And(a, b) => IrKind::And(Box::new(a.map(f)), Box::new(b.map(f))),
            IrKind::Or(a, b) => IrKind::Or(Box::new(a.map(f)), Box::new(b.map(f))),
            IrKind::Cmp(o, a, b) => IrKind::Cmp(o, Box::new(a.map(f)), Box::new(b.map(f))),
            IrKind::Arith(o, a, b) => IrKind::Arith(o, Box::new(a.map(f)), Box::new(b.map(f))),
            IrKind::InList(a, b) => IrKind::InList(Box::new(a.map(f)), Box::new(b.map(f))),
            IrKind::Default(a, b) => IrKind::Default(Box::new(a.map(f)), Box::new(b.map(f))),
            IrKind::Quant(k, s, n, a, b) => {
                IrKind::Quant(k, s, n, Box::new(a.map(f)), Box::new(b.map(f)))
            }
            IrKind::Call(b, args) => IrKind::Call(b, args.into_iter().map(|a| a.map(f)).collect()),
            IrKind::List(args) => IrKind::List(args.into_iter().map(|a| a.map(f)).collect()),
            IrKind::Record(args) => IrKind::Record(args.into_iter().map(|a| a.map(f)).collect()),
        };
        f(Ir { kind, span, ty })
    }

    /// The highest quantifier slot used, plus one.
    pub fn slots(&self) -> u16 {
        let mut n = 0;
        self.walk(&mut |ir| {
            if let IrKind::Quant(_, s, _, _, _) | IrKind::Local(s) = ir.kind {
                n = n.max(s + 1);
            }
        });
        n
    }
}

/// Numbers the distinct fact paths of a pack, so that an evaluation reads each one once.
#[derive(Debug, Default, Clone)]
pub struct PathIds {
    ids: rustc_hash::FxHashMap<Box<[u16]>, u32>,
}

impl PathIds {
    fn id(&mut self, path: &[u16]) -> u32 {
        let next = self.ids.len() as u32;
        *self.ids.entry(path.into()).or_insert(next)
    }

    /// How many distinct paths there are.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Rewrites a checked expression for evaluation, in place: field chains from the facts become
/// numbered paths.
pub fn optimize(ir: &mut Ir, paths: &mut PathIds) {
    // Children first, so that a chain is folded from the facts outwards.
    match &mut ir.kind {
        IrKind::Const(_)
        | IrKind::Input
        | IrKind::Local(_)
        | IrKind::Param(_)
        | IrKind::Path(..) => {}
        IrKind::Field(e, _)
        | IrKind::Has(e, _)
        | IrKind::Not(e)
        | IrKind::Neg(e)
        | IrKind::InSet(e, _, _)
        | IrKind::Matches(e, _)
        | IrKind::Satisfies(e, _)
        | IrKind::Inlined(_, e) => optimize(e, paths),
        IrKind::And(a, b)
        | IrKind::Or(a, b)
        | IrKind::Cmp(_, a, b)
        | IrKind::Arith(_, a, b)
        | IrKind::InList(a, b)
        | IrKind::Default(a, b)
        | IrKind::Quant(_, _, _, a, b) => {
            optimize(a, paths);
            optimize(b, paths);
        }
        IrKind::Call(_, args) | IrKind::List(args) | IrKind::Record(args) => {
            for a in args {
                optimize(a, paths);
            }
        }
    }
    if let IrKind::Field(inner, i) = &ir.kind {
        let path: Option<Box<[u16]>> = match &inner.kind {
            IrKind::Input => Some(Box::new([*i])),
            IrKind::Path(_, p) => {
                let mut v = p.to_vec();
                v.push(*i);
                Some(v.into_boxed_slice())
            }
            _ => None,
        };
        if let Some(p) = path {
            ir.kind = IrKind::Path(paths.id(&p), p);
        }
    }
}
