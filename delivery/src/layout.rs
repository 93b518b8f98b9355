//! The in-toto layout a pipeline implies for one release, and the file names of the archive
//! that `in-toto-verify` runs in.
//!
//! Steps: `judge` (Stellar's verdict) and then one step per stage, each allowed to be signed
//! by the `pipeline-step` key the layout names, threshold 1. The bundle's digest is chained:
//! every step after `judge` must consume exactly the bundle the step before produced and
//! produce it unchanged. An inspection (`true`, run by the verifier) binds the bundle on disk to
//! the last step's product and allows only the archive's own files beside it.

use chrono::{DateTime, Utc};
use trust::intoto::{Inspection, Layout, Rule, Step};
use trust::keys::PublicKey;

use crate::spec::{JUDGE_STEP, Pipeline};

/// The bundle's file name in the archive and in every link.
pub const BUNDLE: &str = "bundle.tar.gz";
/// The layout's file name.
pub const LAYOUT: &str = "root.layout";
/// The release key's public half (what `--verification-keys` takes).
pub const OWNER_KEY: &str = "release.pub";
/// The inspection's name.
pub const INSPECTION: &str = "bind-bundle";

/// What the layout says about the release, for people reading it.
pub struct About<'a> {
    pub release: &'a str,
    pub plugin: &'a str,
    pub version: &'a str,
    pub spec_version: i64,
}

/// The step names of a pipeline's layout, in order.
pub fn step_names(pipeline: &Pipeline) -> Vec<String> {
    std::iter::once(JUDGE_STEP.to_owned())
        .chain(pipeline.stages.iter().map(|s| s.name.clone()))
        .collect()
}

/// The layout for one release of `pipeline`, naming `step_key` for every step.
pub fn layout(
    pipeline: &Pipeline,
    about: &About<'_>,
    step_key: &PublicKey,
    expires: DateTime<Utc>,
) -> Layout {
    let mut layout = Layout::new(
        expires,
        format!(
            "Stellar release {} of {} {} (pipeline `{}`, spec version {}). Verify in the unpacked archive: in-toto-verify -l {LAYOUT} --verification-keys {OWNER_KEY}",
            about.release, about.plugin, about.version, pipeline.name, about.spec_version
        ),
    );
    let keyid = layout.add_key(step_key);
    let names = step_names(pipeline);
    for (i, name) in names.iter().enumerate() {
        let mut step = Step::new(name.clone(), vec![keyid.clone()], 1);
        if i == 0 {
            step.expected_materials = vec![Rule::Allow(BUNDLE.into()), Rule::Disallow("*".into())];
            step.expected_products = vec![Rule::Allow(BUNDLE.into()), Rule::Disallow("*".into())];
        } else {
            let before = &names[i - 1];
            step.expected_materials = vec![
                Rule::match_products(BUNDLE, before),
                Rule::Disallow("*".into()),
            ];
            step.expected_products = vec![
                Rule::match_products(BUNDLE, before),
                Rule::Disallow("*".into()),
            ];
        }
        layout.steps.push(step);
    }
    let last = names.last().cloned().unwrap_or_else(|| JUDGE_STEP.into());
    let mut bind = Inspection::new(INSPECTION, vec!["true".into()]);
    let allowed = [
        Rule::match_products(BUNDLE, &last),
        Rule::Allow(LAYOUT.into()),
        Rule::Allow("*.link".into()),
        Rule::Allow("*.pub".into()),
        Rule::Allow("trust-root.json".into()),
        Rule::Allow("statements/*".into()),
        Rule::Allow("README.txt".into()),
        Rule::Disallow("*".into()),
    ];
    bind.expected_materials = allowed.to_vec();
    bind.expected_products = allowed.to_vec();
    layout.inspect.push(bind);
    layout
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec;
    use std::collections::BTreeMap;
    use trust::intoto::{self, Link, digest_of, link_file_name};
    use trust::keys::KeyPair;

    /// A layout made from the default spec verifies with links for every step, and fails when
    /// one is missing.
    #[test]
    fn the_default_pipeline_makes_a_layout_its_links_satisfy() {
        let pipeline = spec::parse(spec::DEFAULT_SPEC)
            .expect("spec")
            .pipelines
            .remove(0);
        let owner = KeyPair::generate().expect("key");
        let step_key = KeyPair::generate().expect("key");
        let about = About {
            release: "r1",
            plugin: "acme-hello",
            version: "1.0.0",
            spec_version: 1,
        };
        let now = Utc::now();
        let l = layout(
            &pipeline,
            &about,
            step_key.public(),
            now + chrono::Duration::days(1),
        );
        assert_eq!(step_names(&pipeline), ["judge", "review", "sign", "ga"]);
        let keyid = intoto::intoto_key_id(step_key.public());
        let bundle = BTreeMap::from([(BUNDLE.to_owned(), digest_of(b"bundle"))]);
        let mut links = BTreeMap::new();
        for name in step_names(&pipeline).iter() {
            let mut link = Link::new(name);
            link.materials = bundle.clone();
            link.products = bundle.clone();
            links.insert(link_file_name(name, &keyid), intoto::sign(&link, &step_key));
        }
        let mut disk = bundle.clone();
        disk.insert(LAYOUT.into(), digest_of(b"l"));
        disk.insert(OWNER_KEY.into(), digest_of(b"k"));
        disk.insert("statements/verdict.json".into(), digest_of(b"v"));
        for f in links.keys() {
            disk.insert(f.clone(), digest_of(f.as_bytes()));
        }
        let envelope = intoto::sign(&l, &owner);
        intoto::verify(&envelope, &[owner.public().clone()], &links, &disk, now).expect("verifies");

        let mut extra = disk.clone();
        extra.insert("payload.sh".into(), digest_of(b"x"));
        assert!(intoto::verify(&envelope, &[owner.public().clone()], &links, &extra, now).is_err());

        let review = link_file_name("review", &keyid);
        links.remove(&review);
        assert!(intoto::verify(&envelope, &[owner.public().clone()], &links, &disk, now).is_err());
    }
}
