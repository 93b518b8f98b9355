//! Plugin submissions: the list (a partner's own tenant; staff every tenant, with a tenant
//! filter), the upload form, and one submission's verdict with its findings grouped by
//! severity, the facts, and the plugin's version history.
//!
//! Everything works without JavaScript: the filter is a GET form, and the upload is a
//! multipart POST to `/submissions/upload` that redirects to the new submission (or back to
//! the form with the reason next to the field).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::ledger::short_time;
use crate::api::{get_submission, get_submissions};
use crate::authz::Action;
use crate::error::AppError;
use crate::layout::{ErrorNotice, NotFound, loading, require};
use crate::types::{
    Decision, Finding, PluginVersion, Role, SubmissionDetail, SubmissionFilter,
    SubmissionPage as Page, SubmissionStatus, SubmissionSummary,
};

fn decision_badge(decision: Option<Decision>, status: Option<SubmissionStatus>) -> impl IntoView {
    let (class, text) = match (decision, status) {
        (Some(Decision::Pass), _) => ("badge pass", "pass"),
        (Some(Decision::Warn), _) => ("badge warn", "warn"),
        (Some(Decision::Deny), _) => ("badge deny", "deny"),
        (None, Some(s)) => ("badge", s.as_str()),
        (None, None) => ("badge", ""),
    };
    view! { <span class=class>{text}</span> }
}

#[component]
pub(crate) fn SubmissionsPage() -> impl IntoView {
    let s = match require(Action::ReadSubmissions) {
        Ok(s) => s,
        Err(denied) => return denied.view(),
    };
    let staff = s.me.role != Role::Partner;
    let query = use_query_map();
    let get = move |k: &str| query.with(|q| q.get(k).unwrap_or_default());
    let filter = move || {
        let opt = |k: &str| Some(get(k)).filter(|v| !v.is_empty());
        SubmissionFilter {
            tenant: opt("tenant"),
            plugin: opt("plugin"),
            decision: opt("decision").and_then(|d| d.parse().ok()),
            limit: None,
            offset: get("offset").parse().ok(),
        }
    };
    let page = Resource::new(filter, get_submissions);
    view! {
        <Title text="Submissions"/>
        <h1>"Submissions"</h1>
        {(!staff)
            .then(|| {
                view! {
                    <p>
                        <a class="button primary" href="/submissions/new">
                            "Upload a plugin"
                        </a>
                    </p>
                }
            })}
        <form method="get" action="/submissions" class="filters card" aria-label="Filter submissions">
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
                "Decision"
                <select name="decision">
                    <option value="" selected=get("decision").is_empty()>"any"</option>
                    <option value="pass" selected=get("decision") == "pass">"pass"</option>
                    <option value="warn" selected=get("decision") == "warn">"warn"</option>
                    <option value="deny" selected=get("decision") == "deny">"deny"</option>
                </select>
            </label>
            <button type="submit">"Filter"</button>
        </form>
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(p) => view! { <SubmissionTable page=p staff/> }.into_any(),
                    Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
    .into_any()
}

#[component]
fn SubmissionTable(page: Page, staff: bool) -> impl IntoView {
    if page.items.is_empty() {
        return view! { <p class="muted">"No submissions yet."</p> }.into_any();
    }
    let rows = page
        .items
        .into_iter()
        .map(|s: SubmissionSummary| {
            let href = format!("/submissions/{}", s.id);
            view! {
                <tr>
                    <td>
                        <a href=href>{s.plugin.clone()}</a>
                    </td>
                    <td>{s.version.clone()}</td>
                    {staff.then(|| view! { <td>{s.tenant.clone()}</td> })}
                    <td>{decision_badge(s.decision, Some(s.status))}</td>
                    <td>{s.findings}</td>
                    <td>
                        <time datetime=s.created_at.clone()>{short_time(&s.created_at)}</time>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <p class="muted">{format!("{} submission(s)", page.total)}</p>
        <table class="data">
            <caption class="visually-hidden">"Submissions, newest first"</caption>
            <thead>
                <tr>
                    <th scope="col">"Plugin"</th>
                    <th scope="col">"Version"</th>
                    {staff.then(|| view! { <th scope="col">"Tenant"</th> })}
                    <th scope="col">"Decision"</th>
                    <th scope="col">"Findings"</th>
                    <th scope="col">"Submitted"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

#[component]
pub(crate) fn UploadPage() -> impl IntoView {
    let s = match require(Action::Submit) {
        Ok(s) => s,
        Err(denied) => return denied.view(),
    };
    let query = use_query_map();
    let error = move || query.with(|q| q.get("error")).filter(|e| !e.is_empty());
    let csrf = s.csrf_token.clone();
    // With JavaScript: drop a file anywhere on the drop zone, and watch the upload's progress.
    // Without it the form posts and redirects all the same.
    let form_ref = NodeRef::<leptos::html::Form>::new();
    let input_ref = NodeRef::<leptos::html::Input>::new();
    let dragging = RwSignal::new(false);
    let progress = RwSignal::new(None::<f64>);
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        #[cfg(feature = "hydrate")]
        if let (Some(files), Some(input)) = (
            ev.data_transfer().and_then(|d| d.files()),
            input_ref.get_untracked(),
        ) {
            input.set_files(Some(&files));
        }
    };
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        #[cfg(feature = "hydrate")]
        if let Some(form) = form_ref.get_untracked()
            && enhanced::upload(&form, progress).is_ok()
        {
            ev.prevent_default();
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (&ev, form_ref);
    };
    view! {
        <Title text="Upload a plugin"/>
        <h1>"Upload a plugin"</h1>
        <p>
            "A bundle is a " <code>".tar.gz"</code> " or " <code>".zip"</code>
            " with plugin.toml and the entry module; build one with "
            <code>"stellar plugin pack DIR -o BUNDLE --sign KEY.pem"</code>
            ". The verdict follows within seconds."
        </p>
        <form
            method="post"
            action="/submissions/upload"
            enctype="multipart/form-data"
            class="card upload"
            aria-label="Upload a plugin bundle"
            node_ref=form_ref
            on:submit=on_submit
        >
            // First: the server checks it before it reads the bundle.
            <input type="hidden" name="csrf_token" value=csrf/>
            <div
                class="dropzone"
                class:dragging=move || dragging.get()
                on:dragover=move |ev: leptos::ev::DragEvent| {
                    ev.prevent_default();
                    dragging.set(true);
                }
                on:dragleave=move |_| dragging.set(false)
                on:drop=on_drop
            >
                <label for="bundle">"Bundle"</label>
                <input
                    id="bundle"
                    name="bundle"
                    type="file"
                    required
                    node_ref=input_ref
                    accept=".tar.gz,.tgz,.zip,application/gzip,application/zip"
                    aria-describedby="bundle-help bundle-error"
                    aria-invalid=move || error().is_some().then_some("true")
                />
                <p id="bundle-help" class="muted">
                    "Choose a file or drop it here. Up to the server's bundle size limit (50 MiB by default)."
                </p>
            </div>
            {move || {
                error()
                    .map(|e| {
                        view! {
                            <p id="bundle-error" class="field-error" role="alert">
                                {e}
                            </p>
                        }
                    })
            }}
            {move || {
                progress
                    .get()
                    .map(|p| {
                        let pct = (p * 100.0).round();
                        view! {
                            <label class="progress">
                                "Uploading "
                                <progress max="100" value=pct>{format!("{pct}%")}</progress>
                                {format!(" {pct}%")}
                            </label>
                        }
                    })
            }}
            <button type="submit" class="primary">"Submit for review"</button>
        </form>
    }
    .into_any()
}

/// The browser-only part of the upload: XMLHttpRequest, for its upload progress events.
#[cfg(feature = "hydrate")]
mod enhanced {
    use leptos::prelude::*;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;

    /// Sends the form with progress; the server's redirect (to the submission, or back to the
    /// form with the error) is followed when the upload ends.
    pub(super) fn upload(
        form: &web_sys::HtmlFormElement,
        progress: RwSignal<Option<f64>>,
    ) -> Result<(), wasm_bindgen::JsValue> {
        let data = web_sys::FormData::new_with_form(form)?;
        let xhr = web_sys::XmlHttpRequest::new()?;
        xhr.open("POST", &form.action())?;
        let on_progress =
            Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |e: web_sys::ProgressEvent| {
                if e.length_computable() && e.total() > 0.0 {
                    progress.set(Some(e.loaded() / e.total()));
                }
            });
        xhr.upload()?
            .set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
        on_progress.forget();
        let done = xhr.clone();
        let on_load = Closure::<dyn FnMut()>::new(move || {
            let url = done.response_url();
            if let Some(w) = web_sys::window() {
                let _ = w
                    .location()
                    .set_href(if url.is_empty() { "/submissions" } else { &url });
            }
        });
        xhr.set_onloadend(Some(on_load.as_ref().unchecked_ref()));
        on_load.forget();
        progress.set(Some(0.0));
        xhr.send_with_opt_form_data(Some(&data))
    }
}

#[component]
pub(crate) fn SubmissionPage() -> impl IntoView {
    if let Err(denied) = require(Action::ReadSubmissions) {
        return denied.view();
    }
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let detail = Resource::new(id, get_submission);
    view! {
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                match detail.await {
                    Ok(d) => view! { <SubmissionView d/> }.into_any(),
                    Err(AppError::NotFound { .. }) => view! { <NotFound/> }.into_any(),
                    Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
    .into_any()
}

const SEVERITIES: [&str; 4] = ["critical", "high", "medium", "low"];

#[component]
fn SubmissionView(d: SubmissionDetail) -> impl IntoView {
    let s = d.summary.clone();
    let title = format!("{} {}", s.plugin, s.version);
    let facts = d
        .facts
        .as_ref()
        .map(|f| serde_json::to_string_pretty(f).unwrap_or_default());
    let verdict = d.verdict.clone();
    view! {
        <Title text=title.clone()/>
        <h1>{title}</h1>
        <p class="muted">
            {format!("Submission {} by {} ({}), bundle sha256 ", s.id, s.submitted_by, s.tenant)}
            <code class="hash">{s.bundle_sha256.clone()}</code>
        </p>
        {match verdict {
            None => {
                let text = match s.status {
                    SubmissionStatus::Failed => {
                        format!(
                            "The analysis failed: {}",
                            s.error.clone().unwrap_or_default(),
                        )
                    }
                    other => format!("The analysis is {other}: reload in a moment."),
                };
                view! { <p class="card" role="status">{text}</p> }.into_any()
            }
            Some(v) => {
                let decision = v.decision;
                let summary = match decision {
                    Decision::Pass => "Accepted: no rule blocks this version.",
                    Decision::Warn => "Accepted with warnings: read them before release.",
                    Decision::Deny => "Denied: fix the findings below and submit again.",
                };
                let groups = SEVERITIES
                    .iter()
                    .filter_map(|sev| {
                        let fs: Vec<Finding> = v
                            .findings
                            .iter()
                            .filter(|f| f.severity == *sev)
                            .cloned()
                            .collect();
                        (!fs.is_empty()).then(|| view! { <FindingGroup severity=sev findings=fs/> })
                    })
                    .collect_view();
                let errors = v
                    .errors
                    .iter()
                    .map(|e| {
                        view! {
                            <li>
                                <strong>{e.rule.clone()}</strong>
                                ": "
                                {e.error.clone()}
                            </li>
                        }
                    })
                    .collect_view();
                view! {
                    <section class=format!("card verdict {decision}") aria-labelledby="verdict-title">
                        <h2 id="verdict-title">
                            "Decision: " {decision_badge(Some(decision), None)}
                        </h2>
                        <p>{summary}</p>
                        <p class="muted">
                            {format!(
                                "Judged by {} {} at {}{}",
                                v.pack.name,
                                v.pack.version,
                                short_time(&v.created_at),
                                if v.attestation_id.is_some() { "; the verdict is signed" } else { "" },
                            )}
                        </p>
                        {(!v.errors.is_empty())
                            .then(|| {
                                view! {
                                    <p>"Rules that could not be evaluated (they count as fired):"</p>
                                    <ul>{errors}</ul>
                                }
                            })}
                    </section>
                    {groups}
                }
                    .into_any()
            }
        }}
        {facts
            .map(|f| {
                view! {
                    <section class="card">
                        <details>
                            <summary>"Facts the policy judged"</summary>
                            <pre class="facts">{f}</pre>
                        </details>
                    </section>
                }
            })}
        <History versions=d.history.clone() current=s.id.clone()/>
    }
}

#[component]
fn FindingGroup(severity: &'static str, findings: Vec<Finding>) -> impl IntoView {
    let heading = format!("{} ({})", severity, findings.len());
    let items = findings
        .into_iter()
        .map(|f| {
            let evidence = f
                .evidence
                .iter()
                .map(|e| {
                    view! {
                        <li>
                            <code>{e.text()}</code>
                            {e.would_pass
                                .clone()
                                .map(|w| {
                                    view! {
                                        " "
                                        <span class="would-pass">
                                            "would pass with " <code>{w}</code>
                                        </span>
                                    }
                                        .into_any()
                                })}
                        </li>
                    }
                    .into_any()
                })
                .collect_view();
            view! {
                <li class=format!("finding {}", f.effect)>
                    <h4>
                        <span class=format!("badge {}", f.effect)>{f.effect.clone()}</span>
                        " "
                        <code>{f.rule.clone()}</code>
                    </h4>
                    <p class="message">{f.message.clone()}</p>
                    <p class="evidence-title">"Evidence"</p>
                    <ul class="evidence">{evidence}</ul>
                    {f.fix.clone().map(|fix| view! { <p class="fix"><strong>"Fix: "</strong>{fix}</p> })}
                    {f.waiver
                        .clone()
                        .map(|w| {
                            view! {
                                <p class="muted">
                                    {format!(
                                        "Waived by {} until {}: {}",
                                        w.approver,
                                        w.expires,
                                        w.reason,
                                    )}
                                </p>
                            }
                        })}
                    <p class="muted">
                        {f.docs
                            .clone()
                            .map(|d| view! { <a href=d>"About this rule"</a> " · " })}
                        {format!("{}:{}", f.location.file, f.location.line)}
                    </p>
                </li>
            }
        })
        .collect_view();
    view! {
        <section class="card findings" aria-label=format!("{severity} findings")>
            <h3>{heading}</h3>
            <ul class="findings">{items}</ul>
        </section>
    }
}

#[component]
fn History(versions: Vec<PluginVersion>, current: String) -> impl IntoView {
    let rows = versions
        .into_iter()
        .map(|v| {
            let here = v.submission == current;
            let changes = {
                let mut parts = Vec::new();
                if !v.added_permissions.is_empty() {
                    parts.push(format!("+ {}", v.added_permissions.join(", ")));
                }
                if !v.removed_permissions.is_empty() {
                    parts.push(format!("− {}", v.removed_permissions.join(", ")));
                }
                if parts.is_empty() {
                    "no permission change".to_owned()
                } else {
                    parts.join("; ")
                }
            };
            view! {
                <tr aria-current=here.then_some("page")>
                    <td>
                        <a href=format!("/submissions/{}", v.submission)>{v.version.clone()}</a>
                    </td>
                    <td>{decision_badge(v.decision, Some(v.status))}</td>
                    <td>{changes}</td>
                    <td>
                        <time datetime=v.created_at.clone()>{short_time(&v.created_at)}</time>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="card" aria-labelledby="history-title">
            <h2 id="history-title">"Versions of this plugin"</h2>
            <table class="data">
                <thead>
                    <tr>
                        <th scope="col">"Version"</th>
                        <th scope="col">"Decision"</th>
                        <th scope="col">"Permissions against the version before"</th>
                        <th scope="col">"Submitted"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
    }
}
