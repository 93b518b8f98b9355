//! Expressions: names, fields and presence, operators, membership, quantifiers, calls of user
//! functions (compiled once and inlined), and message templates.

use std::sync::Arc;

use super::*;

impl Checker<'_> {
    pub(super) fn expr(&mut self, e: &Expr) -> Ir {
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

    pub(super) fn field(&mut self, base: Ir, field: &Ident, span: Span) -> Ir {
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

    pub(super) fn has(&mut self, path: &[Ident], span: Span) -> Ir {
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

    pub(super) fn binary(&mut self, op: BinOp, a: &Expr, b: &Expr, span: Span) -> Ir {
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

    pub(super) fn membership(&mut self, l: Ir, r: Ir, r_expr: &Expr, span: Span) -> Ir {
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

    pub(super) fn quant(
        &mut self,
        kind: QuantKind,
        var: &Ident,
        list: &Expr,
        body: &Expr,
        span: Span,
    ) -> Ir {
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

    pub(super) fn user_call(&mut self, name: &Ident, args: &[Expr], span: Span) -> Ir {
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

    pub(super) fn compile_fn(
        &mut self,
        name: &str,
        call_span: Span,
    ) -> Option<(Ir, Vec<Type>, Type)> {
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

    pub(super) fn template(&mut self, t: &Template) -> CompiledTemplate {
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

pub(super) fn describe_record(base: &Ir, rec: &RecordType) -> String {
    match Checker::path_of(base) {
        Some(p) if p.starts_with("input") => format!("`{p}`"),
        _ => format!("record `{}`", rec.name),
    }
}

pub(super) fn compare_help(a: &Type, b: &Type) -> String {
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
pub(super) fn proven_present(ir: &Ir) -> Vec<String> {
    let mut out = Vec::new();
    pub(super) fn go(ir: &Ir, out: &mut Vec<String>) {
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
