//! The demo simulator's patrol leader against a real server on 127.0.0.1:0: an operator
//! pushes a plan for a team; the simulated leader's phone acknowledges it on its live
//! feed socket within the human delay, and the team's members walk onto the new line
//! without leaving its corridor.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use liandong_server::auth::Role;
use liandong_server::config::{Config, Secret, TokenConfig};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const ADMIN: &str = "sim-admin-token";
const OPERATOR: &str = "sim-operator-token";

/// The simulator process, killed when the test ends however it ends.
struct Simulator {
    child: Child,
    log: PathBuf,
}

impl Simulator {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Metres from `p` to the polyline `line` (planar, local equirectangular: fine over a
/// few kilometres).
fn distance_to_line_m(p: [f64; 2], line: &[[f64; 2]]) -> f64 {
    let kx = 111_195.0 * p[1].to_radians().cos();
    let local = |q: [f64; 2]| ((q[0] - p[0]) * kx, (q[1] - p[1]) * 111_195.0);
    line.windows(2)
        .map(|w| {
            let ((ax, ay), (bx, by)) = (local(w[0]), local(w[1]));
            let (dx, dy) = (bx - ax, by - ay);
            let l2 = dx * dx + dy * dy;
            let t = if l2 > 0.0 { (-(ax * dx + ay * dy) / l2).clamp(0.0, 1.0) } else { 0.0 };
            (ax + t * dx).hypot(ay + t * dy)
        })
        .fold(f64::INFINITY, f64::min)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulated_leader_acknowledges_a_pushed_plan_and_the_team_walks_it() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::env::temp_dir().join(format!("liandong-simulate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let maps = root.join("tests/fixtures/maps/mini");
    let mut config = Config { data_dir: dir.clone(), maps: maps.clone(), ..Config::default() };
    config.store.durability = liandong_store::Durability::Normal;
    let token = |t: &str, role| TokenConfig { token: Secret::new(t), role, name: t.into(), unit_id: None };
    config.tokens = vec![token(ADMIN, Role::Admin), token(OPERATOR, Role::Operator)];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(liandong_server::run(listener, config, async move {
        let _ = stopped.await;
    }));
    let url = format!("http://{addr}");
    let http = reqwest::Client::new();

    let (mut feed, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/live?token={OPERATOR}"))
        .await
        .expect("the operator's socket connects");
    // Simulated time at 4× real: the leader answers within 5 s, and the first fire
    // report of the simulated grid members (which diverts the team) is a minute away.
    let log = dir.with_extension("log");
    let simulator = Simulator {
        child: Command::new(env!("CARGO_BIN_EXE_liandong"))
            .args(["simulate", "--url", &url, "--token", ADMIN, "--speedup", "4", "--maps"])
            .arg(&maps)
            .env("LIANDONG_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the simulator starts"),
        log,
    };

    // Team 1 walks its fixed route (south from the west post at 107.1, 30.7); the plan
    // goes round a 2 km square whose last side is the route's first 2.2 km, walked
    // north: the members step onto that side where they are, and then head east, away
    // from the fixed route.
    let line = [[107.1, 30.7], [107.12, 30.7], [107.12, 30.68], [107.1, 30.68], [107.1, 30.7]];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pushed_at = None;
    let mut acked_at = None;
    let mut east_of_route = false;
    let mut checked = 0;
    while Instant::now() < deadline {
        let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(1), feed.next()).await else { continue };
        let Message::Text(text) = msg else { continue };
        let v: Value = serde_json::from_str(&text).unwrap();
        let data = &v["data"];
        match v["type"].as_str() {
            Some("position") if data["device_id"].as_str().is_some_and(|d| d.starts_with("team-1-")) => {
                if pushed_at.is_none() {
                    let r = http
                        .post(format!("{url}/api/v1/teams/team-1/plans"))
                        .bearer_auth(OPERATOR)
                        .json(&json!({"kind": "manual", "reason": "test: round the square", "coordinates": line}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
                    pushed_at = Some(Instant::now());
                }
                // A second after the acknowledgement every report is on the new line.
                if acked_at.is_some_and(|t: Instant| t.elapsed() > Duration::from_secs(1)) {
                    let p = [data["lon"].as_f64().unwrap(), data["lat"].as_f64().unwrap()];
                    let off_m = distance_to_line_m(p, &line);
                    assert!(off_m < 30.0, "{} is {off_m:.0} m off the new line: {data}", data["device_id"]);
                    east_of_route |= p[0] > 107.101;
                    checked += 1;
                    if east_of_route && checked >= 9 {
                        break;
                    }
                }
            }
            Some("route") if data["event"]["action"] == "ack" => {
                assert_eq!(data["plan"]["team_id"], "team-1");
                assert_eq!(data["plan"]["acked_by"], "device:team-1-m01", "{data}");
                let delay = pushed_at.expect("pushed").elapsed();
                assert!(delay < Duration::from_secs(8), "acknowledged after {delay:?}");
                acked_at = Some(Instant::now());
            }
            Some("alert") if data["rule"] == "route_off" => panic!("a member left the plan: {data}"),
            _ => {}
        }
    }
    assert!(acked_at.is_some(), "the plan was never acknowledged; simulator log:\n{}", simulator.log());
    assert!(east_of_route && checked >= 9, "the team did not walk the new line ({checked} reports checked)");

    let plans: Value =
        http.get(format!("{url}/api/v1/plans")).bearer_auth(OPERATOR).send().await.unwrap().json().await.unwrap();
    let plan = plans["plans"].as_array().unwrap().iter().find(|p| p["team_id"] == "team-1").expect("team 1's plan");
    assert_eq!(plan["status"], "acknowledged", "{plan}");
    assert_eq!(plan["version"], 1);
    let log = simulator.log();
    assert!(log.contains("team takes a new plan") && log.contains("team=team-1"), "{log}");

    drop(simulator);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(20), server).await.expect("server stops").unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(dir.with_extension("log"));
}
