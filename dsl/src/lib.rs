//! The Stellar policy language: parse, check, evaluate, explain, format and test policy packs.
//!
//! ```text
//! text ──parse──▶ syntax tree ──check──▶ compiled pack ──evaluate(facts)──▶ verdict
//!                     │                        │
//!                     └──fmt──▶ canonical text └──run_tests──▶ test report + coverage
//! ```
//!
//! **Boundary:** this crate does no IO (files come in as text; test input files through a
//! callback), has no server, UI or async dependency, and builds for `wasm32-unknown-unknown`.
//!
//! **Invariant:** nothing here panics on any input, and every evaluation is bounded by
//! [`eval::Limits`].

pub mod ast;
pub mod check;
pub mod diag;
pub mod eval;
pub mod explain;
pub mod fmt;
pub mod index;
pub mod ir;
pub mod parse;
pub mod span;
pub mod types;
pub mod value;
pub mod verdict;

use chrono::NaiveDate;
use serde::Serialize;

pub use ast::{Decision, Effect, Mode, Severity};
pub use check::{CheckOptions, Checked};
pub use diag::{Code, Diagnostic, Level};
pub use eval::{EvalError, Limits};
pub use explain::Text;
pub use span::{FileId, Sources, Span};
pub use types::{Schema, Type};
pub use value::{InputError, Value};
pub use verdict::{Finding, Location, Verdict};

use crate::ast::{File, Item, WaiverSubject};
use crate::check::{CompiledPart, CompiledTemplate, TestSource};
use crate::eval::Evaluator;
use std::sync::{Arc, OnceLock};

use crate::explain::{Texts, Tracer};
use crate::verdict::{AppliedWaiver, NotFired, PackRef, RuleFailure};

/// Largest facts document accepted, in bytes.
pub const MAX_INPUT_BYTES: usize = 4 * 1024 * 1024;
/// Most files a pack may have (imports included).
pub const MAX_FILES: usize = 256;

/// The outcome of loading a pack: the sources, every diagnostic, and the pack if it has no
/// errors.
pub struct Loaded {
    pub sources: std::sync::Arc<Sources>,
    pub diagnostics: Vec<Diagnostic>,
    pub pack: Option<Pack>,
    /// The syntax trees (for the formatter).
    pub files: Vec<File>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Diagnostics rendered like rustc's.
    pub fn render(&self, color: bool) -> String {
        diag::render(&self.diagnostics, &self.sources, color)
    }

    /// Diagnostics as JSON for tools.
    pub fn json(&self) -> Vec<diag::JsonDiagnostic> {
        self.diagnostics
            .iter()
            .map(|d| d.to_json(&self.sources))
            .collect()
    }
}

/// Loads a pack from its root files; `import "x"` in a file asks `resolve(importing_file, x)`
/// for the imported file's name and text.
pub fn load(
    roots: Vec<(String, String)>,
    mut resolve: impl FnMut(&str, &str) -> Result<(String, String), String>,
    options: &CheckOptions,
) -> Loaded {
    let mut sources = Sources::new();
    let mut diagnostics = Vec::new();
    let mut files = Vec::new();
    let mut queue: Vec<FileId> = Vec::new();
    for (name, text) in roots {
        if sources.find(&name).is_none() {
            queue.push(sources.add(name, text));
        }
    }
    while let Some(id) = queue.pop() {
        let (file, diags) = match sources.get(id) {
            Some(f) => parse::parse_file(id, &f.text),
            None => continue,
        };
        let from = sources.get(id).map(|f| f.name.clone()).unwrap_or_default();
        diagnostics.extend(diags);
        for item in &file.items {
            if let Item::Import(target) = item {
                match resolve(&from, &target.node) {
                    Ok((name, text)) => {
                        if sources.find(&name).is_none() {
                            if sources.len() >= MAX_FILES {
                                diagnostics.push(
                                    Diagnostic::new(
                                        Code::TooLarge,
                                        target.span,
                                        format!("the pack has more than {MAX_FILES} files"),
                                    )
                                    .label("one import too many")
                                    .help("split the policies into several packs"),
                                );
                            } else {
                                queue.push(sources.add(name, text));
                            }
                        }
                    }
                    Err(reason) => diagnostics.push(
                        Diagnostic::new(
                            Code::Import,
                            target.span,
                            format!("cannot import `{}`: {reason}", target.node),
                        )
                        .label("not found")
                        .help(
                            "imports name files of the same pack, relative to the importing file",
                        ),
                    ),
                }
            }
        }
        files.push(file);
    }
    files.sort_by_key(|f| f.id);
    let mut checked = check::check(&files, options);
    let mut paths = ir::PathIds::default();
    for rule in &mut checked.rules {
        ir::optimize(&mut rule.when, &mut paths);
        for t in rule.message.iter_mut().chain(rule.fix.iter_mut()) {
            for part in &mut t.parts {
                if let CompiledPart::Expr(e) = part {
                    ir::optimize(e, &mut paths);
                }
            }
        }
    }
    diagnostics.extend(checked.diagnostics.iter().cloned());
    diagnostics.sort_by_key(|d| (d.span.file, d.span.start, d.code));
    let has_errors = diagnostics.iter().any(Diagnostic::is_error);
    let sources = std::sync::Arc::new(sources);
    let pack = (!has_errors).then(|| {
        let locations = checked
            .rules
            .iter()
            .map(|r| location_in(&sources, r.id_span))
            .collect();
        let index = index::RuleIndex::build(checked.rules.iter().map(|r| &r.when));
        let texts = checked.rules.iter().map(|_| OnceLock::new()).collect();
        let schema = checked.schema.clone();
        Pack {
            sources: std::sync::Arc::clone(&sources),
            index,
            texts,
            checked,
            schema,
            locations,
            paths: paths.len(),
        }
    });
    Loaded {
        sources,
        diagnostics,
        pack,
        files,
    }
}

/// Loads a pack held in memory: one file, no imports.
pub fn load_str(name: &str, text: &str, options: &CheckOptions) -> Loaded {
    load(
        vec![(name.to_owned(), text.to_owned())],
        |_, import| {
            Err(format!(
                "`{import}` is not available here (a single-file pack)"
            ))
        },
        options,
    )
}

/// What an evaluation is told.
#[derive(Debug, Clone, Copy)]
pub struct EvalOptions {
    /// The day waivers are judged against.
    pub today: NaiveDate,
    /// Also say, for every rule that did not fire, which condition stopped it.
    pub explain: bool,
    pub limits: Limits,
}

impl EvalOptions {
    pub fn new(today: NaiveDate) -> Self {
        EvalOptions {
            today,
            explain: false,
            limits: Limits::default(),
        }
    }
}

/// A checked pack, ready to evaluate.
#[derive(Debug, Clone)]
pub struct Pack {
    sources: std::sync::Arc<Sources>,
    checked: Checked,
    schema: Schema,
    /// Where each rule is written, computed once.
    locations: Vec<Location>,
    /// How many distinct fact paths the rules read.
    paths: usize,
    /// Which rules a decision needs to evaluate.
    index: index::RuleIndex,
    /// What evidence says about each rule's condition, computed the first time it is traced
    /// and shared by the pack's clones.
    texts: Arc<[OnceLock<Texts>]>,
}

fn location_in(sources: &Sources, span: Span) -> Location {
    let (file, (line, column)) = match sources.get(span.file) {
        Some(f) => (Text::from(f.name.as_str()), f.line_col(span.start as usize)),
        None => (Text::from(""), (0, 0)),
    };
    Location { file, line, column }
}

fn path_value<'v>(facts: &'v Value, schema_root: &Type, path: &[String]) -> Option<&'v Value> {
    let mut v = facts;
    let mut t = schema_root;
    for seg in path {
        let Type::Record(r) = t else { return None };
        let i = r.index_of(seg)?;
        let Value::Record(fields) = v else {
            return None;
        };
        v = fields.get(i)?;
        t = &r.fields[i].ty;
    }
    Some(v)
}

impl Pack {
    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    pub fn rules(&self) -> &[check::Rule] {
        &self.checked.rules
    }

    pub fn waivers(&self) -> &[check::Waiver] {
        &self.checked.waivers
    }

    pub fn tests(&self) -> &[check::Test] {
        &self.checked.tests
    }

    pub fn header(&self) -> Option<&check::Header> {
        self.checked.header.as_ref()
    }

    fn location(&self, span: Span) -> Location {
        location_in(&self.sources, span)
    }

    fn rule_location(&self, index: usize) -> Location {
        self.locations
            .get(index)
            .cloned()
            .unwrap_or_else(|| Location {
                file: Text::from(""),
                line: 0,
                column: 0,
            })
    }

    /// Reads facts from JSON text against the schema.
    pub fn facts_from_json(&self, text: &str) -> Result<Value, InputError> {
        value::from_json_text(text, &self.schema.root, MAX_INPUT_BYTES)
    }

    /// Reads typed facts (any value that serializes to the schema's shape, such as the
    /// analysis's facts) against the schema, without a round trip through text.
    pub fn facts_from<T: Serialize>(&self, facts: &T) -> Result<Value, InputError> {
        let json = serde_json::to_value(facts).map_err(|e| InputError::Json(e.to_string()))?;
        value::from_json_tree(&json, &self.schema.root)
    }

    /// Evaluates the pack on typed facts (see [`Pack::facts_from`]).
    pub fn evaluate_facts<T: Serialize>(
        &self,
        facts: &T,
        options: &EvalOptions,
    ) -> Result<Verdict, InputError> {
        let facts = self.facts_from(facts)?;
        Ok(self.evaluate(&facts, options))
    }

    /// Evaluates the pack on facts given as JSON text.
    pub fn evaluate_json(&self, text: &str, options: &EvalOptions) -> Result<Verdict, InputError> {
        let facts = self.facts_from_json(text)?;
        Ok(self.evaluate(&facts, options))
    }

    /// The waiver that applies to `rule` for these facts today, if any. The one place expiry
    /// is judged: an expired waiver never applies.
    pub fn applicable_waiver(
        &self,
        rule: &str,
        facts: &Value,
        today: NaiveDate,
    ) -> Option<&check::Waiver> {
        self.checked.waivers.iter().find(|w| {
            if w.rule != rule || today > w.expires {
                return false;
            }
            let (path, want) = match &w.subject {
                WaiverSubject::Plugin(p) => (&self.schema.plugin_field, p),
                WaiverSubject::Publisher(p) => (&self.schema.publisher_field, p),
            };
            matches!(path_value(facts, &self.schema.root, path), Some(Value::Str(s)) if **s == **want)
        })
    }

    fn render_template(&self, t: &CompiledTemplate, ev: &mut Evaluator<'_>) -> String {
        let mut out = String::new();
        for p in &t.parts {
            match p {
                CompiledPart::Text(s) => out.push_str(s),
                CompiledPart::Expr(ir) => match ev.eval(ir) {
                    Ok(Value::Str(s)) => out.push_str(&s),
                    Ok(v) => out.push_str(&v.render(Some(&ir.ty))),
                    Err(e) => {
                        out.push('⟨');
                        out.push_str(&e.to_string());
                        out.push('⟩');
                    }
                },
            }
        }
        out
    }

    /// Evaluates every rule on the facts. Deterministic, bounded, and never panics.
    pub fn evaluate(&self, facts: &Value, options: &EvalOptions) -> Verdict {
        let mut ev = Evaluator::with_paths(facts, options.limits, self.paths);
        let mut rendered: Vec<Option<Text>> = Vec::new();
        let mut findings = Vec::new();
        let mut errors = Vec::new();
        let mut not_fired = Vec::new();
        let mut evaluated = 0;
        let mut exhausted = false;
        // Explain mode looks at every rule; a decision only at those the index lets through.
        let selected: Option<Vec<u32>> = (!options.explain).then(|| self.index.candidates(facts));
        let mut next = 0usize;
        // One cell of texts per rule (see `texts`).
        let rules = self.checked.rules.iter().zip(self.texts.iter());
        for (index, (rule, cell)) in rules.enumerate() {
            if let Some(sel) = &selected {
                // Rules the index skipped cannot fire (see `index`).
                if sel.get(next) != Some(&(index as u32)) {
                    continue;
                }
                next += 1;
            }
            let failure = |error: String| RuleFailure {
                rule: rule.id.clone(),
                effect: rule.effect,
                mode: rule.mode,
                error,
                location: self.rule_location(index),
            };
            if exhausted {
                errors.push(failure(
                    "not evaluated: the evaluation budget was exhausted by earlier rules".into(),
                ));
                continue;
            }
            evaluated += 1;
            // A decision tests the condition and collects evidence only for rules that fired;
            // explain mode collects it for every rule, in the same pass.
            let texts = || cell.get_or_init(|| Texts::build(&self.sources, &rule.id, &rule.when));
            let traced = if options.explain {
                Tracer {
                    ev: &mut ev,
                    sources: &self.sources,
                    texts: texts(),
                    rendered: &mut rendered,
                }
                .condition(&rule.when, true)
            } else {
                match ev.eval_bool(&rule.when) {
                    Ok(false) => continue,
                    Ok(true) => Tracer {
                        ev: &mut ev,
                        sources: &self.sources,
                        texts: texts(),
                        rendered: &mut rendered,
                    }
                    .condition(&rule.when, true)
                    .map(|(_, e)| (true, e)),
                    Err(e) => Err(e),
                }
            };
            let (fired, evidence) = match traced {
                Ok(t) => t,
                Err(e) => {
                    exhausted = matches!(e, EvalError::StepBudget { .. });
                    let at = e
                        .span()
                        .map(|s| format!(" (at {})", self.location(s)))
                        .unwrap_or_default();
                    errors.push(failure(format!("{e}{at}")));
                    continue;
                }
            };
            if !fired {
                not_fired.push(NotFired {
                    rule: texts().id.clone(),
                    location: self.rule_location(index),
                    stopped_by: evidence,
                });
                continue;
            }
            let message = match &rule.message {
                Some(t) => self.render_template(t, &mut ev),
                None => format!("rule `{}` matched", rule.id),
            };
            let fix = rule.fix.as_ref().map(|t| self.render_template(t, &mut ev));
            let waiver = self
                .applicable_waiver(&rule.id, facts, options.today)
                .map(|w| AppliedWaiver {
                    name: w.name.clone(),
                    reason: w.reason.clone(),
                    approver: w.approver.clone(),
                    expires: w.expires.to_string(),
                });
            findings.push(Finding {
                rule: rule.id.clone(),
                effect: rule.effect,
                mode: rule.mode,
                severity: rule.severity,
                tags: rule.tags.clone(),
                message,
                fix,
                docs: rule.docs.clone(),
                location: self.rule_location(index),
                evidence,
                waiver,
            });
        }
        Verdict {
            decision: Verdict::decide(&findings, &errors),
            pack: self.checked.header.as_ref().map(|h| PackRef {
                name: h.name.clone(),
                version: h.version.to_string(),
            }),
            findings,
            errors,
            not_fired,
            rules_evaluated: evaluated,
        }
    }

    /// Runs the pack's test blocks. `read_file(path, file)` reads a test input file named
    /// relative to the policy file `file`.
    pub fn run_tests(
        &self,
        today: NaiveDate,
        mut read_file: impl FnMut(&str, &str) -> Result<String, String>,
    ) -> TestReport {
        let mut results = Vec::new();
        let mut fired_somewhere: std::collections::BTreeSet<String> = Default::default();
        for t in &self.checked.tests {
            let location = self.location(t.span);
            let facts = match &t.input {
                Some(TestSource::Value(v)) => Ok(v.clone()),
                Some(TestSource::File { path, file }) => {
                    let from = self
                        .sources
                        .get(*file)
                        .map(|f| f.name.clone())
                        .unwrap_or_default();
                    read_file(&from, path).and_then(|text| {
                        self.facts_from_json(&text)
                            .map_err(|e| format!("`{path}`: {e}"))
                    })
                }
                None => Err("the test has no input".into()),
            };
            let facts = match facts {
                Ok(f) => f,
                Err(e) => {
                    results.push(TestResult {
                        name: t.name.clone(),
                        location,
                        passed: false,
                        failures: vec![format!("cannot read the input: {e}")],
                    });
                    continue;
                }
            };
            let verdict = self.evaluate(&facts, &EvalOptions::new(t.now.unwrap_or(today)));
            let mut failures = Vec::new();
            for f in &verdict.findings {
                fired_somewhere.insert(f.rule.clone());
            }
            if let Some(want) = t.expect_decision
                && want != verdict.decision
            {
                failures.push(format!(
                    "expected decision {}, got {}",
                    decision_name(want),
                    decision_name(verdict.decision)
                ));
            }
            if let Some(want) = &t.expect_fired {
                let mut want: Vec<&str> = want.iter().map(String::as_str).collect();
                want.sort_unstable();
                want.dedup();
                let mut got: Vec<&str> = verdict.findings.iter().map(|f| f.rule.as_str()).collect();
                got.sort_unstable();
                if want != got {
                    let missing: Vec<&str> =
                        want.iter().filter(|w| !got.contains(w)).copied().collect();
                    let extra: Vec<&str> =
                        got.iter().filter(|g| !want.contains(g)).copied().collect();
                    let mut line = format!(
                        "expected fired [{}], got [{}]",
                        want.join(", "),
                        got.join(", ")
                    );
                    if !missing.is_empty() {
                        line.push_str(&format!("; did not fire: {}", missing.join(", ")));
                    }
                    if !extra.is_empty() {
                        line.push_str(&format!("; fired unexpectedly: {}", extra.join(", ")));
                    }
                    failures.push(line);
                }
            }
            for e in &verdict.errors {
                failures.push(format!("rule `{}` failed: {}", e.rule, e.error));
            }
            results.push(TestResult {
                name: t.name.clone(),
                location,
                passed: failures.is_empty(),
                failures,
            });
        }
        let uncovered = self
            .checked
            .rules
            .iter()
            .filter(|r| !fired_somewhere.contains(&r.id))
            .map(|r| r.id.clone())
            .collect();
        TestReport {
            results,
            uncovered,
            rules: self.checked.rules.len(),
        }
    }
}

fn decision_name(d: Decision) -> &'static str {
    match d {
        Decision::Pass => "pass",
        Decision::Warn => "warn",
        Decision::Deny => "deny",
    }
}

/// The outcome of one test block.
#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    pub name: String,
    pub location: Location,
    pub passed: bool,
    /// Expected versus actual, one line per difference.
    pub failures: Vec<String>,
}

/// The outcome of a pack's tests, with rule coverage.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    pub results: Vec<TestResult>,
    /// Rules that no test made fire.
    pub uncovered: Vec<String>,
    pub rules: usize,
}

impl TestReport {
    pub fn passed(&self) -> bool {
        self.results.iter().all(|r| r.passed)
    }
}
