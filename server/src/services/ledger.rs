//! The audit ledger as a service: signed checkpoints, verification runs, and the ledger served
//! to auditors (the portal's ledger view and the ledger API), every read and operation
//! authorized.
//!
//! **Invariant:** reading never signs. A checkpoint is signed by a state change (`POST`, the
//! command line) or by the scheduled `ledger.checkpoint` job, never as a side effect of a `GET`.
//!
//! **Invariant:** verification trusts nothing the database says about trust. It checks the
//! stored entries against checkpoints under the trust root pinned in the key directory
//! ([`Keyring::pinned_root`]), requires the checkpoint origin to be this ledger's, and requires
//! the newest checkpoint verified before (pinned beside it, outside the database) to still
//! match: a history rewritten in the database, re-signed with a key someone registered there,
//! or cut back, fails.

use app::api::backend::{LedgerBackend, Principal};
use app::authz::{Action, authorize};
use app::error::AppError;
use app::types::{
    LedgerCheckpoint, LedgerConsistency, LedgerEntry, LedgerEntryView, LedgerFilter, LedgerPage,
    LedgerProof, LedgerStatus, LedgerVerification,
};
use chrono::{Timelike, Utc};
use trust::checkpoint::Checkpoint;
use trust::keys::Purpose;
use trust::ledger::{Expect, Tail};
use trust::merkle;

use super::keys::{Keyring, Signer};
use super::ledger_store::{LedgerStore, entry_view};

/// The ledger, its checkpoints and its verification.
#[derive(Clone, Debug)]
pub struct Ledger {
    store: LedgerStore,
    keys: Keyring,
}

/// A checkpoint and whether this call signed it (`false`: the ledger had not grown).
#[derive(Debug, Clone)]
pub struct Signed {
    pub checkpoint: LedgerCheckpoint,
    pub created: bool,
}

impl Ledger {
    pub fn new(store: LedgerStore, keys: Keyring) -> Self {
        Ledger { store, keys }
    }

    /// The store (for the export stream and the command line).
    pub fn store(&self) -> &LedgerStore {
        &self.store
    }

    // ----- the server's own work (scheduled jobs, start-up) -----------------------------------

    /// Signs a checkpoint of the current size with the online ledger-checkpoint key, unless
    /// the newest checkpoint already has that size. Refuses on an empty ledger.
    pub async fn sign_checkpoint(&self) -> Result<Signed, AppError> {
        let Signer::Online(key) = self
            .keys
            .signer(Purpose::LedgerCheckpoint, &self.store)
            .await?
        else {
            return Err(AppError::conflict(
                "the active ledger-checkpoint key is offline: checkpoints are signed by the server; rotate to an online key with `stellar key rotate --purpose ledger-checkpoint`",
            ));
        };
        let size = self.store.size().await?;
        if size == 0 {
            return Err(AppError::conflict(
                "the ledger is empty: there is nothing to checkpoint yet",
            ));
        }
        if let Some(latest) = self.store.latest_checkpoint().await?
            && latest.size == size
        {
            return Ok(Signed {
                checkpoint: latest,
                created: false,
            });
        }
        let root = self.store.root(size).await?;
        let now = Utc::now();
        let origin = self.store.origin().to_owned();
        let cp = Checkpoint {
            origin: origin.clone(),
            size,
            root,
            time: Some(now.with_nanosecond(0).unwrap_or(now)),
        };
        let note = cp.sign(&origin, &key);
        let created = self
            .store
            .store_checkpoint(size, root, note, key.id().0, now)
            .await?;
        let checkpoint =
            self.store.checkpoint_of(size).await?.ok_or_else(|| {
                AppError::internal("the checkpoint just written cannot be read back")
            })?;
        Ok(Signed {
            checkpoint,
            created,
        })
    }

    /// Signs a checkpoint if the ledger grew, then verifies every entry it covers against the
    /// pinned trust root and the pinned checkpoint, checks the stored Merkle nodes, records
    /// the outcome, and pins the newest checkpoint. Returns the recorded outcome.
    pub async fn verify_now(&self) -> Result<LedgerVerification, AppError> {
        if self.store.size().await? == 0 {
            return self
                .store
                .record_verification(true, 0, None, "the ledger is empty".into())
                .await;
        }
        let signed = self.sign_checkpoint().await?;
        let size = signed.checkpoint.size;
        let (root, root_note) = self.keys.pinned_root().await?;
        let pinned = self.keys.pinned_checkpoint()?;
        let entries = self.store.entries_below(size).await?;
        // Checkpoints of sizes beyond the one just signed may arrive meanwhile: the next run
        // covers them.
        let mut notes = self.store.checkpoint_notes_upto(size).await?;
        let mut pinned_size = None;
        if let Some(note) = pinned {
            pinned_size = Checkpoint::verify_with_root(&note, &root)
                .ok()
                .map(|cp| cp.size);
            if pinned_size.is_none_or(|p| p <= size) {
                notes.push(note);
            }
        }
        let origin = self.store.origin().to_owned();
        let n = entries.len() as u64;
        let (checked, full_root) = tokio::task::spawn_blocking(move || {
            let expect = Expect {
                origin: &origin,
                unsigned_tail: Tail::Refuse,
            };
            let checked = trust::ledger::verify(&entries, &notes, &root, &expect);
            let mut tree = merkle::MemoryTree::new();
            for e in &entries {
                tree.push(e.leaf());
            }
            (checked, tree.root())
        })
        .await
        .map_err(|e| AppError::internal(format!("verification task failed: {e}")))?;
        let outcome = match checked {
            Ok(_) if n != size => Err(format!(
                "the ledger head says {size} entries but {n} are stored below it: entries were removed outside the ledger"
            )),
            Ok(_) if pinned_size.is_some_and(|p| p > size) => Err(format!(
                "the ledger has {size} entries, fewer than the {} of the checkpoint verified before: entries were removed",
                pinned_size.unwrap_or_default()
            )),
            Ok(_) if self.store.root(size).await.ok() != Some(full_root) => Err(
                "the stored Merkle nodes do not match the entries: proofs served now would not verify"
                    .into(),
            ),
            Ok(v) => Ok(format!(
                "{n} entries chain correctly and match {} signed checkpoint(s) of `{}`, the newest of size {size}{}",
                v.checkpoints,
                self.store.origin(),
                if root_note.is_empty() {
                    String::new()
                } else {
                    format!("; {root_note}")
                }
            )),
            Err(e) => Err(e.to_string()),
        };
        let verification = match outcome {
            Ok(message) => {
                self.keys.pin_checkpoint(&signed.checkpoint.note)?;
                self.store
                    .record_verification(true, n, Some(size), message)
                    .await?
            }
            Err(message) => {
                tracing::error!(%message, "ledger verification failed");
                self.store
                    .record_verification(false, n, None, message)
                    .await?
            }
        };
        Ok(verification)
    }

    // ----- auditors ----------------------------------------------------------------------------

    pub async fn entry(&self, who: &Principal, seq: u64) -> Result<LedgerEntry, AppError> {
        authorize(who, Action::ReadLedger)?;
        Ok(entry_view(self.store.entry(seq).await?))
    }

    pub async fn checkpoints(
        &self,
        who: &Principal,
        limit: u64,
    ) -> Result<Vec<LedgerCheckpoint>, AppError> {
        authorize(who, Action::ReadLedger)?;
        if !(1..=1000).contains(&limit) {
            return Err(AppError::invalid("limit", "must be between 1 and 1000"));
        }
        self.store.checkpoints(limit).await
    }

    /// The newest signed checkpoint; none yet is "not found" (reading never signs one).
    pub async fn latest_checkpoint(&self, who: &Principal) -> Result<LedgerCheckpoint, AppError> {
        authorize(who, Action::ReadLedger)?;
        self.store.latest_checkpoint().await?.ok_or_else(|| {
            AppError::not_found(
                "no checkpoint has been signed yet: sign one with POST /api/v1/ledger/checkpoints",
            )
        })
    }

    pub async fn consistency(
        &self,
        who: &Principal,
        old: u64,
        new: u64,
    ) -> Result<LedgerConsistency, AppError> {
        authorize(who, Action::ReadLedger)?;
        self.store.consistency(old, new).await
    }

    /// Authorizes an export (the handler streams it from the store).
    pub fn export(&self, who: &Principal) -> Result<&LedgerStore, AppError> {
        authorize(who, Action::ReadLedger)?;
        Ok(&self.store)
    }

    /// Signs a checkpoint now.
    pub async fn checkpoint(&self, who: &Principal) -> Result<Signed, AppError> {
        authorize(who, Action::OperateLedger)?;
        self.sign_checkpoint().await
    }
}

#[async_trait::async_trait]
impl LedgerBackend for Ledger {
    async fn ledger_status(&self, who: &Principal) -> Result<LedgerStatus, AppError> {
        authorize(who, Action::ReadLedger)?;
        self.store.status().await
    }

    async fn ledger_entries(
        &self,
        who: &Principal,
        filter: LedgerFilter,
    ) -> Result<LedgerPage, AppError> {
        authorize(who, Action::ReadLedger)?;
        self.store.entries(&filter).await
    }

    async fn ledger_proof(
        &self,
        who: &Principal,
        seq: u64,
        size: Option<u64>,
    ) -> Result<LedgerProof, AppError> {
        authorize(who, Action::ReadLedger)?;
        self.store.inclusion(seq, size).await
    }

    async fn ledger_entry_view(
        &self,
        who: &Principal,
        seq: u64,
    ) -> Result<LedgerEntryView, AppError> {
        authorize(who, Action::ReadLedger)?;
        let entry = entry_view(self.store.entry(seq).await?);
        match self.store.inclusion(seq, None).await {
            Ok(p) => Ok(LedgerEntryView {
                entry,
                proof: Some(p),
                uncovered: None,
            }),
            Err(AppError::Conflict { message }) => Ok(LedgerEntryView {
                entry,
                proof: None,
                uncovered: Some(message),
            }),
            Err(e) => Err(e),
        }
    }

    async fn verify_ledger(&self, who: &Principal) -> Result<LedgerVerification, AppError> {
        authorize(who, Action::OperateLedger)?;
        self.verify_now().await
    }

    async fn checkpoint_ledger(&self, who: &Principal) -> Result<LedgerCheckpoint, AppError> {
        self.checkpoint(who).await.map(|s| s.checkpoint)
    }
}
