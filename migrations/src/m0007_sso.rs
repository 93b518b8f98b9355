//! Single sign-on (OpenID Connect): the sign-ins in flight (their `state`, `nonce` and PKCE
//! verifier, each used once), and the identities at the provider bound to Stellar users.
//!
//! A sign-in row is consumed by the callback that names its `state` (a replayed `state` finds
//! it used); rows older than the sign-in lifetime are purged. An identity is the provider's
//! issuer and subject: a user is found by it, never by a name the provider chose.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SsoLogins::Table)
                    .col(string_len(SsoLogins::StateHash, 64).primary_key())
                    .col(string_len(SsoLogins::Nonce, 128))
                    .col(string_len(SsoLogins::PkceVerifier, 128))
                    .col(string_len(SsoLogins::Next, 2048))
                    .col(timestamp_with_time_zone(SsoLogins::CreatedAt))
                    .col(timestamp_with_time_zone_null(SsoLogins::UsedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sso_logins_created_at")
                    .table(SsoLogins::Table)
                    .col(SsoLogins::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SsoIdentities::Table)
                    .col(pk_auto(SsoIdentities::Id))
                    .col(string_len(SsoIdentities::Issuer, 512))
                    .col(string_len(SsoIdentities::Subject, 255))
                    .col(integer_uniq(SsoIdentities::UserId))
                    .col(string_len(SsoIdentities::Groups, 4096))
                    .col(timestamp_with_time_zone(SsoIdentities::CreatedAt))
                    .col(timestamp_with_time_zone(SsoIdentities::LastLoginAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sso_identities_subject")
                    .table(SsoIdentities::Table)
                    .col(SsoIdentities::Issuer)
                    .col(SsoIdentities::Subject)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            SsoIdentities::Table.into_iden(),
            SsoLogins::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(t).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum SsoLogins {
    Table,
    StateHash,
    Nonce,
    PkceVerifier,
    Next,
    CreatedAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum SsoIdentities {
    Table,
    Id,
    Issuer,
    Subject,
    UserId,
    Groups,
    CreatedAt,
    LastLoginAt,
}
