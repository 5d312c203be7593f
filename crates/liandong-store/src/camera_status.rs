//! Each camera's liveness: when its last push was accepted and, while it is silent past
//! the server's limit, since when and under which `camera_offline` alert. Rows are
//! written by group commits (with a push's camera event, or with the offline alert), so
//! they change in sequence with everything else; these are the reads, SQL both
//! databases agree on, written once like [`crate::mediation`].
//!
//! Both backends expand [`camera_status_calls!`].

use serde::{Deserialize, Serialize};

/// A camera's liveness as stored (`camera_status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct CameraStatusRow {
    pub camera_id: String,
    /// When its last push was accepted, on the server's clock.
    pub last_seen_ms: i64,
    /// Set while it is offline: when the silence was found.
    pub offline_since_ms: Option<i64>,
    /// The `camera_offline` alert of the silence under way.
    pub offline_alert_seq: Option<i64>,
}

/// Implements the camera-status reads on `$store`.
macro_rules! camera_status_calls {
    ($store:ty) => {
        const _: () = {
            use $crate::camera_status::CameraStatusRow;
            use $crate::columns::Written;
            use $crate::error::{q, StoreError};

            impl $store {
                /// Every camera's status, by camera id, at most `limit`.
                pub async fn camera_statuses(&self, limit: u32) -> Result<Vec<CameraStatusRow>, StoreError> {
                    let sql = format!(
                        "SELECT {} FROM camera_status ORDER BY camera_id LIMIT $1",
                        CameraStatusRow::TABLE.select("")
                    );
                    sqlx::query_as(&sql)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("read camera status"))
                }

                /// The cameras heard from, not yet offline, last seen before `before_ms`,
                /// longest silent first, at most `limit` (the partial index answers it).
                pub async fn cameras_silent(
                    &self,
                    before_ms: i64,
                    limit: u32,
                ) -> Result<Vec<CameraStatusRow>, StoreError> {
                    let sql = format!(
                        "SELECT {} FROM camera_status WHERE offline_since_ms IS NULL AND last_seen_ms < $1
                         ORDER BY last_seen_ms LIMIT $2",
                        CameraStatusRow::TABLE.select("")
                    );
                    sqlx::query_as(&sql)
                        .bind(before_ms)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("read silent cameras"))
                }

                /// The statuses of the cameras named (those with one), as committed now.
                pub async fn camera_statuses_of(&self, ids: &[String]) -> Result<Vec<CameraStatusRow>, StoreError> {
                    let mut out = Vec::with_capacity(ids.len());
                    // 500 ids a statement, far under either database's parameter limit.
                    for chunk in ids.chunks(500) {
                        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
                        let sql = format!(
                            "SELECT {} FROM camera_status WHERE camera_id IN ({})",
                            CameraStatusRow::TABLE.select(""),
                            marks.join(", ")
                        );
                        let mut query = sqlx::query_as(&sql);
                        for id in chunk {
                            query = query.bind(id.as_str());
                        }
                        out.extend(query.fetch_all(&self.pool).await.map_err(q("read camera status"))?);
                    }
                    Ok(out)
                }
            }
        };
    };
}

pub(crate) use camera_status_calls;
