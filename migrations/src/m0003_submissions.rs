//! Plugin submissions: publisher profiles and keys on tenants, submissions with their bundles,
//! immutable verdicts, and the durable job queue the analysis workers claim from.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one column at a time.
        for col in [
            boolean(Tenants::Verified).default(false).to_owned(),
            string_len(Tenants::Tier, 16).default("partner").to_owned(),
            string_len(Tenants::EgressAllow, 2000)
                .default("*")
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Tenants::Table)
                        .add_column(col)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(PublisherKeys::Table)
                    .col(pk_auto(PublisherKeys::Id))
                    .col(integer(PublisherKeys::TenantId))
                    .col(string_len(PublisherKeys::KeyId, 64))
                    .col(string_len(PublisherKeys::Name, 100))
                    .col(text(PublisherKeys::PublicPem))
                    .col(string_len(PublisherKeys::CreatedBy, 200))
                    .col(timestamp_with_time_zone(PublisherKeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(PublisherKeys::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(PublisherKeys::Table, PublisherKeys::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_publisher_keys_tenant_key")
                    .table(PublisherKeys::Table)
                    .col(PublisherKeys::TenantId)
                    .col(PublisherKeys::KeyId)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Submissions::Table)
                    .col(string_len(Submissions::Id, 36).primary_key())
                    .col(integer(Submissions::TenantId))
                    .col(string_len(Submissions::PluginId, 128))
                    .col(string_len(Submissions::Version, 128))
                    .col(string_len(Submissions::BundleSha256, 64))
                    .col(big_integer(Submissions::BundleSize))
                    .col(string_len(Submissions::Filename, 255))
                    .col(text(Submissions::Manifest))
                    .col(string_len(Submissions::Status, 16))
                    .col(string_len_null(Submissions::Decision, 8))
                    .col(text_null(Submissions::Error))
                    .col(string_len(Submissions::SubmittedBy, 200))
                    .col(timestamp_with_time_zone(Submissions::CreatedAt))
                    .col(timestamp_with_time_zone_null(Submissions::FinishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Submissions::Table, Submissions::TenantId)
                            .to(Tenants::Table, Tenants::Id),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "idx_submissions_tenant",
                vec![Submissions::TenantId, Submissions::CreatedAt],
            ),
            (
                "idx_submissions_plugin",
                vec![Submissions::TenantId, Submissions::PluginId],
            ),
        ] {
            let mut idx = Index::create();
            idx.name(name).table(Submissions::Table);
            for c in cols {
                idx.col(c);
            }
            manager.create_index(idx.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(SubmissionBlobs::Table)
                    .col(string_len(SubmissionBlobs::SubmissionId, 36).primary_key())
                    .col(blob(SubmissionBlobs::Data))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SubmissionBlobs::Table, SubmissionBlobs::SubmissionId)
                            .to(Submissions::Table, Submissions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Verdicts::Table)
                    .col(pk_auto(Verdicts::Id))
                    // One verdict per submission, whatever the workers do.
                    .col(string_len_uniq(Verdicts::SubmissionId, 36))
                    .col(string_len(Verdicts::PackName, 128))
                    .col(string_len(Verdicts::PackVersion, 64))
                    .col(string_len(Verdicts::PackSha256, 64))
                    .col(string_len(Verdicts::BundleSha256, 64))
                    .col(string_len(Verdicts::Decision, 8))
                    .col(text(Verdicts::Verdict))
                    .col(text(Verdicts::Facts))
                    .col(integer_null(Verdicts::AttestationId))
                    .col(timestamp_with_time_zone(Verdicts::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Verdicts::Table, Verdicts::SubmissionId)
                            .to(Submissions::Table, Submissions::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Jobs::Table)
                    .col(pk_auto(Jobs::Id))
                    .col(string_len(Jobs::Kind, 32))
                    .col(string_len_uniq(Jobs::SubmissionId, 36))
                    .col(string_len(Jobs::State, 16))
                    .col(integer(Jobs::Attempts))
                    .col(integer(Jobs::MaxAttempts))
                    .col(string_len_null(Jobs::LeaseOwner, 64))
                    // Milliseconds since the Unix epoch: compared in SQL on both databases.
                    .col(big_integer_null(Jobs::LeaseExpires))
                    .col(big_integer(Jobs::RunAfter))
                    .col(text_null(Jobs::LastError))
                    .col(timestamp_with_time_zone(Jobs::CreatedAt))
                    .col(timestamp_with_time_zone(Jobs::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_jobs_claim")
                    .table(Jobs::Table)
                    .col(Jobs::State)
                    .col(Jobs::RunAfter)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            Jobs::Table.into_iden(),
            Verdicts::Table.into_iden(),
            SubmissionBlobs::Table.into_iden(),
            Submissions::Table.into_iden(),
            PublisherKeys::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(t).to_owned())
                .await?;
        }
        for c in [Tenants::Verified, Tenants::Tier, Tenants::EgressAllow] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Tenants::Table)
                        .drop_column(c)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    Verified,
    Tier,
    EgressAllow,
}

#[derive(DeriveIden)]
enum PublisherKeys {
    Table,
    Id,
    TenantId,
    KeyId,
    Name,
    PublicPem,
    CreatedBy,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Submissions {
    Table,
    Id,
    TenantId,
    PluginId,
    Version,
    BundleSha256,
    BundleSize,
    Filename,
    Manifest,
    Status,
    Decision,
    Error,
    SubmittedBy,
    CreatedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum SubmissionBlobs {
    Table,
    SubmissionId,
    Data,
}

#[derive(DeriveIden)]
enum Verdicts {
    Table,
    Id,
    SubmissionId,
    PackName,
    PackVersion,
    PackSha256,
    BundleSha256,
    Decision,
    Verdict,
    Facts,
    AttestationId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    Kind,
    SubmissionId,
    State,
    Attempts,
    MaxAttempts,
    LeaseOwner,
    LeaseExpires,
    RunAfter,
    LastError,
    CreatedAt,
    UpdatedAt,
}
