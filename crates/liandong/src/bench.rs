//! `liandong bench`: load tools that drive a running server through its real HTTP
//! endpoints and report what was acknowledged, how fast and with what latency.

use std::sync::atomic::AtomicI64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::io::Write;

use anyhow::Context;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Acknowledged location reports per second through OsmAnd GETs or JSON batches.
    Ingest(IngestArgs),
    /// Live-feed fan-out: websocket clients, a steady event rate through the real
    /// ingest endpoint, delivered messages/s and ingest→delivery latency.
    Live(crate::bench_live::LiveArgs),
    /// The security floods of issue 12, each while a prober asks /healthz and a device
    /// keeps reporting: peak memory, /healthz latency, acknowledged reports stored.
    Floods(crate::bench_floods::FloodsArgs),
    /// JT/T 808 terminals over TCP: register, authenticate, and location reports
    /// answered (committed) per second.
    Jt808(crate::bench_jt808::Jt808Args),
    /// A year of the demo county in a store, and the history questions asked of it
    /// (issue 18): `generate`, `queries`, `retention`.
    History {
        #[command(subcommand)]
        command: crate::bench_history::Command,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One report per request, as Traccar Client sends them.
    Osmand,
    /// `POST /api/v1/positions` with `--batch` reports per request.
    Batch,
    /// Hikvision ISAPI ANPR pushes (raw XML), one per request, from one checkpoint camera.
    Isapi,
}

/// The camera `--mode isapi` registers and pushes as.
const BENCH_CAMERA: &str = "bench-cam";

#[derive(clap::Args, Debug)]
pub struct IngestArgs {
    /// Server base URL; give it more than once (instances sharing one database) to
    /// spread the connections over them, worker `i` on URL `i mod n`. Devices are
    /// registered through the first.
    #[arg(long = "url", default_value = "http://127.0.0.1:8080")]
    pub urls: Vec<String>,
    /// Admin token (registers the devices and submits batches).
    #[arg(long, env = "LIANDONG_TOKEN")]
    pub token: String,
    #[arg(long, value_enum, default_value = "osmand")]
    pub mode: Mode,
    /// Distinct devices reporting.
    #[arg(long, default_value_t = 1000)]
    pub devices: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 128)]
    pub concurrency: usize,
    /// Reports per request in batch mode.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Seconds to run (after a 1 s warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration_s: f64,
    /// PEM file of the CA that signed the server's certificate, for `https://` URLs.
    #[arg(long, env = "LIANDONG_CA_CERT")]
    pub ca_cert: Option<std::path::PathBuf>,
}

pub async fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Ingest(args) => ingest(args).await,
        Command::Live(args) => crate::bench_live::run(args).await,
        Command::Floods(args) => crate::bench_floods::run(args).await,
        Command::Jt808(args) => crate::bench_jt808::run(args).await,
        Command::History { command } => crate::bench_history::run(command).await,
    }
}

/// A deterministic walk near Dazhu's county seat, so reports pass the jump filter.
pub(crate) fn position(device: usize, step: u64) -> (f64, f64) {
    let lon = 107.16 + (device % 100) as f64 * 0.0008 + (step % 500) as f64 * 0.00001;
    let lat = 30.70 + (device / 100 % 100) as f64 * 0.0006 + (step % 500) as f64 * 0.00001;
    (lon, lat)
}

async fn ingest(args: IngestArgs) -> anyhow::Result<()> {
    // The URLs first: an https:// one without its CA fails here, with the reason.
    let hosts = args
        .urls
        .iter()
        .map(|u| crate::tls::Target::parse(u, args.ca_cert.as_deref()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let client = crate::tls::http_client(
        reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).timeout(Duration::from_secs(30)),
        args.ca_cert.as_deref(),
    )?;
    let run = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis());
    let first = args.urls.first().context("--url is required")?.trim_end_matches('/').to_owned();
    let ids = register(&client, &first, &args.token, args.devices, &run).await?;
    if args.mode == Mode::Isapi {
        let r = client
            .post(format!("{first}/api/v1/cameras"))
            .bearer_auth(&args.token)
            .json(&serde_json::json!({"camera_id": BENCH_CAMERA, "name": "bench checkpoint", "kind": "checkpoint",
                "lon": 107.2, "lat": 30.73, "key": format!("bench-{run}-camera")}))
            .send()
            .await
            .context("registering the bench camera")?;
        anyhow::ensure!(r.status().is_success(), "registering the bench camera: {}", r.status());
    }
    let stride = args_stride(ids.len());
    let load = Arc::new(Load {
        workers: args.concurrency.max(1),
        last_fix_ms: ids.iter().map(|_| AtomicI64::new(0)).collect(),
        ids,
        run,
        token: args.token.clone(),
        mode: args.mode,
        batch: args.batch.max(1),
        stride,
    });
    // Instances sharing one database learn of devices registered through another on
    // their next registry refresh; the run starts once every one admits them.
    for host in hosts.iter().skip(1) {
        wait_admitted(&load, host).await?;
    }
    let warmup_end = Instant::now() + Duration::from_secs(1);
    let end = warmup_end + Duration::from_secs_f64(args.duration_s);
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..args.concurrency {
        let (load, host) = (load.clone(), hosts[w % hosts.len()].clone());
        workers.spawn(async move {
            let mut latencies_us = Vec::new();
            let (mut acked, mut failed) = (0u64, 0u64);
            let mut stream = host.connect().await?;
            let (mut req, mut body, mut buf) = (Vec::new(), String::new(), Vec::new());
            let mut step = 0u64;
            let mut d = w % load.ids.len();
            while Instant::now() < end {
                step += 1;
                let n = load.request(&mut req, &mut body, &host.host, w, step, &mut d)?;
                let started = Instant::now();
                let status = roundtrip(&mut stream, &req, &mut buf).await;
                if started >= warmup_end {
                    let a = if matches!(status, Ok(200)) { acknowledged(load.mode, n, &buf) } else { 0 };
                    acked += a;
                    failed += n - a;
                    latencies_us.push(started.elapsed().as_micros() as u64);
                }
            }
            Ok::<_, anyhow::Error>((w, acked, failed, latencies_us))
        });
    }
    // A mark on stderr when the measured part begins, for scripts that sample the
    // server's or the database's counters over exactly that time.
    let duration_s = args.duration_s;
    tokio::spawn(async move {
        tokio::time::sleep_until(warmup_end.into()).await;
        eprintln!("measuring for {duration_s} s");
    });
    let (mut acked, mut failed, mut lat) = (0u64, 0u64, Vec::new());
    let mut acked_via = vec![0u64; hosts.len()];
    while let Some(r) = workers.join_next().await {
        let (w, a, f, l) = r??;
        acked_via[w % hosts.len()] += a;
        acked += a;
        failed += f;
        lat.extend(l);
    }
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or(0) as f64
            / 1000.0
    };
    println!(
        "mode={:?} devices={} concurrency={} batch={} urls={} duration={:.1}s\nacknowledged reports: {acked} ({:.0}/s), failed: {failed}\nrequest latency ms: p50 {:.2}, p99 {:.2}, max {:.2}",
        args.mode,
        args.devices,
        args.concurrency,
        if args.mode == Mode::Batch { args.batch } else { 1 },
        hosts.len(),
        args.duration_s,
        acked as f64 / args.duration_s,
        pct(0.50),
        pct(0.99),
        lat.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    if hosts.len() > 1 {
        for (url, a) in args.urls.iter().zip(&acked_via) {
            println!("acknowledged via {url}: {a} ({:.0}/s)", *a as f64 / args.duration_s);
        }
    }
    anyhow::ensure!(failed == 0, "{failed} reports were not acknowledged");
    Ok(())
}

/// What every worker of one ingest run shares: the registered devices and the shape
/// of the requests.
struct Load {
    ids: Vec<String>,
    /// Makes the device keys of this run (`bench-{run}-{id}`).
    run: String,
    token: String,
    mode: Mode,
    batch: usize,
    /// How far an OsmAnd worker moves through the devices between requests.
    stride: usize,
    /// How many workers send at once (a batch worker sends only its own devices).
    workers: usize,
    /// Each device's last fix time sent, in Unix milliseconds: every report is a new
    /// fix, as a phone's are. The server keeps one report per device and fix time and
    /// answers a repeat with the number it has, so reports stamped with the same second
    /// would measure answers, not writes.
    last_fix_ms: Vec<AtomicI64>,
}

impl Load {
    /// A fix time for device `dev`: now, or a millisecond after its last one when that
    /// is not before now (many reports of a device in one millisecond).
    fn fix_ms(&self, dev: usize, now_ms: i64) -> i64 {
        let last = &self.last_fix_ms[dev];
        let prev = last.fetch_update(Relaxed, Relaxed, |prev| Some(now_ms.max(prev + 1))).unwrap_or(now_ms);
        now_ms.max(prev + 1)
    }

    /// Writes worker `w`'s request number `step` for `host` into `req`, moving the
    /// worker's device cursor `d`; returns how many reports the request carries.
    fn request(
        &self,
        req: &mut Vec<u8>,
        body: &mut String,
        host: &str,
        w: usize,
        step: u64,
        d: &mut usize,
    ) -> std::io::Result<u64> {
        let (ids, run_id, token) = (&self.ids, &self.run, &self.token);
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let now_s = u64::try_from(now_ms / 1000).unwrap_or(0);
        req.clear();
        Ok(match self.mode {
            Mode::Osmand => {
                let dev = *d;
                *d = (*d + self.stride) % ids.len();
                let (lon, lat) = position(dev, step);
                let id = &ids[dev];
                let fix_ms = self.fix_ms(dev, now_ms);
                write!(
                    req,
                    "GET /osmand?id={id}&timestamp={fix_ms}&lat={lat:.6}&lon={lon:.6}&speed=2.0&bearing=90&accuracy=8&key=bench-{run_id}-{id} HTTP/1.1\r\nHost: {host}\r\n\r\n"
                )?;
                1
            }
            Mode::Isapi => {
                let xml = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<EventNotificationAlert version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">\n<ipAddress>10.23.1.15</ipAddress>\n<channelID>1</channelID>\n<dateTime>{}</dateTime>\n<activePostCount>1</activePostCount>\n<eventType>ANPR</eventType>\n<eventState>active</eventState>\n<ANPR>\n<licensePlate>川S{:05}</licensePlate>\n<direction>forward</direction>\n<confidenceLevel>97</confidenceLevel>\n<plateColor>blue</plateColor>\n<vehicleType>vehicle</vehicleType>\n</ANPR>\n</EventNotificationAlert>",
                    crate::simulate::rfc3339(now_s),
                    (w as u64 * 7919 + step) % 100_000
                );
                write!(
                    req,
                    "POST /isapi/events?camera={BENCH_CAMERA}&key=bench-{run_id}-camera HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{xml}",
                    xml.len()
                )?;
                1
            }
            Mode::Batch => {
                body.clear();
                body.push_str("{\"positions\":[");
                // Each worker is a gateway with phones of its own (devices w, w + workers,
                // …): a device's reports then arrive in the order of their fix times, as a
                // phone's do. Workers sharing devices would deliver one device's reports
                // out of order, and each such report costs the server's lookup of a repeat.
                let own = w % ids.len();
                let owned = (ids.len() - own).div_ceil(self.workers.min(ids.len()));
                for k in 0..self.batch {
                    *d = (*d + 1) % owned;
                    let dev = own + *d * self.workers.min(ids.len());
                    let (lon, lat) = position(dev, step);
                    let sep = if k == 0 { "" } else { "," };
                    let fix_ms = self.fix_ms(dev, now_ms);
                    let _ = std::fmt::Write::write_fmt(
                        body,
                        format_args!("{sep}{{\"device_id\":\"{}\",\"lon\":{lon:.6},\"lat\":{lat:.6},\"time\":{fix_ms},\"accuracy_m\":8.0}}", ids[dev]),
                    );
                }
                body.push_str("]}");
                write!(
                    req,
                    "POST /api/v1/positions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )?;
                self.batch as u64
            }
        })
    }
}

/// How many of the `n` reports of a request answered `200` (the whole response is in
/// `response`) were acknowledged: all of them, except in a batch, whose answer lists
/// the accepted and the rejected items one by one.
fn acknowledged(mode: Mode, n: u64, response: &[u8]) -> u64 {
    #[derive(serde::Deserialize)]
    struct Answer {
        accepted: Vec<serde::de::IgnoredAny>,
    }
    if mode != Mode::Batch {
        return n;
    }
    let body = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(&[][..], |end| &response[end + 4..]);
    serde_json::from_slice::<Answer>(body).map_or(0, |a| (a.accepted.len() as u64).min(n))
}

/// Waits (up to 30 s) until the instance at `host` acknowledges a request of the run's
/// shape: another instance on the same database reloads its registries every few
/// seconds, and a run that started before would count its refusals as failures.
async fn wait_admitted(load: &Load, target: &crate::tls::Target) -> anyhow::Result<()> {
    let host = &target.host;
    let started = Instant::now();
    let (mut req, mut body, mut buf) = (Vec::new(), String::new(), Vec::new());
    let mut d = 0;
    loop {
        let n = load.request(&mut req, &mut body, host, 0, 0, &mut d)?;
        let mut stream = target.connect().await.with_context(|| format!("connecting to {host}"))?;
        let status = roundtrip(&mut stream, &req, &mut buf).await;
        if matches!(status, Ok(200)) && acknowledged(load.mode, n, &buf) == n {
            eprintln!("{host} admits the bench devices after {:.1} s", started.elapsed().as_secs_f64());
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "{host} did not admit the bench devices: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Registers `n` bench devices (`bench-00000`…) with keys `bench-{run}-{id}`.
pub(crate) async fn register(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    n: usize,
    run: &str,
) -> anyhow::Result<Vec<String>> {
    let ids: Vec<String> = (0..n).map(|i| format!("bench-{i:05}")).collect();
    for id in &ids {
        let r = client
            .post(format!("{url}/api/v1/devices"))
            .bearer_auth(token)
            .json(
                &serde_json::json!({"device_id": id, "name": id, "kind": "other", "key": format!("bench-{run}-{id}")}),
            )
            .send()
            .await
            .context("registering bench devices")?;
        anyhow::ensure!(r.status().is_success(), "registering {id}: {}", r.status());
    }
    Ok(ids)
}

/// One HTTP/1.1 request on a kept-alive connection; returns the response status. The
/// load tool speaks HTTP itself so that the client's own cost stays small next to the
/// server's on a shared 2-core machine.
pub(crate) async fn roundtrip<S>(stream: &mut S, req: &[u8], buf: &mut Vec<u8>) -> std::io::Result<u16>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    stream.write_all(req).await?;
    buf.clear();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).map_err(|_| bad("response head is not UTF-8"))?;
            let status = head.get(9..12).and_then(|s| s.parse().ok()).ok_or_else(|| bad("no status"))?;
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok()).flatten()
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                if stream.read_buf(buf).await? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
            }
            return Ok(status);
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// A stride coprime with the device count spreads consecutive requests over devices.
fn args_stride(n: usize) -> usize {
    (1..n.max(2)).rev().find(|s| gcd(*s, n) == 1 && *s < n / 2 + 1).unwrap_or(1)
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}
