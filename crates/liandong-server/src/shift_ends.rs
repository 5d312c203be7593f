//! Shift ends prepare their handover sheets (交接班) by themselves: when a unit's
//! leader shift on the duty roster ends, the server prepares the sheet from the
//! outgoing leader to the incoming one with [`crate::handover::prepare`].
//!
//! The incoming person is the leader of the unit's shift under way at the moment the
//! outgoing one ends (the usual case: the next shift starts then). When the roster has
//! a gap, it is the leader of the unit's first shift starting within [`WAIT_MS`] after
//! that moment, named as soon as the roster holds that shift; with no such shift no
//! sheet is prepared (the `handovers` table names two persons), a warning is logged,
//! and the sheet is prepared when an administrator fills the gap within
//! [`CATCH_UP_MS`] of the end. A leader rostered for the next shift too hands over to
//! nobody. Every instance looks; the store's unique index keeps one sheet per unit and
//! shift, and a shift that ended while the server was down is prepared at start if it
//! ended within [`CATCH_UP_MS`].

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::http::StatusCode;
use liandong_store::DutyShift;

use crate::handover::{prepare, Shift, Unit};
use crate::time_fmt::now_ms;
use crate::AppState;

/// How often the roster is looked at for shifts that ended: a sheet is ready within a
/// few seconds of the end, for the price of one indexed read.
pub const TICK: Duration = Duration::from_secs(2);

/// How long after its end a shift's sheet is still prepared: a server down over a
/// night prepares the night's sheets when it starts, not last week's.
pub const CATCH_UP_MS: i64 = 12 * 3_600_000;

/// How long after a shift's end the next leader's shift may start and still be the
/// incoming one (a gap in the roster); a later one is another handover's.
pub const WAIT_MS: i64 = 12 * 3_600_000;

/// The actor the audit log names for a sheet the roster prepared.
pub const ACTOR: &str = "duty_roster";

/// A leader shift that ended, and the leader shift it hands over to if the roster has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending<'a> {
    pub outgoing: &'a DutyShift,
    pub incoming: Option<&'a DutyShift>,
}

/// The leader shifts of `shifts` that ended in the last [`CATCH_UP_MS`] before `now_ms`
/// (ends are exclusive: a shift ending at `now_ms` has ended), each with its incoming
/// shift: another leader shift of the same unit under way at the end (the latest
/// started), else the first starting within [`WAIT_MS`] after it.
pub fn ended(shifts: &[DutyShift], now_ms: i64) -> Vec<Ending<'_>> {
    let leader = |s: &&DutyShift| s.duty == "leader" && s.cancelled_ms.is_none();
    shifts
        .iter()
        .filter(leader)
        .filter(|s| s.ends_ms <= now_ms && s.ends_ms > now_ms - CATCH_UP_MS)
        .map(|out| {
            let next = shifts.iter().filter(leader).filter(|s| {
                s.shift_id != out.shift_id
                    && s.unit_kind == out.unit_kind
                    && s.unit_id == out.unit_id
                    && s.ends_ms > out.ends_ms
                    && s.starts_ms < out.ends_ms + WAIT_MS
            });
            let under_way = next.clone().filter(|s| s.starts_ms <= out.ends_ms).max_by_key(|s| s.starts_ms);
            let incoming = under_way.or_else(|| next.min_by_key(|s| s.starts_ms));
            Ending { outgoing: out, incoming }
        })
        .collect()
}

/// The handover an ending asks for, or None when there is nobody to hand over to (no
/// incoming leader, or the same person again).
pub fn shift_of(e: &Ending<'_>) -> Option<Shift> {
    let inc = e.incoming.filter(|i| i.person_id != e.outgoing.person_id)?;
    let unit = match e.outgoing.unit_id.as_deref() {
        Some(post) if e.outgoing.unit_kind == "post" => Unit::Post(post.to_owned()),
        _ => Unit::CommandCentre,
    };
    Some(Shift {
        unit,
        from_ms: e.outgoing.starts_ms,
        to_ms: e.outgoing.ends_ms,
        outgoing_person_id: e.outgoing.person_id.clone(),
        incoming_person_id: inc.person_id.clone(),
    })
}

/// What one instance has done about the shifts that ended, so that it prepares each
/// sheet once and warns once about a shift without an incoming leader.
#[derive(Default)]
pub struct Tracker {
    /// Outgoing shifts whose sheet exists (prepared here or elsewhere) or is not needed.
    done: HashSet<String>,
    /// Outgoing shifts already warned about.
    warned: HashSet<String>,
}

/// Looks at the roster as of `now_ms` and prepares the sheet of every leader shift that
/// ended and has none yet. Returns the handovers prepared here. A failed read or
/// preparation is logged and tried again at the next tick.
pub async fn tick(s: &AppState, tracker: &mut Tracker, now_ms: i64) -> Vec<i64> {
    let shifts = match s.store.duty_between(now_ms - CATCH_UP_MS, now_ms + WAIT_MS, None, None).await {
        Ok(shifts) => shifts,
        Err(e) => {
            tracing::warn!(error = %e, "reading the duty roster for shift ends failed; trying again");
            return Vec::new();
        }
    };
    let endings = ended(&shifts, now_ms);
    // Forget shifts past catching up, so the sets stay a day's worth.
    let recent: HashSet<&str> = endings.iter().map(|e| e.outgoing.shift_id.as_str()).collect();
    tracker.done.retain(|k| recent.contains(k.as_str()));
    tracker.warned.retain(|k| recent.contains(k.as_str()));
    let mut prepared = Vec::new();
    for e in &endings {
        let key = &e.outgoing.shift_id;
        if tracker.done.contains(key) {
            continue;
        }
        let Some(shift) = shift_of(e) else {
            if e.incoming.is_some() {
                tracker.done.insert(key.clone());
            } else if tracker.warned.insert(key.clone()) {
                tracing::warn!(
                    shift_id = %key,
                    unit_kind = %e.outgoing.unit_kind,
                    unit_id = e.outgoing.unit_id.as_deref().unwrap_or(""),
                    ends_ms = e.outgoing.ends_ms,
                    "a leader shift ended with no incoming leader on the roster; no handover sheet until one is set"
                );
            }
            continue;
        };
        match prepare(s, &shift, ACTOR).await {
            Ok(row) => {
                tracker.done.insert(key.clone());
                prepared.push(row.handover_id);
            }
            // Another instance (or a person through the API) prepared it first.
            Err(err) if err.status == StatusCode::CONFLICT => {
                tracker.done.insert(key.clone());
            }
            Err(err) => {
                tracing::warn!(shift_id = %key, error = %err.message(), "preparing a handover sheet failed; trying again");
            }
        }
    }
    prepared
}

/// Every [`TICK`] until shutdown, prepares the sheets of the shifts that ended. The
/// clock is tokio's anchored to the wall clock at start (like the escalation ticker),
/// so that tests with paused time move it; the first tick, at start, catches up.
pub async fn run(state: Weak<AppState>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let base_ms = now_ms();
    let base = tokio::time::Instant::now();
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tracker = Tracker::default();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        let Some(s): Option<Arc<AppState>> = state.upgrade() else { return };
        tick(&s, &mut tracker, base_ms + base.elapsed().as_millis() as i64).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn shift(id: &str, unit: Option<&str>, person: &str, duty: &str, starts_ms: i64, ends_ms: i64) -> DutyShift {
        DutyShift {
            shift_id: id.into(),
            unit_kind: if unit.is_some() { "post" } else { "command_centre" }.into(),
            unit_id: unit.map(Into::into),
            person_id: person.into(),
            duty: duty.into(),
            starts_ms,
            ends_ms,
            created_ms: 0,
            created_by: "admin".into(),
            cancelled_ms: None,
        }
    }

    fn pairs(shifts: &[DutyShift], now: i64) -> Vec<(&str, Option<&str>)> {
        ended(shifts, now)
            .iter()
            .map(|e| (e.outgoing.shift_id.as_str(), e.incoming.map(|i| i.person_id.as_str())))
            .collect()
    }

    #[test]
    fn a_leader_shift_hands_over_to_the_next_leader_of_its_unit_once_it_has_ended() {
        let day = 100 * H;
        let roster = vec![
            shift("night", Some("post-01"), "wang", "leader", day - 8 * H, day),
            shift("day", Some("post-01"), "zhao", "leader", day, day + 8 * H),
            // An officer's shift and another unit's leader are not the incoming leader.
            shift("officer", Some("post-01"), "qian", "on_duty", day, day + 8 * H),
            shift("other", Some("post-02"), "sun", "leader", day, day + 8 * H),
            shift("centre", None, "li", "leader", day - 24 * H + 1, day + 1),
        ];
        assert_eq!(pairs(&roster, day - 1), [], "nothing has ended yet");
        assert_eq!(pairs(&roster, day), [("night", Some("zhao"))], "the end is exclusive");
        let e = &ended(&roster, day)[0];
        let s = shift_of(e).unwrap();
        assert_eq!(
            (s.unit, s.from_ms, s.to_ms, s.outgoing_person_id.as_str(), s.incoming_person_id.as_str()),
            (Unit::Post("post-01".into()), day - 8 * H, day, "wang", "zhao")
        );
        assert_eq!(pairs(&roster, day + 2), [("night", Some("zhao")), ("centre", None)], "the centre has no next");
        let night = |now: i64| pairs(&roster, now).iter().any(|(id, _)| *id == "night");
        assert!(night(day + CATCH_UP_MS - 1), "still caught up");
        assert!(!night(day + CATCH_UP_MS), "past catching up");
    }

    #[test]
    fn a_gap_in_the_roster_waits_for_the_next_leader_and_the_same_leader_hands_over_to_nobody() {
        let t = 100 * H;
        let roster = vec![
            shift("a", None, "li", "leader", t - 8 * H, t),
            shift("b", None, "zhou", "leader", t + 3 * H, t + 11 * H),
            shift("c", None, "wu", "leader", t + 11 * H, t + 20 * H),
            shift("p1", Some("post-01"), "wang", "leader", t - 8 * H, t),
            shift("p2", Some("post-01"), "wang", "leader", t, t + 8 * H),
            shift("q1", Some("post-02"), "sun", "leader", t - 8 * H, t),
            shift("q2", Some("post-02"), "ma", "leader", t + WAIT_MS, t + WAIT_MS + 8 * H),
        ];
        let endings = ended(&roster, t);
        let got: Vec<(&str, Option<&str>)> =
            endings.iter().map(|e| (e.outgoing.shift_id.as_str(), e.incoming.map(|i| i.shift_id.as_str()))).collect();
        assert_eq!(got, [("a", Some("b")), ("p1", Some("p2")), ("q1", None)], "q2 starts too late");
        assert_eq!(shift_of(&endings[0]).map(|s| s.incoming_person_id), Some("zhou".into()));
        assert_eq!(shift_of(&endings[1]), None, "wang stays on: nothing to hand over");
        assert_eq!(shift_of(&endings[2]), None);
    }
}
