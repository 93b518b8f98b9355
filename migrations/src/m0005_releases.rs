//! Delivery: versioned pipeline specs, releases with their stages, approvers' decisions and
//! in-toto documents, the release calendar, outgoing webhooks and their delivery log; job
//! subjects long enough for release steps; the signing requests that release stages wait on.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Release step jobs are named `release:<uuid>:<seq>`; SQLite does not enforce lengths.
        if manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("ALTER TABLE jobs ALTER COLUMN subject TYPE varchar(128)")
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(PipelineSpecs::Table)
                    .col(pk_auto(PipelineSpecs::Id))
                    .col(integer_uniq(PipelineSpecs::Version))
                    .col(text(PipelineSpecs::Source))
                    .col(string_len(PipelineSpecs::Sha256, 64))
                    .col(string_len(PipelineSpecs::CreatedBy, 200))
                    .col(text_null(PipelineSpecs::Comment))
                    .col(timestamp_with_time_zone(PipelineSpecs::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Releases::Table)
                    .col(string_len(Releases::Id, 36).primary_key())
                    .col(integer(Releases::TenantId))
                    .col(string_len(Releases::SubmissionId, 36))
                    .col(string_len(Releases::PluginId, 128))
                    .col(string_len(Releases::Version, 128))
                    .col(string_len(Releases::BundleSha256, 64))
                    .col(integer(Releases::SpecVersion))
                    .col(string_len(Releases::Pipeline, 64))
                    .col(string_len(Releases::State, 16))
                    .col(integer(Releases::Stage))
                    .col(string_len(Releases::StageState, 16))
                    .col(integer_null(Releases::Step))
                    .col(timestamp_with_time_zone_null(Releases::StepStarted))
                    .col(text_null(Releases::Waiting))
                    .col(string_len_null(Releases::SignatureRequest, 36))
                    .col(boolean(Releases::SignatureMade).default(false))
                    .col(string_len_null(Releases::LayoutRequest, 36))
                    .col(boolean(Releases::WindowOverride).default(false))
                    .col(text_null(Releases::Reason))
                    .col(integer(Releases::Seq).default(0))
                    .col(string_len(Releases::CreatedBy, 200))
                    .col(timestamp_with_time_zone(Releases::CreatedAt))
                    .col(timestamp_with_time_zone(Releases::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Releases::FinishedAt))
                    .col(timestamp_with_time_zone_null(Releases::PackageReadyAt))
                    .col(timestamp_with_time_zone_null(Releases::PackageOpenedAt))
                    .col(timestamp_with_time_zone_null(Releases::DecidedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Releases::Table, Releases::SubmissionId)
                            .to(Submissions::Table, Submissions::Id),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "idx_releases_plugin_state",
                vec![Releases::PluginId, Releases::State],
            ),
            (
                "idx_releases_tenant_created",
                vec![Releases::TenantId, Releases::CreatedAt],
            ),
            (
                "idx_releases_state_created",
                vec![Releases::State, Releases::CreatedAt],
            ),
        ] {
            let mut idx = Index::create();
            idx.name(name).table(Releases::Table);
            for c in cols {
                idx.col(c);
            }
            manager.create_index(idx.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(ReleaseStages::Table)
                    .col(pk_auto(ReleaseStages::Id))
                    .col(string_len(ReleaseStages::ReleaseId, 36))
                    .col(integer(ReleaseStages::Idx))
                    .col(string_len(ReleaseStages::Name, 64))
                    .col(string_len(ReleaseStages::Kind, 16))
                    .col(string_len(ReleaseStages::State, 16))
                    .col(timestamp_with_time_zone_null(ReleaseStages::StartedAt))
                    .col(timestamp_with_time_zone_null(ReleaseStages::FinishedAt))
                    .col(string_len_null(ReleaseStages::Actor, 200))
                    .col(text_null(ReleaseStages::Detail))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ReleaseStages::Table, ReleaseStages::ReleaseId)
                            .to(Releases::Table, Releases::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_release_stages_unique")
                    .table(ReleaseStages::Table)
                    .col(ReleaseStages::ReleaseId)
                    .col(ReleaseStages::Idx)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ReleaseDecisions::Table)
                    .col(pk_auto(ReleaseDecisions::Id))
                    .col(string_len(ReleaseDecisions::ReleaseId, 36))
                    .col(integer(ReleaseDecisions::Stage))
                    .col(integer(ReleaseDecisions::UserId))
                    .col(string_len(ReleaseDecisions::Username, 200))
                    .col(string_len(ReleaseDecisions::Role, 16))
                    .col(boolean(ReleaseDecisions::Approve))
                    .col(text(ReleaseDecisions::Reason))
                    .col(timestamp_with_time_zone(ReleaseDecisions::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ReleaseDecisions::Table, ReleaseDecisions::ReleaseId)
                            .to(Releases::Table, Releases::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // One decision per person per stage: approving twice is refused by the database too.
        manager
            .create_index(
                Index::create()
                    .name("idx_release_decisions_once")
                    .table(ReleaseDecisions::Table)
                    .col(ReleaseDecisions::ReleaseId)
                    .col(ReleaseDecisions::Stage)
                    .col(ReleaseDecisions::UserId)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ReleaseDocuments::Table)
                    .col(pk_auto(ReleaseDocuments::Id))
                    .col(string_len(ReleaseDocuments::ReleaseId, 36))
                    .col(string_len(ReleaseDocuments::Kind, 16))
                    .col(string_len(ReleaseDocuments::Name, 128))
                    .col(string_len(ReleaseDocuments::KeyId, 64))
                    .col(text(ReleaseDocuments::Envelope))
                    .col(timestamp_with_time_zone(ReleaseDocuments::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ReleaseDocuments::Table, ReleaseDocuments::ReleaseId)
                            .to(Releases::Table, Releases::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // No duplicate link: one document per file name per release.
        manager
            .create_index(
                Index::create()
                    .name("idx_release_documents_unique")
                    .table(ReleaseDocuments::Table)
                    .col(ReleaseDocuments::ReleaseId)
                    .col(ReleaseDocuments::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CalendarWindows::Table)
                    .col(pk_auto(CalendarWindows::Id))
                    .col(string_len(CalendarWindows::Name, 100))
                    .col(string_len(CalendarWindows::Kind, 8))
                    .col(timestamp_with_time_zone_null(CalendarWindows::StartsAt))
                    .col(timestamp_with_time_zone_null(CalendarWindows::EndsAt))
                    .col(string_len_null(CalendarWindows::Cron, 100))
                    .col(big_integer_null(CalendarWindows::DurationSecs))
                    .col(string_len_null(CalendarWindows::Timezone, 64))
                    .col(string_len_null(CalendarWindows::Plugins, 128))
                    .col(text_null(CalendarWindows::Comment))
                    .col(string_len(CalendarWindows::CreatedBy, 200))
                    .col(timestamp_with_time_zone(CalendarWindows::CreatedAt))
                    .col(timestamp_with_time_zone_null(CalendarWindows::DeletedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Webhooks::Table)
                    .col(pk_auto(Webhooks::Id))
                    .col(string_len(Webhooks::Url, 2048))
                    .col(string_len(Webhooks::Secret, 128))
                    .col(string_len(Webhooks::Events, 512))
                    .col(boolean(Webhooks::Active))
                    .col(string_len(Webhooks::CreatedBy, 200))
                    .col(timestamp_with_time_zone(Webhooks::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(pk_auto(WebhookDeliveries::Id))
                    .col(integer(WebhookDeliveries::WebhookId))
                    .col(string_len(WebhookDeliveries::Event, 32))
                    .col(string_len_null(WebhookDeliveries::ReleaseId, 36))
                    .col(text(WebhookDeliveries::Payload))
                    .col(string_len(WebhookDeliveries::State, 16))
                    .col(integer(WebhookDeliveries::Attempts))
                    .col(integer_null(WebhookDeliveries::LastStatus))
                    .col(text_null(WebhookDeliveries::LastError))
                    .col(timestamp_with_time_zone(WebhookDeliveries::CreatedAt))
                    .col(timestamp_with_time_zone_null(
                        WebhookDeliveries::DeliveredAt,
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookDeliveries::Table, WebhookDeliveries::WebhookId)
                            .to(Webhooks::Table, Webhooks::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_deliveries_hook")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::WebhookId)
                    .col(WebhookDeliveries::Id)
                    .to_owned(),
            )
            .await?;

        // Which release (or other waiter) a signing request serves.
        manager
            .alter_table(
                Table::alter()
                    .table(SigningRequests::Table)
                    .add_column(string_len_null(SigningRequests::Subject, 64))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SigningRequests::Table)
                    .drop_column(SigningRequests::Subject)
                    .to_owned(),
            )
            .await?;
        for t in [
            WebhookDeliveries::Table.into_iden(),
            Webhooks::Table.into_iden(),
            CalendarWindows::Table.into_iden(),
            ReleaseDocuments::Table.into_iden(),
            ReleaseDecisions::Table.into_iden(),
            ReleaseStages::Table.into_iden(),
            Releases::Table.into_iden(),
            PipelineSpecs::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(t).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum PipelineSpecs {
    Table,
    Id,
    Version,
    Source,
    Sha256,
    CreatedBy,
    Comment,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Releases {
    Table,
    Id,
    TenantId,
    SubmissionId,
    PluginId,
    Version,
    BundleSha256,
    SpecVersion,
    Pipeline,
    State,
    Stage,
    StageState,
    Step,
    StepStarted,
    Waiting,
    SignatureRequest,
    SignatureMade,
    LayoutRequest,
    WindowOverride,
    Reason,
    Seq,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    FinishedAt,
    PackageReadyAt,
    PackageOpenedAt,
    DecidedAt,
}

#[derive(DeriveIden)]
enum ReleaseStages {
    Table,
    Id,
    ReleaseId,
    Idx,
    Name,
    Kind,
    State,
    StartedAt,
    FinishedAt,
    Actor,
    Detail,
}

#[derive(DeriveIden)]
enum ReleaseDecisions {
    Table,
    Id,
    ReleaseId,
    Stage,
    UserId,
    Username,
    Role,
    Approve,
    Reason,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ReleaseDocuments {
    Table,
    Id,
    ReleaseId,
    Kind,
    Name,
    KeyId,
    Envelope,
    CreatedAt,
}

#[derive(DeriveIden)]
enum CalendarWindows {
    Table,
    Id,
    Name,
    Kind,
    StartsAt,
    EndsAt,
    Cron,
    DurationSecs,
    Timezone,
    Plugins,
    Comment,
    CreatedBy,
    CreatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    Id,
    Url,
    Secret,
    Events,
    Active,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    WebhookId,
    Event,
    ReleaseId,
    Payload,
    State,
    Attempts,
    LastStatus,
    LastError,
    CreatedAt,
    DeliveredAt,
}

#[derive(DeriveIden)]
enum Submissions {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum SigningRequests {
    Table,
    Subject,
}
