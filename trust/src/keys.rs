//! P-256 keys: generation, PKCS#8 PEM (optionally encrypted with a passphrase), key ids, and the
//! trust root that says which keys may sign what, and when.
//!
//! A key id is the lowercase hex sha256 of the key's DER SubjectPublicKeyInfo: anyone holding
//! the public key can recompute it.

use std::fmt;

use chrono::{DateTime, Utc};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey, signature::Signer, signature::Verifier};
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a key is for. A signature is only accepted from a key of the expected purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    /// Signs verdicts.
    Validator,
    /// Signs releases.
    Release,
    /// Signs the attestations of pipeline steps.
    PipelineStep,
    /// Signs ledger checkpoints.
    LedgerCheckpoint,
}

impl Purpose {
    pub const ALL: [Purpose; 4] = [
        Purpose::Validator,
        Purpose::Release,
        Purpose::PipelineStep,
        Purpose::LedgerCheckpoint,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Validator => "validator",
            Purpose::Release => "release",
            Purpose::PipelineStep => "pipeline-step",
            Purpose::LedgerCheckpoint => "ledger-checkpoint",
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Purpose {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Purpose::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| KeyError::Purpose(s.to_owned()))
    }
}

/// Problems with keys and key files.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "unknown key purpose `{0}`: use validator, release, pipeline-step or ledger-checkpoint"
    )]
    Purpose(String),
    #[error("the private key is not a PKCS#8 PEM P-256 key: {0}")]
    PrivateKey(String),
    #[error("the private key is encrypted: give its passphrase")]
    NeedsPassphrase,
    #[error("the passphrase does not open the private key (or the file is damaged)")]
    WrongPassphrase,
    #[error("the public key is not a PEM P-256 SubjectPublicKeyInfo: {0}")]
    PublicKey(String),
    #[error("cannot encode the key: {0}")]
    Encode(String),
}

/// A key id: lowercase hex sha256 of the DER SubjectPublicKeyInfo.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(pub String);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl KeyId {
    /// The first 16 characters, for messages.
    pub fn short(&self) -> &str {
        self.0.get(..16).unwrap_or(&self.0)
    }
}

/// A public key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    der: Vec<u8>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.id())
    }
}

impl PublicKey {
    fn from_verifying(key: VerifyingKey) -> Result<Self, KeyError> {
        let der = key
            .to_public_key_der()
            .map_err(|e| KeyError::Encode(e.to_string()))?
            .as_bytes()
            .to_vec();
        Ok(PublicKey { key, der })
    }

    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let key = VerifyingKey::from_public_key_pem(pem.trim())
            .map_err(|e| KeyError::PublicKey(e.to_string()))?;
        Self::from_verifying(key)
    }

    /// PEM SubjectPublicKeyInfo, as Python's `cryptography` writes it (64-character lines, `\n`,
    /// a final newline): what in-toto's verifier needs byte for byte.
    pub fn to_pem(&self) -> String {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.der
    }

    pub fn id(&self) -> KeyId {
        KeyId(hex::encode(Sha256::digest(&self.der)))
    }

    /// Verifies a DER-encoded ECDSA P-256 / SHA-256 signature.
    pub fn verify_der(&self, message: &[u8], der_signature: &[u8]) -> Result<(), SignatureProblem> {
        let sig = Signature::from_der(der_signature).map_err(|_| SignatureProblem::Encoding)?;
        self.key
            .verify(message, &sig)
            .map_err(|_| SignatureProblem::Mismatch)
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureProblem {
    /// Not a DER ECDSA signature.
    Encoding,
    /// Well formed, but not made by this key over this message.
    Mismatch,
}

/// A key pair. The private half never prints.
pub struct KeyPair {
    key: SigningKey,
    public: PublicKey,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPair({}, private key hidden)", self.public.id())
    }
}

impl KeyPair {
    /// A new random key pair from the operating system's generator.
    pub fn generate() -> Result<Self, KeyError> {
        Self::from_signing(SigningKey::random(&mut OsRng))
    }

    fn from_signing(key: SigningKey) -> Result<Self, KeyError> {
        let public = PublicKey::from_verifying(*key.verifying_key())?;
        Ok(KeyPair { key, public })
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    pub fn id(&self) -> KeyId {
        self.public.id()
    }

    /// PKCS#8 PEM; encrypted (PBES2, scrypt, AES-256-CBC) when a passphrase is given.
    pub fn to_pkcs8_pem(&self, passphrase: Option<&str>) -> Result<String, KeyError> {
        let pem = match passphrase {
            Some(p) => self
                .key
                .to_pkcs8_encrypted_pem(&mut OsRng, p.as_bytes(), LineEnding::LF),
            None => self.key.to_pkcs8_pem(LineEnding::LF),
        }
        .map_err(|e| KeyError::Encode(e.to_string()))?;
        Ok(pem.to_string())
    }

    /// Reads a PKCS#8 PEM private key, encrypted or not.
    pub fn from_pkcs8_pem(pem: &str, passphrase: Option<&str>) -> Result<Self, KeyError> {
        let pem = pem.trim();
        let key = if pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            let Some(p) = passphrase else {
                return Err(KeyError::NeedsPassphrase);
            };
            SigningKey::from_pkcs8_encrypted_pem(pem, p.as_bytes())
                .map_err(|_| KeyError::WrongPassphrase)?
        } else {
            SigningKey::from_pkcs8_pem(pem).map_err(|e| KeyError::PrivateKey(e.to_string()))?
        };
        Self::from_signing(key)
    }

    /// A DER-encoded ECDSA P-256 / SHA-256 signature (as in-toto and securesystemslib expect).
    pub fn sign_der(&self, message: &[u8]) -> Vec<u8> {
        let sig: Signature = self.key.sign(message);
        sig.to_der().as_bytes().to_vec()
    }
}

/// One key the trust root knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedKey {
    pub key_id: KeyId,
    pub purpose: Purpose,
    /// PEM SubjectPublicKeyInfo.
    pub public_key: String,
    pub valid_from: DateTime<Utc>,
    /// After this, the key signs nothing new (rotation); what it signed before still verifies.
    #[serde(default)]
    pub valid_until: Option<DateTime<Utc>>,
    /// Signatures dated at or after this fail.
    #[serde(default)]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Why a key may not vouch for a signature made at a given time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyStatusError {
    #[error("key {key} signed at {signed_at}, before it became valid at {valid_from}")]
    NotYetValid {
        key: String,
        signed_at: DateTime<Utc>,
        valid_from: DateTime<Utc>,
    },
    #[error("key {key} signed at {signed_at}, after it expired at {valid_until}")]
    Expired {
        key: String,
        signed_at: DateTime<Utc>,
        valid_until: DateTime<Utc>,
    },
    #[error("key {key} was revoked at {revoked_at}; the signature is dated {signed_at}")]
    Revoked {
        key: String,
        signed_at: DateTime<Utc>,
        revoked_at: DateTime<Utc>,
    },
    #[error("key {key} is a {purpose} key; a {expected} key must sign this")]
    WrongPurpose {
        key: String,
        purpose: Purpose,
        expected: Purpose,
    },
}

impl TrustedKey {
    pub fn for_key(key: &PublicKey, purpose: Purpose, valid_from: DateTime<Utc>) -> Self {
        TrustedKey {
            key_id: key.id(),
            purpose,
            public_key: key.to_pem(),
            valid_from,
            valid_until: None,
            revoked_at: None,
        }
    }

    /// Whether this key could sign, for `purpose`, at `signed_at`.
    pub fn admits(&self, purpose: Purpose, signed_at: DateTime<Utc>) -> Result<(), KeyStatusError> {
        let key = self.key_id.short().to_owned();
        if self.purpose != purpose {
            return Err(KeyStatusError::WrongPurpose {
                key,
                purpose: self.purpose,
                expected: purpose,
            });
        }
        if let Some(revoked_at) = self.revoked_at
            && signed_at >= revoked_at
        {
            return Err(KeyStatusError::Revoked {
                key,
                signed_at,
                revoked_at,
            });
        }
        if signed_at < self.valid_from {
            return Err(KeyStatusError::NotYetValid {
                key,
                signed_at,
                valid_from: self.valid_from,
            });
        }
        if let Some(valid_until) = self.valid_until
            && signed_at > valid_until
        {
            return Err(KeyStatusError::Expired {
                key,
                signed_at,
                valid_until,
            });
        }
        Ok(())
    }
}

/// The keys a verifier trusts, with their purposes and validity: a JSON file that travels with
/// the artefacts, so verification needs no server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustRoot {
    /// Format version (1).
    pub version: u32,
    pub keys: Vec<TrustedKey>,
}

impl TrustRoot {
    pub fn new(keys: Vec<TrustedKey>) -> Self {
        TrustRoot { version: 1, keys }
    }

    pub fn from_json(text: &str) -> Result<Self, String> {
        let root: TrustRoot =
            serde_json::from_str(text).map_err(|e| format!("the trust root is not valid: {e}"))?;
        if root.version != 1 {
            return Err(format!(
                "trust root version {} is not supported (expected 1)",
                root.version
            ));
        }
        for k in &root.keys {
            let public = PublicKey::from_pem(&k.public_key)
                .map_err(|e| format!("key {}: {e}", k.key_id.short()))?;
            if public.id() != k.key_id {
                return Err(format!(
                    "key {}: the key id does not match its public key (which has id {})",
                    k.key_id.short(),
                    public.id().short()
                ));
            }
        }
        Ok(root)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn find(&self, id: &KeyId) -> Option<&TrustedKey> {
        self.keys.iter().find(|k| &k.key_id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trips_with_and_without_a_passphrase() {
        let kp = KeyPair::generate().expect("key");
        let plain = kp.to_pkcs8_pem(None).expect("pem");
        assert!(plain.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(
            KeyPair::from_pkcs8_pem(&plain, None).expect("read").id(),
            kp.id()
        );
        let enc = kp.to_pkcs8_pem(Some("correct horse")).expect("pem");
        assert!(enc.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        assert!(matches!(
            KeyPair::from_pkcs8_pem(&enc, None),
            Err(KeyError::NeedsPassphrase)
        ));
        assert!(matches!(
            KeyPair::from_pkcs8_pem(&enc, Some("wrong")),
            Err(KeyError::WrongPassphrase)
        ));
        assert_eq!(
            KeyPair::from_pkcs8_pem(&enc, Some("correct horse"))
                .expect("read")
                .id(),
            kp.id()
        );
    }

    #[test]
    fn public_pem_has_64_character_lines_and_a_final_newline() {
        let kp = KeyPair::generate().expect("key");
        let pem = kp.public().to_pem();
        assert!(pem.ends_with("-----END PUBLIC KEY-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert_eq!(PublicKey::from_pem(&pem).expect("read").id(), kp.id());
        assert_eq!(kp.id().0.len(), 64);
    }

    #[test]
    fn signatures_verify_only_unchanged() {
        let kp = KeyPair::generate().expect("key");
        let sig = kp.sign_der(b"hello");
        assert_eq!(kp.public().verify_der(b"hello", &sig), Ok(()));
        assert_eq!(
            kp.public().verify_der(b"hellO", &sig),
            Err(SignatureProblem::Mismatch)
        );
        assert_eq!(
            kp.public().verify_der(b"hello", &sig[1..]),
            Err(SignatureProblem::Encoding)
        );
    }
}
