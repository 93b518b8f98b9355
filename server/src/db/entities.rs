//! sea-orm entities: the rows as stored. API views live in `app::types`; conversions are in the
//! services.

/// A partner organisation.
pub mod tenant {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tenants")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        #[sea_orm(unique)]
        pub slug: String,
        pub name: String,
        pub created_at: DateTimeUtc,
        /// Whether the marketplace verified this publisher.
        pub verified: bool,
        /// Publisher tier: `partner` or `community`.
        pub tier: String,
        /// Egress rules: host patterns the tenant's plugins may reach, space-separated
        /// (`*`, `*.example.com`, `api.example.com`).
        pub egress_allow: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A publisher's signing key: bundles signed with it count as signed.
pub mod publisher_key {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "publisher_keys")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub tenant_id: i32,
        pub key_id: String,
        pub name: String,
        pub public_pem: String,
        pub created_by: String,
        pub created_at: DateTimeUtc,
        pub revoked_at: Option<DateTimeUtc>,
        /// Signatures by the key count only once secops or an administrator approved it.
        pub approved_at: Option<DateTimeUtc>,
        pub approved_by: Option<String>,
        pub revoked_by: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A plugin submission.
pub mod submission {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "submissions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: i32,
        pub plugin_id: String,
        pub version: String,
        pub bundle_sha256: String,
        pub bundle_size: i64,
        pub filename: String,
        /// The parsed manifest, as JSON.
        pub manifest: String,
        /// `queued`, `running`, `done` or `failed`.
        pub status: String,
        pub decision: Option<String>,
        pub error: Option<String>,
        pub submitted_by: String,
        pub created_at: DateTimeUtc,
        pub finished_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The bundle of a submission, as uploaded.
pub mod submission_blob {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "submission_blobs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub submission_id: String,
        pub data: Vec<u8>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The immutable verdict on a submission.
pub mod verdict {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "verdicts")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        #[sea_orm(unique)]
        pub submission_id: String,
        pub pack_name: String,
        pub pack_version: String,
        pub pack_sha256: String,
        pub bundle_sha256: String,
        pub decision: String,
        /// The policy verdict (findings, evidence, fixes), as JSON.
        pub verdict: String,
        /// The facts it judged, as JSON.
        pub facts: String,
        pub attestation_id: Option<i32>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A durable background job.
pub mod job {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "jobs")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        /// What the job does (`analyse`, `ledger.checkpoint`, …).
        pub kind: String,
        /// What the job is about (a submission id, `ledger.checkpoint:<slot>`): unique.
        #[sea_orm(unique)]
        pub subject: String,
        /// `queued`, `running`, `done` or `failed`.
        pub state: String,
        pub attempts: i32,
        pub max_attempts: i32,
        pub lease_owner: Option<String>,
        pub lease_expires: Option<i64>,
        pub run_after: i64,
        pub last_error: Option<String>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        /// The tenant the job works for (fair queueing), if any.
        pub tenant_id: Option<i32>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A local account.
pub mod user {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        #[sea_orm(unique)]
        pub username: String,
        pub display_name: String,
        /// PHC string of an argon2id hash.
        pub password_hash: String,
        /// One of `app::types::Role`, as text.
        pub role: String,
        pub tenant_id: Option<i32>,
        pub disabled: bool,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A server-side portal session. The cookie holds a secret; only its sha256 is stored.
pub mod session {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sessions")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        #[sea_orm(unique)]
        pub token_hash: String,
        pub user_id: i32,
        pub csrf_token: String,
        pub created_at: DateTimeUtc,
        pub last_seen_at: DateTimeUtc,
        pub expires_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// An API token. Only the sha256 of its secret is stored.
pub mod api_token {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_tokens")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        #[sea_orm(unique)]
        pub public_id: String,
        pub user_id: i32,
        pub name: String,
        #[sea_orm(unique)]
        pub token_hash: String,
        pub prefix: String,
        pub created_at: DateTimeUtc,
        pub last_used_at: Option<DateTimeUtc>,
        pub expires_at: Option<DateTimeUtc>,
        pub revoked_at: Option<DateTimeUtc>,
        /// Its scopes' names, separated by spaces.
        pub scopes: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A plugin id and the tenant that first published it (who alone may publish it again).
pub mod plugin {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "plugins")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub plugin_id: String,
        pub tenant_id: i32,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Failed sign-in counts per username and per client address.
pub mod login_throttle {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "login_throttle")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub failures: i32,
        pub window_start: DateTimeUtc,
        pub locked_until: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A public key Stellar trusts, with its purpose and validity. Private keys live in the key
/// directory (or offline), never in the database.
pub mod signing_key {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "signing_keys")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        /// Hex sha256 of the DER SubjectPublicKeyInfo.
        #[sea_orm(unique)]
        pub key_id: String,
        /// One of `trust::keys::Purpose`, as text.
        pub purpose: String,
        pub public_pem: String,
        pub valid_from: DateTimeUtc,
        pub valid_until: Option<DateTimeUtc>,
        pub revoked_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// One audit-ledger entry, exactly as hashed (see `trust::ledger::Entry`).
pub mod ledger_entry {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ledger_entries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub seq: i64,
        pub time: String,
        pub actor: String,
        pub tenant: Option<String>,
        pub action: String,
        pub subject: String,
        pub details: String,
        pub prev_hash: String,
        pub entry_hash: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The ledger's size and last hash (one row, id 1); updating it serialises appends.
pub mod ledger_head {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ledger_head")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        pub size: i64,
        pub last_hash: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A perfect-subtree hash of the ledger's Merkle tree (level 0: the leaves).
pub mod ledger_node {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ledger_nodes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub level: i32,
        #[sea_orm(primary_key, auto_increment = false)]
        pub idx: i64,
        pub hash: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A signed tree head (C2SP signed note).
pub mod ledger_checkpoint {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ledger_checkpoints")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub size: i64,
        pub root_hash: String,
        pub note: String,
        pub key_id: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A run of the ledger verification and its outcome.
pub mod ledger_verification {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ledger_verifications")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub verified_at: DateTimeUtc,
        pub entries: i64,
        pub checkpoint_size: Option<i64>,
        pub ok: bool,
        pub message: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Something to be signed by a key held offline.
pub mod signing_request {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "signing_requests")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// What the signature is for (`attestation`).
        pub kind: String,
        pub purpose: String,
        /// The key that must sign.
        pub key_id: String,
        pub payload_type: String,
        /// The payload, base64.
        pub payload: String,
        /// `pending`, `signed` or `cancelled`.
        pub status: String,
        /// The DSSE envelope once signed.
        pub signature: Option<String>,
        pub created_at: DateTimeUtc,
        pub completed_at: Option<DateTimeUtc>,
        /// What waits on the signature (`release:<id>`), if anything.
        pub subject: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A signed attestation (DSSE envelope of an in-toto Statement v1).
pub mod attestation {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "attestations")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub predicate_type: String,
        pub subject_name: String,
        pub subject_sha256: String,
        pub key_id: String,
        pub envelope: String,
        pub request_id: Option<String>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A version of the pipeline spec (the newest is active).
pub mod pipeline_spec {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "pipeline_specs")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        #[sea_orm(unique)]
        pub version: i32,
        /// The TOML text, exactly as published.
        pub source: String,
        pub sha256: String,
        pub created_by: String,
        pub comment: Option<String>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A release: one accepted plugin version going through a pipeline.
pub mod release {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "releases")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: i32,
        pub submission_id: String,
        pub plugin_id: String,
        pub version: String,
        pub bundle_sha256: String,
        pub spec_version: i32,
        pub pipeline: String,
        /// [`delivery::engine::ReleaseState`].
        pub state: String,
        /// Index of the current stage.
        pub stage: i32,
        /// [`delivery::engine::StageState`] of the current stage.
        pub stage_state: String,
        pub step: Option<i32>,
        pub step_started: Option<DateTimeUtc>,
        /// JSON of [`delivery::engine::Waiting`].
        pub waiting: Option<String>,
        pub signature_request: Option<String>,
        pub signature_made: bool,
        pub layout_request: Option<String>,
        pub window_override: bool,
        pub reason: Option<String>,
        /// Transition counter: every change bumps it, and the step job that expects an older
        /// value does nothing (exactly once).
        pub seq: i32,
        pub created_by: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub finished_at: Option<DateTimeUtc>,
        pub package_ready_at: Option<DateTimeUtc>,
        pub package_opened_at: Option<DateTimeUtc>,
        pub decided_at: Option<DateTimeUtc>,
        /// When a GA version was withdrawn (`stellar release yank`).
        pub yanked_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// One stage of a release.
pub mod release_stage {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "release_stages")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub release_id: String,
        pub idx: i32,
        pub name: String,
        pub kind: String,
        pub state: String,
        pub started_at: Option<DateTimeUtc>,
        pub finished_at: Option<DateTimeUtc>,
        pub actor: Option<String>,
        /// What happened, for people (the waiting reason, the rejection, the signature).
        pub detail: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// An approver's decision.
pub mod release_decision {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "release_decisions")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub release_id: String,
        pub stage: i32,
        pub user_id: i32,
        pub username: String,
        pub role: String,
        pub approve: bool,
        pub reason: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A signed in-toto document of a release (layout, link, statement, review package).
pub mod release_document {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "release_documents")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub release_id: String,
        /// `layout`, `link`, `statement` or `package`.
        pub kind: String,
        /// Its file name in the attestation archive.
        pub name: String,
        pub key_id: String,
        /// The DSSE envelope (JSON).
        pub envelope: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// An allow or freeze window.
pub mod calendar_window {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "calendar_windows")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub name: String,
        /// `allow` or `deny`.
        pub kind: String,
        pub starts_at: Option<DateTimeUtc>,
        pub ends_at: Option<DateTimeUtc>,
        pub cron: Option<String>,
        pub duration_secs: Option<i64>,
        pub timezone: Option<String>,
        pub plugins: Option<String>,
        pub comment: Option<String>,
        pub created_by: String,
        pub created_at: DateTimeUtc,
        pub deleted_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// An outgoing webhook.
pub mod webhook {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhooks")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub url: String,
        /// The HMAC key (shown once when the hook is made).
        pub secret: String,
        /// Space-separated event names.
        pub events: String,
        pub active: bool,
        pub created_by: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// One event sent (or being sent) to one webhook.
pub mod webhook_delivery {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_deliveries")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub webhook_id: i32,
        pub event: String,
        pub release_id: Option<String>,
        pub payload: String,
        /// `pending`, `delivered` or `failed`.
        pub state: String,
        pub attempts: i32,
        pub last_status: Option<i32>,
        pub last_error: Option<String>,
        pub created_at: DateTimeUtc,
        pub delivered_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A fleet token: a host's (or a host group's) credential for the fleet routes, stored as
/// sha256.
pub mod fleet_token {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "fleet_tokens")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub public_id: String,
        pub name: String,
        pub token_hash: String,
        pub prefix: String,
        /// The one host this token speaks for, or `None` for a group token (the host names
        /// itself).
        pub host: Option<String>,
        pub host_group: Option<String>,
        pub created_by: String,
        pub created_at: DateTimeUtc,
        pub expires_at: Option<DateTimeUtc>,
        pub revoked_at: Option<DateTimeUtc>,
        pub last_used_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A host of the fleet, as it last polled and reported.
pub mod fleet_host {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "fleet_hosts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub token_id: i32,
        pub host_group: Option<String>,
        pub product_version: Option<String>,
        pub region: Option<String>,
        pub policy_pack: Option<String>,
        pub first_seen: DateTimeUtc,
        pub last_poll: DateTimeUtc,
        pub last_report: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// One host's health for one plugin version over one interval (append-only).
pub mod fleet_report {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "fleet_reports")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub host: String,
        pub plugin_id: String,
        pub version: String,
        /// Unix seconds.
        pub interval_start: i64,
        pub interval_secs: i32,
        pub calls: i64,
        pub errors: i64,
        pub crashes: i64,
        /// The latency histogram's counts, comma-separated.
        pub latency: String,
        pub product_version: String,
        pub policy_pack: String,
        /// Unix seconds.
        pub received_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Where an analysed rollout stands ([`delivery::rollout::Progress`], in seconds since
/// `started_at`).
pub mod rollout {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "rollouts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub release_id: String,
        pub stage: i32,
        /// [`delivery::rollout::Phase`].
        pub phase: String,
        pub started_at: DateTimeUtc,
        pub step: i32,
        /// Percent of hosts on the new version (what the channel reads).
        pub weight: i32,
        pub step_started: i64,
        pub passing_since: i64,
        pub inconclusive: i32,
        /// Intervals judged so far.
        pub intervals: i32,
        pub next_at: DateTimeUtc,
        pub paused_because: Option<String>,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// One judged interval of a rollout: the verdict, what it did, the facts and the rules that
/// fired.
pub mod rollout_interval {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "rollout_intervals")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub release_id: String,
        pub seq: i32,
        pub at: DateTimeUtc,
        pub step: i32,
        pub weight: i32,
        pub judgement: String,
        pub outcome: String,
        /// JSON of `Vec<delivery::rollout::Fired>`.
        pub fired: String,
        /// JSON of the facts the rules judged.
        pub facts: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A single sign-on in flight: the `state` (its sha256), `nonce` and PKCE verifier sent to
/// the provider, used once by the callback.
pub mod sso_login {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sso_logins")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub state_hash: String,
        pub nonce: String,
        pub pkce_verifier: String,
        /// Where the browser goes after signing in (a local path).
        pub next: String,
        pub created_at: DateTimeUtc,
        pub used_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// An identity at the OpenID provider (issuer and subject) bound to one Stellar user.
pub mod sso_identity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sso_identities")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub issuer: String,
        pub subject: String,
        pub user_id: i32,
        /// The groups the last ID token named, space-separated.
        pub groups: String,
        pub created_at: DateTimeUtc,
        pub last_login_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
