//! Safe unpacking of a bundle (`.tar.gz` or `.zip`) into memory, with limits enforced while
//! reading: nothing is written to disk, and a hostile archive stops at the first byte past a
//! limit. Every error names the offending file and the limit.

use std::collections::BTreeMap;
use std::io::{self, Read};

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Limits on a bundle. Defaults are documented in `docs/plugin-bundle.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Size of the bundle file itself.
    pub max_bundle_bytes: u64,
    /// Files in the bundle (directories not counted).
    pub max_files: usize,
    /// Sum of the uncompressed sizes of all files.
    pub max_uncompressed_bytes: u64,
    /// Uncompressed size over bundle size.
    pub max_ratio: u64,
    /// Length of a path inside the bundle.
    pub max_path_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bundle_bytes: 50 * 1024 * 1024,
            max_files: 1_000,
            max_uncompressed_bytes: 200 * 1024 * 1024,
            max_ratio: 100,
            max_path_len: 255,
        }
    }
}

/// Why a bundle was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error(
        "the bundle is {size} bytes; the limit is {limit} bytes (raise --max-bundle-bytes or make the bundle smaller)"
    )]
    TooLarge { size: u64, limit: u64 },
    #[error("the bundle is neither a .tar.gz nor a .zip archive (its first bytes are {magic})")]
    UnknownFormat { magic: String },
    #[error("the archive is damaged: {0}")]
    Corrupt(String),
    #[error("`{path}`: {reason}")]
    BadPath { path: String, reason: &'static str },
    #[error("`{path}` is a {kind}; bundles may hold only regular files and directories")]
    NotAFile { path: String, kind: &'static str },
    #[error("`{path}` appears twice in the bundle")]
    Duplicate { path: String },
    #[error("the bundle holds more than {limit} files (at `{path}`)")]
    TooManyFiles { path: String, limit: usize },
    #[error(
        "`{path}`: the files add up to more than {limit} bytes uncompressed; the limit is {limit} bytes"
    )]
    Uncompressed { path: String, limit: u64 },
    #[error(
        "`{path}`: the bundle expands more than {limit} times its size (a compression bomb?); the limit is a ratio of {limit}"
    )]
    Ratio { path: String, limit: u64 },
}

impl BundleError {
    /// A stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            BundleError::TooLarge { .. } => "bundle_too_large",
            BundleError::UnknownFormat { .. } => "bundle_format",
            BundleError::Corrupt(_) => "bundle_corrupt",
            BundleError::BadPath { .. } => "bundle_path",
            BundleError::NotAFile { .. } => "bundle_link",
            BundleError::Duplicate { .. } => "bundle_duplicate",
            BundleError::TooManyFiles { .. } => "bundle_too_many_files",
            BundleError::Uncompressed { .. } => "bundle_uncompressed_size",
            BundleError::Ratio { .. } => "bundle_ratio",
        }
    }
}

/// The files of a bundle, by normalised path.
#[derive(Debug, Clone, Default)]
pub struct Bundle {
    pub files: BTreeMap<String, Vec<u8>>,
    /// sha256 of the bundle file, hex.
    pub sha256: String,
    pub size: u64,
}

impl Bundle {
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }
}

/// sha256 of bytes, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Normalises a path inside an archive, refusing anything that could leave the bundle.
fn normalise(raw: &str, limits: &Limits) -> Result<String, BundleError> {
    let bad = |reason| BundleError::BadPath {
        path: raw.chars().take(300).collect(),
        reason,
    };
    if raw.len() > limits.max_path_len {
        return Err(bad("the path is too long"));
    }
    if raw.starts_with('/') || raw.starts_with('\\') || raw.get(1..2) == Some(":") {
        return Err(bad("absolute paths are not allowed"));
    }
    if raw.contains('\\') {
        return Err(bad("backslashes are not allowed in paths"));
    }
    if raw.chars().any(|c| c.is_control()) {
        return Err(bad("control characters are not allowed in paths"));
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(bad("`..` would leave the bundle (path traversal)")),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(bad("empty path"));
    }
    Ok(parts.join("/"))
}

/// Counts bytes read through it and fails once more than `limit` have come through.
struct Capped<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(io::Error::other(CAPPED));
        }
        Ok(n)
    }
}

const CAPPED: &str = "stellar: stream limit reached";

struct Collector<'l> {
    limits: &'l Limits,
    compressed: u64,
    total: u64,
    files: BTreeMap<String, Vec<u8>>,
}

impl Collector<'_> {
    fn budget(&self) -> u64 {
        let by_ratio = self.compressed.saturating_mul(self.limits.max_ratio);
        self.limits
            .max_uncompressed_bytes
            .min(by_ratio)
            .saturating_sub(self.total)
    }

    fn over(&self, path: &str) -> BundleError {
        let by_ratio = self.compressed.saturating_mul(self.limits.max_ratio);
        if by_ratio < self.limits.max_uncompressed_bytes {
            BundleError::Ratio {
                path: path.to_owned(),
                limit: self.limits.max_ratio,
            }
        } else {
            BundleError::Uncompressed {
                path: path.to_owned(),
                limit: self.limits.max_uncompressed_bytes,
            }
        }
    }

    fn add(&mut self, raw: &str, mut reader: impl Read) -> Result<(), BundleError> {
        let path = normalise(raw, self.limits)?;
        if self.files.contains_key(&path) {
            return Err(BundleError::Duplicate { path });
        }
        if self.files.len() >= self.limits.max_files {
            return Err(BundleError::TooManyFiles {
                path,
                limit: self.limits.max_files,
            });
        }
        let budget = self.budget();
        let mut data = Vec::new();
        let n = (&mut reader)
            .take(budget.saturating_add(1))
            .read_to_end(&mut data)
            .map_err(|e| io_error(e, &path, self))?;
        if n as u64 > budget {
            return Err(self.over(&path));
        }
        self.total += n as u64;
        self.files.insert(path, data);
        Ok(())
    }
}

fn io_error(e: io::Error, path: &str, c: &Collector<'_>) -> BundleError {
    if e.to_string().contains(CAPPED) {
        c.over(path)
    } else {
        BundleError::Corrupt(format!("`{path}`: {e}"))
    }
}

/// Reads a bundle from its bytes.
pub fn read(bytes: &[u8], limits: &Limits) -> Result<Bundle, BundleError> {
    let size = bytes.len() as u64;
    if size > limits.max_bundle_bytes {
        return Err(BundleError::TooLarge {
            size,
            limit: limits.max_bundle_bytes,
        });
    }
    let mut c = Collector {
        limits,
        compressed: size.max(1),
        total: 0,
        files: BTreeMap::new(),
    };
    if bytes.starts_with(&[0x1f, 0x8b]) {
        read_tar_gz(bytes, &mut c)?;
    } else if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        read_zip(bytes, &mut c)?;
    } else {
        let magic = bytes
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ");
        return Err(BundleError::UnknownFormat {
            magic: if magic.is_empty() {
                "missing: the file is empty".into()
            } else {
                magic
            },
        });
    }
    Ok(Bundle {
        files: c.files,
        sha256: sha256_hex(bytes),
        size,
    })
}

fn read_tar_gz(bytes: &[u8], c: &mut Collector<'_>) -> Result<(), BundleError> {
    // The whole decompressed stream (headers included) is capped, so padding and headers
    // cannot be used to expand the archive either.
    let cap = c
        .limits
        .max_uncompressed_bytes
        .min(c.compressed.saturating_mul(c.limits.max_ratio))
        .saturating_add(1024 * 1024 + 1024 * c.limits.max_files as u64);
    let gz = flate2::read::GzDecoder::new(bytes);
    let mut archive = tar::Archive::new(Capped {
        inner: gz,
        read: 0,
        limit: cap,
    });
    let entries = archive
        .entries()
        .map_err(|e| BundleError::Corrupt(e.to_string()))?;
    for entry in entries {
        let entry = entry.map_err(|e| {
            if e.to_string().contains(CAPPED) {
                c.over("(archive stream)")
            } else {
                BundleError::Corrupt(e.to_string())
            }
        })?;
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            normalise(&raw_path, c.limits)?;
            continue;
        }
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        let refused = if kind.is_symlink() {
            Some("symbolic link")
        } else if kind.is_hard_link() {
            Some("hard link")
        } else if kind.is_character_special() || kind.is_block_special() {
            Some("device")
        } else if kind.is_fifo() {
            Some("named pipe")
        } else if !kind.is_file() {
            Some("special entry")
        } else {
            None
        };
        if let Some(kind) = refused {
            return Err(BundleError::NotAFile {
                path: raw_path,
                kind,
            });
        }
        c.add(&raw_path, entry)?;
    }
    Ok(())
}

fn read_zip(bytes: &[u8], c: &mut Collector<'_>) -> Result<(), BundleError> {
    let mut archive = zip::ZipArchive::new(io::Cursor::new(bytes))
        .map_err(|e| BundleError::Corrupt(e.to_string()))?;
    if archive.len() > c.limits.max_files.saturating_mul(2) + 16 {
        return Err(BundleError::TooManyFiles {
            path: "(zip directory)".into(),
            limit: c.limits.max_files,
        });
    }
    for i in 0..archive.len() {
        let file = archive
            .by_index(i)
            .map_err(|e| BundleError::Corrupt(e.to_string()))?;
        let raw_path = String::from_utf8_lossy(file.name_raw()).into_owned();
        if file.is_dir() {
            normalise(&raw_path, c.limits)?;
            continue;
        }
        if file.is_symlink() {
            return Err(BundleError::NotAFile {
                path: raw_path,
                kind: "symbolic link",
            });
        }
        c.add(&raw_path, file)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tar_gz(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            // set_path refuses `..`; write the raw name like a hostile tool would.
            let name = path.as_bytes();
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        let tar = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn reads_a_tar_gz() {
        let b = read(
            &tar_gz(&[("./plugin.toml", b"x"), ("a/b.wasm", b"yy")]),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(b.files.len(), 2);
        assert_eq!(b.get("plugin.toml"), Some(&b"x"[..]));
    }

    #[test]
    fn refuses_traversal_and_duplicates() {
        let e = read(&tar_gz(&[("../evil", b"x")]), &Limits::default()).unwrap_err();
        assert!(matches!(e, BundleError::BadPath { .. }), "{e}");
        let e = read(&tar_gz(&[("a", b"x"), ("./a", b"y")]), &Limits::default()).unwrap_err();
        assert_eq!(e, BundleError::Duplicate { path: "a".into() });
    }

    #[test]
    fn refuses_a_bomb_early() {
        let zeros = vec![0u8; 8 * 1024 * 1024];
        let e = read(&tar_gz(&[("big", &zeros)]), &Limits::default()).unwrap_err();
        assert!(matches!(e, BundleError::Ratio { .. }), "{e}");
    }

    #[test]
    fn refuses_unknown_formats() {
        assert!(matches!(
            read(b"hello", &Limits::default()),
            Err(BundleError::UnknownFormat { .. })
        ));
        assert!(matches!(
            read(&[0x1f, 0x8b, 0, 0], &Limits::default()),
            Err(BundleError::Corrupt(_))
        ));
    }
}
