//! Verdicts as the partner's CI reads them: SARIF 2.1.0 for code-scanning tools (GitHub code
//! scanning, GitLab, Azure DevOps show the findings inline) and JUnit XML for test reports.
//!
//! A finding is located where the partner can fix it: `plugin.toml` (at the line of the key its
//! evidence names: `permissions`, `memory_mb`…), the entry module, or the SBOM, from the
//! evidence's fact path. Locations are relative to `--source-root` (the plugin's folder in the
//! partner's repository). Rules carry their docs link, their fix, and the level of their effect.

use std::collections::BTreeMap;

use app::types::{Finding, SubmissionDetail};
use serde_json::{Value, json};

/// What the CLI knows of the bundle it submitted: where its files are, and the manifest text.
#[derive(Debug, Clone, Default)]
pub struct BundleFiles {
    pub manifest: String,
    pub entry: Option<String>,
    pub sbom: Option<String>,
}

impl BundleFiles {
    /// Reads the bundle with the intake limits (a bundle the CLI cannot read still gets a
    /// report, located at `plugin.toml`).
    pub fn read(bytes: &[u8]) -> BundleFiles {
        match plugin::inspect(bytes, &plugin::bundle::Limits::default()) {
            Ok(i) => BundleFiles {
                manifest: String::from_utf8_lossy(i.bundle.get("plugin.toml").unwrap_or_default())
                    .into_owned(),
                entry: Some(i.manifest.entry.clone()),
                sbom: i.manifest.sbom.clone(),
            },
            Err(_) => BundleFiles::default(),
        }
    }
}

/// Where a finding is: file and 1-based line and column.
fn locate(f: &Finding, files: &BundleFiles) -> (String, usize, usize) {
    let fact = f
        .evidence
        .first()
        .map(|e| e.expr.trim().to_owned())
        .unwrap_or_default();
    let root = fact.split(['.', '[', ' ', '(']).next().unwrap_or_default();
    match root {
        "module" | "sandbox" | "network" => {
            if let Some(entry) = &files.entry {
                return (entry.clone(), 1, 1);
            }
        }
        "sbom" | "advisories" => {
            if let Some(sbom) = &files.sbom {
                return (sbom.clone(), 1, 1);
            }
        }
        _ => {}
    }
    // The manifest key the fact comes from: the last path segment is usually the key name
    // (`resources.memory_mb` → `memory_mb`, `permissions` → `permissions`).
    let key = fact
        .split(['.', '[', ' ', '(', ')'])
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .find(|k| files.manifest.lines().any(|l| line_sets(l, k)))
        .unwrap_or(root);
    for (i, line) in files.manifest.lines().enumerate() {
        if line_sets(line, key) {
            let col = line.len() - line.trim_start().len() + 1;
            return ("plugin.toml".into(), i + 1, col);
        }
    }
    ("plugin.toml".into(), 1, 1)
}

fn line_sets(line: &str, key: &str) -> bool {
    let t = line.trim_start();
    !key.is_empty() && t.starts_with(key) && t[key.len()..].trim_start().starts_with('=')
}

fn level(effect: &str) -> &'static str {
    match effect {
        "deny" => "error",
        "warn" => "warning",
        _ => "note",
    }
}

fn message(f: &Finding) -> String {
    let mut m = f.message.clone();
    for e in &f.evidence {
        m.push_str(&format!("\nEvidence: {}", e.text()));
        if let Some(w) = &e.would_pass {
            m.push_str(&format!(" (would pass with {w})"));
        }
    }
    if let Some(fix) = &f.fix {
        m.push_str(&format!("\nFix: {fix}"));
    }
    m
}

fn join(root: &str, path: &str) -> String {
    let root = root.trim_end_matches('/');
    if root.is_empty() || root == "." {
        path.to_owned()
    } else {
        format!("{root}/{path}")
    }
}

/// The verdict as a SARIF 2.1.0 log.
pub fn sarif(d: &SubmissionDetail, files: &BundleFiles, source_root: &str) -> Value {
    let findings: Vec<&Finding> = d.verdict.iter().flat_map(|v| v.findings.iter()).collect();
    let mut rules: BTreeMap<String, (usize, &Finding)> = BTreeMap::new();
    for f in &findings {
        let n = rules.len();
        rules.entry(f.rule.clone()).or_insert((n, f));
    }
    let mut ordered: Vec<(&String, &(usize, &Finding))> = rules.iter().collect();
    ordered.sort_by_key(|(_, (i, _))| *i);
    let rule_docs: Vec<Value> = ordered
        .iter()
        .map(|(id, (_, f))| {
            let mut r = json!({
                "id": id,
                "name": id,
                "shortDescription": {"text": f.message},
                "fullDescription": {"text": f.message},
                "defaultConfiguration": {"level": level(&f.effect)},
                "help": {"text": f.fix.clone().unwrap_or_else(|| f.message.clone())},
                "properties": {"tags": f.tags, "severity": f.severity, "mode": f.mode},
            });
            if let Some(docs) = &f.docs {
                r["helpUri"] = json!(docs);
            }
            r
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let (file, line, column) = locate(f, files);
            json!({
                "ruleId": f.rule,
                "ruleIndex": rules.get(&f.rule).map(|(i, _)| *i).unwrap_or(0),
                "level": level(&f.effect),
                "message": {"text": message(f)},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": join(source_root, &file)},
                        "region": {"startLine": line, "startColumn": column},
                    }
                }],
                "properties": {"waived": f.waiver.is_some(), "severity": f.severity},
            })
        })
        .collect();
    let s = &d.summary;
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "Stellar",
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/stellar-marketplace/stellar",
                "rules": rule_docs,
            }},
            "results": results,
            "invocations": [{"executionSuccessful": d.verdict.is_some()}],
            "properties": {
                "plugin": s.plugin,
                "version": s.version,
                "submission": s.id,
                "decision": d.verdict.as_ref().map(|v| v.decision.as_str()),
                "bundleSha256": s.bundle_sha256,
            },
        }],
    })
}

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {}
            c => out.push(c),
        }
    }
    out
}

/// The verdict as JUnit XML: one test per finding (a deny that counts is a failure), and one
/// for the verdict as a whole.
pub fn junit(d: &SubmissionDetail) -> String {
    let s = &d.summary;
    let suite = xml(&format!("stellar: {} {}", s.plugin, s.version));
    let mut cases = Vec::new();
    let mut failures = 0;
    match &d.verdict {
        Some(v) => {
            let denied = v.decision.as_str() == "deny";
            failures += usize::from(denied);
            cases.push(format!(
                "    <testcase classname=\"stellar.verdict\" name=\"decision\">{}</testcase>",
                if denied {
                    format!(
                        "\n      <failure type=\"deny\" message=\"{}\"/>\n    ",
                        xml(&format!("{} {} is denied", s.plugin, s.version))
                    )
                } else {
                    format!("<system-out>{}</system-out>", xml(v.decision.as_str()))
                }
            ));
            for f in &v.findings {
                let fails = f.effect == "deny" && f.waiver.is_none();
                failures += usize::from(fails);
                let body = if fails {
                    format!(
                        "\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    ",
                        xml(&f.effect),
                        xml(&f.message),
                        xml(&message(f))
                    )
                } else {
                    format!(
                        "<system-out>{}</system-out>",
                        xml(&format!("{}: {}", f.effect, message(f)))
                    )
                };
                cases.push(format!(
                    "    <testcase classname=\"stellar.{}\" name=\"{}\">{body}</testcase>",
                    xml(&f.severity),
                    xml(&f.rule)
                ));
            }
        }
        None => {
            failures += 1;
            cases.push(format!(
                "    <testcase classname=\"stellar.verdict\" name=\"decision\">\n      <error message=\"{}\"/>\n    </testcase>",
                xml(s.error.as_deref().unwrap_or("the analysis did not finish"))
            ));
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"stellar\" tests=\"{n}\" failures=\"{failures}\">\n  <testsuite name=\"{suite}\" tests=\"{n}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">\n{}\n  </testsuite>\n</testsuites>\n",
        cases.join("\n"),
        n = cases.len(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::types::{Evidence, RuleLocation};

    fn finding(rule: &str, effect: &str, expr: &str) -> Finding {
        Finding {
            rule: rule.into(),
            effect: effect.into(),
            mode: "enforce".into(),
            severity: "high".into(),
            tags: vec!["security".into()],
            message: format!("{rule} <fired> & \"quoted\""),
            fix: Some("do better".into()),
            docs: Some(format!("https://stellar.dev/rules/{rule}")),
            location: RuleLocation::default(),
            evidence: vec![Evidence {
                expr: expr.into(),
                value: "1".into(),
                relation: None,
                would_pass: None,
            }],
            waiver: None,
        }
    }

    /// (evidence, where it is found) — tests as data.
    #[test]
    fn findings_are_located_where_the_partner_fixes_them() {
        let files = BundleFiles {
            manifest: "id = \"x\"\npermissions = [\"net:a\"]\n\n[resources]\n  memory_mb = 512\n"
                .into(),
            entry: Some("plugin.wasm".into()),
            sbom: Some("sbom.cdx.json".into()),
        };
        for (expr, want) in [
            ("permissions", ("plugin.toml", 2, 1)),
            ("resources.memory_mb", ("plugin.toml", 5, 3)),
            ("module.imports", ("plugin.wasm", 1, 1)),
            ("sandbox.egress", ("plugin.wasm", 1, 1)),
            ("sbom.licenses", ("sbom.cdx.json", 1, 1)),
            ("signatures", ("plugin.toml", 1, 1)),
        ] {
            let (file, line, col) = locate(&finding("r", "deny", expr), &files);
            assert_eq!((file.as_str(), line, col), want, "{expr}");
        }
    }

    #[test]
    fn junit_escapes_and_counts_failures() {
        let text = xml("a <b> & \"c\"\u{1}");
        assert_eq!(text, "a &lt;b&gt; &amp; &quot;c&quot;");
    }
}
