//! The scheduler and the durable queue: background work happens when the clock says so, and
//! work that must happen once across instances happens once. Every test here moves a manual
//! clock; none waits for a tick.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use stellar::scheduler::Task;
use stellar::startup::Application;

use crate::helpers::{count, spawn_app, sql, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_signed_when_the_clock_says_and_once_across_instances() {
    let app = spawn_app().await;
    // A second instance on the same database, the same clock and the same keys.
    let mut config = test_config(&app.db);
    config.demo = false;
    config.services.clock = app.clock.clone();
    let second = Application::build(config).await.unwrap();
    let second_scheduler = second.scheduler();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(second.run_until(async move {
        let _ = stopped.await;
    }));
    let admin = app.bearer(&app.token("admin").await);
    let latest = |admin: reqwest::Client| {
        let url = app.url("/api/v1/ledger/checkpoint");
        async move { admin.get(url).send().await.unwrap().status() }
    };

    // Before its time, nothing is signed (and reading does not sign either).
    let ran = app.advance(Duration::from_secs(3599)).await;
    assert!(!ran.contains(&Task::Checkpoint), "{ran:?}");
    assert_eq!(latest(admin.clone()).await, StatusCode::NOT_FOUND);

    // Its time comes on both instances in the same slot: one job, one checkpoint.
    app.clock.advance(Duration::from_secs(1));
    let a = second_scheduler.tick().await;
    let ran = app.advance(Duration::ZERO).await;
    assert!(ran.contains(&Task::Checkpoint) && a.contains(&Task::Checkpoint));
    assert_eq!(
        count(
            &app.db.url,
            "SELECT COUNT(*) AS n FROM jobs WHERE kind = 'ledger.checkpoint'"
        )
        .await,
        1
    );
    assert_eq!(
        count(&app.db.url, "SELECT COUNT(*) AS n FROM ledger_checkpoints").await,
        1
    );
    assert_eq!(latest(admin.clone()).await, StatusCode::OK);

    // Nothing grew: signing now answers the same checkpoint (200); after a change, a new one
    // (201). No background tick can get in between.
    let res = admin
        .post(app.url("/api/v1/ledger/checkpoints"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    app.session("reviewer").await;
    let res = admin
        .post(app.url("/api/v1/ledger/checkpoints"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);

    let _ = stop.send(());
    let _ = task.await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_is_verified_on_schedule_and_a_rewrite_is_caught() {
    let app = spawn_app().await;
    let secops = app.bearer(&app.token("secops").await);
    let status = |c: reqwest::Client| {
        let url = app.url("/api/v1/ledger");
        async move {
            c.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let ran = app.advance(Duration::from_secs(3600)).await;
    assert!(ran.contains(&Task::VerifyLedger), "{ran:?}");
    let s = status(secops.clone()).await;
    assert_eq!(s["last_verification"]["ok"], true, "{s}");
    // The verification signed a checkpoint first, so every entry it checked is covered.
    assert_eq!(
        s["last_verification"]["checkpoint_size"], s["latest_checkpoint"]["size"],
        "{s}"
    );

    // Someone with the database rewrites an old entry.
    sql(
        &app.db.url,
        "UPDATE ledger_entries SET actor = 'mallory' WHERE seq = 1",
    )
    .await;
    app.advance(Duration::from_secs(3600)).await;
    let s = status(secops).await;
    assert_eq!(s["last_verification"]["ok"], false, "{s}");
    assert!(
        s["last_verification"]["message"]
            .as_str()
            .unwrap()
            .contains("entry 1"),
        "{s}"
    );
    app.stop().await;
}
