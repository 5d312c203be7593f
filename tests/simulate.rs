//! The demo simulator against a real server on 127.0.0.1:0. An operator pushes a plan
//! for a team; the simulated leader's phone acknowledges it on its live feed socket
//! within the human delay, and the team's members walk onto the new line without
//! leaving its corridor. And the simulated command centre runs the closed loop: an
//! incident opened, dispatched, signed for, reached, reported on and closed, and a
//! watch-list alert acknowledged, as a signed-in operator person, while grid-member
//! persons file reports. And the demo's people are created through the people API
//! once, however often the simulator starts, with its devices bound to them.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use liandong_server::auth::Role;
use liandong_test_support::{fresh_dir, mini_map, token, Server};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const ADMIN: &str = "sim-admin-token";
const OPERATOR: &str = "sim-operator-token";

/// The simulator process, killed when the test ends however it ends, its log removed.
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
        let _ = std::fs::remove_file(&self.log);
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

/// A server on 127.0.0.1:0 with the mini map, its data in a fresh directory.
async fn start(name: &str) -> Server {
    let tokens = vec![token(ADMIN, Role::Admin), token(OPERATOR, Role::Operator)];
    Server::start_in(fresh_dir(name), tokens, |_| {}).await
}

/// Runs `liandong simulate` against `server`, its log next to the data directory.
fn simulator(server: &Server, speedup: &str, log_filter: &str, env: &[(&str, &str)]) -> Simulator {
    let log = server.dir.with_extension("log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_liandong"));
    cmd.args(["simulate", "--url", &server.url, "--token", ADMIN, "--speedup", speedup, "--maps"])
        .arg(mini_map())
        .env("LIANDONG_LOG", log_filter)
        .env("NO_COLOR", "1")
        .env_remove("LIANDONG_OPERATOR_TOKEN")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    Simulator { child: cmd.spawn().expect("the simulator starts"), log }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulated_leader_acknowledges_a_pushed_plan_and_the_team_walks_it() {
    let server = start("simulate").await;
    let (url, addr) = (server.url.clone(), server.addr);
    let http = reqwest::Client::new();

    let (mut feed, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/live?token={OPERATOR}"))
        .await
        .expect("the operator's socket connects");
    // Simulated time at 4× real: the leader answers within 5 s, and the first fire
    // report of the simulated grid members (which diverts the team) is a minute away.
    let simulator = simulator(&server, "4", "info", &[]);

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
    let mut away = std::collections::HashSet::new();
    while Instant::now() < deadline {
        let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(1), feed.next()).await else { continue };
        let Message::Text(text) = msg else { continue };
        let v: Value = serde_json::from_str(&text).unwrap();
        let data = &v["data"];
        match v["type"].as_str() {
            // A member the simulated command centre sends to an incident leaves the
            // plan, as it should; the rest of the team walks on.
            Some("incident") => away.extend(data["incident"]["assigned_device"].as_str().map(str::to_owned)),
            Some("position") if data["device_id"].as_str().is_some_and(|d| away.contains(d)) => {}
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
            Some("alert")
                if data["rule"] == "route_off" && !data["device_id"].as_str().is_some_and(|d| away.contains(d)) =>
            {
                panic!("a member left the plan: {data}")
            }
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
    server.stop().await;
}

/// The incident's timeline actions, in order.
fn actions(timeline: &Value) -> Vec<&str> {
    timeline.as_array().map(|t| t.iter().filter_map(|e| e["action"].as_str()).collect()).unwrap_or_default()
}

/// The closed loop at 400× real: the simulated operator, a command-centre person signed
/// in with the demo password, opens incidents, dispatches the first recommended unit, the
/// unit's phone signs for, sets off, arrives, reports back, and the operator closes; the
/// operator acknowledges a watch-list alert; and grid members signed in with one-time
/// codes file reports under their own names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulated_desk_closes_an_incident_and_acknowledges_an_alert() {
    let server = start("simulate-desk").await;
    let url = server.url.clone();
    let http = reqwest::Client::new();
    let simulator =
        simulator(&server, "400", "info,liandong::simulate::incidents=debug", &[("LIANDONG_OPERATOR_TOKEN", OPERATOR)]);
    let get = |path: String| {
        let http = http.clone();
        async move {
            let r = http.get(path).bearer_auth(OPERATOR).send().await.unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            r.json::<Value>().await.unwrap()
        }
    };

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut closed = None;
    let mut acked = None;
    while Instant::now() < deadline && (closed.is_none() || acked.is_none()) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if closed.is_none() {
            let list = get(format!("{url}/api/v1/history/incidents")).await;
            let ids = list["incidents"].as_array().unwrap().iter().filter(|i| i["state"] == "closed");
            for id in ids.filter_map(|i| i["incident_id"].as_i64()) {
                let inc = get(format!("{url}/api/v1/incidents/{id}")).await;
                if actions(&inc["timeline"]).contains(&"dispatch") {
                    closed = Some(inc);
                    break;
                }
            }
        }
        if acked.is_none() {
            let history = get(format!("{url}/api/v1/history/alerts")).await;
            acked = history["acknowledged"].as_object().and_then(|a| a.values().next().cloned());
        }
    }
    let Some(inc) = closed else { panic!("no incident was closed; simulator log:\n{}", simulator.log()) };
    let timeline = &inc["timeline"];
    assert_eq!(actions(timeline), ["create", "dispatch", "sign", "depart", "arrive", "feedback", "close"], "{inc}");
    let by =
        |action: &str| timeline.as_array().unwrap().iter().find(|e| e["action"] == action).unwrap()["actor"].clone();
    let device = inc["incident"]["assigned_device"].as_str().expect("a unit was assigned");
    // The operator's steps are a command-centre operator's, signed in with a session:
    // the timeline names the person, not the operator token the simulator was given.
    let people = all_people(&http, &url).await;
    let operator = by("create");
    let person = people
        .iter()
        .find(|p| p["name"] == operator && p["person_id"].as_str().unwrap().starts_with("cc-operator-"))
        .unwrap_or_else(|| panic!("the operator {operator} is no command-centre operator; {inc}"));
    for action in ["create", "dispatch", "close"] {
        assert_eq!(by(action), operator, "the signed-in operator takes the {action} step");
    }
    assert_ne!(operator, OPERATOR);
    assert!(signed_in(&http, &url, &person["person_id"]).await, "the operator's session is in the audit: {person}");
    // A phone bound to a person (the demo binds each to its officer) acts for that person.
    let devices = get(format!("{url}/api/v1/devices")).await;
    let bound = devices["devices"]
        .as_array()
        .and_then(|all| all.iter().find(|d| d["device_id"] == device))
        .and_then(|d| d["person_id"].as_str().map(str::to_owned));
    let phone = bound.map_or_else(|| format!("device:{device}"), |p| format!("person:{p}"));
    for action in ["sign", "depart", "arrive", "feedback"] {
        assert_eq!(by(action), phone, "the unit's phone takes the {action} step, for its person");
    }
    assert!(inc["incident"]["state"] == "closed" && inc["recommended"].is_null(), "{inc}");
    let Some(ack) = acked else { panic!("no alert was acknowledged; simulator log:\n{}", simulator.log()) };
    assert_eq!(ack["by"], operator, "the signed-in operator acknowledges: {ack}");
    assert!(!ack["note"].as_str().unwrap_or_default().is_empty(), "{ack}");

    // Grid reports are filed by grid members signed in with one-time codes: the
    // reporter is a grid-member person, whose session is in the audit.
    let reports = get(format!("{url}/api/v1/reports")).await;
    let reporters: Vec<&str> =
        reports["reports"].as_array().unwrap().iter().filter_map(|r| r["reporter"].as_str()).collect();
    assert!(!reporters.is_empty(), "no grid report was filed; simulator log:\n{}", simulator.log());
    let members: Vec<&Value> = people.iter().filter(|p| p["unit_kind"] == "grid").collect();
    for reporter in &reporters {
        assert!(members.iter().any(|p| p["name"] == *reporter), "{reporter} is no grid member: {members:?}");
    }
    let member = members.iter().find(|p| p["name"] == reporters[0]).unwrap();
    assert!(signed_in(&http, &url, &member["person_id"]).await, "the grid member's session is in the audit: {member}");
    // One session per grid member however many reports they filed.
    let audit: Value = http
        .get(format!("{url}/api/v1/audit?subject=person:{}", member["person_id"].as_str().unwrap()))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sessions = audit["audit"].as_array().unwrap().iter().filter(|e| e["action"] == "signed_in").count();
    assert_eq!(sessions, 1, "{audit}");
    assert!(reporters.len() > members.len(), "more reports than members, so sessions were reused: {reporters:?}");
    let log = simulator.log();
    assert!(log.contains("incident opened") && log.contains("incident closed"), "{log}");
    assert!(!log.contains("panicked"), "{log}");

    drop(simulator);
    server.stop().await;
}

/// Whether the audit log has a sign-in of `person_id` by a session.
async fn signed_in(http: &reqwest::Client, url: &str, person_id: &Value) -> bool {
    let subject = format!("person:{}", person_id.as_str().unwrap());
    let r = http.get(format!("{url}/api/v1/audit?subject={subject}")).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["audit"].as_array().unwrap().iter().any(|e| e["action"] == "signed_in" && e["actor"] == *person_id)
}

/// Lists every person with the admin token, a page at a time.
async fn all_people(http: &reqwest::Client, url: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut page = format!("{url}/api/v1/people?limit=500");
        if let Some(a) = &after {
            page.push_str(&format!("&after={a}"));
        }
        let r = http.get(page).bearer_auth(ADMIN).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        out.extend(v["people"].as_array().unwrap().iter().cloned());
        match v["next_after"].as_str() {
            Some(a) => after = Some(a.to_owned()),
            None => return out,
        }
    }
}

/// Waits until the simulator's log says it has its people, and answers the log.
async fn people_done(simulator: &Simulator) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let log = simulator.log();
        if log.contains("simulator registered its devices") {
            return log;
        }
        assert!(!log.contains("failed"), "{log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the simulator did not create its people within 30 s:\n{}", simulator.log())
}

/// The demo's people on the mini map (1 team of 3, 2 posts, 2 grids): created through
/// the API with the admin token, each device bound to its person, and today's duty
/// roster set for them; a second simulator finds them there (409), creates no one
/// twice and leaves the roster as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_creates_the_demo_people_and_their_roster_once_and_binds_its_devices_to_them() {
    let server = start("simulate-people").await;
    let url = server.url.clone();
    let http = reqwest::Client::new();
    let first = simulator(&server, "1", "info", &[]);
    let log = people_done(&first).await;
    assert!(log.contains("created=30") && log.contains("existing=0"), "{log}");
    drop(first);

    let people = all_people(&http, &url).await;
    let count = |kind: &str, role: &str| {
        people
            .iter()
            .filter(|p| p["unit_kind"] == kind && p["roles"].as_array().unwrap().contains(&json!(role)))
            .count()
    };
    assert_eq!(people.len(), 30, "{people:?}");
    assert_eq!(count("team", "patrol_leader"), 1, "the team's one leader");
    assert_eq!(count("team", "post_officer"), 2, "the team's other members");
    assert_eq!(count("post", "post_officer"), 6, "each of the 2 posts: a leader and 2 officers");
    assert_eq!(count("grid", "grid_member"), 2, "one grid member per village grid");
    assert_eq!(count("judicial_office", "partner"), 12, "the 12 mediators");
    assert_eq!(count("command_centre", "operator"), 6);
    assert_eq!(count("command_centre", "admin"), 1);
    let leader = people.iter().find(|p| p["person_id"] == "team-1-m01").expect("the leader of team 1");
    assert_eq!(leader["unit_id"], "team-1");
    assert!(leader["name"].as_str().unwrap().chars().all(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "{leader}");
    let post_leaders: Vec<_> =
        people.iter().filter(|p| p["person_id"].as_str().unwrap().ends_with("-leader")).collect();
    assert_eq!(post_leaders.len(), 2, "{post_leaders:?}");

    let devices: Value =
        http.get(format!("{url}/api/v1/devices")).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
    let bound = |id: &str| {
        devices["devices"].as_array().unwrap().iter().find(|d| d["device_id"] == id).map(|d| d["person_id"].clone())
    };
    assert_eq!(bound("team-1-m01"), Some(json!("team-1-m01")), "{devices}");
    assert_eq!(bound("team-1-m03"), Some(json!("team-1-m03")), "{devices}");
    assert_eq!(bound("p-west-officer"), Some(json!("p-west-officer-1")), "{devices}");

    // Today's roster: the command centre's three shifts of a leader and an operator, and
    // each post's leader and two officers.
    let roster = |http: reqwest::Client, url: String| async move {
        let v: Value =
            http.get(format!("{url}/api/v1/duty")).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
        let mut shifts: Vec<(String, String, String)> = v["shifts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let unit = s["unit_id"].as_str().unwrap_or("command_centre").to_owned();
                (unit, s["duty"].as_str().unwrap().to_owned(), s["person_id"].as_str().unwrap().to_owned())
            })
            .collect();
        shifts.sort();
        shifts
    };
    let today = roster(http.clone(), url.clone()).await;
    let of = |unit: &str, duty: &str| today.iter().filter(|s| s.0 == unit && s.1 == duty).count();
    assert_eq!((of("command_centre", "leader"), of("command_centre", "on_duty")), (3, 3), "{today:?}");
    for post in ["p-west", "p-east"] {
        assert_eq!((of(post, "leader"), of(post, "on_duty")), (1, 2), "{post}: {today:?}");
    }
    assert!(today.contains(&("p-west".into(), "leader".into(), "p-west-leader".into())), "{today:?}");

    // A second start: everyone is there already, the names are what they were.
    let second = simulator(&server, "1", "info", &[]);
    let log = people_done(&second).await;
    assert!(log.contains("created=0") && log.contains("existing=30"), "{log}");
    drop(second);
    let again = all_people(&http, &url).await;
    assert_eq!(again, people, "a second start changes no one");
    assert_eq!(roster(http.clone(), url.clone()).await, today, "nor doubles the roster");
    server.stop().await;
}

/// The audit's sign-ins of `person_id` (by a session).
async fn sign_ins(http: &reqwest::Client, url: &str, person_id: &str) -> usize {
    let r = http.get(format!("{url}/api/v1/audit?subject=person:{person_id}")).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["audit"].as_array().unwrap().iter().filter(|e| e["action"] == "signed_in").count()
}

/// With sessions that end after 6 s without renewal, the simulated duty operator keeps
/// one session by renewing it (half way, so a call between 3 and 5 s after the last
/// renewal renews; 4 s, the first setting, left one second for it, which a CI run's load
/// once missed); revoked by an administrator, its next call answers 401
/// (or its next renewal is refused) and it signs in again and goes on as the same person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulated_operator_renews_its_session_and_signs_in_again_when_it_is_revoked() {
    let tokens = vec![token(ADMIN, Role::Admin), token(OPERATOR, Role::Operator)];
    let server = Server::start_in(fresh_dir("simulate-session"), tokens, |c| {
        c.sessions.idle_s = 6;
        c.sessions.max_s = 3600;
    })
    .await;
    let url = server.url.clone();
    let http = reqwest::Client::new();
    let simulator = simulator(&server, "400", "info,liandong::simulate::signin=debug", &[]);

    let deadline = Instant::now() + Duration::from_secs(30);
    let person = loop {
        let log = simulator.log();
        if let Some(line) = log.lines().find(|l| l.contains("the duty operator is signed in")) {
            let id = line.split("person=").nth(1).expect("the person is logged").trim().to_owned();
            break id;
        }
        assert!(Instant::now() < deadline, "the operator did not sign in:\n{log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(person.starts_with("cc-operator-"), "{person}");
    // Past the 6 s a session lasts unrenewed, the operator still has its one session.
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert!(simulator.log().contains("session renewed"), "{}", simulator.log());
    assert_eq!(sign_ins(&http, &url, &person).await, 1, "renewed, never opened again:\n{}", simulator.log());

    let r = http.delete(format!("{url}/api/v1/people/{person}/sessions")).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let revoked_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let deadline = Instant::now() + Duration::from_secs(30);
    while sign_ins(&http, &url, &person).await < 2 {
        assert!(Instant::now() < deadline, "the operator did not sign in again:\n{}", simulator.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Mostly a call answered 401; now and then the renewal due next was refused first.
    let log = simulator.log();
    assert!(log.contains("session refused; signing in again") || log.contains("renewal refused"), "{log}");
    // And goes on as the same person: an incident opened after the revocation names them.
    let people = all_people(&http, &url).await;
    let name = people.iter().find(|p| p["person_id"] == person.as_str()).unwrap()["name"].clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list: Value = http
            .get(format!("{url}/api/v1/history/incidents"))
            .bearer_auth(OPERATOR)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut later = false;
        let after =
            list["incidents"].as_array().unwrap().iter().filter(|i| i["created_ms"].as_i64() > Some(revoked_at));
        for id in after.filter_map(|i| i["incident_id"].as_i64()) {
            let r = http.get(format!("{url}/api/v1/incidents/{id}")).bearer_auth(OPERATOR).send().await.unwrap();
            let inc: Value = r.json().await.unwrap();
            let created_by = inc["timeline"].as_array().and_then(|t| t.first()).map(|e| e["actor"].clone());
            assert_eq!(created_by, Some(name.clone()), "opened after the revocation by the same person: {inc}");
            later = true;
        }
        if later {
            break;
        }
        assert!(Instant::now() < deadline, "no incident after the revocation by {name}: {list}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    drop(simulator);
    server.stop().await;
}
