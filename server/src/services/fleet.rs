//! The fleet: the hosts of the marketplace that run plugins. Platform users make fleet tokens
//! (hashed at rest like API tokens, for one host or for a group of hosts); hosts poll the
//! channel for the version of each plugin to run, download what it names, and report their
//! health per plugin version and interval. The rollout analysis
//! ([`super::releases`]) reads those reports.
//!
//! **Invariants.**
//! - Fleet tokens are not API tokens: a user's token never works as a host, a fleet token
//!   never reaches a user's route (the authentication layer keeps the two apart).
//! - What the channel tells a host is a function of the releases and the host's id alone
//!   (its cohort is a stable hash of host and release, [`delivery::rollout::in_canary`]), so
//!   every instance answers alike and the ETag changes only when the answer does.
//! - A report batch is stored whole or refused whole ([`delivery::fleet::check`]); a sample for
//!   a version the fleet was never told to run is refused; duplicates are impossible (a unique
//!   key), even between instances.
//! - Reports are pruned after the retention period (default [`DEFAULT_RETENTION_DAYS`] days).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use app::api::backend::Principal;
use app::authz::{Action, authorize};
use app::error::AppError;
use app::fleet::{
    CreatedFleetToken, FleetCount, FleetHost, FleetOverview, FleetToken, NewFleetToken,
};
use chrono::{DateTime, TimeDelta, Utc};
use delivery::fleet::{ChannelEntry, ReportBatch, SampleKey};
use delivery::rollout::{self, Histogram, Phase};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};

use crate::clock::Clock;
use crate::db::entities::{
    fleet_host, fleet_report, fleet_token, release, release_document, rollout as rollout_row,
    submission_blob,
};
use crate::domain::token_name;
use crate::secrets::{random_secret, sha256_hex};
use crate::services::ledger_store::{LedgerStore, Record};
use crate::services::{db_error, timestamp};

/// Prefix of every fleet token secret (API tokens start `stl_`).
pub const FLEET_TOKEN_PREFIX: &str = "stf_";
/// Days reports are kept before they are pruned, unless configured otherwise.
pub const DEFAULT_RETENTION_DAYS: u32 = 14;
/// A host that has not polled for this long is stale.
pub const STALE_AFTER_SECS: i64 = 900;
/// How often a host's `last_poll` is written at most (polls with nothing new stay cheap).
const TOUCH_EVERY: TimeDelta = TimeDelta::seconds(30);
/// How often a token's `last_used_at` is written at most.
const TOKEN_TOUCH_EVERY: TimeDelta = TimeDelta::seconds(60);
/// Most hosts one fleet token may speak for (each first poll creates a host).
pub const MAX_HOSTS_PER_TOKEN: u64 = 100_000;
/// Longest host group name.
const MAX_GROUP: usize = 64;

/// A fleet token's holder, as the authentication layer resolved it.
#[derive(Debug, Clone)]
pub struct HostCaller {
    pub token_id: i32,
    /// The one host of a per-host token.
    pub host: Option<String>,
    pub group: Option<String>,
}

impl HostCaller {
    /// The host a request speaks for: a per-host token's own (a request naming another is
    /// refused), or the one a group token's host names in `Stellar-Host`.
    pub fn host(&self, named: Option<&str>) -> Result<String, AppError> {
        match (&self.host, named) {
            (Some(own), None) => Ok(own.clone()),
            (Some(own), Some(n)) if n == own => Ok(own.clone()),
            (Some(own), Some(n)) => Err(AppError::forbidden(format!(
                "this fleet token belongs to host `{own}`; it cannot speak for `{n}`"
            ))),
            (None, Some(n)) if good_name(n, delivery::fleet::MAX_NAME) => Ok(n.to_owned()),
            (None, Some(_)) => Err(AppError::invalid(
                "Stellar-Host",
                format!(
                    "the host id must be 1 to {} printable ASCII characters",
                    delivery::fleet::MAX_NAME
                ),
            )),
            (None, None) => Err(AppError::invalid(
                "Stellar-Host",
                "this is a group token: name the host in the `Stellar-Host` header",
            )),
        }
    }
}

fn good_name(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| (0x21..0x7f).contains(&b))
}

/// What the channel says to one host.
#[derive(Debug, Clone)]
pub struct Channel {
    pub host: String,
    pub entries: Vec<ChannelEntry>,
    pub etag: String,
}

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

fn token_view(t: fleet_token::Model) -> FleetToken {
    FleetToken {
        id: t.public_id,
        name: t.name,
        prefix: t.prefix,
        host: t.host,
        group: t.host_group,
        created_by: t.created_by,
        created_at: timestamp(t.created_at),
        expires_at: t.expires_at.map(timestamp),
        revoked_at: t.revoked_at.map(timestamp),
        last_used_at: t.last_used_at.map(timestamp),
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

/// What the channel is made of: per plugin, its GA version and the rollout in flight.
#[derive(Debug, Default)]
struct Lineup {
    stable: BTreeMap<String, release::Model>,
    /// Release, weight.
    rolling: BTreeMap<String, (release::Model, u8)>,
    attestations: HashMap<String, Vec<String>>,
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

/// What a lineup was read from: the count of releases and the sum of their `seq`s.
type Stamp = (i64, i64);
/// A lineup with the stamp it was read at.
type Cached = (Stamp, Arc<Lineup>);

#[derive(Clone, Debug)]
pub struct Fleet {
    conn: DatabaseConnection,
    ledger: LedgerStore,
    clock: Clock,
    retention: TimeDelta,
    /// The last lineup read, with the stamp of the releases it was read from.
    cached: Arc<Mutex<Option<Cached>>>,
}

impl Fleet {
    pub fn new(
        conn: DatabaseConnection,
        ledger: LedgerStore,
        clock: Clock,
        retention_days: u32,
    ) -> Self {
        Fleet {
            conn,
            ledger,
            clock,
            retention: TimeDelta::days(i64::from(retention_days.max(1))),
            cached: Arc::new(Mutex::new(None)),
        }
    }

    // ---- tokens ----

    /// Makes a fleet token for one host or a group of hosts (platform users and
    /// administrators). The secret is in the answer and nowhere else.
    pub async fn create_token(
        &self,
        who: &Principal,
        input: NewFleetToken,
    ) -> Result<CreatedFleetToken, AppError> {
        authorize(who, Action::ManageFleet)?;
        let name = token_name(&input.name)?;
        let host = input
            .host
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let group = input
            .group
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        match (host, group) {
            (Some(_), Some(_)) => {
                return Err(AppError::invalid(
                    "host",
                    "give either `host` (a token for one host) or `group` (for many), not both",
                ));
            }
            (None, None) => {
                return Err(AppError::invalid(
                    "host",
                    "give `host` (a token for one host) or `group` (a token hosts of a group share)",
                ));
            }
            _ => {}
        }
        if let Some(h) = host
            && !good_name(h, delivery::fleet::MAX_NAME)
        {
            return Err(AppError::invalid(
                "host",
                format!(
                    "a host id is 1 to {} printable ASCII characters",
                    delivery::fleet::MAX_NAME
                ),
            ));
        }
        if let Some(g) = group
            && !good_name(g, MAX_GROUP)
        {
            return Err(AppError::invalid(
                "group",
                format!("a group name is 1 to {MAX_GROUP} printable ASCII characters"),
            ));
        }
        let now = self.clock.now();
        let expires_at = match input.expires_in_days {
            Some(d) if d == 0 || d > 3650 => {
                return Err(AppError::invalid(
                    "expires_in_days",
                    "a fleet token lives 1 to 3650 days: leave it empty for no expiry",
                ));
            }
            Some(d) => Some(now + TimeDelta::days(i64::from(d))),
            None => None,
        };
        let secret = format!("{FLEET_TOKEN_PREFIX}{}", random_secret(32));
        let row = fleet_token::ActiveModel {
            public_id: Set(uuid::Uuid::new_v4().to_string()),
            name: Set(name),
            token_hash: Set(sha256_hex(&secret)),
            prefix: Set(secret.chars().take(12).collect()),
            host: Set(host.map(str::to_owned)),
            host_group: Set(group.map(str::to_owned)),
            created_by: Set(who.me.username.clone()),
            created_at: Set(now),
            expires_at: Set(expires_at),
            revoked_at: Set(None),
            last_used_at: Set(None),
            ..Default::default()
        };
        let mut a = self.ledger.begin().await?;
        let row = row.insert(a.txn()).await.map_err(db_error)?;
        a.append(Record {
            actor: who.me.username.clone(),
            tenant: None,
            action: "fleet.token.create".into(),
            subject: row.public_id.clone(),
            details: serde_json::json!({
                "name": row.name, "host": row.host, "group": row.host_group,
                "expires_at": row.expires_at.map(timestamp),
            }),
        })
        .await?;
        a.commit().await?;
        Ok(CreatedFleetToken {
            token: token_view(row),
            secret,
        })
    }

    /// Every fleet token, newest first.
    pub async fn list_tokens(&self, who: &Principal) -> Result<Vec<FleetToken>, AppError> {
        authorize(who, Action::ManageFleet)?;
        Ok(fleet_token::Entity::find()
            .order_by_desc(fleet_token::Column::Id)
            .all(&self.conn)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(token_view)
            .collect())
    }

    /// Revokes a fleet token: its hosts are refused from their next request on.
    pub async fn revoke_token(&self, who: &Principal, id: &str) -> Result<FleetToken, AppError> {
        authorize(who, Action::ManageFleet)?;
        let not_found = || AppError::not_found(format!("there is no fleet token `{id}`"));
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(not_found());
        }
        let mut a = self.ledger.begin().await?;
        let t = fleet_token::Entity::find()
            .filter(fleet_token::Column::PublicId.eq(id))
            .one(a.txn())
            .await
            .map_err(db_error)?
            .ok_or_else(not_found)?;
        if t.revoked_at.is_some() {
            return Ok(token_view(t));
        }
        let mut active = t.into_active_model();
        active.revoked_at = Set(Some(self.clock.now()));
        let t = active.update(a.txn()).await.map_err(db_error)?;
        a.append(Record {
            actor: who.me.username.clone(),
            tenant: None,
            action: "fleet.token.revoke".into(),
            subject: t.public_id.clone(),
            details: serde_json::json!({"name": t.name, "host": t.host, "group": t.host_group}),
        })
        .await?;
        a.commit().await?;
        Ok(token_view(t))
    }

    /// The holder of a fleet token, if it is valid now.
    pub async fn caller(&self, secret: &str) -> Result<Option<HostCaller>, AppError> {
        if !secret.starts_with(FLEET_TOKEN_PREFIX) || secret.len() > 128 {
            return Ok(None);
        }
        let now = self.clock.now();
        let Some(t) = fleet_token::Entity::find()
            .filter(fleet_token::Column::TokenHash.eq(sha256_hex(secret)))
            .one(&self.conn)
            .await
            .map_err(db_error)?
        else {
            return Ok(None);
        };
        if t.revoked_at.is_some() || t.expires_at.is_some_and(|e| e <= now) {
            return Ok(None);
        }
        let caller = HostCaller {
            token_id: t.id,
            host: t.host.clone(),
            group: t.host_group.clone(),
        };
        if t.last_used_at
            .is_none_or(|last| now - last > TOKEN_TOUCH_EVERY)
        {
            let mut active = t.into_active_model();
            active.last_used_at = Set(Some(now));
            active.update(&self.conn).await.map_err(db_error)?;
        }
        Ok(Some(caller))
    }

    // ---- the channel ----

    /// The lineup, read again only when a release changed: every change to a release bumps
    /// its `seq` in the same transaction (a rollout's step and weight included), so the count
    /// of releases and the sum of their `seq`s change with anything the channel says. One
    /// aggregate per poll instead of the releases, their rollouts and their documents; exact on
    /// every instance.
    async fn lineup(&self) -> Result<Arc<Lineup>, AppError> {
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
        if let Some((at, lineup)) = self
            .cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            && *at == stamp
        {
            return Ok(lineup.clone());
        }
        let lineup = Arc::new(self.read_lineup().await?);
        *self
            .cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((stamp, lineup.clone()));
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
        let entries = Self::entries(&lineup, &host);
        let etag = delivery::fleet::etag(&entries);
        Ok(Channel {
            host,
            entries,
            etag,
        })
    }

    async fn touch(
        &self,
        caller: &HostCaller,
        host: &str,
        product_version: Option<&str>,
        region: Option<&str>,
    ) -> Result<(), AppError> {
        let now = self.clock.now();
        let existing = fleet_host::Entity::find_by_id(host.to_owned())
            .one(&self.conn)
            .await
            .map_err(db_error)?;
        match existing {
            Some(h)
                if now - h.last_poll < TOUCH_EVERY
                    && h.token_id == caller.token_id
                    && (product_version.is_none()
                        || h.product_version.as_deref() == product_version)
                    && (region.is_none() || h.region.as_deref() == region) =>
            {
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
                active.update(&self.conn).await.map_err(db_error)?;
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
                // Two first polls at once: one insert wins, the other changes nothing.
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

    // ---- reports ----

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
        let assigned: BTreeSet<(String, String)> = Self::entries(&lineup, &host)
            .into_iter()
            .map(|e| (e.plugin, e.version))
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

    // ---- the portal's view ----

    /// Hosts by product version and region, and the stale ones.
    pub async fn overview(&self, who: &Principal) -> Result<FleetOverview, AppError> {
        authorize(who, Action::ReadFleet)?;
        let now = self.clock.now();
        let stale_before = now - TimeDelta::seconds(STALE_AFTER_SECS);
        let hosts = fleet_host::Entity::find()
            .order_by_desc(fleet_host::Column::LastPoll)
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        let mut by_version: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_region: BTreeMap<String, u64> = BTreeMap::new();
        let mut stale = 0u64;
        for h in &hosts {
            *by_version
                .entry(
                    h.product_version
                        .clone()
                        .unwrap_or_else(|| "unknown".into()),
                )
                .or_default() += 1;
            *by_region
                .entry(h.region.clone().unwrap_or_else(|| "unknown".into()))
                .or_default() += 1;
            if h.last_poll < stale_before {
                stale += 1;
            }
        }
        let counts = |m: BTreeMap<String, u64>| {
            let mut v: Vec<FleetCount> = m
                .into_iter()
                .map(|(value, hosts)| FleetCount { value, hosts })
                .collect();
            v.sort_by(|a, b| b.hosts.cmp(&a.hosts).then(a.value.cmp(&b.value)));
            v
        };
        let view = |h: &fleet_host::Model| FleetHost {
            id: h.id.clone(),
            group: h.host_group.clone(),
            product_version: h.product_version.clone(),
            region: h.region.clone(),
            policy_pack: h.policy_pack.clone(),
            last_poll: timestamp(h.last_poll),
            last_report: h.last_report.map(timestamp),
            stale: h.last_poll < stale_before,
        };
        // Up to 100 stale hosts (the most recently seen first), then the live ones.
        let recent: Vec<FleetHost> = hosts
            .iter()
            .filter(|h| h.last_poll < stale_before)
            .take(100)
            .chain(hosts.iter().filter(|h| h.last_poll >= stale_before))
            .take(200)
            .map(view)
            .collect();
        Ok(FleetOverview {
            hosts: hosts.len() as u64,
            stale,
            stale_after_secs: STALE_AFTER_SECS as u64,
            by_product_version: counts(by_version),
            by_region: counts(by_region),
            recent,
        })
    }

    /// Hosts that polled since `since` (the cohorts' assigned hosts).
    pub async fn live_hosts<C: ConnectionTrait>(
        conn: &C,
        since: DateTime<Utc>,
    ) -> Result<Vec<String>, AppError> {
        fleet_host::Entity::find()
            .select_only()
            .column(fleet_host::Column::Id)
            .filter(fleet_host::Column::LastPoll.gte(since))
            .into_tuple()
            .all(conn)
            .await
            .map_err(db_error)
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

#[async_trait::async_trait]
impl app::api::backend::FleetBackend for Fleet {
    async fn overview(&self, who: &Principal) -> Result<FleetOverview, AppError> {
        Fleet::overview(self, who).await
    }
}
