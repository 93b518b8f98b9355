//! `stellar plugin pack|keygen` (offline, for partners before they upload) and
//! `stellar submit` (uploads a bundle and prints its verdict).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use app::types::{PublisherKey, SubmissionDetail, SubmissionSummary};
use clap::{Args, Subcommand, ValueEnum};
use trust::keys::KeyPair;

/// Exit status when a bundle could not be judged (refused, analysis failed, server trouble).
const EXIT_TROUBLE: u8 = 3;

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Build a bundle from a plugin folder (plugin.toml, the entry module or its `.wat`
    /// source, the SBOM, README, CHANGELOG), sign it, and check it as the server will.
    Pack {
        /// The plugin folder.
        dir: PathBuf,
        /// Where to write the bundle (`.tar.gz`).
        #[arg(short, long)]
        out: PathBuf,
        /// A publisher private key (PEM) to sign with; repeat for several signatures. The
        /// passphrase of an encrypted key is read from STELLAR_KEY_PASSPHRASE.
        #[arg(long = "sign")]
        sign: Vec<PathBuf>,
    },
    /// Make a publisher signing key pair: KEY.pem (private, 0600) and KEY.pub.pem (register
    /// it with `POST /api/v1/publisher-keys` or `stellar plugin register-key`).
    Keygen {
        /// Path of the private key to write; the public key goes next to it as `.pub.pem`.
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Register a publisher public key for your tenant on a server.
    RegisterKey {
        /// The public key (PEM), as `keygen` writes it.
        public_key: PathBuf,
        /// A label for the key.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The Stellar server (`https://stellar.example.com`).
    #[arg(long, env = "STELLAR_SERVER")]
    pub server: String,
    /// An API token (`stl_…`), from the portal's API tokens page.
    #[arg(long, env = "STELLAR_TOKEN", hide_env_values = true)]
    pub token: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The bundle (`.tar.gz` or `.zip`), as `stellar plugin pack` writes it.
    pub bundle: PathBuf,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Seconds to wait for the verdict.
    #[arg(long, default_value_t = 120)]
    pub wait: u64,
    /// `text` for people, `json` for tools (the whole submission with its verdict).
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

fn trouble(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_TROUBLE)
}

pub fn run_plugin(cmd: PluginCommand) -> ExitCode {
    match cmd {
        PluginCommand::Pack { dir, out, sign } => {
            let passphrase = std::env::var("STELLAR_KEY_PASSPHRASE")
                .ok()
                .filter(|p| !p.is_empty());
            let mut keys = Vec::new();
            for path in &sign {
                let pem = match std::fs::read_to_string(path) {
                    Ok(p) => p,
                    Err(e) => return trouble(format!("cannot read `{}`: {e}", path.display())),
                };
                match KeyPair::from_pkcs8_pem(&pem, passphrase.as_deref()) {
                    Ok(k) => keys.push(k),
                    Err(e) => return trouble(format!("`{}`: {e}", path.display())),
                }
            }
            match plugin::pack::pack_dir(&dir, &keys) {
                Ok((bytes, inspected)) => {
                    if let Err(e) = std::fs::write(&out, &bytes) {
                        return trouble(format!("cannot write `{}`: {e}", out.display()));
                    }
                    let m = &inspected.manifest;
                    println!(
                        "packed {} {} into {} ({} bytes, {} files, {} signature{}, sha256 {})",
                        m.id,
                        m.version,
                        out.display(),
                        bytes.len(),
                        inspected.bundle.files.len(),
                        keys.len(),
                        if keys.len() == 1 { "" } else { "s" },
                        inspected.bundle.sha256
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    if let plugin::pack::PackError::Refused(r) = &e {
                        for err in &r.errors {
                            eprintln!("  {err}");
                        }
                    }
                    ExitCode::FAILURE
                }
            }
        }
        PluginCommand::Keygen { out } => {
            let key = match KeyPair::generate() {
                Ok(k) => k,
                Err(e) => return trouble(e),
            };
            let passphrase = std::env::var("STELLAR_KEY_PASSPHRASE")
                .ok()
                .filter(|p| !p.is_empty());
            let pem = match key.to_pkcs8_pem(passphrase.as_deref()) {
                Ok(p) => p,
                Err(e) => return trouble(e),
            };
            let public = out.with_extension("pub.pem");
            if out.exists() {
                return trouble(format!(
                    "`{}` exists: choose another path (a key is never overwritten)",
                    out.display()
                ));
            }
            if let Err(e) = crate::services::keys::write_private_file(&out, &pem) {
                return trouble(format!("cannot write `{}`: {e}", out.display()));
            }
            if let Err(e) = std::fs::write(&public, key.public().to_pem()) {
                return trouble(format!("cannot write `{}`: {e}", public.display()));
            }
            println!(
                "key {} written: private {} (keep it secret), public {}",
                key.id().0,
                out.display(),
                public.display()
            );
            ExitCode::SUCCESS
        }
        PluginCommand::RegisterKey {
            public_key,
            name,
            server,
        } => {
            let pem = match std::fs::read_to_string(&public_key) {
                Ok(p) => p,
                Err(e) => return trouble(format!("cannot read `{}`: {e}", public_key.display())),
            };
            runtime(async move {
                let client = client()?;
                let res = client
                    .post(url(&server.server, "/api/v1/publisher-keys"))
                    .bearer_auth(&server.token)
                    .json(&serde_json::json!({"name": name, "public_key_pem": pem}))
                    .send()
                    .await
                    .map_err(|e| format!("cannot reach {}: {e}", server.server))?;
                let key: PublisherKey = answer(res).await?;
                println!(
                    "registered key {} ({}) for {}",
                    key.key_id, key.name, key.tenant
                );
                Ok(ExitCode::SUCCESS)
            })
        }
    }
}

fn runtime(f: impl std::future::Future<Output = Result<ExitCode, String>>) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return trouble(e),
    };
    match rt.block_on(f) {
        Ok(code) => code,
        Err(e) => trouble(e),
    }
}

fn client() -> Result<reqwest::Client, String> {
    // One TLS provider for the process (ring, which sqlx's rustls already uses).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!("stellar-cli/", env!("CARGO_PKG_VERSION")))
        .timeout(Duration::from_secs(300))
        .build()
        .map_err(|e| e.to_string())
}

fn url(server: &str, path: &str) -> String {
    format!("{}{path}", server.trim_end_matches('/'))
}

/// Reads a JSON answer, or turns a problem document into a readable error.
async fn answer<T: serde::de::DeserializeOwned>(res: reqwest::Response) -> Result<T, String> {
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

pub fn run_submit(args: SubmitArgs) -> ExitCode {
    let bytes = match std::fs::read(&args.bundle) {
        Ok(b) => b,
        Err(e) => return trouble(format!("cannot read `{}`: {e}", args.bundle.display())),
    };
    let filename = args
        .bundle
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".into());
    runtime(async move {
        let client = client()?;
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(filename)
            .mime_str("application/octet-stream")
            .map_err(|e| e.to_string())?;
        let form = reqwest::multipart::Form::new().part("bundle", part);
        let res = client
            .post(url(&args.server.server, "/api/v1/submissions"))
            .bearer_auth(&args.server.token)
            .multipart(form)
            .send()
            .await
            .map_err(|e| format!("cannot reach {}: {e}", args.server.server))?;
        let created: SubmissionSummary = answer(res).await?;
        if args.format == Format::Text {
            eprintln!(
                "submitted {} {} as {}; waiting for the verdict…",
                created.plugin, created.version, created.id
            );
        }
        let deadline = Instant::now() + Duration::from_secs(args.wait);
        let detail: SubmissionDetail = loop {
            let res = client
                .get(url(
                    &args.server.server,
                    &format!("/api/v1/submissions/{}", created.id),
                ))
                .bearer_auth(&args.server.token)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let d: SubmissionDetail = answer(res).await?;
            if matches!(d.summary.status.as_str(), "done" | "failed") {
                break d;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no verdict after {} s; the submission {} is {} (see it later with the API or in the portal)",
                    args.wait, created.id, d.summary.status
                ));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        if args.format == Format::Json {
            println!(
                "{}",
                serde_json::to_string_pretty(&detail).unwrap_or_default()
            );
        } else {
            print_verdict(&detail);
        }
        Ok(match detail.verdict.as_ref().map(|v| v.decision.as_str()) {
            Some("pass") => ExitCode::SUCCESS,
            Some("warn") => ExitCode::from(2),
            Some("deny") => ExitCode::FAILURE,
            _ => ExitCode::from(EXIT_TROUBLE),
        })
    })
}

fn print_verdict(d: &SubmissionDetail) {
    let s = &d.summary;
    let Some(v) = &d.verdict else {
        println!(
            "{} {}: the analysis failed: {}",
            s.plugin,
            s.version,
            s.error.as_deref().unwrap_or("no reason given")
        );
        return;
    };
    println!(
        "decision: {}\nplugin: {} {}  (submission {}, bundle sha256 {})\npack: {} {}",
        v.decision.to_uppercase(),
        s.plugin,
        s.version,
        s.id,
        s.bundle_sha256,
        v.pack.name,
        v.pack.version
    );
    for f in &v.findings {
        println!(
            "\n{} {} [{}]\n  {}",
            f.effect, f.rule, f.severity, f.message
        );
        for e in &f.evidence {
            println!("  evidence: {}", e.text());
        }
        if let Some(fix) = &f.fix {
            println!("  fix: {fix}");
        }
        if let Some(docs) = &f.docs {
            println!("  docs: {docs}");
        }
    }
    for e in &v.errors {
        println!("\nerror in rule {}: {}", e.rule, e.error);
    }
}
