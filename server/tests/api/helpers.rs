//! `spawn_app()`: a server on port 0 with a fresh database and the demo seed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Once};
use std::time::Duration;

use clap::Parser;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Client, StatusCode, redirect};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::Value;
use stellar::cli::args::{Cli, Command, LogFormat};
use stellar::clock::Clock;
use stellar::config::Config;
use stellar::scheduler::{Scheduler, Task};
use stellar::services::Services;
use stellar::startup::Application;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const PASSWORD: &str = "stellar-demo";

fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // reqwest is built without a default TLS provider (see server/Cargo.toml).
        let _ = rustls::crypto::ring::default_provider().install_default();
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = stellar::telemetry::init_logging(LogFormat::Human, "info");
        }
    });
}

/// A fresh database for one test; dropped (PostgreSQL) or deleted (SQLite) afterwards.
pub struct TestDb {
    pub url: String,
    /// A scratch directory for this test (the SQLite file, keys, exports).
    pub dir: PathBuf,
    pg: Option<(String, String)>,
    _dir: TempDir,
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl TestDb {
    pub async fn new() -> TestDb {
        let dir =
            std::env::temp_dir().join(format!("stellar-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        match std::env::var("STELLAR_TEST_DATABASE_URL") {
            Ok(admin) if admin.starts_with("postgres") => {
                let run = std::env::var("STELLAR_TEST_RUN").unwrap_or_else(|_| "local".into());
                let name = format!(
                    "stellar_t_{}_{}",
                    run.replace(|c: char| !c.is_ascii_alphanumeric(), ""),
                    uuid::Uuid::new_v4().simple()
                );
                let conn = Database::connect(&admin)
                    .await
                    .expect("connect to PostgreSQL");
                conn.execute_raw(Statement::from_string(
                    conn.get_database_backend(),
                    format!("CREATE DATABASE \"{name}\""),
                ))
                .await
                .expect("create test database");
                let _ = conn.close().await;
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                TestDb {
                    url: format!("{base}/{name}"),
                    pg: Some((admin.clone(), name)),
                    _dir: TempDir(dir.clone()),
                    dir,
                }
            }
            _ => TestDb {
                url: format!("sqlite://{}/stellar.db", dir.display()),
                pg: None,
                _dir: TempDir(dir.clone()),
                dir,
            },
        }
    }

    /// Makes the database disappear under the running server.
    pub async fn destroy(&self) {
        match &self.pg {
            Some((admin, name)) => {
                let conn = Database::connect(admin)
                    .await
                    .expect("connect to PostgreSQL");
                conn.execute_raw(Statement::from_string(
                    conn.get_database_backend(),
                    format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                ))
                .await
                .expect("drop test database");
                let _ = conn.close().await;
            }
            None => {
                let file = self.url.trim_start_matches("sqlite://");
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{file}{suffix}"));
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // Drop cannot await: a short-lived runtime on another thread does the work.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async move {
                    if let Ok(conn) = Database::connect(&admin).await {
                        let _ = conn
                            .execute_raw(Statement::from_string(
                                conn.get_database_backend(),
                                format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                            ))
                            .await;
                        let _ = conn.close().await;
                    }
                });
                Ok::<(), std::io::Error>(())
            })
            .join();
        }
    }
}

/// The configuration tests start from: the flags of `stellar serve`, checked exactly as the
/// binary checks them.
pub fn test_config(db: &TestDb) -> Config {
    let key_dir = db.dir.join("keys");
    let cli = Cli::try_parse_from([
        "stellar",
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--database-url",
        &db.url,
        "--demo",
        "--site-root",
        "target/site",
        "--session-ttl",
        "3600",
        "--session-idle",
        "3600",
        "--max-body-bytes",
        "65536",
        "--key-dir",
        key_dir.to_str().expect("key dir"),
        "--ledger-origin",
        "stellar.test/ledger",
        "--checkpoint-interval",
        "3600",
        "--verify-interval",
        "3600",
    ])
    .expect("test flags");
    let Command::Serve(args) = cli.command else {
        panic!("not serve")
    };
    let mut config = Config::from_args(*args).expect("test configuration");
    // Background work runs only when a test moves the clock and ticks the scheduler: nothing
    // happens behind a test's back.
    config.services.clock = Clock::manual(chrono::Utc::now());
    // The demo accounts, but no demo submissions: tests that want them say so.
    config.demo_submissions = false;
    // Nor demo releases: release tests start from judged, unreleased versions.
    config.demo_releases = false;
    config
}

/// A running server.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub db: TestDb,
    /// The clock of its background work (manual unless the test chose otherwise).
    pub clock: Clock,
    pub services: Services,
    scheduler: Arc<Scheduler>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(change: impl FnOnce(&mut Config)) -> TestApp {
    init_logs();
    let db = TestDb::new().await;
    let mut config = test_config(&db);
    change(&mut config);
    spawn_on(db, config).await
}

pub async fn spawn_on(db: TestDb, config: Config) -> TestApp {
    let app = Application::build(config)
        .await
        .expect("build the application");
    let addr = app.local_addr();
    let services = app.services().clone();
    let scheduler = app.scheduler();
    let clock = services.queue.clock().clone();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        base: format!("http://{addr}"),
        db,
        clock,
        services,
        scheduler,
        stop: Some(tx),
        task: Some(task),
    }
}

impl TestApp {
    /// Moves the clock, runs the scheduler's due tasks, and waits until the jobs they queued
    /// (and any others) are done: background work, deterministically.
    pub async fn advance(&self, by: Duration) -> Vec<Task> {
        self.clock.advance(by);
        let ran = self.scheduler.tick().await;
        self.drain().await;
        ran
    }

    /// Waits until no job is due or running (the workers run them; jobs due later wait for
    /// the clock). Fails after a minute.
    pub async fn drain(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while self.services.queue.busy().await.expect("queue") > 0 {
            if std::time::Instant::now() > deadline {
                let conn = Database::connect(&self.db.url).await.expect("connect");
                let rows = conn
                    .query_all_raw(Statement::from_string(
                        conn.get_database_backend(),
                        "SELECT kind, subject, state, attempts, run_after, last_error FROM jobs \
                         WHERE state IN ('queued', 'running')"
                            .to_owned(),
                    ))
                    .await
                    .expect("jobs");
                let jobs: Vec<String> = rows
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {} {} attempts={} run_after={} error={:?}",
                            r.try_get::<String>("", "kind").unwrap_or_default(),
                            r.try_get::<String>("", "subject").unwrap_or_default(),
                            r.try_get::<String>("", "state").unwrap_or_default(),
                            r.try_get::<i32>("", "attempts").unwrap_or_default(),
                            r.try_get::<i64>("", "run_after").unwrap_or_default(),
                            r.try_get::<Option<String>>("", "last_error")
                                .unwrap_or_default(),
                        )
                    })
                    .collect();
                panic!(
                    "jobs still pending after a minute (clock {}):\n{}",
                    self.clock.now_ms(),
                    jobs.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A client without cookies or redirects.
    pub fn client(&self) -> Client {
        Client::builder()
            .redirect(redirect::Policy::none())
            .build()
            .expect("client")
    }

    /// Signs in through the JSON form answer; returns a cookie-holding client and the CSRF token.
    pub async fn session(&self, username: &str) -> Session {
        let client = Client::builder()
            .redirect(redirect::Policy::none())
            .cookie_store(true)
            .build()
            .expect("client");
        let res = client
            .post(self.url("/auth/login"))
            .form(&[("username", username), ("password", PASSWORD)])
            .send()
            .await
            .expect("login request");
        assert_eq!(res.status(), StatusCode::OK, "login of {username}");
        let body: Value = res.json().await.expect("login json");
        Session {
            client,
            csrf: body["csrf_token"].as_str().expect("csrf").to_owned(),
        }
    }

    /// An API token for `username`, created by that user's session.
    pub async fn token(&self, username: &str) -> String {
        let s = self.session(username).await;
        let res = s
            .client
            .post(self.url("/api/v1/tokens"))
            .header("x-csrf-token", &s.csrf)
            .json(&serde_json::json!({"name": "test"}))
            .send()
            .await
            .expect("create token");
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.expect("token json");
        body["secret"].as_str().expect("secret").to_owned()
    }

    /// A client that sends `Authorization: Bearer <token>`.
    pub fn bearer(&self, token: &str) -> Client {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
        );
        Client::builder()
            .redirect(redirect::Policy::none())
            .default_headers(headers)
            .build()
            .expect("client")
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// A signed-in browser-like client.
pub struct Session {
    pub client: Client,
    pub csrf: String,
}

/// Reads a problem document and checks its shape.
pub async fn problem(res: reqwest::Response, status: u16) -> Value {
    assert_eq!(res.status().as_u16(), status, "status");
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        ct.starts_with("application/problem+json"),
        "content type `{ct}`"
    );
    let body: Value = res.json().await.expect("problem json");
    assert_eq!(body["status"], status);
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("urn:stellar:problem:"))
    );
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(body["detail"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(
        body["request_id"].as_str().is_some_and(|t| !t.is_empty()),
        "request id in {body}"
    );
    body
}

/// Runs the `stellar` binary with `args` (and nothing else from the environment when
/// `isolated`, in `cwd` if given); returns (success, stdout, stderr).
pub fn stellar_cli(
    args: &[&str],
    cwd: Option<&std::path::Path>,
    isolated: bool,
) -> (bool, String, String) {
    stellar_cli_env(args, cwd, isolated, &[])
}

/// [`stellar_cli`] with extra environment variables.
pub fn stellar_cli_env(
    args: &[&str],
    cwd: Option<&std::path::Path>,
    isolated: bool,
    envs: &[(&str, &str)],
) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_stellar"));
    cmd.args(args);
    if isolated {
        cmd.env_clear();
    }
    cmd.envs(envs.iter().copied());
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let out = cmd.output().expect("run stellar");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs raw SQL against a test database (to tamper with it).
pub async fn sql(url: &str, statement: &str) {
    let conn = Database::connect(url).await.expect("connect");
    conn.execute_unprepared(statement)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
    let _ = conn.close().await;
}

/// Sends a request and reads its JSON answer.
pub async fn json(req: reqwest::RequestBuilder) -> Value {
    req.send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json answer")
}

/// Runs `SELECT COUNT(*) AS n …` against a test database.
pub async fn count(url: &str, query: &str) -> i64 {
    let conn = Database::connect(url).await.expect("connect");
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            query.to_owned(),
        ))
        .await
        .expect("count")
        .expect("a row");
    let n: i64 = row.try_get("", "n").expect("n");
    let _ = conn.close().await;
    n
}
