//! The `stellar` binary: see [`stellar::cli`].

fn main() -> std::process::ExitCode {
    stellar::cli::main()
}
