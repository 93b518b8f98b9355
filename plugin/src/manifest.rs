//! `plugin.toml`: the manifest of a plugin bundle.
//!
//! Parsing is strict about shape (unknown keys, wrong types and malformed permissions are
//! errors with a line and a column) and lenient about judgement: a version that is not semver,
//! a name that breaks the naming rules or a host range that is upside down parse fine, because
//! those are the policy's to judge and explain.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// Largest manifest accepted, in bytes.
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024;
/// Most permissions a manifest may declare.
pub const MAX_PERMISSIONS: usize = 64;

/// A problem in the manifest, with its position (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "plugin.toml:{}:{}: {}",
            self.line, self.column, self.message
        )
    }
}

/// Resources the plugin asks for.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// Linear memory, in MiB.
    pub memory_mb: u32,
    /// CPU time per call, in milliseconds (the sandbox turns it into fuel).
    pub cpu_millis: u32,
    /// Wall-clock time per call, in milliseconds.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u32,
}

fn default_timeout() -> u32 {
    5_000
}

/// Host versions the plugin supports.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Compat {
    pub min_host: String,
    pub max_host: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    id: Spanned<String>,
    name: String,
    version: String,
    publisher: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    entry: Spanned<String>,
    #[serde(default)]
    permissions: Option<Spanned<Vec<Spanned<String>>>>,
    resources: Resources,
    compat: Compat,
    #[serde(default)]
    dependencies: BTreeMap<String, Spanned<String>>,
    license: Spanned<String>,
    #[serde(default)]
    sbom: Option<Spanned<String>>,
}

/// A parsed manifest.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Manifest {
    /// Stable plugin identifier (`acme-logger`): what the policies call the name.
    pub id: String,
    /// Where `id` is written, for errors about it.
    #[serde(skip)]
    pub id_at: (usize, usize),
    /// Display name.
    pub name: String,
    pub version: String,
    pub publisher: String,
    /// Where `publisher` is written, for errors about it.
    #[serde(skip)]
    pub publisher_at: (usize, usize),
    pub description: Option<String>,
    /// Path of the entry module inside the bundle.
    pub entry: String,
    #[serde(skip)]
    pub entry_at: (usize, usize),
    pub permissions: Vec<Permission>,
    pub resources: Resources,
    pub compat: Compat,
    /// Dependencies: plugin id → semver requirement.
    pub dependencies: BTreeMap<String, String>,
    /// SPDX license expression.
    pub license: String,
    #[serde(skip)]
    pub license_at: (usize, usize),
    /// Path of the CycloneDX SBOM inside the bundle, if any.
    pub sbom: Option<String>,
}

/// A declared permission.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub enum Permission {
    /// `net:HOST` or `net:HOST:PORT`.
    Net {
        host: String,
        port: Option<u16>,
    },
    /// `fs:read:PATH`.
    FsRead(String),
    /// `fs:write:PATH`.
    FsWrite(String),
    /// `env:NAME`.
    Env(String),
    Clock,
    Random,
    /// Any other `kind:…` permission the marketplace knows by name only (`proc:exec`,
    /// `sys:admin`): kept so that the policies can refuse it by name.
    Other(String),
}

impl From<Permission> for String {
    fn from(p: Permission) -> String {
        p.to_string()
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Permission::Net {
                host,
                port: Some(p),
            } => write!(f, "net:{host}:{p}"),
            Permission::Net { host, port: None } => write!(f, "net:{host}"),
            Permission::FsRead(p) => write!(f, "fs:read:{p}"),
            Permission::FsWrite(p) => write!(f, "fs:write:{p}"),
            Permission::Env(n) => write!(f, "env:{n}"),
            Permission::Clock => f.write_str("clock"),
            Permission::Random => f.write_str("random"),
            Permission::Other(s) => f.write_str(s),
        }
    }
}

impl Permission {
    /// The capability this permission grants (`net`, `fs:read`, `env`, …).
    pub fn capability(&self) -> &'static str {
        match self {
            Permission::Net { .. } => "net",
            Permission::FsRead(_) => "fs:read",
            Permission::FsWrite(_) => "fs:write",
            Permission::Env(_) => "env",
            Permission::Clock => "clock",
            Permission::Random => "random",
            Permission::Other(_) => "other",
        }
    }

    /// Parses one permission; the error says what is wrong and what is expected.
    pub fn parse(s: &str) -> Result<Permission, String> {
        const EXPECTED: &str =
            "expected net:HOST[:PORT], fs:read:PATH, fs:write:PATH, env:NAME, clock or random";
        if s == "clock" {
            return Ok(Permission::Clock);
        }
        if s == "random" {
            return Ok(Permission::Random);
        }
        if let Some(rest) = s.strip_prefix("net:") {
            if rest == "*" {
                return Ok(Permission::Other(s.to_owned()));
            }
            let (host, port) = match rest.rsplit_once(':') {
                Some((h, p)) => {
                    let port: u16 = p.parse().map_err(|_| {
                        format!("`{s}`: the port `{p}` is not a number from 1 to 65535")
                    })?;
                    if port == 0 {
                        return Err(format!("`{s}`: port 0 is not a port"));
                    }
                    (h, Some(port))
                }
                None => (rest, None),
            };
            if !valid_host(host) {
                return Err(format!(
                    "`{s}`: `{host}` is not a host name (lowercase letters, digits, dots and dashes; `*.` allowed in front)"
                ));
            }
            return Ok(Permission::Net {
                host: host.to_owned(),
                port,
            });
        }
        if let Some(path) = s.strip_prefix("fs:read:") {
            return valid_path(s, path).map(|p| Permission::FsRead(p.to_owned()));
        }
        if let Some(path) = s.strip_prefix("fs:write:") {
            return valid_path(s, path).map(|p| Permission::FsWrite(p.to_owned()));
        }
        if let Some(name) = s.strip_prefix("env:") {
            let ok = !name.is_empty()
                && name.len() <= 128
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !ok {
                return Err(format!(
                    "`{s}`: `{name}` is not an environment variable name (letters, digits and _)"
                ));
            }
            return Ok(Permission::Env(name.to_owned()));
        }
        // `kind:rest` permissions the host does not grant still parse, so that policies can
        // refuse them by name with an explanation.
        let known_other = ["proc:", "sys:", "fs:write"];
        if (known_other.iter().any(|k| s.starts_with(k)) || s == "fs:read")
            && s.len() <= 256
            && s.chars().all(|c| c.is_ascii_graphic())
        {
            return Ok(Permission::Other(s.to_owned()));
        }
        Err(format!("`{s}` is not a permission: {EXPECTED}"))
    }
}

fn valid_host(h: &str) -> bool {
    let h = h.strip_prefix("*.").unwrap_or(h);
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

fn valid_path<'a>(whole: &str, path: &'a str) -> Result<&'a str, String> {
    if !path.starts_with('/') || path.len() > 1024 || path.split('/').any(|c| c == "..") {
        return Err(format!(
            "`{whole}`: the path must be absolute and must not contain `..`"
        ));
    }
    Ok(path)
}

/// Line and column (1-based) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    let column = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, column)
}

fn at(text: &str, span: Range<usize>) -> (usize, usize) {
    line_col(text, span.start)
}

/// Parses a manifest. On failure, every error found (with its position) is returned.
pub fn parse(text: &str) -> Result<Manifest, Vec<ManifestError>> {
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(vec![ManifestError {
            line: 1,
            column: 1,
            message: format!(
                "the manifest is {} bytes; the limit is {MAX_MANIFEST_BYTES}",
                text.len()
            ),
        }]);
    }
    let raw: Raw = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map(|s| at(text, s)).unwrap_or((1, 1));
        vec![ManifestError {
            line,
            column,
            message: e
                .message()
                .trim()
                .replace("expected u32", "expected a whole number (0 or more)"),
        }]
    })?;
    let mut errors = Vec::new();
    let mut err = |span: Range<usize>, message: String| {
        let (line, column) = at(text, span);
        errors.push(ManifestError {
            line,
            column,
            message,
        });
    };
    let id = raw.id.get_ref();
    if id.is_empty() || id.len() > 128 || id.chars().any(|c| c.is_control() || c == '/') {
        err(
            raw.id.span(),
            "`id` must be 1 to 128 characters without `/` or control characters".into(),
        );
    }
    let entry = raw.entry.get_ref();
    if !entry.ends_with(".wasm") {
        err(
            raw.entry.span(),
            format!("`entry` must name a .wasm module in the bundle, found `{entry}`"),
        );
    }
    let declared: &[Spanned<String>] = match &raw.permissions {
        Some(list) => {
            if list.get_ref().len() > MAX_PERMISSIONS {
                err(
                    list.span(),
                    format!("at most {MAX_PERMISSIONS} permissions may be declared"),
                );
            }
            list.get_ref()
        }
        None => &[],
    };
    let mut permissions = Vec::new();
    for p in declared {
        match Permission::parse(p.get_ref()) {
            Ok(perm) if permissions.contains(&perm) => {
                err(p.span(), format!("`{perm}` is declared twice"));
            }
            Ok(perm) => permissions.push(perm),
            Err(message) => err(p.span(), message),
        }
    }
    let license = raw.license.get_ref();
    if let Err(e) = spdx::Expression::parse_mode(license, spdx::ParseMode::LAX) {
        err(
            raw.license.span(),
            format!(
                "`{license}` is not an SPDX license expression ({}); write for example `MIT OR Apache-2.0`",
                e.reason
            ),
        );
    }
    let mut dependencies = BTreeMap::new();
    for (name, req) in raw.dependencies {
        if semver::VersionReq::parse(req.get_ref()).is_err() {
            err(
                req.span(),
                format!(
                    "dependency `{name}`: `{}` is not a semver requirement such as `^1.2`",
                    req.get_ref()
                ),
            );
        }
        dependencies.insert(name, req.into_inner());
    }
    let r = &raw.resources;
    if r.memory_mb == 0 || r.cpu_millis == 0 || r.timeout_ms == 0 {
        // Position of the table: toml has no span for the struct, so point at the file start
        // of `[resources]`.
        let pos = text.find("[resources]").unwrap_or(0);
        err(
            pos..pos,
            "resources.memory_mb, cpu_millis and timeout_ms must be greater than 0".into(),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Manifest {
        id_at: at(text, raw.id.span()),
        id: raw.id.get_ref().clone(),
        name: raw.name,
        version: raw.version,
        publisher_at: at(text, raw.publisher.span()),
        publisher: raw.publisher.into_inner(),
        description: raw.description,
        entry_at: at(text, raw.entry.span()),
        entry: raw.entry.into_inner(),
        permissions,
        resources: raw.resources,
        compat: raw.compat,
        dependencies,
        license_at: at(text, raw.license.span()),
        license: raw.license.into_inner(),
        sbom: raw.sbom.map(Spanned::into_inner),
    })
}

/// The license identifiers of an SPDX expression (deduplicated, as written).
pub fn license_ids(expr: &str) -> Vec<String> {
    let Ok(e) = spdx::Expression::parse_mode(expr, spdx::ParseMode::LAX) else {
        return Vec::new();
    };
    let mut out: Vec<String> = e
        .requirements()
        .map(|r| match &r.req.license {
            spdx::LicenseItem::Spdx { id, .. } => id.name.to_owned(),
            spdx::LicenseItem::Other(other) => other.to_string(),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id = "acme-logger"
name = "Acme Logger"
version = "1.4.2"
publisher = "acme"
entry = "plugin.wasm"
license = "MIT OR Apache-2.0"
permissions = ["net:api.example.com:443", "clock"]

[resources]
memory_mb = 64
cpu_millis = 500

[compat]
min_host = "2.3.0"
max_host = "3.0.0"
"#;

    #[test]
    fn parses_a_good_manifest() {
        let m = parse(GOOD).unwrap();
        assert_eq!(m.id, "acme-logger");
        assert_eq!(m.resources.timeout_ms, 5000);
        assert_eq!(
            m.permissions[0],
            Permission::Net {
                host: "api.example.com".into(),
                port: Some(443)
            }
        );
        assert_eq!(license_ids(&m.license), vec!["Apache-2.0", "MIT"]);
    }

    #[test]
    fn wrong_types_have_line_and_column() {
        let text = GOOD.replace("memory_mb = 64", "memory_mb = \"lots\"");
        let errs = parse(&text).unwrap_err();
        assert_eq!(errs[0].line, 11, "{errs:?}");
        assert!(errs[0].message.contains("whole number"), "{errs:?}");
    }

    #[test]
    fn unknown_keys_and_bad_permissions_are_errors() {
        let text = GOOD.replace("license =", "licence = \"MIT\"\nlicense =");
        assert!(parse(&text).unwrap_err()[0].message.contains("licence"));
        let text = GOOD.replace("\"clock\"", "\"net:Bad Host\", \"clock\", \"clock\"");
        let errs = parse(&text).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].message.contains("not a host name"));
        assert!(errs[1].message.contains("declared twice"));
        assert_eq!(errs[0].line, 8);
    }

    #[test]
    fn bad_license_is_explained() {
        let text = GOOD.replace("MIT OR Apache-2.0", "MIT OR OR");
        let errs = parse(&text).unwrap_err();
        assert!(errs[0].message.contains("SPDX"), "{errs:?}");
    }

    #[test]
    fn nothing_panics_on_arbitrary_text() {
        for t in ["", "=", "[[", "id = 1", "\u{0}", &GOOD[..100]] {
            let _ = parse(t);
        }
    }
}
