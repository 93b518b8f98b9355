//! Text → syntax tree. The only module that sees pest's `Pair` and `Rule`.
//!
//! A file is first cut into top-level items (by keyword, outside brackets, strings and
//! comments) and each item is parsed on its own, so one pass reports the syntax errors of every
//! item instead of stopping at the first.

use std::sync::LazyLock;

use pest::Parser;
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};

use crate::ast::*;
use crate::diag::{Code, Diagnostic};
use crate::span::{FileId, Node, Span};

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/policy.pest"]
struct PolicyParser;

/// Words reserved in expressions.
const RESERVED: [&str; 8] = ["and", "or", "not", "in", "has", "where", "true", "false"];

/// Deepest bracket nesting accepted (the parser recurses per level).
pub const MAX_NESTING: usize = 64;
/// Largest file accepted, in bytes.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::or_op, Assoc::Left))
        .op(Op::infix(Rule::and_op, Assoc::Left))
        .op(Op::prefix(Rule::not_op))
        .op(Op::infix(Rule::eq_op, Assoc::Left)
            | Op::infix(Rule::ne_op, Assoc::Left)
            | Op::infix(Rule::lt_op, Assoc::Left)
            | Op::infix(Rule::le_op, Assoc::Left)
            | Op::infix(Rule::gt_op, Assoc::Left)
            | Op::infix(Rule::ge_op, Assoc::Left)
            | Op::infix(Rule::in_op, Assoc::Left)
            | Op::infix(Rule::not_in_op, Assoc::Left))
        .op(Op::infix(Rule::default_op, Assoc::Right))
        .op(Op::infix(Rule::add_op, Assoc::Left) | Op::infix(Rule::sub_op, Assoc::Left))
        .op(Op::infix(Rule::mul_op, Assoc::Left)
            | Op::infix(Rule::div_op, Assoc::Left)
            | Op::infix(Rule::rem_op, Assoc::Left))
        .op(Op::prefix(Rule::neg_op))
        .op(Op::postfix(Rule::field_access))
});

/// Parses one file. Returns the items that parsed and a diagnostic for each that did not.
pub fn parse_file(file: FileId, text: &str) -> (File, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut items = Vec::new();
    if text.len() > MAX_FILE_BYTES {
        diags.push(
            Diagnostic::new(
                Code::TooLarge,
                Span::new(file, 0, 0),
                "the file is too large",
            )
            .label("here")
            .help(format!(
                "split the pack into files of at most {MAX_FILE_BYTES} bytes"
            )),
        );
        return (File { id: file, items }, diags);
    }
    // Fast path: a file that parses as a whole is lowered in one go. Only a file with errors
    // is cut into items and parsed item by item, so that every error is found.
    if nesting_error(file, text, 0).is_none()
        && let Ok(mut pairs) = PolicyParser::parse(Rule::file, text)
        && let Some(top) = pairs.next()
    {
        let mut lower = Lower {
            file,
            base: 0,
            diags: &mut diags,
        };
        for pair in top.into_inner() {
            if pair.as_rule() == Rule::EOI {
                continue;
            }
            if let Some(item) = lower.item(pair) {
                items.push(item);
            }
        }
        return (File { id: file, items }, diags);
    }
    let (chunks, stray) = split_items(text);
    for (start, end) in stray {
        diags.push(
            Diagnostic::new(
                Code::Syntax,
                Span::new(file, start, end),
                "expected an item: `pack`, `import`, `const`, `set`, `fn`, `rule`, `waiver` or `test`",
            )
            .label("not part of any item")
            .help("every definition starts with one of those keywords at the top level"),
        );
    }
    for (start, end) in chunks {
        let chunk = &text[start..end];
        if let Some(d) = nesting_error(file, chunk, start) {
            diags.push(d);
            continue;
        }
        match PolicyParser::parse(Rule::item_only, chunk) {
            Ok(mut pairs) => {
                let Some(top) = pairs.next() else { continue };
                let mut lower = Lower {
                    file,
                    base: start,
                    diags: &mut diags,
                };
                for pair in top.into_inner() {
                    if pair.as_rule() == Rule::EOI {
                        continue;
                    }
                    if let Some(item) = lower.item(pair) {
                        items.push(item);
                    }
                }
            }
            Err(e) => diags.push(syntax_error(file, start, chunk, &e)),
        }
    }
    (File { id: file, items }, diags)
}

/// Measurement aid: parses a file with pest only (no syntax tree) and counts the tokens.
#[doc(hidden)]
pub fn pest_tokens(text: &str) -> usize {
    PolicyParser::parse(Rule::file, text).map_or(0, |p| p.flatten().count())
}

/// Parses a standalone expression (message template holes, tests).
pub fn parse_expr(file: FileId, base: usize, text: &str) -> Result<Expr, Diagnostic> {
    if let Some(d) = nesting_error(file, text, base) {
        return Err(d);
    }
    let mut pairs =
        PolicyParser::parse(Rule::expr, text).map_err(|e| syntax_error(file, base, text, &e))?;
    let pair = pairs.next().ok_or_else(|| {
        Diagnostic::new(
            Code::Syntax,
            Span::new(file, base, base + text.len()),
            "expected an expression",
        )
    })?;
    let consumed = pair.as_span().end();
    if text[consumed..].trim().is_empty() {
        let mut diags = Vec::new();
        let mut lower = Lower {
            file,
            base,
            diags: &mut diags,
        };
        let e = lower.expr(pair);
        match diags.into_iter().next() {
            Some(d) => Err(d),
            None => Ok(e),
        }
    } else {
        let at = base + consumed + (text[consumed..].len() - text[consumed..].trim_start().len());
        Err(Diagnostic::new(
            Code::Syntax,
            Span::new(file, at, base + text.trim_end().len()),
            "unexpected text after the expression",
        )
        .label("not understood")
        .help("an interpolation `{…}` holds exactly one expression"))
    }
}

const ITEM_KEYWORDS: [&str; 8] = [
    "pack", "import", "const", "set", "fn", "rule", "waiver", "test",
];

fn keyword_at(text: &str, i: usize) -> Option<&'static str> {
    let rest = &text[i..];
    ITEM_KEYWORDS.into_iter().find(|kw| {
        rest.starts_with(kw)
            && rest[kw.len()..]
                .chars()
                .next()
                .is_some_and(|c| !(c.is_ascii_alphanumeric() || c == '_'))
    })
}

/// Cuts a file into item chunks; also returns stray text that belongs to no item.
/// Byte ranges `start..end`.
type Ranges = Vec<(usize, usize)>;

fn split_items(text: &str) -> (Ranges, Ranges) {
    let bytes = text.as_bytes();
    let mut starts = Vec::new();
    let mut stray = Vec::new();
    let mut depth: i32 = 0;
    let mut i = 0;
    let mut line_start = true;
    let mut column = 0usize;
    let mut in_item = false;
    let mut stray_start: Option<usize> = None;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\n' {
            line_start = true;
            column = 0;
            i += 1;
            continue;
        }
        if c == b'/' && bytes.get(i + 1) == Some(&b'/') {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            column += 1;
            continue;
        }
        let at_line_start = line_start;
        line_start = false;
        if at_line_start && let Some(kw) = keyword_at(text, i) {
            // A keyword at column 0 inside brackets most likely follows a missing `}`: start
            // a new item there so that the rest of the file is still checked. (`rule` is also a
            // waiver field, so only `rule NAME {` counts.)
            let restart =
                depth > 0 && column == 0 && (kw != "rule" || looks_like_rule_decl(&text[i..]));
            if depth == 0 || restart {
                depth = 0;
                if let Some(s) = stray_start.take() {
                    stray.push((s, i));
                }
                starts.push(i);
                in_item = true;
                i += kw.len();
                column += kw.len();
                continue;
            }
        }
        if !in_item && stray_start.is_none() {
            stray_start = Some(i);
        }
        match c {
            b'"' => {
                let raw = i > 0 && bytes[i - 1] == b'r';
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    if !raw && bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'{' | b'(' | b'[' => depth += 1,
            b'}' | b')' | b']' => depth = (depth - 1).max(0),
            _ => {}
        }
        i += 1;
        column += 1;
    }
    if let Some(s) = stray_start {
        stray.push((s, text.len()));
    }
    let mut chunks = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let e = starts.get(k + 1).copied().unwrap_or(text.len());
        chunks.push((s, e));
    }
    (chunks, stray)
}

fn looks_like_rule_decl(s: &str) -> bool {
    let rest = s["rule".len()..].trim_start();
    let name_len = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .count();
    name_len > 0 && rest[name_len..].trim_start().starts_with('{')
}

/// Refuses input nested deeper than the parser may recurse.
fn nesting_error(file: FileId, text: &str, base: usize) -> Option<Diagnostic> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut prev = 0u8;
    for (i, c) in text.bytes().enumerate() {
        if in_string {
            if c == b'"' && prev != b'\\' {
                in_string = false;
            }
        } else {
            match c {
                b'"' => in_string = true,
                b'(' | b'[' | b'{' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Some(
                            Diagnostic::new(
                                Code::TooLarge,
                                Span::new(file, base + i, base + i + 1),
                                format!("brackets nested more than {MAX_NESTING} deep"),
                            )
                            .label("too deep")
                            .help("split the expression with `let` bindings or functions"),
                        );
                    }
                }
                b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        prev = if prev == b'\\' && c == b'\\' { 0 } else { c };
    }
    None
}

/// Readable names of grammar rules, for "expected …" messages.
fn rule_name(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::EOI => "end of input",
        Rule::string | Rule::plain_string | Rule::raw_string => "a string",
        Rule::int => "an integer",
        Rule::ident => "a name",
        Rule::word => "a field name",
        Rule::expr
        | Rule::paren
        | Rule::call
        | Rule::call_args
        | Rule::quantifier
        | Rule::has_expr => "an expression",
        Rule::bool_lit => "`true` or `false`",
        Rule::list_lit => "a list `[…]`",
        Rule::record_lit => "a record `{…}`",
        Rule::type_expr | Rule::type_name | Rule::list_type | Rule::set_type => {
            "a type (`bool`, `int`, `string`, `semver`, `list<…>`, `set<…>`)"
        }
        Rule::effect => "`deny`, `warn` or `info`",
        Rule::mode => "`enforce`, `audit` or `advisory`",
        Rule::severity => "`critical`, `high`, `medium` or `low`",
        Rule::decision => "`deny`, `warn` or `pass`",
        Rule::effect_field => "`effect`",
        Rule::mode_field => "`mode`",
        Rule::severity_field => "`severity`",
        Rule::tags_field => "`tags`",
        Rule::let_field => "`let`",
        Rule::when_field => "`when`",
        Rule::message_field => "`message`",
        Rule::fix_field => "`fix`",
        Rule::docs_field => "`docs`",
        Rule::waiver_rule => "`rule`",
        Rule::waiver_plugin => "`plugin`",
        Rule::waiver_publisher => "`publisher`",
        Rule::waiver_reason => "`reason`",
        Rule::waiver_approver => "`approver`",
        Rule::waiver_expires => "`expires`",
        Rule::test_input | Rule::test_input_file => "`input`",
        Rule::test_now => "`now`",
        Rule::expect_decision | Rule::expect_fired => "`expect`",
        Rule::pack_decl => "`pack`",
        Rule::import_decl => "`import`",
        Rule::const_decl => "`const`",
        Rule::set_decl => "`set`",
        Rule::fn_decl => "`fn`",
        Rule::rule_decl => "`rule`",
        Rule::waiver_decl => "`waiver`",
        Rule::test_decl => "`test`",
        Rule::or_op => "`or`",
        Rule::and_op => "`and`",
        Rule::in_op => "`in`",
        Rule::not_in_op => "`not in`",
        Rule::not_op => "`not`",
        Rule::eq_op => "`==`",
        Rule::ne_op => "`!=`",
        Rule::le_op => "`<=`",
        Rule::ge_op => "`>=`",
        Rule::lt_op => "`<`",
        Rule::gt_op => "`>`",
        Rule::default_op => "`??`",
        Rule::add_op => "`+`",
        Rule::sub_op | Rule::neg_op => "`-`",
        Rule::mul_op => "`*`",
        Rule::div_op => "`/`",
        Rule::rem_op => "`%`",
        Rule::field_access => "`.field`",
        Rule::kw_version => "`version`",
        Rule::kw_language => "`language`",
        Rule::kw_facts => "`facts`",
        Rule::kw_in => "`in`",
        Rule::kw_where => "`where`",
        Rule::kw_file => "`file`",
        Rule::kw_decision => "`decision`",
        Rule::kw_fired => "`fired`",
        _ => return None,
    })
}

fn syntax_error(file: FileId, base: usize, text: &str, e: &pest::error::Error<Rule>) -> Diagnostic {
    let pos = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let found: String = text[pos.min(text.len())..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .take(20)
        .collect();
    let end = pos + found.len().max(1).min(text.len().saturating_sub(pos));
    let expected = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let mut names: Vec<&str> = positives.iter().filter_map(|r| rule_name(*r)).collect();
            // The ways an expression can start read better as one.
            const STARTS: [&str; 9] = [
                "`-`",
                "`not`",
                "`true` or `false`",
                "a list `[…]`",
                "a name",
                "a record `{…}`",
                "a string",
                "an integer",
                "an expression",
            ];
            if names.iter().filter(|n| STARTS.contains(n)).count() > 2 {
                names.retain(|n| !STARTS.contains(n));
                names.push("an expression");
            }
            names.sort_unstable();
            names.dedup();
            names
        }
        ErrorVariant::CustomError { .. } => Vec::new(),
    };
    let expected_text = match expected.as_slice() {
        [] => "something else".to_owned(),
        [one] => (*one).to_owned(),
        many => format!("one of {}", many.join(", ")),
    };
    let found_text = if found.is_empty() {
        "the end of the item".to_owned()
    } else {
        format!("`{found}`")
    };
    let help = if found == "}" || found.is_empty() {
        "check for a missing or extra bracket, or an unfinished expression".to_owned()
    } else {
        format!("write {expected_text} here")
    };
    Diagnostic::new(
        Code::Syntax,
        Span::new(file, base + pos, base + end.max(pos)),
        format!("expected {expected_text}, found {found_text}"),
    )
    .label(format!("expected {expected_text}"))
    .help(help)
}

struct Lower<'d> {
    file: FileId,
    base: usize,
    diags: &'d mut Vec<Diagnostic>,
}

impl Lower<'_> {
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        Span::new(self.file, self.base + s.start(), self.base + s.end())
    }

    /// A field name: any word.
    fn word(&self, pair: Pair<'_, Rule>) -> Ident {
        Node::new(Name::new(pair.as_str()), self.span(&pair))
    }

    fn ident(&mut self, pair: Pair<'_, Rule>) -> Ident {
        let span = self.span(&pair);
        let name = pair.as_str();
        if RESERVED.contains(&name) {
            self.diags.push(
                Diagnostic::new(Code::Syntax, span, format!("`{name}` is a reserved word"))
                    .label("not a name")
                    .help("choose another name; `and or not in has where true false` are part of the language"),
            );
        }
        Node::new(Name::new(name), span)
    }

    fn string(&mut self, pair: Pair<'_, Rule>) -> Node<String> {
        let span = self.span(&pair);
        let inner = pair.into_inner().next();
        let text = match inner {
            Some(p) if p.as_rule() == Rule::raw_string => {
                let s = p.as_str();
                s[2..s.len() - 1].to_owned()
            }
            Some(p) => {
                let s = p.as_str();
                unescape(&s[1..s.len() - 1])
            }
            None => String::new(),
        };
        Node::new(text, span)
    }

    fn int(&mut self, pair: Pair<'_, Rule>) -> Node<i64> {
        let span = self.span(&pair);
        match pair.as_str().parse::<i64>() {
            Ok(v) => Node::new(v, span),
            Err(_) => {
                self.diags.push(
                    Diagnostic::new(
                        Code::NumberRange,
                        span,
                        format!("the number `{}` is too large", pair.as_str()),
                    )
                    .label("out of range")
                    .help("integers are 64-bit: at most 9223372036854775807"),
                );
                Node::new(0, span)
            }
        }
    }

    fn item(&mut self, pair: Pair<'_, Rule>) -> Option<Item> {
        let span = self.span(&pair);
        Some(match pair.as_rule() {
            Rule::pack_decl => {
                let mut it = pair.into_inner().filter(|p| !is_kw(p.as_rule()));
                let name = self.string(it.next()?);
                let version = self.string(it.next()?);
                let lang = self.int(it.next()?);
                let facts = it.next().map(|w| {
                    let span = self.span(&w);
                    Node::new(w.as_str().to_owned(), span)
                });
                Item::Pack(PackDecl {
                    name,
                    version,
                    language: Node::new(u64::try_from(lang.node).unwrap_or(0), lang.span),
                    facts,
                    span: span.into(),
                })
            }
            Rule::import_decl => {
                let p = pair.into_inner().find(|p| p.as_rule() == Rule::string)?;
                Item::Import(self.string(p))
            }
            Rule::const_decl => {
                let mut name = None;
                let mut ty = None;
                let mut value = None;
                for p in pair.into_inner() {
                    match p.as_rule() {
                        Rule::ident => name = Some(self.ident(p)),
                        Rule::type_expr => ty = Some(self.type_expr(p)),
                        Rule::expr => value = Some(self.expr(p)),
                        _ => {}
                    }
                }
                Item::Const(ConstDecl {
                    name: name?,
                    ty,
                    value: value?,
                })
            }
            Rule::set_decl => {
                let mut name = None;
                let mut items = None;
                for p in pair.into_inner() {
                    match p.as_rule() {
                        Rule::ident => name = Some(self.ident(p)),
                        Rule::list_lit => {
                            let s = self.span(&p);
                            let elems = p.into_inner().map(|e| self.expr(e)).collect();
                            items = Some(Node::new(elems, s));
                        }
                        _ => {}
                    }
                }
                Item::Set(SetDecl {
                    name: name?,
                    items: items?,
                })
            }
            Rule::fn_decl => {
                let mut name = None;
                let mut params = Vec::new();
                let mut ret = None;
                let mut body = None;
                for p in pair.into_inner() {
                    match p.as_rule() {
                        Rule::ident => name = Some(self.ident(p)),
                        Rule::params => {
                            for param in p.into_inner() {
                                let mut it = param.into_inner();
                                let n = self.ident(it.next()?);
                                let t = self.type_expr(it.next()?);
                                params.push(Param { name: n, ty: t });
                            }
                        }
                        Rule::type_expr => ret = Some(self.type_expr(p)),
                        Rule::expr => body = Some(self.expr(p)),
                        _ => {}
                    }
                }
                Item::Fn(FnDecl {
                    name: name?,
                    params,
                    ret: ret?,
                    body: body?,
                })
            }
            Rule::rule_decl => Item::Rule(self.rule(pair, span)?),
            Rule::waiver_decl => Item::Waiver(self.waiver(pair, span)?),
            Rule::test_decl => Item::Test(self.test(pair, span)?),
            _ => return None,
        })
    }

    fn rule(&mut self, pair: Pair<'_, Rule>, span: Span) -> Option<RuleDecl> {
        let mut it = pair.into_inner().filter(|p| !is_kw(p.as_rule()));
        let id = self.ident(it.next()?);
        let mut r = RuleDecl {
            id,
            effect: None,
            mode: None,
            severity: None,
            tags: None,
            lets: Vec::new(),
            when: None,
            message: None,
            fix: None,
            docs: None,
            repeated: Vec::new(),
            span: span.into(),
        };
        for field in it {
            let fspan = self.span(&field);
            let rule = field.as_rule();
            let mut let_rest = field.into_inner().filter(|p| !is_kw(p.as_rule()));
            let value = let_rest.next();
            macro_rules! set_once {
                ($slot:expr, $name:literal, $val:expr) => {{
                    if $slot.is_some() {
                        r.repeated.push(($name, fspan.into()));
                    } else {
                        $slot = Some($val);
                    }
                }};
            }
            match rule {
                Rule::effect_field => {
                    let v = value?;
                    let e = match v.as_str() {
                        "deny" => Effect::Deny,
                        "warn" => Effect::Warn,
                        _ => Effect::Info,
                    };
                    set_once!(r.effect, "effect", Node::new(e, self.span(&v)));
                }
                Rule::mode_field => {
                    let v = value?;
                    let m = match v.as_str() {
                        "enforce" => Mode::Enforce,
                        "audit" => Mode::Audit,
                        _ => Mode::Advisory,
                    };
                    set_once!(r.mode, "mode", Node::new(m, self.span(&v)));
                }
                Rule::severity_field => {
                    let v = value?;
                    let s = match v.as_str() {
                        "critical" => Severity::Critical,
                        "high" => Severity::High,
                        "medium" => Severity::Medium,
                        _ => Severity::Low,
                    };
                    set_once!(r.severity, "severity", Node::new(s, self.span(&v)));
                }
                Rule::tags_field => {
                    let mut tags = Vec::new();
                    for p in value.into_iter().chain(let_rest.by_ref()) {
                        tags.push(self.string(p));
                    }
                    set_once!(r.tags, "tags", Node::new(tags, fspan));
                }
                Rule::let_field => {
                    // `let` NAME = EXPR: the first pair is the name, the second the expression.
                    if let (Some(name), Some(expr)) = (value, let_rest.next()) {
                        let name = self.ident(name);
                        let e = self.expr(expr);
                        r.lets.push((name, e));
                    }
                }
                Rule::when_field => {
                    let e = self.expr(value?);
                    set_once!(r.when, "when", e);
                }
                Rule::message_field => {
                    let t = self.template(value?);
                    set_once!(r.message, "message", t);
                }
                Rule::fix_field => {
                    let t = self.template(value?);
                    set_once!(r.fix, "fix", t);
                }
                Rule::docs_field => {
                    let s = self.string(value?);
                    set_once!(r.docs, "docs", s);
                }
                _ => {}
            }
        }
        Some(r)
    }

    fn waiver(&mut self, pair: Pair<'_, Rule>, span: Span) -> Option<WaiverDecl> {
        let mut it = pair.into_inner().filter(|p| !is_kw(p.as_rule()));
        let name = self.string(it.next()?);
        let mut w = WaiverDecl {
            name,
            rule: None,
            subject: None,
            reason: None,
            approver: None,
            expires: None,
            repeated: Vec::new(),
            span: span.into(),
        };
        for field in it {
            let fspan = self.span(&field);
            let rule = field.as_rule();
            let value = field.into_inner().find(|p| !is_kw(p.as_rule()))?;
            macro_rules! set_once {
                ($slot:expr, $name:literal, $val:expr) => {{
                    if $slot.is_some() {
                        w.repeated.push(($name, fspan.into()));
                    } else {
                        $slot = Some($val);
                    }
                }};
            }
            match rule {
                Rule::waiver_rule => set_once!(w.rule, "rule", self.ident(value)),
                Rule::waiver_plugin => {
                    let s = self.string(value);
                    set_once!(
                        w.subject,
                        "plugin or publisher",
                        Node::new(WaiverSubject::Plugin(s.node), s.span)
                    );
                }
                Rule::waiver_publisher => {
                    let s = self.string(value);
                    set_once!(
                        w.subject,
                        "plugin or publisher",
                        Node::new(WaiverSubject::Publisher(s.node), s.span)
                    );
                }
                Rule::waiver_reason => set_once!(w.reason, "reason", self.string(value)),
                Rule::waiver_approver => set_once!(w.approver, "approver", self.string(value)),
                Rule::waiver_expires => set_once!(w.expires, "expires", self.string(value)),
                _ => {}
            }
        }
        Some(w)
    }

    fn test(&mut self, pair: Pair<'_, Rule>, span: Span) -> Option<TestDecl> {
        let mut it = pair.into_inner().filter(|p| !is_kw(p.as_rule()));
        let name = self.string(it.next()?);
        let mut t = TestDecl {
            name,
            input: None,
            now: None,
            expect_decision: None,
            expect_fired: None,
            repeated: Vec::new(),
            span: span.into(),
        };
        for field in it {
            let fspan = self.span(&field);
            let rule = field.as_rule();
            let mut values = field.into_inner().filter(|p| !is_kw(p.as_rule()));
            macro_rules! set_once {
                ($slot:expr, $name:literal, $val:expr) => {{
                    if $slot.is_some() {
                        t.repeated.push(($name, fspan.into()));
                    } else {
                        $slot = Some($val);
                    }
                }};
            }
            match rule {
                Rule::test_input => {
                    let e = self.expr_from_record(values.next()?);
                    set_once!(t.input, "input", Node::new(TestInput::Inline(e), fspan));
                }
                Rule::test_input_file => {
                    let s = self.string(values.next()?);
                    set_once!(t.input, "input", Node::new(TestInput::File(s.node), fspan));
                }
                Rule::test_now => set_once!(t.now, "now", self.string(values.next()?)),
                Rule::expect_decision => {
                    let v = values.next()?;
                    let d = match v.as_str() {
                        "deny" => Decision::Deny,
                        "warn" => Decision::Warn,
                        _ => Decision::Pass,
                    };
                    set_once!(
                        t.expect_decision,
                        "expect decision",
                        Node::new(d, self.span(&v))
                    );
                }
                Rule::expect_fired => {
                    let ids = values.map(|p| self.ident(p)).collect();
                    set_once!(t.expect_fired, "expect fired", Node::new(ids, fspan));
                }
                _ => {}
            }
        }
        Some(t)
    }

    fn type_expr(&mut self, pair: Pair<'_, Rule>) -> Node<TypeExpr> {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let base = match inner.next() {
            Some(p) => match p.as_rule() {
                Rule::list_type => {
                    let t = p.into_inner().find(|q| q.as_rule() == Rule::type_expr);
                    TypeExpr::List(Box::new(
                        t.map_or(Node::new(TypeExpr::Bool, span), |t| self.type_expr(t)),
                    ))
                }
                Rule::set_type => {
                    let t = p.into_inner().find(|q| q.as_rule() == Rule::type_expr);
                    TypeExpr::Set(Box::new(
                        t.map_or(Node::new(TypeExpr::Bool, span), |t| self.type_expr(t)),
                    ))
                }
                _ => match p.as_str() {
                    "bool" => TypeExpr::Bool,
                    "int" => TypeExpr::Int,
                    "string" => TypeExpr::String,
                    _ => TypeExpr::Semver,
                },
            },
            None => TypeExpr::Bool,
        };
        if inner.next().is_some() {
            let b = Node::new(base, span);
            Node::new(TypeExpr::Optional(Box::new(b)), span)
        } else {
            Node::new(base, span)
        }
    }

    fn template(&mut self, pair: Pair<'_, Rule>) -> Template {
        let raw = self.string(pair.clone());
        // Holes are found in the source text (escapes `\{` and `\}` are literal braces).
        let src = pair.as_str();
        let src_start = self.base + pair.as_span().start();
        let is_raw = src.starts_with('r');
        let body_off = if is_raw { 2 } else { 1 };
        let body = &src[body_off..src.len().saturating_sub(1)];
        let mut parts = Vec::new();
        let mut text = String::new();
        let bytes = body.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            if !is_raw && c == b'\\' && i + 1 < bytes.len() {
                let next = body[i + 1..].chars().next().unwrap_or(' ');
                text.push_str(&unescape(&body[i..i + 1 + next.len_utf8()]));
                i += 1 + next.len_utf8();
                continue;
            }
            if c == b'{' {
                let Some(close) = body[i + 1..].find('}') else {
                    let at = src_start + body_off + i;
                    self.diags.push(
                        Diagnostic::new(
                            Code::Syntax,
                            Span::new(self.file, at, at + 1),
                            "unclosed `{` in a message",
                        )
                        .label("this `{` starts an interpolation")
                        .help("close it with `}`, or write `\\{` for a literal brace"),
                    );
                    break;
                };
                if !text.is_empty() {
                    parts.push(TemplatePart::Text(std::mem::take(&mut text)));
                }
                let hole_src = &body[i + 1..i + 1 + close];
                // Inside a (non-raw) message string, `\"` and `\\` stand for `"` and `\`.
                let hole = if is_raw {
                    hole_src.to_owned()
                } else {
                    hole_src
                        .replace("\\\\", "\u{0}")
                        .replace("\\\"", "\"")
                        .replace('\u{0}', "\\")
                };
                let hole_base = src_start + body_off + i + 1;
                match parse_expr(self.file, hole_base, &hole) {
                    Ok(e) => parts.push(TemplatePart::Expr(e)),
                    Err(d) => self.diags.push(d),
                }
                i += close + 2;
                continue;
            }
            let ch = body[i..].chars().next().unwrap_or(' ');
            text.push(ch);
            i += ch.len_utf8();
        }
        if !text.is_empty() {
            parts.push(TemplatePart::Text(text));
        }
        Template { raw, parts }
    }

    fn expr_from_record(&mut self, pair: Pair<'_, Rule>) -> Expr {
        self.primary(pair)
    }

    fn expr(&mut self, pair: Pair<'_, Rule>) -> Expr {
        let this = std::cell::RefCell::new(self);
        PRATT
            .map_primary(|p| this.borrow_mut().primary(p))
            .map_prefix(|op, rhs| {
                let lower = this.borrow();
                let span = lower.span(&op).to(rhs.span);
                let op = if op.as_rule() == Rule::not_op {
                    UnOp::Not
                } else {
                    UnOp::Neg
                };
                Node::new(ExprKind::Unary(op, Box::new(rhs)), span)
            })
            .map_postfix(|lhs, op| {
                let lower = this.borrow();
                let span = lhs.span.to(lower.span(&op));
                // The token is `.name`: the name starts one byte in.
                let whole = lower.span(&op);
                let name = Node::new(
                    Name::new(&op.as_str()[1..]),
                    Span::new(whole.file, whole.start as usize + 1, whole.end as usize),
                );
                Node::new(ExprKind::Field(Box::new(lhs), name), span)
            })
            .map_infix(|lhs, op, rhs| {
                let span = lhs.span.to(rhs.span);
                let op = match op.as_rule() {
                    Rule::or_op => BinOp::Or,
                    Rule::and_op => BinOp::And,
                    Rule::eq_op => BinOp::Eq,
                    Rule::ne_op => BinOp::Ne,
                    Rule::lt_op => BinOp::Lt,
                    Rule::le_op => BinOp::Le,
                    Rule::gt_op => BinOp::Gt,
                    Rule::ge_op => BinOp::Ge,
                    Rule::in_op => BinOp::In,
                    Rule::not_in_op => BinOp::NotIn,
                    Rule::default_op => BinOp::Default,
                    Rule::add_op => BinOp::Add,
                    Rule::sub_op => BinOp::Sub,
                    Rule::mul_op => BinOp::Mul,
                    Rule::div_op => BinOp::Div,
                    _ => BinOp::Rem,
                };
                Node::new(ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), span)
            })
            .parse(pair.into_inner())
    }

    fn primary(&mut self, pair: Pair<'_, Rule>) -> Expr {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::paren => {
                return match pair.into_inner().next() {
                    Some(e) => {
                        let inner = self.expr(e);
                        Node::new(inner.node, span)
                    }
                    None => Node::new(ExprKind::Bool(false), span),
                };
            }
            Rule::bool_lit => ExprKind::Bool(pair.as_str().starts_with('t')),
            Rule::int => ExprKind::Int(self.int(pair).node),
            Rule::string => ExprKind::Str(self.string(pair).node),
            Rule::ident => ExprKind::Name(Name::new(pair.as_str())),
            Rule::quantifier => {
                let mut it = pair.into_inner().filter(|p| !is_kw(p.as_rule()));
                let kind = match it.next().map(|p| p.as_str().to_owned()).as_deref() {
                    Some("any") => QuantKind::Any,
                    Some("all") => QuantKind::All,
                    Some("none") => QuantKind::None,
                    Some("count") => QuantKind::Count,
                    _ => QuantKind::Filter,
                };
                let (Some(var), Some(list), Some(body)) = (it.next(), it.next(), it.next()) else {
                    return Node::new(ExprKind::Bool(false), span);
                };
                let var = self.ident(var);
                let list = self.expr(list);
                let body = self.expr(body);
                ExprKind::Quant(kind, var, Box::new(list), Box::new(body))
            }
            Rule::has_expr => {
                let mut path = Vec::new();
                for (i, p) in pair
                    .into_inner()
                    .filter(|p| !is_kw(p.as_rule()))
                    .enumerate()
                {
                    path.push(if i == 0 { self.ident(p) } else { self.word(p) });
                }
                ExprKind::Has(path)
            }
            Rule::call => {
                let mut it = pair.into_inner();
                let Some(name) = it.next() else {
                    return Node::new(ExprKind::Bool(false), span);
                };
                let name = self.ident(name);
                match it.next() {
                    Some(args) => {
                        let args = args.into_inner().map(|a| self.expr(a)).collect();
                        ExprKind::Call(name, args)
                    }
                    // Without arguments the pair also holds the space after the name.
                    None => return Node::new(ExprKind::Name(name.node), name.span),
                }
            }
            Rule::list_lit => ExprKind::List(pair.into_inner().map(|e| self.expr(e)).collect()),
            Rule::record_lit => {
                let mut entries = Vec::new();
                for entry in pair.into_inner() {
                    let mut it = entry.into_inner();
                    let (Some(k), Some(v)) = (it.next(), it.next()) else {
                        continue;
                    };
                    let key = if k.as_rule() == Rule::string {
                        self.string(k)
                    } else {
                        let w = self.word(k);
                        Node::new(w.node.to_string(), w.span)
                    };
                    entries.push((key, self.expr(v)));
                }
                ExprKind::Record(entries)
            }
            Rule::expr => return self.expr(pair),
            _ => ExprKind::Bool(false),
        };
        Node::new(kind, span)
    }
}

/// Keyword tokens carry no information once parsed.
fn is_kw(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::kw_pack
            | Rule::kw_version
            | Rule::kw_language
            | Rule::kw_facts
            | Rule::kw_import
            | Rule::kw_const
            | Rule::kw_set
            | Rule::kw_fn
            | Rule::kw_rule
            | Rule::kw_effect
            | Rule::kw_mode
            | Rule::kw_severity
            | Rule::kw_tags
            | Rule::kw_let
            | Rule::kw_when
            | Rule::kw_message
            | Rule::kw_fix
            | Rule::kw_docs
            | Rule::kw_waiver
            | Rule::kw_plugin
            | Rule::kw_publisher
            | Rule::kw_reason
            | Rule::kw_approver
            | Rule::kw_expires
            | Rule::kw_test
            | Rule::kw_input
            | Rule::kw_file
            | Rule::kw_now
            | Rule::kw_expect
            | Rule::kw_decision
            | Rule::kw_fired
            | Rule::kw_list
            | Rule::kw_in
            | Rule::kw_where
            | Rule::kw_has
    )
}

/// Resolves `\"`, `\\`, `\n`, `\t`, `\{`, `\}`; any other escaped character stands for itself.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}
