//! Backups of the embedded store (issue 17): `liandong backup` copies a running
//! server's store under load, and `liandong restore` puts the copy into a fresh data
//! directory, where a server finds every report and every camera image acknowledged
//! before the backup began. The refusals: a non-empty backup directory, a restore onto
//! a running server or over an existing store, and a PostgreSQL store.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use liandong_test_support::load::{assert_none_lost, Load};
use liandong_test_support::process::ServeProcess;
use liandong_test_support::{fresh_dir, mini_map, now_ms};
use serde_json::{json, Value};

const ADMIN: &str = "backup-admin-token";

/// A configuration file `name` in `dir` for the embedded store in `data`, with full
/// durability and no limit on camera snapshots that the load would reach.
fn config(dir: &Path, name: &str, data: &Path) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nmaps = \"{}\"\n[store]\ndurability = \"full\"\n[ingest]\ncamera_images_per_min = 100000\n[[tokens]]\ntoken = \"{ADMIN}\"\nrole = \"admin\"\nname = \"test\"\n",
            data.display(),
            mini_map().display()
        ),
    )
    .unwrap();
    path
}

/// Runs `liandong ARGS` with `LIANDONG_CONFIG=config`, off the runtime.
async fn liandong(config: &Path, args: &[&str]) -> Output {
    let (config, args): (std::path::PathBuf, Vec<String>) =
        (config.to_owned(), args.iter().map(|a| a.to_string()).collect());
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_liandong"))
            .args(&args)
            .env("LIANDONG_CONFIG", &config)
            .env("LIANDONG_LOG", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn said(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Standard base64 (RFC 4648 §4), for the pushes' `image_base64`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A small JPEG-framed image unique to `n` (the server checks the FF D8 start only).
fn jpeg(n: u32) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend_from_slice(format!("backup-test-image-{n:08}").as_bytes());
    bytes.extend_from_slice(&[0xFF, 0xD9]);
    bytes
}

/// The images of the pushes acknowledged so far, shared with the pushing task.
type AckedImages = Arc<Mutex<Vec<Vec<u8>>>>;

/// A camera (the map's `cam-1`, through the admin gateway token) pushing plate reads
/// with a snapshot each until `stop`; every push answered 200 is kept with its image.
fn camera_pushes(
    http: &reqwest::Client,
    url: &str,
    stop: Arc<AtomicBool>,
) -> (AckedImages, tokio::task::JoinHandle<()>) {
    let acked: AckedImages = Arc::default();
    let (http, url, kept) = (http.clone(), url.to_owned(), acked.clone());
    let task = tokio::spawn(async move {
        for n in 0..5000u32 {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let image = jpeg(n);
            let push = json!({"camera_id": "cam-1", "time": liandong_test_support::rfc3339(now_ms()), "kind": "anpr",
                "plate": format!("川S{:05}", n), "image_base64": base64(&image)});
            let Ok(res) = http.post(format!("{url}/api/v1/alerts")).bearer_auth(ADMIN).json(&push).send().await else {
                break;
            };
            if !res.status().is_success() {
                break;
            }
            kept.lock().unwrap().push(image);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    (acked, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_every_report_and_image_acknowledged_before_it() {
    let dir = fresh_dir("backup");
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("data");
    let serving = config(&dir, "serve.toml", &data);
    let server = ServeProcess::start(env!("CARGO_BIN_EXE_liandong"), &serving, &[("LIANDONG_LOG", "info")]);
    let http = reqwest::Client::new();
    let devices: Vec<String> = (1..4).map(|i| format!("dev-{i}")).collect();
    for d in &devices {
        let body = json!({"device_id": d, "name": d, "kind": "patrol_member", "key": format!("key-of-{d}")});
        let r =
            http.post(format!("{}/api/v1/devices", server.url)).bearer_auth(ADMIN).json(&body).send().await.unwrap();
        assert!(r.status().is_success());
    }

    // Load: three report writers and a camera, until the server is stopped.
    let load = Load::start(&http, &server.url, ADMIN, &devices, now_ms() - 3_600_000);
    let stop_camera = Arc::new(AtomicBool::new(false));
    let (camera_acked, camera) = camera_pushes(&http, &server.url, stop_camera.clone());
    load.wait_for(1500, Duration::from_secs(30)).await;

    // What was acknowledged before the backup command starts must all be in the copy.
    let reports_before = load.so_far();
    let images_before = camera_acked.lock().unwrap().clone();
    let out = dir.join("backup-1");
    let made = liandong(&serving, &["backup", out.to_str().unwrap()]).await;
    assert!(made.status.success(), "backup: {}", said(&made));
    assert!(
        reports_before.len() >= 1000 && !images_before.is_empty(),
        "load before the backup: {} reports, {} images",
        reports_before.len(),
        images_before.len()
    );
    load.wait_for(reports_before.len() + 300, Duration::from_secs(10)).await;
    let manifest: Value = serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest["database"]["max_seq"].as_i64().unwrap() >= *reports_before.iter().max().unwrap(), "{manifest}");
    assert!(manifest["database"]["migration"].as_i64().unwrap() >= 17, "{manifest}");
    assert!(manifest["database"]["tables"]["positions"].as_i64().unwrap() >= reports_before.len() as i64, "{manifest}");

    // Refusals while the server runs: a second backup into the same (non-empty)
    // directory, and a restore onto the running server's data directory.
    let again = liandong(&serving, &["backup", out.to_str().unwrap()]).await;
    assert!(!again.status.success() && said(&again).contains("not empty"), "{}", said(&again));
    let onto_running = liandong(&serving, &["restore", out.to_str().unwrap(), "--force"]).await;
    assert!(
        !onto_running.status.success() && said(&onto_running).contains("a server is running"),
        "{}",
        said(&onto_running)
    );

    stop_camera.store(true, Ordering::SeqCst);
    let _ = camera.await;
    server.kill();
    let _ = load.acknowledged().await;

    // Over an existing store, restore wants --force.
    let over = liandong(&serving, &["restore", out.to_str().unwrap()]).await;
    assert!(!over.status.success() && said(&over).contains("--force"), "{}", said(&over));

    // Restore into a fresh data directory and serve it.
    let restored = dir.join("restored");
    let restoring = config(&dir, "restored.toml", &restored);
    let done = liandong(&restoring, &["restore", out.to_str().unwrap()]).await;
    assert!(done.status.success(), "restore: {}", said(&done));
    let server = ServeProcess::start(env!("CARGO_BIN_EXE_liandong"), &restoring, &[("LIANDONG_LOG", "info")]);
    let listed: Value = http
        .get(format!("{}/api/v1/devices", server.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["devices"].as_array().map(Vec::len), Some(3), "{listed}");
    let store = liandong_store::Store::open(&restored, liandong_store::Durability::Normal).await.unwrap();
    let mut stored = Vec::new();
    for d in &devices {
        stored.extend(store.position_seqs(d).await.unwrap());
    }
    assert_none_lost(&reports_before, &stored);
    store.close().await;

    // Every image of a push acknowledged before the backup is there, and served.
    let files: Vec<(String, Vec<u8>)> = std::fs::read_dir(restored.join("images"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    for image in &images_before {
        assert!(
            files.iter().any(|(_, bytes)| bytes == image),
            "an acknowledged image is missing: {}",
            String::from_utf8_lossy(image)
        );
    }
    let (name, bytes) = files.iter().find(|(_, b)| *b == images_before[0]).unwrap();
    let served = http.get(format!("{}/api/v1/images/{name}", server.url)).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(served.status().as_u16(), 200);
    assert_eq!(&served.bytes().await.unwrap()[..], &bytes[..]);
    server.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn backup_and_restore_refuse_a_postgresql_store_and_point_to_pg_dump() {
    let dir = fresh_dir("backup-pg");
    std::fs::create_dir_all(&dir).unwrap();
    let path = config(&dir, "pg.toml", &dir.join("data"));
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("[store]\n", "[store]\ndatabase_url = \"postgres://liandong@127.0.0.1:1/liandong\"\n");
    std::fs::write(&path, text).unwrap();
    for args in [["backup", "somewhere"], ["restore", "somewhere"]] {
        let out = liandong(&path, &args).await;
        assert!(!out.status.success(), "{args:?}");
        assert!(said(&out).contains("pg_dump"), "{args:?}: {}", said(&out));
    }
    assert!(!dir.join("somewhere").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
