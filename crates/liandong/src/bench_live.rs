//! `liandong bench live`: opens N websocket clients on the live feed (one of them
//! deliberately slow), drives a steady rate of reports through the real ingest
//! endpoint, and reports delivered messages/s, ingest→delivery latency percentiles, the
//! slow client's resyncs and the server's resident memory.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use crate::bench::{position, register, roundtrip};

#[derive(clap::Args, Debug)]
pub struct LiveArgs {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Admin token: registers devices, submits reports, and subscribes.
    #[arg(long, env = "LIANDONG_TOKEN")]
    pub token: String,
    /// Websocket clients (whole-county subscriptions).
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// Of those, how many pause 1 ms after every message (they fall behind and should be resynced).
    #[arg(long, default_value_t = 1)]
    pub slow: usize,
    /// Reports per second driven through `POST /api/v1/positions` (0: idle clients).
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    #[arg(long, default_value_t = 1000)]
    pub devices: usize,
    /// Seconds to measure (after the clients are connected and a 1 s warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration_s: f64,
    /// PEM file of the CA that signed the server's certificate, for an `https://` URL
    /// (the feed is then `wss://`).
    #[arg(long, env = "LIANDONG_CA_CERT")]
    pub ca_cert: Option<std::path::PathBuf>,
}

#[derive(Default)]
struct Totals {
    delivered: AtomicU64,
    resyncs: AtomicU64,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The server's receive time of a position message, read without parsing the whole
/// message (clients of this tool must stay cheap next to the server).
fn recv_ms(text: &str) -> Option<i64> {
    let at = text.find("\"recv_ms\":")? + "\"recv_ms\":".len();
    let digits: &str = &text[at..at + text[at..].find(|c: char| !c.is_ascii_digit())?];
    digits.parse().ok()
}

pub async fn run(args: LiveArgs) -> anyhow::Result<()> {
    let target = crate::tls::Target::parse(&args.url, args.ca_cert.as_deref())?;
    let http = crate::tls::http_client(reqwest::Client::builder(), args.ca_cert.as_deref())?;
    let run_id = format!("{:x}", now_ms());
    let ids = Arc::new(register(&http, &args.url, &args.token, args.devices, &run_id).await?);
    let host = target.host.clone();
    let scheme = if target.tls.is_some() { "wss" } else { "ws" };
    let ws_url = format!("{scheme}://{host}/api/v1/live?token={}", args.token);

    let totals = Arc::new(Totals::default());
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut readers = tokio::task::JoinSet::new();
    for c in 0..args.clients {
        let mut ws = crate::tls::connect_ws(&ws_url, args.ca_cert.as_deref())
            .await
            .with_context(|| format!("connecting client {c}"))?;
        let slow = c < args.slow;
        let (totals, measuring, mut stopped) = (totals.clone(), measuring.clone(), stopped.clone());
        readers.spawn(async move {
            let mut latencies_ms = Vec::new();
            loop {
                let msg = tokio::select! {
                    m = ws.next() => m,
                    _ = stopped.changed() => break,
                };
                let Some(Ok(msg)) = msg else { break };
                let Message::Text(text) = msg else { continue };
                if text.starts_with("{\"type\":\"resync\"") {
                    totals.resyncs.fetch_add(1, Relaxed);
                } else if text.starts_with("{\"type\":\"position\"") && measuring.load(Relaxed) {
                    totals.delivered.fetch_add(1, Relaxed);
                    if !slow {
                        if let Some(r) = recv_ms(&text) {
                            latencies_ms.push((now_ms() - r).max(0) as u64);
                        }
                    }
                }
                if slow {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            latencies_ms
        });
    }
    println!("{} clients connected ({} slow)", args.clients, args.slow);

    // The driver: every 10 ms a batch, so that the rate is steady, not bursty.
    let started = Instant::now();
    let warmup_end = started + Duration::from_secs(1);
    let end = warmup_end + Duration::from_secs_f64(args.duration_s);
    let mut sent = 0u64;
    if args.rate > 0 {
        let mut stream = target.connect().await?;
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let (mut req, mut body, mut buf) = (Vec::new(), String::new(), Vec::new());
        let mut d = 0usize;
        let mut step = 0u64;
        while Instant::now() < end {
            tick.tick().await;
            if !measuring.load(Relaxed) && Instant::now() >= warmup_end {
                measuring.store(true, Relaxed);
            }
            let due = (started.elapsed().as_secs_f64() * args.rate as f64) as u64;
            let n = due.saturating_sub(sent).min(10_000);
            if n == 0 {
                continue;
            }
            step += 1;
            body.clear();
            body.push_str("{\"positions\":[");
            let t = now_ms();
            for k in 0..n {
                d = (d + 1) % ids.len();
                let (lon, lat) = position(d, step);
                let sep = if k == 0 { "" } else { "," };
                body.push_str(&format!(
                    "{sep}{{\"device_id\":\"{}\",\"lon\":{lon:.6},\"lat\":{lat:.6},\"time\":{t}}}",
                    ids[d]
                ));
            }
            body.push_str("]}");
            req.clear();
            std::io::Write::write_fmt(
                &mut req,
                format_args!(
                    "POST /api/v1/positions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    args.token,
                    body.len()
                ),
            )?;
            let status = roundtrip(&mut stream, &req, &mut buf).await?;
            anyhow::ensure!(status == 200, "ingest answered {status}");
            sent += n;
        }
    } else {
        tokio::time::sleep_until(end.into()).await;
        measuring.store(true, Relaxed);
    }
    let measured_s = args.duration_s;
    // Let the last deliveries arrive, then read the server's memory before closing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let metrics = http.get(format!("{}/metrics", args.url)).bearer_auth(&args.token).send().await?.text().await?;
    let metric = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse::<f64>().ok()))
            .unwrap_or(f64::NAN)
    };
    let _ = stop.send(true);
    let mut lat = Vec::new();
    while let Some(r) = readers.join_next().await {
        if let Ok(l) = r {
            lat.extend(l);
        }
    }
    lat.sort_unstable();
    let pct =
        |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or(0);
    let delivered = totals.delivered.load(Relaxed);
    println!(
        "rate={}/s clients={} devices={} measured={measured_s:.1}s\n\
         delivered messages: {delivered} ({:.0}/s)\n\
         ingest->delivery latency ms (fast clients): p50 {}, p99 {}, max {} ({} samples)\n\
         resyncs received: {}\n\
         server: live clients {}, resident memory {:.1} MiB",
        args.rate,
        args.clients,
        args.devices,
        delivered as f64 / measured_s,
        pct(0.50),
        pct(0.99),
        lat.last().copied().unwrap_or(0),
        lat.len(),
        totals.resyncs.load(Relaxed),
        metric("liandong_live_clients"),
        metric("process_resident_memory_bytes") / (1024.0 * 1024.0),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn recv_ms_is_found_in_a_position_message() {
        let m = r#"{"type":"position","seq":5,"data":{"seq":5,"device_id":"d","fix_time":"x","recv_ms":1795751206123,"lon":1}}"#;
        assert_eq!(super::recv_ms(m), Some(1_795_751_206_123));
        assert_eq!(super::recv_ms("{\"type\":\"snapshot\"}"), None);
    }
}
