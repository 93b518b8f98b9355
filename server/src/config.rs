//! Validated configuration, built once from the raw flags ([`crate::cli::args`]) and passed
//! explicitly to [`crate::services::Services::open`] and the HTTP layer.
//!
//! **Boundary:** data only, and every value checked: a flag that cannot work is refused here
//! with its name and what would work, before anything opens a database or a socket. Reading the
//! files a flag names (the advisory list, the host matrix) is part of checking it. Secrets are
//! [`Secret`]s, which never print.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use crate::cli::args::{AnalysisArgs, DbArgs, KeyArgs, ServeArgs};
use crate::clock::Clock;
pub use crate::domain::Secret;
use crate::telemetry::LogFormat;

/// Everything `stellar serve` needs, checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub services: ServicesConfig,
    pub http: HttpConfig,
    pub schedule: ScheduleConfig,
    /// The pipeline spec that seeds version 1 when none is stored.
    pub pipeline: PipelineSeed,
    /// Seed the demo tenants and users.
    pub demo: bool,
    /// With `demo`: also judge the example plugins (tests that need an empty queue turn this
    /// off).
    pub demo_submissions: bool,
    /// With `demo_submissions`: also release the accepted ones (GA, waiting for review,
    /// rejected) and add a freeze window (tests that start from unreleased versions turn this
    /// off).
    pub demo_releases: bool,
    pub log_format: LogFormat,
    pub log: String,
    /// This instance's name in job leases.
    pub instance: String,
    /// Analysis workers in this instance.
    pub workers: usize,
}

/// The pipeline spec `serve` seeds the database with, checked.
#[derive(Debug, Clone)]
pub struct PipelineSeed {
    pub source: String,
    /// Where it came from (the file, or `built-in`), for the ledger.
    pub origin: String,
}

impl PipelineSeed {
    pub fn from_file(path: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(PipelineSeed {
                source: delivery::spec::DEFAULT_SPEC.to_owned(),
                origin: "built-in".into(),
            });
        };
        let source = std::fs::read_to_string(path)
            .map_err(|e| invalid("pipeline", format!("cannot read {}: {e}", path.display())))?;
        if let Err(errors) = delivery::spec::parse(&source) {
            let lines: Vec<String> = errors
                .iter()
                .map(|e| format!("{}:{e}", path.display()))
                .collect();
            return Err(invalid(
                "pipeline",
                format!("the spec is not valid:\n  {}", lines.join("\n  ")),
            ));
        }
        Ok(PipelineSeed {
            source,
            origin: path.display().to_string(),
        })
    }
}

/// What [`crate::services::Services::open`] needs: the database, the keys and the settings of
/// each service. `serve` and every verb that touches the database build one.
#[derive(Debug, Clone)]
pub struct ServicesConfig {
    pub database_url: String,
    /// Apply pending migrations when opening.
    pub migrate: bool,
    pub keys: KeyConfig,
    pub auth: AuthSettings,
    pub analysis: AnalysisConfig,
    /// Single sign-on, when configured.
    pub sso: Option<crate::services::sso::SsoSettings>,
    /// The clock of background work: the system's, or one tests move (see [`Clock`]).
    pub clock: Clock,
}

/// The private-key directory and the ledger's name.
#[derive(Debug, Clone)]
pub struct KeyConfig {
    pub key_dir: PathBuf,
    pub passphrase: Option<Secret>,
    /// The ledger's name in its signed checkpoints.
    pub ledger_origin: String,
}

/// Session and sign-in settings.
#[derive(Debug, Clone, Copy)]
pub struct AuthSettings {
    pub session_ttl: Duration,
    pub session_idle: Duration,
    pub throttle: ThrottleLimits,
    /// Who may sign in with a password.
    pub local_sign_in: crate::cli::args::LocalSignIn,
}

/// Sign-in throttling.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleLimits {
    /// Failures within the window before a username is locked (ten times this for an
    /// address).
    pub max_failures: u32,
    /// How long the first lock lasts.
    pub lockout: Duration,
}

/// Where the active policy pack comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackSource {
    /// The marketplace pack built into the binary.
    BuiltIn,
    /// A directory of `.spl` files.
    Dir(PathBuf),
}

/// What one tenant may hold at once.
#[derive(Debug, Clone, Copy)]
pub struct TenantQuotas {
    /// Submissions waiting for analysis.
    pub max_queued: u64,
    /// Bundle bytes stored, all submissions together.
    pub max_bytes: u64,
}

/// Intake and analysis settings.
#[derive(Debug, Clone)]
pub struct AnalysisConfig {
    pub limits: plugin::Limits,
    pub caps: plugin::sandbox::Caps,
    pub advisories: Vec<plugin::sbom::Advisory>,
    pub hosts: Vec<semver::Version>,
    pub max_attempts: u32,
    pub lease: Duration,
    pub pack: PackSource,
    /// The rollback rules' directory (default: built in).
    pub rollback_pack: Option<PathBuf>,
    /// Days fleet health reports are kept.
    pub fleet_retention_days: u32,
    /// Uploads buffered in memory at once.
    pub max_concurrent_uploads: usize,
    /// How long an upload waits for its turn to be read before it is refused (429).
    pub upload_wait: Duration,
    pub quotas: TenantQuotas,
}

/// The HTTP layer's settings.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub addr: SocketAddr,
    pub site_root: PathBuf,
    /// The public origin (`scheme://host[:port]`), when configured.
    pub public_origin: Option<String>,
    /// Cookies carry `Secure` (and the `__Host-` prefix).
    pub secure_cookies: bool,
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    pub request_timeout: Duration,
    pub metrics_token: Option<Secret>,
    pub proxy: ProxyConfig,
}

/// Whether and which proxies are believed about the client address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Read `X-Forwarded-For` / `X-Forwarded-Proto` at all.
    pub trust: bool,
    /// The proxies' addresses: hops from these are skipped when looking for the client.
    pub trusted: Vec<IpNet>,
}

impl ProxyConfig {
    /// Whether `addr` is one of the trusted proxies.
    pub fn is_trusted(&self, addr: IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(&addr))
    }
}

/// Periodic work.
#[derive(Debug, Clone, Copy)]
pub struct ScheduleConfig {
    /// Between automatic signed checkpoints (only when the ledger grew).
    pub checkpoint_interval: Duration,
    /// Between automatic verifications of the whole ledger.
    pub verify_interval: Duration,
}

/// A flag value that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("invalid `--{flag}`: {message}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub message: String,
}

fn invalid(flag: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        flag,
        message: message.into(),
    }
}

fn at_least_one_second(flag: &'static str, secs: u64) -> Result<Duration, ConfigError> {
    if secs == 0 {
        return Err(invalid(flag, "must be at least 1 second"));
    }
    Ok(Duration::from_secs(secs))
}

/// The single sign-on settings, when an issuer is configured: every piece checked.
fn sso_settings(
    args: &ServeArgs,
    public_origin: Option<&str>,
) -> Result<Option<crate::services::sso::SsoSettings>, ConfigError> {
    let Some(issuer) = args.oidc_issuer.as_deref().map(str::trim) else {
        return Ok(None);
    };
    let url = url::Url::parse(issuer)
        .map_err(|e| invalid("oidc-issuer", format!("`{issuer}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(invalid(
            "oidc-issuer",
            format!(
                "`{issuer}` must be an https:// URL (http:// only for a provider on this machine)"
            ),
        ));
    }
    if url.scheme() == "http"
        && !matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
    {
        return Err(invalid(
            "oidc-issuer",
            "an http:// issuer is accepted only on loopback (tests): use https://",
        ));
    }
    let Some(origin) = public_origin else {
        return Err(invalid(
            "public-url",
            "single sign-on needs --public-url: the provider sends people back to {public URL}/auth/oidc/callback",
        ));
    };
    let client_id = args
        .oidc_client_id
        .clone()
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| {
            invalid(
                "oidc-client-id",
                "single sign-on needs the client id Stellar is registered under",
            )
        })?;
    let roles = args
        .oidc_roles
        .iter()
        .map(|pair| {
            let (group, given) = pair.split_once('=').ok_or_else(|| {
                invalid(
                    "oidc-role",
                    format!("`{pair}` must be GROUP=ROLE (or GROUP=partner:TENANT), e.g. stellar-secops=secops"),
                )
            })?;
            let (role, tenant) = match given.trim().split_once(':') {
                Some((r, t)) => (r, Some(t.trim())),
                None => (given.trim(), None),
            };
            let role: app::types::Role = role.parse().map_err(|_| {
                invalid(
                    "oidc-role",
                    format!("`{role}` is not a role: one of partner, reviewer, secops, platform, admin"),
                )
            })?;
            let tenant = match tenant {
                Some(t) if role == app::types::Role::Partner => Some(
                    crate::domain::TenantSlug::parse(t)
                        .map_err(|_| invalid("oidc-role", format!("`{t}` is not a tenant slug")))?
                        .as_str()
                        .to_owned(),
                ),
                Some(_) => {
                    return Err(invalid(
                        "oidc-role",
                        format!("`{pair}`: only a partner group names a tenant"),
                    ));
                }
                None => None,
            };
            if group.trim().is_empty() {
                return Err(invalid("oidc-role", format!("`{pair}` names no group")));
            }
            Ok(crate::services::sso::RoleMap {
                group: group.trim().to_owned(),
                role,
                tenant,
            })
        })
        .collect::<Result<Vec<_>, ConfigError>>()?;
    if roles.is_empty() {
        return Err(invalid(
            "oidc-role",
            "single sign-on needs at least one GROUP=ROLE: nobody gets a role by default",
        ));
    }
    let mut scopes: Vec<String> = args
        .oidc_scopes
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".into());
    }
    Ok(Some(crate::services::sso::SsoSettings {
        issuer: issuer.to_owned(),
        client_id,
        client_secret: std::env::var("STELLAR_OIDC_CLIENT_SECRET")
            .ok()
            .and_then(crate::domain::Secret::new),
        scopes,
        redirect_url: format!("{origin}/auth/oidc/callback"),
        groups_claim: args.oidc_groups_claim.clone(),
        roles,
        tenant_claim: args.oidc_tenant_claim.clone(),
        label: args.oidc_label.clone(),
        session_ttl: at_least_one_second("oidc-session-ttl", args.oidc_session_ttl_secs)?,
    }))
}

impl Config {
    /// Checks the raw flags of `stellar serve`.
    pub fn from_args(args: ServeArgs) -> Result<Self, ConfigError> {
        let public_origin = args
            .public_url
            .as_deref()
            .map(parse_origin)
            .transpose()
            .map_err(|message| invalid("public-url", message))?;
        let secure_cookies = public_origin
            .as_deref()
            .is_some_and(|o| o.starts_with("https://"));
        let sso = sso_settings(&args, public_origin.as_deref())?;
        if args.login_max_failures == 0 {
            return Err(invalid("login-max-failures", "must be at least 1"));
        }
        if args.max_header_bytes < 1024 {
            return Err(invalid("max-header-bytes", "must be at least 1024 bytes"));
        }
        let trusted = args
            .trusted_proxies
            .iter()
            .map(|p| parse_net(p).map_err(|m| invalid("trusted-proxy", m)))
            .collect::<Result<Vec<_>, _>>()?;
        let auth = AuthSettings {
            session_ttl: at_least_one_second("session-ttl", args.session_ttl_secs)?,
            session_idle: at_least_one_second("session-idle", args.session_idle_secs)?,
            throttle: ThrottleLimits {
                max_failures: args.login_max_failures,
                lockout: Duration::from_secs(args.login_lockout_secs),
            },
            local_sign_in: args.local_sign_in,
        };
        let http = HttpConfig {
            addr: args.addr,
            site_root: args.site_root,
            public_origin,
            secure_cookies,
            max_body_bytes: args.max_body_bytes,
            max_header_bytes: args.max_header_bytes,
            request_timeout: at_least_one_second("request-timeout", args.request_timeout_secs)?,
            metrics_token: args.metrics_token,
            proxy: ProxyConfig {
                trust: args.trust_proxy,
                trusted,
            },
        };
        let schedule = ScheduleConfig {
            checkpoint_interval: at_least_one_second(
                "checkpoint-interval",
                args.checkpoint_interval_secs,
            )?,
            verify_interval: at_least_one_second("verify-interval", args.verify_interval_secs)?,
        };
        let instance = match args.analysis.instance.as_deref().map(str::trim) {
            Some("") => return Err(invalid("instance", "must not be empty")),
            Some(name) if name.chars().count() > 48 || name.chars().any(char::is_control) => {
                return Err(invalid(
                    "instance",
                    "use at most 48 characters without control characters",
                ));
            }
            Some(name) => name.to_owned(),
            None => uuid::Uuid::now_v7().to_string(),
        };
        let workers = args.analysis.workers;
        let services = ServicesConfig {
            database_url: args.db.database_url,
            migrate: !args.skip_migrations,
            keys: KeyConfig::from_args(&args.keys)?,
            auth,
            analysis: AnalysisConfig::from_args(&args.analysis)?,
            sso,
            clock: match args.time_scale_since {
                Some(since)
                    if since > chrono::Utc::now()
                        || chrono::Utc::now() - since > chrono::TimeDelta::days(7) =>
                {
                    return Err(invalid(
                        "time-scale-since",
                        "give when the scaled clock started: not in the future, and within the last 7 days",
                    ));
                }
                Some(since) => Clock::scaled_since(args.time_scale, since),
                None => Clock::scaled(args.time_scale),
            },
        };
        Ok(Config {
            services,
            http,
            schedule,
            pipeline: PipelineSeed::from_file(args.pipeline.as_deref())?,
            demo: args.demo,
            demo_submissions: true,
            demo_releases: true,
            log_format: args.log_format,
            log: args.log,
            instance,
            workers,
        })
    }
}

impl ServicesConfig {
    /// For a verb that works on the database and the keys (`stellar key …`, `stellar admin …`):
    /// the services' defaults for everything else. Migrates the database when opened.
    pub fn for_verb(db: &DbArgs, keys: &KeyArgs) -> Result<Self, ConfigError> {
        Ok(ServicesConfig {
            database_url: db.database_url.clone(),
            migrate: true,
            keys: KeyConfig::from_args(keys)?,
            auth: AuthSettings {
                session_ttl: Duration::from_secs(3600),
                session_idle: Duration::from_secs(3600),
                throttle: ThrottleLimits {
                    max_failures: 5,
                    lockout: Duration::from_secs(60),
                },
                local_sign_in: crate::cli::args::LocalSignIn::All,
            },
            analysis: AnalysisConfig::from_args(&AnalysisArgs::default())?,
            sso: None,
            clock: Clock::system(),
        })
    }

    /// For a verb that only reads (`stellar ledger verify`): no migrations, no writes.
    pub fn read_only(db: &DbArgs, keys: &KeyArgs) -> Result<Self, ConfigError> {
        Ok(ServicesConfig {
            migrate: false,
            ..Self::for_verb(db, keys)?
        })
    }
}

impl KeyConfig {
    pub fn from_args(args: &KeyArgs) -> Result<Self, ConfigError> {
        let origin = args.ledger_origin.trim();
        if origin.is_empty() || origin.contains(char::is_whitespace) || origin.len() > 200 {
            return Err(invalid(
                "ledger-origin",
                "must be one word without spaces, such as `stellar.example.com/ledger`",
            ));
        }
        Ok(KeyConfig {
            key_dir: args.key_dir.clone(),
            passphrase: args.key_passphrase.clone(),
            ledger_origin: origin.to_owned(),
        })
    }
}

impl AnalysisConfig {
    /// Checks the intake and analysis flags and reads the files they name.
    pub fn from_args(a: &AnalysisArgs) -> Result<Self, ConfigError> {
        for (flag, zero) in [
            ("max-bundle-bytes", a.max_bundle_bytes == 0),
            ("max-bundle-files", a.max_bundle_files == 0),
            ("max-uncompressed-bytes", a.max_uncompressed_bytes == 0),
            ("max-compression-ratio", a.max_compression_ratio == 0),
            ("job-attempts", a.job_attempts == 0),
            ("job-lease", a.job_lease_secs == 0),
            ("sandbox-max-memory-mb", a.sandbox_max_memory_mb == 0),
            ("sandbox-max-timeout-ms", a.sandbox_max_timeout_ms == 0),
            ("max-concurrent-uploads", a.max_concurrent_uploads == 0),
            ("tenant-max-queued", a.tenant_max_queued == 0),
            ("tenant-max-bytes", a.tenant_max_bytes == 0),
        ] {
            if zero {
                return Err(invalid(flag, "must be greater than 0"));
            }
        }
        let read = |p: &std::path::Path, flag: &'static str| {
            std::fs::read_to_string(p)
                .map_err(|e| invalid(flag, format!("cannot read `{}`: {e}", p.display())))
        };
        let advisories = match &a.advisories {
            Some(p) => plugin::sbom::parse_advisories(&read(p, "advisories")?)
                .map_err(|e| invalid("advisories", format!("`{}`: {e}", p.display())))?,
            None => plugin::sbom::parse_advisories(plugin::sbom::DEFAULT_ADVISORIES)
                .map_err(|e| invalid("advisories", format!("the built-in list: {e}")))?,
        };
        let hosts = match &a.host_matrix {
            Some(p) => plugin::sbom::parse_hosts(&read(p, "host-matrix")?)
                .map_err(|e| invalid("host-matrix", format!("`{}`: {e}", p.display())))?,
            None => plugin::sbom::parse_hosts(plugin::sbom::DEFAULT_HOSTS)
                .map_err(|e| invalid("host-matrix", format!("the built-in matrix: {e}")))?,
        };
        Ok(AnalysisConfig {
            limits: plugin::Limits {
                max_bundle_bytes: a.max_bundle_bytes,
                max_files: a.max_bundle_files,
                max_uncompressed_bytes: a.max_uncompressed_bytes,
                max_ratio: a.max_compression_ratio,
                ..plugin::Limits::default()
            },
            caps: plugin::sandbox::Caps {
                max_memory_bytes: a.sandbox_max_memory_mb.saturating_mul(1024 * 1024),
                max_fuel: plugin::sandbox::Caps::default().max_fuel,
                max_timeout: Duration::from_millis(a.sandbox_max_timeout_ms),
            },
            advisories,
            hosts,
            max_attempts: a.job_attempts,
            lease: Duration::from_secs(a.job_lease_secs),
            pack: match &a.policy_dir {
                Some(dir) => PackSource::Dir(dir.clone()),
                None => PackSource::BuiltIn,
            },
            rollback_pack: a.rollback_policy_dir.clone(),
            fleet_retention_days: match a.fleet_report_retention_days {
                0 => {
                    return Err(invalid(
                        "fleet-report-retention-days",
                        "keep reports at least 1 day (the analysis reads the last hour)",
                    ));
                }
                d => d,
            },
            max_concurrent_uploads: a.max_concurrent_uploads,
            upload_wait: Duration::from_secs(10),
            quotas: TenantQuotas {
                max_queued: a.tenant_max_queued,
                max_bytes: a.tenant_max_bytes,
            },
        })
    }
}

/// `https://example.com/portal/` → `https://example.com`.
fn parse_origin(url: &str) -> Result<String, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("`{url}` is not a URL: expected `https://HOST[:PORT]`"))?;
    if scheme != "http" && scheme != "https" {
        return Err(format!("`{scheme}` is not http or https"));
    }
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains('@') {
        return Err(format!(
            "`{url}` has no host: expected `{scheme}://HOST[:PORT]`"
        ));
    }
    Ok(format!("{scheme}://{}", host.to_ascii_lowercase()))
}

/// `10.0.0.0/8`, `192.0.2.7` (a single address), `::1`.
fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{s}` is not an address or a network such as `10.0.0.0/8`"))
}

#[cfg(test)]
mod tests {
    use super::{parse_net, parse_origin};

    fn serve(flags: &[&str]) -> Result<super::Config, String> {
        use clap::Parser;
        let cli = crate::cli::args::Cli::try_parse_from(
            ["stellar", "serve"].iter().chain(flags).copied(),
        )
        .map_err(|e| e.to_string())?;
        let crate::cli::args::Command::Serve(args) = cli.command else {
            return Err("not serve".into());
        };
        super::Config::from_args(*args).map_err(|e| e.to_string())
    }

    /// Single sign-on is all there or refused with the flag to fix; nobody gets a default role.
    #[test]
    fn single_sign_on_flags_are_checked_whole() {
        let ok = [
            "--public-url",
            "https://stellar.example",
            "--oidc-issuer",
            "https://id.example/realms/main",
            "--oidc-client-id",
            "stellar",
            "--oidc-role",
            "stellar-secops=secops",
        ];
        let config = serve(&ok).unwrap_or_else(|e| panic!("{e}"));
        let sso = config.services.sso.unwrap_or_else(|| panic!("sso"));
        assert_eq!(
            sso.redirect_url,
            "https://stellar.example/auth/oidc/callback"
        );
        assert_eq!(sso.scopes.first().map(String::as_str), Some("openid"));
        for (drop, replace, want) in [
            (Some("--public-url"), None, "public-url"),
            (Some("--oidc-client-id"), None, "oidc-client-id"),
            (Some("--oidc-role"), None, "oidc-role"),
            (
                None,
                Some(("stellar-secops=secops", "stellar-secops=root")),
                "not a role",
            ),
            (
                None,
                Some(("stellar-secops=secops", "secops")),
                "GROUP=ROLE",
            ),
            (
                None,
                Some(("https://id.example/realms/main", "http://id.example")),
                "loopback",
            ),
            (
                None,
                Some(("https://id.example/realms/main", "id.example")),
                "not a URL",
            ),
        ] {
            let mut flags: Vec<&str> = Vec::new();
            let mut i = 0;
            while i < ok.len() {
                if Some(ok[i]) == drop {
                    i += 2;
                    continue;
                }
                flags.push(match replace {
                    Some((from, to)) if ok[i] == from => to,
                    _ => ok[i],
                });
                i += 1;
            }
            let err = serve(&flags)
                .err()
                .unwrap_or_else(|| panic!("{flags:?} was taken"));
            assert!(err.contains(want), "{flags:?}: {err}");
        }
    }

    #[test]
    fn origins_drop_the_path_and_keep_the_port() {
        assert_eq!(
            parse_origin("https://Stellar.example:8443/portal/").as_deref(),
            Ok("https://stellar.example:8443")
        );
        assert!(parse_origin("stellar.example").is_err());
        assert!(parse_origin("ftp://stellar.example").is_err());
        assert!(parse_origin("https://user@evil.example").is_err());
    }

    #[test]
    fn secrets_never_print_in_the_flags_or_the_configuration() {
        use clap::Parser;
        let cli = crate::cli::args::Cli::try_parse_from([
            "stellar",
            "serve",
            "--metrics-token",
            "s3cr3t-scrape-token",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{cli:?}").contains("s3cr3t"));
        let crate::cli::args::Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        let config = super::Config::from_args(*args).unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{config:?}").contains("s3cr3t"));
        assert_eq!(
            config
                .http
                .metrics_token
                .as_ref()
                .map(super::Secret::expose),
            Some("s3cr3t-scrape-token")
        );
    }

    #[test]
    fn proxies_are_addresses_or_networks() {
        assert!(parse_net("10.0.0.0/8").is_ok());
        assert!(parse_net("192.0.2.7").is_ok());
        assert!(parse_net("::1").is_ok());
        assert!(parse_net("proxy.internal").is_err());
    }
}
