//! The checkpoint cameras: registered with push keys, the demo plates put on the watch
//! list, and plate reads pushed as Hikvision ISAPI ANPR alarms; the alerts they raise go
//! to the duty operator. Every camera also sends a heartbeat (JSON, as newer firmware
//! does) every 30 s, so that the server counts it online; the last two fall silent after
//! three minutes, so that the wall map shows cameras going offline.

use std::time::Duration;

use super::options::Args;
use super::support::{rfc3339, run_seed, Rng};

/// A watch-list alert one of the simulated cameras raised, as its push answered.
#[derive(Debug, Clone)]
pub(crate) struct RaisedAlert {
    pub(crate) seq: i64,
    pub(crate) plate: String,
    pub(crate) camera: String,
}

/// Plates the demo puts on the watch list (illustrative), with the reason shown.
const DEMO_WATCH: [(&str, &str); 3] = [
    ("川S·A1234", "被盗车辆 stolen vehicle"),
    ("川S·B5678", "涉案车辆 vehicle in a case"),
    ("川J·C9012", "套牌嫌疑 cloned plate"),
];

/// Gives the map's checkpoint cameras push keys and puts the demo plates on the watch
/// list, so that the camera side of the demo is alive too.
pub(super) async fn setup_checkpoints(
    client: &reqwest::Client,
    args: &Args,
    map: &liandong_core::CountyMap,
    suffix: &str,
) -> anyhow::Result<Vec<Checkpoint>> {
    let mut out = Vec::new();
    for cam in map.cameras.iter().filter(|c| c.kind.as_deref() == Some("checkpoint")).take(24) {
        let key = format!("sim-{suffix}-{}", cam.id);
        let body = serde_json::json!({"camera_id": cam.id, "name": cam.name, "kind": "checkpoint",
            "lon": cam.point.x(), "lat": cam.point.y(), "key": key});
        let r = client.post(format!("{}/api/v1/cameras", args.url)).bearer_auth(&args.token).json(&body).send().await?;
        anyhow::ensure!(r.status().is_success(), "registering camera {}: {}", cam.id, r.status());
        out.push(Checkpoint { id: cam.id.clone(), key, name: cam.name.clone() });
    }
    for (i, (plate, reason)) in DEMO_WATCH.iter().enumerate() {
        let body = serde_json::json!({"watch_id": format!("demo-{}", i + 1), "kind": "plate", "value": plate,
            "reason": reason, "priority": 1, "roles": ["operator", "patrol_leader"]});
        let r =
            client.post(format!("{}/api/v1/watchlist", args.url)).bearer_auth(&args.token).json(&body).send().await?;
        anyhow::ensure!(r.status().is_success(), "adding watch-list entry {plate}: {}", r.status());
    }
    tracing::info!(cameras = out.len(), watch_list = DEMO_WATCH.len(), "simulator set up checkpoint cameras");
    Ok(out)
}

/// How often a camera sends its heartbeat, in real seconds (the server's offline limit
/// is real time too).
const HEARTBEAT_S: u64 = 30;

/// How long the cameras that fall silent keep talking, in real seconds.
const FALL_SILENT_AFTER_S: u64 = 180;

/// How many of the demo's cameras fall silent.
const FALLING_SILENT: usize = 2;

/// Cameras as (id, push key).
pub(super) type CameraKeys = Vec<(String, String)>;

/// The cameras that keep talking and those that fall silent (the last
/// [`FALLING_SILENT`], when there are more than that).
pub(super) fn heartbeat_plan(cameras: &[Checkpoint]) -> (CameraKeys, CameraKeys) {
    let all: Vec<(String, String)> = cameras.iter().map(|c| (c.id.clone(), c.key.clone())).collect();
    let split = if all.len() > FALLING_SILENT { all.len() - FALLING_SILENT } else { all.len() };
    let (talking, silent) = all.split_at(split);
    (talking.to_vec(), silent.to_vec())
}

/// Sends every camera's heartbeat every [`HEARTBEAT_S`]: an inactive `videoloss` in
/// Hikvision's JSON event format, as NVRs send their keep-alive. The cameras of
/// `falling_silent` stop after [`FALL_SILENT_AFTER_S`].
pub(super) async fn send_heartbeats(
    client: reqwest::Client,
    args: Args,
    talking: CameraKeys,
    falling_silent: CameraKeys,
) {
    let started = std::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(HEARTBEAT_S));
    loop {
        tick.tick().await;
        let silent_now = started.elapsed() >= Duration::from_secs(FALL_SILENT_AFTER_S);
        let cameras = talking.iter().chain(falling_silent.iter().filter(|_| !silent_now));
        for (camera, key) in cameras {
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            let body = serde_json::json!({
                "channelID": 1, "dateTime": rfc3339(now), "activePostCount": 0,
                "eventType": "videoloss", "eventState": "inactive", "eventDescription": "videoloss alarm"
            });
            let url = format!("{}/isapi/events?camera={camera}&key={key}", args.url);
            match client.post(url).header("content-type", "application/json").body(body.to_string()).send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => tracing::warn!(camera = %camera, status = %r.status(), "camera heartbeat refused"),
                Err(e) => tracing::warn!(camera = %camera, error = %e, "camera heartbeat not delivered"),
            }
        }
    }
}

/// A checkpoint camera the simulator pushes plate reads for.
pub(super) struct Checkpoint {
    pub(super) id: String,
    /// Its push key.
    pub(super) key: String,
    pub(super) name: String,
}

/// Every few (simulated) seconds a checkpoint camera reads a plate and pushes it as a
/// Hikvision ISAPI ANPR alarm; about one read in eight is a watch-listed plate. The
/// alert a push raised (its answer's `alert_seq`) goes to the duty operator, `alerts`;
/// when the operator lags, it is dropped rather than queued without bound.
pub(super) async fn push_plate_reads(
    client: reqwest::Client,
    args: Args,
    cameras: Vec<Checkpoint>,
    alerts: tokio::sync::mpsc::Sender<RaisedAlert>,
) {
    let mut rng = Rng::new(run_seed());
    let mut rand = move || rng.next_u64();
    let mut tick = tokio::time::interval(Duration::from_secs_f64((4.0 / args.speedup.max(0.01)).max(0.05)));
    loop {
        tick.tick().await;
        let Checkpoint { id: camera, key, name } = &cameras[(rand() % cameras.len() as u64) as usize];
        let watched = rand() % 8 == 0;
        let plate = if watched {
            DEMO_WATCH[(rand() % DEMO_WATCH.len() as u64) as usize].0.replace('·', "")
        } else {
            format!("川S{}{:04}", (b'A' + (rand() % 26) as u8) as char, rand() % 10_000)
        };
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<EventNotificationAlert version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">\n<channelID>1</channelID>\n<dateTime>{}</dateTime>\n<activePostCount>1</activePostCount>\n<eventType>ANPR</eventType>\n<eventState>active</eventState>\n<ANPR>\n<licensePlate>{plate}</licensePlate>\n<direction>forward</direction>\n<confidenceLevel>{}</confidenceLevel>\n<plateColor>blue</plateColor>\n<vehicleType>vehicle</vehicleType>\n</ANPR>\n</EventNotificationAlert>",
            rfc3339(now),
            85 + rand() % 15
        );
        let url = format!("{}/isapi/events?camera={camera}&key={key}", args.url);
        match client.post(url).header("content-type", "application/xml").body(xml).send().await {
            Ok(r) if r.status().is_success() => {
                // A repeated read within the server's dedup window raises no alert.
                let answer: serde_json::Value = r.json().await.unwrap_or_default();
                if let (true, Some(seq)) = (watched, answer["alert_seq"].as_i64()) {
                    let alert = RaisedAlert { seq, plate, camera: name.clone() };
                    if alerts.try_send(alert).is_err() {
                        tracing::debug!(alert_seq = seq, "the operator is busy; an alert goes unread");
                    }
                }
            }
            Ok(r) => tracing::warn!(camera = %camera, status = %r.status(), "camera push refused"),
            Err(e) => tracing::warn!(camera = %camera, error = %e, "camera push not delivered"),
        }
    }
}
