//! Tenants: the partner organisations. Staff see every tenant; a partner sees their own, and
//! another tenant is "not found", exactly like one that does not exist.

use std::collections::HashMap;

use app::api::backend::Principal;
use app::authz::{Action, authorize, tenant_scope};
use app::error::AppError;
use app::types::{NewTenant, Tenant, User};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::{Accounts, now, tenant_not_found, tenant_view, user_view};
use crate::db::entities::{tenant, user};
use crate::domain::{DisplayName, TenantSlug};
use crate::services::db_error;
use crate::services::ledger_store::Record;

impl Accounts {
    /// A tenant the caller may see, or "not found".
    async fn tenant_by_slug(&self, who: &Principal, slug: &str) -> Result<tenant::Model, AppError> {
        authorize(who, Action::ReadTenants)?;
        if TenantSlug::parse(slug).is_err() {
            return Err(tenant_not_found(slug));
        }
        let found = tenant::Entity::find()
            .filter(tenant::Column::Slug.eq(slug))
            .one(&self.conn)
            .await
            .map_err(db_error)?;
        match found {
            Some(t) if tenant_scope(who).admits(t.id) => Ok(t),
            _ => Err(tenant_not_found(slug)),
        }
    }

    async fn member_counts(&self) -> Result<HashMap<i32, u64>, AppError> {
        let rows: Vec<Option<i32>> = user::Entity::find()
            .select_only()
            .column(user::Column::TenantId)
            .into_tuple()
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        let mut counts = HashMap::new();
        for id in rows.into_iter().flatten() {
            *counts.entry(id).or_insert(0) += 1;
        }
        Ok(counts)
    }

    /// Tenants the caller may see: every one for staff, their own for a partner.
    pub async fn list_tenants(&self, who: &Principal) -> Result<Vec<Tenant>, AppError> {
        authorize(who, Action::ReadTenants)?;
        let mut query = tenant::Entity::find().order_by_asc(tenant::Column::Slug);
        if let Some(only) = tenant_scope(who).only() {
            query = query.filter(tenant::Column::Id.eq(only));
        }
        let rows = query.all(&self.conn).await.map_err(db_error)?;
        let counts = self.member_counts().await?;
        Ok(rows
            .into_iter()
            .map(|t| {
                let members = counts.get(&t.id).copied().unwrap_or(0);
                tenant_view(t, members)
            })
            .collect())
    }

    /// One tenant, if the caller may see it.
    pub async fn get_tenant(&self, who: &Principal, slug: &str) -> Result<Tenant, AppError> {
        let t = self.tenant_by_slug(who, slug).await?;
        let members = user::Entity::find()
            .filter(user::Column::TenantId.eq(t.id))
            .count(&self.conn)
            .await
            .map_err(db_error)?;
        Ok(tenant_view(t, members))
    }

    /// The members of a tenant the caller may see.
    pub async fn tenant_members(&self, who: &Principal, slug: &str) -> Result<Vec<User>, AppError> {
        let t = self.tenant_by_slug(who, slug).await?;
        let rows = user::Entity::find()
            .filter(user::Column::TenantId.eq(t.id))
            .order_by_asc(user::Column::Username)
            .all(&self.conn)
            .await
            .map_err(db_error)?;
        let slugs = HashMap::from([(t.id, t.slug)]);
        rows.into_iter().map(|u| user_view(u, &slugs)).collect()
    }

    /// Creates a tenant.
    pub async fn create_tenant(
        &self,
        who: &Principal,
        input: NewTenant,
    ) -> Result<Tenant, AppError> {
        authorize(who, Action::ManageAccounts)?;
        let slug = TenantSlug::parse(&input.slug)?;
        let name = DisplayName::parse("name", &input.name)?;
        if tenant::Entity::find()
            .filter(tenant::Column::Slug.eq(slug.as_str()))
            .one(&self.conn)
            .await
            .map_err(db_error)?
            .is_some()
        {
            return Err(AppError::conflict(format!(
                "the tenant `{slug}` exists already: choose another slug"
            )));
        }
        let mut a = self.ledger.begin().await?;
        let row = tenant::ActiveModel {
            slug: Set(slug.as_str().to_owned()),
            name: Set(name.into_inner()),
            created_at: Set(now()),
            ..Default::default()
        }
        .insert(a.txn())
        .await
        .map_err(db_error)?;
        a.append(Record {
            actor: who.me.username.clone(),
            tenant: Some(row.slug.clone()),
            action: "tenant.create".into(),
            subject: row.slug.clone(),
            details: serde_json::json!({ "name": row.name }),
        })
        .await?;
        a.commit().await?;
        Ok(tenant_view(row, 0))
    }
}
