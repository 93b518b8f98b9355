//! The audit ledger's store: append-only entries with a hash chain and an RFC 6962 Merkle tree,
//! the signed checkpoints and verification runs as stored, proofs from the stored nodes, and the
//! export. It holds no keys and authorizes nobody: every service appends through it, and
//! [`super::ledger`] signs, verifies and serves it to auditors.
//!
//! **Invariants:**
//! - Appends are serialised by updating the single `ledger_head` row first: a row lock on
//!   PostgreSQL, the write lock on SQLite (a write as the first statement waits on the busy
//!   timeout instead of failing). The head holds the size and the last entry hash.
//! - Each append stores the entry and the perfect-subtree nodes it completes, in the same
//!   transaction as the state change it records (see [`Appender`]).
//! - Proofs are built from stored nodes only: the nodes a proof needs depend on sizes and
//!   indices alone, so they are listed first (with a recording pass) and fetched in one query.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use app::error::AppError;
use app::types::{
    LedgerCheckpoint, LedgerConsistency, LedgerEntry, LedgerFilter, LedgerPage, LedgerProof,
    LedgerStatus, LedgerVerification,
};
use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use trust::ledger::{EXPORT_FORMAT, Entry, ExportHeader};
use trust::merkle::{self, Hash, Nodes, ProofError};

use super::db_error;
use crate::db::entities::{
    ledger_checkpoint, ledger_entry, ledger_head, ledger_node, ledger_verification,
};

/// One thing that happened, to be appended.
#[derive(Debug, Clone)]
pub struct Record {
    /// Who did it: a username, `system`, or `cli:<os user>`.
    pub actor: String,
    pub tenant: Option<String>,
    /// Dotted verb: `login`, `login.failed`, `token.create`, `key.rotate`, …
    pub action: String,
    pub subject: String,
    pub details: serde_json::Value,
}

/// The ledger's store.
#[derive(Clone, Debug)]
pub struct LedgerStore {
    conn: DatabaseConnection,
    origin: String,
    /// Appends this instance committed: whoever caches a view of the database on this
    /// instance compares it to know that something changed here (every state change of a
    /// release commits through an [`Appender`]).
    commits: Arc<AtomicU64>,
}

/// An open append: a transaction holding the ledger lock. Do the state change through
/// [`Appender::txn`], append its record(s), then [`Appender::commit`]: both land or neither.
pub struct Appender {
    txn: DatabaseTransaction,
    size: u64,
    last_hash: String,
    appended: u64,
    commits: Arc<AtomicU64>,
}

/// The wire view of an entry (the same fields).
pub fn entry_view(e: Entry) -> LedgerEntry {
    LedgerEntry {
        seq: e.seq,
        time: e.time,
        actor: e.actor,
        tenant: e.tenant,
        action: e.action,
        subject: e.subject,
        details: e.details,
        prev_hash: e.prev_hash,
        entry_hash: e.entry_hash,
    }
}

fn to_entry(m: ledger_entry::Model) -> Entry {
    Entry {
        seq: m.seq as u64,
        time: m.time,
        actor: m.actor,
        tenant: m.tenant,
        action: m.action,
        subject: m.subject,
        details: m.details,
        prev_hash: m.prev_hash,
        entry_hash: m.entry_hash,
    }
}

fn checkpoint_info(m: ledger_checkpoint::Model) -> LedgerCheckpoint {
    LedgerCheckpoint {
        size: m.size as u64,
        root_hash: m.root_hash,
        note: m.note,
        key_id: m.key_id,
        created_at: super::timestamp(m.created_at),
    }
}

fn verification_info(m: ledger_verification::Model) -> LedgerVerification {
    LedgerVerification {
        verified_at: super::timestamp(m.verified_at),
        ok: m.ok,
        entries: m.entries as u64,
        checkpoint_size: m.checkpoint_size.map(|s| s as u64),
        message: m.message,
    }
}

/// Entry times: RFC 3339 UTC with microseconds, so that text order is time order.
fn entry_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn damaged(e: ProofError) -> AppError {
    tracing::error!(error = %e, "ledger node store is incomplete");
    AppError::internal(format!(
        "the ledger's Merkle store is damaged ({e}): run `stellar ledger verify`"
    ))
}

/// Answers every node request with a dummy hash and records which were asked for.
struct Recorder(RefCell<Vec<(u32, u64)>>);

impl Nodes for Recorder {
    fn node(&self, level: u32, index: u64) -> Option<Hash> {
        self.0.borrow_mut().push((level, index));
        Some([0; 32])
    }
}

struct Fetched(HashMap<(u32, u64), Hash>);

impl Nodes for Fetched {
    fn node(&self, level: u32, index: u64) -> Option<Hash> {
        self.0.get(&(level, index)).copied()
    }
}

fn parse_hash(hex_text: &str) -> Option<Hash> {
    hex::decode(hex_text).ok().and_then(|b| b.try_into().ok())
}

/// Fetches the given nodes.
async fn fetch_nodes<C: ConnectionTrait>(
    conn: &C,
    wanted: &[(u32, u64)],
) -> Result<Fetched, AppError> {
    let mut out = HashMap::with_capacity(wanted.len());
    for chunk in wanted.chunks(200) {
        let mut cond = Condition::any();
        for &(level, idx) in chunk {
            cond = cond.add(
                Condition::all()
                    .add(ledger_node::Column::Level.eq(level as i32))
                    .add(ledger_node::Column::Idx.eq(idx as i64)),
            );
        }
        let rows = ledger_node::Entity::find()
            .filter(cond)
            .all(conn)
            .await
            .map_err(db_error)?;
        for r in rows {
            if let Some(h) = parse_hash(&r.hash) {
                out.insert((r.level as u32, r.idx as u64), h);
            }
        }
    }
    Ok(Fetched(out))
}

/// Runs a proof computation over stored nodes: once to learn which nodes it reads, then over
/// exactly those.
async fn with_nodes<C: ConnectionTrait, T>(
    conn: &C,
    f: impl Fn(&dyn Nodes) -> Result<T, ProofError>,
) -> Result<Result<T, ProofError>, AppError> {
    let recorder = Recorder(RefCell::new(Vec::new()));
    if let Err(e) = f(&recorder) {
        return Ok(Err(e));
    }
    let wanted = recorder.0.into_inner();
    let fetched = fetch_nodes(conn, &wanted).await?;
    Ok(f(&fetched))
}

fn hexes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

impl Appender {
    /// The transaction: make the state change through it.
    pub fn txn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// Appends one record (visible once committed).
    pub async fn append(&mut self, r: Record) -> Result<Entry, AppError> {
        // Within the column sizes on every database (what is stored is what is hashed).
        let cut = |s: String, n: usize| -> String {
            if s.chars().count() > n {
                s.chars().take(n).collect()
            } else {
                s
            }
        };
        let mut entry = Entry {
            seq: self.size,
            time: entry_time(Utc::now()),
            actor: cut(r.actor, 200),
            tenant: r.tenant.map(|t| cut(t, 63)),
            action: cut(r.action, 100),
            subject: cut(r.subject, 500),
            details: trust::canonical::to_string(&r.details),
            prev_hash: self.last_hash.clone(),
            entry_hash: String::new(),
        };
        entry.entry_hash = entry.compute_hash();
        ledger_entry::Entity::insert(ledger_entry::ActiveModel {
            seq: Set(entry.seq as i64),
            time: Set(entry.time.clone()),
            actor: Set(entry.actor.clone()),
            tenant: Set(entry.tenant.clone()),
            action: Set(entry.action.clone()),
            subject: Set(entry.subject.clone()),
            details: Set(entry.details.clone()),
            prev_hash: Set(entry.prev_hash.clone()),
            entry_hash: Set(entry.entry_hash.clone()),
        })
        .exec_without_returning(&self.txn)
        .await
        .map_err(db_error)?;

        // The left siblings the new leaf may complete.
        let mut wanted = Vec::new();
        let mut idx = entry.seq;
        let mut level = 0u32;
        while idx % 2 == 1 {
            wanted.push((level, idx - 1));
            idx /= 2;
            level += 1;
        }
        let siblings = fetch_nodes(&self.txn, &wanted).await?;
        let nodes = merkle::completed_nodes(entry.seq, entry.leaf(), |l, i| siblings.node(l, i));
        ledger_node::Entity::insert_many(nodes.into_iter().map(|(level, idx, hash)| {
            ledger_node::ActiveModel {
                level: Set(level as i32),
                idx: Set(idx as i64),
                hash: Set(hex::encode(hash)),
            }
        }))
        .exec_without_returning(&self.txn)
        .await
        .map_err(db_error)?;

        self.size += 1;
        self.appended += 1;
        self.last_hash = entry.entry_hash.clone();
        Ok(entry)
    }

    /// Commits the state change and its entries.
    pub async fn commit(self) -> Result<(), AppError> {
        ledger_head::Entity::update_many()
            .col_expr(ledger_head::Column::Size, Expr::value(self.size as i64))
            .col_expr(ledger_head::Column::LastHash, Expr::value(self.last_hash))
            .filter(ledger_head::Column::Id.eq(1))
            .exec(&self.txn)
            .await
            .map_err(db_error)?;
        self.txn.commit().await.map_err(db_error)?;
        self.commits.fetch_add(1, Ordering::Release);
        metrics::counter!("stellar_ledger_appends_total").increment(self.appended);
        metrics::gauge!("stellar_ledger_entries").set(self.size as f64);
        Ok(())
    }
}

impl LedgerStore {
    pub fn new(conn: DatabaseConnection, origin: impl Into<String>) -> Self {
        LedgerStore {
            conn,
            origin: origin.into(),
            commits: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many appends this instance has committed (it only grows).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Acquire)
    }

    /// The checkpoint origin (the log's name).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Opens a transaction holding the ledger lock.
    pub async fn begin(&self) -> Result<Appender, AppError> {
        let txn = self.conn.begin().await.map_err(db_error)?;
        // The lock: a write as the first statement (see the module invariants).
        ledger_head::Entity::update_many()
            .col_expr(
                ledger_head::Column::Size,
                Expr::col(ledger_head::Column::Size),
            )
            .filter(ledger_head::Column::Id.eq(1))
            .exec(&txn)
            .await
            .map_err(db_error)?;
        let head = ledger_head::Entity::find_by_id(1)
            .one(&txn)
            .await
            .map_err(db_error)?
            .ok_or_else(|| {
                AppError::internal("the ledger head row is missing: the database was not migrated")
            })?;
        Ok(Appender {
            txn,
            size: head.size as u64,
            last_hash: head.last_hash,
            appended: 0,
            commits: self.commits.clone(),
        })
    }

    /// Appends one record in its own transaction.
    pub async fn record(&self, r: Record) -> Result<Entry, AppError> {
        let mut a = self.begin().await?;
        let e = a.append(r).await?;
        a.commit().await?;
        Ok(e)
    }

    /// The number of entries.
    pub async fn size(&self) -> Result<u64, AppError> {
        Ok(ledger_head::Entity::find_by_id(1)
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .map_or(0, |h| h.size as u64))
    }

    /// The root of the first `size` entries, from the stored nodes.
    pub async fn root(&self, size: u64) -> Result<Hash, AppError> {
        with_nodes(&self.conn, |n| merkle::root(n, size))
            .await?
            .map_err(damaged)
    }

    /// Stores a signed checkpoint. Another instance may have stored the checkpoint of this
    /// size first: theirs is kept, and `false` says so.
    pub async fn store_checkpoint(
        &self,
        size: u64,
        root: Hash,
        note: String,
        key_id: String,
        at: DateTime<Utc>,
    ) -> Result<bool, AppError> {
        let row = ledger_checkpoint::ActiveModel {
            size: Set(size as i64),
            root_hash: Set(hex::encode(root)),
            note: Set(note),
            key_id: Set(key_id),
            created_at: Set(at),
        };
        match ledger_checkpoint::Entity::insert(row)
            .exec_without_returning(&self.conn)
            .await
        {
            Ok(_) => {
                metrics::gauge!("stellar_ledger_checkpoint_size").set(size as f64);
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(db_error(e)),
        }
    }

    pub async fn latest_checkpoint(&self) -> Result<Option<LedgerCheckpoint>, AppError> {
        Ok(ledger_checkpoint::Entity::find()
            .order_by_desc(ledger_checkpoint::Column::Size)
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .map(checkpoint_info))
    }

    pub async fn checkpoint_of(&self, size: u64) -> Result<Option<LedgerCheckpoint>, AppError> {
        Ok(ledger_checkpoint::Entity::find_by_id(size as i64)
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .map(checkpoint_info))
    }

    /// Checkpoints, newest first.
    pub async fn checkpoints(&self, limit: u64) -> Result<Vec<LedgerCheckpoint>, AppError> {
        Ok(ledger_checkpoint::Entity::find()
            .order_by_desc(ledger_checkpoint::Column::Size)
            .limit(limit)
            .all(&self.conn)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(checkpoint_info)
            .collect())
    }

    pub async fn entry(&self, seq: u64) -> Result<Entry, AppError> {
        ledger_entry::Entity::find_by_id(seq as i64)
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .map(to_entry)
            .ok_or_else(|| AppError::not_found(format!("there is no ledger entry {seq}")))
    }

    /// A page of entries matching the filters, newest first.
    pub async fn entries(&self, f: &LedgerFilter) -> Result<LedgerPage, AppError> {
        let per_page = f.per_page.unwrap_or(50);
        if !(1..=200).contains(&per_page) {
            return Err(AppError::invalid("per_page", "must be between 1 and 200"));
        }
        let page = f.page.unwrap_or(1);
        if !(1..=1_000_000).contains(&page) {
            return Err(AppError::invalid(
                "page",
                "pages are numbered from 1 to 1,000,000",
            ));
        }
        let mut q = ledger_entry::Entity::find();
        if let Some(a) = f.actor.as_deref().filter(|s| !s.is_empty()) {
            q = q.filter(ledger_entry::Column::Actor.eq(a));
        }
        if let Some(a) = f.action.as_deref().filter(|s| !s.is_empty()) {
            q = if a.ends_with('.') {
                q.filter(ledger_entry::Column::Action.starts_with(a))
            } else {
                q.filter(ledger_entry::Column::Action.eq(a))
            };
        }
        if let Some(t) = f.tenant.as_deref().filter(|s| !s.is_empty()) {
            q = q.filter(ledger_entry::Column::Tenant.eq(t));
        }
        if let Some(s) = f.since.as_deref().filter(|s| !s.is_empty()) {
            q = q.filter(ledger_entry::Column::Time.gte(parse_time("since", s)?));
        }
        if let Some(s) = f.until.as_deref().filter(|s| !s.is_empty()) {
            q = q.filter(ledger_entry::Column::Time.lt(parse_time("until", s)?));
        }
        let total = q.clone().count(&self.conn).await.map_err(db_error)?;
        let rows = q
            .order_by_desc(ledger_entry::Column::Seq)
            .offset((page - 1).saturating_mul(per_page))
            .limit(per_page)
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        Ok(LedgerPage {
            entries: rows.into_iter().map(|r| entry_view(to_entry(r))).collect(),
            page,
            per_page,
            total,
            size: self.size().await?,
        })
    }

    /// The inclusion proof of entry `seq` in the checkpoint of `size` (default: the newest
    /// checkpoint). Reading never signs: an entry no checkpoint covers yet is a conflict that
    /// says how to get one.
    pub async fn inclusion(&self, seq: u64, size: Option<u64>) -> Result<LedgerProof, AppError> {
        let entry = self.entry(seq).await?;
        let cp = match size {
            Some(s) => self.checkpoint_of(s).await?.ok_or_else(|| {
                AppError::not_found(format!(
                    "there is no checkpoint of size {s}: see GET /api/v1/ledger/checkpoints"
                ))
            })?,
            None => match self.latest_checkpoint().await? {
                Some(c) if c.size > seq => c,
                _ => {
                    return Err(AppError::conflict(format!(
                        "entry {seq} is not covered by a signed checkpoint yet: sign one (POST /api/v1/ledger/checkpoints, or \"Sign a checkpoint\" on the ledger page) or wait for the next automatic one"
                    )));
                }
            },
        };
        if seq >= cp.size {
            return Err(AppError::invalid(
                "size",
                format!(
                    "entry {seq} is not covered by the checkpoint of size {}",
                    cp.size
                ),
            ));
        }
        let proof = with_nodes(&self.conn, |n| merkle::inclusion_proof(n, seq, cp.size))
            .await?
            .map_err(damaged)?;
        Ok(LedgerProof {
            entry: entry_view(entry),
            tree_size: cp.size,
            proof: hexes(&proof),
            checkpoint: cp.note,
        })
    }

    /// The consistency proof between two checkpoints.
    pub async fn consistency(&self, old: u64, new: u64) -> Result<LedgerConsistency, AppError> {
        if old == 0 || old > new {
            return Err(AppError::invalid(
                "old",
                "the old size must be at least 1 and at most the new size",
            ));
        }
        let missing = |s: u64| {
            AppError::not_found(format!(
                "there is no checkpoint of size {s}: see GET /api/v1/ledger/checkpoints"
            ))
        };
        let old_cp = self.checkpoint_of(old).await?.ok_or_else(|| missing(old))?;
        let new_cp = self.checkpoint_of(new).await?.ok_or_else(|| missing(new))?;
        let proof = with_nodes(&self.conn, |n| merkle::consistency_proof(n, old, new))
            .await?
            .map_err(damaged)?;
        Ok(LedgerConsistency {
            old_size: old,
            new_size: new,
            proof: hexes(&proof),
            old_checkpoint: old_cp.note,
            new_checkpoint: new_cp.note,
        })
    }

    /// Entries `from .. from + limit`, in order.
    pub async fn range(&self, from: u64, limit: u64) -> Result<Vec<Entry>, AppError> {
        Ok(ledger_entry::Entity::find()
            .filter(ledger_entry::Column::Seq.gte(from as i64))
            .order_by_asc(ledger_entry::Column::Seq)
            .limit(limit)
            .all(&self.conn)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(to_entry)
            .collect())
    }

    /// Every entry, in stored order (seq ascending; gaps and all, as a verifier must see them).
    pub async fn all_entries(&self) -> Result<Vec<Entry>, AppError> {
        let mut out = Vec::new();
        let mut from = 0i64;
        loop {
            let rows = ledger_entry::Entity::find()
                .filter(ledger_entry::Column::Seq.gte(from))
                .order_by_asc(ledger_entry::Column::Seq)
                .limit(10_000)
                .all(&self.conn)
                .await
                .map_err(db_error)?;
            let Some(last) = rows.last() else { break };
            from = last.seq + 1;
            out.extend(rows.into_iter().map(to_entry));
        }
        Ok(out)
    }

    /// All checkpoint notes, oldest first.
    pub async fn checkpoint_notes(&self) -> Result<Vec<String>, AppError> {
        self.checkpoint_notes_upto(i64::MAX as u64).await
    }

    /// The notes of the checkpoints of at most `size` entries, oldest first.
    pub async fn checkpoint_notes_upto(&self, size: u64) -> Result<Vec<String>, AppError> {
        Ok(ledger_checkpoint::Entity::find()
            .filter(ledger_checkpoint::Column::Size.lte(size as i64))
            .order_by_asc(ledger_checkpoint::Column::Size)
            .all(&self.conn)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|c| c.note)
            .collect())
    }

    /// The export header (first line of the JSON Lines export) for the current state.
    pub async fn export_header(&self) -> Result<ExportHeader, AppError> {
        let size = self.size().await?;
        let checkpoints = ledger_checkpoint::Entity::find()
            .filter(ledger_checkpoint::Column::Size.lte(size as i64))
            .order_by_asc(ledger_checkpoint::Column::Size)
            .all(&self.conn)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|c| c.note)
            .collect();
        Ok(ExportHeader {
            format: EXPORT_FORMAT.into(),
            origin: self.origin.clone(),
            size,
            checkpoints,
        })
    }

    /// Entries `0 .. size`, in stored order (gaps and all, as a verifier must see them).
    pub async fn entries_below(&self, size: u64) -> Result<Vec<Entry>, AppError> {
        let mut out = Vec::new();
        let mut from = 0i64;
        loop {
            let rows = ledger_entry::Entity::find()
                .filter(ledger_entry::Column::Seq.gte(from))
                .filter(ledger_entry::Column::Seq.lt(size as i64))
                .order_by_asc(ledger_entry::Column::Seq)
                .limit(10_000)
                .all(&self.conn)
                .await
                .map_err(db_error)?;
            let Some(last) = rows.last() else { break };
            from = last.seq + 1;
            out.extend(rows.into_iter().map(to_entry));
        }
        Ok(out)
    }

    /// Records the outcome of a verification run.
    pub async fn record_verification(
        &self,
        ok: bool,
        entries: u64,
        checkpoint_size: Option<u64>,
        message: String,
    ) -> Result<LedgerVerification, AppError> {
        metrics::gauge!("stellar_ledger_verified").set(if ok { 1.0 } else { 0.0 });
        let row = ledger_verification::ActiveModel {
            verified_at: Set(Utc::now()),
            entries: Set(entries as i64),
            checkpoint_size: Set(checkpoint_size.map(|s| s as i64)),
            ok: Set(ok),
            message: Set(message),
            ..Default::default()
        };
        let saved = ledger_verification::Entity::insert(row)
            .exec_with_returning(&self.conn)
            .await
            .map_err(db_error)?;
        Ok(verification_info(saved))
    }

    pub async fn status(&self) -> Result<LedgerStatus, AppError> {
        Ok(LedgerStatus {
            size: self.size().await?,
            latest_checkpoint: self.latest_checkpoint().await?,
            last_verification: ledger_verification::Entity::find()
                .order_by_desc(ledger_verification::Column::Id)
                .one(&self.conn)
                .await
                .map_err(db_error)?
                .map(verification_info),
        })
    }
}

/// Parses a filter time into the stored text form. A bare date (`2026-11-28`, as date inputs
/// send) means midnight UTC at its start for `since`, and the whole day for `until`.
fn parse_time(field: &str, s: &str) -> Result<String, AppError> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let d = if field == "until" {
            d.succ_opt().unwrap_or(d)
        } else {
            d
        };
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(entry_time(t.and_utc()));
        }
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| entry_time(t.with_timezone(&Utc)))
        .map_err(|_| {
            AppError::invalid(
                field,
                format!(
                    "`{s}` is not a date (2026-11-28) or an RFC 3339 time (2026-11-28T12:00:00Z)"
                ),
            )
        })
}
