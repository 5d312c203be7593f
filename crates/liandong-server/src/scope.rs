//! Who may see what: the one place that decides whether a caller's role may read an
//! alert, a tagged person or a tagged person's phone, and how such reads are audited.
//!
//! A tagged person's record names the roles entitled to them (`roles`); their alerts
//! carry the same list, and their phone's positions follow it everywhere (lists, history,
//! the live feed, snapshots and replays). Administrators see everything, as they maintain
//! the records; every read of a tagged person's data is audited, administrators' too.
//! A caller who may not see something is answered as if it did not exist.
//!
//! Beside tagged persons, each caller has a [`Reach`]: the part of the county their
//! reads cover (the whole county, a team and the area around its post, a post's
//! jurisdiction, a grid, the priority-1 incidents of the judicial office, a device's
//! unit). Every read over HTTP and every message of the live feed asks the same small
//! functions of it, so that what a person sees in a list, one item, the history and the
//! feed is the same.

use std::sync::Arc;

use liandong_core::enrich::Enricher;
use liandong_core::Position;
use liandong_store::{AlertRow, AuditEntry, ImageOwners, IncidentRow, PeopleFilter, PersonRecord};

use crate::auth::Role;
pub use crate::role::role_entitled;

/// The part of the county a caller reads, decided once per request or connection from
/// their role and unit.
#[derive(Debug, Clone, PartialEq)]
pub enum Reach {
    /// Operators and administrators: everything.
    County,
    /// A patrol leader: the team's devices and plans, the incidents assigned to it, and
    /// the area within `alerts.leader_radius_m` of the team's post (`None`: no area).
    Team { team: Arc<str>, area: Option<(Position, f64)> },
    /// A post officer: the post's devices, its tasks, and its jurisdiction's incidents.
    Post(Arc<str>),
    /// A grid member: the incidents in their grid (their reports are theirs by name).
    Grid(Arc<str>),
    /// The judicial office: priority-1 incidents, read only (the county's major
    /// incidents it discusses jointly); disputes, mediation and the tagged persons and
    /// alerts its role is named for are decided by role.
    Partner,
    /// A phone by its device key: its unit's devices, tasks and routes.
    Unit(Arc<str>),
    /// Nothing beyond what the role is named for (a field role's token without a unit,
    /// a gateway's token).
    Nothing,
}

/// What an incident's visibility depends on.
#[derive(Debug, Clone, Copy)]
pub struct IncidentFacts<'a> {
    pub assigned_unit: Option<&'a str>,
    pub priority: i64,
    pub lon: f64,
    pub lat: f64,
}

impl<'a> From<&'a IncidentRow> for IncidentFacts<'a> {
    fn from(i: &'a IncidentRow) -> Self {
        IncidentFacts { assigned_unit: i.assigned_unit.as_deref(), priority: i.priority, lon: i.lon, lat: i.lat }
    }
}

impl Reach {
    /// A user's reach, from their role and unit; `team_area` gives a team's post and the
    /// leader's radius in metres (`None` when the map has no such team or the radius is 0).
    pub fn of_user(
        role: Role,
        unit_id: Option<&str>,
        team_area: impl FnOnce(&str) -> Option<(Position, f64)>,
    ) -> Reach {
        match (role, unit_id) {
            (Role::Admin | Role::Operator, _) => Reach::County,
            (Role::PatrolLeader, Some(team)) => Reach::Team { team: Arc::from(team), area: team_area(team) },
            (Role::PostOfficer, Some(post)) => Reach::Post(Arc::from(post)),
            (Role::GridMember, Some(grid)) => Reach::Grid(Arc::from(grid)),
            (Role::Partner, _) => Reach::Partner,
            _ => Reach::Nothing,
        }
    }

    /// A phone's reach: its unit.
    pub fn of_device(unit_id: Option<&str>) -> Reach {
        unit_id.map_or(Reach::Nothing, |u| Reach::Unit(Arc::from(u)))
    }

    /// Whether the caller reads the whole county (and is recommended units to send).
    pub fn is_county(&self) -> bool {
        *self == Reach::County
    }

    /// The unit (team, post) whose devices, tasks and plans are the caller's own.
    pub fn unit(&self) -> Option<&str> {
        match self {
            Reach::Team { team: u, .. } | Reach::Post(u) | Reach::Unit(u) => Some(u),
            _ => None,
        }
    }

    /// Whether the caller sees the positions of a device of `unit` that is not a tagged
    /// person's phone (those follow [`position_read`]), and the plans of a team `unit`.
    pub fn sees_unit(&self, unit: Option<&str>) -> bool {
        match self {
            Reach::County => true,
            _ => self.unit().is_some_and(|own| unit == Some(own)),
        }
    }

    /// Whether a place is in a patrol leader's area; every other caller has no such
    /// bound (what they see is bounded by role or unit).
    pub fn in_area(&self, lon: f64, lat: f64) -> bool {
        match self {
            Reach::Team { area: Some((base, radius_m)), .. } => {
                Position::new(lon, lat).is_ok_and(|p| p.haversine_m(*base) <= *radius_m)
            }
            _ => true,
        }
    }

    /// Whether a caller of `role` sees an alert meant for `roles` at a place: named by
    /// it (administrators see every alert) and, for a patrol leader, within the area.
    pub fn sees_alert(&self, role: Role, roles: &[String], lon: f64, lat: f64) -> bool {
        sees_alert(role, roles) && self.in_area(lon, lat)
    }

    /// Whether the caller may see any incident at all (the live feed's replay reads the
    /// incidents' table only then).
    pub fn reads_incidents(&self) -> bool {
        *self != Reach::Nothing
    }

    /// Whether the caller sees an incident: the county; the incidents assigned to their
    /// unit; a leader's in the team's area, an officer's in the post's jurisdiction, a
    /// grid member's in their grid (by the map, `places`); the judicial office's of
    /// priority 1.
    pub fn sees_incident(&self, i: IncidentFacts<'_>, places: &Enricher) -> bool {
        let assigned = |u: &str| i.assigned_unit == Some(u);
        let place = || Position::new(i.lon, i.lat).ok().map(|p| places.enrich(p));
        match self {
            Reach::County => true,
            Reach::Partner => i.priority == 1,
            Reach::Team { team, area } => assigned(team) || (area.is_some() && self.in_area(i.lon, i.lat)),
            Reach::Post(post) => {
                assigned(post) || place().and_then(|e| e.jurisdiction).is_some_and(|j| places.post(j).0 == &**post)
            }
            Reach::Grid(grid) => {
                place().is_some_and(|e| places.view(&e, &[], &[]).grid.is_some_and(|g| g.id == &**grid))
            }
            Reach::Unit(unit) => assigned(unit),
            Reach::Nothing => false,
        }
    }
}

/// Whose records in the people list (`/api/v1/people`) a caller reads: their unit's
/// people (a patrol leader their team's members, a post officer their post's people),
/// the judicial office's people (a partner), only themself (a grid member, or a field
/// role's token without a unit), or everyone (operators and administrators).
#[derive(Debug, Clone, PartialEq)]
pub enum PeopleReach {
    All,
    /// The people belonging to one unit of the map: its kind (`team`, `post`) and id.
    Unit(&'static str, Arc<str>),
    /// The people of a kind of unit that is one of a kind (the judicial office).
    Kind(&'static str),
    /// The caller's own record, when the caller is a person.
    Only(Option<String>),
}

impl PeopleReach {
    /// Whose people `reach` covers, for a caller acting for `person_id`.
    pub fn of(reach: &Reach, person_id: Option<&str>) -> PeopleReach {
        match reach {
            Reach::County => PeopleReach::All,
            Reach::Team { team, .. } => PeopleReach::Unit("team", team.clone()),
            Reach::Post(post) => PeopleReach::Unit("post", post.clone()),
            Reach::Partner => PeopleReach::Kind("judicial_office"),
            Reach::Grid(_) | Reach::Unit(_) | Reach::Nothing => PeopleReach::Only(person_id.map(str::to_owned)),
        }
    }

    /// Whether a person (their unit's kind and id, their id) is in this reach.
    pub fn admits(&self, unit_kind: &str, unit_id: Option<&str>, person_id: &str) -> bool {
        match self {
            PeopleReach::All => true,
            PeopleReach::Unit(kind, id) => unit_kind == *kind && unit_id == Some(&**id),
            PeopleReach::Kind(kind) => unit_kind == *kind,
            PeopleReach::Only(own) => own.as_deref() == Some(person_id),
        }
    }

    /// Narrows a list's filter to this reach, so that the store pages over the caller's
    /// people only; false when the filter asks for a unit outside it (the answer is then
    /// empty). The caller's own record ([`PeopleReach::Only`]) is read by id instead.
    pub fn narrow(&self, f: &mut PeopleFilter) -> bool {
        fn to(field: &mut Option<String>, value: &str) -> bool {
            let fits = field.as_deref().is_none_or(|v| v == value);
            *field = Some(value.to_owned());
            fits
        }
        match self {
            PeopleReach::All | PeopleReach::Only(_) => true,
            PeopleReach::Unit(kind, id) => to(&mut f.unit_kind, kind) & to(&mut f.unit_id, id),
            PeopleReach::Kind(kind) => to(&mut f.unit_kind, kind),
        }
    }
}

/// Whether a person passes a list's filter (for a record read by id, as the store's
/// list would have filtered it).
pub fn passes(f: &PeopleFilter, p: &PersonRecord) -> bool {
    let eq = |want: &Option<String>, have: Option<&str>| want.as_deref().is_none_or(|w| have == Some(w));
    eq(&f.unit_id, p.unit_id.as_deref())
        && eq(&f.unit_kind, Some(&p.unit_kind))
        && f.role.as_ref().is_none_or(|r| p.roles.contains(r))
        && f.active.is_none_or(|a| a == p.active)
        && f.after.as_ref().is_none_or(|a| p.person_id > *a)
}

/// Watch-list ids of tagged persons: `tagged-{person_id}`. Who may see such an entry
/// and its hits is decided here; the sequencer and the watch-list API name entries by it.
pub const TAGGED_WATCH_PREFIX: &str = "tagged-";

/// Whether `role` may see an alert meant for `roles`.
pub fn sees_alert(role: Role, roles: &[String]) -> bool {
    role_entitled(role.as_str(), roles)
}

/// The tagged person an alert is about, if any: a `tagged_zone` alert, or a watch-list
/// hit on a tagged person's entry. Reads of such alerts are audited.
pub fn tagged_subject(a: &AlertRow) -> Option<String> {
    if a.rule != "tagged_zone" && a.rule != "watchlist_person" {
        return None;
    }
    subject_of(&a.rule, &a.payload)
}

/// The tagged person an alert's feed message (`{"type": "alert", "data": {"rule", …}}`)
/// is about, as [`tagged_subject`] says of its row; for the live feed, which holds the
/// message only. Most alerts are told apart without parsing: a message about a tagged
/// person names `tagged_zone` or a `tagged-` watch entry.
pub fn tagged_message_subject(message: &str) -> Option<String> {
    if !message.contains("tagged") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(message).ok()?;
    if v.get("type").and_then(serde_json::Value::as_str) != Some("alert") {
        return None;
    }
    let rule = v.pointer("/data/rule").and_then(serde_json::Value::as_str)?;
    if rule != "tagged_zone" && rule != "watchlist_person" {
        return None;
    }
    subject_of(rule, message)
}

fn subject_of(rule: &str, payload: &str) -> Option<String> {
    let message: serde_json::Value = serde_json::from_str(payload).ok()?;
    let data = message.get("data")?;
    let watched = data
        .pointer("/watch/id")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|id| id.starts_with(TAGGED_WATCH_PREFIX));
    if rule == "tagged_zone" {
        if let Some(p) = data.pointer("/person/person_id").and_then(serde_json::Value::as_str) {
            return Some(p.to_owned());
        }
    }
    if rule == "tagged_zone" || watched {
        return data.pointer("/read/value").and_then(serde_json::Value::as_str).map(str::to_owned);
    }
    None
}

/// Whether a caller of `role` with `reach` may read a tagged person's record and
/// sanctions (community correction): the roles on the record name the caller's
/// (administrators always), and a post officer reads only the persons of their own
/// post's jurisdiction (`post_id`; a person registered without one is no post's).
pub fn sees_tagged(role: Role, reach: &Reach, roles: &[String], post_id: Option<&str>) -> bool {
    role_entitled(role.as_str(), roles)
        && match (role, reach) {
            (Role::PostOfficer, Reach::Post(own)) => post_id == Some(&**own),
            (Role::PostOfficer, _) => false,
            _ => true,
        }
}

/// Whether a user (name, role) may see a device's positions, given its unit and the tagged person's
/// phone it is (if it is one), for the lists and history: `None` when hidden; otherwise
/// the audit entry of the read, which there is only for a tagged person's phone. A phone
/// is seen by the roles on the person's record; any other device by the whole-county
/// roles and by the leader or officer of its unit, not by partners, who see only the
/// phones entitled to them. `what` says what was read.
pub fn position_read(
    user: (&str, Role),
    reach: &Reach,
    device: (Option<&str>, Option<&crate::zones::TaggedPhone>),
    what: impl FnOnce() -> String,
    now_ms: i64,
) -> Option<Option<AuditEntry>> {
    let (name, role) = (user.0, user.1.as_str());
    let (unit, phone) = device;
    match phone {
        Some(p) if role_entitled(role, &p.roles) => {
            Some(Some(read_entry(name, role, "tagged_person_position_read", &p.person_id, &what(), now_ms)))
        }
        Some(_) => None,
        None => reach.sees_unit(unit).then_some(None),
    }
}

/// Whether a user (name, role) may read an image, from the records that name it: `None`
/// when hidden; otherwise the audit entries of the read, one for each tagged person it
/// shows. An image follows its records: the whole county reads any image, the others
/// those of an alert they see, of their own report (by its reporter) or of an incident in
/// their reach (an officer's feedback photo, a report's photo once it became an
/// incident). An image of an alert about a tagged person is seen only by the roles on the
/// person's record, whoever else would see it, and its read is audited.
pub fn image_read(
    user: (&str, Role),
    reach: &Reach,
    owners: &ImageOwners,
    places: &Enricher,
    what: &str,
    now_ms: i64,
) -> Option<Vec<AuditEntry>> {
    let (name, role) = user;
    let mut audit = Vec::new();
    for a in &owners.alerts {
        if let Some(subject) = tagged_subject(a) {
            if !sees_alert(role, &a.roles) {
                return None;
            }
            audit.push(read_entry(name, role.as_str(), "tagged_person_image_read", &subject, what, now_ms));
        }
    }
    let seen = reach.is_county()
        || owners.alerts.iter().any(|a| reach.sees_alert(role, &a.roles, a.lon, a.lat))
        || owners.reporters.iter().any(|r| r == name)
        || owners.incidents.iter().any(|i| reach.sees_incident(i.into(), places));
    seen.then_some(audit)
}

/// Whether a caller sees a home visit (上门办理): operators, administrators and the
/// judicial office (partner) every one; a post officer those in their post's
/// jurisdiction (`visit_post`); whoever it is assigned to (by person) their own. Its
/// photos are read by the same callers.
pub fn sees_home_visit(
    role: Role,
    unit_id: Option<&str>,
    person_id: Option<&str>,
    visit_post: Option<&str>,
    assignee_id: &str,
) -> bool {
    matches!(role, Role::Admin | Role::Operator | Role::Partner)
        || (role == Role::PostOfficer && unit_id.is_some() && unit_id == visit_post)
        || person_id == Some(assignee_id)
}

/// An audit entry for a read of a tagged person's data by `actor` (a user's name).
pub fn read_entry(actor: &str, role: &str, action: &str, subject: &str, what: &str, now_ms: i64) -> AuditEntry {
    AuditEntry {
        at_ms: now_ms,
        actor: actor.to_owned(),
        action: action.to_owned(),
        subject: subject.to_owned(),
        detail: format!("role {role}: {what}"),
    }
}

/// One audit entry for a read of several tagged persons' data in one request (a list),
/// with the persons it names (`Store::audit_reads` files it under each, so that "who
/// read person X" finds it); None when no person was read. The entry's own subject is
/// the person when there is one, `tagged_persons` otherwise, and its detail names the
/// first few.
pub fn reads_entry(
    actor: &str,
    role: &str,
    action: &str,
    subjects: &[String],
    what: &str,
    now_ms: i64,
) -> Option<(AuditEntry, Vec<String>)> {
    const NAMED_IN_DETAIL: usize = 20;
    let mut subjects = subjects.to_vec();
    subjects.sort();
    subjects.dedup();
    let subject = match subjects.as_slice() {
        [] => return None,
        [one] => one.clone(),
        _ => "tagged_persons".to_owned(),
    };
    let mut named = subjects.iter().take(NAMED_IN_DETAIL).cloned().collect::<Vec<_>>().join(", ");
    if subjects.len() > NAMED_IN_DETAIL {
        named.push_str(&format!(" and {} more", subjects.len() - NAMED_IN_DETAIL));
    }
    let what = format!("{what}: {} person(s): {named}", subjects.len());
    Some((read_entry(actor, role, action, &subject, &what, now_ms), subjects))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(rule: &str, data: serde_json::Value) -> AlertRow {
        AlertRow {
            seq: 7,
            rule: rule.into(),
            priority: 2,
            camera_id: None,
            event_seq: None,
            time_ms: 0,
            lon: 107.2,
            lat: 30.7,
            roles: vec!["partner".into()],
            payload: serde_json::json!({"type": "alert", "seq": 7, "data": data}).to_string(),
            township: None,
        }
    }

    #[test]
    fn each_role_and_unit_has_its_reach() {
        let base = Position::new(107.1, 30.7).unwrap();
        let area = |_: &str| Some((base, 8000.0));
        let rows = [
            (Role::Admin, Some("team-1"), Reach::County),
            (Role::Operator, None, Reach::County),
            (Role::PatrolLeader, Some("team-1"), Reach::Team { team: Arc::from("team-1"), area: Some((base, 8000.0)) }),
            (Role::PatrolLeader, None, Reach::Nothing),
            (Role::PostOfficer, Some("p-west"), Reach::Post(Arc::from("p-west"))),
            (Role::PostOfficer, None, Reach::Nothing),
            (Role::GridMember, Some("g-west"), Reach::Grid(Arc::from("g-west"))),
            (Role::GridMember, None, Reach::Nothing),
            (Role::Partner, None, Reach::Partner),
            (Role::Device, Some("team-1"), Reach::Nothing),
        ];
        for (role, unit, want) in rows {
            assert_eq!(Reach::of_user(role, unit, area), want, "{role:?} {unit:?}");
        }
        assert_eq!(Reach::of_device(Some("team-1")), Reach::Unit(Arc::from("team-1")));
        assert_eq!(Reach::of_device(None), Reach::Nothing);
    }

    #[test]
    fn units_and_incidents_in_each_reach() {
        // An empty map: no place is in a jurisdiction or grid, so only assignment,
        // distance and priority decide here (the places are tested over HTTP).
        let places = Enricher::new(&liandong_core::CountyMap::default());
        let team = Reach::Team { team: Arc::from("team-1"), area: Some((Position::new(107.1, 30.7).unwrap(), 8000.0)) };
        let incident = |unit: Option<&'static str>, priority: i64, lon: f64| IncidentFacts {
            assigned_unit: unit,
            priority,
            lon,
            lat: 30.7,
        };
        let near = incident(None, 2, 107.15); // 4.8 km from the team's post
        let far = incident(None, 2, 107.3); // 19 km
        let assigned_far = incident(Some("team-1"), 2, 107.3);
        let major_far = incident(None, 1, 107.3);
        let post_task = incident(Some("p-west"), 3, 107.3);
        let rows: [(&Reach, [bool; 5]); 7] = [
            (&Reach::County, [true, true, true, true, true]),
            (&team, [true, false, true, false, false]),
            (&Reach::Post(Arc::from("p-west")), [false, false, false, false, true]),
            (&Reach::Grid(Arc::from("g-west")), [false, false, false, false, false]),
            (&Reach::Partner, [false, false, false, true, false]),
            (&Reach::Unit(Arc::from("team-1")), [false, false, true, false, false]),
            (&Reach::Nothing, [false, false, false, false, false]),
        ];
        for (reach, want) in rows {
            let got = [near, far, assigned_far, major_far, post_task].map(|i| reach.sees_incident(i, &places));
            assert_eq!(got, want, "{reach:?}");
        }
        for (reach, unit, want) in [
            (&Reach::County, None, true),
            (&team, Some("team-1"), true),
            (&team, Some("team-2"), false),
            (&team, None, false),
            (&Reach::Post(Arc::from("p-west")), Some("p-west"), true),
            (&Reach::Grid(Arc::from("g-west")), Some("g-west"), false),
            (&Reach::Partner, None, false),
        ] {
            assert_eq!(reach.sees_unit(unit), want, "{reach:?} {unit:?}");
        }
        let named = vec!["patrol_leader".to_owned()];
        assert!(team.sees_alert(Role::PatrolLeader, &named, 107.15, 30.7), "inside the area");
        assert!(!team.sees_alert(Role::PatrolLeader, &named, 107.3, 30.7), "beyond it");
        assert!(!team.sees_alert(Role::PatrolLeader, &["operator".to_owned()], 107.15, 30.7), "not named");
    }

    #[test]
    fn an_image_follows_its_records_and_a_tagged_persons_only_its_roles() {
        let places = Enricher::new(&liandong_core::CountyMap::default());
        let hit = alert("watchlist_person", serde_json::json!({"watch": {"id": "tagged-p2"}, "read": {"value": "p2"}}));
        let tagged = ImageOwners { alerts: vec![hit], ..ImageOwners::default() };
        let report = ImageOwners { reporters: vec!["grid-7".into()], ..ImageOwners::default() };
        let grid = Reach::Grid(Arc::from("g-west"));
        let read = |name: &str, role: Role, reach: &Reach, owners: &ImageOwners| {
            image_read((name, role), reach, owners, &places, "image x.jpg", 5).map(|a| a.len())
        };
        assert_eq!(read("op", Role::Operator, &Reach::County, &tagged), None, "not on the record");
        assert_eq!(read("admin", Role::Admin, &Reach::County, &tagged), Some(1), "audited");
        assert_eq!(read("mediator", Role::Partner, &Reach::Partner, &tagged), Some(1), "on the record: audited");
        assert_eq!(read("op", Role::Operator, &Reach::County, &report), Some(0), "the county, unaudited");
        assert_eq!(read("grid-7", Role::GridMember, &grid, &report), Some(0), "their own report");
        assert_eq!(read("grid-8", Role::GridMember, &grid, &report), None, "another's");
        assert_eq!(read("op", Role::Operator, &Reach::County, &ImageOwners::default()), Some(0));
        assert_eq!(read("grid-7", Role::GridMember, &grid, &ImageOwners::default()), None, "named by nothing");
    }

    #[test]
    fn each_reach_has_its_people() {
        let team = Reach::Team { team: Arc::from("team-1"), area: None };
        let rows = [
            (PeopleReach::of(&Reach::County, None), [true, true, true, true]),
            (PeopleReach::of(&team, Some("a")), [true, false, false, false]),
            (PeopleReach::of(&Reach::Post(Arc::from("team-1")), Some("a")), [false, false, false, false]),
            (PeopleReach::of(&Reach::Partner, Some("m")), [false, false, true, false]),
            (PeopleReach::of(&Reach::Grid(Arc::from("g")), Some("g1")), [false, false, false, true]),
            (PeopleReach::of(&Reach::Nothing, None), [false, false, false, false]),
        ];
        // A member of team-1, of team-2, the judicial office, and grid member g1.
        let people = [
            ("team", Some("team-1"), "a"),
            ("team", Some("team-2"), "b"),
            ("judicial_office", None, "m"),
            ("grid", Some("g"), "g1"),
        ];
        for (reach, want) in rows {
            let got = people.map(|(kind, unit, id)| reach.admits(kind, unit, id));
            assert_eq!(got, want, "{reach:?}");
        }
        let mut f = PeopleFilter { unit_id: Some("team-2".into()), ..PeopleFilter::default() };
        assert!(!PeopleReach::of(&team, None).narrow(&mut f), "another team asked for: no one");
        let mut f = PeopleFilter::default();
        assert!(PeopleReach::of(&team, None).narrow(&mut f));
        assert_eq!((f.unit_kind.as_deref(), f.unit_id.as_deref()), (Some("team"), Some("team-1")));
    }

    #[test]
    fn a_tagged_person_is_read_by_the_roles_on_the_record_and_a_post_officer_of_its_post() {
        let named = ["partner".to_owned(), "post_officer".to_owned(), "operator".to_owned()];
        let west = Reach::Post(Arc::from("p-west"));
        let rows = [
            (Role::Admin, &Reach::County, &[][..], None, true),
            (Role::Operator, &Reach::County, &named[..], None, true),
            (Role::Operator, &Reach::County, &named[..1], Some("p-west"), false),
            (Role::Partner, &Reach::Partner, &named[..], Some("p-west"), true),
            (Role::Partner, &Reach::Partner, &named[1..], Some("p-west"), false),
            (Role::PostOfficer, &west, &named[..], Some("p-west"), true),
            (Role::PostOfficer, &west, &named[..], Some("p-east"), false),
            (Role::PostOfficer, &west, &named[..], None, false),
            (Role::PostOfficer, &Reach::Nothing, &named[..], Some("p-west"), false),
            (Role::PostOfficer, &west, &named[..1], Some("p-west"), false),
            (Role::GridMember, &Reach::Grid(Arc::from("g")), &named[..], Some("p-west"), false),
        ];
        for (role, reach, roles, post, want) in rows {
            assert_eq!(sees_tagged(role, reach, roles, post), want, "{role:?} {reach:?} {roles:?} {post:?}");
        }
    }

    #[test]
    fn roles_and_administrators() {
        let partner_only = vec!["partner".to_owned()];
        assert!(sees_alert(Role::Partner, &partner_only));
        assert!(sees_alert(Role::Admin, &partner_only), "administrators maintain the records");
        for r in [Role::Operator, Role::PatrolLeader, Role::PostOfficer, Role::GridMember, Role::Device] {
            assert!(!sees_alert(r, &partner_only), "{r:?}");
        }
        assert!(!role_entitled("operator", &[]));
    }

    #[test]
    fn the_subject_of_an_alert_about_a_tagged_person() {
        let rows = [
            (alert("tagged_zone", serde_json::json!({"person": {"person_id": "p1"}})), Some("p1")),
            (
                alert(
                    "watchlist_person",
                    serde_json::json!({"watch": {"id": "tagged-p2"}, "read": {"kind": "person", "value": "p2"}}),
                ),
                Some("p2"),
            ),
            (
                alert(
                    "watchlist_person",
                    serde_json::json!({"watch": {"id": "w-9"}, "read": {"kind": "person", "value": "x"}}),
                ),
                None,
            ),
            (alert("watchlist_plate", serde_json::json!({"watch": {"id": "tagged-p3"}})), None),
            (alert("stale_unit", serde_json::json!({})), None),
        ];
        for (a, want) in rows {
            assert_eq!(tagged_subject(&a).as_deref(), want, "{}", a.payload);
            let message = serde_json::json!({"type": "alert", "seq": 7, "data": {"rule": a.rule,
                "person": serde_json::from_str::<serde_json::Value>(&a.payload).unwrap()["data"]["person"],
                "watch": serde_json::from_str::<serde_json::Value>(&a.payload).unwrap()["data"]["watch"],
                "read": serde_json::from_str::<serde_json::Value>(&a.payload).unwrap()["data"]["read"]}});
            assert_eq!(tagged_message_subject(&message.to_string()).as_deref(), want, "{message}");
        }
        let ack =
            serde_json::json!({"type": "alert_ack", "data": {"rule": "tagged_zone", "person": {"person_id": "p1"}}});
        assert_eq!(tagged_message_subject(&ack.to_string()), None, "an acknowledgement names no one's place");
    }
}
