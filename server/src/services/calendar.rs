//! The release calendar as stored: allow and freeze windows that platform users and
//! administrators add and remove (each change ledgered), and the [`Calendar`] the stage engine
//! consults.
//!
//! A removed window is kept (with `deleted_at`) so that the ledger's references to it stay
//! readable; only windows not removed are in force.

use app::api::backend::Principal;
use app::authz::{Action, authorize};
use app::delivery::{CalendarWindow, NewWindow, WindowKind as WireKind};
use app::error::AppError;
use chrono::{DateTime, Duration, Utc};
use delivery::calendar::{self, Calendar, Schedule, Window, WindowKind};
use delivery::spec::{format_duration, parse_duration};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
};
use serde_json::json;

use super::ledger_store::{LedgerStore, Record};
use super::{db_error, timestamp};
use crate::clock::Clock;
use crate::db::entities::calendar_window;

/// Most windows in force at once.
pub const MAX_WINDOWS: usize = 200;

/// The stored calendar.
#[derive(Clone, Debug)]
pub struct CalendarService {
    conn: DatabaseConnection,
    ledger: LedgerStore,
    clock: Clock,
}

fn kind_of(s: &str) -> WindowKind {
    WindowKind::parse(s).unwrap_or(WindowKind::Deny)
}

fn view(m: &calendar_window::Model) -> CalendarWindow {
    CalendarWindow {
        id: m.id,
        name: m.name.clone(),
        kind: match kind_of(&m.kind) {
            WindowKind::Allow => WireKind::Allow,
            WindowKind::Deny => WireKind::Deny,
        },
        starts_at: m.starts_at.map(timestamp),
        ends_at: m.ends_at.map(timestamp),
        cron: m.cron.clone(),
        duration: m
            .duration_secs
            .map(|s| format_duration(std::time::Duration::from_secs(s.max(0) as u64))),
        timezone: m.timezone.clone(),
        plugins: m.plugins.clone(),
        comment: m.comment.clone(),
        created_by: m.created_by.clone(),
        created_at: timestamp(m.created_at),
    }
}

/// A stored window as the engine reads it (`None` if it no longer parses: it is skipped and
/// logged, never silently treated as open or closed).
fn window(m: &calendar_window::Model) -> Option<Window> {
    let schedule = match (&m.starts_at, &m.ends_at, &m.cron, m.duration_secs) {
        (Some(start), Some(end), None, _) => Schedule::Once {
            start: *start,
            end: *end,
        },
        (None, None, Some(cron), Some(secs)) => Schedule::Recurring {
            cron: cron.clone(),
            duration: Duration::seconds(secs),
            tz: calendar::parse_tz(m.timezone.as_deref().unwrap_or("UTC")).ok()?,
        },
        _ => return None,
    };
    Some(Window {
        id: i64::from(m.id),
        name: m.name.clone(),
        kind: kind_of(&m.kind),
        schedule,
        plugins: m.plugins.clone(),
    })
}

fn parse_time(field: &'static str, text: &str) -> Result<DateTime<Utc>, AppError> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            AppError::invalid(
                field,
                format!("`{text}` is not an RFC 3339 time such as `2026-12-24T00:00:00Z`"),
            )
        })
}

impl CalendarService {
    pub fn new(conn: DatabaseConnection, ledger: LedgerStore, clock: Clock) -> Self {
        CalendarService {
            conn,
            ledger,
            clock,
        }
    }

    async fn rows(&self) -> Result<Vec<calendar_window::Model>, AppError> {
        calendar_window::Entity::find()
            .filter(calendar_window::Column::DeletedAt.is_null())
            .order_by_asc(calendar_window::Column::Id)
            .all(&self.conn)
            .await
            .map_err(db_error)
    }

    /// The windows in force, for the engine.
    pub async fn load(&self) -> Result<Calendar, AppError> {
        let rows = self.rows().await?;
        let mut windows = Vec::with_capacity(rows.len());
        for r in &rows {
            match window(r) {
                Some(w) => windows.push(w),
                None => {
                    tracing::error!(window = r.id, name = %r.name, "a stored calendar window does not parse; it is ignored")
                }
            }
        }
        Ok(Calendar::new(windows))
    }

    /// The windows in force.
    pub async fn list(&self, who: &Principal) -> Result<Vec<CalendarWindow>, AppError> {
        authorize(who, Action::ReadPipeline)?;
        Ok(self.rows().await?.iter().map(view).collect())
    }

    /// Adds a window (checked, stored, ledgered).
    pub async fn add(&self, who: &Principal, input: NewWindow) -> Result<CalendarWindow, AppError> {
        authorize(who, Action::ManagePipeline)?;
        let name = input.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AppError::invalid(
                "name",
                "a window needs a name of 1 to 100 characters",
            ));
        }
        let kind = match input.kind.unwrap_or(WireKind::Deny) {
            WireKind::Allow => WindowKind::Allow,
            WireKind::Deny => WindowKind::Deny,
        };
        let plugins = input
            .plugins
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty());
        if let Some(p) = &plugins
            && (p.len() > 128 || glob::Pattern::new(p).is_err())
        {
            return Err(AppError::invalid(
                "plugins",
                format!("`{p}` is not a plugin id pattern: use a glob such as `acme-*`"),
            ));
        }
        let (starts, ends, cron, duration, tz) = match (
            &input.starts_at,
            &input.ends_at,
            &input.cron,
        ) {
            (Some(s), Some(e), None) => {
                let (s, e) = (parse_time("starts_at", s)?, parse_time("ends_at", e)?);
                (Some(s), Some(e), None, None, None)
            }
            (None, None, Some(c)) => {
                let d = input.duration.as_deref().ok_or_else(|| {
                    AppError::invalid(
                        "duration",
                        "a recurring window needs a `duration` such as `2h` or `3d`",
                    )
                })?;
                let d = parse_duration(d).map_err(|m| AppError::invalid("duration", m))?;
                let tz = input.timezone.clone().unwrap_or_else(|| "UTC".into());
                (
                    None,
                    None,
                    Some(c.trim().to_owned()),
                    Some(d.as_secs() as i64),
                    Some(tz),
                )
            }
            _ => {
                return Err(AppError::invalid(
                    "schedule",
                    "give either `starts_at` and `ends_at` (a one-off window) or `cron` and `duration` (a recurring one), not both",
                ));
            }
        };
        let schedule = match (&starts, &ends, &cron, duration, &tz) {
            (Some(s), Some(e), _, _, _) => Schedule::Once { start: *s, end: *e },
            (_, _, Some(c), Some(d), Some(z)) => Schedule::Recurring {
                cron: c.clone(),
                duration: Duration::seconds(d),
                tz: calendar::parse_tz(z).map_err(|e| AppError::invalid(e.field, e.message))?,
            },
            _ => return Err(AppError::internal("a window schedule was not built")),
        };
        schedule
            .check()
            .map_err(|e| AppError::invalid(e.field, e.message))?;
        if self.rows().await?.len() >= MAX_WINDOWS {
            return Err(AppError::conflict(format!(
                "the calendar holds at most {MAX_WINDOWS} windows: remove old ones first"
            )));
        }
        let comment = input
            .comment
            .map(|c| c.chars().take(500).collect::<String>());
        let mut a = self.ledger.begin().await?;
        let row = calendar_window::Entity::insert(calendar_window::ActiveModel {
            name: Set(name.clone()),
            kind: Set(kind.as_str().into()),
            starts_at: Set(starts),
            ends_at: Set(ends),
            cron: Set(cron.clone()),
            duration_secs: Set(duration),
            timezone: Set(tz.clone()),
            plugins: Set(plugins.clone()),
            comment: Set(comment),
            created_by: Set(who.me.username.clone()),
            created_at: Set(self.clock.now()),
            deleted_at: Set(None),
            ..Default::default()
        })
        .exec_with_returning(a.txn())
        .await
        .map_err(db_error)?;
        a.append(Record {
            actor: who.me.username.clone(),
            tenant: None,
            action: "calendar.add".into(),
            subject: format!("window:{}", row.id),
            details: json!({
                "name": name, "kind": kind.as_str(), "starts_at": starts.map(timestamp),
                "ends_at": ends.map(timestamp), "cron": cron, "duration_secs": duration,
                "timezone": tz, "plugins": plugins,
            }),
        })
        .await?;
        a.commit().await?;
        Ok(view(&row))
    }

    /// Removes a window (kept for the record; no longer in force).
    pub async fn remove(&self, who: &Principal, id: i32) -> Result<CalendarWindow, AppError> {
        authorize(who, Action::ManagePipeline)?;
        let mut a = self.ledger.begin().await?;
        let row = calendar_window::Entity::find_by_id(id)
            .one(a.txn())
            .await
            .map_err(db_error)?
            .filter(|w| w.deleted_at.is_none())
            .ok_or_else(|| AppError::not_found(format!("there is no calendar window {id}")))?;
        calendar_window::Entity::update_many()
            .col_expr(
                calendar_window::Column::DeletedAt,
                Some(self.clock.now()).into(),
            )
            .filter(calendar_window::Column::Id.eq(id))
            .exec(a.txn())
            .await
            .map_err(db_error)?;
        a.append(Record {
            actor: who.me.username.clone(),
            tenant: None,
            action: "calendar.remove".into(),
            subject: format!("window:{id}"),
            details: json!({"name": row.name, "kind": row.kind}),
        })
        .await?;
        a.commit().await?;
        Ok(view(&row))
    }
}
