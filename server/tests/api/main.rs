//! Integration tests: the real server on a free port with a fresh database, driven over HTTP.
//!
//! The database is SQLite by default; with `STELLAR_TEST_DATABASE_URL=postgres://…/postgres`
//! every test gets its own fresh PostgreSQL database, dropped afterwards.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

mod authz;
mod cli;
mod errors;
mod fleet;
mod health;
mod helpers;
mod keys;
mod ledger;
mod releases;
mod scheduler;
mod security;
mod sessions;
mod submissions;
mod tokens;
