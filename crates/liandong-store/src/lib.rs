//! liandong's store: everything the server keeps, in the embedded SQLite file or in a
//! PostgreSQL + PostGIS database, behind one [`Store`].
//!
//! The crate is laid out as one vocabulary and two dialects:
//! - `rows` (the row types), `batch` (what a group commit writes), `error` and `feed`
//!   (the feed's tables and rows) are the vocabulary both backends speak;
//! - `columns` declares each written table's columns once, and generates both
//!   dialects' inserts and the column lists reads select;
//! - `shared` holds the calls whose SQL both databases agree on, written once, and
//!   `signin` those of passwords, sessions and sign-in codes, and `referrals` those of
//!   after-hours referrals and home visits, likewise;
//! - `sqlite` and `pg` are the backends: each has only what is really its own
//!   (connecting, the write lock, PostGIS or plain history queries, images), and neither
//!   imports the other;
//! - `store` is the enum the server calls, forwarding each call to its backend.

pub mod backup;
mod batch;
pub mod bulk;
mod camera_status;
mod columns;
mod correction;
mod error;
mod feed;
mod jt808;
mod mediation;
mod parking;
pub mod pg;
mod referrals;
mod rows;
mod shared;
mod signin;
mod sqlite;
mod store;

pub use batch::Batch;
pub use camera_status::CameraStatusRow;
pub use error::StoreError;
pub use feed::{FeedRow, FeedTables};
pub use rows::Jt808Terminal;
pub use rows::Pruned;
pub use rows::{
    image_stamp_ms, AlertAckRow, AlertFact, AlertRow, AuditEntry, Bbox, CameraEventRow, CameraRecord, CaseFilter,
    CaseOutcome, CaseOverdueRow, DeviceRecord, DeviceStateRow, DisputeLinkRow, Durability, DutyShift, EscalationRow,
    FixAck, GridReport, HandoverFilter, HandoverRow, HomeVisitFilter, HomeVisitRow, ImageOwners, ImageRow,
    IncidentEventRow, IncidentFacts, IncidentRow, IncidentState, MediationCase, MediationSession, MediationStats,
    OwnReport, Party, PeopleFilter, PersonRecord, PositionRow, ReferralFilter, ReferralRow, RouteEventRow,
    RoutePlanRow, SanctionRow, SessionRow, SightingRow, SignInCode, StoredFix, StoredMembership, TaggedPerson,
    TrackPoint, WatchRecord, HISTORY_EXCLUDED_FLAGS, SANCTION_KINDS,
};
pub use rows::{ParkingAlerted, ParkingCount, ParkingFilter, ParkingRecordRow};
pub use sqlite::SqliteStore;
pub use store::{FeedListener, Heard, Store, Writing};
