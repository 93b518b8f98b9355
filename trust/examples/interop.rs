//! Writes a signed DSSE envelope and tampered copies for the independent verifiers
//! (`tests/interop/verify_dsse.py`): `cargo run -p stellar-trust --example interop -- DIR`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fixture generator"
)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use trust::dsse::{Envelope, Statement, Subject};
use trust::keys::KeyPair;

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("output directory"));
    std::fs::create_dir_all(&dir).expect("dir");
    let key = KeyPair::generate().expect("key");
    let statement = Statement::new(
        vec![Subject::of("bundle.tar.gz", b"plugin bytes")],
        "https://stellar.dev/attestations/verdict/v1",
        serde_json::json!({"decision": "pass", "signedAt": "2026-11-28T12:00:00Z"}),
    );
    let env = Envelope::sign_statement(&statement, &key);
    std::fs::write(dir.join("key.pub"), key.public().to_pem()).expect("write");
    std::fs::write(dir.join("keyid"), key.id().0).expect("write");
    std::fs::write(dir.join("valid.json"), env.to_json()).expect("write");

    // One changed byte in the payload (decoded, changed, re-encoded: still valid base64).
    let mut payload = STANDARD.decode(&env.payload).expect("b64");
    let i = payload.len() / 2;
    payload[i] ^= 0x01;
    let mut t = env.clone();
    t.payload = STANDARD.encode(&payload);
    std::fs::write(dir.join("tampered-payload.json"), t.to_json()).expect("write");

    // One changed byte in the signature.
    let mut sig = STANDARD.decode(&env.signatures[0].sig).expect("b64");
    let j = sig.len() - 3;
    sig[j] ^= 0x01;
    let mut t = env.clone();
    t.signatures[0].sig = STANDARD.encode(&sig);
    std::fs::write(dir.join("tampered-signature.json"), t.to_json()).expect("write");

    // A changed key id.
    let mut t = env.clone();
    let mut id = t.signatures[0].keyid.clone().into_bytes();
    id[0] = if id[0] == b'a' { b'b' } else { b'a' };
    t.signatures[0].keyid = String::from_utf8(id).expect("utf8");
    std::fs::write(dir.join("tampered-keyid.json"), t.to_json()).expect("write");

    // No signature at all: an envelope nobody signed must not pass as verified.
    let mut t = env.clone();
    t.signatures.clear();
    std::fs::write(dir.join("unsigned.json"), t.to_json()).expect("write");

    // A signed ledger checkpoint (C2SP signed note), and a forged one (size changed).
    let cp = trust::checkpoint::Checkpoint {
        origin: "stellar.example/ledger".into(),
        size: 1234,
        root: trust::merkle::leaf_hash(b"root"),
        time: None,
    };
    let note = cp.sign("stellar.example/ledger", &key);
    std::fs::write(dir.join("checkpoint.txt"), &note).expect("write");
    std::fs::write(
        dir.join("checkpoint-forged.txt"),
        note.replacen("\n1234\n", "\n1235\n", 1),
    )
    .expect("write");
    println!("wrote envelopes and checkpoints for key {}", key.id());
}
