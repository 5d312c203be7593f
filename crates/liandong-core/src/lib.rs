//! The liandong domain: positions and datums, the county map, spatial indexes,
//! enrichment, the GPS jump filter and fence rules.
//!
//! Architecture invariant: this crate does no I/O and knows nothing of tokio, sqlx or
//! axum. It is pure computation on values, so everything in it is unit-testable.
//! Coordinates are WGS 84 lon/lat in degrees; distances are metres; times are Unix ms.

pub mod adherence;
pub mod alerts;
pub mod datum;
pub mod enrich;
pub mod fence;
pub mod hotspot;
pub mod incident;
pub mod jump;
pub mod map;
pub mod no_parking;
pub mod office_hours;
pub mod plan;
pub mod position;
pub mod road;
pub mod spatial;
pub mod stats;
pub mod storm;
pub mod track;
#[cfg(any(test, feature = "bench-fixtures"))]
pub mod xorshift;
pub mod zone;

pub use enrich::{process, process_reading, replay, DeviceTrack, Enricher, Enrichment, Processed, Reading};
pub use map::CountyMap;
pub use position::{CoordError, Datum, Position, UnixMs};
