//! The PostgreSQL + PostGIS store against a real server: what only PostgreSQL has
//! (version and extension checks, connection errors, reconnecting to a migrated
//! database, geography, collations, point layers for GIS tools). What both stores
//! answer alike is checked once for both in `tests/conformance.rs`.
//!
//! Set `LIANDONG_TEST_PG_URL` to a superuser's URL (`scripts/pg start` prints one).
//! Each test creates a database of its own on that server, lets `PgStore::connect`
//! migrate it, and drops it at the end, so tests run in parallel without meeting. When
//! the variable is unset every test prints that it was skipped and passes, unless
//! `LIANDONG_REQUIRE_PG=1`, which makes it fail instead.

use liandong_store::pg::PgStore;
use liandong_store::{Batch, DeviceStateRow, PositionRow, StoreError};
use liandong_test_support::pg::{unique_name, with_database};
use sqlx::{Connection, Executor, PgConnection};

const URL_VAR: &str = "LIANDONG_TEST_PG_URL";
const REQUIRE_VAR: &str = "LIANDONG_REQUIRE_PG";

/// The test server's URL; None (after saying so) when none is configured and none is
/// required.
fn server_url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1") => panic!(
            "{test}: {REQUIRE_VAR}=1 but {URL_VAR} is not set; set it to a PostgreSQL + PostGIS superuser URL \
             (scripts/pg start prints one)"
        ),
        _ => {
            println!("skipped {test}: {URL_VAR} is not set (scripts/pg start prints a URL)");
            None
        }
    }
}

/// A database of one test's own on the test server.
struct TestDb {
    server_url: String,
    name: String,
    url: String,
}

impl TestDb {
    /// Creates an empty database, or returns None (after saying so) when no server is
    /// configured and none is required.
    async fn create(test: &str) -> Option<TestDb> {
        let server_url = server_url(test)?;
        let name = unique_name("t");
        let mut admin = PgConnection::connect(&server_url).await.expect("connect to the test server");
        // An ICU English collation sorts "cam-a" before "Cam-Z", where SQLite's byte order
        // puts upper case first: the schema's `COLLATE "C"` has to make the difference.
        // Servers older than 15 (or built without ICU) get their default collation.
        let icu = format!("CREATE DATABASE {name} LOCALE_PROVIDER icu ICU_LOCALE 'en-US' TEMPLATE template0");
        if let Err(e) = admin.execute(icu.as_str()).await {
            println!("{test}: no ICU collation ({e}); using the server's default");
            admin.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create the test database");
        }
        admin.close().await.unwrap();
        let url = with_database(&server_url, &name);
        Some(TestDb { server_url, name, url })
    }

    async fn store(&self) -> PgStore {
        PgStore::connect(&self.url).await.expect("connect the store")
    }

    /// A plain connection to the test database, for what the store does not offer.
    async fn sql(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.expect("connect to the test database")
    }

    async fn remove(self) {
        let mut admin = PgConnection::connect(&self.server_url).await.unwrap();
        admin.execute(format!("DROP DATABASE {} WITH (FORCE)", self.name).as_str()).await.unwrap();
        admin.close().await.unwrap();
    }
}

fn position(seq: i64, device: &str) -> PositionRow {
    PositionRow {
        seq,
        device_id: device.into(),
        fix_ms: seq * 1000,
        recv_ms: seq * 1000 + 5,
        lon: 107.2 + seq as f64 * 1e-6,
        lat: 30.73,
        datum: if seq % 3 == 0 { "gcj02" } else { "wgs84" },
        speed_mps: (seq % 2 == 0).then_some(4.25),
        course_deg: Some(90.0),
        altitude_m: None,
        accuracy_m: Some(8.0),
        battery_pct: None,
        flags: if seq % 5 == 0 { 0x8000_0001 } else { 0 },
        attributes: format!("{{\"n\":{seq}}}"),
        enrichment: "{\"township\":\"竹阳街道\"}".into(),
    }
}

#[tokio::test]
async fn reconnecting_finds_the_schema_migrated_and_the_data_committed() {
    let Some(db) = TestDb::create("reconnecting_finds_the_schema_migrated_and_the_data_committed").await else {
        return;
    };
    let store = db.store().await;
    let positions: Vec<PositionRow> = (1..=3).map(|s| position(s, "a")).collect();
    let state = DeviceStateRow {
        device_id: "a".into(),
        seq: 3,
        trusted: Some((3000, 107.2, 30.73)),
        marked: None,
        fences: vec![],
    };
    store
        .write(&Batch { positions: &positions, states: std::slice::from_ref(&state), ..Batch::default() })
        .await
        .unwrap();
    store.close().await;

    // A second connect runs the migrations again (nothing to do) and finds the rows.
    let store = db.store().await;
    assert_eq!(store.max_seq().await.unwrap(), 3);
    assert_eq!(store.positions_after(0, 10).await.unwrap(), positions);
    assert_eq!(store.device_states().await.unwrap(), [(state, positions.last().cloned())]);
    let mut sql = db.sql().await;
    let applied: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success").fetch_one(&mut sql).await.unwrap();
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations/postgres")).unwrap().count();
    assert_eq!(applied, files as i64, "every migration once");
    sql.close().await.unwrap();
    store.close().await;
    db.remove().await;
}

#[tokio::test]
async fn sorted_identifiers_are_byte_ordered_whatever_the_locale() {
    let Some(db) = TestDb::create("sorted_identifiers_are_byte_ordered_whatever_the_locale").await else {
        return;
    };
    db.store().await.close().await;
    let mut sql = db.sql().await;
    // The test databases sort text as people do (ICU en-US), unlike SQLite: were they
    // not, the conformance suite's byte-order checks would prove nothing here.
    let (locale, icu_order): (Option<String>, bool) = sqlx::query_as(
        "SELECT daticulocale::text, 'dev-a' < 'Dev-B' FROM pg_database WHERE datname = current_database()",
    )
    .fetch_one(&mut sql)
    .await
    .unwrap();
    if locale.is_some() {
        assert!(icu_order, "an ICU database sorts lower case first at equal letters");
    } else {
        println!("no ICU collation on this server; byte order is the default here");
    }
    // Every identifier a store call returns sorted: its column sorts by bytes, as
    // SQLite's BINARY collation does. (`positions.device_id`, by which `positions_at`
    // sorts, is not among them: a known divergence, see tests/conformance.rs.)
    let sorted = [
        ("devices", "device_id"),
        ("device_state", "device_id"),
        ("cameras", "camera_id"),
        ("watchlist", "watch_id"),
        ("tagged_persons", "person_id"),
        ("grid_reports", "category"),
        ("mediation_cases", "mediation_type"),
    ];
    for (table, column) in sorted {
        let collation: Option<String> = sqlx::query_scalar(
            "SELECT collation_name::text FROM information_schema.columns WHERE table_name = $1 AND column_name = $2",
        )
        .bind(table)
        .bind(column)
        .fetch_one(&mut sql)
        .await
        .unwrap();
        assert_eq!(collation.as_deref(), Some("C"), "{table}.{column}");
    }
    sql.close().await.unwrap();
    db.remove().await;
}

#[tokio::test]
async fn distances_are_ranked_in_metres_through_geography() {
    let Some(db) = TestDb::create("distances_are_ranked_in_metres_through_geography").await else {
        return;
    };
    let store = db.store().await;
    // At Dazhu's latitude a degree of longitude is ~95.6 km and one of latitude
    // ~110.9 km: 77 m east is more degrees than 81 m north, so ranking in degrees
    // puts the farther point first.
    let (lon, lat) = (107.2, 30.73);
    let east_77_m = PositionRow { lon: lon + 77.0 / 95_640.0, lat, ..position(1, "east") };
    let north_81_m = PositionRow { lon, lat: lat + 81.0 / 110_880.0, ..position(2, "north") };
    store.write_batch(&[east_77_m, north_81_m], &[]).await.unwrap();

    let mut sql = db.sql().await;
    let rank = |order: &str| {
        format!(
            "SELECT device_id, ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography)
             FROM positions ORDER BY {order}"
        )
    };
    let metric: Vec<(String, f64)> =
        sqlx::query_as(&rank("geom::geography <-> ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography"))
            .bind(lon)
            .bind(lat)
            .fetch_all(&mut sql)
            .await
            .unwrap();
    assert_eq!(metric.iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>(), ["east", "north"]);
    assert!((metric[0].1 - 77.0).abs() < 0.5, "{} m", metric[0].1);
    assert!((metric[1].1 - 81.0).abs() < 0.5, "{} m", metric[1].1);
    let degrees: Vec<(String, f64)> = sqlx::query_as(&rank("geom <-> ST_SetSRID(ST_MakePoint($1, $2), 4326)"))
        .bind(lon)
        .bind(lat)
        .fetch_all(&mut sql)
        .await
        .unwrap();
    assert_eq!(degrees[0].0, "north", "the pitfall this schema avoids: degrees mis-rank");

    // The nearest-neighbour search can use the geography index.
    sql.execute("SET enable_seqscan = off").await.unwrap();
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT seq FROM positions
         ORDER BY geom::geography <-> ST_SetSRID(ST_MakePoint(107.2, 30.73), 4326)::geography LIMIT 1",
    )
    .fetch_all(&mut sql)
    .await
    .unwrap();
    // `positions` is partitioned by month (migration 0021): the scan names the index of
    // a month, one of those the parent's `positions_geog` made.
    let month_indexes: Vec<String> = sqlx::query_scalar(
        "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'positions_geog'::regclass",
    )
    .fetch_all(&mut sql)
    .await
    .unwrap();
    assert!(!month_indexes.is_empty(), "every month has the geography index");
    assert!(plan.iter().any(|l| month_indexes.iter().any(|i| l.contains(&format!(" {i} ")))), "{plan:#?}");

    // Every table with a place is a point layer for GIS tools (the months of
    // `positions` are layers too, each the part of the parent's layer it holds).
    let layers: Vec<(String, String, i32)> = sqlx::query_as(
        "SELECT f_table_name::text, type::text, srid FROM geometry_columns
         WHERE f_table_name NOT IN (SELECT relname FROM pg_class WHERE relispartition)
         ORDER BY f_table_name COLLATE \"C\"",
    )
    .fetch_all(&mut sql)
    .await
    .unwrap();
    let want = [
        "alerts",
        "cameras",
        "device_state",
        "grid_reports",
        "home_visits",
        "incident_events",
        "incidents",
        "mediation_cases",
        "parking_records",
        "positions",
        "route_events",
        "route_plans",
    ];
    assert_eq!(layers, want.map(|t| (t.to_string(), "POINT".to_string(), 4326)));
    let geom: (f64, f64) =
        sqlx::query_as("SELECT ST_X(geom), ST_Y(geom) FROM positions WHERE seq = 2").fetch_one(&mut sql).await.unwrap();
    assert_eq!(geom, (lon, lat + 81.0 / 110_880.0), "the point is the row's lon/lat");
    sql.close().await.unwrap();
    store.close().await;
    db.remove().await;
}

#[tokio::test]
async fn a_database_whose_postgis_was_dropped_is_refused_by_name() {
    let Some(db) = TestDb::create("a_database_whose_postgis_was_dropped_is_refused_by_name").await else {
        return;
    };
    db.store().await.close().await;
    let mut sql = db.sql().await;
    sql.execute("DROP EXTENSION postgis CASCADE").await.unwrap();
    sql.close().await.unwrap();
    let err = PgStore::connect(&db.url).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Extension { extension: "postgis", database, .. } if *database == db.name),
        "{err}"
    );
    assert!(err.to_string().contains("dropped"), "{err}");
    db.remove().await;
}

#[tokio::test]
async fn a_role_that_may_not_create_postgis_is_told_so() {
    let Some(db) = TestDb::create("a_role_that_may_not_create_postgis_is_told_so").await else {
        return;
    };
    let role = unique_name("r");
    let mut admin = db.sql().await;
    admin.execute(format!("CREATE ROLE {role} LOGIN PASSWORD 'test-only'").as_str()).await.unwrap();
    admin.execute(format!("ALTER DATABASE {} OWNER TO {role}", db.name).as_str()).await.unwrap();
    admin.close().await.unwrap();
    // The role's URL: the server's, with the role and its password as the user.
    let at = db.url.find("://").unwrap() + 3;
    let host = &db.url[at..][db.url[at..].find('@').map_or(0, |i| i + 1)..];
    let url = format!("{}{role}:test-only@{host}", &db.url[..at]);

    let err = PgStore::connect(&url).await.unwrap_err();
    assert!(matches!(&err, StoreError::Extension { extension: "postgis", .. }), "{err}");
    let message = err.to_string();
    println!("{message}");
    assert!(message.contains("superuser") && message.contains(&role), "{message}");
    assert!(!message.contains("test-only"), "the password stays out of errors: {message}");
    let name = db.name.clone();
    let server = db.server_url.clone();
    db.remove().await;
    let mut admin = PgConnection::connect(&server).await.unwrap();
    admin.execute(format!("DROP ROLE {role}").as_str()).await.unwrap();
    let left: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_optional(&mut admin)
        .await
        .unwrap();
    assert_eq!(left, None);
    admin.close().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_server_is_a_connect_error_without_the_password() {
    // Needs no server: nothing listens on port 1.
    let err = PgStore::connect("postgres://liandong:s3cret@127.0.0.1:1/liandong").await.unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("127.0.0.1:1/liandong") && message.contains("refused"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
}

#[test]
fn the_database_is_replaced_in_the_url() {
    let cases = [
        ("postgres://postgres@127.0.0.1:54329/liandong", "postgres://postgres@127.0.0.1:54329/t_1"),
        ("postgres://u:p@h/db?sslmode=disable", "postgres://u:p@h/t_1?sslmode=disable"),
        ("postgres://h:5432", "postgres://h:5432/t_1"),
    ];
    for (url, want) in cases {
        assert_eq!(with_database(url, "t_1"), want, "{url}");
    }
}

#[tokio::test]
async fn connect_rejects_a_url_that_is_not_one() {
    let err = PgStore::connect("not a url").await.unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err}");
}

/// Not a check: how fast group commits of reports go on this server. Run with
/// `cargo test --release -p liandong-store --test pg -- --ignored --nocapture`.
#[tokio::test]
#[ignore]
async fn write_throughput() {
    let Some(db) = TestDb::create("write_throughput").await else {
        return;
    };
    let store = db.store().await;
    for batch_rows in [1_i64, 50, 500, 5000] {
        let batches = (20_000 / batch_rows).clamp(20, 500);
        let start = std::time::Instant::now();
        let mut seq = store.max_seq().await.unwrap();
        for _ in 0..batches {
            let rows: Vec<PositionRow> =
                (seq + 1..=seq + batch_rows).map(|s| position(s, &format!("d{}", s % 300))).collect();
            let states: Vec<DeviceStateRow> = rows
                .iter()
                .map(|r| DeviceStateRow {
                    device_id: r.device_id.clone(),
                    seq: r.seq,
                    trusted: Some((r.fix_ms, r.lon, r.lat)),
                    marked: None,
                    fences: vec![],
                })
                .collect();
            store.write_batch(&rows, &states).await.unwrap();
            seq += batch_rows;
        }
        let elapsed = start.elapsed();
        println!(
            "{batches} commits of {batch_rows} reports: {:.2} ms per commit, {:.0} reports/s",
            elapsed.as_secs_f64() * 1000.0 / batches as f64,
            (batches * batch_rows) as f64 / elapsed.as_secs_f64()
        );
    }
    store.close().await;
    db.remove().await;
}
