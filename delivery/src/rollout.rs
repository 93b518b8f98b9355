//! Rollout analysis: what the hosts of each cohort reported over a window, reduced to the facts
//! rollback rules judge (`dsl::Schema::rollout`), and what a verdict on them means for the
//! rollout — roll back, hold, pause for a person, stay, take the next step, or finish.
//!
//! Both cohorts are measured over the same window (Kayenta's rule: compare at the same time,
//! never against yesterday), which starts no earlier than the current step: hosts change
//! cohorts when a step is taken. Latencies are counted in a histogram with fixed buckets
//! ([`LATENCY_BUCKETS_MS`]), so that samples from any number of hosts merge exactly by adding
//! counts, and percentiles are read from the merged counts.
//!
//! **Invariants.** A verdict's `deny` always rolls back; `warn` (inconclusive) never advances
//! and, after [`Plan::inconclusive_limit`] in a row, pauses for a person; `pass` advances only
//! when the step's hold time has passed since the step began or since its last inconclusive
//! interval, whichever is later. Entering a step of 100 % completes the rollout (every host
//! runs the new version: there is no baseline left to compare with). Nothing here reads a clock:
//! the caller says what time it is, so the server's scheduler, the offline simulation and the
//! tests run the same code.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::spec::{RolloutStep, StageKind};

/// Upper bounds of the latency buckets, in milliseconds: ten to a decade (each about 1.26 times
/// the one before, rounded), from 1 ms to 63 s; a last bucket counts everything above. A
/// percentile is read as the bound of its bucket, so it is exact to about a quarter — finer than
/// the margins rollback rules compare with.
pub const LATENCY_BUCKETS_MS: [u64; 46] = [
    1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20, 25, 32, 40, 50, 63, 80, 100, 130, 160, 200, 250, 320, 400,
    500, 630, 800, 1_000, 1_300, 1_600, 2_000, 2_500, 3_200, 4_000, 5_000, 6_300, 8_000, 10_000,
    13_000, 16_000, 20_000, 25_000, 32_000, 40_000, 50_000, 63_000,
];

/// Latencies counted by bucket ([`LATENCY_BUCKETS_MS`], then the overflow bucket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    pub counts: Vec<u64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; LATENCY_BUCKETS_MS.len() + 1],
        }
    }
}

impl Histogram {
    /// Counts one call of `ms` milliseconds.
    pub fn record(&mut self, ms: u64) {
        let i = LATENCY_BUCKETS_MS
            .iter()
            .position(|&b| ms <= b)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        if let Some(c) = self.counts.get_mut(i) {
            *c = c.saturating_add(1);
        }
    }

    /// Adds another histogram's counts (exact: the buckets are the same everywhere).
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.saturating_add(*b);
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, b| a.saturating_add(*b))
    }

    /// The latency below which `per_mille` ‰ of the calls fall, as the upper bound of its
    /// bucket (the overflow bucket reports the last bound); 0 without calls.
    pub fn quantile(&self, per_mille: u64) -> u64 {
        let total = self.total();
        if total == 0 {
            return 0;
        }
        // The rank of the call at the quantile, from 1.
        let rank = (total.saturating_mul(per_mille.min(1000)))
            .div_ceil(1000)
            .max(1);
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            seen = seen.saturating_add(*c);
            if seen >= rank {
                return LATENCY_BUCKETS_MS
                    .get(i)
                    .or(LATENCY_BUCKETS_MS.last())
                    .copied()
                    .unwrap_or(0);
            }
        }
        LATENCY_BUCKETS_MS.last().copied().unwrap_or(0)
    }

    /// Whether the histogram has the documented number of buckets.
    pub fn is_well_formed(&self) -> bool {
        self.counts.len() == LATENCY_BUCKETS_MS.len() + 1
    }
}

/// What one host reported for one plugin version over one interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub host: String,
    pub version: String,
    /// Which interval (whole intervals since the rollout began).
    pub interval: u64,
    pub calls: u64,
    pub errors: u64,
    pub crashes: u64,
    pub latency: Histogram,
}

/// A cohort over a window: the samples of the hosts that ran one version, merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cohort {
    pub version: String,
    /// Hosts told to run this version.
    pub assigned: u64,
    /// Hosts that reported in the window.
    pub reporting: BTreeSet<String>,
    pub calls: u64,
    pub errors: u64,
    pub crashes: u64,
    pub latency: Histogram,
}

impl Cohort {
    pub fn new(version: &str, assigned: u64) -> Self {
        Cohort {
            version: version.to_owned(),
            assigned,
            ..Cohort::default()
        }
    }

    /// Adds a sample of this cohort's version.
    pub fn add(&mut self, s: &Sample) {
        self.reporting.insert(s.host.clone());
        self.calls = self.calls.saturating_add(s.calls);
        self.errors = self.errors.saturating_add(s.errors);
        self.crashes = self.crashes.saturating_add(s.crashes);
        self.latency.merge(&s.latency);
    }

    fn rate_bp(&self, n: u64) -> u64 {
        // 0 without calls.
        n.saturating_mul(10_000)
            .checked_div(self.calls)
            .unwrap_or(0)
    }

    /// The cohort as rollout facts (`canary` or `baseline`).
    pub fn facts(&self) -> serde_json::Value {
        let hosts = self.reporting.len() as u64;
        serde_json::json!({
            "version": self.version,
            "hosts": hosts,
            "silent_hosts": self.assigned.saturating_sub(hosts),
            "samples": self.calls,
            "errors": self.errors,
            "crashes": self.crashes,
            "error_rate_bp": self.rate_bp(self.errors),
            "crash_rate_bp": self.rate_bp(self.crashes),
            "p50_ms": self.latency.quantile(500),
            "p95_ms": self.latency.quantile(950),
            "p99_ms": self.latency.quantile(990),
        })
    }
}

/// How a rollout stage proceeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub steps: Vec<RolloutStep>,
    /// Seconds between analyses.
    pub interval_secs: u64,
    /// Seconds of samples each analysis looks at (both cohorts, the same window).
    pub window_secs: u64,
    /// Inconclusive intervals in a row before the rollout pauses for a person.
    pub inconclusive_limit: u32,
    /// Fewest calls per cohort in the window before a comparison means anything (the rules
    /// read it as `input.min_samples`).
    pub min_samples: u64,
}

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Running,
    /// Stopped for a person (too many inconclusive intervals, or paused by hand).
    Paused,
    RolledBack,
    Complete,
}

impl Phase {
    pub const ALL: [Phase; 4] = [
        Phase::Running,
        Phase::Paused,
        Phase::RolledBack,
        Phase::Complete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Running => "running",
            Phase::Paused => "paused",
            Phase::RolledBack => "rolled_back",
            Phase::Complete => "complete",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::RollBack => "roll_back",
            Outcome::Hold => "hold",
            Outcome::Pause => "pause",
            Outcome::Stay => "stay",
            Outcome::Advance => "advance",
            Outcome::Complete => "complete",
        }
    }
}

impl Judgement {
    pub fn as_str(self) -> &'static str {
        match self {
            Judgement::Pass => "pass",
            Judgement::Warn => "warn",
            Judgement::Deny => "deny",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The current step, from 0.
    pub step: usize,
    /// When the current step began (seconds since the rollout began).
    pub step_started: u64,
    /// Since when every interval of the step passed: the hold time counts from here, so a step
    /// advances only after its hold time of conclusive, passing intervals.
    pub passing_since: u64,
    /// Inconclusive intervals in a row.
    pub inconclusive: u32,
    pub phase: Phase,
}

impl Progress {
    pub fn start() -> Self {
        Progress {
            step: 0,
            step_started: 0,
            passing_since: 0,
            inconclusive: 0,
            phase: Phase::Running,
        }
    }
}

/// What an interval's verdict did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// deny: every host returns to the previous version.
    RollBack,
    /// warn: inconclusive; the step holds.
    Hold,
    /// warn, and the limit of inconclusive intervals is reached: a person decides.
    Pause,
    /// pass, and the step's hold time is not over.
    Stay,
    /// pass, and the next step begins.
    Advance,
    /// pass, and the next step is 100 %: every host runs the new version.
    Complete,
}

/// The verdict's decision, as rollback rules give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Judgement {
    Pass,
    Warn,
    Deny,
}

impl Plan {
    /// The plan of a rollout stage of a pipeline spec (`None` for other stages).
    pub fn of(kind: &StageKind) -> Option<Plan> {
        match kind {
            StageKind::Rollout {
                steps,
                interval_secs,
                window_secs,
                min_samples,
                inconclusive_limit,
                ..
            } => Some(Plan {
                steps: steps.clone(),
                interval_secs: *interval_secs,
                window_secs: *window_secs,
                inconclusive_limit: *inconclusive_limit,
                min_samples: *min_samples,
            }),
            _ => None,
        }
    }

    /// The weight (percent of hosts on the new version) of a step.
    pub fn weight(&self, step: usize) -> u8 {
        self.steps.get(step).map(|s| s.percent).unwrap_or(100)
    }

    /// The rollout after an interval judged `judgement` at `now` (seconds since the rollout
    /// began), and what that did. A rollout that is not running does not change.
    pub fn next(&self, p: Progress, now: u64, judgement: Judgement) -> (Progress, Option<Outcome>) {
        if p.phase != Phase::Running {
            return (p, None);
        }
        let mut n = p;
        let outcome = match judgement {
            Judgement::Deny => {
                n.phase = Phase::RolledBack;
                Outcome::RollBack
            }
            Judgement::Warn => {
                n.inconclusive = n.inconclusive.saturating_add(1);
                n.passing_since = now;
                if n.inconclusive >= self.inconclusive_limit.max(1) {
                    n.phase = Phase::Paused;
                    Outcome::Pause
                } else {
                    Outcome::Hold
                }
            }
            Judgement::Pass => {
                n.inconclusive = 0;
                let hold = self.steps.get(p.step).map(|s| s.hold_secs).unwrap_or(0);
                if now.saturating_sub(p.passing_since) < hold {
                    Outcome::Stay
                } else if self.weight(p.step + 1) >= 100 {
                    n.step = (p.step + 1).min(self.steps.len().saturating_sub(1));
                    n.step_started = now;
                    n.passing_since = now;
                    n.phase = Phase::Complete;
                    Outcome::Complete
                } else {
                    n.step = p.step + 1;
                    n.step_started = now;
                    n.passing_since = now;
                    Outcome::Advance
                }
            }
        };
        (n, Some(outcome))
    }
}

/// Which of 10,000 buckets a host falls in for a release: a stable hash of both ids, so a host
/// stays in its cohort for the whole rollout and cohorts differ between releases.
pub fn bucket(host: &str, release: &str) -> u32 {
    let mut h = Sha256::new();
    h.update(release.as_bytes());
    h.update([0]);
    h.update(host.as_bytes());
    let d = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    (u64::from_be_bytes(first) % 10_000) as u32
}

/// Whether a host runs the new version at this weight (percent).
pub fn in_canary(host: &str, release: &str, weight: u8) -> bool {
    bucket(host, release) < u32::from(weight) * 100
}

/// Where the rollout stands, for the facts of an interval.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub plugin: &'a str,
    pub publisher: &'a str,
    pub first_release: bool,
    pub plan: &'a Plan,
    pub progress: Progress,
    /// Seconds since the rollout began.
    pub now: u64,
}

/// The facts rollback rules judge for one interval (`dsl::Schema::rollout`).
pub fn facts(c: &Context<'_>, canary: &Cohort, baseline: &Cohort) -> serde_json::Value {
    serde_json::json!({
        "plugin": c.plugin,
        "publisher": c.publisher,
        "first_release": c.first_release,
        "step": c.progress.step + 1,
        "steps": c.plan.steps.len(),
        "weight": c.plan.weight(c.progress.step),
        "minutes_in_step": c.now.saturating_sub(c.progress.step_started) / 60,
        "window_minutes": c.plan.window_secs / 60,
        "min_samples": c.plan.min_samples,
        "inconclusive_intervals": c.progress.inconclusive,
        "canary": canary.facts(),
        "baseline": baseline.facts(),
    })
}

/// A rule that fired at an interval, as the verdict says it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fired {
    pub rule: String,
    pub effect: String,
    pub message: String,
    /// The evidence, each one sentence (both cohorts' numbers, the threshold, the window).
    pub evidence: Vec<String>,
    /// How to fix what the rule found, when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Judges one interval's facts with rollback rules: the decision and the rules that made it.
/// A rule that cannot be evaluated counts with its effect (it fails closed), so an error in a
/// `deny` rule rolls back rather than passing silently.
pub fn judge(
    pack: &dsl::Pack,
    options: &dsl::EvalOptions,
    facts: &serde_json::Value,
) -> Result<(Judgement, Vec<Fired>), String> {
    if pack.schema().name != "rollout" {
        return Err(format!(
            "the rollback rules must judge rollout facts (`facts rollout` in the pack header); this pack judges {} facts",
            pack.schema().name
        ));
    }
    let verdict = pack
        .evaluate_facts(facts, options)
        .map_err(|e| format!("the facts do not fit the rollout schema: {e}"))?;
    let judgement = match verdict.decision {
        dsl::Decision::Pass => Judgement::Pass,
        dsl::Decision::Warn => Judgement::Warn,
        dsl::Decision::Deny => Judgement::Deny,
    };
    let mut fired: Vec<Fired> = verdict
        .findings
        .iter()
        .filter(|f| f.counts())
        .map(|f| Fired {
            rule: f.rule.to_string(),
            effect: format!("{:?}", f.effect).to_lowercase(),
            message: f.message.to_string(),
            evidence: f.evidence.iter().map(|e| e.text()).collect(),
            fix: f.fix.as_ref().map(|x| x.to_string()),
        })
        .collect();
    fired.extend(verdict.errors.iter().map(|e| Fired {
        rule: e.rule.to_string(),
        effect: format!("{:?}", e.effect).to_lowercase(),
        message: format!("the rule could not be evaluated: {}", e.error),
        evidence: Vec::new(),
        fix: None,
    }));
    Ok((judgement, fired))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            steps: vec![
                RolloutStep {
                    percent: 5,
                    hold_secs: 600,
                },
                RolloutStep {
                    percent: 25,
                    hold_secs: 600,
                },
                RolloutStep {
                    percent: 100,
                    hold_secs: 0,
                },
            ],
            interval_secs: 300,
            window_secs: 600,
            inconclusive_limit: 3,
            min_samples: 200,
        }
    }

    #[test]
    fn a_rollout_stage_carries_its_analysis_plan_with_defaults() {
        let text = "format = 1\n[[pipeline]]\nname = \"p\"\n[[pipeline.stage]]\nname = \"s\"\nkind = \"sign\"\n[[pipeline.stage]]\nname = \"c\"\nkind = \"rollout\"\nsteps = [{ percent = 5, hold = \"1h\" }, { percent = 100, hold = \"0s\" }]\nanalysis = \"default\"\ninterval = \"10m\"\nmin_samples = 500\n[[pipeline.stage]]\nname = \"ga\"\nkind = \"ga\"\n";
        let spec = crate::spec::parse(text).expect("spec");
        let plan = Plan::of(&spec.pipelines[0].stages[1].kind).expect("a rollout plan");
        assert_eq!(
            (
                plan.interval_secs,
                plan.window_secs,
                plan.min_samples,
                plan.inconclusive_limit
            ),
            (600, 1200, 500, crate::spec::DEFAULT_INCONCLUSIVE_LIMIT)
        );
        assert_eq!(plan.steps.len(), 2);
        assert!(Plan::of(&spec.pipelines[0].stages[0].kind).is_none());
    }

    #[test]
    fn verdicts_move_the_rollout_as_documented() {
        use Judgement::*;
        use Outcome::*;
        // (judgements at 5-minute intervals, the outcomes, the final step and phase)
        let cases: &[(&[Judgement], &[Outcome], usize, Phase)] = &[
            (
                &[Pass, Pass, Pass, Pass],
                &[Stay, Advance, Stay, Complete],
                2,
                Phase::Complete,
            ),
            (&[Pass, Deny], &[Stay, RollBack], 0, Phase::RolledBack),
            (
                &[Warn, Warn, Pass, Pass],
                &[Hold, Hold, Stay, Advance],
                1,
                Phase::Running,
            ),
            (&[Warn, Warn, Warn], &[Hold, Hold, Pause], 0, Phase::Paused),
            (
                &[Pass, Pass, Warn, Deny],
                &[Stay, Advance, Hold, RollBack],
                1,
                Phase::RolledBack,
            ),
        ];
        for (judgements, outcomes, step, phase) in cases {
            let plan = plan();
            let mut p = Progress::start();
            let mut got = Vec::new();
            for (i, j) in judgements.iter().enumerate() {
                let (n, o) = plan.next(p, 300 * (i as u64 + 1), *j);
                p = n;
                got.extend(o);
            }
            assert_eq!(&got, outcomes, "{judgements:?}");
            assert_eq!((p.step, p.phase), (*step, *phase), "{judgements:?}");
            // Once stopped, nothing moves it.
            if p.phase != Phase::Running {
                assert_eq!(plan.next(p, 99_999, Pass), (p, None));
            }
        }
    }

    #[test]
    fn histograms_merge_exactly_and_give_bucket_bounds_as_percentiles() {
        let mut a = Histogram::default();
        for ms in [3, 4, 12, 12, 40] {
            a.record(ms);
        }
        let mut b = Histogram::default();
        for ms in [90, 700, 100_000] {
            b.record(ms);
        }
        let mut m = a.clone();
        m.merge(&b);
        assert_eq!(m.total(), 8);
        assert!(m.is_well_formed());
        // (per mille, bucket bound): ranks 4, 8, 8 of 8 calls.
        for (q, want) in [(500, 13), (950, 63_000), (990, 63_000), (100, 3)] {
            assert_eq!(m.quantile(q), want, "q{q}");
        }
        assert_eq!(Histogram::default().quantile(950), 0);
    }

    #[test]
    fn cohorts_are_stable_per_release_and_about_the_weight() {
        let hosts: Vec<String> = (0..2000).map(|i| format!("host-{i}")).collect();
        let share = |release: &str, weight: u8| {
            hosts
                .iter()
                .filter(|h| in_canary(h, release, weight))
                .count()
        };
        // About 5 % and 25 % of 2,000 hosts, and growing the weight only adds hosts.
        assert!((60..=140).contains(&share("r1", 5)), "{}", share("r1", 5));
        assert!((400..=600).contains(&share("r1", 25)));
        assert!(
            hosts
                .iter()
                .filter(|h| in_canary(h, "r1", 5))
                .all(|h| in_canary(h, "r1", 25))
        );
        assert_eq!(share("r1", 100), 2000);
        assert_eq!(share("r1", 0), 0);
        assert_eq!(bucket("host-1", "r1"), bucket("host-1", "r1"));
        assert_ne!(
            hosts
                .iter()
                .filter(|h| in_canary(h, "r1", 5))
                .collect::<Vec<_>>(),
            hosts
                .iter()
                .filter(|h| in_canary(h, "r2", 5))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_cohort_without_calls_has_zero_rates_and_says_so() {
        let c = Cohort::new("1.0.0", 10);
        let f = c.facts();
        assert_eq!(f["samples"], 0);
        assert_eq!(f["error_rate_bp"], 0);
        assert_eq!(f["silent_hosts"], 10);
        assert_eq!(f["p95_ms"], 0);
    }
}
