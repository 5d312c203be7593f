//! The rules' memory: what the rules remember between batches beyond the store's state
//! (de-duplication, storms, tracks of watched values, zone breaks, stale units,
//! adherence to plans, cameras seen, SOS presses, cameras offline). It is one value so that a commit can clone it
//! before the batch is prepared and put it back whole when the commit fails: a field
//! added here is saved and restored with the others, it cannot be forgotten.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use liandong_core::adherence::MemberAdherence;
use liandong_core::alerts::Dedup;
use liandong_core::storm::StormGuard;
use liandong_core::track::TrackBook;

use super::CameraInfo;

/// Everything the rules change while a batch is prepared, other than the batch itself.
#[derive(Clone)]
pub(super) struct RuleMemory {
    /// Reads of a watched value a camera repeats within the window raise no new alert.
    pub dedup: Dedup,
    /// Cameras raising alerts faster than a person can read them.
    pub storms: StormGuard,
    /// Recent sightings of watched plates and persons, fused into tracks.
    pub sightings: TrackBook,
    /// Zone rules a tagged person's phone is breaking now: (person, rule, fence). An
    /// alert is raised when a pair starts, not on every report inside.
    pub zone_breaks: HashSet<(String, usize, u32)>,
    /// Devices already reported stale, until they report again.
    pub stale: crate::hashing::FastSet<String>,
    /// Each member's adherence to the plan it is measured against, by plan.
    pub adherence: HashMap<String, (i64, MemberAdherence)>,
    /// Cameras seen pushing, for the alert that ends a storm.
    pub cameras: HashMap<String, Arc<CameraInfo>>,
    /// Each device's last SOS alert, by the fix time of the press that raised it.
    pub sos: HashMap<String, i64>,
    /// The `no_parking` alerts raised, by plate, fence and window.
    pub parking_alerted: super::parking::Alerted,
    /// Cameras offline now: when the silence was found and its `camera_offline` alert.
    /// Rebuilt from the store at start and from other instances' alerts on catch-up.
    pub offline: HashMap<String, (i64, i64)>,
}
