//! Adapters that give Stellar, Cedar and regorus one interface: load a rule set, decide on
//! facts (prepared, or from JSON text). Shared by the agreement test and the benchmark.
//!
//! Cedar has no regex, semver, string splitting or set size, so its adapter derives those
//! attributes on the host side from the JSON (as its schema says); that work is part of Cedar's
//! end-to-end time.

#![allow(
    dead_code,
    reason = "each user of this module takes the parts it needs"
)]

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicySet, Request,
    RestrictedExpression, Schema, ValidationMode, Validator,
};
use chrono::NaiveDate;
use regorus::rvm::program::Program;
use regorus::rvm::vm::RegoVM;

/// Deny and warn rule ids, sorted.
pub type Outcome = (Vec<String>, Vec<String>);

pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 28).unwrap_or_default()
}

// ----- Stellar -------------------------------------------------------------------------------

pub struct Stellar {
    pub pack: dsl::Pack,
    pub options: dsl::EvalOptions,
}

impl Stellar {
    /// Parses and checks a pack (files: name, text; imports among them).
    pub fn load(files: &[(String, String)]) -> Result<Self, String> {
        let loaded = dsl::load(
            vec![files[0].clone()],
            |_, import| {
                files
                    .iter()
                    .find(|(n, _)| n == import)
                    .cloned()
                    .ok_or_else(|| format!("no {import}"))
            },
            &dsl::CheckOptions {
                schema: dsl::Schema::submission(),
                today: today(),
            },
        );
        if loaded.pack.is_none() {
            return Err(loaded.render(false));
        }
        let pack = loaded.pack.ok_or("no pack")?;
        Ok(Stellar {
            pack,
            options: dsl::EvalOptions::new(today()),
        })
    }

    pub fn prepare(&self, json: &str) -> dsl::Value {
        self.pack
            .facts_from_json(json)
            .unwrap_or(dsl::Value::Absent)
    }

    /// A full verdict, evidence included.
    pub fn decide_prepared(&self, facts: &dsl::Value) -> dsl::Verdict {
        self.pack.evaluate(facts, &self.options)
    }

    pub fn decide_json(&self, json: &str) -> Option<dsl::Verdict> {
        self.pack.evaluate_json(json, &self.options).ok()
    }

    /// A verdict in explain mode: also, for every rule that did not fire, why.
    pub fn explain_json(&self, json: &str) -> Option<dsl::Verdict> {
        let mut options = self.options;
        options.explain = true;
        self.pack.evaluate_json(json, &options).ok()
    }

    pub fn outcome(v: &dsl::Verdict) -> Outcome {
        let ids = |e| v.fired(e).into_iter().map(str::to_owned).collect();
        (ids(dsl::Effect::Deny), ids(dsl::Effect::Warn))
    }
}

// ----- Cedar ---------------------------------------------------------------------------------

pub struct Cedar {
    pub policies: PolicySet,
    authorizer: Authorizer,
    /// Policy id → (rule id, is deny).
    meaning: HashMap<String, (String, bool)>,
    action: EntityUid,
    name_re: regex_lite::Regex,
}

fn uid(ty: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(
        EntityTypeName::from_str(ty).unwrap_or_else(|_| unreachable_type()),
        EntityId::new(id),
    )
}

fn unreachable_type() -> EntityTypeName {
    // The type names used here are constants that parse.
    EntityTypeName::from_str("Plugin").unwrap_or_else(|_| std::process::abort())
}

/// `2.5.0` → 2005000; anything else → -1.
fn encode_version(s: &str) -> i64 {
    match semver::Version::parse(s) {
        Ok(v) => (v.major as i64) * 1_000_000 + (v.minor as i64) * 1_000 + v.patch as i64,
        Err(_) => -1,
    }
}

/// The request and entities for one submission.
pub struct CedarInput {
    request: Request,
    entities: Entities,
}

impl Cedar {
    /// Parses the policies; `schema`, when given, is also parsed and the policies validated
    /// against it (load time = parse + validate).
    pub fn load(policies: &str, schema: Option<&str>) -> Result<Self, String> {
        let policies: PolicySet = policies.parse().map_err(|e| format!("{e:?}"))?;
        if let Some(schema) = schema {
            let (schema, _) = Schema::from_cedarschema_str(schema).map_err(|e| format!("{e:?}"))?;
            let result = Validator::new(schema).validate(&policies, ValidationMode::Strict);
            if !result.validation_passed() {
                return Err(format!(
                    "{:?}",
                    result.validation_errors().collect::<Vec<_>>()
                ));
            }
        }
        let mut meaning = HashMap::new();
        for p in policies.policies() {
            if let (Some(id), Some(sev)) = (p.annotation("id"), p.annotation("severity")) {
                meaning.insert(p.id().to_string(), (id.to_owned(), sev == "deny"));
            }
        }
        Ok(Cedar {
            policies,
            authorizer: Authorizer::new(),
            meaning,
            action: uid("Action", "submit"),
            name_re: regex_lite::Regex::new("^[a-z][a-z0-9-]{2,63}$").map_err(|e| e.to_string())?,
        })
    }

    /// Parses the JSON and derives what Cedar cannot compute.
    pub fn prepare(&self, json: &str) -> Option<CedarInput> {
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        let s = |p: &serde_json::Value| p.as_str().unwrap_or("").to_owned();
        let strings = |p: &serde_json::Value| -> Vec<String> {
            p.as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| x.as_str().unwrap_or("").to_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let name = s(&v["name"]);
        let version = s(&v["version"]);
        let perms = strings(&v["permissions"]);
        let licenses = strings(&v["sbom"]["licenses"]);
        let parsed = semver::Version::parse(&version).ok();
        let net_hosts: Vec<String> = perms
            .iter()
            .filter_map(|p| p.strip_prefix("net:").map(str::to_owned))
            .collect();
        // What the generated hard families test, derived here (Cedar has no prefix, suffix or
        // regex test over set elements, nor counting).
        let offregion: Vec<i64> = perms
            .iter()
            .filter_map(|p| {
                let rest = p.strip_suffix(".example.com")?;
                let (_, digits) = rest.rsplit_once(".region")?;
                let k: i64 = digits.parse().ok()?;
                (k.to_string() == digits
                    && p.strip_prefix("net:").unwrap_or(p) != format!("api.region{k}.example.com"))
                .then_some(k)
            })
            .collect();
        let net_regions: Vec<String> = perms
            .iter()
            .filter_map(|p| {
                let label = p.strip_prefix("net:")?.split_once('.')?.0;
                let digits = label.strip_prefix("region")?;
                (!digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()))
                    .then(|| label.to_owned())
            })
            .collect();
        let name_pattern_hits: Vec<i64> = ["miner-v", "jack-v"]
            .iter()
            .filter_map(|prefix| name.strip_prefix(prefix))
            .filter(|digits| !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()))
            .flat_map(|digits| {
                (1..=digits.len()).filter_map(move |n| {
                    let head = &digits[..n];
                    head.parse::<i64>().ok().filter(|k| k.to_string() == head)
                })
            })
            .collect();
        let vendor_licenses: Vec<String> = licenses
            .iter()
            .filter_map(|l| {
                Some(
                    l.strip_prefix("LicenseRef-vendor")?
                        .split_once('-')?
                        .0
                        .to_owned(),
                )
            })
            .collect();
        let fs_perm_count = perms.iter().filter(|p| p.starts_with("fs:")).count() as i64;
        let longs = |items: &[i64]| {
            RestrictedExpression::new_set(items.iter().map(|k| RestrictedExpression::new_long(*k)))
        };
        let set = |items: &[String]| {
            RestrictedExpression::new_set(
                items
                    .iter()
                    .map(|x| RestrictedExpression::new_string(x.clone())),
            )
        };
        let publisher = uid("Publisher", &s(&v["publisher"]["id"]));
        let plugin = uid("Plugin", &name);
        let pub_attrs = HashMap::from([
            (
                "verified".to_owned(),
                RestrictedExpression::new_bool(
                    v["publisher"]["verified"].as_bool().unwrap_or(false),
                ),
            ),
            (
                "tier".to_owned(),
                RestrictedExpression::new_string(s(&v["publisher"]["tier"])),
            ),
        ]);
        let plugin_attrs = HashMap::from([
            (
                "name_valid".to_owned(),
                RestrictedExpression::new_bool(self.name_re.is_match(&name)),
            ),
            (
                "name".to_owned(),
                RestrictedExpression::new_string(name.clone()),
            ),
            (
                "version_valid".to_owned(),
                RestrictedExpression::new_bool(parsed.is_some()),
            ),
            (
                "version_major".to_owned(),
                RestrictedExpression::new_long(parsed.as_ref().map_or(-1, |p| p.major as i64)),
            ),
            (
                "version".to_owned(),
                RestrictedExpression::new_string(version),
            ),
            ("permissions".to_owned(), set(&perms)),
            ("net_hosts".to_owned(), set(&net_hosts)),
            (
                "perm_count".to_owned(),
                RestrictedExpression::new_long(perms.len() as i64),
            ),
            (
                "memory_mb".to_owned(),
                RestrictedExpression::new_long(v["resources"]["memory_mb"].as_i64().unwrap_or(0)),
            ),
            (
                "cpu_millis".to_owned(),
                RestrictedExpression::new_long(v["resources"]["cpu_millis"].as_i64().unwrap_or(0)),
            ),
            (
                "wasm_size_kb".to_owned(),
                RestrictedExpression::new_long(
                    v["resources"]["wasm_size_kb"].as_i64().unwrap_or(0),
                ),
            ),
            (
                "min_host".to_owned(),
                RestrictedExpression::new_long(encode_version(&s(&v["compat"]["min_host"]))),
            ),
            (
                "max_host".to_owned(),
                RestrictedExpression::new_long(encode_version(&s(&v["compat"]["max_host"]))),
            ),
            ("licenses".to_owned(), set(&licenses)),
            ("offregion".to_owned(), longs(&offregion)),
            ("net_regions".to_owned(), set(&net_regions)),
            ("name_pattern_hits".to_owned(), longs(&name_pattern_hits)),
            ("vendor_licenses".to_owned(), set(&vendor_licenses)),
            (
                "fs_perm_count".to_owned(),
                RestrictedExpression::new_long(fs_perm_count),
            ),
            (
                "signatures".to_owned(),
                RestrictedExpression::new_long(v["signatures"].as_i64().unwrap_or(0)),
            ),
        ]);
        let entities = Entities::from_entities(
            [
                Entity::new(publisher.clone(), pub_attrs, HashSet::new()).ok()?,
                Entity::new(plugin.clone(), plugin_attrs, HashSet::new()).ok()?,
            ],
            None,
        )
        .ok()?;
        let request = Request::new(
            publisher,
            self.action.clone(),
            plugin,
            Context::empty(),
            None,
        )
        .ok()?;
        Some(CedarInput { request, entities })
    }

    pub fn decide_prepared(&self, input: &CedarInput) -> Outcome {
        let response =
            self.authorizer
                .is_authorized(&input.request, &self.policies, &input.entities);
        let mut deny = Vec::new();
        let mut warn = Vec::new();
        for id in response.diagnostics().reason() {
            if let Some((rule, is_deny)) = self.meaning.get(&id.to_string()) {
                if *is_deny {
                    deny.push(rule.clone())
                } else {
                    warn.push(rule.clone())
                }
            }
        }
        deny.sort();
        warn.sort();
        (deny, warn)
    }

    pub fn decide_json(&self, json: &str) -> Option<Outcome> {
        Some(self.decide_prepared(&self.prepare(json)?))
    }
}

// ----- regorus (its bytecode VM) -------------------------------------------------------------

pub struct Rego {
    pub program: Arc<Program>,
    vm: std::cell::RefCell<RegoVM>,
}

pub const REGO_ENTRY: &str = "data.guardrails.decision";

impl Rego {
    /// Parses the policy and compiles it to a VM program (load time).
    pub fn load(policy: &str) -> Result<Self, String> {
        let mut engine = regorus::Engine::new();
        engine
            .add_policy("guardrails.rego".into(), policy.into())
            .map_err(|e| e.to_string())?;
        let compiled = engine
            .compile_with_entrypoint(&regorus::Rc::from(REGO_ENTRY))
            .map_err(|e| e.to_string())?;
        let program = regorus::languages::rego::compiler::Compiler::compile_from_policy(
            &compiled,
            &[REGO_ENTRY],
        )
        .map_err(|e| e.to_string())?;
        // As regorus documents its VM: load the program, then the data document (empty here:
        // the policy carries its lists), then an input per evaluation.
        let mut vm = RegoVM::new();
        vm.load_program(program.clone());
        vm.set_data(regorus::Value::new_object())
            .map_err(|e| e.to_string())?;
        // The same order of budget as Stellar's default step limit.
        vm.set_max_instructions(10_000_000);
        Ok(Rego {
            program,
            vm: std::cell::RefCell::new(vm),
        })
    }

    /// Only parses (for the load-time comparison Cedar and Stellar also report).
    pub fn parse_only(policy: &str) -> Result<(), String> {
        let mut engine = regorus::Engine::new();
        engine
            .add_policy("guardrails.rego".into(), policy.into())
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    pub fn prepare(json: &str) -> Option<regorus::Value> {
        regorus::Value::from_json_str(json).ok()
    }

    pub fn decide_prepared(&self, input: &regorus::Value) -> Result<Outcome, String> {
        let mut vm = self.vm.borrow_mut();
        vm.set_input(input.clone());
        let v = vm.execute().map_err(|e| e.to_string())?;
        let ids = |key: &str| -> Vec<String> {
            let mut out: Vec<String> = v[key]
                .as_set()
                .map(|s| {
                    s.iter()
                        .filter_map(|x| x.as_string().ok().map(|s| s.to_string()))
                        .collect()
                })
                .unwrap_or_default();
            out.sort();
            out
        };
        Ok((ids("deny"), ids("warn")))
    }

    pub fn decide_json(&self, json: &str) -> Result<Outcome, String> {
        self.decide_prepared(&Self::prepare(json).ok_or("bad json")?)
    }
}
