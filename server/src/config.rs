//! Validated configuration, built once from the raw flags and passed explicitly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{AnalysisArgs, KeyArgs, LogFormat, ServeArgs};

/// Everything `stellar serve` needs, checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub database_url: String,
    pub demo: bool,
    pub skip_migrations: bool,
    pub log_format: LogFormat,
    pub log: String,
    pub site_root: PathBuf,
    /// The public origin (`scheme://host[:port]`), when configured.
    pub public_origin: Option<String>,
    /// Cookies carry `Secure` (and the `__Host-` prefix).
    pub secure_cookies: bool,
    pub session_ttl: Duration,
    pub session_idle: Duration,
    pub login_max_failures: u32,
    pub login_lockout: Duration,
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    pub request_timeout: Duration,
    pub metrics_token: Option<String>,
    pub trust_proxy: bool,
    pub keys: KeyArgs,
    pub checkpoint_interval: Duration,
    pub verify_interval: Duration,
    pub analysis: AnalysisArgs,
}

/// A flag value that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("invalid `--{flag}`: {message}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub message: String,
}

impl Config {
    /// Checks the raw flags.
    pub fn from_args(args: ServeArgs) -> Result<Self, ConfigError> {
        let public_origin = args
            .public_url
            .as_deref()
            .map(parse_origin)
            .transpose()
            .map_err(|message| ConfigError {
                flag: "public-url",
                message,
            })?;
        let secure_cookies = public_origin
            .as_deref()
            .is_some_and(|o| o.starts_with("https://"));
        if args.session_ttl_secs == 0 {
            return Err(ConfigError {
                flag: "session-ttl",
                message: "must be at least 1 second".into(),
            });
        }
        if args.session_idle_secs == 0 {
            return Err(ConfigError {
                flag: "session-idle",
                message: "must be at least 1 second".into(),
            });
        }
        if args.login_max_failures == 0 {
            return Err(ConfigError {
                flag: "login-max-failures",
                message: "must be at least 1".into(),
            });
        }
        if args.max_header_bytes < 1024 {
            return Err(ConfigError {
                flag: "max-header-bytes",
                message: "must be at least 1024 bytes".into(),
            });
        }
        if args.request_timeout_secs == 0 {
            return Err(ConfigError {
                flag: "request-timeout",
                message: "must be at least 1 second".into(),
            });
        }
        for (flag, secs) in [
            ("checkpoint-interval", args.checkpoint_interval_secs),
            ("verify-interval", args.verify_interval_secs),
        ] {
            if secs == 0 {
                return Err(ConfigError {
                    flag,
                    message: "must be at least 1 second".into(),
                });
            }
        }
        let a = &args.analysis;
        for (flag, zero) in [
            ("max-bundle-bytes", a.max_bundle_bytes == 0),
            ("max-bundle-files", a.max_bundle_files == 0),
            ("max-uncompressed-bytes", a.max_uncompressed_bytes == 0),
            ("max-compression-ratio", a.max_compression_ratio == 0),
            ("job-attempts", a.job_attempts == 0),
            ("job-lease", a.job_lease_secs == 0),
            ("sandbox-max-memory-mb", a.sandbox_max_memory_mb == 0),
            ("sandbox-max-timeout-ms", a.sandbox_max_timeout_ms == 0),
        ] {
            if zero {
                return Err(ConfigError {
                    flag,
                    message: "must be greater than 0".into(),
                });
            }
        }
        if args.keys.ledger_origin.trim().is_empty()
            || args.keys.ledger_origin.contains(char::is_whitespace)
        {
            return Err(ConfigError {
                flag: "ledger-origin",
                message: "must be one word without spaces, such as `stellar.example.com/ledger`"
                    .into(),
            });
        }
        Ok(Config {
            addr: args.addr,
            database_url: args.db.database_url,
            demo: args.demo,
            skip_migrations: args.skip_migrations,
            log_format: args.log_format,
            log: args.log,
            site_root: args.site_root,
            public_origin,
            secure_cookies,
            session_ttl: Duration::from_secs(args.session_ttl_secs),
            session_idle: Duration::from_secs(args.session_idle_secs),
            login_max_failures: args.login_max_failures,
            login_lockout: Duration::from_secs(args.login_lockout_secs),
            max_body_bytes: args.max_body_bytes,
            max_header_bytes: args.max_header_bytes,
            request_timeout: Duration::from_secs(args.request_timeout_secs),
            metrics_token: args.metrics_token.filter(|t| !t.is_empty()),
            trust_proxy: args.trust_proxy,
            keys: args.keys,
            checkpoint_interval: Duration::from_secs(args.checkpoint_interval_secs),
            verify_interval: Duration::from_secs(args.verify_interval_secs),
            analysis: args.analysis,
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

#[cfg(test)]
mod tests {
    use super::parse_origin;

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
}
