//! `liandong bench`: load tools that drive a running server through its real HTTP
//! endpoints and report what was acknowledged, how fast and with what latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Acknowledged location reports per second through OsmAnd GETs or JSON batches.
    Ingest(IngestArgs),
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One report per request, as Traccar Client sends them.
    Osmand,
    /// `POST /api/v1/positions` with `--batch` reports per request.
    Batch,
}

#[derive(clap::Args, Debug)]
pub struct IngestArgs {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
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
}

pub async fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Ingest(args) => ingest(args).await,
    }
}

/// A deterministic walk near Dazhu's county seat, so reports pass the jump filter.
fn position(device: usize, step: u64) -> (f64, f64) {
    let lon = 107.16 + (device % 100) as f64 * 0.0008 + (step % 500) as f64 * 0.00001;
    let lat = 30.70 + (device / 100 % 100) as f64 * 0.0006 + (step % 500) as f64 * 0.00001;
    (lon, lat)
}

async fn ingest(args: IngestArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
    );
    let ids: Vec<String> = (0..args.devices).map(|i| format!("bench-{i:05}")).collect();
    let key = |id: &str| format!("bench-{run}-{id}");
    for id in &ids {
        let r = client
            .post(format!("{}/api/v1/devices", args.url))
            .bearer_auth(&args.token)
            .json(
                &serde_json::json!({"device_id": id, "name": id, "kind": "other", "key": key(id)}),
            )
            .send()
            .await
            .context("registering bench devices")?;
        anyhow::ensure!(r.status().is_success(), "registering {id}: {}", r.status());
    }
    let ids = Arc::new(ids);
    let warmup_end = Instant::now() + Duration::from_secs(1);
    let end = warmup_end + Duration::from_secs_f64(args.duration_s);
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..args.concurrency {
        let (client, ids, url, token, run_id) = (
            client.clone(),
            ids.clone(),
            args.url.clone(),
            args.token.clone(),
            run.clone(),
        );
        let (mode, batch) = (args.mode, args.batch.max(1));
        let stride = args_stride(ids.len());
        workers.spawn(async move {
            let mut latencies_us = Vec::new();
            let (mut acked, mut failed) = (0u64, 0u64);
            let mut step = 0u64;
            let mut d = w % ids.len();
            while Instant::now() < end {
                step += 1;
                let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
                let started = Instant::now();
                let (req, n) = match mode {
                    Mode::Osmand => {
                        let dev = d;
                        d = (d + stride) % ids.len();
                        let id = &ids[dev];
                        let (lon, lat) = position(dev, step);
                        let url = format!("{url}/osmand?id={id}&timestamp={now_s}&lat={lat:.6}&lon={lon:.6}&speed=2.0&bearing=90&accuracy=8&key=bench-{run_id}-{id}");
                        (client.get(url), 1)
                    }
                    Mode::Batch => {
                        let items: Vec<serde_json::Value> = (0..batch)
                            .map(|_| {
                                d = (d + 1) % ids.len();
                                let (lon, lat) = position(d, step);
                                serde_json::json!({"device_id": ids[d], "lon": lon, "lat": lat, "time": now_s * 1000, "accuracy_m": 8.0})
                            })
                            .collect();
                        (client.post(format!("{url}/api/v1/positions")).bearer_auth(&token).json(&serde_json::json!({ "positions": items })), batch as u64)
                    }
                };
                let ok = matches!(req.send().await, Ok(r) if r.status().is_success());
                if started >= warmup_end {
                    if ok {
                        acked += n;
                    } else {
                        failed += n;
                    }
                    latencies_us.push(started.elapsed().as_micros() as u64);
                }
            }
            (acked, failed, latencies_us)
        });
    }
    let (mut acked, mut failed, mut lat) = (0u64, 0u64, Vec::new());
    while let Some(r) = workers.join_next().await {
        let (a, f, l) = r?;
        acked += a;
        failed += f;
        lat.extend(l);
    }
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    println!(
        "mode={:?} devices={} concurrency={} batch={} duration={:.1}s\nacknowledged reports: {acked} ({:.0}/s), failed: {failed}\nrequest latency ms: p50 {:.2}, p99 {:.2}, max {:.2}",
        args.mode,
        args.devices,
        args.concurrency,
        if args.mode == Mode::Batch { args.batch } else { 1 },
        args.duration_s,
        acked as f64 / args.duration_s,
        pct(0.50),
        pct(0.99),
        lat.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    anyhow::ensure!(failed == 0, "{failed} reports were not acknowledged");
    Ok(())
}

/// A stride coprime with the device count spreads consecutive requests over devices.
fn args_stride(n: usize) -> usize {
    (1..n.max(2))
        .rev()
        .find(|s| gcd(*s, n) == 1 && *s < n / 2 + 1)
        .unwrap_or(1)
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}
