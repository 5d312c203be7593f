//! The demo's patrol cars with BeiDou terminals: a few vehicles circling police posts
//! that report over JT/T 808 to the demo's listener (not OsmAnd), so that the demo
//! exercises the terminals' path: registration as devices through the API, then
//! registration, authentication and location reports over TCP.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use geo::Point;
use liandong_ingest::jt808::{AnswerResult, Location, Version, STATUS_LOCATED};

use super::fleet::around;
use super::Args;
use crate::jt808_terminal::Terminal;

/// Patrol cars at most: one for each of the first posts.
const CARS: usize = 3;

/// A patrol car: its terminal's phone number and the post it circles.
struct Car {
    phone: String,
    post_id: String,
    centre: Point<f64>,
}

/// Registers the cars as devices (`jt808-<phone>`) and drives each until the simulator
/// stops, reconnecting after a lost connection. A car that cannot be registered is
/// logged and left out of the demo.
pub(super) async fn drive_cars(
    client: reqwest::Client,
    args: Args,
    posts: Vec<(String, Point<f64>)>,
    addr: SocketAddr,
) {
    if let Err(e) = register_and_drive(client, args, posts, addr).await {
        tracing::warn!(error = %format!("{e:#}"), "patrol cars stopped");
    }
}

async fn register_and_drive(
    client: reqwest::Client,
    args: Args,
    posts: Vec<(String, Point<f64>)>,
    addr: SocketAddr,
) -> anyhow::Result<()> {
    let cars: Vec<Car> = posts
        .into_iter()
        .take(CARS)
        .enumerate()
        .map(|(i, (post_id, centre))| Car { phone: format!("1390000{:04}", i + 1), post_id, centre })
        .collect();
    for (i, car) in cars.iter().enumerate() {
        let body = serde_json::json!({
            "device_id": format!("jt808-{}", car.phone), "name": format!("巡逻车 {}", i + 1),
            "kind": "vehicle", "unit_id": car.post_id,
        });
        let r = client
            .post(format!("{}/api/v1/devices", args.url))
            .bearer_auth(&args.token)
            .json(&body)
            .send()
            .await
            .context("registering a patrol car")?;
        anyhow::ensure!(r.status().is_success(), "registering patrol car {}: {}", car.phone, r.status());
    }
    tracing::info!(cars = cars.len(), %addr, "patrol cars report over JT/T 808");
    let mut tasks = tokio::task::JoinSet::new();
    for (i, car) in cars.into_iter().enumerate() {
        tasks.spawn(drive(car, i as f64 * 2.1, addr, args.clone()));
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// One car: signs in and reports every `interval_s` (simulated), reconnecting 5 s after
/// any failure.
async fn drive(car: Car, phase: f64, addr: SocketAddr, args: Args) {
    let started = Instant::now();
    let tick = Duration::from_secs_f64((args.interval_s / args.speedup.max(0.01)).max(0.05));
    loop {
        if let Err(e) = report_until_error(&car, phase, addr, &args, started, tick).await {
            tracing::warn!(car = %car.phone, error = %format!("{e:#}"), "patrol car's terminal reconnects");
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

async fn report_until_error(
    car: &Car,
    phase: f64,
    addr: SocketAddr,
    args: &Args,
    started: Instant,
    tick: Duration,
) -> anyhow::Result<()> {
    let mut terminal = Terminal::connect(addr, &car.phone, Version::V2019 { protocol: 1 }).await?;
    terminal.sign_in().await?;
    let mut every = tokio::time::interval(tick);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        every.tick().await;
        // Cars go round their post three times as fast as the officers on foot.
        let t = started.elapsed().as_secs_f64() * args.speedup * 3.0;
        let (p, speed_mps, heading) = around(car.centre, phase, t);
        let mut l = Location {
            status: STATUS_LOCATED,
            speed_dkmh: (speed_mps * 3.0 * 36.0).round() as u16,
            direction_deg: heading.round() as u16 % 360,
            altitude_m: 350,
            ..Location::default()
        };
        l.set_lon_lat(p.x(), p.y());
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
        l.set_time_ms(now_ms);
        let result = terminal.report(&l).await?;
        if result != AnswerResult::Ok {
            tracing::warn!(car = %car.phone, ?result, "patrol car's report refused");
        }
    }
}
