//! The patrol leaders' phones: each holds the live feed open with the leader device's
//! key and, when the server pushes a new version of the team's route plan, acknowledges
//! it with `ack_route` after a human delay and moves the team's members onto it.

use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::fleet::Field;
use super::options::Args;
use super::plan::{parse_plan_row, parse_route_message, PlanPush, PlanRoute};
use super::support::splitmix64;

/// The leader takes this long, in simulated seconds, to read and acknowledge a new plan.
const ACK_DELAY_S: Range<f64> = 5.0..20.0;
/// Longest wait between two attempts to open a leader's socket.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A patrol team as its leader's phone knows it.
#[derive(Clone)]
pub(super) struct Team {
    pub(super) id: String,
    pub(super) leader_key: String,
    /// The team's members in the shared members.
    pub(super) members: Range<usize>,
    /// Seeds the leader's reaction times.
    pub(super) seed: u64,
}

/// How long (real time) the leader takes to acknowledge version `version`.
fn ack_delay(seed: u64, version: i64, speedup: f64) -> Duration {
    let u =
        (splitmix64(seed ^ (version as u64).wrapping_mul(0x2545_F491_4F6C_DD1D)) >> 11) as f64 / (1u64 << 53) as f64;
    let simulated_s = ACK_DELAY_S.start + u * (ACK_DELAY_S.end - ACK_DELAY_S.start);
    Duration::from_secs_f64(simulated_s / speedup.max(0.01))
}

/// What a leader's phone has done with the team's plans, across reconnections.
#[derive(Default)]
struct Leading {
    /// The version the members walk (0: the fixed route).
    taken: i64,
    /// A plan read but not yet acted on, and when the leader gets to it.
    due: Option<(tokio::time::Instant, PlanPush)>,
    /// Ids of `ack_route` messages.
    next_id: u64,
}

impl Leading {
    /// Whether `push` asks anything of the leader: a newer version to take, or the
    /// current one still pending (the socket dropped before its acknowledgement).
    fn wants(&self, push: &PlanPush, team: &str) -> bool {
        push.team_id == team
            && push.status != "superseded"
            && (push.version > self.taken || (push.version == self.taken && push.status == "pending"))
            && self.due.as_ref().is_none_or(|(_, d)| push.version > d.version)
    }
}

/// The patrol leader's phone of one team: keeps its live-feed socket open,
/// reconnecting with backoff, and acts on every new plan for the team. Never returns.
pub(super) async fn lead_team(client: reqwest::Client, args: Args, team: Team, members: Arc<Mutex<Field>>) {
    let mut leading = Leading::default();
    let mut backoff = Duration::from_secs(1);
    loop {
        let opened = Instant::now();
        match lead_session(&client, &args, &team, &members, &mut leading).await {
            Ok(()) => tracing::info!(team = %team.id, "leader's live feed closed; reconnecting"),
            Err(e) => {
                tracing::warn!(team = %team.id, error = %format!("{e:#}"), "leader's live feed failed; reconnecting")
            }
        }
        if opened.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_secs(1);
        }
        // Some jitter, so that 17 phones do not come back in step after a restart.
        let jitter_ms = splitmix64(team.seed ^ opened.elapsed().as_nanos() as u64) % 1000;
        tokio::time::sleep(backoff + Duration::from_millis(jitter_ms)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection of a leader's phone: catch up with the team's newest plan over
/// HTTP (a push may have come while the socket was down), then follow the feed.
async fn lead_session(
    client: &reqwest::Client,
    args: &Args,
    team: &Team,
    members: &Mutex<Field>,
    leading: &mut Leading,
) -> anyhow::Result<()> {
    let mut url = reqwest::Url::parse(&args.url).context("the server's URL")?;
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    url.set_scheme(scheme).map_err(|()| anyhow::anyhow!("cannot make a websocket URL of {}", args.url))?;
    url.set_path("/api/v1/live");
    // Route messages reach a leader whatever the kinds; positions are not needed here.
    url.query_pairs_mut().clear().append_pair("token", &team.leader_key).append_pair("kinds", "routes");
    let socket =
        crate::tls::connect_ws(url.as_str(), args.ca_cert.as_deref()).await.context("connecting to the live feed")?;
    let (mut tx, mut rx) = socket.split();
    catch_up(client, args, team, leading).await?;
    loop {
        let due_at = leading.due.as_ref().map(|(at, _)| *at);
        tokio::select! {
            msg = rx.next() => match msg {
                None | Some(Ok(Message::Close(_))) => return Ok(()),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Message::Text(text))) => {
                    if let Some(push) = parse_route_message(&text) {
                        if leading.wants(&push, &team.id) {
                            let at = tokio::time::Instant::now() + ack_delay(team.seed, push.version, args.speedup);
                            leading.due = Some((at, push));
                        }
                    } else {
                        on_other_message(&text, team, client, args, leading).await?;
                    }
                }
                // Pings are answered by the library.
                Some(Ok(_)) => {}
            },
            () = sleep_until(due_at) => {
                let Some((_, push)) = leading.due.take() else { continue };
                if push.status == "pending" {
                    leading.next_id += 1;
                    let ack = serde_json::json!({"type": "ack_route", "id": leading.next_id, "team_id": team.id, "version": push.version});
                    tx.send(Message::Text(ack.to_string().into())).await.context("acknowledging a plan")?;
                }
                if push.version > leading.taken {
                    take_plan(team, members, &push);
                    leading.taken = push.version;
                }
            }
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Feed messages other than a plan push: the server's answers to acknowledgements,
/// and a resync (the phone fell behind, and may have missed a push).
async fn on_other_message(
    text: &str,
    team: &Team,
    client: &reqwest::Client,
    args: &Args,
    leading: &mut Leading,
) -> anyhow::Result<()> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else { return Ok(()) };
    match v["type"].as_str() {
        Some("ack") => tracing::debug!(team = %team.id, version = %v["version"], "plan acknowledged"),
        Some("error") => {
            tracing::warn!(team = %team.id, field = %v["field"], reason = %v["reason"], "the server refused the leader's message")
        }
        Some("resync") => catch_up(client, args, team, leading).await?,
        _ => {}
    }
    Ok(())
}

/// Reads the team's newest plan version and schedules it if it asks anything of the
/// leader: a pending one after the human delay, an acknowledged one (from an earlier
/// run of the phone) at once.
async fn catch_up(client: &reqwest::Client, args: &Args, team: &Team, leading: &mut Leading) -> anyhow::Result<()> {
    let mut url = reqwest::Url::parse(&args.url).context("the server's URL")?;
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("{} cannot be a base URL", args.url))?
        .extend(["api", "v1", "teams", &team.id, "plans"]);
    let r = client.get(url).bearer_auth(&team.leader_key).send().await.context("reading the team's plans")?;
    anyhow::ensure!(r.status().is_success(), "reading the team's plans: {}", r.status());
    let body: serde_json::Value = r.json().await.context("reading the team's plans")?;
    let Some(push) = body["plans"].get(0).and_then(parse_plan_row) else { return Ok(()) };
    if leading.wants(&push, &team.id) {
        let delay =
            if push.status == "pending" { ack_delay(team.seed, push.version, args.speedup) } else { Duration::ZERO };
        leading.due = Some((tokio::time::Instant::now() + delay, push));
    }
    Ok(())
}

/// Moves the team's members onto the plan.
fn take_plan(team: &Team, field: &Mutex<Field>, push: &PlanPush) {
    let route = PlanRoute::of(push);
    {
        let mut field = field.lock().unwrap_or_else(|e| e.into_inner());
        // A member away on an incident takes the plan too: it walks onto the plan
        // when it comes back.
        for m in field.members.get_mut(team.members.clone()).into_iter().flatten() {
            m.take(&route);
        }
    }
    tracing::info!(
        team = %team.id,
        version = push.version,
        kind = %push.kind,
        length_m = route.track.length_m().round(),
        speed_mps = (route.speed_mps * 10.0).round() / 10.0,
        stops = route.stops.len(),
        "team takes a new plan"
    );
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn the_leader_takes_each_version_once_and_acknowledges_what_is_pending() {
        let at = |version: i64, status: &str| PlanPush { version, status: status.into(), ..push("plan", vec![]) };
        let mut leading = Leading { taken: 3, ..Leading::default() };
        let rows = [
            (at(4, "pending"), "team-1", true),
            (at(4, "acknowledged"), "team-1", true),
            (at(3, "pending"), "team-1", true),
            (at(3, "acknowledged"), "team-1", false),
            (at(2, "pending"), "team-1", false),
            (at(4, "superseded"), "team-1", false),
            (at(4, "pending"), "team-2", false),
        ];
        for (p, team, wanted) in &rows {
            assert_eq!(leading.wants(p, team), *wanted, "version {} {} for {team}", p.version, p.status);
        }
        leading.due = Some((tokio::time::Instant::now(), at(5, "pending")));
        assert!(!leading.wants(&at(5, "pending"), "team-1"), "already due");
        assert!(leading.wants(&at(6, "pending"), "team-1"), "a newer one replaces it");
    }

    #[test]
    fn the_leader_takes_5_to_20_simulated_seconds() {
        for version in 1..200 {
            let real_s = ack_delay(42, version, 10.0).as_secs_f64();
            assert!((0.5..=2.0).contains(&real_s), "version {version}: {real_s} s");
        }
        assert_ne!(ack_delay(42, 1, 1.0), ack_delay(42, 2, 1.0));
    }
}
