//! Prints how long each load phase takes on a pack file: `cargo run --release -p stellar-dsl --example load_timing -- FILE`.
#![allow(clippy::unwrap_used, reason = "a measuring tool")]
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let options = dsl::CheckOptions {
        schema: dsl::Schema::submission(),
        today: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
    };
    let rounds: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    if std::env::args().nth(3).as_deref() == Some("pest") {
        for _ in 0..rounds {
            let t = Instant::now();
            let n = dsl::parse::pest_tokens(&text);
            println!("pest {:?} ({n} pairs)", t.elapsed());
        }
        return;
    }
    if std::env::args().nth(3).as_deref() == Some("load") {
        for _ in 0..rounds {
            let t = Instant::now();
            let loaded = dsl::load_str("x.spl", &text, &options);
            println!("load {:?} ({})", t.elapsed(), loaded.pack.is_some());
        }
        return;
    }
    for _ in 0..rounds {
        let t = Instant::now();
        let (file, diags) = dsl::parse::parse_file(dsl::FileId(0), &text);
        let parse = t.elapsed();
        let t = Instant::now();
        let checked = dsl::check::check(std::slice::from_ref(&file), &options);
        let check = t.elapsed();
        let t = Instant::now();
        let loaded = dsl::load_str("x.spl", &text, &options);
        let all = t.elapsed();
        println!(
            "parse {parse:?} ({} items, {} diags) | check {check:?} ({} rules) | load {all:?} ({})",
            file.items.len(),
            diags.len(),
            checked.rules.len(),
            loaded.pack.is_some()
        );
    }
}
