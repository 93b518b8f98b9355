//! Services: the operations of Stellar, each authorizing its caller. HTTP handlers, server
//! functions and command-line verbs are thin layers over these.
//!
//! [`Services::open`] is the composition root: `stellar serve` and every verb that touches the
//! database build their services through it, from a validated [`ServicesConfig`], and nowhere
//! else.
//!
//! **Invariant:** every public method that reads or changes tenant data takes the caller's
//! [`Principal`](app::api::backend::Principal) and applies its scope; a partner asking for
//! another tenant's object gets `NotFound`, exactly as if it did not exist.

pub mod accounts;
pub mod audit;
pub mod keys;
pub mod ledger;
pub mod policy;
pub mod signing;
pub mod submissions;
pub mod throttle;

use app::error::AppError;
use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{DbErr, SqlErr};

use crate::config::ServicesConfig;
use crate::db::{Db, DbError};

/// Why the services could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the policy pack cannot be used: {0}")]
    Pack(String),
}

/// Every service, wired to one database.
#[derive(Clone, Debug)]
pub struct Services {
    pub db: Db,
    pub accounts: accounts::Accounts,
    pub ledger: ledger::Ledger,
    pub keys: keys::Keyring,
    pub signing: signing::Signing,
    pub audit: audit::Audit,
    pub submissions: submissions::Submissions,
}

impl Services {
    /// Connects to the database (migrating it if the configuration says so), loads the policy
    /// pack, and builds every service.
    pub async fn open(config: &ServicesConfig) -> Result<Services, OpenError> {
        let db = Db::connect(&config.database_url).await?;
        if config.migrate {
            db.migrate().await?;
        }
        let pack = policy::load(&config.analysis.pack).map_err(OpenError::Pack)?;
        let conn = db.conn.clone();
        let ledger = ledger::Ledger::new(conn.clone(), config.keys.ledger_origin.clone());
        let keys = keys::Keyring::new(
            conn.clone(),
            config.keys.key_dir.clone(),
            config.keys.passphrase.clone(),
        );
        let accounts = accounts::Accounts::new(conn.clone(), config.auth, ledger.clone());
        let signing = signing::Signing::new(conn.clone(), keys.clone(), ledger.clone());
        let submissions = submissions::Submissions::new(
            conn,
            ledger.clone(),
            signing.clone(),
            pack,
            config.analysis.clone(),
        );
        Ok(Services {
            audit: audit::Audit::new(ledger.clone(), keys.clone()),
            db,
            accounts,
            ledger,
            keys,
            signing,
            submissions,
        })
    }

    /// Closes the database pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.db.clone().close().await;
    }
}

/// Logs a database error and turns it into an error a caller can read.
pub(crate) fn db_error(err: DbErr) -> AppError {
    if let Some(SqlErr::UniqueConstraintViolation(detail)) = err.sql_err() {
        tracing::info!(%detail, "unique constraint violated");
        return AppError::conflict("that name is already taken: choose another");
    }
    tracing::error!(error = %err, "database error");
    AppError::internal(
        "the database could not complete the request: try again, and report the request id if it persists",
    )
}

/// RFC 3339 in UTC with second precision: how times travel.
pub(crate) fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}
