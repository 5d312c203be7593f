//! The feed messages the rules publish, as their clients read them: each test runs a
//! rule on a fixed input and compares the parsed message with the JSON clients were
//! sent when the messages were still built with `json!` (key order aside, which JSON
//! readers ignore). A field renamed, moved or turned from `null` into absent fails here.

use std::collections::HashMap;
use std::sync::Arc;

use liandong_core::incident::Action;
use liandong_core::storm::StormGuard;
use liandong_core::{CountyMap, Enricher, Position};
use liandong_store::{AlertRow, GridReport};
use serde_json::{json, Value};

use super::draft::{Draft, Publish};
use super::memory::RuleMemory;
use super::{AlertAckCommand, CameraInfo, CameraItem, IncidentCommand, Item, Known, RouteCommand};
use crate::time_fmt::rfc3339_ms;

const T0: i64 = 1_767_225_600_000;

fn draft(seq: i64) -> Draft {
    Draft::new(Arc::new(Enricher::new(&CountyMap::default())), seq, HashMap::new(), HashMap::new())
}

fn at() -> Position {
    Position::new(107.2, 30.7).unwrap()
}

/// The place an empty map gives every alert, as clients read it.
fn no_place() -> Value {
    json!({"in_county": false, "township": null, "grid": null, "post": null, "nearest_posts": [],
           "fences_inside": [], "fence_events": []})
}

/// Every message the draft would publish, parsed, in order (positions left out).
fn published(d: Draft) -> Vec<Value> {
    let (_, _, _, publish) = d.into_parts();
    publish
        .into_iter()
        .filter_map(|p| match p {
            Publish::Event(e) => Some(serde_json::from_str(&e.message).unwrap()),
            Publish::Position(_) => None,
        })
        .collect()
}

/// What the sequencer knows on an empty map: one watched plate, and unit `dev-1`'s
/// last trusted fix 250 m east of [`at`], heard at `T0`.
fn known() -> Known {
    let map = CountyMap::default();
    let roads = || Arc::new(liandong_core::road::RoadGraph::from_roads(&[], &Default::default()));
    let watch = liandong_core::alerts::WatchEntry {
        id: "w-1".into(),
        kind: liandong_core::alerts::WatchKind::Plate,
        value: "川S12345".into(),
        reason: "stolen".into(),
        priority: 2,
        valid_from_ms: None,
        valid_to_ms: None,
        roles: vec!["operator".into()],
    };
    let unit_at = Position::new(107.202_6, 30.7).unwrap();
    let track = liandong_core::DeviceTrack {
        last_trusted: Some(liandong_core::jump::Fix { position: unit_at, time_ms: T0 }),
        ..Default::default()
    };
    Known {
        enricher: Arc::new(Enricher::new(&map)),
        filter: Default::default(),
        watchlist: Arc::new(std::sync::RwLock::new(liandong_core::alerts::Watchlist::new([watch]))),
        zones: Default::default(),
        travel: Arc::new(crate::travel::TeamTravel::new(&map, roads(), roads())),
        stale_unit_ms: 600_000,
        live: Default::default(),
        tracks: FromIterator::from_iter([("dev-1".to_owned(), (track, 1))]),
        last_heard: FromIterator::from_iter([("dev-1".to_owned(), (T0, unit_at))]),
        incidents: HashMap::new(),
        units: Default::default(),
        route_heads: HashMap::new(),
        corridors: HashMap::new(),
        newest_fix: Default::default(),
        roster: Default::default(),
        notices: Default::default(),
    }
}

fn memory() -> RuleMemory {
    RuleMemory {
        dedup: liandong_core::alerts::Dedup::new(60),
        storms: StormGuard::new(300_000, 2),
        sightings: liandong_core::track::TrackBook::new(4, 6 * 3_600_000, 10),
        zone_breaks: Default::default(),
        stale: Default::default(),
        adherence: HashMap::new(),
        cameras: HashMap::new(),
        sos: HashMap::new(),
        parking_alerted: Default::default(),
        offline: HashMap::new(),
    }
}

/// A fix of `w-7` (team-1's "巡防队员 7") at [`at`] taken at `time_ms`, as our JSON
/// item with `extra` fields (`alarm`, `mock`).
fn fix(time_ms: i64, extra: Value) -> Item {
    let mut item = json!({"device_id": "w-7", "lon": 107.2, "lat": 30.7, "time": time_ms});
    item.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let report = liandong_ingest::json::decode_batch(json!([item]).to_string().as_bytes()).unwrap().remove(0).unwrap();
    Item { report, recv_ms: time_ms, unit_id: Some(Arc::from("team-1")), device_name: Arc::from("巡防队员 7") }
}

/// A plate read by camera `cam-1` at [`at`].
fn plate_read(plate: &str, time_ms: i64) -> CameraItem {
    let body = json!({"camera_id": "cam-1", "time": time_ms, "kind": "anpr", "plate": plate}).to_string();
    let event = liandong_ingest::alert_json::decode(body.as_bytes()).unwrap();
    let camera = CameraInfo { id: "cam-1".into(), name: "North gate".into(), kind: "anpr".into(), position: at() };
    CameraItem {
        event,
        camera: Arc::new(camera),
        recv_ms: time_ms,
        images: vec!["/api/v1/images/9.jpg".into()],
        seen_ms: time_ms,
    }
}

fn camera_json() -> Value {
    json!({"id": "cam-1", "name": "North gate", "kind": "anpr", "lon": 107.2, "lat": 30.7})
}

fn parsed(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// A grid member's report at [`at`], made and received at `T0`, without photos.
fn grid_report(category: &str, text: &str) -> GridReport {
    GridReport {
        report_id: 0,
        reporter: "gm-1".into(),
        category: category.into(),
        text: text.into(),
        lon: 107.2,
        lat: 30.7,
        time_ms: T0,
        recv_ms: T0,
        enrichment: Value::Null,
        photos: 0,
        status: "new".into(),
        photo_urls: Vec::new(),
    }
}

#[test]
fn a_grid_reports_alert_carries_the_alert_fields_and_the_report() {
    let mut d = draft(100);
    let report = GridReport {
        time_ms: T0,
        recv_ms: T0 + 5_000,
        photos: 1,
        photo_urls: vec!["/api/v1/images/1.jpg".into()],
        ..grid_report("dispute", "noise at night")
    };
    assert_eq!(super::reports::report(&mut d, &report, at()), 100);
    let expected = json!({"type": "alert", "seq": 100, "data": {
        "seq": 100, "rule": "grid_report", "priority": 3, "time": rfc3339_ms(T0 + 5_000),
        "lon": 107.2, "lat": 30.7, "place": no_place(),
        "report": {"report_id": 100, "category": "dispute", "text": "noise at night", "reporter": "gm-1",
                   "reported": rfc3339_ms(T0), "photos": ["/api/v1/images/1.jpg"], "mediation_case_id": 100},
    }});
    assert_eq!(parsed(&d.rows.alerts[0].payload), expected, "as stored");
    assert_eq!(published(d), [expected], "as published");
}

#[test]
fn a_grid_report_other_than_a_dispute_has_no_mediation_case() {
    let mut d = draft(7);
    let report = grid_report("fire", "smoke");
    super::reports::report(&mut d, &report, at());
    let v = parsed(&d.rows.alerts[0].payload);
    assert_eq!(v["data"]["report"]["mediation_case_id"], Value::Null);
    assert!(v["data"]["report"].as_object().unwrap().contains_key("mediation_case_id"), "null, not absent");
    assert_eq!(v["data"]["priority"], 1);
}

#[test]
fn an_alert_acknowledgement_names_the_alert_its_rule_priority_actor_and_note() {
    let mut d = draft(50);
    let alert = AlertRow {
        seq: 42,
        rule: "watchlist_plate".into(),
        priority: 2,
        camera_id: Some("cam-1".into()),
        event_seq: Some(41),
        time_ms: T0,
        lon: 107.2,
        lat: 30.7,
        roles: vec!["operator".into()],
        payload: "{}".into(),
        township: None,
    };
    let cmd = AlertAckCommand { alert, actor: "op-li".into(), note: "seen".into(), now_ms: T0 + 1_000 };
    super::acks::alert_ack(&mut d, &cmd);
    let expected = json!({"type": "alert_ack", "seq": 50, "data": {
        "alert_seq": 42, "rule": "watchlist_plate", "priority": 2, "by": "op-li", "at": rfc3339_ms(T0 + 1_000),
        "note": "seen",
    }});
    assert_eq!(parsed(&d.rows.alert_acks[0].payload), expected, "as stored");
    assert_eq!(published(d), [expected], "as published");
}

#[test]
fn an_incident_message_carries_the_whole_incident_and_the_step() {
    let mut d = draft(10);
    let create = IncidentCommand::Create {
        title: "fight".into(),
        kind: "dispute".into(),
        priority: 2,
        position: at(),
        alert_seq: Some(9),
        actor: "op-li".into(),
        now_ms: T0,
    };
    super::incidents::incident_command(&mut d, &create).unwrap();
    let dispatch = IncidentCommand::Act {
        incident_id: 10,
        action: Action::Dispatch,
        actor: "op-li".into(),
        actor_device: None,
        assign: Some(("dev-1".into(), Some("team-01".into()))),
        note: "go".into(),
        photo_urls: Vec::new(),
        now_ms: T0 + 2_000,
    };
    super::incidents::incident_command(&mut d, &dispatch).unwrap();
    let incident = |state: &str, since_ms: i64, device: Value, unit: Value| {
        json!({"incident_id": 10, "title": "fight", "priority": 2, "state": state, "lon": 107.2, "lat": 30.7,
               "alert_seq": 9, "assigned_device": device, "assigned_unit": unit, "created_ms": T0,
               "state_since_ms": since_ms, "escalation": "none", "kind": "dispute", "township": null})
    };
    let expected = [
        json!({"type": "incident", "seq": 10, "data": {
            "incident": incident("new", T0, Value::Null, Value::Null),
            "event": {"seq": 10, "action": "create", "from": null, "to": "new", "actor": "op-li", "note": "",
                      "time": rfc3339_ms(T0)},
        }}),
        json!({"type": "incident", "seq": 11, "data": {
            "incident": incident("dispatched", T0 + 2_000, json!("dev-1"), json!("team-01")),
            "event": {"seq": 11, "action": "dispatch", "from": "new", "to": "dispatched", "actor": "op-li",
                      "note": "go", "time": rfc3339_ms(T0 + 2_000)},
        }}),
    ];
    let stored: Vec<Value> = d.rows.incident_events.iter().map(|e| parsed(&e.payload)).collect();
    assert_eq!(stored, expected, "as stored");
    assert_eq!(published(d), expected, "as published");
}

/// A phone's feedback names its photos in the event (stored and published alike); a
/// step the phone sends again, the incident being at it, records and publishes nothing.
#[test]
fn a_feedback_event_names_its_photos_and_a_phones_repeated_step_adds_nothing() {
    let mut d = draft(10);
    let create = IncidentCommand::Create {
        title: "fight".into(),
        kind: "dispute".into(),
        priority: 2,
        position: at(),
        alert_seq: None,
        actor: "op-li".into(),
        now_ms: T0,
    };
    super::incidents::incident_command(&mut d, &create).unwrap();
    let act = |action: Action, actor_device: Option<&str>, photo_urls: Vec<String>| IncidentCommand::Act {
        incident_id: 10,
        action,
        actor: actor_device.map_or("op-li".into(), |d| format!("device:{d}")),
        actor_device: actor_device.map(str::to_owned),
        assign: (action == Action::Dispatch).then(|| ("dev-1".into(), Some("team-01".into()))),
        note: String::new(),
        photo_urls,
        now_ms: T0 + 1_000,
    };
    for a in [Action::Dispatch, Action::Sign, Action::Depart, Action::Arrive] {
        let device = (a != Action::Dispatch).then_some("dev-1");
        super::incidents::incident_command(&mut d, &act(a, device, Vec::new())).unwrap();
    }
    let photo = "/api/v1/images/1-abc-0.jpg".to_owned();
    let done = super::incidents::incident_command(&mut d, &act(Action::Feedback, Some("dev-1"), vec![photo.clone()]));
    assert!(!done.unwrap().repeat);
    let again = super::incidents::incident_command(&mut d, &act(Action::Feedback, Some("dev-1"), vec![photo.clone()]));
    assert!(again.unwrap().repeat, "the phone's second feedback is a repeat");
    let refused = super::incidents::incident_command(&mut d, &act(Action::Feedback, None, Vec::new()));
    assert!(refused.is_err(), "an operator's second feedback is a step out of order");
    let events = &d.rows.incident_events;
    assert_eq!(events.len(), 6, "create, dispatch, sign, depart, arrive, feedback: once each");
    let feedback = events.last().unwrap();
    assert_eq!(feedback.photo_urls, std::slice::from_ref(&photo), "as stored in its column");
    assert_eq!(parsed(&feedback.payload)["data"]["event"]["photo_urls"], json!([photo]), "as stored in the message");
    let published = published(d);
    assert_eq!(published.len(), 6);
    assert_eq!(published[5]["data"]["event"]["photo_urls"], json!([photo]), "as published");
    assert!(published[4]["data"]["event"].get("photo_urls").is_none(), "an arrival names no photos");
}

#[test]
fn a_route_message_carries_the_plan_row_with_its_body_and_the_event() {
    let mut d = draft(20);
    let plan = json!({"geometry": {"type": "LineString", "coordinates": [[107.2, 30.7], [107.21, 30.7]]},
                      "waypoints": [{"id": "cp-1", "name": "post", "dwell_s": 60}]});
    let push = RouteCommand::Push {
        team_id: "team-01".into(),
        kind: "plan".into(),
        reason: "hotspots".into(),
        plan: plan.clone(),
        anchor: at(),
        actor: "op-li".into(),
        now_ms: T0,
        unless_same_stops: false,
    };
    super::plans::route_command(&mut d, &push).unwrap();
    let expected = json!({"type": "route", "seq": 20, "data": {
        "plan": {"plan_seq": 20, "team_id": "team-01", "version": 1, "kind": "plan", "reason": "hotspots",
                 "created_ms": T0, "created_by": "op-li", "plan": plan, "lon": 107.2, "lat": 30.7,
                 "status": "pending", "acked_ms": null, "acked_by": null, "escalation": "none"},
        "event": {"seq": 20, "action": "push", "actor": "op-li", "note": "hotspots", "time": rfc3339_ms(T0)},
    }});
    assert_eq!(parsed(&d.rows.route_events[0].payload), expected, "as stored");
    assert_eq!(published(d), [expected], "as published");
}

#[test]
fn a_storms_end_tells_the_camera_and_how_many_alerts_it_held_back() {
    let mut memory = memory();
    let camera = CameraInfo { id: "cam-1".into(), name: "North gate".into(), kind: "anpr".into(), position: at() };
    memory.cameras.insert("cam-1".into(), Arc::new(camera));
    for t in [0, 1_000, 2_000, 3_000] {
        memory.storms.check("cam-1", T0 + t);
    }
    let mut d = draft(30);
    let now = T0 + 3_000 + 400_000;
    super::cameras::storms_ended(&mut d, &mut memory, now);
    let expected = json!({"type": "alert", "seq": 30, "data": {
        "seq": 30, "rule": "camera_storm_end", "priority": 4, "time": rfc3339_ms(now), "lon": 107.2, "lat": 30.7,
        "place": no_place(),
        "camera": camera_json(),
        "storm": {"began": rfc3339_ms(T0 + 2_000), "last": rfc3339_ms(T0 + 3_000), "suppressed": 2, "ended": true},
    }});
    assert_eq!(published(d), [expected]);
}

#[test]
fn a_watched_plates_alert_carries_the_camera_the_read_the_watch_entry_the_nearest_units_and_the_track() {
    let (known, mut memory, mut d) = (known(), memory(), draft(60));
    let item = plate_read("川S12345", T0 + 60_000);
    let ack = super::cameras::camera(&mut d, &mut memory, &known, &item);
    assert_eq!((ack.seq, ack.alert_seq), (60, Some(61)));
    let event = serde_json::to_value(&item.event).unwrap();
    assert_eq!(parsed(&d.rows.camera_events[0].payload), json!({"event": event, "images": ["/api/v1/images/9.jpg"]}));
    let expected = json!({"type": "alert", "seq": 61, "data": {
        "seq": 61, "rule": "watchlist_plate", "priority": 2, "time": rfc3339_ms(T0 + 60_000),
        "lon": 107.2, "lat": 30.7, "place": no_place(),
        "camera": camera_json(),
        "read": {"kind": "plate", "value": "川S12345", "event_seq": 60, "event": event},
        "images": ["/api/v1/images/9.jpg"],
        "watch": {"id": "w-1", "reason": "stolen"},
        "nearest_units": [{"device_id": "dev-1", "distance_m": 248.6}],
        "track": {"coordinates": [[107.2, 30.7]], "times": [rfc3339_ms(T0 + 60_000)], "cameras": ["cam-1"],
                  "last": {"camera_id": "cam-1", "lon": 107.2, "lat": 30.7, "time": rfc3339_ms(T0 + 60_000)},
                  "heading_deg": null, "heading": null, "speed_kmh": null, "length_m": 0.0},
    }});
    assert_eq!(parsed(&d.rows.alerts[0].payload), expected, "as stored");
    assert_eq!(published(d), [expected], "as published");
}

/// [`known`] on a map with one no-parking fence, a fire lane at all hours around [`at`].
fn known_with_fire_lane() -> Known {
    let fence = json!({"type": "FeatureCollection", "features": [{"type": "Feature", "id": "np-fire",
        "geometry": {"type": "Polygon", "coordinates": [[[107.199, 30.699], [107.201, 30.699], [107.201, 30.701], [107.199, 30.701], [107.199, 30.699]]]},
        "properties": {"id": "np-fire", "name": "消防通道", "kind": "fire_lane", "hours": ["00:00-24:00"]}}]});
    // Only the layer: the problems of a map without a boundary do not matter here.
    let (map, _) = CountyMap::parse(&[("no_parking.geojson".to_owned(), fence.to_string())]);
    assert_eq!(map.no_parking.len(), 1);
    Known { enricher: Arc::new(Enricher::new(&map)), ..known() }
}

/// A parking camera `cam-p` at [`at`] pushing an `illegalParking` capture of `plate`.
fn parking_capture(plate: &str, time_ms: i64) -> CameraItem {
    let xml = format!(
        "<EventNotificationAlert><dateTime>{}</dateTime><eventType>illegalParking</eventType>\
         <eventState>active</eventState><ANPR><licensePlate>{plate}</licensePlate></ANPR></EventNotificationAlert>",
        rfc3339_ms(time_ms)
    );
    let event = liandong_ingest::isapi::decode(Some("application/xml"), xml.as_bytes()).unwrap();
    let camera =
        CameraInfo { id: "cam-p".into(), name: "违停抓拍01".into(), kind: "parking".into(), position: at() };
    CameraItem {
        event,
        camera: Arc::new(camera),
        recv_ms: time_ms,
        seen_ms: time_ms,
        images: vec!["/api/v1/images/7.jpg".into()],
    }
}

#[test]
fn a_no_parking_alert_carries_the_camera_the_plate_the_fence_and_its_window_once_per_window() {
    let (known, mut memory, mut d) = (known_with_fire_lane(), memory(), draft(70));
    let ack = super::cameras::camera(&mut d, &mut memory, &known, &parking_capture("川S00001", T0));
    assert_eq!((ack.seq, ack.alert_seq), (70, Some(71)));
    // 2026-01-01 in China time: the fire lane's window of that day.
    let (start, end) = (T0 - 8 * 3_600_000, T0 + 16 * 3_600_000);
    let expected = json!({"type": "alert", "seq": 71, "data": {
        "seq": 71, "rule": "no_parking", "priority": 3, "time": rfc3339_ms(T0),
        "lon": 107.2, "lat": 30.7, "place": no_place(),
        "camera": {"id": "cam-p", "name": "违停抓拍01", "kind": "parking", "lon": 107.2, "lat": 30.7},
        "parking": {"plate": "川S00001", "event_seq": 70, "images": ["/api/v1/images/7.jpg"],
                    "fence": "np-fire", "fence_name": "消防通道", "fence_kind": "fire_lane",
                    "hours": ["00:00-24:00"], "window_start": rfc3339_ms(start), "window_end": rfc3339_ms(end)},
    }});
    assert_eq!(parsed(&d.rows.alerts[0].payload), expected, "as stored");
    assert_eq!(d.rows.alerts[0].roles, ["operator"]);
    let record = &d.rows.parking_records[0];
    assert_eq!(
        (record.seq, record.fence_id.as_deref(), record.window_start_ms, record.alert_seq),
        (70, Some("np-fire"), Some(start), Some(71))
    );
    // The same car an hour later: a record, no alert; the next day's window: an alert.
    let again = super::cameras::camera(&mut d, &mut memory, &known, &parking_capture("川S00001", T0 + 3_600_000));
    assert_eq!(again.alert_seq, None);
    let next_day = super::cameras::camera(&mut d, &mut memory, &known, &parking_capture("川S00001", end + 60_000));
    assert!(next_day.alert_seq.is_some());
    assert_eq!(d.rows.parking_records.len(), 3);
    assert_eq!(published(d)[0], expected, "as published");
}

#[test]
fn a_camera_storm_raises_one_storm_alert_that_says_what_is_held_back() {
    let (known, mut memory, mut d) = (known(), memory(), draft(70));
    for (i, plate) in ["川S12345", "川S12345", "川S12345"].iter().enumerate() {
        // Each read is a new sighting: the de-duplication window is passed each time.
        super::cameras::camera(&mut d, &mut memory, &known, &plate_read(plate, T0 + i as i64 * 61_000));
    }
    let storm = d.rows.alerts.iter().find(|a| a.rule == "camera_storm").expect("a storm alert");
    let v = parsed(&storm.payload);
    let seq = storm.seq;
    assert_eq!(
        v,
        json!({"type": "alert", "seq": seq, "data": {
            "seq": seq, "rule": "camera_storm", "priority": 2, "time": rfc3339_ms(T0 + 122_000),
            "lon": 107.2, "lat": 30.7, "place": no_place(), "camera": camera_json(),
            "storm": {"alerts_in_window": 3,
                      "note": "further alerts from this camera are held back (priority 1 still passes); every read is stored"},
        }})
    );
}

#[test]
fn a_stale_units_alert_says_when_it_was_last_heard_and_for_how_long_it_is_silent() {
    let (known, mut memory, mut d) = (known(), memory(), draft(80));
    let now = T0 + 25 * 60_000 + 5_000;
    super::positions::stale_units(&mut d, &mut memory, &known, now);
    let expected = json!({"type": "alert", "seq": 80, "data": {
        "seq": 80, "rule": "stale_unit", "priority": 3, "time": rfc3339_ms(now), "lon": 107.2026, "lat": 30.7,
        "place": no_place(), "device_id": "dev-1", "last_heard": rfc3339_ms(T0), "silent_min": 25,
    }});
    assert_eq!(published(d), [expected]);
}

#[test]
fn an_adherence_alert_names_the_member_the_team_the_plan_version_and_what_happened() {
    let mut known = known();
    let checkpoint = liandong_core::adherence::PlannedCheckpoint {
        position: at(),
        radius_m: 50.0,
        min_dwell_s: 0.0,
        planned_arrival_ms: T0,
    };
    let line = [at(), Position::new(107.21, 30.7).unwrap()];
    let corridor = liandong_core::adherence::Corridor::new(&line, vec![checkpoint], None, &Default::default()).unwrap();
    known.corridors.insert("team-01".into(), (5, Arc::new(corridor)));
    let (mut memory, mut d) = (memory(), draft(90));
    let now = T0 + 3_600_000;
    let member = super::positions::Member { device_id: "dev-1", team_id: "team-01", fix: None, now_ms: now };
    super::positions::adherence_check(&mut d, &mut memory, &known, member);
    let messages = published(d);
    assert!(!messages.is_empty(), "the checkpoint an hour late raises an alert");
    let data = &messages[0]["data"];
    let rule = data["rule"].as_str().unwrap();
    let adherence = match rule {
        "checkpoint_late" => json!({"checkpoint": 0, "deadline": data["adherence"]["deadline"]}),
        "checkpoint_skipped" => json!({"checkpoint": 0}),
        other => panic!("unexpected rule {other}"),
    };
    assert_eq!(
        messages[0],
        json!({"type": "alert", "seq": 90, "data": {
            "seq": 90, "rule": rule, "priority": 3, "time": rfc3339_ms(now), "lon": 107.2026, "lat": 30.7,
            "place": no_place(), "device_id": "dev-1", "team_id": "team-01", "plan_version": null,
            "adherence": adherence,
        }})
    );
}

/// The adherence events that are alerts, one row each: the rule, its priority and the
/// `adherence` object clients are sent.
#[test]
fn each_adherence_event_is_an_alert_with_its_own_detail() {
    use liandong_core::adherence::AdherenceEvent as E;
    let rows = [
        (
            E::OffRoute { since_ms: T0, at_ms: T0 + 1, distance_m: 123.4 },
            Some(("route_off", 3, json!({"since": rfc3339_ms(T0), "distance_m": 123.0}))),
        ),
        (
            E::BackOnRoute { since_ms: T0, at_ms: T0 + 1, distance_m: 7.6 },
            Some(("route_back", 4, json!({"distance_m": 8.0}))),
        ),
        (
            E::CheckpointLate { checkpoint: 2, deadline_ms: T0 },
            Some(("checkpoint_late", 3, json!({"checkpoint": 2, "deadline": rfc3339_ms(T0)}))),
        ),
        (E::CheckpointSkipped { checkpoint: 1, at_ms: T0 }, Some(("checkpoint_skipped", 3, json!({"checkpoint": 1})))),
        (E::CheckpointVisited { checkpoint: 1, arrived_ms: T0, at_ms: T0, was_late: false }, None),
        (E::CheckpointDeparted { checkpoint: 1, arrived_ms: T0, departed_ms: T0 }, None),
    ];
    for (event, expected) in rows {
        let got = super::positions::adherence_alert(event)
            .map(|(rule, priority, detail)| (rule, priority, serde_json::to_value(detail).unwrap()));
        assert_eq!(got, expected, "{event:?}");
    }
}

#[test]
fn an_sos_alert_names_the_device_its_name_unit_and_report_and_a_burst_raises_one() {
    let (known, mut memory) = (known(), memory());
    let mut d = draft(100);
    let sos = || json!({"alarm": "sos"});
    // A press, a press 30 s later, and the first press sent again (its answer lost).
    let items = [fix(T0, sos()), fix(T0 + 30_000, json!({"alarm": "sos", "mock": true})), fix(T0, sos())];
    let acks = super::positions::positions(&mut d, &mut memory, &known, &items);
    let numbers: Vec<i64> = acks.iter().map(|a| a.seq).collect();
    assert_eq!(numbers, [100, 102, 100], "the alert took 101; the repeat has its original number");
    assert_eq!(d.rows.positions.len(), 2, "the repeat is not stored again");
    let expected = json!({"type": "alert", "seq": 101, "data": {
        "seq": 101, "rule": "sos", "priority": 1, "time": rfc3339_ms(T0), "lon": 107.2, "lat": 30.7,
        "place": no_place(), "device_id": "w-7", "device_name": "巡防队员 7", "unit_id": "team-1",
        "report_seq": 100, "flags": ["outside_county"],
    }});
    assert_eq!(
        d.rows.alerts.iter().map(|a| (a.rule.as_str(), a.roles.clone())).collect::<Vec<_>>(),
        [("sos", vec!["operator".to_owned()])]
    );
    assert_eq!(parsed(&d.rows.alerts[0].payload), expected, "as stored");
    assert_eq!(published(d), [expected], "as published: one alert for the burst");

    // Pressed again a minute after the alert: a new call for help, its flags on it.
    let mut d = draft(200);
    super::positions::positions(
        &mut d,
        &mut memory,
        &known,
        &[fix(T0 + 60_000, json!({"alarm": "sos", "mock": true}))],
    );
    let alerts = published(d);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        (alerts[0]["data"]["report_seq"].as_i64(), alerts[0]["data"]["flags"].clone()),
        (Some(200), json!(["outside_county", "mock"]))
    );
}

#[test]
fn a_fix_at_a_kept_time_is_answered_with_the_kept_number_and_flags_and_stored_once() {
    let (known, mut memory) = (known(), memory());
    let mut d = draft(10);
    // The store holds the fix at T0 (looked up before the rules ran) as number 3, marked.
    d.fixes.keep("w-7", T0, super::Ack { seq: 3, flags: 1 });
    let items = [
        fix(T0 + 1_000, json!({})),
        fix(T0, json!({})),
        fix(T0 + 1_000, json!({"mock": true})),
        fix(T0 + 2_000, json!({})),
    ];
    let acks = super::positions::positions(&mut d, &mut memory, &known, &items);
    let got: Vec<(i64, u32)> = acks.iter().map(|a| (a.seq, a.flags)).collect();
    let outside = liandong_core::jump::flags::OUTSIDE_COUNTY;
    assert_eq!(
        got,
        [(10, outside), (3, 1), (10, outside), (11, outside)],
        "the same time in one batch too, whatever else differs"
    );
    assert_eq!(d.rows.positions.iter().map(|p| p.seq).collect::<Vec<_>>(), [10, 11]);
}

#[test]
fn a_registered_case_is_numbered_as_its_mediation_case_alert_for_the_centre() {
    let mut d = draft(40);
    let mut case = liandong_store::MediationCase::of_report(&grid_report("dispute", "排水沟纠纷"));
    case.source = "walk_in".into();
    case.report_id = None;
    case.dispute_type = "neighbour".into();
    case.filed_by = "mediator-1".into();
    let cmd = super::cases::CaseCommand::Register { case: Box::new(case), position: at() };
    assert_eq!(super::cases::case_command(&mut d, &cmd), 40);
    let expected = json!({"type": "alert", "seq": 40, "data": {
        "seq": 40, "rule": "mediation_case", "priority": 3, "time": rfc3339_ms(T0),
        "lon": 107.2, "lat": 30.7, "place": no_place(),
        "case": {"case_id": 40, "source": "walk_in", "incident_id": null, "dispute_type": "neighbour",
                 "summary": "排水沟纠纷", "filed_by": "mediator-1"},
    }});
    assert_eq!(parsed(&d.rows.alerts[0].payload), expected);
    assert_eq!(d.rows.alerts[0].roles, ["partner", "admin"]);
    assert_eq!(d.rows.cases[0].case_id, 40, "the case row has the alert's number");
}

#[test]
fn a_late_step_and_a_turned_dispute_carry_their_case_fields_and_rows() {
    let mut d = draft(50);
    let case = liandong_store::MediationCase {
        case_id: 12,
        ..liandong_store::MediationCase::of_report(&grid_report("dispute", "x"))
    };
    let late = super::cases::CaseCommand::Overdue {
        case: Box::new(case),
        step: "accept".into(),
        due_ms: T0,
        position: at(),
        now_ms: T0 + 1,
    };
    assert_eq!(super::cases::case_command(&mut d, &late), 50);
    let v = parsed(&d.rows.alerts[0].payload);
    assert_eq!(
        v["data"]["overdue"],
        json!({"case_id": 12, "step": "accept", "due": rfc3339_ms(T0), "status": "pending", "dispute_type": "other"})
    );
    assert_eq!(d.rows.alerts[0].roles, ["partner", "operator", "admin"]);
    assert_eq!((d.rows.case_overdue[0].case_id, d.rows.case_overdue[0].alert_seq), (12, 50));
    let links = vec![(12, "party".to_owned()), (13, "place".to_owned())];
    let turned = super::cases::CaseCommand::TurnedCriminal {
        incident_id: 9,
        kind: "assault".into(),
        links,
        position: at(),
        now_ms: T0,
    };
    assert_eq!(super::cases::case_command(&mut d, &turned), 51);
    let v = parsed(&d.rows.alerts[1].payload);
    assert_eq!(
        (v["data"]["rule"].as_str(), v["data"]["priority"].as_i64()),
        (Some("dispute_turned_criminal"), Some(1))
    );
    assert_eq!(
        v["data"]["turned"],
        json!({"incident_id": 9, "kind": "assault", "cases": [{"case_id": 12, "reason": "party"}, {"case_id": 13, "reason": "place"}]})
    );
    assert_eq!(d.rows.dispute_links.len(), 2, "one link per case, one alert");
}

#[test]
fn a_silent_camera_is_raised_offline_once_and_its_next_push_says_it_is_back() {
    let mut memory = memory();
    let camera =
        Arc::new(CameraInfo { id: "cam-1".into(), name: "North gate".into(), kind: "anpr".into(), position: at() });
    let now = T0 + 700_000;
    let sweep = super::CameraSweep { silent: vec![(camera.clone(), T0)], now_ms: now, offline_after_ms: 600_000 };
    let mut d = draft(40);
    let status = liandong_store::CameraStatusRow {
        camera_id: "cam-1".into(),
        last_seen_ms: T0,
        offline_since_ms: None,
        offline_alert_seq: None,
    };
    d.cameras_now.insert("cam-1".into(), status.clone());
    assert_eq!(super::liveness::sweep(&mut d, &mut memory, &sweep), [("cam-1".to_owned(), 40)]);
    let row =
        liandong_store::CameraStatusRow { offline_since_ms: Some(now), offline_alert_seq: Some(40), ..status.clone() };
    assert_eq!(d.rows.camera_status, [row], "marked offline in the same commit");
    let offline = json!({"type": "alert", "seq": 40, "data": {
        "seq": 40, "rule": "camera_offline", "priority": 3, "time": rfc3339_ms(now), "lon": 107.2, "lat": 30.7,
        "place": no_place(),
        "camera": camera_json(),
        "liveness": {"status": "offline", "last_seen": rfc3339_ms(T0), "offline_since": rfc3339_ms(now), "silent_s": 700},
    }});
    assert_eq!(d.rows.alerts[0].roles, ["operator", "admin"]);
    assert_eq!(published(d), [offline]);

    // A second sweep that read the store before the first committed finds it offline.
    let mut d = draft(41);
    d.cameras_now
        .insert("cam-1".into(), liandong_store::CameraStatusRow { offline_since_ms: Some(now), ..status.clone() });
    assert!(super::liveness::sweep(&mut d, &mut memory, &sweep).is_empty());
    // Nor is a camera that pushed since the check read it.
    let mut d = draft(41);
    d.cameras_now.insert("cam-1".into(), liandong_store::CameraStatusRow { last_seen_ms: now - 1_000, ..status });
    assert!(super::liveness::sweep(&mut d, &mut memory, &sweep).is_empty());

    let mut item = plate_read("川A00000", now + 60_000);
    item.camera = camera;
    item.seen_ms = now + 60_000;
    let mut d = draft(50);
    super::liveness::seen(&mut d, &mut memory, &item);
    let back = json!({"type": "alert", "seq": 50, "data": {
        "seq": 50, "rule": "camera_online", "priority": 4, "time": rfc3339_ms(now + 60_000), "lon": 107.2, "lat": 30.7,
        "place": no_place(),
        "camera": camera_json(),
        "liveness": {"status": "online", "last_seen": rfc3339_ms(now + 60_000), "offline_since": rfc3339_ms(now),
                     "silent_s": 60, "offline_alert_seq": 40},
    }});
    assert_eq!(published(d), [back]);
    let mut d = draft(51);
    super::liveness::seen(&mut d, &mut memory, &item);
    assert!(d.rows.alerts.is_empty(), "a push while online tells nothing");
    assert_eq!(d.rows.camera_status[0].last_seen_ms, now + 60_000);
}
