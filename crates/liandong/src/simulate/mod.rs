//! The demo simulator: moves every patrol team's members along their route and every
//! post officer around their post, reporting through the server's real OsmAnd
//! endpoint exactly as Traccar Client would (GET with query parameters, speed in knots).
//!
//! Each team's patrol leader's phone is simulated too: it holds the live feed open with
//! the leader device's key, and when the server pushes a new version of the team's
//! route plan (a re-plan, a diversion to a serious alert, an operator's manual plan)
//! it acknowledges it after a human delay with `ack_route`, and the team's members
//! walk onto the new line from where they are. A diversion is walked once; then the
//! members go back to the track they left.
//!
//! The command centre's side of the demo, incidents opened, dispatched and closed, and
//! watch-list alerts acknowledged, is in [`incidents`]; the units it sends leave their
//! patrol or post for the incident and come back.
//!
//! The parts, each file importing only the files listed after it:
//!
//! - this file: the entry point, [`run`], which creates the demo's people and their duty
//!   roster, enlists and
//!   registers the devices (each bound to its person), starts the other parts and
//!   reports every unit's position each tick;
//! - [`people`]: everyone the seed counts (teams, posts, grids, mediators, the command
//!   centre), created through the people API; [`duty`]: today's and tomorrow's duty
//!   roster for them;
//! - [`signin`]: the demo's people signing in (the duty operator with the demo
//!   password, grid members' phones with one-time codes), their sessions kept and renewed;
//! - [`leaders`]: the patrol leaders' phones on the live feed, taking the team's plans;
//! - [`incidents`]: the duty operator's desk, opening and dispatching incidents, with
//!   [`places`] (where incidents happen) and [`cases`] (what they are about);
//! - [`joint`]: the posts and the judicial office working together: walk-in disputes,
//!   after-hours business, a mediator taking cases through their steps, home visits
//!   (it sends the post officers' phones through [`incidents`]' claims);
//! - [`cameras`]: checkpoint cameras pushing plate reads and the watch list they hit;
//!   [`grid_reports`]: grid members filing reports;
//! - [`parking`]: parking cameras pushing captures of parked cars (no-parking alerts);
//! - [`fleet`]: the units and where they are; [`drive`]: a unit's way to an incident
//!   and back; [`plan`]: a pushed plan made walkable;
//! - [`walk`] and [`track`]: progress along a line, and the line;
//! - [`support`] and [`options`]: the shared generator, times and HTTP waits, and the
//!   command line.

mod cameras;
mod cars;
mod cases;
mod drive;
mod duty;
pub(crate) mod fleet;
mod grid_reports;
mod incidents;
mod joint;
mod leaders;
mod options;
mod parking;
pub(crate) mod people;
mod places;
mod plan;
mod signin;
pub(crate) mod support;
#[cfg(test)]
mod test_support;
pub(crate) mod track;
pub(crate) mod walk;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use liandong_core::CountyMap;

use fleet::{around, Field, Member, Motion, SimDevice};
use leaders::Team;
use support::{run_seed, splitmix64, wait_ready};
use track::Track;
use walk::{End, Walk, PATROL_SPEED_MPS};

pub use options::Args;
pub(crate) use support::rfc3339;

/// Spacing of members along the route, metres. A team walks together: a 14-member
/// team spans about 100 m, inside the 150 m corridor of the plan rules, so a new plan
/// or a diversion that starts where one member is does not leave the others "off
/// route" merely for being at the tail of a long file.
const MEMBER_SPACING_M: f64 = 8.0;

fn run_key() -> String {
    format!("{:x}{:x}", run_seed(), std::process::id())
}

/// The simulated devices, the patrol members among them, the teams their leaders lead,
/// and the registration of each device with the server.
struct Enlisted {
    devices: Vec<SimDevice>,
    members: Vec<Member>,
    teams: Vec<Team>,
    registrations: Vec<serde_json::Value>,
}

/// Every route's team, its members spaced along the route, and every post's officer,
/// with keys unique to this run (`suffix`), each device bound to the demo person who
/// carries it.
fn enlist(map: &CountyMap, suffix: &str) -> Enlisted {
    let mut devices = Vec::new();
    let mut members = Vec::new();
    let mut teams = Vec::new();
    let mut registrations = Vec::new();
    for (n, route) in map.routes.iter().enumerate() {
        let team = people::route_team(route).to_owned();
        let count = people::team_size(route);
        let track = Arc::new(Track::new(route.line.points().collect()));
        let end = if track.is_closed() { End::Wrap } else { End::Reverse };
        let first = members.len();
        for m in 0..count {
            let id = format!("{team}-m{:02}", m + 1);
            // The first member carries the leader's phone, which takes the team's plans.
            let kind = if m == 0 { "patrol_leader" } else { "patrol_member" };
            registrations.push(serde_json::json!({"device_id": id, "name": format!("{} {}号", route.name, m + 1), "kind": kind, "unit_id": team, "key": format!("sim-{suffix}-{id}"), "person_id": people::team_member_id(&team, m + 1)}));
            let walk = Walk::new(track.clone(), Arc::from([]), end, PATROL_SPEED_MPS)
                .starting_at((m as f64 * MEMBER_SPACING_M).rem_euclid(track.length_m().max(1.0)));
            devices.push(SimDevice { key: format!("sim-{suffix}-{id}"), id, motion: Motion::Patrol(members.len()) });
            members.push(Member::on(walk));
        }
        teams.push(Team {
            leader_key: format!("sim-{suffix}-{team}-m01"),
            id: team,
            members: first..members.len(),
            seed: splitmix64(n as u64 + 1),
        });
    }
    for (i, post) in map.posts.iter().enumerate() {
        let id = format!("{}-officer", post.id);
        registrations.push(serde_json::json!({"device_id": id, "name": format!("{}民警", post.name), "kind": "post_officer", "unit_id": post.id, "key": format!("sim-{suffix}-{id}"), "person_id": people::post_phone_person(&post.id)}));
        devices.push(SimDevice {
            key: format!("sim-{suffix}-{id}"),
            id,
            motion: Motion::Around { centre: post.point, phase: i as f64 },
        });
    }
    Enlisted { devices, members, teams, registrations }
}

/// Registers every simulated device with the server, with the admin token.
async fn register(client: &reqwest::Client, args: &Args, registrations: &[serde_json::Value]) -> anyhow::Result<()> {
    for body in registrations {
        let r = client
            .post(format!("{}/api/v1/devices", args.url))
            .bearer_auth(&args.token)
            .json(body)
            .send()
            .await
            .context("registering a simulated device")?;
        if !r.status().is_success() {
            anyhow::bail!(
                "registering {} failed: {} {}",
                body["device_id"],
                r.status(),
                r.text().await.unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// Each village grid's member and a point inside the grid to report from.
fn grid_members(map: &CountyMap) -> Vec<grid_reports::GridMember> {
    use geo::InteriorPoint;
    map.grids
        .iter()
        .filter_map(|g| {
            let p = g.polygon.interior_point()?;
            Some(grid_reports::GridMember { person_id: people::grid_member_id(&g.id), place: (p.x(), p.y()) })
        })
        .collect()
}

/// The duty operator: the demo's command-centre people get the published demo password,
/// and the operator on duty now by the roster (else the first operator) signs in with
/// it. When that fails (a server that refuses it), the operator token, else the admin
/// token, with a warning: the demo runs on.
async fn duty_operator(client: &reqwest::Client, args: &Args, roster: &[people::DemoPerson]) -> signin::Caller {
    let fallback = args.operator_token.clone().filter(|t| !t.is_empty()).unwrap_or_else(|| args.token.clone());
    let desk: Vec<String> =
        roster.iter().filter(|p| p.unit_kind == "command_centre").map(|p| p.person_id.clone()).collect();
    if let Err(e) = signin::set_passwords(client, &args.url, &args.token, &desk, signin::DEMO_PASSWORD).await {
        tracing::warn!(error = %format!("{e:#}"), "the demo password was not set; the operator acts with a token");
        return signin::Caller::Token(fallback);
    }
    let duty = match client.get(format!("{}/api/v1/duty", args.url)).bearer_auth(&args.token).send().await {
        Ok(r) if r.status().is_success() => r.json::<serde_json::Value>().await.unwrap_or_default(),
        _ => serde_json::Value::Null,
    };
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    let person = signin::operator_on_duty(&duty, now_ms).unwrap_or_else(|| people::operator_id(1));
    let session = signin::Session::with_password(
        client.clone(),
        args.url.clone(),
        person,
        "operator",
        signin::DEMO_PASSWORD.to_owned(),
    );
    match session.token().await {
        Ok(_) => {
            tracing::info!(person = %session.person_id(), "the duty operator is signed in");
            signin::Caller::Person(session)
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "the duty operator could not sign in; acting with a token");
            signin::Caller::Token(fallback)
        }
    }
}

/// The judicial office's mediator at the desk: the demo's mediators get the published
/// demo password (so that a visitor can sign in at the desk, `web/desk.html`), and the
/// first signs in with it. When that fails, the admin token, with a warning: the office
/// then does what an administrator may.
async fn desk_mediator(client: &reqwest::Client, args: &Args, roster: &[people::DemoPerson]) -> signin::Caller {
    let mediators: Vec<String> =
        roster.iter().filter(|p| p.unit_kind == "judicial_office").map(|p| p.person_id.clone()).collect();
    let Some(first) = mediators.first().cloned() else { return signin::Caller::Token(args.token.clone()) };
    if let Err(e) = signin::set_passwords(client, &args.url, &args.token, &mediators, signin::DEMO_PASSWORD).await {
        tracing::warn!(error = %format!("{e:#}"), "the mediators' demo password was not set; the office acts with the admin token");
        return signin::Caller::Token(args.token.clone());
    }
    let session = signin::Session::with_password(
        client.clone(),
        args.url.clone(),
        first,
        "partner",
        signin::DEMO_PASSWORD.to_owned(),
    );
    match session.token().await {
        Ok(_) => signin::Caller::Person(session),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "the mediator could not sign in; the office acts with the admin token");
            signin::Caller::Token(args.token.clone())
        }
    }
}

/// Every post with its duty officer and the officer's phone (its index among `devices`).
fn joint_posts(map: &CountyMap, devices: &[SimDevice]) -> Vec<joint::Post> {
    map.posts
        .iter()
        .map(|post| {
            let phone_id = format!("{}-officer", post.id);
            joint::Post {
                id: post.id.clone(),
                point: post.point,
                officer: people::post_phone_person(&post.id),
                phone: devices.iter().position(|d| d.id == phone_id),
            }
        })
        .collect()
}

/// Runs the simulator against the server at `args.url`: answers an error if setting up
/// fails, else runs until its task is dropped (the background parts with it).
pub async fn run(args: Args) -> anyhow::Result<()> {
    let map = liandong_server::maps::load_dir(&args.maps)?;
    if args.url.starts_with("https://") {
        // Fails early, with the reason, when no CA is given or it does not load.
        crate::tls::client_config(args.ca_cert.as_deref())?;
    }
    let client =
        crate::tls::http_client(reqwest::Client::builder().timeout(Duration::from_secs(30)), args.ca_cert.as_deref())?;
    wait_ready(&client, &args.url).await?;
    let suffix = run_key();
    // The people first: a device is bound only to a person who exists.
    let roster = people::roster(&map);
    let done = people::create_people(&client, &args, &roster).await?;
    tracing::info!(people = roster.len(), created = done.created, existing = done.existing, "simulator has its people");
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    // The demo runs on without a roster: it is what the wall's duty panel shows and whom
    // escalations reach, not what moves the units.
    if let Err(e) = duty::set_roster(&client, &args, &map, now_ms).await {
        tracing::warn!(error = %format!("{e:#}"), "the demo's duty roster was not set");
    }
    let Enlisted { devices, members, teams, registrations } = enlist(&map, &suffix);
    register(&client, &args, &registrations).await?;
    tracing::info!(
        devices = devices.len(),
        teams = map.routes.len(),
        posts = map.posts.len(),
        "simulator registered its devices"
    );

    // Every background task lives in this set: when the simulator stops (the demo
    // aborts it), dropping the set stops them all.
    let mut background = tokio::task::JoinSet::new();
    let positions = devices
        .iter()
        .map(|d| match &d.motion {
            Motion::Patrol(i) => members[*i].position().0,
            Motion::Around { centre, phase } => around(*centre, *phase, 0.0).0,
        })
        .collect();
    let field = Arc::new(Mutex::new(Field { members, errands: HashMap::new(), positions, busy: HashSet::new() }));
    for team in teams {
        background.spawn(leaders::lead_team(client.clone(), args.clone(), team, field.clone()));
    }

    let (alerts_tx, alerts_rx) = tokio::sync::mpsc::channel(64);
    let checkpoints = cameras::setup_checkpoints(&client, &args, &map, &suffix).await?;
    if !checkpoints.is_empty() {
        let (talking, falling_silent) = cameras::heartbeat_plan(&checkpoints);
        background.spawn(cameras::send_heartbeats(client.clone(), args.clone(), talking, falling_silent.clone()));
        // The cameras that fall silent push no plate reads either: a read is a push too.
        let reading: Vec<cameras::Checkpoint> =
            checkpoints.into_iter().filter(|c| !falling_silent.iter().any(|(id, _)| *id == c.id)).collect();
        background.spawn(cameras::push_plate_reads(client.clone(), args.clone(), reading, alerts_tx));
    }
    let parking_cameras = parking::setup(&client, &args, &map, &suffix).await?;
    if !parking_cameras.is_empty() {
        background.spawn(parking::push_captures(client.clone(), args.clone(), parking_cameras));
    }

    let grid_members = grid_members(&map);
    if !grid_members.is_empty() {
        background.spawn(grid_reports::file_grid_reports(client.clone(), args.clone(), grid_members));
    }

    if let Some(addr) = args.jt808 {
        let posts = map.posts.iter().map(|p| (p.id.clone(), p.point)).collect();
        background.spawn(cars::drive_cars(client.clone(), args.clone(), posts, addr));
    }

    let devices = Arc::new(devices);
    let tick = Duration::from_secs_f64((args.interval_s / args.speedup.max(0.01)).max(0.05));
    // The road graph the units drive on to incidents; a few hundred milliseconds to
    // build for a county, off the runtime's threads.
    let roads = {
        let roads = map.roads.clone();
        let speeds = liandong_core::road::RoadSpeeds::default();
        tokio::task::spawn_blocking(move || liandong_core::road::RoadGraph::from_roads(&roads, &speeds))
            .await
            .ok()
            .filter(|g| g.edge_count() > 0)
            .map(Arc::new)
    };
    let operator = duty_operator(&client, &args, &roster).await;
    let desk = incidents::Desk {
        client: client.clone(),
        url: args.url.clone(),
        operator,
        speedup: args.speedup,
        tick,
        field: field.clone(),
        devices: devices.clone(),
        roads,
        places: places::Places::of(&map),
        reviewing: tokio::sync::Mutex::new(()),
    };
    let desk = Arc::new(desk);
    let seed = splitmix64(run_seed());
    background.spawn(incidents::run_desk(desk.clone(), alerts_rx, seed));
    let mediator = desk_mediator(&client, &args, &roster).await;
    let joint = joint::Joint::new(desk.clone(), args.token.clone(), mediator, joint_posts(&map, &devices));
    background.spawn(joint::run_joint(Arc::new(joint), splitmix64(seed)));
    report_positions(&client, &args, &field, devices, tick).await
}

/// Every `tick`, moves every unit on by the simulated time since the last tick and
/// reports its position through the OsmAnd endpoint, as Traccar Client would. Returns
/// only if the runtime is shutting down.
async fn report_positions(
    client: &reqwest::Client,
    args: &Args,
    field: &Mutex<Field>,
    devices: Arc<Vec<SimDevice>>,
    tick: Duration,
) -> anyhow::Result<()> {
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let limit = Arc::new(tokio::sync::Semaphore::new(32));
    let mut reports = tokio::task::JoinSet::new();
    let mut last_log = Instant::now();
    let mut last_t = 0.0;
    loop {
        interval.tick().await;
        while reports.try_join_next().is_some() {}
        let t = started.elapsed().as_secs_f64() * args.speedup;
        let now_s =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        // Units move on by the simulated time since the last tick (ticks may be
        // skipped when the runtime is busy); the lock is never held across an await.
        let fixes = field.lock().unwrap_or_else(|e| e.into_inner()).advance(&devices, t, t - last_t);
        last_t = t;
        for (i, (p, speed_mps, heading)) in fixes.into_iter().enumerate() {
            let permit = limit.clone().acquire_owned().await?;
            let (devices, client, url, sent, failed) =
                (devices.clone(), client.clone(), args.url.clone(), sent.clone(), failed.clone());
            reports.spawn(async move {
                let d = &devices[i];
                let url = format!(
                    "{url}/osmand?id={}&timestamp={now_s}&lat={:.6}&lon={:.6}&speed={:.1}&bearing={:.0}&altitude=350&accuracy=8&batt=80&key={}",
                    d.id,
                    p.y(),
                    p.x(),
                    speed_mps / 0.514_444,
                    heading,
                    d.key
                );
                match client.get(url).send().await {
                    Ok(r) if r.status().is_success() => sent.fetch_add(1, Relaxed),
                    Ok(r) => {
                        tracing::warn!(device = %d.id, status = %r.status(), "report refused");
                        failed.fetch_add(1, Relaxed)
                    }
                    Err(e) => {
                        tracing::warn!(device = %d.id, error = %e, "report not delivered");
                        failed.fetch_add(1, Relaxed)
                    }
                };
                drop(permit);
            });
        }
        if last_log.elapsed() > Duration::from_secs(60) {
            tracing::info!(acknowledged = sent.load(Relaxed), failed = failed.load(Relaxed), "simulator progress");
            last_log = Instant::now();
        }
    }
}
