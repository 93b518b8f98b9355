//! `stellar verify` and `stellar sign --offline`: no server, no database and no network; they
//! read files and call the `trust` crate, so that they run on an air-gapped machine.

use std::path::PathBuf;

use chrono::Utc;
use trust::dsse::{Envelope, Statement, check_artifact};
use trust::keys::KeyPair;
use trust::offline::SigningRequest;

use super::args::{SignArgs, VerifyArgs};
use super::{read, short, trust_root, write_out};
use crate::services::signing::purpose_for;

/// `stellar verify`: offline.
pub fn verify(args: VerifyArgs) -> Result<(), String> {
    let root = trust_root(&args.trust_root)?;
    let text = read(&args.envelope, "the envelope")?;
    let envelope =
        Envelope::from_json(&text).map_err(|e| format!("{}: {e}", args.envelope.display()))?;
    let purpose = match args.purpose {
        Some(p) => p,
        None => {
            // Read the (not yet trusted) predicate type only to choose the purpose; the
            // signature check that follows covers it.
            let predicate_type = envelope
                .payload_bytes()
                .ok()
                .and_then(|p| serde_json::from_slice::<Statement>(&p).ok())
                .map(|s| s.predicate_type);
            predicate_type
                .as_deref()
                .and_then(purpose_for)
                .ok_or_else(|| {
                    format!(
                        "the statement's predicate type {} is not one of Stellar's: say which key purpose must have signed it with --purpose",
                        predicate_type.map_or("(unreadable)".into(), |p| format!("`{p}`"))
                    )
                })?
        }
    };
    let statement = envelope
        .verify(&root, purpose, Utc::now())
        .map_err(|e| format!("verification failed: {e}"))?;
    let signers: Vec<String> = envelope
        .signatures
        .iter()
        .map(|s| short(&s.keyid).to_owned())
        .collect();
    println!(
        "verified: `{}` about {}, signed by {} key {}{}",
        statement.predicate_type,
        statement
            .subject
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        purpose,
        signers.join(", "),
        statement
            .signed_at()
            .map(|t| format!(" at {}", crate::services::timestamp(t)))
            .unwrap_or_default()
    );
    if let Some(path) = &args.artifact {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("cannot read the artefact `{}`: {e}", path.display()))?;
        check_artifact(&statement, args.subject.as_deref(), &bytes)
            .map_err(|e| format!("verification failed: {e}"))?;
        println!("artefact `{}` matches the attested digest", path.display());
    }
    Ok(())
}

/// `stellar sign --offline`: no server, no database, no network.
pub fn sign(args: SignArgs) -> Result<(), String> {
    if !args.offline {
        return Err(
            "the server signs online by itself; to sign a request file with a local key, pass --offline"
                .into(),
        );
    }
    let request = SigningRequest::from_json(&read(&args.request, "the request")?)
        .map_err(|e| format!("{}: {e}", args.request.display()))?;
    let passphrase = std::env::var("STELLAR_KEY_PASSPHRASE").ok();
    let key = KeyPair::from_pkcs8_pem(&read(&args.key, "the key")?, passphrase.as_deref())
        .map_err(|e| format!("{}: {e}", args.key.display()))?;
    let signed = request.sign(&key).map_err(|e| e.to_string())?;
    let out = args.out.unwrap_or_else(|| {
        let mut name = args.request.clone().into_os_string();
        name.push(".signed.json");
        PathBuf::from(name)
    });
    write_out(Some(&out), &format!("{}\n", signed.to_json()))?;
    eprintln!("signed {}\nwritten to {}", request.summary(), out.display());
    Ok(())
}
