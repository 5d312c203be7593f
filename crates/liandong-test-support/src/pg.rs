//! PostGIS for the tests: the cluster named by `LIANDONG_TEST_PG_URL`, a fresh database
//! on it for each test ([`fresh_database`] for a server's, [`TestDb`] for a store's own
//! that the test drops at its end), and a SQLite store in a fresh directory beside it.
//!
//! Without the variable a test is skipped with a printed line, unless
//! `LIANDONG_REQUIRE_PG=1` (set by `scripts/test`), where a missing cluster is a failure:
//! a run that is meant to cover PostGIS must not pass by skipping it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use liandong_store::{Durability, Store};
use sqlx::{Connection, Executor, PgConnection};

/// The test cluster's URL, or None (after printing that `test` is skipped) when there is
/// none and none is required. Panics when `LIANDONG_REQUIRE_PG=1` and there is none.
pub fn cluster(test: &str) -> Option<String> {
    match std::env::var("LIANDONG_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("LIANDONG_REQUIRE_PG").as_deref() == Ok("1") => {
            panic!(
                "{test}: LIANDONG_REQUIRE_PG=1 but LIANDONG_TEST_PG_URL is not set; set it to a PostgreSQL + PostGIS \
                 superuser URL (scripts/pg start prints one)"
            )
        }
        _ => {
            eprintln!("skipped {test}: LIANDONG_TEST_PG_URL is not set (scripts/pg start prints one)");
            None
        }
    }
}

/// A fresh, empty database for `name` on the cluster at `cluster_url` (dropped first if
/// an earlier run of this process left it); answers its URL. The database is named after
/// `name` and this process, so that test binaries running side by side do not meet.
pub async fn fresh_database(cluster_url: &str, name: &str) -> String {
    let mut conn = sqlx::PgConnection::connect(cluster_url).await.expect("the test cluster answers");
    let db = format!("t_{}_{}", name.replace('-', "_"), std::process::id());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).execute(&mut conn).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {db}")).execute(&mut conn).await.unwrap();
    with_database(cluster_url, &db)
}

/// A database of one test's own on the test cluster, dropped by [`TestDb::remove`].
pub struct TestDb {
    cluster_url: String,
    /// The database's name.
    pub name: String,
    /// Its URL.
    pub url: String,
}

impl TestDb {
    /// A new, empty database for `test` (named uniquely, so that one test may have
    /// several); None when there is no cluster and none is required (see [`cluster`]).
    pub async fn create(test: &str) -> Option<TestDb> {
        TestDb::create_as(test, None).await
    }

    /// Like [`TestDb::create`], with an ICU English collation where the server has ICU:
    /// it sorts "cam-a" before "Cam-Z", where SQLite's byte order puts upper case
    /// first, so that every order a test checks on both stores must hold here too.
    /// Falls back to the server's default (saying so) when the server has no ICU.
    pub async fn create_with_icu(test: &str) -> Option<TestDb> {
        TestDb::create_as(test, Some("LOCALE_PROVIDER icu ICU_LOCALE 'en-US' TEMPLATE template0")).await
    }

    async fn create_as(test: &str, options: Option<&str>) -> Option<TestDb> {
        let cluster_url = cluster(test)?;
        let name = unique_name("t");
        let mut admin = PgConnection::connect(&cluster_url).await.expect("connect to the test cluster");
        let made = match options {
            Some(o) => admin.execute(format!("CREATE DATABASE {name} {o}").as_str()).await.map_err(|e| {
                println!("{test}: CREATE DATABASE … {o} failed ({e}); using the server's default");
            }),
            None => Err(()),
        };
        if made.is_err() {
            admin.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create the test database");
        }
        admin.close().await.expect("close the admin connection");
        let url = with_database(&cluster_url, &name);
        Some(TestDb { cluster_url, name, url })
    }

    /// A connection of its own to the database, for what a test reads or does beside
    /// the store.
    pub async fn sql(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.expect("connect to the test database")
    }

    /// Drops the database, closing whatever is still connected to it.
    pub async fn remove(self) {
        let mut admin = PgConnection::connect(&self.cluster_url).await.expect("connect to the test cluster");
        admin.execute(format!("DROP DATABASE {} WITH (FORCE)", self.name).as_str()).await.expect("drop the database");
        admin.close().await.expect("close the admin connection");
    }
}

/// The embedded store in a fresh directory for `name` ([`crate::fresh_dir`]), with
/// `Durability::Normal` (the tests need no fsync); answers the store and its directory,
/// for the test to remove after closing the store.
pub async fn sqlite_store(name: &str) -> (Store, PathBuf) {
    let dir = crate::fresh_dir(name);
    let store = Store::open(&dir, Durability::Normal).await.expect("open the SQLite store");
    (store, dir)
}

/// A name no other test (nor another run of this one) uses: `prefix`, the process, the
/// clock's nanoseconds and a counter.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("a clock after 1970").subsec_nanos();
    format!("{prefix}_{}_{}_{}", std::process::id(), nanos, COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// `url` with its database (the path) replaced, keeping any `?query`.
pub fn with_database(url: &str, database: &str) -> String {
    let (main, query) = match url.split_once('?') {
        Some((m, q)) => (m, format!("?{q}")),
        None => (url, String::new()),
    };
    let host_at = main.find("://").map_or(0, |i| i + 3);
    let path_at = main[host_at..].find('/').map_or(main.len(), |i| host_at + i);
    format!("{}/{database}{query}", &main[..path_at])
}
