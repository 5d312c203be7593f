//! Validated WGS 84 positions and the units every other module measures in.
//!
//! A [`Position`] cannot hold NaN, a latitude beyond ±90° or a longitude beyond ±180°:
//! code that receives one never re-checks it.

use serde::{Deserialize, Serialize};

/// Mean Earth radius used by the haversine formula, in metres (IUGG).
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Why a coordinate pair was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CoordError {
    #[error("latitude is not a finite number")]
    LatNotFinite,
    #[error("longitude is not a finite number")]
    LonNotFinite,
    #[error("latitude must be between -90 and 90 degrees")]
    LatOutOfRange,
    #[error("longitude must be between -180 and 180 degrees")]
    LonOutOfRange,
}

impl CoordError {
    /// The input field the error is about, for messages that name it.
    pub fn field(self) -> &'static str {
        match self {
            CoordError::LatNotFinite | CoordError::LatOutOfRange => "lat",
            CoordError::LonNotFinite | CoordError::LonOutOfRange => "lon",
        }
    }
}

/// A WGS 84 longitude/latitude pair in degrees, checked on construction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Position {
    lon: f64,
    lat: f64,
}

impl Position {
    pub fn new(lon: f64, lat: f64) -> Result<Self, CoordError> {
        if !lat.is_finite() {
            return Err(CoordError::LatNotFinite);
        }
        if !lon.is_finite() {
            return Err(CoordError::LonNotFinite);
        }
        if !(-90.0..=90.0).contains(&lat) {
            return Err(CoordError::LatOutOfRange);
        }
        if !(-180.0..=180.0).contains(&lon) {
            return Err(CoordError::LonOutOfRange);
        }
        Ok(Position { lon, lat })
    }

    pub fn lon(self) -> f64 {
        self.lon
    }

    pub fn lat(self) -> f64 {
        self.lat
    }

    pub fn to_point(self) -> geo::Point<f64> {
        geo::Point::new(self.lon, self.lat)
    }

    pub fn to_coord(self) -> geo::Coord<f64> {
        geo::Coord { x: self.lon, y: self.lat }
    }

    /// Great-circle distance to `other` in metres (haversine on a sphere of
    /// [`EARTH_RADIUS_M`]); within 0.5 % of the ellipsoidal distance.
    pub fn haversine_m(self, other: Position) -> f64 {
        let (phi1, phi2) = (self.lat.to_radians(), other.lat.to_radians());
        let dphi = phi2 - phi1;
        let dlambda = (other.lon - self.lon).to_radians();
        let a = (dphi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (dlambda / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().asin()
    }
}

impl<'de> Deserialize<'de> for Position {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            lon: f64,
            lat: f64,
        }
        let raw = Raw::deserialize(d)?;
        Position::new(raw.lon, raw.lat).map_err(serde::de::Error::custom)
    }
}

/// Horizontal datum of coordinates as a device or a map sends them.
///
/// Chinese phone map SDKs report GCJ-02 (AMap, Tencent) or BD-09 (Baidu); everything
/// stored by liandong is WGS 84.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Datum {
    #[default]
    Wgs84,
    Gcj02,
    Bd09,
}

impl Datum {
    /// Parses the names devices use: `wgs84`, `gcj02`, `bd09` (case and a `-` ignored).
    pub fn parse(s: &str) -> Option<Datum> {
        let norm: String = s.chars().filter(|c| *c != '-' && *c != '_').collect::<String>().to_ascii_lowercase();
        match norm.as_str() {
            "wgs84" | "wgs" | "epsg4326" => Some(Datum::Wgs84),
            "gcj02" | "gcj" => Some(Datum::Gcj02),
            "bd09" | "bd09ll" | "baidu" => Some(Datum::Bd09),
            _ => None,
        }
    }

    /// Converts `(lon, lat)` in this datum to a validated WGS 84 position.
    pub fn to_wgs84(self, lon: f64, lat: f64) -> Result<Position, CoordError> {
        // Validate first so that NaN never enters the trigonometry.
        let p = Position::new(lon, lat)?;
        let (lon, lat) = match self {
            Datum::Wgs84 => return Ok(p),
            Datum::Gcj02 => crate::datum::gcj02_to_wgs84(lon, lat),
            Datum::Bd09 => {
                let (glon, glat) = crate::datum::bd09_to_gcj02(lon, lat);
                crate::datum::gcj02_to_wgs84(glon, glat)
            }
        };
        Position::new(lon, lat)
    }
}

/// Milliseconds since the Unix epoch, UTC.
pub type UnixMs = i64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_each_bad_coordinate_with_its_field() {
        let rows = [
            (f64::NAN, 30.0, "lon"),
            (107.0, f64::NAN, "lat"),
            (107.0, 91.0, "lat"),
            (107.0, -90.5, "lat"),
            (180.1, 30.0, "lon"),
            (f64::INFINITY, 30.0, "lon"),
        ];
        for (lon, lat, field) in rows {
            let err = Position::new(lon, lat).unwrap_err();
            assert_eq!(err.field(), field, "({lon}, {lat})");
        }
        assert!(Position::new(180.0, -90.0).is_ok());
    }

    #[test]
    fn haversine_matches_a_known_distance() {
        // One degree of latitude is 111.2 km on the mean sphere.
        let a = Position::new(107.2, 30.0).unwrap();
        let b = Position::new(107.2, 31.0).unwrap();
        assert!((a.haversine_m(b) - 111_195.0).abs() < 5.0);
    }

    #[test]
    fn datum_names() {
        assert_eq!(Datum::parse("GCJ-02"), Some(Datum::Gcj02));
        assert_eq!(Datum::parse("bd09"), Some(Datum::Bd09));
        assert_eq!(Datum::parse("wgs84"), Some(Datum::Wgs84));
        assert_eq!(Datum::parse("utm"), None);
    }
}
