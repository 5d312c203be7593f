//! The calls whose SQL the two databases agree on, written once. Both backends expand
//! [`shared_calls!`] over their store type; the SQL uses `$n` placeholders, which
//! PostgreSQL takes natively and sqlx's SQLite driver binds by number, and portable
//! spellings (`CAST(… AS TEXT)` rather than `::text`, a boolean column tested by its
//! own truth, `COUNT(*) FILTER (…)`). What really differs (PostGIS boxes, `DISTINCT
//! ON`, the write lock, images) stays in each backend.
//!
//! A store that expands it provides `pool` (its readers), `write_pool()` (where
//! single-row updates go: SQLite's one writer connection), `announce_registry()`
//! (PostgreSQL tells the other instances; SQLite has none), `begin_write()` and
//! `finish_write()` (the write lock and the inserts), `in_bbox(alias)`, the
//! condition "inside the box of `$1` to `$4`" (PostgreSQL asks its GiST index first), and
//! `NEWEST_FIXES_SQL`, each device's newest fix time.

use crate::columns::{Table, Written};
use crate::feed::FeedTables;
use crate::rows::STATE_COLUMNS;

/// Most (device, fix time) keys one statement of [`stored_fixes_sql`] looks up: two
/// parameters each, far under either database's limit.
pub(crate) const FIX_KEYS_PER_QUERY: usize = 500;

/// The reports stored at `n` (device, fix time) keys, bound as `$1, $2` (the first key's
/// device and time), `$3, $4`, …: the keys join the (device_id, fix_ms) index, so each
/// costs one index lookup however long the table. Several reports at one key (stored
/// before fixes were keyed, or without a time of their own) come lowest number first.
pub(crate) fn stored_fixes_sql(n: usize) -> String {
    let keys: Vec<String> =
        (0..n).map(|i| format!("(CAST(${} AS TEXT), CAST(${} AS BIGINT))", 2 * i + 1, 2 * i + 2)).collect();
    format!(
        "WITH k (device_id, fix_ms) AS (VALUES {})
         SELECT p.device_id, p.fix_ms, p.seq, p.flags FROM k
         JOIN positions p ON p.device_id = k.device_id AND p.fix_ms = k.fix_ms
         ORDER BY p.seq",
        keys.join(", ")
    )
}

/// The rows of a sequenced table committed after a number, oldest first.
pub(crate) fn after_sql(table: &Table) -> String {
    format!("SELECT {} FROM {} WHERE seq > $1 ORDER BY seq LIMIT $2", table.select(""), table.name)
}

/// Every device's state beside its last report (the report's columns keep their names).
pub(crate) fn device_states_sql() -> String {
    format!(
        "SELECT {STATE_COLUMNS}, {} FROM device_state d LEFT JOIN positions p ON p.seq = d.seq ORDER BY d.device_id",
        crate::PositionRow::TABLE.select("p.")
    )
}

/// The first `$2` feed rows after `$1` over the chosen tables, in one statement (one
/// snapshot): each table gives at most `$2` rows by its primary key, as the union of
/// every chosen table's columns with the table named in `feed_table`; the union is cut
/// to `$2`. Rows are then read by column name, each as its table's row type. A column a
/// table lacks is a NULL of the column's type: PostgreSQL types a union arm by arm, and
/// an untyped NULL would be taken for text.
pub(crate) fn feed_sql(tables: FeedTables) -> Option<String> {
    let chosen: Vec<&Table> = tables.tables().collect();
    let mut columns: Vec<(&str, &str)> = Vec::new();
    for &(c, ty) in chosen.iter().flat_map(|t| t.columns) {
        if !columns.iter().any(|(seen, _)| *seen == c) {
            columns.push((c, ty));
        }
    }
    let branch = |t: &Table| {
        let has = |c: &str| t.columns.iter().any(|(own, _)| *own == c);
        let list: Vec<String> = columns
            .iter()
            .map(|&(c, ty)| if has(c) { c.to_string() } else { format!("CAST(NULL AS {ty}) AS {c}") })
            .collect();
        format!(
            "SELECT '{name}' AS feed_table, {list} \
             FROM (SELECT {own} FROM {name} WHERE seq > $1 ORDER BY seq LIMIT $2) AS {name}",
            name = t.name,
            list = list.join(", "),
            own = t.select(""),
        )
    };
    let branches: Vec<String> = chosen.iter().map(|t| branch(t)).collect();
    (!branches.is_empty())
        .then(|| format!("SELECT * FROM ({}) AS feed ORDER BY seq LIMIT $2", branches.join(" UNION ALL ")))
}

/// The first time each incident took one action, as a column named `alias`.
fn milestone(action: &str, alias: &str) -> String {
    format!(
        "(SELECT MIN(at_ms) FROM incident_events e WHERE e.incident_id = i.incident_id AND e.action = '{action}')
         AS {alias}"
    )
}

/// Every incident created in `[$1, $2]` with its milestones, oldest first.
pub(crate) fn incident_facts_sql() -> String {
    format!(
        "SELECT i.incident_id, i.kind, i.township, i.priority, i.state, i.created_ms, {}, {}, {}, {}
         FROM incidents i WHERE i.created_ms BETWEEN $1 AND $2 ORDER BY i.incident_id",
        milestone("dispatch", "dispatched_ms"),
        milestone("sign", "signed_ms"),
        milestone("arrive", "on_scene_ms"),
        milestone("close", "closed_ms"),
    )
}

/// The longest a duty shift may be (a day), which bounds the roster's reads by start.
pub(crate) const MAX_SHIFT_MS: i64 = 24 * 3600 * 1000;

/// The columns of a [`crate::PersonRecord`], in its order.
pub(crate) const PEOPLE_COLUMNS: &str =
    "person_id, name, phone, roles, unit_kind, unit_id, active, created_ms, updated_ms";

/// The columns of a [`crate::TaggedPerson`], in its order.
pub(crate) const TAGGED_COLUMNS: &str =
    "person_id, name, category, note, roles, updated_ms, device_id, zone_rules, post_id";

/// Implements the shared calls on `$store`, whose rows are `$row`.
macro_rules! shared_calls {
    ($store:ty, $row:ty) => {
        const _: () = {
            use sqlx::FromRow;
            use $crate::batch::{check_numbers, Batch};
            use $crate::columns::Written;
            use $crate::error::{q, StoreError};
            use $crate::feed::{FeedRow, FeedTables};
            use $crate::shared;
            use $crate::rows::*;

            impl $store {
                /// Rows of `R`'s table after a sequence number, oldest first.
                async fn rows_after<R>(&self, after: i64, limit: u32, op: &'static str) -> Result<Vec<R>, StoreError>
                where
                    R: Written + for<'r> FromRow<'r, $row> + Send + Unpin,
                {
                    sqlx::query_as(&shared::after_sql(&R::TABLE))
                        .bind(after)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q(op))
                }

                pub async fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
                    sqlx::query_as(
                        "SELECT device_id, name, kind, unit_id, key, created_ms, updated_ms, person_id
                         FROM devices ORDER BY device_id",
                    )
                    .fetch_all(&self.pool)
                    .await
                    .map_err(q("list devices"))
                }

                /// Reports with a sequence number above `after`, oldest first, at most
                /// `limit`: the live feed's replay for a client that reconnects with `since`.
                pub async fn positions_after(&self, after: i64, limit: u32) -> Result<Vec<PositionRow>, StoreError> {
                    self.rows_after(after, limit, "read positions after a sequence number").await
                }

                /// Every device's live state with its last report, to rebuild memory after
                /// a restart, by device id.
                pub async fn device_states(&self) -> Result<Vec<(DeviceStateRow, Option<PositionRow>)>, StoreError> {
                    let rows = sqlx::query(&shared::device_states_sql())
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("read device states"))?;
                    let pair = |r: &$row| -> Result<(DeviceStateRow, Option<PositionRow>), sqlx::Error> {
                        let state = StateColumns::from_row(r)?.into();
                        let has_last = sqlx::Row::try_get::<Option<i64>, _>(r, "seq")?.is_some();
                        Ok((state, if has_last { Some(PositionRow::from_row(r)?) } else { None }))
                    };
                    rows.iter().map(pair).collect::<Result<_, _>>().map_err(q("read device states"))
                }

                /// How many feed events have a sequence number above `after`.
                pub async fn count_after(&self, after: i64) -> Result<i64, StoreError> {
                    sqlx::query_scalar(
                        "SELECT (SELECT COUNT(*) FROM positions WHERE seq > $1)
                              + (SELECT COUNT(*) FROM alerts WHERE seq > $1)
                              + (SELECT COUNT(*) FROM incident_events WHERE seq > $1)
                              + (SELECT COUNT(*) FROM route_events WHERE seq > $1)
                              + (SELECT COUNT(*) FROM alert_acks WHERE seq > $1)
                              + (SELECT COUNT(*) FROM escalations WHERE seq > $1)",
                    )
                    .bind(after)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(q("count positions after a sequence number"))
                }

                pub async fn count_positions(&self, device_id: Option<&str>) -> Result<i64, StoreError> {
                    // Two statements rather than `$1 IS NULL OR …`, so each has a plan of
                    // its own (the device's count uses the (device_id, fix_ms) index).
                    let n = match device_id {
                        Some(d) => {
                            sqlx::query_scalar("SELECT COUNT(*) FROM positions WHERE device_id = $1")
                                .bind(d)
                                .fetch_one(&self.pool)
                                .await
                        }
                        None => sqlx::query_scalar("SELECT COUNT(*) FROM positions").fetch_one(&self.pool).await,
                    };
                    n.map_err(q("count positions"))
                }

                /// The report stored at each (device, fix time) key that has one, in
                /// sequence order: a key with several (the lowest number is the original)
                /// appears once per report.
                pub async fn stored_fixes(&self, keys: &[(&str, i64)]) -> Result<Vec<FixAck>, StoreError> {
                    let mut found = Vec::new();
                    for chunk in keys.chunks(shared::FIX_KEYS_PER_QUERY) {
                        let sql = shared::stored_fixes_sql(chunk.len());
                        let mut query = sqlx::query_as::<_, (String, i64, i64, i64)>(&sql);
                        for (device_id, fix_ms) in chunk {
                            query = query.bind(*device_id).bind(*fix_ms);
                        }
                        let rows = query.fetch_all(&self.pool).await.map_err(q("look up stored fixes"))?;
                        for (device_id, fix_ms, seq, flags) in rows {
                            let flags = u32::try_from(flags).map_err(|e| StoreError::Query {
                                op: "look up stored fixes",
                                source: sqlx::Error::ColumnDecode { index: "flags".into(), source: Box::new(e) },
                            })?;
                            found.push(FixAck { device_id, fix_ms, seq, flags });
                        }
                    }
                    found.sort_by_key(|f| f.seq);
                    Ok(found)
                }

                /// Each device's newest stored fix time, by device id: a fix newer than
                /// its device's cannot be one already stored. One index lookup per device
                /// that has a state, however long the table.
                pub async fn newest_fixes(&self) -> Result<Vec<(String, i64)>, StoreError> {
                    // A subquery per device rather than a GROUP BY over the table: each
                    // is one step down the (device_id, fix_ms) index, where the GROUP BY
                    // would read every entry of it. The SQL is the backend's
                    // (`NEWEST_FIXES_SQL`): on PostgreSQL the comparison must name the
                    // index's collation.
                    let rows: Vec<(String, Option<i64>)> = sqlx::query_as(NEWEST_FIXES_SQL)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("read each device's newest fix"))?;
                    Ok(rows.into_iter().filter_map(|(d, t)| Some((d, t?))).collect())
                }

                /// Sequence numbers of a device's reports, oldest first (for tests and audits).
                pub async fn position_seqs(&self, device_id: &str) -> Result<Vec<i64>, StoreError> {
                    sqlx::query_scalar("SELECT seq FROM positions WHERE device_id = $1 ORDER BY seq")
                        .bind(device_id)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("list positions"))
                }

                pub async fn upsert_camera(&self, c: &CameraRecord) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO cameras (camera_id, name, kind, lon, lat, key, updated_ms)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)
                         ON CONFLICT (camera_id) DO UPDATE SET name = excluded.name, kind = excluded.kind,
                           lon = excluded.lon,
                           lat = excluded.lat, key = excluded.key, updated_ms = excluded.updated_ms",
                    )
                    .bind(&c.camera_id)
                    .bind(&c.name)
                    .bind(&c.kind)
                    .bind(c.lon)
                    .bind(c.lat)
                    .bind(&c.key)
                    .bind(c.updated_ms)
                    .execute(&self.pool)
                    .await
                    .map_err(q("upsert camera"))?;
                    self.announce_registry("cameras");
                    Ok(())
                }

                pub async fn cameras(&self) -> Result<Vec<CameraRecord>, StoreError> {
                    sqlx::query_as(
                        "SELECT camera_id, name, kind, lon, lat, key, updated_ms FROM cameras ORDER BY camera_id",
                    )
                    .fetch_all(&self.pool)
                    .await
                    .map_err(q("list cameras"))
                }

                pub async fn upsert_watch(&self, w: &WatchRecord) -> Result<(), StoreError> {
                    Self::upsert_watch_in(&self.pool, w).await?;
                    self.announce_registry("watchlist");
                    Ok(())
                }

                /// Inserts or replaces a watch-list entry on `e` (the pool, or a
                /// transaction that writes more with it).
                async fn upsert_watch_in<'e>(
                    e: impl sqlx::Executor<'e, Database = <$row as sqlx::Row>::Database>,
                    w: &WatchRecord,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO watchlist
                           (watch_id, kind, value, reason, priority, valid_from, valid_to, roles, updated_ms)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                         ON CONFLICT (watch_id) DO UPDATE SET kind = excluded.kind, value = excluded.value,
                           reason = excluded.reason,
                           priority = excluded.priority, valid_from = excluded.valid_from, valid_to = excluded.valid_to,
                           roles = excluded.roles, updated_ms = excluded.updated_ms",
                    )
                    .bind(&w.watch_id)
                    .bind(&w.kind)
                    .bind(&w.value)
                    .bind(&w.reason)
                    .bind(w.priority)
                    .bind(w.valid_from)
                    .bind(w.valid_to)
                    .bind(sqlx::types::Json(&w.roles))
                    .bind(w.updated_ms)
                    .execute(e)
                    .await
                    .map_err(q("upsert watch-list entry"))?;
                    Ok(())
                }

                pub async fn watchlist(&self) -> Result<Vec<WatchRecord>, StoreError> {
                    sqlx::query_as(
                        "SELECT watch_id, kind, value, reason, priority, valid_from, valid_to, roles, updated_ms
                         FROM watchlist ORDER BY watch_id",
                    )
                    .fetch_all(&self.pool)
                    .await
                    .map_err(q("list watch list"))
                }

                /// Alerts with a sequence number above `after`, oldest first, at most `limit`.
                pub async fn alerts_after(&self, after: i64, limit: u32) -> Result<Vec<AlertRow>, StoreError> {
                    self.rows_after(after, limit, "read alerts after a sequence number").await
                }

                /// One alert by its sequence number.
                pub async fn alert(&self, seq: i64) -> Result<Option<AlertRow>, StoreError> {
                    sqlx::query_as(&format!("SELECT {} FROM alerts WHERE seq = $1", AlertRow::TABLE.select("")))
                        .bind(seq)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(q("read an alert"))
                }

                /// Alerts raised in `[from_ms, to_ms]`, oldest first.
                pub async fn alert_facts(&self, from_ms: i64, to_ms: i64) -> Result<Vec<AlertFact>, StoreError> {
                    sqlx::query_as(
                        "SELECT seq, rule, priority, township, time_ms, roles FROM alerts
                         WHERE time_ms BETWEEN $1 AND $2 ORDER BY time_ms, seq",
                    )
                    .bind(from_ms)
                    .bind(to_ms)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(q("read alerts for statistics"))
                }

                /// Active reads of one plate (`person == false`) or one person id in
                /// `[from_ms, to_ms]`, oldest first, at most `limit` (the newest ones when more).
                pub async fn sightings(
                    &self,
                    person: bool,
                    value: &str,
                    from_ms: i64,
                    to_ms: i64,
                    limit: u32,
                ) -> Result<Vec<SightingRow>, StoreError> {
                    let column = if person { "person_id" } else { "plate" };
                    // `seq DESC` breaks ties of time in the inner cut, so which reads are
                    // kept when more than `limit` share the boundary's time does not
                    // depend on the plan.
                    sqlx::query_as(&format!(
                        "SELECT seq AS event_seq, camera_id, time_ms FROM (
                            SELECT seq, camera_id, time_ms FROM camera_events
                            WHERE {column} = $1 AND active AND time_ms BETWEEN $2 AND $3
                            ORDER BY time_ms DESC, seq DESC LIMIT $4
                         ) AS newest ORDER BY time_ms, seq"
                    ))
                    .bind(value)
                    .bind(from_ms)
                    .bind(to_ms)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(q("read sightings"))
                }

                pub async fn count_camera_events(&self, camera_id: &str) -> Result<i64, StoreError> {
                    sqlx::query_scalar("SELECT COUNT(*) FROM camera_events WHERE camera_id = $1")
                        .bind(camera_id)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(q("count camera events"))
                }

                /// Acknowledgements with a sequence number above `after`, oldest first.
                pub async fn alert_acks_after(&self, after: i64, limit: u32) -> Result<Vec<AlertAckRow>, StoreError> {
                    self.rows_after(after, limit, "read alert acknowledgements after a sequence number").await
                }

                /// Incidents not closed or cancelled, to rebuild the sequencer's state,
                /// oldest first.
                pub async fn open_incidents(&self) -> Result<Vec<IncidentRow>, StoreError> {
                    sqlx::query_as(&format!(
                        "SELECT {} FROM incidents WHERE state NOT IN ('closed', 'cancelled') ORDER BY incident_id",
                        IncidentRow::TABLE.select("")
                    ))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(q("read open incidents"))
                }

                pub async fn incident(
                    &self,
                    id: i64,
                ) -> Result<Option<(IncidentRow, Vec<IncidentEventRow>)>, StoreError> {
                    let sql = format!("SELECT {} FROM incidents WHERE incident_id = $1", IncidentRow::TABLE.select(""));
                    let Some(row) =
                        sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await.map_err(q("read incident"))?
                    else {
                        return Ok(None);
                    };
                    let sql = format!(
                        "SELECT {} FROM incident_events WHERE incident_id = $1 ORDER BY seq",
                        IncidentEventRow::TABLE.select("")
                    );
                    let events =
                        sqlx::query_as(&sql).bind(id).fetch_all(&self.pool).await.map_err(q("read incident timeline"))?;
                    Ok(Some((row, events)))
                }

                /// Every incident created in `[from_ms, to_ms]` with its milestones, oldest first.
                pub async fn incident_facts(&self, from_ms: i64, to_ms: i64) -> Result<Vec<IncidentFacts>, StoreError> {
                    sqlx::query_as(&shared::incident_facts_sql())
                        .bind(from_ms)
                        .bind(to_ms)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("read incident milestones"))
                }

                /// Incident events with a sequence number above `after`, oldest first.
                pub async fn incident_events_after(
                    &self,
                    after: i64,
                    limit: u32,
                ) -> Result<Vec<IncidentEventRow>, StoreError> {
                    self.rows_after(after, limit, "read incident events after a sequence number").await
                }

                /// The open incidents assigned to a device or to a unit, newest first, at
                /// most `limit`.
                pub async fn assigned_incidents(
                    &self,
                    device_id: Option<&str>,
                    unit_id: Option<&str>,
                    limit: u32,
                ) -> Result<Vec<IncidentRow>, StoreError> {
                    let sql = format!(
                        "SELECT {} FROM incidents
                         WHERE state NOT IN ('closed', 'cancelled') AND (assigned_device = $1 OR assigned_unit = $2)
                         ORDER BY incident_id DESC LIMIT $3",
                        IncidentRow::TABLE.select("")
                    );
                    sqlx::query_as(&sql)
                        .bind(device_id)
                        .bind(unit_id)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("read assigned incidents"))
                }

                /// One reporter's reports numbered below `before`, newest first, at most
                /// `limit`, each with its incident's state and its mediation case.
                pub async fn own_reports(
                    &self,
                    reporter: &str,
                    before: i64,
                    limit: u32,
                ) -> Result<Vec<OwnReport>, StoreError> {
                    sqlx::query_as(
                        "SELECT r.report_id, r.time_ms, r.category, r.text, r.lon, r.lat, r.photo_urls, r.status,
                                r.status_note, r.incident_id, i.state AS incident_state, m.case_id,
                                m.status AS case_status, m.outcome AS case_outcome, m.success AS case_success
                         FROM grid_reports r
                         LEFT JOIN incidents i ON i.incident_id = r.incident_id
                         LEFT JOIN mediation_cases m ON m.report_id = r.report_id
                         WHERE r.reporter = $1 AND r.report_id < $2
                         ORDER BY r.report_id DESC LIMIT $3",
                    )
                    .bind(reporter)
                    .bind(before)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(q("read a reporter's reports"))
                }

                /// One report.
                pub async fn report(&self, report_id: i64) -> Result<Option<GridReport>, StoreError> {
                    let sql = format!("SELECT {} FROM grid_reports WHERE report_id = $1", GridReport::TABLE.select(""));
                    sqlx::query_as(&sql).bind(report_id).fetch_optional(&self.pool).await.map_err(q("read report"))
                }

                /// Reports, newest first, optionally of one status.
                pub async fn reports(&self, status: Option<&str>, limit: u32) -> Result<Vec<GridReport>, StoreError> {
                    let sql = format!(
                        "SELECT {} FROM grid_reports WHERE CAST($1 AS TEXT) IS NULL OR status = $1
                         ORDER BY report_id DESC LIMIT $2",
                        GridReport::TABLE.select("")
                    );
                    sqlx::query_as(&sql)
                        .bind(status)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("list reports"))
                }

                /// Moves a new report to `status` with a note and the incident it became or
                /// joined. Returns false when the report does not exist or was already
                /// reviewed.
                pub async fn review_report(
                    &self,
                    report_id: i64,
                    status: &str,
                    note: &str,
                    incident_id: Option<i64>,
                ) -> Result<bool, StoreError> {
                    let done = sqlx::query(
                        "UPDATE grid_reports SET status = $1, status_note = $2, incident_id = $3
                         WHERE report_id = $4 AND status = 'new'",
                    )
                    .bind(status)
                    .bind(note)
                    .bind(incident_id)
                    .bind(report_id)
                    .execute(self.write_pool())
                    .await
                    .map_err(q("review report"))?;
                    Ok(done.rows_affected() == 1)
                }

                /// Every case, optionally of one status, oldest first (the old queue's
                /// read; lists page with `mediation_list`).
                pub async fn mediation_cases(&self, status: Option<&str>) -> Result<Vec<MediationCase>, StoreError> {
                    let sql = format!(
                        "SELECT {} FROM mediation_cases WHERE CAST($1 AS TEXT) IS NULL OR status = $1
                         ORDER BY case_id",
                        MediationCase::TABLE.select("")
                    );
                    sqlx::query_as(&sql)
                        .bind(status)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("list mediation cases"))
                }

                pub async fn mediation_stats(&self, from_ms: i64, to_ms: i64) -> Result<MediationStats, StoreError> {
                    let (disputes, pending, mediated, successful): (i64, i64, i64, i64) = sqlx::query_as(
                        "SELECT COUNT(*), COUNT(*) FILTER (WHERE status = 'pending'),
                                COUNT(*) FILTER (WHERE status IN ('mediated', 'followed_up')),
                                COUNT(*) FILTER (WHERE success)
                         FROM mediation_cases WHERE opened_ms BETWEEN $1 AND $2",
                    )
                    .bind(from_ms)
                    .bind(to_ms)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(q("mediation statistics"))?;
                    let by_type: Vec<(String, i64)> = sqlx::query_as(
                        "SELECT mediation_type, COUNT(*) FROM mediation_cases
                         WHERE status IN ('mediated', 'followed_up') AND opened_ms BETWEEN $1 AND $2
                         GROUP BY mediation_type ORDER BY mediation_type",
                    )
                    .bind(from_ms)
                    .bind(to_ms)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(q("mediation statistics by type"))?;
                    let reports_by_category: Vec<(String, i64)> = sqlx::query_as(
                        "SELECT category, COUNT(*) FROM grid_reports WHERE time_ms BETWEEN $1 AND $2
                         GROUP BY category ORDER BY category",
                    )
                    .bind(from_ms)
                    .bind(to_ms)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(q("report statistics"))?;
                    let success_rate = (mediated > 0).then(|| successful as f64 / mediated as f64);
                    Ok(MediationStats {
                        disputes,
                        pending,
                        mediated,
                        successful,
                        success_rate,
                        by_type,
                        reports_by_category,
                    })
                }

                pub async fn upsert_tagged(&self, p: &TaggedPerson) -> Result<(), StoreError> {
                    Self::upsert_tagged_in(&self.pool, p).await?;
                    self.announce_registry("tagged");
                    Ok(())
                }

                /// Inserts or replaces a tagged person on `e` (the pool, or a
                /// transaction that writes more with it).
                async fn upsert_tagged_in<'e>(
                    e: impl sqlx::Executor<'e, Database = <$row as sqlx::Row>::Database>,
                    p: &TaggedPerson,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO tagged_persons
                           (person_id, name, category, note, roles, updated_ms, device_id, zone_rules, post_id)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                         ON CONFLICT (person_id) DO UPDATE SET name = excluded.name, category = excluded.category,
                           note = excluded.note, roles = excluded.roles, updated_ms = excluded.updated_ms,
                           device_id = excluded.device_id, zone_rules = excluded.zone_rules,
                           post_id = excluded.post_id",
                    )
                    .bind(&p.person_id)
                    .bind(&p.name)
                    .bind(&p.category)
                    .bind(&p.note)
                    .bind(sqlx::types::Json(&p.roles))
                    .bind(p.updated_ms)
                    .bind(&p.device_id)
                    .bind(sqlx::types::Json(&p.zone_rules))
                    .bind(&p.post_id)
                    .execute(e)
                    .await
                    .map_err(q("upsert tagged person"))?;
                    Ok(())
                }

                pub async fn tagged_persons(&self) -> Result<Vec<TaggedPerson>, StoreError> {
                    let sql = format!("SELECT {} FROM tagged_persons ORDER BY person_id", shared::TAGGED_COLUMNS);
                    sqlx::query_as(&sql).fetch_all(&self.pool).await.map_err(q("list tagged persons"))
                }

                /// Writes one audit entry inside the caller's transaction, so that a
                /// change and its record commit together or not at all.
                async fn audit_in(
                    tx: &mut sqlx::Transaction<'static, <$row as sqlx::Row>::Database>,
                    e: &AuditEntry,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO audit_log (at_ms, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(e.at_ms)
                    .bind(&e.actor)
                    .bind(&e.action)
                    .bind(&e.subject)
                    .bind(&e.detail)
                    .execute(&mut **tx)
                    .await
                    .map_err(q("write audit log"))?;
                    Ok(())
                }

                /// Adds a person and its audit entry in one transaction. Returns false,
                /// writing nothing, when the id is taken.
                pub async fn insert_person(&self, p: &PersonRecord, audit: &AuditEntry) -> Result<bool, StoreError> {
                    let mut tx = self.write_pool().begin().await.map_err(q("begin"))?;
                    let added = sqlx::query(
                        "INSERT INTO people
                           (person_id, name, phone, roles, unit_kind, unit_id, active, created_ms, updated_ms)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                         ON CONFLICT (person_id) DO NOTHING",
                    )
                    .bind(&p.person_id)
                    .bind(&p.name)
                    .bind(&p.phone)
                    .bind(sqlx::types::Json(&p.roles))
                    .bind(&p.unit_kind)
                    .bind(&p.unit_id)
                    .bind(p.active)
                    .bind(p.created_ms)
                    .bind(p.updated_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("insert person"))?
                    .rows_affected()
                        == 1;
                    if !added {
                        return Ok(false);
                    }
                    Self::audit_in(&mut tx, audit).await?;
                    tx.commit().await.map_err(q("commit"))?;
                    Ok(true)
                }

                /// Changes a person (everything but the id and creation time) and writes
                /// its audit entry in one transaction, if the stored person was last
                /// changed at `seen_ms` (so that two administrators' changes made from the
                /// same reading cannot silently undo each other, nor audit a difference
                /// from a state that is no longer stored). Returns false, writing nothing,
                /// when there is no such person or it changed since.
                pub async fn update_person(
                    &self,
                    p: &PersonRecord,
                    seen_ms: i64,
                    audit: &AuditEntry,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.write_pool().begin().await.map_err(q("begin"))?;
                    let found = sqlx::query(
                        "UPDATE people SET name = $2, phone = $3, roles = $4, unit_kind = $5, unit_id = $6,
                           active = $7, updated_ms = $8
                         WHERE person_id = $1 AND updated_ms = $9",
                    )
                    .bind(&p.person_id)
                    .bind(&p.name)
                    .bind(&p.phone)
                    .bind(sqlx::types::Json(&p.roles))
                    .bind(&p.unit_kind)
                    .bind(&p.unit_id)
                    .bind(p.active)
                    .bind(p.updated_ms)
                    .bind(seen_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("update person"))?
                    .rows_affected()
                        == 1;
                    if !found {
                        return Ok(false);
                    }
                    Self::audit_in(&mut tx, audit).await?;
                    tx.commit().await.map_err(q("commit"))?;
                    Ok(true)
                }

                pub async fn person(&self, person_id: &str) -> Result<Option<PersonRecord>, StoreError> {
                    let sql = format!("SELECT {} FROM people WHERE person_id = $1", shared::PEOPLE_COLUMNS);
                    sqlx::query_as(&sql).bind(person_id).fetch_optional(&self.pool).await.map_err(q("read person"))
                }

                /// The records that name an image by its URL (see `Store::image_owners`).
                /// The URL is matched in JSON text with its quotes, so that one image's
                /// URL never matches inside another's; the time bounds keep each search
                /// on the tables' time indexes, but for incident steps, which are few.
                pub async fn image_owners(
                    &self,
                    url: &str,
                    from_ms: i64,
                    to_ms: i64,
                ) -> Result<ImageOwners, StoreError> {
                    if url.contains(['%', '_', '\\', '"']) {
                        return Ok(ImageOwners::default());
                    }
                    let pattern = format!("%\"{url}\"%");
                    let naming = "FROM alerts WHERE time_ms BETWEEN $2 AND $3 AND payload LIKE $1";
                    let sql = format!("SELECT {} {naming} LIMIT 50", AlertRow::TABLE.select(""));
                    let alerts: Vec<AlertRow> = sqlx::query_as(&sql)
                        .bind(&pattern)
                        .bind(from_ms)
                        .bind(to_ms)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("read the alerts of an image"))?;
                    let reporters: Vec<String> = sqlx::query_scalar(
                        "SELECT reporter FROM grid_reports
                         WHERE time_ms BETWEEN $2 AND $3 AND CAST(photo_urls AS TEXT) LIKE $1 LIMIT 50",
                    )
                    .bind(&pattern)
                    .bind(from_ms)
                    .bind(to_ms)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(q("read the reports of an image"))?;
                    let sql = format!(
                        "SELECT {} FROM incidents
                         WHERE incident_id IN (SELECT incident_id FROM incident_events
                                               WHERE at_ms >= $2 AND CAST(photo_urls AS TEXT) LIKE $1)
                            OR alert_seq IN (SELECT seq {naming})
                         ORDER BY incident_id LIMIT 50",
                        IncidentRow::TABLE.select("")
                    );
                    let incidents = sqlx::query_as(&sql)
                        .bind(&pattern)
                        .bind(from_ms)
                        .bind(to_ms)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("read the incidents of an image"))?;
                    Ok(ImageOwners { alerts, reporters, incidents })
                }

                /// People matching every filter given, by id, at most `f.limit`.
                pub async fn people(&self, f: &PeopleFilter) -> Result<Vec<PersonRecord>, StoreError> {
                    // Role names are `[a-z_]` (the server checks them), so the quoted name
                    // matches exactly one element of the JSON array's text; `_` matching
                    // any one character cannot join two role names.
                    let sql = format!(
                        "SELECT {} FROM people
                         WHERE (CAST($1 AS TEXT) IS NULL OR unit_id = $1)
                           AND (CAST($2 AS TEXT) IS NULL OR CAST(roles AS TEXT) LIKE '%\"' || $2 || '\"%')
                           AND (CAST($3 AS BIGINT) IS NULL OR (CASE WHEN active THEN 1 ELSE 0 END) = $3)
                           AND (CAST($4 AS TEXT) IS NULL OR person_id > $4)
                           AND (CAST($6 AS TEXT) IS NULL OR unit_kind = $6)
                         ORDER BY person_id LIMIT $5",
                        shared::PEOPLE_COLUMNS
                    );
                    sqlx::query_as(&sql)
                        .bind(&f.unit_id)
                        .bind(&f.role)
                        .bind(f.active.map(i64::from))
                        .bind(&f.after)
                        .bind(i64::from(f.limit))
                        .bind(&f.unit_kind)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("list people"))
                }

                /// Adds shifts to the duty roster with their audit entries in one
                /// transaction, all or none. A `leader` shift overlapping an uncancelled
                /// leader shift of the same unit (stored, or earlier in `shifts`) is a
                /// conflict: the conflicting stored or earlier shifts are returned and
                /// nothing is written. Checked inside the transaction, so that on SQLite's
                /// one writer two rosters cannot both pass.
                pub async fn insert_duty_shifts(
                    &self,
                    shifts: &[DutyShift],
                    audit: &[AuditEntry],
                ) -> Result<Vec<DutyShift>, StoreError> {
                    let mut tx = self.write_pool().begin().await.map_err(q("begin"))?;
                    let mut conflicts: Vec<DutyShift> = Vec::new();
                    for (i, s) in shifts.iter().enumerate().filter(|(_, s)| s.duty == "leader") {
                        let sql = format!(
                            "SELECT {} FROM duty_shifts
                             WHERE duty = 'leader' AND cancelled_ms IS NULL AND unit_kind = $1
                               AND COALESCE(unit_id, '') = COALESCE(CAST($2 AS TEXT), '')
                               AND starts_ms < $3 AND ends_ms > $4
                             ORDER BY starts_ms",
                            DutyShift::TABLE.select("")
                        );
                        let stored: Vec<DutyShift> = sqlx::query_as(&sql)
                            .bind(&s.unit_kind)
                            .bind(&s.unit_id)
                            .bind(s.ends_ms)
                            .bind(s.starts_ms)
                            .fetch_all(&mut *tx)
                            .await
                            .map_err(q("read the duty roster"))?;
                        conflicts.extend(stored);
                        let earlier = shifts[..i].iter().filter(|o| {
                            o.duty == "leader"
                                && o.unit_kind == s.unit_kind
                                && o.unit_id == s.unit_id
                                && o.starts_ms < s.ends_ms
                                && o.ends_ms > s.starts_ms
                        });
                        conflicts.extend(earlier.cloned());
                    }
                    if !conflicts.is_empty() {
                        return Ok(conflicts);
                    }
                    insert(&mut *tx, shifts.iter()).await?;
                    for e in audit {
                        Self::audit_in(&mut tx, e).await?;
                    }
                    tx.commit().await.map_err(q("commit"))?;
                    Ok(Vec::new())
                }

                /// Cancels an uncancelled shift at `at_ms` with its audit entry in one
                /// transaction; false (nothing written) when there is no such shift or it
                /// is cancelled already.
                pub async fn cancel_duty_shift(
                    &self,
                    shift_id: &str,
                    at_ms: i64,
                    audit: &AuditEntry,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.write_pool().begin().await.map_err(q("begin"))?;
                    let done = sqlx::query(
                        "UPDATE duty_shifts SET cancelled_ms = $2 WHERE shift_id = $1 AND cancelled_ms IS NULL",
                    )
                    .bind(shift_id)
                    .bind(at_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("cancel a shift"))?
                    .rows_affected()
                        == 1;
                    if !done {
                        return Ok(false);
                    }
                    Self::audit_in(&mut tx, audit).await?;
                    tx.commit().await.map_err(q("commit"))?;
                    Ok(true)
                }

                /// Adds a handover and its audit entry in one transaction; returns the
                /// number the store gave it, or None (nothing written) when the unit's
                /// shift has a handover already. The entry's subject is set here to
                /// `handover:<number>`, which only the insert knows.
                pub async fn insert_handover(
                    &self,
                    h: &HandoverRow,
                    audit: &AuditEntry,
                ) -> Result<Option<i64>, StoreError> {
                    let t = &HandoverRow::TABLE;
                    let marks: Vec<String> = (1..=t.columns.len()).map(|i| format!("${i}")).collect();
                    let sql = format!(
                        "INSERT INTO handovers ({}) VALUES ({}) ON CONFLICT DO NOTHING RETURNING handover_id",
                        t.select(""),
                        marks.join(", ")
                    );
                    let mut tx = self.write_pool().begin().await.map_err(q("begin"))?;
                    let id: Option<i64> = sqlx::query_scalar(&sql)
                        .bind(&h.unit_kind)
                        .bind(&h.unit_id)
                        .bind(h.from_ms)
                        .bind(h.to_ms)
                        .bind(&h.outgoing_person_id)
                        .bind(&h.incoming_person_id)
                        .bind(sqlx::types::Json(&h.sheet))
                        .bind(h.prepared_ms)
                        .bind(h.signed_ms)
                        .bind(&h.signed_by)
                        .bind(&h.sign_note)
                        .bind(h.accepted_ms)
                        .bind(&h.accepted_by)
                        .bind(&h.accept_note)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(q("insert handover"))?;
                    let Some(id) = id else { return Ok(None) };
                    let audit = AuditEntry { subject: format!("handover:{id}"), ..audit.clone() };
                    Self::audit_in(&mut tx, &audit).await?;
                    tx.commit().await.map_err(q("commit"))?;
                    Ok(Some(id))
                }

                pub async fn handover(&self, handover_id: i64) -> Result<Option<HandoverRow>, StoreError> {
                    let sql = format!(
                        "SELECT handover_id, {} FROM handovers WHERE handover_id = $1",
                        HandoverRow::TABLE.select("")
                    );
                    sqlx::query_as(&sql).bind(handover_id).fetch_optional(&self.pool).await.map_err(q("read handover"))
                }

                /// Handovers matching every filter given, newest first, at most `f.limit`.
                pub async fn handovers(&self, f: &HandoverFilter) -> Result<Vec<HandoverRow>, StoreError> {
                    let sql = format!(
                        "SELECT handover_id, {} FROM handovers
                         WHERE (CAST($1 AS TEXT) IS NULL OR unit_kind = $1)
                           AND (CAST($2 AS TEXT) IS NULL OR unit_id = $2)
                           AND (CAST($3 AS TEXT) IS NULL
                                OR ($3 = 'prepared' AND signed_ms IS NULL)
                                OR ($3 = 'signed' AND signed_ms IS NOT NULL AND accepted_ms IS NULL)
                                OR ($3 = 'accepted' AND accepted_ms IS NOT NULL))
                           AND (CAST($4 AS BIGINT) IS NULL OR handover_id < $4)
                           AND (CAST($6 AS TEXT) IS NULL OR outgoing_person_id = $6 OR incoming_person_id = $6)
                         ORDER BY handover_id DESC LIMIT $5",
                        HandoverRow::TABLE.select("")
                    );
                    sqlx::query_as(&sql)
                        .bind(&f.unit_kind)
                        .bind(&f.unit_id)
                        .bind(&f.state)
                        .bind(f.before)
                        .bind(i64::from(f.limit))
                        .bind(&f.person_id)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("list handovers"))
                }

                /// Records the outgoing person's signature and its audit entry in one
                /// transaction, if the handover is not signed yet; false (nothing
                /// written) when there is no such handover or it is signed already.
                pub async fn sign_handover(
                    &self,
                    handover_id: i64,
                    at_ms: i64,
                    by: &str,
                    note: Option<&str>,
                    audit: &AuditEntry,
                ) -> Result<bool, StoreError> {
                    let sql = "UPDATE handovers SET signed_ms = $2, signed_by = $3, sign_note = $4
                               WHERE handover_id = $1 AND signed_ms IS NULL";
                    self.handover_step(sql, handover_id, at_ms, by, note, audit).await
                }

                /// Records the incoming person's acceptance and its audit entry in one
                /// transaction, if the handover is signed and not accepted yet; false
                /// (nothing written) otherwise.
                pub async fn accept_handover(
                    &self,
                    handover_id: i64,
                    at_ms: i64,
                    by: &str,
                    note: Option<&str>,
                    audit: &AuditEntry,
                ) -> Result<bool, StoreError> {
                    let sql = "UPDATE handovers SET accepted_ms = $2, accepted_by = $3, accept_note = $4
                               WHERE handover_id = $1 AND signed_ms IS NOT NULL AND accepted_ms IS NULL";
                    self.handover_step(sql, handover_id, at_ms, by, note, audit).await
                }

                /// One step of a handover (`sql` binds the id, time, person and note),
                /// audited in the same transaction when it changed a row.
                async fn handover_step(
                    &self,
                    sql: &str,
                    handover_id: i64,
                    at_ms: i64,
                    by: &str,
                    note: Option<&str>,
                    audit: &AuditEntry,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.write_pool().begin().await.map_err(q("begin"))?;
                    let done = sqlx::query(sql)
                        .bind(handover_id)
                        .bind(at_ms)
                        .bind(by)
                        .bind(note)
                        .execute(&mut *tx)
                        .await
                        .map_err(q("change handover"))?
                        .rows_affected()
                        == 1;
                    if !done {
                        return Ok(false);
                    }
                    Self::audit_in(&mut tx, audit).await?;
                    tx.commit().await.map_err(q("commit"))?;
                    Ok(true)
                }

                /// One shift, cancelled or not.
                pub async fn duty_shift(&self, shift_id: &str) -> Result<Option<DutyShift>, StoreError> {
                    let sql = format!("SELECT {} FROM duty_shifts WHERE shift_id = $1", DutyShift::TABLE.select(""));
                    sqlx::query_as(&sql).bind(shift_id).fetch_optional(&self.pool).await.map_err(q("read a shift"))
                }

                /// Every uncancelled shift under way at `at_ms` (starts at or before it,
                /// ends after it), by unit and start.
                pub async fn duty_at(&self, at_ms: i64) -> Result<Vec<DutyShift>, StoreError> {
                    self.duty_between(at_ms, at_ms + 1, None, None).await
                }

                /// Every uncancelled shift overlapping `[from_ms, to_ms)`, by unit kind,
                /// unit and start; only a unit kind's (and a unit's) when given. Shifts
                /// are at most a day long (the server refuses longer ones), so the start
                /// index bounds the read.
                pub async fn duty_between(
                    &self,
                    from_ms: i64,
                    to_ms: i64,
                    unit_kind: Option<&str>,
                    unit_id: Option<&str>,
                ) -> Result<Vec<DutyShift>, StoreError> {
                    let sql = format!(
                        "SELECT {} FROM duty_shifts
                         WHERE starts_ms < $2 AND starts_ms > $1 - {day} AND ends_ms > $1
                           AND cancelled_ms IS NULL
                           AND (CAST($3 AS TEXT) IS NULL OR unit_kind = $3)
                           AND (CAST($4 AS TEXT) IS NULL OR unit_id = $4)
                         ORDER BY unit_kind, unit_id, starts_ms, shift_id",
                        DutyShift::TABLE.select(""),
                        day = shared::MAX_SHIFT_MS,
                    );
                    sqlx::query_as(&sql)
                        .bind(from_ms)
                        .bind(to_ms)
                        .bind(unit_kind)
                        .bind(unit_id)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("read the duty roster"))
                }

                /// Incidents closed or cancelled in `[from_ms, to_ms]` (their last state's
                /// time), newest first, at most `limit`.
                pub async fn incidents_ended(
                    &self,
                    from_ms: i64,
                    to_ms: i64,
                    limit: u32,
                ) -> Result<Vec<IncidentRow>, StoreError> {
                    let sql = format!(
                        "SELECT {} FROM incidents
                         WHERE state IN ('closed', 'cancelled') AND state_since_ms BETWEEN $1 AND $2
                         ORDER BY state_since_ms DESC, incident_id DESC LIMIT $3",
                        IncidentRow::TABLE.select("")
                    );
                    sqlx::query_as(&sql)
                        .bind(from_ms)
                        .bind(to_ms)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("read ended incidents"))
                }

                /// The escalation notices nobody has acknowledged (nor resolved by the
                /// incident's next step), oldest first.
                pub async fn open_escalations(&self) -> Result<Vec<EscalationRow>, StoreError> {
                    let sql = format!(
                        "SELECT {} FROM escalations e WHERE e.action = 'notify'
                           AND NOT EXISTS (SELECT 1 FROM escalations a
                                           WHERE a.escalation_id = e.escalation_id AND a.action <> 'notify')
                         ORDER BY e.seq",
                        EscalationRow::TABLE.select("e.")
                    );
                    sqlx::query_as(&sql).fetch_all(&self.pool).await.map_err(q("read open escalations"))
                }

                /// Every escalation event of one incident, oldest first.
                pub async fn escalations_of(&self, incident_id: i64) -> Result<Vec<EscalationRow>, StoreError> {
                    let sql = format!(
                        "SELECT {} FROM escalations WHERE incident_id = $1 ORDER BY seq",
                        EscalationRow::TABLE.select("")
                    );
                    sqlx::query_as(&sql)
                        .bind(incident_id)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("read an incident's escalations"))
                }

                /// The newest audit entries about `subject` (all subjects when None),
                /// newest first.
                pub async fn audit_log(
                    &self,
                    subject: Option<&str>,
                    limit: u32,
                ) -> Result<Vec<AuditEntry>, StoreError> {
                    let columns = AuditEntry::TABLE.select("");
                    let limit = i64::from(limit);
                    match subject {
                        Some(s) => {
                            // An entry about several subjects (a list read) names the
                            // others in `audit_subjects`.
                            let sql = format!(
                                "SELECT {columns} FROM audit_log WHERE subject = $1
                                   OR id IN (SELECT audit_id FROM audit_subjects WHERE subject = $1)
                                 ORDER BY id DESC LIMIT $2"
                            );
                            sqlx::query_as(&sql).bind(s).bind(limit).fetch_all(&self.pool).await
                        }
                        None => {
                            let sql = format!("SELECT {columns} FROM audit_log ORDER BY id DESC LIMIT $1");
                            sqlx::query_as(&sql).bind(limit).fetch_all(&self.pool).await
                        }
                    }
                    .map_err(q("read audit log"))
                }

                /// A team's plans (every team's when None), newest first, at most `limit`.
                pub async fn route_plans(
                    &self,
                    team_id: Option<&str>,
                    limit: u32,
                ) -> Result<Vec<RoutePlanRow>, StoreError> {
                    let sql = format!(
                        "SELECT {} FROM route_plans WHERE CAST($1 AS TEXT) IS NULL OR team_id = $1
                         ORDER BY plan_seq DESC LIMIT $2",
                        RoutePlanRow::TABLE.select("")
                    );
                    sqlx::query_as(&sql)
                        .bind(team_id)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("list route plans"))
                }

                /// One plan with its events, oldest first.
                pub async fn route_plan(
                    &self,
                    plan_seq: i64,
                ) -> Result<Option<(RoutePlanRow, Vec<RouteEventRow>)>, StoreError> {
                    let sql = format!("SELECT {} FROM route_plans WHERE plan_seq = $1", RoutePlanRow::TABLE.select(""));
                    let plan = sqlx::query_as(&sql).bind(plan_seq).fetch_optional(&self.pool).await;
                    let Some(plan) = plan.map_err(q("read route plan"))? else {
                        return Ok(None);
                    };
                    let sql = format!(
                        "SELECT {} FROM route_events WHERE plan_seq = $1 ORDER BY seq",
                        RouteEventRow::TABLE.select("")
                    );
                    let events = sqlx::query_as(&sql)
                        .bind(plan_seq)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("read route plan events"))?;
                    Ok(Some((plan, events)))
                }

                /// Route events with a sequence number above `after`, oldest first.
                pub async fn route_events_after(
                    &self,
                    after: i64,
                    limit: u32,
                ) -> Result<Vec<RouteEventRow>, StoreError> {
                    self.rows_after(after, limit, "read route events after a sequence number").await
                }

                /// A device's good fixes in `[from_ms, to_ms]` in time order, at most
                /// `limit` (the first ones).
                pub async fn track(
                    &self,
                    device_id: &str,
                    from_ms: i64,
                    to_ms: i64,
                    limit: u32,
                ) -> Result<Vec<PositionRow>, StoreError> {
                    self.track_of(&PositionRow::TABLE.select(""), device_id, from_ms, to_ms, limit).await
                }

                /// The fixes of `track`, only their number, time and place.
                pub async fn track_points(
                    &self,
                    device_id: &str,
                    from_ms: i64,
                    to_ms: i64,
                    limit: u32,
                ) -> Result<Vec<TrackPoint>, StoreError> {
                    self.track_of("seq, fix_ms, lon, lat", device_id, from_ms, to_ms, limit).await
                }

                async fn track_of<R>(
                    &self,
                    columns: &str,
                    device_id: &str,
                    from_ms: i64,
                    to_ms: i64,
                    limit: u32,
                ) -> Result<Vec<R>, StoreError>
                where
                    R: for<'r> FromRow<'r, $row> + Send + Unpin,
                {
                    let sql = format!(
                        "SELECT {columns} FROM positions
                         WHERE device_id = $1 AND fix_ms BETWEEN $2 AND $3 AND (flags & $4) = 0
                         ORDER BY fix_ms, seq LIMIT $5"
                    );
                    sqlx::query_as(&sql)
                        .bind(device_id)
                        .bind(from_ms)
                        .bind(to_ms)
                        .bind(i64::from(HISTORY_EXCLUDED_FLAGS))
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("read a track"))
                }

                /// Writes a batch of reports and the resulting device states in one
                /// transaction. Returns once the commit is durable.
                pub async fn write_batch(
                    &self,
                    rows: &[PositionRow],
                    states: &[DeviceStateRow],
                ) -> Result<(), StoreError> {
                    self.write(&Batch { positions: rows, states, ..Batch::default() }).await
                }

                /// Writes everything a group commit produced in one transaction. Returns
                /// once the commit is durable.
                pub async fn write(&self, b: &Batch<'_>) -> Result<(), StoreError> {
                    let (tx, committed) = self.begin_write().await?;
                    // Another instance (or an earlier commit whose answer was lost) may
                    // have taken these numbers; on SQLite's one writer only a bug could,
                    // and checking anyway keeps both backends to one contract.
                    check_numbers(b, committed)?;
                    finish_write(tx, b).await
                }

                /// Alerts raised in `[from_ms, to_ms]` inside `bbox`, newest first, at most
                /// `limit`.
                pub async fn alerts_in(
                    &self,
                    bbox: Bbox,
                    from_ms: i64,
                    to_ms: i64,
                    limit: u32,
                ) -> Result<Vec<AlertRow>, StoreError> {
                    let sql = format!(
                        "SELECT {} FROM alerts WHERE {} AND time_ms BETWEEN $5 AND $6
                         ORDER BY time_ms DESC, seq DESC LIMIT $7",
                        AlertRow::TABLE.select(""),
                        in_bbox(""),
                    );
                    self.in_box(&sql, bbox, from_ms, to_ms, limit, "read alerts by area and time").await
                }

                /// Incidents created in `[from_ms, to_ms]` inside `bbox`, newest first, at
                /// most `limit`.
                pub async fn incidents_in(
                    &self,
                    bbox: Bbox,
                    from_ms: i64,
                    to_ms: i64,
                    limit: u32,
                ) -> Result<Vec<IncidentRow>, StoreError> {
                    let sql = format!(
                        "SELECT {} FROM incidents WHERE {} AND created_ms BETWEEN $5 AND $6
                         ORDER BY created_ms DESC, incident_id DESC LIMIT $7",
                        IncidentRow::TABLE.select(""),
                        in_bbox(""),
                    );
                    self.in_box(&sql, bbox, from_ms, to_ms, limit, "read incidents by area and time").await
                }

                /// The incidents open at `at_ms`, as they were then: for each incident
                /// created in `[from_ms, at_ms]` inside `bbox`, its last event at or before
                /// `at_ms` (its state then is that event's `to_state`, and the event's
                /// payload holds the whole incident as it was), unless that event closed or
                /// cancelled it. Newest incident first.
                pub async fn incident_events_at(
                    &self,
                    bbox: Bbox,
                    from_ms: i64,
                    at_ms: i64,
                    limit: u32,
                ) -> Result<Vec<IncidentEventRow>, StoreError> {
                    let sql = format!(
                        "SELECT {} FROM incidents i
                         JOIN incident_events e ON e.seq = (SELECT MAX(x.seq) FROM incident_events x
                                                            WHERE x.incident_id = i.incident_id AND x.at_ms <= $6)
                         WHERE {} AND i.created_ms BETWEEN $5 AND $6 AND e.to_state NOT IN ('closed', 'cancelled')
                         ORDER BY i.created_ms DESC, i.incident_id DESC LIMIT $7",
                        IncidentEventRow::TABLE.select("e."),
                        in_bbox("i."),
                    );
                    self.in_box(&sql, bbox, from_ms, at_ms, limit, "read incidents at a moment").await
                }

                /// Runs a history query whose parameters are the box (`$1` to `$4`: min
                /// lon, min lat, max lon, max lat), a time range (`$5`, `$6`) and a limit
                /// (`$7`).
                async fn in_box<R>(
                    &self,
                    sql: &str,
                    bbox: Bbox,
                    from_ms: i64,
                    to_ms: i64,
                    limit: u32,
                    op: &'static str,
                ) -> Result<Vec<R>, StoreError>
                where
                    R: for<'r> FromRow<'r, $row> + Send + Unpin,
                {
                    sqlx::query_as(sql)
                        .bind(bbox.min_lon)
                        .bind(bbox.min_lat)
                        .bind(bbox.max_lon)
                        .bind(bbox.max_lat)
                        .bind(from_ms)
                        .bind(to_ms)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q(op))
                }

                /// The feed's events committed after `after`, in sequence order, at most
                /// `limit`, from the chosen tables; complete up to the last one returned,
                /// since one statement reads them all at one snapshot and commits are in
                /// sequence order.
                pub async fn feed_after(
                    &self,
                    after: i64,
                    limit: u32,
                    tables: FeedTables,
                ) -> Result<Vec<FeedRow>, StoreError> {
                    let Some(sql) = shared::feed_sql(tables) else {
                        return Ok(Vec::new());
                    };
                    let rows = sqlx::query(&sql)
                        .bind(after)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("read the feed"))?;
                    let feed_row = |r: &$row| -> Result<FeedRow, sqlx::Error> {
                        let table: String = sqlx::Row::try_get(r, "feed_table")?;
                        Ok(match table.as_str() {
                            "positions" => FeedRow::Position(PositionRow::from_row(r)?),
                            "alerts" => FeedRow::Alert(AlertRow::from_row(r)?),
                            "incident_events" => FeedRow::IncidentEvent(IncidentEventRow::from_row(r)?),
                            "route_events" => FeedRow::RouteEvent(RouteEventRow::from_row(r)?),
                            "alert_acks" => FeedRow::AlertAck(AlertAckRow::from_row(r)?),
                            "escalations" => FeedRow::Escalation(EscalationRow::from_row(r)?),
                            other => return Err(sqlx::Error::Decode(format!("no feed table {other}").into())),
                        })
                    };
                    rows.iter().map(feed_row).collect::<Result<_, _>>().map_err(q("read the feed"))
                }
            }
        };
    };
}

pub(crate) use shared_calls;

/// [`max_seq_sql`] for SQLite, built once (every group commit reads it).
pub(crate) fn max_seq_sqlite() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| max_seq_sql(true));
    &SQL
}

/// The highest sequence number given out on SQLite, over every table the sequence
/// spans and, with `head`, the head retention leaves behind (`seq_head`, migration
/// 0024; a copy of a store from before it has none). (PostgreSQL reads its head alone:
/// every commit moves it, migration 0023.)
pub(crate) fn max_seq_sql(head: bool) -> String {
    let each: Vec<String> = [
        ("seq", "positions"),
        ("seq", "camera_events"),
        ("seq", "alerts"),
        ("seq", "incident_events"),
        ("report_id", "grid_reports"),
        ("seq", "route_events"),
        ("seq", "alert_acks"),
        ("seq", "escalations"),
    ]
    .iter()
    .map(|(column, table)| format!("COALESCE((SELECT MAX({column}) FROM {table}), 0)"))
    .chain(head.then(|| "COALESCE((SELECT seq FROM seq_head), 0)".to_owned()))
    .collect();
    format!("SELECT MAX({})", each.join(", "))
}
