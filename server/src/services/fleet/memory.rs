//! What one instance remembers so that a poll with nothing new reads no database: thousands of
//! hosts poll every few seconds, and almost every poll is a 304.
//!
//! **Invariants.**
//! - Memory only ever saves a read; it never decides what the database would not: a token is
//!   remembered only as the database last showed it, and checked against the database again
//!   after [`TOKEN_RECHECK`] (its expiry is checked on every request); the lineup after
//!   [`LINEUP_RECHECK`], and at once when this instance commits a change
//!   ([`LedgerStore::commits`](crate::services::ledger_store::LedgerStore::commits)).
//! - Every map is bounded ([`MAX_REMEMBERED`]): past it, it is emptied and refilled from the
//!   database, so no input grows memory without limit.
//! - A revocation on this instance forgets the token at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::HostCaller;
use super::channel::Lineup;

/// How long a token is taken from memory before the database is asked again (so a token
/// revoked on another instance is refused here within this time).
pub const TOKEN_RECHECK: Duration = Duration::from_secs(5);
/// How long the lineup is taken from memory before its stamp is read again (so a change made
/// on another instance reaches this instance's channel within this time).
pub const LINEUP_RECHECK: Duration = Duration::from_secs(1);
/// The most tokens or hosts one map remembers.
pub const MAX_REMEMBERED: usize = 200_000;

/// A valid token, as the database showed it.
#[derive(Debug, Clone)]
pub struct KnownToken {
    pub caller: HostCaller,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub checked: Instant,
}

/// A host's row, as this instance last wrote or read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownHost {
    pub token_id: i32,
    pub group: Option<String>,
    pub product_version: Option<String>,
    pub region: Option<String>,
    pub last_poll: DateTime<Utc>,
}

/// What a lineup was read from: the count of releases and the sum of their `seq`s.
pub type Stamp = (i64, i64);

#[derive(Debug)]
pub struct KnownLineup {
    pub stamp: Stamp,
    pub lineup: Arc<Lineup>,
    /// When the stamp was last read.
    pub checked: Instant,
    /// This instance's commit count when it was.
    pub commits: u64,
}

#[derive(Debug, Default)]
pub struct Memory {
    /// By the token's sha256.
    tokens: Mutex<HashMap<String, KnownToken>>,
    hosts: Mutex<HashMap<String, KnownHost>>,
    lineup: Mutex<Option<KnownLineup>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn bounded_insert<V>(map: &mut HashMap<String, V>, key: String, value: V) {
    if map.len() >= MAX_REMEMBERED && !map.contains_key(&key) {
        map.clear();
    }
    map.insert(key, value);
}

impl Memory {
    /// A token remembered and still due no recheck.
    pub fn token(&self, hash: &str) -> Option<KnownToken> {
        lock(&self.tokens)
            .get(hash)
            .filter(|t| t.checked.elapsed() < TOKEN_RECHECK)
            .cloned()
    }

    pub fn remember_token(&self, hash: String, token: KnownToken) {
        bounded_insert(&mut lock(&self.tokens), hash, token);
    }

    /// Forgets a token, and the hosts this instance saw with it.
    pub fn forget_token(&self, token_id: i32) {
        lock(&self.tokens).retain(|_, t| t.caller.token_id != token_id);
        lock(&self.hosts).retain(|_, h| h.token_id != token_id);
    }

    pub fn host(&self, id: &str) -> Option<KnownHost> {
        lock(&self.hosts).get(id).cloned()
    }

    pub fn remember_host(&self, id: String, host: KnownHost) {
        bounded_insert(&mut lock(&self.hosts), id, host);
    }

    /// The lineup, if no recheck is due: younger than [`LINEUP_RECHECK`] and nothing committed
    /// here since.
    pub fn lineup(&self, commits: u64) -> Option<Arc<Lineup>> {
        lock(&self.lineup)
            .as_ref()
            .filter(|l| l.commits == commits && l.checked.elapsed() < LINEUP_RECHECK)
            .map(|l| l.lineup.clone())
    }

    /// The lineup remembered for `stamp`, which was just read (it is good for another
    /// [`LINEUP_RECHECK`]).
    pub fn lineup_at(&self, stamp: Stamp, commits: u64) -> Option<Arc<Lineup>> {
        let mut known = lock(&self.lineup);
        let l = known.as_mut().filter(|l| l.stamp == stamp)?;
        l.checked = Instant::now();
        l.commits = commits;
        Some(l.lineup.clone())
    }

    pub fn remember_lineup(&self, stamp: Stamp, commits: u64, lineup: Arc<Lineup>) {
        *lock(&self.lineup) = Some(KnownLineup {
            stamp,
            lineup,
            checked: Instant::now(),
            commits,
        });
    }
}
