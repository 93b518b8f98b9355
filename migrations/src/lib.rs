//! The database schema of Stellar, as an ordered list of sea-orm migrations.
//!
//! Migrations are written with sea-query's schema builder so that one definition serves SQLite
//! and PostgreSQL. They are append-only: a released migration is never edited; a change is a new
//! migration. `stellar serve` applies pending migrations at start-up (unless told not to) and
//! `stellar migrate` applies them alone.

pub use sea_orm_migration::prelude::*;

mod m0001_accounts;
mod m0002_trust;
mod m0003_submissions;
mod m0004_hardening;
mod m0005_releases;
mod m0006_fleet;
mod m0007_sso;

/// Runs Stellar's migrations in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_accounts::Migration),
            Box::new(m0002_trust::Migration),
            Box::new(m0003_submissions::Migration),
            Box::new(m0004_hardening::Migration),
            Box::new(m0005_releases::Migration),
            Box::new(m0006_fleet::Migration),
            Box::new(m0007_sso::Migration),
        ]
    }
}
