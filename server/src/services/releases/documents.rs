//! A release's signed documents: its in-toto layout, one link per completed step, its
//! statements (the verdict, the release, the review package), and the archive that carries
//! them with the bundle and the keys, in which `in-toto-verify` runs as it is.
//!
//! **Invariant:** a document is written once (a unique key on release and file name): a step
//! that ran twice could not write a second link.

use std::collections::BTreeMap;
use std::io::Write;

use app::delivery::DocumentRef;
use app::error::AppError;
use chrono::{DateTime, Utc};
use delivery::layout::{BUNDLE, LAYOUT, OWNER_KEY};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};
use trust::dsse::Envelope;
use trust::intoto::{self, Artifacts, Link, digest_of};
use trust::keys::{KeyPair, PublicKey, TrustRoot};

use super::super::db_error;
use crate::db::entities::release_document;

/// What a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    Layout,
    Link,
    Statement,
    Package,
}

impl DocKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Layout => "layout",
            DocKind::Link => "link",
            DocKind::Statement => "statement",
            DocKind::Package => "package",
        }
    }
}

/// The file name of the verdict statement in the archive.
pub const VERDICT_STATEMENT: &str = "statements/verdict.json";
/// The file name of the release statement (the sign stage's signature).
pub const RELEASE_STATEMENT: &str = "statements/release.json";
/// The file name of the review package statement.
pub const PACKAGE_STATEMENT: &str = "statements/review-package.json";
/// Predicate types of the statements Stellar signs for a release.
pub const RELEASE_PREDICATE: &str = "https://stellar.dev/attestations/release/v1";
pub const PACKAGE_PREDICATE: &str = "https://stellar.dev/attestations/review-package/v1";

/// Stores a document in the caller's transaction; a second document of the same name for the
/// same release is refused.
pub async fn store<C: ConnectionTrait>(
    conn: &C,
    release: &str,
    kind: DocKind,
    name: &str,
    key_id: &str,
    envelope: &Envelope,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    release_document::Entity::insert(release_document::ActiveModel {
        release_id: Set(release.to_owned()),
        kind: Set(kind.as_str().into()),
        name: Set(name.to_owned()),
        key_id: Set(key_id.to_owned()),
        envelope: Set(envelope.to_json()),
        created_at: Set(now),
        ..Default::default()
    })
    .exec_without_returning(conn)
    .await
    .map_err(|e| match db_error(e) {
        AppError::Conflict { .. } => AppError::conflict(format!(
            "release {release} already has `{name}`: this step was already recorded"
        )),
        other => other,
    })?;
    Ok(())
}

/// Every document of a release, in the order written.
pub async fn all<C: ConnectionTrait>(
    conn: &C,
    release: &str,
) -> Result<Vec<release_document::Model>, AppError> {
    release_document::Entity::find()
        .filter(release_document::Column::ReleaseId.eq(release))
        .order_by_asc(release_document::Column::Id)
        .all(conn)
        .await
        .map_err(db_error)
}

/// The bundle as a link's materials and products.
pub fn bundle_artifacts(sha256: &str) -> Artifacts {
    BTreeMap::from([(
        BUNDLE.to_owned(),
        BTreeMap::from([("sha256".to_owned(), sha256.to_owned())]),
    )])
}

/// A signed link for `step`: the bundle in and out, and what the step produced besides.
pub fn link(
    step: &str,
    bundle_sha256: &str,
    byproducts: serde_json::Value,
    key: &KeyPair,
) -> (String, Envelope) {
    let mut link = Link::new(step);
    link.materials = bundle_artifacts(bundle_sha256);
    link.products = bundle_artifacts(bundle_sha256);
    if let serde_json::Value::Object(map) = byproducts {
        link.byproducts = map;
    }
    let keyid = intoto::intoto_key_id(key.public());
    (
        intoto::link_file_name(step, &keyid),
        intoto::sign(&link, key),
    )
}

/// Rewrites an envelope's key ids from Stellar's (SPKI) to in-toto's, for a layout signed
/// offline: the signature bytes do not change, only the name the verifier looks it up by.
pub fn with_intoto_key_id(mut envelope: Envelope, key: &PublicKey) -> Envelope {
    let id = intoto::intoto_key_id(key);
    for s in &mut envelope.signatures {
        s.keyid = id.clone();
    }
    envelope
}

/// References to a release's documents, each with whether its signature verifies now.
pub fn refs(docs: &[release_document::Model], root: &TrustRoot) -> Vec<DocumentRef> {
    let keys: Vec<PublicKey> = root
        .keys
        .iter()
        .filter_map(|k| PublicKey::from_pem(&k.public_key).ok())
        .collect();
    docs.iter()
        .map(|d| {
            let verified = Envelope::from_json(&d.envelope).is_ok_and(|e| {
                let input = e.signing_input();
                input.is_ok_and(|input| {
                    e.signatures.iter().all(|s| {
                        keys.iter().any(|k| {
                            (k.id().0 == s.keyid || intoto::intoto_key_id(k) == s.keyid)
                                && base64_der(&s.sig)
                                    .is_some_and(|der| k.verify_der(&input, &der).is_ok())
                        })
                    }) && !e.signatures.is_empty()
                })
            });
            DocumentRef {
                name: d.name.clone(),
                kind: d.kind.clone(),
                key_id: d.key_id.clone(),
                verified,
            }
        })
        .collect()
}

fn base64_der(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// The files of a release's attestation archive, by path.
pub struct ArchiveFiles {
    pub files: BTreeMap<String, Vec<u8>>,
}

impl ArchiveFiles {
    /// The archive's files: the bundle, every document, the release key that signed the layout,
    /// the trust root, and a README saying how to verify.
    pub fn new(
        bundle: Vec<u8>,
        docs: &[release_document::Model],
        release_key: &PublicKey,
        root: &TrustRoot,
        release: &str,
    ) -> Self {
        let mut files = BTreeMap::new();
        files.insert(BUNDLE.to_owned(), bundle);
        for d in docs {
            files.insert(d.name.clone(), format!("{}\n", d.envelope).into_bytes());
        }
        files.insert(OWNER_KEY.to_owned(), release_key.to_pem().into_bytes());
        files.insert(
            "trust-root.json".to_owned(),
            format!("{}\n", root.to_json()).into_bytes(),
        );
        files.insert(
            "README.txt".to_owned(),
            format!(
                "Attestations of Stellar release {release}.\n\n\
                 Verify offline, in this folder, with the in-toto reference verifier:\n\
                 \x20 in-toto-verify -l {LAYOUT} --verification-keys {OWNER_KEY}\n\
                 or with Stellar (no network):\n\
                 \x20 stellar verify-release . --trust-root trust-root.json\n\
                 (compare trust-root.json with the one your organisation pinned first).\n"
            )
            .into_bytes(),
        );
        ArchiveFiles { files }
    }

    /// The files as a gzip-compressed tar archive, under a folder named after the release.
    pub fn tar_gz(&self, folder: &str) -> Result<Vec<u8>, AppError> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        for (path, bytes) in &self.files {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_cksum();
            tar.append_data(&mut header, format!("{folder}/{path}"), bytes.as_slice())
                .map_err(|e| {
                    AppError::internal(format!("the archive could not be written: {e}"))
                })?;
        }
        let gz = tar
            .into_inner()
            .map_err(|e| AppError::internal(format!("the archive could not be written: {e}")))?;
        let mut out = gz
            .finish()
            .map_err(|e| AppError::internal(format!("the archive could not be written: {e}")))?;
        out.flush().ok();
        Ok(out)
    }
}

/// The artifacts on disk as the verifier would record them: every file, by path, with its
/// sha256.
pub fn on_disk(files: &BTreeMap<String, Vec<u8>>) -> Artifacts {
    files
        .iter()
        .map(|(p, b)| (p.clone(), digest_of(b)))
        .collect()
}
