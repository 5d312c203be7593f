//! Retention: location reports and camera events older than `store.retention_days`
//! go, each device's last report stays (the live state refers to it). Camera snapshots
//! and grid members' photos older than `store.image_retention_days` are deleted from the
//! store, so that months of checkpoint captures do not fill the disk.
//!
//! How old rows go depends on the store. SQLite deletes them in small batches with
//! pauses between them, so that ingest's group commits (which share the embedded
//! store's one writer connection) are never held up for long. PostgreSQL keeps
//! `positions` and `camera_events` in monthly partitions (migration 0021) and drops a
//! month once all of it is older than the cutoff, a few milliseconds under a lock it
//! waits for at most 100 ms at a time (asked for again a few times within a round);
//! rows older than the cutoff in a month that is not yet wholly past it stay until
//! their month goes (up to a month longer than `retention_days`). The months ahead
//! are made at startup (this month and the next two) and then daily, so that ingest
//! writes into a month of its own and never meets a missing one (a row of a month not
//! made goes to the default partition anyway).

use std::future::Future;
use std::time::Duration;

use std::sync::Weak;

use liandong_store::{Pruned, Store};

use crate::time_fmt::now_ms;
use crate::AppState;

/// Rows per delete: a few milliseconds of work on either store.
pub const PRUNE_BATCH: u32 = 2_000;
/// The pause between two deletes, in which commits go first.
const PAUSE: Duration = Duration::from_millis(50);
/// How often the pruner looks for old reports.
const EVERY: Duration = Duration::from_secs(600);

/// Deletes everything older than `now - retention_ms`, batch by batch: reports, then
/// camera events. Returns how many rows were deleted; stops early (keeping what is left
/// for the next round) when `stop` resolves. The embedded store's way; see
/// [`prune_partitions`] for PostgreSQL's.
pub async fn prune_once(
    store: &Store,
    retention_ms: i64,
    now_ms: i64,
    stop: &mut (impl Future<Output = ()> + Unpin),
) -> u64 {
    let before = now_ms - retention_ms;
    let mut total = 0;
    for events in [false, true] {
        loop {
            let batch = if events {
                store.prune_camera_events(before, PRUNE_BATCH).await
            } else {
                store.prune_positions(before, PRUNE_BATCH).await
            };
            match batch {
                Ok(n) => {
                    total += n;
                    if n < u64::from(PRUNE_BATCH) {
                        break;
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
    total
}

/// Tries to drop a busy month this many times a round before leaving it to the next.
const BUSY_TRIES: u32 = 3;
/// The pause between two tries at a busy month.
const BUSY_PAUSE: Duration = Duration::from_secs(2);

/// Retention on PostgreSQL: drops every month of reports and camera events wholly older
/// than `now - retention_ms` ([`Store::prune_before`], which itself asks again for a
/// month busy for a moment, within half a second). A month whose table a long query
/// holds is tried again after a longer pause, a few times, then left to the next round.
/// Returns what was pruned, added up over the tries; stops early when `stop` resolves.
/// The months' files go after ([`Store::remove_detached`]), holding no lock.
pub async fn prune_partitions(
    store: &Store,
    retention_ms: i64,
    now_ms: i64,
    stop: &mut (impl Future<Output = ()> + Unpin),
) -> Pruned {
    let total = prune_months(store, retention_ms, now_ms, stop).await;
    match store.remove_detached().await {
        Ok(n) if n > 0 => tracing::info!(tables = n, "the dropped months' files removed"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "removing dropped months failed; trying again next round"),
    }
    total
}

/// [`prune_partitions`]'s first step: the months taken out of their tables.
async fn prune_months(
    store: &Store,
    retention_ms: i64,
    now_ms: i64,
    stop: &mut (impl Future<Output = ()> + Unpin),
) -> Pruned {
    let mut total = Pruned::default();
    for _ in 0..BUSY_TRIES {
        match store.prune_before(now_ms - retention_ms).await {
            Ok(p) => {
                total.partitions.extend(p.partitions);
                total.rows_deleted += p.rows_deleted;
                total.reports_kept += p.reports_kept;
                total.busy = p.busy;
                total.left = p.left;
                if !p.busy {
                    return total;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "dropping old months failed; trying again later");
                return total;
            }
        }
        tokio::select! {
            _ = &mut *stop => return total,
            _ = tokio::time::sleep(BUSY_PAUSE) => {}
        }
    }
    total
}

/// How many months [`ensure_months_ahead`] makes: this one and the next two.
pub const MONTHS_AHEAD: u32 = 3;

/// How often the months ahead are checked.
pub const MONTHS_EVERY: Duration = Duration::from_secs(86_400);

/// The first instant (Unix ms) of the UTC calendar month `months` after the one `ms`
/// is in: the partitions' months.
pub fn month_start_ms(ms: i64, months: u32) -> i64 {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let index = i64::from(at.year()) * 12 + i64::from(u8::from(at.month())) - 1 + i64::from(months);
    let (year, month) = (index.div_euclid(12), index.rem_euclid(12) + 1);
    let first = time::Month::try_from(month as u8)
        .ok()
        .and_then(|m| time::Date::from_calendar_date(year as i32, m, 1).ok())
        .unwrap_or(time::Date::MIN);
    first.midnight().assume_utc().unix_timestamp() * 1000
}

/// Makes the partitions of this month and the next two, if missing ([`MONTHS_AHEAD`]);
/// answers how many it made. A table busy past the lock timeout is tried a few times.
/// On SQLite there is nothing to make.
pub async fn ensure_months_ahead(store: &Store, now_ms: i64) -> Result<u32, liandong_store::StoreError> {
    let (from, to) = (month_start_ms(now_ms, 0), month_start_ms(now_ms, MONTHS_AHEAD));
    let mut tries = 0;
    loop {
        match store.ensure_partitions(from, to).await {
            Err(e) if Store::is_lock_timeout(&e) && tries + 1 < BUSY_TRIES => {
                tries += 1;
                tokio::time::sleep(BUSY_PAUSE).await;
            }
            answer => return answer,
        }
    }
}

/// Makes this month's partitions and the next two's (PostgreSQL), saying what it did:
/// at startup, before ingest writes, and daily. A failure does not stop the server:
/// the default partition takes the rows of a missing month, and the next day tries
/// again.
pub async fn make_months_ahead(store: &Store) {
    match ensure_months_ahead(store, now_ms()).await {
        Ok(0) => {}
        Ok(made) => tracing::info!(made, "monthly partitions made ahead"),
        Err(e) => tracing::warn!(
            error = %e,
            "making the months ahead failed; the default partition takes their rows until the next try"
        ),
    }
}

/// Makes the months ahead every [`MONTHS_EVERY`] (the first tick at once) until the
/// server stops.
pub async fn keep_months_ahead(state: Weak<AppState>, shutdown: tokio::sync::watch::Receiver<bool>) {
    crate::clock::every(state, shutdown, MONTHS_EVERY, |s| async move { make_months_ahead(&s.store).await }).await;
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
            let retention_ms = i64::from(r.reports_days) * DAY_MS;
            if store.backend() == "postgres" {
                let p = prune_partitions(&store, retention_ms, now_ms(), &mut stop).await;
                if !p.partitions.is_empty() || p.rows_deleted > 0 {
                    tracing::info!(
                        months = ?p.partitions,
                        deleted = p.rows_deleted,
                        last_reports_kept = p.reports_kept,
                        retention_days = r.reports_days,
                        "old months of reports and camera events dropped"
                    );
                }
            } else {
                let deleted = prune_once(&store, retention_ms, now_ms(), &mut stop).await;
                if deleted > 0 {
                    tracing::info!(
                        deleted,
                        retention_days = r.reports_days,
                        "old location reports and camera events pruned"
                    );
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_start_on_the_first_at_midnight_utc_and_roll_over_the_year() {
        // (a time, months later, the first instant of that month), all UTC.
        let cases = [
            (1_796_083_200_000, 0, 1_796_083_200_000), // 2026-12-01T00:00Z itself
            (1_798_761_599_999, 0, 1_796_083_200_000), // 2026-12-31T23:59:59.999Z
            (1_796_300_000_000, 1, 1_798_761_600_000), // December → 2027-01
            (1_796_300_000_000, 2, 1_801_440_000_000), // → 2027-02
            (1_796_300_000_000, 3, 1_803_859_200_000), // → 2027-03 (February has 28 days)
            (951_782_400_000, 1, 951_868_800_000),     // 2000-02-29 → 2000-03-01
            (0, 0, 0),
        ];
        for (at, months, want) in cases {
            assert_eq!(month_start_ms(at, months), want, "{at} + {months} months");
        }
    }
}
