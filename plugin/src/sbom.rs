//! The SBOM (CycloneDX JSON), license identifiers, the local advisory list and the host
//! compatibility matrix.

use serde::{Deserialize, Serialize};

/// A component of the SBOM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Component {
    pub name: String,
    pub version: String,
    /// SPDX identifiers of its licenses.
    pub licenses: Vec<String>,
}

#[derive(Deserialize)]
struct CycloneDx {
    #[serde(rename = "bomFormat")]
    bom_format: String,
    #[serde(default)]
    components: Vec<RawComponent>,
}

#[derive(Deserialize)]
struct RawComponent {
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    licenses: Vec<RawLicense>,
}

#[derive(Deserialize)]
struct RawLicense {
    #[serde(default)]
    license: Option<LicenseId>,
    #[serde(default)]
    expression: Option<String>,
}

#[derive(Deserialize)]
struct LicenseId {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// Parses a CycloneDX JSON SBOM; the error says what is wrong.
pub fn parse(bytes: &[u8]) -> Result<Vec<Component>, String> {
    let doc: CycloneDx = serde_json::from_slice(bytes)
        .map_err(|e| format!("line {}, column {}: {e}", e.line(), e.column()))?;
    if doc.bom_format != "CycloneDX" {
        return Err(format!(
            "`bomFormat` is `{}`; only CycloneDX JSON SBOMs are read",
            doc.bom_format
        ));
    }
    let mut out = Vec::new();
    for c in doc.components.into_iter().take(10_000) {
        let mut licenses = Vec::new();
        for l in c.licenses {
            if let Some(e) = l.expression {
                licenses.extend(crate::manifest::license_ids(&e));
            }
            if let Some(id) = l.license.and_then(|id| id.id.or(id.name)) {
                licenses.push(id);
            }
        }
        licenses.sort();
        licenses.dedup();
        out.push(Component {
            name: c.name,
            version: c.version,
            licenses,
        });
    }
    Ok(out)
}

/// A known advisory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Advisory {
    pub id: String,
    pub component: String,
    /// Affected versions, a semver requirement (`>=1.0.0, <1.2.3`).
    pub versions: String,
    /// `critical`, `high`, `medium` or `low`.
    pub severity: String,
    pub summary: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvisoryFile {
    #[serde(default)]
    advisory: Vec<Advisory>,
}

/// Parses an advisory list (TOML, `[[advisory]]` tables); checks every version range.
pub fn parse_advisories(text: &str) -> Result<Vec<Advisory>, String> {
    let file: AdvisoryFile = toml::from_str(text).map_err(|e| e.to_string())?;
    for a in &file.advisory {
        semver::VersionReq::parse(&a.versions).map_err(|e| {
            format!(
                "advisory {}: `{}` is not a semver range: {e}",
                a.id, a.versions
            )
        })?;
        if !matches!(a.severity.as_str(), "critical" | "high" | "medium" | "low") {
            return Err(format!(
                "advisory {}: severity `{}` is not critical, high, medium or low",
                a.id, a.severity
            ));
        }
    }
    Ok(file.advisory)
}

/// A matched advisory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Match {
    pub id: String,
    pub component: String,
    pub version: String,
    pub severity: String,
    pub summary: String,
}

/// The advisories that affect the components (by name and version range).
pub fn matches(components: &[Component], advisories: &[Advisory]) -> Vec<Match> {
    let mut out = Vec::new();
    for c in components {
        let Ok(v) = semver::Version::parse(c.version.trim_start_matches('v')) else {
            continue;
        };
        for a in advisories.iter().filter(|a| a.component == c.name) {
            if semver::VersionReq::parse(&a.versions).is_ok_and(|r| r.matches(&v)) {
                out.push(Match {
                    id: a.id.clone(),
                    component: c.name.clone(),
                    version: c.version.clone(),
                    severity: a.severity.clone(),
                    summary: a.summary.clone(),
                });
            }
        }
    }
    out
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostFile {
    hosts: Vec<String>,
}

/// Parses the host compatibility matrix (`hosts = ["2.3.0", …]`).
pub fn parse_hosts(text: &str) -> Result<Vec<semver::Version>, String> {
    let file: HostFile = toml::from_str(text).map_err(|e| e.to_string())?;
    file.hosts
        .iter()
        .map(|h| semver::Version::parse(h).map_err(|e| format!("host `{h}`: {e}")))
        .collect()
}

/// The advisory list shipped with Stellar.
pub const DEFAULT_ADVISORIES: &str = include_str!("../data/advisories.toml");
/// The host compatibility matrix shipped with Stellar.
pub const DEFAULT_HOSTS: &str = include_str!("../data/hosts.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_data_parses() {
        assert!(!parse_advisories(DEFAULT_ADVISORIES).unwrap().is_empty());
        assert!(!parse_hosts(DEFAULT_HOSTS).unwrap().is_empty());
    }

    #[test]
    fn advisories_match_by_range() {
        let adv = parse_advisories(
            r#"[[advisory]]
id = "X-1"
component = "left-pad"
versions = ">=1.0.0, <1.3.0"
severity = "high"
summary = "s""#,
        )
        .unwrap();
        let c = |v: &str| Component {
            name: "left-pad".into(),
            version: v.into(),
            licenses: vec![],
        };
        assert_eq!(matches(&[c("1.2.9")], &adv).len(), 1);
        assert!(matches(&[c("1.3.0")], &adv).is_empty());
    }

    #[test]
    fn reads_cyclonedx_licenses() {
        let sbom = br#"{"bomFormat":"CycloneDX","specVersion":"1.5","components":[
            {"name":"a","version":"1.0.0","licenses":[{"license":{"id":"MIT"}}]},
            {"name":"b","version":"2.0.0","licenses":[{"expression":"GPL-3.0-only OR MIT"}]}]}"#;
        let c = parse(sbom).unwrap();
        assert_eq!(c[1].licenses, vec!["GPL-3.0-only", "MIT"]);
        assert!(parse(b"{").is_err());
    }
}
