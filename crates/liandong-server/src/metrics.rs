//! Counters exported at `/metrics` in the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Metrics {
    pub reports_accepted: AtomicU64,
    pub reports_rejected: AtomicU64,
    pub commits: AtomicU64,
    pub commit_failures: AtomicU64,
    pub commit_seconds_micros: AtomicU64,
    pub http_errors_4xx: AtomicU64,
    pub http_errors_5xx: AtomicU64,
    pub live_clients: AtomicU64,
    pub live_messages: AtomicU64,
    pub live_resyncs: AtomicU64,
}

impl Metrics {
    pub fn record_commit(&self, reports: usize, took: Duration) {
        self.commits.fetch_add(1, Relaxed);
        self.reports_accepted.fetch_add(reports as u64, Relaxed);
        self.commit_seconds_micros.fetch_add(took.as_micros() as u64, Relaxed);
    }

    pub fn render(&self, devices: usize) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter(
            "liandong_reports_accepted_total",
            "Location reports committed and acknowledged.",
            self.reports_accepted.load(Relaxed),
        );
        counter(
            "liandong_reports_rejected_total",
            "Location reports refused with a 4xx.",
            self.reports_rejected.load(Relaxed),
        );
        counter(
            "liandong_group_commits_total",
            "Store transactions committed by the ingest sequencer.",
            self.commits.load(Relaxed),
        );
        counter(
            "liandong_group_commit_failures_total",
            "Group commits that failed (nothing acknowledged).",
            self.commit_failures.load(Relaxed),
        );
        counter(
            "liandong_http_client_errors_total",
            "Responses with a 4xx status.",
            self.http_errors_4xx.load(Relaxed),
        );
        counter(
            "liandong_http_server_errors_total",
            "Responses with a 5xx status.",
            self.http_errors_5xx.load(Relaxed),
        );
        counter(
            "liandong_live_messages_total",
            "Messages delivered to live-feed clients.",
            self.live_messages.load(Relaxed),
        );
        counter(
            "liandong_live_resyncs_total",
            "Live-feed clients that fell behind and were resynced.",
            self.live_resyncs.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP liandong_live_clients Connected live-feed clients.\n# TYPE liandong_live_clients gauge\nliandong_live_clients {}",
            self.live_clients.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP liandong_group_commit_seconds_total Time spent in group commits.\n# TYPE liandong_group_commit_seconds_total counter\nliandong_group_commit_seconds_total {:.6}",
            self.commit_seconds_micros.load(Relaxed) as f64 / 1e6
        );
        if let Some(rss) = resident_bytes() {
            let _ = writeln!(
                out,
                "# HELP process_resident_memory_bytes Resident memory.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP liandong_devices Registered devices.\n# TYPE liandong_devices gauge\nliandong_devices {devices}"
        );
        out
    }
}

/// Resident memory of this process, from `/proc/self/statm` (Linux; None elsewhere).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // Linux pages are 4 KiB on the platforms this runs on (x86_64, aarch64 defaults).
    Some(pages * 4096)
}
