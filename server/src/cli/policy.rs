//! `stellar policy …`: check, format, test and evaluate policy packs from the command line,
//! offline, with the same checker and evaluator the server runs.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use dsl::{CheckOptions, EvalOptions, Loaded, Schema};

use super::args::{Common, PolicyCommand, PolicyFormat as Format};
use crate::services::policy::{self, read, relative};

/// Exit code for a usage or load problem (as opposed to a verdict).
const EXIT_TROUBLE: u8 = 3;

fn today(common: &Common) -> NaiveDate {
    common
        .today
        .unwrap_or_else(|| chrono::Utc::now().date_naive())
}

fn options(common: &Common) -> CheckOptions {
    CheckOptions {
        schema: Schema::submission(),
        today: today(common),
    }
}

fn load_pack(paths: &[PathBuf], options: &CheckOptions) -> Result<Loaded, String> {
    policy::load_files(paths, options)
}

fn print_diagnostics(loaded: &Loaded, format: Format) {
    match format {
        Format::Json => {
            let json = serde_json::json!({
                "errors": loaded.diagnostics.iter().filter(|d| d.is_error()).count(),
                "warnings": loaded.diagnostics.iter().filter(|d| !d.is_error()).count(),
                "diagnostics": loaded.json(),
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            );
        }
        Format::Text => {
            if !loaded.diagnostics.is_empty() {
                eprint!("{}", loaded.render(std::io::stderr().is_terminal()));
            }
        }
    }
}

fn summary(loaded: &Loaded) -> String {
    let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = loaded.diagnostics.len() - errors;
    format!("{errors} error(s), {warnings} warning(s)")
}

/// Runs a `stellar policy` command.
pub fn run(cmd: PolicyCommand) -> ExitCode {
    match cmd {
        PolicyCommand::Check { files, common } => {
            let loaded = match load_pack(&files, &options(&common)) {
                Ok(l) => l,
                Err(e) => return trouble(&e),
            };
            print_diagnostics(&loaded, common.format);
            if common.format == Format::Text {
                let rules = loaded.pack.as_ref().map_or(0, |p| p.rules().len());
                eprintln!(
                    "checked {} file(s), {rules} rule(s): {}",
                    loaded.sources.len(),
                    summary(&loaded)
                );
            }
            if loaded.has_errors() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        PolicyCommand::Fmt { files, check } => fmt(&files, check),
        PolicyCommand::Test { files, common } => {
            let loaded = match load_pack(&files, &options(&common)) {
                Ok(l) => l,
                Err(e) => return trouble(&e),
            };
            let Some(pack) = &loaded.pack else {
                print_diagnostics(&loaded, Format::Text);
                return trouble(&format!("the pack does not check: {}", summary(&loaded)));
            };
            let report = pack.run_tests(today(&common), |from, path| {
                let p = relative(from, path)?;
                read(&p)
            });
            match common.format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                ),
                Format::Text => {
                    for r in &report.results {
                        println!(
                            "{} {} ({})",
                            if r.passed { "ok  " } else { "FAIL" },
                            r.name,
                            r.location
                        );
                        for f in &r.failures {
                            println!("       {f}");
                        }
                    }
                    let passed = report.results.iter().filter(|r| r.passed).count();
                    println!("\n{passed} of {} test(s) passed", report.results.len());
                    let covered = report.rules - report.uncovered.len();
                    println!(
                        "rule coverage: {covered} of {} rule(s) fired in some test",
                        report.rules
                    );
                    if !report.uncovered.is_empty() {
                        println!("not exercised by any test: {}", report.uncovered.join(", "));
                    }
                }
            }
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        PolicyCommand::Eval {
            policy,
            input,
            explain,
            common,
        } => {
            let loaded = match load_pack(&policy, &options(&common)) {
                Ok(l) => l,
                Err(e) => return trouble(&e),
            };
            let Some(pack) = &loaded.pack else {
                print_diagnostics(&loaded, Format::Text);
                return trouble(&format!("the pack does not check: {}", summary(&loaded)));
            };
            let text = if input.as_os_str() == "-" {
                let mut s = String::new();
                if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut s) {
                    return trouble(&format!("cannot read standard input: {e}"));
                }
                s
            } else {
                match read(&input) {
                    Ok(t) => t,
                    Err(e) => return trouble(&e),
                }
            };
            let mut opts = EvalOptions::new(today(&common));
            opts.explain = explain;
            let verdict = match pack.evaluate_json(&text, &opts) {
                Ok(v) => v,
                Err(e) => return trouble(&format!("`{}`: {e}", input.display())),
            };
            match common.format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&verdict).unwrap_or_default()
                ),
                Format::Text => print!("{}", verdict.render_text()),
            }
            match verdict.decision {
                dsl::Decision::Pass => ExitCode::SUCCESS,
                dsl::Decision::Warn => ExitCode::from(2),
                dsl::Decision::Deny => ExitCode::from(1),
            }
        }
        PolicyCommand::Schema { facts } => {
            println!(
                "{}",
                serde_json::to_string_pretty(&facts.schema().json_schema()).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
    }
}

fn trouble(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_TROUBLE)
}

fn fmt(paths: &[PathBuf], check: bool) -> ExitCode {
    let files = match policy::expand(paths) {
        Ok(f) => f,
        Err(e) => return trouble(&e),
    };
    let mut unformatted = 0;
    for f in &files {
        let text = match read(f) {
            Ok(t) => t,
            Err(e) => return trouble(&e),
        };
        let (file, diags) = dsl::parse::parse_file(dsl::FileId(0), &text);
        if diags.iter().any(|d| d.is_error()) {
            let mut sources = dsl::Sources::new();
            sources.add(f.display().to_string(), text.clone());
            eprint!(
                "{}",
                dsl::diag::render(&diags, &sources, std::io::stderr().is_terminal())
            );
            return trouble(&format!(
                "`{}` does not parse: fix it before formatting",
                f.display()
            ));
        }
        let formatted = dsl::fmt::format_file(&text, &file);
        if formatted != text {
            unformatted += 1;
            if check {
                println!("{} is not formatted", f.display());
            } else if let Err(e) = std::fs::write(f, &formatted) {
                return trouble(&format!("cannot write `{}`: {e}", f.display()));
            } else {
                println!("formatted {}", f.display());
            }
        }
    }
    if check && unformatted > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
