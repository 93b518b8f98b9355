//! Parse → check → evaluate never panics: the input is a policy and facts separated by a NUL
//! byte; the policy gets a header so that the checker and evaluator are reached often.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (policy, facts) = text.split_once('\0').unwrap_or((text, "{}"));
    let source = format!("pack \"fuzz\" version \"1.0.0\" language 1\n{policy}");
    let today = chrono::NaiveDate::from_ymd_opt(2026, 6, 1).unwrap_or_default();
    let options = dsl::CheckOptions {
        schema: dsl::Schema::submission(),
        today,
    };
    let loaded = dsl::load_str("fuzz.spl", &source, &options);
    let _ = loaded.render(false);
    for file in &loaded.files {
        let _ = dsl::fmt::format_file(&source, file);
    }
    if let Some(pack) = loaded.pack {
        let mut eval = dsl::EvalOptions::new(today);
        eval.explain = true;
        eval.limits.steps = 100_000;
        let _ = pack.evaluate_json(facts, &eval);
    }
});
