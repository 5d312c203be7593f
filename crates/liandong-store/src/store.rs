//! The store the server uses: the embedded SQLite file or a PostgreSQL + PostGIS
//! database, behind one set of calls. Both backends answer every call with the same
//! meaning (orders, limits, what `bool` and `Option` say); the conformance suite in
//! `tests/conformance.rs` holds them to it.

use std::path::Path;

use crate::batch::{check_numbers, Batch};
use crate::camera_status::CameraStatusRow;
use crate::error::{q, StoreError};
use crate::feed::{FeedRow, FeedTables};
use crate::pg::PgStore;
use crate::rows::{
    AlertAckRow, AlertFact, AlertRow, AuditEntry, Bbox, CameraRecord, CaseFilter, CaseOutcome, DeviceRecord,
    DeviceStateRow, DisputeLinkRow, Durability, DutyShift, EscalationRow, FixAck, GridReport, HandoverFilter,
    HandoverRow, ImageOwners, ImageRow, IncidentEventRow, IncidentFacts, IncidentRow, MediationCase, MediationSession,
    MediationStats, OwnReport, PeopleFilter, PersonRecord, PositionRow, RouteEventRow, RoutePlanRow, SanctionRow,
    SessionRow, SightingRow, SignInCode, TaggedPerson, TrackPoint, WatchRecord,
};
use crate::rows::{HomeVisitFilter, HomeVisitRow, ReferralFilter, ReferralRow};
use crate::rows::{ParkingAlerted, ParkingCount, ParkingFilter, ParkingRecordRow};
use crate::sqlite::{self, SqliteStore};

#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Store {
    /// Opens (creating if needed) the embedded store in `data_dir`.
    pub async fn open(data_dir: &Path, durability: Durability) -> Result<Store, StoreError> {
        Ok(Store::Sqlite(SqliteStore::open(data_dir, durability).await?))
    }

    /// Connects to PostgreSQL + PostGIS at `url`, checks versions, applies migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Ok(Store::Postgres(PgStore::connect(url).await?))
    }

    /// The embedded store's database file; None on PostgreSQL.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Store::Sqlite(s) => Some(s.path()),
            Store::Postgres(_) => None,
        }
    }

    /// A listener for other instances' commits, on PostgreSQL; None on the embedded
    /// store, which has one writer.
    pub async fn listen(&self) -> Result<Option<FeedListener>, StoreError> {
        match self {
            Store::Sqlite(_) => Ok(None),
            Store::Postgres(p) => Ok(Some(FeedListener(p.listen().await?))),
        }
    }

    /// `sqlite` or `postgres`, for logs and metrics.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }
    /// A trivial query (`SELECT 1`) on a reading connection: whether the store answers
    /// at all, for readiness. The caller bounds how long it waits.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.ping().await,
            Store::Postgres(p) => p.ping().await,
        }
    }
}

/// A group commit under way: it holds the store's write lock (PostgreSQL's advisory
/// lock; SQLite's one writer connection) from [`Store::begin_write`] until
/// [`Writing::commit`] or until dropped, which rolls back. Instances sharing a
/// database therefore number their batches from [`Writing::committed`] without racing:
/// no commit lands between reading the maximum and writing the batch.
pub struct Writing {
    tx: WritingTx,
    committed: i64,
}

enum WritingTx {
    Sqlite(sqlite::SqliteTx),
    Postgres(crate::pg::PgTx),
}

impl Store {
    /// Takes the write lock and reads the highest committed sequence number.
    pub async fn begin_write(&self) -> Result<Writing, StoreError> {
        Ok(match self {
            Store::Sqlite(s) => {
                let (tx, committed) = s.begin_write().await?;
                Writing { tx: WritingTx::Sqlite(tx), committed }
            }
            Store::Postgres(p) => {
                let (tx, committed) = p.begin_write().await?;
                Writing { tx: WritingTx::Postgres(tx), committed }
            }
        })
    }
}

impl Writing {
    /// The highest sequence number committed when the lock was taken; it cannot move
    /// while this is held.
    pub fn committed(&self) -> i64 {
        self.committed
    }

    /// Writes the batch and commits; returns once durable. A batch numbered at or below
    /// [`Writing::committed`] is refused with [`StoreError::SeqConflict`], unwritten.
    pub async fn commit(self, b: &Batch<'_>) -> Result<(), StoreError> {
        self.finish(b, false).await
    }

    /// As [`Writing::commit`], for a commit its caller knows is alone — one report or
    /// command, nothing else waiting to be written. On SQLite it runs on the calling
    /// thread, which it blocks until the commit is durable, instead of handing it to the
    /// writer thread and back: two thread wake-ups fewer, some 23 µs of server CPU
    /// (BENCHMARKS.md, "A commit alone"). On PostgreSQL it is [`Writing::commit`].
    pub async fn commit_alone(self, b: &Batch<'_>) -> Result<(), StoreError> {
        self.finish(b, true).await
    }

    async fn finish(self, b: &Batch<'_>, alone: bool) -> Result<(), StoreError> {
        check_numbers(b, self.committed)?;
        match self.tx {
            WritingTx::Sqlite(tx) if alone => sqlite::finish_write_here(tx, b).await,
            WritingTx::Sqlite(tx) => sqlite::finish_write(tx, b).await,
            WritingTx::Postgres(tx) => crate::pg::finish_write(tx, b).await,
        }
    }
}

/// Hears other instances' commits.
pub struct FeedListener(sqlx::postgres::PgListener);

/// What another instance announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// A commit, with its last sequence number (0 when the payload is unreadable: the
    /// caller catches up from the store either way).
    Commit(i64),
    /// A change of the registries (devices, cameras, the watch list, tagged persons).
    Registry,
}

impl FeedListener {
    /// Waits for the next announcement. Reconnects by itself after a lost connection.
    pub async fn next(&mut self) -> Result<Heard, StoreError> {
        let n = self.0.recv().await.map_err(q("hear a commit"))?;
        Ok(if n.channel() == crate::pg::REGISTRY_CHANNEL {
            Heard::Registry
        } else {
            Heard::Commit(n.payload().parse().unwrap_or(0))
        })
    }
}

/// Writes each call once, forwarding it to the backend. The list is the store's
/// interface: a call missing from either backend does not compile.
macro_rules! delegate {
    ($( $(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )*) => {
        impl Store {
            $(
                $(#[$doc])*
                pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        Store::Sqlite(s) => s.$name($($arg),*).await,
                        Store::Postgres(s) => s.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

delegate! {
    /// Closes every connection.
    fn close(&self) -> ();
    /// Inserts or updates a device. Returns whether it was new.
    fn upsert_device(&self, d: &DeviceRecord) -> Result<bool, StoreError>;
    fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError>;
    /// The highest sequence number committed so far (0 for an empty store).
    fn max_seq(&self) -> Result<i64, StoreError>;
    /// Writes reports and their device states in one transaction.
    fn write_batch(&self, rows: &[PositionRow], states: &[DeviceStateRow]) -> Result<(), StoreError>;
    /// Writes everything a group commit produced in one transaction; returns once durable.
    fn write(&self, b: &Batch<'_>) -> Result<(), StoreError>;
    /// Every device's live state with its last report.
    fn device_states(&self) -> Result<Vec<(DeviceStateRow, Option<PositionRow>)>, StoreError>;
    /// Reports after a sequence number, oldest first.
    fn positions_after(&self, after: i64, limit: u32) -> Result<Vec<PositionRow>, StoreError>;
    /// The feed's events committed after `after_seq`, from the chosen tables, merged in
    /// sequence order, at most `limit`, complete up to the last one returned.
    fn feed_after(&self, after_seq: i64, limit: u32, tables: FeedTables) -> Result<Vec<FeedRow>, StoreError>;
    /// How many feed events have a sequence number above `after`.
    fn count_after(&self, after: i64) -> Result<i64, StoreError>;
    fn count_positions(&self, device_id: Option<&str>) -> Result<i64, StoreError>;
    /// The report stored at each (device id, fix time) key that has one, in sequence
    /// order (a key holding several appears once per report; the first is the original).
    fn stored_fixes(&self, keys: &[(&str, i64)]) -> Result<Vec<FixAck>, StoreError>;
    /// Each device's newest stored fix time, by device id.
    fn newest_fixes(&self) -> Result<Vec<(String, i64)>, StoreError>;
    /// Sequence numbers of a device's reports, oldest first.
    fn position_seqs(&self, device_id: &str) -> Result<Vec<i64>, StoreError>;
    fn upsert_camera(&self, c: &CameraRecord) -> Result<(), StoreError>;
    fn cameras(&self) -> Result<Vec<CameraRecord>, StoreError>;
    fn upsert_watch(&self, w: &WatchRecord) -> Result<(), StoreError>;
    fn watchlist(&self) -> Result<Vec<WatchRecord>, StoreError>;
    /// Alerts after a sequence number, oldest first.
    fn alerts_after(&self, after: i64, limit: u32) -> Result<Vec<AlertRow>, StoreError>;
    /// One alert by its sequence number.
    fn alert(&self, seq: i64) -> Result<Option<AlertRow>, StoreError>;
    /// Acknowledgements of alerts after a sequence number, oldest first.
    fn alert_acks_after(&self, after: i64, limit: u32) -> Result<Vec<AlertAckRow>, StoreError>;
    /// The first acknowledgement of each alert that has one, by alert number.
    fn first_alert_acks(&self, alert_seqs: &[i64]) -> Result<Vec<AlertAckRow>, StoreError>;
    /// Alerts raised in a time range, oldest first.
    fn alert_facts(&self, from_ms: i64, to_ms: i64) -> Result<Vec<AlertFact>, StoreError>;
    /// Active reads of one plate or person in a time range, oldest first.
    fn sightings(&self, person: bool, value: &str, from_ms: i64, to_ms: i64, limit: u32) -> Result<Vec<SightingRow>, StoreError>;
    fn count_camera_events(&self, camera_id: &str) -> Result<i64, StoreError>;
    /// Incidents neither closed nor cancelled.
    fn open_incidents(&self) -> Result<Vec<IncidentRow>, StoreError>;
    /// One incident with its timeline.
    fn incident(&self, id: i64) -> Result<Option<(IncidentRow, Vec<IncidentEventRow>)>, StoreError>;
    /// Incidents created in a time range with their milestones.
    fn incident_facts(&self, from_ms: i64, to_ms: i64) -> Result<Vec<IncidentFacts>, StoreError>;
    /// Incident events after a sequence number, oldest first.
    fn incident_events_after(&self, after: i64, limit: u32) -> Result<Vec<IncidentEventRow>, StoreError>;
    fn report(&self, report_id: i64) -> Result<Option<GridReport>, StoreError>;
    /// Reports, newest first, optionally of one status.
    fn reports(&self, status: Option<&str>, limit: u32) -> Result<Vec<GridReport>, StoreError>;
    /// Moves a new report to a status, naming the incident it became or joined; false if
    /// it was not new.
    fn review_report(&self, report_id: i64, status: &str, note: &str, incident_id: Option<i64>) -> Result<bool, StoreError>;
    /// The open incidents assigned to a device or a unit (a phone's or a unit's tasks),
    /// newest first.
    fn assigned_incidents(&self, device_id: Option<&str>, unit_id: Option<&str>, limit: u32) -> Result<Vec<IncidentRow>, StoreError>;
    /// A reporter's reports numbered below `before`, newest first, with what became of each.
    fn own_reports(&self, reporter: &str, before: i64, limit: u32) -> Result<Vec<OwnReport>, StoreError>;
    fn mediation_cases(&self, status: Option<&str>) -> Result<Vec<MediationCase>, StoreError>;
    /// Records a pending or accepted case's outcome with its audit entry; false if there is none.
    fn close_mediation(&self, case_id: i64, o: &CaseOutcome<'_>, audit: &AuditEntry) -> Result<bool, StoreError>;
    fn mediation_case(&self, case_id: i64) -> Result<Option<MediationCase>, StoreError>;
    /// Cases matching a filter, newest first.
    fn mediation_list(&self, f: &CaseFilter) -> Result<Vec<MediationCase>, StoreError>;
    /// Cases under way (oldest first, bounded) and the steps of each already escalated.
    fn mediation_under_way(&self, limit: u32) -> Result<(Vec<MediationCase>, Vec<(i64, String)>), StoreError>;
    /// Cases open or opened since a time, newest first, bounded.
    fn mediation_recent(&self, since_ms: i64, limit: u32) -> Result<Vec<MediationCase>, StoreError>;
    /// Cases opened in a time range.
    fn mediation_facts(&self, from_ms: i64, to_ms: i64) -> Result<Vec<MediationCase>, StoreError>;
    /// Of the cases opened in a range: how many were escalated as late, and how many
    /// distinct criminal incidents touched them.
    fn mediation_flags(&self, from_ms: i64, to_ms: i64) -> Result<(i64, i64), StoreError>;
    /// Links of the cases numbered `first..=last` to criminal incidents.
    fn dispute_links(&self, first: i64, last: i64) -> Result<Vec<DisputeLinkRow>, StoreError>;
    fn mediation_sessions(&self, case_id: i64) -> Result<Vec<MediationSession>, StoreError>;
    /// Accepts a pending case (mediator, venue) with its audit entry; false if not pending.
    fn accept_mediation(&self, case_id: i64, mediator_id: &str, venue_id: &str, by: &str, at_ms: i64, audit: &AuditEntry) -> Result<bool, StoreError>;
    /// Declines a pending or accepted case with its audit entry; false otherwise.
    fn decline_mediation(&self, case_id: i64, reason: &str, by: &str, at_ms: i64, audit: &AuditEntry) -> Result<bool, StoreError>;
    /// Records a mediated case's follow-up with its audit entry; false otherwise.
    fn follow_up_mediation(&self, case_id: i64, note: &str, by: &str, at_ms: i64, audit: &AuditEntry) -> Result<bool, StoreError>;
    /// Adds a session to an accepted case with its audit entry; its number, or None.
    fn add_mediation_session(&self, s: &MediationSession, audit: &AuditEntry) -> Result<Option<i64>, StoreError>;
    fn mediation_stats(&self, from_ms: i64, to_ms: i64) -> Result<MediationStats, StoreError>;
    fn upsert_tagged(&self, p: &TaggedPerson) -> Result<(), StoreError>;
    fn tagged_persons(&self) -> Result<Vec<TaggedPerson>, StoreError>;
    /// One tagged person by id.
    fn tagged_person(&self, person_id: &str) -> Result<Option<TaggedPerson>, StoreError>;
    /// Saves a tagged person with their watch-list entry and the change's audit entry,
    /// in one transaction.
    fn save_tagged(&self, p: &TaggedPerson, w: &WatchRecord, audit: &AuditEntry) -> Result<(), StoreError>;
    /// Records a sanction with its audit entry in one transaction (the entry's detail
    /// prefixed with the number assigned); None (nothing written) for an unknown person.
    fn insert_sanction(&self, s: &SanctionRow, audit: &AuditEntry) -> Result<Option<SanctionRow>, StoreError>;
    /// A person's sanctions numbered below `before`, newest first, at most `limit`.
    fn sanctions(&self, person_id: &str, before: Option<i64>, limit: u32) -> Result<Vec<SanctionRow>, StoreError>;
    /// Appends one audit entry that is also about `others` (a list read); the audit log
    /// read by subject finds it under each.
    fn audit_reads(&self, entry: &AuditEntry, others: &[String]) -> Result<(), StoreError>;
    /// Adds a person and its audit entry in one transaction; false (nothing written)
    /// when the id is taken.
    fn insert_person(&self, p: &PersonRecord, audit: &AuditEntry) -> Result<bool, StoreError>;
    /// Changes a person and writes its audit entry in one transaction if it was last
    /// changed at `seen_ms`; false (nothing written) when there is no such person or it
    /// changed since.
    fn update_person(&self, p: &PersonRecord, seen_ms: i64, audit: &AuditEntry) -> Result<bool, StoreError>;
    fn person(&self, person_id: &str) -> Result<Option<PersonRecord>, StoreError>;
    /// People matching every filter given, by id, at most `f.limit`.
    fn people(&self, f: &PeopleFilter) -> Result<Vec<PersonRecord>, StoreError>;
    /// Sets a person's password (a PHC string) with its audit entry, in one transaction.
    fn set_password(&self, person_id: &str, phc: &str, at_ms: i64, audit: &AuditEntry) -> Result<(), StoreError>;
    /// A person's password as a PHC string; None when none is set.
    fn password(&self, person_id: &str) -> Result<Option<String>, StoreError>;
    /// Opens a session with its audit entry, in one transaction.
    fn insert_session(&self, s: &SessionRow, audit: &AuditEntry) -> Result<(), StoreError>;
    /// A session by its token's hash, as stored (revoked and ended ones too).
    fn session(&self, token_hash: &str) -> Result<Option<SessionRow>, StoreError>;
    /// Pushes a live session's end on (never past its cap); false when it is revoked or ended.
    fn renew_session(&self, token_hash: &str, expires_ms: i64, now_ms: i64) -> Result<bool, StoreError>;
    /// Revokes one session with its audit entry; false when it already was or never was.
    fn revoke_session(&self, token_hash: &str, now_ms: i64, audit: &AuditEntry) -> Result<bool, StoreError>;
    /// Revokes every session of a person with one audit entry (none when there was none);
    /// answers their token hashes.
    fn revoke_sessions(&self, person_id: &str, now_ms: i64, audit: &AuditEntry) -> Result<Vec<String>, StoreError>;
    /// A person's live sessions, newest first.
    fn live_sessions(&self, person_id: &str, now_ms: i64) -> Result<Vec<SessionRow>, StoreError>;
    /// Stores a one-time sign-in code with its audit entry, in one transaction.
    fn insert_sign_in_code(&self, c: &SignInCode, audit: &AuditEntry) -> Result<(), StoreError>;
    /// A sign-in code by its hash, as stored (used and expired ones too).
    fn sign_in_code(&self, code_hash: &str) -> Result<Option<SignInCode>, StoreError>;
    /// Uses a code once and opens its session with the audit entry, in one transaction;
    /// false when the code is unknown, someone else's, used or expired.
    fn use_sign_in_code(&self, code_hash: &str, now_ms: i64, session: &SessionRow, audit: &AuditEntry) -> Result<bool, StoreError>;
    /// Adds duty shifts with their audit entries in one transaction, all or none: the
    /// leader shifts they would overlap (nothing written), or none (all written).
    fn insert_duty_shifts(&self, shifts: &[DutyShift], audit: &[AuditEntry]) -> Result<Vec<DutyShift>, StoreError>;
    /// Cancels a shift (kept) with its audit entry; false when none is uncancelled.
    fn cancel_duty_shift(&self, shift_id: &str, at_ms: i64, audit: &AuditEntry) -> Result<bool, StoreError>;
    fn duty_shift(&self, shift_id: &str) -> Result<Option<DutyShift>, StoreError>;
    /// Every uncancelled shift under way at a moment (starts <= at < ends).
    fn duty_at(&self, at_ms: i64) -> Result<Vec<DutyShift>, StoreError>;
    /// Every uncancelled shift overlapping `[from_ms, to_ms)`, optionally of one unit kind
    /// and unit, by unit and start.
    fn duty_between(&self, from_ms: i64, to_ms: i64, unit_kind: Option<&str>, unit_id: Option<&str>) -> Result<Vec<DutyShift>, StoreError>;
    /// Escalation notices neither acknowledged nor resolved, oldest first.
    fn open_escalations(&self) -> Result<Vec<EscalationRow>, StoreError>;
    /// One incident's escalation events, oldest first.
    fn escalations_of(&self, incident_id: i64) -> Result<Vec<EscalationRow>, StoreError>;
    /// Adds a handover and its audit entry (subject `handover:<number>`) in one
    /// transaction; returns its number, or None (nothing written) when the unit's shift
    /// (unit, from, to) has one already.
    fn insert_handover(&self, h: &HandoverRow, audit: &AuditEntry) -> Result<Option<i64>, StoreError>;
    fn handover(&self, handover_id: i64) -> Result<Option<HandoverRow>, StoreError>;
    /// Handovers matching every filter given, newest first, at most `f.limit`.
    fn handovers(&self, f: &HandoverFilter) -> Result<Vec<HandoverRow>, StoreError>;
    /// Signs a handover not yet signed, audited in the same transaction; false (nothing
    /// written) when there is none or it is signed already.
    fn sign_handover(&self, handover_id: i64, at_ms: i64, by: &str, note: Option<&str>, audit: &AuditEntry) -> Result<bool, StoreError>;
    /// Accepts a signed handover not yet accepted, audited in the same transaction; false
    /// (nothing written) when there is none, it is not signed, or it is accepted already.
    fn accept_handover(&self, handover_id: i64, at_ms: i64, by: &str, note: Option<&str>, audit: &AuditEntry) -> Result<bool, StoreError>;
    /// Incidents closed or cancelled in a time range, newest first.
    fn incidents_ended(&self, from_ms: i64, to_ms: i64, limit: u32) -> Result<Vec<IncidentRow>, StoreError>;
    /// Appends to the audit log.
    fn audit(&self, entries: &[AuditEntry]) -> Result<(), StoreError>;
    /// The newest audit entries, optionally about one subject.
    fn audit_log(&self, subject: Option<&str>, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;
    /// Each device's last good fix at a moment, inside a box.
    fn positions_at(&self, at_ms: i64, max_age_ms: i64, bbox: Bbox) -> Result<Vec<PositionRow>, StoreError>;
    /// A device's good fixes in a time range, in time order.
    fn track(&self, device_id: &str, from_ms: i64, to_ms: i64, limit: u32) -> Result<Vec<PositionRow>, StoreError>;
    /// The same fixes as [`Store::track`], only their number, time and place.
    fn track_points(&self, device_id: &str, from_ms: i64, to_ms: i64, limit: u32) -> Result<Vec<TrackPoint>, StoreError>;
    /// Alerts by area and time, newest first.
    fn alerts_in(&self, bbox: Bbox, from_ms: i64, to_ms: i64, limit: u32) -> Result<Vec<AlertRow>, StoreError>;
    /// The newest version of every team's route plan.
    fn route_plan_heads(&self) -> Result<Vec<RoutePlanRow>, StoreError>;
    /// A team's route plans (or every team's), newest first.
    fn route_plans(&self, team_id: Option<&str>, limit: u32) -> Result<Vec<RoutePlanRow>, StoreError>;
    /// One route plan with its events.
    fn route_plan(&self, plan_seq: i64) -> Result<Option<(RoutePlanRow, Vec<RouteEventRow>)>, StoreError>;
    /// Route events after a sequence number, oldest first.
    fn route_events_after(&self, after: i64, limit: u32) -> Result<Vec<RouteEventRow>, StoreError>;
    /// Deletes a batch of positions older than a time, keeping each device's last one.
    fn prune_positions(&self, before_ms: i64, batch: u32) -> Result<u64, StoreError>;
    /// Stores images durably (files beside the embedded database; a table on PostgreSQL).
    fn put_images(&self, images: &[ImageRow]) -> Result<(), StoreError>;
    /// An image's bytes, `None` when there is none of that name.
    fn image(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Deletes the images stored before a time; returns how many.
    fn prune_images(&self, before_ms: i64) -> Result<u64, StoreError>;
    /// The records that name an image by its URL: alerts of `from_ms` to `to_ms` and
    /// grid reports of that time, incident steps since `from_ms`, and the incidents of
    /// both. A URL that no image of the server's could have (with `%`, `_`, `\\` or `"`)
    /// has none.
    fn image_owners(&self, url: &str, from_ms: i64, to_ms: i64) -> Result<ImageOwners, StoreError>;
    /// Incidents by area and time, newest first.
    fn incidents_in(&self, bbox: Bbox, from_ms: i64, to_ms: i64, limit: u32) -> Result<Vec<IncidentRow>, StoreError>;
    /// The incidents open at a moment, as each one's last event until then, newest first.
    fn incident_events_at(&self, bbox: Bbox, from_ms: i64, at_ms: i64, limit: u32) -> Result<Vec<IncidentEventRow>, StoreError>;
    /// Every camera's liveness, by camera id, bounded.
    fn camera_statuses(&self, limit: u32) -> Result<Vec<CameraStatusRow>, StoreError>;
    /// The cameras heard from, not yet offline, last seen before a time, longest silent first.
    fn cameras_silent(&self, before_ms: i64, limit: u32) -> Result<Vec<CameraStatusRow>, StoreError>;
    /// The liveness of the cameras named, as committed now.
    fn camera_statuses_of(&self, ids: &[String]) -> Result<Vec<CameraStatusRow>, StoreError>;
}

// After-hours referrals and home visits (`referrals.rs`), in a list of their own.
delegate! {
    /// Adds a referral and its audit entry (subject `referral:<number>`) in one
    /// transaction; returns its number.
    fn insert_referral(&self, r: &ReferralRow, audit: &AuditEntry) -> Result<i64, StoreError>;
    fn referral(&self, referral_id: i64) -> Result<Option<ReferralRow>, StoreError>;
    /// Referrals matching every filter given, newest first, at most `f.limit`.
    fn referrals(&self, f: &ReferralFilter) -> Result<Vec<ReferralRow>, StoreError>;
    /// Referrals registered in `[from_ms, to_ms)`, oldest first, at most `limit`.
    fn referrals_between(&self, from_ms: i64, to_ms: i64, limit: u32) -> Result<Vec<ReferralRow>, StoreError>;
    /// Takes up a referral handed to the office and not taken, audited in the same
    /// transaction; false (nothing written) otherwise.
    fn take_referral(&self, referral_id: i64, at_ms: i64, by: &str, audit: &AuditEntry) -> Result<bool, StoreError>;
    /// Marks a handed or taken referral done with a note, audited in the same
    /// transaction; false (nothing written) when it is waiting or done already.
    fn finish_referral(&self, referral_id: i64, at_ms: i64, by: &str, note: &str, audit: &AuditEntry) -> Result<bool, StoreError>;
    /// Adds a home visit and its audit entry (subject `home_visit:<number>`) in one
    /// transaction; returns its number.
    fn insert_home_visit(&self, v: &HomeVisitRow, audit: &AuditEntry) -> Result<i64, StoreError>;
    fn home_visit(&self, visit_id: i64) -> Result<Option<HomeVisitRow>, StoreError>;
    /// Home visits matching every filter given, newest first, at most `f.limit`.
    fn home_visits(&self, f: &HomeVisitFilter) -> Result<Vec<HomeVisitRow>, StoreError>;
    /// Home visits created in `[from_ms, to_ms)`, oldest first, at most `limit`.
    fn home_visits_between(&self, from_ms: i64, to_ms: i64, limit: u32) -> Result<Vec<HomeVisitRow>, StoreError>;
    /// The home visit one of whose photos is at `url`, if any.
    fn home_visit_of_photo(&self, url: &str) -> Result<Option<HomeVisitRow>, StoreError>;
    /// Marks an assigned visit arrived, audited; false (nothing written) when it is not assigned.
    fn arrive_home_visit(&self, visit_id: i64, at_ms: i64, distance_m: f64, audit: &AuditEntry) -> Result<bool, StoreError>;
    /// Completes an arrived visit with a note and photos, audited; false (nothing
    /// written) when it is not arrived.
    fn complete_home_visit(&self, visit_id: i64, at_ms: i64, note: &str, photo_urls: &[String], audit: &AuditEntry) -> Result<bool, StoreError>;
}

// Parking records (`parking.rs`), in a list of their own.
delegate! {
    /// Parking records matching every filter given, newest first, at most `f.limit`.
    fn parking_records(&self, f: &ParkingFilter) -> Result<Vec<ParkingRecordRow>, StoreError>;
    /// Parking records in `[from_ms, to_ms)`, of one post's jurisdiction if given,
    /// counted by fence, camera, China-time hour and violation.
    fn parking_counts(&self, from_ms: i64, to_ms: i64, post_id: Option<&str>) -> Result<Vec<ParkingCount>, StoreError>;
    /// The `no_parking` alerts raised for windows that started at or after `since_ms`.
    fn parking_alerted(&self, since_ms: i64) -> Result<Vec<ParkingAlerted>, StoreError>;
}

delegate! {
    /// Records a JT/T 808 terminal's registration and new code with its audit entry.
    fn register_jt808(&self, t: &crate::rows::Jt808Terminal, audit: &AuditEntry) -> Result<(), StoreError>;
    /// A JT/T 808 terminal's registration; None when it never registered.
    fn jt808_terminal(&self, device_id: &str) -> Result<Option<crate::rows::Jt808Terminal>, StoreError>;
}

// Retention and monthly partitions (`pg/partitions.rs`; SQLite has no partitions).
delegate! {
    /// Retention up to `before_ms`: on PostgreSQL drops every month of reports and camera
    /// events wholly before it (keeping each device's last report) and prunes the default
    /// partitions; on SQLite deletes, batch after batch, the reports (except each
    /// device's last) and camera events older than it. The call the benchmark times.
    /// On PostgreSQL the months leave their tables here; their files go with
    /// [`Store::remove_detached`].
    fn prune_before(&self, before_ms: i64) -> Result<crate::rows::Pruned, StoreError>;
    /// Retention's second step on PostgreSQL: drops the months `prune_before` took out
    /// of their tables (their files, holding no lock ingest waits for); answers how
    /// many tables. Nothing to do on SQLite (0).
    fn remove_detached(&self) -> Result<u32, StoreError>;
    /// Makes the monthly partitions for times in `[from_ms, to_ms)` that are missing;
    /// answers how many (always 0 on SQLite).
    fn ensure_partitions(&self, from_ms: i64, to_ms: i64) -> Result<u32, StoreError>;
    /// Deletes at most `batch` camera events older than a time, oldest first.
    fn prune_camera_events(&self, before_ms: i64, batch: u32) -> Result<u64, StoreError>;
}

impl Store {
    /// Whether a store error is a lock wait given up after
    /// [`LOCK_TIMEOUT`](crate::pg::LOCK_TIMEOUT) (PostgreSQL): the change is tried again later.
    pub fn is_lock_timeout(e: &StoreError) -> bool {
        crate::pg::is_lock_timeout(e)
    }
}
