//! Retention: location reports older than `store.retention_days` are deleted in small
//! batches with pauses between them, so that ingest's group commits (which share the
//! embedded store's one writer connection) are never held up for long. Each device's
//! last report stays: the live state refers to it. Camera snapshots and grid members'
//! photos older than `store.image_retention_days` are deleted from the store, so that
//! months of checkpoint captures do not fill the disk.

use std::future::Future;
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

/// What to prune, from the configuration: 0 days keeps that kind of data.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub reports_days: u32,
    pub images_days: u32,
}

pub(crate) const DAY_MS: i64 = 86_400_000;

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
            match store.prune_images(now_ms() - i64::from(r.images_days) * DAY_MS).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, retention_days = r.images_days, "old images deleted"),
                Err(e) => tracing::warn!(error = %e, "deleting old images failed; trying again later"),
            }
        }
    }
}
