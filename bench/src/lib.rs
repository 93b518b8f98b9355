//! The side-by-side benchmark's shared parts: the reference inputs and expected verdicts, and a
//! generator that writes the same rule families in Stellar's language, in Rego and in Cedar, so
//! that the three engines do identical work at 22, 200 and 2,000 rules.
//!
//! Rule `i` of a generated set is variant `k = i / 22` of family `i % 22` (variant 0 of each
//! family is the reference rule). Variants shift thresholds and list members, or add a clause
//! that always holds on the reference inputs, so that every generated rule is distinct.

use std::fmt::Write;
use std::path::{Path, PathBuf};

/// The number of rule families (the reference guardrails).
pub const FAMILIES: usize = 22;

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

/// A clause that holds on every reference input; it makes variants of boolean rules distinct.
fn always(k: usize) -> (String, String, String) {
    let t = 1_000_000 + k;
    (
        format!("input.signatures < {t}"),
        format!("input.signatures < {t}"),
        format!("resource.signatures < {t}"),
    )
}

fn variant(family: usize, k: usize) -> Variant {
    let (s_t, r_t, c_t) = always(k);
    let quoted = |items: &[String]| {
        items
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (name, effect, stellar, rego, cedar): (&str, &str, String, String, String) = match family {
        0 => (
            "mem_limit",
            "deny",
            format!("input.resources.memory_mb > {}", 512 + k),
            format!("input.resources.memory_mb > {}", 512 + k),
            format!("resource.memory_mb > {}", 512 + k),
        ),
        1 => (
            "cpu_limit",
            "deny",
            format!("input.resources.cpu_millis > {}", 2000 + k),
            format!("input.resources.cpu_millis > {}", 2000 + k),
            format!("resource.cpu_millis > {}", 2000 + k),
        ),
        2 => (
            "wasm_size",
            "deny",
            format!("input.resources.wasm_size_kb > {}", 10240 + k),
            format!("input.resources.wasm_size_kb > {}", 10240 + k),
            format!("resource.wasm_size_kb > {}", 10240 + k),
        ),
        3 => (
            "large_wasm",
            "warn",
            format!("input.resources.wasm_size_kb > {}", 5120 + k),
            format!("input.resources.wasm_size_kb > {}", 5120 + k),
            format!("resource.wasm_size_kb > {}", 5120 + k),
        ),
        4 => (
            "community_memory",
            "deny",
            format!(
                "input.publisher.tier == \"community\" and input.resources.memory_mb > {}",
                256 + k
            ),
            format!(
                "input.publisher.tier == \"community\"\n\tinput.resources.memory_mb > {}",
                256 + k
            ),
            format!(
                "principal.tier == \"community\" && resource.memory_mb > {}",
                256 + k
            ),
        ),
        5 => {
            let list = vec![
                "proc:exec".to_owned(),
                "sys:admin".into(),
                "fs:write:/".into(),
                "net:*".into(),
                format!("custom:perm{k}"),
            ];
            (
                "forbidden_permission",
                "deny",
                format!("any(p in input.permissions where p in [{}])", quoted(&list)),
                format!("some p in input.permissions\n\tp in {{{}}}", quoted(&list)),
                format!("resource.permissions.containsAny([{}])", quoted(&list)),
            )
        }
        6 => {
            let list = vec![
                "api.example.com".to_owned(),
                "cdn.example.com".into(),
                format!("host{k}.example.com"),
            ];
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
        }
        7 => (
            "too_many_permissions",
            "deny",
            format!("len(input.permissions) > {}", 8 + k),
            format!("count(input.permissions) > {}", 8 + k),
            format!("resource.perm_count > {}", 8 + k),
        ),
        8 => (
            "fs_write_unverified",
            "deny",
            format!("\"fs:write\" in input.permissions and not input.publisher.verified and {s_t}"),
            format!("\"fs:write\" in input.permissions\n\tnot input.publisher.verified\n\t{r_t}"),
            format!("resource.permissions.contains(\"fs:write\") && !principal.verified && {c_t}"),
        ),
        9 => (
            "unsigned",
            "deny",
            format!("input.signatures < 1 and {s_t}"),
            format!("input.signatures < 1\n\t{r_t}"),
            format!("resource.signatures < 1 && {c_t}"),
        ),
        10 => (
            "unverified_weak_signatures",
            "deny",
            format!("not input.publisher.verified and input.signatures < 2 and {s_t}"),
            format!("not input.publisher.verified\n\tinput.signatures < 2\n\t{r_t}"),
            format!("!principal.verified && resource.signatures < 2 && {c_t}"),
        ),
        11 => (
            "unverified_publisher",
            "warn",
            format!("not input.publisher.verified and {s_t}"),
            format!("not input.publisher.verified\n\t{r_t}"),
            format!("!principal.verified && {c_t}"),
        ),
        12 => {
            let list = vec![
                "evil-corp".to_owned(),
                "shady-llc".into(),
                format!("blocked{k}"),
            ];
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
            let list = vec![
                "AGPL-3.0".to_owned(),
                "GPL-3.0".into(),
                "SSPL-1.0".into(),
                format!("LIC-{k}"),
            ];
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
        14 => (
            "no_license_declared",
            "warn",
            format!("is_empty(input.sbom.licenses) and {s_t}"),
            format!("count(input.sbom.licenses) == 0\n\t{r_t}"),
            format!("resource.licenses.isEmpty() && {c_t}"),
        ),
        15 => (
            "invalid_name",
            "deny",
            format!("not matches(input.name, r\"^[a-z][a-z0-9-]{{2,63}}$\") and {s_t}"),
            format!("not regex.match(`^[a-z][a-z0-9-]{{2,63}}$`, input.name)\n\t{r_t}"),
            format!("!resource.name_valid && {c_t}"),
        ),
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
        17 => (
            "invalid_version",
            "deny",
            format!("not is_semver(input.version) and {s_t}"),
            format!("not semver.is_valid(input.version)\n\t{r_t}"),
            format!("!resource.version_valid && {c_t}"),
        ),
        18 => (
            "prerelease_major_zero",
            "warn",
            format!("is_semver(input.version) and major(semver(input.version)) == 0 and {s_t}"),
            format!("semver.is_valid(input.version)\n\tstartswith(input.version, \"0.\")\n\t{r_t}"),
            format!("resource.version_major == 0 && {c_t}"),
        ),
        19 => (
            "min_host_too_new",
            "deny",
            format!(
                "is_semver(input.compat.min_host) and semver(input.compat.min_host) > semver(\"2.5.{k}\")"
            ),
            format!("semver.compare(input.compat.min_host, \"2.5.{k}\") > 0"),
            format!("resource.min_host > {}", 2_005_000 + k),
        ),
        20 => (
            "max_host_too_old",
            "deny",
            format!(
                "is_semver(input.compat.max_host) and semver(input.compat.max_host) < semver(\"2.5.{k}\")"
            ),
            format!("semver.compare(input.compat.max_host, \"2.5.{k}\") < 0"),
            format!("resource.max_host < {}", 2_005_000 + k),
        ),
        _ => (
            "compat_range_invalid",
            "deny",
            format!(
                "is_semver(input.compat.min_host) and is_semver(input.compat.max_host) and semver(input.compat.min_host) > semver(input.compat.max_host) and {s_t}"
            ),
            format!("semver.compare(input.compat.min_host, input.compat.max_host) > 0\n\t{r_t}"),
            format!("resource.min_host > resource.max_host && {c_t}"),
        ),
    };
    let rid = id(name, k);
    Variant {
        stellar: format!(
            "rule {rid} {{\n  effect   {effect}\n  when     {stellar}\n  message  \"{rid} fired\"\n  fix      \"see the docs\"\n  docs     \"https://stellar.example/docs/rules/{name}\"\n}}\n\n"
        ),
        rego: format!("{effect} contains \"{rid}\" if {{\n\t{rego}\n}}\n\n"),
        cedar: format!(
            "@id(\"{rid}\") @severity(\"{effect}\")\nforbid (principal, action == Action::\"submit\", resource) when {{ {cedar} }};\n\n"
        ),
    }
}

/// A generated set of `n` rules in the three languages: (Stellar pack, Rego policy, Cedar policies).
pub fn generate(n: usize) -> (String, String, String) {
    let mut stellar = String::from("pack \"generated\" version \"1.0.0\" language 1\n\n");
    let mut rego = String::from("package guardrails\n\nimport rego.v1\n\n");
    let mut cedar = String::from(
        "@id(\"allow_baseline\")\npermit (principal, action == Action::\"submit\", resource);\n\n",
    );
    for i in 0..n {
        let v = variant(i % FAMILIES, i / FAMILIES);
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
        assert!(s.contains("rule mem_limit_9 {"));
    }

    #[test]
    fn the_reference_data_is_there() {
        assert_eq!(inputs().len(), 5);
        assert!(inputs().iter().all(|(_, t)| t.starts_with('{')));
        assert_eq!(expected().len(), 5);
    }
}
