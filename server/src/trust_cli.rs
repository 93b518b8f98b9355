//! The trust commands: `stellar key`, `stellar verify`, `stellar attest`, `stellar sign-request`,
//! `stellar sign --offline` and `stellar ledger`.
//!
//! `verify`, `sign --offline` and `ledger verify --export/--proof` need no server, no database
//! and no network: they read files and call the `trust` crate.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use trust::dsse::{Envelope, Statement, Subject, check_artifact};
use trust::keys::{KeyPair, Purpose, TrustRoot};
use trust::ledger::{ConsistencyBundle, InclusionBundle};
use trust::offline::{SignedRequest, SigningRequest};

use crate::cli::{DbArgs, KeyArgs};
use crate::db::Db;
use crate::services::keys::{KeyState, Keyring};
use crate::services::ledger::Ledger;
use crate::services::signing::{Attested, Signing, purpose_for};

fn parse_purpose(s: &str) -> Result<Purpose, String> {
    s.parse::<Purpose>().map_err(|_| {
        "expected one of: validator, release, pipeline-step, ledger-checkpoint".to_owned()
    })
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| "expected an RFC 3339 time such as 2026-11-28T12:00:00Z".to_owned())
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate and register a key for a purpose (if one is active already, rotate instead).
    Generate {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        keys: KeyArgs,
        /// validator, release, pipeline-step or ledger-checkpoint.
        #[arg(long, value_parser = parse_purpose)]
        purpose: Purpose,
        /// Keep the key offline: write the private key to this new file (mode 0600) instead of
        /// the key directory. The server then queues signing requests for it.
        #[arg(long)]
        offline_out: Option<PathBuf>,
    },
    /// List registered keys with their purpose, state and validity.
    List {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        keys: KeyArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Replace the active key of a purpose: the old key stops signing now and still verifies
    /// what it signed before.
    Rotate {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        keys: KeyArgs,
        #[arg(long, value_parser = parse_purpose)]
        purpose: Purpose,
        /// Keep the new key offline (see `generate`).
        #[arg(long)]
        offline_out: Option<PathBuf>,
    },
    /// Revoke a key: signatures dated at or after the revocation fail verification.
    Revoke {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        keys: KeyArgs,
        /// Key id, or its first 8+ hex digits.
        key: String,
        /// When the key stopped being trustworthy (RFC 3339; default now). Backdate it to the
        /// suspected compromise.
        #[arg(long, value_parser = parse_time)]
        at: Option<DateTime<Utc>>,
        /// Why (recorded in the ledger).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Write the trust root (every key, purpose and window) that offline verifiers need.
    TrustRoot {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        keys: KeyArgs,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `stellar verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The DSSE envelope (JSON).
    pub envelope: PathBuf,
    /// The trust root (from `stellar key trust-root` or `GET /api/v1/trust-root`).
    #[arg(long)]
    pub trust_root: PathBuf,
    /// Also check that this file is a subject of the statement (by sha256).
    #[arg(long)]
    pub artifact: Option<PathBuf>,
    /// With `--artifact`: the subject name it must match.
    #[arg(long)]
    pub subject: Option<String>,
    /// The purpose the signing key must have; inferred from Stellar's predicate types.
    #[arg(long, value_parser = parse_purpose)]
    pub purpose: Option<Purpose>,
}

/// `stellar attest`.
#[derive(Debug, Args)]
pub struct AttestArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    /// The artefact the statement is about.
    #[arg(long)]
    pub subject: PathBuf,
    /// The subject's name (default: the file name).
    #[arg(long)]
    pub name: Option<String>,
    /// The predicate type URI.
    #[arg(long)]
    pub predicate_type: String,
    /// A JSON file holding the predicate object (default `{}`).
    #[arg(long)]
    pub predicate: Option<PathBuf>,
    /// The key purpose; inferred from Stellar's predicate types.
    #[arg(long, value_parser = parse_purpose)]
    pub purpose: Option<Purpose>,
    /// Where to write the envelope when signed now (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum SignRequestCommand {
    /// List requests waiting for an offline signature.
    List {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Write a request file to carry to the offline signer.
    Export {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        keys: KeyArgs,
        /// The request id (see `list`).
        id: String,
        /// The request file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Import a signed request: the server verifies it and stores the attestation exactly as
    /// if it had signed online.
    Import {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        keys: KeyArgs,
        /// The signed request file from `stellar sign --offline`.
        file: PathBuf,
        /// Also write the resulting envelope here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `stellar sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// Sign a request file with a local key, without a server or network (the only mode: the
    /// server signs online by itself).
    #[arg(long)]
    pub offline: bool,
    /// The private key (PKCS#8 PEM; encrypted keys read `STELLAR_KEY_PASSPHRASE`).
    #[arg(long)]
    pub key: PathBuf,
    /// The request file from `stellar sign-request export`.
    pub request: PathBuf,
    /// The signed file to write (default: REQUEST with `.signed.json`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Verify the ledger offline against a trust root: an export file, a proof bundle, or
    /// (default) the database directly. Names the first bad entry.
    Verify {
        #[command(flatten)]
        db: DbArgs,
        /// A JSON Lines export (from `stellar ledger export` or `GET /api/v1/ledger/export`).
        #[arg(long, conflicts_with = "proof")]
        export: Option<PathBuf>,
        /// An inclusion or consistency proof bundle (JSON from the API).
        #[arg(long)]
        proof: Option<PathBuf>,
        /// The trust root holding the ledger-checkpoint keys.
        #[arg(long)]
        trust_root: PathBuf,
        /// A checkpoint you trust (a signed note saved earlier, or from a witness); repeatable.
        /// The ledger must match it too: a history rewritten and re-signed since is caught.
        #[arg(long = "checkpoint")]
        checkpoints: Vec<PathBuf>,
    },
    /// Write the whole ledger as JSON Lines: a header with every signed checkpoint, then one
    /// entry per line.
    Export {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        keys: KeyArgs,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Sign a checkpoint of the current ledger now.
    Checkpoint {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        keys: KeyArgs,
    },
}

/// Who a command-line action is recorded as: `cli:<operating-system user>`.
pub fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let user: String = user
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .take(64)
        .collect();
    format!("cli:{user}")
}

fn read(path: &Path, what: &str) -> Result<String, String> {
    const LIMIT: u64 = 512 * 1024 * 1024;
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {what} `{}`: {e}", path.display()))?;
    if meta.len() > LIMIT {
        return Err(format!(
            "{what} `{}` is larger than 512 MiB: refusing to read it",
            path.display()
        ));
    }
    std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {what} `{}`: {e}", path.display()))
}

fn write_out(out: Option<&Path>, text: &str) -> Result<(), String> {
    match out {
        Some(p) => {
            std::fs::write(p, text).map_err(|e| format!("cannot write `{}`: {e}", p.display()))
        }
        None => {
            let mut o = std::io::stdout().lock();
            o.write_all(text.as_bytes())
                .and_then(|()| o.flush())
                .map_err(|e| format!("cannot write to standard output: {e}"))
        }
    }
}

fn trust_root(path: &Path) -> Result<TrustRoot, String> {
    TrustRoot::from_json(&read(path, "the trust root")?)
        .map_err(|e| format!("{}: {e}", path.display()))
}

struct Services {
    db: Db,
    keys: Keyring,
    ledger: Ledger,
}

async fn open(db: &DbArgs, keys: &KeyArgs) -> Result<Services, String> {
    let d = Db::connect(&db.database_url)
        .await
        .map_err(|e| e.to_string())?;
    d.migrate().await.map_err(|e| e.to_string())?;
    Ok(Services {
        keys: Keyring::new(
            d.conn.clone(),
            keys.key_dir.clone(),
            keys.key_passphrase.clone(),
        ),
        ledger: Ledger::new(d.conn.clone(), keys.ledger_origin.clone()),
        db: d,
    })
}

fn short(id: &str) -> &str {
    &id[..id.len().min(16)]
}

pub async fn key(cmd: KeyCommand) -> Result<(), String> {
    let actor = cli_actor();
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
                .generate(
                    purpose,
                    offline_out.as_deref(),
                    &actor,
                    &s.ledger,
                    "requested",
                )
                .await
                .map_err(|e| e.to_string())?;
            s.db.close().await;
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
            let list = s.keys.list().await.map_err(|e| e.to_string())?;
            s.db.close().await;
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
                .rotate(purpose, offline_out.as_deref(), &actor, &s.ledger)
                .await
                .map_err(|e| e.to_string())?;
            s.db.close().await;
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
                .revoke(&key, at, &reason, &actor, &s.ledger)
                .await
                .map_err(|e| e.to_string())?;
            s.db.close().await;
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
            let root = s.keys.trust_root().await.map_err(|e| e.to_string())?;
            s.db.close().await;
            write_out(out.as_deref(), &format!("{}\n", root.to_json()))
        }
    }
}

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
    let signing = Signing::new(s.db.conn.clone(), s.keys.clone(), s.ledger.clone());
    let outcome = signing
        .attest(purpose, statement, &cli_actor(), None)
        .await
        .map_err(|e| e.to_string());
    s.db.close().await;
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
            let signing = Signing::new(s.db.conn.clone(), s.keys.clone(), s.ledger.clone());
            let list = signing.pending().await.map_err(|e| e.to_string());
            s.db.close().await;
            for r in list? {
                println!("{}  {}  key {}", r.id, r.summary(), short(&r.key_id));
            }
            Ok(())
        }
        SignRequestCommand::Export { db, keys, id, out } => {
            let s = open(&db, &keys).await?;
            let signing = Signing::new(s.db.conn.clone(), s.keys.clone(), s.ledger.clone());
            let r = signing.request(&id).await.map_err(|e| e.to_string());
            s.db.close().await;
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
            let signing = Signing::new(s.db.conn.clone(), s.keys.clone(), s.ledger.clone());
            let saved = signing
                .import(&signed, &cli_actor())
                .await
                .map_err(|e| e.to_string());
            s.db.close().await;
            let saved = saved?;
            if let Some(out) = out {
                write_out(Some(&out), &format!("{}\n", saved.envelope))?;
            }
            eprintln!(
                "signature verified: attestation {} stored for request {}",
                saved.id, signed.request_id
            );
            Ok(())
        }
    }
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

pub async fn ledger(cmd: LedgerCommand) -> Result<(), String> {
    match cmd {
        LedgerCommand::Verify {
            db,
            export,
            proof,
            trust_root: root_path,
            checkpoints,
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
                    let d = Db::connect(&db.database_url)
                        .await
                        .map_err(|e| e.to_string())?;
                    let l = Ledger::new(d.conn.clone(), "");
                    let entries = l.all_entries().await.map_err(|e| e.to_string());
                    let notes = l.checkpoint_notes().await.map_err(|e| e.to_string());
                    d.close().await;
                    (entries?, notes?, "the database".to_owned())
                }
            };
            let mut notes = notes;
            notes.extend(trusted.iter().map(|(note, _)| note.clone()));
            let v = trust::ledger::verify(&entries, &notes, &root)
                .map_err(|e| format!("verification failed: {e}"))?;
            match v.checkpoint {
                Some(cp) => println!(
                    "verified {} entries from {source}: the hash chain is intact and they match {} signed checkpoint(s), the newest of size {}",
                    v.entries, v.checkpoints, cp.size
                ),
                None => println!(
                    "verified {} entries from {source}: the hash chain is intact, but no signed checkpoint covers them yet (run `stellar ledger checkpoint`)",
                    v.entries
                ),
            }
            Ok(())
        }
        LedgerCommand::Export { db, keys, out } => {
            let s = open(&db, &keys).await?;
            let result = export(&s.ledger, out.as_deref()).await;
            s.db.close().await;
            result
        }
        LedgerCommand::Checkpoint { db, keys } => {
            let s = open(&db, &keys).await?;
            let cp = s
                .ledger
                .checkpoint(&s.keys)
                .await
                .map_err(|e| e.to_string());
            s.db.close().await;
            let cp = cp?;
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
pub async fn export(ledger: &Ledger, out: Option<&Path>) -> Result<(), String> {
    let header = ledger.export_header().await.map_err(|e| e.to_string())?;
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
        let page = ledger.range(from, 5000).await.map_err(|e| e.to_string())?;
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
