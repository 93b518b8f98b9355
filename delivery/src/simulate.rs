//! The offline simulation: a scenario played interval by interval against rollback rules,
//! without a server. At each interval the simulated hosts report, both cohorts are merged over
//! the window, the rules judge the facts, and the plan moves the rollout — the decision at each
//! interval and why, so that a platform engineer tries new rollback rules before a release uses
//! them. The server's rollout analysis runs the same [`crate::rollout`] code on the reports real
//! hosts send.

use std::collections::VecDeque;

use serde::Serialize;

use crate::rollout::{self, Cohort, Context, Judgement, Outcome, Phase, Progress, Sample};
use crate::scenario::Scenario;

pub use crate::rollout::Fired;

/// One analysis interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntervalReport {
    /// From 0.
    pub interval: u64,
    /// Minutes since the rollout began, at the end of the interval.
    pub minute: u64,
    /// The step (from 1) and its weight when the interval was judged.
    pub step: usize,
    pub weight: u8,
    pub judgement: Judgement,
    pub outcome: Outcome,
    pub fired: Vec<Fired>,
    /// The facts the rules judged.
    pub facts: serde_json::Value,
}

/// A whole simulated rollout.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Simulation {
    pub scenario: String,
    pub seed: u64,
    pub intervals: Vec<IntervalReport>,
    /// Where it ended: complete, rolled back, paused, or still running when the scenario's
    /// duration ran out.
    pub phase: Phase,
    /// The step it ended at (from 1).
    pub step: usize,
    /// What the scenario expected, when it says, and whether it happened.
    pub expectation: Option<Result<(), String>>,
}

impl Simulation {
    /// The decisions in order, as `outcome@step`: what two runs are compared by.
    pub fn sequence(&self) -> Vec<String> {
        self.intervals
            .iter()
            .map(|i| format!("{:?}@{}", i.outcome, i.step))
            .collect()
    }
}

/// Plays `scenario` with `seed` against `pack` (rollback rules over rollout facts). Cohorts
/// are drawn for `release` (the id of a live release, to compare with its run), or for the
/// scenario's own name.
pub fn simulate(
    scenario: &Scenario,
    pack: &dsl::Pack,
    options: &dsl::EvalOptions,
    seed: u64,
    release: Option<&str>,
) -> Result<Simulation, String> {
    let plan = &scenario.plan;
    let release = release.map_or_else(|| scenario.release(), str::to_owned);
    let per_window = (plan.window_secs / plan.interval_secs).max(1) as usize;
    let intervals = scenario.duration_secs / plan.interval_secs;
    let mut window: VecDeque<Vec<Sample>> = VecDeque::new();
    let mut progress = Progress::start();
    let mut reports = Vec::new();
    for i in 0..intervals {
        let now = (i + 1) * plan.interval_secs;
        let weight = plan.weight(progress.step);
        let mut samples = Vec::new();
        let (mut on_canary, mut on_baseline) = (0u64, 0u64);
        for h in 0..scenario.hosts {
            let host = Scenario::host(h);
            let behaviour = if rollout::in_canary(&host, &release, weight) {
                on_canary += 1;
                Some(&scenario.canary)
            } else {
                on_baseline += u64::from(scenario.baseline.is_some());
                scenario.baseline.as_ref()
            };
            if let Some(b) = behaviour
                && let Some(s) = scenario.sample(seed, h, i, b)
            {
                samples.push(s);
            }
        }
        window.push_back(samples);
        while window.len() > per_window {
            window.pop_front();
        }
        let mut canary = Cohort::new(&scenario.canary.version, on_canary);
        let baseline_version = scenario
            .baseline
            .as_ref()
            .map(|b| b.version.as_str())
            .unwrap_or("");
        let mut baseline = Cohort::new(baseline_version, on_baseline);
        for s in window.iter().flatten() {
            if s.version == canary.version {
                canary.add(s);
            } else if s.version == baseline.version {
                baseline.add(s);
            }
        }
        let context = Context {
            plugin: &scenario.plugin,
            publisher: &scenario.publisher,
            first_release: scenario.first_release,
            plan,
            progress,
            now,
        };
        let facts = rollout::facts(&context, &canary, &baseline);
        let (judgement, fired) =
            rollout::judge(pack, options, &facts).map_err(|e| format!("interval {i}: {e}"))?;
        let (next, outcome) = plan.next(progress, now, judgement);
        reports.push(IntervalReport {
            interval: i,
            minute: now / 60,
            step: progress.step + 1,
            weight,
            judgement,
            outcome: outcome.unwrap_or(Outcome::Stay),
            fired,
            facts,
        });
        if next.step != progress.step {
            // A new step compares only what was reported since it began.
            window.clear();
        }
        progress = next;
        if progress.phase != Phase::Running {
            break;
        }
    }
    let mut sim = Simulation {
        scenario: scenario.name.clone(),
        seed,
        intervals: reports,
        phase: progress.phase,
        step: progress.step + 1,
        expectation: None,
    };
    sim.expectation = scenario.expect.as_ref().map(|e| {
        let mut wrong = Vec::new();
        if e.outcome != sim.phase {
            wrong.push(format!("it ended {:?}, not {:?}", sim.phase, e.outcome));
        }
        if let Some(step) = e.step
            && step != sim.step
        {
            wrong.push(format!("it ended at step {}, not {step}", sim.step));
        }
        if let (Some(within), Some(from)) =
            (e.rollback_within_intervals, scenario.regression_interval())
        {
            match sim.intervals.last() {
                Some(last) if last.outcome == Outcome::RollBack => {
                    let after = last.interval.saturating_sub(from) + 1;
                    if last.interval < from || after > within {
                        wrong.push(format!(
                            "the rollback came {after} intervals after the regression began (at interval {from}); at most {within} expected"
                        ));
                    }
                }
                _ => wrong.push("it did not roll back".into()),
            }
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(wrong.join("; "))
        }
    });
    Ok(sim)
}
