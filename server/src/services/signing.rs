//! Attestations: in-toto statements signed into DSSE envelopes by the active key of a purpose,
//! online when the server holds the private key, through a signing request when the key is
//! kept offline. An imported offline signature is verified and stored exactly like an online
//! one (same table, same ledger action), so whatever waits on the attestation proceeds the same
//! way.

use app::error::AppError;
use chrono::{SecondsFormat, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder,
};
use serde::Serialize;
use trust::dsse::{Envelope, INTOTO_PAYLOAD_TYPE, Statement};
use trust::keys::{KeyId, Purpose};
use trust::offline::{SignedRequest, SigningRequest};

use super::db_error;
use super::keys::{Keyring, Signer};
use app::api::backend::Principal;
use app::authz::{Action, authorize};

use super::jobs::{JobKind, Queue};
use super::ledger_store::{Appender, LedgerStore as Ledger, Record};
use crate::db::entities::{attestation, signing_request};

/// Predicate types Stellar signs, and the key purpose each needs.
pub const PREDICATES: [(&str, Purpose); 3] = [
    (
        "https://stellar.dev/attestations/verdict/v1",
        Purpose::Validator,
    ),
    (
        "https://stellar.dev/attestations/release/v1",
        Purpose::Release,
    ),
    (
        "https://stellar.dev/attestations/pipeline-step/v1",
        Purpose::PipelineStep,
    ),
];

/// The key purpose a predicate type needs, if Stellar knows it.
pub fn purpose_for(predicate_type: &str) -> Option<Purpose> {
    PREDICATES
        .iter()
        .find(|(p, _)| *p == predicate_type)
        .map(|(_, purpose)| *purpose)
}

/// A stored attestation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AttestationInfo {
    pub id: i32,
    pub predicate_type: String,
    pub subject_name: String,
    pub subject_sha256: String,
    pub key_id: String,
    /// The DSSE envelope (JSON text).
    pub envelope: String,
    /// The signing request it came from, when signed offline.
    pub request_id: Option<String>,
    pub created_at: String,
}

/// The outcome of asking for a signature.
#[derive(Debug, Clone)]
pub enum Attested {
    /// Signed now.
    Signed(AttestationInfo),
    /// The key is offline: this request waits for its signature.
    Pending(SigningRequest),
}

/// What a signing request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// An in-toto statement: stored as an attestation once signed.
    Attestation,
    /// A release's in-toto layout: picked up by the release that waits on it.
    Layout,
}

impl RequestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Attestation => "attestation",
            RequestKind::Layout => "layout",
        }
    }

    fn parse(s: &str) -> RequestKind {
        if s == "layout" {
            RequestKind::Layout
        } else {
            RequestKind::Attestation
        }
    }
}

/// A signing request to queue.
pub struct QueuedRequest<'a> {
    pub kind: RequestKind,
    pub purpose: Purpose,
    pub key_id: &'a KeyId,
    pub payload_type: &'a str,
    pub payload: &'a [u8],
    /// What waits on the signature (`release:<id>`): woken when it is imported.
    pub subject: Option<&'a str>,
    pub actor: &'a str,
    pub tenant: Option<String>,
    /// Extra ledger details (what the payload is about).
    pub about: serde_json::Value,
}

/// An imported signature.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Imported {
    pub request_id: String,
    /// The attestation stored, for statement requests.
    pub attestation: Option<AttestationInfo>,
    /// What waits on it.
    pub waiter: Option<String>,
}

/// Signing, backed by the key registry and the ledger.
#[derive(Clone, Debug)]
pub struct Signing {
    conn: DatabaseConnection,
    keys: Keyring,
    ledger: Ledger,
    queue: Queue,
}

fn info(m: attestation::Model) -> AttestationInfo {
    AttestationInfo {
        id: m.id,
        predicate_type: m.predicate_type,
        subject_name: m.subject_name,
        subject_sha256: m.subject_sha256,
        key_id: m.key_id,
        envelope: m.envelope,
        request_id: m.request_id,
        created_at: super::timestamp(m.created_at),
    }
}

fn to_request(m: &signing_request::Model) -> Result<SigningRequest, AppError> {
    use base64::Engine;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(&m.payload)
        .map_err(|_| AppError::internal("a stored signing request has a damaged payload"))?;
    let purpose: Purpose = m
        .purpose
        .parse()
        .map_err(|e: trust::keys::KeyError| AppError::internal(e.to_string()))?;
    Ok(SigningRequest::new(
        m.id.clone(),
        purpose,
        m.key_id.clone(),
        m.payload_type.clone(),
        &payload,
        m.created_at,
    ))
}

impl Signing {
    pub fn new(conn: DatabaseConnection, keys: Keyring, ledger: Ledger, queue: Queue) -> Self {
        Signing {
            conn,
            keys,
            ledger,
            queue,
        }
    }

    pub fn keys(&self) -> &Keyring {
        &self.keys
    }

    /// Signs a statement on request (`stellar attest`), as [`Signing::attest`] does for the
    /// server's own statements.
    pub async fn attest_for(
        &self,
        who: &Principal,
        purpose: Purpose,
        statement: Statement,
    ) -> Result<Attested, AppError> {
        authorize(who, Action::ManageSigningKeys)?;
        self.attest(purpose, statement, &who.me.username, None)
            .await
    }

    /// Signs a statement with the active key of `purpose` (the statement's predicate gets
    /// `signedAt` = now), or queues a signing request when that key is offline. The server's
    /// own statements (verdicts, pipeline steps) come through here.
    pub async fn attest(
        &self,
        purpose: Purpose,
        mut statement: Statement,
        actor: &str,
        tenant: Option<String>,
    ) -> Result<Attested, AppError> {
        if statement.subject.is_empty() {
            return Err(AppError::invalid(
                "subject",
                "a statement needs at least one subject",
            ));
        }
        let now = Utc::now();
        if let Some(p) = statement.predicate.as_object_mut() {
            p.insert(
                "signedAt".into(),
                now.to_rfc3339_opts(SecondsFormat::Secs, true).into(),
            );
        } else {
            return Err(AppError::invalid(
                "predicate",
                "the predicate must be a JSON object",
            ));
        }
        match self.keys.signer(purpose, &self.ledger).await? {
            Signer::Online(key) => {
                let envelope = Envelope::sign_statement(&statement, &key);
                let saved = self
                    .store(&statement, &envelope, None, actor, tenant, false)
                    .await?;
                Ok(Attested::Signed(saved))
            }
            Signer::Offline { key_id } => {
                let payload = serde_json::to_vec(&statement)
                    .map_err(|e| AppError::internal(e.to_string()))?;
                let mut a = self.ledger.begin().await?;
                let request = self
                    .queue_request(
                        &mut a,
                        QueuedRequest {
                            kind: RequestKind::Attestation,
                            purpose,
                            key_id: &key_id,
                            payload_type: INTOTO_PAYLOAD_TYPE,
                            payload: &payload,
                            subject: None,
                            actor,
                            tenant,
                            about: serde_json::json!({"predicate_type": statement.predicate_type}),
                        },
                    )
                    .await?;
                a.commit().await?;
                Ok(Attested::Pending(request))
            }
        }
    }

    /// Queues a signing request inside the caller's ledger transaction (the state change that
    /// needs the signature): the request row and its ledger entry commit with it or not at all.
    pub async fn queue_request(
        &self,
        a: &mut Appender,
        q: QueuedRequest<'_>,
    ) -> Result<SigningRequest, AppError> {
        let now = Utc::now();
        let id = uuid::Uuid::now_v7().to_string();
        let request = SigningRequest::new(
            id.clone(),
            q.purpose,
            q.key_id.0.clone(),
            q.payload_type,
            q.payload,
            now,
        );
        signing_request::Entity::insert(signing_request::ActiveModel {
            id: Set(id.clone()),
            kind: Set(q.kind.as_str().into()),
            purpose: Set(q.purpose.as_str().into()),
            key_id: Set(q.key_id.0.clone()),
            payload_type: Set(q.payload_type.into()),
            payload: Set(request.payload.clone()),
            status: Set("pending".into()),
            signature: Set(None),
            created_at: Set(now),
            completed_at: Set(None),
            subject: Set(q.subject.map(str::to_owned)),
        })
        .exec_without_returning(a.txn())
        .await
        .map_err(db_error)?;
        let mut details = serde_json::json!({
            "kind": q.kind.as_str(),
            "purpose": q.purpose.as_str(),
            "key_id": q.key_id.0,
            "pae_sha256": request.pae_sha256,
            "for": q.subject,
        });
        if let (Some(d), Some(about)) = (details.as_object_mut(), q.about.as_object()) {
            d.extend(about.clone());
        }
        a.append(Record {
            actor: q.actor.to_owned(),
            tenant: q.tenant,
            action: "signing-request.create".into(),
            subject: id,
            details,
        })
        .await?;
        Ok(request)
    }

    /// The signature of a request, once imported: the envelope (whose key id is Stellar's).
    pub async fn signed_envelope(&self, request_id: &str) -> Result<Option<Envelope>, AppError> {
        let Some(row) = signing_request::Entity::find_by_id(request_id.to_owned())
            .one(&self.conn)
            .await
            .map_err(db_error)?
        else {
            return Ok(None);
        };
        match (row.status.as_str(), row.signature) {
            ("signed", Some(text)) => Envelope::from_json(&text)
                .map(Some)
                .map_err(|e| AppError::internal(format!("a stored signature is damaged: {e}"))),
            _ => Ok(None),
        }
    }

    async fn store(
        &self,
        statement: &Statement,
        envelope: &Envelope,
        request_id: Option<String>,
        actor: &str,
        tenant: Option<String>,
        offline: bool,
    ) -> Result<AttestationInfo, AppError> {
        let first = &statement.subject[0];
        let key_id = envelope
            .signatures
            .first()
            .map(|s| s.keyid.clone())
            .unwrap_or_default();
        let mut a = self.ledger.begin().await?;
        let saved = attestation::Entity::insert(attestation::ActiveModel {
            predicate_type: Set(statement.predicate_type.clone()),
            subject_name: Set(first.name.chars().take(500).collect()),
            subject_sha256: Set(first.digest.get("sha256").cloned().unwrap_or_default()),
            key_id: Set(key_id.clone()),
            envelope: Set(envelope.to_json()),
            request_id: Set(request_id.clone()),
            created_at: Set(Utc::now()),
            ..Default::default()
        })
        .exec_with_returning(a.txn())
        .await
        .map_err(db_error)?;
        if let Some(id) = &request_id {
            let row = signing_request::Entity::find_by_id(id.clone())
                .one(a.txn())
                .await
                .map_err(db_error)?
                .ok_or_else(|| AppError::not_found(format!("no signing request `{id}`")))?;
            let mut row = row.into_active_model();
            row.status = Set("signed".into());
            row.signature = Set(Some(envelope.to_json()));
            row.completed_at = Set(Some(Utc::now()));
            row.update(a.txn()).await.map_err(db_error)?;
        }
        a.append(Record {
            actor: actor.to_owned(),
            tenant,
            action: "attestation.sign".into(),
            subject: format!("attestation:{}", saved.id),
            details: serde_json::json!({
                "predicate_type": statement.predicate_type,
                "subject": first.name,
                "sha256": first.digest.get("sha256"),
                "key_id": key_id,
                "offline": offline,
                "request": request_id,
            }),
        })
        .await?;
        a.commit().await?;
        Ok(info(saved))
    }

    /// Pending signing requests, oldest first.
    pub async fn pending(&self, who: &Principal) -> Result<Vec<SigningRequest>, AppError> {
        authorize(who, Action::HandleSigningRequests)?;
        signing_request::Entity::find()
            .filter(signing_request::Column::Status.eq("pending"))
            .order_by_asc(signing_request::Column::CreatedAt)
            .all(&self.conn)
            .await
            .map_err(db_error)?
            .iter()
            .map(to_request)
            .collect()
    }

    /// One signing request, as the file to export.
    pub async fn request(&self, who: &Principal, id: &str) -> Result<SigningRequest, AppError> {
        authorize(who, Action::HandleSigningRequests)?;
        self.pending_request(id).await
    }

    async fn pending_request(&self, id: &str) -> Result<SigningRequest, AppError> {
        let row = signing_request::Entity::find_by_id(id.to_owned())
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .ok_or_else(|| {
                AppError::not_found(format!(
                    "there is no signing request `{id}` (see `stellar sign-request list`)"
                ))
            })?;
        if row.status != "pending" {
            return Err(AppError::conflict(format!(
                "signing request `{id}` is already {}",
                row.status
            )));
        }
        to_request(&row)
    }

    /// Imports an offline signature: the envelope must carry the request's exact payload and
    /// verify under the trust root with the key the request named, which must still be
    /// neither revoked nor expired. Then it is stored like an online signature.
    pub async fn import(
        &self,
        who: &Principal,
        signed: &SignedRequest,
    ) -> Result<Imported, AppError> {
        authorize(who, Action::HandleSigningRequests)?;
        let actor = who.me.username.as_str();
        let request = self.pending_request(&signed.request_id).await?;
        let bad = |m: String| AppError::invalid("signature", m);
        if signed.envelope.payload_type != request.payload_type
            || signed.envelope.payload != request.payload
        {
            return Err(bad(format!(
                "the signed payload is not the payload of request {}: sign the request file exactly as exported",
                request.id
            )));
        }
        if signed.envelope.signatures.len() != 1
            || signed.envelope.signatures[0].keyid != request.key_id
        {
            return Err(bad(format!(
                "request {} must be signed once, by key {}",
                request.id,
                &request.key_id[..16]
            )));
        }
        // The trust root pinned outside the database: a key someone added to the registry
        // signs nothing here. The key must also still be good now (not revoked since the
        // request was made).
        let (root, _) = self.keys.pinned_root().await?;
        let now = Utc::now();
        signed
            .envelope
            .verify_payload(&root, request.purpose, now)
            .map_err(|e| bad(format!("{e}: the signature is refused")))?;
        let row = signing_request::Entity::find_by_id(request.id.clone())
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .ok_or_else(|| AppError::not_found(format!("no signing request `{}`", request.id)))?;
        let kind = RequestKind::parse(&row.kind);
        let info = if kind == RequestKind::Attestation {
            let statement = signed
                .envelope
                .verify(&root, request.purpose, now)
                .map_err(|e| bad(e.to_string()))?;
            Some(
                self.store(
                    &statement,
                    &signed.envelope,
                    Some(request.id.clone()),
                    actor,
                    None,
                    true,
                )
                .await?,
            )
        } else {
            let mut a = self.ledger.begin().await?;
            let mut active = row.clone().into_active_model();
            active.status = Set("signed".into());
            active.signature = Set(Some(signed.envelope.to_json()));
            active.completed_at = Set(Some(now));
            active.update(a.txn()).await.map_err(db_error)?;
            a.append(Record {
                actor: actor.to_owned(),
                tenant: None,
                action: "signing-request.sign".into(),
                subject: request.id.clone(),
                details: serde_json::json!({
                    "kind": row.kind,
                    "purpose": request.purpose.as_str(),
                    "key_id": request.key_id,
                    "for": row.subject,
                }),
            })
            .await?;
            a.commit().await?;
            None
        };
        // Whatever waits on the signature looks again.
        if let Some(waiter) = &row.subject {
            self.queue
                .enqueue_once(JobKind::Wake, &format!("wake:{}", request.id))
                .await?;
            tracing::info!(request = %request.id, %waiter, "signature imported; waking its waiter");
        }
        Ok(Imported {
            request_id: request.id,
            attestation: info,
            waiter: row.subject,
        })
    }

    /// What waits on a signing request (`release:<id>`), if anything.
    pub async fn waiter_of(&self, request_id: &str) -> Result<Option<String>, AppError> {
        Ok(signing_request::Entity::find_by_id(request_id.to_owned())
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .and_then(|r| r.subject))
    }

    pub async fn attestation(&self, id: i32) -> Result<AttestationInfo, AppError> {
        attestation::Entity::find_by_id(id)
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .map(info)
            .ok_or_else(|| AppError::not_found(format!("there is no attestation {id}")))
    }

    /// Attestations about an artefact (by sha256), newest first.
    pub async fn for_subject(&self, sha256: &str) -> Result<Vec<AttestationInfo>, AppError> {
        Ok(attestation::Entity::find()
            .filter(attestation::Column::SubjectSha256.eq(sha256))
            .order_by_desc(attestation::Column::Id)
            .all(&self.conn)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(info)
            .collect())
    }
}
