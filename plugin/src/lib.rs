//! Plugin bundles: the format (`docs/plugin-bundle.md`), safe unpacking, the manifest, static
//! analysis of the module, the sandbox with the zero-trust connector, and the facts the
//! policies judge.
//!
//! ```text
//! bytes ──inspect──▶ Inspected (refused here: unsafe archive, bad manifest, bad module)
//!                        │
//!                        └──analyse(Context)──▶ Facts (typed, the policy language's schema)
//! ```
//!
//! **Boundary:** no database, HTTP or async; only [`pack`] touches the file system.
//! **Invariant:** nothing here panics on any input; every run is bounded by fuel, memory and
//! time limits.

pub mod bundle;
pub mod facts;
pub mod manifest;
pub mod pack;
pub mod sandbox;
pub mod sbom;
pub mod wasm;

use serde::Serialize;
use trust::dsse::{Envelope, INTOTO_PAYLOAD_TYPE, Statement, pae};
use trust::keys::PublicKey;

pub use bundle::{Bundle, Limits};
pub use facts::{Facts, Publisher};
pub use manifest::{Manifest, ManifestError, Permission};

/// Predicate type of a publisher's signature over a bundle.
pub const PLUGIN_SIGNATURE_PREDICATE: &str = "https://stellar.dev/attestations/plugin-signature/v1";
/// Where signatures live in a bundle.
pub const SIGNATURE_DIR: &str = "signatures/";

/// Why a bundle was refused at intake. Nothing of a refused bundle is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// Stable code (`bundle_path`, `manifest_invalid`, `module_invalid`, …).
    pub code: String,
    /// The file at fault, if one is.
    pub file: Option<String>,
    pub message: String,
    /// Manifest errors, each with its line and column.
    pub errors: Vec<ManifestError>,
}

impl Rejection {
    fn new(code: &str, file: Option<&str>, message: impl Into<String>) -> Self {
        Rejection {
            code: code.into(),
            file: file.map(str::to_owned),
            message: message.into(),
            errors: Vec::new(),
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

/// A bundle that passed intake.
#[derive(Debug, Clone)]
pub struct Inspected {
    pub bundle: Bundle,
    pub manifest: Manifest,
    pub module: wasm::ModuleFacts,
    pub components: Vec<sbom::Component>,
}

impl Inspected {
    pub fn entry_bytes(&self) -> &[u8] {
        self.bundle.get(&self.manifest.entry).unwrap_or_default()
    }
}

/// Intake: unpacks with limits, parses the manifest, validates the module and the SBOM.
pub fn inspect(bytes: &[u8], limits: &Limits) -> Result<Inspected, Rejection> {
    let bundle = bundle::read(bytes, limits).map_err(|e| {
        let file = match &e {
            bundle::BundleError::BadPath { path, .. }
            | bundle::BundleError::NotAFile { path, .. }
            | bundle::BundleError::Duplicate { path }
            | bundle::BundleError::TooManyFiles { path, .. }
            | bundle::BundleError::Uncompressed { path, .. }
            | bundle::BundleError::Ratio { path, .. } => Some(path.as_str()),
            _ => None,
        };
        Rejection::new(e.code(), file, e.to_string())
    })?;
    let Some(text) = bundle.get("plugin.toml") else {
        return Err(Rejection::new(
            "manifest_missing",
            Some("plugin.toml"),
            "the bundle has no plugin.toml at its root (`stellar plugin pack DIR` writes one from your plugin folder)",
        ));
    };
    let text = std::str::from_utf8(text).map_err(|e| {
        Rejection::new(
            "manifest_invalid",
            Some("plugin.toml"),
            format!(
                "plugin.toml is not UTF-8 text (at byte {})",
                e.valid_up_to()
            ),
        )
    })?;
    let manifest = manifest::parse(text).map_err(|errors| Rejection {
        code: "manifest_invalid".into(),
        file: Some("plugin.toml".into()),
        message: format!(
            "plugin.toml has {} error{}; fix {} and submit again",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" },
            if errors.len() == 1 { "it" } else { "them" }
        ),
        errors,
    })?;
    let entry = &manifest.entry;
    let Some(wasm_bytes) = bundle.get(entry) else {
        let (line, column) = manifest.entry_at;
        return Err(Rejection {
            code: "entry_missing".into(),
            file: Some(entry.clone()),
            message: format!(
                "the entry module `{entry}` named in plugin.toml is not in the bundle"
            ),
            errors: vec![ManifestError {
                line,
                column,
                message: format!("`entry = \"{entry}\"`: no such file in the bundle"),
            }],
        });
    };
    let module = wasm::analyse(entry, wasm_bytes).map_err(|e| {
        let code = match e {
            wasm::ModuleError::TooMany { .. } => "module_too_large",
            _ => "module_invalid",
        };
        Rejection::new(code, Some(entry), e.to_string())
    })?;
    let components = match &manifest.sbom {
        None => Vec::new(),
        Some(path) => {
            let Some(doc) = bundle.get(path) else {
                return Err(Rejection::new(
                    "sbom_missing",
                    Some(path),
                    format!("the SBOM `{path}` named in plugin.toml is not in the bundle"),
                ));
            };
            sbom::parse(doc).map_err(|e| {
                Rejection::new(
                    "sbom_invalid",
                    Some(path),
                    format!("`{path}` is not a CycloneDX JSON SBOM: {e}"),
                )
            })?
        }
    };
    Ok(Inspected {
        bundle,
        manifest,
        module,
        components,
    })
}

/// The previous accepted version of the same plugin.
#[derive(Debug, Clone)]
pub struct Previous {
    pub version: String,
    pub permissions: Vec<String>,
}

/// Everything outside the bundle that the analysis needs.
#[derive(Debug, Clone)]
pub struct Context {
    pub publisher: Publisher,
    /// The publisher's registered signing keys.
    pub publisher_keys: Vec<PublicKey>,
    pub egress: sandbox::EgressRules,
    pub caps: sandbox::Caps,
    pub previous: Option<Previous>,
    pub advisories: Vec<sbom::Advisory>,
    pub hosts: Vec<semver::Version>,
}

/// The publisher signatures in the bundle: how many distinct registered keys signed the
/// manifest and the entry module, and what was wrong with the others.
pub fn signatures(inspected: &Inspected, keys: &[PublicKey]) -> (usize, Vec<String>) {
    let mut valid = std::collections::BTreeSet::new();
    let mut problems = Vec::new();
    let manifest_sha = bundle::sha256_hex(inspected.bundle.get("plugin.toml").unwrap_or_default());
    let entry_sha = bundle::sha256_hex(inspected.entry_bytes());
    for (path, bytes) in inspected
        .bundle
        .files
        .iter()
        .filter(|(p, _)| p.starts_with(SIGNATURE_DIR) && p.ends_with(".json"))
    {
        let check = || -> Result<Vec<String>, String> {
            let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
            let env = Envelope::from_json(text).map_err(|e| e.to_string())?;
            if env.payload_type != INTOTO_PAYLOAD_TYPE {
                return Err(format!("payload type `{}`", env.payload_type));
            }
            let payload = env.payload_bytes().map_err(|e| e.to_string())?;
            let statement: Statement =
                serde_json::from_slice(&payload).map_err(|e| e.to_string())?;
            if statement.predicate_type != PLUGIN_SIGNATURE_PREDICATE {
                return Err(format!("predicate type `{}`", statement.predicate_type));
            }
            let covers = |name: &str, sha: &str| {
                statement.subject.iter().any(|s| {
                    s.name == name && s.digest.get("sha256").map(String::as_str) == Some(sha)
                })
            };
            if !covers("plugin.toml", &manifest_sha)
                || !covers(&inspected.manifest.entry, &entry_sha)
            {
                return Err("it does not cover this plugin.toml and entry module (they changed after signing)".into());
            }
            let input = pae(&env.payload_type, &payload);
            let mut ids = Vec::new();
            for s in &env.signatures {
                let key = keys.iter().find(|k| k.id().0 == s.keyid).ok_or_else(|| {
                    format!("key {} is not registered for this publisher", s.keyid)
                })?;
                let der = base64_decode(&s.sig).ok_or("the signature is not base64")?;
                key.verify_der(&input, &der)
                    .map_err(|_| format!("the signature by key {} does not verify", s.keyid))?;
                ids.push(s.keyid.clone());
            }
            Ok(ids)
        };
        match check() {
            Ok(ids) => valid.extend(ids),
            Err(e) => problems.push(format!("{path}: {e}")),
        }
    }
    (valid.len(), problems)
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

fn kb(bytes: u64) -> u64 {
    bytes.div_ceil(1024)
}

/// How one version follows another.
pub fn version_step(previous: &str, next: &str) -> &'static str {
    let (Ok(p), Ok(n)) = (
        semver::Version::parse(previous),
        semver::Version::parse(next),
    ) else {
        return "invalid";
    };
    if n == p {
        "same"
    } else if n < p {
        "downgrade"
    } else if n.major != p.major {
        "major"
    } else if n.minor != p.minor {
        "minor"
    } else if n.patch != p.patch {
        "patch"
    } else {
        "prerelease"
    }
}

/// The result of analysing a bundle.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub facts: Facts,
    pub run: sandbox::RunFacts,
}

/// Static and dynamic analysis: the facts of a submission.
pub fn analyse(inspected: &Inspected, ctx: &Context) -> Analysis {
    let m = &inspected.manifest;
    let permissions: Vec<String> = m.permissions.iter().map(ToString::to_string).collect();
    let mut licenses = manifest::license_ids(&m.license);
    for c in &inspected.components {
        licenses.extend(c.licenses.iter().cloned());
    }
    licenses.sort();
    licenses.dedup();
    let (signatures, signature_problems) = signatures(inspected, &ctx.publisher_keys);
    let module = &inspected.module;
    let declared_caps: Vec<&str> = m.permissions.iter().map(Permission::capability).collect();
    let undeclared: Vec<String> = module
        .capabilities
        .iter()
        .filter(|c| wasm::needs_permission(c) && !declared_caps.contains(&c.as_str()))
        .cloned()
        .collect();
    let unused: Vec<String> = m
        .permissions
        .iter()
        .filter(|p| !module.capabilities.iter().any(|c| c == p.capability()))
        .map(ToString::to_string)
        .collect();
    let run = sandbox::run(sandbox::Run {
        wasm: inspected.entry_bytes(),
        memory_mb: m.resources.memory_mb,
        cpu_millis: m.resources.cpu_millis,
        timeout_ms: m.resources.timeout_ms,
        declared: &m.permissions,
        rules: ctx.egress.clone(),
        caps: ctx.caps,
        bundle_sha256: &inspected.bundle.sha256,
    });
    let advisories = sbom::matches(&inspected.components, &ctx.advisories);
    let history = match &ctx.previous {
        None => facts::History {
            previous_version: String::new(),
            step: "first".into(),
            added_permissions: Vec::new(),
            removed_permissions: Vec::new(),
        },
        Some(p) => facts::History {
            previous_version: p.version.clone(),
            step: version_step(&p.version, &m.version).into(),
            added_permissions: permissions
                .iter()
                .filter(|x| !p.permissions.contains(x))
                .cloned()
                .collect(),
            removed_permissions: p
                .permissions
                .iter()
                .filter(|x| !permissions.contains(x))
                .cloned()
                .collect(),
        },
    };
    let range = (
        semver::Version::parse(&m.compat.min_host),
        semver::Version::parse(&m.compat.max_host),
    );
    let compatible: Vec<String> = match range {
        (Ok(lo), Ok(hi)) => ctx
            .hosts
            .iter()
            .filter(|h| **h >= lo && **h <= hi)
            .map(ToString::to_string)
            .collect(),
        _ => Vec::new(),
    };
    let facts = Facts {
        name: m.id.clone(),
        version: m.version.clone(),
        publisher: ctx.publisher.clone(),
        permissions,
        resources: facts::Resources {
            memory_mb: u64::from(m.resources.memory_mb),
            cpu_millis: u64::from(m.resources.cpu_millis),
            wasm_size_kb: kb(module.size_bytes),
        },
        compat: facts::Compat {
            min_host: m.compat.min_host.clone(),
            max_host: m.compat.max_host.clone(),
        },
        sbom: facts::Sbom { licenses },
        signatures: signatures as u64,
        description: m.description.clone(),
        module: facts::Module {
            size_kb: kb(module.size_bytes),
            imports: module.imports.clone(),
            exports: module.exports.clone(),
            capabilities: module.capabilities.clone(),
            undeclared,
            unused,
            unknown_imports: module.unknown_imports.clone(),
            memory_initial_kb: kb(module.memory_initial_bytes),
            memory_bounded: module.memory_max_bytes.is_some(),
            memory_max_kb: kb(module.memory_max_bytes.unwrap_or(0)),
            has_start: module.has_start,
            custom_sections: module.custom_sections.clone(),
        },
        sandbox: facts::Sandbox {
            ran: run.ran,
            entry: run.entry.clone(),
            fuel_limit: run.fuel_limit,
            fuel_used: run.fuel_used,
            memory_limit_kb: kb(run.memory_limit_bytes),
            peak_memory_kb: kb(run.peak_memory_bytes),
            out_of_fuel: run.out_of_fuel,
            memory_exceeded: run.memory_exceeded,
            timed_out: run.timed_out,
            trapped: run.trapped,
            trap: run.trap.clone(),
            duration_ms: run.duration_ms,
            egress: run.egress.clone(),
        },
        advisories,
        history,
        hosts: facts::Hosts {
            supported: ctx.hosts.iter().map(ToString::to_string).collect(),
            compatible,
        },
        network: facts::Network {
            internal: m
                .permissions
                .iter()
                .filter(|p| match p {
                    Permission::Net { host, .. } => sandbox::internal_host(host).is_some(),
                    _ => false,
                })
                .map(ToString::to_string)
                .collect(),
        },
        bundle: facts::BundleFacts {
            sha256: inspected.bundle.sha256.clone(),
            files: inspected.bundle.files.len() as u64,
            signature_problems,
        },
    };
    Analysis { facts, run }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_steps() {
        assert_eq!(version_step("1.0.0", "1.0.1"), "patch");
        assert_eq!(version_step("1.0.0", "1.1.0"), "minor");
        assert_eq!(version_step("1.0.0", "2.0.0"), "major");
        assert_eq!(version_step("1.0.0", "1.0.0"), "same");
        assert_eq!(version_step("1.2.0", "1.1.0"), "downgrade");
        assert_eq!(version_step("1.0.0", "x"), "invalid");
    }
}
