//! The `stellar` command line: one binary, many verbs, like `cargo` or `opa`.
//!
//! [`args`] is what clap reads; each other module is one family of verbs, and every verb that
//! touches the database opens its services through [`Services::open`], exactly as
//! `stellar serve` does. Verbs call services; services never call verbs.
//!
//! Offline verbs (`policy`, `verify`, `sign --offline`, `plugin pack|keygen`) run without an
//! async runtime or a database.

pub mod args;

mod admin;
mod client;
mod fleet;
mod keys;
mod ledger;
mod offline;
mod plugin;
mod policy;
pub mod release;
pub mod report;
mod rollout;
mod serve;
mod submit;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use app::api::backend::Principal;
use clap::Parser;
use trust::keys::TrustRoot;

use crate::config::ServicesConfig;
use crate::services::Services;
use args::{Cli, Command, DbArgs, KeyArgs, LogFormat};

/// Runs the command line: parses the arguments and dispatches to the verb.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Policy(cmd) => policy::run(cmd),
        Command::Verify(args) => report(offline::verify(args)),
        Command::Sign(args) => report(offline::sign(args)),
        Command::Plugin(cmd) => plugin::run_plugin(cmd),
        Command::Submit(args) => submit::run_submit(args),
        Command::Release(cmd) => release::run_release(cmd),
        Command::VerifyRelease(args) => release::run_verify(args),
        Command::Pipeline(cmd) => release::run_pipeline(cmd),
        Command::Rollout(cmd) => rollout::run(cmd),
        Command::Fleet(cmd) => fleet::run(cmd),
        Command::Serve(args) => block_on(serve::serve(*args)),
        Command::Migrate(db) => block_on(quiet(serve::migrate(db))),
        Command::Admin(cmd) => block_on(quiet(admin::run(cmd))),
        Command::Key(cmd) => block_on(quiet(keys::key(cmd))),
        Command::Attest(args) => block_on(quiet(keys::attest(args))),
        Command::SignRequest(cmd) => block_on(quiet(keys::sign_request(cmd))),
        Command::Ledger(cmd) => block_on(quiet(ledger::run(cmd))),
    }
}

/// Runs a verb on a multi-threaded runtime and reports its outcome.
fn block_on(verb: impl std::future::Future<Output = Result<(), String>>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => report(rt.block_on(verb)),
        Err(e) => report(Err(format!("cannot start the async runtime: {e}"))),
    }
}

/// A verb that logs only warnings (its output is what it prints).
async fn quiet(verb: impl std::future::Future<Output = Result<(), String>>) -> Result<(), String> {
    crate::telemetry::init_logging(LogFormat::Human, "warn")?;
    verb.await
}

fn report(outcome: Result<(), String>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The command-line operator, as services see them (see [`Principal::operator`]).
fn operator() -> Principal {
    Principal::operator(cli_actor())
}

/// Opens the services for a verb that works on the database and the keys.
async fn open(db: &DbArgs, keys: &KeyArgs) -> Result<Services, String> {
    let config = ServicesConfig::for_verb(db, keys).map_err(|e| e.to_string())?;
    Services::open(&config).await.map_err(|e| e.to_string())
}

/// Opens the services for a verb that takes only the database flags.
async fn open_db(db: &DbArgs) -> Result<Services, String> {
    open(db, &KeyArgs::default()).await
}

/// Opens the services without migrating (a verb that only reads).
async fn open_read_only(db: &DbArgs) -> Result<Services, String> {
    let config = ServicesConfig::read_only(db, &KeyArgs::default()).map_err(|e| e.to_string())?;
    Services::open(&config).await.map_err(|e| e.to_string())
}

/// Who a command-line action is recorded as: `cli:<operating-system user>`.
pub fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let user: String = user
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .take(64)
        .collect();
    format!("cli:{user}")
}

fn read(path: &Path, what: &str) -> Result<String, String> {
    const LIMIT: u64 = 512 * 1024 * 1024;
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {what} `{}`: {e}", path.display()))?;
    if meta.len() > LIMIT {
        return Err(format!(
            "{what} `{}` is larger than 512 MiB: refusing to read it",
            path.display()
        ));
    }
    std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {what} `{}`: {e}", path.display()))
}

fn write_out(out: Option<&Path>, text: &str) -> Result<(), String> {
    match out {
        Some(p) => {
            std::fs::write(p, text).map_err(|e| format!("cannot write `{}`: {e}", p.display()))
        }
        None => {
            let mut o = std::io::stdout().lock();
            o.write_all(text.as_bytes())
                .and_then(|()| o.flush())
                .map_err(|e| format!("cannot write to standard output: {e}"))
        }
    }
}

fn trust_root(path: &Path) -> Result<TrustRoot, String> {
    TrustRoot::from_json(&read(path, "the trust root")?)
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn short(id: &str) -> &str {
    &id[..id.len().min(16)]
}
