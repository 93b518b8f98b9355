//! The stage engine: given a release's pipeline, where the release stands and what the world
//! says now (approvals, signatures, the calendar, the clock), the one next thing to do.
//!
//! The server applies each [`Action`] in one database transaction (the state change, the
//! ledger entry, the link) and asks again until the answer is to wait; it never decides on its
//! own. So the rules of a release live here, as a pure function tests can table.
//!
//! **Invariants:**
//! - A stage starts, then completes, at most once; stages run in order; a finished release
//!   (GA, rejected, aborted, superseded, failed, rolled back) yields [`Action::Nothing`].
//! - Promotions (a rollout step, GA) start only when the calendar is open or an override is in
//!   force; nothing else consults the calendar (an abort never waits).
//! - Time is the caller's `now`: holds and windows move only when the caller's clock does.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::{Calendar, Gate};
use crate::rollout::Phase;
use crate::spec::{Pipeline, StageKind};

/// Where a release stands as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseState {
    /// Created; its layout waits for an offline release-key signature.
    Pending,
    /// Going through its stages (possibly waiting inside one).
    Running,
    /// Every stage completed: GA.
    Succeeded,
    /// An approver rejected it.
    Rejected,
    /// Someone stopped it.
    Aborted,
    /// A newer release of the same plugin replaced it.
    Superseded,
    /// A stage could not complete (a key gone, a signature refused).
    Failed,
    /// Rolled back after reaching hosts.
    RolledBack,
    /// Withdrawn after GA: the channel returns hosts to the version before it.
    Yanked,
}

impl ReleaseState {
    pub const ALL: [ReleaseState; 9] = [
        ReleaseState::Pending,
        ReleaseState::Running,
        ReleaseState::Succeeded,
        ReleaseState::Rejected,
        ReleaseState::Aborted,
        ReleaseState::Superseded,
        ReleaseState::Failed,
        ReleaseState::RolledBack,
        ReleaseState::Yanked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseState::Pending => "pending",
            ReleaseState::Running => "running",
            ReleaseState::Succeeded => "succeeded",
            ReleaseState::Rejected => "rejected",
            ReleaseState::Aborted => "aborted",
            ReleaseState::Superseded => "superseded",
            ReleaseState::Failed => "failed",
            ReleaseState::RolledBack => "rolled_back",
            ReleaseState::Yanked => "yanked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Whether the release is over.
    pub fn is_final(self) -> bool {
        !matches!(self, ReleaseState::Pending | ReleaseState::Running)
    }
}

/// Where one stage stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageState {
    /// Not reached yet.
    Pending,
    /// Started, waiting for something (approvals, a signature, a window, a hold).
    Waiting,
    /// Done.
    Succeeded,
    /// Ended the release (rejection, abort, failure).
    Stopped,
    /// Never reached because the release ended before it.
    Skipped,
}

impl StageState {
    pub fn as_str(self) -> &'static str {
        match self {
            StageState::Pending => "pending",
            StageState::Waiting => "waiting",
            StageState::Succeeded => "succeeded",
            StageState::Stopped => "stopped",
            StageState::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            StageState::Pending,
            StageState::Waiting,
            StageState::Succeeded,
            StageState::Stopped,
            StageState::Skipped,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// A signature a stage asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Signature {
    /// Not asked for yet.
    None,
    /// Asked of an offline key: this signing request waits.
    Requested { request: String },
    /// Made.
    Made,
}

/// One approver's decision on the current stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub user: String,
    pub approve: bool,
    pub reason: String,
}

/// The current stage, as the engine needs to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub state: ReleaseState,
    /// Index of the current stage (== stage count once all completed).
    pub stage: usize,
    pub stage_state: StageState,
    /// For a rollout: the step reached (0-based) and when it started.
    pub step: Option<usize>,
    pub step_started: Option<DateTime<Utc>>,
    /// Decisions on the current stage (approval stages).
    pub decisions: Vec<Decision>,
    /// The current stage's signature (sign stages).
    pub signature: Signature,
    /// An administrator's window override for the current stage.
    pub window_override: bool,
    /// For a rollout judged by rollback rules: where its analysis stands.
    pub analysis: Option<Analysed>,
}

/// Where an analysed rollout stands (the rest of its state is the server's to keep).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysed {
    pub phase: Phase,
    /// When the next interval is judged.
    pub next_at: DateTime<Utc>,
    /// Why it is paused, when it is.
    pub paused_because: Option<String>,
    /// The step the verdicts (or a person's promotion) reached, from 0: when it is ahead of
    /// the release's, the engine takes that step.
    pub step: usize,
}

impl Progress {
    /// A new release at its first stage.
    pub fn start() -> Self {
        Progress {
            state: ReleaseState::Running,
            stage: 0,
            stage_state: StageState::Pending,
            step: None,
            step_started: None,
            decisions: Vec::new(),
            signature: Signature::None,
            window_override: false,
            analysis: None,
        }
    }
}

/// Why a stage waits (shown in the portal and the API, stored with the stage).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Waiting {
    /// For `need - have` more approvals by `role`.
    Approval { role: String, have: u32, need: u32 },
    /// For an offline key's signature.
    Signature { request: String },
    /// For the calendar.
    Window {
        reason: String,
        opens_at: Option<DateTime<Utc>>,
    },
    /// Holding a rollout step.
    Hold { percent: u8, until: DateTime<Utc> },
    /// Rolling out at `percent`, until the rollback rules judge the next interval.
    Analysis { percent: u8, next_at: DateTime<Utc> },
    /// A rollout paused for a person (by hand, or after too many inconclusive intervals).
    Paused { percent: u8, reason: String },
}

impl Waiting {
    /// One sentence for people.
    pub fn describe(&self) -> String {
        match self {
            Waiting::Approval { role, have, need } => format!(
                "waiting for {} more approval(s) by a {role} ({have} of {need})",
                need.saturating_sub(*have)
            ),
            Waiting::Signature { request } => format!(
                "waiting for the offline release key to sign request {request} (`stellar sign-request export`, `stellar sign --offline`, `stellar sign-request import`)"
            ),
            Waiting::Window { reason, opens_at } => match opens_at {
                Some(t) => format!("{reason}; the promotion waits until {}", t.to_rfc3339()),
                None => format!(
                    "{reason}; no window opens within a year: an administrator may override"
                ),
            },
            Waiting::Hold { percent, until } => {
                format!("holding at {percent} % until {}", until.to_rfc3339())
            }
            Waiting::Analysis { percent, next_at } => format!(
                "rolling out at {percent} %; the rollback rules judge the next interval at {}",
                next_at.to_rfc3339()
            ),
            Waiting::Paused { percent, reason } => format!(
                "paused at {percent} %: {reason}; a platform user resumes it (`stellar release resume`) or rolls it back (`stellar release abort`)"
            ),
        }
    }

    /// When to look again by the clock alone (approvals and signatures wake the engine
    /// themselves).
    pub fn recheck_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Waiting::Window { opens_at, .. } => *opens_at,
            Waiting::Hold { until, .. } => Some(*until),
            Waiting::Analysis { next_at, .. } => Some(*next_at),
            _ => None,
        }
    }
}

/// The next thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start the current stage (a promotion only when the calendar is open).
    Start { stage: usize },
    /// Ask for the current sign stage's signature.
    RequestSignature { stage: usize },
    /// Move a rollout to its next step (`step` 0-based, at `percent`).
    Step {
        stage: usize,
        step: usize,
        percent: u8,
    },
    /// Judge the rollout's latest interval with its rollback rules and apply the verdict
    /// (`promote`: whether a passing verdict may take the next step now, by the calendar).
    Analyse { stage: usize, promote: bool },
    /// The rollback rules denied: every host returns to the previous version.
    RollBack { stage: usize },
    /// Record that the current stage waits, and why.
    Wait { stage: usize, why: Waiting },
    /// Complete the current stage (write its link).
    Complete { stage: usize },
    /// End the release: an approver rejected it.
    Reject {
        stage: usize,
        by: String,
        reason: String,
    },
    /// Every stage is complete: the release is GA.
    Finish,
    /// Nothing to do (finished, or waiting as already recorded).
    Nothing,
}

/// The one next action for a release.
pub fn next(
    pipeline: &Pipeline,
    progress: &Progress,
    plugin: &str,
    calendar: &Calendar,
    now: DateTime<Utc>,
) -> Action {
    if progress.state != ReleaseState::Running {
        return Action::Nothing;
    }
    let index = progress.stage;
    let Some(stage) = pipeline.stages.get(index) else {
        return Action::Finish;
    };
    let gate = |at: DateTime<Utc>| {
        if progress.window_override {
            Gate::Open
        } else {
            calendar.gate(plugin, at)
        }
    };
    let waiting = |why: Waiting| Action::Wait { stage: index, why };
    match progress.stage_state {
        StageState::Succeeded => Action::Nothing,
        StageState::Stopped | StageState::Skipped => Action::Nothing,
        StageState::Pending => {
            if stage.kind.is_promotion()
                && let Gate::Closed { reason, opens_at } = gate(now)
            {
                return waiting(Waiting::Window { reason, opens_at });
            }
            Action::Start { stage: index }
        }
        StageState::Waiting => match &stage.kind {
            StageKind::Approval { role, approvers } => {
                if let Some(no) = progress.decisions.iter().find(|d| !d.approve) {
                    return Action::Reject {
                        stage: index,
                        by: no.user.clone(),
                        reason: no.reason.clone(),
                    };
                }
                let mut people: Vec<&str> = progress
                    .decisions
                    .iter()
                    .filter(|d| d.approve)
                    .map(|d| d.user.as_str())
                    .collect();
                people.sort_unstable();
                people.dedup();
                let have = people.len() as u32;
                if have >= *approvers {
                    Action::Complete { stage: index }
                } else {
                    waiting(Waiting::Approval {
                        role: role.as_str().into(),
                        have,
                        need: *approvers,
                    })
                }
            }
            StageKind::Sign => match &progress.signature {
                Signature::None => Action::RequestSignature { stage: index },
                Signature::Requested { request } => waiting(Waiting::Signature {
                    request: request.clone(),
                }),
                Signature::Made => Action::Complete { stage: index },
            },
            StageKind::Rollout {
                steps,
                analysis: Some(_),
                ..
            } => {
                let Some(step) = progress.step else {
                    let Some(first) = steps.first() else {
                        return Action::Complete { stage: index };
                    };
                    return Action::Step {
                        stage: index,
                        step: 0,
                        percent: first.percent,
                    };
                };
                let percent = steps.get(step).map_or(100, |s| s.percent);
                let Some(a) = progress.analysis.as_ref() else {
                    // A step without its analysis state: judge at once (the server creates it).
                    return Action::Analyse {
                        stage: index,
                        promote: gate(now) == Gate::Open,
                    };
                };
                if a.phase != Phase::RolledBack
                    && a.step > step
                    && let Some(to) = steps.get(a.step)
                {
                    return Action::Step {
                        stage: index,
                        step: a.step,
                        percent: to.percent,
                    };
                }
                match a.phase {
                    Phase::RolledBack => Action::RollBack { stage: index },
                    Phase::Complete => Action::Complete { stage: index },
                    Phase::Paused => waiting(Waiting::Paused {
                        percent,
                        reason: a
                            .paused_because
                            .clone()
                            .unwrap_or_else(|| "paused by hand".into()),
                    }),
                    Phase::Running if now >= a.next_at => Action::Analyse {
                        stage: index,
                        promote: gate(now) == Gate::Open,
                    },
                    Phase::Running => waiting(Waiting::Analysis {
                        percent,
                        next_at: a.next_at,
                    }),
                }
            }
            StageKind::Rollout { steps, .. } => {
                let Some(step) = progress.step else {
                    let Some(first) = steps.first() else {
                        return Action::Complete { stage: index };
                    };
                    return Action::Step {
                        stage: index,
                        step: 0,
                        percent: first.percent,
                    };
                };
                let Some(current) = steps.get(step) else {
                    return Action::Complete { stage: index };
                };
                let started = progress.step_started.unwrap_or(now);
                let until = started + Duration::seconds(current.hold_secs as i64);
                if now < until {
                    return waiting(Waiting::Hold {
                        percent: current.percent,
                        until,
                    });
                }
                match steps.get(step + 1) {
                    None => Action::Complete { stage: index },
                    Some(nxt) => {
                        if let Gate::Closed { reason, opens_at } = gate(now) {
                            return waiting(Waiting::Window { reason, opens_at });
                        }
                        Action::Step {
                            stage: index,
                            step: step + 1,
                            percent: nxt.percent,
                        }
                    }
                }
            }
            StageKind::Ga => Action::Complete { stage: index },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{Schedule, Window, WindowKind};
    use crate::spec;

    fn pipeline() -> Pipeline {
        let text = r#"format = 1
[[pipeline]]
name = "p"
[[pipeline.stage]]
name = "review"
kind = "approval"
role = "reviewer"
approvers = 2
[[pipeline.stage]]
name = "sign"
kind = "sign"
[[pipeline.stage]]
name = "canary"
kind = "rollout"
steps = [{ percent = 10, hold = "1h" }, { percent = 100, hold = "0s" }]
[[pipeline.stage]]
name = "ga"
kind = "ga"
"#;
        spec::parse(text).expect("spec").pipelines.remove(0)
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("t")
            .with_timezone(&Utc)
    }

    fn at(stage: usize, state: StageState) -> Progress {
        Progress {
            stage,
            stage_state: state,
            ..Progress::start()
        }
    }

    fn approve(user: &str) -> Decision {
        Decision {
            user: user.into(),
            approve: true,
            reason: String::new(),
        }
    }

    #[test]
    fn each_situation_has_one_next_action() {
        let p = pipeline();
        let now = t("2026-12-01T10:00:00Z");
        let open = Calendar::default();
        let frozen = Calendar::new(vec![Window {
            id: 1,
            name: "december".into(),
            kind: WindowKind::Deny,
            schedule: Schedule::Once {
                start: t("2026-12-01T00:00:00Z"),
                end: t("2026-12-02T00:00:00Z"),
            },
            plugins: None,
        }]);
        let two = Progress {
            decisions: vec![approve("ann"), approve("bob")],
            ..at(0, StageState::Waiting)
        };
        let same_twice = Progress {
            decisions: vec![approve("ann"), approve("ann")],
            ..at(0, StageState::Waiting)
        };
        let rejected = Progress {
            decisions: vec![
                approve("ann"),
                Decision {
                    user: "bob".into(),
                    approve: false,
                    reason: "new permission".into(),
                },
            ],
            ..at(0, StageState::Waiting)
        };
        let holding = Progress {
            step: Some(0),
            step_started: Some(t("2026-12-01T09:30:00Z")),
            ..at(2, StageState::Waiting)
        };
        let held = Progress {
            step: Some(0),
            step_started: Some(t("2026-12-01T09:00:00Z")),
            ..at(2, StageState::Waiting)
        };
        let cases: Vec<(&str, Progress, &Calendar, Action)> = vec![
            (
                "a new release starts its first stage",
                Progress::start(),
                &open,
                Action::Start { stage: 0 },
            ),
            (
                "two distinct approvals complete",
                two,
                &open,
                Action::Complete { stage: 0 },
            ),
            (
                "one person approving twice counts once",
                same_twice,
                &open,
                Action::Wait {
                    stage: 0,
                    why: Waiting::Approval {
                        role: "reviewer".into(),
                        have: 1,
                        need: 2,
                    },
                },
            ),
            (
                "a rejection ends the release",
                rejected,
                &open,
                Action::Reject {
                    stage: 0,
                    by: "bob".into(),
                    reason: "new permission".into(),
                },
            ),
            (
                "a sign stage asks for its signature",
                at(1, StageState::Waiting),
                &open,
                Action::RequestSignature { stage: 1 },
            ),
            (
                "an offline signature is waited for",
                Progress {
                    signature: Signature::Requested {
                        request: "r1".into(),
                    },
                    ..at(1, StageState::Waiting)
                },
                &open,
                Action::Wait {
                    stage: 1,
                    why: Waiting::Signature {
                        request: "r1".into(),
                    },
                },
            ),
            (
                "a made signature completes",
                Progress {
                    signature: Signature::Made,
                    ..at(1, StageState::Waiting)
                },
                &open,
                Action::Complete { stage: 1 },
            ),
            (
                "a rollout starts when the calendar is open",
                at(2, StageState::Pending),
                &open,
                Action::Start { stage: 2 },
            ),
            (
                "a rollout waits inside a freeze",
                at(2, StageState::Pending),
                &frozen,
                Action::Wait {
                    stage: 2,
                    why: Waiting::Window {
                        reason:
                            "freeze window `december` is in force until 2026-12-02T00:00:00+00:00"
                                .into(),
                        opens_at: Some(t("2026-12-02T00:00:00Z")),
                    },
                },
            ),
            (
                "an override lets it through",
                Progress {
                    window_override: true,
                    ..at(2, StageState::Pending)
                },
                &frozen,
                Action::Start { stage: 2 },
            ),
            (
                "a started rollout takes its first step",
                at(2, StageState::Waiting),
                &open,
                Action::Step {
                    stage: 2,
                    step: 0,
                    percent: 10,
                },
            ),
            (
                "a step holds",
                holding,
                &open,
                Action::Wait {
                    stage: 2,
                    why: Waiting::Hold {
                        percent: 10,
                        until: t("2026-12-01T10:30:00Z"),
                    },
                },
            ),
            (
                "after the hold, the next step",
                held.clone(),
                &open,
                Action::Step {
                    stage: 2,
                    step: 1,
                    percent: 100,
                },
            ),
            (
                "the next step is a promotion: it waits in a freeze",
                held,
                &frozen,
                Action::Wait {
                    stage: 2,
                    why: Waiting::Window {
                        reason:
                            "freeze window `december` is in force until 2026-12-02T00:00:00+00:00"
                                .into(),
                        opens_at: Some(t("2026-12-02T00:00:00Z")),
                    },
                },
            ),
            (
                "ga completes once started",
                at(3, StageState::Waiting),
                &open,
                Action::Complete { stage: 3 },
            ),
            (
                "past the last stage: finish",
                at(4, StageState::Pending),
                &open,
                Action::Finish,
            ),
            (
                "a finished release does nothing",
                Progress {
                    state: ReleaseState::Aborted,
                    ..Progress::start()
                },
                &open,
                Action::Nothing,
            ),
        ];
        for (what, progress, calendar, want) in cases {
            assert_eq!(
                next(&p, &progress, "acme-hello", calendar, now),
                want,
                "{what}"
            );
        }
    }

    #[test]
    fn an_analysed_rollout_moves_only_by_its_verdicts() {
        let text = r#"format = 1
[[pipeline]]
name = "p"
[[pipeline.stage]]
name = "sign"
kind = "sign"
[[pipeline.stage]]
name = "canary"
kind = "rollout"
analysis = "default"
steps = [{ percent = 5, hold = "10m" }, { percent = 100, hold = "0s" }]
[[pipeline.stage]]
name = "ga"
kind = "ga"
"#;
        let p = spec::parse(text).expect("spec").pipelines.remove(0);
        let now = t("2026-12-01T10:00:00Z");
        let open = Calendar::default();
        let frozen = Calendar::new(vec![Window {
            id: 1,
            name: "december".into(),
            kind: WindowKind::Deny,
            schedule: Schedule::Once {
                start: t("2026-12-01T00:00:00Z"),
                end: t("2026-12-02T00:00:00Z"),
            },
            plugins: None,
        }]);
        let with = |phase: Phase, next_at: &str| Progress {
            step: Some(0),
            step_started: Some(t("2026-12-01T09:50:00Z")),
            analysis: Some(Analysed {
                phase,
                next_at: t(next_at),
                paused_because: (phase == Phase::Paused)
                    .then(|| "6 inconclusive intervals in a row".to_owned()),
                step: 0,
            }),
            ..at(1, StageState::Waiting)
        };
        let cases: Vec<(&str, Progress, &Calendar, Action)> = vec![
            (
                "the first step is taken at once",
                at(1, StageState::Waiting),
                &open,
                Action::Step {
                    stage: 1,
                    step: 0,
                    percent: 5,
                },
            ),
            (
                "before the next interval: wait for it, however long the hold",
                with(Phase::Running, "2026-12-01T10:05:00Z"),
                &open,
                Action::Wait {
                    stage: 1,
                    why: Waiting::Analysis {
                        percent: 5,
                        next_at: t("2026-12-01T10:05:00Z"),
                    },
                },
            ),
            (
                "an interval is due: judge it",
                with(Phase::Running, "2026-12-01T10:00:00Z"),
                &open,
                Action::Analyse {
                    stage: 1,
                    promote: true,
                },
            ),
            (
                "in a freeze it is judged all the same, but may not promote",
                with(Phase::Running, "2026-12-01T09:55:00Z"),
                &frozen,
                Action::Analyse {
                    stage: 1,
                    promote: false,
                },
            ),
            (
                "a denied interval rolls back, freeze or not",
                with(Phase::RolledBack, "2026-12-01T09:55:00Z"),
                &frozen,
                Action::RollBack { stage: 1 },
            ),
            (
                "paused: wait for a person, and say why",
                with(Phase::Paused, "2026-12-01T09:55:00Z"),
                &open,
                Action::Wait {
                    stage: 1,
                    why: Waiting::Paused {
                        percent: 5,
                        reason: "6 inconclusive intervals in a row".into(),
                    },
                },
            ),
            (
                "the verdicts reached the next step: take it",
                Progress {
                    analysis: Some(Analysed {
                        step: 1,
                        ..with(Phase::Running, "2026-12-01T10:05:00Z")
                            .analysis
                            .expect("analysis")
                    }),
                    ..with(Phase::Running, "2026-12-01T10:05:00Z")
                },
                &open,
                Action::Step {
                    stage: 1,
                    step: 1,
                    percent: 100,
                },
            ),
            (
                "complete: the stage completes",
                with(Phase::Complete, "2026-12-01T09:55:00Z"),
                &open,
                Action::Complete { stage: 1 },
            ),
        ];
        for (what, progress, calendar, want) in cases {
            assert_eq!(
                next(&p, &progress, "acme-hello", calendar, now),
                want,
                "{what}"
            );
        }
        let paused = Waiting::Paused {
            percent: 5,
            reason: "paused by ann: checking a dashboard".into(),
        };
        assert_eq!(paused.recheck_at(), None);
        assert!(paused.describe().contains("stellar release resume"));
    }

    #[test]
    fn waiting_reasons_read_well() {
        let w = Waiting::Approval {
            role: "reviewer".into(),
            have: 1,
            need: 2,
        };
        assert_eq!(
            w.describe(),
            "waiting for 1 more approval(s) by a reviewer (1 of 2)"
        );
        assert_eq!(w.recheck_at(), None);
    }
}
