//! Services: the operations of Stellar, each authorizing its caller. HTTP handlers and server
//! functions are thin layers over these.
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
