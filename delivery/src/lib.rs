//! Delivery's domain: how an accepted plugin version becomes a release that every host runs.
//!
//! - [`spec`]: the pipeline spec (TOML, versioned): which pipeline takes which release, and
//!   its stages (approval, sign, rollout, GA), with every error at a line and a column.
//! - [`engine`]: the stage engine, a pure function from where a release stands (and what the
//!   clock, the approvers, the signer and the calendar say) to the one next thing to do.
//! - [`calendar`]: allow and freeze windows, one-off or recurring (cron, duration, time zone);
//!   deny wins over allow.
//! - [`layout`]: the in-toto layout a pipeline implies for a release.
//! - [`rollout`]: a rollout's analysis — cohorts merged over a window, the facts rollback rules
//!   judge, and what a verdict does to the rollout (roll back, hold, pause, advance, finish).
//! - [`fleet`]: the host protocol's values — a channel entry and its ETag, report batches and
//!   why one is refused.
//! - [`scenario`] and [`simulate`]: how versions behave on a simulated fleet, and a scenario
//!   played against rollback rules without a server (`stellar rollout simulate`).
//!
//! **Boundary:** no IO, no database, no clock of its own (every function takes `now`). The
//! server stores releases and applies the engine's actions, one transaction each; the command
//! line checks specs with the same parser.

pub mod calendar;
pub mod engine;
pub mod fleet;
pub mod layout;
pub mod rollout;
pub mod scenario;
pub mod simulate;
pub mod spec;
