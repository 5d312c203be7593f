//! What the integration tests share: a server started in-process on `127.0.0.1:0` (on
//! SQLite in a fresh directory or on a fresh PostGIS database), the `liandong` binary
//! started as a process, websocket clients of the live feed, and the clock.
//!
//! The tests of the `liandong`, `liandong-server` and `liandong-store` crates used to
//! write each of these again in every file (the store's tests take their databases and
//! rows from [`pg`] and [`rows`]); a helper a file needs in a special shape (a particular map, a
//! device registered at start) stays in that file as a thin wrapper over these.

pub mod feed;
pub mod load;
pub mod pg;
pub mod process;
pub mod rows;
pub mod schema;
pub mod server;

use std::path::{Path, PathBuf};

use liandong_server::auth::Role;
use liandong_server::config::{Config, Secret, TokenConfig};

pub use feed::Ws;
pub use server::{Backend, Server};

/// Runs an `async fn(Backend)` scenario on the embedded store and on PostGIS, as two
/// tests in a module of the scenario's name (`scenario::on_sqlite`, `scenario::on_postgis`;
/// the PostGIS one skips without `LIANDONG_TEST_PG_URL` unless `LIANDONG_REQUIRE_PG` is set).
#[macro_export]
macro_rules! on_both_stores {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                super::$scenario($crate::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgis() {
                super::$scenario($crate::Backend::Postgis).await
            }
        }
    };
}

/// The repository's root directory, where `tests/fixtures`, `maps` and `web` are.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The small test map of `tests/fixtures/maps/mini` that most tests run on.
pub fn mini_map() -> PathBuf {
    root().join("tests/fixtures/maps/mini")
}

/// A directory of its own for `name` in this test process, emptied of what an earlier run
/// left there: `liandong-tests/<process id>/<name>` in the temporary directory, so that
/// test binaries running side by side do not meet. It is not created: the server creates
/// its data directory itself. The first call of a process removes the directories of
/// test processes that have ended, so runs do not pile up in the temporary directory
/// (they used to leave some fifty directories each).
pub fn fresh_dir(name: &str) -> PathBuf {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    let runs = std::env::temp_dir().join("liandong-tests");
    SWEPT.call_once(|| sweep_ended_runs(&runs));
    let dir = runs.join(std::process::id().to_string()).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Removes each `runs/<process id>` whose process is no longer running (by `/proc`; where
/// there is none, nothing is removed).
fn sweep_ended_runs(runs: &Path) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(runs) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|n| n.parse::<u32>().is_ok()) else { continue };
        if !proc.join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The tests' configuration: the mini map, the embedded store in `data_dir` with
/// `Durability::Normal` (no fsync per commit: the tests that need full durability say so),
/// and no tokens.
pub fn config(data_dir: PathBuf) -> Config {
    let mut config = Config { data_dir, maps: mini_map(), ..Config::default() };
    config.store.durability = liandong_store::Durability::Normal;
    config
}

/// A user token of `role`, named after the token itself (an answer's actor is the token's
/// name, so a test can compare it with the token).
pub fn token(token: &str, role: Role) -> TokenConfig {
    TokenConfig { token: Secret::new(token), role, name: token.into(), unit_id: None, person_id: None }
}

/// Like [`token`], for a role bound to a unit (a patrol leader's team, an officer's post).
pub fn unit_token(token: &str, role: Role, unit_id: &str) -> TokenConfig {
    TokenConfig { unit_id: Some(unit_id.into()), ..self::token(token, role) }
}

/// Like [`unit_token`], for a token that acts for a person of the people table.
pub fn person_token(token: &str, role: Role, unit_id: Option<&str>, person_id: &str) -> TokenConfig {
    TokenConfig { unit_id: unit_id.map(Into::into), person_id: Some(person_id.into()), ..self::token(token, role) }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    let since_epoch =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("the clock is after 1970");
    i64::try_from(since_epoch.as_millis()).expect("milliseconds fit in an i64")
}

/// Seconds since the Unix epoch, now (the OsmAnd protocol's `timestamp`).
pub fn now_s() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("the clock is after 1970").as_secs()
}

/// `ms` (Unix milliseconds) as an RFC 3339 time in UTC, as cameras date their alarms.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .expect("a time the calendar holds")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 formats every time from year 0 to 9999")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run whose process has ended is swept; this process's run, and whatever is not
    /// a run, stay.
    #[test]
    fn ended_runs_are_swept_and_running_ones_kept() {
        let runs = std::env::temp_dir().join(format!("liandong-sweep-test-{}", std::process::id()));
        let ended = runs.join(u32::MAX.to_string()).join("data");
        let running = runs.join(std::process::id().to_string()).join("data");
        let other = runs.join("not-a-run");
        for d in [&ended, &running, &other] {
            std::fs::create_dir_all(d).unwrap();
        }
        sweep_ended_runs(&runs);
        assert!(!runs.join(u32::MAX.to_string()).exists(), "no process has that id");
        assert!(running.exists());
        assert!(other.exists());
        std::fs::remove_dir_all(&runs).unwrap();
    }
}
