//! The release calendar, by week: for each day the freeze and allow windows in force and the
//! releases alive; the releases waiting for a window; the windows themselves. Previous and
//! next weeks are links (no JavaScript needed).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::releases::{ReleaseTable, state_badge};
use crate::api::get_calendar;
use crate::authz::Action;
use crate::delivery::{CalendarWeek, ReleasePage, WindowKind};
use crate::layout::{ErrorNotice, loading, require};

/// `2026-11-30` shifted by `days` (no date library in the browser for this).
fn shift(date: &str, days: i64) -> String {
    let parts: Vec<i64> = date.split('-').filter_map(|p| p.parse().ok()).collect();
    let [y, m, d] = parts[..] else {
        return date.to_owned();
    };
    // Days from civil (Howard Hinnant's algorithm) and back.
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let z = era * 146_097 + doe - 719_468 + days;
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}")
}

#[component]
pub(crate) fn CalendarPage() -> impl IntoView {
    let s = match require(Action::ReadPipeline) {
        Ok(s) => s,
        Err(denied) => return denied.view(),
    };
    let staff = s.me.role != crate::types::Role::Partner;
    let query = use_query_map();
    let week = move || query.with(|q| q.get("week").unwrap_or_default());
    let data = Resource::new(week, get_calendar);
    view! {
        <Title text="Release calendar"/>
        <h1>"Release calendar"</h1>
        <p class="muted">
            "Promotions (rollout steps, GA) happen only inside allow windows when there are any, and never inside a freeze; deny wins over allow. Aborts and rollbacks never wait."
        </p>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(w) => view! { <Week w staff/> }.into_any(),
                    Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
    .into_any()
}

#[component]
fn Week(w: CalendarWeek, staff: bool) -> impl IntoView {
    let prev = format!("/calendar?week={}", shift(&w.start, -7));
    let next = format!("/calendar?week={}", shift(&w.start, 7));
    let days = w
        .days
        .iter()
        .map(|d| {
            let releases = d
                .releases
                .iter()
                .map(|r| {
                    let href = format!("/releases/{}", r.id);
                    view! {
                        <li>
                            <a href=href>{format!("{} {}", r.plugin, r.version)}</a> " " {state_badge(r.state)}
                        </li>
                    }
                })
                .collect_view();
            let freezes = d.freezes.join(", ");
            let allows = d.allows.join(", ");
            view! {
                <tr>
                    <th scope="row" class="nowrap">{d.date.clone()}</th>
                    <td>{if freezes.is_empty() { view! { <span class="muted">"—"</span> }.into_any() } else { view! { <span class="bad">{freezes}</span> }.into_any() }}</td>
                    <td>{if allows.is_empty() { "—".to_owned() } else { allows }}</td>
                    <td><ul class="plain">{releases}</ul></td>
                </tr>
            }
        })
        .collect_view();
    let windows = w
        .windows
        .iter()
        .map(|win| {
            let when = match (&win.starts_at, &win.ends_at, &win.cron) {
                (Some(s), Some(e), _) => format!("from {s} to {e}"),
                (_, _, Some(c)) => format!(
                    "`{c}` for {} ({})",
                    win.duration.clone().unwrap_or_default(),
                    win.timezone.clone().unwrap_or_else(|| "UTC".into())
                ),
                _ => String::new(),
            };
            view! {
                <tr>
                    <td>{win.name.clone()}</td>
                    <td>{match win.kind { WindowKind::Allow => "allow", WindowKind::Deny => "freeze" }}</td>
                    <td>{when}</td>
                    <td>{win.plugins.clone().unwrap_or_else(|| "every plugin".into())}</td>
                </tr>
            }
        })
        .collect_view();
    let scheduled = ReleasePage {
        total: w.scheduled.len() as u64,
        limit: 200,
        offset: 0,
        items: w.scheduled.clone(),
    };
    view! {
        <nav class="pager" aria-label="Weeks">
            <a href=prev>"← previous week"</a>
            <span>{format!("Week of {}", w.start)}</span>
            <a href=next>"next week →"</a>
        </nav>
        <div class="table-wrap">
            <table class="data">
                <caption class="visually-hidden">"Each day of the week: windows and releases"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Day"</th>
                        <th scope="col">"Freezes"</th>
                        <th scope="col">"Allow windows"</th>
                        <th scope="col">"Releases"</th>
                    </tr>
                </thead>
                <tbody>{days}</tbody>
            </table>
        </div>
        <h2>"Waiting for a window"</h2>
        <ReleaseTable page=scheduled staff empty="No promotion waits for a window."/>
        <h2>"Windows"</h2>
        {if w.windows.is_empty() {
            view! { <p class="muted">"No windows: promotions are free."</p> }.into_any()
        } else {
            view! {
                <div class="table-wrap">
                    <table class="data">
                        <caption class="visually-hidden">"Allow and freeze windows"</caption>
                        <thead>
                            <tr>
                                <th scope="col">"Name"</th>
                                <th scope="col">"Kind"</th>
                                <th scope="col">"When"</th>
                                <th scope="col">"Plugins"</th>
                            </tr>
                        </thead>
                        <tbody>{windows}</tbody>
                    </table>
                </div>
            }.into_any()
        }}
        <p class="hint">"Add or remove windows with " <code>"POST /api/v1/calendar/windows"</code> " (platform, administrators)."</p>
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_shift_across_months_and_years() {
        assert_eq!(super::shift("2026-11-30", 7), "2026-12-07");
        assert_eq!(super::shift("2026-12-28", 7), "2027-01-04");
        assert_eq!(super::shift("2024-03-04", -7), "2024-02-26");
        assert_eq!(super::shift("2024-02-26", 7), "2024-03-04");
        assert_eq!(super::shift("bad", 7), "bad");
    }
}
