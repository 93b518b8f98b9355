//! Intake never panics, whatever the upload: `plugin::inspect` (archive reading with its
//! limits, paths, the manifest, the module's validation and sections, the SBOM) and the
//! publisher-signature check, over hostile bytes.
//!
//! The first byte says where the fuzzer's bytes go, so that every parser is reached often:
//! 0 — the whole upload (a hostile `.tar.gz` or `.zip`); 1 — the entry module of an otherwise
//! valid bundle; 2 — its `plugin.toml`; 3 — its SBOM.
#![no_main]

use std::io::Write;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

const MANIFEST: &[u8] = include_bytes!("../../examples/plugins/clean/plugin.toml");
const SBOM: &[u8] = include_bytes!("../../examples/plugins/clean/sbom.cdx.json");
const WAT: &str = include_str!("../../examples/plugins/clean/plugin.wat");

fn module() -> &'static [u8] {
    static MODULE: OnceLock<Vec<u8>> = OnceLock::new();
    MODULE.get_or_init(|| wat::parse_str(WAT).unwrap_or_default())
}

/// A `.tar.gz` of these files, written without any checks (intake does the checking).
fn bundle(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        let _ = tar.append_data(&mut header, name, *bytes);
    }
    let raw = tar.into_inner().unwrap_or_default();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = gz.write_all(&raw);
    gz.finish().unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let upload = match mode % 4 {
        0 => rest.to_vec(),
        1 => bundle(&[("plugin.toml", MANIFEST), ("plugin.wasm", rest), ("sbom.cdx.json", SBOM)]),
        2 => bundle(&[("plugin.toml", rest), ("plugin.wasm", module()), ("sbom.cdx.json", SBOM)]),
        _ => bundle(&[("plugin.toml", MANIFEST), ("plugin.wasm", module()), ("sbom.cdx.json", rest)]),
    };
    // Tighter than the server's defaults, so that each run stays fast; the checks are the same.
    let limits = plugin::bundle::Limits {
        max_bundle_bytes: 1 << 20,
        max_files: 64,
        max_uncompressed_bytes: 8 << 20,
        max_ratio: 100,
        max_path_len: 255,
    };
    if let Ok(inspected) = plugin::inspect(&upload, &limits) {
        let _ = plugin::signatures(&inspected, &[]);
    }
});
