//! `stellar ledger` (verify, export, checkpoint). `verify --export` and `verify --proof` need
//! no database: they read files and call the `trust` crate.

use std::io::Write;
use std::path::Path;

use trust::keys::TrustRoot;
use trust::ledger::{ConsistencyBundle, Expect, InclusionBundle, Tail};

use super::args::LedgerCommand;
use super::{open, open_read_only, operator, read, short, trust_root};
use crate::services::ledger_store::LedgerStore;

pub async fn run(cmd: LedgerCommand) -> Result<(), String> {
    match cmd {
        LedgerCommand::Verify {
            db,
            export,
            proof,
            trust_root: root_path,
            checkpoints,
            origin,
            allow_unsigned_tail,
        } => {
            let root = trust_root(&root_path)?;
            let mut trusted = Vec::new();
            for path in &checkpoints {
                let note = read(path, "the checkpoint")?;
                let cp = trust::checkpoint::Checkpoint::verify_with_root(&note, &root)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                trusted.push((note, cp));
            }
            if let Some(path) = proof {
                return verify_proof(&path, &root, &trusted);
            }
            let (entries, notes, source) = match export {
                Some(path) => {
                    let (header, entries) = trust::ledger::read_export(&read(&path, "the export")?)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    if header.size != entries.len() as u64 {
                        return Err(format!(
                            "verification failed: the export header says {} entries but {} follow: the file was cut or extended",
                            header.size,
                            entries.len()
                        ));
                    }
                    (entries, header.checkpoints, path.display().to_string())
                }
                None => {
                    // Read only: no migrations, no writes.
                    let s = open_read_only(&db).await?;
                    let entries = s.ledger_store.all_entries().await.map_err(|e| e.detail());
                    let notes = s
                        .ledger_store
                        .checkpoint_notes()
                        .await
                        .map_err(|e| e.detail());
                    s.close().await;
                    (entries?, notes?, "the database".to_owned())
                }
            };
            let mut notes = notes;
            notes.extend(trusted.iter().map(|(note, _)| note.clone()));
            let expect = Expect {
                origin: &origin,
                unsigned_tail: if allow_unsigned_tail {
                    Tail::Allow
                } else {
                    Tail::Refuse
                },
            };
            let v = trust::ledger::verify(&entries, &notes, &root, &expect)
                .map_err(|e| format!("verification failed: {e}"))?;
            match v.checkpoint {
                Some(cp) => println!(
                    "verified {} entries from {source}: the hash chain is intact and they match {} signed checkpoint(s) of `{origin}`, the newest of size {}",
                    v.entries, v.checkpoints, cp.size
                ),
                None => println!(
                    "verified {} entries from {source}: the hash chain is intact",
                    v.entries
                ),
            }
            if v.unsigned > 0 {
                eprintln!(
                    "WARNING: {} entr{} after the newest signed checkpoint {} not covered by any signature (accepted because of --allow-unsigned-tail)",
                    v.unsigned,
                    if v.unsigned == 1 { "y" } else { "ies" },
                    if v.unsigned == 1 { "is" } else { "are" }
                );
            }
            Ok(())
        }
        LedgerCommand::Export { db, keys, out } => {
            let s = open(&db, &keys).await?;
            let result = export(&s.ledger_store, out.as_deref()).await;
            s.close().await;
            result
        }
        LedgerCommand::Checkpoint { db, keys } => {
            let s = open(&db, &keys).await?;
            let cp = s
                .ledger
                .checkpoint(&operator())
                .await
                .map_err(|e| e.detail());
            s.close().await;
            let cp = cp?.checkpoint;
            print!("{}", cp.note);
            eprintln!(
                "checkpoint of size {} signed by key {}",
                cp.size,
                short(&cp.key_id)
            );
            Ok(())
        }
    }
}

/// A proof must lead to (or, for consistency, start from or end at) every trusted checkpoint
/// given.
fn against_trusted(
    trusted: &[(String, trust::checkpoint::Checkpoint)],
    ends: &[&trust::checkpoint::Checkpoint],
) -> Result<(), String> {
    for (_, t) in trusted {
        if !ends.iter().any(|c| c.size == t.size && c.root == t.root) {
            return Err(match ends.iter().find(|c| c.size == t.size) {
                Some(_) => format!(
                    "verification failed: the proof's checkpoint of size {} has a different root from the trusted one: the ledger was rewritten and re-signed (a fork)",
                    t.size
                ),
                None => format!(
                    "verification failed: the proof does not involve the trusted checkpoint of size {}: ask for the proof at that size (`?size={}`, or a consistency proof from it)",
                    t.size, t.size
                ),
            });
        }
    }
    Ok(())
}

fn verify_proof(
    path: &Path,
    root: &TrustRoot,
    trusted: &[(String, trust::checkpoint::Checkpoint)],
) -> Result<(), String> {
    let text = read(path, "the proof")?;
    if let Ok(b) = serde_json::from_str::<InclusionBundle>(&text) {
        let cp = b
            .verify(root)
            .map_err(|e| format!("verification failed: {e}"))?;
        against_trusted(trusted, &[&cp])?;
        println!(
            "verified: entry {} ({} by {}) is in the ledger signed at size {} ({} proof hashes)",
            b.entry.seq,
            b.entry.action,
            b.entry.actor,
            cp.size,
            b.proof.len()
        );
        return Ok(());
    }
    if let Ok(b) = serde_json::from_str::<ConsistencyBundle>(&text) {
        let (old, new) = b
            .verify(root)
            .map_err(|e| format!("verification failed: {e}"))?;
        against_trusted(trusted, &[&old, &new])?;
        println!(
            "verified: the ledger of size {} is a prefix of the ledger of size {} ({} proof hashes)",
            old.size,
            new.size,
            b.proof.len()
        );
        return Ok(());
    }
    Err(format!(
        "{}: not an inclusion or consistency proof bundle (expected JSON from GET /api/v1/ledger/entries/SEQ/proof or /api/v1/ledger/proofs/consistency)",
        path.display()
    ))
}

/// Writes the JSON Lines export, a page at a time.
pub async fn export(ledger: &LedgerStore, out: Option<&Path>) -> Result<(), String> {
    let header = ledger.export_header().await.map_err(|e| e.detail())?;
    let mut sink: Box<dyn Write> = match out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).map_err(|e| format!("cannot write `{}`: {e}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let io = |e: std::io::Error| format!("cannot write the export: {e}");
    writeln!(
        sink,
        "{}",
        serde_json::to_string(&header).map_err(|e| e.to_string())?
    )
    .map_err(io)?;
    let mut from = 0;
    while from < header.size {
        let page = ledger.range(from, 5000).await.map_err(|e| e.detail())?;
        if page.is_empty() {
            break;
        }
        for e in page.iter().take_while(|e| e.seq < header.size) {
            writeln!(
                sink,
                "{}",
                serde_json::to_string(e).map_err(|e| e.to_string())?
            )
            .map_err(io)?;
        }
        from = page.last().map_or(header.size, |e| e.seq + 1);
    }
    sink.flush().map_err(io)
}
