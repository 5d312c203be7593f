//! Each written table's columns, declared once: the name, the PostgreSQL array type a
//! group commit binds it as, and how a row gives its value. From one declaration come
//! the SQLite single-row `INSERT … VALUES (?, …)`, the PostgreSQL `INSERT … SELECT FROM
//! UNNEST(…)` and the column lists reads select, so a column cannot be added to one of
//! them and forgotten in another.

use sqlx::error::BoxDynError;
use sqlx::postgres::PgArguments;
use sqlx::types::Json;
use sqlx::{Encode, Postgres, Type};

use crate::camera_status::CameraStatusRow;
use crate::rows::ParkingRecordRow;
use crate::rows::{
    AlertAckRow, AlertRow, AuditEntry, CameraEventRow, CaseOverdueRow, DeviceStateRow, DisputeLinkRow, DutyShift,
    EscalationRow, GridReport, HandoverRow, IncidentEventRow, IncidentRow, IncidentState, MediationCase, PositionRow,
    RouteEventRow, RoutePlanRow,
};

/// A written table: its name and columns (with the PostgreSQL type of each), and what
/// a repeated key updates.
#[derive(Debug)]
pub(crate) struct Table {
    pub name: &'static str,
    /// What a failed write is reported as.
    pub op: &'static str,
    /// `(column, PostgreSQL element type)` in insert order.
    pub columns: &'static [(&'static str, &'static str)],
    /// The conflict target and the columns a repeated key overwrites; None for tables
    /// that only ever grow.
    pub upsert: Option<(&'static str, &'static [&'static str])>,
    /// Whether PostgreSQL must insert the rows in the order given (an identity column
    /// numbers them, and readers sort by it).
    pub keep_order: bool,
}

impl Table {
    /// The column names, each behind `prefix` (a table alias such as `p.`, or none).
    pub fn select(&self, prefix: &str) -> String {
        self.columns.iter().map(|(c, _)| format!("{prefix}{c}")).collect::<Vec<_>>().join(", ")
    }

    fn on_conflict(&self) -> String {
        match self.upsert {
            None => String::new(),
            Some((key, updates)) => {
                let set: Vec<String> = updates.iter().map(|c| format!("{c} = excluded.{c}")).collect();
                format!(" ON CONFLICT ({key}) DO UPDATE SET {}", set.join(", "))
            }
        }
    }

    /// SQLite's insert of one row, which the writer keeps prepared and runs once per row
    /// (see `sqlite::writer`).
    pub fn sqlite_row(&self) -> String {
        let marks = vec!["?"; self.columns.len()].join(", ");
        format!("INSERT INTO {} ({}) VALUES ({marks}){}", self.name, self.select(""), self.on_conflict())
    }

    /// PostgreSQL's insert of a whole batch: one array parameter per column, whatever
    /// the row count.
    pub fn pg_insert(&self) -> String {
        let arrays: Vec<String> =
            self.columns.iter().enumerate().map(|(i, (_, ty))| format!("${}::{ty}[]", i + 1)).collect();
        let columns = self.select("");
        let source = if self.keep_order {
            format!("SELECT {columns} FROM UNNEST({}) WITH ORDINALITY AS u({columns}, n) ORDER BY n", arrays.join(", "))
        } else {
            format!("SELECT * FROM UNNEST({})", arrays.join(", "))
        };
        format!("INSERT INTO {} ({columns}) {source}{}", self.name, self.on_conflict())
    }
}

/// A value one column takes: something SQLite's writer binds as one value and
/// PostgreSQL, as a column of a batch, binds as an array.
pub(crate) trait ColumnValue<'a>: 'a + Send + Sized + SqliteValue {
    /// Adds a column of values to PostgreSQL arguments as one array.
    fn add_array(values: Vec<Self>, args: &mut PgArguments) -> Result<(), BoxDynError>;
}

impl<'a, T> ColumnValue<'a> for T
where
    T: 'a + Send + SqliteValue,
    Vec<T>: Encode<'a, Postgres> + Type<Postgres>,
{
    fn add_array(values: Vec<T>, args: &mut PgArguments) -> Result<(), BoxDynError> {
        <PgArguments as sqlx::Arguments<'a>>::add(args, values)
    }
}

/// A column's value as SQLite's writer binds it: the storage class sqlx would have
/// chosen (booleans as integers, JSON as its text), text appended to the table's
/// `text` (one buffer for all of a batch's text, not an allocation per value).
pub(crate) trait SqliteValue {
    fn sqlite_cell(self, text: &mut Vec<u8>) -> Cell;
}

/// One value of a row bound on SQLite; text lies in its table's buffer, by byte range.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) enum Cell {
    #[default]
    Null,
    Integer(i64),
    Real(f64),
    Text(usize, usize),
}

impl SqliteValue for i64 {
    fn sqlite_cell(self, _: &mut Vec<u8>) -> Cell {
        Cell::Integer(self)
    }
}

impl SqliteValue for f64 {
    fn sqlite_cell(self, _: &mut Vec<u8>) -> Cell {
        Cell::Real(self)
    }
}

impl SqliteValue for bool {
    fn sqlite_cell(self, _: &mut Vec<u8>) -> Cell {
        Cell::Integer(i64::from(self))
    }
}

impl SqliteValue for &str {
    fn sqlite_cell(self, text: &mut Vec<u8>) -> Cell {
        let start = text.len();
        text.extend_from_slice(self.as_bytes());
        Cell::Text(start, text.len())
    }
}

impl<T: serde::Serialize> SqliteValue for Json<&T> {
    fn sqlite_cell(self, text: &mut Vec<u8>) -> Cell {
        let start = text.len();
        // Serialising plain data (strings, numbers, maps with string keys) cannot fail;
        // should it, the value is written as `null`, never as half a document.
        if serde_json::to_writer(&mut *text, self.0).is_err() {
            text.truncate(start);
            text.extend_from_slice(b"null");
        }
        Cell::Text(start, text.len())
    }
}

impl<T: SqliteValue> SqliteValue for Option<T> {
    fn sqlite_cell(self, text: &mut Vec<u8>) -> Cell {
        self.map_or(Cell::Null, |v| v.sqlite_cell(text))
    }
}

/// Takes the columns of some rows, in declaration order: one value per row on SQLite,
/// one array per column on PostgreSQL.
pub(crate) trait ColumnSink<'a> {
    fn column<T: ColumnValue<'a>>(&mut self, values: impl Iterator<Item = T>);
}

/// The statements a table's group-commit insert uses, built once from its declaration:
/// a commit is on the path from a report's arrival to its delivery, and building them
/// per commit (a `format!` per column) cost more than the rest of the sequencer's own
/// work for a small batch.
#[derive(Debug)]
pub(crate) struct InsertSql {
    /// SQLite's insert of one row.
    pub sqlite_row: String,
    /// PostgreSQL's whole-batch `INSERT … SELECT FROM UNNEST(…)`.
    pub pg: String,
}

impl InsertSql {
    pub fn of(t: &Table) -> InsertSql {
        InsertSql { sqlite_row: t.sqlite_row(), pg: t.pg_insert() }
    }
}

/// A row type with a table it is written to.
pub(crate) trait Written: Sized + 'static {
    const TABLE: Table;
    /// The table's insert statements, built on first use.
    fn insert_sql() -> &'static InsertSql;
    /// Hands `rows`' values to `sink`, column by column.
    fn columns<'a>(rows: impl Iterator<Item = &'a Self> + Clone, sink: &mut impl ColumnSink<'a>);
}

/// Declares a written table: `Row, r => "table" [, upsert on "key" [updated columns]]
/// [ordered] { column: "pg type" = value of r, … }`.
macro_rules! written {
    ($row:ty, $r:ident => $name:literal $(, upsert on $key:literal [$($update:ident),+])? $([$ordered:ident])?
     { $($column:ident: $pg:literal = $value:expr),+ $(,)? }) => {
        impl Written for $row {
            const TABLE: Table = Table {
                name: $name,
                op: concat!("write ", $name),
                columns: &[$((stringify!($column), $pg)),+],
                upsert: written!(@upsert $($key [$($update),+])?),
                keep_order: written!(@flag $($ordered)?),
            };
            fn insert_sql() -> &'static InsertSql {
                static SQL: std::sync::LazyLock<InsertSql> =
                    std::sync::LazyLock::new(|| InsertSql::of(&<$row as Written>::TABLE));
                &SQL
            }
            fn columns<'a>(rows: impl Iterator<Item = &'a Self> + Clone, sink: &mut impl ColumnSink<'a>) {
                $(sink.column(rows.clone().map(|$r: &'a $row| $value));)+
            }
        }
    };
    (@upsert) => { None };
    (@upsert $key:literal [$($update:ident),+]) => { Some(($key, &[$(stringify!($update)),+])) };
    (@flag) => { false };
    (@flag $ordered:ident) => { true };
}

written!(PositionRow, r => "positions" {
    seq: "bigint" = r.seq,
    device_id: "text" = r.device_id.as_str(),
    fix_ms: "bigint" = r.fix_ms,
    recv_ms: "bigint" = r.recv_ms,
    lon: "float8" = r.lon,
    lat: "float8" = r.lat,
    datum: "text" = r.datum,
    speed_mps: "float8" = r.speed_mps,
    course_deg: "float8" = r.course_deg,
    altitude_m: "float8" = r.altitude_m,
    accuracy_m: "float8" = r.accuracy_m,
    battery_pct: "float8" = r.battery_pct,
    flags: "bigint" = i64::from(r.flags),
    attributes: "text" = r.attributes.as_str(),
    enrichment: "text" = r.enrichment.as_str(),
});

written!(DeviceStateRow, s => "device_state",
    upsert on "device_id" [seq, trusted_ms, trusted_lon, trusted_lat, marked_ms, marked_lon, marked_lat, fences] {
    device_id: "text" = s.device_id.as_str(),
    seq: "bigint" = s.seq,
    trusted_ms: "bigint" = s.trusted.map(|f| f.0),
    trusted_lon: "float8" = s.trusted.map(|f| f.1),
    trusted_lat: "float8" = s.trusted.map(|f| f.2),
    marked_ms: "bigint" = s.marked.map(|f| f.0),
    marked_lon: "float8" = s.marked.map(|f| f.1),
    marked_lat: "float8" = s.marked.map(|f| f.2),
    fences: "jsonb" = Json(&s.fences),
});

written!(CameraEventRow, r => "camera_events" {
    seq: "bigint" = r.seq,
    camera_id: "text" = r.camera_id.as_str(),
    event_type: "text" = r.event_type.as_str(),
    kind: "text" = r.kind,
    active: "bool" = r.active,
    active_post_count: "bigint" = r.active_post_count,
    time_ms: "bigint" = r.time_ms,
    recv_ms: "bigint" = r.recv_ms,
    plate: "text" = r.plate.as_deref(),
    person_id: "text" = r.person_id.as_deref(),
    payload: "text" = r.payload.as_str(),
});

written!(AlertRow, r => "alerts" {
    seq: "bigint" = r.seq,
    rule: "text" = r.rule.as_str(),
    priority: "bigint" = r.priority,
    camera_id: "text" = r.camera_id.as_deref(),
    event_seq: "bigint" = r.event_seq,
    time_ms: "bigint" = r.time_ms,
    lon: "float8" = r.lon,
    lat: "float8" = r.lat,
    roles: "jsonb" = Json(&r.roles),
    payload: "text" = r.payload.as_str(),
    township: "text" = r.township.as_deref(),
});

written!(AuditEntry, e => "audit_log" [ordered] {
    at_ms: "bigint" = e.at_ms,
    actor: "text" = e.actor.as_str(),
    action: "text" = e.action.as_str(),
    subject: "text" = e.subject.as_str(),
    detail: "text" = e.detail.as_str(),
});

written!(IncidentRow, r => "incidents",
    upsert on "incident_id" [state, assigned_device, assigned_unit, state_since_ms, escalation] {
    incident_id: "bigint" = r.incident_id,
    title: "text" = r.title.as_str(),
    priority: "bigint" = r.priority,
    state: "text" = r.state.as_str(),
    lon: "float8" = r.lon,
    lat: "float8" = r.lat,
    alert_seq: "bigint" = r.alert_seq,
    assigned_device: "text" = r.assigned_device.as_deref(),
    assigned_unit: "text" = r.assigned_unit.as_deref(),
    created_ms: "bigint" = r.created_ms,
    state_since_ms: "bigint" = r.state_since_ms,
    escalation: "text" = r.escalation.as_str(),
    kind: "text" = r.kind.as_str(),
    township: "text" = r.township.as_deref(),
});

written!(IncidentEventRow, r => "incident_events" {
    seq: "bigint" = r.seq,
    incident_id: "bigint" = r.incident_id,
    at_ms: "bigint" = r.at_ms,
    actor: "text" = r.actor.as_str(),
    action: "text" = r.action.as_str(),
    from_state: "text" = r.from_state.map(IncidentState::as_str),
    to_state: "text" = r.to_state.as_str(),
    note: "text" = r.note.as_str(),
    lon: "float8" = r.lon,
    lat: "float8" = r.lat,
    unit_id: "text" = r.unit_id.as_deref(),
    payload: "text" = r.payload.as_str(),
    photo_urls: "jsonb" = Json(&r.photo_urls),
});

written!(GridReport, r => "grid_reports" {
    report_id: "bigint" = r.report_id,
    reporter: "text" = r.reporter.as_str(),
    category: "text" = r.category.as_str(),
    text: "text" = r.text.as_str(),
    lon: "float8" = r.lon,
    lat: "float8" = r.lat,
    time_ms: "bigint" = r.time_ms,
    recv_ms: "bigint" = r.recv_ms,
    enrichment: "jsonb" = Json(&r.enrichment),
    photos: "bigint" = r.photos,
    status: "text" = r.status.as_str(),
    photo_urls: "jsonb" = Json(&r.photo_urls),
});

written!(MediationCase, c => "mediation_cases" {
    case_id: "bigint" = c.case_id,
    source: "text" = c.source.as_str(),
    report_id: "bigint" = c.report_id,
    incident_id: "bigint" = c.incident_id,
    dispute_type: "text" = c.dispute_type.as_str(),
    summary: "text" = c.summary.as_str(),
    parties: "jsonb" = Json(&c.parties),
    lon: "float8" = c.lon,
    lat: "float8" = c.lat,
    place: "jsonb" = Json(&c.place),
    filed_by: "text" = c.filed_by.as_str(),
    opened_ms: "bigint" = c.opened_ms,
    status: "text" = c.status.as_str(),
    mediator_id: "text" = c.mediator_id.as_deref(),
    venue_id: "text" = c.venue_id.as_deref(),
    accepted_ms: "bigint" = c.accepted_ms,
    accepted_by: "text" = c.accepted_by.as_deref(),
    declined_reason: "text" = c.declined_reason.as_deref(),
    mediation_type: "text" = c.mediation_type.as_deref(),
    outcome: "text" = c.outcome.as_deref(),
    success: "bool" = c.success,
    closed_ms: "bigint" = c.closed_ms,
    closed_by: "text" = c.closed_by.as_deref(),
    follow_up_due_ms: "bigint" = c.follow_up_due_ms,
    followed_up_ms: "bigint" = c.followed_up_ms,
    follow_up_note: "text" = c.follow_up_note.as_deref(),
    followed_up_by: "text" = c.followed_up_by.as_deref(),
});

// Upserts: a second instance escalating the same step, or linking the same incident,
// must not fail the group commit it shares with other work (it costs a second alert).
written!(CaseOverdueRow, r => "mediation_overdue", upsert on "case_id, step" [alert_seq, due_ms] {
    case_id: "bigint" = r.case_id,
    step: "text" = r.step.as_str(),
    alert_seq: "bigint" = r.alert_seq,
    due_ms: "bigint" = r.due_ms,
});

// A push marks its camera seen (clearing a silence); an offline alert marks it offline.
written!(CameraStatusRow, r => "camera_status", upsert on "camera_id" [last_seen_ms, offline_since_ms, offline_alert_seq] {
    camera_id: "text" = r.camera_id.as_str(),
    last_seen_ms: "bigint" = r.last_seen_ms,
    offline_since_ms: "bigint" = r.offline_since_ms,
    offline_alert_seq: "bigint" = r.offline_alert_seq,
});

written!(DisputeLinkRow, r => "dispute_links", upsert on "incident_id, case_id" [reason, alert_seq, linked_ms] {
    incident_id: "bigint" = r.incident_id,
    case_id: "bigint" = r.case_id,
    reason: "text" = r.reason.as_str(),
    alert_seq: "bigint" = r.alert_seq,
    linked_ms: "bigint" = r.linked_ms,
});

written!(ParkingRecordRow, r => "parking_records" {
    seq: "bigint" = r.seq,
    camera_id: "text" = r.camera_id.as_str(),
    plate: "text" = r.plate.as_str(),
    time_ms: "bigint" = r.time_ms,
    lon: "float8" = r.lon,
    lat: "float8" = r.lat,
    township: "text" = r.township.as_deref(),
    post_id: "text" = r.post_id.as_deref(),
    fence_id: "text" = r.fence_id.as_deref(),
    window_start_ms: "bigint" = r.window_start_ms,
    alert_seq: "bigint" = r.alert_seq,
});

written!(RoutePlanRow, r => "route_plans", upsert on "plan_seq" [status, acked_ms, acked_by, escalation] {
    plan_seq: "bigint" = r.plan_seq,
    team_id: "text" = r.team_id.as_str(),
    version: "bigint" = r.version,
    kind: "text" = r.kind.as_str(),
    reason: "text" = r.reason.as_str(),
    created_ms: "bigint" = r.created_ms,
    created_by: "text" = r.created_by.as_str(),
    plan: "text" = r.plan.as_str(),
    lon: "float8" = r.lon,
    lat: "float8" = r.lat,
    status: "text" = r.status.as_str(),
    acked_ms: "bigint" = r.acked_ms,
    acked_by: "text" = r.acked_by.as_deref(),
    escalation: "text" = r.escalation.as_str(),
});

written!(RouteEventRow, r => "route_events" {
    seq: "bigint" = r.seq,
    plan_seq: "bigint" = r.plan_seq,
    team_id: "text" = r.team_id.as_str(),
    at_ms: "bigint" = r.at_ms,
    actor: "text" = r.actor.as_str(),
    action: "text" = r.action.as_str(),
    lon: "float8" = r.lon,
    lat: "float8" = r.lat,
    payload: "text" = r.payload.as_str(),
});

written!(AlertAckRow, r => "alert_acks" {
    seq: "bigint" = r.seq,
    alert_seq: "bigint" = r.alert_seq,
    actor: "text" = r.actor.as_str(),
    at_ms: "bigint" = r.at_ms,
    note: "text" = r.note.as_str(),
    lon: "float8" = r.lon,
    lat: "float8" = r.lat,
    roles: "jsonb" = Json(&r.roles),
    payload: "text" = r.payload.as_str(),
});

written!(DutyShift, r => "duty_shifts" {
    shift_id: "text" = r.shift_id.as_str(),
    unit_kind: "text" = r.unit_kind.as_str(),
    unit_id: "text" = r.unit_id.as_deref(),
    person_id: "text" = r.person_id.as_str(),
    duty: "text" = r.duty.as_str(),
    starts_ms: "bigint" = r.starts_ms,
    ends_ms: "bigint" = r.ends_ms,
    created_ms: "bigint" = r.created_ms,
    created_by: "text" = r.created_by.as_str(),
    cancelled_ms: "bigint" = r.cancelled_ms,
});

written!(EscalationRow, r => "escalations" {
    seq: "bigint" = r.seq,
    escalation_id: "bigint" = r.escalation_id,
    incident_id: "bigint" = r.incident_id,
    action: "text" = r.action.as_str(),
    level: "text" = r.level.as_str(),
    person_id: "text" = r.person_id.as_deref(),
    unit_id: "text" = r.unit_id.as_deref(),
    actor: "text" = r.actor.as_str(),
    at_ms: "bigint" = r.at_ms,
    note: "text" = r.note.as_str(),
    lon: "float8" = r.lon,
    lat: "float8" = r.lat,
    payload: "text" = r.payload.as_str(),
});

// A handover is written one at a time with its audit entry, never in a group commit;
// its number (`handover_id`) is the database's, so it is not among the written columns.
written!(HandoverRow, r => "handovers" {
    unit_kind: "text" = r.unit_kind.as_str(),
    unit_id: "text" = r.unit_id.as_deref(),
    from_ms: "bigint" = r.from_ms,
    to_ms: "bigint" = r.to_ms,
    outgoing_person_id: "text" = r.outgoing_person_id.as_str(),
    incoming_person_id: "text" = r.incoming_person_id.as_str(),
    sheet: "jsonb" = Json(&r.sheet),
    prepared_ms: "bigint" = r.prepared_ms,
    signed_ms: "bigint" = r.signed_ms,
    signed_by: "text" = r.signed_by.as_deref(),
    sign_note: "text" = r.sign_note.as_deref(),
    accepted_ms: "bigint" = r.accepted_ms,
    accepted_by: "text" = r.accepted_by.as_deref(),
    accept_note: "text" = r.accept_note.as_deref(),
});

/// Every written table, for the snapshot of the SQL they generate.
#[cfg(test)]
pub(crate) const ALL: [&Table; 19] = [
    &PositionRow::TABLE,
    &DeviceStateRow::TABLE,
    &CameraEventRow::TABLE,
    &AlertRow::TABLE,
    &AuditEntry::TABLE,
    &IncidentRow::TABLE,
    &IncidentEventRow::TABLE,
    &GridReport::TABLE,
    &MediationCase::TABLE,
    &CaseOverdueRow::TABLE,
    &DisputeLinkRow::TABLE,
    &RoutePlanRow::TABLE,
    &RouteEventRow::TABLE,
    &AlertAckRow::TABLE,
    &DutyShift::TABLE,
    &EscalationRow::TABLE,
    &HandoverRow::TABLE,
    &ParkingRecordRow::TABLE,
    &CameraStatusRow::TABLE,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The SQL every table's declaration generates, as `src/snapshots/sql.snap` holds
    /// it: a change of a column, a type or a conflict clause shows here as a diff to
    /// review. `UPDATE_SNAPSHOTS=1` rewrites the file instead of failing.
    #[test]
    fn the_generated_sql_is_the_reviewed_sql() {
        let mut got = String::new();
        for t in ALL {
            got += &format!("-- {} on SQLite (one row, run once per row)\n{}\n", t.name, t.sqlite_row());
            got += &format!("-- {} on PostgreSQL\n{}\n\n", t.name, t.pg_insert());
        }
        let tables = crate::feed::FeedTables::ALL;
        got += &format!("-- the feed over every table\n{}\n\n", crate::shared::feed_sql(tables).unwrap());
        got += &format!("-- alerts after a number\n{}\n\n", crate::shared::after_sql(&AlertRow::TABLE));
        got += &format!("-- the highest number on SQLite\n{}\n", crate::shared::max_seq_sqlite());
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/snapshots/sql.snap");
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(path, &got).unwrap();
            return;
        }
        assert_eq!(got, include_str!("snapshots/sql.snap"), "the SQL generated from the column declarations changed");
    }

    #[test]
    fn the_cached_statements_are_the_generated_ones() {
        let sql = PositionRow::insert_sql();
        assert_eq!(sql.sqlite_row, PositionRow::TABLE.sqlite_row());
        assert_eq!(sql.pg, PositionRow::TABLE.pg_insert());
        assert_eq!(RoutePlanRow::insert_sql().sqlite_row, RoutePlanRow::TABLE.sqlite_row());
        assert!(std::ptr::eq(sql, PositionRow::insert_sql()), "built once, then reused");
    }

    #[test]
    fn column_lists_follow_the_declaration_and_the_alias() {
        assert!(PositionRow::TABLE.select("p.").starts_with("p.seq, p.device_id, p.fix_ms"));
        assert!(PositionRow::TABLE.select("").ends_with("attributes, enrichment"));
        assert_eq!(AuditEntry::TABLE.select("a."), "a.at_ms, a.actor, a.action, a.subject, a.detail");
    }
}
