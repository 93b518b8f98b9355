//! Writes a generated rule set: `cargo run -p stellar-policy-bench --example dump -- N DIR`.
fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| ".".into()));
    let (s, r, c) = stellar_policy_bench::generate(n);
    for (name, text) in [
        ("generated.spl", s),
        ("generated.rego", r),
        ("generated.cedar", c),
    ] {
        if let Err(e) = std::fs::write(dir.join(name), text) {
            eprintln!("cannot write {name}: {e}");
        }
    }
}
