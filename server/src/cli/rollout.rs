//! `stellar rollout simulate`: a rollout scenario played against rollback rules offline, with
//! the decision at each analysis interval and why (`delivery::simulate`). A platform engineer
//! tries new rollback rules here before a release uses them.

use std::process::ExitCode;

use delivery::rollout::{Judgement, Outcome, Phase};
use delivery::simulate::{IntervalReport, Simulation};
use dsl::{CheckOptions, EvalOptions, Schema};

use super::args::{PolicyFormat as Format, RolloutCommand};
use crate::services::policy;

/// Exit code for a usage or load problem (as opposed to an outcome).
const EXIT_TROUBLE: u8 = 3;

pub fn run(cmd: RolloutCommand) -> ExitCode {
    match cmd {
        RolloutCommand::Simulate {
            policy: paths,
            scenario,
            seed,
            release,
            common,
        } => {
            let today = common
                .today
                .unwrap_or_else(|| chrono::Utc::now().date_naive());
            let loaded = match policy::load_files(
                &paths,
                &CheckOptions {
                    schema: Schema::rollout(),
                    today,
                },
            ) {
                Ok(l) => l,
                Err(e) => return trouble(&e),
            };
            let Some(pack) = loaded.pack.as_ref().filter(|_| !loaded.has_errors()) else {
                eprint!("{}", loaded.render(false));
                return trouble("the rollback rules do not check");
            };
            let text = match policy::read(&scenario) {
                Ok(t) => t,
                Err(e) => return trouble(&e),
            };
            let sc = match delivery::scenario::parse(&text) {
                Ok(s) => s,
                Err(e) => return trouble(&format!("{}: {e}", scenario.display())),
            };
            let seed = seed.unwrap_or(sc.seed);
            let sim = match delivery::simulate::simulate(
                &sc,
                pack,
                &EvalOptions::new(today),
                seed,
                release.as_deref(),
            ) {
                Ok(s) => s,
                Err(e) => return trouble(&e),
            };
            match common.format {
                Format::Json => {
                    println!("{}", serde_json::to_string_pretty(&sim).unwrap_or_default())
                }
                Format::Text => print!("{}", render(&sim)),
            }
            match &sim.expectation {
                Some(Err(_)) => ExitCode::FAILURE,
                _ => ExitCode::SUCCESS,
            }
        }
    }
}

fn trouble(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_TROUBLE)
}

fn cohort(f: &serde_json::Value) -> String {
    format!(
        "{} on {} hosts ({} silent): {} calls, {} errors ({} bp), {} crashes, p95 {} ms",
        f["version"].as_str().unwrap_or("-"),
        f["hosts"],
        f["silent_hosts"],
        f["samples"],
        f["errors"],
        f["error_rate_bp"],
        f["crashes"],
        f["p95_ms"],
    )
}

fn line(i: &IntervalReport) -> String {
    let judgement = match i.judgement {
        Judgement::Pass => "pass",
        Judgement::Warn => "warn",
        Judgement::Deny => "deny",
    };
    let outcome = match i.outcome {
        Outcome::RollBack => "roll back",
        Outcome::Hold => "hold (inconclusive)",
        Outcome::Pause => "pause for a person",
        Outcome::Stay => "stay (hold time not over)",
        Outcome::Advance => "next step",
        Outcome::Complete => "complete: every host",
    };
    let mut out = format!(
        "{:>5}m  step {} ({:>3} %)  {judgement} → {outcome}\n",
        i.minute, i.step, i.weight
    );
    out.push_str(&format!(
        "        canary   {}\n",
        cohort(&i.facts["canary"])
    ));
    if i.facts["baseline"]["version"].as_str() != Some("") {
        out.push_str(&format!(
            "        baseline {}\n",
            cohort(&i.facts["baseline"])
        ));
    }
    for f in &i.fired {
        out.push_str(&format!("        {} {}: {}\n", f.effect, f.rule, f.message));
        for e in &f.evidence {
            out.push_str(&format!("          evidence: {e}\n"));
        }
    }
    out
}

/// The simulation for people.
pub fn render(sim: &Simulation) -> String {
    let mut out = format!("scenario: {} (seed {})\n\n", sim.scenario, sim.seed);
    for i in &sim.intervals {
        out.push_str(&line(i));
    }
    let ended = match sim.phase {
        Phase::Complete => "complete".to_owned(),
        Phase::RolledBack => format!("rolled back at step {}", sim.step),
        Phase::Paused => format!("paused for a person at step {}", sim.step),
        Phase::Running => format!("still at step {} when the scenario ended", sim.step),
    };
    out.push_str(&format!(
        "\noutcome: {ended} after {} intervals\n",
        sim.intervals.len()
    ));
    match &sim.expectation {
        Some(Ok(())) => out.push_str("expected: yes\n"),
        Some(Err(why)) => out.push_str(&format!("expected: NO — {why}\n")),
        None => {}
    }
    out
}
