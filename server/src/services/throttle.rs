//! Sign-in throttling: failed attempts counted per username and per client address in the
//! database (so that every instance sees them), with a lock that doubles while attempts go on.

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait};

use crate::db::entities::login_throttle;

/// Failures older than this are forgotten.
const WINDOW: TimeDelta = TimeDelta::minutes(15);
/// The longest lock.
const MAX_LOCK: TimeDelta = TimeDelta::hours(24);

pub use crate::config::ThrottleLimits as Limits;

/// The key for a username.
pub fn user_key(username: &str) -> String {
    match crate::domain::Username::parse(username) {
        Ok(u) => format!("user:{u}"),
        // Names that cannot exist share bounded, printable keys.
        Err(_) => format!("user:#{}", &crate::secrets::sha256_hex(username)[..16]),
    }
}

/// The key for a client address.
pub fn addr_key(addr: &str) -> String {
    format!("addr:{addr}")
}

/// Seconds until `key` may try again, or `None` if it is not locked.
pub async fn locked_for(
    conn: &DatabaseConnection,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Option<u64>, sea_orm::DbErr> {
    let row = login_throttle::Entity::find_by_id(key.to_owned())
        .one(conn)
        .await?;
    Ok(row
        .and_then(|r| r.locked_until)
        .filter(|until| *until > now)
        .map(|until| (until - now).num_seconds().max(1) as u64))
}

/// Counts one failure for `key`, locking it once `limits.max_failures` is reached.
pub async fn record_failure(
    conn: &DatabaseConnection,
    key: &str,
    limits: Limits,
    now: DateTime<Utc>,
) -> Result<(), sea_orm::DbErr> {
    let existing = login_throttle::Entity::find_by_id(key.to_owned())
        .one(conn)
        .await?;
    let failures = match &existing {
        Some(r) if now - r.window_start < WINDOW => r.failures.saturating_add(1),
        _ => 1,
    };
    let window_start = match &existing {
        Some(r) if now - r.window_start < WINDOW => r.window_start,
        _ => now,
    };
    let locked_until = (failures as u32 >= limits.max_failures).then(|| {
        let excess = (failures as u32 - limits.max_failures).min(20);
        let base = TimeDelta::from_std(limits.lockout).unwrap_or(TimeDelta::minutes(1));
        let lock = base
            .checked_mul(1 << excess)
            .unwrap_or(MAX_LOCK)
            .min(MAX_LOCK);
        now + lock
    });
    // An upsert, so that two instances failing the same key at once both count.
    let row = login_throttle::ActiveModel {
        key: Set(key.to_owned()),
        failures: Set(failures),
        window_start: Set(window_start),
        locked_until: Set(locked_until),
    };
    login_throttle::Entity::insert(row)
        .on_conflict(
            OnConflict::column(login_throttle::Column::Key)
                .update_columns([
                    login_throttle::Column::Failures,
                    login_throttle::Column::WindowStart,
                    login_throttle::Column::LockedUntil,
                ])
                .to_owned(),
        )
        .exec(conn)
        .await?;
    Ok(())
}

/// Forgets the failures of `key` after a successful sign-in.
pub async fn clear(conn: &DatabaseConnection, key: &str) -> Result<(), sea_orm::DbErr> {
    login_throttle::Entity::delete_by_id(key.to_owned())
        .exec(conn)
        .await?;
    Ok(())
}
