//! Offline signing: a request file the server writes, a signature made with a key on a machine
//! with no server and no network, and the signed file the server imports.
//!
//! The request carries the exact payload to sign; the signer shows what it is about (predicate
//! type and subjects), checks that its key is the one the request names, and signs the DSSE
//! pre-authentication encoding. The server then verifies the result exactly as it verifies any
//! envelope.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dsse::{Envelope, Statement, pae};
use crate::keys::{KeyPair, Purpose};

/// The format name of a request file.
pub const REQUEST_FORMAT: &str = "stellar-signing-request/v1";
/// The format name of a signed request file.
pub const SIGNED_FORMAT: &str = "stellar-signed-request/v1";

/// What to sign, and with which key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningRequest {
    pub format: String,
    pub id: String,
    pub purpose: Purpose,
    /// The key that must sign (hex sha256 of its SPKI).
    pub key_id: String,
    pub payload_type: String,
    /// Base64 of the payload.
    pub payload: String,
    /// Hex sha256 of the pre-authentication encoding: what the signature covers, for people
    /// comparing the request on both machines.
    pub pae_sha256: String,
    pub created_at: DateTime<Utc>,
}

/// A request with its signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRequest {
    pub format: String,
    pub request_id: String,
    pub envelope: Envelope,
}

/// Why a request could not be read or signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfflineError {
    #[error("not a signing request: {0}")]
    Malformed(String),
    #[error("format `{0}` is not supported (expected `{REQUEST_FORMAT}`)")]
    Format(String),
    #[error(
        "this request must be signed by key {wanted}, but the key given is {given}: use the {purpose} key the request names"
    )]
    WrongKey {
        wanted: String,
        given: String,
        purpose: Purpose,
    },
    #[error("the request's payload is not valid base64: the file was damaged")]
    Payload,
    #[error(
        "the request's pae_sha256 does not match its payload: the file was changed after it was exported"
    )]
    Digest,
}

impl SigningRequest {
    pub fn new(
        id: impl Into<String>,
        purpose: Purpose,
        key_id: impl Into<String>,
        payload_type: impl Into<String>,
        payload: &[u8],
        created_at: DateTime<Utc>,
    ) -> Self {
        let payload_type = payload_type.into();
        SigningRequest {
            format: REQUEST_FORMAT.into(),
            id: id.into(),
            purpose,
            key_id: key_id.into(),
            pae_sha256: hex::encode(Sha256::digest(pae(&payload_type, payload))),
            payload: STANDARD.encode(payload),
            payload_type,
            created_at,
        }
    }

    pub fn from_json(text: &str) -> Result<Self, OfflineError> {
        let r: SigningRequest =
            serde_json::from_str(text).map_err(|e| OfflineError::Malformed(e.to_string()))?;
        if r.format != REQUEST_FORMAT {
            return Err(OfflineError::Format(r.format));
        }
        Ok(r)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn payload_bytes(&self) -> Result<Vec<u8>, OfflineError> {
        STANDARD
            .decode(&self.payload)
            .map_err(|_| OfflineError::Payload)
    }

    /// A human summary of what is being signed (for the signer to confirm).
    pub fn summary(&self) -> String {
        let statement = self
            .payload_bytes()
            .ok()
            .and_then(|p| serde_json::from_slice::<Statement>(&p).ok());
        match statement {
            Some(s) => {
                let subjects: Vec<String> = s
                    .subject
                    .iter()
                    .map(|sub| {
                        format!(
                            "{} (sha256 {})",
                            sub.name,
                            sub.digest.get("sha256").map_or("-", |d| d.as_str())
                        )
                    })
                    .collect();
                format!(
                    "request {}: a {} statement `{}` about {}",
                    self.id,
                    self.purpose,
                    s.predicate_type,
                    subjects.join(", ")
                )
            }
            None => match self
                .payload_bytes()
                .ok()
                .and_then(|p| serde_json::from_slice::<crate::intoto::Layout>(&p).ok())
            {
                Some(l) => format!(
                    "request {}: the in-toto layout of steps {} valid until {} ({})",
                    self.id,
                    l.steps
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(" → "),
                    l.expires,
                    l.readme
                ),
                None => format!("request {}: a `{}` payload", self.id, self.payload_type),
            },
        }
    }

    /// Signs the request with `key`, which must be the key it names.
    pub fn sign(&self, key: &KeyPair) -> Result<SignedRequest, OfflineError> {
        let given = key.id().0;
        if given != self.key_id {
            return Err(OfflineError::WrongKey {
                wanted: self.key_id.clone(),
                given,
                purpose: self.purpose,
            });
        }
        let payload = self.payload_bytes()?;
        if hex::encode(Sha256::digest(pae(&self.payload_type, &payload))) != self.pae_sha256 {
            return Err(OfflineError::Digest);
        }
        Ok(SignedRequest {
            format: SIGNED_FORMAT.into(),
            request_id: self.id.clone(),
            envelope: Envelope::sign(&self.payload_type, &payload, key),
        })
    }
}

impl SignedRequest {
    pub fn from_json(text: &str) -> Result<Self, OfflineError> {
        let r: SignedRequest =
            serde_json::from_str(text).map_err(|e| OfflineError::Malformed(e.to_string()))?;
        if r.format != SIGNED_FORMAT {
            return Err(OfflineError::Format(r.format));
        }
        Ok(r)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsse::{INTOTO_PAYLOAD_TYPE, Subject};

    #[test]
    fn only_the_named_key_signs_and_a_changed_request_is_refused() {
        let key = KeyPair::generate().expect("key");
        let other = KeyPair::generate().expect("key");
        let statement = Statement::new(
            vec![Subject::of("plugin.wasm", b"wasm")],
            "https://stellar.dev/attestations/release/v1",
            serde_json::json!({"signedAt": "2026-11-28T12:00:00Z"}),
        );
        let payload = serde_json::to_vec(&statement).expect("json");
        let req = SigningRequest::new(
            "r1",
            Purpose::Release,
            key.id().0,
            INTOTO_PAYLOAD_TYPE,
            &payload,
            Utc::now(),
        );
        let round = SigningRequest::from_json(&req.to_json()).expect("parses");
        assert!(round.summary().contains("plugin.wasm"));
        let signed = round.sign(&key).expect("signs");
        assert_eq!(signed.envelope.signatures[0].keyid, key.id().0);
        assert!(matches!(
            round.sign(&other),
            Err(OfflineError::WrongKey { .. })
        ));
        let mut changed = round.clone();
        changed.payload = STANDARD.encode(b"{}");
        assert_eq!(changed.sign(&key), Err(OfflineError::Digest));
    }
}
