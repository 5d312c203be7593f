//! GCJ-02 and BD-09 ↔ WGS 84 conversion.
//!
//! GCJ-02 is the obfuscated datum mandated for published maps in mainland China; BD-09
//! is Baidu's further offset of it. Both are closed-form perturbations of WGS 84 (the
//! widely published reverse-engineered formulas; the Krasovsky 1940 ellipsoid constants
//! below are part of them). The forward direction is exact; the inverse is found by
//! fixed-point iteration to below 1e-9° (about 0.1 mm). Outside mainland China's
//! bounding box GCJ-02 equals WGS 84.

use std::f64::consts::PI;

const KRASOVSKY_A_M: f64 = 6_378_245.0;
const KRASOVSKY_EE: f64 = 0.006_693_421_622_965_943;
const BD_X_PI: f64 = PI * 3000.0 / 180.0;

/// Whether GCJ-02 applies at all: a rough box around mainland China, as the datum's
/// reference implementations use.
pub fn in_china(lon: f64, lat: f64) -> bool {
    (72.004..=137.8347).contains(&lon) && (0.8293..=55.8271).contains(&lat)
}

fn shift_lat(x: f64, y: f64) -> f64 {
    let mut r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    r
}

fn shift_lon(x: f64, y: f64) -> f64 {
    let mut r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    r
}

/// The GCJ-02 offset `(dlon, dlat)` in degrees at a WGS 84 point.
fn gcj_offset(lon: f64, lat: f64) -> (f64, f64) {
    let (x, y) = (lon - 105.0, lat - 35.0);
    let rad_lat = lat.to_radians();
    let magic = 1.0 - KRASOVSKY_EE * rad_lat.sin().powi(2);
    let sqrt_magic = magic.sqrt();
    let dlat = shift_lat(x, y) * 180.0 / ((KRASOVSKY_A_M * (1.0 - KRASOVSKY_EE)) / (magic * sqrt_magic) * PI);
    let dlon = shift_lon(x, y) * 180.0 / (KRASOVSKY_A_M / sqrt_magic * rad_lat.cos() * PI);
    (dlon, dlat)
}

/// WGS 84 → GCJ-02, `(lon, lat)` in degrees.
pub fn wgs84_to_gcj02(lon: f64, lat: f64) -> (f64, f64) {
    if !in_china(lon, lat) {
        return (lon, lat);
    }
    let (dlon, dlat) = gcj_offset(lon, lat);
    (lon + dlon, lat + dlat)
}

/// GCJ-02 → WGS 84, `(lon, lat)` in degrees, by fixed-point iteration on the forward
/// transform (converges in 3–5 steps; capped at 30).
pub fn gcj02_to_wgs84(lon: f64, lat: f64) -> (f64, f64) {
    if !in_china(lon, lat) {
        return (lon, lat);
    }
    let (mut wlon, mut wlat) = (lon, lat);
    for _ in 0..30 {
        let (glon, glat) = wgs84_to_gcj02(wlon, wlat);
        let (elon, elat) = (glon - lon, glat - lat);
        wlon -= elon;
        wlat -= elat;
        if elon.abs() < 1e-10 && elat.abs() < 1e-10 {
            break;
        }
    }
    (wlon, wlat)
}

/// GCJ-02 → BD-09, `(lon, lat)` in degrees.
pub fn gcj02_to_bd09(lon: f64, lat: f64) -> (f64, f64) {
    let z = (lon * lon + lat * lat).sqrt() + 0.00002 * (lat * BD_X_PI).sin();
    let theta = lat.atan2(lon) + 0.000003 * (lon * BD_X_PI).cos();
    (z * theta.cos() + 0.0065, z * theta.sin() + 0.006)
}

/// BD-09 → GCJ-02, `(lon, lat)` in degrees (the closed-form inverse used by Baidu's
/// own converters; error below 1e-6°).
pub fn bd09_to_gcj02(lon: f64, lat: f64) -> (f64, f64) {
    let (x, y) = (lon - 0.0065, lat - 0.006);
    let z = (x * x + y * y).sqrt() - 0.00002 * (y * BD_X_PI).sin();
    let theta = y.atan2(x) - 0.000003 * (x * BD_X_PI).cos();
    (z * theta.cos(), z * theta.sin())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Published WGS 84 → GCJ-02 pairs `(wgs_lat, wgs_lon, gcj_lat, gcj_lon)`: the test
    /// vectors of the eviltransform converters (Shanghai, Shenzhen, Beijing).
    const PAIRS: [(f64, f64, f64, f64); 3] = [
        (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),
        (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),
        (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),
    ];

    #[test]
    fn forward_and_inverse_match_published_pairs() {
        for (wlat, wlon, glat, glon) in PAIRS {
            let (lon, lat) = wgs84_to_gcj02(wlon, wlat);
            assert!((lon - glon).abs() < 1e-7 && (lat - glat).abs() < 1e-7, "forward {wlat},{wlon}: got {lat},{lon}");
            let (lon, lat) = gcj02_to_wgs84(glon, glat);
            assert!((lon - wlon).abs() < 1e-7 && (lat - wlat).abs() < 1e-7, "inverse {glat},{glon}: got {lat},{lon}");
        }
    }

    #[test]
    fn dazhu_shift_is_a_few_hundred_metres() {
        // At Dazhu's county seat the GCJ-02 offset is roughly 0.0022° east and 0.0025°
        // south-to-north, i.e. a few hundred metres: a sanity check on sign and size.
        let (wlon, wlat) = (107.204, 30.736);
        let (glon, glat) = wgs84_to_gcj02(wlon, wlat);
        let a = crate::Position::new(wlon, wlat).unwrap();
        let b = crate::Position::new(glon, glat).unwrap();
        let d = a.haversine_m(b);
        assert!((150.0..700.0).contains(&d), "shift {d} m");
    }

    #[test]
    fn bd09_round_trips_through_gcj02() {
        for (lon, lat) in [(107.2, 30.7), (116.404, 39.915), (121.5, 31.2)] {
            let (blon, blat) = gcj02_to_bd09(lon, lat);
            assert!((blon - lon).abs() > 1e-3, "bd09 must differ from gcj02");
            let (glon, glat) = bd09_to_gcj02(blon, blat);
            assert!((glon - lon).abs() < 2e-6 && (glat - lat).abs() < 2e-6);
        }
    }

    #[test]
    fn outside_china_is_unchanged() {
        assert_eq!(wgs84_to_gcj02(2.35, 48.85), (2.35, 48.85));
        assert_eq!(gcj02_to_wgs84(-74.0, 40.7), (-74.0, 40.7));
    }
}
