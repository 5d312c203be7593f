//! The rules of the clock, run by the ticker's tick (an `IncidentCommand::Tick`) in
//! sequence with everything else: units gone silent, camera storms that calmed down,
//! patrol members late for or skipping checkpoints, plans nobody acknowledged, and the
//! incidents' late steps (`incidents::escalate`, which notifies through `escalations`).

use super::draft::Draft;
use super::memory::RuleMemory;
use super::positions::{adherence_check, stale_units, Member};
use super::{cameras, plans, Known};

/// Everything due at `now_ms`.
pub(super) fn tick(draft: &mut Draft, memory: &mut RuleMemory, known: &Known, now_ms: i64) {
    stale_units(draft, memory, known, now_ms);
    cameras::storms_ended(draft, memory, now_ms);
    let members: Vec<(String, std::sync::Arc<str>)> =
        memory.adherence.keys().filter_map(|d| Some((d.clone(), known.unit_of(d, &draft.after.units)?))).collect();
    for (device_id, team) in members {
        adherence_check(draft, memory, known, Member { device_id: &device_id, team_id: &team, fix: None, now_ms });
    }
    plans::route_escalations(draft, now_ms);
    super::incidents::escalate(draft, known, now_ms);
}
