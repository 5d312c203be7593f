//! `liandong bench history`: a year of the demo county written straight into a store,
//! and the history questions asked of a server started on it.
//!
//! - `generate` writes the year: the demo's units (the patrol teams' members walking
//!   their team's route, each post's officer around the post, the patrol cars driving
//!   roads) reporting during their duty hours, the checkpoint cameras' plate reads and the
//!   watch-list alerts some of them raise, plus the devices, cameras and each device's
//!   live state, so that a server started on the store carries on from them. Rows are
//!   shaped as the sequencer writes them (enrichment from the map's own enricher, camera
//!   events decoded from Hikvision XML by the real decoder) and numbered in time order
//!   from the store's `max_seq` up, every number once across the tables. SQLite takes
//!   them through the group commit's own path (`begin_write` / `commit`, a day a batch);
//!   PostgreSQL through `COPY` (liandong-store's `bulk`) into the months made for the
//!   year first.
//! - `queries` asks a running server the four history questions of issue 18 through the
//!   HTTP API the wall map uses, at random moments, units, boxes and townships of the
//!   year, one request at a time: p50 and p99 of each.
//! - `retention` times the pruning of the year's oldest month while the caller runs an
//!   ingest load: the store's retention call alone, with what is older than the cutoff
//!   read before and after it (on PostgreSQL from the catalogue's row estimates and the
//!   small default partitions, never a count of a month beside the load), and per
//!   table the months dropped and those left busy.
//!
//! Everything random comes from the simulator's fixed-seed generator: one seed, one year.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use geo::Point;
use liandong_core::{CountyMap, Enricher, Position};
use liandong_store::{AlertRow, Batch, CameraEventRow, CameraRecord, DeviceRecord, DeviceStateRow, PositionRow, Store};

use crate::simulate::fleet::around;
use crate::simulate::people::{route_team, team_size};
use crate::simulate::support::{splitmix64, Rng};
use crate::simulate::track::Track;
use crate::simulate::walk::PATROL_SPEED_MPS;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Write a year (or `--days`) of the demo county into a store: positions, camera
    /// reads, alerts, devices, cameras and live state.
    Generate(GenerateArgs),
    /// Ask a server started on a generated store the four history questions: p50/p99.
    Queries(QueriesArgs),
    /// Prune the oldest month of positions and camera events (time it; run an ingest
    /// load meanwhile); prints, per table, the months dropped and left busy.
    Retention(RetentionArgs),
}

pub async fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Generate(args) => generate(args).await.map(|_| ()),
        Command::Queries(args) => queries(args).await.map(|_| ()),
        Command::Retention(args) => retention(args).await,
    }
}

/// Where to write or read: the embedded store's data directory or a PostgreSQL URL.
#[derive(clap::Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct StoreArgs {
    /// The embedded store's data directory (created when missing).
    #[arg(long)]
    pub sqlite: Option<PathBuf>,
    /// A PostgreSQL + PostGIS database (migrated on connecting).
    #[arg(long)]
    pub pg_url: Option<String>,
}

impl StoreArgs {
    async fn open(&self) -> anyhow::Result<Store> {
        Ok(match (&self.sqlite, &self.pg_url) {
            (Some(dir), _) => {
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
                Store::open(dir, liandong_store::Durability::Full).await?
            }
            (None, Some(url)) => Store::connect(url).await?,
            (None, None) => anyhow::bail!("give --sqlite DIR or --pg-url URL"),
        })
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Positions to write in all (about: each unit reports at the interval that gives
    /// this many over its duty hours).
    #[arg(long, default_value_t = 1_000_000)]
    pub positions: u64,
    /// Days of history, ending at `--end-ms`.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    #[arg(long, default_value_t = 18)]
    pub seed: u64,
    /// The end of the history, Unix ms (default: the start of the current hour).
    #[arg(long)]
    pub end_ms: Option<i64>,
    /// The map directory whose units, routes and cameras are generated.
    #[arg(long, default_value = "maps/dazhu")]
    pub maps: PathBuf,
    /// Plate reads of all checkpoint cameras together per day (the demo's rate: one
    /// every 4 s).
    #[arg(long, default_value_t = 21_600)]
    pub plate_reads_per_day: u32,
    /// Watch-list alerts per day (each raised by one of the day's plate reads).
    #[arg(long, default_value_t = 24)]
    pub alerts_per_day: u32,
}

/// What a generation wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generated {
    pub positions: u64,
    pub camera_events: u64,
    pub alerts: u64,
    pub first_seq: i64,
    pub last_seq: i64,
    pub from_ms: i64,
    pub to_ms: i64,
}

const DAY_MS: i64 = 86_400_000;
/// China Standard Time: duty hours are local.
const LOCAL_OFFSET_MS: i64 = 8 * 3_600_000;
/// Duty hours of a volunteer patrol team, minutes after local midnight.
const PATROL_SHIFTS: &[(i64, i64)] =
    &[(8 * 60, 11 * 60 + 30), (14 * 60 + 30, 17 * 60 + 30), (19 * 60 + 30, 21 * 60 + 30)];
/// A post officer's duty day.
const POST_SHIFTS: &[(i64, i64)] = &[(8 * 60, 20 * 60)];
/// A patrol car's two crews.
const CAR_SHIFTS: &[(i64, i64)] = &[(7 * 60, 23 * 60)];
/// Share of days a unit is off duty.
const DAY_OFF: f64 = 0.08;
/// A patrol car's speed along its road.
const CAR_SPEED_MPS: f64 = 11.0;
/// The demo's patrol cars (as `simulate::cars` registers them).
const CARS: usize = 3;
/// Plates the demo watches (as `simulate::cameras` lists them), normalised.
const WATCHED: [(&str, &str, &str); 3] = [
    ("demo-1", "川SA1234", "被盗车辆 stolen vehicle"),
    ("demo-2", "川SB5678", "涉案车辆 vehicle in a case"),
    ("demo-3", "川JC9012", "套牌嫌疑 cloned plate"),
];
/// Distinct ordinary plates the cameras read (so that plates recur, as they do).
const PLATE_POOL: u64 = 40_000;

/// How a unit moves while on duty.
enum Motion {
    /// Along a line at a steady speed from `start_m`: round and round a closed one, out
    /// and back on an open one.
    Line { track: Arc<Track>, closed: bool, start_m: f64, speed_mps: f64 },
    /// Around a post, as the simulator's post officers.
    Around { centre: Point<f64>, phase: f64 },
}

/// One of the demo's reporting units.
struct Unit {
    id: String,
    name: String,
    kind: &'static str,
    unit_id: String,
    motion: Motion,
    shifts: &'static [(i64, i64)],
}

impl Unit {
    /// Position, speed (m/s) and heading at `t_s` seconds after the history's start.
    fn at(&self, t_s: f64) -> (Point<f64>, f64, f64) {
        match &self.motion {
            Motion::Line { track, closed, start_m, speed_mps } => {
                let len = track.length_m().max(1.0);
                let d = start_m + speed_mps * t_s;
                if *closed {
                    let (p, h) = track.at(d.rem_euclid(len));
                    (p, *speed_mps, h)
                } else {
                    let m = d.rem_euclid(2.0 * len);
                    if m <= len {
                        let (p, h) = track.at(m);
                        (p, *speed_mps, h)
                    } else {
                        let (p, h) = track.at(2.0 * len - m);
                        (p, *speed_mps, (h + 180.0).rem_euclid(360.0))
                    }
                }
            }
            Motion::Around { centre, phase } => around(*centre, *phase, t_s),
        }
    }

    fn duty_minutes(&self) -> i64 {
        self.shifts.iter().map(|(a, b)| b - a).sum()
    }
}

/// The demo's units on `map`: every route's team (as the simulator enlists them, the
/// same device ids), every post's officer and the patrol cars on the longest roads.
fn units(map: &CountyMap) -> Vec<Unit> {
    let mut out = Vec::new();
    for route in &map.routes {
        let team = route_team(route).to_owned();
        let track = Arc::new(Track::new(route.line.points().collect()));
        let closed = track.is_closed();
        for m in 0..team_size(route) {
            out.push(Unit {
                id: format!("{team}-m{:02}", m + 1),
                name: format!("{} {}号", route.name, m + 1),
                kind: if m == 0 { "patrol_leader" } else { "patrol_member" },
                unit_id: team.clone(),
                motion: Motion::Line {
                    track: track.clone(),
                    closed,
                    start_m: m as f64 * 8.0,
                    speed_mps: PATROL_SPEED_MPS,
                },
                shifts: PATROL_SHIFTS,
            });
        }
    }
    for (i, post) in map.posts.iter().enumerate() {
        out.push(Unit {
            id: format!("{}-officer", post.id),
            name: format!("{}民警", post.name),
            kind: "post_officer",
            unit_id: post.id.clone(),
            motion: Motion::Around { centre: post.point, phase: i as f64 },
            shifts: POST_SHIFTS,
        });
    }
    let mut roads: Vec<Arc<Track>> =
        map.roads.iter().map(|r| Arc::new(Track::new(r.line.points().collect()))).collect();
    roads.sort_by(|a, b| b.length_m().total_cmp(&a.length_m()));
    for (i, (road, post)) in roads.into_iter().zip(&map.posts).take(CARS).enumerate() {
        out.push(Unit {
            id: format!("jt808-1390000{:04}", i + 1),
            name: format!("巡逻车 {}", i + 1),
            kind: "vehicle",
            unit_id: post.id.clone(),
            motion: Motion::Line { closed: road.is_closed(), track: road, start_m: 0.0, speed_mps: CAR_SPEED_MPS },
            shifts: CAR_SHIFTS,
        });
    }
    out
}

/// The checkpoint cameras the demo pushes plate reads from.
fn checkpoints(map: &CountyMap) -> Vec<&liandong_core::map::Site> {
    map.cameras.iter().filter(|c| c.kind.as_deref() == Some("checkpoint")).take(24).collect()
}

/// One day's rows before numbering.
enum Event {
    Fix(PositionRow),
    /// A plate read, and the watch-list entry it hits (an alert numbered right after it).
    Read {
        row: CameraEventRow,
        camera: usize,
        hit: Option<usize>,
    },
}

impl Event {
    fn time_ms(&self) -> i64 {
        match self {
            Event::Fix(r) => r.fix_ms,
            Event::Read { row, .. } => row.time_ms,
        }
    }
}

/// One day's rows, numbered.
#[derive(Default)]
struct Day {
    positions: Vec<PositionRow>,
    camera_events: Vec<CameraEventRow>,
    alerts: Vec<AlertRow>,
}

/// Everything a day's generation reads.
struct Year {
    units: Vec<Unit>,
    cameras: Vec<liandong_core::map::Site>,
    enricher: Enricher,
    from_ms: i64,
    to_ms: i64,
    interval_s: f64,
    plate_reads_per_day: u32,
    alerts_per_day: u32,
    seed: u64,
}

impl Year {
    /// The rows of local day `d` (0: the day the history starts in) that fall inside
    /// the history, numbered from `next_seq`.
    fn day(&self, d: i64, next_seq: &mut i64) -> Day {
        let first_midnight = (self.from_ms + LOCAL_OFFSET_MS).div_euclid(DAY_MS) * DAY_MS - LOCAL_OFFSET_MS;
        let midnight_ms = first_midnight + d * DAY_MS;
        let inside = |t: i64| (self.from_ms..self.to_ms).contains(&t);
        let mut events = Vec::new();
        for (u, unit) in self.units.iter().enumerate() {
            let mut rng = Rng::new(mix(self.seed, d as u64, u as u64 + 1));
            if rng.unit() < DAY_OFF {
                continue;
            }
            for &(start_min, end_min) in unit.shifts {
                let start = midnight_ms + (start_min + rng.range(-10.0..10.0) as i64) * 60_000;
                let end = midnight_ms + (end_min + rng.range(-10.0..10.0) as i64) * 60_000;
                let mut t = start + (rng.unit() * self.interval_s * 1000.0) as i64;
                while t < end {
                    if inside(t) {
                        let battery = 100.0 - 60.0 * (t - start) as f64 / (end - start).max(1) as f64;
                        events.push(Event::Fix(self.fix(unit, t, battery, &mut rng)));
                    }
                    t += (self.interval_s * 1000.0 * rng.range(0.8..1.2)) as i64;
                }
            }
        }
        self.reads(d, midnight_ms, &mut events);
        events.retain(|e| inside(e.time_ms()));
        events.sort_by_key(|e| (e.time_ms(), matches!(e, Event::Read { .. })));
        let mut day = Day::default();
        for e in events {
            match e {
                Event::Fix(mut row) => {
                    row.seq = *next_seq;
                    *next_seq += 1;
                    day.positions.push(row);
                }
                Event::Read { mut row, camera, hit } => {
                    row.seq = *next_seq;
                    *next_seq += 1;
                    if let Some(w) = hit {
                        day.alerts.push(self.alert(&row, camera, w, *next_seq));
                        *next_seq += 1;
                    }
                    day.camera_events.push(row);
                }
            }
        }
        day
    }

    /// A unit's fix at `t_ms`, as the sequencer stores an OsmAnd report: GPS noise of a
    /// few metres, now and then a poor fix, the place enriched by the map.
    fn fix(&self, unit: &Unit, t_ms: i64, battery_pct: f64, rng: &mut Rng) -> PositionRow {
        let (p, speed_mps, heading) = unit.at((t_ms - self.from_ms) as f64 / 1000.0);
        let poor = rng.unit() < 0.0025;
        let accuracy_m = if poor { rng.range(80.0..200.0) } else { rng.range(4.0..15.0) };
        let noise_deg = accuracy_m.min(15.0) / 3.0 / 111_195.0;
        let lon = p.x() + rng.range(-noise_deg..noise_deg);
        let lat = p.y() + rng.range(-noise_deg..noise_deg);
        let (enrichment, in_county) = match Position::new(lon, lat) {
            Ok(pos) => {
                let e = self.enricher.enrich(pos);
                let view = self.enricher.view(&e, &[], &[]);
                (serde_json::to_string(&view).unwrap_or_else(|_| "{}".into()), e.in_county)
            }
            Err(_) => ("{}".into(), false),
        };
        let flags = if poor { 2 } else { 0 } | if in_county { 0 } else { 8 };
        PositionRow {
            seq: 0,
            device_id: unit.id.clone(),
            fix_ms: t_ms,
            recv_ms: t_ms + rng.range(200.0..1500.0) as i64,
            lon: round6(lon),
            lat: round6(lat),
            datum: "wgs84",
            speed_mps: Some((speed_mps * rng.range(0.85..1.15) * 100.0).round() / 100.0),
            course_deg: Some(heading.round()),
            altitude_m: None,
            accuracy_m: Some(accuracy_m.round()),
            battery_pct: Some(battery_pct.round()),
            flags,
            attributes: "{}".into(),
            enrichment,
        }
    }

    /// The day's plate reads, mostly by day (seven in eight between 07:00 and 22:00
    /// local), `alerts_per_day` of them watch-listed plates.
    fn reads(&self, d: i64, midnight_ms: i64, events: &mut Vec<Event>) {
        if self.cameras.is_empty() {
            return;
        }
        let mut rng = Rng::new(mix(self.seed, d as u64, 0));
        let n = self.plate_reads_per_day as usize;
        let hits = (self.alerts_per_day as usize).min(n);
        for i in 0..n {
            let local_min = if rng.unit() < 0.875 { rng.range(420.0..1320.0) } else { rng.range(1320.0..1860.0) };
            let t_ms = midnight_ms + ((local_min * 60_000.0) as i64).rem_euclid(DAY_MS);
            let camera = (rng.next_u64() % self.cameras.len() as u64) as usize;
            // Every (n / hits)th read is a watched plate.
            let hit = (hits > 0 && i % (n / hits).max(1) == 0 && i / (n / hits).max(1) < hits)
                .then(|| (rng.next_u64() % WATCHED.len() as u64) as usize);
            let plate = match hit {
                Some(w) => WATCHED[w].1.to_owned(),
                None => ordinary_plate(rng.next_u64() % PLATE_POOL),
            };
            let row = self.read(camera, &plate, t_ms, &mut rng);
            events.push(Event::Read { row, camera, hit });
        }
    }

    /// A plate read as the sequencer stores it: the ISAPI XML a checkpoint camera pushes
    /// (as the simulator writes it), decoded by the server's own decoder.
    fn read(&self, camera: usize, plate: &str, t_ms: i64, rng: &mut Rng) -> CameraEventRow {
        let cam = &self.cameras[camera];
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<EventNotificationAlert version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">\n<channelID>1</channelID>\n<dateTime>{}</dateTime>\n<activePostCount>1</activePostCount>\n<eventType>ANPR</eventType>\n<eventState>active</eventState>\n<ANPR>\n<licensePlate>{plate}</licensePlate>\n<direction>forward</direction>\n<confidenceLevel>{}</confidenceLevel>\n<plateColor>blue</plateColor>\n<vehicleType>vehicle</vehicleType>\n</ANPR>\n</EventNotificationAlert>",
            crate::simulate::rfc3339(u64::try_from(t_ms / 1000).unwrap_or(0)),
            80 + rng.next_u64() % 20,
        );
        let (payload, normalized, active_post_count) =
            match liandong_ingest::isapi::decode(Some("application/xml"), xml.as_bytes()) {
                Ok(e) => (
                    serde_json::json!({"event": e, "images": []}).to_string(),
                    e.plate.as_ref().and_then(|p| p.normalized.clone()),
                    e.active_post_count.map(i64::from),
                ),
                Err(_) => ("{}".into(), Some(plate.to_owned()), Some(1)),
            };
        CameraEventRow {
            seq: 0,
            camera_id: cam.id.clone(),
            event_type: "ANPR".into(),
            kind: "anpr",
            active: true,
            active_post_count,
            time_ms: t_ms,
            recv_ms: t_ms + 300,
            plate: normalized,
            person_id: None,
            payload,
        }
    }

    /// The watch-list alert a read raises, numbered `seq`, with the place and the
    /// fields the feed's `watchlist_plate` alert carries.
    fn alert(&self, read: &CameraEventRow, camera: usize, watched: usize, seq: i64) -> AlertRow {
        let cam = &self.cameras[camera];
        let (lon, lat) = (cam.point.x(), cam.point.y());
        let enrichment = Position::new(lon, lat).ok().map(|p| self.enricher.enrich(p));
        let place = enrichment.as_ref().map(|e| self.enricher.view(e, &[], &[]));
        let township = place.as_ref().and_then(|p| p.township.map(|t| t.name.to_owned()));
        let (watch_id, value, reason) = WATCHED[watched];
        let event: serde_json::Value = serde_json::from_str(&read.payload).unwrap_or_default();
        let time = crate::simulate::rfc3339(u64::try_from(read.time_ms / 1000).unwrap_or(0));
        let message = serde_json::json!({
            "type": "alert", "seq": seq,
            "data": {
                "seq": seq, "rule": "watchlist_plate", "priority": 1, "time": time, "lon": lon, "lat": lat,
                "place": place,
                "camera": {"id": cam.id, "name": cam.name, "kind": "checkpoint", "lon": lon, "lat": lat},
                "read": {"kind": "plate", "value": value, "event_seq": read.seq, "event": event["event"]},
                "images": [],
                "watch": {"id": watch_id, "reason": reason},
                "nearest_units": [],
                "track": {"coordinates": [[lon, lat]], "times": [time], "cameras": [cam.id], "last": null,
                          "heading_deg": null, "heading": null, "speed_kmh": null, "length_m": 0.0},
            }
        });
        AlertRow {
            seq,
            rule: "watchlist_plate".into(),
            priority: 1,
            camera_id: Some(cam.id.clone()),
            event_seq: Some(read.seq),
            time_ms: read.time_ms,
            lon,
            lat,
            roles: vec!["operator".into(), "patrol_leader".into()],
            payload: message.to_string(),
            township,
        }
    }
}

/// A plate of Dazhu's prefix (川S) from a number.
fn ordinary_plate(n: u64) -> String {
    const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    let letter = LETTERS[(n % LETTERS.len() as u64) as usize] as char;
    format!("川S{letter}{:04}", (n / LETTERS.len() as u64) % 10_000)
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// The seed of one day's stream (`stream` 0: the cameras; `u + 1`: unit `u`), so that
/// a day comes out the same whichever thread makes it.
fn mix(seed: u64, day: u64, stream: u64) -> u64 {
    splitmix64(splitmix64(seed ^ day.wrapping_mul(0x9E37_79B9_7F4A_7C15)) ^ stream)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Writes the year; returns what it wrote.
pub async fn generate(args: GenerateArgs) -> anyhow::Result<Generated> {
    let map = liandong_server::maps::load_dir(&args.maps)?;
    let units = units(&map);
    anyhow::ensure!(!units.is_empty(), "the map has no routes or posts to generate units from");
    let to_ms = args.end_ms.unwrap_or_else(|| now_ms() / 3_600_000 * 3_600_000);
    let from_ms = to_ms - i64::from(args.days) * DAY_MS;
    let duty_s_per_day: f64 = units.iter().map(|u| u.duty_minutes() as f64 * 60.0 * (1.0 - DAY_OFF)).sum();
    let interval_s = (duty_s_per_day * f64::from(args.days) / args.positions.max(1) as f64).max(1.0);
    let store = args.store.open().await?;
    register(&store, &map, &units, from_ms).await?;
    let first_seq = store.max_seq().await? + 1;
    eprintln!(
        "generating {} days ({from_ms}..{to_ms}) on {}: {} units reporting every {interval_s:.1} s on duty, {} plate reads and {} alerts a day",
        args.days,
        store.backend(),
        units.len(),
        args.plate_reads_per_day,
        args.alerts_per_day
    );
    let year = Arc::new(Year {
        units,
        cameras: checkpoints(&map).into_iter().cloned().collect(),
        enricher: Enricher::new(&map),
        from_ms,
        to_ms,
        interval_s,
        plate_reads_per_day: args.plate_reads_per_day,
        alerts_per_day: args.alerts_per_day,
        seed: args.seed,
    });
    // One thread makes the days while this task writes them: the two cores each do one.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Day>(2);
    // Local days: the history's first and last are partial, so one more than `--days`.
    let days = i64::from(args.days) + 1;
    let maker = {
        let year = year.clone();
        tokio::task::spawn_blocking(move || {
            let mut next_seq = first_seq;
            for d in 0..days {
                if tx.blocking_send(year.day(d, &mut next_seq)).is_err() {
                    break;
                }
            }
        })
    };
    let mut bulk = match &args.store.pg_url {
        Some(url) => Some(liandong_store::bulk::PgBulk::connect(url).await?),
        None => None,
    };
    if let Some(b) = bulk.as_mut() {
        let made = b.ensure_partitions(from_ms, to_ms).await?;
        eprintln!("{made} monthly partitions made for {from_ms}..{to_ms} (liandong_ensure_partitions)");
    }
    let started = Instant::now();
    let mut g =
        Generated { positions: 0, camera_events: 0, alerts: 0, first_seq, last_seq: first_seq - 1, from_ms, to_ms };
    let mut last: std::collections::HashMap<String, (i64, i64, f64, f64)> = std::collections::HashMap::new();
    let mut d = 0;
    let mut reported = Instant::now();
    while let Some(day) = rx.recv().await {
        d += 1;
        for r in &day.positions {
            last.insert(r.device_id.clone(), (r.seq, r.fix_ms, r.lon, r.lat));
        }
        let day_last = day.positions.iter().map(|r| r.seq).chain(day.camera_events.iter().map(|r| r.seq));
        g.last_seq = day_last.chain(day.alerts.iter().map(|r| r.seq)).max().unwrap_or(g.last_seq).max(g.last_seq);
        g.positions += day.positions.len() as u64;
        g.camera_events += day.camera_events.len() as u64;
        g.alerts += day.alerts.len() as u64;
        match bulk.as_mut() {
            Some(b) => b.copy(&day.positions, &day.camera_events, &day.alerts).await?,
            None => {
                let w = store.begin_write().await?;
                let batch = Batch {
                    positions: &day.positions,
                    camera_events: &day.camera_events,
                    alerts: &day.alerts,
                    ..Default::default()
                };
                w.commit(&batch).await?;
            }
        }
        if reported.elapsed() >= Duration::from_secs(10) || d == days {
            reported = Instant::now();
            let s = started.elapsed().as_secs_f64();
            eprintln!(
                "day {d}/{days}: {} positions, {} camera events, {} alerts in {s:.0} s ({:.0} positions/s)",
                g.positions,
                g.camera_events,
                g.alerts,
                g.positions as f64 / s
            );
        }
    }
    maker.await.context("the day maker failed")?;
    let loaded_s = started.elapsed().as_secs_f64();
    if let Some(b) = bulk {
        b.finish().await?;
    }
    // Each unit's live state: its last report, trusted (the year's fixes are good ones).
    let states: Vec<DeviceStateRow> = last
        .into_iter()
        .map(|(device_id, (seq, fix_ms, lon, lat))| DeviceStateRow {
            device_id,
            seq,
            trusted: Some((fix_ms, lon, lat)),
            marked: None,
            fences: Vec::new(),
        })
        .collect();
    store.begin_write().await?.commit(&Batch { states: &states, ..Default::default() }).await?;
    store.close().await;
    let total_s = started.elapsed().as_secs_f64();
    println!(
        "generated on {}: {} positions, {} camera events, {} alerts, seq {}..{}, in {total_s:.0} s ({:.0} positions/s; rows written in {loaded_s:.0} s)",
        args.store.pg_url.as_ref().map_or("sqlite", |_| "postgres"),
        g.positions,
        g.camera_events,
        g.alerts,
        g.first_seq,
        g.last_seq,
        g.positions as f64 / total_s,
    );
    println!("range_ms {} {}", g.from_ms, g.to_ms);
    Ok(g)
}

/// Registers the units as devices and the checkpoint cameras, with keys of their own.
async fn register(store: &Store, map: &CountyMap, units: &[Unit], at_ms: i64) -> anyhow::Result<()> {
    for u in units {
        store
            .upsert_device(&DeviceRecord {
                device_id: u.id.clone(),
                name: u.name.clone(),
                kind: u.kind.into(),
                unit_id: Some(u.unit_id.clone()),
                key: format!("history-{}", u.id),
                created_ms: at_ms,
                updated_ms: at_ms,
                person_id: None,
            })
            .await?;
    }
    for c in checkpoints(map) {
        store
            .upsert_camera(&CameraRecord {
                camera_id: c.id.clone(),
                name: c.name.clone(),
                kind: "checkpoint".into(),
                lon: c.point.x(),
                lat: c.point.y(),
                key: format!("history-{}", c.id),
                updated_ms: at_ms,
            })
            .await?;
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct QueriesArgs {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// A token of a role that sees every unit and alert (admin or operator).
    #[arg(long, env = "LIANDONG_TOKEN")]
    pub token: String,
    /// The generated history's range, Unix ms (`generate` prints it as `range_ms`).
    #[arg(long)]
    pub from_ms: i64,
    #[arg(long)]
    pub to_ms: i64,
    /// Requests per question, after a tenth as many unmeasured (warm-up).
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
    #[arg(long, default_value = "maps/dazhu")]
    pub maps: PathBuf,
    #[arg(long, default_value_t = 18)]
    pub seed: u64,
}

/// The four questions of issue 18.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Question {
    Moment,
    DayTrack,
    BoxHour,
    TownshipMonth,
}

impl Question {
    const ALL: [Question; 4] = [Question::Moment, Question::DayTrack, Question::BoxHour, Question::TownshipMonth];

    fn label(self) -> &'static str {
        match self {
            Question::Moment => "the county at a moment (GET /api/v1/history/positions?at=T)",
            Question::DayTrack => "one unit's day track (GET /api/v1/history/track?device_id&from&to, 24 h)",
            Question::BoxHour => "a 2 km box over one hour (GET /api/v1/history/positions?at=T&bbox&max_age_s=3600)",
            Question::TownshipMonth => {
                "a township's alerts over a month (GET /api/v1/history/alerts?bbox&from&to, 30 d)"
            }
        }
    }
}

/// Asks each question `requests` times, one request at a time, and prints p50 and p99
/// of each; returns how many units, fixes or alerts each question's answers held in all.
pub async fn queries(args: QueriesArgs) -> anyhow::Result<Vec<usize>> {
    anyhow::ensure!(args.to_ms - args.from_ms > 31 * DAY_MS, "the range must span more than a month");
    let map = liandong_server::maps::load_dir(&args.maps)?;
    let units = units(&map);
    let townships: Vec<(String, geo::Rect<f64>)> = map
        .townships
        .iter()
        .filter_map(|t| geo::BoundingRect::bounding_rect(&t.polygon).map(|r| (t.name.clone(), r)))
        .collect();
    anyhow::ensure!(!units.is_empty() && !townships.is_empty(), "the map has no units or townships");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let base = args.url.trim_end_matches('/');
    let mut rng = Rng::new(mix(args.seed, 7, 7));
    let span = (args.to_ms - args.from_ms) as f64;
    println!("question | requests | p50 ms | p99 ms | max ms | median answer");
    let mut totals = Vec::new();
    for q in Question::ALL {
        let warmup = (args.requests / 10).max(1);
        let mut lat_ms = Vec::with_capacity(args.requests);
        let mut sizes = Vec::with_capacity(args.requests);
        for i in 0..warmup + args.requests {
            let at = args.from_ms + (rng.unit() * span) as i64;
            let url = match q {
                Question::Moment => format!("{base}/api/v1/history/positions?at={at}&limit=50000"),
                Question::DayTrack => {
                    let u = &units[(rng.next_u64() % units.len() as u64) as usize];
                    let midnight = (at + LOCAL_OFFSET_MS).div_euclid(DAY_MS) * DAY_MS - LOCAL_OFFSET_MS;
                    format!("{base}/api/v1/history/track?device_id={}&from={midnight}&to={}", u.id, midnight + DAY_MS)
                }
                Question::BoxHour => {
                    // Around where a unit goes, so that boxes are where the county's units are.
                    let u = &units[(rng.next_u64() % units.len() as u64) as usize];
                    let (c, ..) = u.at(rng.unit() * 86_400.0 * 30.0);
                    let dlat = 1000.0 / 111_195.0;
                    let dlon = dlat / c.y().to_radians().cos();
                    format!(
                        "{base}/api/v1/history/positions?at={at}&max_age_s=3600&bbox={:.6},{:.6},{:.6},{:.6}",
                        c.x() - dlon,
                        c.y() - dlat,
                        c.x() + dlon,
                        c.y() + dlat
                    )
                }
                Question::TownshipMonth => {
                    let (_, r) = &townships[(rng.next_u64() % townships.len() as u64) as usize];
                    let from = args.from_ms + (rng.unit() * (span - 30.0 * DAY_MS as f64)) as i64;
                    format!(
                        "{base}/api/v1/history/alerts?from={from}&to={}&bbox={:.6},{:.6},{:.6},{:.6}",
                        from + 30 * DAY_MS,
                        r.min().x,
                        r.min().y,
                        r.max().x,
                        r.max().y
                    )
                }
            };
            let started = Instant::now();
            let r = client.get(&url).bearer_auth(&args.token).send().await.with_context(|| format!("GET {url}"))?;
            let status = r.status();
            let body = r.bytes().await?;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            // A day track of a unit off duty that day is a 404 naming the device: an answer.
            anyhow::ensure!(
                status.is_success() || (q == Question::DayTrack && status == reqwest::StatusCode::NOT_FOUND),
                "GET {url}: {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            );
            if i >= warmup {
                lat_ms.push(ms);
                sizes.push(answer_size(q, &body));
            }
        }
        lat_ms.sort_by(f64::total_cmp);
        sizes.sort_unstable();
        let pct = |p: f64| lat_ms[((lat_ms.len() as f64 * p) as usize).min(lat_ms.len() - 1)];
        let unit = match q {
            Question::Moment | Question::BoxHour => "units",
            Question::DayTrack => "fixes",
            Question::TownshipMonth => "alerts",
        };
        println!(
            "{} | {} | {:.1} | {:.1} | {:.1} | {} {unit}",
            q.label(),
            lat_ms.len(),
            pct(0.50),
            pct(0.99),
            lat_ms.last().copied().unwrap_or(0.0),
            sizes[sizes.len() / 2]
        );
        totals.push(sizes.iter().sum());
    }
    Ok(totals)
}

/// How many units, fixes or alerts an answer holds (0 for a 404).
fn answer_size(q: Question, body: &[u8]) -> usize {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    match q {
        Question::Moment | Question::BoxHour => v["features"].as_array().map_or(0, Vec::len),
        Question::DayTrack => v["properties"]["fixes"].as_u64().unwrap_or(0) as usize,
        Question::TownshipMonth => v["alerts"].as_array().map_or(0, Vec::len),
    }
}

#[derive(clap::Args, Debug)]
pub struct RetentionArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Positions with a fix before this are pruned, Unix ms (the oldest month's end).
    #[arg(long)]
    pub before_ms: i64,
}

/// Times the pruning of positions and camera events before `--before-ms`: only the
/// store's retention call is timed; what is counted before and after it is read
/// outside that window, and on PostgreSQL from the catalogue (row estimates) and the
/// small default partitions, so that counting neither holds a lock a drop would wait
/// for nor takes the cores from the ingest load running beside it.
pub async fn retention(args: RetentionArgs) -> anyhow::Result<()> {
    let store = args.store.open().await?;
    let before = OldRows::read(&store, args.before_ms).await?;
    let started = Instant::now();
    let pruned = prune_before(&store, args.before_ms).await?;
    let s = started.elapsed().as_secs_f64();
    // The second step, as the server's retention task takes it: the months' files.
    let started = Instant::now();
    let removed = store.remove_detached().await?;
    let files_s = started.elapsed().as_secs_f64();
    let after = OldRows::read(&store, args.before_ms).await?;
    println!(
        "retention before {}: {s:.3} s (the prune call alone: the months out of their tables); rows deleted {}, last reports kept {}, a month left busy: {}",
        args.before_ms, pruned.rows_deleted, pruned.reports_kept, pruned.busy
    );
    println!("then the detached months' files removed: {files_s:.3} s ({removed} tables; holding no lock)");
    for line in before.report(&after, &pruned) {
        println!("{line}");
    }
    store.close().await;
    Ok(())
}

/// The rows older than a cutoff, as cheaply as the store allows.
enum OldRows {
    /// PostgreSQL: the months wholly before the cutoff with their row estimates, and
    /// each table's rows older than the cutoff in its default partition (exact).
    Months { months: Vec<liandong_store::pg::OldMonth>, defaults: Vec<(&'static str, i64)> },
    /// SQLite: every position (exact; the embedded store has no partitions to read).
    Positions(i64),
}

impl OldRows {
    async fn read(store: &Store, before_ms: i64) -> anyhow::Result<OldRows> {
        Ok(match store {
            Store::Postgres(p) => OldRows::Months {
                months: p.months_before(before_ms).await?,
                defaults: p.default_rows_before(before_ms).await?,
            },
            Store::Sqlite(_) => OldRows::Positions(store.count_positions(None).await?),
        })
    }

    /// One line per table: the months dropped and left busy (with their estimated
    /// rows), and the rows older than the cutoff before and after.
    fn report(&self, after: &OldRows, pruned: &liandong_store::Pruned) -> Vec<String> {
        match (self, after) {
            (
                OldRows::Months { months, defaults },
                OldRows::Months { months: months_after, defaults: defaults_after },
            ) => {
                let tables = ["positions", "camera_events"];
                tables
                    .iter()
                    .map(|table| {
                        let of = |m: &&liandong_store::pg::OldMonth| m.table == *table;
                        // The table's months among `names`, each with its estimate before.
                        let listed = |names: &[String]| {
                            let prefix = format!("{table}_p");
                            let named: Vec<String> = names
                                .iter()
                                .filter(|n| n.starts_with(&prefix))
                                .map(|n| format!("{n} ({})", estimate(months.iter().find(|m| &m.partition == n))))
                                .collect();
                            if named.is_empty() { "none".to_string() } else { named.join(", ") }
                        };
                        let default_rows =
                            |d: &[(&str, i64)]| d.iter().find(|(t, _)| t == table).map_or(0, |(_, n)| *n);
                        let in_months = |m: &[liandong_store::pg::OldMonth]| {
                            let m: Vec<_> = m.iter().filter(of).collect();
                            let rows: i64 = m.iter().filter_map(|m| m.rows_estimate).sum();
                            format!("~{rows} in {} month(s)", m.len())
                        };
                        format!(
                            "{table}: dropped {}; left busy {}; older than the cutoff: {} + {} in the default partition \
                             -> {} + {} (months: pg_class.reltuples estimates; default partition: counted)",
                            listed(&pruned.partitions),
                            listed(&pruned.left),
                            in_months(months),
                            default_rows(defaults),
                            in_months(months_after),
                            default_rows(defaults_after),
                        )
                    })
                    .collect()
            }
            (OldRows::Positions(b), OldRows::Positions(a)) => vec![format!("positions: {b} -> {a} (counted)")],
            _ => Vec::new(),
        }
    }
}

/// A month's estimated rows as printed: `~N rows, estimate`, or `rows not estimated`.
fn estimate(m: Option<&liandong_store::pg::OldMonth>) -> String {
    match m.and_then(|m| m.rows_estimate) {
        Some(n) => format!("~{n} rows, estimate"),
        None => "rows not estimated".into(),
    }
}

/// RETENTION STEP (the one call the benchmark times): the store's retention up to
/// `before_ms`, as the server's retention task runs it: on PostgreSQL the months wholly
/// before it dropped (partitions), on SQLite the rows deleted batch after batch.
async fn prune_before(store: &Store, before_ms: i64) -> anyhow::Result<liandong_store::Pruned> {
    Ok(store.prune_before(before_ms).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> CountyMap {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../maps/dazhu");
        liandong_server::maps::load_dir(&dir).expect("the demo map loads")
    }

    #[test]
    fn the_units_are_the_demos_devices() {
        let units = units(&map());
        assert!(units.iter().any(|u| u.kind == "patrol_leader"));
        assert_eq!(units.iter().filter(|u| u.kind == "post_officer").count(), 26);
        assert_eq!(units.iter().filter(|u| u.kind == "vehicle").count(), CARS);
        let ids: std::collections::HashSet<&str> = units.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids.len(), units.len(), "device ids are unique");
    }

    #[test]
    fn a_day_is_numbered_in_time_order_with_each_alert_after_its_read() {
        let map = map();
        let year = Year {
            units: units(&map),
            cameras: checkpoints(&map).into_iter().cloned().collect(),
            enricher: Enricher::new(&map),
            from_ms: 1_767_196_800_000,
            to_ms: 1_767_196_800_000 + DAY_MS,
            interval_s: 600.0,
            plate_reads_per_day: 500,
            alerts_per_day: 5,
            seed: 3,
        };
        let mut next = 101;
        let day = year.day(0, &mut next);
        assert!(!day.positions.is_empty());
        assert_eq!(day.camera_events.len(), 500);
        assert_eq!(day.alerts.len(), 5);
        let mut all: Vec<(i64, i64)> = day.positions.iter().map(|r| (r.seq, r.fix_ms)).collect();
        all.extend(day.camera_events.iter().map(|r| (r.seq, r.time_ms)));
        all.extend(day.alerts.iter().map(|r| (r.seq, r.time_ms)));
        all.sort_unstable();
        assert_eq!(all.first().map(|a| a.0), Some(101));
        assert_eq!(all.last().map(|a| a.0), Some(next - 1));
        assert!(all.windows(2).all(|w| w[1].0 == w[0].0 + 1), "every number once, none skipped");
        assert!(all.windows(2).all(|w| w[1].1 >= w[0].1), "numbers grow with time");
        for a in &day.alerts {
            assert_eq!(a.event_seq, Some(a.seq - 1));
            assert!(a.township.is_some());
            let v: serde_json::Value = serde_json::from_str(&a.payload).unwrap();
            assert_eq!(v["seq"], a.seq);
        }
        let again = year.day(0, &mut 101);
        assert_eq!(again.positions, day.positions, "the same seed makes the same day");
    }

    /// Generates a small history (40 days, 20,000 positions) into `backend`,
    /// checks what was written, starts a server on it and asks the four questions.
    async fn generate_and_ask(backend: liandong_test_support::server::Backend) {
        use liandong_server::auth::Role;
        use liandong_test_support::server::{Backend, Server};
        let name = format!("history_{backend:?}").to_lowercase();
        let dir = liandong_test_support::fresh_dir(&name);
        let mut config = liandong_test_support::config(dir.clone());
        config.maps = liandong_test_support::root().join("maps/dazhu");
        config.tokens = vec![liandong_test_support::token("history-admin", Role::Admin)];
        // The history is older than the default retention: keep it.
        config.store.retention_days = 0;
        if backend.configure(&mut config, &name).await.is_none() {
            return;
        }
        let pg_url = config.store.database_url.as_ref().map(|u| u.expose().to_owned());
        // A local midnight (00:00 China time), so that the history is whole local days.
        let end_ms = 1_767_196_800_000;
        let args = GenerateArgs {
            store: StoreArgs { sqlite: pg_url.is_none().then(|| dir.clone()), pg_url: pg_url.clone() },
            positions: 20_000,
            days: 40,
            seed: 5,
            end_ms: Some(end_ms),
            maps: config.maps.clone(),
            plate_reads_per_day: 60,
            alerts_per_day: 2,
        };
        let g = generate(args.clone()).await.expect("the generator writes the store");
        assert!((15_000..25_000).contains(&g.positions), "about the positions asked for: {}", g.positions);
        assert_eq!((g.camera_events, g.alerts), (60 * 40, 2 * 40));
        assert_eq!((g.from_ms, g.to_ms), (end_ms - 40 * DAY_MS, end_ms));
        let store = args.store.open().await.unwrap();
        assert_eq!(store.count_positions(None).await.unwrap() as u64, g.positions);
        assert_eq!(store.max_seq().await.unwrap(), g.last_seq);
        // Every number once across the tables: positions and alerts (counted by the feed)
        // and the camera events fill first..=last exactly.
        let feed = store.count_after(g.first_seq - 1).await.unwrap() as u64;
        assert_eq!(feed + g.camera_events, (g.last_seq - g.first_seq + 1) as u64);
        assert_eq!(feed, g.positions + g.alerts);
        let states = store.device_states().await.unwrap();
        assert!(states.len() > 200 && states.iter().all(|(s, p)| p.as_ref().is_some_and(|p| p.seq == s.seq)));
        store.close().await;
        if backend == Backend::Postgis {
            // The database indexes positions as its migrations say.
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(pg_url.as_deref().unwrap()).await.unwrap();
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_indexes WHERE tablename = 'positions'")
                .fetch_one(&mut conn)
                .await
                .unwrap();
            assert_eq!(n, 5, "primary key, (device_id, fix_ms), fix_ms, geom and geography");
        }

        let server = Server::start(config).await;
        let q = QueriesArgs {
            url: server.url.clone(),
            token: "history-admin".into(),
            from_ms: g.from_ms,
            to_ms: g.to_ms,
            requests: 10,
            maps: liandong_test_support::root().join("maps/dazhu"),
            seed: 1,
        };
        let totals = queries(q).await.expect("every question is answered");
        assert!(totals[1] > 0 && totals[3] > 0, "day tracks have fixes, townships alerts: {totals:?}");
        // Every alert of the range, in one answer.
        let all = server.http.get(format!("{}/api/v1/history/alerts?from={}&to={}", server.url, g.from_ms, g.to_ms));
        let v: serde_json::Value = all.bearer_auth("history-admin").send().await.unwrap().json().await.unwrap();
        assert_eq!(v["alerts"].as_array().map(Vec::len), Some(g.alerts as usize));
        // A unit reporting after the load is numbered after it.
        let (seq, (_, lon, lat)) = {
            let (s, _) = &states[0];
            (s.seq, s.trusted.unwrap())
        };
        assert!(seq <= g.last_seq);
        // (The server may raise alerts of its own at start, e.g. units silent since the
        // load; they too are numbered after it.)
        let device = &states[0].0.device_id;
        let r = server
            .http
            .get(format!(
                "{}/osmand?id={device}&timestamp={}&lat={lat}&lon={lon}&key=history-{device}",
                server.url,
                now_ms()
            ))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}: {}", r.status(), r.text().await.unwrap_or_default());
        let dir = server.stop_keeping_data().await;
        let store = args.store.open().await.unwrap();
        let newest = store.position_seqs(device).await.unwrap().into_iter().max();
        assert!(newest.is_some_and(|s| s > g.last_seq), "{newest:?} after {}", g.last_seq);
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_generated_year_is_numbered_after_the_store_and_answers_the_history_questions_on_sqlite() {
        generate_and_ask(liandong_test_support::server::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_generated_year_is_numbered_after_the_store_and_answers_the_history_questions_on_postgis() {
        generate_and_ask(liandong_test_support::server::Backend::Postgis).await;
    }
}
