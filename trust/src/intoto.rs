//! in-toto layouts and links: the supply-chain metadata that the reference verifier
//! (`in-toto-verify`, PyPI `in-toto`) reads, signed into DSSE envelopes with ECDSA P-256, and a
//! verifier in Rust that applies the same rules offline.
//!
//! A **layout** (signed by the pipeline owner's `release` key) names the steps of a release, the
//! keys allowed to sign each step's link and how many must, and artifact rules that chain the
//! bundle's digest from step to step; an **inspection** binds the bundle on disk to the chain at
//! verification time. A **link** (signed by a `pipeline-step` key the layout names) records one
//! step's materials, products and byproducts.
//!
//! Formats follow the in-toto v0.9 metadata that in-toto 3.x accepts inside DSSE:
//! - a key is `{keytype: "ecdsa", scheme: "ecdsa-sha2-nistp256", keyval: {public: PEM}}`, plus
//!   `keyid` and `keyid_hash_algorithms` in a layout's `keys`;
//! - its key id is the hex sha256 of the canonical JSON of `{keytype, scheme, keyval}` (not
//!   Stellar's SPKI key id: [`intoto_key_id`] computes it);
//! - a link file is named `<step>.<first 8 hex of the key id>.link`.
//!
//! **Invariant:** [`verify`] fails closed: every step needs its threshold of links signed by
//! distinct keys the layout names, agreeing on materials and products; every rule is applied in
//! order exactly as the reference verifier applies it; a layout past its expiry fails. It never
//! runs an inspection's command (no IO here): it evaluates the inspection's rules over the
//! artifacts the caller read from disk, which is what an inspection that runs `true` amounts to.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dsse::{Envelope, EnvelopeSignature, INTOTO_PAYLOAD_TYPE, pae};
use crate::keys::{KeyPair, PublicKey, SignatureProblem};

/// in-toto's key type and scheme for ECDSA P-256.
pub const KEYTYPE: &str = "ecdsa";
pub const SCHEME: &str = "ecdsa-sha2-nistp256";
/// What the reference implementation writes in `keyid_hash_algorithms`.
pub const KEYID_HASH_ALGORITHMS: [&str; 2] = ["sha256", "sha512"];

/// The in-toto key id of a public key: sha256 over the canonical JSON of its key dictionary.
pub fn intoto_key_id(key: &PublicKey) -> String {
    let dict = serde_json::json!({
        "keytype": KEYTYPE,
        "scheme": SCHEME,
        "keyval": {"public": key.to_pem()},
    });
    hex::encode(Sha256::digest(
        crate::canonical::to_olpc_string(&dict).as_bytes(),
    ))
}

/// The file name a link of `step` signed by `key_id` must have.
pub fn link_file_name(step: &str, key_id: &str) -> String {
    format!("{step}.{}.link", key_id.get(..8).unwrap_or(key_id))
}

/// The public part of a key, as a layout lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVal {
    pub public: String,
}

/// A key in a layout's `keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutKey {
    pub keyid: String,
    pub keytype: String,
    pub scheme: String,
    pub keyval: KeyVal,
    pub keyid_hash_algorithms: Vec<String>,
}

impl LayoutKey {
    pub fn of(key: &PublicKey) -> Self {
        LayoutKey {
            keyid: intoto_key_id(key),
            keytype: KEYTYPE.into(),
            scheme: SCHEME.into(),
            keyval: KeyVal {
                public: key.to_pem(),
            },
            keyid_hash_algorithms: KEYID_HASH_ALGORITHMS.map(String::from).to_vec(),
        }
    }

    /// The key, if it is an ECDSA P-256 key whose id is right.
    pub fn public_key(&self) -> Result<PublicKey, InTotoError> {
        if self.keytype != KEYTYPE || self.scheme != SCHEME {
            return Err(InTotoError::Layout(format!(
                "key {} is a {} / {} key; only {KEYTYPE} / {SCHEME} is supported",
                short(&self.keyid),
                self.keytype,
                self.scheme
            )));
        }
        let key = PublicKey::from_pem(&self.keyval.public)
            .map_err(|e| InTotoError::Layout(format!("key {}: {e}", short(&self.keyid))))?;
        if intoto_key_id(&key) != self.keyid {
            return Err(InTotoError::Layout(format!(
                "key {}: the key id does not match the key",
                short(&self.keyid)
            )));
        }
        Ok(key)
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// Which artifacts of the step named in a MATCH rule to compare with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Materials,
    Products,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Materials => "MATERIALS",
            Source::Products => "PRODUCTS",
        }
    }
}

/// An artifact rule, in the order the reference verifier applies them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// `MATCH pattern [IN prefix] WITH MATERIALS|PRODUCTS [IN prefix] FROM step`: consumes the
    /// artifacts whose digest equals the named step's artifact of the same name.
    Match {
        pattern: String,
        source_prefix: Option<String>,
        with: Source,
        destination_prefix: Option<String>,
        step: String,
    },
    /// Consumes products that were not materials.
    Create(String),
    /// Consumes materials that are not products.
    Delete(String),
    /// Consumes artifacts that are both, with different digests.
    Modify(String),
    /// Consumes what matches.
    Allow(String),
    /// Fails if anything left matches.
    Disallow(String),
    /// Fails unless this exact name is left.
    Require(String),
}

impl Rule {
    /// `MATCH pattern WITH PRODUCTS FROM step`.
    pub fn match_products(pattern: &str, step: &str) -> Self {
        Rule::Match {
            pattern: pattern.into(),
            source_prefix: None,
            with: Source::Products,
            destination_prefix: None,
            step: step.into(),
        }
    }

    fn to_words(&self) -> Vec<String> {
        let w = |s: &str| s.to_owned();
        match self {
            Rule::Match {
                pattern,
                source_prefix,
                with,
                destination_prefix,
                step,
            } => {
                let mut out = vec![w("MATCH"), pattern.clone()];
                if let Some(p) = source_prefix {
                    out.extend([w("IN"), p.clone()]);
                }
                out.extend([w("WITH"), w(with.as_str())]);
                if let Some(p) = destination_prefix {
                    out.extend([w("IN"), p.clone()]);
                }
                out.extend([w("FROM"), step.clone()]);
                out
            }
            Rule::Create(p) => vec![w("CREATE"), p.clone()],
            Rule::Delete(p) => vec![w("DELETE"), p.clone()],
            Rule::Modify(p) => vec![w("MODIFY"), p.clone()],
            Rule::Allow(p) => vec![w("ALLOW"), p.clone()],
            Rule::Disallow(p) => vec![w("DISALLOW"), p.clone()],
            Rule::Require(p) => vec![w("REQUIRE"), p.clone()],
        }
    }

    fn from_words(words: &[String]) -> Result<Self, String> {
        let text = words.join(" ");
        let bad = || format!("`{text}` is not an artifact rule");
        let upper: Vec<String> = words.iter().map(|w| w.to_uppercase()).collect();
        let one = |make: fn(String) -> Rule| match words {
            [_, p] => Ok(make(p.clone())),
            _ => Err(bad()),
        };
        match upper.first().map(String::as_str) {
            Some("CREATE") => one(Rule::Create),
            Some("DELETE") => one(Rule::Delete),
            Some("MODIFY") => one(Rule::Modify),
            Some("ALLOW") => one(Rule::Allow),
            Some("DISALLOW") => one(Rule::Disallow),
            Some("REQUIRE") => one(Rule::Require),
            Some("MATCH") => {
                let u: Vec<&str> = upper.iter().map(String::as_str).collect();
                let pattern = words.get(1).ok_or_else(bad)?.clone();
                let mut i = 2;
                let mut source_prefix = None;
                if u.get(i) == Some(&"IN") {
                    source_prefix = Some(words.get(i + 1).ok_or_else(bad)?.clone());
                    i += 2;
                }
                if u.get(i) != Some(&"WITH") {
                    return Err(bad());
                }
                let with = match u.get(i + 1) {
                    Some(&"MATERIALS") => Source::Materials,
                    Some(&"PRODUCTS") => Source::Products,
                    _ => return Err(bad()),
                };
                i += 2;
                let mut destination_prefix = None;
                if u.get(i) == Some(&"IN") {
                    destination_prefix = Some(words.get(i + 1).ok_or_else(bad)?.clone());
                    i += 2;
                }
                if u.get(i) != Some(&"FROM") || words.len() != i + 2 {
                    return Err(bad());
                }
                Ok(Rule::Match {
                    pattern,
                    source_prefix,
                    with,
                    destination_prefix,
                    step: words[i + 1].clone(),
                })
            }
            _ => Err(bad()),
        }
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_words().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let words = Vec::<String>::deserialize(d)?;
        Rule::from_words(&words).map_err(serde::de::Error::custom)
    }
}

/// A step of a layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    #[serde(rename = "_type")]
    pub kind: String,
    pub name: String,
    pub expected_materials: Vec<Rule>,
    pub expected_products: Vec<Rule>,
    /// In-toto key ids allowed to sign this step's link.
    pub pubkeys: Vec<String>,
    pub expected_command: Vec<String>,
    pub threshold: u32,
}

impl Step {
    pub fn new(name: impl Into<String>, pubkeys: Vec<String>, threshold: u32) -> Self {
        Step {
            kind: "step".into(),
            name: name.into(),
            expected_materials: Vec::new(),
            expected_products: Vec::new(),
            pubkeys,
            expected_command: Vec::new(),
            threshold,
        }
    }
}

/// An inspection: a command the verifier runs, and rules over the files it then sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inspection {
    #[serde(rename = "_type")]
    pub kind: String,
    pub name: String,
    pub expected_materials: Vec<Rule>,
    pub expected_products: Vec<Rule>,
    pub run: Vec<String>,
}

impl Inspection {
    pub fn new(name: impl Into<String>, run: Vec<String>) -> Self {
        Inspection {
            kind: "inspection".into(),
            name: name.into(),
            expected_materials: Vec::new(),
            expected_products: Vec::new(),
            run,
        }
    }
}

/// A layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    #[serde(rename = "_type")]
    pub kind: String,
    /// ISO 8601, UTC, to the second (`2027-01-01T00:00:00Z`).
    pub expires: String,
    pub readme: String,
    pub keys: BTreeMap<String, LayoutKey>,
    pub steps: Vec<Step>,
    pub inspect: Vec<Inspection>,
}

impl Layout {
    pub fn new(expires: DateTime<Utc>, readme: impl Into<String>) -> Self {
        Layout {
            kind: "layout".into(),
            expires: expires.to_rfc3339_opts(SecondsFormat::Secs, true),
            readme: readme.into(),
            keys: BTreeMap::new(),
            steps: Vec::new(),
            inspect: Vec::new(),
        }
    }

    /// Adds a functionary key; returns its in-toto key id.
    pub fn add_key(&mut self, key: &PublicKey) -> String {
        let k = LayoutKey::of(key);
        let id = k.keyid.clone();
        self.keys.insert(id.clone(), k);
        id
    }

    pub fn expires_at(&self) -> Result<DateTime<Utc>, InTotoError> {
        DateTime::parse_from_rfc3339(&self.expires)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                InTotoError::Layout(format!("`expires` is not a date: `{}`", self.expires))
            })
    }
}

/// Artifact digests by path: `{"bundle.tar.gz": {"sha256": "…"}}`.
pub type Artifacts = BTreeMap<String, BTreeMap<String, String>>;

/// The sha256 digest entry of an artifact.
pub fn digest_of(bytes: &[u8]) -> BTreeMap<String, String> {
    BTreeMap::from([("sha256".to_owned(), hex::encode(Sha256::digest(bytes)))])
}

/// A link: the evidence of one performed step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    #[serde(rename = "_type")]
    pub kind: String,
    pub name: String,
    pub command: Vec<String>,
    pub materials: Artifacts,
    pub products: Artifacts,
    pub byproducts: serde_json::Map<String, serde_json::Value>,
    pub environment: serde_json::Map<String, serde_json::Value>,
}

impl Link {
    pub fn new(name: impl Into<String>) -> Self {
        Link {
            kind: "link".into(),
            name: name.into(),
            command: Vec::new(),
            materials: Artifacts::new(),
            products: Artifacts::new(),
            byproducts: serde_json::Map::new(),
            environment: serde_json::Map::new(),
        }
    }
}

/// Why a release's in-toto metadata does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InTotoError {
    #[error("{0}")]
    Malformed(String),
    #[error("the layout is not valid: {0}")]
    Layout(String),
    #[error("the layout is not signed by a trusted release key ({0})")]
    LayoutSignature(String),
    #[error("the layout expired at {expires}")]
    Expired { expires: String },
    #[error(
        "step `{step}` needs {threshold} link(s) signed by keys the layout names; found {found}{detail}"
    )]
    Threshold {
        step: String,
        threshold: u32,
        found: usize,
        detail: String,
    },
    #[error("step `{step}`: the links signed by different keys disagree on materials or products")]
    Disagree { step: String },
    #[error("{item} `{name}`, {which} rule `{rule}`: {problem}")]
    Rule {
        item: &'static str,
        name: String,
        which: &'static str,
        rule: String,
        problem: String,
    },
}

/// Signs a layout or a link into a DSSE envelope whose key id is the in-toto key id.
pub fn sign<T: Serialize>(metadata: &T, key: &KeyPair) -> Envelope {
    let payload = serde_json::to_vec(metadata).unwrap_or_default();
    let sig = key.sign_der(&pae(INTOTO_PAYLOAD_TYPE, &payload));
    Envelope {
        payload: STANDARD.encode(&payload),
        payload_type: INTOTO_PAYLOAD_TYPE.into(),
        signatures: vec![EnvelopeSignature {
            keyid: intoto_key_id(key.public()),
            sig: STANDARD.encode(sig),
        }],
    }
}

/// An envelope's signature by one key, checked; the payload when it verifies.
fn verified_payload(envelope: &Envelope, key: &PublicKey) -> Result<Vec<u8>, String> {
    if envelope.payload_type != INTOTO_PAYLOAD_TYPE {
        return Err(format!(
            "payload type `{}`, expected `{INTOTO_PAYLOAD_TYPE}`",
            envelope.payload_type
        ));
    }
    let payload = envelope
        .payload_bytes()
        .map_err(|_| "the payload is not base64".to_owned())?;
    let input = pae(&envelope.payload_type, &payload);
    let id = intoto_key_id(key);
    let sig = envelope
        .signatures
        .iter()
        .find(|s| s.keyid == id)
        .ok_or_else(|| format!("no signature by key {}", short(&id)))?;
    let der = STANDARD
        .decode(&sig.sig)
        .map_err(|_| format!("the signature of key {} is not base64", short(&id)))?;
    key.verify_der(&input, &der).map_err(|p| match p {
        SignatureProblem::Encoding => format!("the signature of key {} is not DER", short(&id)),
        SignatureProblem::Mismatch => {
            format!(
                "the signature of key {} does not match the payload",
                short(&id)
            )
        }
    })?;
    Ok(payload)
}

/// The layout inside an envelope, verified against one of `owners` (the release keys the caller
/// trusts). Returns the layout, unchecked for expiry.
pub fn verify_layout(envelope: &Envelope, owners: &[PublicKey]) -> Result<Layout, InTotoError> {
    if owners.is_empty() {
        return Err(InTotoError::LayoutSignature(
            "no release key is trusted".into(),
        ));
    }
    let mut problems = Vec::new();
    for key in owners {
        match verified_payload(envelope, key) {
            Ok(payload) => {
                let layout: Layout = serde_json::from_slice(&payload)
                    .map_err(|e| InTotoError::Layout(e.to_string()))?;
                if layout.kind != "layout" {
                    return Err(InTotoError::Layout(format!(
                        "`_type` is `{}`, expected `layout`",
                        layout.kind
                    )));
                }
                return Ok(layout);
            }
            Err(p) => problems.push(p),
        }
    }
    Err(InTotoError::LayoutSignature(problems.join("; ")))
}

/// Verifies a release: the layout's signature by a trusted owner key, its expiry at `now`, every
/// step's links and threshold, every rule of every step, and the inspections' rules over
/// `on_disk` (the files beside the layout, by relative path, as the verifier sees them).
/// `links` maps link file names to envelopes. Returns the layout.
pub fn verify(
    layout_envelope: &Envelope,
    owners: &[PublicKey],
    links: &BTreeMap<String, Envelope>,
    on_disk: &Artifacts,
    now: DateTime<Utc>,
) -> Result<Layout, InTotoError> {
    let layout = verify_layout(layout_envelope, owners)?;
    let expires = layout.expires_at()?;
    if expires <= now {
        return Err(InTotoError::Expired {
            expires: layout.expires.clone(),
        });
    }
    let mut chain: BTreeMap<String, Link> = BTreeMap::new();
    for step in &layout.steps {
        let link = step_link(&layout, step, links)?;
        chain.insert(step.name.clone(), link);
    }
    for step in &layout.steps {
        let link = &chain[&step.name];
        apply_rules(
            "step",
            &step.name,
            "material",
            &step.expected_materials,
            &link.materials,
            link,
            &chain,
        )?;
        apply_rules(
            "step",
            &step.name,
            "product",
            &step.expected_products,
            &link.products,
            link,
            &chain,
        )?;
    }
    for inspection in &layout.inspect {
        // What an inspection that runs `true` records: the directory, before and after.
        let mut link = Link::new(&inspection.name);
        link.materials = on_disk.clone();
        link.products = on_disk.clone();
        let mut all = chain.clone();
        all.insert(inspection.name.clone(), link.clone());
        apply_rules(
            "inspection",
            &inspection.name,
            "material",
            &inspection.expected_materials,
            &link.materials,
            &link,
            &all,
        )?;
        apply_rules(
            "inspection",
            &inspection.name,
            "product",
            &inspection.expected_products,
            &link.products,
            &link,
            &all,
        )?;
    }
    Ok(layout)
}

/// The links of a step by distinct authorized keys, checked against the threshold; the link
/// they agree on.
fn step_link(
    layout: &Layout,
    step: &Step,
    links: &BTreeMap<String, Envelope>,
) -> Result<Link, InTotoError> {
    let mut good: Vec<(String, Link)> = Vec::new();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for keyid in &step.pubkeys {
        if !seen.insert(keyid.clone()) {
            continue;
        }
        let file = link_file_name(&step.name, keyid);
        let Some(envelope) = links.get(&file) else {
            continue;
        };
        let Some(key) = layout.keys.get(keyid) else {
            problems.push(format!(
                "{file}: the layout does not list key {}",
                short(keyid)
            ));
            continue;
        };
        let key = key.public_key()?;
        match verified_payload(envelope, &key) {
            Ok(payload) => match serde_json::from_slice::<Link>(&payload) {
                Ok(link) if link.kind == "link" && link.name == step.name => {
                    good.push((keyid.clone(), link))
                }
                Ok(link) => problems.push(format!(
                    "{file}: a {} named `{}`, not the link of `{}`",
                    link.kind, link.name, step.name
                )),
                Err(e) => problems.push(format!("{file}: not a link ({e})")),
            },
            Err(p) => problems.push(format!("{file}: {p}")),
        }
    }
    if (good.len() as u64) < u64::from(step.threshold.max(1)) {
        return Err(InTotoError::Threshold {
            step: step.name.clone(),
            threshold: step.threshold.max(1),
            found: good.len(),
            detail: if problems.is_empty() {
                String::new()
            } else {
                format!(" ({})", problems.join("; "))
            },
        });
    }
    let first = good[0].1.clone();
    if good
        .iter()
        .any(|(_, l)| l.materials != first.materials || l.products != first.products)
    {
        return Err(InTotoError::Disagree {
            step: step.name.clone(),
        });
    }
    Ok(first)
}

fn matches(pattern: &str, path: &str) -> bool {
    // fnmatch, as Python's in-toto uses it: `*` also matches `/`.
    glob::Pattern::new(pattern).is_ok_and(|p| {
        p.matches_with(
            path,
            glob::MatchOptions {
                case_sensitive: true,
                require_literal_separator: false,
                require_literal_leading_dot: false,
            },
        )
    })
}

fn apply_rules(
    item: &'static str,
    name: &str,
    which: &'static str,
    rules: &[Rule],
    artifacts: &Artifacts,
    link: &Link,
    chain: &BTreeMap<String, Link>,
) -> Result<(), InTotoError> {
    let mut queue: BTreeSet<String> = artifacts.keys().cloned().collect();
    for rule in rules {
        let fail = |problem: String| InTotoError::Rule {
            item,
            name: name.to_owned(),
            which,
            rule: rule.to_words().join(" "),
            problem,
        };
        let consumed: BTreeSet<String> = match rule {
            Rule::Match {
                pattern,
                source_prefix,
                with,
                destination_prefix,
                step,
            } => {
                let Some(other) = chain.get(step) else {
                    // The reference verifier ignores a MATCH on an unknown step: nothing matches.
                    continue;
                };
                let theirs = match with {
                    Source::Materials => &other.materials,
                    Source::Products => &other.products,
                };
                let full = match source_prefix {
                    Some(p) => format!("{}/{pattern}", p.trim_end_matches('/')),
                    None => pattern.clone(),
                };
                queue
                    .iter()
                    .filter(|path| matches(&full, path))
                    .filter(|path| {
                        let rest = match source_prefix {
                            Some(p) => path
                                .strip_prefix(&format!("{}/", p.trim_end_matches('/')))
                                .unwrap_or(path),
                            None => path.as_str(),
                        };
                        let there = match destination_prefix {
                            Some(p) => format!("{}/{rest}", p.trim_end_matches('/')),
                            None => rest.to_owned(),
                        };
                        theirs
                            .get(&there)
                            .is_some_and(|d| Some(d) == artifacts.get(*path))
                    })
                    .cloned()
                    .collect()
            }
            Rule::Create(p) => queue
                .iter()
                .filter(|a| matches(p, a) && !link.materials.contains_key(*a))
                .cloned()
                .collect(),
            Rule::Delete(p) => queue
                .iter()
                .filter(|a| matches(p, a) && !link.products.contains_key(*a))
                .cloned()
                .collect(),
            Rule::Modify(p) => queue
                .iter()
                .filter(|a| {
                    matches(p, a)
                        && matches!(
                            (link.materials.get(*a), link.products.get(*a)),
                            (Some(m), Some(d)) if m != d
                        )
                })
                .cloned()
                .collect(),
            Rule::Allow(p) => queue.iter().filter(|a| matches(p, a)).cloned().collect(),
            Rule::Disallow(p) => {
                let left: Vec<&String> = queue.iter().filter(|a| matches(p, a)).collect();
                if !left.is_empty() {
                    let names: Vec<&str> = left.iter().map(|s| s.as_str()).collect();
                    return Err(fail(format!(
                        "disallowed artifact(s) {}: not matched by any rule before it",
                        names.join(", ")
                    )));
                }
                BTreeSet::new()
            }
            Rule::Require(p) => {
                if !queue.contains(p) {
                    return Err(fail(format!("`{p}` is required and is not there")));
                }
                BTreeSet::new()
            }
        };
        queue.retain(|a| !consumed.contains(a));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> Artifacts {
        BTreeMap::from([("bundle.tar.gz".to_owned(), digest_of(b"bundle"))])
    }

    struct Chain {
        owner: KeyPair,
        functionary: KeyPair,
        layout: Envelope,
        links: BTreeMap<String, Envelope>,
    }

    fn chain(expires: DateTime<Utc>) -> Chain {
        let owner = KeyPair::generate().expect("key");
        let functionary = KeyPair::generate().expect("key");
        let mut layout = Layout::new(expires, "test");
        let id = layout.add_key(functionary.public());
        let mut judge = Step::new("judge", vec![id.clone()], 1);
        judge.expected_products = vec![
            Rule::Allow("bundle.tar.gz".into()),
            Rule::Disallow("*".into()),
        ];
        let mut ga = Step::new("ga", vec![id.clone()], 1);
        ga.expected_materials = vec![
            Rule::match_products("bundle.tar.gz", "judge"),
            Rule::Disallow("*".into()),
        ];
        ga.expected_products = vec![
            Rule::match_products("bundle.tar.gz", "judge"),
            Rule::Disallow("*".into()),
        ];
        let mut bind = Inspection::new("bind", vec!["true".into()]);
        bind.expected_materials = vec![
            Rule::match_products("bundle.tar.gz", "ga"),
            Rule::Allow("*.link".into()),
            Rule::Allow("root.layout".into()),
            Rule::Disallow("*".into()),
        ];
        layout.steps = vec![judge, ga];
        layout.inspect = vec![bind];
        let mut links = BTreeMap::new();
        for step in ["judge", "ga"] {
            let mut link = Link::new(step);
            if step == "ga" {
                link.materials = bundle();
            }
            link.products = bundle();
            links.insert(link_file_name(step, &id), sign(&link, &functionary));
        }
        Chain {
            layout: sign(&layout, &owner),
            owner,
            functionary,
            links,
        }
    }

    fn disk(c: &Chain) -> Artifacts {
        let mut d = bundle();
        d.insert("root.layout".into(), digest_of(b"layout"));
        for name in c.links.keys() {
            d.insert(name.clone(), digest_of(name.as_bytes()));
        }
        d
    }

    #[test]
    fn key_ids_follow_securesystemslib() {
        let k = KeyPair::generate().expect("key");
        let dict = LayoutKey::of(k.public());
        assert_eq!(dict.public_key().expect("key"), *k.public());
        assert_eq!(dict.keyid.len(), 64);
        assert_ne!(dict.keyid, k.id().0, "not Stellar's SPKI key id");
        assert_eq!(
            link_file_name("ga", &dict.keyid),
            format!("ga.{}.link", &dict.keyid[..8])
        );
    }

    #[test]
    fn rules_round_trip_as_words() {
        for words in [
            vec![
                "MATCH", "b", "IN", "src", "WITH", "PRODUCTS", "IN", "dst", "FROM", "s",
            ],
            vec!["MATCH", "*", "WITH", "MATERIALS", "FROM", "s"],
            vec!["CREATE", "x"],
            vec!["DISALLOW", "*"],
            vec!["REQUIRE", "f"],
        ] {
            let words: Vec<String> = words.into_iter().map(String::from).collect();
            let rule = Rule::from_words(&words).expect("rule");
            assert_eq!(rule.to_words(), words);
        }
        for bad in [
            vec!["MATCH", "x", "FROM", "s"],
            vec!["ALLOW"],
            vec!["EXPLODE", "x"],
        ] {
            let words: Vec<String> = bad.into_iter().map(String::from).collect();
            assert!(Rule::from_words(&words).is_err(), "{words:?}");
        }
    }

    #[test]
    fn a_whole_chain_verifies() {
        let c = chain(Utc::now() + chrono::Duration::days(1));
        verify(
            &c.layout,
            &[c.owner.public().clone()],
            &c.links,
            &disk(&c),
            Utc::now(),
        )
        .expect("verifies");
    }

    #[test]
    fn each_tampering_fails_with_its_reason() {
        let now = Utc::now();
        let c = chain(now + chrono::Duration::days(1));
        let owners = [c.owner.public().clone()];

        // The bundle swapped on disk.
        let mut swapped = disk(&c);
        swapped.insert("bundle.tar.gz".into(), digest_of(b"evil"));
        let e = verify(&c.layout, &owners, &c.links, &swapped, now).expect_err("swapped");
        assert!(
            matches!(
                e,
                InTotoError::Rule {
                    item: "inspection",
                    ..
                }
            ),
            "{e}"
        );

        // A link removed.
        let mut fewer = c.links.clone();
        let ga = fewer
            .keys()
            .find(|k| k.starts_with("ga."))
            .cloned()
            .expect("ga");
        fewer.remove(&ga);
        let e = verify(&c.layout, &owners, &fewer, &disk(&c), now).expect_err("removed");
        assert!(
            matches!(&e, InTotoError::Threshold { step, found: 0, .. } if step == "ga"),
            "{e}"
        );

        // A link signed by a key the layout does not name, under the named key's file name.
        let stranger = KeyPair::generate().expect("key");
        let mut forged = c.links.clone();
        let mut link = Link::new("ga");
        link.materials = bundle();
        link.products = bundle();
        forged.insert(ga.clone(), sign(&link, &stranger));
        let e = verify(&c.layout, &owners, &forged, &disk(&c), now).expect_err("forged");
        assert!(e.to_string().contains("no signature by key"), "{e}");

        // Expired.
        let old = chain(now - chrono::Duration::seconds(1));
        let e = verify(
            &old.layout,
            &[old.owner.public().clone()],
            &old.links,
            &disk(&old),
            now,
        )
        .expect_err("expired");
        assert!(matches!(e, InTotoError::Expired { .. }), "{e}");

        // A layout signed by someone else.
        let e = verify(
            &c.layout,
            &[c.functionary.public().clone()],
            &c.links,
            &disk(&c),
            now,
        )
        .expect_err("owner");
        assert!(matches!(e, InTotoError::LayoutSignature(_)), "{e}");

        // A link whose products changed (the chain breaks at the next step).
        let mut changed = c.links.clone();
        let judge = changed
            .keys()
            .find(|k| k.starts_with("judge."))
            .cloned()
            .expect("judge");
        let mut link = Link::new("judge");
        link.products = BTreeMap::from([("bundle.tar.gz".to_owned(), digest_of(b"other"))]);
        changed.insert(judge, sign(&link, &c.functionary));
        let e = verify(&c.layout, &owners, &changed, &disk(&c), now).expect_err("chain");
        assert!(
            matches!(&e, InTotoError::Rule { name, .. } if name == "ga"),
            "{e}"
        );
    }
}
