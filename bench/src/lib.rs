//! The side-by-side benchmark's shared parts: the reference inputs and expected verdicts, and a
//! generator that writes the same rule families in Stellar's language, in Rego and in Cedar, so
//! that the three engines do identical work at 22, 200 and 2,000 rules.
//!
//! Rule `i` of a generated set is variant `k = i / 22` of family `i % 22` (variant 0 of each
//! family is the reference rule). Variants shift thresholds and list members, or add a clause
//! that always holds on the reference inputs, so that every generated rule is distinct.

use std::fmt::Write;
use std::path::{Path, PathBuf};

/// The number of rule families of the reference guardrails.
pub const FAMILIES: usize = 22;
/// The families a rule index cannot skip: every variant must be evaluated on every input
/// (prefix, suffix and regex tests, quantifiers, membership in a list fact).
pub const HARD_FAMILIES: usize = 6;
/// Every family: the reference ones, then the hard ones.
pub const ALL_FAMILIES: usize = FAMILIES + HARD_FAMILIES;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The five reference inputs: name and JSON text.
pub fn inputs() -> Vec<(String, String)> {
    ["clean", "brief", "bad", "warn_only", "gen_trigger"]
        .iter()
        .map(|n| {
            let p = root().join(format!("policies/marketplace/inputs/{n}.json"));
            (
                (*n).to_owned(),
                std::fs::read_to_string(&p).unwrap_or_default(),
            )
        })
        .collect()
}

/// Expected verdict per reference input: (name, deny ids, warn ids), ids sorted.
pub fn expected() -> Vec<(String, Vec<String>, Vec<String>)> {
    let text =
        std::fs::read_to_string(root().join("policies/marketplace/inputs/expected-verdicts.txt"))
            .unwrap_or_default();
    let ids = |s: &str| -> Vec<String> {
        let mut v: Vec<String> = s
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .map(|x| x.trim().trim_matches('"').to_owned())
            .filter(|x| !x.is_empty())
            .collect();
        v.sort();
        v
    };
    text.lines()
        .filter_map(|l| {
            let rest = l.split_once(']')?.1.trim();
            let (name, rest) = rest.split_once(' ')?;
            let deny = ids(rest.split("deny=").nth(1)?.split(" warn=").next()?);
            let warn = ids(rest.split("warn=").nth(1)?);
            Some((name.to_owned(), deny, warn))
        })
        .collect()
}

/// The reference texts: the Stellar pack's files, the Rego policy, the Cedar policies and schema.
pub struct Reference {
    pub stellar: Vec<(String, String)>,
    pub rego: String,
    pub cedar: String,
    pub cedar_schema: String,
}

pub fn reference() -> Reference {
    let read = |p: &str| std::fs::read_to_string(root().join(p)).unwrap_or_default();
    Reference {
        stellar: vec![
            (
                "guardrails.spl".into(),
                read("policies/marketplace/guardrails.spl"),
            ),
            ("limits.spl".into(), read("policies/marketplace/limits.spl")),
        ],
        rego: read("bench/data/guardrails.rego"),
        cedar: read("bench/data/guardrails.cedar"),
        cedar_schema: read("bench/data/guardrails.cedarschema"),
    }
}

/// The three texts of one generated rule.
struct Variant {
    stellar: String,
    rego: String,
    cedar: String,
}

fn id(base: &str, k: usize) -> String {
    if k == 0 {
        base.to_owned()
    } else {
        format!("{base}_{k}")
    }
}

/// Variant `k` of family `family`. Variant 0 is the reference rule; later variants keep the
/// family's shape with their own constants (a threshold further out, another host, licence,
/// publisher or name), as a large real rule set does, so that each one fires only on the inputs
/// it is about (`gen_trigger` is built to trigger a few of them).
fn variant(family: usize, k: usize) -> Variant {
    let quoted = |items: &[String]| {
        items
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let publisher = format!("pub{k}");
    let tier = format!("tier{k}");
    let (name, effect, stellar, rego, cedar): (&str, &str, String, String, String) = match family {
        0 => (
            "mem_limit",
            "deny",
            format!("input.resources.memory_mb > {}", 512 + 100 * k),
            format!("input.resources.memory_mb > {}", 512 + 100 * k),
            format!("resource.memory_mb > {}", 512 + 100 * k),
        ),
        1 => (
            "cpu_limit",
            "deny",
            format!("input.resources.cpu_millis > {}", 2000 + 100 * k),
            format!("input.resources.cpu_millis > {}", 2000 + 100 * k),
            format!("resource.cpu_millis > {}", 2000 + 100 * k),
        ),
        2 => (
            "wasm_size",
            "deny",
            format!("input.resources.wasm_size_kb > {}", 10240 + 100 * k),
            format!("input.resources.wasm_size_kb > {}", 10240 + 100 * k),
            format!("resource.wasm_size_kb > {}", 10240 + 100 * k),
        ),
        3 => (
            "large_wasm",
            "warn",
            format!("input.resources.wasm_size_kb > {}", 5120 + 100 * k),
            format!("input.resources.wasm_size_kb > {}", 5120 + 100 * k),
            format!("resource.wasm_size_kb > {}", 5120 + 100 * k),
        ),
        4 => {
            let t = if k == 0 {
                "community".to_owned()
            } else {
                tier.clone()
            };
            let limit = if k == 0 { 256 } else { 32 };
            (
                "community_memory",
                "deny",
                format!("input.publisher.tier == \"{t}\" and input.resources.memory_mb > {limit}"),
                format!("input.publisher.tier == \"{t}\"\n\tinput.resources.memory_mb > {limit}"),
                format!("principal.tier == \"{t}\" && resource.memory_mb > {limit}"),
            )
        }
        5 => {
            let list = if k == 0 {
                vec![
                    "proc:exec".to_owned(),
                    "sys:admin".into(),
                    "fs:write:/".into(),
                    "net:*".into(),
                ]
            } else {
                vec![format!("custom:perm{k}"), format!("proc:exec{k}")]
            };
            (
                "forbidden_permission",
                "deny",
                format!("any(p in input.permissions where p in [{}])", quoted(&list)),
                format!("some p in input.permissions\n\tp in {{{}}}", quoted(&list)),
                format!("resource.permissions.containsAny([{}])", quoted(&list)),
            )
        }
        6 => {
            if k == 0 {
                let list = vec!["api.example.com".to_owned(), "cdn.example.com".into()];
                (
                    "net_host_not_allowlisted",
                    "deny",
                    format!(
                        "any(p in input.permissions where starts_with(p, \"net:\") and trim_prefix(p, \"net:\") not in [{}])",
                        quoted(&list)
                    ),
                    format!(
                        "some p in input.permissions\n\tstartswith(p, \"net:\")\n\tnot trim_prefix(p, \"net:\") in {{{}}}",
                        quoted(&list)
                    ),
                    format!("!([{}].containsAll(resource.net_hosts))", quoted(&list)),
                )
            } else {
                // Hosts of region k must be on region k's allowlist.
                let host = format!("region{k}.example.com");
                (
                    "net_host_not_allowlisted",
                    "deny",
                    format!(
                        "any(p in input.permissions where ends_with(p, \".region{k}.example.com\") and trim_prefix(p, \"net:\") not in [\"api.{host}\"])"
                    ),
                    format!(
                        "some p in input.permissions\n\tendswith(p, \".region{k}.example.com\")\n\tnot trim_prefix(p, \"net:\") in {{\"api.{host}\"}}"
                    ),
                    // Cedar cannot look inside set elements: the adapter derives the regions
                    // with a permission off their API host (`offregion`).
                    format!("resource.offregion.contains({k})"),
                )
            }
        }
        7 => (
            "too_many_permissions",
            "deny",
            format!("len(input.permissions) > {}", 8 + k),
            format!("count(input.permissions) > {}", 8 + k),
            format!("resource.perm_count > {}", 8 + k),
        ),
        8 => {
            let perm = if k == 0 {
                "fs:write".to_owned()
            } else {
                format!("fs:write{k}")
            };
            (
                "fs_write_unverified",
                "deny",
                format!("\"{perm}\" in input.permissions and not input.publisher.verified"),
                format!("\"{perm}\" in input.permissions\n\tnot input.publisher.verified"),
                format!("resource.permissions.contains(\"{perm}\") && !principal.verified"),
            )
        }
        9 => {
            if k == 0 {
                (
                    "unsigned",
                    "deny",
                    "input.signatures < 1".into(),
                    "input.signatures < 1".into(),
                    "resource.signatures < 1".into(),
                )
            } else {
                (
                    "unsigned",
                    "deny",
                    format!("input.signatures < 1 and input.publisher.id == \"{publisher}\""),
                    format!("input.signatures < 1\n\tinput.publisher.id == \"{publisher}\""),
                    format!("resource.signatures < 1 && principal == Publisher::\"{publisher}\""),
                )
            }
        }
        10 => {
            if k == 0 {
                (
                    "unverified_weak_signatures",
                    "deny",
                    "not input.publisher.verified and input.signatures < 2".into(),
                    "not input.publisher.verified\n\tinput.signatures < 2".into(),
                    "!principal.verified && resource.signatures < 2".into(),
                )
            } else {
                (
                    "unverified_weak_signatures",
                    "deny",
                    format!(
                        "not input.publisher.verified and input.signatures < 2 and input.publisher.tier == \"{tier}\""
                    ),
                    format!(
                        "not input.publisher.verified\n\tinput.signatures < 2\n\tinput.publisher.tier == \"{tier}\""
                    ),
                    format!(
                        "!principal.verified && resource.signatures < 2 && principal.tier == \"{tier}\""
                    ),
                )
            }
        }
        11 => {
            if k == 0 {
                (
                    "unverified_publisher",
                    "warn",
                    "not input.publisher.verified".into(),
                    "not input.publisher.verified".into(),
                    "!principal.verified".into(),
                )
            } else {
                (
                    "unverified_publisher",
                    "warn",
                    format!(
                        "not input.publisher.verified and input.publisher.id == \"{publisher}\""
                    ),
                    format!(
                        "not input.publisher.verified\n\tinput.publisher.id == \"{publisher}\""
                    ),
                    format!("!principal.verified && principal == Publisher::\"{publisher}\""),
                )
            }
        }
        12 => {
            let list = if k == 0 {
                vec!["evil-corp".to_owned(), "shady-llc".into()]
            } else {
                vec![format!("blocked{k}-a"), format!("blocked{k}-b")]
            };
            let cedar_list = list
                .iter()
                .map(|p| format!("Publisher::\"{p}\""))
                .collect::<Vec<_>>()
                .join(", ");
            (
                "blocked_publisher",
                "deny",
                format!("input.publisher.id in [{}]", quoted(&list)),
                format!("input.publisher.id in {{{}}}", quoted(&list)),
                format!("principal in [{cedar_list}]"),
            )
        }
        13 => {
            let list = if k == 0 {
                vec!["AGPL-3.0".to_owned(), "GPL-3.0".into(), "SSPL-1.0".into()]
            } else {
                vec![format!("LIC-{k}")]
            };
            (
                "license_denylist",
                "deny",
                format!(
                    "any(l in input.sbom.licenses where l in [{}])",
                    quoted(&list)
                ),
                format!(
                    "some l in input.sbom.licenses\n\tl in {{{}}}",
                    quoted(&list)
                ),
                format!("resource.licenses.containsAny([{}])", quoted(&list)),
            )
        }
        14 => {
            if k == 0 {
                (
                    "no_license_declared",
                    "warn",
                    "is_empty(input.sbom.licenses)".into(),
                    "count(input.sbom.licenses) == 0".into(),
                    "resource.licenses.isEmpty()".into(),
                )
            } else {
                (
                    "no_license_declared",
                    "warn",
                    format!(
                        "is_empty(input.sbom.licenses) and input.publisher.id == \"{publisher}\""
                    ),
                    format!(
                        "count(input.sbom.licenses) == 0\n\tinput.publisher.id == \"{publisher}\""
                    ),
                    format!(
                        "resource.licenses.isEmpty() && principal == Publisher::\"{publisher}\""
                    ),
                )
            }
        }
        15 => {
            if k == 0 {
                (
                    "invalid_name",
                    "deny",
                    "not matches(input.name, r\"^[a-z][a-z0-9-]{2,63}$\")".into(),
                    "not regex.match(`^[a-z][a-z0-9-]{2,63}$`, input.name)".into(),
                    "!resource.name_valid".into(),
                )
            } else {
                (
                    "invalid_name",
                    "deny",
                    format!("starts_with(input.name, \"evil{k}-\")"),
                    format!("startswith(input.name, \"evil{k}-\")"),
                    format!("resource.name like \"evil{k}-*\""),
                )
            }
        }
        16 => {
            let prefix = if k == 0 {
                "official-".to_owned()
            } else {
                format!("official{k}-")
            };
            (
                "reserved_prefix",
                "deny",
                format!(
                    "starts_with(input.name, \"{prefix}\") and input.publisher.tier != \"partner\""
                ),
                format!(
                    "startswith(input.name, \"{prefix}\")\n\tinput.publisher.tier != \"partner\""
                ),
                format!("resource.name like \"{prefix}*\" && principal.tier != \"partner\""),
            )
        }
        17 => {
            if k == 0 {
                (
                    "invalid_version",
                    "deny",
                    "not is_semver(input.version)".into(),
                    "not semver.is_valid(input.version)".into(),
                    "!resource.version_valid".into(),
                )
            } else {
                (
                    "invalid_version",
                    "deny",
                    format!(
                        "not is_semver(input.version) and input.publisher.id == \"{publisher}\""
                    ),
                    format!(
                        "not semver.is_valid(input.version)\n\tinput.publisher.id == \"{publisher}\""
                    ),
                    format!("!resource.version_valid && principal == Publisher::\"{publisher}\""),
                )
            }
        }
        18 => {
            if k == 0 {
                (
                    "prerelease_major_zero",
                    "warn",
                    "is_semver(input.version) and major(semver(input.version)) == 0".into(),
                    "semver.is_valid(input.version)\n\tstartswith(input.version, \"0.\")".into(),
                    "resource.version_major == 0".into(),
                )
            } else {
                (
                    "prerelease_major_zero",
                    "warn",
                    format!(
                        "is_semver(input.version) and major(semver(input.version)) == 0 and input.publisher.tier == \"{tier}\""
                    ),
                    format!(
                        "semver.is_valid(input.version)\n\tstartswith(input.version, \"0.\")\n\tinput.publisher.tier == \"{tier}\""
                    ),
                    format!("resource.version_major == 0 && principal.tier == \"{tier}\""),
                )
            }
        }
        19 => (
            "min_host_too_new",
            "deny",
            format!(
                "is_semver(input.compat.min_host) and semver(input.compat.min_host) > semver(\"2.{}.0\")",
                5 + k
            ),
            format!(
                "semver.compare(input.compat.min_host, \"2.{}.0\") > 0",
                5 + k
            ),
            format!("resource.min_host > {}", 2_000_000 + 1000 * (5 + k)),
        ),
        20 => {
            let (minor, patch) = if k == 0 { (5, 0) } else { (0, k) };
            (
                "max_host_too_old",
                "deny",
                format!(
                    "is_semver(input.compat.max_host) and semver(input.compat.max_host) < semver(\"2.{minor}.{patch}\")"
                ),
                format!("semver.compare(input.compat.max_host, \"2.{minor}.{patch}\") < 0"),
                format!("resource.max_host < {}", 2_000_000 + 1000 * minor + patch),
            )
        }
        22 => (
            "net_region",
            "deny",
            format!("any(p in input.permissions where starts_with(p, \"net:region{k}.\"))"),
            format!("some p in input.permissions\n\tstartswith(p, \"net:region{k}.\")"),
            format!("resource.net_regions.contains(\"region{k}\")"),
        ),
        23 => (
            "name_suffix",
            "warn",
            format!("ends_with(input.name, \"-ext{k}\")"),
            format!("endswith(input.name, \"-ext{k}\")"),
            format!("resource.name like \"*-ext{k}\""),
        ),
        24 => (
            "name_pattern",
            "deny",
            format!("matches(input.name, r\"^(miner|jack)-v{k}[0-9]*$\")"),
            format!("regex.match(`^(miner|jack)-v{k}[0-9]*$`, input.name)"),
            format!("resource.name_pattern_hits.contains({k})"),
        ),
        25 => (
            "vendor_license",
            "warn",
            format!(
                "any(l in input.sbom.licenses where starts_with(l, \"LicenseRef-vendor{k}-\"))"
            ),
            format!("some l in input.sbom.licenses\n\tstartswith(l, \"LicenseRef-vendor{k}-\")"),
            format!("resource.vendor_licenses.contains(\"{k}\")"),
        ),
        26 => (
            "feature_flag",
            "warn",
            format!("\"cap:feature{k}\" in input.permissions"),
            format!("\"cap:feature{k}\" in input.permissions"),
            format!("resource.permissions.contains(\"cap:feature{k}\")"),
        ),
        27 => (
            "many_fs_permissions",
            "deny",
            format!(
                "count(p in input.permissions where starts_with(p, \"fs:\")) > {}",
                3 + k
            ),
            format!(
                "count([p | some p in input.permissions; startswith(p, \"fs:\")]) > {}",
                3 + k
            ),
            format!("resource.fs_perm_count > {}", 3 + k),
        ),
        _ => {
            if k == 0 {
                ("compat_range_invalid", "deny",
                "is_semver(input.compat.min_host) and is_semver(input.compat.max_host) and semver(input.compat.min_host) > semver(input.compat.max_host)".into(),
                "semver.compare(input.compat.min_host, input.compat.max_host) > 0".into(),
                "resource.min_host > resource.max_host".into())
            } else {
                (
                    "compat_range_invalid",
                    "deny",
                    format!(
                        "input.publisher.id == \"{publisher}\" and is_semver(input.compat.min_host) and is_semver(input.compat.max_host) and semver(input.compat.min_host) > semver(input.compat.max_host)"
                    ),
                    format!(
                        "input.publisher.id == \"{publisher}\"\n\tsemver.compare(input.compat.min_host, input.compat.max_host) > 0"
                    ),
                    format!(
                        "principal == Publisher::\"{publisher}\" && resource.min_host > resource.max_host"
                    ),
                )
            }
        }
    };
    let rid = id(name, k);
    let _ = name;
    Variant {
        // Like the Rego and Cedar rules: an id, an effect and a condition (no message, fix or
        // docs link, which the other two cannot carry).
        stellar: format!("rule {rid} {{\n  effect {effect}\n  when {stellar}\n}}\n\n"),
        rego: format!("{effect} contains \"{rid}\" if {{\n\t{rego}\n}}\n\n"),
        cedar: format!(
            "@id(\"{rid}\") @severity(\"{effect}\")\nforbid (principal, action == Action::\"submit\", resource) when {{ {cedar} }};\n\n"
        ),
    }
}

/// A generated set of `n` rules in the three languages: (Stellar pack, Rego policy, Cedar
/// policies). Rule `i` is variant `i / 28` of family `i % 28`: the 22 reference families and the
/// 6 hard ones, as a large real rule set mixes them (the typical case).
pub fn generate(n: usize) -> (String, String, String) {
    generate_from(n, &(0..ALL_FAMILIES).collect::<Vec<_>>())
}

/// A generated set of `n` rules from the hard families only (the honest worst case): no rule
/// can be skipped by an index on any input.
pub fn generate_hard(n: usize) -> (String, String, String) {
    generate_from(n, &(FAMILIES..ALL_FAMILIES).collect::<Vec<_>>())
}

/// The rule id of variant `k` of family `family`.
pub fn rule_id(family: usize, k: usize) -> String {
    let v = variant(family, k);
    v.stellar
        .trim_start_matches("rule ")
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A generated set of `n` rules cycling over `families`.
pub fn generate_from(n: usize, families: &[usize]) -> (String, String, String) {
    let mut stellar = String::from("pack \"generated\" version \"1.0.0\" language 1\n\n");
    let mut rego = String::from("package guardrails\n\nimport rego.v1\n\n");
    let mut cedar = String::from(
        "@id(\"allow_baseline\")\npermit (principal, action == Action::\"submit\", resource);\n\n",
    );
    for i in 0..n {
        let v = variant(families[i % families.len()], i / families.len());
        stellar.push_str(&v.stellar);
        rego.push_str(&v.rego);
        cedar.push_str(&v.cedar);
    }
    let _ = writeln!(
        rego,
        "decision := {{\"allow\": count(deny) == 0, \"deny\": deny, \"warn\": warn}}"
    );
    (stellar, rego, cedar)
}

/// An input that fires variant `k` of `family`: the clean reference input, changed just
/// enough. The agreement test runs all three engines on one for every family and several `k`,
/// so that a variant on which the engines would disagree cannot hide behind inputs that never
/// fire it.
pub fn trigger(family: usize, k: usize) -> serde_json::Value {
    use serde_json::json;
    let mut v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("policies/marketplace/inputs/clean.json"))
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    let publisher = format!("pub{k}");
    let tier = format!("tier{k}");
    let k64 = k as i64;
    let push = |v: &mut serde_json::Value, perm: String| {
        if let Some(a) = v["permissions"].as_array_mut() {
            a.push(json!(perm));
        }
    };
    match family {
        0 => v["resources"]["memory_mb"] = json!(513 + 100 * k64),
        1 => v["resources"]["cpu_millis"] = json!(2001 + 100 * k64),
        2 => v["resources"]["wasm_size_kb"] = json!(10241 + 100 * k64),
        3 => v["resources"]["wasm_size_kb"] = json!(5121 + 100 * k64),
        4 => {
            v["publisher"]["tier"] = json!(if k == 0 { "community".to_owned() } else { tier });
            v["resources"]["memory_mb"] = json!(300);
        }
        5 => push(
            &mut v,
            if k == 0 {
                "proc:exec".into()
            } else {
                format!("custom:perm{k}")
            },
        ),
        6 => push(
            &mut v,
            if k == 0 {
                "net:evil.example.org".into()
            } else {
                format!("net:cdn.region{k}.example.com")
            },
        ),
        7 => {
            for i in 0..(9 + k) {
                push(&mut v, format!("kv:slot{i}"));
            }
        }
        8 => {
            push(
                &mut v,
                if k == 0 {
                    "fs:write".into()
                } else {
                    format!("fs:write{k}")
                },
            );
            v["publisher"]["verified"] = json!(false);
            v["signatures"] = json!(3);
        }
        9 => {
            v["signatures"] = json!(0);
            if k > 0 {
                v["publisher"]["id"] = json!(publisher);
            }
        }
        10 => {
            v["publisher"]["verified"] = json!(false);
            v["signatures"] = json!(1);
            if k > 0 {
                v["publisher"]["tier"] = json!(tier);
            }
        }
        11 => {
            v["publisher"]["verified"] = json!(false);
            v["signatures"] = json!(3);
            if k > 0 {
                v["publisher"]["id"] = json!(publisher);
            }
        }
        12 => {
            v["publisher"]["id"] = json!(if k == 0 {
                "evil-corp".to_owned()
            } else {
                format!("blocked{k}-a")
            })
        }
        13 => {
            v["sbom"]["licenses"] = json!([if k == 0 {
                "GPL-3.0".to_owned()
            } else {
                format!("LIC-{k}")
            }])
        }
        14 => {
            v["sbom"]["licenses"] = json!([]);
            if k > 0 {
                v["publisher"]["id"] = json!(publisher);
            }
        }
        15 => {
            v["name"] = json!(if k == 0 {
                "Bad Name!".to_owned()
            } else {
                format!("evil{k}-thing")
            })
        }
        16 => {
            v["name"] = json!(if k == 0 {
                "official-tool".to_owned()
            } else {
                format!("official{k}-tool")
            });
            v["publisher"]["tier"] = json!("community");
        }
        17 => {
            v["version"] = json!("1.0");
            if k > 0 {
                v["publisher"]["id"] = json!(publisher);
            }
        }
        18 => {
            v["version"] = json!("0.3.1");
            if k > 0 {
                v["publisher"]["tier"] = json!(tier);
            }
        }
        19 => v["compat"]["min_host"] = json!(format!("2.{}.1", 5 + k)),
        20 => {
            v["compat"]["max_host"] = json!(if k == 0 {
                "2.4.9".to_owned()
            } else {
                format!("1.9.{k}")
            })
        }
        21 => {
            v["compat"]["min_host"] = json!("3.1.0");
            if k > 0 {
                v["publisher"]["id"] = json!(publisher);
            }
        }
        22 => push(&mut v, format!("net:region{k}.example.com")),
        23 => v["name"] = json!(format!("acme-logger-ext{k}")),
        24 => v["name"] = json!(format!("miner-v{k}7")),
        25 => v["sbom"]["licenses"] = json!(["MIT", format!("LicenseRef-vendor{k}-pro")]),
        26 => push(&mut v, format!("cap:feature{k}")),
        _ => {
            for i in 0..(4 + k) {
                push(&mut v, format!("fs:read{i}"));
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_writes_distinct_rules() {
        let (s, r, c) = generate(200);
        assert_eq!(
            s.matches("\nrule ").count() + usize::from(s.starts_with("rule ")),
            200
        );
        assert_eq!(r.matches(" contains \"").count(), 200);
        assert_eq!(c.matches("forbid (").count(), 200);
        assert!(s.contains("rule mem_limit_7 {"));
    }

    #[test]
    fn hard_sets_use_only_the_hard_families() {
        let (s, _, _) = generate_hard(12);
        assert!(s.contains("rule net_region {") && s.contains("rule many_fs_permissions_1 {"));
        assert!(!s.contains("mem_limit"));
        assert_eq!(rule_id(0, 3), "mem_limit_3");
        assert_eq!(rule_id(27, 0), "many_fs_permissions");
    }

    #[test]
    fn the_reference_data_is_there() {
        assert_eq!(inputs().len(), 5);
        assert!(inputs().iter().all(|(_, t)| t.starts_with('{')));
        assert_eq!(expected().len(), 5);
    }
}
