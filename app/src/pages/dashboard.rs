//! The dashboard: counts from the database, scoped to the viewer's tenant for partners.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::get_dashboard;
use crate::authz::Action;
use crate::layout::{ErrorNotice, loading, require};

#[component]
pub(crate) fn DashboardPage() -> impl IntoView {
    let s = match require(Action::UseAccount) {
        Ok(s) => s,
        Err(denied) => return denied.view(),
    };
    let dashboard = Resource::new(|| (), |_| get_dashboard());
    let name = s.me.display_name.clone();
    let role = s.me.role;
    // What this role comes here to do, most common first.
    let tasks: Vec<(&'static str, &'static str, &'static str)> = [
        (
            Action::Submit,
            "/submissions/new",
            "Upload a plugin",
            "judged against the marketplace policy, with the evidence and a fix for every finding",
        ),
        (
            Action::DecideRelease,
            "/approvals",
            "Approvals waiting for you",
            "releases whose review package is ready for your decision",
        ),
        (
            Action::ReadSubmissions,
            "/submissions",
            "Submissions",
            "every verdict, its evidence and its signed attestation",
        ),
        (
            Action::ReadReleases,
            "/releases",
            "Releases",
            "where each release stands in its pipeline",
        ),
        (
            Action::ManagePipeline,
            "/calendar",
            "Release calendar",
            "freeze and allow windows for promotions",
        ),
        (
            Action::ReadLedger,
            "/ledger",
            "Audit ledger",
            "every decision, tamper-evident and checkable offline",
        ),
        (
            Action::ManageAccounts,
            "/admin",
            "Tenants and users",
            "accounts, roles and API tokens",
        ),
    ]
    .into_iter()
    .filter(|(action, ..)| action.allows(role))
    .map(|(_, href, title, what)| (href, title, what))
    .collect();
    let tasks = tasks
        .into_iter()
        .map(|(href, title, what)| {
            view! {
                <li class="card task">
                    <a href=href>{title}</a>
                    <span class="muted">{what}</span>
                </li>
            }
        })
        .collect_view();
    view! {
        <Title text="Dashboard"/>
        <h1>"Dashboard"</h1>
        <section aria-labelledby="next-steps">
            <h2 id="next-steps">"Where to go"</h2>
            <ul class="tasks">{tasks}</ul>
        </section>
        <Suspense fallback=loading>
            {move || {
                let name = name.clone();
                Suspend::new(async move {
                    match dashboard.await {
                        Ok(d) => {
                            let scope = d
                                .tenant
                                .as_ref()
                                .map(|t| format!("Tenant {}", t.name))
                                .unwrap_or_else(|| "All tenants".into());
                            view! {
                                <p class="muted">"Welcome, " {name} ". Scope: " {scope}</p>
                                <ul class="stats" aria-label="Counts">
                                    <Stat label="Tenants" value=d.tenants/>
                                    <Stat label="Users" value=d.users/>
                                    <Stat label="Partner developers" value=d.partners/>
                                    <Stat label="Active API tokens" value=d.active_tokens/>
                                    <Stat label="Active sessions" value=d.active_sessions/>
                                </ul>
                            }
                                .into_any()
                        }
                        Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
    .into_any()
}

#[component]
fn Stat(label: &'static str, value: u64) -> impl IntoView {
    view! {
        <li class="stat card">
            <span class="stat-value">{value}</span>
            <span class="stat-label">{label}</span>
        </li>
    }
}
