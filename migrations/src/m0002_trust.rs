//! The trust base: the signing-key registry, the audit ledger (entries, Merkle nodes, signed
//! checkpoints, verification runs) and offline signing requests.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    .col(pk_auto(SigningKeys::Id))
                    .col(string_len_uniq(SigningKeys::KeyId, 64))
                    .col(string_len(SigningKeys::Purpose, 32))
                    .col(text(SigningKeys::PublicPem))
                    .col(timestamp_with_time_zone(SigningKeys::ValidFrom))
                    .col(timestamp_with_time_zone_null(SigningKeys::ValidUntil))
                    .col(timestamp_with_time_zone_null(SigningKeys::RevokedAt))
                    .col(timestamp_with_time_zone(SigningKeys::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LedgerEntries::Table)
                    .col(big_integer(LedgerEntries::Seq).primary_key())
                    .col(string_len(LedgerEntries::Time, 40))
                    .col(string_len(LedgerEntries::Actor, 200))
                    .col(string_len_null(LedgerEntries::Tenant, 63))
                    .col(string_len(LedgerEntries::Action, 100))
                    .col(string_len(LedgerEntries::Subject, 500))
                    .col(text(LedgerEntries::Details))
                    .col(string_len(LedgerEntries::PrevHash, 64))
                    .col(string_len(LedgerEntries::EntryHash, 64))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_ledger_actor", LedgerEntries::Actor),
            ("idx_ledger_action", LedgerEntries::Action),
            ("idx_ledger_tenant", LedgerEntries::Tenant),
            ("idx_ledger_time", LedgerEntries::Time),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(LedgerEntries::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }

        // One row (id 1): the size and last entry hash. Appenders update it first, which
        // serialises appends on both backends (a row lock on PostgreSQL, the write lock on
        // SQLite) without backend-specific statements.
        manager
            .create_table(
                Table::create()
                    .table(LedgerHead::Table)
                    .col(integer(LedgerHead::Id).primary_key())
                    .col(big_integer(LedgerHead::Size))
                    .col(string_len(LedgerHead::LastHash, 64))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(LedgerHead::Table)
                    .columns([LedgerHead::Id, LedgerHead::Size, LedgerHead::LastHash])
                    .values_panic([1.into(), 0i64.into(), trust_genesis().into()])
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LedgerNodes::Table)
                    .col(integer(LedgerNodes::Level))
                    .col(big_integer(LedgerNodes::Idx))
                    .col(string_len(LedgerNodes::Hash, 64))
                    .primary_key(
                        Index::create()
                            .col(LedgerNodes::Level)
                            .col(LedgerNodes::Idx),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LedgerCheckpoints::Table)
                    .col(big_integer(LedgerCheckpoints::Size).primary_key())
                    .col(string_len(LedgerCheckpoints::RootHash, 64))
                    .col(text(LedgerCheckpoints::Note))
                    .col(string_len(LedgerCheckpoints::KeyId, 64))
                    .col(timestamp_with_time_zone(LedgerCheckpoints::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LedgerVerifications::Table)
                    .col(pk_auto(LedgerVerifications::Id))
                    .col(timestamp_with_time_zone(LedgerVerifications::VerifiedAt))
                    .col(big_integer(LedgerVerifications::Entries))
                    .col(big_integer_null(LedgerVerifications::CheckpointSize))
                    .col(boolean(LedgerVerifications::Ok))
                    .col(text(LedgerVerifications::Message))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SigningRequests::Table)
                    .col(string_len(SigningRequests::Id, 36).primary_key())
                    .col(string_len(SigningRequests::Kind, 40))
                    .col(string_len(SigningRequests::Purpose, 32))
                    .col(string_len(SigningRequests::KeyId, 64))
                    .col(string_len(SigningRequests::PayloadType, 200))
                    .col(text(SigningRequests::Payload))
                    .col(string_len(SigningRequests::Status, 16))
                    .col(text_null(SigningRequests::Signature))
                    .col(timestamp_with_time_zone(SigningRequests::CreatedAt))
                    .col(timestamp_with_time_zone_null(SigningRequests::CompletedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Attestations::Table)
                    .col(pk_auto(Attestations::Id))
                    .col(string_len(Attestations::PredicateType, 200))
                    .col(string_len(Attestations::SubjectName, 500))
                    .col(string_len(Attestations::SubjectSha256, 64))
                    .col(string_len(Attestations::KeyId, 64))
                    .col(text(Attestations::Envelope))
                    .col(string_len_null(Attestations::RequestId, 36))
                    .col(timestamp_with_time_zone(Attestations::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_attestations_subject")
                    .table(Attestations::Table)
                    .col(Attestations::SubjectSha256)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Id,
    KeyId,
    Purpose,
    PublicPem,
    ValidFrom,
    ValidUntil,
    RevokedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum LedgerEntries {
    Table,
    Seq,
    Time,
    Actor,
    Tenant,
    Action,
    Subject,
    Details,
    PrevHash,
    EntryHash,
}

/// The `prev_hash` of the first ledger entry (as in `trust::ledger::GENESIS`).
fn trust_genesis() -> String {
    "0".repeat(64)
}

#[derive(DeriveIden)]
enum LedgerHead {
    Table,
    Id,
    Size,
    LastHash,
}

#[derive(DeriveIden)]
enum Attestations {
    Table,
    Id,
    PredicateType,
    SubjectName,
    SubjectSha256,
    KeyId,
    Envelope,
    RequestId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum LedgerNodes {
    Table,
    Level,
    Idx,
    Hash,
}

#[derive(DeriveIden)]
enum LedgerCheckpoints {
    Table,
    Size,
    RootHash,
    Note,
    KeyId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum LedgerVerifications {
    Table,
    Id,
    VerifiedAt,
    Entries,
    CheckpointSize,
    Ok,
    Message,
}

#[derive(DeriveIden)]
enum SigningRequests {
    Table,
    Id,
    Kind,
    Purpose,
    KeyId,
    PayloadType,
    Payload,
    Status,
    Signature,
    CreatedAt,
    CompletedAt,
}
