//! The store's vocabulary: every row either backend writes or answers, read by column
//! name (`sqlx::FromRow`), so that one type reads the same columns from SQLite and from
//! PostgreSQL. A column whose Rust type differs from what both databases hand back says
//! how it is read: JSON columns (`TEXT` on SQLite, `jsonb` on PostgreSQL) through
//! `#[sqlx(json)]`, flags through `i64`, a datum through [`DatumText`]. Reports, read by
//! the ten thousand, have a reader of their own that is as cheap as reading by position.

pub use liandong_core::incident::State as IncidentState;
use serde::{Deserialize, Serialize};

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fsync at every commit: survives power loss.
    #[default]
    Full,
    /// WAL without fsync at commit: survives a process crash, not a power loss.
    Normal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct DeviceRecord {
    pub device_id: String,
    pub name: String,
    pub kind: String,
    pub unit_id: Option<String>,
    #[serde(skip_serializing)]
    pub key: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// The person the device's key acts for, an active person when bound; None for a
    /// shared or unbound device.
    #[serde(default)]
    pub person_id: Option<String>,
}

/// Someone who uses the system. Never deleted: deactivated, so that history keeps
/// naming them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct PersonRecord {
    pub person_id: String,
    pub name: String,
    pub phone: Option<String>,
    /// The server's role names, never empty, sorted.
    #[sqlx(json)]
    pub roles: Vec<String>,
    /// What the person belongs to: post, team, grid, judicial_office or command_centre.
    pub unit_kind: String,
    /// The post, patrol team or village grid; None for the judicial office and the
    /// command centre.
    pub unit_id: Option<String>,
    pub active: bool,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// Which people a list shows: all matching filters, ordered by id, after a cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeopleFilter {
    pub unit_id: Option<String>,
    /// Only people belonging to this kind of unit (post, team, grid, judicial_office,
    /// command_centre): with `unit_id`, one unit exactly, whatever other kind shares its id.
    pub unit_kind: Option<String>,
    pub role: Option<String>,
    pub active: Option<bool>,
    /// Only ids after this one (the previous page's last).
    pub after: Option<String>,
    pub limit: u32,
}

/// A shift handover sheet (交接班): prepared by the server for a unit and a shift, signed
/// by the outgoing person, then accepted by the incoming one. Never deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct HandoverRow {
    /// Assigned by the store on insert (0 before).
    pub handover_id: i64,
    /// `command_centre` or `post`.
    pub unit_kind: String,
    /// The post; None for the command centre.
    pub unit_id: Option<String>,
    pub from_ms: i64,
    pub to_ms: i64,
    pub outgoing_person_id: String,
    pub incoming_person_id: String,
    /// The sheet as prepared, a JSON object the server builds; never changed afterwards.
    #[sqlx(json)]
    pub sheet: serde_json::Value,
    pub prepared_ms: i64,
    pub signed_ms: Option<i64>,
    pub signed_by: Option<String>,
    pub sign_note: Option<String>,
    pub accepted_ms: Option<i64>,
    pub accepted_by: Option<String>,
    pub accept_note: Option<String>,
}

impl HandoverRow {
    /// `prepared`, `signed` or `accepted`: how far the handover has gone.
    pub fn state(&self) -> &'static str {
        match (self.signed_ms, self.accepted_ms) {
            (_, Some(_)) => "accepted",
            (Some(_), None) => "signed",
            (None, None) => "prepared",
        }
    }
}

/// Which handovers a list shows: those matching every filter, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandoverFilter {
    pub unit_kind: Option<String>,
    pub unit_id: Option<String>,
    /// `prepared` (not signed), `signed` (not accepted) or `accepted`.
    pub state: Option<String>,
    /// Only those naming this person, outgoing or incoming.
    pub person_id: Option<String>,
    /// Only ids below this one (the previous page's last).
    pub before: Option<i64>,
    pub limit: u32,
}

/// A signed-in session, kept by the hash of its token (the token itself is never
/// stored). It ends at `expires_ms`, which renewal pushes on up to `max_expires_ms`, or
/// when `revoked_ms` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct SessionRow {
    #[serde(skip_serializing)]
    pub token_hash: String,
    pub person_id: String,
    /// The role chosen at sign-in.
    pub role: String,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub max_expires_ms: i64,
    pub last_used_ms: i64,
    pub revoked_ms: Option<i64>,
    /// `password` or `code`: how the session was opened.
    pub kind: String,
    pub user_agent: Option<String>,
}

/// A one-time sign-in code, kept by its hash: good once, until `expires_ms`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SignInCode {
    pub code_hash: String,
    pub person_id: String,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub used_ms: Option<i64>,
}

/// One accepted report, ready to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionRow {
    pub seq: i64,
    pub device_id: String,
    pub fix_ms: i64,
    pub recv_ms: i64,
    pub lon: f64,
    pub lat: f64,
    pub datum: &'static str,
    pub speed_mps: Option<f64>,
    pub course_deg: Option<f64>,
    pub altitude_m: Option<f64>,
    pub accuracy_m: Option<f64>,
    pub battery_pct: Option<f64>,
    pub flags: u32,
    pub attributes: String,
    pub enrichment: String,
}

/// Reads a report by column name, like the derived readers, but looks for each column
/// first where `positions`' declaration puts it (after `seq`, wherever that stands):
/// comparing one name is much cheaper than the name lookup the derive does for every
/// column of every row. Reports are the rows read by the ten thousand (a replay, a
/// track): measured on a debug build, the derived reader made a replay of 20,000
/// reports in pages of 256 about 45 % slower (some 340 ms against 235 ms) and the
/// server's replay test flaky; this one is within noise of the positional reader it
/// replaced.
impl<'r, R> sqlx::FromRow<'r, R> for PositionRow
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    f64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    DatumText: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<PositionRow, sqlx::Error> {
        use sqlx::Column;
        let columns = row.columns();
        let find = |name: &str| columns.iter().position(|c| c.name() == name);
        let start = find("seq").unwrap_or(0);
        let at = |expected: usize, name: &str| -> Result<usize, sqlx::Error> {
            match columns.get(start + expected) {
                Some(c) if c.name() == name => Ok(start + expected),
                _ => find(name).ok_or_else(|| sqlx::Error::ColumnNotFound(name.into())),
            }
        };
        let flags: i64 = row.try_get(at(12, "flags")?)?;
        Ok(PositionRow {
            seq: row.try_get(at(0, "seq")?)?,
            device_id: row.try_get(at(1, "device_id")?)?,
            fix_ms: row.try_get(at(2, "fix_ms")?)?,
            recv_ms: row.try_get(at(3, "recv_ms")?)?,
            lon: row.try_get(at(4, "lon")?)?,
            lat: row.try_get(at(5, "lat")?)?,
            datum: row.try_get::<DatumText, _>(at(6, "datum")?)?.into(),
            speed_mps: row.try_get(at(7, "speed_mps")?)?,
            course_deg: row.try_get(at(8, "course_deg")?)?,
            altitude_m: row.try_get(at(9, "altitude_m")?)?,
            accuracy_m: row.try_get(at(10, "accuracy_m")?)?,
            battery_pct: row.try_get(at(11, "battery_pct")?)?,
            // Both databases store the bit set as a 64-bit integer.
            flags: u32::try_from(flags)
                .map_err(|e| sqlx::Error::ColumnDecode { index: "flags".into(), source: Box::new(e) })?,
            attributes: row.try_get(at(13, "attributes")?)?,
            enrichment: row.try_get(at(14, "enrichment")?)?,
        })
    }
}

/// A datum as stored, read back as one of the names a report may carry.
#[derive(sqlx::Type)]
#[sqlx(transparent)]
pub struct DatumText(String);

/// Anything but the two Chinese datums reads back as WGS 84.
impl From<DatumText> for &'static str {
    fn from(d: DatumText) -> &'static str {
        match d.0.as_str() {
            "gcj02" => "gcj02",
            "bd09" => "bd09",
            _ => "wgs84",
        }
    }
}

/// A point of a track as history draws it: only what a track view sends, so that
/// reading a long track never holds the reports' attributes and enrichment.
#[derive(Debug, Clone, Copy, PartialEq, sqlx::FromRow)]
pub struct TrackPoint {
    pub seq: i64,
    pub fix_ms: i64,
    pub lon: f64,
    pub lat: f64,
}

/// The report stored for a device's fix time, as its acknowledgement named it: a fix
/// sent again is answered with these and not stored twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixAck {
    pub device_id: String,
    pub fix_ms: i64,
    pub seq: i64,
    pub flags: u32,
}

/// What one round of retention removed ([`Store::prune_before`](crate::Store::prune_before)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// The monthly partitions dropped, oldest first (PostgreSQL; none on SQLite).
    pub partitions: Vec<String>,
    /// Rows deleted one by one: SQLite's batches, PostgreSQL's default partitions.
    pub rows_deleted: u64,
    /// Last reports of devices kept out of a dropped month (the live state refers to
    /// them).
    pub reports_kept: u64,
    /// Whether a month was left because its table stayed locked past the lock timeout:
    /// the next round drops it.
    pub busy: bool,
    /// The months wholly before the cutoff left for the next round because their table
    /// stayed busy: the busy one and the later ones of its table, oldest first
    /// (PostgreSQL; none on SQLite).
    pub left: Vec<String>,
}

/// A fix kept in the live state: `(time_ms, lon, lat)`.
pub type StoredFix = (i64, f64, f64);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMembership {
    pub fence: String,
    pub since_ms: i64,
    pub dwell_fired: bool,
}

/// A device's live state as persisted.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceStateRow {
    pub device_id: String,
    /// Sequence number of the device's last report (0 if none is in order yet).
    pub seq: i64,
    pub trusted: Option<StoredFix>,
    pub marked: Option<StoredFix>,
    pub fences: Vec<StoredMembership>,
}

/// The columns of `device_state` as selected beside the device's last report: the
/// state's own number and id are renamed so that the report keeps `seq` and
/// `device_id`.
#[derive(sqlx::FromRow)]
pub(crate) struct StateColumns {
    state_device_id: String,
    state_seq: i64,
    trusted_ms: Option<i64>,
    trusted_lon: Option<f64>,
    trusted_lat: Option<f64>,
    marked_ms: Option<i64>,
    marked_lon: Option<f64>,
    marked_lat: Option<f64>,
    #[sqlx(json)]
    fences: Vec<StoredMembership>,
}

/// What [`StateColumns`] selects from `device_state d`.
pub(crate) const STATE_COLUMNS: &str = "d.device_id AS state_device_id, d.seq AS state_seq, d.trusted_ms, \
     d.trusted_lon, d.trusted_lat, d.marked_ms, d.marked_lon, d.marked_lat, d.fences";

impl From<StateColumns> for DeviceStateRow {
    fn from(c: StateColumns) -> DeviceStateRow {
        let fix = |t: Option<i64>, lon: Option<f64>, lat: Option<f64>| Some((t?, lon?, lat?));
        DeviceStateRow {
            device_id: c.state_device_id,
            seq: c.state_seq,
            trusted: fix(c.trusted_ms, c.trusted_lon, c.trusted_lat),
            marked: fix(c.marked_ms, c.marked_lon, c.marked_lat),
            fences: c.fences,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct CameraRecord {
    pub camera_id: String,
    pub name: String,
    pub kind: String,
    pub lon: f64,
    pub lat: f64,
    #[serde(skip_serializing)]
    pub key: String,
    pub updated_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct WatchRecord {
    pub watch_id: String,
    /// `plate` or `person`.
    pub kind: String,
    /// The normalised plate, or the person id.
    pub value: String,
    pub reason: String,
    /// 1 (highest) to 5.
    pub priority: i64,
    pub valid_from: Option<i64>,
    pub valid_to: Option<i64>,
    /// Roles that may see hits of this entry.
    #[sqlx(json)]
    pub roles: Vec<String>,
    pub updated_ms: i64,
}

/// One camera push as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraEventRow {
    pub seq: i64,
    pub camera_id: String,
    pub event_type: String,
    pub kind: &'static str,
    pub active: bool,
    pub active_post_count: Option<i64>,
    pub time_ms: i64,
    pub recv_ms: i64,
    pub plate: Option<String>,
    pub person_id: Option<String>,
    pub payload: String,
}

/// The records that name an image (by its URL), by which a read of it is decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageOwners {
    /// Alerts whose message names it: a camera's snapshot of a watch-list hit, a grid
    /// report's photo.
    pub alerts: Vec<AlertRow>,
    /// The reporters of the grid reports it is a photo of.
    pub reporters: Vec<String>,
    /// The incidents it belongs to: one of their steps sent it (an officer's feedback),
    /// or they were opened from one of the alerts above.
    pub incidents: Vec<IncidentRow>,
}

/// One alert as stored and pushed.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AlertRow {
    pub seq: i64,
    pub rule: String,
    pub priority: i64,
    pub camera_id: Option<String>,
    pub event_seq: Option<i64>,
    pub time_ms: i64,
    pub lon: f64,
    pub lat: f64,
    #[sqlx(json)]
    pub roles: Vec<String>,
    pub payload: String,
    /// The township of the alert's place, for statistics.
    pub township: Option<String>,
}

/// What statistics need of an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct AlertFact {
    pub seq: i64,
    pub rule: String,
    pub priority: i64,
    pub township: Option<String>,
    pub time_ms: i64,
    /// The roles that may see the alert: statistics count, for each caller, only these.
    #[sqlx(json)]
    pub roles: Vec<String>,
}

/// One read of a plate or a face by a camera.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct SightingRow {
    pub event_seq: i64,
    pub camera_id: String,
    pub time_ms: i64,
}

/// One acknowledgement of an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct AlertAckRow {
    pub seq: i64,
    pub alert_seq: i64,
    /// Who acknowledged (the user's name).
    pub actor: String,
    pub at_ms: i64,
    pub note: String,
    /// The alert's place and the roles that see it, for the feed's filters.
    pub lon: f64,
    pub lat: f64,
    #[sqlx(json)]
    pub roles: Vec<String>,
    /// The message as pushed on the live feed (JSON).
    pub payload: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct IncidentRow {
    pub incident_id: i64,
    pub title: String,
    pub priority: i64,
    #[sqlx(try_from = "String")]
    pub state: IncidentState,
    pub lon: f64,
    pub lat: f64,
    pub alert_seq: Option<i64>,
    pub assigned_device: Option<String>,
    pub assigned_unit: Option<String>,
    pub created_ms: i64,
    pub state_since_ms: i64,
    pub escalation: String,
    /// What it is about: the alert's rule, the report's category, or the operator's word.
    pub kind: String,
    /// The township of its place (None outside every township).
    pub township: Option<String>,
}

/// A step of an incident's life cycle. Read by hand (by column name) rather than derived,
/// because its `from_state` is an optional state that sqlx cannot convert on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentEventRow {
    pub seq: i64,
    pub incident_id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub from_state: Option<IncidentState>,
    pub to_state: IncidentState,
    pub note: String,
    pub lon: f64,
    pub lat: f64,
    pub unit_id: Option<String>,
    #[serde(skip)]
    pub payload: String,
    /// URLs of the photos the step sent (an officer's feedback), else empty.
    #[serde(default)]
    pub photo_urls: Vec<String>,
}

impl<'r, R> sqlx::FromRow<'r, R> for IncidentEventRow
where
    R: sqlx::Row,
    &'r str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    f64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    sqlx::types::Json<Vec<String>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<IncidentEventRow, sqlx::Error> {
        let state = |column: &str, name: String| {
            IncidentState::try_from(name)
                .map_err(|reason| sqlx::Error::ColumnDecode { index: column.to_owned(), source: reason.into() })
        };
        let from_state: Option<String> = row.try_get("from_state")?;
        Ok(IncidentEventRow {
            seq: row.try_get("seq")?,
            incident_id: row.try_get("incident_id")?,
            at_ms: row.try_get("at_ms")?,
            actor: row.try_get("actor")?,
            action: row.try_get("action")?,
            from_state: from_state.map(|s| state("from_state", s)).transpose()?,
            to_state: state("to_state", row.try_get("to_state")?)?,
            note: row.try_get("note")?,
            lon: row.try_get("lon")?,
            lat: row.try_get("lat")?,
            unit_id: row.try_get("unit_id")?,
            payload: row.try_get("payload")?,
            photo_urls: row.try_get::<sqlx::types::Json<Vec<String>>, _>("photo_urls")?.0,
        })
    }
}

/// An incident's milestones, for response-time statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct IncidentFacts {
    pub incident_id: i64,
    pub kind: String,
    pub township: Option<String>,
    pub priority: i64,
    #[sqlx(try_from = "String")]
    pub state: IncidentState,
    pub created_ms: i64,
    /// The first dispatch, sign-for (签收), arrival on scene and close, when they happened.
    pub dispatched_ms: Option<i64>,
    pub signed_ms: Option<i64>,
    pub on_scene_ms: Option<i64>,
    pub closed_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct GridReport {
    /// The sequence number of the alert that put the report on the live feed; a
    /// dispute's mediation case has the same number.
    pub report_id: i64,
    pub reporter: String,
    pub category: String,
    pub text: String,
    pub lon: f64,
    pub lat: f64,
    pub time_ms: i64,
    pub recv_ms: i64,
    #[sqlx(json)]
    pub enrichment: serde_json::Value,
    pub photos: i64,
    pub status: String,
    /// URLs of the stored photos.
    #[serde(default)]
    #[sqlx(json)]
    pub photo_urls: Vec<String>,
}

/// A grid member's own report and what became of it: its review, the incident it became
/// or joined with that incident's state now, and its mediation case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct OwnReport {
    pub report_id: i64,
    pub time_ms: i64,
    pub category: String,
    pub text: String,
    pub lon: f64,
    pub lat: f64,
    #[sqlx(json)]
    pub photo_urls: Vec<String>,
    /// `new`, `accepted`, `merged` or `rejected`.
    pub status: String,
    /// The review's note: a rejection's reason.
    pub status_note: Option<String>,
    /// The incident the report became (accepted) or joined (merged).
    pub incident_id: Option<i64>,
    /// That incident's state now (a stored state name: `on_scene`, `closed`, …).
    pub incident_state: Option<String>,
    /// The mediation case a dispute opened (numbered as the report), its status
    /// (`pending` or `mediated`) and, once mediated, its outcome and success.
    pub case_id: Option<i64>,
    pub case_status: Option<String>,
    pub case_outcome: Option<String>,
    pub case_success: Option<bool>,
}

/// A party to a dispute: a name and, when given, a phone number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub name: String,
    pub phone: Option<String>,
}

/// A case of the joint mediation centre (三调融合), from whichever source: a grid
/// member's dispute (numbered as the report), an incident sent to mediation or a walk-in
/// (numbered as the `mediation_case` alert that announced it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct MediationCase {
    pub case_id: i64,
    /// `grid_report`, `incident` or `walk_in`.
    pub source: String,
    pub report_id: Option<i64>,
    pub incident_id: Option<i64>,
    /// `neighbour`, `family`, `land`, `labour`, `consumer`, `traffic`, `property`, `other`.
    pub dispute_type: String,
    pub summary: String,
    #[sqlx(json)]
    pub parties: Vec<Party>,
    pub lon: f64,
    pub lat: f64,
    /// Township, grid and post of the place.
    #[sqlx(json)]
    pub place: serde_json::Value,
    pub filed_by: String,
    pub opened_ms: i64,
    /// `pending`, `accepted`, `mediated`, `followed_up` or `declined`.
    pub status: String,
    /// The mediator (a person with role partner) and the venue, once accepted.
    pub mediator_id: Option<String>,
    pub venue_id: Option<String>,
    pub accepted_ms: Option<i64>,
    pub accepted_by: Option<String>,
    pub declined_reason: Option<String>,
    pub mediation_type: Option<String>,
    pub outcome: Option<String>,
    /// A boolean on PostgreSQL, 0 or 1 on SQLite; sqlx reads both as `bool`.
    pub success: Option<bool>,
    /// When the outcome was recorded (or the case declined), and by whom.
    pub closed_ms: Option<i64>,
    pub closed_by: Option<String>,
    pub follow_up_due_ms: Option<i64>,
    pub followed_up_ms: Option<i64>,
    pub follow_up_note: Option<String>,
    pub followed_up_by: Option<String>,
}

impl MediationCase {
    /// The case a grid member's dispute opens, numbered as the report: its text, place
    /// and reporter, of no known type yet.
    pub fn of_report(r: &GridReport) -> MediationCase {
        MediationCase {
            case_id: r.report_id,
            source: "grid_report".into(),
            report_id: Some(r.report_id),
            incident_id: None,
            dispute_type: "other".into(),
            summary: r.text.clone(),
            parties: Vec::new(),
            lon: r.lon,
            lat: r.lat,
            place: r.enrichment.clone(),
            filed_by: r.reporter.clone(),
            opened_ms: r.recv_ms,
            status: "pending".into(),
            mediator_id: None,
            venue_id: None,
            accepted_ms: None,
            accepted_by: None,
            declined_reason: None,
            mediation_type: None,
            outcome: None,
            success: None,
            closed_ms: None,
            closed_by: None,
            follow_up_due_ms: None,
            followed_up_ms: None,
            follow_up_note: None,
            followed_up_by: None,
        }
    }
}

/// Which cases a list reads: every filter given, case ids below `before`, newest first.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub status: Option<String>,
    pub source: Option<String>,
    pub mediator_id: Option<String>,
    pub incident_id: Option<i64>,
    pub before: Option<i64>,
    pub limit: u32,
}

/// One mediation session of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct MediationSession {
    pub case_id: i64,
    pub session_no: i64,
    pub starts_ms: i64,
    pub venue_id: Option<String>,
    pub place: Option<String>,
    pub note: String,
    pub recorded_by: String,
    pub recorded_ms: i64,
}

/// The outcome of a mediation as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseOutcome<'a> {
    pub mediation_type: &'a str,
    pub outcome: &'a str,
    pub success: bool,
    pub by: &'a str,
    pub at_ms: i64,
    /// When the follow-up is due.
    pub follow_up_due_ms: Option<i64>,
}

/// A step of a case escalated as late (`accept`, `resolve`, `follow_up`), written with
/// its `mediation_overdue` alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct CaseOverdueRow {
    pub case_id: i64,
    pub step: String,
    pub alert_seq: i64,
    pub due_ms: i64,
}

/// A criminal incident that touched a dispute (民转刑), by `party` or `place`, written
/// with its `dispute_turned_criminal` alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct DisputeLinkRow {
    pub incident_id: i64,
    pub case_id: i64,
    pub reason: String,
    pub alert_seq: i64,
    pub linked_ms: i64,
}

/// Counts for the centre's report: disputes (cases of every source), mediated (with an
/// outcome, followed up or not), successful.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediationStats {
    pub disputes: i64,
    pub pending: i64,
    pub mediated: i64,
    pub successful: i64,
    /// Successful / mediated, None before the first outcome.
    pub success_rate: Option<f64>,
    /// Mediated cases by type (people, judicial, administrative).
    pub by_type: Vec<(String, i64)>,
    /// Reports by category.
    pub reports_by_category: Vec<(String, i64)>,
}

/// One version of a team's route plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct RoutePlanRow {
    pub plan_seq: i64,
    pub team_id: String,
    pub version: i64,
    /// `plan`, `diversion` or `manual`.
    pub kind: String,
    pub reason: String,
    pub created_ms: i64,
    pub created_by: String,
    /// The plan as JSON text: geometry, waypoints with planned times, coverage.
    #[serde(skip)]
    pub plan: String,
    /// Where the plan starts, for the feed's viewport filter.
    pub lon: f64,
    pub lat: f64,
    /// `pending`, `acknowledged` or `superseded`.
    pub status: String,
    pub acked_ms: Option<i64>,
    pub acked_by: Option<String>,
    /// `none`, `post_leader` or `command_centre`.
    pub escalation: String,
}

/// One change of a plan, in the global sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct RouteEventRow {
    pub seq: i64,
    pub plan_seq: i64,
    pub team_id: String,
    pub at_ms: i64,
    pub actor: String,
    /// `push`, `ack`, `supersede` or `escalate`.
    pub action: String,
    pub lon: f64,
    pub lat: f64,
    #[serde(skip)]
    pub payload: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct TaggedPerson {
    pub person_id: String,
    pub name: String,
    pub category: String,
    pub note: String,
    #[sqlx(json)]
    pub roles: Vec<String>,
    pub updated_ms: i64,
    /// The person's monitoring phone, a registered device, if they carry one.
    #[serde(default)]
    pub device_id: Option<String>,
    /// Zones the person may not be in at given hours (a JSON array the server
    /// validates: `{"fence_kind"|"fence_id", "from", "to"}`).
    #[serde(default = "empty_array")]
    #[sqlx(json)]
    pub zone_rules: serde_json::Value,
    /// The post whose jurisdiction the person lives in (community correction: that
    /// post's officers keep the record); None for persons registered before posts were.
    #[serde(default)]
    pub post_id: Option<String>,
}

/// A sanction the police decided about a tagged person (community correction): an
/// administrative penalty, detention, a case filed. Recorded, never changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct SanctionRow {
    pub sanction_id: i64,
    pub person_id: String,
    /// One of [`SANCTION_KINDS`].
    pub kind: String,
    pub decided_ms: i64,
    /// Who decided (a public security bureau, a court).
    pub authority: String,
    pub note: String,
    pub recorded_by: String,
    pub recorded_ms: i64,
}

/// The kinds of sanction: 治安处罚, 强制隔离戒毒, 行政拘留, 立案侦查, 刑事拘留.
pub const SANCTION_KINDS: [&str; 5] = [
    "public_security_penalty",
    "compulsory_isolation_detox",
    "administrative_detention",
    "case_filed",
    "criminal_detention",
];

fn empty_array() -> serde_json::Value {
    serde_json::Value::Array(Vec::new())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
}

/// An image to store: its name (as the server makes it) and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRow {
    pub name: String,
    pub stored_ms: i64,
    pub bytes: Vec<u8>,
}

/// When an image was stored, from its name; `None` for any other name.
pub fn image_stamp_ms(name: &str) -> Option<i64> {
    let (stamp, rest) = name.split_once('-')?;
    if !rest.ends_with(".jpg") || stamp.is_empty() || !stamp.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stamp.parse().ok()
}

/// Fixes the jump filter marked (a GPS jump, a poor accuracy) are left out of history:
/// they did not move the unit when they arrived, and they do not move it in replay.
/// Out-of-order fixes (a phone uploading what it buffered offline) are real places and
/// stay in. Fixes dated ahead of the server's clock (16) are left out too: their time is
/// wrong, so their moment in history is unknown; and mock locations (32), whose place an
/// app on the phone made up.
pub const HISTORY_EXCLUDED_FLAGS: u32 = 1 | 2 | 16 | 32;

/// A lon/lat rectangle, degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bbox {
    pub min_lon: f64,
    pub min_lat: f64,
    pub max_lon: f64,
    pub max_lat: f64,
}

impl Bbox {
    /// The whole world: no spatial filter.
    pub const ALL: Bbox = Bbox { min_lon: -180.0, min_lat: -90.0, max_lon: 180.0, max_lat: 90.0 };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_carry_their_time() {
        let rows = [
            ("1795777449608-abc123def456-0.jpg", Some(1_795_777_449_608)),
            ("1795777449608-x-12.jpg", Some(1_795_777_449_608)),
            ("1795777449608-x-0.png", None),
            ("evidence.jpg", None),
            ("-x-0.jpg", None),
            ("12a4-x-0.jpg", None),
            ("99999999999999999999999-x-0.jpg", None),
        ];
        for (name, want) in rows {
            assert_eq!(image_stamp_ms(name), want, "{name}");
        }
    }

    #[test]
    fn unknown_datums_read_back_as_wgs84() {
        for (stored, want) in [("gcj02", "gcj02"), ("bd09", "bd09"), ("wgs84", "wgs84"), ("mars", "wgs84")] {
            assert_eq!(<&str>::from(DatumText(stored.into())), want, "{stored}");
        }
    }
}

/// One person's shift on the 24-hour duty roster (24小时值班) of the command centre or
/// a post. Never deleted: a cancelled shift keeps its row with `cancelled_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct DutyShift {
    pub shift_id: String,
    /// `command_centre` or `post`.
    pub unit_kind: String,
    /// The post; None for the command centre.
    pub unit_id: Option<String>,
    pub person_id: String,
    /// `leader` (the leader on duty, at most one per unit at a time) or `on_duty`.
    pub duty: String,
    pub starts_ms: i64,
    /// The moment the shift ends, which is when its handover is due.
    pub ends_ms: i64,
    pub created_ms: i64,
    pub created_by: String,
    pub cancelled_ms: Option<i64>,
}

/// One escalation event, in the global sequence: a notice of a late incident step that
/// reached a person on duty (or nobody, when nobody was on duty), or that person's
/// acknowledgement of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct EscalationRow {
    pub seq: i64,
    /// The notice this event belongs to: a notice's own number.
    pub escalation_id: i64,
    pub incident_id: i64,
    /// `notify`, `ack` (by the person it reached) or `resolve` (the incident's next step
    /// came first).
    pub action: String,
    /// `post_leader` or `command_centre`.
    pub level: String,
    /// The person the notice reached; None when nobody was on duty.
    pub person_id: Option<String>,
    /// The post whose leader was notified; None at the command centre.
    pub unit_id: Option<String>,
    pub actor: String,
    pub at_ms: i64,
    pub note: String,
    /// The incident's place.
    pub lon: f64,
    pub lat: f64,
    /// The message as pushed on the live feed (JSON).
    #[serde(skip)]
    pub payload: String,
}

/// A referral to the judicial office (转办), registered at a post, often after hours:
/// the office sees it from `handed_ms` (its next opening), and should take it up by
/// `due_ms`. Its status follows from its times ([`ReferralRow::status`]).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ReferralRow {
    /// Assigned by the store on insert (0 before).
    pub referral_id: i64,
    pub business: String,
    pub person_name: String,
    pub person_phone: Option<String>,
    pub summary: String,
    pub post_id: String,
    pub registered_by: String,
    pub registered_ms: i64,
    pub handed_ms: i64,
    pub due_ms: i64,
    pub taken_ms: Option<i64>,
    pub taken_by: Option<String>,
    pub done_ms: Option<i64>,
    pub done_by: Option<String>,
    pub note: Option<String>,
}

impl ReferralRow {
    /// `waiting` (the office has not opened since), `handed`, `taken` or `done`, at `now_ms`.
    pub fn status(&self, now_ms: i64) -> &'static str {
        match (self.done_ms, self.taken_ms) {
            (Some(_), _) => "done",
            (None, Some(_)) => "taken",
            (None, None) if self.handed_ms <= now_ms => "handed",
            (None, None) => "waiting",
        }
    }
}

/// Which referrals a list shows: those matching every filter, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferralFilter {
    pub post_id: Option<String>,
    /// `waiting`, `handed`, `taken` or `done`, at `now_ms`.
    pub status: Option<String>,
    /// Only those handed to the office by `now_ms` (what the office sees).
    pub handed_only: bool,
    pub now_ms: i64,
    /// Only ids below this one (the previous page's last).
    pub before: Option<i64>,
    pub limit: u32,
}

/// A home visit (上门办理): a person to be visited at a place by a post officer or grid
/// member, who arrives there (checked against their phone) and completes it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct HomeVisitRow {
    /// Assigned by the store on insert (0 before).
    pub visit_id: i64,
    pub person_name: String,
    pub person_phone: String,
    pub lon: f64,
    pub lat: f64,
    pub address: Option<String>,
    pub reason: String,
    /// The post whose jurisdiction holds the place.
    pub post_id: Option<String>,
    pub due_ms: i64,
    pub assignee_id: String,
    pub assignee_name: String,
    pub created_by: String,
    pub created_ms: i64,
    /// `assigned`, `arrived`, `done` or `cancelled`.
    pub status: String,
    pub arrived_ms: Option<i64>,
    pub arrived_distance_m: Option<f64>,
    pub done_ms: Option<i64>,
    pub note: Option<String>,
    #[sqlx(json)]
    pub photo_urls: Vec<String>,
}

/// Which home visits a list shows: those matching every filter, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HomeVisitFilter {
    pub assignee_id: Option<String>,
    pub post_id: Option<String>,
    pub status: Option<String>,
    /// Only ids below this one (the previous page's last).
    pub before: Option<i64>,
    pub limit: u32,
}

/// A plate read by a parking capture (违停抓拍), written in the group commit of its
/// camera event and numbered as it (`seq`): where and when, and the no-parking fence and
/// window it broke, if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ParkingRecordRow {
    pub seq: i64,
    pub camera_id: String,
    pub plate: String,
    pub time_ms: i64,
    pub lon: f64,
    pub lat: f64,
    pub township: Option<String>,
    /// The post whose jurisdiction the place is in.
    pub post_id: Option<String>,
    /// The no-parking fence the place is inside.
    pub fence_id: Option<String>,
    /// The start of the fence's window in force: set only for a violation.
    pub window_start_ms: Option<i64>,
    /// The `no_parking` alert the record raised (the first of its plate, fence, window).
    pub alert_seq: Option<i64>,
}

/// Which parking records a list reads: every filter given, in `[from_ms, to_ms)`,
/// numbered below `before`, newest first, at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct ParkingFilter {
    pub plate: Option<String>,
    pub fence_id: Option<String>,
    pub post_id: Option<String>,
    pub from_ms: i64,
    pub to_ms: i64,
    pub before: Option<i64>,
    pub limit: u32,
}

/// Parking records in a range counted by fence, camera, China-time hour of day (0–23)
/// and whether they were violations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ParkingCount {
    pub fence_id: Option<String>,
    pub camera_id: String,
    pub hour: i64,
    pub violation: i64,
    pub n: i64,
}

/// A `no_parking` alert raised: for its plate, fence and window, no other is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ParkingAlerted {
    pub plate: String,
    pub fence_id: String,
    pub window_start_ms: i64,
    pub alert_seq: i64,
}

/// A JT/T 808 terminal's registration: its device, the hash of the authentication code
/// it was given, and what it said of itself.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Jt808Terminal {
    pub device_id: String,
    /// The code as kept at rest; never the code itself.
    pub code_hash: String,
    pub registered_ms: i64,
    pub manufacturer: String,
    pub model: String,
    pub terminal_id: String,
    pub plate: String,
}
