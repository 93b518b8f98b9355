//! The active policy pack: loaded and checked once at start-up (a pack with errors stops the
//! server with its diagnostics), identified by name, version and the sha256 of its sources.
//! Also how a pack directory is read from disk, which `stellar policy` shares, so that the
//! server and the command line read a pack exactly alike.

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

/// The rollback rules built into the binary (`policies/rollout`).
const BUILT_IN_ROLLBACK: [(&str, &str); 1] = [(
    "rollout/rollout.spl",
    include_str!("../../../policies/rollout/rollout.spl"),
)];

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

/// Which facts a pack must judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facts {
    /// A submission's (the marketplace pack).
    Submission,
    /// A rollout interval's (the rollback rules).
    Rollout,
}

fn options_for(facts: Facts) -> CheckOptions {
    CheckOptions {
        schema: match facts {
            Facts::Submission => Schema::submission(),
            Facts::Rollout => Schema::rollout(),
        },
        today: chrono::Utc::now().date_naive(),
    }
}

fn options() -> CheckOptions {
    options_for(Facts::Submission)
}

fn finish(loaded: dsl::Loaded, sources: &[(String, String)]) -> Result<ActivePack, String> {
    finish_for(Facts::Submission, loaded, sources)
}

fn finish_for(
    want: Facts,
    loaded: dsl::Loaded,
    sources: &[(String, String)],
) -> Result<ActivePack, String> {
    let what = match want {
        Facts::Submission => "policy pack",
        Facts::Rollout => "rollback pack",
    };
    if want == Facts::Rollout && !sources.iter().any(|(_, t)| t.contains("facts rollout")) {
        return Err(
            "the rollback pack judges submission facts (no `facts rollout` in its header): \
             rollback rules judge rollout intervals (start the pack header with `facts rollout`, \
             as `policies/rollout/rollout.spl` does)"
                .into(),
        );
    }
    if loaded.has_errors() {
        return Err(format!(
            "the {what} does not check:\n{}",
            loaded.render(false)
        ));
    }
    let pack = loaded
        .pack
        .ok_or_else(|| format!("the {what} has no rules"))?;
    let facts = pack.schema().name;
    match want {
        Facts::Submission if facts != "submission" => {
            return Err(format!(
                "the policy pack judges {facts} facts (its header says `facts {facts}`): the pack \
                 that judges submissions must judge a submission's facts (remove `facts {facts}`, \
                 or give the directory of the marketplace pack)"
            ));
        }
        Facts::Rollout if facts != "rollout" => {
            return Err(format!(
                "the rollback pack judges {facts} facts: rollback rules judge rollout intervals \
                 (start the pack header with `facts rollout`, as `policies/rollout/rollout.spl` does)"
            ));
        }
        _ => {}
    }
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

/// The rollback rules built in.
pub fn rollback_built_in() -> Result<ActivePack, String> {
    let roots: Vec<(String, String)> = BUILT_IN_ROLLBACK
        .iter()
        .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
        .collect();
    let loaded = dsl::load(
        roots.clone(),
        |_, target| {
            Err(format!(
                "`{target}` is not part of the built-in rollback rules"
            ))
        },
        &options_for(Facts::Rollout),
    );
    finish_for(Facts::Rollout, loaded, &roots)
}

/// The rollback rules the configuration names (`--rollback-policy-dir`, or the built-in ones).
pub fn load_rollback(dir: Option<&Path>) -> Result<ActivePack, String> {
    match dir {
        None => rollback_built_in(),
        Some(dir) => {
            let (loaded, all) =
                load_files_recording(&[dir.to_path_buf()], &options_for(Facts::Rollout))
                    .map_err(|e| format!("--rollback-policy-dir: {e}"))?;
            finish_for(Facts::Rollout, loaded, &all)
                .map_err(|e| format!("--rollback-policy-dir: {e}"))
        }
    }
}

/// The pack the configuration names.
pub fn load(source: &crate::config::PackSource) -> Result<ActivePack, String> {
    match source {
        crate::config::PackSource::BuiltIn => built_in(),
        crate::config::PackSource::Dir(dir) => {
            from_dir(dir).map_err(|e| format!("--policy-dir: {e}"))
        }
    }
}

/// Expands directories into their `.spl` files, sorted.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("cannot read the directory `{}`: {e}", p.display()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|f| f.extension().is_some_and(|x| x == "spl"))
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(format!("`{}` holds no `.spl` files", p.display()));
            }
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Reads one policy file, refusing files larger than the language accepts.
pub fn read(path: &Path) -> Result<String, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    if meta.len() > dsl::parse::MAX_FILE_BYTES as u64 {
        return Err(format!(
            "`{}` is larger than {} bytes",
            path.display(),
            dsl::parse::MAX_FILE_BYTES
        ));
    }
    std::fs::read_to_string(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))
}

/// A path named inside a pack, relative to the file that names it, that stays inside the
/// pack's directory tree.
pub fn relative(from_file: &str, target: &str) -> Result<PathBuf, String> {
    let t = Path::new(target);
    if t.is_absolute() || t.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err("give a relative path without `..`".into());
    }
    let base = Path::new(from_file).parent().unwrap_or(Path::new(""));
    Ok(base.join(t))
}

/// Loads (and checks) the pack made of these files and directories, resolving imports on
/// disk.
pub fn load_files(paths: &[PathBuf], options: &CheckOptions) -> Result<dsl::Loaded, String> {
    load_files_recording(paths, options).map(|(loaded, _)| loaded)
}

/// [`load_files`], also returning every file read (roots and imports) with its text.
fn load_files_recording(
    paths: &[PathBuf],
    options: &CheckOptions,
) -> Result<(dsl::Loaded, Vec<(String, String)>), String> {
    let files = expand(paths)?;
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
        options,
    );
    Ok((loaded, all))
}

/// A pack from a directory of `.spl` files, read exactly as `stellar policy` reads it (the
/// same file-size limit and import rules).
pub fn from_dir(dir: &Path) -> Result<ActivePack, String> {
    let (loaded, all) = load_files_recording(&[dir.to_path_buf()], &options())?;
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

    #[test]
    fn the_built_in_rollback_rules_are_the_shipped_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/rollout");
        let from_dir = super::load_rollback(Some(&dir)).expect("rollback dir");
        let built_in = super::rollback_built_in().expect("built-in rollback rules");
        assert_eq!(
            (from_dir.name, from_dir.version, from_dir.sha256),
            (built_in.name, built_in.version, built_in.sha256)
        );
        let marketplace =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/marketplace");
        let err = super::load_rollback(Some(&marketplace)).expect_err("a submission pack");
        assert!(err.contains("judges submission facts"), "{err}");
    }

    #[test]
    fn rollback_rules_that_do_not_check_stop_the_server_with_their_diagnostics() {
        let dir = std::env::temp_dir().join(format!("stellar-bad-rollback-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(
            dir.join("bad.spl"),
            "pack \"bad\" version \"1.0.0\" language 1 facts rollout\n\nrule r {\n  effect deny\n  when input.canary.error_rate > 5\n  message \"x\"\n}\n",
        )
        .expect("write");
        let err = super::load_rollback(Some(&dir)).expect_err("a field that does not exist");
        assert!(
            err.contains("--rollback-policy-dir") && err.contains("does not check"),
            "{err}"
        );
        assert!(
            err.contains("error_rate"),
            "the diagnostic names the field: {err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rollback_rules_are_refused_as_the_pack_that_judges_submissions() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/rollout");
        let err = super::from_dir(&dir).expect_err("a rollout pack");
        assert!(err.contains("judges rollout facts"), "{err}");
    }
}
