//! `stellar submit`: uploads a bundle, waits for its verdict and prints it, every finding with
//! its evidence, what would pass, and the fix.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use app::types::{SubmissionDetail, SubmissionSummary};

use super::args::{ReportFormat as Format, SubmitArgs};
use super::client::{EXIT_TROUBLE, answer, client, runtime, trouble, url};
use super::report::{self, BundleFiles};

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
    let files = BundleFiles::read(&bytes);
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
        if args.format != Format::Json {
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
        let text = match args.format {
            Format::Json => Some(serde_json::to_string_pretty(&detail).unwrap_or_default() + "\n"),
            Format::Sarif => Some(
                serde_json::to_string_pretty(&report::sarif(&detail, &files, &args.source_root))
                    .unwrap_or_default()
                    + "\n",
            ),
            Format::Junit => Some(report::junit(&detail)),
            Format::Text => None,
        };
        let write = |path: &std::path::Path, t: String| {
            std::fs::write(path, t).map_err(|e| format!("cannot write `{}`: {e}", path.display()))
        };
        if let Some(path) = &args.sarif {
            let log = report::sarif(&detail, &files, &args.source_root);
            write(
                path,
                serde_json::to_string_pretty(&log).unwrap_or_default() + "\n",
            )?;
        }
        if let Some(path) = &args.junit {
            write(path, report::junit(&detail))?;
        }
        match (text, &args.output) {
            (Some(t), Some(path)) => std::fs::write(path, t)
                .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?,
            (Some(t), None) => print!("{t}"),
            (None, _) => print_verdict(&detail),
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
        v.decision.as_str().to_uppercase(),
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
            if let Some(w) = &e.would_pass {
                println!("    would pass with: {w}");
            }
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
