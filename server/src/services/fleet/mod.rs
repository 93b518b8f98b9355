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
//! - A poll with nothing new reads no database ([`memory`]): this instance remembers tokens
//!   (checked again every [`memory::TOKEN_RECHECK`]), the hosts' last written poll, and the
//!   lineup (checked again every [`memory::LINEUP_RECHECK`], and at once after this instance
//!   commits any change). A change made here shows on the next poll; one made on another
//!   instance within those times.

mod channel;
mod memory;
mod reports;
mod tokens;

use std::collections::BTreeMap;
use std::sync::Arc;

use app::api::backend::Principal;
use app::authz::{Action, authorize};
use app::error::AppError;
use app::fleet::{FleetCount, FleetHost, FleetOverview};
use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::clock::Clock;
use crate::db::entities::fleet_host;
use crate::services::ledger_store::LedgerStore;
use crate::services::{db_error, timestamp};

pub use channel::{Channel, stable_of};
pub use reports::{Refused, ReportError, histogram_of, histogram_text};

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

#[derive(Clone, Debug)]
pub struct Fleet {
    conn: DatabaseConnection,
    ledger: LedgerStore,
    clock: Clock,
    retention: TimeDelta,
    /// What this instance remembers to answer polls without the database.
    memory: Arc<memory::Memory>,
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
            memory: Arc::new(memory::Memory::default()),
        }
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

#[async_trait::async_trait]
impl app::api::backend::FleetBackend for Fleet {
    async fn overview(&self, who: &Principal) -> Result<FleetOverview, AppError> {
        Fleet::overview(self, who).await
    }
}
