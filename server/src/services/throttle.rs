//! Sign-in throttling, in two layers.
//!
//! 1. **Per client address, in memory, before any database work** ([`AddressLimiter`]): a token
//!    bucket per address (IPv6 grouped by /64), so that a burst from one place costs the
//!    database and the password hasher nothing once its bucket is empty.
//! 2. **Per username and per address, in the database** (so that every instance sees them):
//!    each attempt is counted *before* the password is checked, in one atomic upsert whose
//!    returned count decides. However many attempts arrive at once, at most `max_failures`
//!    of them reach the password check within the window; the rest are refused with the time
//!    to wait. Attempts while locked are refused without counting; each failure past the
//!    limit doubles the lock (up to a day).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, Statement};

pub use crate::config::ThrottleLimits as Limits;
use crate::db::entities::login_throttle;

/// Attempts older than this are forgotten.
const WINDOW: TimeDelta = TimeDelta::minutes(15);
/// The longest lock.
const MAX_LOCK: TimeDelta = TimeDelta::hours(24);

/// The key for a username.
pub fn user_key(username: &str) -> String {
    match crate::domain::Username::parse(username) {
        Ok(u) => format!("user:{u}"),
        // Names that cannot exist share bounded, printable keys.
        Err(_) => format!("user:#{}", &crate::secrets::sha256_hex(username)[..16]),
    }
}

/// The network a client address counts as: the address itself for IPv4, its /64 for IPv6
/// (one subscriber usually holds a whole /64).
pub fn client_net(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The key for a client address.
pub fn addr_key(addr: IpAddr) -> String {
    format!("addr:{}", client_net(addr))
}

/// What the database says about one more attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The attempt may check the password; it is the `n`th in the window.
    Allowed { n: u32 },
    /// Locked: try again after this many seconds.
    Locked { retry_after_secs: u64 },
}

/// Counts one attempt for `key` and decides from the count the database returns: the
/// increment and the read are one statement, so parallel attempts each see their own number.
pub async fn attempt(
    conn: &DatabaseConnection,
    key: &str,
    limits: Limits,
    now: DateTime<Utc>,
) -> Result<Attempt, DbErr> {
    let backend = conn.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Postgres => {
            "INSERT INTO login_throttle (key, failures, window_start, locked_until) \
             VALUES ($1, 1, $2, NULL) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN login_throttle.window_start < $3 THEN 1 \
                 WHEN login_throttle.locked_until > $2 THEN login_throttle.failures \
                 ELSE login_throttle.failures + 1 END, \
               window_start = CASE WHEN login_throttle.window_start < $3 \
                 THEN $2 ELSE login_throttle.window_start END \
             RETURNING failures, locked_until"
        }
        _ => {
            "INSERT INTO login_throttle (key, failures, window_start, locked_until) \
             VALUES (?1, 1, ?2, NULL) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN login_throttle.window_start < ?3 THEN 1 \
                 WHEN login_throttle.locked_until > ?2 THEN login_throttle.failures \
                 ELSE login_throttle.failures + 1 END, \
               window_start = CASE WHEN login_throttle.window_start < ?3 \
                 THEN ?2 ELSE login_throttle.window_start END \
             RETURNING failures, locked_until"
        }
    };
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [key.into(), now.into(), (now - WINDOW).into()],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("the throttle row was not returned".into()))?;
    let n: i32 = row.try_get("", "failures")?;
    let locked_until: Option<DateTime<Utc>> = row.try_get("", "locked_until")?;
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    // Locked: refused, and not counted (the lock doubles per failure, not per refusal).
    if let Some(until) = locked_until.filter(|u| *u > now) {
        return Ok(Attempt::Locked {
            retry_after_secs: (until - now).num_seconds().max(1) as u64,
        });
    }
    if n > limits.max_failures {
        // Past the limit: attempts that raced the lock. Lock now; the lock doubles with each
        // failure past the limit.
        let until = lock_until(n, limits, now);
        set_lock(conn, key, until).await?;
        return Ok(Attempt::Locked {
            retry_after_secs: (until - now).num_seconds().max(1) as u64,
        });
    }
    Ok(Attempt::Allowed { n })
}

fn lock_until(n: u32, limits: Limits, now: DateTime<Utc>) -> DateTime<Utc> {
    let excess = n.saturating_sub(limits.max_failures).min(20);
    let base = TimeDelta::from_std(limits.lockout).unwrap_or(TimeDelta::minutes(1));
    now + base
        .checked_mul(1 << excess)
        .unwrap_or(MAX_LOCK)
        .min(MAX_LOCK)
}

async fn set_lock(conn: &DatabaseConnection, key: &str, until: DateTime<Utc>) -> Result<(), DbErr> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    login_throttle::Entity::update_many()
        .col_expr(login_throttle::Column::LockedUntil, Some(until).into())
        .filter(login_throttle::Column::Key.eq(key))
        .exec(conn)
        .await?;
    Ok(())
}

/// A failed password check that used the last allowed attempt locks the key.
pub async fn failed(
    conn: &DatabaseConnection,
    key: &str,
    n: u32,
    limits: Limits,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    if n >= limits.max_failures {
        set_lock(conn, key, lock_until(n, limits, now)).await?;
    }
    Ok(())
}

/// Forgets the attempts of `key` after a successful sign-in.
pub async fn clear(conn: &DatabaseConnection, key: &str) -> Result<(), DbErr> {
    use sea_orm::EntityTrait;
    login_throttle::Entity::delete_by_id(key.to_owned())
        .exec(conn)
        .await?;
    Ok(())
}

/// Takes back one counted attempt of `key` (a successful sign-in from an address: only
/// failures should count against it).
pub async fn forgive_one(conn: &DatabaseConnection, key: &str) -> Result<(), DbErr> {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, ExprTrait, QueryFilter};
    login_throttle::Entity::update_many()
        .col_expr(
            login_throttle::Column::Failures,
            Expr::col(login_throttle::Column::Failures).sub(1),
        )
        .filter(login_throttle::Column::Key.eq(key))
        .filter(login_throttle::Column::Failures.gt(0))
        .exec(conn)
        .await?;
    Ok(())
}

/// The in-memory, per-address bucket checked before any database work.
#[derive(Clone)]
pub struct AddressLimiter {
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
}

impl std::fmt::Debug for AddressLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AddressLimiter({} addresses)", self.limiter.len())
    }
}

impl AddressLimiter {
    /// A bucket of `burst` sign-in attempts per address, refilled at `per_minute`.
    pub fn new(burst: u32, per_minute: u32) -> Self {
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let rate = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        AddressLimiter {
            limiter: Arc::new(RateLimiter::keyed(
                Quota::per_minute(rate).allow_burst(burst),
            )),
        }
    }

    /// Whether one more attempt from `addr` may go on.
    pub fn check(&self, addr: IpAddr) -> bool {
        self.limiter.check_key(&client_net(addr)).is_ok()
    }

    /// Forgets buckets that are full again (run periodically, so memory stays bounded by the
    /// addresses active within a few minutes).
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_by_their_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        let b: IpAddr = "2001:db8:1:2:bbbb::9"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(addr_key(a), addr_key(b));
        assert_ne!(addr_key(a), addr_key(c));
        let v4: IpAddr = "192.0.2.7".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(addr_key(v4), "addr:192.0.2.7");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(addr_key(mapped), "addr:192.0.2.7");
    }

    #[test]
    fn the_address_bucket_empties_and_other_addresses_are_unaffected() {
        let l = AddressLimiter::new(3, 1);
        let a: IpAddr = "192.0.2.1".parse().unwrap_or(IpAddr::from([0; 4]));
        let b: IpAddr = "192.0.2.2".parse().unwrap_or(IpAddr::from([0; 4]));
        assert!((0..3).all(|_| l.check(a)));
        assert!(!l.check(a));
        assert!(l.check(b));
    }
}
