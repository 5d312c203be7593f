//! Operating the server (issue 17): `/metrics` for the metrics service role and
//! administrators only, its text read by a Prometheus text-format parser, and
//! `/readyz` following the store and the sequencer while `/healthz` stays up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use liandong_server::auth::Role;
use liandong_test_support::feed::next_of;
use liandong_test_support::{token, Backend, Server};
use serde_json::{json, Value};
use sqlx::Connection;

const ADMIN: &str = "ops-admin";
const OPERATOR: &str = "ops-operator";
const SCRAPER: &str = "ops-metrics";
const KEY: &str = "ops-device-key-0001";

fn tokens() -> Vec<liandong_server::config::TokenConfig> {
    vec![token(ADMIN, Role::Admin), token(OPERATOR, Role::Operator), token(SCRAPER, Role::Metrics)]
}

/// A server on the embedded store with one phone (key [`KEY`]) registered.
async fn start(name: &str) -> Server {
    let dir = liandong_test_support::fresh_dir(&format!("ops-{name}"));
    let srv = Server::start_in(dir, tokens(), |_| {}).await;
    register_phone(&srv).await;
    srv
}

async fn register_phone(srv: &Server) {
    srv.admin(
        "/api/v1/devices",
        json!({"device_id": "ops-phone", "name": "ops phone", "kind": "patrol_member", "unit_id": "team-1", "key": KEY}),
    )
    .await;
}

/// `GET /metrics` with `token` (none when None): the status and the text.
async fn scrape(srv: &Server, token: Option<&str>) -> (u16, String) {
    let mut req = srv.http.get(format!("{}/metrics", srv.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn metrics_are_read_by_the_metrics_role_and_administrators_only() {
    let srv = start("roles").await;
    for (who, token, want) in [
        ("metrics token", Some(SCRAPER), 200),
        ("administrator", Some(ADMIN), 200),
        ("operator", Some(OPERATOR), 403),
        ("no token", None, 401),
        ("a device's key", Some(KEY), 403),
        ("unknown token", Some("nobody"), 401),
    ] {
        let (status, text) = scrape(&srv, token).await;
        assert_eq!(status, want, "{who}: {text}");
        if want == 200 {
            assert!(text.contains("# TYPE liandong_reports_accepted_total counter"), "{who}: {text}");
        }
    }
    srv.stop().await;
}

#[tokio::test]
async fn a_metrics_token_reads_nothing_but_metrics() {
    let srv = start("scraper-only").await;
    for path in ["/api/v1/whoami", "/api/v1/devices", "/api/v1/layers", "/api/v1/history/alerts", "/api/v1/duty"] {
        let (status, v) = srv.get(SCRAPER, path).await;
        assert_eq!(status, 403, "{path}: {v}");
    }
    let (status, v) = srv.post(SCRAPER, "/api/v1/positions", json!({"positions": []})).await;
    assert_eq!(status, 403, "{v}");
    let refused = tokio_tungstenite::connect_async(format!("{}?token={SCRAPER}", srv.live_url)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status().as_u16(), 403),
        other => panic!("the live feed must refuse a metrics token, got {:?}", other.map(|_| "a socket")),
    }
    srv.stop().await;
}

/// The samples of a scrape by metric name, after checking that the parser took every
/// sample line (it skips lines it cannot read, so the counts must agree).
fn parse(text: &str) -> Vec<prometheus_parse::Sample> {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("the text parses");
    let sample_lines = text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).count();
    let parsed: usize = scrape
        .samples
        .iter()
        .map(|s| match &s.value {
            prometheus_parse::Value::Histogram(buckets) => buckets.len(),
            _ => 1,
        })
        .sum();
    assert_eq!(parsed, sample_lines, "every sample line is read:\n{text}");
    scrape.samples
}

/// The histogram `name` with the labels `want`: its buckets, `_sum` and `_count`, each
/// present, the buckets cumulative, and the `+Inf` bucket equal to the count.
fn histogram(samples: &[prometheus_parse::Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    let labelled = |s: &&prometheus_parse::Sample| want.iter().all(|(k, v)| s.labels.get(k) == Some(v));
    let buckets = samples
        .iter()
        .filter(labelled)
        .find_map(|s| match (&s.metric[..] == name, &s.value) {
            (true, prometheus_parse::Value::Histogram(b)) => Some(b.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{name}_bucket {want:?} is exported"));
    let plain = |suffix: &str| {
        samples
            .iter()
            .filter(labelled)
            .find(|s| s.metric == format!("{name}{suffix}"))
            .map(|s| match s.value {
                prometheus_parse::Value::Untyped(v) | prometheus_parse::Value::Counter(v) => v,
                _ => f64::NAN,
            })
            .unwrap_or_else(|| panic!("{name}{suffix} {want:?} is exported"))
    };
    let (sum, count) = (plain("_sum"), plain("_count"));
    let mut sorted = buckets.clone();
    sorted.sort_by(|a, b| a.less_than.total_cmp(&b.less_than));
    assert!(sorted.windows(2).all(|w| w[0].count <= w[1].count), "{name}: cumulative buckets {sorted:?}");
    let inf = sorted.last().expect("buckets");
    assert!(inf.less_than.is_infinite(), "{name}: a +Inf bucket");
    assert_eq!(inf.count, count, "{name}: +Inf equals _count");
    assert!(sum >= 0.0, "{name}: _sum");
    count
}

#[tokio::test]
async fn the_metrics_parse_as_prometheus_text_with_the_histograms_after_reports_and_a_live_client() {
    let srv = start("parse").await;
    let mut live = srv.ws(OPERATOR).await;
    next_of(&mut live, "snapshot", 5000).await.expect("a snapshot");
    let t0 = liandong_test_support::now_ms();
    for i in 0..5 {
        let fix = json!({"positions": [{"device_id": "ops-phone", "lon": 107.1 + 0.001 * f64::from(i), "lat": 30.7,
            "time": t0 + i64::from(i) * 1000}]});
        let res =
            srv.http.post(format!("{}/api/v1/positions", srv.url)).bearer_auth(KEY).json(&fix).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        next_of(&mut live, "position", 5000).await.expect("the position on the feed");
    }
    // A refusal naming its field, and a read of a route with an id in its path.
    let (status, _) = srv
        .post(ADMIN, "/api/v1/positions", json!({"positions": [{"device_id": "ops-phone", "lon": 200.0, "lat": 30.7}]}))
        .await;
    assert_eq!(status, 422, "a batch of refused items only");
    let (status, v) = srv.get(OPERATOR, "/api/v1/incidents/987654").await;
    assert_eq!(status, 404, "{v}");
    let (status, v) = srv.get(OPERATOR, "/api/v1/history/track?device_id=").await;
    assert!((400..500).contains(&status), "{v}");

    let (status, text) = scrape(&srv, Some(SCRAPER)).await;
    assert_eq!(status, 200);
    let samples = parse(&text);
    let posts = histogram(
        &samples,
        "liandong_http_request_duration_seconds",
        &[("route", "/api/v1/positions"), ("method", "POST"), ("status", "2xx")],
    );
    assert_eq!(posts, 5.0, "five batches acknowledged");
    let refused = histogram(
        &samples,
        "liandong_http_request_duration_seconds",
        &[("route", "/api/v1/positions"), ("method", "POST"), ("status", "4xx")],
    );
    assert_eq!(refused, 1.0, "one batch refused");
    histogram(
        &samples,
        "liandong_http_request_duration_seconds",
        &[("route", "/api/v1/incidents/:id"), ("status", "4xx")],
    );
    assert!(!text.contains("987654"), "a path's id never becomes a label:\n{text}");
    let commits = histogram(&samples, "liandong_group_commit_seconds", &[]);
    assert!(commits >= 5.0, "{commits} group commits");
    histogram(&samples, "liandong_group_commit_batch_size", &[]);
    let delivered = histogram(&samples, "liandong_live_delivery_lag_seconds", &[]);
    assert!(delivered >= 5.0, "five positions handed to the live client, {delivered} measured");

    let value = |name: &str, labels: &[(&str, &str)]| {
        samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
            .unwrap_or_else(|| panic!("{name} {labels:?} is exported:\n{text}"))
    };
    assert_eq!(value("liandong_reports_accepted_total", &[]), 5.0);
    assert_eq!(value("liandong_live_clients", &[]), 1.0);
    assert_eq!(value("liandong_devices", &[]), 1.0);
    assert!(value("liandong_refusals_total", &[("status", "404"), ("field", "none")]) >= 1.0);
    assert!(value("liandong_refusals_total", &[("status", "422")]) >= 1.0);
    assert!(value("liandong_refusals_total", &[("status", "400"), ("field", "from")]) >= 1.0, "{text}");
    for gauge in ["liandong_sequencer_queue_depth", "liandong_live_queue_depth_max", "liandong_live_replays_running"] {
        assert!(value(gauge, &[]) >= 0.0, "{gauge}");
    }
    assert!(value("process_resident_memory_bytes", &[]) > 0.0);

    // A replay is counted; a second server in this process counts only its own.
    let mut replay = srv.live(&format!("token={OPERATOR}&since=1")).await;
    next_of(&mut replay, "position", 5000).await.expect("the replayed position");
    let (_, text) = scrape(&srv, Some(ADMIN)).await;
    assert_eq!(
        parse(&text).iter().find(|s| s.metric == "liandong_live_replays_total").map(|s| s.value.clone()),
        Some(prometheus_parse::Value::Counter(1.0))
    );
    let other = start("parse-other").await;
    let (_, text) = scrape(&other, Some(SCRAPER)).await;
    assert!(text.contains("liandong_reports_accepted_total 0"), "{text}");
    assert!(!text.contains("/api/v1/positions\""), "the other server's requests are not counted here:\n{text}");
    other.stop().await;
    srv.stop().await;
}

/// `GET /readyz`: the status and the body (text or JSON).
async fn ready(srv: &Server) -> (u16, Value) {
    let res = srv.http.get(format!("{}/readyz", srv.url)).send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Polls `/readyz` until `check` holds of its answer, for at most `within`.
async fn ready_until(srv: &Server, within: Duration, check: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let (status, v) = ready(srv).await;
        if check(status, &v) || tokio::time::Instant::now() > deadline {
            return (status, v);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn failing(v: &Value, part: &str) -> bool {
    v["failing"].as_array().is_some_and(|f| f.iter().any(|p| p == part))
}

#[tokio::test]
async fn readiness_names_the_store_while_another_connection_holds_the_write_lock() {
    let srv = start("ready-sqlite").await;
    let (status, v) = ready(&srv).await;
    assert_eq!((status, v), (200, Value::String("ready\n".into())));
    // Another process's writer (here, a connection of the test) holds the database's
    // write lock: the store still answers reads, but nothing can be committed.
    let url = format!("sqlite://{}", srv.dir.join("liandong.db").display());
    let mut blocker = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut blocker).await.unwrap();
    let (status, v) = ready_until(&srv, Duration::from_secs(15), |s, v| s == 503 && failing(v, "store")).await;
    assert_eq!(status, 503, "{v}");
    assert!(failing(&v, "store") && !failing(&v, "sequencer"), "{v}");
    assert!(v["reasons"]["store"].as_str().is_some_and(|r| r.contains("write lock")), "{v}");
    let health = srv.http.get(format!("{}/healthz", srv.url)).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200, "liveness does not follow readiness");
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    blocker.close().await.unwrap();
    let (status, v) = ready_until(&srv, Duration::from_secs(15), |s, _| s == 200).await;
    assert_eq!(status, 200, "ready again once the lock is released: {v}");
    srv.stop().await;
}

/// A TCP proxy between the server and PostgreSQL that the test can cut (every open
/// connection closed, new ones closed at once) and restore.
struct Proxy {
    addr: std::net::SocketAddr,
    cut: Arc<AtomicBool>,
    pipes: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let pipes: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (cut2, pipes2) = (cut.clone(), pipes.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if cut2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let pipe = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                pipes2.lock().unwrap().push(pipe.abort_handle());
            }
        });
        Proxy { addr, cut, pipes, accept }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for pipe in self.pipes.lock().unwrap().drain(..) {
            pipe.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// `postgres://user@host:port/db` with `host:port` replaced by `addr`; the replaced
/// `host:port` too.
fn through(url: &str, addr: std::net::SocketAddr) -> (String, String) {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (userinfo, hostpath) = rest.rsplit_once('@').map_or(("", rest), |(u, h)| (u, h));
    let (hostport, path) = hostpath.split_once('/').unwrap_or((hostpath, ""));
    let at = if userinfo.is_empty() { String::new() } else { format!("{userinfo}@") };
    (format!("{scheme}://{at}{addr}/{path}"), hostport.to_owned())
}

#[tokio::test]
async fn readiness_names_the_store_when_postgresql_is_cut_off_and_recovers_when_it_is_back() {
    let mut config = liandong_test_support::config(liandong_test_support::fresh_dir("ops-ready-pg"));
    config.tokens = tokens();
    if Backend::Postgis.configure(&mut config, "ops_ready_pg").await.is_none() {
        return;
    }
    let direct = config.store.database_url.as_ref().unwrap().expose().to_owned();
    let placeholder: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
    let (_, upstream) = through(&direct, placeholder);
    let proxy = Proxy::start(upstream).await;
    let (via_proxy, _) = through(&direct, proxy.addr);
    config.store.database_url = Some(liandong_server::config::Secret::new(via_proxy));
    let srv = Server::start(config).await;
    let (status, v) = ready_until(&srv, Duration::from_secs(10), |s, _| s == 200).await;
    assert_eq!(status, 200, "{v}");

    proxy.cut();
    let (status, v) = ready_until(&srv, Duration::from_secs(15), |s, v| s == 503 && failing(v, "store")).await;
    assert_eq!(status, 503, "{v}");
    assert!(failing(&v, "store"), "{v}");
    assert!(v["reasons"]["store"].is_string(), "{v}");
    let health = srv.http.get(format!("{}/healthz", srv.url)).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200, "liveness does not follow readiness");

    proxy.restore();
    let (status, v) = ready_until(&srv, Duration::from_secs(30), |s, _| s == 200).await;
    assert_eq!(status, 200, "ready again once PostgreSQL is reachable: {v}");
    // And it commits again.
    register_phone(&srv).await;
    srv.stop().await;
}

/// The judicial office's calendar of public holidays runs out with the last year it
/// lists (after it every weekday counts as a working day for referrals): `/metrics`
/// counts the days left by the deadline clock, so that an alert asks for the next year's
/// holidays in time, and goes negative once it has run out; a calendar that lists no day
/// has no figure rather than a 0 that would say it ends today.
#[tokio::test]
async fn metrics_count_the_days_left_in_the_judicial_offices_calendar() {
    // 10:00 China time on a day.
    let at = |y, m, d| liandong_core::stats::days_from_civil(y, m, d) * 86_400_000 + 2 * 3_600_000;
    let clock = liandong_server::clock::Clock::manual(at(2026, 12, 4));
    let dir = liandong_test_support::fresh_dir("ops-calendar");
    let srv = Server::start_in(dir, tokens(), |c| {
        c.judicial_office.holidays = vec!["2026-10-01".into(), "2026-10-02".into()];
        c.judicial_office.workdays = vec!["2026-10-10".into()];
        c.clock = clock.clone();
    })
    .await;
    let days_left = |text: &str| {
        parse(text).iter().find(|s| s.metric == "liandong_judicial_calendar_days_left").map(|s| match s.value {
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
    };
    let (status, text) = scrape(&srv, Some(SCRAPER)).await;
    assert_eq!(status, 200);
    assert_eq!(days_left(&text), Some(27.0), "4 to 31 December:\n{text}");
    clock.set(at(2027, 1, 2));
    let (_, text) = scrape(&srv, Some(SCRAPER)).await;
    assert_eq!(days_left(&text), Some(-2.0), "two days into a year it does not list");
    srv.stop().await;

    let dir = liandong_test_support::fresh_dir("ops-calendar-none");
    let srv = Server::start_in(dir, tokens(), |c| c.judicial_office.holidays.clear()).await;
    let (_, text) = scrape(&srv, Some(SCRAPER)).await;
    assert_eq!(days_left(&text), None, "{text}");
    srv.stop().await;
}
