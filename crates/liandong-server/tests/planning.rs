//! Patrol planning on the Dazhu demo map (`maps/dazhu`), through `Router::oneshot`: a
//! planning run at the default walking pace plans every one of the 17 teams, and a team
//! whose checkpoints do not all fit its shift gets a plan that keeps the others and
//! names the ones left out, with the reason, in the plan its leader receives.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use liandong_server::auth::Role;
use liandong_server::config::Config;
use liandong_server::App;
use liandong_test_support::{fresh_dir, root, token};
use serde_json::{json, Value};
use tower::ServiceExt;

const OPERATOR: &str = "planning-operator-token";

fn demo_map() -> PathBuf {
    root().join("maps/dazhu")
}

/// The demo map's server with the default planning settings (4-hour shift, on foot at
/// 5 km/h) but no scheduled run: the tests run it.
fn config(name: &str, maps: PathBuf) -> Config {
    let mut c = liandong_test_support::config(fresh_dir(&format!("planning-{name}")));
    c.maps = maps;
    c.tokens = vec![token(OPERATOR, Role::Operator)];
    c.planning.interval_s = 0;
    c
}

async fn send(app: &App, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {OPERATOR}"))
        .header("content-type", "application/json");
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let res = app.router.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn layer(dir: &Path, name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.geojson"))).unwrap()).unwrap()
}

/// The map's checkpoint ids of `team`.
fn checkpoints_of(dir: &Path, team: &str) -> Vec<String> {
    let cps = layer(dir, "checkpoints");
    let mut ids: Vec<String> = cps["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["properties"]["team_id"] == team)
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// The checkpoint ids a plan body visits, sorted.
fn visited(plan: &Value) -> Vec<String> {
    let mut ids: Vec<String> = plan["waypoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["kind"] == "checkpoint")
        .map(|w| w["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planning_run_on_the_demo_map_plans_all_seventeen_teams_with_every_checkpoint() {
    let app = App::build(config("all-teams", demo_map())).await.unwrap();
    // A theft at every team's post, so that each has a hotspot within reach and a plan
    // to push (a team with nothing to add keeps its current route).
    let posts = layer(&demo_map(), "posts");
    let routes = layer(&demo_map(), "routes");
    let routes = routes["features"].as_array().unwrap();
    assert_eq!(routes.len(), 17);
    for r in routes {
        let post =
            posts["features"].as_array().unwrap().iter().find(|p| p["id"] == r["properties"]["post_id"]).unwrap();
        let at = &post["geometry"]["coordinates"];
        let (s, v) = send(
            &app,
            "POST",
            "/api/v1/incidents",
            Some(json!({"title": "盗窃", "kind": "theft", "priority": 2, "lon": at[0], "lat": at[1]})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }

    let (s, run) = send(&app, "POST", "/api/v1/planning/run", None).await;
    assert_eq!(s, StatusCode::OK, "{run}");
    let teams = run["teams"].as_array().unwrap();
    assert_eq!(teams.len(), 17, "{run}");
    for t in teams {
        // None refused ("the checkpoints alone need 15,715 s" was team-04's answer).
        assert_eq!((&t["pushed"], &t["reason"]), (&json!(true), &Value::Null), "{t}");
        assert_eq!(t["left_out"], json!([]), "{t}");
        assert!(t["total_s"].as_f64().unwrap() <= 4.0 * 3600.0, "{t}");
    }
    assert_eq!(run["pushed"], 17, "{run}");

    let (s, heads) = send(&app, "GET", "/api/v1/plans", None).await;
    assert_eq!(s, StatusCode::OK, "{heads}");
    let plans = heads["plans"].as_array().unwrap();
    assert_eq!(plans.len(), 17, "every team has a plan");
    for p in plans {
        let team = p["team_id"].as_str().unwrap();
        let body = &p["plan"];
        assert_eq!(body["left_out"], json!([]), "{team}");
        assert_eq!(visited(body), checkpoints_of(&demo_map(), team), "{team} visits every checkpoint");
        assert_eq!(body["figures"]["checkpoints"].as_u64().unwrap() as usize, checkpoints_of(&demo_map(), team).len());
    }
    app.finish().await;
}

/// A copy of the demo map in which team-01 also has checkpoint `cp-far`, the least
/// important (`seq` 9): the demo checkpoint farthest from team-01's post, hours away on
/// foot.
fn map_with_a_far_checkpoint() -> PathBuf {
    let dir = fresh_dir("planning-map-far");
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(demo_map()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "geojson") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    let routes = layer(&dir, "routes");
    let route =
        routes["features"].as_array().unwrap().iter().find(|r| r["properties"]["team_id"] == "team-01").unwrap();
    let post = &route["geometry"]["coordinates"][0];
    let (px, py) = (post[0].as_f64().unwrap(), post[1].as_f64().unwrap());
    let mut cps = layer(&dir, "checkpoints");
    let far = cps["features"]
        .as_array()
        .unwrap()
        .iter()
        .max_by(|a, b| {
            let d = |f: &Value| {
                let c = &f["geometry"]["coordinates"];
                (c[0].as_f64().unwrap() - px).hypot(c[1].as_f64().unwrap() - py)
            };
            d(a).total_cmp(&d(b))
        })
        .unwrap()
        .clone();
    let mut added = far;
    added["id"] = json!("cp-far");
    added["properties"] =
        json!({"id": "cp-far", "team_id": "team-01", "seq": 9, "name": "远端巡查点", "min_dwell_s": 120});
    cps["features"].as_array_mut().unwrap().push(added);
    std::fs::write(dir.join("checkpoints.geojson"), cps.to_string()).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_whose_checkpoints_do_not_fit_gets_a_plan_naming_the_ones_left_out() {
    let maps = map_with_a_far_checkpoint();
    let app = App::build(config("left-out", maps.clone())).await.unwrap();
    let (s, run) = send(&app, "POST", "/api/v1/planning/run", None).await;
    assert_eq!(s, StatusCode::OK, "{run}");
    let team = run["teams"].as_array().unwrap().iter().find(|t| t["team_id"] == "team-01").unwrap();
    // No hotspot anywhere: the other teams keep their routes, but team-01's route, which
    // would take it to the far checkpoint, no longer fits: it gets the plan.
    assert_eq!((&team["pushed"], &team["reason"]), (&json!(true), &Value::Null), "{team}");
    assert_eq!(team["left_out"][0]["id"], "cp-far", "{team}");
    assert_eq!(run["pushed"], 1, "{run}");

    let (s, plans) = send(&app, "GET", "/api/v1/teams/team-01/plans", None).await;
    assert_eq!(s, StatusCode::OK, "{plans}");
    let p = &plans["plans"][0];
    assert_eq!((p["kind"].as_str(), p["status"].as_str()), (Some("plan"), Some("pending")), "{p}");
    assert!(p["reason"].as_str().unwrap().ends_with("no hotspot within reach; checkpoints left out: cp-far"), "{p}");
    let body = &p["plan"];
    let left = body["left_out"].as_array().unwrap();
    assert_eq!(left.len(), 1, "{body}");
    let l = &left[0];
    assert_eq!(
        (l["id"].as_str(), l["name"].as_str(), l["cause"].as_str()),
        (Some("cp-far"), Some("远端巡查点"), Some("budget"))
    );
    let needed_s = l["needed_s"].as_f64().unwrap();
    assert!(needed_s > 14_400.0, "{l}");
    assert_eq!(l["budget_s"], 14_400.0);
    assert_eq!(
        l["reason"],
        format!("the shift's budget of 14400 s does not reach it: the tour would need {needed_s:.0} s")
    );
    // The more important checkpoints are all kept, within the shift.
    let mut kept = checkpoints_of(&maps, "team-01");
    kept.retain(|id| id != "cp-far");
    assert_eq!(visited(body), kept, "{body}");
    assert!(body["figures"]["total_s"].as_f64().unwrap() <= 14_400.0, "{body}");
    app.finish().await;
}
