//! The rules on a device's position reports: the domain's per-device processing (jump
//! filter, enrichment, fences), a repeat answered with the number it already has, the
//! SOS button, a tagged person's zone rules, a patrol member's adherence to the team's
//! plan, and units gone silent.

use std::sync::Arc;

use liandong_core::adherence::{AdherenceEvent, MemberAdherence};
use liandong_core::jump::{flags, Fix};
use liandong_core::{process_reading, Position, Reading};
use liandong_ingest::Alarm;
use liandong_store::{AuditEntry, PositionRow};
use serde_json::value::RawValue;

use super::draft::{Draft, NewAlert};
use super::memory::RuleMemory;
use super::{Ack, Item, Known};
use crate::feed::messages::{report_json_with, Adherence, AlertDetail, PersonRef, ZoneBreak};

/// The rules on one job of reports: each is processed against its device's track (a
/// copy, in the draft), numbered, and checked against zones and plans.
pub(super) fn positions(draft: &mut Draft, memory: &mut RuleMemory, known: &Known, items: &[Item]) -> Vec<Ack> {
    let mut acks = Vec::with_capacity(items.len());
    for item in items {
        let r = &item.report;
        // The same fix again (a phone that lost the answer, or that sends what it kept
        // offline once more) is the report already kept: acknowledged with its number
        // and flags, not stored twice, and it raises nothing again.
        if let Some(ack) = r.fix_time_ms.and_then(|t| draft.fixes.get(&r.device_id, t)) {
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
        let reading = Reading {
            position: r.position,
            time_ms: fix_ms,
            recv_ms: item.recv_ms,
            accuracy_m: r.accuracy_m,
            mock: r.mock,
        };
        let p = process_reading(&known.enricher, &known.filter, track, reading);
        let enrichment = raw_json(&known.enricher.wire(&p.enrichment, &track.fences, &p.fence_events));
        let in_order = p.flags & flags::OUT_OF_ORDER == 0;
        if in_order {
            *last_seq = seq;
            draft.after.newest.insert(r.device_id.clone(), draft.rows.positions.len());
        }
        let attributes = attributes_json(r);
        let row = position_row(item, seq, fix_ms, p.flags, attributes.get().to_owned(), enrichment.get().to_owned());
        let json = Arc::from(report_json_with(&row, &attributes, &enrichment));
        draft.position(row, item.unit_id.clone(), json);
        let ack = Ack { seq, flags: p.flags };
        if let Some(t) = r.fix_time_ms {
            draft.fixes.keep(&r.device_id, t, ack);
        }
        acks.push(ack);
        if r.alarm == Some(Alarm::Sos) {
            sos(draft, memory, known, item, ack, fix_ms);
        }
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
fn position_row(item: &Item, seq: i64, fix_ms: i64, flags: u32, attributes: String, enrichment: String) -> PositionRow {
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
        attributes,
        enrichment,
    }
}

/// A report's attributes as stored, with its alarm among them: the report is kept as
/// the device sent it, whatever the alarm raised.
fn attributes_json(r: &liandong_ingest::Report) -> Box<RawValue> {
    match r.alarm {
        None => raw_json(&r.attributes),
        Some(alarm) => {
            let mut attributes = r.attributes.clone();
            attributes.insert("alarm".to_owned(), alarm.as_str().into());
            raw_json(&attributes)
        }
    }
}

/// A value's JSON (`{}` should it not serialise), kept as the text it was written as.
fn raw_json(value: &impl serde::Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value)
        .unwrap_or_else(|_| RawValue::from_string("{}".to_owned()).unwrap_or_else(|_| RawValue::NULL.to_owned()))
}

/// Presses of the SOS button this close to the device's last SOS alert (by fix time)
/// are the same call for help: a burst raises one alert, a press after it another.
pub(super) const SOS_BURST_MS: i64 = 60_000;

/// The SOS button: a priority-1 alert for operators (and administrators, who see every
/// alert) at the fix's place, naming the device, its name and unit, and the diversion of
/// the nearest other team on a plan to that place; raised whatever the
/// fix's flags (a doubtful place is still where help was asked from; the flags say how
/// far to trust it). Presses within [`SOS_BURST_MS`] of the device's last alert raise
/// nothing new.
fn sos(draft: &mut Draft, memory: &mut RuleMemory, known: &Known, item: &Item, report: Ack, fix_ms: i64) {
    let r = &item.report;
    if memory.sos.get(&r.device_id).is_some_and(|last| (fix_ms - last).abs() < SOS_BURST_MS) {
        tracing::debug!(device = %r.device_id, seq = report.seq, "sos press within the burst of the last alert");
        return;
    }
    let detail = AlertDetail::Sos {
        device_id: &r.device_id,
        device_name: &item.device_name,
        unit_id: item.unit_id.as_deref(),
        report_seq: report.seq,
        flags: flags::names(report.flags),
    };
    let alert_seq = draft.raise(NewAlert::for_operators("sos", 1, r.position, fix_ms, detail));
    tracing::info!(device = %r.device_id, alert_seq, "sos raised");
    memory.sos.insert(r.device_id.clone(), fix_ms);
    // Help is sent as for any serious alert: the nearest team on a plan (other than the
    // caller) is diverted to the caller's place and its leader told.
    super::plans::divert_to_help(draft, known, Some(alert_seq), item.recv_ms, Some(&r.device_id));
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
        let detail = AlertDetail::TaggedZone {
            person: PersonRef { person_id: &z.person_id, name: &z.name },
            device_id,
            zone: ZoneBreak { rule: &z.rule_text[rule], fence: &f.id, fence_name: &f.name, source: "device" },
        };
        let alert = NewAlert {
            roles: z.roles.clone(),
            ..NewAlert::for_operators("tagged_zone", 2, fix.position, fix.time_ms, detail)
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
        let detail = AlertDetail::Adherence { device_id, team_id, plan_version: version, adherence: detail };
        draft.raise(NewAlert::for_operators(rule, priority, at, now_ms, detail));
    }
}

/// The alert an adherence event is for operators (rule, priority, detail), if any.
pub(super) fn adherence_alert(e: AdherenceEvent) -> Option<(&'static str, i64, Adherence)> {
    Some(match e {
        AdherenceEvent::OffRoute { since_ms, distance_m, .. } => {
            ("route_off", 3, Adherence::off_route(since_ms, distance_m))
        }
        AdherenceEvent::BackOnRoute { distance_m, .. } => ("route_back", 4, Adherence::back_on_route(distance_m)),
        AdherenceEvent::CheckpointLate { checkpoint, deadline_ms } => {
            ("checkpoint_late", 3, Adherence::checkpoint_late(checkpoint, deadline_ms))
        }
        AdherenceEvent::CheckpointSkipped { checkpoint, .. } => {
            ("checkpoint_skipped", 3, Adherence::CheckpointSkipped { checkpoint })
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
        let detail = AlertDetail::StaleUnit {
            device_id: &device,
            last_heard: crate::time_fmt::rfc3339_ms(heard_ms),
            silent_min: (now_ms - heard_ms) / 60_000,
        };
        draft.raise(NewAlert::for_operators("stale_unit", 3, position, now_ms, detail));
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
