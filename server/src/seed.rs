//! The `--demo` seed: two partner tenants, one user per role (all with the documented demo
//! password), and judged submissions of the example plugins (a pass, a warn, denials with
//! several findings, and a second version that adds a permission), signed with a demo
//! publisher key and judged through the same intake and analysis as any upload, so that every
//! page has something true to show on first start. Idempotent: what exists already is left
//! alone.

use app::api::backend::Principal;
use app::authz::Scope;
use app::error::AppError;
use app::types::{NewApiToken, NewTenant, NewUser, Role};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use app::types::{NewPublisherKey, SubmissionFilter};
use plugin::pack::PluginFiles;
use trust::keys::KeyPair;

use crate::db::entities::{api_token, user};
use crate::domain::Password;
use crate::services::Services;
use crate::services::submissions::SubmitError;

/// The password of every demo user. Public: demo data must never reach a real deployment.
pub const DEMO_PASSWORD: &str = "stellar-demo";

const TENANTS: &[(&str, &str)] = &[("acme", "Acme Corp"), ("globex", "Globex Corporation")];

const USERS: &[(&str, &str, Role, Option<&str>)] = &[
    ("admin", "Ada Admin", Role::Admin, None),
    ("secops", "Sam SecOps", Role::Secops, None),
    ("platform", "Pat Platform", Role::Platform, None),
    ("reviewer", "Rey Reviewer", Role::Reviewer, None),
    ("partner-acme", "Alex (Acme)", Role::Partner, Some("acme")),
    (
        "partner-globex",
        "Gina (Globex)",
        Role::Partner,
        Some("globex"),
    ),
];

use crate::config::ServicesConfig;
use crate::db::entities::tenant;
use trust::keys::Purpose;

/// Seeds the demo data; `submissions` also judges the example plugins, and `releases` releases
/// the accepted ones.
pub async fn demo(
    config: &ServicesConfig,
    services: &Services,
    submissions: bool,
    releases: bool,
) -> Result<(), AppError> {
    let accounts = &services.accounts;
    let system = Principal::operator("system");
    for (slug, name) in TENANTS {
        match accounts
            .create_tenant(
                &system,
                NewTenant {
                    slug: (*slug).into(),
                    name: (*name).into(),
                },
            )
            .await
        {
            Ok(_) | Err(AppError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    // Publisher profiles: Acme is a verified partner; Globex a community publisher that the
    // marketplace has not verified yet (its plugins need two signatures).
    for (slug, verified, tier) in [("acme", true, "partner"), ("globex", false, "community")] {
        tenant::Entity::update_many()
            .col_expr(tenant::Column::Verified, verified.into())
            .col_expr(tenant::Column::Tier, tier.into())
            .filter(tenant::Column::Slug.eq(slug))
            .exec(&services.db.conn)
            .await
            .map_err(crate::services::db_error)?;
    }
    for (username, display, role, tenant) in USERS {
        let input = NewUser {
            username: (*username).into(),
            display_name: (*display).into(),
            role: *role,
            tenant: tenant.map(Into::into),
            password: String::new(),
        };
        match accounts
            .create_user_with(&system, input, Password::demo(DEMO_PASSWORD))
            .await
        {
            Ok(_) | Err(AppError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    // One token per partner, so that the token pages have something to show. Their secrets are
    // discarded: create your own to use the API.
    for partner in ["partner-acme", "partner-globex"] {
        let Some(u) = user::Entity::find()
            .filter(user::Column::Username.eq(partner))
            .one(&services.db.conn)
            .await
            .map_err(crate::services::db_error)?
        else {
            continue;
        };
        let existing = api_token::Entity::find()
            .filter(api_token::Column::UserId.eq(u.id))
            .count(&services.db.conn)
            .await
            .map_err(crate::services::db_error)?;
        if existing == 0 {
            accounts
                .create_token(
                    &system,
                    NewApiToken {
                        name: "ci (demo)".into(),
                        user: Some(partner.into()),
                        expires_in_days: Some(90),
                        scopes: Some(vec![Scope::Read, Scope::Submit]),
                    },
                )
                .await?;
        }
    }
    // The pipeline owner's release key, online, so that demo releases are signed end to end
    // (a real deployment may keep it offline: `stellar key generate --purpose release --offline`).
    if services.keys.active(Purpose::Release).await?.is_none() {
        services
            .keys
            .generate(&system, Purpose::Release, None, &services.ledger_store)
            .await?;
    }
    if submissions {
        demo_submissions(services).await?;
        if releases {
            demo_releases(services).await?;
            demo_rollouts(config, services).await?;
        }
    }
    tracing::info!(
        "demo data present: users admin, secops, platform, reviewer, partner-acme, partner-globex (password `{DEMO_PASSWORD}`)"
    );
    Ok(())
}

/// The files of an example plugin folder (`examples/plugins/<name>`), built into the binary.
macro_rules! example {
    ($dir:literal) => {
        [
            (
                "plugin.toml",
                include_bytes!(concat!("../../examples/plugins/", $dir, "/plugin.toml")).as_slice(),
            ),
            (
                "plugin.wat",
                include_bytes!(concat!("../../examples/plugins/", $dir, "/plugin.wat")).as_slice(),
            ),
            (
                "sbom.cdx.json",
                include_bytes!(concat!("../../examples/plugins/", $dir, "/sbom.cdx.json"))
                    .as_slice(),
            ),
            (
                "README.md",
                include_bytes!(concat!("../../examples/plugins/", $dir, "/README.md")).as_slice(),
            ),
        ]
    };
}

/// An example's files, with its manifest edited (`from` → `to`, in order).
fn plugin(files: &[(&str, &[u8])], edits: &[(&str, &str)]) -> PluginFiles {
    let mut out: PluginFiles = files
        .iter()
        .map(|(name, bytes)| ((*name).to_owned(), bytes.to_vec()))
        .collect();
    if let Some(manifest) = out.get_mut("plugin.toml") {
        let mut text = String::from_utf8_lossy(manifest).into_owned();
        for (from, to) in edits {
            text = text.replace(from, to);
        }
        *manifest = text.into_bytes();
    }
    out
}

/// The clean example under another id and version.
fn renamed(id: &str, version: &str) -> PluginFiles {
    let id_line = format!("id = \"{id}\"");
    let version_line = format!("version = \"{version}\"");
    plugin(
        &example!("clean"),
        &[
            ("id = \"acme-hello\"", id_line.as_str()),
            ("version = \"1.0.0\"", version_line.as_str()),
        ],
    )
}

/// What each partner submits, in order.
fn demo_plugins(partner: &str) -> Vec<(&'static str, PluginFiles)> {
    match partner {
        "partner-acme" => vec![
            // Passes.
            ("acme-hello-1.0.0.tar.gz", plugin(&example!("clean"), &[])),
            // Passes too: a second plugin (its release is rejected in review).
            (
                "acme-greeter-1.0.0.tar.gz",
                plugin(
                    &example!("clean"),
                    &[
                        ("id = \"acme-hello\"", "id = \"acme-greeter\""),
                        ("name = \"Acme Hello\"", "name = \"Acme Greeter\""),
                    ],
                ),
            ),
            // A patch release that adds a permission it never uses: accepted with warnings.
            (
                "acme-hello-1.0.1.tar.gz",
                plugin(
                    &example!("clean"),
                    &[
                        ("version = \"1.0.0\"", "version = \"1.0.1\""),
                        (
                            "permissions = [\"net:api.example.com\", \"clock\"]",
                            "permissions = [\"net:api.example.com\", \"clock\", \"random\"]",
                        ),
                    ],
                ),
            ),
            // Two plugins whose second versions roll out on the demo fleet: acme-clock's
            // rollout is in progress, acme-counter's is rolled back (an error spike).
            ("acme-clock-1.0.0.tar.gz", renamed("acme-clock", "1.0.0")),
            ("acme-clock-1.1.0.tar.gz", renamed("acme-clock", "1.1.0")),
            (
                "acme-counter-1.0.0.tar.gz",
                renamed("acme-counter", "1.0.0"),
            ),
            (
                "acme-counter-1.1.0.tar.gz",
                renamed("acme-counter", "1.1.0"),
            ),
            // Denied: it calls the network without declaring it.
            (
                "acme-telemetry-1.0.0.tar.gz",
                plugin(&example!("undeclared-network"), &[]),
            ),
            // Denied with six findings: a manifest full of mistakes.
            (
                "acme-broken-1.0.tar.gz",
                plugin(&example!("broken-manifest"), &[]),
            ),
        ],
        "partner-globex" => vec![(
            // Denied: more memory than the limit, from a publisher not verified yet.
            "globex-cache-1.0.0.tar.gz",
            plugin(
                &example!("over-memory"),
                &[
                    ("id = \"acme-big-cache\"", "id = \"globex-cache\""),
                    ("publisher = \"acme\"", "publisher = \"globex\""),
                ],
            ),
        )],
        _ => Vec::new(),
    }
}

/// Submits and judges the demo plugins of each partner that has submitted nothing yet: a demo
/// publisher key is registered (as the partner) and approved (by `system`), the bundles are
/// signed with it and uploaded through intake, and the queue is worked off here, before the
/// server's workers start, so that the versions are judged in order.
async fn demo_submissions(services: &Services) -> Result<(), AppError> {
    let system = Principal::operator("system");
    for partner in ["partner-acme", "partner-globex"] {
        let who = services.accounts.act_as(partner).await?;
        let page = services
            .submissions
            .list(
                &who,
                SubmissionFilter {
                    limit: Some(1),
                    ..SubmissionFilter::default()
                },
            )
            .await?;
        if page.total > 0 {
            continue;
        }
        let key = KeyPair::generate()
            .map_err(|e| AppError::internal(format!("cannot make the demo key: {e}")))?;
        let registered = services
            .submissions
            .register_key(
                &who,
                NewPublisherKey {
                    name: "demo signing key".into(),
                    public_key_pem: key.public().to_pem(),
                    tenant: None,
                },
            )
            .await?;
        services
            .submissions
            .approve_key(&system, &registered.key_id)
            .await?;
        for (filename, files) in demo_plugins(partner) {
            let (bytes, _) = plugin::pack::pack_files(&files, std::slice::from_ref(&key))
                .map_err(|e| AppError::internal(format!("demo plugin {filename}: {e}")))?;
            services
                .submissions
                .submit(&who, filename, bytes)
                .await
                .map_err(|e| match e {
                    SubmitError::App(e) => e,
                    SubmitError::Refused(r) => {
                        AppError::internal(format!("demo plugin {filename} was refused: {r}"))
                    }
                })?;
            // Judge it now, so that the next version sees it as the previous one.
            while services.work_once("demo-seed").await? {}
        }
    }
    Ok(())
}

/// Releases the demo's accepted versions, each through the real pipeline (the queue worked off
/// here): acme-hello 1.0.0 reviewed and GA; acme-greeter 1.0.0 rejected in review; acme-hello
/// 1.0.1 (a new permission) waiting for a reviewer; and a year-end freeze in the calendar.
/// The id of a demo partner's submission of a plugin version.
async fn demo_submission(
    services: &Services,
    partner: &Principal,
    plugin: &str,
    version: &str,
) -> Result<String, AppError> {
    services
        .submissions
        .list(
            partner,
            SubmissionFilter {
                plugin: Some(plugin.into()),
                ..SubmissionFilter::default()
            },
        )
        .await?
        .items
        .into_iter()
        .find(|s| s.version == version)
        .map(|s| s.id)
        .ok_or_else(|| AppError::internal(format!("the demo has no {plugin} {version}")))
}

async fn demo_releases(services: &Services) -> Result<(), AppError> {
    use app::delivery::{DecisionInput, NewRelease, NewWindow, ReleaseFilter, Verdict, WindowKind};
    let system = Principal::operator("system");
    let existing = services
        .releases
        .list(
            &system,
            ReleaseFilter {
                limit: Some(1),
                ..ReleaseFilter::default()
            },
        )
        .await?;
    if existing.total > 0 {
        return Ok(());
    }
    let platform = services.accounts.act_as("platform").await?;
    let reviewer = services.accounts.act_as("reviewer").await?;
    let partner = services.accounts.act_as("partner-acme").await?;
    let find = |plugin: &'static str, version: &'static str| {
        demo_submission(services, &partner, plugin, version)
    };
    let drain = || async {
        while services.work_once("demo-seed").await? {}
        Ok::<(), AppError>(())
    };
    let release = |who: &Principal, submission: String| {
        let who = who.clone();
        async move {
            services
                .releases
                .create(&who, NewRelease { submission })
                .await
        }
    };
    let decide = |id: String, decision: Verdict, reason: &'static str| {
        let reviewer = reviewer.clone();
        async move {
            services
                .releases
                .decide(
                    &reviewer,
                    &id,
                    DecisionInput {
                        decision,
                        reason: reason.into(),
                    },
                )
                .await
        }
    };
    let ga = release(&platform, find("acme-hello", "1.0.0").await?).await?;
    drain().await?;
    decide(
        ga.summary.id.clone(),
        Verdict::Approve,
        "reviewed for the demo",
    )
    .await?;
    drain().await?;
    let rejected = release(&platform, find("acme-greeter", "1.0.0").await?).await?;
    drain().await?;
    decide(
        rejected.summary.id.clone(),
        Verdict::Reject,
        "the greeting is not localised: add translations and submit a new version",
    )
    .await?;
    drain().await?;
    release(&partner, find("acme-hello", "1.0.1").await?).await?;
    drain().await?;
    let now = services.queue.clock().now();
    let year = chrono::Datelike::year(&now);
    let start = chrono::NaiveDate::from_ymd_opt(year, 12, 24)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc());
    if let Some(start) = start {
        services
            .calendar
            .add(
                &platform,
                NewWindow {
                    name: "year-end freeze".into(),
                    kind: Some(WindowKind::Deny),
                    starts_at: Some(start.to_rfc3339()),
                    ends_at: Some((start + chrono::Duration::days(10)).to_rfc3339()),
                    comment: Some("no promotions over the holidays".into()),
                    ..NewWindow::default()
                },
            )
            .await?;
    }
    Ok(())
}

/// The demo fleet's rollouts: acme-clock 1.0.0 and acme-counter 1.0.0 reach GA through the
/// default pipeline, a canary pipeline with rollback rules takes `acme-c*` from then on, and
/// their 1.1.0 versions roll out over the last 80 minutes to 100 simulated hosts — played with
/// the real services on a clock set back by that long (the hosts poll the channel and report
/// through the fleet service, the rollback rules judge each interval), so that when the server
/// starts acme-clock is rolling out and acme-counter was rolled back by an error spike. The
/// in-progress rollout then goes on with whatever hosts report (`stellar fleet simulate`);
/// without reports it holds and pauses for a person, as a rollout must.
async fn demo_rollouts(config: &ServicesConfig, services: &Services) -> Result<(), AppError> {
    use app::delivery::{DecisionInput, NewRelease, ReleaseFilter, Verdict};
    use delivery::fleet::{ReportBatch, ReportSample};
    use delivery::scenario::Scenario;

    const HOSTS: u32 = 100;
    const INTERVALS: u64 = 16;
    const INTERVAL_SECS: u64 = 300;
    const GRACE_SECS: u64 = 30;
    let platform = services.accounts.act_as("platform").await?;
    let reviewer = services.accounts.act_as("reviewer").await?;
    let partner = services.accounts.act_as("partner-acme").await?;
    let existing = services
        .releases
        .list(
            &platform,
            ReleaseFilter {
                plugin: Some("acme-clock".into()),
                limit: Some(1),
                ..ReleaseFilter::default()
            },
        )
        .await?;
    if existing.total > 0 {
        return Ok(());
    }
    let find = |plugin: &'static str, version: &'static str| {
        demo_submission(services, &partner, plugin, version)
    };
    // Releases a version through review on the given services, and works off their queue.
    let release = |on: Services, submission: String| {
        let platform = platform.clone();
        let reviewer = reviewer.clone();
        async move {
            let r = on
                .releases
                .create(&platform, NewRelease { submission })
                .await?;
            while on.work_once("demo-seed").await? {}
            on.releases
                .decide(
                    &reviewer,
                    &r.summary.id,
                    DecisionInput {
                        decision: Verdict::Approve,
                        reason: "reviewed for the demo".into(),
                    },
                )
                .await?;
            while on.work_once("demo-seed").await? {}
            Ok::<String, AppError>(r.summary.id)
        }
    };
    for plugin in ["acme-clock", "acme-counter"] {
        release(services.clone(), find(plugin, "1.0.0").await?).await?;
    }
    let spec = format!(
        "# The demo's spec: acme-clock and acme-counter roll out to the fleet, judged by the\n\
         # rollback rules; every other plugin goes review → sign → GA.\n\
         format = 1\nlayout_expires_days = 365\n\n\
         [[pipeline]]\nname = \"canary\"\nselect = {{ plugin = \"acme-c*\" }}\n\n\
         [[pipeline.stage]]\nname = \"review\"\nkind = \"approval\"\nrole = \"reviewer\"\napprovers = 1\n\n\
         [[pipeline.stage]]\nname = \"sign\"\nkind = \"sign\"\n\n\
         [[pipeline.stage]]\nname = \"canary\"\nkind = \"rollout\"\n\
         steps = [{{ percent = 10, hold = \"20m\" }}, {{ percent = 50, hold = \"2h\" }}, {{ percent = 100, hold = \"0s\" }}]\n\
         analysis = \"default\"\ninterval = \"5m\"\nwindow = \"10m\"\n\n\
         [[pipeline.stage]]\nname = \"ga\"\nkind = \"ga\"\n\n\
         {}",
        delivery::spec::DEFAULT_SPEC
            .lines()
            .skip_while(|l| !l.starts_with("[[pipeline]]"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    services
        .pipelines
        .publish(
            &platform,
            &spec,
            Some("demo: canary rollouts for acme-c*".into()),
        )
        .await?;

    // The same services on a clock set back: the rollouts' last 80 minutes, played now.
    let start = services.queue.clock().now()
        - chrono::TimeDelta::seconds((INTERVALS * INTERVAL_SECS + 60) as i64);
    let clock = crate::clock::Clock::manual(start);
    let past = Services::open(&ServicesConfig {
        migrate: false,
        clock: clock.clone(),
        ..config.clone()
    })
    .await
    .map_err(|e| AppError::internal(format!("the demo fleet: {e}")))?;
    let token = past
        .fleet
        .create_token(
            &platform,
            app::fleet::NewFleetToken {
                name: "demo fleet".into(),
                host: None,
                group: Some("demo".into()),
                expires_in_days: None,
            },
        )
        .await?;
    let caller = past
        .fleet
        .caller(&token.secret)
        .await?
        .ok_or_else(|| AppError::internal("the demo fleet token does not work"))?;
    let behaviour = |text: &str| {
        delivery::scenario::parse(text).map_err(|e| AppError::internal(format!("demo: {e}")))
    };
    let scenario = |plugin: &str, regression: &str| {
        format!(
            "format = 1\nname = \"{plugin}\"\nplugin = \"{plugin}\"\npublisher = \"acme\"\n\
             hosts = {HOSTS}\ncalls_per_minute = 20\nseed = 11\n\n\
             [rollout]\nsteps = [{{ percent = 5, hold = \"20m\" }}, {{ percent = 100, hold = \"0s\" }}]\n\
             interval = \"5m\"\nwindow = \"10m\"\nduration = \"2h\"\n\n\
             [baseline]\nversion = \"1.0.0\"\nerror_rate = 0.002\np50_ms = 12\np95_ms = 40\n\n\
             [canary]\nversion = \"1.1.0\"\nerror_rate = 0.002\np50_ms = 12\np95_ms = 42\n{regression}\n"
        )
    };
    let plays: Vec<(&str, Scenario)> = vec![
        ("acme-clock", behaviour(&scenario("acme-clock", ""))?),
        (
            "acme-counter",
            behaviour(&scenario(
                "acme-counter",
                "regression = { from_minute = 25, error_rate = 0.12 }",
            ))?,
        ),
    ];
    for plugin in ["acme-clock", "acme-counter"] {
        release(past.clone(), find(plugin, "1.1.0").await?).await?;
    }
    let regions = ["eu-west", "us-east", "ap-south"];
    for interval in 0..INTERVALS {
        // Every host polls, runs the interval, and reports it just before the analysis.
        let mut running: Vec<Vec<(String, String)>> = Vec::with_capacity(HOSTS as usize);
        for h in 0..HOSTS {
            let host = format!("demo-{}", Scenario::host(h));
            let c = past
                .fleet
                .channel(
                    &caller,
                    Some(&host),
                    Some("2.3.0"),
                    Some(regions[h as usize % regions.len()]),
                )
                .await?;
            running.push(
                c.answer
                    .entries
                    .iter()
                    .map(|e| (e.plugin.clone(), e.version.clone()))
                    .collect(),
            );
        }
        clock.advance(std::time::Duration::from_secs(INTERVAL_SECS - GRACE_SECS));
        let end = clock.now().timestamp();
        for (h, entries) in running.iter().enumerate() {
            let mut samples = Vec::new();
            for (plugin, sc) in &plays {
                let Some((_, version)) = entries.iter().find(|(p, _)| p == plugin) else {
                    continue;
                };
                let b = if *version == sc.canary.version {
                    &sc.canary
                } else if let Some(b) = sc.baseline.as_ref().filter(|b| b.version == *version) {
                    b
                } else {
                    continue;
                };
                if let Some(s) = sc.sample(sc.seed, h as u32, interval, b) {
                    samples.push(ReportSample {
                        plugin: (*plugin).to_owned(),
                        version: version.clone(),
                        interval_start: end - INTERVAL_SECS as i64,
                        interval_secs: INTERVAL_SECS,
                        calls: s.calls,
                        errors: s.errors,
                        crashes: s.crashes,
                        latency: s.latency,
                    });
                }
            }
            let batch = ReportBatch {
                host: format!("demo-{}", Scenario::host(h as u32)),
                product_version: "2.3.0".into(),
                policy_pack: "marketplace-guardrails".into(),
                samples,
            };
            past.fleet
                .report(&caller, &batch)
                .await
                .map_err(|e| match e {
                    crate::services::fleet::ReportError::App(e) => e,
                    crate::services::fleet::ReportError::Refused(r) => {
                        AppError::internal(format!("demo report refused: {}", r.detail))
                    }
                })?;
        }
        clock.advance(std::time::Duration::from_secs(GRACE_SECS));
        while past.work_once("demo-seed").await? {}
    }
    Ok(())
}
