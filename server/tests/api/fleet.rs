//! The fleet and progressive delivery end to end (SQLite by default, PostgreSQL with
//! `STELLAR_TEST_DATABASE_URL`): 200 simulated hosts over real HTTP poll the channel, install
//! what it names and report their health; the rollback rules judge each interval on the
//! server's scheduler clock (moved by the test, never waited for). Each shipped scenario must
//! give the decision its file expects, and the same decision sequence as the offline
//! simulation with the same seed.

use std::time::Duration;

use reqwest::Client;
use serde_json::{Value, json};
use stellar::fleet_sim::{Fleet, Polls, Settings};

use crate::helpers::{TestApp, count, json, problem, spawn_app_with};

const BASELINE: &str = "1.0.0";
const CANARY: &str = "1.0.1";
/// Hosts report this long before each analysis (their intervals end before the server judges).
const GRACE_SECS: u64 = 30;

fn scenario_text(file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/rollouts")
        .join(file);
    // The demo's plugin and its two judged versions play the scenario's baseline and canary.
    std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"acme-logger\"", "\"acme-hello\"")
        .replace("version = \"1.4.0\"", &format!("version = \"{BASELINE}\""))
        .replace("version = \"1.5.0\"", &format!("version = \"{CANARY}\""))
}

fn spec_for(sc: &delivery::scenario::Scenario) -> String {
    let steps: Vec<String> = sc
        .plan
        .steps
        .iter()
        .map(|s| format!("{{ percent = {}, hold = \"{}s\" }}", s.percent, s.hold_secs))
        .collect();
    format!(
        r#"format = 1
[[pipeline]]
name = "canary"
[[pipeline.stage]]
name = "review"
kind = "approval"
role = "reviewer"
approvers = 1
[[pipeline.stage]]
name = "sign"
kind = "sign"
[[pipeline.stage]]
name = "canary"
kind = "rollout"
analysis = "default"
steps = [{}]
interval = "{}m"
window = "{}m"
min_samples = {}
inconclusive_limit = {}
[[pipeline.stage]]
name = "ga"
kind = "ga"
"#,
        steps.join(", "),
        sc.plan.interval_secs / 60,
        sc.plan.window_secs / 60,
        sc.plan.min_samples,
        sc.plan.inconclusive_limit
    )
}

async fn submission(app: &TestApp, version: &str) -> String {
    let staff = app.bearer(&app.token("platform").await);
    let page = json(staff.get(app.url("/api/v1/submissions?plugin=acme-hello"))).await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["version"] == version)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Requests a release of a version and approves it; returns its id.
async fn release_through_review(app: &TestApp, version: &str) -> String {
    let admin = app.bearer(&app.token("admin").await);
    let reviewer = app.bearer(&app.token("reviewer").await);
    let sub = submission(app, version).await;
    let res = admin
        .post(app.url("/api/v1/releases"))
        .json(&json!({"submission": sub}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201, "{:?}", res.text().await);
    let id = res.json::<Value>().await.unwrap()["summary"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.drain().await;
    let res = reviewer
        .post(app.url(&format!("/api/v1/releases/{id}/approvals")))
        .json(&json!({"decision": "approve", "reason": "ok"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200, "{:?}", res.text().await);
    app.drain().await;
    id
}

async fn release(app: &TestApp, client: &Client, id: &str) -> Value {
    json(client.get(app.url(&format!("/api/v1/releases/{id}")))).await
}

/// A judged server where acme-hello 1.0.0 is GA, the analysed rollout spec is published and a
/// group fleet token exists: `(app, fleet token, scenario)`.
async fn fleet_ready(file: &str) -> (TestApp, String, delivery::scenario::Scenario) {
    let app = spawn_app_with(|c| c.demo_submissions = true).await;
    let ga = release_through_review(&app, BASELINE).await;
    let platform = app.bearer(&app.token("platform").await);
    assert_eq!(
        release(&app, &platform, &ga).await["summary"]["state"],
        "succeeded"
    );
    let sc = delivery::scenario::parse(&scenario_text(file)).unwrap();
    let res = platform
        .post(app.url("/api/v1/pipeline/versions"))
        .json(&json!({"source": spec_for(&sc), "comment": "canary with rollback rules"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201, "{:?}", res.text().await);
    let made = json(
        platform
            .post(app.url("/api/v1/fleet/tokens"))
            .json(&json!({"name": "simulated fleet", "group": "sim"})),
    )
    .await;
    let token = made["secret"].as_str().unwrap().to_owned();
    assert!(token.starts_with("stf_"), "{made}");
    (app, token, sc)
}

fn fleet(app: &TestApp, token: &str, sc: &delivery::scenario::Scenario) -> Fleet {
    Fleet::new(
        Settings {
            server: app.base.clone(),
            token: token.to_owned(),
            hosts: sc.hosts,
            seed: sc.seed,
            concurrency: 16,
            jitter: Duration::ZERO,
            product_version: "2.3.0".into(),
            regions: vec!["eu-west".into(), "us-east".into()],
        },
        sc.clone(),
    )
    .unwrap()
}

/// The outcome of a live rollout.
struct Live {
    app: TestApp,
    token: String,
    release: String,
    sc: delivery::scenario::Scenario,
    fleet: Fleet,
    detail: Value,
    /// The hosts' versions at each round's poll.
    rounds: Vec<Polls>,
}

/// Plays a scenario live: the release of 1.0.1 enters its rollout, then each round the hosts
/// poll, run an interval, report it, and the server's clock reaches the analysis.
async fn play(file: &str) -> Live {
    let (app, token, sc) = fleet_ready(file).await;
    let fleet = fleet(&app, &token, &sc);
    let first = fleet.poll(0).await.unwrap();
    assert_eq!(
        first.versions.get(BASELINE),
        Some(&u64::from(sc.hosts)),
        "before the rollout every host runs the GA version: {first:?}"
    );
    let id = release_through_review(&app, CANARY).await;
    let platform = app.bearer(&app.token("platform").await);
    let r = release(&app, &platform, &id).await;
    assert_eq!(r["rollout"]["phase"], "running", "{r}");
    assert_eq!(r["rollout"]["weight"], sc.plan.steps[0].percent);
    let interval = sc.plan.interval_secs;
    let mut rounds = Vec::new();
    for round in 0..sc.duration_secs / interval {
        let polls = fleet.poll(round + 1).await.unwrap();
        rounds.push(polls);
        app.clock
            .advance(Duration::from_secs(interval - GRACE_SECS));
        let end = app.clock.now().timestamp();
        let reported = fleet.report(round, end).await.unwrap();
        assert_eq!(reported.refused, 0, "round {round}: every report is taken");
        app.advance(Duration::from_secs(GRACE_SECS)).await;
        let r = release(&app, &platform, &id).await;
        if r["summary"]["state"] != "running" || r["rollout"]["phase"] != "running" {
            break;
        }
    }
    let detail = release(&app, &platform, &id).await;
    Live {
        app,
        token,
        release: id,
        sc,
        fleet,
        detail,
        rounds,
    }
}

fn live_sequence(detail: &Value) -> Vec<String> {
    detail["rollout"]["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| format!("{}@{}", i["outcome"].as_str().unwrap(), i["step"]))
        .collect()
}

fn offline_sequence(sc: &delivery::scenario::Scenario, release: &str) -> Vec<String> {
    let pack = stellar::services::policy::rollback_built_in().unwrap();
    let sim = delivery::simulate::simulate(
        sc,
        &pack.pack,
        &dsl::EvalOptions::new(chrono::Utc::now().date_naive()),
        sc.seed,
        Some(release),
    )
    .unwrap();
    sim.intervals
        .iter()
        .map(|i| format!("{}@{}", i.outcome.as_str(), i.step))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_rollout_goes_5_then_25_then_ga_as_offline_and_a_yank_reaches_every_host() {
    let live = play("healthy.toml").await;
    let d = &live.detail;
    assert_eq!(d["summary"]["state"], "succeeded", "{d}");
    assert_eq!(d["rollout"]["phase"], "complete");
    // 5 % → 25 % → GA: the weights hosts saw, round by round.
    let weights: Vec<u64> = d["rollout"]["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["weight"].as_u64().unwrap())
        .collect();
    let mut seen = weights.clone();
    seen.dedup();
    assert_eq!(seen, [5, 25], "{weights:?}");
    assert_eq!(
        live_sequence(d),
        offline_sequence(&live.sc, &live.release),
        "the live run and the offline simulation decide alike"
    );
    // The canary cohort grew with the weight (stable hash of host and release).
    let canary_at = |w: u64| {
        live.rounds
            .iter()
            .zip(&weights)
            .find(|(_, ww)| **ww == w)
            .map(|(p, _)| p.versions.get(CANARY).copied().unwrap_or(0))
            .unwrap()
    };
    assert!(
        canary_at(5) > 0 && canary_at(5) < canary_at(25),
        "{:?}",
        live.rounds
    );
    // Every decision's facts name both cohorts' numbers.
    for i in d["rollout"]["intervals"].as_array().unwrap() {
        assert_eq!(i["canary"]["version"], CANARY, "{i}");
        assert_eq!(i["baseline"]["version"], BASELINE, "{i}");
        assert!(i["baseline"]["samples"].as_u64().unwrap() > 0, "{i}");
    }
    // GA: every host runs 1.0.1 on its next poll.
    let polls = live.fleet.poll(1000).await.unwrap();
    assert_eq!(polls.versions.get(CANARY), Some(&200), "{polls:?}");
    // Metrics: the step and weight per plugin, never per release id.
    let metrics = live
        .app
        .client()
        .get(live.app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The value is not asserted: the tests of this process share one metrics recorder, and
    // another test rolls acme-hello out (or back) at the same time.
    assert!(
        metrics.contains("stellar_rollout_weight{plugin=\"acme-hello\"} "),
        "{metrics}"
    );
    assert!(!metrics.contains(&live.release));

    // A yank of the GA version reaches every host on its next poll, ledgered with the reason.
    let platform = live.app.bearer(&live.app.token("platform").await);
    let partner = live.app.bearer(&live.app.token("partner-acme").await);
    let p = problem(
        partner
            .post(
                live.app
                    .url(&format!("/api/v1/releases/{}/rollout", live.release)),
            )
            .json(&json!({"control": "yank", "reason": "mine"}))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("yank"), "{p}");
    let p = problem(
        platform
            .post(
                live.app
                    .url(&format!("/api/v1/releases/{}/rollout", live.release)),
            )
            .json(&json!({"control": "yank", "reason": ""}))
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    assert_eq!(p["field"], "reason");
    let y = json(
        platform
            .post(
                live.app
                    .url(&format!("/api/v1/releases/{}/rollout", live.release)),
            )
            .json(&json!({"control": "yank", "reason": "a licence problem found after GA"})),
    )
    .await;
    assert_eq!(y["summary"]["state"], "yanked", "{y}");
    let polls = live.fleet.poll(1001).await.unwrap();
    assert_eq!(polls.versions.get(BASELINE), Some(&200), "{polls:?}");
    assert_eq!(
        count(
            &live.app.db.url,
            &format!(
                "SELECT COUNT(*) AS n FROM ledger_entries WHERE action = 'release.yank' AND subject = 'release:{}'",
                live.release
            )
        )
        .await,
        1
    );
    // A second yank is refused: it is no longer GA.
    let res = platform
        .post(
            live.app
                .url(&format!("/api/v1/releases/{}/rollout", live.release)),
        )
        .json(&json!({"control": "yank", "reason": "again"}))
        .send()
        .await
        .unwrap();
    problem(res, 409).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_spike_rolls_back_within_two_intervals_with_its_evidence_signed_and_hosts_follow()
{
    let live = play("error-spike.toml").await;
    let d = &live.detail;
    assert_eq!(d["summary"]["state"], "rolled_back", "{d}");
    assert_eq!(live_sequence(d), offline_sequence(&live.sc, &live.release));
    let intervals = d["rollout"]["intervals"].as_array().unwrap();
    let last = intervals.last().unwrap();
    assert_eq!(last["outcome"], "roll_back");
    let from = live.sc.regression_interval().unwrap();
    let at = last["seq"].as_u64().unwrap() - 1;
    assert!(
        at >= from && at - from < 2,
        "rolled back at interval {at}; the regression began at {from}"
    );
    // The evidence names both cohorts' numbers.
    let rule = &last["fired"][0];
    assert_eq!(rule["rule"], "error_rate_regression", "{last}");
    let message = rule["message"].as_str().unwrap();
    assert!(
        message.contains(CANARY) && message.contains(BASELINE),
        "{message}"
    );
    assert!(
        message.contains(&last["canary"]["error_rate_bp"].to_string())
            && message.contains(&last["baseline"]["error_rate_bp"].to_string()),
        "{message} / {last}"
    );
    assert!(
        d["summary"]["reason"]
            .as_str()
            .unwrap()
            .contains("every host returns to 1.0.0"),
        "{d}"
    );
    // Every host's channel shows the previous version on its next poll.
    let polls = live.fleet.poll(1000).await.unwrap();
    assert_eq!(polls.versions.get(BASELINE), Some(&200), "{polls:?}");
    // The verdict is signed (an in-toto statement by the pipeline-step key) and ledgered.
    assert!(
        d["documents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|doc| doc["name"]
                .as_str()
                .unwrap()
                .starts_with("statements/rollback-")
                && doc["verified"] == true),
        "{d}"
    );
    assert_eq!(
        count(
            &live.app.db.url,
            &format!(
                "SELECT COUNT(*) AS n FROM ledger_entries WHERE action = 'rollout.rollback' AND subject = 'release:{}'",
                live.release
            )
        )
        .await,
        1
    );
    let metrics = live
        .app
        .client()
        .get(live.app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "stellar_rollbacks_total{plugin=\"acme-hello\",rule=\"error_rate_regression\"} 1"
        ),
        "{metrics}"
    );
    // The partner reads why their release was rolled back.
    let partner = live.app.bearer(&live.app.token("partner-acme").await);
    let mine = release(&live.app, &partner, &live.release).await;
    assert_eq!(mine["rollout"]["intervals"], d["rollout"]["intervals"]);
    assert_eq!(mine["controls"], json!([]));
    // A platform user retries it: the rollout starts again at its first step.
    let platform = live.app.bearer(&live.app.token("platform").await);
    assert_eq!(d["controls"], json!(["retry"]));
    let again = json(
        platform
            .post(
                live.app
                    .url(&format!("/api/v1/releases/{}/rollout", live.release)),
            )
            .json(&json!({"control": "retry", "reason": "the fix was in the host"})),
    )
    .await;
    assert_eq!(again["summary"]["state"], "running", "{again}");
    live.app.drain().await;
    let r = release(&live.app, &platform, &live.release).await;
    assert_eq!(r["rollout"]["phase"], "running", "{r}");
    assert_eq!(r["rollout"]["step"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_canary_holds_never_promotes_and_pauses_for_a_person_who_sees_why() {
    let live = play("silent-canary.toml").await;
    let d = &live.detail;
    assert_eq!(d["summary"]["state"], "running", "{d}");
    assert_eq!(d["rollout"]["phase"], "paused");
    assert_eq!(d["rollout"]["step"], 1, "never promoted");
    assert_eq!(live_sequence(d), offline_sequence(&live.sc, &live.release));
    let why = d["rollout"]["paused_because"].as_str().unwrap();
    assert!(why.contains("inconclusive"), "{why}");
    assert!(
        d["summary"]["waiting"]
            .as_str()
            .unwrap()
            .contains("stellar release resume"),
        "{d}"
    );
    // Nothing moves while paused, however long.
    live.app.advance(Duration::from_secs(6 * 3600)).await;
    let platform = live.app.bearer(&live.app.token("platform").await);
    let r = release(&live.app, &platform, &live.release).await;
    assert_eq!(r["rollout"]["intervals"], d["rollout"]["intervals"]);
    assert_eq!(d["controls"], json!(["promote", "resume"]));
    // Promote skips the rest of the hold: the next step now.
    let p = json(
        platform
            .post(
                live.app
                    .url(&format!("/api/v1/releases/{}/rollout", live.release)),
            )
            .json(&json!({"control": "promote", "reason": "the canary hosts log elsewhere"})),
    )
    .await;
    assert_eq!(p["rollout"]["step"], 2, "{p}");
    assert_eq!(p["rollout"]["weight"], 25);
    live.app.drain().await;
    let polls = live.fleet.poll(1000).await.unwrap();
    assert!(
        polls.versions.get(CANARY).copied().unwrap_or(0) > 20,
        "{polls:?}"
    );
    let _ = &live.token;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_refuses_bad_credentials_and_bad_reports_clearly_and_stores_nothing() {
    let (app, token, sc) = fleet_ready("healthy.toml").await;
    let platform = app.bearer(&app.token("platform").await);
    let partner_token = app.token("partner-acme").await;
    let channel = |t: &str| {
        app.client()
            .get(app.url("/api/v1/fleet/channel"))
            .bearer_auth(t.to_owned())
            .header("stellar-host", "host-1")
    };
    // A partner's API token used as a host.
    let p = problem(channel(&partner_token).send().await.unwrap(), 403).await;
    assert!(
        p["detail"].as_str().unwrap().contains("not a fleet token"),
        "{p}"
    );
    // No token, an unknown one.
    problem(
        app.client()
            .get(app.url("/api/v1/fleet/channel"))
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    problem(channel("stf_nope").send().await.unwrap(), 401).await;
    // A fleet token is no use on a user's route.
    let res = app
        .bearer(&token)
        .get(app.url("/api/v1/releases"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    // A group token's host must name itself.
    let p = problem(
        app.bearer(&token)
            .get(app.url("/api/v1/fleet/channel"))
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains("Stellar-Host"),
        "{p}"
    );
    // The channel answers with an ETag, and 304 when nothing changed.
    let res = channel(&token).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["entries"][0]["version"], BASELINE, "{body}");
    assert_eq!(body["entries"][0]["cohort"], "stable");
    let res = channel(&token)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 304);
    // A bundle the channel does not name.
    problem(
        app.bearer(&token)
            .get(app.url(&format!("/api/v1/fleet/bundles/{}", "0".repeat(64))))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;

    // Reports: each bad sample named, the batch refused whole, nothing stored.
    let now = app.clock.now().timestamp();
    let sample = |plugin: &str, version: &str, start: i64, calls: i64, errors: i64| {
        let mut latency = vec![0u64; delivery::rollout::LATENCY_BUCKETS_MS.len() + 1];
        latency[3] = calls.max(0) as u64;
        json!({"plugin": plugin, "version": version, "interval_start": start,
               "interval_secs": 300, "calls": calls, "errors": errors, "crashes": 0,
               "latency": {"counts": latency}})
    };
    let report = |samples: Vec<Value>| {
        app.bearer(&token)
            .post(app.url("/api/v1/fleet/reports"))
            .json(&json!({"host": "host-1", "product_version": "2.3.0",
                          "policy_pack": "marketplace-guardrails", "samples": samples}))
    };
    let p = problem(
        report(vec![
            sample("acme-hello", BASELINE, now - 300, 100, 1),
            sample("acme-hello", BASELINE, now - 300, 100, 1),
            sample("acme-hello", BASELINE, now - 7200 - 300, 100, 1),
            sample("acme-hello", BASELINE, now + 3600, 100, 1),
            sample("acme-hello", BASELINE, now - 600, 10, 50),
            sample("acme-telemetry", "9.9.9", now - 300, 10, 0),
        ])
        .send()
        .await
        .unwrap(),
        422,
    )
    .await;
    let reasons: Vec<(Value, String)> = p["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["sample"].clone(),
                s["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (i, reason) in [
        (1, "duplicate"),
        (2, "late"),
        (3, "future"),
        (4, "inconsistent"),
        (5, "not_told"),
    ] {
        assert!(
            reasons.contains(&(json!(i), reason.to_owned())),
            "sample {i} should be refused as {reason}: {p}"
        );
    }
    assert_eq!(
        count(&app.db.url, "SELECT COUNT(*) AS n FROM fleet_reports").await,
        0
    );
    // A negative count is not a number the API takes.
    let res = report(vec![sample("acme-hello", BASELINE, now - 300, -5, 0)])
        .send()
        .await
        .unwrap();
    problem(res, 422).await;
    // A good one is stored; sent again, it is a duplicate.
    let res = report(vec![sample("acme-hello", BASELINE, now - 300, 100, 1)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 202, "{:?}", res.text().await);
    let p = problem(
        report(vec![sample("acme-hello", BASELINE, now - 300, 100, 1)])
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    assert_eq!(p["samples"][0]["reason"], "duplicate", "{p}");
    let metrics = app
        .client()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("stellar_fleet_reports_refused_total{reason=\"late\"}"),
        "{metrics}"
    );

    // A per-host token speaks for its host only.
    let one = json(
        platform
            .post(app.url("/api/v1/fleet/tokens"))
            .json(&json!({"name": "one host", "host": "host-9", "expires_in_days": 1})),
    )
    .await;
    let one_secret = one["secret"].as_str().unwrap().to_owned();
    let res = app
        .bearer(&one_secret)
        .get(app.url("/api/v1/fleet/channel"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    problem(
        app.bearer(&one_secret)
            .get(app.url("/api/v1/fleet/channel"))
            .header("stellar-host", "host-1")
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    // Expired: refused.
    app.clock.advance(Duration::from_secs(2 * 86_400));
    problem(
        app.bearer(&one_secret)
            .get(app.url("/api/v1/fleet/channel"))
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    // Revoked: refused from the next request.
    let id = json(platform.get(app.url("/api/v1/fleet/tokens"))).await[1]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    json(platform.post(app.url(&format!("/api/v1/fleet/tokens/{id}/revoke")))).await;
    problem(channel(&token).send().await.unwrap(), 401).await;
    // Fleet tokens: platform users and administrators only; a token for nothing is refused.
    let partner = app.bearer(&partner_token);
    problem(
        partner
            .post(app.url("/api/v1/fleet/tokens"))
            .json(&json!({"name": "x", "group": "g"}))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    let p = problem(
        platform
            .post(app.url("/api/v1/fleet/tokens"))
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    assert_eq!(p["field"], "host");
    // A rollout spec whose steps do not increase, and an analysis the server does not have.
    let bad = spec_for(&sc).replace("percent = 25", "percent = 3");
    let p = problem(
        platform
            .post(app.url("/api/v1/pipeline/versions"))
            .json(&json!({"source": bad}))
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("line"), "{p}");
    let other = spec_for(&sc).replace("analysis = \"default\"", "analysis = \"strict\"");
    let p = problem(
        platform
            .post(app.url("/api/v1/pipeline/versions"))
            .json(&json!({"source": other}))
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("`strict`"), "{p}");
    // The fleet page's numbers.
    let o = json(platform.get(app.url("/api/v1/fleet"))).await;
    assert!(o["hosts"].as_u64().unwrap() >= 2, "{o}");
    problem(
        partner.get(app.url("/api/v1/fleet")).send().await.unwrap(),
        403,
    )
    .await;
}
