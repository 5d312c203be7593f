//! `liandong bench floods`: the security floods of issue 12 against a running server on
//! loopback, one after another, each while a prober asks `/healthz` every 50 ms and a
//! normal device keeps reporting; per flood it prints the server's peak memory, the
//! prober's latencies and whether every acknowledged report of the normal device was
//! stored.
//!
//! The floods are what an attacker with one device or camera key (or none) could send:
//! live-feed replays of reports with the largest attributes the server accepts, large
//! unauthenticated bodies, idle websockets, slowloris sockets and the worst ISAPI XML and
//! multipart bodies. Each is bounded in time and in sockets, and speaks HTTP and the
//! websocket handshake itself so that the tool's own cost stays small next to the
//! server's on a shared 2-core machine, and so that a socket can be left unread on
//! purpose.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::bench::roundtrip;

/// One flood of the benchmark.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flood {
    /// Reports with the largest attributes accepted, then concurrent `since=0` replays
    /// that never read, one per operator token.
    Replays,
    /// Unauthenticated 8 MiB bodies to `POST /api/v1/alerts` and `/osmand`, all at once.
    Bodies,
    /// Idle websockets on the live feed that never read and never answer a ping.
    Websockets,
    /// Sockets sending a request's headers one byte every few seconds.
    Slowloris,
    /// The worst ISAPI XML and multipart pushes, at and over the decoder's limits.
    Decoders,
}

impl Flood {
    fn name(self) -> &'static str {
        match self {
            Flood::Replays => "replays",
            Flood::Bodies => "bodies",
            Flood::Websockets => "websockets",
            Flood::Slowloris => "slowloris",
            Flood::Decoders => "decoders",
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct FloodsArgs {
    /// The server, on loopback only (`http://127.0.0.1:PORT`).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Admin token: registers the devices and the camera, reads the stored tracks.
    #[arg(long, env = "LIANDONG_TOKEN")]
    pub token: String,
    /// The server's process id: its resident memory is read from /proc/PID/status
    /// (VmRSS every 100 ms, VmHWM after each flood).
    #[arg(long)]
    pub pid: Option<u32>,
    /// Floods to run, one after another, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Flood::Replays, Flood::Bodies, Flood::Websockets, Flood::Slowloris, Flood::Decoders])]
    pub floods: Vec<Flood>,
    /// Seconds each flood lasts.
    #[arg(long, default_value_t = 15.0)]
    pub duration_s: f64,
    /// Seconds of the quiet baseline measured first (prober and normal client only).
    #[arg(long, default_value_t = 5.0)]
    pub quiet_s: f64,
    /// Operator tokens are this prefix followed by 1..=`operators` (the server's config
    /// must hold them, each with its own name: replays are bounded per caller).
    #[arg(long, default_value = "floods-operator-")]
    pub operator_prefix: String,
    #[arg(long, default_value_t = 20)]
    pub operators: usize,
    /// Reports per second of the normal client.
    #[arg(long, default_value_t = 20.0)]
    pub report_rate: f64,
    /// Reports stored with the largest attributes accepted before the replays (fewer when
    /// they would exceed 300 MB in all).
    #[arg(long, default_value_t = 3000)]
    pub attribute_reports: usize,
    /// Concurrent unauthenticated 8 MiB bodies (half to each endpoint).
    #[arg(long, default_value_t = 60)]
    pub bodies: usize,
    /// Idle websocket connections.
    #[arg(long, default_value_t = 2000)]
    pub websockets: usize,
    /// Slowloris sockets, and the seconds between two bytes of each.
    #[arg(long, default_value_t = 1100)]
    pub slowloris: usize,
    #[arg(long, default_value_t = 3.0)]
    pub slowloris_interval_s: f64,
    /// Decoder pushes in flight at once.
    #[arg(long, default_value_t = 4)]
    pub decoder_concurrency: usize,
    /// Only these decoder pushes, comma-separated (default: all; the names are printed).
    #[arg(long, value_delimiter = ',')]
    pub pushes: Vec<String>,
}

/// Targets of issue 12's "Done when".
const TARGET_RSS_MIB: f64 = 512.0;
const TARGET_HEALTHZ_MS: f64 = 100.0;

/// How often the prober asks `/healthz`, and how long it waits for an answer before
/// counting a failure.
const PROBE_EVERY: Duration = Duration::from_millis(50);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The body a flood of large bodies announces (the alert endpoint's own limit).
const LARGE_BODY_BYTES: u64 = 8 << 20;

/// The largest attribute tried first: a value as large as the server's default body
/// limit (1 MiB) leaves room for, with the rest of the report.
const FIRST_ATTRIBUTE_BYTES: usize = (1 << 20) - 512;

/// Total bytes of attributes the preparation of the replays may store.
const MAX_ATTRIBUTE_FILL_BYTES: usize = 300_000_000;

/// The decoder's limits (`liandong_ingest::isapi::Limits::default()` and `MAX_DEPTH`),
/// which the worst bodies sit at and just over.
const XML_MAX_ELEMENTS: usize = 4096;
const XML_MAX_NAME_BYTES: usize = 128;
const XML_MAX_DEPTH: usize = 32;
const MULTIPART_MAX_PARTS: usize = 16;
const MULTIPART_MAX_IMAGES: usize = 8;

/// The camera the decoder flood pushes as.
const CAMERA: &str = "floods-cam";

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// What every flood needs: where the server is and how to sign in.
struct Ctx {
    /// `127.0.0.1:PORT`.
    host: String,
    url: String,
    token: String,
    /// Makes this run's device and camera keys unique.
    run: String,
    pid: Option<u32>,
    http: reqwest::Client,
    args: FloodsArgs,
}

impl Ctx {
    fn key(&self, id: &str) -> String {
        format!("floods-{}-{id}", self.run)
    }

    fn operator(&self, i: usize) -> String {
        format!("{}{}", self.args.operator_prefix, i % self.args.operators.max(1) + 1)
    }

    fn deadline(&self) -> Instant {
        Instant::now() + Duration::from_secs_f64(self.args.duration_s)
    }
}

pub async fn run(args: FloodsArgs) -> anyhow::Result<()> {
    let host = args
        .url
        .strip_prefix("http://")
        .map(|h| h.trim_end_matches('/').to_owned())
        .context("--url must be http://127.0.0.1:PORT")?;
    // Floods are for one's own server on this machine, never for anything reachable.
    anyhow::ensure!(
        host.starts_with("127.0.0.1:") || host.starts_with("localhost:"),
        "--url must be on loopback (http://127.0.0.1:PORT), not {host}"
    );
    let nofile = raise_open_file_limit();
    println!(
        "floods: {} at {}, each {:.0} s; open-file limit of the tool {nofile}; load average {}",
        args.floods.iter().map(|f| f.name()).collect::<Vec<_>>().join(","),
        args.url,
        args.duration_s,
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split(' ').take(3).collect::<Vec<_>>().join(" ")
    );
    if let Some(pid) = args.pid {
        println!(
            "server pid {pid}: VmRSS {:.1} MiB at start, open-file limit {}",
            kib_to_mib(status_kib(pid, "VmRSS").unwrap_or(0)),
            open_file_limit_of(pid).unwrap_or_else(|| "unknown".to_owned())
        );
    }
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let run = format!("{:x}", now_ms());
    let ctx = Arc::new(Ctx {
        host,
        url: args.url.trim_end_matches('/').to_owned(),
        token: args.token.clone(),
        run,
        pid: args.pid,
        http,
        args,
    });

    let mut phases = Vec::new();
    let quiet = Duration::from_secs_f64(ctx.args.quiet_s);
    phases.push(
        phase(&ctx, "quiet", quiet + Duration::from_secs(1), async move {
            tokio::time::sleep(quiet).await;
            Ok("no flood: the baseline".to_owned())
        })
        .await?,
    );
    let length = Duration::from_secs_f64(ctx.args.duration_s);
    for flood in ctx.args.floods.clone() {
        let figures = match flood {
            Flood::Replays => {
                let prepared = prepare_attributes(&ctx).await?;
                println!("{prepared}");
                phase(&ctx, flood.name(), length, replays(ctx.clone())).await?
            }
            Flood::Bodies => phase(&ctx, flood.name(), length, bodies(ctx.clone())).await?,
            Flood::Websockets => phase(&ctx, flood.name(), length, websockets(ctx.clone())).await?,
            Flood::Slowloris => phase(&ctx, flood.name(), length, slowloris(ctx.clone())).await?,
            Flood::Decoders => {
                register_camera(&ctx).await?;
                phase(&ctx, flood.name(), length, decoders(ctx.clone())).await?
            }
        };
        phases.push(figures);
    }
    summary(&phases);
    Ok(())
}

/// Raises this process's soft open-file limit to its hard limit (the floods hold
/// thousands of sockets) and returns the soft limit now in force.
fn raise_open_file_limit() -> String {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        if let Err(e) = setrlimit(Resource::Nofile, Rlimit { current: limit.maximum, maximum: limit.maximum }) {
            eprintln!("could not raise the open-file limit: {e}");
        }
    }
    getrlimit(Resource::Nofile).current.map_or_else(|| "unlimited".to_owned(), |n| n.to_string())
}

/// A field of /proc/PID/status in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse().ok())
}

/// The soft open-file limit of a process, from /proc/PID/limits.
fn open_file_limit_of(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3).map(str::to_owned)
}

fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The prober's record: every latency (failures included, at the time they took) and
/// the failures by reason.
#[derive(Default)]
struct Probes {
    latencies_us: Vec<u64>,
    failures: BTreeMap<String, u64>,
    /// When the slowest probe was sent, seconds into the phase.
    slowest_at_s: f64,
}

impl Probes {
    fn percentile_ms(&self, p: f64) -> f64 {
        percentile_ms(&self.latencies_us, p)
    }
}

/// The `p` quantile of sorted microsecond latencies, in milliseconds (nearest rank).
fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted_us.len() as f64 * p).ceil() as usize).clamp(1, sorted_us.len());
    sorted_us[rank - 1] as f64 / 1000.0
}

/// The normal client's record.
#[derive(Default)]
struct Reports {
    sent: u64,
    acked: u64,
    /// Reports not acknowledged, by answer (`status 503`, `timeout`, an I/O error).
    refused: BTreeMap<String, u64>,
    latencies_us: Vec<u64>,
}

/// One phase's figures.
struct Figures {
    name: String,
    peak_rss_kib: u64,
    hwm_kib: Option<u64>,
    probes: Probes,
    reports: Reports,
    stored: u64,
    /// How long the flood took to end after its time was up, and the probes meanwhile.
    teardown: Option<(f64, Probes)>,
}

/// Runs `flood` while the prober, the normal client (a device of its own) and the
/// memory sampler watch, for `length`; then measures the flood's teardown (closing its
/// sockets, reading what they hold) apart with a prober of its own, checks that the
/// normal client's acknowledged reports are stored, and prints the phase's figures. The
/// memory peak spans the teardown too.
async fn phase(
    ctx: &Arc<Ctx>,
    name: &str,
    length: Duration,
    flood: impl Future<Output = anyhow::Result<String>>,
) -> anyhow::Result<Figures> {
    let device = format!("floods-normal-{name}");
    register_device(ctx, &device).await?;
    println!("== {name}");
    let from_ms = now_ms();
    let (stop, stopped) = watch::channel(false);
    let (stop_memory, memory_stopped) = watch::channel(false);
    let memory = tokio::spawn(sample_memory(ctx.pid, memory_stopped));
    let prober = tokio::spawn(probe_healthz(ctx.host.clone(), stopped.clone()));
    let client = tokio::spawn(normal_client(ctx.clone(), device.clone(), stopped));
    let started = Instant::now();
    tokio::pin!(flood);
    let done = tokio::select! {
        d = &mut flood => Some(d),
        _ = tokio::time::sleep(length) => None,
    };
    let flood_s = started.elapsed().as_secs_f64();
    let _ = stop.send(true);
    let probes = prober.await?;
    let reports = client.await?;
    let (detail, teardown) = match done {
        Some(d) => (d, None),
        None => {
            let (stop_teardown, teardown_stopped) = watch::channel(false);
            let prober = tokio::spawn(probe_healthz(ctx.host.clone(), teardown_stopped));
            let began = Instant::now();
            let d = flood.await;
            let teardown_s = began.elapsed().as_secs_f64();
            let _ = stop_teardown.send(true);
            (d, Some((teardown_s, prober.await?)))
        }
    };
    let _ = stop_memory.send(true);
    let peak_rss_kib = memory.await?;
    let detail = detail.with_context(|| format!("flood {name}"))?;
    println!("{detail}");
    let stored = stored_fixes(ctx, &device, from_ms).await?;
    let hwm_kib = ctx.pid.and_then(|pid| status_kib(pid, "VmHWM"));
    let figures = Figures { name: name.to_owned(), peak_rss_kib, hwm_kib, probes, reports, stored, teardown };
    print_figures(&figures, flood_s);
    Ok(figures)
}

fn print_figures(f: &Figures, flood_s: f64) {
    let p = &f.probes;
    let r = &f.reports;
    println!(
        "{}: {flood_s:.1} s; server peak VmRSS {:.1} MiB, VmHWM {} MiB",
        f.name,
        kib_to_mib(f.peak_rss_kib),
        f.hwm_kib.map_or("?".to_owned(), |k| format!("{:.1}", kib_to_mib(k)))
    );
    println!(
        "  healthz: {} probes, {} failed{}; ms p50 {:.2}, p99 {:.2}, max {:.2} (at +{:.1} s)",
        p.latencies_us.len(),
        p.failures.values().sum::<u64>(),
        if p.failures.is_empty() { String::new() } else { format!(" ({})", counts(&p.failures)) },
        p.percentile_ms(0.50),
        p.percentile_ms(0.99),
        p.percentile_ms(1.0),
        p.slowest_at_s,
    );
    println!(
        "  normal client: {} sent, {} acknowledged, {} stored{}; ms p50 {:.2}, p99 {:.2}, max {:.2}",
        r.sent,
        r.acked,
        f.stored,
        if r.refused.is_empty() { String::new() } else { format!(", not acknowledged: {}", counts(&r.refused)) },
        percentile_ms(&r.latencies_us, 0.50),
        percentile_ms(&r.latencies_us, 0.99),
        percentile_ms(&r.latencies_us, 1.0),
    );
    if let Some((teardown_s, p)) = &f.teardown {
        println!(
            "  teardown (the flood's sockets closed) {teardown_s:.1} s: healthz {} probes, {} failed; ms p50 {:.2}, max {:.2}",
            p.latencies_us.len(),
            p.failures.values().sum::<u64>(),
            p.percentile_ms(0.50),
            p.percentile_ms(1.0),
        );
    }
}

/// `a ×3, b ×1`.
fn counts<K: std::fmt::Display>(m: &BTreeMap<K, u64>) -> String {
    m.iter().map(|(k, n)| format!("{k} ×{n}")).collect::<Vec<_>>().join(", ")
}

fn summary(phases: &[Figures]) {
    println!("== summary (targets: peak RSS under {TARGET_RSS_MIB} MiB, /healthz within {TARGET_HEALTHZ_MS} ms, every acknowledged report stored)");
    println!("phase       peak RSS MiB  healthz p99 ms  (x quiet)  healthz max ms  failed  acked  stored  lost  teardown healthz max ms");
    let quiet_p99 = phases.first().map_or(f64::NAN, |q| q.probes.percentile_ms(0.99));
    let mut missed = Vec::new();
    for f in phases {
        let p99 = f.probes.percentile_ms(0.99);
        let max = f.probes.percentile_ms(1.0);
        let failed = f.probes.failures.values().sum::<u64>();
        let lost = f.reports.acked.saturating_sub(f.stored);
        let rss = kib_to_mib(f.peak_rss_kib);
        println!(
            "{:<11} {:>12.1}  {:>14.2}  {:>9.1}  {:>14.2}  {:>6}  {:>5}  {:>6}  {:>4}  {:>23}",
            f.name,
            rss,
            p99,
            p99 / quiet_p99,
            max,
            failed,
            f.reports.acked,
            f.stored,
            lost,
            f.teardown.as_ref().map_or("-".to_owned(), |(_, p)| format!("{:.2}", p.percentile_ms(1.0)))
        );
        if rss >= TARGET_RSS_MIB {
            missed.push(format!("{}: peak RSS {rss:.1} MiB", f.name));
        }
        if max > TARGET_HEALTHZ_MS || failed > 0 {
            missed.push(format!("{}: /healthz max {max:.1} ms, {failed} failed", f.name));
        }
        if lost > 0 {
            missed.push(format!("{}: {lost} acknowledged reports not stored", f.name));
        }
    }
    if let Some(hwm) = phases.last().and_then(|f| f.hwm_kib) {
        println!("server VmHWM at the end: {:.1} MiB", kib_to_mib(hwm));
    }
    if missed.is_empty() {
        println!("targets met");
    } else {
        println!("TARGETS MISSED: {}", missed.join("; "));
    }
}

/// The server's resident memory every 100 ms until stopped; returns the peak (KiB).
async fn sample_memory(pid: Option<u32>, mut stopped: watch::Receiver<bool>) -> u64 {
    let Some(pid) = pid else { return 0 };
    let mut peak = 0;
    loop {
        peak = peak.max(status_kib(pid, "VmRSS").unwrap_or(0));
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = stopped.changed() => break,
        }
    }
    peak.max(status_kib(pid, "VmRSS").unwrap_or(0))
}

/// Asks `GET /healthz` every 50 ms, each time on a fresh connection (as a load balancer's
/// health check does, and so that a server out of sockets shows), until stopped.
async fn probe_healthz(host: String, mut stopped: watch::Receiver<bool>) -> Probes {
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").into_bytes();
    let mut probes = Probes::default();
    let mut buf = Vec::new();
    let (began, mut slowest_us) = (Instant::now(), 0);
    loop {
        let started = Instant::now();
        let answer = tokio::time::timeout(PROBE_TIMEOUT, async {
            let mut stream = TcpStream::connect(&host).await?;
            stream.set_nodelay(true)?;
            roundtrip(&mut stream, &req, &mut buf).await
        })
        .await;
        let took_us = started.elapsed().as_micros() as u64;
        probes.latencies_us.push(took_us);
        if took_us > slowest_us {
            slowest_us = took_us;
            probes.slowest_at_s = started.duration_since(began).as_secs_f64();
        }
        let failure = match answer {
            Ok(Ok(200)) => None,
            Ok(Ok(status)) => Some(format!("status {status}")),
            Ok(Err(e)) => Some(format!("{:?}", e.kind())),
            Err(_) => Some(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
        };
        if let Some(f) = failure {
            *probes.failures.entry(f).or_default() += 1;
        }
        tokio::select! {
            _ = tokio::time::sleep_until((started + PROBE_EVERY).into()) => {}
            _ = stopped.changed() => break,
        }
    }
    probes.latencies_us.sort_unstable();
    probes
}

/// A registered device reporting as Traccar Client does (one OsmAnd GET per fix, on a
/// kept-alive connection, reconnecting when it is closed), at `report_rate` a second,
/// each fix with its own millisecond time and a slow walk, so that none is a repeat or a
/// jump.
async fn normal_client(ctx: Arc<Ctx>, device: String, mut stopped: watch::Receiver<bool>) -> Reports {
    let key = ctx.key(&device);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / ctx.args.report_rate.max(0.1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reports = Reports::default();
    let mut stream: Option<TcpStream> = None;
    let (mut req, mut buf) = (Vec::new(), Vec::new());
    let mut last_ms = 0;
    for step in 0u64.. {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => break,
        }
        let t = now_ms().max(last_ms + 1);
        last_ms = t;
        let (lon, lat) = (107.20 + step as f64 * 0.000_001, 30.75 + step as f64 * 0.000_001);
        req.clear();
        let _ = write!(
            Vec8(&mut req),
            "GET /osmand?id={device}&timestamp={t}&lat={lat:.7}&lon={lon:.7}&speed=0.3&accuracy=8&key={key} HTTP/1.1\r\nHost: {}\r\n\r\n",
            ctx.host
        );
        reports.sent += 1;
        let started = Instant::now();
        let outcome = tokio::time::timeout(Duration::from_secs(10), async {
            if stream.is_none() {
                let s = TcpStream::connect(&ctx.host).await?;
                s.set_nodelay(true)?;
                stream = Some(s);
            }
            let s = stream.as_mut().ok_or_else(|| std::io::Error::other("no connection"))?;
            roundtrip(s, &req, &mut buf).await
        })
        .await;
        reports.latencies_us.push(started.elapsed().as_micros() as u64);
        let refusal = match outcome {
            Ok(Ok(200)) => {
                reports.acked += 1;
                None
            }
            Ok(Ok(status)) => Some(format!("status {status}")),
            Ok(Err(e)) => {
                stream = None;
                Some(format!("{:?}", e.kind()))
            }
            Err(_) => {
                stream = None;
                Some("no answer within 10 s".to_owned())
            }
        };
        if let Some(r) = refusal {
            *reports.refused.entry(r).or_default() += 1;
        }
    }
    reports.latencies_us.sort_unstable();
    reports
}

/// `write!` into a byte buffer.
struct Vec8<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Vec8<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// How many fixes of `device` since `from_ms` the server's history holds.
async fn stored_fixes(ctx: &Ctx, device: &str, from_ms: i64) -> anyhow::Result<u64> {
    let r = ctx
        .http
        .get(format!("{}/api/v1/history/track", ctx.url))
        .query(&[
            ("device_id", device),
            ("from", &(from_ms - 1000).to_string()),
            ("to", &(now_ms() + 60_000).to_string()),
        ])
        .bearer_auth(&ctx.token)
        .send()
        .await
        .context("reading the normal client's track")?;
    if r.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(0);
    }
    anyhow::ensure!(r.status().is_success(), "reading the normal client's track: {}", r.status());
    let v: serde_json::Value = r.json().await?;
    v["properties"]["fixes"].as_u64().context("the track names no count of fixes")
}

async fn register_device(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    let r = ctx
        .http
        .post(format!("{}/api/v1/devices", ctx.url))
        .bearer_auth(&ctx.token)
        .json(&serde_json::json!({"device_id": id, "name": id, "kind": "other", "key": ctx.key(id)}))
        .send()
        .await
        .with_context(|| format!("registering {id}"))?;
    anyhow::ensure!(r.status().is_success(), "registering {id}: {} {}", r.status(), r.text().await.unwrap_or_default());
    Ok(())
}

async fn register_camera(ctx: &Ctx) -> anyhow::Result<()> {
    let r = ctx
        .http
        .post(format!("{}/api/v1/cameras", ctx.url))
        .bearer_auth(&ctx.token)
        .json(&serde_json::json!({"camera_id": CAMERA, "name": "floods checkpoint", "kind": "checkpoint",
            "lon": 107.2, "lat": 30.73, "key": ctx.key(CAMERA)}))
        .send()
        .await
        .context("registering the floods camera")?;
    anyhow::ensure!(r.status().is_success(), "registering the floods camera: {}", r.status());
    Ok(())
}

/// The first 300 characters of an answer, on one line.
fn clip(text: &str) -> String {
    let one_line: String = text.chars().take(300).map(|c| if c.is_control() { ' ' } else { c }).collect();
    one_line.trim().to_owned()
}

// ---------------------------------------------------------------------------------
// Flood 1: replays of reports with large attributes.

/// The device whose reports carry the large attributes.
const ATTRS_DEVICE: &str = "floods-attrs";

/// Stores reports of [`ATTRS_DEVICE`] with the largest attributes the server accepts:
/// first tries 1 MiB through OsmAnd's extra parameters and our JSON `attributes`, then
/// finds the largest single value (halving), how many such values (doubling, then
/// bisecting) and the largest last value that still fits, and stores
/// `attribute_reports` reports of that shape. Returns what it found, for the output.
async fn prepare_attributes(ctx: &Ctx) -> anyhow::Result<String> {
    register_device(ctx, ATTRS_DEVICE).await?;
    let mut out = String::from("== replays: preparing reports with the largest attributes accepted\n");
    let mut t = now_ms() - 2 * 3600 * 1000;
    let mut next_time = || {
        t += 1000;
        t
    };

    // OsmAnd: the key in the URL, so the server knows the device before the body, and
    // the 1 MiB extra parameter in a form body.
    let extra = "x".repeat(FIRST_ATTRIBUTE_BYTES);
    let form = format!("id={ATTRS_DEVICE}&timestamp={}&lat=30.75&lon=107.2&accuracy=8&extra={extra}", next_time());
    let r = ctx
        .http
        .post(format!("{}/osmand?key={}", ctx.url, ctx.key(ATTRS_DEVICE)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await?;
    let status = r.status();
    let _ = writeln!(
        out,
        "OsmAnd report with an extra parameter of {FIRST_ATTRIBUTE_BYTES} bytes: {status} {}",
        clip(&r.text().await.unwrap_or_default())
    );

    // Our JSON: halve one value until accepted.
    let mut value_bytes = FIRST_ATTRIBUTE_BYTES;
    let mut first = true;
    let value_bytes = loop {
        let attributes = attributes_of(1, value_bytes, value_bytes);
        let (accepted, answer) = post_attributes(ctx, &[attributes], &mut next_time).await?;
        if first {
            let _ = writeln!(out, "JSON report with an attribute of {value_bytes} bytes: {answer}");
            first = false;
        }
        if accepted == 1 {
            break value_bytes;
        }
        anyhow::ensure!(value_bytes > 1, "no attribute of any size is accepted: {answer}");
        value_bytes /= 2;
    };
    // How many values of that size: double, then bisect between the last accepted and
    // the first refused count.
    let mut refusal = String::new();
    let (mut good, mut bad) = (1usize, None);
    while bad.is_none() && good < 4096 {
        let n = good * 2;
        let (accepted, answer) =
            post_attributes(ctx, &[attributes_of(n, value_bytes, value_bytes)], &mut next_time).await?;
        if accepted == 1 {
            good = n;
        } else {
            bad = Some(n);
            refusal = answer;
        }
    }
    if let Some(mut bad) = bad {
        while bad - good > 1 {
            let n = (good + bad) / 2;
            let (accepted, answer) =
                post_attributes(ctx, &[attributes_of(n, value_bytes, value_bytes)], &mut next_time).await?;
            if accepted == 1 {
                good = n;
            } else {
                bad = n;
                refusal = answer;
            }
        }
    }
    // The largest last value that still fits beside them.
    let (mut last_good, mut last_bad) = (0usize, value_bytes + 1);
    while last_bad - last_good > 1 {
        let v = (last_good + last_bad) / 2;
        let (accepted, answer) =
            post_attributes(ctx, &[attributes_of(good + 1, value_bytes, v)], &mut next_time).await?;
        if accepted == 1 {
            last_good = v;
        } else {
            last_bad = v;
            refusal = answer;
        }
    }
    let shape = |n: usize| attributes_of(n, value_bytes, last_good);
    let n_attributes = if last_good > 0 { good + 1 } else { good };
    let one = shape(n_attributes);
    let attribute_bytes: usize = one.iter().map(|(k, v)| k.len() + v.as_str().map_or(0, str::len)).sum();
    let _ = writeln!(
        out,
        "largest accepted: {n_attributes} attributes ({good} of {value_bytes} bytes{}), {attribute_bytes} bytes of names and values; one more byte: {refusal}",
        if last_good > 0 { format!(", one of {last_good}") } else { String::new() }
    );

    // Store them, in batches that fit the body limit.
    let reports = ctx.args.attribute_reports.min(MAX_ATTRIBUTE_FILL_BYTES / attribute_bytes.max(1)).max(1);
    let per_batch = (900 * 1024 / (attribute_bytes + 300)).clamp(1, 100);
    let started = Instant::now();
    let mut stored = 0;
    // Spread over the hour before now, so that none is a repeat or too old.
    let mut t = now_ms() - 3_600_000;
    let step_ms = (3_000_000 / reports as i64).max(1);
    let mut next_fill = || {
        t += step_ms;
        t
    };
    let mut left = reports;
    while left > 0 {
        let k = left.min(per_batch);
        let batch: Vec<_> = (0..k).map(|_| shape(n_attributes)).collect();
        let (accepted, answer) = post_attributes(ctx, &batch, &mut next_fill).await?;
        anyhow::ensure!(accepted > 0, "storing reports with large attributes: {answer}");
        stored += accepted;
        left -= k;
    }
    let _ = write!(
        out,
        "stored {stored} reports of {attribute_bytes} attribute bytes ({:.1} MB of attributes) in {:.1} s",
        (stored * attribute_bytes) as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(out)
}

/// `n` string attributes `a000`…: all of `value_bytes` but the last, of `last_bytes`.
fn attributes_of(n: usize, value_bytes: usize, last_bytes: usize) -> serde_json::Map<String, serde_json::Value> {
    (0..n)
        .map(|i| {
            let len = if i + 1 == n { last_bytes } else { value_bytes };
            (format!("a{i:03}"), serde_json::Value::String("x".repeat(len)))
        })
        .collect()
}

/// Posts one report per attribute set to `POST /api/v1/positions` (times from
/// `next_time`) and returns how many were accepted and the answer, clipped.
async fn post_attributes(
    ctx: &Ctx,
    sets: &[serde_json::Map<String, serde_json::Value>],
    next_time: &mut impl FnMut() -> i64,
) -> anyhow::Result<(usize, String)> {
    let positions: Vec<_> = sets
        .iter()
        .map(|a| {
            serde_json::json!({"device_id": ATTRS_DEVICE, "lon": 107.2, "lat": 30.75, "time": next_time(),
                "accuracy_m": 8.0, "attributes": a})
        })
        .collect();
    let r = ctx
        .http
        .post(format!("{}/api/v1/positions", ctx.url))
        .bearer_auth(&ctx.token)
        .json(&serde_json::json!({ "positions": positions }))
        .send()
        .await
        .context("posting reports with attributes")?;
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    let accepted = if status.is_success() {
        serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["accepted"].as_array().map(Vec::len))
            .unwrap_or(0)
    } else {
        0
    };
    Ok((accepted, format!("{status} {}", clip(&text))))
}

/// Opens one `since=0` replay per operator token at once, never reading; a refused one
/// tries again every second for the flood's duration. Counts the answers.
async fn replays(ctx: Arc<Ctx>) -> anyhow::Result<String> {
    let end = ctx.deadline();
    let first: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let retries: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..ctx.args.operators {
        let (ctx, first, retries) = (ctx.clone(), first.clone(), retries.clone());
        tasks.spawn(async move {
            let path = format!("/api/v1/live?token={}&since=0", ctx.operator(i));
            let mut held = None;
            let mut attempt = 0;
            while held.is_none() && Instant::now() < end {
                let (answer, socket) = upgrade(&ctx.host, &path).await;
                let into = if attempt == 0 { &first } else { &retries };
                *into.lock().unwrap_or_else(|e| e.into_inner()).entry(answer).or_default() += 1;
                attempt += 1;
                match socket {
                    Some(s) => held = Some(s),
                    None => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            }
            // Held unread until the flood ends: the server must bound what it keeps
            // for a client that takes nothing.
            tokio::time::sleep_until(end.into()).await;
            held.map(still_open)
        });
    }
    let mut open = 0;
    while let Some(r) = tasks.join_next().await {
        if r? == Some(true) {
            open += 1;
        }
    }
    let first = counts(&first.lock().unwrap_or_else(|e| e.into_inner()));
    let retries = counts(&retries.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(format!(
        "{} replays with since=0, one per operator token, never reading: first answers {first}; retries {}; still open at the end {open}",
        ctx.args.operators,
        if retries.is_empty() { "none".to_owned() } else { retries }
    ))
}

/// Sends a websocket upgrade for `path` and reads the answer's head: `101` with the
/// socket, or the status (or the failure) without one. Nothing after the head is read.
async fn upgrade(host: &str, path: &str) -> (String, Option<TcpStream>) {
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    let attempt = tokio::time::timeout(Duration::from_secs(10), async {
        let mut s = TcpStream::connect(host).await?;
        s.write_all(req.as_bytes()).await?;
        let status = read_status(&mut s).await?;
        Ok::<_, std::io::Error>((status, s))
    })
    .await;
    match attempt {
        Ok(Ok((Some(101), s))) => ("101".to_owned(), Some(s)),
        Ok(Ok((Some(status), _))) => (status.to_string(), None),
        Ok(Ok((None, _))) => ("closed".to_owned(), None),
        Ok(Err(e)) => (format!("{:?}", e.kind()), None),
        Err(_) => ("no answer within 10 s".to_owned(), None),
    }
}

/// Reads up to the end of a response head and returns its status; `None` when the
/// server closes first. Reads byte by byte past nothing: the head is all it consumes
/// of what the server sent (a little more when it came in the same segment).
async fn read_status(s: &mut (impl tokio::io::AsyncRead + Unpin)) -> std::io::Result<Option<u16>> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let status = std::str::from_utf8(&buf[..end]).ok().and_then(|h| h.get(9..12)).and_then(|s| s.parse().ok());
            return Ok(status);
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 || buf.len() > 64 * 1024 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Whether the server still keeps `s` open: drains what it sent (without waiting) and
/// looks for the end of the stream.
fn still_open(s: TcpStream) -> bool {
    let mut chunk = vec![0u8; 64 * 1024];
    for _ in 0..1024 {
        match s.try_read(&mut chunk) {
            Ok(0) => return false,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
    true
}

// ---------------------------------------------------------------------------------
// Flood 2: large unauthenticated bodies.

/// What the large-body senders of one endpoint saw.
#[derive(Default)]
struct BodyAnswers {
    answers: BTreeMap<String, u64>,
    /// Milliseconds from the end of the headers to the answer.
    answer_us: Vec<u64>,
    /// Body bytes sent before the answer (or the close).
    sent_bytes: Vec<u64>,
}

/// `bodies` connections at once, half to `POST /api/v1/alerts` (JSON), half to
/// `POST /osmand` (a form), none with credentials, each announcing an 8 MiB body and
/// streaming it while reading the answer; each starts again when answered, until the
/// flood ends.
async fn bodies(ctx: Arc<Ctx>) -> anyhow::Result<String> {
    let end = ctx.deadline();
    let targets = [("/api/v1/alerts", "application/json"), ("/osmand", "application/x-www-form-urlencoded")];
    let seen: Vec<Arc<Mutex<BodyAnswers>>> = targets.iter().map(|_| Arc::default()).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..ctx.args.bodies {
        let t = i % targets.len();
        let (path, content_type) = targets[t];
        let (host, seen) = (ctx.host.clone(), seen[t].clone());
        tasks.spawn(async move {
            while Instant::now() < end {
                let (answer, answer_us, sent) = large_body(&host, path, content_type).await;
                let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                *seen.answers.entry(answer).or_default() += 1;
                seen.answer_us.extend(answer_us);
                seen.sent_bytes.push(sent);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r?;
    }
    let mut out = format!(
        "{} connections at once, each announcing {LARGE_BODY_BYTES} bytes without credentials:",
        ctx.args.bodies
    );
    for ((path, _), seen) in targets.iter().zip(&seen) {
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.answer_us.sort_unstable();
        seen.sent_bytes.sort_unstable();
        let mean_sent = seen.sent_bytes.iter().sum::<u64>() as f64 / seen.sent_bytes.len().max(1) as f64;
        let _ = write!(
            out,
            "\n  POST {path}: {} attempts; answers {}; answered after ms p50 {:.1}, max {:.1}; body bytes sent before the answer: mean {:.0}, max {}",
            seen.sent_bytes.len(),
            counts(&seen.answers),
            percentile_ms(&seen.answer_us, 0.5),
            percentile_ms(&seen.answer_us, 1.0),
            mean_sent,
            seen.sent_bytes.last().copied().unwrap_or(0)
        );
    }
    Ok(out)
}

/// One large body: the headers, then the body in 64 KiB writes while the answer is read.
/// Returns the answer (status or failure), its time after the headers, and the body
/// bytes written by then.
async fn large_body(host: &str, path: &str, content_type: &str) -> (String, Option<u64>, u64) {
    let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(host)).await else {
        return ("connect failed".to_owned(), None, 0);
    };
    let (mut rd, mut wr) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {LARGE_BODY_BYTES}\r\n\r\n"
    );
    if wr.write_all(head.as_bytes()).await.is_err() {
        return ("closed before the body".to_owned(), None, 0);
    }
    let started = Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let writer = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let chunk = vec![b'x'; 64 * 1024];
            let mut left = LARGE_BODY_BYTES;
            while left > 0 {
                let n = left.min(chunk.len() as u64);
                if wr.write_all(&chunk[..n as usize]).await.is_err() {
                    break;
                }
                sent.fetch_add(n, Relaxed);
                left -= n;
            }
            // Keep the connection open (the write half) until the answer comes.
            std::future::pending::<()>().await;
        })
    };
    let answer = tokio::time::timeout(Duration::from_secs(60), read_status(&mut rd)).await;
    let answer_us = started.elapsed().as_micros() as u64;
    writer.abort();
    let sent = sent.load(Relaxed);
    match answer {
        Ok(Ok(Some(status))) => (status.to_string(), Some(answer_us), sent),
        Ok(Ok(None)) => ("closed without an answer".to_owned(), None, sent),
        Ok(Err(e)) => (format!("{:?}", e.kind()), None, sent),
        Err(_) => ("no answer within 60 s".to_owned(), None, sent),
    }
}

// ---------------------------------------------------------------------------------
// Flood 3: idle websockets.

/// `websockets` live-feed connections with operator tokens (no replay), opened 64 at a
/// time and then held, never read and never ponged, until the flood ends.
async fn websockets(ctx: Arc<Ctx>) -> anyhow::Result<String> {
    let end = ctx.deadline();
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    let answers: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    // When the last upgrade was answered, microseconds after the first was sent.
    let (started, last_answer_us) = (Instant::now(), Arc::new(AtomicU64::new(0)));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..ctx.args.websockets {
        let (ctx, gate, answers, last_answer_us) = (ctx.clone(), gate.clone(), answers.clone(), last_answer_us.clone());
        tasks.spawn(async move {
            let path = format!("/api/v1/live?token={}", ctx.operator(i));
            let (answer, socket) = {
                let _permit = gate.acquire().await;
                upgrade(&ctx.host, &path).await
            };
            last_answer_us.fetch_max(started.elapsed().as_micros() as u64, Relaxed);
            *answers.lock().unwrap_or_else(|e| e.into_inner()).entry(answer).or_default() += 1;
            tokio::time::sleep_until(end.into()).await;
            socket.map(still_open)
        });
    }
    let (mut open, mut closed) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        match r? {
            Some(true) => open += 1,
            Some(false) => closed += 1,
            None => {}
        }
    }
    Ok(format!(
        "{} websocket upgrades with operator tokens, 64 at a time, never read: answers {} (the last after {:.1} s); at the end {open} still open, {closed} closed by the server",
        ctx.args.websockets,
        counts(&answers.lock().unwrap_or_else(|e| e.into_inner())),
        last_answer_us.load(Relaxed) as f64 / 1e6
    ))
}

// ---------------------------------------------------------------------------------
// Flood 4: slowloris.

#[derive(Default)]
struct Slow {
    connections: u64,
    connect_failures: BTreeMap<String, u64>,
    /// How the server ended a connection: an answer's status, a close or a reset.
    endings: BTreeMap<String, u64>,
    /// Microseconds from the connection to its end, for those the server ended.
    lifetimes_us: Vec<u64>,
    open_at_end: u64,
}

/// `slowloris` sockets, each sending a request's line and headers one byte every
/// `slowloris_interval_s` (never finishing them); one the server closes is opened again,
/// until the flood ends. Connections are opened 100 at a time.
async fn slowloris(ctx: Arc<Ctx>) -> anyhow::Result<String> {
    let end = ctx.deadline();
    let every = Duration::from_secs_f64(ctx.args.slowloris_interval_s.max(0.01));
    let gate = Arc::new(tokio::sync::Semaphore::new(100));
    let slow: Arc<Mutex<Slow>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..ctx.args.slowloris {
        let (host, gate, slow) = (ctx.host.clone(), gate.clone(), slow.clone());
        tasks.spawn(async move {
            let request =
                format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nUser-Agent: floods\r\nX-Slow: {}", "a".repeat(4096));
            while Instant::now() < end {
                let connected = {
                    let _permit = gate.acquire().await;
                    tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(&host)).await
                };
                let mut s = match connected {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        *slow
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .connect_failures
                            .entry(format!("{:?}", e.kind()))
                            .or_default() += 1;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                    Err(_) => {
                        *slow
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .connect_failures
                            .entry("timeout".to_owned())
                            .or_default() += 1;
                        continue;
                    }
                };
                slow.lock().unwrap_or_else(|p| p.into_inner()).connections += 1;
                let opened = Instant::now();
                let ending = trickle(&mut s, request.as_bytes(), every, end).await;
                let mut slow = slow.lock().unwrap_or_else(|p| p.into_inner());
                match ending {
                    Some(how) => {
                        *slow.endings.entry(how).or_default() += 1;
                        slow.lifetimes_us.push(opened.elapsed().as_micros() as u64);
                    }
                    None => slow.open_at_end += 1,
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r?;
    }
    let mut slow = slow.lock().unwrap_or_else(|p| p.into_inner());
    slow.lifetimes_us.sort_unstable();
    Ok(format!(
        "{} sockets sending headers one byte every {:.1} s: {} connections made{}; ended by the server: {} ({}), after s p50 {:.1}, max {:.1}; still open at the end {}",
        ctx.args.slowloris,
        every.as_secs_f64(),
        slow.connections,
        if slow.connect_failures.is_empty() {
            String::new()
        } else {
            format!(", connects failed: {}", counts(&slow.connect_failures))
        },
        slow.lifetimes_us.len(),
        counts(&slow.endings),
        percentile_ms(&slow.lifetimes_us, 0.5) / 1000.0,
        percentile_ms(&slow.lifetimes_us, 1.0) / 1000.0,
        slow.open_at_end
    ))
}

/// Sends `request` one byte every `every` until `end`, reading whatever the server says.
/// Returns how the server ended the connection, or `None` if it was still open at `end`.
async fn trickle(s: &mut TcpStream, request: &[u8], every: Duration, end: Instant) -> Option<String> {
    let mut tick = tokio::time::interval(every);
    let mut chunk = [0u8; 1024];
    let mut answer = Vec::new();
    let mut next = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(end.into()) => return None,
            r = s.read(&mut chunk) => match r {
                Ok(0) => {
                    let status = std::str::from_utf8(&answer).ok().and_then(|h| h.get(9..12)).map(str::to_owned);
                    return Some(status.map_or("closed".to_owned(), |s| format!("status {s}")));
                }
                Ok(n) => answer.extend_from_slice(&chunk[..n.min(1024)]),
                Err(e) => return Some(format!("{:?}", e.kind())),
            },
            _ = tick.tick() => {
                let byte = request.get(next).copied().unwrap_or(b'a');
                next += 1;
                if let Err(e) = s.write_all(&[byte]).await {
                    return Some(format!("{:?}", e.kind()));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Flood 5: the worst decoder bodies.

/// A push body and its content type.
struct Push {
    name: &'static str,
    content_type: String,
    body: Vec<u8>,
}

/// What the server answered to one kind of push, and how fast.
#[derive(Default)]
struct PushAnswers {
    answers: BTreeMap<String, u64>,
    latencies_us: Vec<u64>,
}

/// The worst pushes at the decoder's limits (accepted) and just over them (refused),
/// `decoder_concurrency` at once, round after round, with the camera's key.
async fn decoders(ctx: Arc<Ctx>) -> anyhow::Result<String> {
    let end = ctx.deadline();
    let mut pushes = worst_pushes();
    if !ctx.args.pushes.is_empty() {
        pushes.retain(|p| ctx.args.pushes.iter().any(|n| n == p.name));
        anyhow::ensure!(!pushes.is_empty(), "--pushes names no push");
    }
    let pushes = Arc::new(pushes);
    let seen: Arc<Mutex<Vec<PushAnswers>>> =
        Arc::new(Mutex::new(pushes.iter().map(|_| PushAnswers::default()).collect()));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..ctx.args.decoder_concurrency.max(1) {
        let (ctx, pushes, seen) = (ctx.clone(), pushes.clone(), seen.clone());
        tasks.spawn(async move {
            let mut stream: Option<TcpStream> = None;
            let mut buf = Vec::new();
            let mut i = w;
            while Instant::now() < end {
                let p = i % pushes.len();
                i += 1;
                let push = &pushes[p];
                let mut req = format!(
                    "POST /isapi/events?camera={CAMERA}&key={} HTTP/1.1\r\nHost: {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
                    ctx.key(CAMERA),
                    ctx.host,
                    push.content_type,
                    push.body.len()
                )
                .into_bytes();
                req.extend_from_slice(&push.body);
                let started = Instant::now();
                let outcome = tokio::time::timeout(Duration::from_secs(60), async {
                    if stream.is_none() {
                        stream = Some(TcpStream::connect(&ctx.host).await?);
                    }
                    let s = stream.as_mut().ok_or_else(|| std::io::Error::other("no connection"))?;
                    roundtrip(s, &req, &mut buf).await
                })
                .await;
                let answer = match outcome {
                    Ok(Ok(status)) => status.to_string(),
                    Ok(Err(e)) => {
                        stream = None;
                        format!("{:?}", e.kind())
                    }
                    Err(_) => {
                        stream = None;
                        "no answer within 60 s".to_owned()
                    }
                };
                let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                *seen[p].answers.entry(answer).or_default() += 1;
                seen[p].latencies_us.push(started.elapsed().as_micros() as u64);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r?;
    }
    let mut out = format!("{} pushes in flight at once, with the camera's key:", ctx.args.decoder_concurrency);
    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    for (push, PushAnswers { answers, latencies_us: latencies }) in pushes.iter().zip(seen.iter_mut()) {
        latencies.sort_unstable();
        let _ = write!(
            out,
            "\n  {} ({} bytes): {} sent; answers {}; ms p50 {:.1}, max {:.1}",
            push.name,
            push.body.len(),
            latencies.len(),
            counts(answers),
            percentile_ms(latencies, 0.5),
            percentile_ms(latencies, 1.0)
        );
    }
    Ok(out)
}

/// An element name of `len` bytes, different for each `i`.
fn long_name(i: usize, len: usize) -> String {
    let mut name = format!("e{i}_");
    while name.len() < len {
        name.push('n');
    }
    name
}

/// The opening of an alarm the decoder accepts (a motion alarm dated now).
fn alarm_head() -> String {
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<EventNotificationAlert version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">\n<ipAddress>10.23.1.15</ipAddress>\n<channelID>1</channelID>\n<dateTime>{}</dateTime>\n<activePostCount>1</activePostCount>\n<eventType>VMD</eventType>\n<eventState>active</eventState>\n",
        crate::simulate::rfc3339(now_s)
    )
}

const ALARM_TAIL: &str = "</EventNotificationAlert>";

/// Nesting of `depth` elements with names of `name_bytes` inside the alarm, holding
/// `leaves` empty elements with names of `name_bytes`.
fn nested_xml(depth: usize, name_bytes: usize, leaves: usize) -> String {
    let mut xml = alarm_head();
    let names: Vec<String> = (0..depth).map(|i| long_name(i, name_bytes)).collect();
    for n in &names {
        let _ = write!(xml, "<{n}>");
    }
    for i in 0..leaves {
        let _ = write!(xml, "<{}/>", long_name(i % 10, name_bytes));
    }
    for n in names.iter().rev() {
        let _ = write!(xml, "</{n}>");
    }
    xml.push_str(ALARM_TAIL);
    xml
}

/// The alarm head's element count: the root and its six children.
const ALARM_ELEMENTS: usize = 7;

fn worst_pushes() -> Vec<Push> {
    let xml = |name, body: String| Push { name, content_type: "application/xml".to_owned(), body: body.into_bytes() };
    // At the limits: the deepest nesting with the longest names, filled with the longest
    // empty elements up to the element count.
    let depth = XML_MAX_DEPTH - 1;
    let at_limits = nested_xml(depth - 1, XML_MAX_NAME_BYTES, XML_MAX_ELEMENTS - ALARM_ELEMENTS - (depth - 1));
    // Over: the same twice over in elements (refused at the count), names one byte too
    // long, and the issue's shape (31 levels of 1,000-byte names and many leaves).
    let too_many = nested_xml(depth - 1, XML_MAX_NAME_BYTES, 2 * XML_MAX_ELEMENTS);
    let too_long = nested_xml(depth - 1, XML_MAX_NAME_BYTES + 1, 64);
    let issue = nested_xml(31, 1000, 2000);
    // One text as long as the body limit allows.
    let mut long_text = alarm_head();
    long_text.push_str("<eventDescription>");
    long_text.push_str(&"t".repeat(LARGE_BODY_BYTES as usize - 4096));
    long_text.push_str("</eventDescription>");
    long_text.push_str(ALARM_TAIL);
    vec![
        xml("xml-at-limits", at_limits),
        xml("xml-elements-over", too_many),
        xml("xml-names-over", too_long),
        xml("xml-issue-shape", issue),
        xml("xml-long-text", long_text),
        multipart("multipart-at-limits", MULTIPART_MAX_PARTS, MULTIPART_MAX_IMAGES),
        multipart_tiny_parts("multipart-tiny-parts", 800 * 1024),
    ]
}

const BOUNDARY: &str = "floodsboundary";

/// A push of `parts` parts: the alarm's XML, `images` tiny JPEGs and tiny parts.
fn multipart(name: &'static str, parts: usize, images: usize) -> Push {
    let mut body = Vec::new();
    let xml = format!("{}{ALARM_TAIL}", alarm_head());
    let _ = write!(
        Vec8(&mut body),
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"alarm\"\r\nContent-Type: application/xml\r\n\r\n{xml}\r\n"
    );
    for i in 1..parts {
        if i <= images {
            let _ = write!(
                Vec8(&mut body),
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"picture\"; filename=\"{i}.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
            );
            body.extend_from_slice(&[0xFF, 0xD8, 0xFF, 0xD9]);
            body.extend_from_slice(b"\r\n");
        } else {
            let _ = write!(Vec8(&mut body), "--{BOUNDARY}\r\n\r\nx\r\n");
        }
    }
    let _ = write!(Vec8(&mut body), "--{BOUNDARY}--\r\n");
    Push { name, content_type: format!("multipart/form-data; boundary={BOUNDARY}"), body }
}

/// The alarm's XML followed by as many empty parts as fit in `bytes` (the issue's 781
/// KiB push that took 19 s of CPU to split).
fn multipart_tiny_parts(name: &'static str, bytes: usize) -> Push {
    let mut push = multipart(name, 1, 0);
    push.body.truncate(push.body.len() - format!("--{BOUNDARY}--\r\n").len());
    let part = format!("--{BOUNDARY}\r\n\r\nx\r\n");
    while push.body.len() + part.len() < bytes {
        push.body.extend_from_slice(part.as_bytes());
    }
    let _ = write!(Vec8(&mut push.body), "--{BOUNDARY}--\r\n");
    push
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_xml_at_the_limits_holds_exactly_the_most_elements_and_the_deepest_nesting() {
        let xml = worst_pushes().into_iter().find(|p| p.name == "xml-at-limits").unwrap().body;
        let text = String::from_utf8(xml).unwrap();
        let elements = text.matches('<').count() - text.matches("</").count() - text.matches("<?").count();
        assert_eq!(elements, XML_MAX_ELEMENTS);
        let longest = text
            .split('<')
            .filter_map(|t| t.split(['>', '/', ' ']).next())
            .filter(|n| !n.is_empty() && !n.starts_with('?'))
            .map(str::len)
            .max()
            .unwrap();
        assert_eq!(longest, XML_MAX_NAME_BYTES);
        // The root, the nesting, and the leaves inside the deepest element.
        let mut depth = 0usize;
        let mut deepest = 0;
        for tag in text.split('<').skip(1) {
            if tag.starts_with('?') || tag.starts_with('/') {
                depth -= usize::from(tag.starts_with('/'));
            } else if tag.split('>').next().unwrap().ends_with('/') {
                deepest = deepest.max(depth + 1);
            } else {
                depth += 1;
                deepest = deepest.max(depth);
            }
        }
        assert_eq!(deepest, XML_MAX_DEPTH);
    }

    #[test]
    fn the_multipart_at_the_limits_has_the_most_parts_and_images() {
        let push = worst_pushes().into_iter().find(|p| p.name == "multipart-at-limits").unwrap();
        let body = String::from_utf8_lossy(&push.body);
        assert_eq!(body.matches(&format!("--{BOUNDARY}\r\n")).count(), MULTIPART_MAX_PARTS);
        assert_eq!(body.matches("image/jpeg").count(), MULTIPART_MAX_IMAGES);
        assert!(body.ends_with(&format!("--{BOUNDARY}--\r\n")));
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let us: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile_ms(&us, 0.5), 50.0);
        assert_eq!(percentile_ms(&us, 0.99), 99.0);
        assert_eq!(percentile_ms(&us, 1.0), 100.0);
        assert!(percentile_ms(&[], 0.5).is_nan());
    }

    #[test]
    fn status_fields_are_read_in_kib() {
        let pid = std::process::id();
        assert!(status_kib(pid, "VmRSS").is_some_and(|k| k > 0));
        assert!(status_kib(pid, "NoSuchField").is_none());
    }
}
