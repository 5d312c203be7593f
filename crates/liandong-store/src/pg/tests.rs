//! The PostgreSQL store's own tests that need no server: the version checks.

use super::*;

#[test]
fn versions_are_read_by_major_and_minor() {
    let cases = [
        ("3.3.2", Some((3, 3))),
        ("3.0.0", Some((3, 0))),
        ("3.5.0alpha1", Some((3, 5))),
        ("3.4dev", Some((3, 4))),
        ("2.5.5", Some((2, 5))),
        ("3", Some((3, 0))),
        (" 3.1.4 ", Some((3, 1))),
        ("unknown", None),
        ("", None),
    ];
    for (text, want) in cases {
        assert_eq!(major_minor(text), want, "{text:?}");
    }
}

#[test]
fn postgis_2_is_refused_and_3_accepted() {
    assert!(check_postgis_version("3.0.0").is_ok());
    assert!(check_postgis_version("3.3.2").is_ok());
    let e = check_postgis_version("2.5.5").unwrap_err().to_string();
    assert_eq!(e, "PostGIS 2.5.5 is too old: liandong needs 3.0 or newer");
    assert!(check_postgis_version("garbage").is_err());
}
