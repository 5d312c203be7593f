//! PostGIS for the tests: the cluster named by `LIANDONG_TEST_PG_URL`, and a fresh
//! database on it for each test.
//!
//! Without the variable a test is skipped with a printed line, unless
//! `LIANDONG_REQUIRE_PG=1` (set by `scripts/test`), where a missing cluster is a failure:
//! a run that is meant to cover PostGIS must not pass by skipping it.

use sqlx::Connection;

/// The test cluster's URL, or None (after printing that `test` is skipped) when there is
/// none and none is required. Panics when `LIANDONG_REQUIRE_PG=1` and there is none.
pub fn cluster(test: &str) -> Option<String> {
    match std::env::var("LIANDONG_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("LIANDONG_REQUIRE_PG").as_deref() == Ok("1") => {
            panic!("LIANDONG_REQUIRE_PG=1 but LIANDONG_TEST_PG_URL is not set: start a cluster with scripts/pg start")
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
    let base = cluster_url.rsplit_once('/').map_or(cluster_url, |(base, _)| base);
    format!("{base}/{db}")
}
