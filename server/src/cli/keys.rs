//! `stellar key` (generate, list, rotate, revoke, trust-root), `stellar attest` and
//! `stellar sign-request` (list, export, import): the key registry and attestations, through
//! the same services the server uses.

use trust::dsse::{Statement, Subject};
use trust::offline::SignedRequest;

use super::args::{AttestArgs, KeyCommand, SignRequestCommand};
use super::{open, operator, read, short, write_out};
use crate::services::keys::KeyState;
use crate::services::signing::{Attested, purpose_for};

pub async fn key(cmd: KeyCommand) -> Result<(), String> {
    let who = operator();
    match cmd {
        KeyCommand::Generate {
            db,
            keys,
            purpose,
            offline_out,
        } => {
            let s = open(&db, &keys).await?;
            let (info, path) = s
                .keys
                .generate(&who, purpose, offline_out.as_deref(), &s.ledger_store)
                .await
                .map_err(|e| e.detail())?;
            s.close().await;
            println!("{}", info.key_id);
            eprintln!(
                "generated {} key {} (private key: {}{})",
                purpose,
                short(&info.key_id),
                path.display(),
                if info.online { "" } else { "; keep it offline" }
            );
            Ok(())
        }
        KeyCommand::List { db, keys, json } => {
            let s = open(&db, &keys).await?;
            let list = s.keys.list(&who).await.map_err(|e| e.detail())?;
            s.close().await;
            if json {
                let text = serde_json::to_string_pretty(&list).map_err(|e| e.to_string())?;
                return write_out(None, &format!("{text}\n"));
            }
            println!(
                "{:<16}  {:<17}  {:<8}  {:<7}  {:<20}  {:<20}  REVOKED",
                "KEY ID", "PURPOSE", "STATE", "WHERE", "VALID FROM", "VALID UNTIL"
            );
            for k in list {
                let state = match k.state {
                    KeyState::Active => "active",
                    KeyState::Retired => "retired",
                    KeyState::Revoked => "revoked",
                    KeyState::Pending => "pending",
                };
                println!(
                    "{:<16}  {:<17}  {:<8}  {:<7}  {:<20}  {:<20}  {}",
                    short(&k.key_id),
                    k.purpose,
                    state,
                    if k.online { "online" } else { "offline" },
                    k.valid_from,
                    k.valid_until.unwrap_or_else(|| "-".into()),
                    k.revoked_at.unwrap_or_else(|| "-".into())
                );
            }
            Ok(())
        }
        KeyCommand::Rotate {
            db,
            keys,
            purpose,
            offline_out,
        } => {
            let s = open(&db, &keys).await?;
            let (old, info, path) = s
                .keys
                .rotate(&who, purpose, offline_out.as_deref(), &s.ledger_store)
                .await
                .map_err(|e| e.detail())?;
            s.close().await;
            println!("{}", info.key_id);
            match old {
                Some(old) => eprintln!(
                    "rotated {purpose}: {} retired (still verifies what it signed), {} active (private key: {})",
                    short(&old),
                    short(&info.key_id),
                    path.display()
                ),
                None => eprintln!(
                    "no {purpose} key was active; {} is now (private key: {})",
                    short(&info.key_id),
                    path.display()
                ),
            }
            Ok(())
        }
        KeyCommand::Revoke {
            db,
            keys,
            key,
            at,
            reason,
        } => {
            let s = open(&db, &keys).await?;
            let row = s
                .keys
                .revoke(&who, &key, at, &reason, &s.ledger_store)
                .await
                .map_err(|e| e.detail())?;
            s.close().await;
            eprintln!(
                "revoked {} key {} from {}: signatures dated from then on fail verification",
                row.purpose,
                short(&row.key_id),
                row.revoked_at
                    .map(crate::services::timestamp)
                    .unwrap_or_default()
            );
            if crate::services::keys::ONLINE_PURPOSES
                .iter()
                .any(|p| p.as_str() == row.purpose)
            {
                eprintln!(
                    "the server generates a new {} key when it next needs one; publish the new trust root",
                    row.purpose
                );
            }
            Ok(())
        }
        KeyCommand::TrustRoot { db, keys, out } => {
            let s = open(&db, &keys).await?;
            let root = s.keys.trust_root().await.map_err(|e| e.detail())?;
            s.close().await;
            write_out(out.as_deref(), &format!("{}\n", root.to_json()))
        }
    }
}

pub async fn attest(args: AttestArgs) -> Result<(), String> {
    let purpose = match args.purpose.or_else(|| purpose_for(&args.predicate_type)) {
        Some(p) => p,
        None => {
            return Err(format!(
                "`{}` is not one of Stellar's predicate types: say which key signs it with --purpose",
                args.predicate_type
            ));
        }
    };
    let bytes = std::fs::read(&args.subject)
        .map_err(|e| format!("cannot read `{}`: {e}", args.subject.display()))?;
    let name = args.name.clone().unwrap_or_else(|| {
        args.subject
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "artefact".into())
    });
    let predicate = match &args.predicate {
        Some(p) => serde_json::from_str(&read(p, "the predicate")?)
            .map_err(|e| format!("{}: not JSON: {e}", p.display()))?,
        None => serde_json::json!({}),
    };
    let statement = Statement::new(
        vec![Subject::of(name, &bytes)],
        &args.predicate_type,
        predicate,
    );
    let s = open(&args.db, &args.keys).await?;
    let outcome = s
        .signing
        .attest_for(&operator(), purpose, statement)
        .await
        .map_err(|e| e.detail());
    s.close().await;
    match outcome? {
        Attested::Signed(a) => {
            write_out(args.out.as_deref(), &format!("{}\n", a.envelope))?;
            eprintln!(
                "signed attestation {} with {} key {}",
                a.id,
                purpose,
                short(&a.key_id)
            );
        }
        Attested::Pending(r) => {
            println!("{}", r.id);
            eprintln!(
                "the active {purpose} key {} is offline: signing request {} waits; run `stellar sign-request export {} --out FILE`",
                short(&r.key_id),
                r.id,
                r.id
            );
        }
    }
    Ok(())
}

pub async fn sign_request(cmd: SignRequestCommand) -> Result<(), String> {
    match cmd {
        SignRequestCommand::List { db, keys } => {
            let s = open(&db, &keys).await?;
            let list = s.signing.pending(&operator()).await.map_err(|e| e.detail());
            s.close().await;
            for r in list? {
                println!("{}  {}  key {}", r.id, r.summary(), short(&r.key_id));
            }
            Ok(())
        }
        SignRequestCommand::Export { db, keys, id, out } => {
            let s = open(&db, &keys).await?;
            let r = s
                .signing
                .request(&operator(), &id)
                .await
                .map_err(|e| e.detail());
            s.close().await;
            let r = r?;
            write_out(Some(&out), &format!("{}\n", r.to_json()))?;
            eprintln!("{}\nwritten to {}", r.summary(), out.display());
            Ok(())
        }
        SignRequestCommand::Import {
            db,
            keys,
            file,
            out,
        } => {
            let signed = SignedRequest::from_json(&read(&file, "the signed request")?)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            let s = open(&db, &keys).await?;
            let saved = s
                .signing
                .import(&operator(), &signed)
                .await
                .map_err(|e| e.detail());
            s.close().await;
            let saved = saved?;
            match &saved.attestation {
                Some(a) => {
                    if let Some(out) = out {
                        write_out(Some(&out), &format!("{}\n", a.envelope))?;
                    }
                    eprintln!(
                        "signature verified: attestation {} stored for request {}",
                        a.id, signed.request_id
                    );
                }
                None => eprintln!(
                    "signature verified and stored for request {}{}",
                    signed.request_id,
                    saved
                        .waiter
                        .as_ref()
                        .map(|w| format!(" ({w} proceeds)"))
                        .unwrap_or_default()
                ),
            }
            Ok(())
        }
    }
}
