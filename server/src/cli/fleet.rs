//! `stellar fleet …`: fleet tokens and the fleet overview through a server's API, and
//! `stellar fleet simulate`, a fleet of simulated hosts over HTTP ([`crate::fleet_sim`]).

use std::process::ExitCode;
use std::time::Duration;

use app::fleet::{CreatedFleetToken, FleetOverview, FleetToken, NewFleetToken};
use serde::Serialize;

use super::args::{FleetCommand, FleetTokenCommand, OutputFormat as Format, ServerArgs};
use super::client::{answer, client, runtime_or, url};
use crate::fleet_sim::{self, Settings};
use crate::services::policy;

fn print_json<T: Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn print_token(t: &FleetToken) {
    println!(
        "{}  {:<24} {:<14} {}{}{}",
        t.id,
        t.name,
        t.prefix,
        t.host
            .as_deref()
            .map(|h| format!("host {h}"))
            .or_else(|| t.group.as_deref().map(|g| format!("group {g}")))
            .unwrap_or_default(),
        t.expires_at
            .as_deref()
            .map(|e| format!(", expires {e}"))
            .unwrap_or_default(),
        t.revoked_at
            .as_deref()
            .map(|r| format!(", REVOKED {r}"))
            .unwrap_or_default()
    );
}

async fn send<T: serde::de::DeserializeOwned>(
    server: &ServerArgs,
    req: reqwest::RequestBuilder,
) -> Result<T, String> {
    let res = req
        .bearer_auth(&server.token)
        .send()
        .await
        .map_err(|e| format!("cannot reach {}: {e}", server.server))?;
    answer(res).await
}

pub fn run(cmd: FleetCommand) -> ExitCode {
    runtime_or(
        async move {
            let http = client()?;
            match cmd {
                FleetCommand::Token(FleetTokenCommand::Create {
                    name,
                    host,
                    group,
                    expires_in_days,
                    server,
                    format,
                }) => {
                    let made: CreatedFleetToken = send(
                        &server,
                        http.post(url(&server.server, "/api/v1/fleet/tokens")).json(
                            &NewFleetToken {
                                name,
                                host,
                                group,
                                expires_in_days,
                            },
                        ),
                    )
                    .await?;
                    if format == Format::Json {
                        print_json(&made);
                    } else {
                        print_token(&made.token);
                        println!("secret (shown once): {}", made.secret);
                    }
                }
                FleetCommand::Token(FleetTokenCommand::List { server, format }) => {
                    let list: Vec<FleetToken> = send(
                        &server,
                        http.get(url(&server.server, "/api/v1/fleet/tokens")),
                    )
                    .await?;
                    if format == Format::Json {
                        print_json(&list);
                    } else {
                        list.iter().for_each(print_token);
                    }
                }
                FleetCommand::Token(FleetTokenCommand::Revoke { id, server, format }) => {
                    let t: FleetToken = send(
                        &server,
                        http.post(url(
                            &server.server,
                            &format!("/api/v1/fleet/tokens/{id}/revoke"),
                        )),
                    )
                    .await?;
                    if format == Format::Json {
                        print_json(&t);
                    } else {
                        print_token(&t);
                    }
                }
                FleetCommand::Show { server, format } => {
                    let o: FleetOverview =
                        send(&server, http.get(url(&server.server, "/api/v1/fleet"))).await?;
                    if format == Format::Json {
                        print_json(&o);
                    } else {
                        println!(
                            "{} hosts, {} stale (no poll for {} s)",
                            o.hosts, o.stale, o.stale_after_secs
                        );
                        for c in &o.by_product_version {
                            println!("  product {:<16} {}", c.value, c.hosts);
                        }
                        for c in &o.by_region {
                            println!("  region  {:<16} {}", c.value, c.hosts);
                        }
                    }
                }
                FleetCommand::Simulate {
                    server,
                    token,
                    hosts,
                    scenario,
                    seed,
                    time_scale,
                    concurrency,
                    jitter_ms,
                    rounds,
                } => {
                    let text = policy::read(&scenario)?;
                    let sc = delivery::scenario::parse(&text)
                        .map_err(|e| format!("{}: {e}", scenario.display()))?;
                    let interval = sc.plan.interval_secs;
                    let rounds = rounds.unwrap_or(sc.duration_secs / interval.max(1));
                    let fleet = fleet_sim::Fleet::new(
                        Settings {
                            server,
                            token,
                            hosts,
                            seed: seed.unwrap_or(sc.seed),
                            concurrency,
                            jitter: Duration::from_millis(jitter_ms),
                            product_version: "1.0.0".into(),
                            regions: vec!["eu-west".into(), "us-east".into(), "ap-south".into()],
                        },
                        sc.clone(),
                    )?;
                    // Rounds start on a fixed beat, however long a round's requests take: each
                    // round reports the interval that just ended (for the version each host ran
                    // in it), then polls for what to run next.
                    let pause =
                        Duration::from_secs_f64(interval as f64 / f64::from(time_scale.max(1)));
                    let mut beat = tokio::time::interval(pause);
                    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    let mut last: Option<(i64, std::time::Instant)> = None;
                    for round in 0..=rounds {
                        beat.tick().await;
                        if let Some((time, at)) = last {
                            // The server's clock now, from its last answer and the time since.
                            let end =
                                time + (at.elapsed().as_secs_f64() * f64::from(time_scale)) as i64;
                            let r = fleet.report(round - 1, end).await?;
                            println!(
                                "          {} samples reported, {} refused",
                                r.stored, r.refused
                            );
                        }
                        if round == rounds {
                            break;
                        }
                        let polls = fleet.poll(round).await?;
                        last = Some((polls.server_time, std::time::Instant::now()));
                        let versions: Vec<String> = polls
                            .versions
                            .iter()
                            .map(|(v, n)| format!("{n} on {v}"))
                            .collect();
                        println!(
                            "round {round}: {} changed, {} unchanged; {} runs: {}",
                            polls.changed,
                            polls.not_modified,
                            sc.plugin,
                            if versions.is_empty() {
                                "nothing".into()
                            } else {
                                versions.join(", ")
                            }
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        },
        ExitCode::FAILURE,
    )
}
