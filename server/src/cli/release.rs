//! `stellar release …`, `stellar verify-release` and `stellar pipeline …`.
//!
//! The release and pipeline verbs talk to a server through its API (as a partner's CI or a
//! platform user would); `pipeline check` and `verify-release` run offline, with the same code
//! the server uses (`delivery::spec`, `trust::intoto`).

use std::collections::BTreeMap;
use std::path::{Component, Path};
use std::process::ExitCode;

use app::delivery::{
    DecisionInput, NewRelease, PipelineVersion, ReasonInput, ReleaseDetail, ReleasePage,
    RolloutControl, Verdict,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use trust::dsse::Envelope;
use trust::intoto::{self, Artifacts};
use trust::keys::{PublicKey, Purpose, TrustRoot};

use super::args::{
    OutputFormat as Format, PipelineCommand, ReleaseCommand, ServerArgs, VerifyReleaseArgs,
};
use super::client::{answer, client, runtime_or, url};

/// Largest folder `verify-release` reads (the bundle and its attestations).
const MAX_DIR_BYTES: u64 = 1024 * 1024 * 1024;
const MAX_FILES: usize = 10_000;

fn print_json<T: Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn print_release(d: &ReleaseDetail) {
    let s = &d.summary;
    println!(
        "release {}\nplugin: {} {} (tenant {}, submission {}, verdict {})\nstate: {}{}\npipeline: {} (spec version {})",
        s.id,
        s.plugin,
        s.version,
        s.tenant,
        s.submission,
        d.verdict.as_str(),
        s.state.label(),
        s.waiting
            .as_ref()
            .map(|w| format!(" — {w}"))
            .unwrap_or_default(),
        s.pipeline,
        s.spec_version
    );
    if let Some(r) = &s.reason {
        println!("reason: {r}");
    }
    for st in &d.stages {
        println!(
            "  {:>2}. {:<12} {:<9} {:<10} {}{}{}",
            st.index + 1,
            st.name,
            st.kind.as_str(),
            st.state.as_str(),
            st.actor
                .as_deref()
                .map(|a| format!("by {a} "))
                .unwrap_or_default(),
            st.finished_at
                .as_deref()
                .or(st.started_at.as_deref())
                .unwrap_or(""),
            st.link
                .as_ref()
                .map(|l| format!(
                    "  [{} {}]",
                    l.name,
                    if l.verified {
                        "signature ok"
                    } else {
                        "signature NOT verified"
                    }
                ))
                .unwrap_or_default()
        );
        if let Some(detail) = &st.detail {
            println!("      {detail}");
        }
    }
    for dec in &d.decisions {
        println!(
            "  {} by {} ({}) at {}{}",
            if dec.approve { "approved" } else { "rejected" },
            dec.username,
            dec.role,
            dec.at,
            if dec.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", dec.reason)
            }
        );
    }
    if let Some(why) = &d.cannot_decide {
        println!("you cannot decide: {why}");
    }
    if let Some(y) = &d.yanked_at {
        println!("yanked at {y}");
    }
    if let Some(ro) = &d.rollout {
        println!(
            "rollout: {} at step {} of {} ({} % of hosts){}{}",
            ro.phase.as_str(),
            ro.step,
            ro.steps,
            ro.weight,
            ro.baseline_version
                .as_deref()
                .map(|b| format!(", baseline {b}"))
                .unwrap_or_default(),
            ro.next_at
                .as_deref()
                .map(|t| format!(", next interval judged at {t}"))
                .unwrap_or_default()
        );
        if let Some(p) = &ro.paused_because {
            println!("  paused: {p}");
        }
        for i in &ro.intervals {
            println!(
                "  #{:<3} {} step {} ({} %): {} → {}; canary {} calls, {} bp errors, p95 {} ms on {} hosts; baseline {} calls, {} bp errors, p95 {} ms on {} hosts",
                i.seq,
                i.at,
                i.step,
                i.weight,
                i.judgement,
                i.outcome,
                i.canary.samples,
                i.canary.error_rate_bp,
                i.canary.p95_ms,
                i.canary.hosts,
                i.baseline.samples,
                i.baseline.error_rate_bp,
                i.baseline.p95_ms,
                i.baseline.hosts
            );
            for f in &i.fired {
                println!("        {} [{}]: {}", f.rule, f.effect, f.message);
                for e in &f.evidence {
                    println!("          - {e}");
                }
                if let Some(fix) = &f.fix {
                    println!("          fix: {fix}");
                }
            }
        }
    }
    if !d.controls.is_empty() {
        let names: Vec<&str> = d.controls.iter().map(|c| c.as_str()).collect();
        println!(
            "you may: {} (`stellar release <control> {} --reason …`)",
            names.join(", "),
            d.summary.id
        );
    }
}

async fn control(
    http: &reqwest::Client,
    c: super::args::ControlArgs,
    which: RolloutControl,
) -> Result<(), String> {
    let d: ReleaseDetail = send(
        &c.server,
        http.post(url(
            &c.server.server,
            &format!("/api/v1/releases/{}/rollout", c.id),
        ))
        .json(&serde_json::json!({"control": which, "reason": c.reason})),
    )
    .await?;
    if c.format == Format::Json {
        print_json(&d)
    } else {
        print_release(&d)
    }
    Ok(())
}

async fn send<T: serde::de::DeserializeOwned>(
    server: &ServerArgs,
    req: reqwest::RequestBuilder,
) -> Result<T, String> {
    let res = req
        .bearer_auth(&server.token)
        .send()
        .await
        .map_err(|e| format!("cannot reach {}: {e}", server.server))?;
    answer(res).await
}

pub fn run_release(cmd: ReleaseCommand) -> ExitCode {
    runtime_or(
        async move {
            let http = client()?;
            let show = |d: &ReleaseDetail, f: Format| {
                if f == Format::Json {
                    print_json(d)
                } else {
                    print_release(d)
                }
            };
            match cmd {
                ReleaseCommand::Create {
                    submission,
                    server,
                    format,
                } => {
                    let d: ReleaseDetail = send(
                        &server,
                        http.post(url(&server.server, "/api/v1/releases"))
                            .json(&NewRelease { submission }),
                    )
                    .await?;
                    show(&d, format);
                }
                ReleaseCommand::List {
                    plugin,
                    state,
                    tenant,
                    awaiting_me,
                    server,
                    format,
                } => {
                    let mut q: Vec<(&str, String)> = Vec::new();
                    if let Some(p) = plugin {
                        q.push(("plugin", p));
                    }
                    if let Some(s) = state {
                        q.push(("state", s));
                    }
                    if let Some(t) = tenant {
                        q.push(("tenant", t));
                    }
                    if awaiting_me {
                        q.push(("awaiting_me", "true".into()));
                    }
                    let query: String = form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(q.iter().map(|(k, v)| (*k, v.as_str())))
                        .finish();
                    let page: ReleasePage = send(
                        &server,
                        http.get(url(&server.server, &format!("/api/v1/releases?{query}"))),
                    )
                    .await?;
                    if format == Format::Json {
                        print_json(&page);
                    } else {
                        println!(
                            "{:<36}  {:<20} {:<10} {:<11} STAGE",
                            "RELEASE", "PLUGIN", "VERSION", "STATE"
                        );
                        for r in &page.items {
                            println!(
                                "{:<36}  {:<20} {:<10} {:<11} {}{}",
                                r.id,
                                r.plugin,
                                r.version,
                                r.state.label(),
                                r.stage.as_deref().unwrap_or("-"),
                                r.waiting
                                    .as_ref()
                                    .map(|w| format!(" ({w})"))
                                    .unwrap_or_default()
                            );
                        }
                        println!("{} of {}", page.items.len(), page.total);
                    }
                }
                ReleaseCommand::Show { id, server, format } => {
                    let d: ReleaseDetail = send(
                        &server,
                        http.get(url(&server.server, &format!("/api/v1/releases/{id}"))),
                    )
                    .await?;
                    show(&d, format);
                }
                ReleaseCommand::Approve {
                    id,
                    reason,
                    server,
                    format,
                } => {
                    let d: ReleaseDetail = send(
                        &server,
                        http.post(url(
                            &server.server,
                            &format!("/api/v1/releases/{id}/approvals"),
                        ))
                        .json(&DecisionInput {
                            decision: Verdict::Approve,
                            reason,
                        }),
                    )
                    .await?;
                    show(&d, format);
                }
                ReleaseCommand::Reject {
                    id,
                    reason,
                    server,
                    format,
                } => {
                    let d: ReleaseDetail = send(
                        &server,
                        http.post(url(
                            &server.server,
                            &format!("/api/v1/releases/{id}/approvals"),
                        ))
                        .json(&DecisionInput {
                            decision: Verdict::Reject,
                            reason,
                        }),
                    )
                    .await?;
                    show(&d, format);
                }
                ReleaseCommand::Abort {
                    id,
                    reason,
                    server,
                    format,
                } => {
                    let d: ReleaseDetail = send(
                        &server,
                        http.post(url(&server.server, &format!("/api/v1/releases/{id}/abort")))
                            .json(&ReasonInput { reason }),
                    )
                    .await?;
                    show(&d, format);
                }
                ReleaseCommand::Promote(c) => control(&http, c, RolloutControl::Promote).await?,
                ReleaseCommand::Pause(c) => control(&http, c, RolloutControl::Pause).await?,
                ReleaseCommand::Resume(c) => control(&http, c, RolloutControl::Resume).await?,
                ReleaseCommand::Retry(c) => control(&http, c, RolloutControl::Retry).await?,
                ReleaseCommand::Yank(c) => control(&http, c, RolloutControl::Yank).await?,
                ReleaseCommand::Download { id, out, server } => {
                    let res = http
                        .get(url(
                            &server.server,
                            &format!("/api/v1/releases/{id}/attestations"),
                        ))
                        .bearer_auth(&server.token)
                        .send()
                        .await
                        .map_err(|e| format!("cannot reach {}: {e}", server.server))?;
                    if !res.status().is_success() {
                        return Err(answer::<serde_json::Value>(res)
                            .await
                            .err()
                            .unwrap_or_default());
                    }
                    let bytes = res.bytes().await.map_err(|e| e.to_string())?;
                    let n = unpack(&bytes, &out)?;
                    eprintln!(
                        "{n} files in {}; verify with:\n  cd {} && in-toto-verify -l root.layout --verification-keys release.pub\n  stellar verify-release {} --trust-root YOUR-PINNED-trust-root.json",
                        out.display(),
                        out.display(),
                        out.display()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        },
        ExitCode::FAILURE,
    )
}

/// Unpacks an attestation archive (its one top folder stripped) into `out`, which must not
/// exist yet; refuses paths that leave it.
pub fn unpack(bytes: &[u8], out: &Path) -> Result<usize, String> {
    if out.exists() {
        return Err(format!("`{}` exists: name a new folder", out.display()));
    }
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create `{}`: {e}", out.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut n = 0;
    for entry in archive
        .entries()
        .map_err(|e| format!("the archive is damaged: {e}"))?
    {
        let mut entry = entry.map_err(|e| format!("the archive is damaged: {e}"))?;
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        let rel: std::path::PathBuf = path.components().skip(1).collect();
        if rel.as_os_str().is_empty()
            || rel.components().any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(format!(
                "the archive holds an unsafe path `{}`",
                path.display()
            ));
        }
        let target = out.join(&rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        entry
            .unpack(&target)
            .map_err(|e| format!("cannot write `{}`: {e}", target.display()))?;
        n += 1;
    }
    Ok(n)
}

/// What `verify-release` found.
#[derive(Debug, Serialize)]
pub struct ReleaseReport {
    pub ok: bool,
    pub steps: Vec<String>,
    pub bundle_sha256: String,
    pub layout_expires: String,
    pub statements: Vec<String>,
}

/// Every file under `dir`, by relative path with `/`, as the in-toto verifier records them.
fn read_dir(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut out = BTreeMap::new();
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).map_err(|e| format!("cannot read `{}`: {e}", d.display()))?;
        for e in entries {
            let e = e.map_err(|e| e.to_string())?;
            let kind = e.file_type().map_err(|e| e.to_string())?;
            if kind.is_symlink() {
                return Err(format!(
                    "`{}` is a symbolic link: refusing to follow it",
                    e.path().display()
                ));
            }
            if kind.is_dir() {
                stack.push(e.path());
                continue;
            }
            let len = e.metadata().map_err(|e| e.to_string())?.len();
            total += len;
            if total > MAX_DIR_BYTES || out.len() >= MAX_FILES {
                return Err(format!(
                    "`{}` holds more than 1 GiB or 10,000 files: not an attestation folder",
                    dir.display()
                ));
            }
            let rel = e
                .path()
                .strip_prefix(dir)
                .map_err(|e| e.to_string())?
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.insert(
                rel,
                std::fs::read(e.path())
                    .map_err(|err| format!("cannot read `{}`: {err}", e.path().display()))?,
            );
        }
    }
    Ok(out)
}

/// Verifies an unpacked attestation folder against a trust root, at `now`: the layout signed by
/// a release key of the root (not revoked), not expired; every step's link signed by a key the
/// layout names; the bundle on disk the one the chain carried; the release statement signed by
/// a release key over that bundle; the verdict statement by a validator key.
pub fn verify_dir(
    dir: &Path,
    root: &TrustRoot,
    now: DateTime<Utc>,
) -> Result<ReleaseReport, String> {
    let files = read_dir(dir)?;
    let text = |name: &str| -> Result<String, String> {
        files
            .get(name)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .ok_or_else(|| format!("`{name}` is missing from {}", dir.display()))
    };
    let layout = Envelope::from_json(&text(delivery::layout::LAYOUT)?)
        .map_err(|e| format!("{}: {e}", delivery::layout::LAYOUT))?;
    let owners: Vec<PublicKey> = root
        .keys
        .iter()
        .filter(|k| k.purpose == Purpose::Release && k.revoked_at.is_none_or(|r| r > now))
        .filter_map(|k| PublicKey::from_pem(&k.public_key).ok())
        .collect();
    let links: BTreeMap<String, Envelope> = files
        .iter()
        .filter(|(name, _)| name.ends_with(".link") && !name.contains('/'))
        .filter_map(|(name, b)| {
            Envelope::from_json(&String::from_utf8_lossy(b))
                .ok()
                .map(|e| (name.clone(), e))
        })
        .collect();
    let on_disk: Artifacts = files
        .iter()
        .map(|(p, b)| (p.clone(), intoto::digest_of(b)))
        .collect();
    let checked =
        intoto::verify(&layout, &owners, &links, &on_disk, now).map_err(|e| e.to_string())?;
    let bundle = files
        .get(delivery::layout::BUNDLE)
        .ok_or("the bundle is missing")?;
    let mut statements = Vec::new();
    for (name, purpose) in [
        ("statements/release.json", Purpose::Release),
        ("statements/verdict.json", Purpose::Validator),
        ("statements/review-package.json", Purpose::PipelineStep),
    ] {
        let Some(b) = files.get(name) else {
            continue;
        };
        let env =
            Envelope::from_json(&String::from_utf8_lossy(b)).map_err(|e| format!("{name}: {e}"))?;
        let statement = env
            .verify(root, purpose, now)
            .map_err(|e| format!("{name}: {e}"))?;
        trust::dsse::check_artifact(&statement, None, bundle)
            .map_err(|e| format!("{name}: {e}"))?;
        statements.push(format!(
            "{name}: {} (signed by a {purpose} key)",
            statement.predicate_type
        ));
    }
    Ok(ReleaseReport {
        ok: true,
        steps: checked.steps.iter().map(|s| s.name.clone()).collect(),
        bundle_sha256: intoto::digest_of(bundle)
            .get("sha256")
            .cloned()
            .unwrap_or_default(),
        layout_expires: checked.expires.clone(),
        statements,
    })
}

pub fn run_verify(args: VerifyReleaseArgs) -> ExitCode {
    let outcome = super::trust_root(&args.trust_root)
        .and_then(|root| verify_dir(&args.dir, &root, Utc::now()));
    match outcome {
        Ok(report) => {
            if args.format == Format::Json {
                print_json(&report);
            } else {
                println!(
                    "verified: the layout (valid until {}) and the links of {} step(s): {}",
                    report.layout_expires,
                    report.steps.len(),
                    report.steps.join(" → ")
                );
                println!("bundle sha256 {}", report.bundle_sha256);
                for s in &report.statements {
                    println!("{s}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if args.format == Format::Json {
                print_json(&serde_json::json!({"ok": false, "error": e}));
            } else {
                eprintln!("NOT verified: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

pub fn run_pipeline(cmd: PipelineCommand) -> ExitCode {
    if let PipelineCommand::Check { file, format } = &cmd {
        let text = match super::read(file, "the pipeline spec") {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        return match delivery::spec::parse(&text) {
            Ok(spec) => {
                if *format == Format::Json {
                    print_json(&serde_json::json!({"ok": true, "pipelines": spec.pipelines}));
                } else {
                    for p in &spec.pipelines {
                        let stages: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
                        println!(
                            "{}: pipeline `{}`: {}",
                            file.display(),
                            p.name,
                            stages.join(" → ")
                        );
                    }
                    println!("{}: ok", file.display());
                }
                ExitCode::SUCCESS
            }
            Err(errors) => {
                if *format == Format::Json {
                    print_json(&serde_json::json!({"ok": false, "errors": errors}));
                } else {
                    for e in &errors {
                        eprintln!("{}:{e}", file.display());
                    }
                }
                ExitCode::FAILURE
            }
        };
    }
    runtime_or(
        async move {
            let http = client()?;
            match cmd {
                PipelineCommand::Check { .. } => {}
                PipelineCommand::Publish {
                    file,
                    comment,
                    server,
                    format,
                } => {
                    let source = super::read(&file, "the pipeline spec")?;
                    if let Err(errors) = delivery::spec::parse(&source) {
                        let lines: Vec<String> = errors
                            .iter()
                            .map(|e| format!("{}:{e}", file.display()))
                            .collect();
                        return Err(format!("the spec is not valid:\n  {}", lines.join("\n  ")));
                    }
                    let v: PipelineVersion = send(
                        &server,
                        http.post(url(&server.server, "/api/v1/pipeline/versions"))
                            .json(&app::delivery::NewPipelineVersion { source, comment }),
                    )
                    .await?;
                    if format == Format::Json {
                        print_json(&v);
                    } else {
                        println!(
                            "published pipeline version {} (sha256 {})",
                            v.version, v.sha256
                        );
                    }
                }
                PipelineCommand::Show {
                    version,
                    server,
                    format,
                } => {
                    let path = match version {
                        Some(v) => format!("/api/v1/pipeline/versions/{v}"),
                        None => "/api/v1/pipeline".into(),
                    };
                    let v: PipelineVersion =
                        send(&server, http.get(url(&server.server, &path))).await?;
                    if format == Format::Json {
                        print_json(&v);
                    } else {
                        println!(
                            "# version {} by {} at {}",
                            v.version, v.created_by, v.created_at
                        );
                        print!("{}", v.source);
                    }
                }
                PipelineCommand::Versions { server, format } => {
                    let vs: Vec<PipelineVersion> = send(
                        &server,
                        http.get(url(&server.server, "/api/v1/pipeline/versions")),
                    )
                    .await?;
                    if format == Format::Json {
                        print_json(&vs);
                    } else {
                        for v in &vs {
                            println!(
                                "{:>4}  {}  {}  {}",
                                v.version,
                                v.created_at,
                                v.created_by,
                                v.comment.as_deref().unwrap_or("")
                            );
                        }
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        },
        ExitCode::FAILURE,
    )
}
