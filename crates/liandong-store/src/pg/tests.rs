//! The PostgreSQL store's own tests that need no server: version checks and the folds
//! a batch goes through before PostgreSQL's one-statement upserts.

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

fn row(id: i64, state: &str, title: &str, since_ms: i64) -> IncidentRow {
    IncidentRow {
        incident_id: id,
        title: title.into(),
        priority: 2,
        state: state.into(),
        lon: 107.2,
        lat: 30.7,
        alert_seq: None,
        assigned_device: (state != "new").then(|| "866123".into()),
        assigned_unit: None,
        created_ms: 1,
        state_since_ms: since_ms,
        escalation: "none".into(),
        kind: "other".into(),
        township: None,
    }
}

#[test]
fn repeated_incidents_keep_the_first_description_and_the_last_state() {
    let folded = fold_incidents(&[
        row(5, "new", "first title", 1),
        row(6, "new", "other", 1),
        row(5, "dispatched", "a later title is not an update", 2),
    ]);
    assert_eq!(folded.len(), 2);
    assert_eq!(folded[0].incident_id, 5);
    assert_eq!(folded[0].title, "first title");
    assert_eq!(folded[0].state, "dispatched");
    assert_eq!(folded[0].assigned_device.as_deref(), Some("866123"));
    assert_eq!(folded[0].state_since_ms, 2);
    assert_eq!(folded[1].incident_id, 6);
}
