//! The demo simulator: moves every patrol team's members along their route and every
//! post officer around their post, reporting through the server's real OsmAnd
//! endpoint exactly as Traccar Client would (GET with query parameters, speed in knots).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use geo::{Distance, Haversine, Point};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Admin token, to register the simulated devices.
    #[arg(long, env = "LIANDONG_TOKEN")]
    pub token: String,
    /// Map directory with routes and posts.
    #[arg(long, default_value = "maps/dazhu")]
    pub maps: PathBuf,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 1.0)]
    pub speedup: f64,
    /// Seconds between two reports of one device (simulated time).
    #[arg(long, default_value_t = 5.0)]
    pub interval_s: f64,
}

/// Walking pace of a patrol, m/s.
const PATROL_SPEED_MPS: f64 = 1.4;
/// Spacing of members along the route, metres.
const MEMBER_SPACING_M: f64 = 25.0;
/// How far a post officer strays from the post, metres.
const OFFICER_RADIUS_M: f64 = 300.0;

/// A polyline with cumulative haversine lengths, walked as a loop.
struct Track {
    points: Vec<Point<f64>>,
    cumulative_m: Vec<f64>,
}

impl Track {
    fn new(points: Vec<Point<f64>>) -> Track {
        let mut cumulative_m = vec![0.0];
        for w in points.windows(2) {
            let last = *cumulative_m.last().unwrap_or(&0.0);
            cumulative_m.push(last + Haversine.distance(w[0], w[1]));
        }
        Track { points, cumulative_m }
    }

    fn length_m(&self) -> f64 {
        *self.cumulative_m.last().unwrap_or(&0.0)
    }

    /// Position and heading (degrees) at `d` metres along the loop.
    fn at(&self, d: f64) -> (Point<f64>, f64) {
        let len = self.length_m();
        if len <= 0.0 || self.points.len() < 2 {
            return (self.points[0], 0.0);
        }
        let d = d.rem_euclid(len);
        let i = self.cumulative_m.partition_point(|&c| c <= d).clamp(1, self.points.len() - 1);
        let (a, b) = (self.points[i - 1], self.points[i]);
        let seg = self.cumulative_m[i] - self.cumulative_m[i - 1];
        let f = if seg > 0.0 { (d - self.cumulative_m[i - 1]) / seg } else { 0.0 };
        let p = Point::new(a.x() + (b.x() - a.x()) * f, a.y() + (b.y() - a.y()) * f);
        let heading = (b.x() - a.x()).atan2(b.y() - a.y()).to_degrees().rem_euclid(360.0);
        (p, heading)
    }
}

enum Motion {
    Route { track: Arc<Track>, offset_m: f64 },
    Around { centre: Point<f64>, phase: f64 },
}

struct SimDevice {
    id: String,
    key: String,
    motion: Motion,
}

impl SimDevice {
    /// Position, speed (m/s) and heading at simulated second `t`.
    fn at(&self, t: f64) -> (Point<f64>, f64, f64) {
        match &self.motion {
            Motion::Route { track, offset_m } => {
                let (p, h) = track.at(offset_m + t * PATROL_SPEED_MPS);
                (p, PATROL_SPEED_MPS, h)
            }
            Motion::Around { centre, phase } => {
                // A slow circle around the post (one lap an hour), radius varying.
                let w = std::f64::consts::TAU / 3600.0;
                let a = phase + t * w;
                let r = OFFICER_RADIUS_M * (0.5 + 0.5 * (a * 3.0).sin().abs());
                let m_per_deg_lat = 111_195.0;
                let m_per_deg_lon = m_per_deg_lat * centre.y().to_radians().cos();
                let p = Point::new(centre.x() + r * a.cos() / m_per_deg_lon, centre.y() + r * a.sin() / m_per_deg_lat);
                (p, r * w, (a.to_degrees() + 90.0).rem_euclid(360.0))
            }
        }
    }
}

fn run_key() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{:x}{:x}", nanos, std::process::id())
}

async fn wait_ready(client: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{url}/healthz")).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            anyhow::bail!("server at {url} did not become healthy within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let map = liandong_server::maps::load_dir(&args.maps)?;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    wait_ready(&client, &args.url).await?;
    let suffix = run_key();
    let mut devices = Vec::new();
    let mut registrations = Vec::new();
    for route in &map.routes {
        let team = route.properties.get("team_id").and_then(|v| v.as_str()).unwrap_or(&route.id).to_owned();
        let members = route.properties.get("members").and_then(|v| v.as_u64()).unwrap_or(5).min(50);
        let track = Arc::new(Track::new(route.line.points().collect()));
        for m in 0..members {
            let id = format!("{team}-m{:02}", m + 1);
            let kind = if m == 0 { "patrol_leader" } else { "patrol_member" };
            registrations.push(serde_json::json!({"device_id": id, "name": format!("{} {}号", route.name, m + 1), "kind": kind, "unit_id": team, "key": format!("sim-{suffix}-{id}")}));
            devices.push(SimDevice {
                key: format!("sim-{suffix}-{id}"),
                id,
                motion: Motion::Route { track: track.clone(), offset_m: m as f64 * MEMBER_SPACING_M },
            });
        }
    }
    for (i, post) in map.posts.iter().enumerate() {
        let id = format!("{}-officer", post.id);
        registrations.push(serde_json::json!({"device_id": id, "name": format!("{}民警", post.name), "kind": "post_officer", "unit_id": post.id, "key": format!("sim-{suffix}-{id}")}));
        devices.push(SimDevice {
            key: format!("sim-{suffix}-{id}"),
            id,
            motion: Motion::Around { centre: post.point, phase: i as f64 },
        });
    }
    for body in &registrations {
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
    tracing::info!(
        devices = devices.len(),
        teams = map.routes.len(),
        posts = map.posts.len(),
        "simulator registered its devices"
    );

    let checkpoints = setup_checkpoints(&client, &args, &map, &suffix).await?;
    if !checkpoints.is_empty() {
        tokio::spawn(push_plate_reads(client.clone(), args.clone(), checkpoints));
    }

    let places: Vec<(f64, f64)> = map.posts.iter().map(|p| (p.point.x(), p.point.y())).collect();
    if !places.is_empty() {
        tokio::spawn(file_grid_reports(client.clone(), args.clone(), places));
    }

    let devices = Arc::new(devices);
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tick = Duration::from_secs_f64((args.interval_s / args.speedup.max(0.01)).max(0.05));
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let limit = Arc::new(tokio::sync::Semaphore::new(32));
    let mut last_log = Instant::now();
    loop {
        interval.tick().await;
        let t = started.elapsed().as_secs_f64() * args.speedup;
        let now_s =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        for i in 0..devices.len() {
            let permit = limit.clone().acquire_owned().await?;
            let (devices, client, url, sent, failed) =
                (devices.clone(), client.clone(), args.url.clone(), sent.clone(), failed.clone());
            tokio::spawn(async move {
                let d = &devices[i];
                let (p, speed_mps, heading) = d.at(t);
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

/// Plates the demo puts on the watch list (illustrative), with the reason shown.
const DEMO_WATCH: [(&str, &str); 3] = [
    ("川S·A1234", "被盗车辆 stolen vehicle"),
    ("川S·B5678", "涉案车辆 vehicle in a case"),
    ("川J·C9012", "套牌嫌疑 cloned plate"),
];

/// Gives the map's checkpoint cameras push keys and puts the demo plates on the watch
/// list, so that the camera side of the demo is alive too. Returns `(camera id, key)`.
async fn setup_checkpoints(
    client: &reqwest::Client,
    args: &Args,
    map: &liandong_core::CountyMap,
    suffix: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for cam in map.cameras.iter().filter(|c| c.kind.as_deref() == Some("checkpoint")).take(24) {
        let key = format!("sim-{suffix}-{}", cam.id);
        let body = serde_json::json!({"camera_id": cam.id, "name": cam.name, "kind": "checkpoint",
            "lon": cam.point.x(), "lat": cam.point.y(), "key": key});
        let r = client.post(format!("{}/api/v1/cameras", args.url)).bearer_auth(&args.token).json(&body).send().await?;
        anyhow::ensure!(r.status().is_success(), "registering camera {}: {}", cam.id, r.status());
        out.push((cam.id.clone(), key));
    }
    for (i, (plate, reason)) in DEMO_WATCH.iter().enumerate() {
        let body = serde_json::json!({"watch_id": format!("demo-{}", i + 1), "kind": "plate", "value": plate,
            "reason": reason, "priority": 1, "roles": ["operator", "patrol_leader"]});
        let r =
            client.post(format!("{}/api/v1/watchlist", args.url)).bearer_auth(&args.token).json(&body).send().await?;
        anyhow::ensure!(r.status().is_success(), "adding watch-list entry {plate}: {}", r.status());
    }
    tracing::info!(cameras = out.len(), watch_list = DEMO_WATCH.len(), "simulator set up checkpoint cameras");
    Ok(out)
}

/// Every few (simulated) seconds a checkpoint camera reads a plate and pushes it as a
/// Hikvision ISAPI ANPR alarm; about one read in eight is a watch-listed plate.
async fn push_plate_reads(client: reqwest::Client, args: Args, cameras: Vec<(String, String)>) {
    let mut state =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
    let mut rand = move || {
        // splitmix64
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut tick = tokio::time::interval(Duration::from_secs_f64((4.0 / args.speedup.max(0.01)).max(0.05)));
    loop {
        tick.tick().await;
        let (camera, key) = &cameras[(rand() % cameras.len() as u64) as usize];
        let plate = if rand() % 8 == 0 {
            DEMO_WATCH[(rand() % DEMO_WATCH.len() as u64) as usize].0.replace('·', "")
        } else {
            format!("川S{}{:04}", (b'A' + (rand() % 26) as u8) as char, rand() % 10_000)
        };
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<EventNotificationAlert version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">\n<channelID>1</channelID>\n<dateTime>{}</dateTime>\n<activePostCount>1</activePostCount>\n<eventType>ANPR</eventType>\n<eventState>active</eventState>\n<ANPR>\n<licensePlate>{plate}</licensePlate>\n<direction>forward</direction>\n<confidenceLevel>{}</confidenceLevel>\n<plateColor>blue</plateColor>\n<vehicleType>vehicle</vehicleType>\n</ANPR>\n</EventNotificationAlert>",
            rfc3339(now),
            85 + rand() % 15
        );
        let url = format!("{}/isapi/events?camera={camera}&key={key}", args.url);
        match client.post(url).header("content-type", "application/xml").body(xml).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(camera = %camera, status = %r.status(), "camera push refused"),
            Err(e) => tracing::warn!(camera = %camera, error = %e, "camera push not delivered"),
        }
    }
}

/// What grid members report in the demo (illustrative).
const DEMO_REPORTS: [(&str, &str); 6] = [
    ("dispute", "两户村民因宅基地边界发生争执，请求调解"),
    ("hazard", "村道边坡有落石，需设置警示"),
    ("suspicious", "陌生车辆连续两晚停在村小学附近"),
    ("traffic", "集镇路口三轮车占道，造成拥堵"),
    ("fire", "山林边缘有人焚烧秸秆，火势有扩大迹象"),
    ("other", "独居老人家中无人应门，请民警上门查看"),
];

/// About once a minute (simulated) a grid member files a report a few hundred metres
/// from a post, so that the review queue and the mediation centre have work in the demo.
async fn file_grid_reports(client: reqwest::Client, args: Args, places: Vec<(f64, f64)>) {
    let mut n: u64 = 0;
    let mut tick = tokio::time::interval(Duration::from_secs_f64((60.0 / args.speedup.max(0.01)).max(0.5)));
    tick.tick().await;
    loop {
        tick.tick().await;
        n += 1;
        let (lon, lat) = places[(n as usize * 7) % places.len()];
        let (category, text) = DEMO_REPORTS[(n as usize) % DEMO_REPORTS.len()];
        // A few hundred metres off the post, in a direction that turns with each report.
        let angle = n as f64 * 2.4;
        let body = serde_json::json!({"category": category, "text": text,
            "lon": lon + 0.004 * angle.cos(), "lat": lat + 0.003 * angle.sin()});
        match client.post(format!("{}/api/v1/reports", args.url)).bearer_auth(&args.token).json(&body).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(status = %r.status(), "grid report refused"),
            Err(e) => tracing::warn!(error = %e, "grid report not delivered"),
        }
    }
}

/// RFC 3339 in UTC for a Unix time in seconds (civil-from-days, Howard Hinnant's
/// algorithm), so the simulator needs no date library.
fn rfc3339(unix_s: u64) -> String {
    let days = (unix_s / 86_400) as i64;
    let secs = unix_s % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_750_000), "2026-11-27T03:26:40Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
