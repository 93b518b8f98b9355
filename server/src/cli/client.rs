//! The command line's HTTP client: verbs that talk to a Stellar server (`submit`,
//! `plugin register-key`) share its runtime, TLS setup and error reading.

use std::process::ExitCode;
use std::time::Duration;

/// Exit status when a bundle could not be judged (refused, analysis failed, server trouble).
pub const EXIT_TROUBLE: u8 = 3;

pub fn trouble(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_TROUBLE)
}

/// Runs a verb that talks to a server; an error exits 3 (`stellar submit`: "could not be
/// judged").
pub fn runtime(f: impl std::future::Future<Output = Result<ExitCode, String>>) -> ExitCode {
    runtime_or(f, ExitCode::from(EXIT_TROUBLE))
}

/// Runs a verb that talks to a server; an error prints and exits with `failure`.
pub fn runtime_or(
    f: impl std::future::Future<Output = Result<ExitCode, String>>,
    failure: ExitCode,
) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return failure;
        }
    };
    match rt.block_on(f) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            failure
        }
    }
}

pub fn client() -> Result<reqwest::Client, String> {
    // One TLS provider for the process (ring, which sqlx's rustls already uses).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!("stellar-cli/", env!("CARGO_PKG_VERSION")))
        .timeout(Duration::from_secs(300))
        .build()
        .map_err(|e| e.to_string())
}

pub fn url(server: &str, path: &str) -> String {
    format!("{}{path}", server.trim_end_matches('/'))
}

/// Reads a JSON answer, or turns a problem document into a readable error.
pub async fn answer<T: serde::de::DeserializeOwned>(res: reqwest::Response) -> Result<T, String> {
    let status = res.status();
    let text = res.text().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        return serde_json::from_str(&text)
            .map_err(|e| format!("the server's answer is not what this CLI expects ({e}): is it a Stellar server of the same version?"));
    }
    Err(problem_text(status.as_u16(), &text))
}

fn problem_text(status: u16, text: &str) -> String {
    let Ok(p) = serde_json::from_str::<serde_json::Value>(text) else {
        return format!(
            "the server answered {status}: {}",
            text.chars().take(300).collect::<String>()
        );
    };
    let mut out = format!(
        "{} ({status})",
        p["detail"]
            .as_str()
            .unwrap_or("the server refused the request")
    );
    if let Some(errors) = p["errors"].as_array() {
        for e in errors {
            out.push_str(&format!(
                "\n  plugin.toml:{}:{}: {}",
                e["line"],
                e["column"],
                e["message"].as_str().unwrap_or("")
            ));
        }
    }
    out
}
