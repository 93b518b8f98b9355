//! The fast-review package: everything a reviewer needs to decide, in one signed place.
//!
//! When a release reaches an approval stage, Stellar compares the version with the last GA
//! version of the same plugin (permissions, imports, module size, findings, SBOM components and
//! licences), lists the publisher signatures with their keys' status, and writes a risk summary
//! in which every point names the fact it comes from. The package is an in-toto statement
//! (predicate `https://stellar.dev/attestations/review-package/v1`) signed with the
//! pipeline-step key and stored with the release's documents; what the API and the portal show
//! is that signed statement's predicate.
//!
//! [`compare`] and [`risk`] are pure: the tests below table them.

use std::collections::{BTreeMap, BTreeSet};

use app::api::backend::Principal;
use app::delivery::{
    ComponentChange, ComponentRef, FindingRef, ReviewPackage, RiskLevel, RiskPoint, SignatureRef,
};
use app::error::AppError;
use app::types::Decision;
use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use trust::dsse::{Envelope, Statement, Subject};
use trust::keys::Purpose;

use super::documents::{self, DocKind, PACKAGE_PREDICATE, PACKAGE_STATEMENT};
use super::{Releases, state_of};
use crate::db::entities::{publisher_key, release, submission_blob, verdict};
use crate::services::keys::Signer;
use crate::services::ledger_store::{Appender, Record};
use crate::services::{db_error, timestamp};

/// One version, as the package compares it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Side {
    pub version: String,
    pub permissions: Vec<String>,
    pub imports: Vec<String>,
    pub module_size_kb: u64,
    pub findings: Vec<FindingRef>,
    pub components: Vec<ComponentRef>,
}

/// What changed between two versions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    pub permissions_added: Vec<String>,
    pub permissions_removed: Vec<String>,
    pub imports_added: Vec<String>,
    pub imports_removed: Vec<String>,
    pub findings_new: Vec<FindingRef>,
    pub findings_resolved: Vec<FindingRef>,
    pub components_added: Vec<ComponentRef>,
    pub components_removed: Vec<ComponentRef>,
    pub components_changed: Vec<ComponentChange>,
}

fn minus<T: Ord + Clone>(a: &[T], b: &[T]) -> Vec<T> {
    let b: BTreeSet<&T> = b.iter().collect();
    let mut out: Vec<T> = a.iter().filter(|x| !b.contains(x)).cloned().collect();
    out.sort();
    out.dedup();
    out
}

/// What changed from `previous` (none: a first release, everything is new) to `current`.
pub fn compare(current: &Side, previous: Option<&Side>) -> Diff {
    let empty = Side::default();
    let prev = previous.unwrap_or(&empty);
    let key = |f: &FindingRef| (f.rule.clone(), f.effect.clone());
    let prev_findings: BTreeSet<(String, String)> = prev.findings.iter().map(key).collect();
    let cur_findings: BTreeSet<(String, String)> = current.findings.iter().map(key).collect();
    let by_name = |cs: &[ComponentRef]| -> BTreeMap<String, ComponentRef> {
        cs.iter().map(|c| (c.name.clone(), c.clone())).collect()
    };
    let (before, after) = (by_name(&prev.components), by_name(&current.components));
    Diff {
        permissions_added: minus(&current.permissions, &prev.permissions),
        permissions_removed: minus(&prev.permissions, &current.permissions),
        imports_added: minus(&current.imports, &prev.imports),
        imports_removed: minus(&prev.imports, &current.imports),
        findings_new: current
            .findings
            .iter()
            .filter(|f| !prev_findings.contains(&key(f)))
            .cloned()
            .collect(),
        findings_resolved: prev
            .findings
            .iter()
            .filter(|f| !cur_findings.contains(&key(f)))
            .cloned()
            .collect(),
        components_added: after
            .values()
            .filter(|c| !before.contains_key(&c.name))
            .cloned()
            .collect(),
        components_removed: before
            .values()
            .filter(|c| !after.contains_key(&c.name))
            .cloned()
            .collect(),
        components_changed: after
            .values()
            .filter_map(|c| {
                let b = before.get(&c.name)?;
                (b.version != c.version || b.licenses != c.licenses).then(|| ComponentChange {
                    name: c.name.clone(),
                    before: b.clone(),
                    after: c.clone(),
                })
            })
            .collect(),
    }
}

/// Permissions that reach outside the plugin: adding one is a high risk.
fn sensitive(permission: &str) -> bool {
    ["net:", "fs:write", "exec", "process", "secrets", "env"]
        .iter()
        .any(|p| permission.starts_with(p))
}

/// Copyleft licences: adding a component under one is worth a look.
fn copyleft(license: &str) -> bool {
    let l = license.to_ascii_uppercase();
    ["GPL", "AGPL", "LGPL", "SSPL", "EUPL", "OSL", "MPL"]
        .iter()
        .any(|c| l.contains(c))
}

/// The risk summary: each point says why, and which fact it comes from.
pub fn risk(
    current: &Side,
    previous: Option<&Side>,
    diff: &Diff,
    signatures: &[SignatureRef],
) -> Vec<RiskPoint> {
    let mut out = Vec::new();
    let mut point = |level, text: String, fact: &str| {
        out.push(RiskPoint {
            level,
            text,
            fact: fact.into(),
        })
    };
    for p in &diff.permissions_added {
        let level = if sensitive(p) {
            RiskLevel::High
        } else {
            RiskLevel::Medium
        };
        point(
            level,
            format!("asks for a new permission `{p}`"),
            "permissions.added",
        );
    }
    for f in &diff.findings_new {
        let level = if f.effect == "deny" {
            RiskLevel::High
        } else {
            RiskLevel::Medium
        };
        point(
            level,
            format!("new {} finding `{}`: {}", f.effect, f.rule, f.message),
            "findings.new",
        );
    }
    if !signatures.iter().any(|s| s.state == "approved") {
        point(
            RiskLevel::High,
            "no signature by an approved publisher key: nobody vouches that the publisher built this bundle".into(),
            "signatures",
        );
    }
    for s in signatures.iter().filter(|s| s.state == "revoked") {
        point(
            RiskLevel::High,
            format!(
                "signed by key {} which is revoked",
                s.key_id.get(..16).unwrap_or(&s.key_id)
            ),
            "signatures",
        );
    }
    for i in &diff.imports_added {
        point(
            RiskLevel::Medium,
            format!("the module imports `{i}` for the first time"),
            "module.imports.added",
        );
    }
    for c in &diff.components_added {
        if let Some(l) = c.licenses.iter().find(|l| copyleft(l)) {
            point(
                RiskLevel::Medium,
                format!(
                    "new component {} {} under the copyleft licence {l}",
                    c.name, c.version
                ),
                "sbom.components.added",
            );
        }
    }
    for c in &diff.components_changed {
        if c.before.licenses != c.after.licenses {
            point(
                RiskLevel::Medium,
                format!(
                    "component {} changed licence from {} to {}",
                    c.name,
                    c.before.licenses.join(" OR "),
                    c.after.licenses.join(" OR ")
                ),
                "sbom.components.changed",
            );
        }
    }
    if let Some(prev) = previous
        && prev.module_size_kb > 0
        && current.module_size_kb > prev.module_size_kb.saturating_mul(3) / 2
    {
        point(
            RiskLevel::Low,
            format!(
                "the module grew from {} KiB to {} KiB (more than half again)",
                prev.module_size_kb, current.module_size_kb
            ),
            "module.size_kb",
        );
    }
    let nothing = out.is_empty();
    let mut point = |level, text: String, fact: &str| {
        out.push(RiskPoint {
            level,
            text,
            fact: fact.into(),
        })
    };
    match previous {
        None => point(
            RiskLevel::Low,
            "first release of this plugin: there is no GA version to compare with, review it whole"
                .into(),
            "history.previous_version",
        ),
        Some(prev) if nothing => point(
            RiskLevel::Low,
            format!(
                "no new permission, import, finding or dependency risk since {}",
                prev.version
            ),
            "diff",
        ),
        Some(_) => {}
    }
    out.sort_by_key(|p| p.level);
    out
}

fn findings_of(verdict_json: &str) -> Vec<FindingRef> {
    let j: Value = serde_json::from_str(verdict_json).unwrap_or_default();
    j["findings"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .map(|f| FindingRef {
                    rule: f["rule"].as_str().unwrap_or_default().into(),
                    effect: f["effect"].as_str().unwrap_or_default().into(),
                    message: f["message"].as_str().unwrap_or_default().into(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A version's side, from its verdict and bundle. The bundle is read again (for its SBOM and
/// signatures) with the intake limits.
fn side_of(version: &str, v: &verdict::Model, bundle: &[u8]) -> (Side, Vec<String>) {
    let facts: Value = serde_json::from_str(&v.facts).unwrap_or_default();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let inspected = plugin::inspect(bundle, &plugin::bundle::Limits::default()).ok();
    let components = inspected
        .as_ref()
        .map(|i| {
            i.components
                .iter()
                .map(|c| ComponentRef {
                    name: c.name.clone(),
                    version: c.version.clone(),
                    licenses: c.licenses.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let signers: Vec<String> = inspected
        .as_ref()
        .map(|i| {
            i.bundle
                .files
                .iter()
                .filter(|(p, _)| p.starts_with(plugin::SIGNATURE_DIR) && p.ends_with(".json"))
                .filter_map(|(_, b)| Envelope::from_json(std::str::from_utf8(b).ok()?).ok())
                .flat_map(|e| e.signatures.into_iter().map(|s| s.keyid))
                .collect::<BTreeSet<String>>()
                .into_iter()
                .collect()
        })
        .unwrap_or_default();
    (
        Side {
            version: version.to_owned(),
            permissions: strings(&facts["permissions"]),
            imports: strings(&facts["module"]["imports"]),
            module_size_kb: facts["module"]["size_kb"].as_u64().unwrap_or_default(),
            findings: findings_of(&v.verdict),
            components,
        },
        signers,
    )
}

impl Releases {
    /// Builds the package of a release, comparing with the plugin's last GA version.
    pub async fn build_package<C: ConnectionTrait>(
        &self,
        conn: &C,
        r: &release::Model,
        now: DateTime<Utc>,
    ) -> Result<ReviewPackage, AppError> {
        let load = |submission: String| async move {
            let v = verdict::Entity::find()
                .filter(verdict::Column::SubmissionId.eq(submission.clone()))
                .one(conn)
                .await
                .map_err(db_error)?;
            let b = submission_blob::Entity::find_by_id(submission)
                .one(conn)
                .await
                .map_err(db_error)?;
            Ok::<_, AppError>(v.zip(b))
        };
        let (v, blob) = load(r.submission_id.clone())
            .await?
            .ok_or_else(|| AppError::internal("the release's verdict or bundle is missing"))?;
        let previous = release::Entity::find()
            .filter(release::Column::PluginId.eq(r.plugin_id.clone()))
            .filter(release::Column::State.eq(delivery::engine::ReleaseState::Succeeded.as_str()))
            .filter(release::Column::Id.ne(r.id.clone()))
            .order_by_desc(release::Column::FinishedAt)
            .one(conn)
            .await
            .map_err(db_error)?;
        let prev_loaded = match &previous {
            Some(p) => load(p.submission_id.clone())
                .await?
                .map(|x| (p.version.clone(), x)),
            None => None,
        };
        let version = r.version.clone();
        let keys = publisher_key::Entity::find()
            .filter(publisher_key::Column::TenantId.eq(r.tenant_id))
            .all(conn)
            .await
            .map_err(db_error)?;
        let (current, signers, prev_side) = tokio::task::spawn_blocking(move || {
            let (current, signers) = side_of(&version, &v, &blob.data);
            let prev =
                prev_loaded.map(|(pv, (pv_verdict, pb))| side_of(&pv, &pv_verdict, &pb.data).0);
            (current, signers, prev)
        })
        .await
        .map_err(|e| AppError::internal(format!("the review package could not be built: {e}")))?;
        let signatures: Vec<SignatureRef> = signers
            .iter()
            .map(|id| {
                let k = keys.iter().find(|k| &k.key_id == id);
                SignatureRef {
                    key_id: id.clone(),
                    key_name: k.map(|k| k.name.clone()),
                    state: match k {
                        None => "unknown",
                        Some(k) if k.revoked_at.is_some() => "revoked",
                        Some(k) if k.approved_at.is_some() => "approved",
                        Some(_) => "pending",
                    }
                    .into(),
                }
            })
            .collect();
        let diff = compare(&current, prev_side.as_ref());
        let risk = risk(&current, prev_side.as_ref(), &diff, &signatures);
        let verdict: Decision = verdict::Entity::find()
            .filter(verdict::Column::SubmissionId.eq(r.submission_id.clone()))
            .one(conn)
            .await
            .map_err(db_error)?
            .and_then(|v| v.decision.parse().ok())
            .unwrap_or(Decision::Pass);
        Ok(ReviewPackage {
            release: r.id.clone(),
            plugin: r.plugin_id.clone(),
            version: r.version.clone(),
            tenant: self.tenant_slug(r.tenant_id).await?.unwrap_or_default(),
            previous_version: prev_side.as_ref().map(|p| p.version.clone()),
            verdict,
            findings: current.findings.clone(),
            permissions_added: diff.permissions_added,
            permissions_removed: diff.permissions_removed,
            imports_added: diff.imports_added,
            imports_removed: diff.imports_removed,
            module_size_kb: current.module_size_kb,
            previous_module_size_kb: prev_side.as_ref().map(|p| p.module_size_kb),
            findings_new: diff.findings_new,
            findings_resolved: diff.findings_resolved,
            components_added: diff.components_added,
            components_removed: diff.components_removed,
            components_changed: diff.components_changed,
            signatures,
            risk,
            statement: Some(PACKAGE_STATEMENT.into()),
            ready_at: Some(now.to_rfc3339_opts(SecondsFormat::Secs, true)),
        })
    }

    /// Builds, signs and stores the package when the release reaches an approval stage (once).
    pub(super) async fn seal_package(
        &self,
        a: &mut Appender,
        r: &release::Model,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let docs = documents::all(a.txn(), &r.id).await?;
        if docs.iter().any(|d| d.name == PACKAGE_STATEMENT) {
            return Ok(());
        }
        let package = self.build_package(a.txn(), r, now).await?;
        let Signer::Online(key) = self
            .keys
            .signer(Purpose::PipelineStep, &self.ledger)
            .await?
        else {
            return Err(AppError::conflict(
                "the pipeline-step key is offline: it must be online to sign review packages",
            ));
        };
        let mut predicate =
            serde_json::to_value(&package).map_err(|e| AppError::internal(e.to_string()))?;
        if let Some(p) = predicate.as_object_mut() {
            p.insert("packageVersion".into(), json!(1));
            p.insert(
                "signedAt".into(),
                json!(Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)),
            );
        }
        let statement = Statement::new(
            vec![Subject::with_sha256(
                format!("{}-{}.tar.gz", r.plugin_id, r.version),
                r.bundle_sha256.clone(),
            )],
            PACKAGE_PREDICATE,
            predicate,
        );
        let envelope = Envelope::sign_statement(&statement, &key);
        documents::store(
            a.txn(),
            &r.id,
            DocKind::Package,
            PACKAGE_STATEMENT,
            &key.id().0,
            &envelope,
            now,
        )
        .await?;
        a.append(Record {
            actor: "system".into(),
            tenant: self.tenant_slug(r.tenant_id).await?,
            action: "release.package".into(),
            subject: format!("release:{}", r.id),
            details: json!({
                "statement": PACKAGE_STATEMENT,
                "previous_version": package.previous_version,
                "risk": package.risk.iter().map(|p| format!("{:?}: {}", p.level, p.text)).collect::<Vec<_>>(),
            }),
        })
        .await?;
        Ok(())
    }

    /// The signed review package of a release. Opening it as someone who may decide records
    /// when a reviewer first looked (review effort, for the metrics): an access record, like a
    /// log line, not a change to the release.
    pub async fn package(&self, who: &Principal, id: &str) -> Result<ReviewPackage, AppError> {
        let r = self.visible(who, id).await?;
        let docs = documents::all(&self.conn, &r.id).await?;
        let doc = docs.iter().find(|d| d.name == PACKAGE_STATEMENT).ok_or_else(|| {
            AppError::not_found(format!(
                "release {id} has no review package yet: it is assembled when the release reaches an approval stage"
            ))
        })?;
        let envelope = Envelope::from_json(&doc.envelope)
            .map_err(|e| AppError::internal(format!("a stored package is damaged: {e}")))?;
        let statement: Statement = serde_json::from_slice(
            &envelope
                .payload_bytes()
                .map_err(|e| AppError::internal(e.to_string()))?,
        )
        .map_err(|e| AppError::internal(format!("a stored package is damaged: {e}")))?;
        let package: ReviewPackage = serde_json::from_value(statement.predicate)
            .map_err(|e| AppError::internal(format!("a stored package is damaged: {e}")))?;
        if r.package_opened_at.is_none()
            && !state_of(&r)?.is_final()
            && self.cannot_decide(who, &r).await?.is_none()
        {
            release::Entity::update_many()
                .col_expr(
                    release::Column::PackageOpenedAt,
                    Some(self.clock.now()).into(),
                )
                .filter(release::Column::Id.eq(r.id.clone()))
                .filter(release::Column::PackageOpenedAt.is_null())
                .exec(&self.conn)
                .await
                .map_err(db_error)?;
        }
        Ok(package)
    }
}

/// Formats a time for the package.
pub fn at(t: DateTime<Utc>) -> String {
    timestamp(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(version: &str, permissions: &[&str], imports: &[&str], size: u64) -> Side {
        Side {
            version: version.into(),
            permissions: permissions.iter().map(|s| s.to_string()).collect(),
            imports: imports.iter().map(|s| s.to_string()).collect(),
            module_size_kb: size,
            findings: Vec::new(),
            components: Vec::new(),
        }
    }

    fn component(name: &str, version: &str, license: &str) -> ComponentRef {
        ComponentRef {
            name: name.into(),
            version: version.into(),
            licenses: vec![license.into()],
        }
    }

    fn approved() -> Vec<SignatureRef> {
        vec![SignatureRef {
            key_id: "ab".repeat(32),
            key_name: Some("ci".into()),
            state: "approved".into(),
        }]
    }

    #[test]
    fn a_new_network_permission_is_a_high_risk_traced_to_its_fact() {
        let before = side("1.0.0", &["kv:read"], &["env.log"], 10);
        let after = side(
            "1.1.0",
            &["kv:read", "net:api.example.com"],
            &["env.log", "env.http"],
            40,
        );
        let diff = compare(&after, Some(&before));
        assert_eq!(diff.permissions_added, ["net:api.example.com"]);
        assert_eq!(diff.imports_added, ["env.http"]);
        let r = risk(&after, Some(&before), &diff, &approved());
        let facts: Vec<(&RiskLevel, &str)> =
            r.iter().map(|p| (&p.level, p.fact.as_str())).collect();
        assert_eq!(
            facts,
            [
                (&RiskLevel::High, "permissions.added"),
                (&RiskLevel::Medium, "module.imports.added"),
                (&RiskLevel::Low, "module.size_kb"),
            ]
        );
    }

    /// (what, previous, current, the risk facts expected) — tests as data.
    #[test]
    fn risk_points_follow_the_facts() {
        let mut gpl = side("2.0.0", &[], &[], 10);
        gpl.components = vec![component("left-pad", "1.0.0", "GPL-3.0-only")];
        let mut relicensed_before = side("1.0.0", &[], &[], 10);
        relicensed_before.components = vec![component("yaml", "0.1", "MIT")];
        let mut relicensed = side("1.1.0", &[], &[], 10);
        relicensed.components = vec![component("yaml", "0.2", "BUSL-1.1")];
        let mut warned = side("1.1.0", &[], &[], 10);
        warned.findings = vec![FindingRef {
            rule: "random_import".into(),
            effect: "warn".into(),
            message: "uses randomness".into(),
        }];
        let quiet = side("1.0.0", &[], &[], 10);
        let cases: Vec<(&str, Option<Side>, Side, Vec<&str>)> = vec![
            (
                "first release",
                None,
                quiet.clone(),
                vec!["history.previous_version"],
            ),
            (
                "nothing changed",
                Some(quiet.clone()),
                side("1.0.1", &[], &[], 10),
                vec!["diff"],
            ),
            (
                "a copyleft dependency",
                Some(quiet.clone()),
                gpl,
                vec!["sbom.components.added"],
            ),
            (
                "a licence change",
                Some(relicensed_before),
                relicensed,
                vec!["sbom.components.changed"],
            ),
            (
                "a new warning",
                Some(quiet.clone()),
                warned,
                vec!["findings.new"],
            ),
        ];
        for (what, prev, cur, want) in cases {
            let diff = compare(&cur, prev.as_ref());
            let got: Vec<String> = risk(&cur, prev.as_ref(), &diff, &approved())
                .into_iter()
                .map(|p| p.fact)
                .collect();
            assert_eq!(got, want, "{what}");
        }
        // Unsigned: high, whatever else.
        let diff = compare(&quiet, Some(&quiet));
        let r = risk(&quiet, Some(&quiet), &diff, &[]);
        assert_eq!(r[0].level, RiskLevel::High);
        assert_eq!(r[0].fact, "signatures");
    }

    #[test]
    fn components_are_compared_by_name() {
        let mut a = side("1", &[], &[], 1);
        a.components = vec![component("x", "1", "MIT"), component("y", "1", "MIT")];
        let mut b = side("2", &[], &[], 1);
        b.components = vec![component("y", "2", "MIT"), component("z", "1", "MIT")];
        let d = compare(&b, Some(&a));
        assert_eq!(
            d.components_added
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["z"]
        );
        assert_eq!(
            d.components_removed
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["x"]
        );
        assert_eq!(d.components_changed.len(), 1);
        assert_eq!(d.components_changed[0].after.version, "2");
    }
}
