//! The command line of the `stellar` binary as clap reads it: every verb, its raw flags (each
//! with a `STELLAR_*` environment equivalent where it configures a deployment), and nothing
//! else. [`crate::config`] turns them into validated configuration.
//!
//! **Boundary:** data only: this module imports nothing from the crate but two value types (the
//! log format, and `Secret`, so that a passphrase or token never prints, even here), so that
//! configuration (which checks these flags) and every verb can read it.

use std::net::SocketAddr;
use std::path::PathBuf;

use app::authz::Scope;
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use trust::keys::Purpose;

pub use crate::domain::Secret;
pub use crate::telemetry::LogFormat;

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
    Policy(PolicyCommand),
    /// Manage signing keys: generate, list, rotate, revoke, export the trust root.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Verify a DSSE envelope offline against a trust root (no server needed).
    Verify(VerifyArgs),
    /// Sign an in-toto statement about a file with the active key of a purpose (queues a
    /// signing request when that key is offline).
    Attest(AttestArgs),
    /// Signing requests for keys kept offline: list, export, import.
    #[command(subcommand)]
    SignRequest(SignRequestCommand),
    /// Sign a request file with a local private key (`--offline`: no server, no network).
    Sign(SignArgs),
    /// The audit ledger: verify, export, checkpoint.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Plugin bundles: pack a plugin folder, make a publisher signing key.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Submit a bundle to a Stellar server and print its verdict (exit 0 pass, 2 warn, 1 deny,
    /// 3 when it could not be judged).
    Submit(SubmitArgs),
    /// Releases on a Stellar server: create, list, show, approve, reject, abort, download.
    #[command(subcommand)]
    Release(ReleaseCommand),
    /// Verify a release's attestation folder offline (what `stellar release download` writes):
    /// the in-toto layout and links, the bundle on disk, the release statement.
    VerifyRelease(VerifyReleaseArgs),
    /// Pipeline specs: check a file offline; publish, show and list versions on a server.
    #[command(subcommand)]
    Pipeline(PipelineCommand),
    /// Rollouts: play a scenario against rollback rules offline.
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// The fleet: fleet tokens for hosts, and a simulated fleet over HTTP.
    #[command(subcommand)]
    Fleet(FleetCommand),
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
    #[arg(skip = std::env::var("STELLAR_KEY_PASSPHRASE").ok().and_then(Secret::new))]
    pub key_passphrase: Option<Secret>,

    /// The ledger's name in its signed checkpoints (C2SP origin): use your host, such as
    /// `stellar.example.com/ledger`.
    #[arg(
        long,
        env = "STELLAR_LEDGER_ORIGIN",
        default_value = "stellar.local/ledger"
    )]
    pub ledger_origin: String,
}

impl Default for KeyArgs {
    /// The flags' defaults (for verbs that take no key flags).
    fn default() -> Self {
        KeyArgs {
            key_dir: PathBuf::from("stellar-data/keys"),
            key_passphrase: std::env::var("STELLAR_KEY_PASSPHRASE")
                .ok()
                .and_then(Secret::new),
            ledger_origin: "stellar.local/ledger".into(),
        }
    }
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
    /// Rollback rules directory (`.spl` files with `facts rollout`): what judges every
    /// analysed rollout's intervals. Default: `policies/rollout`, built in.
    #[arg(long, env = "STELLAR_ROLLBACK_POLICY_DIR")]
    pub rollback_policy_dir: Option<PathBuf>,
    /// Days the fleet's health reports are kept before they are pruned.
    #[arg(long, env = "STELLAR_FLEET_REPORT_RETENTION_DAYS", default_value_t = crate::services::fleet::DEFAULT_RETENTION_DAYS)]
    pub fleet_report_retention_days: u32,
    /// Advisory list (TOML). Default: the list built in.
    #[arg(long, env = "STELLAR_ADVISORIES")]
    pub advisories: Option<PathBuf>,
    /// Host compatibility matrix (TOML). Default: the matrix built in.
    #[arg(long, env = "STELLAR_HOST_MATRIX")]
    pub host_matrix: Option<PathBuf>,
    /// Uploads read into memory at once; further uploads wait their turn (each may hold up to
    /// `--max-bundle-bytes`).
    #[arg(long, env = "STELLAR_MAX_CONCURRENT_UPLOADS", default_value_t = 4)]
    pub max_concurrent_uploads: usize,
    /// Submissions one tenant may have waiting for analysis at once (429 above).
    #[arg(long, env = "STELLAR_TENANT_MAX_QUEUED", default_value_t = 20)]
    pub tenant_max_queued: u64,
    /// Bundle bytes one tenant may have stored in all (413 above).
    #[arg(long, env = "STELLAR_TENANT_MAX_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub tenant_max_bytes: u64,
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
            rollback_policy_dir: None,
            fleet_report_retention_days: crate::services::fleet::DEFAULT_RETENTION_DAYS,
            advisories: None,
            host_matrix: None,
            max_concurrent_uploads: 4,
            tenant_max_queued: 20,
            tenant_max_bytes: 1024 * 1024 * 1024,
        }
    }
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

    /// The pipeline spec (TOML) that seeds version 1 when the database holds none; after that,
    /// publish versions with `stellar pipeline publish`. Default: the built-in spec (one
    /// reviewer approves, the release key signs, GA).
    #[arg(long, env = "STELLAR_PIPELINE")]
    pub pipeline: Option<PathBuf>,

    /// Seed demo tenants and users (idempotent). Demo passwords are public: never use on a real
    /// deployment.
    #[arg(long, env = "STELLAR_DEMO")]
    pub demo: bool,

    /// Run the scheduler's clock this many times faster than real time (1–3600), so that a
    /// rollout of hours plays in minutes with `stellar fleet simulate --time-scale`. For
    /// demonstrations only: session lifetimes and job leases run faster too.
    #[arg(long, env = "STELLAR_TIME_SCALE", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub time_scale: u32,

    /// When the scaled clock starts (RFC 3339; default: when the process starts). Give every
    /// instance of a deployment the same value so that their clocks agree across restarts.
    #[arg(long, env = "STELLAR_TIME_SCALE_SINCE", requires = "time_scale")]
    pub time_scale_since: Option<chrono::DateTime<chrono::Utc>>,

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

    /// Single sign-on: the OpenID provider's issuer URL (discovery reads
    /// `{issuer}/.well-known/openid-configuration`). Needs `--public-url` (the callback is
    /// `{public URL}/auth/oidc/callback`), `--oidc-client-id` and at least one `--oidc-role`;
    /// the client secret comes from `STELLAR_OIDC_CLIENT_SECRET` only.
    #[arg(long, env = "STELLAR_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,

    /// The client id Stellar is registered under at the provider.
    #[arg(long, env = "STELLAR_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,

    /// Scopes asked for (space-separated; `openid` is always asked for).
    #[arg(
        long,
        env = "STELLAR_OIDC_SCOPES",
        default_value = "openid profile email"
    )]
    pub oidc_scopes: String,

    /// The ID token claim that lists the user's groups.
    #[arg(long, env = "STELLAR_OIDC_GROUPS_CLAIM", default_value = "groups")]
    pub oidc_groups_claim: String,

    /// A group and the Stellar role it gives, `GROUP=ROLE` (repeat; the first group a user is
    /// in decides). A user in no mapped group is refused.
    #[arg(long = "oidc-role", env = "STELLAR_OIDC_ROLES", value_delimiter = ',')]
    pub oidc_roles: Vec<String>,

    /// The ID token claim that names a partner's tenant (its slug).
    #[arg(long, env = "STELLAR_OIDC_TENANT_CLAIM", default_value = "tenant")]
    pub oidc_tenant_claim: String,

    /// Seconds a single sign-on session lasts before the provider is asked again (at most the
    /// session lifetime): a user removed at the provider loses access within this time.
    #[arg(
        long = "oidc-session-ttl",
        env = "STELLAR_OIDC_SESSION_TTL",
        default_value_t = 3600
    )]
    pub oidc_session_ttl_secs: u64,

    /// What the sign-in page calls the provider ("Sign in with …").
    #[arg(long, env = "STELLAR_OIDC_LABEL", default_value = "single sign-on")]
    pub oidc_label: String,

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

    /// Who may sign in with a password: `all`, or `admins` only (break-glass, each use
    /// ledgered as `login.break_glass`) once everyone else signs in through single sign-on.
    #[arg(long, env = "STELLAR_LOCAL_SIGN_IN", value_enum, default_value_t = LocalSignIn::All)]
    pub local_sign_in: LocalSignIn,

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
    #[arg(long, env = "STELLAR_METRICS_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    pub metrics_token: Option<Secret>,

    /// Take the client address from `X-Forwarded-For` and the scheme from
    /// `X-Forwarded-Proto` (only behind a proxy that sets them). The client is the right-most
    /// address that is not one of `--trusted-proxy`.
    #[arg(long, env = "STELLAR_TRUST_PROXY")]
    pub trust_proxy: bool,

    /// Addresses or networks of the proxies in front of Stellar (`10.0.0.0/8`, `::1`);
    /// repeatable, or comma-separated in the environment. Default: loopback.
    #[arg(
        long = "trusted-proxy",
        env = "STELLAR_TRUSTED_PROXIES",
        value_delimiter = ',',
        default_value = "127.0.0.0/8,::1/128"
    )]
    pub trusted_proxies: Vec<String>,
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
        /// What the token may do: read, submit or admin; repeatable (default: all three).
        #[arg(long = "scope", value_parser = parse_scope)]
        scopes: Vec<Scope>,
    },
}

// ----- stellar policy -------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check policy files: syntax, types against the fact schema, and lints. Exits 1 on errors.
    Check {
        /// Policy files (`.spl`) or directories of them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Format policy files in place (or only check that they are formatted).
    Fmt {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Change nothing; exit 1 if a file is not formatted.
        #[arg(long)]
        check: bool,
    },
    /// Run the test blocks of a pack and report rule coverage. Exits 1 if a test fails.
    Test {
        /// The pack's directory, or its files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Evaluate a pack on facts. Exits 0 on pass, 2 on warn, 1 on deny.
    Eval {
        /// The pack's files or directory.
        #[arg(long = "policy", required = true, num_args = 1..)]
        policy: Vec<PathBuf>,
        /// The facts, as JSON (`-` for standard input).
        #[arg(long)]
        input: PathBuf,
        /// Also say, for every rule that did not fire, which condition stopped it.
        #[arg(long)]
        explain: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Print a fact schema as JSON Schema.
    Schema {
        /// Which facts: a submission's (what the marketplace pack judges) or a rollout
        /// interval's (what rollback rules judge, `facts rollout` in a pack's header).
        #[arg(long, value_enum, default_value_t = FactsKind::Submission)]
        facts: FactsKind,
    },
}

#[derive(Debug, Clone, Args)]
pub struct Common {
    /// `text` for people, `json` for tools.
    #[arg(long, value_enum, default_value = "text")]
    pub format: PolicyFormat,
    /// The date waivers are judged against (default: today, UTC).
    #[arg(long)]
    pub today: Option<NaiveDate>,
}

// ----- stellar plugin, stellar submit ----------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Build a bundle from a plugin folder (plugin.toml, the entry module or its `.wat`
    /// source, the SBOM, README, CHANGELOG), sign it, and check it as the server will.
    Pack {
        /// The plugin folder.
        dir: PathBuf,
        /// Where to write the bundle (`.tar.gz`).
        #[arg(short, long)]
        out: PathBuf,
        /// A publisher private key (PEM) to sign with; repeat for several signatures. The
        /// passphrase of an encrypted key is read from STELLAR_KEY_PASSPHRASE.
        #[arg(long = "sign")]
        sign: Vec<PathBuf>,
    },
    /// Make a publisher signing key pair: KEY.pem (private, 0600) and KEY.pub.pem (register
    /// it with `POST /api/v1/publisher-keys` or `stellar plugin register-key`).
    Keygen {
        /// Path of the private key to write; the public key goes next to it as `.pub.pem`.
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Register a publisher public key for your tenant on a server.
    RegisterKey {
        /// The public key (PEM), as `keygen` writes it.
        public_key: PathBuf,
        /// A label for the key.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Approve a registered publisher key (secops, administrators): from then on signatures
    /// by it count.
    ApproveKey {
        /// The key id, or its first 8+ hex digits.
        key: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Revoke a publisher key (its partner, secops, administrators): signatures by it no
    /// longer count.
    RevokeKey {
        /// The key id, or its first 8+ hex digits.
        key: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The Stellar server (`https://stellar.example.com`).
    #[arg(long, env = "STELLAR_SERVER")]
    pub server: String,
    /// An API token (`stl_…`), from the portal's API tokens page.
    #[arg(long, env = "STELLAR_TOKEN", hide_env_values = true)]
    pub token: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The bundle (`.tar.gz` or `.zip`), as `stellar plugin pack` writes it.
    pub bundle: PathBuf,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Seconds to wait for the verdict.
    #[arg(long, default_value_t = 120)]
    pub wait: u64,
    /// `text` for people; `json` for tools (the whole submission with its verdict); `sarif`
    /// (SARIF 2.1.0, for code-scanning tools) or `junit` (JUnit XML, for CI test reports).
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReportFormat,
    /// Write the report to this file instead of standard output (the exit status still says
    /// the decision).
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Also write the verdict as SARIF 2.1.0 to this file (whatever `--format` prints).
    #[arg(long)]
    pub sarif: Option<PathBuf>,
    /// Also write the verdict as JUnit XML to this file.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Where the plugin's folder is in your repository (`plugins/hello`): SARIF locations are
    /// relative to it, so that code scanning shows findings on your files.
    #[arg(long, default_value = ".")]
    pub source_root: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    Sarif,
    Junit,
}

// ----- releases and pipelines ------------------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// Release an accepted submission (pass or warn) through the pipeline that takes it.
    Create {
        /// The submission id.
        submission: String,
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
    },
    /// Releases you may see, newest first.
    List {
        #[arg(long)]
        plugin: Option<String>,
        /// pending, running, succeeded, rejected, aborted, superseded, failed, rolled_back.
        #[arg(long)]
        state: Option<String>,
        /// A tenant's slug (staff only).
        #[arg(long)]
        tenant: Option<String>,
        /// Only releases waiting for your decision.
        #[arg(long)]
        awaiting_me: bool,
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
    },
    /// One release: its stages, decisions and documents.
    Show {
        id: String,
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
    },
    /// Approve the approval stage the release waits at.
    Approve {
        id: String,
        /// Why (recorded).
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
    },
    /// Reject the approval stage the release waits at: the release ends.
    Reject {
        id: String,
        /// What must change (required).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
    },
    /// Stop a release in flight (platform, administrators).
    Abort {
        id: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
    },
    /// Steer a release's rollout (platform users): `promote` skips the rest of the hold,
    /// `pause`/`resume` stop and restart its analysis, `retry` starts a rolled-back release
    /// again, `yank` withdraws a GA version (hosts return to the version before it).
    #[command(name = "promote")]
    Promote(ControlArgs),
    #[command(name = "pause")]
    Pause(ControlArgs),
    #[command(name = "resume")]
    Resume(ControlArgs),
    #[command(name = "retry")]
    Retry(ControlArgs),
    #[command(name = "yank")]
    Yank(ControlArgs),
    /// Download a release's attestations and unpack them into a folder, ready for
    /// `in-toto-verify` or `stellar verify-release`.
    Download {
        id: String,
        /// The folder to create.
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// A rollout control on one release.
#[derive(Debug, Args)]
pub struct ControlArgs {
    pub id: String,
    /// Why (required; shown on the release and kept in the ledger).
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub server: ServerArgs,
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct VerifyReleaseArgs {
    /// The unpacked attestation folder.
    pub dir: PathBuf,
    /// The trust root you pinned (`stellar key trust-root`, `GET /api/v1/trust-root`): the
    /// release keys in it are the only ones the layout may be signed by.
    #[arg(long)]
    pub trust_root: PathBuf,
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Check a pipeline spec offline: every error with its line and column.
    Check {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
    },
    /// Publish a new version of the pipeline spec (platform, administrators).
    Publish {
        file: PathBuf,
        /// What changed and why (recorded in the ledger).
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
    },
    /// Print a version of the spec (default: the active one).
    Show {
        #[arg(long)]
        version: Option<i32>,
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
    },
    /// Every version, newest first.
    Versions {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
    },
}

// ----- keys, attestations, signing requests, offline signing, the ledger -----------------------

fn parse_secret(s: &str) -> Result<Secret, String> {
    Secret::new(s).ok_or_else(|| "must not be empty".to_owned())
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    Scope::parse(s).ok_or_else(|| "expected one of: read, submit, admin".to_owned())
}

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
        /// The ledger's name that every checkpoint must carry (the server's `--ledger-origin`).
        #[arg(
            long,
            env = "STELLAR_LEDGER_ORIGIN",
            default_value = "stellar.local/ledger"
        )]
        origin: String,
        /// Accept entries that no signed checkpoint covers yet (a warning instead of a
        /// failure). Without it, verification fails unless a checkpoint covers every entry.
        #[arg(long)]
        allow_unsigned_tail: bool,
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

/// The kinds of facts a policy pack may judge (`dsl::Schema::NAMES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FactsKind {
    Submission,
    Rollout,
}

impl FactsKind {
    pub fn schema(self) -> dsl::Schema {
        match self {
            FactsKind::Submission => dsl::Schema::submission(),
            FactsKind::Rollout => dsl::Schema::rollout(),
        }
    }
}

// ----- stellar fleet ---------------------------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Fleet tokens: what hosts poll the channel and report with (platform users).
    #[command(subcommand)]
    Token(FleetTokenCommand),
    /// Hosts by product version and region, and the stale ones.
    Show {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
    },
    /// Play N hosts over HTTP: they poll the channel, install what it names, and report the
    /// samples a scenario gives the version they run, one round per analysis interval.
    Simulate {
        /// The Stellar server.
        #[arg(long, env = "STELLAR_SERVER")]
        server: String,
        /// A group fleet token (`stf_…`, `stellar fleet token create --group …`).
        #[arg(long, env = "STELLAR_FLEET_TOKEN", hide_env_values = true)]
        token: String,
        /// How many hosts (1–100,000).
        #[arg(long, default_value_t = 200)]
        hosts: u32,
        /// The scenario (TOML, as `stellar rollout simulate` reads).
        #[arg(long)]
        scenario: PathBuf,
        /// The seed of the samples (default: the scenario's).
        #[arg(long)]
        seed: Option<u64>,
        /// Rounds run this many times faster than the scenario's interval; start the server
        /// with the same `--time-scale`.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=3600))]
        time_scale: u32,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Each request waits a random time up to this many milliseconds.
        #[arg(long, default_value_t = 200)]
        jitter_ms: u64,
        /// Rounds to play (default: the scenario's duration).
        #[arg(long)]
        rounds: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum FleetTokenCommand {
    /// Make a fleet token for one host (`--host`) or a group of hosts (`--group`); the secret
    /// is printed once.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, conflicts_with = "group")]
        host: Option<String>,
        #[arg(long)]
        group: Option<String>,
        #[arg(long)]
        expires_in_days: Option<u32>,
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
    },
    /// Every fleet token (never the secrets).
    List {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
    },
    /// Revoke a fleet token: its hosts are refused from their next request.
    Revoke {
        id: String,
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
    },
}

// ----- stellar rollout -------------------------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Play a rollout scenario (`examples/rollouts/`) against rollback rules without a server:
    /// the decision at each analysis interval and why. Exit 0 when the rollout ends as the
    /// scenario expects (or it expects nothing), 1 when it does not, 3 on a bad file.
    Simulate {
        /// The rollback rules: a pack directory or files with `facts rollout` in the header.
        #[arg(long, default_value = "policies/rollout")]
        policy: Vec<PathBuf>,
        /// The scenario file (TOML).
        #[arg(long)]
        scenario: PathBuf,
        /// The seed of the simulated samples (default: the scenario's).
        #[arg(long)]
        seed: Option<u64>,
        /// Draw the cohorts for this release id (to compare with a live rollout of it; default:
        /// the scenario's name).
        #[arg(long)]
        release: Option<String>,
        #[command(flatten)]
        common: Common,
    },
}

/// Who may sign in with a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LocalSignIn {
    /// Every local account.
    All,
    /// Administrators only (break-glass); everyone else uses single sign-on.
    Admins,
}
