//! Signed checkpoints of the ledger, in the C2SP signed-note format: an origin line, the tree
//! size, the base64 root hash, a blank line, and signature lines `— <name> base64(keyid4 ‖ sig)`
//! where, for ECDSA P-256, keyid4 is the first four bytes of sha256 over the DER SPKI and the
//! signature is DER ECDSA over the note text.

//!
//! After the root hash, an optional extension line `time <RFC 3339 UTC>` says when the
//! checkpoint was made (C2SP allows extension lines; verifiers that do not know it ignore it).
//! The time is signed, so it can be checked against the signing key's validity and revocation.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

use crate::keys::{KeyPair, KeyStatusError, PublicKey, Purpose, TrustRoot};
use crate::merkle::Hash;

/// A tree head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// When it was made (the `time` extension line), to second precision.
    pub time: Option<DateTime<Utc>>,
}

/// Why a checkpoint did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("the checkpoint is not a signed note: {0}")]
    Malformed(String),
    #[error("no signature on the checkpoint is by a trusted ledger key (signers: {0})")]
    NoTrustedSignature(String),
    #[error(
        "the checkpoint signature by `{0}` does not verify: the checkpoint was forged or changed"
    )]
    BadSignature(String),
    #[error("the checkpoint's signing key may not vouch for it: {0}")]
    KeyStatus(KeyStatusError),
}

fn keyid4(key: &PublicKey) -> [u8; 4] {
    let d = Sha256::digest(key.spki_der());
    [d[0], d[1], d[2], d[3]]
}

impl Checkpoint {
    /// The note text that is signed.
    pub fn body(&self) -> String {
        let mut body = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        );
        if let Some(t) = self.time {
            body.push_str(&format!(
                "time {}\n",
                t.to_rfc3339_opts(SecondsFormat::Secs, true)
            ));
        }
        body
    }

    /// The signed note.
    pub fn sign(&self, name: &str, key: &KeyPair) -> String {
        let body = self.body();
        let mut blob = keyid4(key.public()).to_vec();
        blob.extend(key.sign_der(body.as_bytes()));
        format!("{body}\n— {name} {}\n", STANDARD.encode(blob))
    }

    /// Parses a signed note and verifies that one of `keys` signed it.
    pub fn verify(note: &str, keys: &[PublicKey]) -> Result<Checkpoint, CheckpointError> {
        let (body, sigs) = note.split_once("\n\n").ok_or_else(|| {
            CheckpointError::Malformed("no blank line between the text and the signatures".into())
        })?;
        let body = format!("{body}\n");
        let mut lines = body.lines();
        let origin = lines.next().unwrap_or_default().to_owned();
        let size = lines
            .next()
            .and_then(|l| l.parse::<u64>().ok())
            .ok_or_else(|| {
                CheckpointError::Malformed("the second line is not a tree size".into())
            })?;
        let root: Hash = lines
            .next()
            .and_then(|l| STANDARD.decode(l).ok())
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                CheckpointError::Malformed("the third line is not a base64 sha256 root".into())
            })?;
        let mut time = None;
        for ext in lines {
            if let Some(t) = ext.strip_prefix("time ") {
                time = Some(
                    DateTime::parse_from_rfc3339(t)
                        .map_err(|_| {
                            CheckpointError::Malformed(format!("`{ext}` is not an RFC 3339 time"))
                        })?
                        .with_timezone(&Utc),
                );
            }
        }
        let cp = Checkpoint {
            origin,
            size,
            root,
            time,
        };
        // The parsed form must give back the signed text exactly (no ignored variations).
        if cp.body() != body {
            return Err(CheckpointError::Malformed(
                "the note text has lines this verifier does not understand".into(),
            ));
        }
        let mut signers = Vec::new();
        for line in sigs.lines().filter(|l| !l.trim().is_empty()) {
            let rest = line.strip_prefix("— ").ok_or_else(|| {
                CheckpointError::Malformed(format!("`{line}` is not a signature line"))
            })?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or_else(|| CheckpointError::Malformed(format!("`{line}` has no signature")))?;
            signers.push(name.to_owned());
            let blob = STANDARD
                .decode(b64.trim())
                .map_err(|_| CheckpointError::BadSignature(name.to_owned()))?;
            if blob.len() < 5 {
                return Err(CheckpointError::BadSignature(name.to_owned()));
            }
            let (id, sig) = blob.split_at(4);
            if let Some(key) = keys.iter().find(|k| keyid4(k) == id) {
                return match key.verify_der(cp.body().as_bytes(), sig) {
                    Ok(()) => Ok(cp),
                    Err(_) => Err(CheckpointError::BadSignature(name.to_owned())),
                };
            }
        }
        Err(CheckpointError::NoTrustedSignature(signers.join(", ")))
    }

    /// Verifies a signed note against the ledger-checkpoint keys of a trust root, including
    /// each key's validity window and revocation at the checkpoint's time.
    pub fn verify_with_root(note: &str, root: &TrustRoot) -> Result<Checkpoint, CheckpointError> {
        let keys: Vec<(PublicKey, &crate::keys::TrustedKey)> = root
            .keys
            .iter()
            .filter(|k| k.purpose == Purpose::LedgerCheckpoint)
            .filter_map(|k| PublicKey::from_pem(&k.public_key).ok().map(|p| (p, k)))
            .collect();
        let publics: Vec<PublicKey> = keys.iter().map(|(p, _)| p.clone()).collect();
        let cp = Checkpoint::verify(note, &publics)?;
        // Find which key signed (the one whose keyid4 matched and verified).
        let signer = keys
            .iter()
            .find(|(p, _)| Checkpoint::verify(note, std::slice::from_ref(p)).is_ok());
        if let Some((_, trusted)) = signer {
            let at = cp.time.unwrap_or_else(Utc::now);
            trusted
                .admits(Purpose::LedgerCheckpoint, at)
                .map_err(CheckpointError::KeyStatus)?;
        }
        Ok(cp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    #[test]
    fn a_signed_checkpoint_verifies_and_a_forged_one_does_not() {
        let key = KeyPair::generate().expect("key");
        let cp = Checkpoint {
            origin: "stellar.example/ledger".into(),
            size: 42,
            root: [7u8; 32],
            time: Some(Utc::now().with_nanosecond(0).expect("time")),
        };
        let note = cp.sign("stellar-ledger", &key);
        assert!(note.starts_with("stellar.example/ledger\n42\n"));
        assert_eq!(
            Checkpoint::verify(&note, &[key.public().clone()]),
            Ok(cp.clone())
        );
        let forged = note.replacen("\n42\n", "\n43\n", 1);
        assert!(matches!(
            Checkpoint::verify(&forged, &[key.public().clone()]),
            Err(CheckpointError::BadSignature(_))
        ));
        let other = KeyPair::generate().expect("key");
        assert!(matches!(
            Checkpoint::verify(&note, &[other.public().clone()]),
            Err(CheckpointError::NoTrustedSignature(_))
        ));
    }
}
