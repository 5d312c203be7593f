//! The 24-hour duty roster (24小时值班) as the server holds it: the shifts of the days
//! around now, read from the store on every change made here and every
//! [`ROSTER_REFRESH`] (so that a roster set through another instance takes effect
//! here too). Dispatch recommendations ask it which posts have someone on duty, and the
//! sequencer's escalation rule whom a late step reaches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use liandong_core::map::CountyMap;
use liandong_store::{DutyShift, Store, StoreError};

use crate::travel::route_team;

/// How often the roster is read again from the store.
pub const ROSTER_REFRESH: std::time::Duration = std::time::Duration::from_secs(30);

/// How far before and after now the held copy reaches: a shift is at most a day long,
/// so a day back holds every shift under way, and two ahead every shift starting
/// before the next refresh however long the server runs between them.
const BEHIND_MS: i64 = 24 * 3600 * 1000;
const AHEAD_MS: i64 = 2 * 24 * 3600 * 1000;

/// The roster's shifts, replaced whole by each read from the store, and the posts the
/// map's units belong to.
#[derive(Default)]
pub struct Roster {
    held: RwLock<Held>,
    /// Tickets handed to reads as they start: a read that started before another one
    /// and finishes after it (it may have missed a change) replaces nothing.
    tickets: AtomicU64,
    /// The post of each unit of the map: a post's own id, a team's base post.
    unit_posts: HashMap<String, String>,
    /// Each post's name, by id.
    post_names: HashMap<String, String>,
}

/// What one read of the store gave.
#[derive(Default)]
struct Held {
    /// The read's ticket.
    ticket: u64,
    shifts: Arc<Vec<DutyShift>>,
    /// The names of the people the shifts name, by id.
    names: Arc<HashMap<String, String>>,
}

impl Roster {
    /// An empty roster for the units of `map`; [`Roster::reload`] reads the shifts.
    pub fn for_map(map: &CountyMap) -> Roster {
        let mut unit_posts: HashMap<String, String> = map.posts.iter().map(|p| (p.id.clone(), p.id.clone())).collect();
        for r in &map.routes {
            if let Some(post) = r.properties.get("post_id").and_then(|v| v.as_str()) {
                unit_posts.insert(route_team(r).to_owned(), post.to_owned());
            }
        }
        let post_names = map.posts.iter().map(|p| (p.id.clone(), p.name.clone())).collect();
        Roster { unit_posts, post_names, ..Roster::default() }
    }

    /// A roster holding `shifts` and the names of their people (tests; the server reads
    /// it with [`Roster::reload`]).
    pub fn with(unit_posts: HashMap<String, String>, shifts: Vec<DutyShift>, names: HashMap<String, String>) -> Roster {
        let held = Held { ticket: 0, shifts: Arc::new(shifts), names: Arc::new(names) };
        Roster { held: RwLock::new(held), tickets: AtomicU64::new(0), unit_posts, post_names: HashMap::new() }
    }

    /// Reads the shifts around `now_ms` and their people's names from the store and
    /// holds them, unless a read that started later has already been applied.
    pub async fn reload(&self, store: &Store, now_ms: i64) -> Result<(), StoreError> {
        let ticket = self.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        let shifts = store.duty_between(now_ms - BEHIND_MS, now_ms + AHEAD_MS, None, None).await?;
        let mut names = HashMap::new();
        for s in &shifts {
            if !names.contains_key(&s.person_id) {
                if let Some(p) = store.person(&s.person_id).await? {
                    names.insert(p.person_id, p.name);
                }
            }
        }
        let mut held = self.held.write().unwrap_or_else(|e| e.into_inner());
        if ticket > held.ticket {
            *held = Held { ticket, shifts: Arc::new(shifts), names: Arc::new(names) };
        }
        Ok(())
    }

    fn shifts(&self) -> Arc<Vec<DutyShift>> {
        self.held.read().unwrap_or_else(|e| e.into_inner()).shifts.clone()
    }

    /// A rostered person's name.
    pub fn name(&self, person_id: &str) -> Option<String> {
        self.held.read().unwrap_or_else(|e| e.into_inner()).names.get(person_id).cloned()
    }

    /// A post's name in the map.
    pub fn post_name(&self, post_id: &str) -> Option<&str> {
        self.post_names.get(post_id).map(String::as_str)
    }

    /// The post a unit belongs to: a post is its own, a team is based at one.
    pub fn post_of(&self, unit_id: &str) -> Option<&str> {
        self.unit_posts.get(unit_id).map(String::as_str)
    }

    /// Every shift under way at `at_ms`.
    pub fn at(&self, at_ms: i64) -> Vec<DutyShift> {
        self.shifts().iter().filter(|s| s.starts_ms <= at_ms && at_ms < s.ends_ms).cloned().collect()
    }

    /// The leader on duty at a post at `at_ms`.
    pub fn post_leader(&self, post_id: &str, at_ms: i64) -> Option<DutyShift> {
        self.at(at_ms).into_iter().find(|s| s.duty == "leader" && s.unit_id.as_deref() == Some(post_id))
    }

    /// Whether anyone (the leader or an officer) is on duty at a post at `at_ms`.
    pub fn post_on_duty(&self, post_id: &str, at_ms: i64) -> bool {
        self.at(at_ms).iter().any(|s| s.unit_kind == "post" && s.unit_id.as_deref() == Some(post_id))
    }

    /// The command centre's duty officer at `at_ms`: the officer on duty (值班员) who
    /// watches the room, else the leader on duty when no officer is rostered.
    pub fn duty_officer(&self, at_ms: i64) -> Option<DutyShift> {
        let centre: Vec<DutyShift> = self.at(at_ms).into_iter().filter(|s| s.unit_kind == "command_centre").collect();
        let officer = centre.iter().find(|s| s.duty == "on_duty");
        officer.or_else(|| centre.iter().find(|s| s.duty == "leader")).cloned()
    }
}

/// Reads the roster again every [`ROSTER_REFRESH`] until `stop` resolves.
pub async fn refresh(roster: Arc<Roster>, store: Store, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    let mut every = tokio::time::interval(ROSTER_REFRESH);
    every.tick().await;
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = every.tick() => {}
        }
        if let Err(e) = roster.reload(&store, crate::time_fmt::now_ms()).await {
            tracing::warn!(error = %e, "reading the duty roster failed; the last one read is kept");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shift(kind: &str, unit: Option<&str>, person: &str, duty: &str, starts_ms: i64, ends_ms: i64) -> DutyShift {
        DutyShift {
            shift_id: format!("{person}-{starts_ms}"),
            unit_kind: kind.into(),
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

    #[test]
    fn the_roster_names_who_is_on_duty_at_a_moment() {
        let r = Roster::with(
            HashMap::new(),
            vec![
                shift("post", Some("post-01"), "lead1", "leader", 0, 100),
                shift("post", Some("post-01"), "lead2", "leader", 100, 200),
                shift("post", Some("post-02"), "off2", "on_duty", 0, 100),
                shift("command_centre", None, "chief", "leader", 0, 200),
                shift("command_centre", None, "watch", "on_duty", 50, 150),
            ],
            HashMap::new(),
        );
        assert_eq!(r.post_leader("post-01", 99).map(|s| s.person_id).as_deref(), Some("lead1"));
        assert_eq!(r.post_leader("post-01", 100).map(|s| s.person_id).as_deref(), Some("lead2"), "ends are exclusive");
        assert_eq!(r.post_leader("post-02", 10), None, "an officer is not the leader");
        assert!(r.post_on_duty("post-02", 10));
        assert!(!r.post_on_duty("post-02", 100));
        assert!(!r.post_on_duty("post-03", 10));
        assert_eq!(r.duty_officer(10).map(|s| s.person_id).as_deref(), Some("chief"), "the leader when no officer");
        assert_eq!(r.duty_officer(60).map(|s| s.person_id).as_deref(), Some("watch"), "the officer first");
        assert_eq!(r.duty_officer(200), None);
    }
}
