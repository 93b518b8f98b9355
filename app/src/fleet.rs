//! The wire contract of the fleet: fleet tokens (hosts' credentials), the channel a host polls,
//! and the fleet overview the portal shows (hosts by product version and region, stale hosts).

use serde::{Deserialize, Serialize};

/// A fleet token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FleetToken {
    pub id: String,
    pub name: String,
    /// The first characters of the secret, to recognise it.
    pub prefix: String,
    /// The one host it speaks for; `None` for a group token (each host names itself).
    pub host: Option<String>,
    pub group: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
}

/// A new fleet token: for one host (`host`) or for a group of hosts (`group`), not both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewFleetToken {
    pub name: String,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    /// Days until it expires (1–3650; default: never).
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// A fleet token just made: the secret is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreatedFleetToken {
    pub token: FleetToken,
    pub secret: String,
}

/// One host of the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FleetHost {
    pub id: String,
    pub group: Option<String>,
    pub product_version: Option<String>,
    pub region: Option<String>,
    pub policy_pack: Option<String>,
    pub last_poll: String,
    pub last_report: Option<String>,
    /// Not heard from within the stale period.
    pub stale: bool,
}

/// How many hosts share a value (a product version, a region).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FleetCount {
    pub value: String,
    pub hosts: u64,
}

/// The fleet at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FleetOverview {
    pub hosts: u64,
    pub stale: u64,
    /// A host is stale when it has not polled for this many seconds.
    pub stale_after_secs: u64,
    pub by_product_version: Vec<FleetCount>,
    pub by_region: Vec<FleetCount>,
    /// The most recently seen hosts (at most 200), stale ones first.
    pub recent: Vec<FleetHost>,
}
