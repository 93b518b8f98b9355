//! The channel: what each host runs now (its ETag changes only when the answer does), and the
//! bundles and attestations it names.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use app::error::AppError;
use chrono::{DateTime, Utc};
use delivery::fleet::ChannelEntry;
use delivery::rollout::{self, Phase};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::memory::KnownHost;
use super::{Fleet, HostCaller, MAX_HOSTS_PER_TOKEN, TOUCH_EVERY, good_name};
use crate::db::entities::{
    fleet_host, fleet_token, release, release_document, rollout as rollout_row, submission_blob,
};
use crate::services::db_error;

/// What the channel says to one host.
#[derive(Debug, Clone)]
pub struct Channel {
    pub host: String,
    pub answer: Arc<Answer>,
}

/// What the channel says, and its ETag: the same for every host in the same cohorts.
#[derive(Debug)]
pub struct Answer {
    pub entries: Vec<ChannelEntry>,
    pub etag: String,
}

/// The most answers one lineup keeps (one per combination of cohorts seen).
const MAX_ANSWERS: usize = 1024;

/// What the channel is made of: per plugin, its GA version and the rollout in flight.
#[derive(Debug, Default)]
pub(super) struct Lineup {
    stable: BTreeMap<String, release::Model>,
    /// Release, weight.
    rolling: BTreeMap<String, (release::Model, u8)>,
    attestations: HashMap<String, Vec<String>>,
    /// Answers made so far, by the host's cohorts (bit i: canary of the i-th rollout): a host
    /// is told exactly what another host in the same cohorts is told.
    answers: std::sync::Mutex<HashMap<u64, Arc<Answer>>>,
}
/// The GA release of a plugin now: the newest succeeded, not yanked, except `except`.
pub async fn stable_of<C: ConnectionTrait>(
    conn: &C,
    plugin: &str,
    except: Option<&str>,
) -> Result<Option<release::Model>, AppError> {
    let mut q = release::Entity::find()
        .filter(release::Column::PluginId.eq(plugin))
        .filter(release::Column::State.eq("succeeded"));
    if let Some(id) = except {
        q = q.filter(release::Column::Id.ne(id));
    }
    q.order_by_desc(release::Column::FinishedAt)
        .one(conn)
        .await
        .map_err(db_error)
}

impl Fleet {
    /// The lineup, read again only when a release changed: every change to a release bumps
    /// its `seq` in the same transaction (a rollout's step and weight included), so the count
    /// of releases and the sum of their `seq`s change with anything the channel says. That
    /// stamp is read at most every [`LINEUP_RECHECK`](super::memory::LINEUP_RECHECK), and at
    /// once after this instance commits a change; a poll in between reads nothing.
    pub(super) async fn lineup(&self) -> Result<Arc<Lineup>, AppError> {
        // Read before the stamp: a commit after this read makes the next poll look again.
        let commits = self.ledger.commits();
        if let Some(lineup) = self.memory.lineup(commits) {
            return Ok(lineup);
        }
        let stamp: Option<(i64, Option<i64>)> = release::Entity::find()
            .select_only()
            .column_as(release::Column::Id.count(), "n")
            .column_as(
                sea_orm::sea_query::ExprTrait::sum(sea_orm::sea_query::Expr::col(
                    release::Column::Seq,
                )),
                "s",
            )
            .into_tuple()
            .one(&self.conn)
            .await
            .map_err(db_error)?;
        let stamp = stamp.map_or((0, 0), |(n, s)| (n, s.unwrap_or(0)));
        if let Some(lineup) = self.memory.lineup_at(stamp, commits) {
            return Ok(lineup);
        }
        let lineup = Arc::new(self.read_lineup().await?);
        self.memory.remember_lineup(stamp, commits, lineup.clone());
        Ok(lineup)
    }

    async fn read_lineup(&self) -> Result<Lineup, AppError> {
        let mut lineup = Lineup::default();
        let stable = release::Entity::find()
            .filter(release::Column::State.eq("succeeded"))
            .order_by_asc(release::Column::FinishedAt)
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        for r in stable {
            // Ascending: the newest wins.
            lineup.stable.insert(r.plugin_id.clone(), r);
        }
        let rolling = rollout_row::Entity::find()
            .filter(rollout_row::Column::Phase.ne(Phase::RolledBack.as_str()))
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        if !rolling.is_empty() {
            let ids: Vec<String> = rolling.iter().map(|r| r.release_id.clone()).collect();
            let weights: HashMap<String, u8> = rolling
                .iter()
                .map(|r| (r.release_id.clone(), r.weight.clamp(0, 100) as u8))
                .collect();
            let releases = release::Entity::find()
                .filter(release::Column::Id.is_in(ids))
                .filter(release::Column::State.eq("running"))
                .all(&self.conn)
                .await
                .map_err(db_error)?;
            for r in releases {
                let w = weights.get(&r.id).copied().unwrap_or(0);
                lineup.rolling.insert(r.plugin_id.clone(), (r, w));
            }
        }
        let ids: Vec<String> = lineup
            .stable
            .values()
            .map(|r| r.id.clone())
            .chain(lineup.rolling.values().map(|(r, _)| r.id.clone()))
            .collect();
        if !ids.is_empty() {
            let docs: Vec<(String, String)> = release_document::Entity::find()
                .select_only()
                .column(release_document::Column::ReleaseId)
                .column(release_document::Column::Name)
                .filter(release_document::Column::ReleaseId.is_in(ids))
                .order_by_asc(release_document::Column::Id)
                .into_tuple()
                .all(&self.conn)
                .await
                .map_err(db_error)?;
            for (release, name) in docs {
                lineup.attestations.entry(release).or_default().push(name);
            }
        }
        Ok(lineup)
    }

    /// What the channel says to `host`, made once per combination of cohorts.
    pub(super) fn answer(lineup: &Lineup, host: &str) -> Arc<Answer> {
        let cohorts = (lineup.rolling.len() <= 64).then(|| {
            lineup
                .rolling
                .values()
                .enumerate()
                .filter(|(_, (r, weight))| rollout::in_canary(host, &r.id, *weight))
                .fold(0u64, |bits, (i, _)| bits | (1 << i))
        });
        let answers = || {
            lineup
                .answers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(bits) = cohorts
            && let Some(a) = answers().get(&bits)
        {
            return a.clone();
        }
        let entries = Self::entries(lineup, host);
        let etag = delivery::fleet::etag(&entries);
        let answer = Arc::new(Answer { entries, etag });
        if let Some(bits) = cohorts {
            let mut known = answers();
            if known.len() < MAX_ANSWERS {
                known.insert(bits, answer.clone());
            }
        }
        answer
    }

    fn entries(lineup: &Lineup, host: &str) -> Vec<ChannelEntry> {
        let plugins: BTreeSet<&String> =
            lineup.stable.keys().chain(lineup.rolling.keys()).collect();
        let entry = |r: &release::Model, cohort: &str| ChannelEntry {
            plugin: r.plugin_id.clone(),
            version: r.version.clone(),
            bundle_sha256: r.bundle_sha256.clone(),
            attestations: lineup.attestations.get(&r.id).cloned().unwrap_or_default(),
            cohort: cohort.into(),
        };
        let mut out = Vec::new();
        for p in plugins {
            if let Some((r, weight)) = lineup.rolling.get(p)
                && rollout::in_canary(host, &r.id, *weight)
            {
                out.push(entry(r, "canary"));
            } else if let Some(r) = lineup.stable.get(p) {
                out.push(entry(r, "stable"));
            }
        }
        out
    }

    /// What `host` runs now, and the ETag of that answer. The poll is recorded (at most every
    /// 30 s per host), with the product version and region the host gave.
    pub async fn channel(
        &self,
        caller: &HostCaller,
        named: Option<&str>,
        product_version: Option<&str>,
        region: Option<&str>,
    ) -> Result<Channel, AppError> {
        let host = caller.host(named)?;
        for (field, v, max) in [
            ("Stellar-Product-Version", product_version, 128),
            ("Stellar-Region", region, 64),
        ] {
            if let Some(v) = v
                && !good_name(v, max)
            {
                return Err(AppError::invalid(
                    field,
                    format!("`{field}` must be 1 to {max} printable ASCII characters"),
                ));
            }
        }
        self.touch(caller, &host, product_version, region).await?;
        let lineup = self.lineup().await?;
        let answer = Self::answer(&lineup, &host);
        Ok(Channel { host, answer })
    }

    async fn touch(
        &self,
        caller: &HostCaller,
        host: &str,
        product_version: Option<&str>,
        region: Option<&str>,
    ) -> Result<(), AppError> {
        let now = self.clock.now();
        let fresh = |h: &KnownHost| {
            now - h.last_poll < TOUCH_EVERY
                && h.token_id == caller.token_id
                && (product_version.is_none() || h.product_version.as_deref() == product_version)
                && (region.is_none() || h.region.as_deref() == region)
        };
        if self.memory.host(host).is_some_and(|h| fresh(&h)) {
            return Ok(());
        }
        let existing = fleet_host::Entity::find_by_id(host.to_owned())
            .one(&self.conn)
            .await
            .map_err(db_error)?;
        let known = |h: &fleet_host::Model| KnownHost {
            token_id: h.token_id,
            group: h.host_group.clone(),
            product_version: h.product_version.clone(),
            region: h.region.clone(),
            last_poll: h.last_poll,
        };
        match existing {
            Some(h) if fresh(&known(&h)) => {
                self.memory.remember_host(host.to_owned(), known(&h));
                Ok(())
            }
            Some(h) => {
                if h.token_id != caller.token_id && self.token_valid(h.token_id, now).await? {
                    return Err(AppError::forbidden(format!(
                        "host `{host}` polls with another fleet token: a host keeps its token until that one is revoked or expires"
                    )));
                }
                let mut active = h.into_active_model();
                active.last_poll = Set(now);
                active.token_id = Set(caller.token_id);
                active.host_group = Set(caller.group.clone());
                if let Some(v) = product_version {
                    active.product_version = Set(Some(v.to_owned()));
                }
                if let Some(r) = region {
                    active.region = Set(Some(r.to_owned()));
                }
                let h = active.update(&self.conn).await.map_err(db_error)?;
                self.memory.remember_host(host.to_owned(), known(&h));
                Ok(())
            }
            None => {
                let hosts = fleet_host::Entity::find()
                    .filter(fleet_host::Column::TokenId.eq(caller.token_id))
                    .count(&self.conn)
                    .await
                    .map_err(db_error)?;
                if hosts >= MAX_HOSTS_PER_TOKEN {
                    return Err(AppError::forbidden(format!(
                        "this fleet token already speaks for {MAX_HOSTS_PER_TOKEN} hosts: make another token for more"
                    )));
                }
                let row = fleet_host::ActiveModel {
                    id: Set(host.to_owned()),
                    token_id: Set(caller.token_id),
                    host_group: Set(caller.group.clone()),
                    product_version: Set(product_version.map(str::to_owned)),
                    region: Set(region.map(str::to_owned)),
                    policy_pack: Set(None),
                    first_seen: Set(now),
                    last_poll: Set(now),
                    last_report: Set(None),
                };
                // Two first polls at once: one insert wins, the other changes nothing (and is
                // not remembered: its next poll reads whose host it is).
                fleet_host::Entity::insert(row)
                    .on_conflict(
                        OnConflict::column(fleet_host::Column::Id)
                            .update_column(fleet_host::Column::LastPoll)
                            .to_owned(),
                    )
                    .exec_without_returning(&self.conn)
                    .await
                    .map_err(db_error)?;
                Ok(())
            }
        }
    }

    /// Whether a fleet token is neither revoked nor expired.
    async fn token_valid(&self, id: i32, now: DateTime<Utc>) -> Result<bool, AppError> {
        Ok(fleet_token::Entity::find_by_id(id)
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .is_some_and(|t| t.revoked_at.is_none() && t.expires_at.is_none_or(|e| e > now)))
    }

    /// The release the channel names by this bundle digest (to any fleet token: any host may
    /// be told to run it); 404 for anything the channel does not name.
    async fn named_release(&self, digest: &str) -> Result<release::Model, AppError> {
        let not_found = || {
            AppError::not_found(format!(
                "the channel names no bundle `{digest}`: poll the channel for what to run"
            ))
        };
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let lineup = self.lineup().await?;
        lineup
            .stable
            .values()
            .chain(lineup.rolling.values().map(|(r, _)| r))
            .find(|r| r.bundle_sha256 == digest.to_ascii_lowercase())
            .cloned()
            .ok_or_else(not_found)
    }

    /// A bundle the channel names, to install after verifying its digest and attestations.
    pub async fn bundle(&self, _caller: &HostCaller, digest: &str) -> Result<Vec<u8>, AppError> {
        let r = self.named_release(digest).await?;
        let blob = submission_blob::Entity::find_by_id(r.submission_id.clone())
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .ok_or_else(|| {
                AppError::internal(format!("the bundle of release {} is missing", r.id))
            })?;
        Ok(blob.data)
    }

    /// The attestations (DSSE envelopes, by name) of the release a bundle digest names.
    pub async fn attestations(
        &self,
        _caller: &HostCaller,
        digest: &str,
    ) -> Result<Vec<(String, serde_json::Value)>, AppError> {
        let r = self.named_release(digest).await?;
        let docs = release_document::Entity::find()
            .filter(release_document::Column::ReleaseId.eq(r.id.clone()))
            .order_by_asc(release_document::Column::Id)
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        docs.into_iter()
            .map(|d| {
                serde_json::from_str(&d.envelope)
                    .map(|envelope| (d.name.clone(), envelope))
                    .map_err(|_| {
                        AppError::internal(format!(
                            "the stored document `{}` of release {} is damaged",
                            d.name, r.id
                        ))
                    })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(id: &str, plugin: &str, version: &str) -> release::Model {
        let t = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        release::Model {
            id: id.into(),
            tenant_id: 1,
            submission_id: format!("sub-{id}"),
            plugin_id: plugin.into(),
            version: version.into(),
            bundle_sha256: format!("{id:0>64}"),
            spec_version: 1,
            pipeline: "default".into(),
            state: "running".into(),
            stage: 0,
            stage_state: "waiting".into(),
            step: None,
            step_started: None,
            waiting: None,
            signature_request: None,
            signature_made: false,
            layout_request: None,
            window_override: false,
            reason: None,
            seq: 0,
            created_by: "test".into(),
            created_at: t,
            updated_at: t,
            finished_at: None,
            package_ready_at: None,
            package_opened_at: None,
            decided_at: None,
            yanked_at: None,
        }
    }

    /// Release id, plugin, version.
    type Stable = (&'static str, &'static str, &'static str);
    /// Release id, plugin, version, weight.
    type Rolling = (&'static str, &'static str, &'static str, u8);

    /// The shared answers are exactly what each host would be told on its own, for lineups of
    /// no, one and three rollouts at different weights.
    #[test]
    fn every_host_gets_its_own_answer_from_the_shared_ones() {
        let lineups: Vec<(Vec<Stable>, Vec<Rolling>)> = vec![
            (vec![("a1", "alpha", "1.0.0")], vec![]),
            (
                vec![("a1", "alpha", "1.0.0"), ("b1", "beta", "2.0.0")],
                vec![("a2", "alpha", "1.1.0", 25)],
            ),
            (
                vec![("a1", "alpha", "1.0.0"), ("b1", "beta", "2.0.0")],
                vec![
                    ("a2", "alpha", "1.1.0", 5),
                    ("b2", "beta", "2.1.0", 50),
                    ("g1", "gamma", "0.1.0", 90),
                ],
            ),
        ];
        for (stable, rolling) in lineups {
            let mut lineup = Lineup::default();
            for (id, plugin, version) in stable {
                lineup
                    .stable
                    .insert(plugin.into(), release(id, plugin, version));
                lineup
                    .attestations
                    .insert(id.into(), vec![format!("{id}.dsse.json")]);
            }
            for (id, plugin, version, weight) in rolling {
                lineup
                    .rolling
                    .insert(plugin.into(), (release(id, plugin, version), weight));
            }
            for h in 0..2_000 {
                let host = format!("host-{h}");
                let own = Fleet::entries(&lineup, &host);
                let shared = Fleet::answer(&lineup, &host);
                assert_eq!(shared.entries, own, "{host}");
                assert_eq!(shared.etag, delivery::fleet::etag(&own), "{host}");
            }
            let kept = lineup.answers.lock().map(|a| a.len()).unwrap_or(0);
            assert!(kept <= 1 << lineup.rolling.len(), "{kept} answers kept");
        }
    }
}
