//! Types of the language and the fact schema policies are checked against.
//!
//! The schema is defined once, here, in Rust; [`Schema::json_schema`] exports it as JSON Schema
//! for the people and tools that produce facts.

use std::fmt;
use std::sync::Arc;

use serde_json::{Value as Json, json};

/// A type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Type {
    Bool,
    Int,
    Str,
    Semver,
    List(Box<Type>),
    Set(Box<Type>),
    Record(Arc<RecordType>),
    /// A value that may be absent: test it with `has` or give a default with `??`.
    Optional(Box<Type>),
    /// The type of an expression that already failed to check (suppresses follow-on errors).
    Error,
}

impl Type {
    pub fn list(t: Type) -> Type {
        Type::List(Box::new(t))
    }

    pub fn set(t: Type) -> Type {
        Type::Set(Box::new(t))
    }

    pub fn optional(t: Type) -> Type {
        match t {
            Type::Optional(_) => t,
            other => Type::Optional(Box::new(other)),
        }
    }

    /// The element type of a list or set.
    pub fn element(&self) -> Option<&Type> {
        match self {
            Type::List(t) | Type::Set(t) => Some(t),
            _ => None,
        }
    }

    /// Whether values of `self` can stand where `expected` is wanted.
    pub fn fits(&self, expected: &Type) -> bool {
        match (self, expected) {
            (Type::Error, _) | (_, Type::Error) => true,
            (Type::List(a), Type::List(b))
            | (Type::Set(a), Type::Set(b))
            | (Type::Set(a), Type::List(b)) => a.fits(b),
            (Type::Optional(a), Type::Optional(b)) => a.fits(b),
            (a, Type::Optional(b)) => a.fits(b),
            (a, b) => a == b,
        }
    }

    /// Whether values of this type can be ordered with `<`.
    pub fn is_ordered(&self) -> bool {
        matches!(self, Type::Int | Type::Str | Type::Semver | Type::Error)
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("bool"),
            Type::Int => f.write_str("int"),
            Type::Str => f.write_str("string"),
            Type::Semver => f.write_str("semver"),
            Type::List(t) => write!(f, "list<{t}>"),
            Type::Set(t) => write!(f, "set<{t}>"),
            Type::Record(r) => write!(f, "record {}", r.name),
            Type::Optional(t) => write!(f, "{t}?"),
            Type::Error => f.write_str("unknown"),
        }
    }
}

/// A record type: named fields in a fixed order (a field's index is its slot).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RecordType {
    pub name: String,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field {
    pub name: String,
    pub ty: Type,
    pub doc: String,
}

impl RecordType {
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }
}

fn field(name: &str, ty: Type, doc: &str) -> Field {
    Field {
        name: name.to_owned(),
        ty,
        doc: doc.to_owned(),
    }
}

fn record(name: &str, fields: Vec<Field>) -> Type {
    Type::Record(Arc::new(RecordType {
        name: name.to_owned(),
        fields,
    }))
}

/// The facts a policy judges: the root record type and how waivers find their subject.
#[derive(Debug, Clone)]
pub struct Schema {
    /// The name a pack header gives it (`facts rollout`).
    pub name: &'static str,
    pub root: Type,
    /// Path of the field that names the plugin (`name`).
    pub plugin_field: Vec<String>,
    /// Path of the field that names the publisher (`publisher.id`).
    pub publisher_field: Vec<String>,
}

impl Schema {
    /// The facts of a plugin submission.
    pub fn submission() -> Schema {
        let publisher = record(
            "publisher",
            vec![
                field("id", Type::Str, "Stable identifier of the publisher"),
                field(
                    "verified",
                    Type::Bool,
                    "Whether the marketplace verified the publisher",
                ),
                field(
                    "tier",
                    Type::Str,
                    "Publisher tier: `partner`, `community`, …",
                ),
            ],
        );
        let resources = record(
            "resources",
            vec![
                field("memory_mb", Type::Int, "Memory the plugin asks for, in MiB"),
                field(
                    "cpu_millis",
                    Type::Int,
                    "CPU time per call, in milliseconds",
                ),
                field(
                    "wasm_size_kb",
                    Type::Int,
                    "Size of the WebAssembly module, in KiB",
                ),
            ],
        );
        let compat = record(
            "compat",
            vec![
                field(
                    "min_host",
                    Type::Str,
                    "Oldest host version supported (semver text)",
                ),
                field(
                    "max_host",
                    Type::Str,
                    "Newest host version supported (semver text)",
                ),
            ],
        );
        let sbom = record(
            "sbom",
            vec![field(
                "licenses",
                Type::list(Type::Str),
                "SPDX license identifiers of the components",
            )],
        );
        let strings = || Type::list(Type::Str);
        // What the analysis of a bundle adds. Optional, so that facts written by hand (policy
        // tests, `stellar policy eval`) may leave them out; every submission has them all.
        let module = record(
            "module",
            vec![
                field("size_kb", Type::Int, "Size of the entry module, in KiB"),
                field("imports", strings(), "Every import, as `module.name`"),
                field("exports", strings(), "Every export name"),
                field(
                    "capabilities",
                    strings(),
                    "Capabilities the imports use: log, kv, clock, random, net, env, fs:read",
                ),
                field(
                    "undeclared",
                    strings(),
                    "Capabilities used without a permission that grants them",
                ),
                field(
                    "unused",
                    strings(),
                    "Declared permissions whose capability the module never imports",
                ),
                field(
                    "unknown_imports",
                    strings(),
                    "Imports outside the host interface (the module cannot run)",
                ),
                field(
                    "memory_initial_kb",
                    Type::Int,
                    "Initial linear memory, in KiB",
                ),
                field(
                    "memory_bounded",
                    Type::Bool,
                    "Whether the module declares a maximum memory",
                ),
                field(
                    "memory_max_kb",
                    Type::Int,
                    "Declared maximum memory in KiB (0 when unbounded)",
                ),
                field(
                    "has_start",
                    Type::Bool,
                    "Whether a start function runs at load",
                ),
                field("custom_sections", strings(), "Names of the custom sections"),
            ],
        );
        let egress = record(
            "egress",
            vec![
                field("host", Type::Str, "Host the plugin tried to reach"),
                field("port", Type::Int, "Port"),
                field(
                    "allowed",
                    Type::Bool,
                    "What the zero-trust connector decided",
                ),
                field("reason", Type::Str, "Why"),
            ],
        );
        let sandbox = record(
            "sandbox",
            vec![
                field("ran", Type::Bool, "Whether the entry function was called"),
                field("entry", Type::Str, "The export called (`run` or `_start`)"),
                field(
                    "fuel_limit",
                    Type::Int,
                    "Fuel budget (from resources.cpu_millis)",
                ),
                field("fuel_used", Type::Int, "Fuel used"),
                field("memory_limit_kb", Type::Int, "Memory limit, in KiB"),
                field(
                    "peak_memory_kb",
                    Type::Int,
                    "Largest memory reached, in KiB",
                ),
                field(
                    "out_of_fuel",
                    Type::Bool,
                    "The run used its whole fuel budget",
                ),
                field(
                    "memory_exceeded",
                    Type::Bool,
                    "The module tried to grow memory past its limit",
                ),
                field("timed_out", Type::Bool, "The wall-clock timeout passed"),
                field("trapped", Type::Bool, "The run ended in a trap"),
                field(
                    "trap",
                    Type::Str,
                    "What stopped the run, or why it could not run",
                ),
                field("duration_ms", Type::Int, "Wall-clock time of the run"),
                field(
                    "egress",
                    Type::list(egress),
                    "Every outbound request and the connector's decision",
                ),
            ],
        );
        let advisory = record(
            "advisory",
            vec![
                field("id", Type::Str, "Advisory id"),
                field("component", Type::Str, "Affected SBOM component"),
                field("version", Type::Str, "Its version"),
                field("severity", Type::Str, "critical, high, medium or low"),
                field("summary", Type::Str, "What is wrong"),
            ],
        );
        let history = record(
            "history",
            vec![
                field(
                    "previous_version",
                    Type::Str,
                    "The previous accepted version (\"\" for the first)",
                ),
                field(
                    "step",
                    Type::Str,
                    "first, major, minor, patch, prerelease, same, downgrade or invalid",
                ),
                field(
                    "added_permissions",
                    strings(),
                    "Permissions new in this version",
                ),
                field("removed_permissions", strings(), "Permissions dropped"),
            ],
        );
        let network = record(
            "network",
            vec![field(
                "internal",
                strings(),
                "Declared `net:` permissions that name a loopback, private, link-local or cloud-metadata address (never reachable, whatever the rules say)",
            )],
        );
        let hosts = record(
            "hosts",
            vec![
                field("supported", strings(), "Host versions the marketplace runs"),
                field(
                    "compatible",
                    strings(),
                    "Those inside the plugin's compat range",
                ),
            ],
        );
        let root = record(
            "submission",
            vec![
                field("name", Type::Str, "Plugin name"),
                field(
                    "version",
                    Type::Str,
                    "Plugin version (semver text, not yet validated)",
                ),
                field("publisher", publisher, "Who publishes the plugin"),
                field(
                    "permissions",
                    Type::list(Type::Str),
                    "Permissions the manifest declares",
                ),
                field("resources", resources, "Resources the manifest asks for"),
                field("compat", compat, "Host versions the plugin supports"),
                field("sbom", sbom, "Software bill of materials"),
                field(
                    "signatures",
                    Type::Int,
                    "Number of valid signatures on the bundle",
                ),
                field(
                    "description",
                    Type::optional(Type::Str),
                    "Free-text description (optional)",
                ),
                field(
                    "module",
                    Type::optional(module),
                    "Static analysis of the entry module",
                ),
                field("sandbox", Type::optional(sandbox), "The run in the sandbox"),
                field(
                    "advisories",
                    Type::optional(Type::list(advisory)),
                    "Known advisories matching SBOM components",
                ),
                field(
                    "history",
                    Type::optional(history),
                    "Against the previous accepted version",
                ),
                field(
                    "hosts",
                    Type::optional(hosts),
                    "The host compatibility matrix",
                ),
                field(
                    "network",
                    Type::optional(network),
                    "What the declared network permissions point at",
                ),
            ],
        );
        Schema {
            name: "submission",
            root,
            plugin_field: vec!["name".into()],
            publisher_field: vec!["publisher".into(), "id".into()],
        }
    }

    /// The names a pack header may give (`facts NAME`).
    pub const NAMES: [&'static str; 2] = ["submission", "rollout"];

    /// The schema a pack header names.
    pub fn named(name: &str) -> Option<Schema> {
        match name {
            "submission" => Some(Schema::submission()),
            "rollout" => Some(Schema::rollout()),
            _ => None,
        }
    }

    /// The facts of one analysis interval of a rollout: the canary cohort (hosts told to run
    /// the new version) and the baseline cohort (hosts still on the version it replaces),
    /// measured over the same window, and where the rollout stands. Rates are integers in basis
    /// points (1 % = 100) and latencies whole milliseconds, so that thresholds are exact; a
    /// cohort with no samples has rates and latencies of 0 and says so in `samples`.
    pub fn rollout() -> Schema {
        let cohort = |name: &str| {
            record(
                name,
                vec![
                    field("version", Type::Str, "The version this cohort runs"),
                    field("hosts", Type::Int, "Hosts that reported in the window"),
                    field(
                        "silent_hosts",
                        Type::Int,
                        "Hosts of the cohort that did not report in the window",
                    ),
                    field("samples", Type::Int, "Invocations in the window"),
                    field("errors", Type::Int, "Invocations that returned an error"),
                    field(
                        "crashes",
                        Type::Int,
                        "Invocations that trapped or were killed",
                    ),
                    field(
                        "error_rate_bp",
                        Type::Int,
                        "Errors per 10,000 invocations (0 without samples)",
                    ),
                    field(
                        "crash_rate_bp",
                        Type::Int,
                        "Crashes per 10,000 invocations (0 without samples)",
                    ),
                    field("p50_ms", Type::Int, "Median latency, in milliseconds"),
                    field(
                        "p95_ms",
                        Type::Int,
                        "95th percentile latency, in milliseconds",
                    ),
                    field(
                        "p99_ms",
                        Type::Int,
                        "99th percentile latency, in milliseconds",
                    ),
                ],
            )
        };
        let root = record(
            "rollout",
            vec![
                field("plugin", Type::Str, "The plugin being rolled out"),
                field("publisher", Type::Str, "Its publisher's id"),
                field(
                    "first_release",
                    Type::Bool,
                    "Whether no earlier version is generally available (the baseline is empty)",
                ),
                field("step", Type::Int, "The current step, from 1"),
                field("steps", Type::Int, "How many steps the rollout has"),
                field(
                    "weight",
                    Type::Int,
                    "Percent of hosts told to run the new version",
                ),
                field(
                    "minutes_in_step",
                    Type::Int,
                    "Minutes since the current step began",
                ),
                field(
                    "window_minutes",
                    Type::Int,
                    "Length of the window both cohorts are measured over",
                ),
                field(
                    "min_samples",
                    Type::Int,
                    "Fewest calls per cohort in the window before the rollout stage compares them",
                ),
                field(
                    "inconclusive_intervals",
                    Type::Int,
                    "Consecutive earlier intervals that were inconclusive",
                ),
                field("canary", cohort("canary"), "Hosts running the new version"),
                field(
                    "baseline",
                    cohort("baseline"),
                    "Hosts running the version it replaces, over the same window",
                ),
            ],
        );
        Schema {
            name: "rollout",
            root,
            plugin_field: vec!["plugin".into()],
            publisher_field: vec!["publisher".into()],
        }
    }

    /// The schema as JSON Schema (draft 2020-12).
    pub fn json_schema(&self) -> Json {
        let mut doc = type_schema(&self.root, "");
        if let Some(obj) = doc.as_object_mut() {
            obj.insert(
                "$schema".into(),
                json!("https://json-schema.org/draft/2020-12/schema"),
            );
            obj.insert("title".into(), json!("Stellar policy facts"));
        }
        doc
    }
}

fn type_schema(t: &Type, doc: &str) -> Json {
    let mut s = match t {
        Type::Bool => json!({"type": "boolean"}),
        Type::Int => json!({"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX}),
        Type::Str => json!({"type": "string"}),
        Type::Semver => json!({"type": "string", "description": "a semver version"}),
        Type::List(e) => json!({"type": "array", "items": type_schema(e, "")}),
        Type::Set(e) => json!({"type": "array", "uniqueItems": true, "items": type_schema(e, "")}),
        Type::Optional(e) => type_schema(e, ""),
        Type::Error => json!({}),
        Type::Record(r) => {
            let props: serde_json::Map<String, Json> = r
                .fields
                .iter()
                .map(|f| (f.name.clone(), type_schema(&f.ty, &f.doc)))
                .collect();
            let required: Vec<&str> = r
                .fields
                .iter()
                .filter(|f| !matches!(f.ty, Type::Optional(_)))
                .map(|f| f.name.as_str())
                .collect();
            json!({
                "type": "object",
                "properties": props,
                "required": required,
                "additionalProperties": true,
            })
        }
    };
    if !doc.is_empty()
        && let Some(obj) = s.as_object_mut()
    {
        obj.insert("description".into(), json!(doc));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_fields_are_not_required_in_json_schema() {
        let s = Schema::submission().json_schema();
        let required = s["required"].as_array().cloned().unwrap_or_default();
        assert!(required.contains(&json!("name")));
        assert!(!required.contains(&json!("description")));
        assert_eq!(
            s["properties"]["resources"]["properties"]["memory_mb"]["type"],
            "integer"
        );
    }

    #[test]
    fn fitting_respects_optionality() {
        assert!(Type::Int.fits(&Type::optional(Type::Int)));
        assert!(!Type::optional(Type::Int).fits(&Type::Int));
        assert!(Type::set(Type::Str).fits(&Type::list(Type::Str)));
    }
}
