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
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations, then exit.
    Migrate(DbArgs),
    /// Administer tenants, users and API tokens directly in the database.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Check, format, test and evaluate policy packs (offline).
    #[command(subcommand)]
    Policy(crate::policy_cli::PolicyCommand),
    /// Manage signing keys: generate, list, rotate, revoke, export the trust root.
    #[command(subcommand)]
    Key(crate::trust_cli::KeyCommand),
    /// Verify a DSSE envelope offline against a trust root (no server needed).
    Verify(crate::trust_cli::VerifyArgs),
    /// Sign an in-toto statement about a file with the active key of a purpose (queues a
    /// signing request when that key is offline).
    Attest(crate::trust_cli::AttestArgs),
    /// Signing requests for keys kept offline: list, export, import.
    #[command(subcommand)]
    SignRequest(crate::trust_cli::SignRequestCommand),
    /// Sign a request file with a local private key (`--offline`: no server, no network).
    Sign(crate::trust_cli::SignArgs),
    /// The audit ledger: verify, export, checkpoint.
    #[command(subcommand)]
    Ledger(crate::trust_cli::LedgerCommand),
    /// Plugin bundles: pack a plugin folder, make a publisher signing key.
    #[command(subcommand)]
    Plugin(crate::plugin_cli::PluginCommand),
    /// Submit a bundle to a Stellar server and print its verdict (exit 0 pass, 2 warn, 1 deny,
    /// 3 when it could not be judged).
    Submit(crate::plugin_cli::SubmitArgs),
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

/// Where private keys live, and how the ledger names itself.
#[derive(Debug, Clone, Args)]
pub struct KeyArgs {
    /// Directory of private key files (created 0700; files 0600). Keys registered in the
    /// database without a file here are offline: the server queues signing requests for them.
    #[arg(long, env = "STELLAR_KEY_DIR", default_value = "stellar-data/keys")]
    pub key_dir: PathBuf,

    /// Passphrase that encrypts the private key files (PKCS#8, scrypt + AES-256). Read from the
    /// environment only, so that it never shows in a process list.
    #[arg(skip = std::env::var("STELLAR_KEY_PASSPHRASE").ok())]
    pub key_passphrase: Option<String>,

    /// The ledger's name in its signed checkpoints (C2SP origin): use your host, such as
    /// `stellar.example.com/ledger`.
    #[arg(
        long,
        env = "STELLAR_LEDGER_ORIGIN",
        default_value = "stellar.local/ledger"
    )]
    pub ledger_origin: String,
}

/// Plugin intake and analysis.
#[derive(Debug, Clone, Args)]
pub struct AnalysisArgs {
    /// Largest bundle accepted, in bytes.
    #[arg(long, env = "STELLAR_MAX_BUNDLE_BYTES", default_value_t = 50 * 1024 * 1024)]
    pub max_bundle_bytes: u64,
    /// Most files in a bundle.
    #[arg(long, env = "STELLAR_MAX_BUNDLE_FILES", default_value_t = 1000)]
    pub max_bundle_files: usize,
    /// Largest total uncompressed size of a bundle's files, in bytes.
    #[arg(long, env = "STELLAR_MAX_UNCOMPRESSED_BYTES", default_value_t = 200 * 1024 * 1024)]
    pub max_uncompressed_bytes: u64,
    /// Largest ratio of uncompressed size to bundle size (compression bombs).
    #[arg(long, env = "STELLAR_MAX_COMPRESSION_RATIO", default_value_t = 100)]
    pub max_compression_ratio: u64,
    /// Name of this instance in job leases (default: a random id). Useful to tell instances
    /// apart when several serve one PostgreSQL.
    #[arg(long, env = "STELLAR_INSTANCE")]
    pub instance: Option<String>,
    /// Analysis workers in this instance (0: this instance only takes submissions).
    #[arg(long, env = "STELLAR_WORKERS", default_value_t = 2)]
    pub workers: usize,
    /// Attempts before a job that keeps failing ends as failed.
    #[arg(long, env = "STELLAR_JOB_ATTEMPTS", default_value_t = 3)]
    pub job_attempts: u32,
    /// Seconds a worker holds a job before another instance may take it over.
    #[arg(long = "job-lease", env = "STELLAR_JOB_LEASE", default_value_t = 60)]
    pub job_lease_secs: u64,
    /// Memory cap of the sandbox, in MiB, whatever a manifest asks for.
    #[arg(long, env = "STELLAR_SANDBOX_MAX_MEMORY_MB", default_value_t = 512)]
    pub sandbox_max_memory_mb: u64,
    /// Wall-clock cap of a sandbox run, in milliseconds.
    #[arg(long, env = "STELLAR_SANDBOX_MAX_TIMEOUT_MS", default_value_t = 10_000)]
    pub sandbox_max_timeout_ms: u64,
    /// Policy pack directory (`.spl` files). Default: the marketplace pack built in.
    #[arg(long, env = "STELLAR_POLICY_DIR")]
    pub policy_dir: Option<PathBuf>,
    /// Advisory list (TOML). Default: the list built in.
    #[arg(long, env = "STELLAR_ADVISORIES")]
    pub advisories: Option<PathBuf>,
    /// Host compatibility matrix (TOML). Default: the matrix built in.
    #[arg(long, env = "STELLAR_HOST_MATRIX")]
    pub host_matrix: Option<PathBuf>,
}

impl Default for AnalysisArgs {
    fn default() -> Self {
        AnalysisArgs {
            max_bundle_bytes: 50 * 1024 * 1024,
            max_bundle_files: 1000,
            max_uncompressed_bytes: 200 * 1024 * 1024,
            max_compression_ratio: 100,
            instance: None,
            workers: 2,
            job_attempts: 3,
            job_lease_secs: 60,
            sandbox_max_memory_mb: 512,
            sandbox_max_timeout_ms: 10_000,
            policy_dir: None,
            advisories: None,
            host_matrix: None,
        }
    }
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

    #[command(flatten)]
    pub keys: KeyArgs,

    #[command(flatten)]
    pub analysis: AnalysisArgs,

    /// Seconds between automatic ledger checkpoints (one is signed only if the ledger grew).
    #[arg(
        long = "checkpoint-interval",
        env = "STELLAR_CHECKPOINT_INTERVAL",
        default_value_t = 300
    )]
    pub checkpoint_interval_secs: u64,

    /// Seconds between automatic verifications of the whole ledger.
    #[arg(
        long = "verify-interval",
        env = "STELLAR_VERIFY_INTERVAL",
        default_value_t = 3600
    )]
    pub verify_interval_secs: u64,

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
