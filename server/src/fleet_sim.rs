//! The fleet simulator: N hosts over real HTTP, as a fleet would use a server. Each round every
//! host polls the channel (with its ETag), "installs" what it names (downloading each bundle
//! once, checking its sha256, fetching its attestations), and then reports the health samples
//! the scenario gives the version it runs ([`delivery::scenario::Scenario::sample`], seeded by
//! seed, host and interval: the same seed gives the same samples, so a live run and the
//! offline simulation see the same numbers).
//!
//! Requests run concurrently, at most `concurrency` at once, each after a seeded random jitter.
//! The driver decides when rounds happen: `stellar fleet simulate` sleeps an interval (divided
//! by `--time-scale`) between them; tests move the server's manual clock instead.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use delivery::fleet::{ReportBatch, ReportSample};
use delivery::scenario::{Behaviour, Scenario};
use futures_util::StreamExt;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

/// Settings of a simulated fleet.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: String,
    pub token: String,
    pub hosts: u32,
    pub seed: u64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Each request waits a random 0..jitter before it starts.
    pub jitter: Duration,
    pub product_version: String,
    pub regions: Vec<String>,
}

#[derive(Debug, Clone, Default)]
struct HostState {
    etag: Option<String>,
    /// Plugin → (version, bundle digest).
    installed: BTreeMap<String, (String, String)>,
}

/// What one round of polls did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Polls {
    pub changed: u64,
    pub not_modified: u64,
    /// Hosts running each version of the scenario's plugin after the round.
    pub versions: BTreeMap<String, u64>,
    /// The server's clock (Unix seconds) as the last answer gave it.
    pub server_time: i64,
}

/// What one round of reports did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reported {
    pub stored: u64,
    /// Refused whole with a problem document (422).
    pub refused: u64,
}

/// A simulated fleet.
pub struct Fleet {
    settings: Settings,
    scenario: Scenario,
    client: reqwest::Client,
    hosts: Vec<Arc<Mutex<HostState>>>,
    /// Digests downloaded and checked.
    bundles: Arc<Mutex<BTreeSet<String>>>,
}

fn jitter(seed: u64, host: u32, round: u64, max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
        seed ^ (u64::from(host) << 32) ^ round.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    Duration::from_millis(rng.random_range(0..max.as_millis().max(1) as u64))
}

impl Fleet {
    pub fn new(settings: Settings, scenario: Scenario) -> Result<Fleet, String> {
        if settings.hosts == 0 || settings.hosts > 100_000 {
            return Err("simulate 1 to 100,000 hosts".into());
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(settings.concurrency.max(1))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Fleet {
            hosts: (0..settings.hosts)
                .map(|_| Arc::new(Mutex::new(HostState::default())))
                .collect(),
            settings,
            scenario,
            client,
            bundles: Arc::new(Mutex::new(BTreeSet::new())),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.server.trim_end_matches('/'))
    }

    /// Every host polls the channel once and installs what it names.
    pub async fn poll(&self, round: u64) -> Result<Polls, String> {
        let results: Vec<Result<(bool, i64), String>> =
            futures_util::stream::iter(0..self.settings.hosts)
                .map(|i| self.poll_one(i, round))
                .buffer_unordered(self.settings.concurrency.max(1))
                .collect()
                .await;
        let mut polls = Polls::default();
        for r in results {
            let (changed, time) = r?;
            if changed {
                polls.changed += 1;
            } else {
                polls.not_modified += 1;
            }
            polls.server_time = polls.server_time.max(time);
        }
        for h in &self.hosts {
            let h = h.lock().await;
            if let Some((v, _)) = h.installed.get(&self.scenario.plugin) {
                *polls.versions.entry(v.clone()).or_default() += 1;
            }
        }
        Ok(polls)
    }

    async fn poll_one(&self, i: u32, round: u64) -> Result<(bool, i64), String> {
        tokio::time::sleep(jitter(self.settings.seed, i, round, self.settings.jitter)).await;
        let host = Scenario::host(i);
        let state = &self.hosts[i as usize];
        let etag = state.lock().await.etag.clone();
        let region = &self.settings.regions[i as usize % self.settings.regions.len().max(1)];
        let mut req = self
            .client
            .get(self.url("/api/v1/fleet/channel"))
            .bearer_auth(&self.settings.token)
            .header("stellar-host", &host)
            .header("stellar-product-version", &self.settings.product_version)
            .header("stellar-region", region);
        if let Some(e) = &etag {
            req = req.header("if-none-match", e);
        }
        let res = req
            .send()
            .await
            .map_err(|e| format!("host {host}: cannot reach the channel: {e}"))?;
        let time = res
            .headers()
            .get("stellar-time")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if res.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok((false, time));
        }
        if !res.status().is_success() {
            let status = res.status();
            let body = res.text().await.unwrap_or_default();
            return Err(format!(
                "host {host}: the channel answered {status}: {body}"
            ));
        }
        let new_etag = res
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body: serde_json::Value = res
            .json()
            .await
            .map_err(|e| format!("host {host}: the channel's answer is not JSON: {e}"))?;
        let mut installed = BTreeMap::new();
        for e in body["entries"].as_array().into_iter().flatten() {
            let plugin = e["plugin"].as_str().unwrap_or_default().to_owned();
            let version = e["version"].as_str().unwrap_or_default().to_owned();
            let digest = e["bundle_sha256"].as_str().unwrap_or_default().to_owned();
            self.fetch_bundle(&digest).await?;
            installed.insert(plugin, (version, digest));
        }
        let mut s = state.lock().await;
        s.etag = new_etag;
        s.installed = installed;
        Ok((true, time))
    }

    /// Downloads a bundle once, checks its digest and that its attestations are served.
    async fn fetch_bundle(&self, digest: &str) -> Result<(), String> {
        if self.bundles.lock().await.contains(digest) {
            return Ok(());
        }
        let res = self
            .client
            .get(self.url(&format!("/api/v1/fleet/bundles/{digest}")))
            .bearer_auth(&self.settings.token)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !res.status().is_success() {
            return Err(format!(
                "bundle {digest}: the server answered {}",
                res.status()
            ));
        }
        let bytes = res.bytes().await.map_err(|e| e.to_string())?;
        let got = hex::encode(Sha256::digest(&bytes));
        if got != digest {
            return Err(format!(
                "bundle {digest}: the download's sha256 is {got}: not installed"
            ));
        }
        let res = self
            .client
            .get(self.url(&format!("/api/v1/fleet/bundles/{digest}/attestations")))
            .bearer_auth(&self.settings.token)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let docs: Vec<serde_json::Value> = res.json().await.map_err(|e| e.to_string())?;
        if docs.is_empty() {
            return Err(format!(
                "bundle {digest} has no attestations: not installed"
            ));
        }
        self.bundles.lock().await.insert(digest.to_owned());
        Ok(())
    }

    fn behaviour(&self, version: &str) -> Option<&Behaviour> {
        if version == self.scenario.canary.version {
            Some(&self.scenario.canary)
        } else {
            self.scenario
                .baseline
                .as_ref()
                .filter(|b| b.version == version)
        }
    }

    /// Every host reports interval `interval` (ending at `end`, Unix seconds by the server's
    /// clock) for the version of the scenario's plugin it runs. A report the server refuses
    /// (422: say a version rolled back since the host's last poll) is counted, not fatal.
    pub async fn report(&self, interval: u64, end: i64) -> Result<Reported, String> {
        let results: Vec<Result<Option<bool>, String>> =
            futures_util::stream::iter(0..self.settings.hosts)
                .map(|i| self.report_one(i, interval, end))
                .buffer_unordered(self.settings.concurrency.max(1))
                .collect()
                .await;
        let mut r = Reported::default();
        for one in results {
            match one? {
                Some(true) => r.stored += 1,
                Some(false) => r.refused += 1,
                None => {}
            }
        }
        Ok(r)
    }

    /// `Some(true)` stored, `Some(false)` refused, `None` nothing to report.
    async fn report_one(&self, i: u32, interval: u64, end: i64) -> Result<Option<bool>, String> {
        tokio::time::sleep(jitter(
            self.settings.seed ^ 1,
            i,
            interval,
            self.settings.jitter,
        ))
        .await;
        let host = Scenario::host(i);
        let running = self.hosts[i as usize]
            .lock()
            .await
            .installed
            .get(&self.scenario.plugin)
            .cloned();
        let Some((version, _)) = running else {
            return Ok(None);
        };
        let Some(b) = self.behaviour(&version) else {
            return Ok(None);
        };
        let Some(s) = self.scenario.sample(self.settings.seed, i, interval, b) else {
            return Ok(None);
        };
        let secs = self.scenario.plan.interval_secs;
        let batch = ReportBatch {
            host: host.clone(),
            product_version: self.settings.product_version.clone(),
            policy_pack: "marketplace-guardrails".into(),
            samples: vec![ReportSample {
                plugin: self.scenario.plugin.clone(),
                version,
                interval_start: end - secs as i64,
                interval_secs: secs,
                calls: s.calls,
                errors: s.errors,
                crashes: s.crashes,
                latency: s.latency,
            }],
        };
        let res = self
            .client
            .post(self.url("/api/v1/fleet/reports"))
            .bearer_auth(&self.settings.token)
            .json(&batch)
            .send()
            .await
            .map_err(|e| format!("host {host}: cannot report: {e}"))?;
        if res.status() == reqwest::StatusCode::UNPROCESSABLE_ENTITY {
            return Ok(Some(false));
        }
        if !res.status().is_success() {
            let status = res.status();
            let body = res.text().await.unwrap_or_default();
            return Err(format!(
                "host {host}: the report was refused ({status}): {body}"
            ));
        }
        Ok(Some(true))
    }
}
