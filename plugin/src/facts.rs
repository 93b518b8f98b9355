//! The facts of a submission, typed: what [`crate::analyse`] found, in the shape of the policy
//! language's fact schema (`dsl::Schema::submission()`), handed to the evaluator as this value
//! (never as JSON text), and stored with the verdict.
//!
//! **Invariant:** every field here is a field of the schema with the same name and type; the
//! test `the_facts_fit_the_schema` in the server reads a full set through the schema and fails
//! on any difference.

use serde::{Deserialize, Serialize};

use crate::sandbox::Egress;
use crate::sbom::Match;

/// Everything the policies judge about one submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// The plugin id from the manifest.
    pub name: String,
    pub version: String,
    pub publisher: Publisher,
    /// Declared permissions, as written (`net:api.example.com`).
    pub permissions: Vec<String>,
    pub resources: Resources,
    pub compat: Compat,
    pub sbom: Sbom,
    /// Distinct registered (approved) publisher keys that signed the manifest and the module.
    pub signatures: u64,
    pub description: Option<String>,
    pub module: Module,
    pub sandbox: Sandbox,
    pub advisories: Vec<Match>,
    pub history: History,
    pub hosts: Hosts,
    pub network: Network,
    pub bundle: BundleFacts,
}

/// What the declared network permissions point at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// `net:` permissions naming a loopback, private, link-local or cloud-metadata address.
    pub internal: Vec<String>,
}

/// Who publishes: the tenant, as the marketplace knows it (never what the manifest claims).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publisher {
    pub id: String,
    pub verified: bool,
    pub tier: String,
}

/// What the manifest asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub memory_mb: u64,
    pub cpu_millis: u64,
    pub wasm_size_kb: u64,
}

/// The host versions the manifest claims to support.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compat {
    pub min_host: String,
    pub max_host: String,
}

/// Licenses from the manifest and the SBOM, sorted and deduplicated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sbom {
    pub licenses: Vec<String>,
}

/// Static analysis of the entry module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Module {
    pub size_kb: u64,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    pub capabilities: Vec<String>,
    /// Capabilities the module uses without a declared permission.
    pub undeclared: Vec<String>,
    /// Declared permissions the module never uses.
    pub unused: Vec<String>,
    pub unknown_imports: Vec<String>,
    pub memory_initial_kb: u64,
    pub memory_bounded: bool,
    pub memory_max_kb: u64,
    pub has_start: bool,
    pub custom_sections: Vec<String>,
}

/// The run in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    pub ran: bool,
    pub entry: String,
    pub fuel_limit: u64,
    pub fuel_used: u64,
    pub memory_limit_kb: u64,
    pub peak_memory_kb: u64,
    pub out_of_fuel: bool,
    pub memory_exceeded: bool,
    pub timed_out: bool,
    pub trapped: bool,
    pub trap: String,
    pub duration_ms: u64,
    /// Every outbound call the module attempted, with the connector's decision.
    pub egress: Vec<Egress>,
}

/// How this version differs from the previous accepted one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Empty for the first version.
    pub previous_version: String,
    /// `first`, `major`, `minor`, `patch`, `prerelease`, `same`, `downgrade` or `invalid`.
    pub step: String,
    pub added_permissions: Vec<String>,
    pub removed_permissions: Vec<String>,
}

/// The marketplace's host versions, and those the plugin's range covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hosts {
    pub supported: Vec<String>,
    pub compatible: Vec<String>,
}

/// The bundle as a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleFacts {
    pub sha256: String,
    pub files: u64,
    /// Signatures in the bundle that did not count, and why.
    pub signature_problems: Vec<String>,
}
