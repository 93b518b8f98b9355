//! Keys and attestations from the command line: generate, rotate, revoke; `stellar verify`
//! explaining failures; the offline signing round trip between processes that share only files.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestDb, spawn_on, stellar_cli, stellar_cli_env, test_config};

const VERDICT: &str = "https://stellar.dev/attestations/verdict/v1";
const RELEASE: &str = "https://stellar.dev/attestations/release/v1";

/// Runs `stellar` against the test database and key directory; asserts success.
fn ok(db: &TestDb, args: &[&str]) -> (String, String) {
    let (success, out, err) = run(db, args);
    assert!(success, "stellar {args:?} failed:\n{out}{err}");
    (out, err)
}

fn run(db: &TestDb, args: &[&str]) -> (bool, String, String) {
    let keys = db.dir.join("keys");
    let mut all: Vec<&str> = args.to_vec();
    all.extend([
        "--database-url",
        &db.url,
        "--key-dir",
        keys.to_str().unwrap(),
    ]);
    // Key files in the key directory are encrypted: every command that signs must open them.
    stellar_cli_env(
        &all,
        None,
        false,
        &[("STELLAR_KEY_PASSPHRASE", "key directory passphrase")],
    )
}

/// `stellar verify` with nothing but files (no database, no environment).
fn verify(envelope: &Path, root: &Path, artifact: Option<&Path>) -> (bool, String, String) {
    let mut args = vec![
        "verify".to_owned(),
        envelope.to_str().unwrap().to_owned(),
        "--trust-root".into(),
        root.to_str().unwrap().to_owned(),
    ];
    if let Some(a) = artifact {
        args.extend(["--artifact".into(), a.to_str().unwrap().to_owned()]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    stellar_cli(&refs, None, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_generate_rotate_and_revoke_and_verify_explains_every_failure() {
    let db = TestDb::new().await;
    let dir = db.dir.clone();
    let plugin = dir.join("plugin.wasm");
    std::fs::write(&plugin, b"\0asm plugin").unwrap();

    let (out, _) = ok(&db, &["key", "generate", "--purpose", "validator"]);
    let first = out.trim().to_owned();
    assert_eq!(first.len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let file = dir.join("keys").join(format!("{first}.pem"));
        let pem = std::fs::read_to_string(&file).unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "private key file mode");
        let mode = std::fs::metadata(dir.join("keys"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "key directory mode");
    }
    // A second active key for the same purpose is refused: rotate instead.
    let (success, _, err) = run(&db, &["key", "generate", "--purpose", "validator"]);
    assert!(!success);
    assert!(err.contains("key rotate"), "{err}");
    let (success, _, err) = run(&db, &["key", "generate", "--purpose", "janitor"]);
    assert!(!success);
    assert!(err.contains("validator, release"), "{err}");

    let a = dir.join("a.intoto.json");
    ok(
        &db,
        &[
            "attest",
            "--subject",
            plugin.to_str().unwrap(),
            "--predicate-type",
            VERDICT,
            "--out",
            a.to_str().unwrap(),
        ],
    );
    // Rotation: the new key signs; the old one still verifies what it signed.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (out, err) = ok(&db, &["key", "rotate", "--purpose", "validator"]);
    let second = out.trim().to_owned();
    assert_ne!(first, second);
    assert!(err.contains("retired"), "{err}");
    let b = dir.join("b.intoto.json");
    ok(
        &db,
        &[
            "attest",
            "--subject",
            plugin.to_str().unwrap(),
            "--predicate-type",
            VERDICT,
            "--out",
            b.to_str().unwrap(),
        ],
    );
    let b_env: Value = serde_json::from_str(&std::fs::read_to_string(&b).unwrap()).unwrap();
    assert_eq!(b_env["signatures"][0]["keyid"], second.as_str());

    let root = dir.join("root.json");
    ok(&db, &["key", "trust-root", "--out", root.to_str().unwrap()]);
    for env in [&a, &b] {
        let (success, out, err) = verify(env, &root, Some(&plugin));
        assert!(success, "{out}{err}");
        assert!(out.contains("verified"), "{out}");
        assert!(out.contains("matches the attested digest"), "{out}");
    }
    let (out, _) = ok(&db, &["key", "list"]);
    assert!(out.contains("retired") && out.contains("active"), "{out}");

    // Tampering, explained.
    let env: Value = serde_json::from_str(&std::fs::read_to_string(&a).unwrap()).unwrap();
    let tamper = |name: &str, change: &dyn Fn(&mut Value)| {
        let mut e = env.clone();
        change(&mut e);
        let path = dir.join(name);
        std::fs::write(&path, e.to_string()).unwrap();
        let (success, _, err) = verify(&path, &root, None);
        assert!(!success, "{name} must fail");
        err
    };
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let err = tamper("payload.json", &|e| {
        let mut p = b64.decode(e["payload"].as_str().unwrap()).unwrap();
        p[10] ^= 1;
        e["payload"] = b64.encode(p).into();
    });
    assert!(
        err.contains("signature 0") && err.contains("payload or the signature was changed"),
        "{err}"
    );
    let err = tamper("sig.json", &|e| {
        let mut s = b64
            .decode(e["signatures"][0]["sig"].as_str().unwrap())
            .unwrap();
        let last = s.len() - 1;
        s[last] ^= 1;
        e["signatures"][0]["sig"] = b64.encode(s).into();
    });
    assert!(err.contains("signature 0"), "{err}");
    let err = tamper("keyid.json", &|e| {
        let id = e["signatures"][0]["keyid"].as_str().unwrap().to_owned();
        let flipped = if id.starts_with('0') { "1" } else { "0" };
        e["signatures"][0]["keyid"] = format!("{flipped}{}", &id[1..]).into();
    });
    assert!(err.contains("trust root does not know"), "{err}");
    let err = tamper("type.json", &|e| e["payloadType"] = "text/plain".into());
    assert!(err.contains("payload type is `text/plain`"), "{err}");
    std::fs::write(dir.join("other.wasm"), b"other").unwrap();
    let (success, _, err) = verify(&a, &root, Some(&dir.join("other.wasm")));
    assert!(!success);
    assert!(err.contains("not the attested artefact"), "{err}");

    // Revoking the first key from before it signed `a` makes `a` fail; `b` still verifies.
    let valid_from = {
        let root_json: Value =
            serde_json::from_str(&std::fs::read_to_string(&root).unwrap()).unwrap();
        root_json["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["key_id"] == first.as_str())
            .unwrap()["valid_from"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    ok(
        &db,
        &[
            "key",
            "revoke",
            &first[..12],
            "--at",
            &valid_from,
            "--reason",
            "test compromise",
        ],
    );
    ok(&db, &["key", "trust-root", "--out", root.to_str().unwrap()]);
    let (success, _, err) = verify(&a, &root, None);
    assert!(!success);
    assert!(err.contains("revoked"), "{err}");
    let (success, out, err) = verify(&b, &root, None);
    assert!(success, "{out}{err}");
    let (success, _, err) = run(&db, &["key", "revoke", &first[..12]]);
    assert!(!success);
    assert!(err.contains("already revoked"), "{err}");
    let (success, _, err) = run(&db, &["key", "revoke", "abc"]);
    assert!(!success);
    assert!(err.contains("first 8 hex digits"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_signing_round_trip_between_processes_that_share_only_files() {
    let db = TestDb::new().await;
    let dir = db.dir.clone();
    // The offline machine: its own directory, nothing else.
    let offline = dir.join("offline-machine");
    std::fs::create_dir_all(&offline).unwrap();
    let release = dir.join("release.tar.gz");
    std::fs::write(&release, b"release bytes").unwrap();

    // The release key is generated for offline keeping, encrypted with a passphrase: only its
    // public half is registered.
    let key_file = offline.join("release-key.pem");
    let keys = db.dir.join("keys");
    let (success, out, err) = stellar_cli_env(
        &[
            "key",
            "generate",
            "--purpose",
            "release",
            "--offline-out",
            key_file.to_str().unwrap(),
            "--database-url",
            &db.url,
            "--key-dir",
            keys.to_str().unwrap(),
        ],
        None,
        false,
        &[("STELLAR_KEY_PASSPHRASE", "correct horse battery staple")],
    );
    assert!(success, "{out}{err}");
    let pem = std::fs::read_to_string(&key_file).unwrap();
    assert!(
        pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{pem}"
    );
    let (out, _) = ok(&db, &["key", "list"]);
    assert!(out.contains("offline"), "{out}");

    // Asking for a release attestation queues a signing request.
    let (out, err) = ok(
        &db,
        &[
            "attest",
            "--subject",
            release.to_str().unwrap(),
            "--predicate-type",
            RELEASE,
        ],
    );
    let id = out.trim().to_owned();
    assert!(err.contains("is offline"), "{err}");
    let (out, _) = ok(&db, &["sign-request", "list"]);
    assert!(out.contains(&id) && out.contains("release.tar.gz"), "{out}");
    let request = offline.join("request.json");
    ok(
        &db,
        &[
            "sign-request",
            "export",
            &id,
            "--out",
            request.to_str().unwrap(),
        ],
    );

    // A wrong key is refused on the offline machine.
    let stray = offline.join("stray.pem");
    let other = trust::keys::KeyPair::generate().unwrap();
    std::fs::write(&stray, other.to_pkcs8_pem(None).unwrap()).unwrap();
    let (success, _, err) = stellar_cli(
        &["sign", "--offline", "--key", "stray.pem", "request.json"],
        Some(&offline),
        true,
    );
    assert!(!success);
    assert!(err.contains("must be signed by key"), "{err}");
    let (success, _, err) = stellar_cli(
        &["sign", "--key", "stray.pem", "request.json"],
        Some(&offline),
        true,
    );
    assert!(!success);
    assert!(err.contains("--offline"), "{err}");

    // The signer: no database, no key directory, no server; only the passphrase.
    let sign = [
        "sign",
        "--offline",
        "--key",
        "release-key.pem",
        "request.json",
    ];
    let (success, _, err) = stellar_cli(&sign, Some(&offline), true);
    assert!(!success);
    assert!(err.contains("encrypted: give its passphrase"), "{err}");
    let (success, _, err) = stellar_cli_env(
        &sign,
        Some(&offline),
        true,
        &[("STELLAR_KEY_PASSPHRASE", "wrong")],
    );
    assert!(!success);
    assert!(err.contains("passphrase does not open"), "{err}");
    let (success, out, err) = stellar_cli_env(
        &sign,
        Some(&offline),
        true,
        &[("STELLAR_KEY_PASSPHRASE", "correct horse battery staple")],
    );
    assert!(success, "{out}{err}");
    assert!(
        err.contains("release.tar.gz"),
        "the signer is shown what it signs: {err}"
    );
    let signed = offline.join("request.json.signed.json");
    assert!(signed.is_file());

    // A signature over a changed payload is refused on import.
    let mut forged: Value =
        serde_json::from_str(&std::fs::read_to_string(&signed).unwrap()).unwrap();
    forged["envelope"]["payload"] = "e30=".into();
    let forged_file = dir.join("forged.json");
    std::fs::write(&forged_file, forged.to_string()).unwrap();
    let (success, _, err) = run(
        &db,
        &["sign-request", "import", forged_file.to_str().unwrap()],
    );
    assert!(!success);
    assert!(err.contains("not the payload of request"), "{err}");

    // Import: verified, stored like an online signature.
    let envelope = dir.join("release.intoto.json");
    let (_, err) = ok(
        &db,
        &[
            "sign-request",
            "import",
            signed.to_str().unwrap(),
            "--out",
            envelope.to_str().unwrap(),
        ],
    );
    assert!(err.contains("signature verified"), "{err}");
    let (success, _, err) = run(&db, &["sign-request", "import", signed.to_str().unwrap()]);
    assert!(!success);
    assert!(err.contains("already signed"), "{err}");

    let root = dir.join("root.json");
    ok(&db, &["key", "trust-root", "--out", root.to_str().unwrap()]);
    let (success, out, err) = verify(&envelope, &root, Some(&release));
    assert!(success, "{out}{err}");
    assert!(out.contains("release key"), "{out}");

    // The server sees the same attestation and ledger entries as for online signing.
    let mut config = test_config(&db);
    config.demo = true;
    let app = spawn_on(db, config).await;
    let admin = app.bearer(&app.token("admin").await);
    let page: Value = admin
        .get(app.url("/api/v1/ledger/entries?action=attestation.sign"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 1);
    let details = page["entries"][0]["details"].as_str().unwrap();
    assert!(
        details.contains("\"offline\":true") && details.contains(&id),
        "{details}"
    );
    let page: Value = admin
        .get(app.url("/api/v1/ledger/entries?action=signing-request.create"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 1);
    let res = admin
        .get(app.url("/api/v1/signing-requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap(), serde_json::json!([]));
    app.stop().await;
}
