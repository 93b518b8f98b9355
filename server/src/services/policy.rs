//! The active policy pack: loaded and checked once at start-up (a pack with errors stops the
//! server with its diagnostics), identified by name, version and the sha256 of its sources.

use std::path::Path;
use std::sync::Arc;

use dsl::{CheckOptions, Schema};
use sha2::{Digest, Sha256};

/// The marketplace pack built into the binary.
const BUILT_IN: [(&str, &str); 3] = [
    (
        "marketplace/analysis.spl",
        include_str!("../../../policies/marketplace/analysis.spl"),
    ),
    (
        "marketplace/guardrails.spl",
        include_str!("../../../policies/marketplace/guardrails.spl"),
    ),
    (
        "marketplace/limits.spl",
        include_str!("../../../policies/marketplace/limits.spl"),
    ),
];

/// A checked pack, ready to judge facts.
#[derive(Clone)]
pub struct ActivePack {
    pub pack: Arc<dsl::Pack>,
    pub name: String,
    pub version: String,
    pub sha256: String,
}

impl std::fmt::Debug for ActivePack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({})", self.name, self.version, &self.sha256[..12])
    }
}

fn options() -> CheckOptions {
    CheckOptions {
        schema: Schema::submission(),
        today: chrono::Utc::now().date_naive(),
    }
}

fn finish(loaded: dsl::Loaded, sources: &[(String, String)]) -> Result<ActivePack, String> {
    if loaded.has_errors() {
        return Err(format!(
            "the policy pack does not check:\n{}",
            loaded.render(false)
        ));
    }
    let pack = loaded
        .pack
        .ok_or_else(|| "the policy pack has no rules".to_owned())?;
    let (name, version) = pack
        .header()
        .map(|h| (h.name.clone(), h.version.to_string()))
        .unwrap_or_else(|| ("unnamed".into(), "0.0.0".into()));
    let mut hasher = Sha256::new();
    // By file name, each once (a file is both a root and an import when a directory is read).
    let mut sorted: Vec<(&str, &str)> = sources
        .iter()
        .map(|(f, t)| (f.rsplit('/').next().unwrap_or(f), t.as_str()))
        .collect();
    sorted.sort();
    sorted.dedup();
    for (file, text) in sorted {
        hasher.update(file.as_bytes());
        hasher.update([0]);
        hasher.update(text.as_bytes());
        hasher.update([0]);
    }
    Ok(ActivePack {
        pack: Arc::new(pack),
        name,
        version,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// The built-in marketplace pack.
pub fn built_in() -> Result<ActivePack, String> {
    let roots: Vec<(String, String)> = BUILT_IN
        .iter()
        .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
        .collect();
    let loaded = dsl::load(
        roots.clone(),
        |from, target| {
            let dir = from.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            let name = format!("{dir}/{target}");
            BUILT_IN
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
                .ok_or_else(|| format!("`{target}` is not part of the built-in pack"))
        },
        &options(),
    );
    finish(loaded, &roots)
}

/// A pack from a directory of `.spl` files, read exactly as `stellar policy` reads it (the
/// same file-size limit and import rules).
pub fn from_dir(dir: &Path) -> Result<ActivePack, String> {
    use crate::policy_cli::{expand, read, relative};
    let files = expand(&[dir.to_path_buf()])?;
    let mut roots = Vec::new();
    for f in &files {
        roots.push((f.display().to_string(), read(f)?));
    }
    let mut all = roots.clone();
    let loaded = dsl::load(
        roots,
        |from, target| {
            let p = relative(from, target)?;
            let text = read(&p)?;
            all.push((p.display().to_string(), text.clone()));
            Ok((p.display().to_string(), text))
        },
        &options(),
    );
    finish(loaded, &all)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_built_in_pack_checks() {
        let p = super::built_in().expect("built-in pack");
        assert_eq!(p.name, "marketplace-guardrails");
        assert!(p.pack.rules().len() >= 38);
    }

    #[test]
    fn a_pack_directory_is_the_same_pack_as_the_built_in_one() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/marketplace");
        let from_dir = super::from_dir(&dir).expect("pack directory");
        let built_in = super::built_in().expect("built-in pack");
        assert_eq!(
            (from_dir.name, from_dir.version, from_dir.sha256),
            (built_in.name, built_in.version, built_in.sha256)
        );
        let empty = std::env::temp_dir().join(format!("stellar-empty-pack-{}", std::process::id()));
        std::fs::create_dir_all(&empty).expect("dir");
        let err = super::from_dir(&empty).expect_err("no files");
        assert!(err.contains("holds no `.spl` files"), "{err}");
        let _ = std::fs::remove_dir(&empty);
    }
}
