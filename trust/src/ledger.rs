//! Ledger entries: their canonical form, the hash chain that links them, and offline
//! verification of an export against a signed checkpoint.
//!
//! An entry's hash is sha256 of its canonical JSON (everything but the hash itself, including
//! the previous entry's hash); its Merkle leaf is the canonical JSON. Changing, deleting or
//! reordering entries breaks the chain at the first entry affected, and the tree no longer
//! matches any signed checkpoint.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::keys::TrustRoot;
use crate::merkle::{self, Hash, MemoryTree};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One ledger entry, as stored and exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the ledger, from 0; also the Merkle leaf index.
    pub seq: u64,
    /// When it happened (RFC 3339 UTC, microseconds), as hashed.
    pub time: String,
    /// Who did it (a username, or `system`).
    pub actor: String,
    /// The tenant concerned, if any.
    pub tenant: Option<String>,
    /// What happened (`login`, `token.create`, `key.rotate`, …).
    pub action: String,
    /// What it happened to.
    pub subject: String,
    /// Details, as canonical JSON text.
    pub details: String,
    pub prev_hash: String,
    pub entry_hash: String,
}

impl Entry {
    /// The canonical JSON of everything but `entry_hash`.
    pub fn canonical(&self) -> String {
        let details: serde_json::Value = serde_json::from_str(&self.details)
            .unwrap_or(serde_json::Value::String(self.details.clone()));
        crate::canonical::to_string(&serde_json::json!({
            "seq": self.seq,
            "time": self.time,
            "actor": self.actor,
            "tenant": self.tenant,
            "action": self.action,
            "subject": self.subject,
            "details": details,
            "prev_hash": self.prev_hash,
        }))
    }

    /// The hash this entry must carry.
    pub fn compute_hash(&self) -> String {
        hex::encode(Sha256::digest(self.canonical().as_bytes()))
    }

    /// Its Merkle leaf hash.
    pub fn leaf(&self) -> Hash {
        merkle::leaf_hash(self.canonical().as_bytes())
    }
}

/// Why a ledger did not verify; names the first bad entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error(
        "entry {expected} is missing: the entry found at that position has seq {found} (entries were deleted or reordered)"
    )]
    Sequence { expected: u64, found: u64 },
    #[error(
        "entry {seq} does not link to entry {prev}: one of them was changed, or entries were removed or reordered"
    )]
    Chain { seq: u64, prev: u64 },
    #[error(
        "entry {seq} was changed after it was written (its content no longer matches its hash)"
    )]
    Content { seq: u64 },
    #[error(
        "the ledger has {entries} entries but the checkpoint covers {size}: entries were removed"
    )]
    Short { entries: u64, size: u64 },
    #[error(
        "the first {size} entries do not match the signed checkpoint of that size: an entry from {after} to {} was changed and the hashes after it recomputed (the checkpoint of size {after} still matches)", size - 1
    )]
    Root { size: u64, after: u64 },
    #[error(
        "the checkpoint of size {size} names the ledger `{found}`, not `{expected}`: it was signed for another ledger"
    )]
    Origin {
        size: u64,
        found: String,
        expected: String,
    },
    #[error(
        "no signed checkpoint covers the {entries} entries: nothing proves they are the ones the server wrote (sign one with `stellar ledger checkpoint`, or accept this with --allow-unsigned-tail)"
    )]
    NoCheckpoint { entries: u64 },
    #[error(
        "entries {covered} to {} are not covered by any signed checkpoint (the newest has size {covered}): they could have been added or changed by anyone with the database (sign a checkpoint, or accept this with --allow-unsigned-tail)", entries - 1
    )]
    UnsignedTail { covered: u64, entries: u64 },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// What a verification demands beyond the signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect<'a> {
    /// The ledger's name: every checkpoint must carry it.
    pub origin: &'a str,
    /// Whether entries after the newest checkpoint (or all, without one) are accepted.
    pub unsigned_tail: Tail,
}

/// Entries no signed checkpoint covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// Fail: every entry must be covered by a signed checkpoint.
    Refuse,
    /// Accept them, and report how many there are (a warning for people to read).
    Allow,
}

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub entries: u64,
    /// The largest checkpoint the entries were checked against.
    pub checkpoint: Option<Checkpoint>,
    /// How many signed checkpoints were checked.
    pub checkpoints: usize,
    /// Entries after the newest checkpoint (only with [`Tail::Allow`]).
    pub unsigned: u64,
}

/// Checks the chain of `entries` (which must start at seq 0).
pub fn verify_chain(entries: &[Entry]) -> Result<(), LedgerError> {
    let mut prev = GENESIS.to_owned();
    for (i, e) in entries.iter().enumerate() {
        let i = i as u64;
        if e.seq != i {
            return Err(LedgerError::Sequence {
                expected: i,
                found: e.seq,
            });
        }
        if e.prev_hash != prev {
            return Err(LedgerError::Chain {
                seq: i,
                prev: i.saturating_sub(1),
            });
        }
        if e.compute_hash() != e.entry_hash {
            return Err(LedgerError::Content { seq: i });
        }
        prev = e.entry_hash.clone();
    }
    Ok(())
}

/// Verifies a ledger: the chain, every checkpoint's signature (by a ledger-checkpoint key the
/// trust root admits at the checkpoint's time) and origin, and that the entries have the root
/// each checkpoint signs. When entries were rewritten with recomputed hashes, the first
/// checkpoint that no longer matches bounds the first bad entry: it lies after the last
/// checkpoint that still matches.
///
/// **Fails closed:** entries that no signed checkpoint covers fail verification unless
/// `expect.unsigned_tail` is [`Tail::Allow`]; the hash chain alone proves nothing against
/// someone who can rewrite the whole table.
pub fn verify(
    entries: &[Entry],
    checkpoint_notes: &[String],
    root: &TrustRoot,
    expect: &Expect<'_>,
) -> Result<Verified, LedgerError> {
    verify_chain(entries)?;
    let mut checkpoints = Vec::with_capacity(checkpoint_notes.len());
    for note in checkpoint_notes {
        let cp = Checkpoint::verify_with_root(note, root)?;
        if cp.origin != expect.origin {
            return Err(LedgerError::Origin {
                size: cp.size,
                found: cp.origin,
                expected: expect.origin.to_owned(),
            });
        }
        checkpoints.push(cp);
    }
    checkpoints.sort_by_key(|c| c.size);
    let n = entries.len() as u64;
    let mut tree = MemoryTree::new();
    let mut good_up_to = 0u64;
    for cp in &checkpoints {
        if cp.size > n {
            return Err(LedgerError::Short {
                entries: n,
                size: cp.size,
            });
        }
        while tree.len() < cp.size {
            tree.push(entries[tree.len() as usize].leaf());
        }
        if tree.root() != cp.root {
            return Err(LedgerError::Root {
                size: cp.size,
                after: good_up_to,
            });
        }
        good_up_to = cp.size;
    }
    let unsigned = n - good_up_to;
    if unsigned > 0 && expect.unsigned_tail == Tail::Refuse {
        return Err(if checkpoints.is_empty() {
            LedgerError::NoCheckpoint { entries: n }
        } else {
            LedgerError::UnsignedTail {
                covered: good_up_to,
                entries: n,
            }
        });
    }
    Ok(Verified {
        entries: n,
        checkpoints: checkpoints.len(),
        checkpoint: checkpoints.pop(),
        unsigned,
    })
}

/// The first line of a JSON Lines export; every further line is one [`Entry`], in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportHeader {
    /// `stellar-ledger/v1`.
    pub format: String,
    /// The checkpoint origin (the log's name).
    pub origin: String,
    /// How many entries follow.
    pub size: u64,
    /// Every signed checkpoint, as signed notes.
    pub checkpoints: Vec<String>,
}

/// The export format name.
pub const EXPORT_FORMAT: &str = "stellar-ledger/v1";

/// Reads a JSON Lines export; errors name the line.
pub fn read_export(text: &str) -> Result<(ExportHeader, Vec<Entry>), String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, first) = lines
        .next()
        .ok_or_else(|| "the export is empty".to_owned())?;
    let header: ExportHeader = serde_json::from_str(first)
        .map_err(|e| format!("line 1 is not a ledger export header: {e}"))?;
    if header.format != EXPORT_FORMAT {
        return Err(format!(
            "line 1: format `{}` is not supported (expected `{EXPORT_FORMAT}`)",
            header.format
        ));
    }
    let mut entries = Vec::new();
    for (i, line) in lines {
        entries.push(
            serde_json::from_str::<Entry>(line)
                .map_err(|e| format!("line {}: not a ledger entry: {e}", i + 1))?,
        );
    }
    Ok((header, entries))
}

/// A self-contained inclusion proof: an entry, its audit path, and the signed checkpoint it
/// leads to. `stellar ledger verify --proof` checks it with nothing but a trust root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionBundle {
    pub entry: Entry,
    pub tree_size: u64,
    /// Hex sibling hashes, leaf to root (RFC 6962 PATH).
    pub proof: Vec<String>,
    /// The signed note of the checkpoint of `tree_size`.
    pub checkpoint: String,
}

/// A self-contained consistency proof between two signed checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyBundle {
    pub old_size: u64,
    pub new_size: u64,
    /// Hex hashes (RFC 6962 PROOF).
    pub proof: Vec<String>,
    pub old_checkpoint: String,
    pub new_checkpoint: String,
}

/// Why a proof bundle did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofBundleError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("the proof is for tree size {proof}, but the checkpoint is of size {checkpoint}")]
    SizeMismatch { proof: u64, checkpoint: u64 },
    #[error("proof hash {index} is not 64 hex digits")]
    Encoding { index: usize },
    #[error(
        "entry {seq} was changed: its content no longer matches its hash (or its hash is not the chained one)"
    )]
    Content { seq: u64 },
    #[error(
        "entry {seq} is not in the tree the checkpoint of size {size} signs: the entry, its position or the proof was changed"
    )]
    NotIncluded { seq: u64, size: u64 },
    #[error(
        "the checkpoint of size {old} is not a prefix of the checkpoint of size {new}: the ledger was rewritten between them, or the proof was changed"
    )]
    Inconsistent { old: u64, new: u64 },
}

fn decode_path(proof: &[String]) -> Result<Vec<Hash>, ProofBundleError> {
    proof
        .iter()
        .enumerate()
        .map(|(index, h)| {
            hex::decode(h)
                .ok()
                .and_then(|b| Hash::try_from(b).ok())
                .ok_or(ProofBundleError::Encoding { index })
        })
        .collect()
}

impl InclusionBundle {
    /// Checks the checkpoint's signature, the entry's own hash, and its audit path.
    pub fn verify(&self, root: &TrustRoot) -> Result<Checkpoint, ProofBundleError> {
        let cp = Checkpoint::verify_with_root(&self.checkpoint, root)?;
        if cp.size != self.tree_size {
            return Err(ProofBundleError::SizeMismatch {
                proof: self.tree_size,
                checkpoint: cp.size,
            });
        }
        if self.entry.compute_hash() != self.entry.entry_hash {
            return Err(ProofBundleError::Content {
                seq: self.entry.seq,
            });
        }
        let path = decode_path(&self.proof)?;
        if !merkle::verify_inclusion(&self.entry.leaf(), self.entry.seq, cp.size, &path, &cp.root) {
            return Err(ProofBundleError::NotIncluded {
                seq: self.entry.seq,
                size: cp.size,
            });
        }
        Ok(cp)
    }
}

impl ConsistencyBundle {
    /// Checks both checkpoints' signatures and that the old tree is a prefix of the new one.
    pub fn verify(&self, root: &TrustRoot) -> Result<(Checkpoint, Checkpoint), ProofBundleError> {
        let old = Checkpoint::verify_with_root(&self.old_checkpoint, root)?;
        let new = Checkpoint::verify_with_root(&self.new_checkpoint, root)?;
        for (claimed, cp) in [(self.old_size, &old), (self.new_size, &new)] {
            if cp.size != claimed {
                return Err(ProofBundleError::SizeMismatch {
                    proof: claimed,
                    checkpoint: cp.size,
                });
            }
        }
        let path = decode_path(&self.proof)?;
        if !merkle::verify_consistency(old.size, new.size, &old.root, &new.root, &path) {
            return Err(ProofBundleError::Inconsistent {
                old: old.size,
                new: new.size,
            });
        }
        Ok((old, new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyPair, Purpose, TrustedKey};
    use chrono::{TimeZone, Utc};

    fn ledger(n: u64) -> Vec<Entry> {
        let mut out: Vec<Entry> = Vec::new();
        for i in 0..n {
            let mut e = Entry {
                seq: i,
                time: format!("2026-11-28T00:00:{:02}.000000Z", i % 60),
                actor: "admin".into(),
                tenant: None,
                action: "test".into(),
                subject: format!("thing-{i}"),
                details: "{}".into(),
                prev_hash: out
                    .last()
                    .map_or(GENESIS.to_owned(), |p| p.entry_hash.clone()),
                entry_hash: String::new(),
            };
            e.entry_hash = e.compute_hash();
            out.push(e);
        }
        out
    }

    fn signed(entries: &[Entry], key: &KeyPair) -> String {
        let mut t = MemoryTree::new();
        for e in entries {
            t.push(e.leaf());
        }
        Checkpoint {
            origin: "test".into(),
            size: entries.len() as u64,
            root: t.root(),
            time: Some(Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()),
        }
        .sign("ledger", key)
    }

    const STRICT: Expect<'static> = Expect {
        origin: "test",
        unsigned_tail: Tail::Refuse,
    };

    fn root_of(key: &KeyPair) -> TrustRoot {
        TrustRoot::new(vec![TrustedKey::for_key(
            key.public(),
            Purpose::LedgerCheckpoint,
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        )])
    }

    #[test]
    fn an_intact_ledger_verifies() {
        let key = KeyPair::generate().expect("key");
        let entries = ledger(10);
        let notes = [signed(&entries[..4], &key), signed(&entries, &key)];
        let v = verify(&entries, &notes, &root_of(&key), &STRICT).expect("verifies");
        assert_eq!(v.entries, 10);
        assert_eq!(v.checkpoints, 2);
        assert_eq!(v.checkpoint.map(|c| c.size), Some(10));
    }

    #[test]
    fn edits_deletions_and_reorderings_name_the_first_bad_entry() {
        let key = KeyPair::generate().expect("key");
        let keys = root_of(&key);
        let entries = ledger(10);
        let note = [signed(&entries[..5], &key), signed(&entries, &key)];

        let mut edited = entries.clone();
        edited[4].subject = "forged".into();
        assert_eq!(
            verify(&edited, &note, &keys, &STRICT),
            Err(LedgerError::Content { seq: 4 })
        );

        let mut deleted = entries.clone();
        deleted.remove(6);
        assert_eq!(
            verify(&deleted, &note, &keys, &STRICT),
            Err(LedgerError::Sequence {
                expected: 6,
                found: 7
            })
        );

        let mut swapped = entries.clone();
        swapped.swap(2, 3);
        assert_eq!(
            verify(&swapped, &note, &keys, &STRICT),
            Err(LedgerError::Sequence {
                expected: 2,
                found: 3
            })
        );

        // Rewriting an entry and every hash after it still fails against the checkpoint.
        let mut rewritten = entries.clone();
        rewritten[5].subject = "forged".into();
        for i in 5..rewritten.len() {
            if i > 0 {
                rewritten[i].prev_hash = rewritten[i - 1].entry_hash.clone();
            }
            rewritten[i].entry_hash = rewritten[i].compute_hash();
        }
        assert_eq!(
            verify(&rewritten, &note, &keys, &STRICT),
            Err(LedgerError::Root { size: 10, after: 5 })
        );

        // A checkpoint signed by a revoked key is refused.
        let mut revoked = root_of(&key);
        revoked.keys[0].revoked_at = Some(Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap());
        assert!(matches!(
            verify(&entries, &note, &revoked, &STRICT),
            Err(LedgerError::Checkpoint(CheckpointError::KeyStatus(_)))
        ));
    }

    #[test]
    fn unsigned_entries_and_foreign_checkpoints_fail_unless_allowed() {
        let key = KeyPair::generate().expect("key");
        let keys = root_of(&key);
        let entries = ledger(10);
        // No checkpoint at all.
        assert_eq!(
            verify(&entries, &[], &keys, &STRICT),
            Err(LedgerError::NoCheckpoint { entries: 10 })
        );
        // Entries after the newest checkpoint.
        let partial = [signed(&entries[..6], &key)];
        assert_eq!(
            verify(&entries, &partial, &keys, &STRICT),
            Err(LedgerError::UnsignedTail {
                covered: 6,
                entries: 10
            })
        );
        let lenient = Expect {
            unsigned_tail: Tail::Allow,
            ..STRICT
        };
        let v = verify(&entries, &partial, &keys, &lenient).expect("allowed");
        assert_eq!(v.unsigned, 4);
        // A checkpoint signed for another ledger.
        let other = Expect {
            origin: "another.example/ledger",
            ..STRICT
        };
        assert!(matches!(
            verify(&entries, &[signed(&entries, &key)], &keys, &other),
            Err(LedgerError::Origin { size: 10, .. })
        ));
        // An empty ledger has nothing unsigned.
        assert!(verify(&[], &[], &keys, &STRICT).is_ok());
    }
}
