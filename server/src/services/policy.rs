//! The active policy pack: loaded and checked once at start-up (a pack with errors stops the
//! server with its diagnostics), identified by name, version and the sha256 of its sources.

use std::path::{Component, Path, PathBuf};
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
    let mut sorted: Vec<&(String, String)> = sources.iter().collect();
    sorted.sort();
    for (file, text) in sorted {
        hasher.update(file.rsplit('/').next().unwrap_or(file).as_bytes());
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

/// A pack from a directory of `.spl` files.
pub fn from_dir(dir: &Path) -> Result<ActivePack, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "spl"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("`{}` holds no `.spl` files", dir.display()));
    }
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| format!("cannot read `{}`: {e}", p.display()))
    };
    let mut roots = Vec::new();
    for f in &files {
        roots.push((f.display().to_string(), read(f)?));
    }
    let mut all = roots.clone();
    let loaded = dsl::load(
        roots,
        |from, target| {
            let t = Path::new(target);
            if t.is_absolute() || t.components().any(|c| matches!(c, Component::ParentDir)) {
                return Err("give a relative path without `..`".into());
            }
            let p = Path::new(from).parent().unwrap_or(Path::new("")).join(t);
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
}
