//! Health reports: a batch is stored whole or refused whole, every bad sample named; pruned
//! after the retention period.

use std::collections::BTreeSet;

use app::error::AppError;
use delivery::fleet::{ReportBatch, SampleKey};
use delivery::rollout::{self, Histogram};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, TransactionTrait,
};

use super::{Fleet, HostCaller};
use crate::db::entities::{fleet_host, fleet_report};
use crate::services::db_error;

/// A report batch refused: every bad sample with its reason.
#[derive(Debug, Clone)]
pub struct Refused {
    pub status: u16,
    pub detail: String,
    /// `(sample index or None for the batch, reason label, sentence)`.
    pub samples: Vec<(Option<usize>, &'static str, String)>,
}

/// Why a report was not stored.
#[derive(Debug)]
pub enum ReportError {
    Refused(Refused),
    App(AppError),
}

impl From<AppError> for ReportError {
    fn from(e: AppError) -> Self {
        ReportError::App(e)
    }
}

/// The latency histogram as stored: its counts, comma-separated.
pub fn histogram_text(h: &Histogram) -> String {
    h.counts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// A stored histogram; a damaged one reads as empty (and is logged).
pub fn histogram_of(text: &str) -> Histogram {
    let counts: Result<Vec<u64>, _> = text.split(',').map(str::parse).collect();
    match counts {
        Ok(c) if c.len() == rollout::LATENCY_BUCKETS_MS.len() + 1 => Histogram { counts: c },
        _ => {
            tracing::warn!("a stored latency histogram is damaged; it counts as empty");
            Histogram::default()
        }
    }
}

impl Fleet {
    /// Stores a batch of health samples whole, or refuses it whole with every bad sample
    /// named. Returns how many samples were stored.
    pub async fn report(
        &self,
        caller: &HostCaller,
        batch: &ReportBatch,
    ) -> Result<usize, ReportError> {
        let host = caller.host(Some(&batch.host)).map_err(|e| {
            // A per-host token reporting for another host: refused like a bad sample.
            refused(403, e.detail(), vec![(None, "wrong_host", e.detail())])
        })?;
        let now = self.clock.now();
        let known = fleet_host::Entity::find_by_id(host.clone())
            .one(&self.conn)
            .await
            .map_err(db_error)?;
        if known.is_none() {
            return Err(refused(
                409,
                format!(
                    "host `{host}` has never polled the channel: poll it first, then report what it ran"
                ),
                vec![(
                    None,
                    "unknown_host",
                    "the host has not polled the channel".into(),
                )],
            ));
        }
        // What the channel tells this host to run now: a sample of anything else is refused.
        let lineup = self.lineup().await?;
        let assigned: BTreeSet<(String, String)> = Self::answer(&lineup, &host)
            .entries
            .iter()
            .map(|e| (e.plugin.clone(), e.version.clone()))
            .collect();
        // What this host stored around the batch's intervals: duplicates and overlaps.
        let lo = batch.samples.iter().map(|s| s.interval_start).min();
        let hi = batch
            .samples
            .iter()
            .map(|s| s.interval_start.saturating_add(s.interval_secs as i64))
            .max();
        let stored: Vec<(String, String, i64, i32)> = match (lo, hi) {
            (Some(lo), Some(hi)) => fleet_report::Entity::find()
                .select_only()
                .column(fleet_report::Column::PluginId)
                .column(fleet_report::Column::Version)
                .column(fleet_report::Column::IntervalStart)
                .column(fleet_report::Column::IntervalSecs)
                .filter(fleet_report::Column::Host.eq(host.clone()))
                .filter(
                    fleet_report::Column::IntervalStart
                        .gt(lo.saturating_sub(delivery::fleet::MAX_INTERVAL_SECS as i64)),
                )
                .filter(fleet_report::Column::IntervalStart.lt(hi))
                .into_tuple()
                .all(&self.conn)
                .await
                .map_err(db_error)?,
            _ => Vec::new(),
        };
        let seen: BTreeSet<SampleKey> = stored
            .iter()
            .map(|(plugin, version, interval_start, _)| SampleKey {
                host: host.clone(),
                plugin: plugin.clone(),
                version: version.clone(),
                interval_start: *interval_start,
            })
            .collect();
        let mut bad: Vec<(Option<usize>, &'static str, String)> = Vec::new();
        if let Err(list) = delivery::fleet::check(batch, now.timestamp(), |k| seen.contains(k)) {
            bad.extend(
                list.into_iter()
                    .map(|(i, r)| (i, r.reason(), r.to_string())),
            );
        }
        for (i, s) in batch.samples.iter().enumerate() {
            if !assigned.contains(&(s.plugin.clone(), s.version.clone())) {
                bad.push((
                    Some(i),
                    "not_told",
                    format!(
                        "the channel does not tell host `{host}` to run `{}` {}: report what the channel names, before polling it again",
                        s.plugin, s.version
                    ),
                ));
            }
        }
        // Intervals of one host, plugin and version never overlap (so no call counts twice).
        for (i, a) in batch.samples.iter().enumerate() {
            let a_end = a.interval_start.saturating_add(a.interval_secs as i64);
            let clash = batch.samples.iter().take(i).any(|b| {
                b.plugin == a.plugin
                    && b.version == a.version
                    && b.interval_start < a_end
                    && a.interval_start < b.interval_start.saturating_add(b.interval_secs as i64)
                    && b.interval_start != a.interval_start
            }) || stored.iter().any(|(plugin, version, start, secs)| {
                *plugin == a.plugin
                    && *version == a.version
                    && *start < a_end
                    && a.interval_start < start.saturating_add(i64::from(*secs))
                    && *start != a.interval_start
            });
            if clash {
                bad.push((
                    Some(i),
                    "overlapping",
                    "this interval overlaps another this host reported for the same version: report consecutive intervals".into(),
                ));
            }
        }
        if !bad.is_empty() {
            bad.sort_by_key(|b| b.0);
            for (_, reason, _) in &bad {
                metrics::counter!("stellar_fleet_reports_refused_total", "reason" => *reason)
                    .increment(1);
            }
            let first = bad
                .first()
                .map(|(i, _, d)| match i {
                    Some(i) => format!("sample {i}: {d}"),
                    None => d.clone(),
                })
                .unwrap_or_default();
            return Err(refused(
                422,
                format!(
                    "the batch was refused whole ({} problem(s); nothing was stored): {first}",
                    bad.len()
                ),
                bad,
            ));
        }
        let received = now.timestamp();
        let rows: Vec<fleet_report::ActiveModel> = batch
            .samples
            .iter()
            .map(|s| fleet_report::ActiveModel {
                host: Set(host.clone()),
                plugin_id: Set(s.plugin.clone()),
                version: Set(s.version.clone()),
                interval_start: Set(s.interval_start),
                interval_secs: Set(s.interval_secs as i32),
                calls: Set(s.calls as i64),
                errors: Set(s.errors as i64),
                crashes: Set(s.crashes as i64),
                latency: Set(histogram_text(&s.latency)),
                product_version: Set(batch.product_version.clone()),
                policy_pack: Set(batch.policy_pack.clone()),
                received_at: Set(received),
                ..Default::default()
            })
            .collect();
        let n = rows.len();
        let txn = self.conn.begin().await.map_err(db_error)?;
        if !rows.is_empty() {
            // A unique key on (host, plugin, version, interval): a duplicate racing in from
            // another instance fails the whole batch here.
            if let Err(e) = fleet_report::Entity::insert_many(rows)
                .exec_without_returning(&txn)
                .await
            {
                if matches!(
                    e.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                ) {
                    metrics::counter!("stellar_fleet_reports_refused_total", "reason" => "duplicate")
                        .increment(1);
                    return Err(refused(
                        422,
                        "the batch was refused whole: a sample was already reported (send each interval once)".into(),
                        vec![(None, "duplicate", "already reported".into())],
                    ));
                }
                return Err(db_error(e).into());
            }
        }
        fleet_host::Entity::update_many()
            .col_expr(fleet_host::Column::LastReport, Some(now).into())
            .col_expr(
                fleet_host::Column::ProductVersion,
                Some(batch.product_version.clone()).into(),
            )
            .col_expr(
                fleet_host::Column::PolicyPack,
                Some(batch.policy_pack.clone()).into(),
            )
            .filter(fleet_host::Column::Id.eq(host.clone()))
            .exec(&txn)
            .await
            .map_err(db_error)?;
        txn.commit().await.map_err(db_error)?;
        metrics::counter!("stellar_fleet_samples_total").increment(n as u64);
        Ok(n)
    }

    /// Deletes reports received before the retention period; returns how many.
    pub async fn prune(&self) -> Result<u64, AppError> {
        let before = (self.clock.now() - self.retention).timestamp();
        let res = fleet_report::Entity::delete_many()
            .filter(fleet_report::Column::ReceivedAt.lt(before))
            .exec(&self.conn)
            .await
            .map_err(db_error)?;
        Ok(res.rows_affected)
    }
}

fn refused(
    status: u16,
    detail: String,
    samples: Vec<(Option<usize>, &'static str, String)>,
) -> ReportError {
    ReportError::Refused(Refused {
        status,
        detail,
        samples,
    })
}
