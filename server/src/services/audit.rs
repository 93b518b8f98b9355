//! The ledger as auditors see it: the portal's ledger view and the ledger API, for secops and
//! administrators only (checked here as well as in the access table).

use app::api::backend::{LedgerBackend, Principal};
use app::error::AppError;
use app::routes::AUDITORS;
use app::types::{
    LedgerCheckpoint, LedgerConsistency, LedgerFilter, LedgerPage, LedgerProof, LedgerStatus,
    LedgerVerification,
};

use super::keys::Keyring;
use super::ledger::{Ledger, entry_view};

/// Ledger reads and operations, authorized.
#[derive(Clone, Debug)]
pub struct Audit {
    ledger: Ledger,
    keys: Keyring,
}

fn require_auditor(who: &Principal) -> Result<(), AppError> {
    if AUDITORS.contains(&who.role()) {
        Ok(())
    } else {
        Err(AppError::forbidden(format!(
            "only secops and administrators may inspect the audit ledger; you are signed in as {}",
            who.role()
        )))
    }
}

impl Audit {
    pub fn new(ledger: Ledger, keys: Keyring) -> Self {
        Audit { ledger, keys }
    }

    pub async fn entry(
        &self,
        who: &Principal,
        seq: u64,
    ) -> Result<app::types::LedgerEntry, AppError> {
        require_auditor(who)?;
        Ok(entry_view(self.ledger.entry(seq).await?))
    }

    pub async fn checkpoints(
        &self,
        who: &Principal,
        limit: u64,
    ) -> Result<Vec<LedgerCheckpoint>, AppError> {
        require_auditor(who)?;
        self.ledger.checkpoints(limit).await
    }

    pub async fn latest_checkpoint(&self, who: &Principal) -> Result<LedgerCheckpoint, AppError> {
        require_auditor(who)?;
        match self.ledger.latest_checkpoint().await? {
            Some(c) => Ok(c),
            None => self.ledger.checkpoint(&self.keys).await,
        }
    }

    pub async fn consistency(
        &self,
        who: &Principal,
        old: u64,
        new: u64,
    ) -> Result<LedgerConsistency, AppError> {
        require_auditor(who)?;
        self.ledger.consistency(old, new).await
    }

    /// Authorizes an export (the handler streams it).
    pub fn authorize_export(&self, who: &Principal) -> Result<&Ledger, AppError> {
        require_auditor(who)?;
        Ok(&self.ledger)
    }
}

#[async_trait::async_trait]
impl LedgerBackend for Audit {
    async fn ledger_status(&self, who: &Principal) -> Result<LedgerStatus, AppError> {
        require_auditor(who)?;
        self.ledger.status().await
    }

    async fn ledger_entries(
        &self,
        who: &Principal,
        filter: LedgerFilter,
    ) -> Result<LedgerPage, AppError> {
        require_auditor(who)?;
        self.ledger.entries(&filter).await
    }

    async fn ledger_proof(
        &self,
        who: &Principal,
        seq: u64,
        size: Option<u64>,
    ) -> Result<LedgerProof, AppError> {
        require_auditor(who)?;
        self.ledger.inclusion(seq, size, &self.keys).await
    }

    async fn verify_ledger(&self, who: &Principal) -> Result<LedgerVerification, AppError> {
        require_auditor(who)?;
        self.ledger.verify(&self.keys).await
    }

    async fn checkpoint_ledger(&self, who: &Principal) -> Result<LedgerCheckpoint, AppError> {
        require_auditor(who)?;
        self.ledger.checkpoint(&self.keys).await
    }
}
