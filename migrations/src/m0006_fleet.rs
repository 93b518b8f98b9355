//! The fleet: fleet tokens (hosts' credentials, hashed like API tokens), the hosts that poll the
//! channel, the health reports they send (append-only, one row per host, plugin version and
//! interval, pruned after a retention period), and each analysed rollout's state and intervals.
//!
//! The reports table is the one that grows with the fleet: rows are narrow (the latency
//! histogram is one text column of 47 counts), written once, read by plugin and time, and
//! deleted by time; the unique key is what makes a duplicate sample impossible even across
//! instances.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(FleetTokens::Table)
                    .col(pk_auto(FleetTokens::Id))
                    .col(string_len_uniq(FleetTokens::PublicId, 36))
                    .col(string_len(FleetTokens::Name, 200))
                    .col(string_len_uniq(FleetTokens::TokenHash, 64))
                    .col(string_len(FleetTokens::Prefix, 16))
                    .col(string_len_null(FleetTokens::Host, 128))
                    .col(string_len_null(FleetTokens::HostGroup, 64))
                    .col(string_len(FleetTokens::CreatedBy, 200))
                    .col(timestamp_with_time_zone(FleetTokens::CreatedAt))
                    .col(timestamp_with_time_zone_null(FleetTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(FleetTokens::RevokedAt))
                    .col(timestamp_with_time_zone_null(FleetTokens::LastUsedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(FleetHosts::Table)
                    .col(string_len(FleetHosts::Id, 128).primary_key())
                    .col(integer(FleetHosts::TokenId))
                    .col(string_len_null(FleetHosts::HostGroup, 64))
                    .col(string_len_null(FleetHosts::ProductVersion, 128))
                    .col(string_len_null(FleetHosts::Region, 64))
                    .col(string_len_null(FleetHosts::PolicyPack, 128))
                    .col(timestamp_with_time_zone(FleetHosts::FirstSeen))
                    .col(timestamp_with_time_zone(FleetHosts::LastPoll))
                    .col(timestamp_with_time_zone_null(FleetHosts::LastReport))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_fleet_hosts_last_poll")
                    .table(FleetHosts::Table)
                    .col(FleetHosts::LastPoll)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(FleetReports::Table)
                    .col(big_pk_auto(FleetReports::Id))
                    .col(string_len(FleetReports::Host, 128))
                    .col(string_len(FleetReports::PluginId, 128))
                    .col(string_len(FleetReports::Version, 128))
                    .col(big_integer(FleetReports::IntervalStart))
                    .col(integer(FleetReports::IntervalSecs))
                    .col(big_integer(FleetReports::Calls))
                    .col(big_integer(FleetReports::Errors))
                    .col(big_integer(FleetReports::Crashes))
                    .col(text(FleetReports::Latency))
                    .col(string_len(FleetReports::ProductVersion, 128))
                    .col(string_len(FleetReports::PolicyPack, 128))
                    .col(big_integer(FleetReports::ReceivedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_fleet_reports_unique")
                    .table(FleetReports::Table)
                    .col(FleetReports::Host)
                    .col(FleetReports::PluginId)
                    .col(FleetReports::Version)
                    .col(FleetReports::IntervalStart)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_fleet_reports_plugin_time")
                    .table(FleetReports::Table)
                    .col(FleetReports::PluginId)
                    .col(FleetReports::IntervalStart)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_fleet_reports_received")
                    .table(FleetReports::Table)
                    .col(FleetReports::ReceivedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Rollouts::Table)
                    .col(string_len(Rollouts::ReleaseId, 36).primary_key())
                    .col(integer(Rollouts::Stage))
                    .col(string_len(Rollouts::Phase, 16))
                    .col(timestamp_with_time_zone(Rollouts::StartedAt))
                    .col(integer(Rollouts::Step))
                    .col(integer(Rollouts::Weight))
                    .col(big_integer(Rollouts::StepStarted))
                    .col(big_integer(Rollouts::PassingSince))
                    .col(integer(Rollouts::Inconclusive))
                    .col(integer(Rollouts::Intervals))
                    .col(timestamp_with_time_zone(Rollouts::NextAt))
                    .col(text_null(Rollouts::PausedBecause))
                    .col(timestamp_with_time_zone(Rollouts::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RolloutIntervals::Table)
                    .col(pk_auto(RolloutIntervals::Id))
                    .col(string_len(RolloutIntervals::ReleaseId, 36))
                    .col(integer(RolloutIntervals::Seq))
                    .col(timestamp_with_time_zone(RolloutIntervals::At))
                    .col(integer(RolloutIntervals::Step))
                    .col(integer(RolloutIntervals::Weight))
                    .col(string_len(RolloutIntervals::Judgement, 8))
                    .col(string_len(RolloutIntervals::Outcome, 16))
                    .col(text(RolloutIntervals::Fired))
                    .col(text(RolloutIntervals::Facts))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_rollout_intervals_unique")
                    .table(RolloutIntervals::Table)
                    .col(RolloutIntervals::ReleaseId)
                    .col(RolloutIntervals::Seq)
                    .unique()
                    .to_owned(),
            )
            .await?;

        // A GA version withdrawn after the fact.
        manager
            .alter_table(
                Table::alter()
                    .table(Releases::Table)
                    .add_column(timestamp_with_time_zone_null(Releases::YankedAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Releases::Table)
                    .drop_column(Releases::YankedAt)
                    .to_owned(),
            )
            .await?;
        for t in [
            RolloutIntervals::Table.into_iden(),
            Rollouts::Table.into_iden(),
            FleetReports::Table.into_iden(),
            FleetHosts::Table.into_iden(),
            FleetTokens::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(t).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum FleetTokens {
    Table,
    Id,
    PublicId,
    Name,
    TokenHash,
    Prefix,
    Host,
    HostGroup,
    CreatedBy,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum FleetHosts {
    Table,
    Id,
    TokenId,
    HostGroup,
    ProductVersion,
    Region,
    PolicyPack,
    FirstSeen,
    LastPoll,
    LastReport,
}

#[derive(DeriveIden)]
enum FleetReports {
    Table,
    Id,
    Host,
    PluginId,
    Version,
    IntervalStart,
    IntervalSecs,
    Calls,
    Errors,
    Crashes,
    Latency,
    ProductVersion,
    PolicyPack,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum Rollouts {
    Table,
    ReleaseId,
    Stage,
    Phase,
    StartedAt,
    Step,
    Weight,
    StepStarted,
    PassingSince,
    Inconclusive,
    Intervals,
    NextAt,
    PausedBecause,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RolloutIntervals {
    Table,
    Id,
    ReleaseId,
    Seq,
    At,
    Step,
    Weight,
    Judgement,
    Outcome,
    Fired,
    Facts,
}

#[derive(DeriveIden)]
enum Releases {
    Table,
    YankedAt,
}
