//! The built-in functions: one table ([`BUILTINS`]) says each function's name, how it is
//! called, what it does, how many arguments it takes and of which types, and what it compiles
//! to. The checker, the "did you mean" suggestions, the language reference and the editor all
//! read it; nothing else lists the functions.

use std::sync::Arc;

use super::*;

/// How many arguments a function takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    Exactly(usize),
    AtLeast(usize),
}

impl Arity {
    fn admits(self, n: usize) -> bool {
        match self {
            Arity::Exactly(k) => n == k,
            Arity::AtLeast(k) => n >= k,
        }
    }
}

/// What an argument must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arg {
    Str,
    Int,
    Semver,
    /// A string, a list or a set (anything with a length).
    Sized,
    /// Checked by the function's own rule (see [`Compile`]).
    Any,
}

/// What a simple function returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ret {
    Bool,
    Int,
    Str,
    StrList,
}

impl Ret {
    fn ty(self) -> Type {
        match self {
            Ret::Bool => Type::Bool,
            Ret::Int => Type::Int,
            Ret::Str => Type::Str,
            Ret::StrList => Type::list(Type::Str),
        }
    }
}

/// What a call compiles to once its arguments are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compile {
    /// The operation, and its result type.
    Op(Builtin, Ret),
    /// `contains(list, item)` (membership) or `contains(text, part)`.
    Contains,
    /// `matches(text, pattern)`: the pattern is compiled now.
    Matches,
    /// `semver(text)`: computed now when the text is constant.
    Semver,
    /// `satisfies(version, range)`: the range is parsed now.
    Satisfies,
}

/// One built-in function.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinFn {
    pub name: &'static str,
    /// How it is called: `len(x)`.
    pub signature: &'static str,
    /// What it does, in one line.
    pub doc: &'static str,
    pub arity: Arity,
    /// How the arity is said in a diagnostic: `2 arguments (text, pattern)`.
    arity_text: &'static str,
    /// The type of each argument (the last one repeats for `AtLeast`).
    args: &'static [Arg],
    /// The help line of a type mismatch.
    help: &'static str,
    compile: Compile,
}

const STRINGS: &str = "this function works on strings";
const SEMVER_HELP: &str = "convert text first: `major(semver(input.version))`";
const MIN_MAX: &str = "`min` and `max` compare integers";

const fn simple(
    name: &'static str,
    signature: &'static str,
    doc: &'static str,
    args: &'static [Arg],
    help: &'static str,
    op: Builtin,
    ret: Ret,
) -> BuiltinFn {
    BuiltinFn {
        name,
        signature,
        doc,
        arity: Arity::Exactly(args.len()),
        arity_text: if args.len() == 1 {
            "1 argument"
        } else {
            "2 arguments"
        },
        args,
        help,
        compile: Compile::Op(op, ret),
    }
}

/// Every built-in function of the language.
pub const BUILTINS: &[BuiltinFn] = &[
    simple(
        "len",
        "len(x)",
        "the length of a string (in characters), a list or a set",
        &[Arg::Sized],
        "length is defined for strings, lists and sets",
        Builtin::Len,
        Ret::Int,
    ),
    simple(
        "is_empty",
        "is_empty(x)",
        "whether a string, list or set is empty",
        &[Arg::Sized],
        "length is defined for strings, lists and sets",
        Builtin::IsEmpty,
        Ret::Bool,
    ),
    BuiltinFn {
        name: "contains",
        signature: "contains(list, item) or contains(text, part)",
        doc: "whether a list holds an item, or a string holds a part",
        arity: Arity::Exactly(2),
        arity_text: "2 arguments",
        args: &[Arg::Any, Arg::Any],
        help: "",
        compile: Compile::Contains,
    },
    simple(
        "starts_with",
        "starts_with(text, prefix)",
        "whether a string starts with a prefix",
        &[Arg::Str, Arg::Str],
        STRINGS,
        Builtin::StartsWith,
        Ret::Bool,
    ),
    simple(
        "ends_with",
        "ends_with(text, suffix)",
        "whether a string ends with a suffix",
        &[Arg::Str, Arg::Str],
        STRINGS,
        Builtin::EndsWith,
        Ret::Bool,
    ),
    simple(
        "lower",
        "lower(text)",
        "the string in lower case",
        &[Arg::Str],
        STRINGS,
        Builtin::Lower,
        Ret::Str,
    ),
    simple(
        "upper",
        "upper(text)",
        "the string in upper case",
        &[Arg::Str],
        STRINGS,
        Builtin::Upper,
        Ret::Str,
    ),
    simple(
        "trim",
        "trim(text)",
        "the string without leading and trailing white space",
        &[Arg::Str],
        STRINGS,
        Builtin::Trim,
        Ret::Str,
    ),
    simple(
        "trim_prefix",
        "trim_prefix(text, prefix)",
        "the string without the prefix, if it has it",
        &[Arg::Str, Arg::Str],
        STRINGS,
        Builtin::TrimPrefix,
        Ret::Str,
    ),
    simple(
        "trim_suffix",
        "trim_suffix(text, suffix)",
        "the string without the suffix, if it has it",
        &[Arg::Str, Arg::Str],
        STRINGS,
        Builtin::TrimSuffix,
        Ret::Str,
    ),
    simple(
        "split",
        "split(text, separator)",
        "the parts of a string between separators",
        &[Arg::Str, Arg::Str],
        STRINGS,
        Builtin::Split,
        Ret::StrList,
    ),
    BuiltinFn {
        name: "concat",
        signature: "concat(a, b, …)",
        doc: "the strings joined",
        arity: Arity::AtLeast(2),
        arity_text: "2 or more arguments",
        args: &[Arg::Str],
        help: "`concat` joins strings",
        compile: Compile::Op(Builtin::Concat, Ret::Str),
    },
    BuiltinFn {
        name: "matches",
        signature: "matches(text, pattern)",
        doc: "whether a string matches a regular expression (linear time; the pattern is a constant)",
        arity: Arity::Exactly(2),
        arity_text: "2 arguments (text, pattern)",
        args: &[Arg::Str, Arg::Any],
        help: "`matches(text, pattern)` tests a string",
        compile: Compile::Matches,
    },
    BuiltinFn {
        name: "semver",
        signature: "semver(text)",
        doc: "a version parsed from its text",
        arity: Arity::Exactly(1),
        arity_text: "1 argument",
        args: &[Arg::Str],
        help: "`semver(text)` parses a version string",
        compile: Compile::Semver,
    },
    simple(
        "is_semver",
        "is_semver(text)",
        "whether a string is a semver version",
        &[Arg::Str],
        STRINGS,
        Builtin::IsSemver,
        Ret::Bool,
    ),
    simple(
        "major",
        "major(version)",
        "a version's major number",
        &[Arg::Semver],
        SEMVER_HELP,
        Builtin::Major,
        Ret::Int,
    ),
    simple(
        "minor",
        "minor(version)",
        "a version's minor number",
        &[Arg::Semver],
        SEMVER_HELP,
        Builtin::Minor,
        Ret::Int,
    ),
    simple(
        "patch",
        "patch(version)",
        "a version's patch number",
        &[Arg::Semver],
        SEMVER_HELP,
        Builtin::Patch,
        Ret::Int,
    ),
    simple(
        "is_prerelease",
        "is_prerelease(version)",
        "whether a version is a prerelease (`1.0.0-rc.1`)",
        &[Arg::Semver],
        SEMVER_HELP,
        Builtin::IsPrerelease,
        Ret::Bool,
    ),
    BuiltinFn {
        name: "satisfies",
        signature: "satisfies(version, range)",
        doc: "whether a version is in a range (`>=2.0.0, <3.0.0`; the range is a constant)",
        arity: Arity::Exactly(2),
        arity_text: "2 arguments (version, range)",
        args: &[Arg::Semver, Arg::Any],
        help: "convert text first: `satisfies(semver(input.version), \">=1.0.0\")`",
        compile: Compile::Satisfies,
    },
    simple(
        "min",
        "min(a, b)",
        "the smaller integer",
        &[Arg::Int, Arg::Int],
        MIN_MAX,
        Builtin::Min,
        Ret::Int,
    ),
    simple(
        "max",
        "max(a, b)",
        "the larger integer",
        &[Arg::Int, Arg::Int],
        MIN_MAX,
        Builtin::Max,
        Ret::Int,
    ),
    simple(
        "abs",
        "abs(n)",
        "the absolute value of an integer",
        &[Arg::Int],
        "`abs` takes an integer",
        Builtin::Abs,
        Ret::Int,
    ),
];

/// The built-in called `name`, if there is one.
pub fn builtin(name: &str) -> Option<&'static BuiltinFn> {
    BUILTINS.iter().find(|b| b.name == name)
}

impl Checker<'_> {
    pub(super) fn arity(
        &mut self,
        name: &Ident,
        args: &[Expr],
        span: Span,
        expected: &str,
        ok: bool,
    ) -> bool {
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
    pub(super) fn const_string(&mut self, ir: &Ir, what: &str) -> Option<String> {
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

    /// Checks one argument against what the function wants of it.
    fn builtin_arg(&mut self, ir: &Ir, want: Arg, help: &str) {
        let ty = match want {
            Arg::Str => Type::Str,
            Arg::Int => Type::Int,
            Arg::Semver => Type::Semver,
            Arg::Any => return,
            Arg::Sized => {
                let t = ir.ty.clone();
                if self.require_present(ir, ir.span)
                    && !(matches!(t, Type::Str | Type::List(_) | Type::Set(_) | Type::Error))
                {
                    self.mismatch(ir.span, "a string, list or set", &t, help);
                }
                return;
            }
        };
        self.expect_type(ir, &ty, help);
    }

    /// A call: of a user function (inlined), of a built-in (by [`BUILTINS`]), or of a name that
    /// is neither (a diagnostic with the nearest names).
    pub(super) fn call(&mut self, name: &Ident, args: &[Expr], span: Span) -> Ir {
        if let Some(g) = self.globals.get(&name.node)
            && matches!(g.state, GlobalState::Fn { .. })
        {
            return self.user_call(name, args, span);
        }
        let irs: Vec<Ir> = args.iter().map(|a| self.expr(a)).collect();
        let Some(f) = builtin(&name.node) else {
            self.unknown_function(name);
            return error_ir(span);
        };
        if !self.arity(name, args, span, f.arity_text, f.arity.admits(irs.len())) {
            return error_ir(span);
        }
        for (i, ir) in irs.iter().enumerate() {
            let want = f.args.get(i).or(f.args.last()).copied().unwrap_or(Arg::Any);
            self.builtin_arg(ir, want, f.help);
        }
        let out = match f.compile {
            Compile::Op(op, ret) => Ir::new(IrKind::Call(op, irs), ret.ty(), span),
            Compile::Contains => self.contains(args, irs, span),
            Compile::Matches => self.matches(irs, span),
            Compile::Semver => match self.semver(irs, span) {
                Ok(ir) => ir,
                Err(done) => return done,
            },
            Compile::Satisfies => self.satisfies(irs, span),
        };
        self.fold(out)
    }

    fn unknown_function(&mut self, name: &Ident) {
        let mut candidates: Vec<&str> = BUILTINS.iter().map(|b| b.name).collect();
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
            None => d.help(
                "define it with `fn`, or see the list of built-in functions in the language reference",
            ),
        };
        self.diags.push(d);
    }

    fn contains(&mut self, args: &[Expr], irs: Vec<Ir>, span: Span) -> Ir {
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
                self.membership(item, list, &args[0], span)
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
                Ir::new(IrKind::Call(Builtin::Contains, irs), Type::Bool, span)
            }
        }
    }

    fn matches(&mut self, irs: Vec<Ir>, span: Span) -> Ir {
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

    /// `semver(text)`: a constant text is parsed now (an error now, not at evaluation); `Err`
    /// is the finished result (not folded again).
    fn semver(&mut self, irs: Vec<Ir>, span: Span) -> Result<Ir, Ir> {
        if let IrKind::Const(Value::Str(s)) = &irs[0].kind {
            return Err(match semver::Version::parse(s) {
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
            });
        }
        Ok(Ir::new(
            IrKind::Call(Builtin::Semver, irs),
            Type::Semver,
            span,
        ))
    }

    fn satisfies(&mut self, irs: Vec<Ir>, span: Span) -> Ir {
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
                    .help("write comparators separated by commas, such as `>=2.0.0, <3.0.0`"),
                );
                error_ir(span)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_is_listed_once_with_a_signature_and_a_doc_line() {
        let mut names: Vec<&str> = BUILTINS.iter().map(|b| b.name).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "a name listed twice");
        for b in BUILTINS {
            assert!(b.signature.starts_with(b.name), "{}", b.name);
            assert!(!b.doc.is_empty(), "{}", b.name);
            assert!(!b.args.is_empty(), "{}", b.name);
        }
    }

    #[test]
    fn the_language_reference_lists_every_builtin() {
        let reference = include_str!("../../../docs/policy-language.md");
        let section = reference
            .split("## Built-in functions")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .unwrap_or_default();
        for b in BUILTINS {
            assert!(
                section.contains(&format!("`{}(", b.name))
                    || section.contains(&format!(" {}(", b.name)),
                "docs/policy-language.md does not list `{}`",
                b.name
            );
        }
    }
}
