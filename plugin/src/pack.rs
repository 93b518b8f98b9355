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

/// Builds the bundle (a deterministic `.tar.gz`) and checks it as intake would.
pub fn pack_dir(dir: &Path, keys: &[KeyPair]) -> Result<(Vec<u8>, Inspected), PackError> {
    let manifest_path = dir.join("plugin.toml");
    let manifest_bytes = read(&manifest_path)?;
    let text = String::from_utf8(manifest_bytes.clone()).map_err(|_| PackError::Io {
        path: manifest_path.display().to_string(),
        message: "not UTF-8 text".into(),
    })?;
    let m = manifest::parse(&text).map_err(|errs| {
        PackError::Manifest(
            errs.iter()
                .map(|e| {
                    format!(
                        "{}:{}:{}: {}",
                        manifest_path.display(),
                        e.line,
                        e.column,
                        e.message
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    let mut files: Vec<(String, Vec<u8>)> = vec![("plugin.toml".into(), manifest_bytes)];
    let entry_path = dir.join(&m.entry);
    let wasm = if entry_path.exists() {
        read(&entry_path)?
    } else {
        let wat_path = entry_path.with_extension("wat");
        let source = read(&wat_path).map_err(|_| PackError::Io {
            path: entry_path.display().to_string(),
            message: format!(
                "the entry module is missing (and there is no {} to compile)",
                wat_path.display()
            ),
        })?;
        wat::parse_bytes(&source)
            .map_err(|e| PackError::Wat {
                path: wat_path.display().to_string(),
                message: e.to_string(),
            })?
            .into_owned()
    };
    files.push((m.entry.clone(), wasm.clone()));
    if let Some(sbom) = &m.sbom {
        files.push((sbom.clone(), read(&dir.join(sbom))?));
    }
    for extra in EXTRAS {
        let p = dir.join(extra);
        if p.is_file() {
            files.push((extra.into(), read(&p)?));
        }
    }
    let statement = Statement::new(
        vec![
            Subject::of("plugin.toml", &files[0].1),
            Subject::of(m.entry.clone(), &wasm),
        ],
        PLUGIN_SIGNATURE_PREDICATE,
        serde_json::json!({"plugin": m.id, "version": m.version, "publisher": m.publisher}),
    );
    for key in keys {
        let env = Envelope::sign_statement(&statement, key);
        files.push((
            format!("{SIGNATURE_DIR}{}.json", key.id().short()),
            env.to_json().into_bytes(),
        ));
    }
    let bytes = tar_gz(&files).map_err(|e| PackError::Io {
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
