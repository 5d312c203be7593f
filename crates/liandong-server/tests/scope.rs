//! Who may see what (issue 15), one test per row of the README's table "Who may see
//! what", on both stores. Each row's caller reads over HTTP and on the live feed (live
//! and replayed) what is theirs, and what is not is absent: 404 for one item, left out
//! of lists and of the feed. The callers are config tokens with units; a signed-in
//! person's session yields the same user, so the same rows hold for it.
//!
//! The county is the test map with a second patrol team: team-1 based at the west post
//! (107.1, 30.7), team-2 at the east post (107.3, 30.7), the west and east posts'
//! jurisdictions and grids the two halves of the county (split at 107.2).

use std::collections::BTreeSet;
use std::path::PathBuf;

use liandong_server::auth::Role;
use liandong_server::config::TokenConfig;
use liandong_test_support::feed::drain;
use liandong_test_support::{person_token, token, unit_token, Backend, Server, Ws};
use serde_json::{json, Value};

const ADMIN: &str = "scope-admin";
const OPERATOR: &str = "scope-operator";
const LEADER: &str = "scope-leader-team-1";
const OTHER_LEADER: &str = "scope-leader-team-2";
const OFFICER: &str = "scope-officer-p-west";
const GRID: &str = "scope-grid-g-west";
const OTHER_GRID: &str = "scope-grid-g-east";
const PARTNER: &str = "scope-partner";

/// The phones: a member of each team and an officer of each post.
const PHONES: [(&str, &str, &str, f64, f64); 4] = [
    ("t1-phone", "patrol_member", "team-1", 107.11, 30.69),
    ("t2-phone", "patrol_member", "team-2", 107.31, 30.69),
    ("w-phone", "post_officer", "p-west", 107.10, 30.71),
    ("e-phone", "post_officer", "p-east", 107.30, 30.71),
];

fn tokens() -> Vec<TokenConfig> {
    vec![
        token(ADMIN, Role::Admin),
        token(OPERATOR, Role::Operator),
        person_token(LEADER, Role::PatrolLeader, Some("team-1"), "leader-1"),
        unit_token(OTHER_LEADER, Role::PatrolLeader, "team-2"),
        person_token(OFFICER, Role::PostOfficer, Some("p-west"), "officer-1"),
        person_token(GRID, Role::GridMember, Some("g-west"), "grid-1"),
        unit_token(OTHER_GRID, Role::GridMember, "g-east"),
        person_token(PARTNER, Role::Partner, None, "mediator-1"),
    ]
}

/// A copy of the test map with team-2, based at the east post.
fn two_team_map(name: &str) -> PathBuf {
    let dir = liandong_test_support::fresh_dir(&format!("scope-map-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(liandong_test_support::mini_map()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    let routes = dir.join("routes.geojson");
    let mut map: Value = serde_json::from_str(&std::fs::read_to_string(&routes).unwrap()).unwrap();
    map["features"].as_array_mut().unwrap().push(json!({
        "type": "Feature",
        "properties": {"id": "route-2", "team_id": "team-2", "team_name": "东镇巡防队", "post_id": "p-east", "members": 3},
        "geometry": {"type": "LineString", "coordinates": [[107.3, 30.6], [107.35, 30.6], [107.3, 30.6]]}
    }));
    std::fs::write(&routes, map.to_string()).unwrap();
    dir
}

/// A server on `backend` with the four phones registered; None when PostGIS is to be
/// skipped.
async fn start(name: &str, backend: Backend) -> Option<Server> {
    let run = format!("{name}-{backend:?}");
    let mut config = liandong_test_support::config(liandong_test_support::fresh_dir(&format!("scope-{run}")));
    config.maps = two_team_map(&run);
    config.tokens = tokens();
    // No scheduled planning: the plans on the feed are the ones this test pushes.
    config.planning.interval_s = 0;
    backend.configure(&mut config, &format!("scope_{name}").replace('-', "_")).await?;
    let srv = Server::start(config).await;
    for (id, kind, unit, _, _) in PHONES {
        srv.admin("/api/v1/devices", json!({"device_id": id, "name": id, "kind": kind, "unit_id": unit})).await;
    }
    Some(srv)
}

/// The incidents of the scene, by what decides who sees them.
struct Scene {
    /// Priority 2, 2 km from the west post: team-1's area, the west jurisdiction and grid.
    west: i64,
    /// Priority 2, 2 km from the east post: team-2's area, the east jurisdiction and grid.
    east: i64,
    /// Priority 1 in the east, more than 8 km from either team's post.
    major: i64,
    /// In the far north-east, dispatched to team-1's phone.
    team_task: i64,
    /// In the far south-east, dispatched to the west post's phone.
    post_task: i64,
}

impl Scene {
    fn all(&self) -> BTreeSet<i64> {
        BTreeSet::from([self.west, self.east, self.major, self.team_task, self.post_task])
    }
}

/// Every phone reports, the operator opens the five incidents and dispatches two, and
/// pushes a plan to each team.
async fn scene(srv: &Server) -> Scene {
    let positions: Vec<Value> =
        PHONES.iter().map(|(id, _, _, lon, lat)| json!({"device_id": id, "lon": lon, "lat": lat})).collect();
    let v = srv.admin("/api/v1/positions", json!({"positions": positions})).await;
    assert_eq!(v["accepted"].as_array().map(Vec::len), Some(4), "{v}");
    let scene = Scene {
        west: open(srv, "西村纠纷", 2, 107.12, 30.71, None).await,
        east: open(srv, "东村盗窃", 2, 107.32, 30.71, None).await,
        major: open(srv, "重大警情", 1, 107.25, 30.80, None).await,
        team_task: open(srv, "巡防任务", 3, 107.38, 30.88, Some("t1-phone")).await,
        post_task: open(srv, "警务室任务", 3, 107.36, 30.52, Some("w-phone")).await,
    };
    for team in ["team-1", "team-2"] {
        let plan = json!({"kind": "manual", "reason": "夜间加强巡逻",
            "coordinates": [[107.1, 30.7], [107.12, 30.71]], "waypoints": []});
        let (status, v) = srv.post(OPERATOR, &format!("/api/v1/teams/{team}/plans"), plan).await;
        assert_eq!(status, 201, "{v}");
    }
    scene
}

/// Opens an incident (operator) at a place, dispatched to `device` unless None; its id.
async fn open(srv: &Server, title: &str, priority: u8, lon: f64, lat: f64, device: Option<&str>) -> i64 {
    let body = json!({"title": title, "priority": priority, "lon": lon, "lat": lat});
    let (status, v) = srv.post(OPERATOR, "/api/v1/incidents", body).await;
    assert_eq!(status, 201, "{v}");
    let id = v["incident"]["incident_id"].as_i64().unwrap();
    if let Some(d) = device {
        let step = json!({"action": "dispatch", "device_id": d});
        let (status, v) = srv.post(OPERATOR, &format!("/api/v1/incidents/{id}/actions"), step).await;
        assert_eq!(status, 200, "{v}");
    }
    id
}

/// What a feed client was sent: incidents, devices (positions and snapshots), the
/// teams of route plans and alerts (their [`alert_label`]).
#[derive(Debug, Default, PartialEq)]
struct Seen {
    incidents: BTreeSet<i64>,
    devices: BTreeSet<String>,
    teams: BTreeSet<String>,
    alerts: BTreeSet<String>,
}

/// An alert's rule, and a grid report's category: `grid_report:dispute`.
fn alert_label(alert: &Value) -> String {
    let data = &alert["data"];
    match data["report"]["category"].as_str() {
        Some(category) => format!("{}:{category}", data["rule"].as_str().unwrap()),
        None => data["rule"].as_str().unwrap().to_owned(),
    }
}

/// Everything the client is sent until the feed is quiet for a while.
async fn seen(ws: &mut Ws) -> Seen {
    let mut out = Seen::default();
    for m in drain(ws, 800).await {
        match m["type"].as_str() {
            Some("incident") => {
                out.incidents.insert(m["data"]["incident"]["incident_id"].as_i64().unwrap());
            }
            Some("position") => {
                out.devices.insert(m["data"]["device_id"].as_str().unwrap().to_owned());
            }
            Some("snapshot") => {
                for d in m["devices"].as_array().unwrap() {
                    out.devices.insert(d["device_id"].as_str().unwrap().to_owned());
                }
            }
            Some("route") => {
                out.teams.insert(m["data"]["plan"]["team_id"].as_str().unwrap().to_owned());
            }
            Some("alert") => {
                out.alerts.insert(alert_label(&m));
            }
            _ => {}
        }
    }
    out
}

/// What `caller` sees of the scene on the live feed: connected before it happens, and
/// connected again afterwards with `since=0` (a replay from the store); both must agree.
async fn on_the_feed(srv: &Server, live: &mut Ws, caller: &str) -> Seen {
    let now = seen(live).await;
    let mut again = srv.live(&format!("token={caller}&since=0")).await;
    let replayed = seen(&mut again).await;
    assert_eq!(now, replayed, "{caller}: the replay sends what the live feed sent");
    now
}

fn set<const N: usize>(items: [&str; N]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The incidents `GET /api/v1/incidents/{id}` shows `caller` (200); each other one of
/// the scene must be 404, as if it did not exist.
async fn readable_incidents(srv: &Server, caller: &str, scene: &Scene) -> BTreeSet<i64> {
    let mut out = BTreeSet::new();
    for id in scene.all() {
        let (status, v) = srv.get(caller, &format!("/api/v1/incidents/{id}")).await;
        match status {
            200 => {
                assert_eq!(v["incident"]["incident_id"], id, "{v}");
                out.insert(id);
            }
            404 => assert_eq!(v["error"]["status"], 404, "{v}"),
            other => panic!("{caller} reading incident {id}: {other} {v}"),
        }
    }
    out
}

/// The incident ids of the three history answers (created in a period, open at a
/// moment, open now); they must agree.
async fn incident_history(srv: &Server, caller: &str) -> BTreeSet<i64> {
    let ids = |v: &Value| -> BTreeSet<i64> {
        v["incidents"].as_array().unwrap().iter().map(|i| i["incident_id"].as_i64().unwrap()).collect()
    };
    let at = liandong_test_support::now_ms() + 1000;
    let mut answers = Vec::new();
    for query in ["from=0".to_owned(), format!("at={at}"), "state=open".to_owned()] {
        let (status, v) = srv.get(caller, &format!("/api/v1/history/incidents?{query}")).await;
        assert_eq!(status, 200, "{caller} {query}: {v}");
        answers.push(ids(&v));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{caller}: {answers:?}");
    answers.swap_remove(0)
}

/// The device ids of `GET /api/v1/devices`.
async fn device_list(srv: &Server, caller: &str) -> BTreeSet<String> {
    let (status, v) = srv.get(caller, "/api/v1/devices").await;
    assert_eq!(status, 200, "{caller}: {v}");
    v["devices"].as_array().unwrap().iter().map(|d| d["device_id"].as_str().unwrap().to_owned()).collect()
}

/// The status of a device's track in history for `caller`.
async fn track_status(srv: &Server, caller: &str, device: &str) -> u16 {
    srv.get(caller, &format!("/api/v1/history/track?device_id={device}&from=0")).await.0
}

/// The people of the county: (id, roles, unit kind, unit id).
const PEOPLE: [(&str, &str, &str, Option<&str>); 10] = [
    ("leader-1", "patrol_leader", "team", Some("team-1")),
    ("deputy-1", "patrol_leader", "team", Some("team-1")),
    ("leader-2", "patrol_leader", "team", Some("team-2")),
    ("officer-1", "post_officer", "post", Some("p-west")),
    ("officer-2", "post_officer", "post", Some("p-east")),
    ("grid-1", "grid_member", "grid", Some("g-west")),
    ("grid-2", "grid_member", "grid", Some("g-east")),
    ("mediator-1", "partner", "judicial_office", None),
    ("mediator-2", "partner", "judicial_office", None),
    ("duty-1", "operator", "command_centre", None),
];

/// The administrator adds the county's people.
async fn add_people(srv: &Server) {
    for (id, role, kind, unit) in PEOPLE {
        let body = json!({"person_id": id, "name": id, "roles": [role], "unit_kind": kind, "unit_id": unit});
        srv.admin("/api/v1/people", body).await;
    }
}

/// The people `caller` reads: the list (`GET /api/v1/people`) and one by one (`GET
/// /api/v1/people/{id}`, 200, or 404 as if absent) must agree. A filter naming a unit
/// outside the reach answers no one, and people are the administrator's to change.
async fn readable_people(srv: &Server, caller: &str) -> BTreeSet<String> {
    let ids = |v: &Value| -> BTreeSet<String> {
        v["people"].as_array().unwrap().iter().map(|p| p["person_id"].as_str().unwrap().to_owned()).collect()
    };
    let (status, v) = srv.get(caller, "/api/v1/people").await;
    assert_eq!(status, 200, "{caller}: {v}");
    let listed = ids(&v);
    let mut read = BTreeSet::new();
    for (id, ..) in PEOPLE {
        let (status, v) = srv.get(caller, &format!("/api/v1/people/{id}")).await;
        match status {
            200 => assert!(read.insert(v["person"]["person_id"].as_str().unwrap().to_owned()), "{v}"),
            404 => assert_eq!(v["error"]["status"], 404, "{v}"),
            other => panic!("{caller} reading person {id}: {other} {v}"),
        }
    }
    assert_eq!(listed, read, "{caller}: the list and the records agree");
    for (id, _, kind, unit) in PEOPLE.into_iter().filter(|(id, ..)| !read.contains(*id)) {
        let query = match unit {
            Some(u) => format!("unit_kind={kind}&unit_id={u}"),
            None => format!("unit_kind={kind}"),
        };
        let (status, v) = srv.get(caller, &format!("/api/v1/people?{query}")).await;
        assert!(status == 200 && !ids(&v).contains(id), "{caller} asking for {query}: {status} {v}");
    }
    if caller != ADMIN {
        let (status, _) = srv
            .post(
                caller,
                "/api/v1/people",
                json!({"person_id": "x", "name": "x",
            "roles": ["operator"], "unit_kind": "command_centre"}),
            )
            .await;
        assert_eq!(status, 403, "{caller}: people are the administrator's to add");
    }
    read
}

fn people<const N: usize>(ids: [&str; N]) -> BTreeSet<String> {
    set(ids)
}

/// The photos of the scene, each named by the record that holds it.
struct Photos {
    /// A grid member's hazard report in the west grid, accepted as an incident there.
    west_report: String,
    /// The east grid member's hazard report, left for review.
    east_report: String,
    /// The west grid member's dispute, with the mediation centre.
    dispute: String,
    /// The feedback of the west post's task.
    feedback: String,
}

/// A JPEG's start and end markers: what the server checks of a photo.
const JPEG_BASE64: &str = "/9j/2Q==";

/// Grid members file reports with photos, the operator accepts the west one, and the
/// west post's task is carried out to its feedback with a photo.
async fn photos(srv: &Server, scene: &Scene) -> Photos {
    let mut filed = Vec::new();
    for (caller, category, text, lon) in [
        (GRID, "hazard", "西村井盖缺失(照片)", 107.12),
        (OTHER_GRID, "hazard", "东村路面塌陷(照片)", 107.32),
        (GRID, "dispute", "邻里纠纷(照片)", 107.13),
    ] {
        let report =
            json!({"category": category, "text": text, "lon": lon, "lat": 30.75, "photos_base64": [JPEG_BASE64]});
        let (status, v) = srv.post(caller, "/api/v1/reports", report).await;
        assert_eq!(status, 201, "{v}");
        filed.push((v["report_id"].as_i64().unwrap(), v["photos"][0].as_str().unwrap().to_owned()));
    }
    let review = json!({"decision": "accept", "priority": 3});
    let (status, v) = srv.post(OPERATOR, &format!("/api/v1/reports/{}/review", filed[0].0), review).await;
    assert_eq!(status, 200, "{v}");
    let steps = "/api/v1/incidents/".to_owned() + &scene.post_task.to_string() + "/actions";
    for action in ["sign", "depart", "arrive"] {
        let (status, v) = srv.post(OPERATOR, &steps, json!({"action": action})).await;
        assert_eq!(status, 200, "{action}: {v}");
    }
    let step = json!({"action": "feedback", "note": "已处置", "photos_base64": [JPEG_BASE64]});
    let (status, v) = srv.post(OPERATOR, &steps, step).await;
    assert_eq!(status, 200, "{v}");
    let (_, v) = srv.get(OPERATOR, &format!("/api/v1/incidents/{}", scene.post_task)).await;
    let feedback = v["timeline"].as_array().unwrap().iter().find_map(|e| e["photo_urls"][0].as_str()).unwrap();
    let mut urls = filed.into_iter().map(|(_, url)| url);
    let mut next = || urls.next().unwrap();
    Photos { west_report: next(), east_report: next(), dispute: next(), feedback: feedback.to_owned() }
}

/// The photos `caller` may read (200, the JPEG); each other one is 404, as if absent.
async fn readable_photos(srv: &Server, caller: &str, photos: &Photos) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (label, url) in [
        ("west_report", &photos.west_report),
        ("east_report", &photos.east_report),
        ("dispute", &photos.dispute),
        ("feedback", &photos.feedback),
    ] {
        let r = srv.http.get(format!("{}{url}", srv.url)).bearer_auth(caller).send().await.unwrap();
        match r.status().as_u16() {
            200 => {
                assert_eq!(r.bytes().await.unwrap().as_ref(), [0xFF, 0xD8, 0xFF, 0xD9], "{caller} {label}");
                out.insert(label.to_owned());
            }
            404 => {}
            other => panic!("{caller} reading the {label} photo: {other}"),
        }
    }
    out
}

/// Operators and administrators: everything, with the units recommended to send.
async fn operators_and_administrators_see_the_whole_county(backend: Backend) {
    let Some(srv) = start("county", backend).await else { return };
    let mut operator = srv.ws(OPERATOR).await;
    let mut admin = srv.ws(ADMIN).await;
    let scene = scene(&srv).await;
    add_people(&srv).await;
    let every_phone = set(["t1-phone", "t2-phone", "w-phone", "e-phone"]);
    for (caller, live) in [(OPERATOR, &mut operator), (ADMIN, &mut admin)] {
        assert_eq!(readable_people(&srv, caller).await, PEOPLE.iter().map(|p| p.0.to_owned()).collect(), "{caller}");
        assert_eq!(readable_incidents(&srv, caller, &scene).await, scene.all(), "{caller}");
        assert_eq!(incident_history(&srv, caller).await, scene.all(), "{caller}");
        assert_eq!(device_list(&srv, caller).await, every_phone, "{caller}");
        let (_, heads) = srv.get(caller, "/api/v1/plans").await;
        assert_eq!(heads["plans"].as_array().map(Vec::len), Some(2), "{caller}: {heads}");
        let feed = on_the_feed(&srv, live, caller).await;
        assert_eq!(feed.incidents, scene.all(), "{caller}");
        assert_eq!(feed.devices, every_phone, "{caller}");
        assert_eq!(feed.teams, set(["team-1", "team-2"]), "{caller}");
    }
    let (_, v) = srv.get(OPERATOR, &format!("/api/v1/incidents/{}", scene.east)).await;
    assert!(v["recommended"]["units"].is_array(), "the centre is told whom to send: {v}");
    let photos = photos(&srv, &scene).await;
    for caller in [OPERATOR, ADMIN] {
        let all = set(["west_report", "east_report", "dispute", "feedback"]);
        assert_eq!(readable_photos(&srv, caller, &photos).await, all, "{caller}");
    }
    srv.stop().await;
}

/// A patrol leader: the team's phones and plans, the incidents assigned to it and those
/// within 8 km of its post; not the other team's, nor the rest of the county.
async fn a_patrol_leader_sees_the_team_its_plans_and_the_area_around_its_post(backend: Backend) {
    let Some(srv) = start("leader", backend).await else { return };
    let mut leader = srv.ws(LEADER).await;
    let mut other = srv.ws(OTHER_LEADER).await;
    let scene = scene(&srv).await;
    add_people(&srv).await;
    assert_eq!(readable_people(&srv, LEADER).await, people(["leader-1", "deputy-1"]), "the team's members");
    assert_eq!(readable_people(&srv, OTHER_LEADER).await, people(["leader-2"]), "a token of the team without a person");
    let own = BTreeSet::from([scene.west, scene.team_task]);
    assert_eq!(readable_incidents(&srv, LEADER, &scene).await, own);
    assert_eq!(incident_history(&srv, LEADER).await, own);
    let (_, v) = srv.get(LEADER, &format!("/api/v1/incidents/{}", scene.west)).await;
    assert_eq!(v["recommended"], Value::Null, "dispatching is the centre's: {v}");
    assert_eq!(device_list(&srv, LEADER).await, set(["t1-phone"]));
    assert_eq!(track_status(&srv, LEADER, "t1-phone").await, 200);
    assert_eq!(track_status(&srv, LEADER, "t2-phone").await, 404, "another team's phone does not exist");
    let (status, v) = srv.get(LEADER, "/api/v1/teams/team-1/plans").await;
    assert_eq!((status, v["plans"].as_array().map(Vec::len)), (200, Some(1)), "{v}");
    let (status, v) = srv.get(LEADER, "/api/v1/teams/team-2/plans").await;
    assert_eq!((status, &v["error"]["status"]), (404, &json!(404)), "another team does not exist: {v}");
    let (status, heads) = srv.get(LEADER, "/api/v1/plans").await;
    assert_eq!(status, 200, "{heads}");
    let teams: Vec<&str> = heads["plans"].as_array().unwrap().iter().map(|p| p["team_id"].as_str().unwrap()).collect();
    assert_eq!(teams, ["team-1"]);
    let feed = on_the_feed(&srv, &mut leader, LEADER).await;
    assert_eq!(
        feed,
        Seen { incidents: own, devices: set(["t1-phone"]), teams: set(["team-1"]), alerts: BTreeSet::new() },
        "the leader's feed"
    );
    let feed = on_the_feed(&srv, &mut other, OTHER_LEADER).await;
    assert_eq!(
        feed,
        Seen {
            incidents: BTreeSet::from([scene.east]),
            devices: set(["t2-phone"]),
            teams: set(["team-2"]),
            alerts: BTreeSet::new(),
        },
        "the other team's leader's feed"
    );
    // Writes stay as they were: another team's route is not the leader's to acknowledge.
    let (status, _) = srv.post(LEADER, "/api/v1/teams/team-2/plans/1/ack", json!({})).await;
    assert_eq!(status, 403);
    // The team's task sent to the other team leaves the leader's reach: the feed says it
    // is gone for them (live and replayed) and shows it to the other team's leader.
    let mut live = srv.ws(LEADER).await;
    drain(&mut live, 300).await;
    let mut other_live = srv.ws(OTHER_LEADER).await;
    drain(&mut other_live, 300).await;
    let steps = format!("/api/v1/incidents/{}/actions", scene.team_task);
    let (status, v) = srv.post(OPERATOR, &steps, json!({"action": "dispatch", "device_id": "t2-phone"})).await;
    assert_eq!(status, 200, "{v}");
    let about = |msgs: &[Value]| -> Vec<(String, i64)> {
        let id = |m: &Value| m["data"]["incident_id"].as_i64().or(m["data"]["incident"]["incident_id"].as_i64());
        let kinds = msgs.iter().filter(|m| m["type"] == "incident" || m["type"] == "incident_gone");
        kinds.map(|m| (m["type"].as_str().unwrap().to_owned(), id(m).unwrap())).collect()
    };
    let gone = vec![("incident_gone".to_owned(), scene.team_task)];
    assert_eq!(about(&drain(&mut live, 800).await), gone, "the leader's feed");
    let mut again = srv.live(&format!("token={LEADER}&since=0")).await;
    let replayed = about(&drain(&mut again, 800).await);
    assert_eq!(replayed.last(), gone.last(), "the replay ends the same: {replayed:?}");
    let arrived = vec![("incident".to_owned(), scene.team_task)];
    assert_eq!(about(&drain(&mut other_live, 800).await), arrived, "the other leader's feed");
    assert_eq!(srv.get(LEADER, &format!("/api/v1/incidents/{}", scene.team_task)).await.0, 404);
    assert_eq!(srv.get(OTHER_LEADER, &format!("/api/v1/incidents/{}", scene.team_task)).await.0, 200);
    // Photos: the west report's, once it is an incident in the team's area.
    let photos = photos(&srv, &scene).await;
    assert_eq!(readable_photos(&srv, LEADER, &photos).await, set(["west_report"]));
    srv.stop().await;
}

/// A post officer: the post's phones, its tasks and its jurisdiction's incidents; no
/// team's plans.
async fn a_post_officer_sees_the_posts_jurisdiction_and_its_own_tasks(backend: Backend) {
    let Some(srv) = start("officer", backend).await else { return };
    let mut officer = srv.ws(OFFICER).await;
    let scene = scene(&srv).await;
    add_people(&srv).await;
    assert_eq!(readable_people(&srv, OFFICER).await, people(["officer-1"]), "the post's people");
    let own = BTreeSet::from([scene.west, scene.post_task]);
    assert_eq!(readable_incidents(&srv, OFFICER, &scene).await, own);
    assert_eq!(incident_history(&srv, OFFICER).await, own);
    let (status, v) = srv.get(OFFICER, "/api/v1/tasks").await;
    let tasks: Vec<i64> = v["tasks"].as_array().unwrap().iter().map(|t| t["incident_id"].as_i64().unwrap()).collect();
    assert_eq!((status, tasks), (200, vec![scene.post_task]), "{v}");
    assert_eq!(device_list(&srv, OFFICER).await, set(["w-phone"]));
    assert_eq!(track_status(&srv, OFFICER, "w-phone").await, 200);
    assert_eq!(track_status(&srv, OFFICER, "e-phone").await, 404, "another post's phone does not exist");
    assert_eq!(srv.get(OFFICER, "/api/v1/teams/team-1/plans").await.0, 403, "plans are the teams'");
    assert_eq!(srv.get(OFFICER, "/api/v1/plans").await.0, 403);
    let feed = on_the_feed(&srv, &mut officer, OFFICER).await;
    assert_eq!(
        feed,
        Seen { incidents: own, devices: set(["w-phone"]), teams: BTreeSet::new(), alerts: BTreeSet::new() }
    );
    // Photos: the feedback of the post's task, and the report that became an incident in
    // its jurisdiction.
    let photos = photos(&srv, &scene).await;
    assert_eq!(readable_photos(&srv, OFFICER, &photos).await, set(["west_report", "feedback"]));
    srv.stop().await;
}

/// A grid member: the incidents in their grid and their own reports; no units.
async fn a_grid_member_sees_their_grid_and_their_own_reports(backend: Backend) {
    let Some(srv) = start("grid", backend).await else { return };
    let mut grid = srv.ws(GRID).await;
    let scene = scene(&srv).await;
    for (caller, text, lon) in [(GRID, "西村路灯坏了", 107.12), (OTHER_GRID, "东村井盖缺失", 107.32)] {
        let report = json!({"category": "hazard", "text": text, "lon": lon, "lat": 30.75});
        let (status, v) = srv.post(caller, "/api/v1/reports", report).await;
        assert_eq!(status, 201, "{v}");
    }
    add_people(&srv).await;
    assert_eq!(readable_people(&srv, GRID).await, people(["grid-1"]), "themself only");
    assert_eq!(readable_people(&srv, OTHER_GRID).await, people([]), "a token without a person: no one");
    let own = BTreeSet::from([scene.west]);
    assert_eq!(readable_incidents(&srv, GRID, &scene).await, own);
    assert_eq!(incident_history(&srv, GRID).await, own);
    let (status, v) = srv.get(GRID, "/api/v1/reports/mine").await;
    let texts: Vec<&str> = v["reports"].as_array().unwrap().iter().map(|r| r["text"].as_str().unwrap()).collect();
    assert_eq!((status, texts), (200, vec!["西村路灯坏了"]), "only their own report: {v}");
    assert_eq!(srv.get(GRID, "/api/v1/devices").await.0, 403, "no units' positions");
    assert_eq!(track_status(&srv, GRID, "t1-phone").await, 403);
    let feed = on_the_feed(&srv, &mut grid, GRID).await;
    assert_eq!(
        feed,
        Seen { incidents: own, devices: BTreeSet::new(), teams: BTreeSet::new(), alerts: BTreeSet::new() }
    );
    let (status, v) = srv.get(OTHER_GRID, &format!("/api/v1/incidents/{}", scene.west)).await;
    assert_eq!(status, 404, "another grid's incident does not exist: {v}");
    // Photos: each grid member their own reports', and those of the incidents in their
    // grid they read (the west post's task lies in the east grid: its feedback).
    let photos = photos(&srv, &scene).await;
    assert_eq!(readable_photos(&srv, GRID, &photos).await, set(["west_report", "dispute"]));
    assert_eq!(readable_photos(&srv, OTHER_GRID, &photos).await, set(["east_report", "feedback"]));
    srv.stop().await;
}

/// The judicial office: the priority-1 incidents, read only; disputes and mediation; the
/// tagged persons entitled to it and their phones; no units.
async fn the_judicial_office_reads_priority_one_incidents_and_mediation(backend: Backend) {
    let Some(srv) = start("partner", backend).await else { return };
    // Two tagged persons with monitoring phones: one the judicial office is entitled to,
    // one only the operators are.
    for (person, roles) in [("tag-a", json!(["partner", "operator"])), ("tag-b", json!(["operator"]))] {
        let phone = format!("{person}-phone");
        srv.admin("/api/v1/devices", json!({"device_id": phone, "name": phone, "kind": "other"})).await;
        srv.admin("/api/v1/tagged", json!({"person_id": person, "name": person, "roles": roles, "device_id": phone}))
            .await;
    }
    let mut partner = srv.ws(PARTNER).await;
    let fixes = json!({"positions": [{"device_id": "tag-a-phone", "lon": 107.15, "lat": 30.75},
                                     {"device_id": "tag-b-phone", "lon": 107.16, "lat": 30.75}]});
    srv.admin("/api/v1/positions", fixes).await;
    let scene = scene(&srv).await;
    // A grid member's dispute goes to the mediation centre; a hazard does not concern it.
    let mut filed = Vec::new();
    for (category, text) in [("dispute", "邻里宅基地纠纷"), ("hazard", "路灯坏了")] {
        let report = json!({"category": category, "text": text, "lon": 107.12, "lat": 30.75});
        let (status, v) = srv.post(GRID, "/api/v1/reports", report).await;
        assert_eq!(status, 201, "{v}");
        filed.push(v["report_id"].as_i64().unwrap());
    }
    let (status, v) = srv.get(PARTNER, "/api/v1/history/alerts").await;
    let labels: Vec<String> = v["alerts"].as_array().unwrap().iter().map(alert_label).collect();
    assert_eq!((status, labels), (200, vec!["grid_report:dispute".to_owned()]), "{v}");
    let (status, v) = srv.get(PARTNER, "/api/v1/mediation").await;
    let cases: Vec<i64> = v["cases"].as_array().unwrap().iter().map(|c| c["report_id"].as_i64().unwrap()).collect();
    assert_eq!((status, cases), (200, vec![filed[0]]), "the dispute's case, not the hazard: {v}");
    add_people(&srv).await;
    assert_eq!(readable_people(&srv, PARTNER).await, people(["mediator-1", "mediator-2"]), "the judicial office's");
    let major = BTreeSet::from([scene.major]);
    assert_eq!(readable_incidents(&srv, PARTNER, &scene).await, major);
    assert_eq!(incident_history(&srv, PARTNER).await, major);
    let (_, v) = srv.get(PARTNER, &format!("/api/v1/incidents/{}", scene.major)).await;
    assert_eq!(v["recommended"], Value::Null, "read only: {v}");
    assert!(v["timeline"].as_array().is_some_and(|t| !t.is_empty()), "{v}");
    let (status, _) =
        srv.post(PARTNER, &format!("/api/v1/incidents/{}/actions", scene.major), json!({"action": "close"})).await;
    assert_eq!(status, 403, "read only");
    let (status, v) = srv.get(PARTNER, "/api/v1/tagged").await;
    let tagged: Vec<&str> = v["tagged"].as_array().unwrap().iter().map(|p| p["person_id"].as_str().unwrap()).collect();
    assert_eq!((status, tagged), (200, vec!["tag-a"]), "only the tagged persons entitled to it: {v}");
    assert_eq!(device_list(&srv, PARTNER).await, set(["tag-a-phone"]), "no unit's phone, the entitled person's");
    assert_eq!(track_status(&srv, PARTNER, "tag-a-phone").await, 200);
    for phone in ["tag-b-phone", "t1-phone"] {
        assert_eq!(track_status(&srv, PARTNER, phone).await, 404, "{phone}");
    }
    let feed = on_the_feed(&srv, &mut partner, PARTNER).await;
    let alerts = set(["grid_report:dispute"]);
    assert_eq!(feed, Seen { incidents: major, devices: set(["tag-a-phone"]), teams: BTreeSet::new(), alerts });
    // Photos: the dispute's (its alert names the judicial office), no other report's, no
    // task's.
    let photos = photos(&srv, &scene).await;
    assert_eq!(readable_photos(&srv, PARTNER, &photos).await, set(["dispute"]));
    srv.stop().await;
}

liandong_test_support::on_both_stores!(operators_and_administrators_see_the_whole_county);
liandong_test_support::on_both_stores!(a_patrol_leader_sees_the_team_its_plans_and_the_area_around_its_post);
liandong_test_support::on_both_stores!(a_post_officer_sees_the_posts_jurisdiction_and_its_own_tasks);
liandong_test_support::on_both_stores!(a_grid_member_sees_their_grid_and_their_own_reports);
liandong_test_support::on_both_stores!(the_judicial_office_reads_priority_one_incidents_and_mediation);
