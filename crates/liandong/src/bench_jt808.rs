//! `liandong bench jt808`: JT/T 808 terminals against a running server's listener.
//! Registers `--terminals` devices (`jt808-<phone>`) through the HTTP API, connects one
//! TCP connection per terminal, registers and authenticates each over JT/T 808, then
//! sends 0x0200 location reports, one in flight per terminal (full speed) or at
//! `--rate` per terminal, and counts the general answers: an answer with result 0 means
//! the report was committed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::bail;
use liandong_ingest::jt808::{AnswerResult, Location, Version, STATUS_LOCATED};

use crate::jt808_terminal::Terminal;

#[derive(clap::Args, Debug)]
pub struct Jt808Args {
    /// The server's HTTP base URL (to register the terminals as devices).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The server's JT/T 808 listener, host:port.
    #[arg(long, default_value = "127.0.0.1:6808")]
    pub addr: SocketAddr,
    /// Admin token (registers the devices).
    #[arg(long, env = "LIANDONG_TOKEN")]
    pub token: String,
    /// Terminals connected at once, one TCP connection each.
    #[arg(long, default_value_t = 200)]
    pub terminals: usize,
    /// Seconds to send reports (after sign-in).
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Reports per second per terminal; 0 for full speed (the next report as soon as
    /// the last one is answered).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Edition of the header the terminals speak.
    #[arg(long, default_value_t = 2013)]
    pub version: u16,
}

/// What one terminal saw.
#[derive(Default)]
struct Tally {
    acked: u64,
    refused: u64,
    latencies_us: Vec<u64>,
}

pub async fn run(args: Jt808Args) -> anyhow::Result<()> {
    let version = match args.version {
        2013 => Version::V2013,
        2019 => Version::V2019 { protocol: 1 },
        v => bail!("--version must be 2013 or 2019, not {v}"),
    };
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() % 10_000;
    let phones: Vec<String> = (0..args.terminals).map(|i| format!("1{run:04}{i:06}")).collect();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let url = args.url.trim_end_matches('/');
    for phone in &phones {
        let body = serde_json::json!({"device_id": format!("jt808-{phone}"), "name": format!("bench car {phone}"), "kind": "vehicle"});
        let r = client.post(format!("{url}/api/v1/devices")).bearer_auth(&args.token).json(&body).send().await?;
        anyhow::ensure!(r.status().is_success(), "registering jt808-{phone}: {}", r.status());
    }
    let mut terminals = Vec::with_capacity(phones.len());
    for phone in &phones {
        let mut t = Terminal::connect(args.addr, phone, version).await?;
        t.sign_in().await?;
        terminals.push(t);
    }
    println!("{} terminals signed in over JT/T 808 ({:?}) at {}", terminals.len(), version, args.addr);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(args.seconds);
    // Fixes dated from two days ago, a second apart per terminal, so that none repeats.
    let first_fix_ms = now_ms() - 2 * 86_400_000;
    let interval = (args.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / args.rate));
    let mut tasks = tokio::task::JoinSet::new();
    for (n, t) in terminals.into_iter().enumerate() {
        tasks.spawn(report(t, n, first_fix_ms, end, interval));
    }
    let mut total = Tally::default();
    let mut errors = 0;
    while let Some(done) = tasks.join_next().await {
        match done? {
            Ok(t) => {
                total.acked += t.acked;
                total.refused += t.refused;
                total.latencies_us.extend(t.latencies_us);
            }
            Err(e) => {
                errors += 1;
                eprintln!("terminal stopped: {e:#}");
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    total.latencies_us.sort_unstable();
    let pct = |p: f64| {
        let v = &total.latencies_us;
        if v.is_empty() {
            0.0
        } else {
            v[((v.len() - 1) as f64 * p) as usize] as f64 / 1000.0
        }
    };
    println!(
        "jt808: {} terminals, {:.1} s: {} reports acknowledged ({:.0}/s), {} refused, {} terminals failed; answer latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        args.terminals,
        elapsed,
        total.acked,
        total.acked as f64 / elapsed,
        total.refused,
        errors,
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    Ok(())
}

/// One terminal's reports until `end`: each waits for the answer to the one before.
async fn report(
    mut t: Terminal,
    n: usize,
    first_fix_ms: i64,
    end: Instant,
    interval: Option<Duration>,
) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    let mut step = 0u64;
    let mut next = Instant::now();
    while Instant::now() < end {
        if let Some(every) = interval {
            tokio::time::sleep_until(next.into()).await;
            next += every;
        }
        step += 1;
        let (lon, lat) = crate::bench::position(n, step);
        let mut l = Location {
            status: STATUS_LOCATED,
            speed_dkmh: 50,
            direction_deg: 45,
            altitude_m: 380,
            ..Location::default()
        };
        l.set_lon_lat(lon, lat);
        l.set_time_ms(first_fix_ms + step as i64 * 1000);
        let sent = Instant::now();
        match t.report(&l).await? {
            AnswerResult::Ok => {
                tally.acked += 1;
                tally.latencies_us.push(sent.elapsed().as_micros() as u64);
            }
            _ => tally.refused += 1,
        }
    }
    Ok(tally)
}

/// The time now in Unix milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
