//! Signing keys: the public-key registry in the database and the private keys in the key
//! directory.
//!
//! Each key has one purpose and a validity window. At most one key per purpose is *active*
//! (valid from now on, with no end and not revoked): it signs. Rotation ends the active key's
//! window (`valid_until` = now) and starts a new key's; what the old key signed inside its window
//! still verifies. Revocation sets `revoked_at`: signatures dated at or after it fail.
//!
//! A key whose private half is not in the key directory is *offline*: the server cannot sign
//! with it and queues a signing request instead (see [`super::signing`]).
//!
//! **Invariant:** private key files are created with mode 0600 in a 0700 directory, never
//! overwritten, and are never stored in the database.
//!
//! **Invariant:** the trust root is pinned outside the database: every change to the registry
//! made here also writes `trust-root.json` in the key directory, and ledger verification reads
//! that file, never the registry it would be verifying. `ledger.pin` beside it holds the newest
//! checkpoint a verification accepted.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use app::error::AppError;
use chrono::{DateTime, Timelike, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
};
use serde::Serialize;
use trust::keys::{KeyId, KeyPair, PublicKey, Purpose, TrustRoot, TrustedKey};

use super::db_error;
use app::api::backend::Principal;
use app::authz::{Action, authorize};

use super::ledger_store::{LedgerStore as Ledger, Record};
use crate::db::entities::signing_key;
use crate::domain::Secret;

/// Where a key stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Signs new material.
    Active,
    /// Rotated out: verifies what it signed inside its window, signs nothing new.
    Retired,
    /// Revoked: signatures dated at or after the revocation fail.
    Revoked,
    /// Valid from a future time.
    Pending,
}

/// A registered key, as listed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyInfo {
    /// Hex sha256 of the DER SubjectPublicKeyInfo.
    pub key_id: String,
    /// `validator`, `release`, `pipeline-step` or `ledger-checkpoint`.
    pub purpose: String,
    pub state: KeyState,
    /// Whether this server holds the private key (otherwise it signs offline).
    pub online: bool,
    pub valid_from: String,
    pub valid_until: Option<String>,
    pub revoked_at: Option<String>,
    /// PEM SubjectPublicKeyInfo.
    pub public_key: String,
}

/// The purposes the server signs for by itself: if no key is active for one of these, a new
/// one is generated on first use, so that revoking a key never stops the service.
pub const ONLINE_PURPOSES: [Purpose; 3] = [
    Purpose::Validator,
    Purpose::LedgerCheckpoint,
    Purpose::PipelineStep,
];

/// How to sign for a purpose now.
#[derive(Clone)]
pub enum Signer {
    /// The private key is here.
    Online(Arc<KeyPair>),
    /// The private key is elsewhere: queue a signing request for this key.
    Offline { key_id: KeyId },
}

/// The key registry and the key directory.
#[derive(Clone)]
pub struct Keyring {
    conn: DatabaseConnection,
    dir: PathBuf,
    passphrase: Option<Secret>,
    cache: Arc<Mutex<HashMap<String, Arc<KeyPair>>>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring({})", self.dir.display())
    }
}

fn state_of(k: &signing_key::Model, now: DateTime<Utc>) -> KeyState {
    if k.revoked_at.is_some_and(|r| r <= now) {
        KeyState::Revoked
    } else if k.valid_from > now {
        KeyState::Pending
    } else if k.valid_until.is_some_and(|u| u <= now) {
        KeyState::Retired
    } else {
        KeyState::Active
    }
}

/// Now, to the second: key windows, checkpoint times and `signedAt` all have second
/// precision, so that a signature made in the same second a key became valid is inside its
/// window.
pub fn now_secs() -> DateTime<Utc> {
    let now = Utc::now();
    now.with_nanosecond(0).unwrap_or(now)
}

fn key_error(e: impl std::fmt::Display) -> AppError {
    AppError::internal(format!("key operation failed: {e}"))
}

/// Writes `text` to a new file readable only by its owner; refuses to overwrite.
pub fn write_private_file(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Replaces `path` with `text` atomically (a temporary file renamed over it), owner-only.
fn write_replacing(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    write_private_file(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Creates a directory readable only by its owner (if missing).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

impl Keyring {
    pub fn new(conn: DatabaseConnection, dir: PathBuf, passphrase: Option<Secret>) -> Self {
        Keyring {
            conn,
            dir,
            passphrase,
            cache: Arc::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, key_id: &str) -> PathBuf {
        self.dir.join(format!("{key_id}.pem"))
    }

    /// Every registered key, newest first.
    pub async fn list(&self, who: &Principal) -> Result<Vec<KeyInfo>, AppError> {
        authorize(who, Action::ReadKeys)?;
        self.list_all().await
    }

    pub(crate) async fn list_all(&self) -> Result<Vec<KeyInfo>, AppError> {
        let now = Utc::now();
        let rows = signing_key::Entity::find()
            .order_by_desc(signing_key::Column::ValidFrom)
            .order_by_desc(signing_key::Column::Id)
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|k| KeyInfo {
                state: state_of(&k, now),
                online: self.path_of(&k.key_id).is_file(),
                key_id: k.key_id,
                purpose: k.purpose,
                valid_from: super::timestamp(k.valid_from),
                valid_until: k.valid_until.map(super::timestamp),
                revoked_at: k.revoked_at.map(super::timestamp),
                public_key: k.public_pem,
            })
            .collect())
    }

    /// The trust root: every registered key with its purpose and window. This is public.
    pub async fn trust_root(&self) -> Result<TrustRoot, AppError> {
        let rows = signing_key::Entity::find()
            .order_by_asc(signing_key::Column::Id)
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        let mut keys = Vec::with_capacity(rows.len());
        for k in rows {
            let purpose: Purpose = k.purpose.parse().map_err(key_error)?;
            keys.push(TrustedKey {
                key_id: KeyId(k.key_id),
                purpose,
                public_key: k.public_pem,
                valid_from: k.valid_from,
                valid_until: k.valid_until,
                revoked_at: k.revoked_at,
            });
        }
        Ok(TrustRoot::new(keys))
    }

    fn pin_path(&self) -> PathBuf {
        self.dir.join("trust-root.json")
    }

    fn checkpoint_pin_path(&self) -> PathBuf {
        self.dir.join("ledger.pin")
    }

    /// Writes the registry's trust root to the key directory (after every change made here).
    async fn pin_root(&self) -> Result<TrustRoot, AppError> {
        let root = self.trust_root().await?;
        create_private_dir(&self.dir).map_err(|e| {
            key_error(format!(
                "cannot create the key directory `{}`: {e}",
                self.dir.display()
            ))
        })?;
        write_replacing(&self.pin_path(), &format!("{}\n", root.to_json()))
            .map_err(|e| key_error(format!("cannot pin the trust root: {e}")))?;
        Ok(root)
    }

    /// The trust root pinned in the key directory, and a note when it had to be pinned now
    /// (a key directory from before pinning existed: trust on first use, said out loud).
    pub async fn pinned_root(&self) -> Result<(TrustRoot, String), AppError> {
        match std::fs::read_to_string(self.pin_path()) {
            Ok(text) => TrustRoot::from_json(&text)
                .map(|r| (r, String::new()))
                .map_err(|e| {
                    key_error(format!(
                        "the pinned trust root `{}` is damaged: {e}",
                        self.pin_path().display()
                    ))
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(
                    path = %self.pin_path().display(),
                    "no pinned trust root: pinning the registry's keys now"
                );
                let root = self.pin_root().await?;
                Ok((
                    root,
                    "the trust root was not pinned yet and was pinned from the registry now".into(),
                ))
            }
            Err(e) => Err(key_error(format!(
                "cannot read the pinned trust root `{}`: {e}",
                self.pin_path().display()
            ))),
        }
    }

    /// The newest checkpoint a verification accepted, if any.
    pub fn pinned_checkpoint(&self) -> Result<Option<String>, AppError> {
        match std::fs::read_to_string(self.checkpoint_pin_path()) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(key_error(format!(
                "cannot read `{}`: {e}",
                self.checkpoint_pin_path().display()
            ))),
        }
    }

    /// Pins a checkpoint that a verification accepted.
    pub fn pin_checkpoint(&self, note: &str) -> Result<(), AppError> {
        create_private_dir(&self.dir)
            .and_then(|()| write_replacing(&self.checkpoint_pin_path(), note))
            .map_err(|e| key_error(format!("cannot pin the checkpoint: {e}")))
    }

    /// The active key for a purpose, if any.
    pub async fn active(&self, purpose: Purpose) -> Result<Option<signing_key::Model>, AppError> {
        let now = Utc::now();
        let rows = signing_key::Entity::find()
            .filter(signing_key::Column::Purpose.eq(purpose.as_str()))
            .order_by_desc(signing_key::Column::ValidFrom)
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .find(|k| state_of(k, now) == KeyState::Active))
    }

    /// Loads a private key from the key directory (cached).
    pub fn private(&self, key_id: &str) -> Result<Option<Arc<KeyPair>>, AppError> {
        if let Some(k) = self.cache.lock().ok().and_then(|c| c.get(key_id).cloned()) {
            return Ok(Some(k));
        }
        let path = self.path_of(key_id);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(key_error(format!("cannot read `{}`: {e}", path.display())));
            }
        };
        let pair = KeyPair::from_pkcs8_pem(&text, self.passphrase.as_ref().map(Secret::expose))
            .map_err(|e| key_error(format!("`{}`: {e}", path.display())))?;
        if pair.id().0 != key_id {
            return Err(key_error(format!(
                "`{}` holds key {}, not {key_id}: the key directory was tampered with",
                path.display(),
                pair.id()
            )));
        }
        let pair = Arc::new(pair);
        if let Ok(mut c) = self.cache.lock() {
            c.insert(key_id.to_owned(), pair.clone());
        }
        Ok(Some(pair))
    }

    /// How to sign for `purpose` now. For the online purposes a key is generated if none is
    /// active (recorded in the ledger as done by `system`).
    pub async fn signer(&self, purpose: Purpose, ledger: &Ledger) -> Result<Signer, AppError> {
        let active = match self.active(purpose).await? {
            Some(k) => k,
            None if ONLINE_PURPOSES.contains(&purpose) => {
                let (info, _) = self
                    .generate_as(purpose, None, "system", ledger, "no key was active")
                    .await?;
                return self
                    .private(&info.key_id)?
                    .map(Signer::Online)
                    .ok_or_else(|| key_error("the key just generated cannot be read back"));
            }
            None => {
                return Err(AppError::conflict(format!(
                    "no {purpose} key is active: run `stellar key generate --purpose {purpose}`"
                )));
            }
        };
        Ok(match self.private(&active.key_id)? {
            Some(k) => Signer::Online(k),
            None => Signer::Offline {
                key_id: KeyId(active.key_id),
            },
        })
    }

    /// Generates and registers a key for `purpose`, valid from now. The private key goes to the
    /// key directory, or to `offline_out` (a file path) for a key kept offline. Fails if a key
    /// is already active for the purpose (rotate instead).
    pub async fn generate(
        &self,
        who: &Principal,
        purpose: Purpose,
        offline_out: Option<&Path>,
        ledger: &Ledger,
    ) -> Result<(KeyInfo, PathBuf), AppError> {
        authorize(who, Action::ManageSigningKeys)?;
        self.generate_as(purpose, offline_out, &who.me.username, ledger, "requested")
            .await
    }

    async fn generate_as(
        &self,
        purpose: Purpose,
        offline_out: Option<&Path>,
        actor: &str,
        ledger: &Ledger,
        reason: &str,
    ) -> Result<(KeyInfo, PathBuf), AppError> {
        if let Some(k) = self.active(purpose).await? {
            return Err(AppError::conflict(format!(
                "key {} is already active for {purpose}: use `stellar key rotate --purpose {purpose}` to replace it",
                &k.key_id[..16]
            )));
        }
        let (info, path) = self.create(purpose, offline_out, now_secs()).await?;
        ledger
            .record(Record {
                actor: actor.to_owned(),
                tenant: None,
                action: "key.generate".into(),
                subject: info.key_id.clone(),
                details: serde_json::json!({
                    "purpose": purpose.as_str(),
                    "online": info.online,
                    "reason": reason,
                }),
            })
            .await?;
        self.pin_root().await?;
        Ok((info, path))
    }

    async fn create(
        &self,
        purpose: Purpose,
        offline_out: Option<&Path>,
        valid_from: DateTime<Utc>,
    ) -> Result<(KeyInfo, PathBuf), AppError> {
        let pair = KeyPair::generate().map_err(key_error)?;
        let key_id = pair.id().0;
        let pem = pair
            .to_pkcs8_pem(self.passphrase.as_ref().map(Secret::expose))
            .map_err(key_error)?;
        let path = match offline_out {
            Some(p) => p.to_path_buf(),
            None => {
                create_private_dir(&self.dir).map_err(|e| {
                    key_error(format!(
                        "cannot create the key directory `{}`: {e}",
                        self.dir.display()
                    ))
                })?;
                self.path_of(&key_id)
            }
        };
        write_private_file(&path, &pem).map_err(|e| {
            key_error(format!(
                "cannot write the private key to `{}`: {e} (an existing file is never overwritten)",
                path.display()
            ))
        })?;
        let now = Utc::now();
        let row = signing_key::ActiveModel {
            key_id: Set(key_id.clone()),
            purpose: Set(purpose.as_str().to_owned()),
            public_pem: Set(pair.public().to_pem()),
            valid_from: Set(valid_from),
            valid_until: Set(None),
            revoked_at: Set(None),
            created_at: Set(now),
            ..Default::default()
        };
        if let Err(e) = row.insert(&self.conn).await {
            let _ = std::fs::remove_file(&path);
            return Err(db_error(e));
        }
        Ok((
            KeyInfo {
                key_id,
                purpose: purpose.as_str().to_owned(),
                state: KeyState::Active,
                online: offline_out.is_none(),
                valid_from: super::timestamp(valid_from),
                valid_until: None,
                revoked_at: None,
                public_key: pair.public().to_pem(),
            },
            path,
        ))
    }

    /// Replaces the active key for `purpose` with a new one: the old key's window ends now.
    pub async fn rotate(
        &self,
        who: &Principal,
        purpose: Purpose,
        offline_out: Option<&Path>,
        ledger: &Ledger,
    ) -> Result<(Option<String>, KeyInfo, PathBuf), AppError> {
        authorize(who, Action::ManageSigningKeys)?;
        let actor = who.me.username.as_str();
        let now = now_secs();
        let old = self.active(purpose).await?;
        if let Some(old) = &old {
            let mut row = old.clone().into_active_model();
            row.valid_until = Set(Some(now));
            row.update(&self.conn).await.map_err(db_error)?;
        }
        let (info, path) = self.create(purpose, offline_out, now).await?;
        let old_id = old.map(|o| o.key_id);
        ledger
            .record(Record {
                actor: actor.to_owned(),
                tenant: None,
                action: "key.rotate".into(),
                subject: info.key_id.clone(),
                details: serde_json::json!({
                    "purpose": purpose.as_str(),
                    "replaces": old_id,
                    "online": info.online,
                }),
            })
            .await?;
        self.pin_root().await?;
        Ok((old_id, info, path))
    }

    /// Revokes a key from `at` (default now): signatures dated at or after it fail. `key` is a
    /// key id or an unambiguous prefix of at least 8 hex digits.
    pub async fn revoke(
        &self,
        who: &Principal,
        key: &str,
        at: Option<DateTime<Utc>>,
        reason: &str,
        ledger: &Ledger,
    ) -> Result<signing_key::Model, AppError> {
        authorize(who, Action::ManageSigningKeys)?;
        let actor = who.me.username.as_str();
        let row = self.find(key).await?;
        if row.revoked_at.is_some() {
            return Err(AppError::conflict(format!(
                "key {} is already revoked",
                &row.key_id[..16]
            )));
        }
        let at = at.unwrap_or_else(now_secs);
        let mut active = row.clone().into_active_model();
        active.revoked_at = Set(Some(at));
        if row.valid_until.is_none_or(|u| u > at) {
            active.valid_until = Set(Some(at));
        }
        let updated = active.update(&self.conn).await.map_err(db_error)?;
        if let Ok(mut c) = self.cache.lock() {
            c.remove(&row.key_id);
        }
        ledger
            .record(Record {
                actor: actor.to_owned(),
                tenant: None,
                action: "key.revoke".into(),
                subject: row.key_id.clone(),
                details: serde_json::json!({
                    "purpose": row.purpose,
                    "revoked_at": super::timestamp(at),
                    "reason": reason,
                }),
            })
            .await?;
        self.pin_root().await?;
        Ok(updated)
    }

    /// Looks a key up by id or unique prefix (≥ 8 hex digits).
    pub async fn find(&self, key: &str) -> Result<signing_key::Model, AppError> {
        find_key(&self.conn, key).await
    }
}

/// Looks a key up by id or unique prefix (≥ 8 hex digits).
pub async fn find_key<C: ConnectionTrait>(
    conn: &C,
    key: &str,
) -> Result<signing_key::Model, AppError> {
    let key = key.trim().to_ascii_lowercase();
    if key.len() < 8 || key.len() > 64 || !key.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(AppError::invalid(
            "key",
            "give a key id, or at least its first 8 hex digits (see `stellar key list`)",
        ));
    }
    let rows = signing_key::Entity::find()
        .filter(signing_key::Column::KeyId.starts_with(&key))
        .all(conn)
        .await
        .map_err(db_error)?;
    let n = rows.len();
    match (rows.into_iter().next(), n) {
        (None, _) => Err(AppError::not_found(format!(
            "no key id starts with `{key}`"
        ))),
        (Some(row), 1) => Ok(row),
        (Some(_), n) => Err(AppError::invalid(
            "key",
            format!("`{key}` matches {n} keys: give more digits"),
        )),
    }
}

/// Parses the public key of a registered key.
pub fn public_of(row: &signing_key::Model) -> Result<PublicKey, AppError> {
    PublicKey::from_pem(&row.public_pem).map_err(key_error)
}
