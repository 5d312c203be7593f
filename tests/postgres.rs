//! The server on PostgreSQL + PostGIS, as real `liandong serve` processes against a
//! real cluster: two instances on one database share one live feed and one sequence;
//! a SIGKILL under load loses no acknowledged report; a database outage is answered
//! with 503 and `Retry-After`, and ingest resumes by itself when the database is back.
//!
//! The cluster is named by `LIANDONG_TEST_PG_URL` (the README's test command starts
//! one). Without it these tests say they were skipped, unless `LIANDONG_REQUIRE_PG=1`
//! (set by the test command), where a missing cluster is a failure.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use liandong_test_support::feed::next_of;
use liandong_test_support::load::{assert_none_lost, missing, Load};
use liandong_test_support::pg::{cluster, fresh_database};
use liandong_test_support::process::ServeProcess;
use liandong_test_support::{mini_map, now_ms};
use serde_json::{json, Value};

const ADMIN: &str = "postgres-admin-token";
const OPERATOR: &str = "postgres-operator-token";

/// A `liandong serve` process on the database at `db_url`, its files in `dir`.
fn serve(dir: &Path, db_url: &str) -> ServeProcess {
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nmaps = \"{}\"\n\
             [[tokens]]\ntoken = \"{ADMIN}\"\nrole = \"admin\"\nname = \"admin\"\n\
             [[tokens]]\ntoken = \"{OPERATOR}\"\nrole = \"operator\"\nname = \"operator\"\n",
            dir.join("data").display(),
            mini_map().display()
        ),
    )
    .unwrap();
    let env = [("LIANDONG_DATABASE_URL", db_url), ("LIANDONG_LOG", "info")];
    ServeProcess::start(env!("CARGO_BIN_EXE_liandong"), &config, &env)
}

async fn register(http: &reqwest::Client, url: &str, device: &str) {
    let r = http
        .post(format!("{url}/api/v1/devices"))
        .bearer_auth(ADMIN)
        .json(&json!({"device_id": device, "name": device, "kind": "patrol_member", "key": format!("key-of-{device}")}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

/// Posts one report; the answer's status and body.
async fn report(http: &reqwest::Client, url: &str, device: &str, lon: f64, t: i64) -> (u16, Value) {
    let r = http
        .post(format!("{url}/api/v1/positions"))
        .bearer_auth(ADMIN)
        .json(&json!({"positions": [{"device_id": device, "lon": lon, "lat": 30.6, "time": t}]}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_share_the_live_feed_and_its_sequence() {
    let Some(cluster) = cluster("two_instances") else { return };
    let db = fresh_database(&cluster, "two").await;
    let dir = std::env::temp_dir().join(format!("liandong-pg-two-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let a = serve(&dir.join("a"), &db);
    let b = serve(&dir.join("b"), &db);
    let http = reqwest::Client::new();
    register(&http, &a.url, "unit-1").await;
    let (mut on_b, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/api/v1/live?token={OPERATOR}", b.addr)).await.unwrap();
    let (mut on_a, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/api/v1/live?token={OPERATOR}", a.addr)).await.unwrap();

    // A report posted to A reaches a client of B.
    let t = now_ms() - 60_000;
    let (status, v) = report(&http, &a.url, "unit-1", 107.3, t).await;
    assert_eq!(status, 200, "{v}");
    let seq_a = v["accepted"][0]["seq"].as_i64().unwrap();
    let m = next_of(&mut on_b, "position", 5000).await.expect("B's client sees A's report");
    assert_eq!((m["seq"].as_i64(), m["data"]["device_id"].as_str()), (Some(seq_a), Some("unit-1")), "{m}");
    assert_eq!(m["data"]["enrichment"]["township"]["id"], "t-east", "{m}");

    // B learns the device A registered (its registries follow the database) and
    // numbers its own report after A's: one sequence, from the database.
    let deadline = Instant::now() + Duration::from_secs(15);
    let seq_b = loop {
        let (status, v) = report(&http, &b.url, "unit-1", 107.3001, t + 10_000).await;
        if status == 200 && v["accepted"][0]["seq"].is_i64() {
            break v["accepted"][0]["seq"].as_i64().unwrap();
        }
        assert!(Instant::now() < deadline, "B never accepted the device registered on A: {status} {v}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(seq_b > seq_a, "{seq_b} after {seq_a}");
    let m = next_of(&mut on_a, "position", 5000).await.expect("A's client sees its own report");
    assert_eq!(m["seq"], seq_a);
    let m = next_of(&mut on_a, "position", 5000).await.expect("A's client sees B's report");
    assert_eq!(m["seq"], seq_b);

    // Interleaved writes to both instances keep one gap-free order on both feeds.
    let mut posted = Vec::new();
    for i in 0..20 {
        let server = if i % 2 == 0 { &a } else { &b };
        let (status, v) = report(&http, &server.url, "unit-1", 107.3 + i as f64 * 1e-4, t + 20_000 + i * 1000).await;
        assert_eq!(status, 200, "{v}");
        posted.push(v["accepted"][0]["seq"].as_i64().unwrap());
    }
    let mut seen_on_b = Vec::new();
    while seen_on_b.len() < posted.len() + 1 {
        let m = next_of(&mut on_b, "position", 5000).await.expect("every report reaches B");
        seen_on_b.push(m["seq"].as_i64().unwrap());
    }
    let mut expected = vec![seq_b];
    expected.extend(&posted);
    assert_eq!(seen_on_b, expected, "B's feed is in the database's order");

    // Replay with `since` on B returns A's report.
    let (mut replay, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/api/v1/live?token={OPERATOR}&since={}", b.addr, seq_a - 1))
            .await
            .unwrap();
    let m = next_of(&mut replay, "position", 5000).await.expect("replay on B");
    assert_eq!(m["seq"], seq_a);

    // A phone registered through A reports through B within a second: A announces the
    // change and B reloads at once (its periodic reload is every 5 s).
    register(&http, &a.url, "unit-2").await;
    let registered = Instant::now();
    loop {
        let (status, v) = report(&http, &b.url, "unit-2", 107.31, now_ms() - 1000).await;
        if status == 200 && v["accepted"][0]["seq"].is_i64() {
            break;
        }
        assert!(registered.elapsed() < Duration::from_secs(1), "B still refuses A's new device: {status} {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A photo taken in through A is served by B: images live in the database.
    let photo = "/9j/4AAQSkZJRgABAQAAAQABAAD/2Q==";
    let r = http
        .post(format!("{}/api/v1/reports", a.url))
        .bearer_auth(ADMIN)
        .json(&json!({"category": "hazard", "text": "桥栏杆损坏", "lon": 107.3, "lat": 30.6, "photos_base64": [photo]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let url = r.json::<Value>().await.unwrap()["photos"][0].as_str().expect("the photo's address").to_owned();
    let r = http.get(format!("{}{url}", b.url)).bearer_auth(OPERATOR).send().await.unwrap();
    assert_eq!(r.status(), 200, "B serves the photo A stored");
    assert_eq!(&r.bytes().await.unwrap()[..2], &[0xFF, 0xD8]);
    a.kill();
    b.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_on_postgis_loses_no_acknowledged_report() {
    let Some(cluster) = cluster("sigkill_on_postgis") else { return };
    let db = fresh_database(&cluster, "kill").await;
    let dir = std::env::temp_dir().join(format!("liandong-pg-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = serve(&dir, &db);
    let http = reqwest::Client::new();
    for w in 0..3 {
        register(&http, &server.url, &format!("dev-{w}")).await;
    }
    let devices: Vec<String> = (0..3).map(|w| format!("dev-{w}")).collect();
    let load = Load::start(&http, &server.url, ADMIN, &devices, now_ms() - 600_000);
    load.wait_for(3000, Duration::from_secs(30)).await;
    server.kill();
    let acked = load.acknowledged().await;
    assert!(acked.len() >= 1000, "load produced only {} acknowledged reports", acked.len());
    let store = liandong_store::Store::connect(&db).await.unwrap();
    let mut stored = Vec::new();
    for w in 0..3 {
        stored.extend(store.position_seqs(&format!("dev-{w}")).await.unwrap());
    }
    assert_none_lost(&acked, &stored);
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

type Answer = (u16, Option<i64>, Option<String>);

/// Waits (at most a minute) until the answers so far satisfy `done`.
async fn wait_until(answers: &Mutex<Vec<Answer>>, what: &str, done: impl Fn(&[Answer]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(&answers.lock().unwrap()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `scripts/pg` with `args`; its last line of output.
fn pg_script(args: &[&str]) -> String {
    let out =
        Command::new(liandong_test_support::root().join("scripts/pg")).args(args).output().expect("scripts/pg runs");
    assert!(out.status.success(), "scripts/pg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or("").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_answered_with_503_and_ingest_resumes_by_itself() {
    // A cluster of its own: stopping the shared one would fail the other tests.
    if cluster("database_outage").is_none() {
        return;
    }
    let pg_dir = format!("/tmp/liandong-pg-outage-{}", std::process::id());
    let port = (55_000 + std::process::id() % 5_000).to_string();
    let base = pg_script(&["start", &pg_dir, &port]);
    let db = fresh_database(&base, "outage").await;
    let dir = std::env::temp_dir().join(format!("liandong-server-outage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = serve(&dir, &db);
    let http = reqwest::Client::new();
    register(&http, &server.url, "dev-0").await;

    // A stream of reports, one at a time, recording every answer.
    let answers: Arc<Mutex<Vec<Answer>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (http, url, answers, stop) = (http.clone(), server.url.clone(), answers.clone(), stop.clone());
        tokio::spawn(async move {
            let t0 = now_ms() - 600_000;
            let mut i = 0i64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = http
                    .post(format!("{url}/api/v1/positions"))
                    .bearer_auth(ADMIN)
                    .timeout(Duration::from_secs(30))
                    .json(&json!({"positions": [{"device_id": "dev-0", "lon": 107.3, "lat": 30.6, "time": t0 + i * 100}]}))
                    .send()
                    .await;
                i += 1;
                let Ok(r) = r else { continue };
                let status = r.status().as_u16();
                let retry = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
                let v: Value = r.json().await.unwrap_or(Value::Null);
                answers.lock().unwrap().push((status, v["accepted"][0]["seq"].as_i64(), retry));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    wait_until(&answers, "reports before the outage", |a| a.iter().filter(|a| a.0 == 200).count() >= 20).await;
    pg_script(&["pause", &pg_dir]);
    wait_until(&answers, "503 answers during the outage", |a| a.iter().filter(|a| a.0 == 503).count() >= 3).await;
    let before_restart = answers.lock().unwrap().len();
    pg_script(&["start", &pg_dir, &port]);
    wait_until(&answers, "ingest to resume", |a| a[before_restart..].iter().filter(|a| a.0 == 200).count() >= 20).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = writer.await;
    let answers = answers.lock().unwrap().clone();
    let refused: Vec<_> = answers.iter().filter(|a| a.0 == 503).collect();
    assert!(refused.iter().all(|a| a.2.is_some()), "every 503 says when to retry");
    assert!(answers.iter().all(|a| a.0 == 200 || a.0 == 503), "only 200 or 503: {answers:?}");
    let acked: Vec<i64> = answers.iter().filter_map(|a| a.1).collect();
    let store = liandong_store::Store::connect(&db).await.unwrap();
    let stored = store.position_seqs("dev-0").await.unwrap();
    let missing = missing(&acked, &stored);
    assert!(missing.is_empty(), "acknowledged reports lost across the outage: {missing:?}");
    store.close().await;
    server.kill();
    pg_script(&["stop", &pg_dir]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gis_tools_open_the_tables_as_point_layers() {
    let Some(cluster) = cluster("gis_tools") else { return };
    let db = fresh_database(&cluster, "ogr").await;
    let store = liandong_store::Store::connect(&db).await.expect("the store migrates a fresh database");
    store.close().await;
    // GDAL's PostgreSQL driver, as QGIS uses it, from the URL's parts.
    let rest = db.trim_start_matches("postgres://");
    let (user, rest) = rest.split_once('@').unwrap();
    let (hostport, dbname) = rest.split_once('/').unwrap();
    let (host, port) = hostport.split_once(':').unwrap();
    let out = Command::new("ogrinfo")
        .args(["-ro", "-q", &format!("PG:host={host} port={port} dbname={dbname} user={user}")])
        .output()
        .expect("ogrinfo (gdal-bin) is installed by the test command");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listing}{}", String::from_utf8_lossy(&out.stderr));
    for layer in [
        "device_state",
        "cameras",
        "alerts",
        "grid_reports",
        "incidents",
        "incident_events",
        "route_plans",
        "route_events",
    ] {
        assert!(listing.contains(&format!(": {layer} (Point)")), "{layer} is not a point layer in:\n{listing}");
    }
    // `positions` is partitioned by month: GDAL's catalogue lists the months (the current
    // one among them) but not the partitioned parent, which opens by name as the whole
    // history, as an analyst asks for it (`ogr2ogr … PG:… positions`).
    assert!(listing.contains(": positions_default (Point)"), "the months are point layers:\n{listing}");
    let whole = Command::new("ogrinfo")
        .args(["-ro", "-so", &format!("PG:host={host} port={port} dbname={dbname} user={user}"), "positions"])
        .output()
        .expect("ogrinfo");
    let summary = String::from_utf8_lossy(&whole.stdout);
    assert!(whole.status.success() && summary.contains("Geometry: Point"), "positions by name:\n{summary}");
}
