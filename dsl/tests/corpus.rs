//! Policies as data: every file under `tests/data/err/` is a broken policy whose rendered
//! diagnostics are snapshot-tested (at least one file per diagnostic code); every file under
//! `tests/data/ok/` checks cleanly and is already formatted.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

use std::path::Path;

use chrono::NaiveDate;
use dsl::{CheckOptions, Code, Schema};

fn options() -> CheckOptions {
    CheckOptions {
        schema: Schema::submission(),
        today: NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
    }
}

fn load(path: &Path) -> dsl::Loaded {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).unwrap();
    dsl::load(
        vec![(name, text)],
        |_, import| Err(format!("no file `{import}` in the test corpus")),
        &options(),
    )
}

fn files(dir: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "spl"))
        .collect();
    files.sort();
    files
}

#[test]
fn broken_policies_render_their_diagnostics() {
    let mut seen_codes = std::collections::BTreeSet::new();
    for path in files("err") {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let loaded = load(&path);
        assert!(!loaded.diagnostics.is_empty(), "{stem}: no diagnostics");
        let code = stem.split('_').next().unwrap();
        assert!(
            loaded.diagnostics.iter().any(|d| d.code.as_str() == code),
            "{stem}: expected a {code} diagnostic, got {:?}",
            loaded
                .diagnostics
                .iter()
                .map(|d| d.code.as_str())
                .collect::<Vec<_>>()
        );
        seen_codes.insert(code.to_owned());
        let rendered = loaded.render(false);
        let json = serde_json::to_string_pretty(&loaded.json()).unwrap();
        insta::assert_snapshot!(
            format!("err__{stem}"),
            format!("{rendered}\n---- json ----\n{json}")
        );
    }
    for code in Code::ALL {
        assert!(
            seen_codes.contains(code.as_str()),
            "no corpus file for {code}"
        );
    }
}

#[test]
fn good_policies_check_cleanly_and_are_formatted() {
    for path in files("ok") {
        let loaded = load(&path);
        assert!(
            loaded.diagnostics.is_empty(),
            "{}:\n{}",
            path.display(),
            loaded.render(false)
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let formatted = dsl::fmt::format_file(&text, &loaded.files[0]);
        assert_eq!(
            formatted,
            text,
            "{} is not in canonical format",
            path.display()
        );
        let pack = loaded.pack.unwrap();
        let report = pack.run_tests(options().today, |_, p| Err(format!("no file {p}")));
        assert!(report.passed(), "{:#?}", report.results);
    }
}

#[test]
fn a_field_typo_is_an_error_with_a_suggestion() {
    let loaded = dsl::load_str(
        "typo.spl",
        "pack \"p\" version \"1.0.0\" language 1\nrule r { effect deny when input.resources.memroy_mb > 1 }\n",
        &options(),
    );
    let d = loaded
        .diagnostics
        .iter()
        .find(|d| d.code == Code::UnknownField)
        .expect("an unknown-field error");
    assert!(d.is_error());
    assert!(
        d.help
            .as_deref()
            .unwrap_or("")
            .contains("did you mean `memory_mb`?"),
        "{d:?}"
    );
    assert!(loaded.pack.is_none(), "a pack with errors is not usable");
}

#[test]
fn one_pass_reports_errors_from_several_items() {
    let loaded =
        load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/err/E0001_syntax.spl"));
    let syntax = loaded
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::Syntax)
        .count();
    assert_eq!(syntax, 2, "{}", loaded.render(false));
}
