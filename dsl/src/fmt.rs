//! The formatter: one canonical layout for every pack. Formatting is idempotent and keeps the
//! meaning: parsing the output gives the same syntax tree. Line comments are kept, moved to the
//! start of the item or field they were written in.

use crate::ast::*;
use crate::span::Span;

/// Formats one file. `text` is the file's source (for its comments); `file` its syntax tree.
pub fn format_file(text: &str, file: &File) -> String {
    let comments = collect_comments(text);
    let mut f = Formatter {
        out: String::new(),
        comments,
        next_comment: 0,
        src: text,
    };
    let mut prev: Option<&Item> = None;
    for item in &file.items {
        if let Some(p) = prev
            && !(single_line(p) && single_line(item) && same_kind(p, item))
        {
            f.out.push('\n');
        }
        f.flush_comments(item_start(item), "");
        f.item(item);
        prev = Some(item);
    }
    f.flush_comments(usize::MAX, "");
    while f.out.ends_with("\n\n") {
        f.out.pop();
    }
    f.out
}

fn collect_comments(text: &str) -> Vec<(usize, String)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let raw = i > 0 && bytes[i - 1] == b'r';
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    if !raw && bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                let start = i;
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                out.push((start, text[start..i].trim_end().to_owned()));
            }
            _ => i += 1,
        }
    }
    out
}

fn single_line(item: &Item) -> bool {
    matches!(item, Item::Import(_) | Item::Const(_) | Item::Set(_))
}

fn same_kind(a: &Item, b: &Item) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

fn item_start(item: &Item) -> usize {
    let span: Span = match item {
        Item::Pack(p) => *p.span,
        Item::Import(i) => i.span,
        Item::Const(c) => c.name.span,
        Item::Set(s) => s.name.span,
        Item::Fn(f) => f.name.span,
        Item::Rule(r) => *r.span,
        Item::Waiver(w) => *w.span,
        Item::Test(t) => *t.span,
    };
    span.start as usize
}

struct Formatter<'s> {
    out: String,
    comments: Vec<(usize, String)>,
    next_comment: usize,
    /// The source, to keep the author's choices the tree does not record (raw strings, blank
    /// lines after comments).
    src: &'s str,
}

/// A string literal; raw when that reads better (regular expressions).
pub fn string_literal(s: &str) -> String {
    if s.contains('\\') && !s.contains('"') && !s.contains('\n') {
        return format!("r\"{s}\"");
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn template_literal(t: &Template, src: &str) -> String {
    let mut out = String::from("\"");
    for p in &t.parts {
        match p {
            TemplatePart::Text(s) => {
                for c in s.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\t' => out.push_str("\\t"),
                        '{' => out.push_str("\\{"),
                        '}' => out.push_str("\\}"),
                        c => out.push(c),
                    }
                }
            }
            TemplatePart::Expr(e) => {
                out.push('{');
                out.push_str(
                    &expr_text_in(e, src)
                        .replace('\\', "\\\\")
                        .replace('"', "\\\""),
                );
                out.push('}');
            }
        }
    }
    out.push('"');
    out
}

fn is_word(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn type_text(t: &TypeExpr) -> String {
    match t {
        TypeExpr::Bool => "bool".into(),
        TypeExpr::Int => "int".into(),
        TypeExpr::String => "string".into(),
        TypeExpr::Semver => "semver".into(),
        TypeExpr::List(t) => format!("list<{}>", type_text(&t.node)),
        TypeExpr::Set(t) => format!("set<{}>", type_text(&t.node)),
        TypeExpr::Optional(t) => format!("{}?", type_text(&t.node)),
    }
}

/// Precedence of `not` (between `and` and comparisons) and of unary minus.
const NOT_PREC: u8 = 3;
const NEG_PREC: u8 = 7;

fn prec(e: &Expr) -> u8 {
    match &e.node {
        ExprKind::Binary(op, _, _) => {
            let p = op.precedence();
            // Comparisons sit above `not`.
            if p >= 3 { p + 1 } else { p }
        }
        ExprKind::Unary(UnOp::Not, _) => NOT_PREC,
        ExprKind::Unary(UnOp::Neg, _) => NEG_PREC + 1,
        // `has a.b` would swallow a following `.field`.
        ExprKind::Has(_) => 9,
        _ => 10,
    }
}

/// An expression on one line, parenthesised only where needed.
pub fn expr_text(e: &Expr) -> String {
    expr_text_in(e, "")
}

/// Like [`expr_text`], keeping raw strings raw where `src` (the file) wrote them so.
pub fn expr_text_in(e: &Expr, src: &str) -> String {
    let mut out = String::new();
    write_expr(e, &mut out, src);
    out
}

fn write_child(e: &Expr, min: u8, out: &mut String, src: &str) {
    if prec(e) < min {
        out.push('(');
        write_expr(e, out, src);
        out.push(')');
    } else {
        write_expr(e, out, src);
    }
}

fn write_list(items: &[Expr], out: &mut String, src: &str) {
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_expr(e, out, src);
    }
}

fn write_expr(e: &Expr, out: &mut String, src: &str) {
    match &e.node {
        ExprKind::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        ExprKind::Int(i) => {
            if *i < 0 {
                // Only constant folding makes negative literals; keep them parseable.
                out.push_str(&format!("(-{})", i.unsigned_abs()));
            } else {
                out.push_str(&i.to_string());
            }
        }
        ExprKind::Str(s) => {
            let raw_in_source = src
                .get(e.span.start as usize..)
                .is_some_and(|t| t.starts_with("r\""));
            if raw_in_source && !s.contains('"') && !s.contains('\n') {
                out.push_str(&format!("r\"{s}\""));
            } else {
                out.push_str(&string_literal(s));
            }
        }
        ExprKind::Name(n) => out.push_str(n),
        ExprKind::Field(base, f) => {
            write_child(base, 10, out, src);
            out.push('.');
            out.push_str(&f.node);
        }
        ExprKind::Has(path) => {
            out.push_str("has ");
            out.push_str(
                &path
                    .iter()
                    .map(|p| p.node.as_str())
                    .collect::<Vec<_>>()
                    .join("."),
            );
        }
        ExprKind::Unary(UnOp::Not, inner) => {
            out.push_str("not ");
            write_child(inner, NOT_PREC + 1, out, src);
        }
        ExprKind::Unary(UnOp::Neg, inner) => {
            out.push('-');
            write_child(inner, NEG_PREC + 1, out, src);
        }
        ExprKind::Binary(op, a, b) => {
            let p = prec(e);
            let (lmin, rmin) = match op {
                BinOp::Default => (p + 1, p),
                // Comparisons do not chain: parenthesise either side at the same level.
                BinOp::Eq
                | BinOp::Ne
                | BinOp::Lt
                | BinOp::Le
                | BinOp::Gt
                | BinOp::Ge
                | BinOp::In
                | BinOp::NotIn => (p + 1, p + 1),
                _ => (p, p + 1),
            };
            write_child(a, lmin, out, src);
            out.push(' ');
            out.push_str(op.symbol());
            out.push(' ');
            write_child(b, rmin, out, src);
        }
        ExprKind::Call(name, args) => {
            out.push_str(&name.node);
            out.push('(');
            write_list(args, out, src);
            out.push(')');
        }
        ExprKind::Quant(kind, var, list, body) => {
            out.push_str(kind.name());
            out.push('(');
            out.push_str(&var.node);
            out.push_str(" in ");
            write_expr(list, out, src);
            out.push_str(" where ");
            write_expr(body, out, src);
            out.push(')');
        }
        ExprKind::List(items) => {
            out.push('[');
            write_list(items, out, src);
            out.push(']');
        }
        ExprKind::Record(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                if is_word(&k.node) {
                    out.push_str(&k.node);
                } else {
                    out.push_str(&string_literal(&k.node));
                }
                out.push_str(": ");
                write_expr(v, out, src);
            }
            out.push('}');
        }
    }
}

impl Formatter<'_> {
    fn flush_comments(&mut self, before: usize, indent: &str) {
        let mut last_end = None;
        while let Some((pos, text)) = self.comments.get(self.next_comment) {
            if *pos >= before {
                break;
            }
            self.out.push_str(indent);
            self.out.push_str(text);
            self.out.push('\n');
            last_end = Some(pos + text.len());
            self.next_comment += 1;
        }
        // A blank line between a comment block and what follows is kept.
        if let Some(end) = last_end
            && before != usize::MAX
            && self
                .src
                .get(end..before.min(self.src.len()))
                .is_some_and(|gap| gap.matches('\n').count() >= 2)
        {
            self.out.push('\n');
        }
    }

    fn line(&mut self, indent: &str, text: &str) {
        self.out.push_str(indent);
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn field(&mut self, at: usize, key: &str, value: &str) {
        self.flush_comments(at, "  ");
        let text = format!("{key:<8} {value}");
        self.line("  ", text.trim_end());
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::Pack(p) => {
                let mut s = format!(
                    "pack {} version {} language {}",
                    string_literal(&p.name.node),
                    string_literal(&p.version.node),
                    p.language.node
                );
                if let Some(f) = &p.facts {
                    s.push_str(" facts ");
                    s.push_str(&f.node);
                }
                self.line("", &s);
            }
            Item::Import(i) => self.line("", &format!("import {}", string_literal(&i.node))),
            Item::Const(c) => {
                let ty =
                    c.ty.as_ref()
                        .map(|t| format!(": {}", type_text(&t.node)))
                        .unwrap_or_default();
                self.line(
                    "",
                    &format!(
                        "const {}{ty} = {}",
                        c.name.node,
                        expr_text_in(&c.value, self.src)
                    ),
                );
            }
            Item::Set(s) => {
                let mut items = String::new();
                write_list(&s.items.node, &mut items, self.src);
                self.line("", &format!("set {} = [{items}]", s.name.node));
            }
            Item::Fn(f) => {
                let params: Vec<String> = f
                    .params
                    .iter()
                    .map(|p| format!("{}: {}", p.name.node, type_text(&p.ty.node)))
                    .collect();
                self.line(
                    "",
                    &format!(
                        "fn {}({}) -> {} = {}",
                        f.name.node,
                        params.join(", "),
                        type_text(&f.ret.node),
                        expr_text_in(&f.body, self.src)
                    ),
                );
            }
            Item::Rule(r) => self.rule(r),
            Item::Waiver(w) => {
                self.line("", &format!("waiver {} {{", string_literal(&w.name.node)));
                if let Some(rule) = &w.rule {
                    self.field(rule.span.start as usize, "rule", &rule.node);
                }
                if let Some(s) = &w.subject {
                    let (k, v) = match &s.node {
                        WaiverSubject::Plugin(p) => ("plugin", p),
                        WaiverSubject::Publisher(p) => ("publisher", p),
                    };
                    self.field(s.span.start as usize, k, &string_literal(v));
                }
                for (k, v) in [
                    ("reason", &w.reason),
                    ("approver", &w.approver),
                    ("expires", &w.expires),
                ] {
                    if let Some(v) = v {
                        self.field(v.span.start as usize, k, &string_literal(&v.node));
                    }
                }
                self.flush_comments(w.span.end as usize, "  ");
                self.line("", "}");
            }
            Item::Test(t) => {
                self.line("", &format!("test {} {{", string_literal(&t.name.node)));
                if let Some(i) = &t.input {
                    let v = match &i.node {
                        TestInput::Inline(e) => expr_text_in(e, self.src),
                        TestInput::File(p) => format!("file {}", string_literal(p)),
                    };
                    self.field(i.span.start as usize, "input", &v);
                }
                if let Some(n) = &t.now {
                    self.field(n.span.start as usize, "now", &string_literal(&n.node));
                }
                if let Some(d) = &t.expect_decision {
                    let v = match d.node {
                        Decision::Pass => "pass",
                        Decision::Warn => "warn",
                        Decision::Deny => "deny",
                    };
                    self.field(d.span.start as usize, "expect", &format!("decision {v}"));
                }
                if let Some(f) = &t.expect_fired {
                    let ids: Vec<&str> = f.node.iter().map(|i| i.node.as_str()).collect();
                    self.field(
                        f.span.start as usize,
                        "expect",
                        &format!("fired [{}]", ids.join(", ")),
                    );
                }
                self.flush_comments(t.span.end as usize, "  ");
                self.line("", "}");
            }
        }
    }

    fn rule(&mut self, r: &RuleDecl) {
        self.line("", &format!("rule {} {{", r.id.node));
        if let Some(e) = &r.effect {
            let v = match e.node {
                Effect::Deny => "deny",
                Effect::Warn => "warn",
                Effect::Info => "info",
            };
            self.field(e.span.start as usize, "effect", v);
        }
        if let Some(m) = &r.mode {
            let v = match m.node {
                Mode::Enforce => "enforce",
                Mode::Audit => "audit",
                Mode::Advisory => "advisory",
            };
            self.field(m.span.start as usize, "mode", v);
        }
        if let Some(s) = &r.severity {
            let v = match s.node {
                Severity::Critical => "critical",
                Severity::High => "high",
                Severity::Medium => "medium",
                Severity::Low => "low",
            };
            self.field(s.span.start as usize, "severity", v);
        }
        if let Some(t) = &r.tags {
            let tags: Vec<String> = t.node.iter().map(|s| string_literal(&s.node)).collect();
            self.field(
                t.span.start as usize,
                "tags",
                &format!("[{}]", tags.join(", ")),
            );
        }
        for (name, value) in &r.lets {
            self.field(
                name.span.start as usize,
                "let",
                &format!("{} = {}", name.node, expr_text_in(value, self.src)),
            );
        }
        if let Some(w) = &r.when {
            self.field(w.span.start as usize, "when", &expr_text_in(w, self.src));
        }
        if let Some(m) = &r.message {
            self.field(
                m.raw.span.start as usize,
                "message",
                &template_literal(m, self.src),
            );
        }
        if let Some(f) = &r.fix {
            self.field(
                f.raw.span.start as usize,
                "fix",
                &template_literal(f, self.src),
            );
        }
        if let Some(d) = &r.docs {
            self.field(d.span.start as usize, "docs", &string_literal(&d.node));
        }
        self.flush_comments(r.span.end as usize, "  ");
        self.line("", "}");
    }
}
