//! Verdicts: the decision on one set of facts and every finding that led to it, each with its
//! evidence, message, fix and location.

use serde::Serialize;

use crate::ast::{Decision, Effect, Mode, Severity};
use crate::explain::{Evidence, Text};

/// A source location for people and tools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub file: Text,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// The pack a verdict was reached under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackRef {
    pub name: String,
    pub version: String,
}

/// A waiver that set a finding aside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppliedWaiver {
    pub name: String,
    pub reason: String,
    pub approver: String,
    /// The last day it applies (`YYYY-MM-DD`).
    pub expires: String,
}

/// A rule that fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: String,
    pub effect: Effect,
    pub mode: Mode,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docs: Option<String>,
    pub location: Location,
    /// The values that made the rule fire.
    pub evidence: Vec<Evidence>,
    /// Set when a waiver applies: the finding is reported but does not count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiver: Option<AppliedWaiver>,
}

impl Finding {
    /// Whether the finding counts toward the decision.
    pub fn counts(&self) -> bool {
        self.mode == Mode::Enforce && self.waiver.is_none()
    }
}

/// A rule whose evaluation failed. Failures of enforced rules count as if they fired (fail
/// closed): a policy that cannot be evaluated never lets a submission through silently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleFailure {
    pub rule: String,
    pub effect: Effect,
    pub mode: Mode,
    pub error: String,
    pub location: Location,
}

/// In explain mode: a rule that did not fire, and the condition that stopped it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotFired {
    pub rule: Text,
    pub location: Location,
    pub stopped_by: Vec<Evidence>,
}

/// The decision on one set of facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub decision: Decision,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pack: Option<PackRef>,
    pub findings: Vec<Finding>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<RuleFailure>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_fired: Vec<NotFired>,
    pub rules_evaluated: usize,
}

impl Verdict {
    /// Rule ids of findings that count, by effect.
    pub fn fired(&self, effect: Effect) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .findings
            .iter()
            .filter(|f| f.effect == effect && f.counts())
            .map(|f| f.rule.as_str())
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The decision from findings and failures: deny if an enforced, unwaived deny fired (or
    /// failed); else warn likewise; else pass.
    pub fn decide(findings: &[Finding], errors: &[RuleFailure]) -> Decision {
        let counts = |effect: Effect| {
            findings.iter().any(|f| f.effect == effect && f.counts())
                || errors
                    .iter()
                    .any(|e| e.effect == effect && e.mode == Mode::Enforce)
        };
        if counts(Effect::Deny) {
            Decision::Deny
        } else if counts(Effect::Warn) {
            Decision::Warn
        } else {
            Decision::Pass
        }
    }

    /// A plain-text report for people.
    pub fn render_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let decision = match self.decision {
            Decision::Pass => "PASS",
            Decision::Warn => "WARN",
            Decision::Deny => "DENY",
        };
        let _ = writeln!(out, "decision: {decision}");
        if let Some(p) = &self.pack {
            let _ = writeln!(out, "pack: {} {}", p.name, p.version);
        }
        for f in &self.findings {
            let effect = match f.effect {
                Effect::Deny => "deny",
                Effect::Warn => "warn",
                Effect::Info => "info",
            };
            let mode = match f.mode {
                Mode::Enforce => "",
                Mode::Audit => " (audit)",
                Mode::Advisory => " (advisory)",
            };
            let waived = if f.waiver.is_some() { " [waived]" } else { "" };
            let severity = match f.severity {
                Severity::Critical => "critical",
                Severity::High => "high",
                Severity::Medium => "medium",
                Severity::Low => "low",
            };
            let _ = writeln!(
                out,
                "\n{effect}{mode}{waived} {} [{severity}] at {}",
                f.rule, f.location
            );
            let _ = writeln!(out, "  {}", f.message);
            for e in &f.evidence {
                let _ = writeln!(out, "  evidence: {}", e.text());
                if let Some(w) = &e.would_pass {
                    let _ = writeln!(out, "    would pass: {w}");
                }
            }
            if let Some(fix) = &f.fix {
                let _ = writeln!(out, "  fix: {fix}");
            }
            if let Some(d) = &f.docs {
                let _ = writeln!(out, "  docs: {d}");
            }
            if let Some(w) = &f.waiver {
                let _ = writeln!(
                    out,
                    "  waiver: {} approved by {} until {}: {}",
                    w.name, w.approver, w.expires, w.reason
                );
            }
        }
        for e in &self.errors {
            let _ = writeln!(
                out,
                "\nerror in rule {} at {}: {}",
                e.rule, e.location, e.error
            );
        }
        for n in &self.not_fired {
            let _ = writeln!(out, "\nnot fired: {} at {}", n.rule, n.location);
            for e in &n.stopped_by {
                let _ = writeln!(out, "  stopped by: {}", e.text());
            }
        }
        out
    }
}
