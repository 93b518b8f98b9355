//! The typed syntax tree of a policy file. Every node carries its span (ignored by equality).

use crate::span::{FileId, Loc, Node};

/// A name: short names are stored inline (no allocation), and clones are cheap.
pub type Name = smol_str::SmolStr;

/// A name as written.
pub type Ident = Node<Name>;

/// One parsed file.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub id: FileId,
    pub items: Vec<Item>,
}

/// A top-level item.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Pack(PackDecl),
    Import(Node<String>),
    Const(ConstDecl),
    Set(SetDecl),
    Fn(FnDecl),
    Rule(RuleDecl),
    Waiver(WaiverDecl),
    Test(TestDecl),
}

/// `pack "name" version "1.0.0" language 1`
#[derive(Debug, Clone, PartialEq)]
pub struct PackDecl {
    pub name: Node<String>,
    pub version: Node<String>,
    pub language: Node<u64>,
    /// The facts the pack judges (`facts rollout`); a submission's when absent.
    pub facts: Option<Node<String>>,
    pub span: Loc,
}

/// `const name: type = expr`
#[derive(Debug, Clone, PartialEq)]
pub struct ConstDecl {
    pub name: Ident,
    pub ty: Option<Node<TypeExpr>>,
    pub value: Expr,
}

/// `set name = [..]`
#[derive(Debug, Clone, PartialEq)]
pub struct SetDecl {
    pub name: Ident,
    pub items: Node<Vec<Expr>>,
}

/// `fn name(params) -> type = body`
#[derive(Debug, Clone, PartialEq)]
pub struct FnDecl {
    pub name: Ident,
    pub params: Vec<Param>,
    pub ret: Node<TypeExpr>,
    pub body: Expr,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: Ident,
    pub ty: Node<TypeExpr>,
}

/// A type as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TypeExpr {
    Bool,
    Int,
    String,
    Semver,
    List(Box<Node<TypeExpr>>),
    Set(Box<Node<TypeExpr>>),
    Optional(Box<Node<TypeExpr>>),
}

/// What a rule does when it fires.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Deny,
    Warn,
    Info,
}

impl Effect {
    /// The effect's name, as policies and the wire spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Deny => "deny",
            Effect::Warn => "warn",
            Effect::Info => "info",
        }
    }
}

/// Whether a rule's findings count toward the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Counts toward the decision.
    Enforce,
    /// Recorded in the verdict, never blocks.
    Audit,
    /// Shown as advice, never blocks.
    Advisory,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

/// A rule. Fields are optional in the tree; the checker reports what is missing.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleDecl {
    pub id: Ident,
    pub effect: Option<Node<Effect>>,
    pub mode: Option<Node<Mode>>,
    pub severity: Option<Node<Severity>>,
    pub tags: Option<Node<Vec<Node<String>>>>,
    pub lets: Vec<(Ident, Expr)>,
    pub when: Option<Expr>,
    pub message: Option<Template>,
    pub fix: Option<Template>,
    pub docs: Option<Node<String>>,
    /// Fields given more than once: (field name, span of the repeat).
    pub repeated: Vec<(&'static str, Loc)>,
    pub span: Loc,
}

/// A string with `{expr}` holes.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub raw: Node<String>,
    pub parts: Vec<TemplatePart>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TemplatePart {
    Text(String),
    Expr(Expr),
}

/// Who a waiver covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaiverSubject {
    Plugin(String),
    Publisher(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct WaiverDecl {
    pub name: Node<String>,
    pub rule: Option<Ident>,
    pub subject: Option<Node<WaiverSubject>>,
    pub reason: Option<Node<String>>,
    pub approver: Option<Node<String>>,
    pub expires: Option<Node<String>>,
    pub repeated: Vec<(&'static str, Loc)>,
    pub span: Loc,
}

/// The decision a test expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Pass,
    Warn,
    Deny,
}

impl Decision {
    /// The decision's name, as the wire, the ledger and the command line spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Pass => "pass",
            Decision::Warn => "warn",
            Decision::Deny => "deny",
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TestInput {
    /// A record literal.
    Inline(Expr),
    /// A JSON file, relative to the policy file.
    File(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TestDecl {
    pub name: Node<String>,
    pub input: Option<Node<TestInput>>,
    /// The evaluation date (`YYYY-MM-DD`), for waiver expiry; defaults to the run's date.
    pub now: Option<Node<String>>,
    pub expect_decision: Option<Node<Decision>>,
    pub expect_fired: Option<Node<Vec<Ident>>>,
    pub repeated: Vec<(&'static str, Loc)>,
    pub span: Loc,
}

/// An expression.
pub type Expr = Node<ExprKind>;

#[derive(Debug, Clone, PartialEq, Hash)]
pub enum ExprKind {
    Bool(bool),
    Int(i64),
    Str(String),
    /// A name: `input`, a constant, a set, a binding, a parameter.
    Name(Name),
    /// `expr.field`
    Field(Box<Expr>, Ident),
    /// `has a.b.c`
    Has(Vec<Ident>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Call(Ident, Vec<Expr>),
    Quant(QuantKind, Ident, Box<Expr>, Box<Expr>),
    List(Vec<Expr>),
    Record(Vec<(Node<String>, Expr)>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnOp {
    Not,
    Neg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    Default,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::NotIn => "not in",
            BinOp::Default => "??",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
        }
    }

    /// Binding strength; higher binds tighter.
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And => 2,
            BinOp::Eq
            | BinOp::Ne
            | BinOp::Lt
            | BinOp::Le
            | BinOp::Gt
            | BinOp::Ge
            | BinOp::In
            | BinOp::NotIn => 3,
            BinOp::Default => 4,
            BinOp::Add | BinOp::Sub => 5,
            BinOp::Mul | BinOp::Div | BinOp::Rem => 6,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuantKind {
    Any,
    All,
    None,
    Count,
    Filter,
}

impl QuantKind {
    pub fn name(self) -> &'static str {
        match self {
            QuantKind::Any => "any",
            QuantKind::All => "all",
            QuantKind::None => "none",
            QuantKind::Count => "count",
            QuantKind::Filter => "filter",
        }
    }
}
