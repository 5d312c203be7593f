//! Retention: location reports older than `store.retention_days` are deleted in small
//! batches with pauses between them, so that ingest's group commits (which share the
//! embedded store's one writer connection) are never held up for long. Each device's
//! last report stays: the live state refers to it. Camera snapshots and grid members'
//! photos older than `store.image_retention_days` are deleted from the images directory,
//! so that months of checkpoint captures do not fill the disk.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use liandong_store::Store;

use crate::time_fmt::now_ms;

/// Rows per delete: a few milliseconds of work on either store.
pub const PRUNE_BATCH: u32 = 2_000;
/// The pause between two deletes, in which commits go first.
const PAUSE: Duration = Duration::from_millis(50);
/// How often the pruner looks for old reports.
const EVERY: Duration = Duration::from_secs(600);

/// Deletes everything older than `now - retention_ms`, batch by batch. Returns how many
/// reports were deleted; stops early (keeping what is left for the next round) when
/// `stop` resolves.
pub async fn prune_once(
    store: &Store,
    retention_ms: i64,
    now_ms: i64,
    stop: &mut (impl Future<Output = ()> + Unpin),
) -> u64 {
    let before = now_ms - retention_ms;
    let mut total = 0;
    loop {
        match store.prune_positions(before, PRUNE_BATCH).await {
            Ok(n) => {
                total += n;
                if n < u64::from(PRUNE_BATCH) {
                    return total;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "pruning old reports failed; trying again later");
                return total;
            }
        }
        tokio::select! {
            _ = &mut *stop => return total,
            _ = tokio::time::sleep(PAUSE) => {}
        }
    }
}

/// When an image was stored, from its name (`{unix ms}-{salt}-{n}.jpg`, as
/// `cameras::store_images` names them); `None` for any other name.
pub fn image_stamp_ms(name: &str) -> Option<i64> {
    let (stamp, rest) = name.split_once('-')?;
    if !rest.ends_with(".jpg") || stamp.is_empty() || !stamp.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stamp.parse().ok()
}

/// Deletes the images in `dir` stored before `before_ms` (by the time in their names;
/// files named otherwise are left alone). Returns how many were deleted. Blocking.
pub fn prune_images(dir: &Path, before_ms: i64) -> std::io::Result<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut deleted = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let old = name.to_str().and_then(image_stamp_ms).is_some_and(|stamp| stamp < before_ms);
        if old {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => deleted += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(deleted)
}

/// What to prune, from the configuration: 0 days keeps that kind of data.
#[derive(Debug, Clone)]
pub struct Retention {
    pub reports_days: u32,
    pub images_days: u32,
    pub images_dir: PathBuf,
}

const DAY_MS: i64 = 86_400_000;

/// Prunes every [`EVERY`] until `stop` resolves.
pub async fn run(store: Store, r: Retention, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let mut every = tokio::time::interval(EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = every.tick() => {}
        }
        if r.reports_days > 0 {
            let deleted = prune_once(&store, i64::from(r.reports_days) * DAY_MS, now_ms(), &mut stop).await;
            if deleted > 0 {
                tracing::info!(deleted, retention_days = r.reports_days, "old location reports pruned");
            }
        }
        if r.images_days > 0 {
            let (dir, before) = (r.images_dir.clone(), now_ms() - i64::from(r.images_days) * DAY_MS);
            match tokio::task::spawn_blocking(move || prune_images(&dir, before)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(deleted)) => tracing::info!(deleted, retention_days = r.images_days, "old images deleted"),
                Ok(Err(e)) => tracing::warn!(error = %e, "deleting old images failed; trying again later"),
                Err(e) => tracing::warn!(error = %e, "the image pruner stopped"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_carry_their_time() {
        let rows = [
            ("1795777449608-abc123def456-0.jpg", Some(1_795_777_449_608)),
            ("1795777449608-x-12.jpg", Some(1_795_777_449_608)),
            ("1795777449608-x-0.png", None),
            ("evidence.jpg", None),
            ("-x-0.jpg", None),
            ("12a4-x-0.jpg", None),
            ("99999999999999999999999-x-0.jpg", None),
        ];
        for (name, want) in rows {
            assert_eq!(image_stamp_ms(name), want, "{name}");
        }
    }

    #[test]
    fn old_images_go_and_everything_else_stays() {
        let dir = std::env::temp_dir().join(format!("liandong-images-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let names = ["1000-a-0.jpg", "1999-b-1.jpg", "2000-c-0.jpg", "3000-d-0.jpg", "notes.txt", "500.jpg"];
        for n in names {
            std::fs::write(dir.join(n), [0xFF, 0xD8]).unwrap();
        }
        assert_eq!(prune_images(&dir, 2000).unwrap(), 2);
        let mut left: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["2000-c-0.jpg", "3000-d-0.jpg", "500.jpg", "notes.txt"]);
        assert_eq!(prune_images(&dir.join("missing"), 2000).unwrap(), 0, "no directory yet: nothing to do");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
