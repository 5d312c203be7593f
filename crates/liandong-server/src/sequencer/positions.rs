//! The rules on a device's position reports: the domain's per-device processing (jump
//! filter, enrichment, fences), a repeat answered with the number it already has, a
//! tagged person's zone rules, a patrol member's adherence to the team's plan, and
//! units gone silent. Also the JSON of a committed report, as clients see it.

use std::sync::Arc;

use liandong_core::adherence::{AdherenceEvent, MemberAdherence};
use liandong_core::jump::{flags, Fix};
use liandong_core::{process, Position};
use liandong_ingest::Report;
use liandong_store::{AuditEntry, PositionRow};
use serde::Serialize;
use serde_json::value::RawValue;

use super::draft::{Draft, NewAlert};
use super::memory::RuleMemory;
use super::{Ack, Item, Known};

/// The rules on one job of reports: each is processed against its device's track (a
/// copy, in the draft), numbered, and checked against zones and plans.
pub(super) fn positions(draft: &mut Draft, memory: &mut RuleMemory, known: &Known, items: &[Item]) -> Vec<Ack> {
    let mut acks = Vec::with_capacity(items.len());
    for item in items {
        let r = &item.report;
        // The same fix again (a phone that lost the answer re-sends it) is the report
        // already kept: acknowledged with its number, not stored twice.
        if let Some(ack) = repeat_of(draft, known, r) {
            acks.push(ack);
            continue;
        }
        let seq = draft.next_seq();
        let (track, last_seq) = draft
            .after
            .tracks
            .entry(r.device_id.clone())
            .or_insert_with(|| known.tracks.get(&r.device_id).cloned().unwrap_or_default());
        let fix_ms = r.fix_time_ms.unwrap_or(item.recv_ms);
        let p = process(&known.enricher, &known.filter, track, r.position, fix_ms, item.recv_ms, r.accuracy_m);
        let view = known.enricher.view(&p.enrichment, &track.fences, &p.fence_events);
        let enrichment = serde_json::to_string(&view).unwrap_or_else(|_| "{}".into());
        let in_order = p.flags & flags::OUT_OF_ORDER == 0;
        if in_order {
            *last_seq = seq;
            draft.after.newest.insert(r.device_id.clone(), draft.rows.positions.len());
        }
        draft.position(position_row(item, seq, fix_ms, p.flags, enrichment), item.unit_id.clone());
        acks.push(Ack { seq, flags: p.flags });
        if p.trusted() && in_order {
            let fix = Fix { position: r.position, time_ms: fix_ms };
            zone_check(draft, memory, known, &r.device_id, fix);
            if let Some(team) = &item.unit_id {
                let member =
                    Member { device_id: &r.device_id, team_id: team, fix: Some((fix, r.accuracy_m)), now_ms: fix_ms };
                adherence_check(draft, memory, known, member);
            }
        }
    }
    acks
}

/// The row of a processed report.
fn position_row(item: &Item, seq: i64, fix_ms: i64, flags: u32, enrichment: String) -> PositionRow {
    let r = &item.report;
    PositionRow {
        seq,
        device_id: r.device_id.clone(),
        fix_ms,
        recv_ms: item.recv_ms,
        lon: r.position.lon(),
        lat: r.position.lat(),
        datum: datum_name(r.datum),
        speed_mps: r.speed_mps,
        course_deg: r.course_deg,
        altitude_m: r.altitude_m,
        accuracy_m: r.accuracy_m,
        battery_pct: r.battery_pct,
        flags,
        attributes: serde_json::to_string(&r.attributes).unwrap_or_else(|_| "{}".into()),
        enrichment,
    }
}

/// The acknowledgement a report already got, when it repeats the device's last kept
/// report (same fix time and place): in this batch, else in the live view. A report
/// without its own time is never a repeat (its time is when it arrived).
fn repeat_of(draft: &Draft, known: &Known, r: &Report) -> Option<Ack> {
    let t = r.fix_time_ms?;
    let same = |fix_ms: i64, lon: f64, lat: f64| fix_ms == t && lon == r.position.lon() && lat == r.position.lat();
    if let Some(&i) = draft.after.newest.get(&r.device_id) {
        let row = &draft.rows.positions[i];
        return same(row.fix_ms, row.lon, row.lat).then_some(Ack { seq: row.seq, flags: row.flags });
    }
    let live = known.live.read().unwrap_or_else(|e| e.into_inner());
    let last = live.devices.get(&r.device_id)?;
    same(last.fix_ms, last.lon, last.lat).then_some(Ack { seq: last.seq, flags: last.flags })
}

/// Zone rules of a tagged person's phone: an alert for the person's roles when a
/// (rule, fence) break starts, audited like any sighting; nothing while it lasts.
fn zone_check(draft: &mut Draft, memory: &mut RuleMemory, known: &Known, device_id: &str, fix: Fix) {
    let Some(z) = known.zones.read().unwrap_or_else(|e| e.into_inner()).device(device_id) else { return };
    let fences = known.enricher.fences();
    let now = liandong_core::zone::violations(&z.rules, fences, fix.position, fix.time_ms);
    let before = memory.zone_breaks.len();
    memory.zone_breaks.retain(|(p, r, f)| p != &z.person_id || now.contains(&(*r, *f)));
    let ended = before - memory.zone_breaks.len();
    for (rule, fence) in now {
        if !memory.zone_breaks.insert((z.person_id.clone(), rule, fence)) {
            continue;
        }
        let f = &fences.fences()[fence as usize];
        let fields = serde_json::json!({
            "person": {"person_id": z.person_id, "name": z.name},
            "device_id": device_id,
            "zone": {"rule": z.rule_text[rule], "fence": f.id, "fence_name": f.name, "source": "device"},
        });
        let alert = NewAlert {
            roles: z.roles.clone(),
            ..NewAlert::for_operators("tagged_zone", 2, fix.position, fix.time_ms).with_fields(fields)
        };
        let alert_seq = draft.raise(alert);
        draft.rows.audit.push(AuditEntry {
            at_ms: fix.time_ms,
            actor: format!("device:{device_id}"),
            action: "tagged_person_seen".into(),
            subject: z.person_id.clone(),
            detail: format!("alert {alert_seq}: inside {} ({})", f.name, z.rule_text[rule]),
        });
    }
    if ended > 0 {
        tracing::debug!(person = %z.person_id, ended, "zone rule breaks ended");
    }
}

/// A patrol member to measure against the team's plan: by a fix, or by the clock.
pub(super) struct Member<'a> {
    pub device_id: &'a str,
    pub team_id: &'a str,
    /// The fix and its accuracy in metres; none when the clock checks.
    pub fix: Option<(Fix, Option<f64>)>,
    pub now_ms: i64,
}

/// A member's fix (or, without one, the clock) against the team's current plan:
/// leaving the corridor, coming back, a checkpoint late or skipped become alerts for
/// operators. The member starts afresh with each new version of the plan.
pub(super) fn adherence_check(draft: &mut Draft, memory: &mut RuleMemory, known: &Known, m: Member<'_>) {
    let Member { device_id, team_id, fix, now_ms } = m;
    // Devices registered after start-up: their team, for the clock's checks and for
    // diversions.
    if fix.is_some() && !known.units.contains_key(device_id) {
        draft.after.units.entry(device_id.to_owned()).or_insert_with(|| Arc::from(team_id));
    }
    // A member sent to an incident is where the command centre sent them, not off
    // route; back from it, they start afresh with the plan (and its time to join).
    let on_incident = known.incidents.values().any(|i| i.assigned_device.as_deref() == Some(device_id));
    let Some((plan_seq, corridor)) = known.corridors.get(team_id).cloned().filter(|_| !on_incident) else {
        memory.adherence.remove(device_id);
        return;
    };
    let entry =
        memory.adherence.entry(device_id.to_owned()).or_insert_with(|| (plan_seq, MemberAdherence::new(&corridor)));
    if entry.0 != plan_seq {
        *entry = (plan_seq, MemberAdherence::new(&corridor));
    }
    let events = match fix {
        Some((f, accuracy)) => entry.1.update(&corridor, f, accuracy),
        None => entry.1.tick(&corridor, now_ms),
    };
    let version = known.route_heads.get(team_id).map(|h| h.version);
    let position = fix.map(|(f, _)| f.position);
    for e in events {
        let Some((rule, priority, detail)) = adherence_alert(e) else { continue };
        let at = position
            .or_else(|| known.last_heard.get(device_id).map(|(_, p)| *p))
            .or_else(|| corridor.checkpoints().first().map(|c| c.position));
        let Some(at) = at else { continue };
        let fields = serde_json::json!({
            "device_id": device_id, "team_id": team_id, "plan_version": version, "adherence": detail,
        });
        draft.raise(NewAlert::for_operators(rule, priority, at, now_ms).with_fields(fields));
    }
}

/// The alert an adherence event is for operators (rule, priority, detail), if any.
fn adherence_alert(e: AdherenceEvent) -> Option<(&'static str, i64, serde_json::Value)> {
    Some(match e {
        AdherenceEvent::OffRoute { since_ms, distance_m, .. } => (
            "route_off",
            3,
            serde_json::json!({"since": crate::time_fmt::rfc3339_ms(since_ms), "distance_m": distance_m.round()}),
        ),
        AdherenceEvent::BackOnRoute { distance_m, .. } => {
            ("route_back", 4, serde_json::json!({"distance_m": distance_m.round()}))
        }
        AdherenceEvent::CheckpointLate { checkpoint, deadline_ms } => (
            "checkpoint_late",
            3,
            serde_json::json!({"checkpoint": checkpoint, "deadline": crate::time_fmt::rfc3339_ms(deadline_ms)}),
        ),
        AdherenceEvent::CheckpointSkipped { checkpoint, .. } => {
            ("checkpoint_skipped", 3, serde_json::json!({"checkpoint": checkpoint}))
        }
        AdherenceEvent::CheckpointVisited { .. } | AdherenceEvent::CheckpointDeparted { .. } => return None,
    })
}

/// Alerts operators once about each unit whose last trusted fix went stale.
pub(super) fn stale_units(draft: &mut Draft, memory: &mut RuleMemory, known: &Known, now_ms: i64) {
    let mut stale: Vec<(String, i64, Position)> = known
        .last_heard
        .iter()
        .filter(|(id, (heard, _))| now_ms - heard > known.stale_unit_ms && !memory.stale.contains(*id))
        .map(|(id, (heard, p))| (id.clone(), *heard, *p))
        .collect();
    stale.sort_by(|a, b| a.0.cmp(&b.0));
    for (device, heard_ms, position) in stale {
        let fields = serde_json::json!({
            "device_id": device,
            "last_heard": crate::time_fmt::rfc3339_ms(heard_ms),
            "silent_min": (now_ms - heard_ms) / 60_000,
        });
        draft.raise(NewAlert::for_operators("stale_unit", 3, position, now_ms).with_fields(fields));
        // Remembered now; a failed commit re-raises them at the next tick, which is
        // what the operator needs anyway.
        memory.stale.insert(device);
    }
}

fn datum_name(d: liandong_core::Datum) -> &'static str {
    match d {
        liandong_core::Datum::Wgs84 => "wgs84",
        liandong_core::Datum::Gcj02 => "gcj02",
        liandong_core::Datum::Bd09 => "bd09",
    }
}

/// A committed report as clients see it: the stored row, with its attribute and
/// enrichment JSON embedded as they were stored.
#[derive(Serialize)]
struct ReportView<'a> {
    seq: i64,
    device_id: &'a str,
    fix_time: String,
    recv_ms: i64,
    lon: f64,
    lat: f64,
    datum: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    speed_mps: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    course_deg: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    altitude_m: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accuracy_m: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    battery_pct: Option<f64>,
    flags: Vec<&'static str>,
    attributes: &'a RawValue,
    enrichment: &'a RawValue,
}

/// The JSON of a committed report, built from its stored row: at commit, and when the
/// live state is rebuilt after a restart (one code path for both).
pub fn report_json(row: &PositionRow) -> String {
    // Both columns are only ever written from serialised JSON; an unreadable one is
    // shown as an empty object rather than failing the whole report.
    let empty = || serde_json::from_str::<&RawValue>("{}").ok();
    let (Some(attributes), Some(enrichment)) = (
        serde_json::from_str::<&RawValue>(&row.attributes).ok().or_else(empty),
        serde_json::from_str::<&RawValue>(&row.enrichment).ok().or_else(empty),
    ) else {
        return "null".into();
    };
    let v = ReportView {
        seq: row.seq,
        device_id: &row.device_id,
        fix_time: crate::time_fmt::rfc3339_ms(row.fix_ms),
        recv_ms: row.recv_ms,
        lon: row.lon,
        lat: row.lat,
        datum: row.datum,
        speed_mps: row.speed_mps,
        course_deg: row.course_deg,
        altitude_m: row.altitude_m,
        accuracy_m: row.accuracy_m,
        battery_pct: row.battery_pct,
        flags: flags::names(row.flags),
        attributes,
        enrichment,
    };
    serde_json::to_string(&v).unwrap_or_else(|_| "null".into())
}
