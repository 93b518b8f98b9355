//! Diagnostics: every problem the parser and checker find, with a stable code, a labelled
//! primary span and a help line. Rendered like rustc's (through miette) or as JSON for tools.
//!
//! Messages follow one style: lowercase, no final period, user input in backticks, never a
//! Rust type name.

use std::fmt;

use serde::Serialize;

use crate::span::{Sources, Span};

/// Error or warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
}

/// The stable code of a diagnostic. `docs/policy-language.md` lists them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// E0001: the text does not parse.
    Syntax,
    /// E0002: a name that is not defined.
    UnknownName,
    /// E0003: a record has no such field.
    UnknownField,
    /// E0004: no such function.
    UnknownFunction,
    /// E0005: wrong number of arguments.
    Arity,
    /// E0006: a value of the wrong type.
    TypeMismatch,
    /// E0007: two definitions with the same name.
    Duplicate,
    /// E0008: an invalid regular expression.
    InvalidRegex,
    /// E0009: an invalid semver version or range.
    InvalidSemver,
    /// E0010: a function that calls itself, directly or not.
    Recursion,
    /// E0011: an optional field used without checking that it is there.
    UncheckedOptional,
    /// E0012: a required part is missing.
    Missing,
    /// E0013: a field given twice.
    RepeatedField,
    /// E0014: a problem with the pack header.
    PackHeader,
    /// E0015: an import that cannot be resolved.
    Import,
    /// E0016: a waiver for a rule that does not exist.
    UnknownRule,
    /// E0017: an invalid date.
    InvalidDate,
    /// E0018: a number out of range.
    NumberRange,
    /// E0019: nesting or size over the limits.
    TooLarge,
    /// W0001: a rule that can never fire.
    NeverFires,
    /// W0002: a condition that is always true.
    AlwaysTrue,
    /// W0003: a binding that is never used.
    UnusedBinding,
    /// W0004: a function, constant or set that is never used.
    UnusedDefinition,
    /// W0005: a rule with the same condition as another.
    Shadowed,
    /// W0006: a waiver that has expired.
    ExpiredWaiver,
}

impl Code {
    /// Every code, in order.
    pub const ALL: [Code; 25] = [
        Code::Syntax,
        Code::UnknownName,
        Code::UnknownField,
        Code::UnknownFunction,
        Code::Arity,
        Code::TypeMismatch,
        Code::Duplicate,
        Code::InvalidRegex,
        Code::InvalidSemver,
        Code::Recursion,
        Code::UncheckedOptional,
        Code::Missing,
        Code::RepeatedField,
        Code::PackHeader,
        Code::Import,
        Code::UnknownRule,
        Code::InvalidDate,
        Code::NumberRange,
        Code::TooLarge,
        Code::NeverFires,
        Code::AlwaysTrue,
        Code::UnusedBinding,
        Code::UnusedDefinition,
        Code::Shadowed,
        Code::ExpiredWaiver,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::Syntax => "E0001",
            Code::UnknownName => "E0002",
            Code::UnknownField => "E0003",
            Code::UnknownFunction => "E0004",
            Code::Arity => "E0005",
            Code::TypeMismatch => "E0006",
            Code::Duplicate => "E0007",
            Code::InvalidRegex => "E0008",
            Code::InvalidSemver => "E0009",
            Code::Recursion => "E0010",
            Code::UncheckedOptional => "E0011",
            Code::Missing => "E0012",
            Code::RepeatedField => "E0013",
            Code::PackHeader => "E0014",
            Code::Import => "E0015",
            Code::UnknownRule => "E0016",
            Code::InvalidDate => "E0017",
            Code::NumberRange => "E0018",
            Code::TooLarge => "E0019",
            Code::NeverFires => "W0001",
            Code::AlwaysTrue => "W0002",
            Code::UnusedBinding => "W0003",
            Code::UnusedDefinition => "W0004",
            Code::Shadowed => "W0005",
            Code::ExpiredWaiver => "W0006",
        }
    }

    pub fn level(self) -> Level {
        if self.as_str().starts_with('E') {
            Level::Error
        } else {
            Level::Warning
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A secondary location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Related {
    pub span: Span,
    pub label: String,
}

/// One problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub message: String,
    pub span: Span,
    /// What the primary span shows.
    pub label: String,
    pub help: Option<String>,
    pub related: Vec<Related>,
}

impl Diagnostic {
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            message: message.into(),
            span,
            label: String::new(),
            help: None,
            related: Vec::new(),
        }
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn related(mut self, span: Span, label: impl Into<String>) -> Self {
        self.related.push(Related {
            span,
            label: label.into(),
        });
        self
    }

    pub fn level(&self) -> Level {
        self.code.level()
    }

    pub fn is_error(&self) -> bool {
        self.level() == Level::Error
    }
}

/// "did you mean `x`?" for the closest candidate, if one is close enough.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(name, c);
        if score > 0.8 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| format!("did you mean `{c}`?"))
}

// ----- JSON --------------------------------------------------------------------------------

/// A location for tools: file, 1-based line and column, byte offsets.
#[derive(Debug, Clone, Serialize)]
pub struct JsonLocation {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub start: u32,
    pub end: u32,
}

/// A diagnostic for tools (`--format json`).
#[derive(Debug, Clone, Serialize)]
pub struct JsonDiagnostic {
    pub code: Code,
    pub level: Level,
    pub message: String,
    pub label: String,
    pub help: Option<String>,
    pub location: JsonLocation,
    pub related: Vec<JsonRelated>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JsonRelated {
    pub label: String,
    pub location: JsonLocation,
}

pub fn location(sources: &Sources, span: Span) -> JsonLocation {
    let (file, (line, column), (end_line, end_column)) = match sources.get(span.file) {
        Some(f) => (
            f.name.clone(),
            f.line_col(span.start as usize),
            f.line_col(span.end as usize),
        ),
        None => (String::new(), (0, 0), (0, 0)),
    };
    JsonLocation {
        file,
        line,
        column,
        end_line,
        end_column,
        start: span.start,
        end: span.end,
    }
}

impl Diagnostic {
    pub fn to_json(&self, sources: &Sources) -> JsonDiagnostic {
        JsonDiagnostic {
            code: self.code,
            level: self.level(),
            message: self.message.clone(),
            label: self.label.clone(),
            help: self.help.clone(),
            location: location(sources, self.span),
            related: self
                .related
                .iter()
                .map(|r| JsonRelated {
                    label: r.label.clone(),
                    location: location(sources, r.span),
                })
                .collect(),
        }
    }
}

// ----- rendering ---------------------------------------------------------------------------

struct Rendered<'a> {
    diag: &'a Diagnostic,
    source: miette::NamedSource<String>,
    file: crate::span::FileId,
}

impl fmt::Debug for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl std::error::Error for Rendered<'_> {}

impl miette::Diagnostic for Rendered<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.diag.code.as_str()))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diag.level() {
            Level::Error => miette::Severity::Error,
            Level::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diag
            .help
            .as_ref()
            .map(|h| Box::new(h.as_str()) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let primary = miette::LabeledSpan::new_primary_with_span(
            Some(self.diag.label.clone()).filter(|l| !l.is_empty()),
            (self.diag.span.start as usize, self.diag.span.len()),
        );
        let related = self
            .diag
            .related
            .iter()
            .filter(|r| r.span.file == self.file)
            .map(|r| {
                miette::LabeledSpan::new_with_span(
                    Some(r.label.clone()),
                    (r.span.start as usize, r.span.len()),
                )
            });
        Some(Box::new(std::iter::once(primary).chain(related)))
    }
}

/// Renders diagnostics like rustc does: code, message, the source with labelled spans, help.
/// `color` adds ANSI colours.
pub fn render(diags: &[Diagnostic], sources: &Sources, color: bool) -> String {
    let theme = if color {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let handler = miette::GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    for d in diags {
        let (name, text) = sources
            .get(d.span.file)
            .map(|f| (f.name.clone(), f.text.clone()))
            .unwrap_or_default();
        let r = Rendered {
            diag: d,
            source: miette::NamedSource::new(name, text),
            file: d.span.file,
        };
        let _ = handler.render_report(&mut out, &r);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_levelled() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "{c} twice");
        }
        assert_eq!(Code::Syntax.level(), Level::Error);
        assert_eq!(Code::NeverFires.level(), Level::Warning);
    }

    #[test]
    fn suggestions_pick_the_closest_name() {
        assert_eq!(
            did_you_mean("memroy_mb", ["memory_mb", "cpu_millis"]).as_deref(),
            Some("did you mean `memory_mb`?")
        );
        assert_eq!(did_you_mean("zzz", ["memory_mb"]), None);
    }
}
