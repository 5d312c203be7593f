//! Crash test: a real `liandong serve` process takes acknowledged reports under load,
//! is killed with SIGKILL, and is started again on the same data directory. Every
//! acknowledged report must be in the store, and the live state (last position, fence
//! membership) must be rebuilt.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const ADMIN: &str = "durability-admin-token";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Starts the server on an ephemeral port and returns it with its base URL, read from
/// its `listening` log line.
fn start(dir: &Path) -> (Child, String) {
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nmaps = \"{}\"\n[store]\ndurability = \"full\"\n[[tokens]]\ntoken = \"{ADMIN}\"\nrole = \"admin\"\nname = \"test\"\n",
            dir.join("data").display(),
            root().join("tests/fixtures/maps/mini").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_liandong"))
        .arg("serve")
        .env("LIANDONG_CONFIG", &config)
        .env("LIANDONG_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent {
                if let Some(addr) = line.split("addr=").nth(1) {
                    let _ = tx.send(addr.split_whitespace().next().unwrap_or("").to_owned());
                    sent = true;
                }
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(60)).expect("server logs its listening address");
    (child, format!("http://{addr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_report_and_live_state_is_rebuilt() {
    let dir = std::env::temp_dir().join(format!("liandong-durability-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (mut server, url) = start(&dir);
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
    let t0 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 - 600_000;
    let r = client
        .post(format!("{url}/api/v1/positions"))
        .bearer_auth(ADMIN)
        .json(&json!({"positions": [{"device_id": "dev-0", "lon": 107.08, "lat": 30.70, "time": t0}, {"device_id": "dev-0", "lon": 107.10, "lat": 30.70, "time": t0 + 200_000}]}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());

    // Load: four writers post small batches as fast as acknowledgements come back.
    let acked: Arc<Mutex<Vec<i64>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 1..4 {
        let (client, url, acked) = (client.clone(), url.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            for step in 0i64.. {
                let items: Vec<Value> = (0..20)
                    .map(|k| json!({"device_id": format!("dev-{w}"), "lon": 107.3 + (k as f64) * 1e-5, "lat": 30.6, "time": t0 + 20_000 + step * 100 + k}))
                    .collect();
                let res = client.post(format!("{url}/api/v1/positions")).bearer_auth(ADMIN).json(&json!({ "positions": items })).send().await;
                let Ok(res) = res else { break };
                if !res.status().is_success() {
                    break;
                }
                let Ok(v) = res.json::<Value>().await else { break };
                let mut a = acked.lock().unwrap();
                a.extend(v["accepted"].as_array().unwrap().iter().map(|x| x["seq"].as_i64().unwrap()));
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < 3000 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 1000, "load produced only {} acknowledged reports", acked.len());

    let (mut server, url) = start(&dir);
    let store = liandong_store::Store::open(&dir.join("data"), liandong_store::Durability::Normal).await.unwrap();
    let mut stored = Vec::new();
    for w in 1..4 {
        stored.extend(store.position_seqs(&format!("dev-{w}")).await.unwrap());
    }
    stored.sort_unstable();
    let missing: Vec<i64> = acked.iter().copied().filter(|s| stored.binary_search(s).is_err()).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged reports lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );

    // Live state: the last position is back, and dev-0 is still inside the fence, so
    // its next report inside is `inside`, not a fresh `enter`.
    let devices: Value =
        client.get(format!("{url}/api/v1/devices")).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
    let dev0 = devices["devices"].as_array().unwrap().iter().find(|d| d["device_id"] == "dev-0").unwrap();
    assert_eq!(dev0["last"]["enrichment"]["fences_inside"][0], "f-school", "{dev0}");
    let v: Value = client
        .post(format!("{url}/api/v1/positions"))
        .bearer_auth(ADMIN)
        .json(&json!({"positions": [{"device_id": "dev-0", "lon": 107.1001, "lat": 30.7001, "time": t0 + 300_000}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seq = v["accepted"][0]["seq"].as_i64().unwrap();
    assert!(seq > *acked.iter().max().unwrap(), "sequence numbers continue after the restart");
    let devices: Value =
        client.get(format!("{url}/api/v1/devices")).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
    let dev0 = devices["devices"].as_array().unwrap().iter().find(|d| d["device_id"] == "dev-0").unwrap();
    let events: Vec<&str> = dev0["last"]["enrichment"]["fence_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detect"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["inside", "dwell"], "membership survived the crash: {dev0}");
    server.kill().unwrap();
    server.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn maps_check_passes_on_the_demo_map_and_names_problems_of_a_broken_one() {
    let run = |dir: &str| {
        Command::new(env!("CARGO_BIN_EXE_liandong")).args(["maps", "check"]).arg(root().join(dir)).output().unwrap()
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
