//! Rollout scenarios: how each version of a plugin behaves on a simulated fleet (error rate,
//! crash rate, latency, silence, a regression from a given minute), the rollout plan to play,
//! and the outcome the scenario must produce. The offline simulation (`stellar rollout
//! simulate`) and the fleet simulator play the same file.
//!
//! Samples are drawn from a generator seeded by (seed, host, interval): the same seed gives the
//! same samples whatever order hosts report in, which is what lets an offline run and a live run
//! over HTTP be compared decision by decision.
//!
//! ```toml
//! format = 1
//! name = "error spike"
//! plugin = "acme-logger"
//! publisher = "acme"
//! hosts = 200
//! calls_per_minute = 4            # per host
//!
//! [rollout]
//! steps = [{ percent = 5, hold = "30m" }, { percent = 25, hold = "30m" }, { percent = 100, hold = "0s" }]
//! interval = "5m"
//! window = "10m"
//! duration = "4h"
//!
//! [baseline]
//! version = "1.4.0"
//! error_rate = 0.001
//! p50_ms = 12
//! p95_ms = 40
//!
//! [canary]
//! version = "1.5.0"
//! error_rate = 0.001
//! p50_ms = 12
//! p95_ms = 42
//! regression = { from_minute = 40, error_rate = 0.08 }
//!
//! [expect]
//! outcome = "rolled_back"
//! rollback_within_intervals = 2
//! ```

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use crate::rollout::{Histogram, Phase, Plan, Sample};
use crate::spec::{RolloutStep, parse_duration};

/// Most hosts a scenario may simulate.
pub const MAX_HOSTS: u32 = 100_000;
/// Most calls a host makes in a minute.
pub const MAX_CALLS_PER_MINUTE: u32 = 10_000;
/// Longest simulated rollout.
pub const MAX_DURATION_SECS: u64 = 30 * 86_400;
/// Largest scenario file.
pub const MAX_BYTES: usize = 64 * 1024;
/// Most calls a whole simulation may draw (hosts × calls per minute × minutes): a few seconds
/// of work, whatever the file asks for.
pub const MAX_SIMULATED_CALLS: u64 = 200_000_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioText {
    format: u32,
    name: String,
    plugin: String,
    publisher: String,
    hosts: u32,
    calls_per_minute: u32,
    #[serde(default = "default_seed")]
    seed: u64,
    #[serde(default)]
    first_release: bool,
    rollout: RolloutText,
    baseline: Option<Behaviour>,
    canary: Behaviour,
    expect: Option<Expect>,
}

fn default_seed() -> u64 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RolloutText {
    steps: Vec<StepText>,
    interval: String,
    window: String,
    #[serde(default = "default_inconclusive_limit")]
    inconclusive_limit: u32,
    #[serde(default = "default_min_samples")]
    min_samples: u64,
    duration: String,
}

fn default_min_samples() -> u64 {
    200
}

fn default_inconclusive_limit() -> u32 {
    6
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepText {
    percent: u8,
    hold: String,
}

/// How one version behaves on every host that runs it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Behaviour {
    pub version: String,
    /// Share of calls that fail (0 to 1).
    #[serde(default)]
    pub error_rate: f64,
    /// Share of calls that crash (0 to 1).
    #[serde(default)]
    pub crash_rate: f64,
    /// Median latency, in milliseconds (latencies are log-normal).
    pub p50_ms: f64,
    /// 95th percentile latency, in milliseconds.
    pub p95_ms: f64,
    /// Hosts running this version never report.
    #[serde(default)]
    pub silent: bool,
    /// From a minute of the rollout on, these replace the values above.
    #[serde(default)]
    pub regression: Option<Regression>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regression {
    pub from_minute: u64,
    pub error_rate: Option<f64>,
    pub crash_rate: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub silent: Option<bool>,
}

/// What the scenario must produce.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `complete`, `rolled_back` or `paused`.
    pub outcome: Phase,
    /// The step (from 1) the rollout ends at.
    pub step: Option<usize>,
    /// A rollback comes at most this many intervals after the canary's regression begins.
    pub rollback_within_intervals: Option<u64>,
}

/// A checked scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub plugin: String,
    pub publisher: String,
    pub hosts: u32,
    pub calls_per_minute: u32,
    pub seed: u64,
    pub first_release: bool,
    pub plan: Plan,
    pub duration_secs: u64,
    /// Absent on a first release: hosts outside the canary run nothing.
    pub baseline: Option<Behaviour>,
    pub canary: Behaviour,
    pub expect: Option<Expect>,
}

/// Reads and checks a scenario; every error says what is wrong and how to write it.
pub fn parse(text: &str) -> Result<Scenario, String> {
    if text.len() > MAX_BYTES {
        return Err(format!(
            "the scenario is {} bytes; the limit is {MAX_BYTES}",
            text.len()
        ));
    }
    let t: ScenarioText = toml::from_str(text).map_err(|e| format!("the scenario: {e}"))?;
    if t.format != 1 {
        return Err(format!(
            "`format = {}` is not a scenario format this Stellar reads: write `format = 1`",
            t.format
        ));
    }
    if t.hosts == 0 || t.hosts > MAX_HOSTS {
        return Err(format!(
            "`hosts` is {}: it must be 1 to {MAX_HOSTS}",
            t.hosts
        ));
    }
    if t.calls_per_minute == 0 || t.calls_per_minute > MAX_CALLS_PER_MINUTE {
        return Err(format!(
            "`calls_per_minute` is {}: it must be 1 to {MAX_CALLS_PER_MINUTE}",
            t.calls_per_minute
        ));
    }
    let secs = |what: &str, text: &str| -> Result<u64, String> {
        parse_duration(text)
            .map(|d| d.as_secs())
            .map_err(|e| format!("`rollout.{what}`: {e}"))
    };
    let interval_secs = secs("interval", &t.rollout.interval)?;
    let window_secs = secs("window", &t.rollout.window)?;
    let duration_secs = secs("duration", &t.rollout.duration)?;
    if interval_secs < 60 || interval_secs % 60 != 0 {
        return Err("`rollout.interval` must be whole minutes, at least `1m`".into());
    }
    if window_secs < interval_secs || window_secs % interval_secs != 0 {
        return Err(
            "`rollout.window` must be a whole number of intervals (`interval = \"5m\"`, `window = \"10m\"`)"
                .into(),
        );
    }
    if duration_secs < interval_secs || duration_secs > MAX_DURATION_SECS {
        return Err(format!(
            "`rollout.duration` must be at least one interval and at most {} days",
            MAX_DURATION_SECS / 86_400
        ));
    }
    let calls = u64::from(t.hosts)
        .saturating_mul(u64::from(t.calls_per_minute))
        .saturating_mul(duration_secs / 60);
    if calls > MAX_SIMULATED_CALLS {
        return Err(format!(
            "the scenario would simulate {calls} calls (hosts × calls_per_minute × minutes); the limit is {MAX_SIMULATED_CALLS}: fewer hosts, fewer calls or a shorter duration"
        ));
    }
    if t.rollout.steps.is_empty() || t.rollout.steps.len() > crate::spec::MAX_ROLLOUT_STEPS {
        return Err(format!(
            "`rollout.steps` has 1 to {} steps, such as [{{ percent = 5, hold = \"30m\" }}, {{ percent = 100, hold = \"0s\" }}]",
            crate::spec::MAX_ROLLOUT_STEPS
        ));
    }
    let mut steps = Vec::new();
    let mut last = 0u8;
    for (i, s) in t.rollout.steps.iter().enumerate() {
        if s.percent == 0 || s.percent > 100 || s.percent <= last {
            return Err(format!(
                "step {} of `rollout.steps` has `percent = {}`: percents rise, from 1 to 100",
                i + 1,
                s.percent
            ));
        }
        last = s.percent;
        steps.push(RolloutStep {
            percent: s.percent,
            hold_secs: secs("steps.hold", &s.hold)?,
        });
    }
    if last != 100 {
        return Err("the last of `rollout.steps` must be `percent = 100` (every host)".into());
    }
    if steps.len() < 2 {
        return Err(
            "`rollout.steps` needs a step below 100 % before the last: one step of 100 % is GA, with nothing to analyse"
                .into(),
        );
    }
    check_behaviour("canary", &t.canary)?;
    match (&t.baseline, t.first_release) {
        (Some(b), false) => check_behaviour("baseline", b)?,
        (None, false) => {
            return Err(
                "a `[baseline]` is needed (the version the canary replaces), or `first_release = true`"
                    .into(),
            );
        }
        (Some(_), true) => {
            return Err(
                "a first release has no `[baseline]`: remove it, or `first_release = false`".into(),
            );
        }
        (None, true) => {}
    }
    if let Some(e) = &t.expect
        && e.outcome == Phase::Running
    {
        return Err("`expect.outcome` is `complete`, `rolled_back` or `paused`".into());
    }
    Ok(Scenario {
        name: t.name,
        plugin: t.plugin,
        publisher: t.publisher,
        hosts: t.hosts,
        calls_per_minute: t.calls_per_minute,
        seed: t.seed,
        first_release: t.first_release,
        plan: Plan {
            steps,
            interval_secs,
            window_secs,
            inconclusive_limit: t.rollout.inconclusive_limit.max(1),
            min_samples: t.rollout.min_samples,
        },
        duration_secs,
        baseline: t.baseline,
        canary: t.canary,
        expect: t.expect,
    })
}

fn check_behaviour(which: &str, b: &Behaviour) -> Result<(), String> {
    let rate = |what: &str, r: f64| {
        if (0.0..=1.0).contains(&r) {
            Ok(())
        } else {
            Err(format!(
                "`{which}.{what}` is {r}: a rate is a share of calls, from 0 to 1"
            ))
        }
    };
    let latency = |p50: f64, p95: f64| {
        if p50 >= 0.1 && p95 >= p50 && p95 <= 600_000.0 {
            Ok(())
        } else {
            Err(format!(
                "`{which}` latencies: `p50_ms` at least 0.1, `p95_ms` at least `p50_ms` and at most 600000"
            ))
        }
    };
    rate("error_rate", b.error_rate)?;
    rate("crash_rate", b.crash_rate)?;
    latency(b.p50_ms, b.p95_ms)?;
    if let Some(r) = &b.regression {
        rate("regression.error_rate", r.error_rate.unwrap_or(0.0))?;
        rate("regression.crash_rate", r.crash_rate.unwrap_or(0.0))?;
        latency(r.p50_ms.unwrap_or(b.p50_ms), r.p95_ms.unwrap_or(b.p95_ms))?;
    }
    Ok(())
}

/// How a version behaves at a minute of the rollout (its regression applied from its minute).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Now {
    pub error_rate: f64,
    pub crash_rate: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub silent: bool,
}

impl Behaviour {
    pub fn at(&self, minute: u64) -> Now {
        let mut n = Now {
            error_rate: self.error_rate,
            crash_rate: self.crash_rate,
            p50_ms: self.p50_ms,
            p95_ms: self.p95_ms,
            silent: self.silent,
        };
        if let Some(r) = &self.regression
            && minute >= r.from_minute
        {
            n.error_rate = r.error_rate.unwrap_or(n.error_rate);
            n.crash_rate = r.crash_rate.unwrap_or(n.crash_rate);
            n.p50_ms = r.p50_ms.unwrap_or(n.p50_ms);
            n.p95_ms = r.p95_ms.unwrap_or(n.p95_ms);
            n.silent = r.silent.unwrap_or(n.silent);
        }
        n
    }
}

impl Scenario {
    /// The id of simulated host `i`.
    pub fn host(i: u32) -> String {
        format!("host-{i:05}")
    }

    /// The release id cohorts are hashed with.
    pub fn release(&self) -> String {
        format!("{}@{}", self.plugin, self.canary.version)
    }

    /// The interval (from 0) at which the canary's regression begins, if it has one.
    pub fn regression_interval(&self) -> Option<u64> {
        let r = self.canary.regression.as_ref()?;
        let minutes = self.plan.interval_secs / 60;
        Some(r.from_minute.div_ceil(minutes.max(1)))
    }

    /// What host `host` reports for interval `interval` when it runs `b`, or nothing when the
    /// version is silent then. Deterministic in (seed, host, interval).
    pub fn sample(&self, seed: u64, host: u32, interval: u64, b: &Behaviour) -> Option<Sample> {
        let minutes = self.plan.interval_secs / 60;
        let now = b.at(interval.saturating_mul(minutes));
        if now.silent {
            return None;
        }
        let mix = seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(u64::from(host).wrapping_mul(0xBF58_476D_1CE4_E5B9))
            .wrapping_add(interval.wrapping_mul(0x94D0_49BB_1331_11EB));
        let mut rng = ChaCha8Rng::seed_from_u64(mix);
        let base = u64::from(self.calls_per_minute).saturating_mul(minutes) as f64;
        let calls = (base * rng.random_range(0.8..=1.2)).round().max(1.0) as u64;
        let mu = now.p50_ms.ln();
        let sigma = (now.p95_ms / now.p50_ms).ln() / 1.644_853_626_951_472_2;
        let mut latency = Histogram::default();
        let (mut errors, mut crashes) = (0u64, 0u64);
        for _ in 0..calls {
            if rng.random::<f64>() < now.crash_rate {
                crashes += 1;
            } else if rng.random::<f64>() < now.error_rate {
                errors += 1;
            }
            // A log-normal latency (Box-Muller for the normal deviate).
            let u1: f64 = rng.random_range(f64::EPSILON..1.0);
            let u2: f64 = rng.random();
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            let ms = (mu + sigma * z).exp().round();
            latency.record(if ms.is_finite() { ms as u64 } else { u64::MAX });
        }
        Some(Sample {
            host: Scenario::host(host),
            version: b.version.clone(),
            interval,
            calls,
            errors,
            crashes,
            latency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"
format = 1
name = "t"
plugin = "p"
publisher = "acme"
hosts = 10
calls_per_minute = 4
[rollout]
steps = [{ percent = 10, hold = "10m" }, { percent = 100, hold = "0s" }]
interval = "5m"
window = "10m"
duration = "1h"
[baseline]
version = "1.0.0"
p50_ms = 10
p95_ms = 30
[canary]
version = "1.1.0"
p50_ms = 10
p95_ms = 30
regression = { from_minute = 12, error_rate = 0.5 }
"#;

    #[test]
    fn a_scenario_reads_and_bad_ones_say_what_is_wrong() {
        let s = parse(OK).unwrap();
        assert_eq!(s.plan.interval_secs, 300);
        assert_eq!(s.regression_interval(), Some(3));
        // (change, what the error says)
        let cases = [
            ("format = 1", "format = 2", "format = 1"),
            ("hosts = 10", "hosts = 0", "1 to 100000"),
            (
                "window = \"10m\"",
                "window = \"7m\"",
                "whole number of intervals",
            ),
            ("percent = 10,", "percent = 0,", "percents rise"),
            (
                "{ percent = 100, hold = \"0s\" }",
                "{ percent = 90, hold = \"0s\" }",
                "must be `percent = 100`",
            ),
            ("error_rate = 0.5", "error_rate = 1.5", "from 0 to 1"),
            ("hold = \"10m\"", "hold = \"soon\"", "not a duration"),
            (
                "[baseline]\nversion = \"1.0.0\"\np50_ms = 10\np95_ms = 30\n",
                "",
                "a `[baseline]` is needed",
            ),
            (
                "hosts = 10",
                "hosts = 10\ncolour = \"red\"",
                "unknown field `colour`",
            ),
            (
                "p95_ms = 30\n[canary]",
                "p95_ms = 5\n[canary]",
                "at least `p50_ms`",
            ),
            (
                "hosts = 10\ncalls_per_minute = 4",
                "hosts = 100000\ncalls_per_minute = 100",
                "the limit is 200000000",
            ),
        ];
        for (from, to, says) in cases {
            assert!(OK.contains(from), "{from}");
            let err = parse(&OK.replacen(from, to, 1)).unwrap_err();
            assert!(err.contains(says), "{from} → {to}: {err}");
        }
    }

    #[test]
    fn samples_depend_only_on_seed_host_and_interval_and_follow_the_behaviour() {
        let s = parse(OK).unwrap();
        let canary = s.canary.clone();
        let a = s.sample(7, 3, 0, &canary).unwrap();
        assert_eq!(Some(a.clone()), s.sample(7, 3, 0, &canary));
        assert_ne!(Some(a.clone()), s.sample(8, 3, 0, &canary));
        assert_ne!(Some(a.clone()), s.sample(7, 4, 0, &canary));
        assert!((16..=24).contains(&a.calls), "{}", a.calls);
        assert_eq!(a.errors, 0);
        assert_eq!(a.latency.total(), a.calls);
        // From minute 12 (interval 3 of 5 minutes) half the calls fail.
        let (calls, errors) = (0..50)
            .filter_map(|h| s.sample(7, h, 3, &canary))
            .fold((0, 0), |(c, e), x| (c + x.calls, e + x.errors));
        assert!(
            errors * 10 > calls * 4 && errors * 10 < calls * 6,
            "{errors}/{calls}"
        );
        let mut silent = canary.clone();
        silent.silent = true;
        assert_eq!(s.sample(7, 3, 0, &silent), None);
    }
}
