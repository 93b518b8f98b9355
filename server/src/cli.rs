//! The command line of the `stellar` binary: raw flags, each with a `STELLAR_*` environment
//! equivalent. [`crate::config`] turns them into validated configuration.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Stellar: trusted delivery and governance for the plugin marketplace.
#[derive(Debug, Parser)]
#[command(name = "stellar", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: portal, API and metrics.
    Serve(ServeArgs),
    /// Apply pending database migrations, then exit.
    Migrate(DbArgs),
    /// Administer tenants, users and API tokens directly in the database.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Check, format, test and evaluate policy packs (offline).
    #[command(subcommand)]
    Policy(crate::policy_cli::PolicyCommand),
}

/// Where the database is.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// Database URL: `sqlite://PATH` or `postgres://USER@HOST/DB`. The default SQLite file is
    /// created if missing.
    #[arg(
        long,
        env = "STELLAR_DATABASE_URL",
        default_value = "sqlite://stellar-data/stellar.db"
    )]
    pub database_url: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// For people: one coloured line per event.
    Human,
    /// For machines: one JSON object per line.
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "STELLAR_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    #[command(flatten)]
    pub db: DbArgs,

    /// Seed demo tenants and users (idempotent). Demo passwords are public: never use on a real
    /// deployment.
    #[arg(long, env = "STELLAR_DEMO")]
    pub demo: bool,

    /// Do not apply pending migrations at start-up (run `stellar migrate` instead). The server
    /// reports not ready until the schema is current.
    #[arg(long, env = "STELLAR_SKIP_MIGRATIONS")]
    pub skip_migrations: bool,

    /// Log format.
    #[arg(long, env = "STELLAR_LOG_FORMAT", value_enum, default_value = "human")]
    pub log_format: LogFormat,

    /// Log filter, in `tracing` env-filter syntax (`info`, `stellar=debug,info`).
    #[arg(long, env = "STELLAR_LOG", default_value = "info")]
    pub log: String,

    /// Directory holding the compiled portal assets (`pkg/stellar.js`, `.wasm`, `.css`).
    #[arg(long, env = "STELLAR_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// The URL people use to reach this server. An `https://` URL makes cookies `Secure`; its
    /// origin is the only one accepted on state-changing requests.
    #[arg(long, env = "STELLAR_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Absolute lifetime of a portal session, in seconds.
    #[arg(long = "session-ttl", env = "STELLAR_SESSION_TTL", default_value_t = 12 * 3600)]
    pub session_ttl_secs: u64,

    /// A session unused for this many seconds ends.
    #[arg(long = "session-idle", env = "STELLAR_SESSION_IDLE", default_value_t = 2 * 3600)]
    pub session_idle_secs: u64,

    /// Failed sign-ins for one username (or from one address, times ten) before sign-in is
    /// locked for that name or address.
    #[arg(long, env = "STELLAR_LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: u32,

    /// Seconds the first lock lasts; each further failure while locked doubles it (up to a day).
    #[arg(
        long = "login-lockout",
        env = "STELLAR_LOGIN_LOCKOUT",
        default_value_t = 60
    )]
    pub login_lockout_secs: u64,

    /// Largest accepted request body, in bytes (uploads have their own limit).
    #[arg(long, env = "STELLAR_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// A request whose header fields total more than this many bytes is refused with 431.
    #[arg(long, env = "STELLAR_MAX_HEADER_BYTES", default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,

    /// Seconds a request may take before it is answered 503.
    #[arg(
        long = "request-timeout",
        env = "STELLAR_REQUEST_TIMEOUT",
        default_value_t = 30
    )]
    pub request_timeout_secs: u64,

    /// If set, `/metrics` requires `Authorization: Bearer <this>`.
    #[arg(long, env = "STELLAR_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Take the client address from `X-Forwarded-For` and the scheme from
    /// `X-Forwarded-Proto` (only behind a proxy that sets them).
    #[arg(long, env = "STELLAR_TRUST_PROXY")]
    pub trust_proxy: bool,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a tenant.
    CreateTenant {
        #[command(flatten)]
        db: DbArgs,
        /// URL-safe identifier: lowercase letters, digits, `-`.
        #[arg(long)]
        slug: String,
        /// Display name.
        #[arg(long)]
        name: String,
    },
    /// Create a user. The password is read from standard input when `--password-stdin` is
    /// given; otherwise a random one is generated and printed once.
    CreateUser {
        #[command(flatten)]
        db: DbArgs,
        /// Login name.
        #[arg(long)]
        username: String,
        /// partner, reviewer, secops, platform or admin.
        #[arg(long)]
        role: String,
        /// Tenant slug; required for partners.
        #[arg(long)]
        tenant: Option<String>,
        /// Display name; defaults to the username.
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Create an API token for a user and print it (shown once).
    CreateToken {
        #[command(flatten)]
        db: DbArgs,
        /// The user the token acts as.
        #[arg(long)]
        user: String,
        /// What the token is for.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Days until the token expires; it lasts until revoked if omitted.
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
}
