//! The Stellar server: HTTP API and portal, database, accounts, and the command line.
//!
//! **Boundary:** this crate is the only one that does IO. `app` reaches it through the
//! `PortalBackend` trait; `migrations` only describes the schema.

/// The process's allocator (see `Cargo.toml`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod fleet_sim;
pub mod http;
pub mod scheduler;
pub mod secrets;
pub mod seed;
pub mod services;
pub mod startup;
pub mod telemetry;
