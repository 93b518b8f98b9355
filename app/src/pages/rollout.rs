//! A release's rollout on its page: where it stands (step, weight, the baseline version, the
//! next interval), canary against baseline per metric over time as server-rendered SVG charts
//! with the rules' limits drawn, the same numbers as a table (what screen readers read), the
//! decision at each interval, why it was rolled back or paused, and the controls a platform user
//! may use (plain POST forms, working without JavaScript).

use leptos::prelude::*;

use super::ledger::short_time;
use crate::delivery::{
    CohortNumbers, FiredRule, RolloutControl, RolloutInterval, RolloutPhase, RolloutView,
};

const W: f64 = 560.0;
const H: f64 = 140.0;
const PAD: f64 = 28.0;

fn phase_text(p: RolloutPhase) -> (&'static str, &'static str) {
    match p {
        RolloutPhase::Running => ("badge info", "Rolling out"),
        RolloutPhase::Paused => ("badge warn", "Paused"),
        RolloutPhase::RolledBack => ("badge deny", "Rolled back"),
        RolloutPhase::Complete => ("badge pass", "Complete"),
    }
}

fn phase_badge(p: RolloutPhase) -> impl IntoView {
    let (class, text) = phase_text(p);
    view! { <span class=class>{text}</span> }
}

/// The rollout in one sentence, for the page's live status line.
pub(crate) fn rollout_status(r: &RolloutView) -> String {
    let (_, phase) = phase_text(r.phase);
    format!(
        "{phase}: step {} of {}, {} % of hosts, {} interval(s) judged.",
        r.step, r.steps, r.weight, r.intervals_total
    )
}

/// One chart: a metric of both cohorts over the intervals, and the limit the rules apply.
struct Chart {
    id: &'static str,
    title: &'static str,
    unit: &'static str,
    canary: Vec<f64>,
    baseline: Vec<f64>,
    /// The limit the default rollback rules apply to the canary at each interval.
    limit: Option<Vec<f64>>,
    limit_label: &'static str,
}

fn points(series: &[f64], max: f64) -> String {
    let n = series.len().max(2) - 1;
    series
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = PAD + (W - 2.0 * PAD) * i as f64 / n as f64;
            let y = H - PAD - (H - 2.0 * PAD) * (v / max).min(1.0);
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn chart(c: Chart) -> AnyView {
    let mut max = c
        .canary
        .iter()
        .chain(&c.baseline)
        .chain(c.limit.iter().flatten())
        .fold(0.0f64, |a, b| a.max(*b));
    if max <= 0.0 {
        max = 1.0;
    }
    max *= 1.1;
    let title_id = format!("{}-title", c.id);
    let desc_id = format!("{}-desc", c.id);
    let last = |s: &[f64]| s.last().copied().unwrap_or(0.0);
    let desc = format!(
        "{}: canary {:.0} {unit}, baseline {:.0} {unit} at the latest interval{}; the table below has every value.",
        c.title,
        last(&c.canary),
        last(&c.baseline),
        c.limit
            .as_ref()
            .map(|l| format!(", limit {:.0} {}", last(l), c.unit))
            .unwrap_or_default(),
        unit = c.unit
    );
    let top = format!("{:.0} {}", max, c.unit);
    view! {
        <figure class="chart">
            <svg viewBox=format!("0 0 {W} {H}") role="img"
                aria-labelledby=format!("{title_id} {desc_id}") width="100%">
                <title id=title_id.clone()>{c.title}</title>
                <desc id=desc_id.clone()>{desc}</desc>
                <line class="axis" x1=PAD y1=H - PAD x2=W - PAD y2=H - PAD/>
                <line class="axis" x1=PAD y1=PAD x2=PAD y2=H - PAD/>
                <text class="tick" x="2" y=PAD>{top}</text>
                <text class="tick" x="2" y=H - PAD>"0"</text>
                {c.limit.as_ref().map(|l| view! {
                    <polyline class="limit" fill="none" points=points(l, max)/>
                })}
                <polyline class="baseline" fill="none" points=points(&c.baseline, max)/>
                <polyline class="canary" fill="none" points=points(&c.canary, max)/>
            </svg>
            <figcaption>
                <strong>{c.title}</strong> " — "
                <span class="key canary">"canary"</span> " "
                <span class="key baseline">"baseline"</span>
                {c.limit.is_some().then(|| view! { " " <span class="key limit">{c.limit_label}</span> })}
            </figcaption>
        </figure>
    }
    .into_any()
}

fn charts(intervals: &[RolloutInterval]) -> AnyView {
    let series = |f: fn(&CohortNumbers) -> u64, canary: bool| -> Vec<f64> {
        intervals
            .iter()
            .map(|i| f(if canary { &i.canary } else { &i.baseline }) as f64)
            .collect()
    };
    let err = |c: &CohortNumbers| c.error_rate_bp;
    let p95 = |c: &CohortNumbers| c.p95_ms;
    let crash = |c: &CohortNumbers| c.crash_rate_bp;
    let hosts = |c: &CohortNumbers| c.hosts;
    let has_baseline = intervals.iter().any(|i| !i.baseline.version.is_empty());
    let err_limit: Vec<f64> = intervals
        .iter()
        .map(|i| (i.baseline.error_rate_bp * 2 + 50) as f64)
        .collect();
    let p95_limit: Vec<f64> = intervals
        .iter()
        .map(|i| (i.baseline.p95_ms * 3 / 2 + 20) as f64)
        .collect();
    let crash_limit: Vec<f64> = intervals
        .iter()
        .map(|i| (i.baseline.crash_rate_bp + 10) as f64)
        .collect();
    view! {
        <div class="charts">
            {chart(Chart { id: "chart-errors", title: "Error rate", unit: "in 10,000 calls",
                canary: series(err, true), baseline: series(err, false),
                limit: has_baseline.then_some(err_limit),
                limit_label: "limit: 2 × baseline + 50 (built-in rules)" })}
            {chart(Chart { id: "chart-p95", title: "Latency, 95th percentile", unit: "ms",
                canary: series(p95, true), baseline: series(p95, false),
                limit: has_baseline.then_some(p95_limit),
                limit_label: "limit: 1.5 × baseline + 20 ms (built-in rules)" })}
            {chart(Chart { id: "chart-crashes", title: "Crash rate", unit: "in 10,000 calls",
                canary: series(crash, true), baseline: series(crash, false),
                limit: has_baseline.then_some(crash_limit),
                limit_label: "limit: baseline + 10 (built-in rules)" })}
            {chart(Chart { id: "chart-hosts", title: "Hosts reporting", unit: "hosts",
                canary: series(hosts, true), baseline: series(hosts, false),
                limit: None, limit_label: "" })}
        </div>
    }
    .into_any()
}

fn cohort_cell(c: &CohortNumbers) -> String {
    if c.version.is_empty() {
        return "—".into();
    }
    format!(
        "{}: {} calls, {} errors ({} in 10,000), {} crashes, p95 {} ms, {} hosts ({} silent)",
        c.version,
        c.samples,
        c.errors,
        c.error_rate_bp,
        c.crashes,
        c.p95_ms,
        c.hosts,
        c.silent_hosts
    )
}

fn fired_list(rules: &[FiredRule]) -> AnyView {
    let items = rules
        .iter()
        .map(|f| {
            let evidence = f
                .evidence
                .iter()
                .map(|e| view! { <li>{e.clone()}</li> })
                .collect_view();
            view! {
                <li>
                    <code>{f.rule.clone()}</code> {format!(" ({}): ", f.effect)} {f.message.clone()}
                    {(!f.evidence.is_empty()).then(|| view! { <ul class="evidence">{evidence}</ul> })}
                    {f.fix.clone().map(|fix| view! { <p class="hint">"Fix: " {fix}</p> })}
                </li>
            }
        })
        .collect_view();
    view! { <ul class="fired">{items}</ul> }.into_any()
}

#[component]
pub(crate) fn RolloutSection(
    rollout: RolloutView,
    controls: Vec<RolloutControl>,
    release: String,
    csrf: String,
) -> impl IntoView {
    let r = rollout;
    let caption = if (r.intervals_total as usize) > r.intervals.len() {
        format!(
            "The newest {} of {} judged intervals, newest first",
            r.intervals.len(),
            r.intervals_total
        )
    } else {
        "Each judged interval, newest first".to_owned()
    };
    let last = r.intervals.last().cloned();
    let why = last
        .as_ref()
        .filter(|i| i.outcome == "roll_back" || i.outcome == "pause")
        .cloned();
    let rows = r
        .intervals
        .iter()
        .rev()
        .map(|i| {
            view! {
                <tr>
                    <td>{i.seq}</td>
                    <td><time datetime=i.at.clone()>{short_time(&i.at)}</time></td>
                    <td>{format!("{} ({} %)", i.step, i.weight)}</td>
                    <td>{cohort_cell(&i.canary)}</td>
                    <td>{cohort_cell(&i.baseline)}</td>
                    <td>{format!("{} → {}", i.judgement, i.outcome.replace('_', " "))}</td>
                    <td>{i.fired.iter().map(|f| f.rule.clone()).collect::<Vec<_>>().join(", ")}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section aria-labelledby="rollout-h" class="rollout">
            <h2 id="rollout-h">"Rollout"</h2>
            <dl class="facts card">
                <dt>"Where it stands"</dt>
                <dd>
                    {phase_badge(r.phase)}
                    {format!(" step {} of {}, {} % of hosts", r.step, r.steps, r.weight)}
                </dd>
                <dt>"Compared with"</dt>
                <dd>{r.baseline_version.clone().unwrap_or_else(|| "nothing: the plugin's first release (absolute limits)".into())}</dd>
                <dt>"Analysis"</dt>
                <dd>{format!("every {} min over the last {} min; at least {} calls per cohort", r.interval_secs / 60, r.window_secs / 60, r.min_samples)}</dd>
                {r.next_at.clone().map(|t| view! { <dt>"Next interval"</dt> <dd><time datetime=t.clone()>{short_time(&t)}</time></dd> })}
                {r.paused_because.clone().map(|p| view! { <dt>"Paused because"</dt> <dd>{p}</dd> })}
            </dl>
            {why.map(|i| view! {
                <div class="card" role="note">
                    <h3>{if i.outcome == "roll_back" { "Why it was rolled back" } else { "Why it paused" }}</h3>
                    <p>{format!("Interval {} at step {} ({} %): canary {}; baseline {}.", i.seq, i.step, i.weight, cohort_cell(&i.canary), cohort_cell(&i.baseline))}</p>
                    {fired_list(&i.fired)}
                </div>
            })}
            <ControlsForm controls release csrf/>
            {(!r.intervals.is_empty()).then(|| charts(&r.intervals))}
            {if r.intervals.is_empty() {
                view! { <p class="muted">"No interval judged yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table>
                            <caption>{caption}</caption>
                            <thead>
                                <tr>
                                    <th scope="col">"#"</th>
                                    <th scope="col">"At"</th>
                                    <th scope="col">"Step"</th>
                                    <th scope="col">"Canary"</th>
                                    <th scope="col">"Baseline"</th>
                                    <th scope="col">"Decision"</th>
                                    <th scope="col">"Rules"</th>
                                </tr>
                            </thead>
                            <tbody>{rows}</tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </section>
    }
    .into_any()
}

/// The rollout controls the caller may use, as one form (a reason, one button per control).
#[component]
pub(crate) fn ControlsForm(
    controls: Vec<RolloutControl>,
    release: String,
    csrf: String,
) -> impl IntoView {
    if controls.is_empty() {
        return ().into_any();
    }
    let action = format!("/releases/{release}/rollout");
    let buttons = controls
        .iter()
        .map(|c| {
            let class = match c {
                RolloutControl::Yank => "danger",
                RolloutControl::Promote | RolloutControl::Resume | RolloutControl::Retry => {
                    "primary"
                }
                RolloutControl::Pause => "",
            };
            let label = match c {
                RolloutControl::Promote => "Promote now",
                RolloutControl::Pause => "Pause",
                RolloutControl::Resume => "Resume",
                RolloutControl::Retry => "Retry the rollout",
                RolloutControl::Yank => "Yank this version",
            };
            view! { <button type="submit" name="control" value=c.as_str() class=class>{label}</button> }
        })
        .collect_view();
    view! {
        <form method="post" action=action class="card stack" aria-label="Rollout controls">
            <input type="hidden" name="csrf_token" value=csrf/>
            <div class="field">
                <label for="control-reason">"Reason"</label>
                <input id="control-reason" name="reason" required maxlength="2000"
                    aria-describedby="control-hint"/>
                <p class="hint" id="control-hint">"Shown on the release and kept in the ledger."</p>
            </div>
            <div class="actions">{buttons}</div>
        </form>
    }
    .into_any()
}
