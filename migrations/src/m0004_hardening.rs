//! Scopes on API tokens, approval of publisher keys, plugin ids owned by the tenant that first
//! published them, and one durable queue for every kind of background job (its key is a
//! subject, not only a submission; jobs name the tenant they run for, so that the queue can be
//! fair between tenants).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Tokens made before scopes existed keep every scope they had.
        manager
            .alter_table(
                Table::alter()
                    .table(ApiTokens::Table)
                    .add_column(string_len(ApiTokens::Scopes, 64).default("read submit admin"))
                    .to_owned(),
            )
            .await?;

        // Keys registered before approval existed count only once approved.
        for col in [
            timestamp_with_time_zone_null(PublisherKeys::ApprovedAt).to_owned(),
            string_len_null(PublisherKeys::ApprovedBy, 200).to_owned(),
            string_len_null(PublisherKeys::RevokedBy, 200).to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(PublisherKeys::Table)
                        .add_column(col)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Plugins::Table)
                    .col(string_len(Plugins::PluginId, 128).primary_key())
                    .col(integer(Plugins::TenantId))
                    .col(timestamp_with_time_zone(Plugins::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Plugins::Table, Plugins::TenantId)
                            .to(Tenants::Table, Tenants::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // Plugins published before ownership was recorded belong to their first publisher.
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO plugins (plugin_id, tenant_id, created_at) \
                 SELECT s.plugin_id, s.tenant_id, s.created_at FROM submissions s \
                 WHERE s.created_at = (SELECT MIN(f.created_at) FROM submissions f \
                                       WHERE f.plugin_id = s.plugin_id) \
                   AND s.id = (SELECT MIN(g.id) FROM submissions g \
                               WHERE g.plugin_id = s.plugin_id AND g.created_at = s.created_at)",
            )
            .await?;

        manager
            .alter_table(
                Table::alter()
                    .table(Jobs::Table)
                    .rename_column(Jobs::SubmissionId, Jobs::Subject)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Jobs::Table)
                    .add_column(integer_null(Jobs::TenantId))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE jobs SET tenant_id = \
                 (SELECT s.tenant_id FROM submissions s WHERE s.id = jobs.subject) \
                 WHERE kind = 'analyse'",
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_jobs_tenant_state")
                    .table(Jobs::Table)
                    .col(Jobs::TenantId)
                    .col(Jobs::State)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_jobs_tenant_state")
                    .table(Jobs::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Jobs::Table)
                    .drop_column(Jobs::TenantId)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Jobs::Table)
                    .rename_column(Jobs::Subject, Jobs::SubmissionId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Plugins::Table).to_owned())
            .await?;
        for col in [
            PublisherKeys::ApprovedAt,
            PublisherKeys::ApprovedBy,
            PublisherKeys::RevokedBy,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(PublisherKeys::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(ApiTokens::Table)
                    .drop_column(ApiTokens::Scopes)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Scopes,
}

#[derive(DeriveIden)]
enum PublisherKeys {
    Table,
    ApprovedAt,
    ApprovedBy,
    RevokedBy,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Plugins {
    Table,
    PluginId,
    TenantId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    SubmissionId,
    Subject,
    TenantId,
    State,
}
