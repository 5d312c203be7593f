//! Crash test: a real `liandong serve` process takes acknowledged reports under load,
//! is killed with SIGKILL, and is started again on the same data directory. Every
//! acknowledged report must be in the store, and the live state (last position, fence
//! membership) must be rebuilt — also when the kill falls between two writes of the
//! devices' states, which go behind the reports.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use liandong_server::auth::Role;
use liandong_server::config::Config;
use liandong_test_support::load::{assert_none_lost, Load};
use liandong_test_support::process::ServeProcess;
use liandong_test_support::{fresh_dir, mini_map, now_ms, now_s, token, Server};
use serde_json::{json, Value};

const ADMIN: &str = "durability-admin-token";

/// Starts `liandong serve` on `dir` (full durability) on an ephemeral port, logging at
/// `level`; its base URL is read from its `listening` log line.
fn start(dir: &Path, level: &str) -> ServeProcess {
    start_with(dir, level, "")
}

/// [`start`] with more `[store]` settings (TOML lines).
fn start_with(dir: &Path, level: &str, store: &str) -> ServeProcess {
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nmaps = \"{}\"\n[store]\ndurability = \"full\"\n{store}\n[[tokens]]\ntoken = \"{ADMIN}\"\nrole = \"admin\"\nname = \"test\"\n",
            dir.join("data").display(),
            mini_map().display()
        ),
    )
    .unwrap();
    ServeProcess::start(env!("CARGO_BIN_EXE_liandong"), &config, &[("LIANDONG_LOG", level)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_report_and_live_state_is_rebuilt() {
    let dir = fresh_dir("durability");
    std::fs::create_dir_all(&dir).unwrap();
    let server = start(&dir, "info");
    let url = server.url.clone();
    let client = reqwest::Client::new();
    for i in 0..4 {
        let r = client
            .post(format!("{url}/api/v1/devices"))
            .bearer_auth(ADMIN)
            .json(&json!({"device_id": format!("dev-{i}"), "name": format!("device {i}"), "kind": "patrol_member", "key": format!("key-of-dev-{i}")}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    // dev-0 goes into the school fence and stays there.
    let t0 = now_ms() - 600_000;
    let r = client
        .post(format!("{url}/api/v1/positions"))
        .bearer_auth(ADMIN)
        .json(&json!({"positions": [{"device_id": "dev-0", "lon": 107.08, "lat": 30.70, "time": t0}, {"device_id": "dev-0", "lon": 107.10, "lat": 30.70, "time": t0 + 200_000}]}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());

    // Load: three writers post small batches as fast as acknowledgements come back.
    let devices: Vec<String> = (1..4).map(|w| format!("dev-{w}")).collect();
    let load = Load::start(&client, &url, ADMIN, &devices, t0 + 20_000);
    load.wait_for(3000, Duration::from_secs(20)).await;
    server.kill();
    let acked = load.acknowledged().await;
    assert!(acked.len() >= 1000, "load produced only {} acknowledged reports", acked.len());

    let server = start(&dir, "info");
    let url = server.url.clone();
    let store = liandong_store::Store::open(&dir.join("data"), liandong_store::Durability::Normal).await.unwrap();
    let mut stored = Vec::new();
    for w in 1..4 {
        stored.extend(store.position_seqs(&format!("dev-{w}")).await.unwrap());
    }
    assert_none_lost(&acked, &stored);

    // Live state: the last position is back, and dev-0 is still inside the fence, so
    // its next report inside is `inside`, not a fresh `enter`.
    let devices: Value =
        client.get(format!("{url}/api/v1/devices")).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
    let dev0 = devices["devices"].as_array().unwrap().iter().find(|d| d["device_id"] == "dev-0").unwrap();
    assert_eq!(dev0["last"]["enrichment"]["fences_inside"][0], "f-school", "{dev0}");
    let (seq, events) = report(&client, &url, "dev-0", 107.1001, t0 + 300_000).await;
    assert!(seq > *acked.iter().max().unwrap(), "sequence numbers continue after the restart");
    assert_eq!(events, ["inside", "dwell"], "membership survived the crash");
    server.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Posts one report of `device` and answers its sequence number and the fence events
/// its device's last report now carries.
async fn report(client: &reqwest::Client, url: &str, device: &str, lon: f64, time_ms: i64) -> (i64, Vec<String>) {
    let v: Value = client
        .post(format!("{url}/api/v1/positions"))
        .bearer_auth(ADMIN)
        .json(&json!({"positions": [{"device_id": device, "lon": lon, "lat": 30.70, "time": time_ms}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seq = v["accepted"][0]["seq"].as_i64().unwrap_or_else(|| panic!("{device} at {lon}: {v}"));
    let (last_seq, events) = last_report(client, url, device).await;
    assert_eq!(last_seq, Some(seq), "{device}'s last report is the one just sent");
    (seq, events)
}

/// The sequence number of `device`'s last report and its fence events.
async fn last_report(client: &reqwest::Client, url: &str, device: &str) -> (Option<i64>, Vec<String>) {
    let devices: Value =
        client.get(format!("{url}/api/v1/devices")).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
    let d = devices["devices"].as_array().unwrap().iter().find(|d| d["device_id"] == device).unwrap();
    let events = d["last"]["enrichment"]["fence_events"]
        .as_array()
        .map_or(vec![], |events| events.iter().map(|e| e["detect"].as_str().unwrap().to_owned()).collect());
    (d["last"]["seq"].as_i64(), events)
}

/// The devices' states (the fences each is in) are written behind the reports
/// (`store.device_states_every_ms`, here an hour: only a clean stop writes them). A crash
/// between two writes loses no fence membership: the reports stored after the states
/// move them on at the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_between_device_state_writes_loses_no_fence_membership() {
    let dir = fresh_dir("states-behind");
    std::fs::create_dir_all(&dir).unwrap();
    let hourly = "device_states_every_ms = 3600000";
    let client = reqwest::Client::new();
    let (outside, inside) = (107.08, 107.10);
    let t0 = now_ms() - 600_000;

    let server = start_with(&dir, "info", hourly);
    let url = server.url.clone();
    for d in ["dev-0", "dev-1"] {
        let r = client
            .post(format!("{url}/api/v1/devices"))
            .bearer_auth(ADMIN)
            .json(&json!({"device_id": d, "name": d, "kind": "patrol_member", "key": format!("key-of-{d}")}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    report(&client, &url, "dev-0", outside, t0).await;
    let (_, e) = report(&client, &url, "dev-0", inside, t0 + 200_000).await;
    let v: Value =
        client.get(format!("{url}/api/v1/devices")).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
    assert_eq!(e, ["enter"], "{v}");
    // A clean stop writes the states: dev-0 inside the school's fence.
    server.stop(Duration::from_secs(30));

    let server = start_with(&dir, "info", hourly);
    let url = server.url.clone();
    assert_eq!(report(&client, &url, "dev-0", outside, t0 + 250_000).await.1, ["exit"]);
    report(&client, &url, "dev-1", outside, t0).await;
    let (dev1_last, events) = report(&client, &url, "dev-1", inside, t0 + 200_000).await;
    assert_eq!(events, ["enter"]);
    server.kill();

    // What the crash left: states that have not taken the last reports.
    let store = liandong_store::Store::open(&dir.join("data"), liandong_store::Durability::Normal).await.unwrap();
    let states = store.device_states().await.unwrap();
    let fences_of = |d: &str| states.iter().find(|(s, _)| s.device_id == d).map(|(s, _)| s.fences.len());
    assert_eq!(fences_of("dev-0"), Some(1), "dev-0's state is as the clean stop wrote it: {states:?}");
    assert_eq!(fences_of("dev-1"), None, "dev-1's state was never written: {states:?}");
    store.close().await;

    let server = start_with(&dir, "info", hourly);
    let url = server.url.clone();
    assert_eq!(last_report(&client, &url, "dev-1").await.0, Some(dev1_last), "dev-1's last report is back");
    // dev-0 left the fence before the crash: back in, it enters again (its last trusted
    // fix is the one outside from before the crash, a plausible ride away).
    assert_eq!(report(&client, &url, "dev-0", inside, t0 + 350_000).await.1, ["enter"]);
    // dev-1 entered before the crash: still inside, and now past the fence's dwell time.
    assert_eq!(report(&client, &url, "dev-1", inside + 0.0001, t0 + 300_000).await.1, ["inside", "dwell"]);
    server.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn maps_check_passes_on_the_demo_map_and_names_problems_of_a_broken_one() {
    let run = |dir: &str| {
        Command::new(env!("CARGO_BIN_EXE_liandong"))
            .args(["maps", "check"])
            .arg(liandong_test_support::root().join(dir))
            .output()
            .unwrap()
    };
    let ok = run("maps/dazhu");
    assert!(ok.status.success(), "{}{}", String::from_utf8_lossy(&ok.stdout), String::from_utf8_lossy(&ok.stderr));
    let bad = run("tests/fixtures/maps/broken");
    assert!(!bad.status.success());
    let out = String::from_utf8_lossy(&bad.stdout);
    for needle in [
        "posts.geojson: feature p-far",
        "posts.geojson: feature p-west",
        "fences.geojson: feature f-bowtie",
        "routes.geojson: feature route-off",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_keys_and_tokens_never_reach_the_log() {
    let dir = fresh_dir("secrets");
    std::fs::create_dir_all(&dir).unwrap();
    let server = start(&dir, "trace");
    let (url, log) = (server.url.clone(), server.log.clone());
    let client = reqwest::Client::new();
    let key = "very-secret-device-key-42";
    let r = client
        .post(format!("{url}/api/v1/devices"))
        .bearer_auth(ADMIN)
        .json(&json!({"device_id": "866777", "name": "officer", "kind": "post_officer", "key": key}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let now = now_s();
    let r = client
        .get(format!("{url}/osmand?id=866777&lat=30.7&lon=107.1&timestamp={now}&key={key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .get(format!("{url}/osmand?id=866777&lat=30.7&lon=107.1&timestamp={now}&key=wrong-{key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client.get(format!("{url}/api/v1/devices?token={ADMIN}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill();
    let log = log.lock().unwrap();
    assert!(log.len() > 5, "the server logged at trace level: {log:?}");
    for line in log.iter() {
        assert!(!line.contains(key), "a device key was logged: {line}");
        assert!(!line.contains(ADMIN), "a token was logged: {line}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Shutdown stops accepting, lets in-flight requests finish and commits what they
/// queued: every report answered 200 is in the store after `run` returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_commits_every_acknowledged_report() {
    // The default durability, as `serve` runs: not the tests' `Normal`.
    let config = Config {
        data_dir: fresh_dir("shutdown"),
        maps: mini_map(),
        tokens: vec![token(ADMIN, Role::Admin)],
        ..Config::default()
    };
    let mut server = Server::start(config).await;
    let (client, url) = (server.http.clone(), server.url.clone());
    let r = client
        .post(format!("{url}/api/v1/devices"))
        .bearer_auth(ADMIN)
        .json(&json!({"device_id": "d1", "name": "d1", "key": "key-of-d1"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let t0 = now_ms() - 60_000;
    let mut senders = Vec::new();
    for i in 0..64i64 {
        let (client, url) = (client.clone(), url.clone());
        senders.push(tokio::spawn(async move {
            let body = json!({"positions": [{"device_id": "d1", "lon": 107.3, "lat": 30.6, "time": t0 + i}]});
            let res =
                client.post(format!("{url}/api/v1/positions")).bearer_auth(ADMIN).json(&body).send().await.ok()?;
            if !res.status().is_success() {
                return None;
            }
            res.json::<Value>().await.ok()?["accepted"][0]["seq"].as_i64()
        }));
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    server.signal_stop();
    let mut acked = Vec::new();
    for s in senders {
        if let Some(seq) = s.await.unwrap() {
            acked.push(seq);
        }
    }
    let dir = server.stop_keeping_data().await;
    let store = liandong_store::Store::open(&dir, liandong_store::Durability::Normal).await.unwrap();
    let stored = store.position_seqs("d1").await.unwrap();
    for seq in &acked {
        assert!(stored.contains(seq), "acknowledged report {seq} is missing after shutdown");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
