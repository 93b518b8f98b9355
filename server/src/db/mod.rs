//! The database: connecting to SQLite or PostgreSQL, migrations, readiness, and the entities.
//!
//! **Invariant:** every query goes through sea-orm so that the same code serves both backends;
//! where a backend-specific statement is unavoidable, it is chosen by [`Db::backend`].

pub mod entities;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use migrations::{Migrator, MigratorTrait};
use sea_orm::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, SqlxPostgresConnector,
    SqlxSqliteConnector, Statement,
};

/// A connection pool and what kind of database is behind it.
#[derive(Clone, Debug)]
pub struct Db {
    pub conn: DatabaseConnection,
    /// The SQLite file, to notice when it disappears.
    sqlite_path: Option<PathBuf>,
}

/// Why the server is not ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// The database cannot be reached; the detail (paths, driver text) is for the log only.
    Unreachable(String),
    /// This many migrations are not applied.
    Migrations(usize),
}

impl NotReady {
    /// What anyone may be told: nothing about paths, hosts or drivers.
    pub fn public(&self) -> String {
        match self {
            NotReady::Unreachable(_) => "database unreachable".into(),
            NotReady::Migrations(n) => {
                format!("{n} migration(s) not applied: run `stellar migrate`")
            }
        }
    }

    /// Everything, for the operator's log.
    pub fn detail(&self) -> String {
        match self {
            NotReady::Unreachable(d) => d.clone(),
            NotReady::Migrations(_) => self.public(),
        }
    }
}

/// Why the database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "unsupported database URL `{0}`: use `sqlite://PATH` or `postgres://USER@HOST[:PORT]/DB`"
    )]
    UnsupportedUrl(String),
    #[error("cannot create the directory `{path}` for the SQLite database: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the database at `{url}`: {source}")]
    Connect {
        url: String,
        source: sea_orm::sqlx::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(sea_orm::DbErr),
}

impl Db {
    /// Opens the database named by `url`, creating an SQLite file (and its directory) if missing.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        let redacted = redact(url);
        if let Some(path) = sqlite_path(url) {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| DbError::CreateDir {
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
            // The file is created once, here; the pool's connections never create it, so a
            // database file that disappears under a running server is reported (not ready),
            // not silently replaced by an empty one.
            if !path.exists() {
                use sea_orm::sqlx::ConnectOptions;
                let created = SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true)
                    .connect()
                    .await
                    .map_err(|source| DbError::Connect {
                        url: redacted.clone(),
                        source,
                    })?;
                let _ = sea_orm::sqlx::Connection::close(created).await;
            }
            let options = SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(false)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(|source| DbError::Connect {
                    url: redacted,
                    source,
                })?;
            Ok(Db {
                conn: SqlxSqliteConnector::from_sqlx_sqlite_pool(pool),
                sqlite_path: Some(path),
            })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url).map_err(|source| DbError::Connect {
                url: redacted.clone(),
                source,
            })?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(|source| DbError::Connect {
                    url: redacted,
                    source,
                })?;
            Ok(Db {
                conn: SqlxPostgresConnector::from_sqlx_postgres_pool(pool),
                sqlite_path: None,
            })
        } else {
            Err(DbError::UnsupportedUrl(redacted))
        }
    }

    /// SQLite or PostgreSQL.
    pub fn backend(&self) -> DatabaseBackend {
        self.conn.get_database_backend()
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), DbError> {
        Migrator::up(&self.conn, None)
            .await
            .map_err(DbError::Migrate)
    }

    /// Whether the database answers and its schema is current; why not when it is not.
    pub async fn readiness(&self) -> Result<(), NotReady> {
        if let Some(path) = &self.sqlite_path
            && !path.exists()
        {
            return Err(NotReady::Unreachable(format!(
                "the SQLite database file `{}` no longer exists",
                path.display()
            )));
        }
        let ping = Statement::from_string(self.backend(), "SELECT 1");
        self.conn
            .query_one_raw(ping)
            .await
            .map_err(|e| NotReady::Unreachable(format!("the database does not answer: {e}")))?;
        let pending = Migrator::get_pending_migrations(&self.conn)
            .await
            .map_err(|e| {
                NotReady::Unreachable(format!("the migration state cannot be read: {e}"))
            })?;
        if !pending.is_empty() {
            return Err(NotReady::Migrations(pending.len()));
        }
        Ok(())
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(self) {
        if let Err(e) = self.conn.close().await {
            tracing::warn!(error = %e, "closing the database pool failed");
        }
    }
}

/// The file of an SQLite URL: `sqlite://a/b.db`, `sqlite:///abs/b.db`, `sqlite:b.db`; query
/// parameters (`?mode=rwc`) are ignored.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let file = rest.split('?').next().unwrap_or_default();
    (!file.is_empty()).then(|| Path::new(file).to_path_buf())
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_path("sqlite://stellar-data/s.db"),
            Some("stellar-data/s.db".into())
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/s.db?mode=rwc"),
            Some("/tmp/s.db".into())
        );
        assert_eq!(sqlite_path("sqlite:s.db"), Some("s.db".into()));
        assert_eq!(sqlite_path("postgres://x/y"), None);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
