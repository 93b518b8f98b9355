//! `stellar plugin pack DIR -o BUNDLE`: builds a bundle from a plugin folder, compiling a
//! `.wat` entry to `.wasm`, signing with the publisher's keys, and checking the result exactly
//! as the server's intake will.

use std::io::Write;
use std::path::Path;

use trust::dsse::{Envelope, Statement, Subject};
use trust::keys::KeyPair;

use crate::{Inspected, Limits, PLUGIN_SIGNATURE_PREDICATE, Rejection, SIGNATURE_DIR, manifest};

/// Why packing failed.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{0}")]
    Manifest(String),
    #[error("{path}: the WebAssembly text does not compile: {message}")]
    Wat { path: String, message: String },
    #[error("the bundle would be refused: {0}")]
    Refused(Rejection),
}

fn read(path: &Path) -> Result<Vec<u8>, PackError> {
    std::fs::read(path).map_err(|e| PackError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Files copied into the bundle when present.
const EXTRAS: [&str; 3] = ["README.md", "CHANGELOG.md", "LICENSE"];

/// The files of a plugin folder that go into a bundle: `plugin.toml`, the entry module (or its
/// `.wat` source), the SBOM it names, and the extras, each by its name in the folder.
pub type PluginFiles = std::collections::BTreeMap<String, Vec<u8>>;

/// Builds the bundle (a deterministic `.tar.gz`) from a plugin folder and checks it as intake
/// would.
pub fn pack_dir(dir: &Path, keys: &[KeyPair]) -> Result<(Vec<u8>, Inspected), PackError> {
    let manifest_path = dir.join("plugin.toml");
    let mut files = PluginFiles::new();
    let manifest_bytes = read(&manifest_path)?;
    let m = parse_manifest(&manifest_bytes, &manifest_path.display().to_string())?;
    files.insert("plugin.toml".into(), manifest_bytes);
    let entry_path = dir.join(&m.entry);
    if entry_path.exists() {
        files.insert(m.entry.clone(), read(&entry_path)?);
    } else {
        let wat_path = entry_path.with_extension("wat");
        let source = read(&wat_path).map_err(|_| PackError::Io {
            path: entry_path.display().to_string(),
            message: format!(
                "the entry module is missing (and there is no {} to compile)",
                wat_path.display()
            ),
        })?;
        files.insert(wat_name(&m.entry), source);
    }
    if let Some(sbom) = &m.sbom {
        files.insert(sbom.clone(), read(&dir.join(sbom))?);
    }
    for extra in EXTRAS {
        let p = dir.join(extra);
        if p.is_file() {
            files.insert(extra.into(), read(&p)?);
        }
    }
    pack_files(&files, keys)
}

fn wat_name(entry: &str) -> String {
    match entry.rsplit_once('.') {
        Some((stem, _)) => format!("{stem}.wat"),
        None => format!("{entry}.wat"),
    }
}

fn parse_manifest(bytes: &[u8], shown_as: &str) -> Result<manifest::Manifest, PackError> {
    let text = std::str::from_utf8(bytes).map_err(|_| PackError::Io {
        path: shown_as.to_owned(),
        message: "not UTF-8 text".into(),
    })?;
    manifest::parse(text).map_err(|errs| {
        PackError::Manifest(
            errs.iter()
                .map(|e| format!("{shown_as}:{}:{}: {}", e.line, e.column, e.message))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })
}

/// Builds the bundle from a plugin's files (as [`pack_dir`] reads them from a folder) and
/// checks it as intake would.
pub fn pack_files(
    files: &PluginFiles,
    keys: &[KeyPair],
) -> Result<(Vec<u8>, Inspected), PackError> {
    let missing = |name: &str| PackError::Io {
        path: name.to_owned(),
        message: "missing from the plugin's files".into(),
    };
    let manifest_bytes = files
        .get("plugin.toml")
        .ok_or_else(|| missing("plugin.toml"))?
        .clone();
    let m = parse_manifest(&manifest_bytes, "plugin.toml")?;
    let mut bundle: Vec<(String, Vec<u8>)> = vec![("plugin.toml".into(), manifest_bytes)];
    let wasm = match files.get(&m.entry) {
        Some(w) => w.clone(),
        None => {
            let wat_path = wat_name(&m.entry);
            let source = files.get(&wat_path).ok_or_else(|| missing(&m.entry))?;
            wat::parse_bytes(source)
                .map_err(|e| PackError::Wat {
                    path: wat_path.clone(),
                    message: e.to_string(),
                })?
                .into_owned()
        }
    };
    bundle.push((m.entry.clone(), wasm.clone()));
    if let Some(sbom) = &m.sbom {
        bundle.push((
            sbom.clone(),
            files.get(sbom).ok_or_else(|| missing(sbom))?.clone(),
        ));
    }
    for extra in EXTRAS {
        if let Some(bytes) = files.get(extra) {
            bundle.push((extra.into(), bytes.clone()));
        }
    }
    let statement = Statement::new(
        vec![
            Subject::of("plugin.toml", &bundle[0].1),
            Subject::of(m.entry.clone(), &wasm),
        ],
        PLUGIN_SIGNATURE_PREDICATE,
        serde_json::json!({"plugin": m.id, "version": m.version, "publisher": m.publisher}),
    );
    for key in keys {
        let env = Envelope::sign_statement(&statement, key);
        bundle.push((
            format!("{SIGNATURE_DIR}{}.json", key.id().short()),
            env.to_json().into_bytes(),
        ));
    }
    let bytes = tar_gz(&bundle).map_err(|e| PackError::Io {
        path: "(bundle)".into(),
        message: e.to_string(),
    })?;
    let inspected = crate::inspect(&bytes, &Limits::default()).map_err(PackError::Refused)?;
    Ok((bytes, inspected))
}

/// A deterministic `.tar.gz`: sorted, mode 0644, mtime 0, no owner names.
pub fn tar_gz(files: &[(String, Vec<u8>)]) -> std::io::Result<Vec<u8>> {
    let mut sorted: Vec<&(String, Vec<u8>)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in sorted {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut h, path, data.as_slice())?;
    }
    let tar = builder.into_inner()?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&tar)?;
    gz.finish()
}
