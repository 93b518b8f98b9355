//! The host protocol's values: what the channel tells a host to run (and the ETag that lets
//! thousands of polling hosts cost little), and the batches of health samples hosts report,
//! checked before anything is stored.
//!
//! **Invariants.** A batch is taken whole or refused whole, with every bad sample named: a
//! late, duplicate, future-dated, oversized or inconsistent sample is never merged silently, and
//! each refusal has a reason a metric can count ([`Refusal::reason`]). A sample's latency
//! histogram has the documented buckets ([`crate::rollout::LATENCY_BUCKETS_MS`]) and counts
//! exactly its calls, so cohorts merge exactly. The ETag depends only on what the channel says.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::rollout::{Histogram, LATENCY_BUCKETS_MS};

/// Most samples in one batch.
pub const MAX_SAMPLES: usize = 500;
/// A sample whose interval ended longer ago than this is late (its analysis has moved on).
pub const MAX_LATENESS_SECS: i64 = 3_600;
/// How far a host's clock may run ahead before its samples are future-dated.
pub const MAX_CLOCK_SKEW_SECS: i64 = 120;
/// Shortest and longest interval a sample may cover.
pub const MIN_INTERVAL_SECS: u64 = 10;
pub const MAX_INTERVAL_SECS: u64 = 3_600;
/// Most calls one sample may count (a host, one plugin version, one interval).
pub const MAX_CALLS: u64 = 1_000_000_000;
/// Longest host id, plugin id, version or product version.
pub const MAX_NAME: usize = 128;

/// What the channel tells a host to run for one plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelEntry {
    pub plugin: String,
    pub version: String,
    /// The bundle to download (`/api/v1/fleet/bundles/{digest}`) and verify before installing.
    pub bundle_sha256: String,
    /// The release's attestations the host verifies.
    pub attestations: Vec<String>,
    /// `canary` while the version is being rolled out to this host's cohort, else `stable`.
    pub cohort: String,
}

/// A strong ETag for what the channel says to one host: the same entries (in any order) give
/// the same tag.
pub fn etag(entries: &[ChannelEntry]) -> String {
    let mut sorted: Vec<&ChannelEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| (&a.plugin, &a.version).cmp(&(&b.plugin, &b.version)));
    let mut h = Sha256::new();
    for e in sorted {
        for part in [&e.plugin, &e.version, &e.bundle_sha256, &e.cohort] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        for a in &e.attestations {
            h.update(a.as_bytes());
            h.update([1]);
        }
        h.update([2]);
    }
    let d = h.finalize();
    let hex: String = d.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// One host's health for one plugin version over one interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSample {
    pub plugin: String,
    pub version: String,
    /// When the interval began (Unix seconds, UTC).
    pub interval_start: i64,
    pub interval_secs: u64,
    pub calls: u64,
    pub errors: u64,
    pub crashes: u64,
    pub latency: Histogram,
}

/// A batch of samples from one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportBatch {
    pub host: String,
    /// The host product's version.
    pub product_version: String,
    /// The policy pack version the host enforces.
    pub policy_pack: String,
    pub samples: Vec<ReportSample>,
}

/// What identifies a sample: one per host, plugin, version and interval.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SampleKey {
    pub host: String,
    pub plugin: String,
    pub version: String,
    pub interval_start: i64,
}

/// Why a batch (or one of its samples) is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// More samples than [`MAX_SAMPLES`].
    Oversized { samples: usize },
    /// A name is empty, too long or not printable ASCII.
    BadName { field: &'static str },
    /// The interval's length is outside the bounds.
    BadInterval { secs: u64 },
    /// The interval ended too long ago.
    Late { ended_secs_ago: i64 },
    /// The interval has not ended yet by the server's clock (beyond the allowed skew).
    Future { ends_in_secs: i64 },
    /// Already reported (earlier, or twice in this batch).
    Duplicate,
    /// The counts do not add up: errors and crashes above calls, or a histogram that does not
    /// count exactly the calls or has the wrong buckets.
    Inconsistent { what: String },
}

impl Refusal {
    /// The metric label of the reason (`stellar_fleet_reports_refused_total{reason}`).
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Oversized { .. } => "oversized",
            Refusal::BadName { .. } => "bad_name",
            Refusal::BadInterval { .. } => "bad_interval",
            Refusal::Late { .. } => "late",
            Refusal::Future { .. } => "future",
            Refusal::Duplicate => "duplicate",
            Refusal::Inconsistent { .. } => "inconsistent",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Oversized { samples } => write!(
                f,
                "the batch has {samples} samples; send at most {MAX_SAMPLES} per request"
            ),
            Refusal::BadName { field } => write!(
                f,
                "`{field}` must be 1 to {MAX_NAME} printable ASCII characters"
            ),
            Refusal::BadInterval { secs } => write!(
                f,
                "`interval_secs` is {secs}: it must be {MIN_INTERVAL_SECS} to {MAX_INTERVAL_SECS}"
            ),
            Refusal::Late { ended_secs_ago } => write!(
                f,
                "the interval ended {ended_secs_ago} s ago; samples older than {MAX_LATENESS_SECS} s are late: drop them"
            ),
            Refusal::Future { ends_in_secs } => write!(
                f,
                "the interval ends {ends_in_secs} s from now by the server's clock: send a sample once its interval is over (check the host's clock)"
            ),
            Refusal::Duplicate => write!(
                f,
                "this host already reported this plugin version for this interval: send each interval once"
            ),
            Refusal::Inconsistent { what } => write!(f, "the counts do not add up: {what}"),
        }
    }
}

fn good_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_NAME && s.bytes().all(|b| (0x21..0x7f).contains(&b))
}

/// Checks a batch at `now` (Unix seconds); `seen` says whether a sample was already stored.
/// Every bad sample is listed, by its index (the batch itself: `None`).
pub fn check(
    batch: &ReportBatch,
    now: i64,
    seen: impl Fn(&SampleKey) -> bool,
) -> Result<Vec<SampleKey>, Vec<(Option<usize>, Refusal)>> {
    let mut bad: Vec<(Option<usize>, Refusal)> = Vec::new();
    if batch.samples.len() > MAX_SAMPLES {
        return Err(vec![(
            None,
            Refusal::Oversized {
                samples: batch.samples.len(),
            },
        )]);
    }
    for (field, value) in [
        ("host", &batch.host),
        ("product_version", &batch.product_version),
        ("policy_pack", &batch.policy_pack),
    ] {
        if !good_name(value) {
            bad.push((None, Refusal::BadName { field }));
        }
    }
    let mut keys = Vec::new();
    let mut in_batch: BTreeSet<SampleKey> = BTreeSet::new();
    for (i, s) in batch.samples.iter().enumerate() {
        let at = Some(i);
        for (field, value) in [("plugin", &s.plugin), ("version", &s.version)] {
            if !good_name(value) {
                bad.push((at, Refusal::BadName { field }));
            }
        }
        if !(MIN_INTERVAL_SECS..=MAX_INTERVAL_SECS).contains(&s.interval_secs) {
            bad.push((
                at,
                Refusal::BadInterval {
                    secs: s.interval_secs,
                },
            ));
            continue;
        }
        let end = s.interval_start.saturating_add(s.interval_secs as i64);
        if end > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
            bad.push((
                at,
                Refusal::Future {
                    ends_in_secs: end.saturating_sub(now),
                },
            ));
        } else if now.saturating_sub(end) > MAX_LATENESS_SECS {
            bad.push((
                at,
                Refusal::Late {
                    ended_secs_ago: now.saturating_sub(end),
                },
            ));
        }
        let mut wrong = Vec::new();
        if s.calls > MAX_CALLS {
            wrong.push(format!("{} calls is more than {MAX_CALLS}", s.calls));
        }
        if s.errors.saturating_add(s.crashes) > s.calls {
            wrong.push(format!(
                "{} errors and {} crashes in {} calls",
                s.errors, s.crashes, s.calls
            ));
        }
        if !s.latency.is_well_formed() {
            wrong.push(format!(
                "the latency histogram has {} buckets, not {} (the documented bounds and one above)",
                s.latency.counts.len(),
                LATENCY_BUCKETS_MS.len() + 1
            ));
        } else if s.latency.total() != s.calls {
            wrong.push(format!(
                "the latency histogram counts {} calls, not {}",
                s.latency.total(),
                s.calls
            ));
        }
        if !wrong.is_empty() {
            bad.push((
                at,
                Refusal::Inconsistent {
                    what: wrong.join("; "),
                },
            ));
        }
        let key = SampleKey {
            host: batch.host.clone(),
            plugin: s.plugin.clone(),
            version: s.version.clone(),
            interval_start: s.interval_start,
        };
        if seen(&key) || !in_batch.insert(key.clone()) {
            bad.push((at, Refusal::Duplicate));
        }
        keys.push(key);
    }
    if bad.is_empty() { Ok(keys) } else { Err(bad) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn sample() -> ReportSample {
        let mut latency = Histogram::default();
        for ms in [3, 12, 40, 40] {
            latency.record(ms);
        }
        ReportSample {
            plugin: "acme-logger".into(),
            version: "1.5.0".into(),
            interval_start: NOW - 400,
            interval_secs: 300,
            calls: 4,
            errors: 1,
            crashes: 0,
            latency,
        }
    }

    fn batch(samples: Vec<ReportSample>) -> ReportBatch {
        ReportBatch {
            host: "host-00001".into(),
            product_version: "7.2.0".into(),
            policy_pack: "1.0.0".into(),
            samples,
        }
    }

    #[test]
    fn a_good_batch_is_taken_whole() {
        let keys = check(&batch(vec![sample()]), NOW, |_| false).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].interval_start, NOW - 400);
    }

    #[test]
    fn bad_samples_are_refused_with_their_reason() {
        // (change to one good sample, the reason)
        type Change = Box<dyn Fn(&mut ReportSample)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|s| s.interval_start = NOW - 10_000), "late"),
            (Box::new(|s| s.interval_start = NOW + 600), "future"),
            (Box::new(|s| s.errors = 5), "inconsistent"),
            (Box::new(|s| s.calls = 5), "inconsistent"),
            (
                Box::new(|s| s.latency.counts.pop().map(drop).unwrap_or(())),
                "inconsistent",
            ),
            (Box::new(|s| s.interval_secs = 0), "bad_interval"),
            (Box::new(|s| s.plugin = "has space".into()), "bad_name"),
            (Box::new(|s| s.version = String::new()), "bad_name"),
        ];
        for (change, reason) in cases {
            let mut s = sample();
            change(&mut s);
            let err = check(&batch(vec![sample(), s]), NOW, |_| false).unwrap_err();
            assert!(
                err.iter()
                    .any(|(at, r)| *at == Some(1) && r.reason() == reason),
                "{reason}: {err:?}"
            );
            assert!(
                err.iter().all(|(at, _)| *at == Some(1)),
                "only the bad sample: {err:?}"
            );
            assert!(!err[0].1.to_string().is_empty());
        }
        // Twice in a batch, or already stored.
        let err = check(&batch(vec![sample(), sample()]), NOW, |_| false).unwrap_err();
        assert_eq!(err, vec![(Some(1), Refusal::Duplicate)]);
        let err = check(&batch(vec![sample()]), NOW, |_| true).unwrap_err();
        assert_eq!(err, vec![(Some(0), Refusal::Duplicate)]);
        // Too many samples: the batch.
        let err = check(&batch(vec![sample(); MAX_SAMPLES + 1]), NOW, |_| false).unwrap_err();
        assert_eq!(err[0].1.reason(), "oversized");
        // A host clock a little ahead is fine.
        let mut s = sample();
        s.interval_start = NOW - 300 + MAX_CLOCK_SKEW_SECS;
        assert!(check(&batch(vec![s]), NOW, |_| false).is_ok());
    }

    #[test]
    fn the_etag_follows_what_the_channel_says_and_nothing_else() {
        let a = ChannelEntry {
            plugin: "a".into(),
            version: "1.0.0".into(),
            bundle_sha256: "aa".into(),
            attestations: vec!["x".into()],
            cohort: "stable".into(),
        };
        let mut b = a.clone();
        b.plugin = "b".into();
        assert_eq!(etag(&[a.clone(), b.clone()]), etag(&[b.clone(), a.clone()]));
        let mut canary = a.clone();
        canary.cohort = "canary".into();
        assert_ne!(etag(std::slice::from_ref(&a)), etag(&[canary]));
        assert_ne!(etag(std::slice::from_ref(&a)), etag(&[]));
        assert!(etag(&[a]).starts_with('"'));
    }
}
