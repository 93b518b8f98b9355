//! DSSE envelopes (Dead Simple Signing Envelope) carrying in-toto Statement v1 payloads, signed
//! with ECDSA P-256 over the pre-authentication encoding, and verified offline against a trust
//! root, with a precise reason for every failure.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys::{
    KeyId, KeyPair, KeyStatusError, PublicKey, Purpose, SignatureProblem, TrustRoot,
};

/// The payload type of in-toto statements.
pub const INTOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// The DSSE pre-authentication encoding: `DSSEv1 <len> <type> <len> <payload>`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(
        format!(
            "DSSEv1 {} {} {} ",
            payload_type.len(),
            payload_type,
            payload.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(payload);
    out
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    pub keyid: String,
    /// Base64 of the DER ECDSA signature.
    pub sig: String,
}

/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Base64 of the payload.
    pub payload: String,
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub signatures: Vec<EnvelopeSignature>,
}

/// A subject of a statement: a named artefact and its digests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub name: String,
    pub digest: std::collections::BTreeMap<String, String>,
}

impl Subject {
    /// A subject named `name` whose content is `bytes`.
    pub fn of(name: impl Into<String>, bytes: &[u8]) -> Self {
        Subject::with_sha256(name, hex::encode(Sha256::digest(bytes)))
    }

    pub fn with_sha256(name: impl Into<String>, sha256: impl Into<String>) -> Self {
        Subject {
            name: name.into(),
            digest: [("sha256".to_owned(), sha256.into())].into_iter().collect(),
        }
    }
}

/// An in-toto Statement v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub kind: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: serde_json::Value,
}

impl Statement {
    pub fn new(
        subject: Vec<Subject>,
        predicate_type: impl Into<String>,
        predicate: serde_json::Value,
    ) -> Self {
        Statement {
            kind: STATEMENT_TYPE.to_owned(),
            subject,
            predicate_type: predicate_type.into(),
            predicate,
        }
    }

    /// When it was signed: the predicate's `signedAt` (RFC 3339), if it has one.
    pub fn signed_at(&self) -> Option<DateTime<Utc>> {
        self.predicate
            .get("signedAt")
            .and_then(|v| v.as_str())
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&Utc))
    }
}

/// Why an envelope did not verify. Each names what failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the envelope is not valid DSSE JSON: {0}")]
    Malformed(String),
    #[error("the payload type is `{found}`; expected `{expected}`")]
    PayloadType { found: String, expected: String },
    #[error("the payload is not valid base64: the envelope was damaged")]
    PayloadEncoding,
    #[error("the envelope carries no signature")]
    NoSignatures,
    #[error(
        "signature {index}: its signature bytes are not valid base64 or DER (the signature was changed)"
    )]
    SignatureEncoding { index: usize, key_id: String },
    #[error(
        "signature {index} names key id `{key_id}`, which the trust root does not know (the key id was changed, or the key is not trusted)"
    )]
    UnknownKey { index: usize, key_id: String },
    #[error(
        "signature {index} by key {key_id} does not match the payload: the payload or the signature was changed"
    )]
    BadSignature { index: usize, key_id: String },
    #[error("signature {index}: {reason}")]
    KeyStatus {
        index: usize,
        reason: KeyStatusError,
    },
    #[error("the payload is not an in-toto Statement v1: {0}")]
    Statement(String),
    #[error(
        "the artefact's sha256 is {actual}, but the statement's subject `{subject}` has {expected}: this is not the attested artefact"
    )]
    DigestMismatch {
        subject: String,
        expected: String,
        actual: String,
    },
}

impl Envelope {
    /// Signs a statement with one key.
    pub fn sign_statement(statement: &Statement, key: &KeyPair) -> Self {
        let payload = serde_json::to_vec(statement).unwrap_or_default();
        Envelope::sign(INTOTO_PAYLOAD_TYPE, &payload, key)
    }

    /// Signs any payload.
    pub fn sign(payload_type: &str, payload: &[u8], key: &KeyPair) -> Self {
        let sig = key.sign_der(&pae(payload_type, payload));
        Envelope {
            payload: STANDARD.encode(payload),
            payload_type: payload_type.to_owned(),
            signatures: vec![EnvelopeSignature {
                keyid: key.id().0,
                sig: STANDARD.encode(sig),
            }],
        }
    }

    /// Adds a signature made elsewhere (offline signing).
    pub fn add_signature(&mut self, key_id: &KeyId, der_signature: &[u8]) {
        self.signatures.push(EnvelopeSignature {
            keyid: key_id.0.clone(),
            sig: STANDARD.encode(der_signature),
        });
    }

    pub fn from_json(text: &str) -> Result<Self, VerifyError> {
        serde_json::from_str(text).map_err(|e| VerifyError::Malformed(e.to_string()))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn payload_bytes(&self) -> Result<Vec<u8>, VerifyError> {
        STANDARD
            .decode(&self.payload)
            .map_err(|_| VerifyError::PayloadEncoding)
    }

    /// The bytes a signer signs: the pre-authentication encoding of the payload.
    pub fn signing_input(&self) -> Result<Vec<u8>, VerifyError> {
        Ok(pae(&self.payload_type, &self.payload_bytes()?))
    }

    /// Verifies every signature against the trust root, each key admitted for `purpose` at
    /// `at`, and returns the payload, whatever its type (an in-toto layout or link, which
    /// carries no signing time of its own).
    pub fn verify_payload(
        &self,
        root: &TrustRoot,
        purpose: Purpose,
        at: DateTime<Utc>,
    ) -> Result<Vec<u8>, VerifyError> {
        let payload = self.payload_bytes()?;
        if self.signatures.is_empty() {
            return Err(VerifyError::NoSignatures);
        }
        let input = pae(&self.payload_type, &payload);
        for (index, s) in self.signatures.iter().enumerate() {
            let short = KeyId(s.keyid.clone()).short().to_owned();
            let trusted =
                root.find(&KeyId(s.keyid.clone()))
                    .ok_or_else(|| VerifyError::UnknownKey {
                        index,
                        key_id: s.keyid.clone(),
                    })?;
            let public =
                PublicKey::from_pem(&trusted.public_key).map_err(|_| VerifyError::UnknownKey {
                    index,
                    key_id: s.keyid.clone(),
                })?;
            let der = STANDARD
                .decode(&s.sig)
                .map_err(|_| VerifyError::SignatureEncoding {
                    index,
                    key_id: short.clone(),
                })?;
            public.verify_der(&input, &der).map_err(|p| match p {
                SignatureProblem::Encoding => VerifyError::SignatureEncoding {
                    index,
                    key_id: short.clone(),
                },
                SignatureProblem::Mismatch => VerifyError::BadSignature {
                    index,
                    key_id: short.clone(),
                },
            })?;
            trusted
                .admits(purpose, at)
                .map_err(|reason| VerifyError::KeyStatus { index, reason })?;
        }
        Ok(payload)
    }

    /// Verifies every signature against the trust root and returns the statement. Every
    /// signature must verify (a tampered extra signature is a failure, not noise). `purpose` is
    /// what the signing keys must be for; the statement's `signedAt` (or `now`) is checked
    /// against each key's validity and revocation.
    pub fn verify(
        &self,
        root: &TrustRoot,
        purpose: Purpose,
        now: DateTime<Utc>,
    ) -> Result<Statement, VerifyError> {
        if self.payload_type != INTOTO_PAYLOAD_TYPE {
            return Err(VerifyError::PayloadType {
                found: self.payload_type.clone(),
                expected: INTOTO_PAYLOAD_TYPE.into(),
            });
        }
        let payload = self.payload_bytes()?;
        if self.signatures.is_empty() {
            return Err(VerifyError::NoSignatures);
        }
        let input = pae(&self.payload_type, &payload);
        for (index, s) in self.signatures.iter().enumerate() {
            let key_id = KeyId(s.keyid.clone());
            let short = key_id.short().to_owned();
            let Some(trusted) = root.find(&key_id) else {
                return Err(VerifyError::UnknownKey {
                    index,
                    key_id: s.keyid.clone(),
                });
            };
            let public =
                PublicKey::from_pem(&trusted.public_key).map_err(|_| VerifyError::UnknownKey {
                    index,
                    key_id: s.keyid.clone(),
                })?;
            let der = STANDARD
                .decode(&s.sig)
                .map_err(|_| VerifyError::SignatureEncoding {
                    index,
                    key_id: short.clone(),
                })?;
            match public.verify_der(&input, &der) {
                Ok(()) => {}
                Err(SignatureProblem::Encoding) => {
                    return Err(VerifyError::SignatureEncoding {
                        index,
                        key_id: short,
                    });
                }
                Err(SignatureProblem::Mismatch) => {
                    return Err(VerifyError::BadSignature {
                        index,
                        key_id: short,
                    });
                }
            }
        }
        // The signatures are genuine: now the payload can be trusted to say when it was signed.
        let statement: Statement =
            serde_json::from_slice(&payload).map_err(|e| VerifyError::Statement(e.to_string()))?;
        if statement.kind != STATEMENT_TYPE {
            return Err(VerifyError::Statement(format!(
                "`_type` is `{}`, expected `{STATEMENT_TYPE}`",
                statement.kind
            )));
        }
        let at = statement.signed_at().unwrap_or(now);
        for (index, s) in self.signatures.iter().enumerate() {
            if let Some(trusted) = root.find(&KeyId(s.keyid.clone())) {
                trusted
                    .admits(purpose, at)
                    .map_err(|reason| VerifyError::KeyStatus { index, reason })?;
            }
        }
        Ok(statement)
    }
}

/// Checks that an artefact is a subject of the statement.
pub fn check_artifact(
    statement: &Statement,
    name: Option<&str>,
    bytes: &[u8],
) -> Result<(), VerifyError> {
    let actual = hex::encode(Sha256::digest(bytes));
    let candidates: Vec<&Subject> = statement
        .subject
        .iter()
        .filter(|s| name.is_none_or(|n| s.name == n))
        .collect();
    if candidates
        .iter()
        .any(|s| s.digest.get("sha256") == Some(&actual))
    {
        return Ok(());
    }
    let first = candidates.first().copied().or(statement.subject.first());
    Err(VerifyError::DigestMismatch {
        subject: first.map(|s| s.name.clone()).unwrap_or_default(),
        expected: first
            .and_then(|s| s.digest.get("sha256").cloned())
            .unwrap_or_else(|| "no sha256".into()),
        actual,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::TrustedKey;
    use chrono::TimeZone;

    fn setup() -> (KeyPair, TrustRoot, Envelope) {
        let kp = KeyPair::generate().expect("key");
        let from = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("date");
        let root = TrustRoot::new(vec![TrustedKey::for_key(
            kp.public(),
            Purpose::Validator,
            from,
        )]);
        let st = Statement::new(
            vec![Subject::of("bundle.tar.gz", b"bytes")],
            "https://stellar.dev/attestations/verdict/v1",
            serde_json::json!({"decision": "pass", "signedAt": "2026-06-01T00:00:00Z"}),
        );
        let env = Envelope::sign_statement(&st, &kp);
        (kp, root, env)
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0)
            .single()
            .expect("date")
    }

    #[test]
    fn a_signed_statement_verifies_and_its_artifact_matches() {
        let (_, root, env) = setup();
        let st = env
            .verify(&root, Purpose::Validator, now())
            .expect("verifies");
        check_artifact(&st, None, b"bytes").expect("artefact");
        assert!(matches!(
            check_artifact(&st, None, b"other"),
            Err(VerifyError::DigestMismatch { .. })
        ));
    }

    #[test]
    fn the_pae_is_the_dsse_one() {
        assert_eq!(pae("t", b"ab"), b"DSSEv1 1 t 2 ab".to_vec());
    }

    #[test]
    fn the_wrong_purpose_fails() {
        let (_, root, env) = setup();
        let err = env
            .verify(&root, Purpose::Release, now())
            .expect_err("wrong purpose");
        assert!(
            err.to_string().contains("a release key must sign this"),
            "{err}"
        );
    }
}
