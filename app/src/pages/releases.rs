//! Releases: the list (a partner's own tenant; staff every tenant), the approvals inbox (what
//! waits for the signed-in reviewer), and one release: its stages as a timeline (actor, time,
//! signature status), the fast-review package, and the approve / reject / abort forms.
//!
//! Everything reads without JavaScript, and the forms are plain POSTs (`/releases/{id}/decision`
//! and `/releases/{id}/abort`, with the session's CSRF token) that redirect back to the release
//! with what happened.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::ledger::short_time;
use super::rollout::{ControlsForm, RolloutSection, rollout_status};
use crate::api::{get_release, get_release_package, get_releases};
use crate::authz::Action;
use crate::delivery::{
    ReleaseDetail, ReleaseFilter, ReleasePage as Page, ReleaseStage, ReleaseState, ReleaseSummary,
    ReviewPackage, RiskLevel, StageState,
};
use crate::error::AppError;
use crate::layout::{ErrorNotice, NotFound, loading, require};
use crate::types::{Decision, Role};

pub(crate) fn state_badge(state: ReleaseState) -> impl IntoView {
    let class = match state {
        ReleaseState::Succeeded => "badge pass",
        ReleaseState::Running | ReleaseState::Pending => "badge info",
        ReleaseState::Superseded => "badge",
        ReleaseState::Yanked => "badge warn",
        _ => "badge deny",
    };
    view! { <span class=class>{state.label()}</span> }
}

fn verdict_badge(d: Decision) -> impl IntoView {
    let class = match d {
        Decision::Pass => "badge pass",
        Decision::Warn => "badge warn",
        Decision::Deny => "badge deny",
    };
    view! { <span class=class>{d.as_str()}</span> }
}

/// A table of releases.
#[component]
pub(crate) fn ReleaseTable(page: Page, staff: bool, empty: &'static str) -> impl IntoView {
    if page.items.is_empty() {
        return view! { <p class="muted">{empty}</p> }.into_any();
    }
    let rows = page
        .items
        .into_iter()
        .map(|r: ReleaseSummary| {
            let href = format!("/releases/{}", r.id);
            let label = format!("{} {}", r.plugin, r.version);
            view! {
                <tr>
                    <td>
                        <a href=href>{label}</a>
                    </td>
                    {staff.then(|| view! { <td>{r.tenant.clone()}</td> })}
                    <td>{state_badge(r.state)}</td>
                    <td>
                        {r.stage.clone().unwrap_or_else(|| "—".into())}
                        {r.waiting.clone().map(|w| view! { <span class="hint block">{w}</span> })}
                    </td>
                    <td>
                        <time datetime=r.created_at.clone()>{short_time(&r.created_at)}</time>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <p class="muted">{format!("{} release(s)", page.total)}</p>
        <div class="table-wrap">
            <table class="data">
                <caption class="visually-hidden">"Releases, newest first"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Release"</th>
                        {staff.then(|| view! { <th scope="col">"Tenant"</th> })}
                        <th scope="col">"State"</th>
                        <th scope="col">"Stage"</th>
                        <th scope="col">"Created"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
pub(crate) fn ReleasesPage() -> impl IntoView {
    let s = match require(Action::ReadReleases) {
        Ok(s) => s,
        Err(denied) => return denied.view(),
    };
    let staff = s.me.role != Role::Partner;
    let query = use_query_map();
    let get = move |k: &str| query.with(|q| q.get(k).unwrap_or_default());
    let filter = move || {
        let opt = |k: &str| Some(get(k)).filter(|v| !v.is_empty());
        ReleaseFilter {
            tenant: opt("tenant"),
            plugin: opt("plugin"),
            state: opt("state").and_then(|v| v.parse().ok()),
            awaiting_me: None,
            limit: None,
            offset: get("offset").parse().ok(),
        }
    };
    let page = Resource::new(filter, get_releases);
    let states = ReleaseState::ALL
        .iter()
        .map(|st| {
            let v = st.as_str();
            view! { <option value=v selected=move || get("state") == v>{st.label()}</option> }
        })
        .collect_view();
    view! {
        <Title text="Releases"/>
        <h1>"Releases"</h1>
        <p class="muted">
            "Each accepted version goes through its pipeline: review, signature, rollout, GA. "
            <a href="/calendar">"Release calendar"</a>
        </p>
        <form method="get" action="/releases" class="filters card" aria-label="Filter releases">
            {staff
                .then(|| {
                    view! {
                        <label>
                            "Tenant"
                            <input name="tenant" value=get("tenant") placeholder="all tenants"/>
                        </label>
                    }
                })}
            <label>
                "Plugin"
                <input name="plugin" value=get("plugin")/>
            </label>
            <label>
                "State"
                <select name="state">
                    <option value="" selected=move || get("state").is_empty()>"any"</option>
                    {states}
                </select>
            </label>
            <button type="submit">"Filter"</button>
        </form>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(p) => view! { <ReleaseTable page=p staff empty="No releases yet."/> }.into_any(),
                    Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
    .into_any()
}

#[component]
pub(crate) fn ApprovalsPage() -> impl IntoView {
    if let Err(denied) = require(Action::DecideRelease) {
        return denied.view();
    }
    let page = Resource::new(
        || (),
        |_| {
            get_releases(ReleaseFilter {
                awaiting_me: Some(true),
                ..ReleaseFilter::default()
            })
        },
    );
    view! {
        <Title text="Approvals"/>
        <h1>"Approvals"</h1>
        <p class="muted">"Releases waiting for a decision you may make, newest first. Each has its fast-review package."</p>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(p) => view! { <ReleaseTable page=p staff=true empty="Nothing waits for you."/> }.into_any(),
                    Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
    .into_any()
}

/// How often a running release's page asks for it again.
#[cfg(feature = "hydrate")]
const LIVE_EVERY_MS: u64 = 3_000;

#[component]
pub(crate) fn ReleasePage() -> impl IntoView {
    let s = match require(Action::ReadReleases) {
        Ok(s) => s,
        Err(denied) => return denied.view(),
    };
    let params = use_params_map();
    let query = use_query_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    // While the release runs, the page follows it: it asks for the release again every
    // `LIVE_EVERY_MS` (not while someone is typing in one of its forms, and not while the
    // tab is hidden), keeping what it shows until the new answer is there.
    let tick = RwSignal::new(0u32);
    let detail = Resource::new(move || (id(), tick.get()), |(id, _)| get_release(id));
    // The release in one sentence, "live" while it runs: a signal an effect keeps (the
    // resource is read only in effects and under the transition), shown in one node for the
    // page's life so that assistive technology announces each change.
    let status = RwSignal::new(None::<(bool, String)>);
    Effect::new(move |_| {
        if let Some(Ok(d)) = detail.get() {
            let now = d
                .rollout
                .as_ref()
                .map(rollout_status)
                .or_else(|| d.summary.waiting.clone())
                .or_else(|| d.summary.reason.clone())
                .unwrap_or_else(|| format!("The release is {}.", d.summary.state.as_str()));
            status.set(Some((d.summary.state == ReleaseState::Running, now)));
        }
    });
    #[cfg(feature = "hydrate")]
    {
        let following = move || {
            let doc = document();
            let typing = doc
                .active_element()
                .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"));
            !typing && !doc.hidden()
        };
        if let Ok(handle) = set_interval_with_handle(
            move || {
                let running = detail
                    .get_untracked()
                    .and_then(Result::ok)
                    .is_some_and(|d| d.summary.state == ReleaseState::Running);
                if running && following() {
                    tick.update(|t| *t = t.wrapping_add(1));
                }
            },
            std::time::Duration::from_millis(LIVE_EVERY_MS),
        ) {
            on_cleanup(move || handle.clear());
        }
    }
    let notice = move || query.with(|q| q.get("notice")).filter(|e| !e.is_empty());
    let error = move || query.with(|q| q.get("error")).filter(|e| !e.is_empty());
    let csrf = s.csrf_token.clone();
    view! {
        {move || notice().map(|n| view! { <div class="notice" role="status">{n}</div> })}
        {move || error().map(|e| view! { <div class="alert" role="alert"><strong>"Not done"</strong> " " {e}</div> })}
        <p
            class=move || if status.with(|s| s.as_ref().is_some_and(|(running, _)| *running)) { "hint live" } else { "visually-hidden" }
            role="status"
        >
            {move || status.get().map(|(running, now)| {
                if running { format!("Live: this page follows the release. {now}") } else { now }
            })}
        </p>
        <Transition fallback=loading>
            {move || {
                let csrf = csrf.clone();
                Suspend::new(async move {
                    match detail.await {
                        Ok(d) => view! { <ReleaseView d csrf/> }.into_any(),
                        Err(AppError::NotFound { .. }) => view! { <NotFound/> }.into_any(),
                        Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                    }
                })
            }}
        </Transition>
    }
    .into_any()
}

fn stage_mark(state: StageState) -> (&'static str, &'static str) {
    match state {
        StageState::Succeeded => ("step done", "✓"),
        StageState::Waiting => ("step current", "…"),
        StageState::Stopped => ("step stopped", "✕"),
        StageState::Skipped => ("step skipped", "–"),
        StageState::Pending => ("step", "○"),
    }
}

#[component]
fn Timeline(stages: Vec<ReleaseStage>) -> impl IntoView {
    let items = stages
        .into_iter()
        .map(|st| {
            let (class, mark) = stage_mark(st.state);
            let when = st.finished_at.clone().or(st.started_at.clone());
            view! {
                <li class=class>
                    <span class="step-mark" aria-hidden="true">{mark}</span>
                    <div>
                        <strong>{st.name.clone()}</strong>
                        " "
                        <span class="muted">{format!("({}) — {}", st.kind.as_str(), st.state.as_str())}</span>
                        {st.actor.clone().map(|a| view! { <span>{format!(" by {a}")}</span> })}
                        {when.map(|w| view! { " " <time datetime=w.clone()>{short_time(&w)}</time> })}
                        {st.detail.clone().map(|d| view! { <p class="hint">{d}</p> })}
                        {st.link.clone().map(|l| {
                            let (cls, text) = if l.verified { ("ok", "signature verified") } else { ("bad", "signature NOT verified") };
                            view! {
                                <p class="hint">
                                    "in-toto link " <code>{l.name.clone()}</code> " — "
                                    <span class=cls>{text}</span>
                                </p>
                            }
                        })}
                    </div>
                </li>
            }
        })
        .collect_view();
    view! { <ol class="timeline" aria-label="Stages">{items}</ol> }
}

#[component]
fn ReleaseView(d: ReleaseDetail, csrf: String) -> impl IntoView {
    let s = d.summary.clone();
    let title = format!("Release of {} {}", s.plugin, s.version);
    let id = s.id.clone();
    let has_package = d.package_ready_at.is_some();
    let package = Resource::new(
        move || (has_package, id.clone()),
        |(has, id)| async move {
            if has {
                get_release_package(id).await.map(Some)
            } else {
                Ok(None)
            }
        },
    );
    let decide_action = format!("/releases/{}/decision", s.id);
    let abort_action = format!("/releases/{}/abort", s.id);
    let download = format!("/api/v1/releases/{}/attestations", s.id);
    let csrf2 = csrf.clone();
    let csrf3 = csrf.clone();
    let release_id = s.id.clone();
    let rollout = d.rollout.clone();
    let controls = d.controls.clone();
    let decisions = d
        .decisions
        .iter()
        .map(|dec| {
            view! {
                <li>
                    <strong>{if dec.approve { "Approved" } else { "Rejected" }}</strong>
                    {format!(" by {} ({}) at stage {}", dec.username, dec.role, dec.stage)}
                    " " <time datetime=dec.at.clone()>{short_time(&dec.at)}</time>
                    {(!dec.reason.is_empty()).then(|| view! { <span>{format!(": {}", dec.reason)}</span> })}
                </li>
            }
        })
        .collect_view();
    view! {
        <Title text=title.clone()/>
        <h1>{title}</h1>
        <dl class="facts card">
            <dt>"State"</dt>
            <dd>{state_badge(s.state)} {s.waiting.clone().map(|w| view! { " " <span>{w}</span> })}</dd>
            {s.reason.clone().map(|r| view! { <dt>"Why it ended"</dt> <dd>{r}</dd> })}
            <dt>"Tenant"</dt>
            <dd>{s.tenant.clone()}</dd>
            <dt>"Verdict"</dt>
            <dd>
                {verdict_badge(d.verdict)} " "
                <a href=format!("/submissions/{}", s.submission)>"submission " {s.submission.clone()}</a>
            </dd>
            <dt>"Bundle sha256"</dt>
            <dd class="wrap"><code>{d.bundle_sha256.clone()}</code></dd>
            <dt>"Pipeline"</dt>
            <dd>{format!("{} (spec version {})", s.pipeline, s.spec_version)}</dd>
            <dt>"Requested by"</dt>
            <dd>{s.created_by.clone()} " " <time datetime=s.created_at.clone()>{short_time(&s.created_at)}</time></dd>
        </dl>
        <h2>"Stages"</h2>
        <Timeline stages=d.stages.clone()/>
        {match rollout {
            Some(r) => view! { <RolloutSection rollout=r controls release=release_id csrf=csrf3/> }.into_any(),
            None => view! { <ControlsForm controls release=release_id csrf=csrf3/> }.into_any(),
        }}
        {(!d.decisions.is_empty()).then(|| view! { <h2>"Decisions"</h2> <ul>{decisions}</ul> })}
        {d.can_decide.then(|| view! {
            <section class="card" aria-labelledby="decide-h">
                <h2 id="decide-h">"Your decision"</h2>
                <form method="post" action=decide_action.clone() class="stack">
                    <input type="hidden" name="csrf_token" value=csrf.clone()/>
                    <div class="field">
                        <label for="reason">"Reason"</label>
                        <textarea id="reason" name="reason" rows="3" maxlength="2000"
                            aria-describedby="reason-hint"></textarea>
                        <p class="hint" id="reason-hint">"Required to reject: say what must change."</p>
                    </div>
                    <div class="actions">
                        <button type="submit" name="decision" value="approve" class="primary">"Approve"</button>
                        <button type="submit" name="decision" value="reject" class="danger">"Reject"</button>
                    </div>
                </form>
            </section>
        })}
        {d.cannot_decide.clone().map(|why| view! { <p class="muted">{why}</p> })}
        <h2>"Fast-review package"</h2>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                match package.await {
                    Ok(Some(p)) => view! { <PackageView p/> }.into_any(),
                    Ok(None) => view! { <p class="muted">"Assembled when the release reaches an approval stage."</p> }.into_any(),
                    Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                }
            })}
        </Transition>
        <h2>"Attestations"</h2>
        <p>
            <a class="button" href=download download="">"Download the attestations (.tar.gz)"</a>
        </p>
        <p class="hint">
            "Unpack it and run " <code>"in-toto-verify -l root.layout --verification-keys release.pub"</code>
            " inside, or " <code>"stellar verify-release DIR --trust-root ROOT.json"</code> "."
        </p>
        <ul>
            {d.documents.iter().map(|doc| {
                let (cls, text) = if doc.verified { ("ok", "verified") } else { ("bad", "not verified") };
                view! { <li><code>{doc.name.clone()}</code> {format!(" ({}) ", doc.kind)} <span class=cls>{text}</span></li> }
            }).collect_view()}
        </ul>
        {d.can_abort.then(|| view! {
            <details class="card">
                <summary>"Abort this release"</summary>
                <form method="post" action=abort_action.clone() class="stack">
                    <input type="hidden" name="csrf_token" value=csrf2.clone()/>
                    <div class="field">
                        <label for="abort-reason">"Reason"</label>
                        <input id="abort-reason" name="reason" required maxlength="2000"/>
                    </div>
                    <button type="submit" class="danger">"Abort"</button>
                </form>
            </details>
        })}
    }
}

#[component]
fn PackageView(p: ReviewPackage) -> impl IntoView {
    let list = |items: Vec<String>| {
        if items.is_empty() {
            view! { <span class="muted">"none"</span> }.into_any()
        } else {
            items
                .into_iter()
                .map(|i| view! { <code class="chip">{i}</code> " " })
                .collect_view()
                .into_any()
        }
    };
    let risk = p
        .risk
        .iter()
        .map(|r| {
            let class = match r.level {
                RiskLevel::High => "badge deny",
                RiskLevel::Medium => "badge warn",
                RiskLevel::Low => "badge info",
            };
            let level = match r.level {
                RiskLevel::High => "high",
                RiskLevel::Medium => "medium",
                RiskLevel::Low => "low",
            };
            view! {
                <li>
                    <span class=class>{level}</span> " " {r.text.clone()}
                    " " <span class="hint">{format!("(fact: {})", r.fact)}</span>
                </li>
            }
        })
        .collect_view();
    let components = p
        .components_added
        .iter()
        .map(|c| format!("+ {} {} ({})", c.name, c.version, c.licenses.join(" OR ")))
        .chain(
            p.components_removed
                .iter()
                .map(|c| format!("− {} {}", c.name, c.version)),
        )
        .chain(p.components_changed.iter().map(|c| {
            format!(
                "{}: {} → {} ({} → {})",
                c.name,
                c.before.version,
                c.after.version,
                c.before.licenses.join(" OR "),
                c.after.licenses.join(" OR ")
            )
        }))
        .collect::<Vec<_>>();
    let findings = |fs: &Vec<crate::delivery::FindingRef>| {
        fs.iter()
            .map(|f| format!("{} {}: {}", f.effect, f.rule, f.message))
            .collect::<Vec<_>>()
    };
    let new_findings = findings(&p.findings_new);
    let resolved = findings(&p.findings_resolved);
    let signatures = p
        .signatures
        .iter()
        .map(|s| {
            format!(
                "{} ({}) — {}",
                s.key_name
                    .clone()
                    .unwrap_or_else(|| "unregistered key".into()),
                s.key_id.get(..16).unwrap_or(&s.key_id),
                s.state
            )
        })
        .collect::<Vec<_>>();
    view! {
        <section class="card package" aria-label="Fast-review package">
            <p>
                {match &p.previous_version {
                    Some(v) => format!("Compared with {v}, the last GA version."),
                    None => "The first release of this plugin: nothing to compare with.".to_owned(),
                }}
            </p>
            <h3>"Risk"</h3>
            <ul class="risk">{risk}</ul>
            <dl class="facts">
                <dt>"Permissions added"</dt><dd>{list(p.permissions_added.clone())}</dd>
                <dt>"Permissions removed"</dt><dd>{list(p.permissions_removed.clone())}</dd>
                <dt>"Imports added"</dt><dd>{list(p.imports_added.clone())}</dd>
                <dt>"Imports removed"</dt><dd>{list(p.imports_removed.clone())}</dd>
                <dt>"Module size"</dt>
                <dd>{match p.previous_module_size_kb {
                    Some(b) => format!("{b} KiB → {} KiB", p.module_size_kb),
                    None => format!("{} KiB", p.module_size_kb),
                }}</dd>
                <dt>"New findings"</dt><dd>{list(new_findings)}</dd>
                <dt>"Resolved findings"</dt><dd>{list(resolved)}</dd>
                <dt>"SBOM changes"</dt><dd>{list(components)}</dd>
                <dt>"Publisher signatures"</dt><dd>{list(signatures)}</dd>
            </dl>
            <p class="hint">
                "Signed as an in-toto statement: "
                <code>{p.statement.clone().unwrap_or_default()}</code>
                " in the attestations."
            </p>
        </section>
    }
}
