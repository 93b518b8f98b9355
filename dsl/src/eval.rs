//! The evaluator: runs compiled expressions against facts. Total and bounded: every node costs
//! a step from a budget, lists and strings it builds have size limits, integer arithmetic is
//! checked, and every failure is an [`EvalError`], never a panic.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::ast::QuantKind;
use crate::ir::{ArithOp, Builtin, CmpOp, Ir, IrKind};
use crate::span::Span;
use crate::value::Value;

/// Bounds on one evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Nodes evaluated, across all rules of one decision.
    pub steps: u64,
    /// Longest list an expression may build.
    pub max_list: usize,
    /// Longest string an expression may build, in bytes.
    pub max_string: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            steps: 10_000_000,
            max_list: 100_000,
            max_string: 1 << 20,
        }
    }
}

/// Why an evaluation stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("the evaluation budget of {limit} steps is exhausted")]
    StepBudget { limit: u64 },
    #[error("integer overflow")]
    Overflow { span: Span },
    #[error("division by zero")]
    DivisionByZero { span: Span },
    #[error("`{text}` is not a semver version ({reason})")]
    InvalidSemver {
        span: Span,
        text: String,
        reason: String,
    },
    #[error("a value built here is larger than the limit ({what})")]
    TooLarge { span: Span, what: String },
    #[error("an optional value is absent here")]
    Absent { span: Span },
    #[error("internal error: {what}")]
    Internal { span: Span, what: String },
}

impl EvalError {
    /// Where the evaluation stopped, if known.
    pub fn span(&self) -> Option<Span> {
        match self {
            EvalError::StepBudget { .. } => None,
            EvalError::Overflow { span }
            | EvalError::DivisionByZero { span }
            | EvalError::InvalidSemver { span, .. }
            | EvalError::TooLarge { span, .. }
            | EvalError::Absent { span }
            | EvalError::Internal { span, .. } => Some(*span),
        }
    }
}

type R<T> = Result<T, EvalError>;

/// One evaluation: the facts, the quantifier variables, the step count.
pub struct Evaluator<'a> {
    pub input: &'a Value,
    /// Quantifier variables bound to values the evaluation owns.
    locals: Vec<Value>,
    /// Quantifier variables bound to elements of a list in the facts (no copy).
    refs: Vec<Option<&'a Value>>,
    /// Fact paths already read in this evaluation, by path id.
    paths: Vec<std::cell::Cell<Option<&'a Value>>>,
    pub steps: u64,
    pub limits: Limits,
    /// Versions parsed from facts, by the address of the fact's text.
    semver_memo: Vec<(usize, R<Value>)>,
}

fn parse_semver(ir: &Ir, s: &str) -> R<Value> {
    match semver::Version::parse(s) {
        Ok(v) => Ok(Value::Semver(Arc::new(v))),
        Err(e) => Err(EvalError::InvalidSemver {
            span: ir.span,
            text: s.to_owned(),
            reason: e.to_string(),
        }),
    }
}

fn internal(ir: &Ir, what: &str) -> EvalError {
    EvalError::Internal {
        span: ir.span,
        what: what.to_owned(),
    }
}

/// Compares two values of one ordered type (semver by precedence, build metadata ignored).
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        (Value::Semver(x), Value::Semver(y)) => Some(x.cmp_precedence(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Whether `op` holds between two values.
pub fn holds(op: CmpOp, a: &Value, b: &Value) -> Option<bool> {
    Some(match op {
        CmpOp::Eq => equal(a, b),
        CmpOp::Ne => !equal(a, b),
        CmpOp::Lt => compare(a, b)? == Ordering::Less,
        CmpOp::Le => compare(a, b)? != Ordering::Greater,
        CmpOp::Gt => compare(a, b)? == Ordering::Greater,
        CmpOp::Ge => compare(a, b)? != Ordering::Less,
    })
}

/// Equality; semver versions are equal by precedence.
pub fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Semver(x), Value::Semver(y)) => x.cmp_precedence(y) == Ordering::Equal,
        _ => a == b,
    }
}

impl<'a> Evaluator<'a> {
    pub fn new(input: &'a Value, limits: Limits) -> Self {
        Evaluator {
            input,
            locals: Vec::new(),
            refs: Vec::new(),
            paths: Vec::new(),
            steps: 0,
            limits,
            semver_memo: Vec::new(),
        }
    }

    #[inline]
    fn step(&mut self) -> R<()> {
        self.steps += 1;
        if self.steps > self.limits.steps {
            Err(EvalError::StepBudget {
                limit: self.limits.steps,
            })
        } else {
            Ok(())
        }
    }

    /// An evaluator that remembers up to `paths` distinct fact paths (see `ir::PathIds`).
    pub fn with_paths(input: &'a Value, limits: Limits, paths: usize) -> Self {
        let mut e = Evaluator::new(input, limits);
        e.paths = (0..paths).map(|_| std::cell::Cell::new(None)).collect();
        e
    }

    /// Binds a quantifier variable to a value the evaluation owns.
    pub fn set_local(&mut self, slot: u16, v: Value) {
        let i = slot as usize;
        if self.locals.len() <= i {
            self.locals.resize(i + 1, Value::Absent);
        }
        self.locals[i] = v;
        if let Some(r) = self.refs.get_mut(i) {
            *r = None;
        }
    }

    fn set_ref(&mut self, slot: u16, v: &'a Value) {
        let i = slot as usize;
        if self.refs.len() <= i {
            self.refs.resize(i + 1, None);
        }
        self.refs[i] = Some(v);
    }

    fn local(&self, slot: u16) -> Option<&Value> {
        match self.refs.get(slot as usize) {
            Some(Some(r)) => Some(*r),
            _ => self.locals.get(slot as usize),
        }
    }

    /// Runs `body` once per element of `list`: elements of a list in the facts are bound by
    /// reference, others by value. `visit` says, for each result, whether to stop.
    fn for_each(
        &mut self,
        slot: u16,
        list: &Ir,
        body: &Ir,
        mut visit: impl FnMut(&Value, bool) -> bool,
    ) -> R<()> {
        if let Some(Value::List(items)) = self.path(list) {
            for item in items.iter() {
                self.set_ref(slot, item);
                let b = self.eval_bool(body)?;
                if visit(item, b) {
                    break;
                }
            }
            return Ok(());
        }
        let items = self.list(list)?;
        for item in items.iter() {
            self.set_local(slot, item.clone());
            let b = self.eval_bool(body)?;
            if visit(item, b) {
                break;
            }
        }
        Ok(())
    }

    /// A field chain from the facts, borrowed without copying.
    fn path<'b>(&self, ir: &'b Ir) -> Option<&'a Value> {
        match &ir.kind {
            IrKind::Input => Some(self.input),
            IrKind::Path(id, p) => {
                let cached = self.paths.get(*id as usize);
                if let Some(v) = cached.and_then(std::cell::Cell::get) {
                    return Some(v);
                }
                let mut v = self.input;
                for i in p.iter() {
                    match v {
                        Value::Record(fields) => v = fields.get(*i as usize)?,
                        _ => return None,
                    }
                }
                if let Some(c) = cached {
                    c.set(Some(v));
                }
                Some(v)
            }
            IrKind::Field(inner, i) => match self.path(inner)? {
                Value::Record(fields) => fields.get(*i as usize),
                _ => None,
            },
            _ => None,
        }
    }

    /// A value that can be read without evaluating or copying: a constant, a fact, or a
    /// quantifier variable (or a field of one).
    fn peek<'s>(&'s self, ir: &'s Ir) -> Option<&'s Value> {
        match &ir.kind {
            IrKind::Const(v) => Some(v),
            IrKind::Input | IrKind::Path(..) => self.path(ir),
            IrKind::Local(slot) => self.local(*slot),
            IrKind::Field(inner, i) => match self.peek(inner)? {
                Value::Record(fields) => fields.get(*i as usize),
                _ => None,
            },
            _ => None,
        }
    }

    /// Two string arguments, borrowed when possible.
    fn str_pair(&mut self, a: &Ir, b: &Ir, f: impl Fn(&str, &str) -> bool) -> R<bool> {
        if let (Some(Value::Str(x)), Some(Value::Str(y))) = (self.peek(a), self.peek(b)) {
            return Ok(f(x, y));
        }
        let x = self.string(a)?;
        let y = self.string(b)?;
        Ok(f(&x, &y))
    }

    /// `semver(fact)` parsed once per evaluation: facts do not change while rules run.
    fn semver_of_fact(&mut self, ir: &Ir, arg: &Ir) -> R<Value> {
        let Some(Value::Str(s)) = self.path(arg) else {
            let s = self.string(arg)?;
            return parse_semver(ir, &s);
        };
        let key = std::sync::Arc::as_ptr(s) as *const u8 as usize;
        if let Some((_, v)) = self.semver_memo.iter().find(|(k, _)| *k == key) {
            return v.clone();
        }
        let v = parse_semver(ir, s);
        self.semver_memo.push((key, v.clone()));
        v
    }

    /// Evaluates a boolean expression.
    pub fn eval_bool(&mut self, ir: &Ir) -> R<bool> {
        self.step()?;
        match &ir.kind {
            IrKind::Const(Value::Bool(b)) => Ok(*b),
            IrKind::And(a, b) => Ok(self.eval_bool(a)? && self.eval_bool(b)?),
            IrKind::Or(a, b) => Ok(self.eval_bool(a)? || self.eval_bool(b)?),
            IrKind::Not(a) => Ok(!self.eval_bool(a)?),
            IrKind::Cmp(op, a, b) => {
                if let (Some(x), Some(y)) = (self.peek(a), self.peek(b)) {
                    return holds(*op, x, y).ok_or_else(|| internal(ir, "compare"));
                }
                let x = self.eval(a)?;
                let y = self.eval(b)?;
                holds(*op, &x, &y).ok_or_else(|| internal(ir, "compare"))
            }
            IrKind::InSet(e, set, _) => match self.peek(e) {
                Some(v) => Ok(set.contains(v)),
                None => {
                    let v = self.eval(e)?;
                    Ok(set.contains(&v))
                }
            },
            IrKind::Call(
                b @ (Builtin::StartsWith | Builtin::EndsWith | Builtin::Contains),
                args,
            ) if args.len() == 2 => {
                let f = match b {
                    Builtin::StartsWith => |x: &str, y: &str| x.starts_with(y),
                    Builtin::EndsWith => |x: &str, y: &str| x.ends_with(y),
                    _ => |x: &str, y: &str| x.contains(y),
                };
                self.str_pair(&args[0], &args[1], f)
            }
            IrKind::Call(Builtin::IsSemver, args) if args.len() == 1 => {
                if self.path(&args[0]).is_some() {
                    return Ok(self.semver_of_fact(ir, &args[0]).is_ok());
                }
                let s = self.string(&args[0])?;
                Ok(semver::Version::parse(&s).is_ok())
            }
            IrKind::Call(Builtin::IsEmpty, args) if args.len() == 1 => match self.peek(&args[0]) {
                Some(Value::List(l)) => Ok(l.is_empty()),
                Some(Value::Str(s)) => Ok(s.is_empty()),
                _ => match self.eval(ir)? {
                    Value::Bool(b) => Ok(b),
                    _ => Err(internal(ir, "is_empty")),
                },
            },
            IrKind::Matches(e, re) => match self.peek(e) {
                Some(Value::Str(s)) => Ok(re.is_match(s)),
                _ => {
                    let s = self.string(e)?;
                    Ok(re.is_match(&s))
                }
            },
            IrKind::Quant(
                kind @ (QuantKind::Any | QuantKind::All | QuantKind::None),
                slot,
                _,
                list,
                body,
            ) => {
                let mut result = !matches!(kind, QuantKind::Any);
                self.for_each(*slot, list, body, |_, b| match (kind, b) {
                    (QuantKind::Any, true) => {
                        result = true;
                        true
                    }
                    (QuantKind::All, false) | (QuantKind::None, true) => {
                        result = false;
                        true
                    }
                    _ => false,
                })?;
                Ok(result)
            }
            _ => match self.eval(ir)? {
                Value::Bool(b) => Ok(b),
                Value::Absent => Err(EvalError::Absent { span: ir.span }),
                _ => Err(internal(ir, "expected a boolean")),
            },
        }
    }

    fn list(&mut self, ir: &Ir) -> R<Arc<[Value]>> {
        match self.eval(ir)? {
            Value::List(l) => Ok(l),
            Value::Absent => Err(EvalError::Absent { span: ir.span }),
            _ => Err(internal(ir, "expected a list")),
        }
    }

    fn int(&mut self, ir: &Ir) -> R<i64> {
        match self.eval(ir)? {
            Value::Int(i) => Ok(i),
            Value::Absent => Err(EvalError::Absent { span: ir.span }),
            _ => Err(internal(ir, "expected an integer")),
        }
    }

    fn string(&mut self, ir: &Ir) -> R<Arc<str>> {
        match self.eval(ir)? {
            Value::Str(s) => Ok(s),
            Value::Absent => Err(EvalError::Absent { span: ir.span }),
            _ => Err(internal(ir, "expected a string")),
        }
    }

    fn semver(&mut self, ir: &Ir) -> R<Arc<semver::Version>> {
        match self.eval(ir)? {
            Value::Semver(v) => Ok(v),
            Value::Absent => Err(EvalError::Absent { span: ir.span }),
            _ => Err(internal(ir, "expected a semver version")),
        }
    }

    fn checked_string(&self, ir: &Ir, s: String) -> R<Value> {
        if s.len() > self.limits.max_string {
            return Err(EvalError::TooLarge {
                span: ir.span,
                what: format!("a string of {} bytes", s.len()),
            });
        }
        Ok(Value::Str(Arc::from(s)))
    }

    /// Evaluates any expression.
    pub fn eval(&mut self, ir: &Ir) -> R<Value> {
        self.step()?;
        Ok(match &ir.kind {
            IrKind::Const(v) => v.clone(),
            IrKind::Input => self.input.clone(),
            IrKind::Local(slot) => self
                .local(*slot)
                .cloned()
                .ok_or_else(|| internal(ir, "unbound variable"))?,
            IrKind::Param(_) => return Err(internal(ir, "uninlined parameter")),
            IrKind::Path(..) => self.path(ir).cloned().ok_or_else(|| internal(ir, "path"))?,
            IrKind::Field(e, i) => {
                if let Some(v) = self.path(ir) {
                    return Ok(v.clone());
                }
                match self.eval(e)? {
                    Value::Record(fields) => fields
                        .get(*i as usize)
                        .cloned()
                        .ok_or_else(|| internal(ir, "field index"))?,
                    Value::Absent => return Err(EvalError::Absent { span: e.span }),
                    _ => return Err(internal(ir, "expected a record")),
                }
            }
            IrKind::Has(e, i) => match self.eval(e)? {
                Value::Record(fields) => Value::Bool(!matches!(
                    fields.get(*i as usize),
                    None | Some(Value::Absent)
                )),
                Value::Absent => Value::Bool(false),
                _ => return Err(internal(ir, "expected a record")),
            },
            IrKind::Not(_)
            | IrKind::And(_, _)
            | IrKind::Or(_, _)
            | IrKind::Cmp(_, _, _)
            | IrKind::InSet(_, _, _) => {
                self.steps -= 1;
                Value::Bool(self.eval_bool(ir)?)
            }
            IrKind::Neg(e) => {
                let v = self.int(e)?;
                Value::Int(
                    v.checked_neg()
                        .ok_or(EvalError::Overflow { span: ir.span })?,
                )
            }
            IrKind::Arith(op, a, b) => {
                let x = self.int(a)?;
                let y = self.int(b)?;
                let overflow = EvalError::Overflow { span: ir.span };
                Value::Int(match op {
                    ArithOp::Add => x.checked_add(y).ok_or(overflow)?,
                    ArithOp::Sub => x.checked_sub(y).ok_or(overflow)?,
                    ArithOp::Mul => x.checked_mul(y).ok_or(overflow)?,
                    ArithOp::Div | ArithOp::Rem if y == 0 => {
                        return Err(EvalError::DivisionByZero { span: ir.span });
                    }
                    ArithOp::Div => x.checked_div(y).ok_or(overflow)?,
                    ArithOp::Rem => x.checked_rem(y).ok_or(overflow)?,
                })
            }
            IrKind::InList(e, list) => {
                let v = self.eval(e)?;
                let l = self.list(list)?;
                Value::Bool(l.iter().any(|x| equal(x, &v)))
            }
            IrKind::Default(a, b) => match self.eval(a)? {
                Value::Absent => self.eval(b)?,
                v => v,
            },
            IrKind::Matches(e, re) => {
                let s = self.string(e)?;
                Value::Bool(re.is_match(&s))
            }
            IrKind::Satisfies(e, req) => {
                let v = self.semver(e)?;
                Value::Bool(req.matches(&v))
            }
            IrKind::Quant(kind, slot, _, list, body) => match kind {
                QuantKind::Any | QuantKind::All | QuantKind::None => {
                    self.steps -= 1;
                    Value::Bool(self.eval_bool(ir)?)
                }
                QuantKind::Count => {
                    let mut n: i64 = 0;
                    self.for_each(*slot, list, body, |_, b| {
                        n += i64::from(b);
                        false
                    })?;
                    Value::Int(n)
                }
                QuantKind::Filter => {
                    let mut out = Vec::new();
                    self.for_each(*slot, list, body, |item, b| {
                        if b {
                            out.push(item.clone());
                        }
                        false
                    })?;
                    Value::List(Arc::from(out))
                }
            },
            IrKind::List(items) => {
                if items.len() > self.limits.max_list {
                    return Err(EvalError::TooLarge {
                        span: ir.span,
                        what: format!("a list of {} items", items.len()),
                    });
                }
                let mut out = Vec::with_capacity(items.len());
                for i in items {
                    out.push(self.eval(i)?);
                }
                Value::List(Arc::from(out))
            }
            IrKind::Record(items) => {
                let mut out = Vec::with_capacity(items.len());
                for i in items {
                    out.push(self.eval(i)?);
                }
                Value::Record(Arc::from(out))
            }
            IrKind::Inlined(_, body) => self.eval(body)?,
            IrKind::Call(b, args) => self.call(ir, *b, args)?,
        })
    }

    fn call(&mut self, ir: &Ir, b: Builtin, args: &[Ir]) -> R<Value> {
        let arg = |i: usize| args.get(i).ok_or_else(|| internal(ir, "missing argument"));
        Ok(match b {
            Builtin::Len if self.peek(arg(0)?).is_some() => match self.peek(arg(0)?) {
                Some(Value::Str(s)) => Value::Int(s.chars().count() as i64),
                Some(Value::List(l)) => Value::Int(l.len() as i64),
                _ => return Err(internal(ir, "len")),
            },
            Builtin::Len => match self.eval(arg(0)?)? {
                Value::Str(s) => Value::Int(s.chars().count() as i64),
                Value::List(l) => Value::Int(l.len() as i64),
                _ => return Err(internal(ir, "len")),
            },
            Builtin::IsEmpty => match self.eval(arg(0)?)? {
                Value::Str(s) => Value::Bool(s.is_empty()),
                Value::List(l) => Value::Bool(l.is_empty()),
                _ => return Err(internal(ir, "is_empty")),
            },
            Builtin::Contains => {
                let s = self.string(arg(0)?)?;
                let t = self.string(arg(1)?)?;
                Value::Bool(s.contains(&*t))
            }
            Builtin::ListContains => {
                let l = self.list(arg(0)?)?;
                let v = self.eval(arg(1)?)?;
                Value::Bool(l.iter().any(|x| equal(x, &v)))
            }
            Builtin::StartsWith => {
                let s = self.string(arg(0)?)?;
                let t = self.string(arg(1)?)?;
                Value::Bool(s.starts_with(&*t))
            }
            Builtin::EndsWith => {
                let s = self.string(arg(0)?)?;
                let t = self.string(arg(1)?)?;
                Value::Bool(s.ends_with(&*t))
            }
            Builtin::Lower => {
                let s = self.string(arg(0)?)?;
                self.checked_string(ir, s.to_lowercase())?
            }
            Builtin::Upper => {
                let s = self.string(arg(0)?)?;
                self.checked_string(ir, s.to_uppercase())?
            }
            Builtin::Trim => {
                let s = self.string(arg(0)?)?;
                Value::str(s.trim())
            }
            Builtin::TrimPrefix => {
                let s = self.string(arg(0)?)?;
                let p = self.string(arg(1)?)?;
                Value::str(s.strip_prefix(&*p).unwrap_or(&s))
            }
            Builtin::TrimSuffix => {
                let s = self.string(arg(0)?)?;
                let p = self.string(arg(1)?)?;
                Value::str(s.strip_suffix(&*p).unwrap_or(&s))
            }
            Builtin::Split => {
                let s = self.string(arg(0)?)?;
                let sep = self.string(arg(1)?)?;
                let parts: Vec<Value> = if sep.is_empty() {
                    s.chars()
                        .map(|c| Value::str(c.encode_utf8(&mut [0; 4])))
                        .collect()
                } else {
                    s.split(&*sep).map(Value::str).collect()
                };
                if parts.len() > self.limits.max_list {
                    return Err(EvalError::TooLarge {
                        span: ir.span,
                        what: format!("a list of {} items", parts.len()),
                    });
                }
                Value::List(Arc::from(parts))
            }
            Builtin::Concat => {
                let mut out = String::new();
                for a in args {
                    let s = self.string(a)?;
                    if out.len() + s.len() > self.limits.max_string {
                        return Err(EvalError::TooLarge {
                            span: ir.span,
                            what: "a string over the size limit".into(),
                        });
                    }
                    out.push_str(&s);
                }
                Value::Str(Arc::from(out))
            }
            Builtin::Semver if self.path(arg(0)?).is_some() => self.semver_of_fact(ir, arg(0)?)?,
            Builtin::Semver => {
                let s = self.string(arg(0)?)?;
                match semver::Version::parse(&s) {
                    Ok(v) => Value::Semver(Arc::new(v)),
                    Err(e) => {
                        return Err(EvalError::InvalidSemver {
                            span: ir.span,
                            text: s.to_string(),
                            reason: e.to_string(),
                        });
                    }
                }
            }
            Builtin::IsSemver => {
                let s = self.string(arg(0)?)?;
                Value::Bool(semver::Version::parse(&s).is_ok())
            }
            Builtin::Major => Value::Int(
                i64::try_from(self.semver(arg(0)?)?.major)
                    .map_err(|_| EvalError::Overflow { span: ir.span })?,
            ),
            Builtin::Minor => Value::Int(
                i64::try_from(self.semver(arg(0)?)?.minor)
                    .map_err(|_| EvalError::Overflow { span: ir.span })?,
            ),
            Builtin::Patch => Value::Int(
                i64::try_from(self.semver(arg(0)?)?.patch)
                    .map_err(|_| EvalError::Overflow { span: ir.span })?,
            ),
            Builtin::IsPrerelease => Value::Bool(!self.semver(arg(0)?)?.pre.is_empty()),
            Builtin::Min => {
                let a = self.int(arg(0)?)?;
                let b = self.int(arg(1)?)?;
                Value::Int(a.min(b))
            }
            Builtin::Max => {
                let a = self.int(arg(0)?)?;
                let b = self.int(arg(1)?)?;
                Value::Int(a.max(b))
            }
            Builtin::Abs => {
                let a = self.int(arg(0)?)?;
                Value::Int(
                    a.checked_abs()
                        .ok_or(EvalError::Overflow { span: ir.span })?,
                )
            }
        })
    }
}
