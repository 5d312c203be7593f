//! What the server measures about itself, rendered at `/metrics` in the Prometheus text
//! format (exposition format 0.0.4).
//!
//! The measuring is the `metrics` facade's; the storing and rendering is
//! `metrics-exporter-prometheus`'s recorder, built without its HTTP listener or push
//! gateway. Each server owns its recorder (no global one is installed): tests start
//! several servers in one process, and each must count only its own requests. Handles
//! of the metrics without variable labels are registered once, at start; labelled ones
//! (a request's route, a refusal's field) are registered on use, through
//! [`metrics::with_local_recorder`] on this server's recorder.
//!
//! Histograms are rendered as Prometheus histograms (`_bucket`, `_sum`, `_count`) with
//! the buckets below, not as the exporter's default summaries, so that a scraper can
//! aggregate them across instances.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit};
use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// Request and commit latencies in seconds: from a cached read (100 µs) to a request
/// that waited for a busy store (10 s).
const SECONDS_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Items per group commit (reports, camera events, commands): 1 when idle, up to the
/// configured `store.max_batch` under load.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0];

/// Names of the histograms, each with its buckets.
/// How often the recorder's histogram samples are bucketed (see [`Metrics::run_upkeep`]).
pub const UPKEEP: Duration = Duration::from_secs(1);

const HTTP_SECONDS: &str = "liandong_http_request_duration_seconds";
const COMMIT_SECONDS: &str = "liandong_group_commit_seconds";
const COMMIT_BATCH: &str = "liandong_group_commit_batch_size";
const LIVE_LAG: &str = "liandong_live_delivery_lag_seconds";
const JUDICIAL_CALENDAR: &str = "liandong_judicial_calendar_days_left";

/// A refusal's `field` label is the field an [`crate::error::ApiError`] names, with
/// list indexes taken out (`positions[3].lat` counts as `positions[].lat`) and cut to
/// this many bytes, so that the label's values are the handlers' field names: a fixed
/// set, whatever clients send.
const MAX_FIELD_LABEL: usize = 48;

/// The metrics of one server and the recorder that keeps them.
pub struct Metrics {
    recorder: std::sync::Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
    pub reports_accepted: Counter,
    pub reports_rejected: Counter,
    pub commits: Counter,
    pub commit_failures: Counter,
    commit_seconds: Histogram,
    commit_batch: Histogram,
    pub http_errors_4xx: Counter,
    pub http_errors_5xx: Counter,
    pub live_clients: Gauge,
    pub live_messages: Counter,
    pub live_resyncs: Counter,
    pub live_replays: Counter,
    live_lag: Histogram,
    pub store_errors: Counter,
    /// Sampled when rendered (see [`Sampled`]).
    sequencer_queue: Gauge,
    live_queue_max: Gauge,
    replays_running: Gauge,
    devices: Gauge,
    resident: Gauge,
    /// The request-latency histograms registered so far, by route pattern, then method
    /// and status class: a request finds its handle with one lookup instead of building
    /// the label values and asking the registry (see [`Metrics::record_request`]).
    latency: std::sync::RwLock<LatencyHandles>,
}

/// Request-latency handles by route pattern; a pattern has a handful of (method,
/// status class) pairs. Bounded by the router's patterns, eight methods and five classes.
type LatencyHandles = std::collections::HashMap<String, Vec<(&'static str, &'static str, Histogram)>>;

/// Gauges read from the server's state when `/metrics` is asked, rather than kept up
/// to date on every change: each is one cheap read of a length.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sampled {
    pub devices: usize,
    /// Jobs waiting for the sequencer (reports, camera events, commands).
    pub sequencer_queue: usize,
    /// Events published and not yet read by the slowest live-feed client: the deepest
    /// per-client queue (the broadcast channel keeps an event until every client read it).
    pub live_queue_max: usize,
    pub replays_running: usize,
    /// Days until the judicial office's calendar of public holidays ends
    /// (`OfficeHours::calendar_days_left`); None when it lists none.
    pub judicial_calendar_days_left: Option<i64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A recorder of its own, with the metrics described and the unlabelled ones
    /// registered (so that they are rendered, at 0, before anything happened).
    pub fn new() -> Metrics {
        let recorder = std::sync::Arc::new(builder().build_recorder());
        metrics::with_local_recorder(&*recorder, || {
            describe();
            Metrics {
                recorder: recorder.clone(),
                handle: recorder.handle(),
                reports_accepted: counter!("liandong_reports_accepted_total"),
                reports_rejected: counter!("liandong_reports_rejected_total"),
                commits: counter!("liandong_group_commits_total"),
                commit_failures: counter!("liandong_group_commit_failures_total"),
                commit_seconds: histogram!(COMMIT_SECONDS),
                commit_batch: histogram!(COMMIT_BATCH),
                http_errors_4xx: counter!("liandong_http_client_errors_total"),
                http_errors_5xx: counter!("liandong_http_server_errors_total"),
                live_clients: gauge!("liandong_live_clients"),
                live_messages: counter!("liandong_live_messages_total"),
                live_resyncs: counter!("liandong_live_resyncs_total"),
                live_replays: counter!("liandong_live_replays_total"),
                live_lag: histogram!(LIVE_LAG),
                store_errors: counter!("liandong_store_errors_total"),
                sequencer_queue: gauge!("liandong_sequencer_queue_depth"),
                live_queue_max: gauge!("liandong_live_queue_depth_max"),
                replays_running: gauge!("liandong_live_replays_running"),
                devices: gauge!("liandong_devices"),
                resident: gauge!("process_resident_memory_bytes"),
                latency: Default::default(),
            }
        })
    }

    /// A group commit that wrote: its reports, its items (everything the batch
    /// carried) and how long it took from taking the batch to the commit's return.
    pub fn record_commit(&self, reports: usize, items: usize, took: Duration) {
        self.commits.increment(1);
        self.reports_accepted.increment(reports as u64);
        self.commit_seconds.record(took.as_secs_f64());
        self.commit_batch.record(items as f64);
    }

    /// A group commit that failed: nothing of it was acknowledged.
    pub fn record_commit_failure(&self) {
        self.commit_failures.increment(1);
        self.store_errors.increment(1);
    }

    /// How long after its commit a live-feed message was handed to a client's socket.
    pub fn record_live_lag(&self, lag: Duration) {
        self.live_lag.record(lag.as_secs_f64());
    }

    /// One answered request: its latency by route (the router's pattern, never the
    /// path, which carries ids), method and status class, and, for an error, by status
    /// and the field it names (`refused`: see [`crate::error::Refused`]).
    pub fn record_request(
        &self,
        route: &str,
        method: &Method,
        status: StatusCode,
        took: Duration,
        refused: Option<&crate::error::Refused>,
    ) {
        if status.is_client_error() {
            self.http_errors_4xx.increment(1);
        } else if status.is_server_error() {
            self.http_errors_5xx.increment(1);
        }
        if refused.is_some_and(|r| r.store_unavailable) {
            self.store_errors.increment(1);
        }
        let class = status_class(status);
        self.latency_handle(route, method_label(method), class).record(took.as_secs_f64());
        if status.is_client_error() || status.is_server_error() {
            metrics::with_local_recorder(&*self.recorder, || {
                let field = refused.and_then(|r| r.field.as_deref()).map_or_else(|| "none".to_owned(), field_label);
                counter!("liandong_refusals_total", "status" => status.as_u16().to_string(), "field" => field)
                    .increment(1);
            });
        }
    }

    /// The latency histogram of `route`, `method` and `class`, registered on first use.
    fn latency_handle(&self, route: &str, method: &'static str, class: &'static str) -> Histogram {
        let find = |handles: &LatencyHandles| {
            handles.get(route)?.iter().find(|(m, c, _)| *m == method && *c == class).map(|(_, _, h)| h.clone())
        };
        if let Some(h) = find(&self.latency.read().unwrap_or_else(|e| e.into_inner())) {
            return h;
        }
        let mut handles = self.latency.write().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = find(&handles) {
            return h;
        }
        let h = metrics::with_local_recorder(
            &*self.recorder,
            || histogram!(HTTP_SECONDS, "route" => route_label(route), "method" => method, "status" => class),
        );
        handles.entry(route.to_owned()).or_default().push((method, class, h.clone()));
        h
    }

    /// The exposition text: the gauges sampled now, then everything the recorder holds.
    pub fn render(&self, sampled: Sampled) -> String {
        self.devices.set(sampled.devices as f64);
        self.sequencer_queue.set(sampled.sequencer_queue as f64);
        self.live_queue_max.set(sampled.live_queue_max as f64);
        self.replays_running.set(sampled.replays_running as f64);
        if let Some(rss) = resident_bytes() {
            self.resident.set(rss as f64);
        }
        // Registered only once there is a figure: a 0 would say the calendar ends today.
        if let Some(days) = sampled.judicial_calendar_days_left {
            metrics::with_local_recorder(&*self.recorder, || gauge!(JUDICIAL_CALENDAR)).set(days as f64);
        }
        self.handle.render()
    }

    /// Moves histogram samples into their buckets. The recorder keeps every sample
    /// until then, so the server runs this every [`UPKEEP`] (`clock::every`).
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// The recorder's builder: histograms with buckets, no listener.
fn builder() -> PrometheusBuilder {
    let mut b = PrometheusBuilder::new();
    for (name, buckets) in [
        (HTTP_SECONDS, SECONDS_BUCKETS),
        (COMMIT_SECONDS, SECONDS_BUCKETS),
        (COMMIT_BATCH, BATCH_BUCKETS),
        (LIVE_LAG, SECONDS_BUCKETS),
    ] {
        // Only an empty bucket list is refused; these are constants.
        b = b.set_buckets_for_metric(Matcher::Full(name.to_owned()), buckets).expect("buckets are not empty");
    }
    b
}

/// Every metric's help text, under the recorder being built.
fn describe() {
    describe_counter!("liandong_reports_accepted_total", "Location reports committed and acknowledged.");
    describe_counter!("liandong_reports_rejected_total", "Location reports refused with a 4xx.");
    describe_counter!("liandong_group_commits_total", "Store transactions committed by the ingest sequencer.");
    describe_counter!("liandong_group_commit_failures_total", "Group commits that failed (nothing acknowledged).");
    describe_histogram!(COMMIT_SECONDS, Unit::Seconds, "Time from taking a batch to its commit's return.");
    describe_histogram!(COMMIT_BATCH, Unit::Count, "Items (reports, camera events, commands) per group commit.");
    describe_counter!("liandong_http_client_errors_total", "Responses with a 4xx status.");
    describe_counter!("liandong_http_server_errors_total", "Responses with a 5xx status.");
    describe_histogram!(HTTP_SECONDS, Unit::Seconds, "HTTP request latency by route pattern, method and status class.");
    describe_counter!("liandong_refusals_total", "Error answers by status and the field they name (none: no field).");
    describe_gauge!("liandong_live_clients", "Connected live-feed clients.");
    describe_counter!("liandong_live_messages_total", "Messages delivered to live-feed clients.");
    describe_counter!("liandong_live_resyncs_total", "Live-feed clients that fell behind and were resynced.");
    describe_counter!("liandong_live_replays_total", "Live-feed replays started (reconnects with since=).");
    describe_gauge!("liandong_live_replays_running", "Live-feed replays running now.");
    describe_histogram!(
        LIVE_LAG,
        Unit::Seconds,
        "From publishing a committed event to handing it to a client's socket."
    );
    describe_gauge!("liandong_live_queue_depth_max", "Events the slowest live-feed client has yet to read.");
    describe_gauge!("liandong_sequencer_queue_depth", "Jobs waiting for the ingest sequencer.");
    describe_counter!(
        "liandong_store_errors_total",
        "Store failures: failed group commits and requests answered 503 for the store."
    );
    describe_gauge!("liandong_devices", "Registered devices.");
    describe_gauge!("process_resident_memory_bytes", Unit::Bytes, "Resident memory.");
    describe_gauge!(
        JUDICIAL_CALENDAR,
        "Days until the end of the last year whose public holidays the judicial office's calendar lists \
         (negative after it: holidays then count as working days); absent when it lists none."
    );
}

/// A route pattern as a label value: axum's `{id}` written `:id` (and `{*rest}`
/// `*rest`), as routers have long written parameters. Braces are legal in a label
/// value, but some readers of the text format (prometheus-parse among them) end the
/// label set at the first `}`.
fn route_label(route: &str) -> String {
    route
        .split('/')
        .map(|seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(param) if param.starts_with('*') => param.to_owned(),
            Some(param) => format!(":{param}"),
            None => seg.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// `2xx`, `4xx`…: the status label of the latency histogram (five values, not sixty).
fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// The method label: the methods the router serves, anything else `other`, so that a
/// client inventing methods cannot add label values.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A refusal's field as a label value: list indexes dropped, cut at
/// [`MAX_FIELD_LABEL`] bytes, and `other` for anything but names of ASCII letters,
/// digits, `_`, `-` and `.` (a field named after client input must not add values).
fn field_label(field: &str) -> String {
    let mut out = String::with_capacity(field.len().min(MAX_FIELD_LABEL));
    let mut in_index = false;
    for c in field.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push_str("[]");
            }
            ']' => in_index = false,
            _ if in_index => {}
            c if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') => out.push(c),
            _ => return "other".to_owned(),
        }
        if out.len() > MAX_FIELD_LABEL {
            return "other".to_owned();
        }
    }
    out
}

/// Resident memory of this process, from `/proc/self/statm` (Linux; None elsewhere).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // Linux pages are 4 KiB on the platforms this runs on (x86_64, aarch64 defaults).
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_labels_drop_indexes_and_refuse_client_text() {
        for (field, label) in [
            ("lat", "lat"),
            ("positions[3].lat", "positions[].lat"),
            ("positions[12][0].x", "positions[][].x"),
            ("authorization", "authorization"),
            ("what is this", "other"),
            ("名字", "other"),
            (&"a".repeat(60)[..], "other"),
        ] {
            assert_eq!(field_label(field), label, "{field}");
        }
    }

    #[test]
    fn route_labels_write_parameters_without_braces() {
        for (route, label) in [
            ("/api/v1/positions", "/api/v1/positions"),
            ("/api/v1/incidents/{id}", "/api/v1/incidents/:id"),
            ("/api/v1/teams/{team_id}/plans/{version}/ack", "/api/v1/teams/:team_id/plans/:version/ack"),
            ("/files/{*rest}", "/files/*rest"),
            ("unmatched", "unmatched"),
        ] {
            assert_eq!(route_label(route), label);
        }
    }

    #[test]
    fn two_servers_count_apart() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.record_request("/api/v1/positions", &Method::POST, StatusCode::OK, Duration::from_millis(3), None);
        a.record_commit(5, 6, Duration::from_millis(2));
        let (ta, tb) = (a.render(Sampled::default()), b.render(Sampled::default()));
        assert!(ta.contains("liandong_reports_accepted_total 5"), "{ta}");
        assert!(tb.contains("liandong_reports_accepted_total 0"), "{tb}");
        let count =
            r#"liandong_http_request_duration_seconds_count{route="/api/v1/positions",method="POST",status="2xx"} 1"#;
        assert!(ta.lines().any(|l| l == count), "{ta}");
        assert!(!tb.contains("liandong_http_request_duration_seconds_count"), "{tb}");
    }
}
