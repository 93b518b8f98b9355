//! Tamper tests: every single-byte change to an envelope's payload, signature or key id fails
//! verification with a message naming what failed; revoked keys fail; rotated-out keys still
//! verify what they signed inside their window.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeZone, Utc};
use trust::dsse::{Envelope, Statement, Subject, VerifyError, check_artifact};
use trust::keys::{KeyPair, KeyStatusError, Purpose, TrustRoot, TrustedKey};

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).single().unwrap()
}

fn statement(signed_at: &str) -> Statement {
    Statement::new(
        vec![Subject::of("plugin.wasm", b"\0asm plugin bytes")],
        "https://stellar.dev/attestations/verdict/v1",
        serde_json::json!({"decision": "pass", "signedAt": signed_at}),
    )
}

fn setup() -> (KeyPair, TrustRoot, Envelope) {
    let key = KeyPair::generate().unwrap();
    let root = TrustRoot::new(vec![TrustedKey::for_key(
        key.public(),
        Purpose::Validator,
        at(2026, 1, 1),
    )]);
    let env = Envelope::sign_statement(&statement("2026-06-01T00:00:00Z"), &key);
    (key, root, env)
}

fn verify(env: &Envelope, root: &TrustRoot) -> Result<Statement, VerifyError> {
    env.verify(root, Purpose::Validator, at(2026, 7, 1))
}

#[test]
fn every_changed_payload_byte_fails_and_names_the_signature() {
    let (key, root, env) = setup();
    verify(&env, &root).expect("the original verifies");
    let payload = env.payload_bytes().unwrap();
    for i in 0..payload.len() {
        let mut changed = payload.clone();
        changed[i] ^= 0x01;
        let mut e = env.clone();
        e.payload = STANDARD.encode(&changed);
        let err = verify(&e, &root).expect_err("a changed payload must fail");
        assert_eq!(
            err,
            VerifyError::BadSignature {
                index: 0,
                key_id: key.id().short().to_owned()
            },
            "byte {i}"
        );
        assert!(
            err.to_string()
                .contains("payload or the signature was changed")
        );
    }
}

#[test]
fn every_changed_signature_byte_fails() {
    let (_, root, env) = setup();
    let sig = STANDARD.decode(&env.signatures[0].sig).unwrap();
    for i in 0..sig.len() {
        for bit in [0x01u8, 0x80] {
            let mut changed = sig.clone();
            changed[i] ^= bit;
            let mut e = env.clone();
            e.signatures[0].sig = STANDARD.encode(&changed);
            let err = verify(&e, &root).expect_err("a changed signature must fail");
            assert!(
                matches!(
                    err,
                    VerifyError::BadSignature { index: 0, .. }
                        | VerifyError::SignatureEncoding { index: 0, .. }
                ),
                "byte {i}: {err}"
            );
            assert!(err.to_string().starts_with("signature 0"), "{err}");
        }
    }
    // Not even base64.
    let mut e = env.clone();
    e.signatures[0].sig = "***".into();
    assert!(matches!(
        verify(&e, &root),
        Err(VerifyError::SignatureEncoding { index: 0, .. })
    ));
}

#[test]
fn every_changed_key_id_character_fails_as_an_unknown_key() {
    let (_, root, env) = setup();
    let id = env.signatures[0].keyid.clone();
    for i in 0..id.len() {
        let mut chars: Vec<char> = id.chars().collect();
        chars[i] = if chars[i] == '0' { '1' } else { '0' };
        let changed: String = chars.into_iter().collect();
        let mut e = env.clone();
        e.signatures[0].keyid = changed.clone();
        let err = verify(&e, &root).expect_err("a changed key id must fail");
        assert_eq!(
            err,
            VerifyError::UnknownKey {
                index: 0,
                key_id: changed
            }
        );
        assert!(err.to_string().contains("does not know"), "{err}");
    }
}

#[test]
fn a_changed_payload_type_fails() {
    let (_, root, mut env) = setup();
    env.payload_type = "application/json".into();
    let err = verify(&env, &root).unwrap_err();
    assert!(matches!(err, VerifyError::PayloadType { .. }));
    assert!(err.to_string().contains("payload type"), "{err}");
}

#[test]
fn a_revoked_key_fails_from_its_revocation_on() {
    let (key, mut root, env) = setup();
    // Revoked after the signature: still verifies (the signature predates the compromise).
    root.keys[0].revoked_at = Some(at(2026, 6, 15));
    verify(&env, &root).expect("signed before the revocation");
    // Revoked before the signature: fails, naming the key and the revocation.
    root.keys[0].revoked_at = Some(at(2026, 5, 1));
    let err = verify(&env, &root).unwrap_err();
    assert!(
        matches!(
            &err,
            VerifyError::KeyStatus {
                index: 0,
                reason: KeyStatusError::Revoked { .. }
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("revoked"), "{err}");
    assert!(err.to_string().contains(key.id().short()), "{err}");
}

#[test]
fn a_rotated_out_key_verifies_what_it_signed_inside_its_window_only() {
    let old = KeyPair::generate().unwrap();
    let new = KeyPair::generate().unwrap();
    let mut old_trusted = TrustedKey::for_key(old.public(), Purpose::Validator, at(2026, 1, 1));
    old_trusted.valid_until = Some(at(2026, 6, 10));
    let root = TrustRoot::new(vec![
        old_trusted,
        TrustedKey::for_key(new.public(), Purpose::Validator, at(2026, 6, 10)),
    ]);
    let before = Envelope::sign_statement(&statement("2026-06-01T00:00:00Z"), &old);
    verify(&before, &root).expect("signed inside the old key's window");
    let after = Envelope::sign_statement(&statement("2026-06-20T00:00:00Z"), &new);
    verify(&after, &root).expect("signed by the new key");
    let late = Envelope::sign_statement(&statement("2026-06-20T00:00:00Z"), &old);
    let err = verify(&late, &root).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::KeyStatus {
                reason: KeyStatusError::Expired { .. },
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_key_of_another_purpose_fails() {
    let (_, root, env) = setup();
    let err = env
        .verify(&root, Purpose::Release, at(2026, 7, 1))
        .unwrap_err();
    assert!(err.to_string().contains("validator key"), "{err}");
}

#[test]
fn a_different_artefact_fails_with_both_digests() {
    let (_, root, env) = setup();
    let st = verify(&env, &root).unwrap();
    check_artifact(&st, None, b"\0asm plugin bytes").expect("the attested artefact");
    let err = check_artifact(&st, None, b"\0asm other bytes").unwrap_err();
    assert!(matches!(err, VerifyError::DigestMismatch { .. }));
    assert!(err.to_string().contains("plugin.wasm"), "{err}");
}
