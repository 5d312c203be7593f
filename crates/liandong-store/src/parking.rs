//! Parking records (违停抓拍, issue 17): the list read with its filters, the counts the
//! statistics are made of, and the alerts already raised, from which a restart rebuilds
//! its de-duplication. The records themselves are written in group commits (see
//! `batch`). SQL both databases agree on, written once like [`crate::mediation`].

/// China time's offset, for the hour of day in SQL.
pub(crate) const CST_OFFSET_MS: i64 = 8 * 3_600_000;

/// Implements the parking calls on `$store`.
macro_rules! parking_calls {
    ($store:ty) => {
        const _: () = {
            use $crate::columns::Written;
            use $crate::error::{q, StoreError};
            use $crate::parking::CST_OFFSET_MS;
            use $crate::rows::{ParkingAlerted, ParkingCount, ParkingFilter, ParkingRecordRow};

            impl $store {
                /// Records matching every filter given, newest first, at most `f.limit`.
                pub async fn parking_records(&self, f: &ParkingFilter) -> Result<Vec<ParkingRecordRow>, StoreError> {
                    let sql = format!(
                        "SELECT {} FROM parking_records
                         WHERE time_ms >= $1 AND time_ms < $2 AND seq < $3
                           AND (CAST($4 AS TEXT) IS NULL OR plate = $4)
                           AND (CAST($5 AS TEXT) IS NULL OR fence_id = $5)
                           AND (CAST($6 AS TEXT) IS NULL OR post_id = $6)
                         ORDER BY seq DESC LIMIT $7",
                        ParkingRecordRow::TABLE.select("")
                    );
                    sqlx::query_as(&sql)
                        .bind(f.from_ms)
                        .bind(f.to_ms)
                        .bind(f.before.unwrap_or(i64::MAX))
                        .bind(f.plate.as_deref())
                        .bind(f.fence_id.as_deref())
                        .bind(f.post_id.as_deref())
                        .bind(i64::from(f.limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("read parking records"))
                }

                /// Records in `[from_ms, to_ms)` (of one post's jurisdiction, if given)
                /// counted by fence, camera, China-time hour and violation.
                pub async fn parking_counts(
                    &self,
                    from_ms: i64,
                    to_ms: i64,
                    post_id: Option<&str>,
                ) -> Result<Vec<ParkingCount>, StoreError> {
                    let sql = format!(
                        "SELECT fence_id, camera_id, ((time_ms + {CST_OFFSET_MS}) / 3600000) % 24 AS hour,
                                CAST(CASE WHEN window_start_ms IS NULL THEN 0 ELSE 1 END AS BIGINT) AS violation,
                                COUNT(*) AS n
                         FROM parking_records
                         WHERE time_ms >= $1 AND time_ms < $2 AND (CAST($3 AS TEXT) IS NULL OR post_id = $3)
                         GROUP BY fence_id, camera_id, ((time_ms + {CST_OFFSET_MS}) / 3600000) % 24,
                                  CAST(CASE WHEN window_start_ms IS NULL THEN 0 ELSE 1 END AS BIGINT)
                         ORDER BY fence_id, camera_id, hour, violation"
                    );
                    sqlx::query_as(&sql)
                        .bind(from_ms)
                        .bind(to_ms)
                        .bind(post_id)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("count parking records"))
                }

                /// The `no_parking` alerts raised for windows that started at or after
                /// `since_ms`, oldest first.
                pub async fn parking_alerted(&self, since_ms: i64) -> Result<Vec<ParkingAlerted>, StoreError> {
                    sqlx::query_as(
                        "SELECT plate, fence_id, window_start_ms, alert_seq FROM parking_records
                         WHERE alert_seq IS NOT NULL AND window_start_ms >= $1 AND fence_id IS NOT NULL
                         ORDER BY seq",
                    )
                    .bind(since_ms)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(q("read parking alerts"))
                }
            }
        };
    };
}

pub(crate) use parking_calls;
