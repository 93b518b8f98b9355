//! The `--demo` seed: two partner tenants and one user per role, all with the documented
//! demo password. Idempotent: what exists already is left alone.

use app::api::backend::Principal;
use app::authz::Scope;
use app::error::AppError;
use app::types::{NewApiToken, NewTenant, NewUser, Role};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::db::entities::{api_token, user};
use crate::domain::Password;
use crate::services::Services;

/// The password of every demo user. Public: demo data must never reach a real deployment.
pub const DEMO_PASSWORD: &str = "stellar-demo";

const TENANTS: &[(&str, &str)] = &[("acme", "Acme Corp"), ("globex", "Globex Corporation")];

const USERS: &[(&str, &str, Role, Option<&str>)] = &[
    ("admin", "Ada Admin", Role::Admin, None),
    ("secops", "Sam SecOps", Role::Secops, None),
    ("platform", "Pat Platform", Role::Platform, None),
    ("reviewer", "Rey Reviewer", Role::Reviewer, None),
    ("partner-acme", "Alex (Acme)", Role::Partner, Some("acme")),
    (
        "partner-globex",
        "Gina (Globex)",
        Role::Partner,
        Some("globex"),
    ),
];

use crate::db::entities::tenant;

/// Seeds the demo data.
pub async fn demo(services: &Services) -> Result<(), AppError> {
    let accounts = &services.accounts;
    let system = Principal::operator("system");
    for (slug, name) in TENANTS {
        match accounts
            .create_tenant(
                &system,
                NewTenant {
                    slug: (*slug).into(),
                    name: (*name).into(),
                },
            )
            .await
        {
            Ok(_) | Err(AppError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    // Publisher profiles: Acme is a verified partner; Globex a community publisher that the
    // marketplace has not verified yet (its plugins need two signatures).
    for (slug, verified, tier) in [("acme", true, "partner"), ("globex", false, "community")] {
        tenant::Entity::update_many()
            .col_expr(tenant::Column::Verified, verified.into())
            .col_expr(tenant::Column::Tier, tier.into())
            .filter(tenant::Column::Slug.eq(slug))
            .exec(&services.db.conn)
            .await
            .map_err(crate::services::db_error)?;
    }
    for (username, display, role, tenant) in USERS {
        let input = NewUser {
            username: (*username).into(),
            display_name: (*display).into(),
            role: *role,
            tenant: tenant.map(Into::into),
            password: String::new(),
        };
        match accounts
            .create_user_with(&system, input, Password::demo(DEMO_PASSWORD))
            .await
        {
            Ok(_) | Err(AppError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    // One token per partner, so that the token pages have something to show. Their secrets are
    // discarded: create your own to use the API.
    for partner in ["partner-acme", "partner-globex"] {
        let Some(u) = user::Entity::find()
            .filter(user::Column::Username.eq(partner))
            .one(&services.db.conn)
            .await
            .map_err(crate::services::db_error)?
        else {
            continue;
        };
        let existing = api_token::Entity::find()
            .filter(api_token::Column::UserId.eq(u.id))
            .count(&services.db.conn)
            .await
            .map_err(crate::services::db_error)?;
        if existing == 0 {
            accounts
                .create_token(
                    &system,
                    NewApiToken {
                        name: "ci (demo)".into(),
                        user: Some(partner.into()),
                        expires_in_days: Some(90),
                        scopes: Some(vec![Scope::Read, Scope::Submit]),
                    },
                )
                .await?;
        }
    }
    tracing::info!(
        "demo data present: users admin, secops, platform, reviewer, partner-acme, partner-globex (password `{DEMO_PASSWORD}`)"
    );
    Ok(())
}
