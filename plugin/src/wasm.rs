//! Static analysis of the entry module with `wasmparser`: validation, imports mapped to
//! capabilities, exports, memory limits, the start function, custom sections.

use serde::Serialize;
use wasmparser::{Parser, Payload, TypeRef, Validator, WasmFeatures};

/// The module name of the host interface.
pub const HOST_MODULE: &str = "stellar";

/// The host interface: every function a plugin may import from `stellar`, its signature (as
/// text, for the docs and errors) and the capability it needs (`None`: always granted).
pub const HOST_FUNCTIONS: &[(&str, &str, Option<&str>)] = &[
    ("log", "(ptr: i32, len: i32)", None),
    (
        "kv_get",
        "(key_ptr, key_len, out_ptr, out_cap: i32) -> i32",
        None,
    ),
    (
        "kv_set",
        "(key_ptr, key_len, val_ptr, val_len: i32) -> i32",
        None,
    ),
    ("clock_now_ms", "() -> i64", Some("clock")),
    ("random_u64", "() -> i64", Some("random")),
    (
        "http_get",
        "(url_ptr, url_len, out_ptr, out_cap: i32) -> i32",
        Some("net"),
    ),
    (
        "env_get",
        "(name_ptr, name_len, out_ptr, out_cap: i32) -> i32",
        Some("env"),
    ),
    (
        "fs_read",
        "(path_ptr, path_len, out_ptr, out_cap: i32) -> i32",
        Some("fs:read"),
    ),
];

/// Size of a WebAssembly page.
pub const PAGE: u64 = 64 * 1024;

/// What the module is and what it asks of the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ModuleFacts {
    pub size_bytes: u64,
    /// `module.name` of every import.
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    /// Capabilities the imports need (sorted, deduplicated).
    pub capabilities: Vec<String>,
    /// Imports that are not part of the host interface.
    pub unknown_imports: Vec<String>,
    /// Initial linear memory (defined or imported), in bytes.
    pub memory_initial_bytes: u64,
    /// Declared maximum, if any.
    pub memory_max_bytes: Option<u64>,
    pub has_start: bool,
    pub custom_sections: Vec<String>,
    pub functions: u32,
}

/// Why a module was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModuleError {
    #[error("`{path}` is not a WebAssembly module (it does not start with `\\0asm`)")]
    NotWasm { path: String },
    #[error("`{path}` is not a valid WebAssembly module: {message} (at byte {offset})")]
    Invalid {
        path: String,
        message: String,
        offset: u64,
    },
    #[error(
        "`{path}` has more than {limit} {what}: the analysis reads at most that many (make the module smaller, or strip its custom sections)"
    )]
    TooMany {
        path: String,
        what: &'static str,
        limit: u32,
    },
}

/// Most custom sections a module may have (names, producers and debug info take a handful).
pub const MAX_CUSTOM_SECTIONS: u32 = 64;
/// Most imports a module may have.
pub const MAX_IMPORTS: u32 = 1_000;
/// Most exports a module may have.
pub const MAX_EXPORTS: u32 = 1_000;

/// Validates and analyses a module.
pub fn analyse(path: &str, bytes: &[u8]) -> Result<ModuleFacts, ModuleError> {
    if !bytes.starts_with(b"\0asm") {
        return Err(ModuleError::NotWasm {
            path: path.to_owned(),
        });
    }
    let invalid = |e: wasmparser::BinaryReaderError| ModuleError::Invalid {
        path: path.to_owned(),
        message: e.message().to_owned(),
        offset: e.offset(),
    };
    let too_many = |what: &'static str, limit: u32| ModuleError::TooMany {
        path: path.to_owned(),
        what,
        limit,
    };
    let mut facts = ModuleFacts {
        size_bytes: bytes.len() as u64,
        ..ModuleFacts::default()
    };
    let mut caps = std::collections::BTreeSet::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(invalid)? {
            Payload::ImportSection(reader) => {
                if reader.count() > MAX_IMPORTS {
                    return Err(too_many("imports", MAX_IMPORTS));
                }
                for import in reader.into_imports() {
                    let import = import.map_err(invalid)?;
                    let full = format!("{}.{}", import.module, import.name);
                    match import.ty {
                        TypeRef::Func(_) if import.module == HOST_MODULE => {
                            match HOST_FUNCTIONS.iter().find(|(n, _, _)| *n == import.name) {
                                Some((_, _, cap)) => {
                                    caps.insert(cap.unwrap_or("log").to_owned());
                                }
                                None => facts.unknown_imports.push(full.clone()),
                            }
                        }
                        TypeRef::Memory(m) => {
                            facts.memory_initial_bytes = m.initial.saturating_mul(PAGE);
                            facts.memory_max_bytes = m.maximum.map(|p| p.saturating_mul(PAGE));
                            facts.unknown_imports.push(full.clone());
                        }
                        _ => facts.unknown_imports.push(full.clone()),
                    }
                    facts.imports.push(full);
                }
            }
            Payload::ExportSection(reader) => {
                if reader.count() > MAX_EXPORTS {
                    return Err(too_many("exports", MAX_EXPORTS));
                }
                for export in reader {
                    facts.exports.push(export.map_err(invalid)?.name.to_owned());
                }
            }
            Payload::MemorySection(reader) => {
                for m in reader {
                    let m = m.map_err(invalid)?;
                    facts.memory_initial_bytes = m.initial.saturating_mul(PAGE);
                    facts.memory_max_bytes = m.maximum.map(|p| p.saturating_mul(PAGE));
                }
            }
            Payload::FunctionSection(reader) => facts.functions = reader.count(),
            Payload::StartSection { .. } => facts.has_start = true,
            Payload::CustomSection(reader) => {
                // Counted while reading, before anything else is done with the module: five
                // million empty sections cost nothing to send and a lot to validate.
                if facts.custom_sections.len() as u32 >= MAX_CUSTOM_SECTIONS {
                    return Err(too_many("custom sections", MAX_CUSTOM_SECTIONS));
                }
                facts.custom_sections.push(reader.name().to_owned());
            }
            _ => {}
        }
        if facts.imports.len() as u32 > MAX_IMPORTS {
            return Err(too_many("imports", MAX_IMPORTS));
        }
    }
    // The features the sandbox runs: the WebAssembly 2.0 set, without threads or memory64.
    let features = WasmFeatures::WASM2;
    Validator::new_with_features(features)
        .validate_all(bytes)
        .map_err(invalid)?;
    // `log` and `kv` need no permission; they are capabilities all the same.
    let kv = facts
        .imports
        .iter()
        .any(|i| i == "stellar.kv_get" || i == "stellar.kv_set");
    if kv {
        caps.insert("kv".into());
    }
    facts.capabilities = caps.into_iter().collect();
    Ok(facts)
}

/// Capabilities that need a declared permission.
pub fn needs_permission(capability: &str) -> bool {
    matches!(capability, "clock" | "random" | "net" | "env" | "fs:read")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_imports_to_capabilities() {
        let wasm = wat::parse_str(
            r#"(module
                (import "stellar" "http_get" (func (param i32 i32 i32 i32) (result i32)))
                (import "stellar" "log" (func (param i32 i32)))
                (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
                (memory (export "memory") 2 4)
                (func (export "run"))
                (@custom "producers" "x"))"#,
        )
        .unwrap();
        let f = analyse("plugin.wasm", &wasm).unwrap();
        assert_eq!(f.capabilities, vec!["log", "net"]);
        assert_eq!(f.unknown_imports, vec!["wasi_snapshot_preview1.fd_write"]);
        assert_eq!(f.exports, vec!["memory", "run"]);
        assert_eq!(f.memory_initial_bytes, 2 * PAGE);
        assert_eq!(f.memory_max_bytes, Some(4 * PAGE));
        assert_eq!(f.custom_sections, vec!["producers"]);
    }

    #[test]
    fn refuses_junk_and_truncation() {
        assert!(matches!(
            analyse("a.wasm", b"hello"),
            Err(ModuleError::NotWasm { .. })
        ));
        let wasm = wat::parse_str("(module (func (export \"run\")))").unwrap();
        let cut = &wasm[..wasm.len() - 3];
        assert!(matches!(
            analyse("a.wasm", cut),
            Err(ModuleError::Invalid { .. })
        ));
    }

    #[test]
    fn a_module_of_endless_custom_sections_is_refused_early() {
        // A valid module header followed by a million empty custom sections (id 0, size 2,
        // name length 1, name "x"): 4 MB that used to take seconds to validate.
        let mut bytes = b"\0asm\x01\0\0\0".to_vec();
        for _ in 0..1_000_000 {
            bytes.extend_from_slice(&[0, 2, 1, b'x']);
        }
        let err = analyse("a.wasm", &bytes).expect_err("refused");
        assert!(
            matches!(
                err,
                ModuleError::TooMany {
                    what: "custom sections",
                    limit: MAX_CUSTOM_SECTIONS,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains("more than 64 custom sections"),
            "{err}"
        );
    }
}
