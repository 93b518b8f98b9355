//! The pipeline spec: a declarative, versioned TOML file that says how an accepted plugin
//! version becomes a release everyone runs.
//!
//! ```toml
//! format = 1
//! layout_expires_days = 365
//!
//! [[pipeline]]
//! name = "partners"
//! select = { tier = "partner" }     # or verified = true, plugin = "acme-*"; all must hold
//! auto_release = true               # a pass or warn verdict starts a release by itself
//!
//! [[pipeline.stage]]
//! name = "review"
//! kind = "approval"
//! role = "reviewer"                 # reviewer, secops, platform or admin
//! approvers = 1                     # distinct people; the submitter's tenant never counts
//!
//! [[pipeline.stage]]
//! name = "sign"
//! kind = "sign"                     # the release key signs (offline key: a signing request)
//!
//! [[pipeline.stage]]
//! name = "canary"
//! kind = "rollout"
//! steps = [{ percent = 5, hold = "1h" }, { percent = 50, hold = "2h" }]
//! analysis = "default"              # the rollback rules (`policies/rollout`)
//! interval = "5m"                   # an analysis every 5 minutes (default)
//! window = "10m"                    # over the last 10 minutes, both cohorts (default: 2 intervals)
//! min_samples = 200                 # calls per cohort before comparing (default)
//! inconclusive_limit = 6            # inconclusive intervals in a row before a person decides
//!
//! [[pipeline.stage]]
//! name = "ga"
//! kind = "ga"
//! ```
//!
//! Parsing is strict: unknown keys, wrong types and every rule below are errors with a line and
//! a column, all reported at once.
//!
//! **Invariants of a parsed [`Spec`]:** at least one pipeline; pipeline names unique; each
//! pipeline's stage names unique, usable as in-toto step names and not `judge` (the first step
//! of every layout is Stellar's judgement); exactly one `ga` stage, last; a `sign` stage before
//! any `rollout` and before `ga` (nothing unsigned reaches a host); rollout percentages strictly
//! increasing within 1..=100; 1 to 10 approvers per approval stage.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// Largest spec accepted, in bytes.
pub const MAX_SPEC_BYTES: usize = 64 * 1024;
/// Most pipelines in one spec, and most stages in one pipeline.
pub const MAX_PIPELINES: usize = 32;
pub const MAX_STAGES: usize = 32;
/// Seconds between a rollout's analyses unless the stage says (`interval`).
pub const DEFAULT_INTERVAL_SECS: u64 = 300;
/// Fewest calls per cohort before comparing, unless the stage says (`min_samples`).
pub const DEFAULT_MIN_SAMPLES: u64 = 200;
/// Inconclusive intervals in a row before a person decides, unless the stage says.
pub const DEFAULT_INCONCLUSIVE_LIMIT: u32 = 6;

fn default_interval_secs() -> u64 {
    DEFAULT_INTERVAL_SECS
}
fn default_window_secs() -> u64 {
    2 * DEFAULT_INTERVAL_SECS
}
fn default_min_samples() -> u64 {
    DEFAULT_MIN_SAMPLES
}
fn default_inconclusive_limit() -> u32 {
    DEFAULT_INCONCLUSIVE_LIMIT
}

/// Most steps in one rollout stage.
pub const MAX_ROLLOUT_STEPS: usize = 20;
/// The name of the layout step that records Stellar's judgement.
pub const JUDGE_STEP: &str = "judge";

/// A problem in a spec, with its position (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// The publisher tiers a selector can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Partner,
    Community,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Partner => "partner",
            Tier::Community => "community",
        }
    }

    pub fn parse(s: &str) -> Option<Tier> {
        match s {
            "partner" => Some(Tier::Partner),
            "community" => Some(Tier::Community),
            _ => None,
        }
    }
}

/// Who may approve: staff roles (a partner never approves).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApproverRole {
    Reviewer,
    Secops,
    Platform,
    Admin,
}

impl ApproverRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ApproverRole::Reviewer => "reviewer",
            ApproverRole::Secops => "secops",
            ApproverRole::Platform => "platform",
            ApproverRole::Admin => "admin",
        }
    }
}

/// Which releases a pipeline takes: every given condition must hold; none given takes all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// A glob over plugin ids (`acme-*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
}

/// What a selector is matched against.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub plugin: &'a str,
    pub tier: Tier,
    pub verified: bool,
}

impl Selector {
    pub fn selects(&self, c: Candidate<'_>) -> bool {
        self.tier.is_none_or(|t| t == c.tier)
            && self.verified.is_none_or(|v| v == c.verified)
            && self
                .plugin
                .as_ref()
                .is_none_or(|p| glob::Pattern::new(p).is_ok_and(|p| p.matches(c.plugin)))
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(t) = self.tier {
            parts.push(format!("tier {}", t.as_str()));
        }
        if let Some(v) = self.verified {
            parts.push(if v { "verified" } else { "not verified" }.to_owned());
        }
        if let Some(p) = &self.plugin {
            parts.push(format!("plugin `{p}`"));
        }
        if parts.is_empty() {
            "every release".into()
        } else {
            parts.join(", ")
        }
    }
}

/// One step of a rollout: the share of hosts, and how long to hold there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutStep {
    pub percent: u8,
    /// Seconds.
    pub hold_secs: u64,
}

/// What a stage does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum StageKind {
    /// People approve: `approvers` distinct users of `role`, none of them the submitter and
    /// none from the submitting tenant.
    Approval { role: ApproverRole, approvers: u32 },
    /// The release key signs the release statement.
    Sign,
    /// Hosts move to the new version step by step (run by the fleet; until then a rollout
    /// whose last step is 100 % completes like GA).
    Rollout {
        steps: Vec<RolloutStep>,
        /// The rollback rules that judge each interval (`default`: `policies/rollout`).
        analysis: Option<String>,
        /// Seconds between analyses (`interval`, default 5 minutes).
        #[serde(default = "default_interval_secs")]
        interval_secs: u64,
        /// Seconds of samples each analysis compares (`window`, default two intervals).
        #[serde(default = "default_window_secs")]
        window_secs: u64,
        /// Fewest calls per cohort before comparing (`min_samples`, default 200).
        #[serde(default = "default_min_samples")]
        min_samples: u64,
        /// Inconclusive intervals in a row before a person decides (default 6).
        #[serde(default = "default_inconclusive_limit")]
        inconclusive_limit: u32,
    },
    /// Every host runs the version.
    Ga,
}

impl StageKind {
    pub fn name(&self) -> &'static str {
        match self {
            StageKind::Approval { .. } => "approval",
            StageKind::Sign => "sign",
            StageKind::Rollout { .. } => "rollout",
            StageKind::Ga => "ga",
        }
    }

    /// Whether starting this stage puts the version in front of more hosts (and so must wait
    /// for an allow window and respect freezes).
    pub fn is_promotion(&self) -> bool {
        matches!(self, StageKind::Rollout { .. } | StageKind::Ga)
    }
}

/// A stage of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub name: String,
    #[serde(flatten)]
    pub kind: StageKind,
    /// Where the stage is in the spec's text.
    pub line: usize,
}

/// A pipeline: which releases it takes, and their stages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pipeline {
    pub name: String,
    pub select: Selector,
    pub auto_release: bool,
    pub stages: Vec<Stage>,
}

/// A parsed, valid spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// Days a release's in-toto layout stays valid after the release is created.
    pub layout_expires_days: u32,
    pub pipelines: Vec<Pipeline>,
}

impl Spec {
    /// The first pipeline whose selector takes the candidate.
    pub fn select(&self, c: Candidate<'_>) -> Option<&Pipeline> {
        self.pipelines.iter().find(|p| p.select.selects(c))
    }

    /// Why no pipeline takes the candidate (for the error a release creation returns).
    pub fn no_pipeline_reason(&self, c: Candidate<'_>) -> String {
        let tried: Vec<String> = self
            .pipelines
            .iter()
            .map(|p| format!("`{}` takes {}", p.name, p.select.describe()))
            .collect();
        format!(
            "no pipeline of the active spec takes plugin `{}` (tier {}, {}): {}; add a pipeline whose `select` matches it",
            c.plugin,
            c.tier.as_str(),
            if c.verified {
                "verified"
            } else {
                "not verified"
            },
            tried.join("; ")
        )
    }

    /// The key purposes the spec signs with (for the check that each has a key).
    pub fn needs_release_key(&self) -> bool {
        // Every release's layout is signed by the release key.
        !self.pipelines.is_empty()
    }
}

/// The built-in spec, used when no `--pipeline` file seeds the first version: one reviewer
/// approves, the release key signs, then GA.
pub const DEFAULT_SPEC: &str = r#"# Stellar's built-in pipeline: one reviewer approves, the release key signs, then GA.
format = 1
layout_expires_days = 365

[[pipeline]]
name = "default"
auto_release = false

[[pipeline.stage]]
name = "review"
kind = "approval"
role = "reviewer"
approvers = 1

[[pipeline.stage]]
name = "sign"
kind = "sign"

[[pipeline.stage]]
name = "ga"
kind = "ga"
"#;

// ---- parsing ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    format: Spanned<u32>,
    #[serde(default)]
    layout_expires_days: Option<Spanned<u32>>,
    #[serde(default)]
    pipeline: Vec<Spanned<RawPipeline>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSelector {
    #[serde(default)]
    tier: Option<Spanned<String>>,
    #[serde(default)]
    verified: Option<bool>,
    #[serde(default)]
    plugin: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    name: Spanned<String>,
    #[serde(default)]
    select: Option<RawSelector>,
    #[serde(default)]
    auto_release: bool,
    #[serde(default)]
    stage: Vec<Spanned<RawStage>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    percent: Spanned<i64>,
    hold: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    name: Spanned<String>,
    kind: Spanned<String>,
    #[serde(default)]
    role: Option<Spanned<String>>,
    #[serde(default)]
    approvers: Option<Spanned<i64>>,
    #[serde(default)]
    key: Option<Spanned<String>>,
    #[serde(default)]
    steps: Option<Spanned<Vec<Spanned<RawStep>>>>,
    #[serde(default)]
    analysis: Option<Spanned<String>>,
    #[serde(default)]
    interval: Option<Spanned<String>>,
    #[serde(default)]
    window: Option<Spanned<String>>,
    #[serde(default)]
    min_samples: Option<Spanned<i64>>,
    #[serde(default)]
    inconclusive_limit: Option<Spanned<i64>>,
}

/// Line and column (1-based) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    let column = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, column)
}

/// Parses a duration such as `90s`, `15m`, `2h`, `1d` or `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("a duration is empty: write it like `30m`, `2h` or `1d`".into());
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => {
                return Err(format!(
                    "`{t}` is not a duration: use a number and s, m, h, d or w (`30m`, `2h`, `1h30m`)"
                ));
            }
        };
        let n: u64 = number.parse().map_err(|_| {
            format!("`{t}` is not a duration: each unit needs a number before it (`30m`)")
        })?;
        number.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("`{t}` is too long a duration"))?;
    }
    if !number.is_empty() {
        return Err(format!(
            "`{t}` needs a unit after `{number}`: s, m, h, d or w"
        ));
    }
    if total > 366 * 86_400 {
        return Err(format!("`{t}` is longer than a year"));
    }
    Ok(Duration::from_secs(total))
}

/// Writes a duration the way [`parse_duration`] reads it.
pub fn format_duration(d: Duration) -> String {
    let mut s = d.as_secs();
    if s == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if s >= size {
            out.push_str(&format!("{}{unit}", s / size));
            s %= size;
        }
    }
    out
}

/// Whether a name can be a stage (and in-toto step) name: lowercase letters, digits and `-`,
/// 1 to 40 characters, starting with a letter.
fn valid_name(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Parses and checks a spec. On failure, every error found (with its position) is returned.
pub fn parse(text: &str) -> Result<Spec, Vec<SpecError>> {
    if text.len() > MAX_SPEC_BYTES {
        return Err(vec![SpecError {
            line: 1,
            column: 1,
            message: format!(
                "the spec is {} bytes; the limit is {MAX_SPEC_BYTES}",
                text.len()
            ),
        }]);
    }
    let raw: RawSpec = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        let message = e.message().trim().to_owned();
        let message = if message.starts_with("missing field `format`") {
            "missing field `format`: the first line of a spec is `format = 1`".to_owned()
        } else {
            message
        };
        vec![SpecError {
            line,
            column,
            message,
        }]
    })?;
    let mut errors = Vec::new();
    let mut err = |span: Range<usize>, message: String| {
        let (line, column) = line_col(text, span.start);
        errors.push(SpecError {
            line,
            column,
            message,
        });
    };
    if *raw.format.get_ref() != 1 {
        err(
            raw.format.span(),
            format!(
                "format {} is not supported: this Stellar reads `format = 1`",
                raw.format.get_ref()
            ),
        );
    }
    let layout_expires_days = match &raw.layout_expires_days {
        Some(d) if !(1..=3650).contains(d.get_ref()) => {
            err(
                d.span(),
                "`layout_expires_days` must be 1 to 3650 (the layout's validity, in days)".into(),
            );
            365
        }
        Some(d) => *d.get_ref(),
        None => 365,
    };
    if raw.pipeline.is_empty() {
        err(
            0..0,
            "the spec has no pipeline: add a `[[pipeline]]` with its `[[pipeline.stage]]`s".into(),
        );
    }
    if raw.pipeline.len() > MAX_PIPELINES {
        err(
            raw.pipeline[MAX_PIPELINES].span(),
            format!("a spec holds at most {MAX_PIPELINES} pipelines"),
        );
    }
    let mut names = BTreeSet::new();
    let mut pipelines = Vec::new();
    let mut catch_all: Option<String> = None;
    for p in &raw.pipeline {
        let span = p.span();
        let p = p.get_ref();
        let name = p.name.get_ref().clone();
        if !valid_name(&name) {
            err(
                p.name.span(),
                format!(
                    "pipeline name `{name}`: use 1 to 40 lowercase letters, digits and `-`, starting with a letter"
                ),
            );
        }
        if !names.insert(name.clone()) {
            err(
                p.name.span(),
                format!("a pipeline named `{name}` is already defined above"),
            );
        }
        if let Some(previous) = &catch_all {
            err(
                p.name.span(),
                format!(
                    "pipeline `{name}` can never be chosen: `{previous}` above it takes every release (pipelines are tried in order)"
                ),
            );
        }
        let mut select = Selector::default();
        if let Some(s) = &p.select {
            if let Some(t) = &s.tier {
                match Tier::parse(t.get_ref()) {
                    Some(t) => select.tier = Some(t),
                    None => err(
                        t.span(),
                        format!("`{}` is not a tier: use partner or community", t.get_ref()),
                    ),
                }
            }
            select.verified = s.verified;
            if let Some(pattern) = &s.plugin {
                if glob::Pattern::new(pattern.get_ref()).is_err() || pattern.get_ref().is_empty() {
                    err(
                        pattern.span(),
                        format!(
                            "`{}` is not a plugin id pattern: use a glob such as `acme-*`",
                            pattern.get_ref()
                        ),
                    );
                } else {
                    select.plugin = Some(pattern.get_ref().clone());
                }
            }
        }
        if select == Selector::default() && catch_all.is_none() {
            catch_all = Some(name.clone());
        }
        if p.stage.is_empty() {
            err(
                span.clone(),
                format!(
                    "pipeline `{name}` has no stages: it needs at least a `sign` and a `ga` stage"
                ),
            );
        }
        if p.stage.len() > MAX_STAGES {
            err(
                p.stage[MAX_STAGES].span(),
                format!("a pipeline holds at most {MAX_STAGES} stages"),
            );
        }
        let mut stages = Vec::new();
        let mut stage_names = BTreeSet::new();
        for s in &p.stage {
            let stage_span = s.span();
            let s = s.get_ref();
            let sname = s.name.get_ref().clone();
            if !valid_name(&sname) {
                err(
                    s.name.span(),
                    format!(
                        "stage name `{sname}`: use 1 to 40 lowercase letters, digits and `-`, starting with a letter"
                    ),
                );
            } else if sname == JUDGE_STEP {
                err(
                    s.name.span(),
                    format!(
                        "`{JUDGE_STEP}` is the name of Stellar's own first step (the verdict): choose another stage name"
                    ),
                );
            }
            if !stage_names.insert(sname.clone()) {
                err(
                    s.name.span(),
                    format!("pipeline `{name}` already has a stage named `{sname}`"),
                );
            }
            let only = |field: &str, present: bool, kinds: &str, span: Option<Range<usize>>| {
                (present, field.to_owned(), kinds.to_owned(), span)
            };
            let extras = [
                only(
                    "role",
                    s.role.is_some(),
                    "approval",
                    s.role.as_ref().map(|r| r.span()),
                ),
                only(
                    "approvers",
                    s.approvers.is_some(),
                    "approval",
                    s.approvers.as_ref().map(|r| r.span()),
                ),
                only(
                    "key",
                    s.key.is_some(),
                    "sign",
                    s.key.as_ref().map(|r| r.span()),
                ),
                only(
                    "steps",
                    s.steps.is_some(),
                    "rollout",
                    s.steps.as_ref().map(|r| r.span()),
                ),
                only(
                    "analysis",
                    s.analysis.is_some(),
                    "rollout",
                    s.analysis.as_ref().map(|r| r.span()),
                ),
                only(
                    "interval",
                    s.interval.is_some(),
                    "rollout",
                    s.interval.as_ref().map(|r| r.span()),
                ),
                only(
                    "window",
                    s.window.is_some(),
                    "rollout",
                    s.window.as_ref().map(|r| r.span()),
                ),
                only(
                    "min_samples",
                    s.min_samples.is_some(),
                    "rollout",
                    s.min_samples.as_ref().map(|r| r.span()),
                ),
                only(
                    "inconclusive_limit",
                    s.inconclusive_limit.is_some(),
                    "rollout",
                    s.inconclusive_limit.as_ref().map(|r| r.span()),
                ),
            ];
            let kind_text = s.kind.get_ref().as_str();
            for (present, field, kinds, span) in &extras {
                if *present
                    && kinds != kind_text
                    && ["approval", "sign", "rollout", "ga"].contains(&kind_text)
                {
                    err(
                        span.clone().unwrap_or(stage_span.clone()),
                        format!("`{field}` belongs to {kinds} stages, not to a {kind_text} stage"),
                    );
                }
            }
            let kind = match kind_text {
                "approval" => {
                    let role = match &s.role {
                        None => {
                            err(
                                s.kind.span(),
                                format!(
                                    "approval stage `{sname}` needs a `role` (reviewer, secops, platform or admin)"
                                ),
                            );
                            ApproverRole::Reviewer
                        }
                        Some(r) => match r.get_ref().as_str() {
                            "reviewer" => ApproverRole::Reviewer,
                            "secops" => ApproverRole::Secops,
                            "platform" => ApproverRole::Platform,
                            "admin" => ApproverRole::Admin,
                            "partner" => {
                                err(r.span(), "partners never approve releases: use reviewer, secops, platform or admin".into());
                                ApproverRole::Reviewer
                            }
                            other => {
                                err(
                                    r.span(),
                                    format!(
                                        "`{other}` is not a role: use reviewer, secops, platform or admin"
                                    ),
                                );
                                ApproverRole::Reviewer
                            }
                        },
                    };
                    let approvers = match &s.approvers {
                        None => 1,
                        Some(n) if (1..=10).contains(n.get_ref()) => *n.get_ref() as u32,
                        Some(n) => {
                            err(
                                n.span(),
                                format!(
                                    "`approvers` is {}: it must be 1 to 10 distinct people",
                                    n.get_ref()
                                ),
                            );
                            1
                        }
                    };
                    StageKind::Approval { role, approvers }
                }
                "sign" => {
                    if let Some(k) = &s.key
                        && k.get_ref() != "release"
                    {
                        err(
                            k.span(),
                            format!(
                                "a sign stage signs with the `release` key; `{}` keys sign other things (validator: verdicts, pipeline-step: links, ledger-checkpoint: the ledger)",
                                k.get_ref()
                            ),
                        );
                    }
                    StageKind::Sign
                }
                "rollout" => {
                    let mut steps = Vec::new();
                    match &s.steps {
                        None => err(
                            s.kind.span(),
                            format!(
                                "rollout stage `{sname}` needs `steps`, such as [{{ percent = 10, hold = \"1h\" }}, {{ percent = 100, hold = \"0s\" }}]"
                            ),
                        ),
                        Some(list)
                            if list.get_ref().is_empty()
                                || list.get_ref().len() > MAX_ROLLOUT_STEPS =>
                        {
                            err(
                                list.span(),
                                format!("a rollout stage has 1 to {MAX_ROLLOUT_STEPS} steps"),
                            )
                        }
                        Some(list) => {
                            let mut last = 0i64;
                            for step in list.get_ref() {
                                let st = step.get_ref();
                                let pct = *st.percent.get_ref();
                                if !(1..=100).contains(&pct) {
                                    err(
                                        st.percent.span(),
                                        format!("`percent` is {pct}: it must be 1 to 100"),
                                    );
                                } else if pct <= last {
                                    err(
                                        st.percent.span(),
                                        format!(
                                            "`percent` {pct} does not rise above the step before ({last}): steps go up"
                                        ),
                                    );
                                }
                                last = last.max(pct);
                                let hold = match parse_duration(st.hold.get_ref()) {
                                    Ok(d) => d.as_secs(),
                                    Err(m) => {
                                        err(st.hold.span(), m);
                                        0
                                    }
                                };
                                steps.push(RolloutStep {
                                    percent: pct.clamp(0, 100) as u8,
                                    hold_secs: hold,
                                });
                            }
                        }
                    }
                    let analysis = s.analysis.as_ref().map(|a| a.get_ref().clone());
                    if let Some(a) = &s.analysis
                        && !valid_name(a.get_ref())
                    {
                        err(
                            a.span(),
                            format!(
                                "`{}` is not an analysis name: lowercase letters, digits and `-`",
                                a.get_ref()
                            ),
                        );
                    }
                    let secs =
                        |d: &Option<Spanned<String>>,
                         default: u64,
                         err: &mut dyn FnMut(Range<usize>, String)| match d
                        {
                            None => default,
                            Some(t) => match parse_duration(t.get_ref()) {
                                Ok(d) if d.as_secs() >= 60 && d.as_secs() % 60 == 0 => d.as_secs(),
                                Ok(_) => {
                                    err(
                                        t.span(),
                                        "analysis times are whole minutes, at least `1m`".into(),
                                    );
                                    default
                                }
                                Err(m) => {
                                    err(t.span(), m);
                                    default
                                }
                            },
                        };
                    let interval_secs = secs(&s.interval, DEFAULT_INTERVAL_SECS, &mut err);
                    let window_secs = secs(&s.window, 2 * interval_secs, &mut err);
                    if window_secs < interval_secs || window_secs % interval_secs != 0 {
                        err(
                            s.window
                                .as_ref()
                                .map(|w| w.span())
                                .unwrap_or(stage_span.clone()),
                            format!(
                                "`window` must be a whole number of intervals (here the interval is {}m): both cohorts are measured over it",
                                interval_secs / 60
                            ),
                        );
                    }
                    let count =
                        |v: &Option<Spanned<i64>>,
                         default: u64,
                         max: i64,
                         what: &str,
                         err: &mut dyn FnMut(Range<usize>, String)| match v
                        {
                            None => default,
                            Some(n) if (1..=max).contains(n.get_ref()) => *n.get_ref() as u64,
                            Some(n) => {
                                err(
                                    n.span(),
                                    format!("`{what}` is {}: it must be 1 to {max}", n.get_ref()),
                                );
                                default
                            }
                        };
                    let min_samples = count(
                        &s.min_samples,
                        DEFAULT_MIN_SAMPLES,
                        1_000_000_000,
                        "min_samples",
                        &mut err,
                    );
                    let inconclusive_limit = count(
                        &s.inconclusive_limit,
                        u64::from(DEFAULT_INCONCLUSIVE_LIMIT),
                        1000,
                        "inconclusive_limit",
                        &mut err,
                    ) as u32;
                    StageKind::Rollout {
                        steps,
                        analysis,
                        interval_secs,
                        window_secs,
                        min_samples,
                        inconclusive_limit,
                    }
                }
                "ga" => StageKind::Ga,
                other => {
                    err(
                        s.kind.span(),
                        format!("`{other}` is not a stage kind: use approval, sign, rollout or ga"),
                    );
                    continue;
                }
            };
            let (line, _) = line_col(text, stage_span.start);
            stages.push(Stage {
                name: sname,
                kind,
                line,
            });
        }
        // Order: one ga, last; a sign before anything that reaches hosts.
        let ga_count = stages.iter().filter(|s| s.kind == StageKind::Ga).count();
        let last_is_ga = stages.last().is_some_and(|s| s.kind == StageKind::Ga);
        if !p.stage.is_empty() && (ga_count != 1 || !last_is_ga) {
            err(
                p.name.span(),
                format!(
                    "pipeline `{name}` must end with exactly one `ga` stage (it has {ga_count}{})",
                    if ga_count == 1 { ", not last" } else { "" }
                ),
            );
        }
        let first_sign = stages.iter().position(|s| s.kind == StageKind::Sign);
        if let Some(first_promotion) = stages.iter().position(|s| s.kind.is_promotion())
            && first_sign.is_none_or(|s| s > first_promotion)
        {
            let st = &stages[first_promotion];
            let span = p
                .stage
                .iter()
                .find(|r| r.get_ref().name.get_ref() == &st.name)
                .map(|r| r.span())
                .unwrap_or(span.clone());
            err(
                span,
                format!(
                    "stage `{}` reaches hosts before any `sign` stage: nothing unsigned reaches a host, add a sign stage before it",
                    st.name
                ),
            );
        }
        pipelines.push(Pipeline {
            name,
            select,
            auto_release: p.auto_release,
            stages,
        });
    }
    if errors.is_empty() {
        Ok(Spec {
            layout_expires_days,
            pipelines,
        })
    } else {
        errors.sort_by_key(|e| (e.line, e.column));
        Err(errors)
    }
}

#[cfg(test)]
mod tests;
