//! After-hours referrals to the judicial office and home visits (issue 16), in SQL both
//! databases agree on, written once like [`crate::shared`]. Both are records, like a
//! handover: written one at a time, every change with its audit entry in one
//! transaction, and every step conditional on the state it leaves (an `UPDATE … WHERE`
//! that says false when another request took the step first).
//!
//! Both backends expand [`referrals_calls!`] after `shared_calls!`, whose `audit_in`
//! and `write_pool()` it uses.

/// The columns of a [`crate::ReferralRow`] after its id, in its order.
pub(crate) const REFERRAL_COLUMNS: &str = "business, person_name, person_phone, summary, post_id, registered_by, \
     registered_ms, handed_ms, due_ms, taken_ms, taken_by, done_ms, done_by, note";

/// The columns of a [`crate::HomeVisitRow`] after its id, in its order.
pub(crate) const VISIT_COLUMNS: &str = "person_name, person_phone, lon, lat, address, reason, post_id, due_ms, \
     assignee_id, assignee_name, created_by, created_ms, status, arrived_ms, arrived_distance_m, done_ms, note, \
     photo_urls";

/// A referral's status at `$n` (the moment), as SQL: the same rule as
/// [`crate::ReferralRow::status`].
pub(crate) fn referral_status_sql(now: &str) -> String {
    format!(
        "CASE WHEN done_ms IS NOT NULL THEN 'done' WHEN taken_ms IS NOT NULL THEN 'taken' \
         WHEN handed_ms <= {now} THEN 'handed' ELSE 'waiting' END"
    )
}

/// Implements the referral and home-visit calls on `$store`, whose rows are `$row`.
macro_rules! referrals_calls {
    ($store:ty, $row:ty) => {
        const _: () = {
            use $crate::error::{q, StoreError};
            use $crate::referrals::{referral_status_sql, REFERRAL_COLUMNS, VISIT_COLUMNS};
            use $crate::rows::{AuditEntry, HomeVisitFilter, HomeVisitRow, ReferralFilter, ReferralRow};

            impl $store {
                /// Adds a referral and its audit entry (subject `referral:<number>`) in
                /// one transaction; returns its number.
                pub async fn insert_referral(&self, r: &ReferralRow, audit: &AuditEntry) -> Result<i64, StoreError> {
                    let sql = format!(
                        "INSERT INTO referrals ({REFERRAL_COLUMNS})
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING referral_id"
                    );
                    let mut tx = self.write_pool().begin().await.map_err(q("begin"))?;
                    let id: i64 = sqlx::query_scalar(&sql)
                        .bind(&r.business)
                        .bind(&r.person_name)
                        .bind(&r.person_phone)
                        .bind(&r.summary)
                        .bind(&r.post_id)
                        .bind(&r.registered_by)
                        .bind(r.registered_ms)
                        .bind(r.handed_ms)
                        .bind(r.due_ms)
                        .bind(r.taken_ms)
                        .bind(&r.taken_by)
                        .bind(r.done_ms)
                        .bind(&r.done_by)
                        .bind(&r.note)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(q("insert referral"))?;
                    let audit = AuditEntry { subject: format!("referral:{id}"), ..audit.clone() };
                    Self::audit_in(&mut tx, &audit).await?;
                    tx.commit().await.map_err(q("commit"))?;
                    Ok(id)
                }

                pub async fn referral(&self, referral_id: i64) -> Result<Option<ReferralRow>, StoreError> {
                    let sql = format!("SELECT referral_id, {REFERRAL_COLUMNS} FROM referrals WHERE referral_id = $1");
                    sqlx::query_as(&sql).bind(referral_id).fetch_optional(&self.pool).await.map_err(q("read referral"))
                }

                /// Referrals matching every filter given, newest first, at most `f.limit`.
                pub async fn referrals(&self, f: &ReferralFilter) -> Result<Vec<ReferralRow>, StoreError> {
                    let sql = format!(
                        "SELECT referral_id, {REFERRAL_COLUMNS} FROM referrals
                         WHERE (CAST($1 AS TEXT) IS NULL OR post_id = $1)
                           AND (CAST($2 AS TEXT) IS NULL OR {} = $2)
                           AND ($3 = 0 OR handed_ms <= $4)
                           AND (CAST($5 AS BIGINT) IS NULL OR referral_id < $5)
                         ORDER BY referral_id DESC LIMIT $6",
                        referral_status_sql("$4")
                    );
                    sqlx::query_as(&sql)
                        .bind(&f.post_id)
                        .bind(&f.status)
                        .bind(i64::from(f.handed_only))
                        .bind(f.now_ms)
                        .bind(f.before)
                        .bind(i64::from(f.limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("list referrals"))
                }

                /// Referrals registered in `[from_ms, to_ms)`, oldest first, at most `limit`.
                pub async fn referrals_between(
                    &self,
                    from_ms: i64,
                    to_ms: i64,
                    limit: u32,
                ) -> Result<Vec<ReferralRow>, StoreError> {
                    let sql = format!(
                        "SELECT referral_id, {REFERRAL_COLUMNS} FROM referrals
                         WHERE registered_ms >= $1 AND registered_ms < $2 ORDER BY referral_id LIMIT $3"
                    );
                    sqlx::query_as(&sql)
                        .bind(from_ms)
                        .bind(to_ms)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("read referrals"))
                }

                /// Takes up a referral the office has been handed (`handed_ms <= at_ms`)
                /// and nobody took, audited in the same transaction; false (nothing
                /// written) otherwise.
                pub async fn take_referral(
                    &self,
                    referral_id: i64,
                    at_ms: i64,
                    by: &str,
                    audit: &AuditEntry,
                ) -> Result<bool, StoreError> {
                    let sql = "UPDATE referrals SET taken_ms = $2, taken_by = $3
                               WHERE referral_id = $1 AND handed_ms <= $2 AND taken_ms IS NULL AND done_ms IS NULL";
                    self.referral_step(sql, referral_id, at_ms, by, None, audit).await
                }

                /// Marks a handed or taken referral done with a note (taking it up at the
                /// same moment if nobody had), audited in the same transaction; false
                /// (nothing written) when it is waiting or done already.
                pub async fn finish_referral(
                    &self,
                    referral_id: i64,
                    at_ms: i64,
                    by: &str,
                    note: &str,
                    audit: &AuditEntry,
                ) -> Result<bool, StoreError> {
                    let sql = "UPDATE referrals SET done_ms = $2, done_by = $3, note = $4,
                                      taken_ms = COALESCE(taken_ms, $2), taken_by = COALESCE(taken_by, $3)
                               WHERE referral_id = $1 AND handed_ms <= $2 AND done_ms IS NULL";
                    self.referral_step(sql, referral_id, at_ms, by, Some(note), audit).await
                }

                /// One step of a referral (`sql` binds the id, the time, the person and,
                /// when it has one, the note), with its audit entry.
                async fn referral_step(
                    &self,
                    sql: &str,
                    referral_id: i64,
                    at_ms: i64,
                    by: &str,
                    note: Option<&str>,
                    audit: &AuditEntry,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.write_pool().begin().await.map_err(q("begin"))?;
                    let mut query = sqlx::query(sql).bind(referral_id).bind(at_ms).bind(by);
                    if let Some(note) = note {
                        query = query.bind(note);
                    }
                    let done = query.execute(&mut *tx).await.map_err(q("change referral"))?.rows_affected() == 1;
                    if !done {
                        return Ok(false);
                    }
                    Self::audit_in(&mut tx, audit).await?;
                    tx.commit().await.map_err(q("commit"))?;
                    Ok(true)
                }

                /// Adds a home visit and its audit entry (subject `home_visit:<number>`)
                /// in one transaction; returns its number.
                pub async fn insert_home_visit(&self, v: &HomeVisitRow, audit: &AuditEntry) -> Result<i64, StoreError> {
                    let sql = format!(
                        "INSERT INTO home_visits ({VISIT_COLUMNS})
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
                         RETURNING visit_id"
                    );
                    let mut tx = self.write_pool().begin().await.map_err(q("begin"))?;
                    let id: i64 = sqlx::query_scalar(&sql)
                        .bind(&v.person_name)
                        .bind(&v.person_phone)
                        .bind(v.lon)
                        .bind(v.lat)
                        .bind(&v.address)
                        .bind(&v.reason)
                        .bind(&v.post_id)
                        .bind(v.due_ms)
                        .bind(&v.assignee_id)
                        .bind(&v.assignee_name)
                        .bind(&v.created_by)
                        .bind(v.created_ms)
                        .bind(&v.status)
                        .bind(v.arrived_ms)
                        .bind(v.arrived_distance_m)
                        .bind(v.done_ms)
                        .bind(&v.note)
                        .bind(sqlx::types::Json(&v.photo_urls))
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(q("insert home visit"))?;
                    let audit = AuditEntry { subject: format!("home_visit:{id}"), ..audit.clone() };
                    Self::audit_in(&mut tx, &audit).await?;
                    tx.commit().await.map_err(q("commit"))?;
                    Ok(id)
                }

                pub async fn home_visit(&self, visit_id: i64) -> Result<Option<HomeVisitRow>, StoreError> {
                    let sql = format!("SELECT visit_id, {VISIT_COLUMNS} FROM home_visits WHERE visit_id = $1");
                    sqlx::query_as(&sql).bind(visit_id).fetch_optional(&self.pool).await.map_err(q("read home visit"))
                }

                /// Home visits matching every filter given, newest first, at most `f.limit`.
                pub async fn home_visits(&self, f: &HomeVisitFilter) -> Result<Vec<HomeVisitRow>, StoreError> {
                    let sql = format!(
                        "SELECT visit_id, {VISIT_COLUMNS} FROM home_visits
                         WHERE (CAST($1 AS TEXT) IS NULL OR assignee_id = $1)
                           AND (CAST($2 AS TEXT) IS NULL OR post_id = $2)
                           AND (CAST($3 AS TEXT) IS NULL OR status = $3)
                           AND (CAST($4 AS BIGINT) IS NULL OR visit_id < $4)
                         ORDER BY visit_id DESC LIMIT $5"
                    );
                    sqlx::query_as(&sql)
                        .bind(&f.assignee_id)
                        .bind(&f.post_id)
                        .bind(&f.status)
                        .bind(f.before)
                        .bind(i64::from(f.limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("list home visits"))
                }

                /// Home visits created in `[from_ms, to_ms)`, oldest first, at most `limit`.
                pub async fn home_visits_between(
                    &self,
                    from_ms: i64,
                    to_ms: i64,
                    limit: u32,
                ) -> Result<Vec<HomeVisitRow>, StoreError> {
                    let sql = format!(
                        "SELECT visit_id, {VISIT_COLUMNS} FROM home_visits
                         WHERE created_ms >= $1 AND created_ms < $2 ORDER BY visit_id LIMIT $3"
                    );
                    sqlx::query_as(&sql)
                        .bind(from_ms)
                        .bind(to_ms)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("read home visits"))
                }

                /// The home visit one of whose photos is at `url`, if any.
                pub async fn home_visit_of_photo(&self, url: &str) -> Result<Option<HomeVisitRow>, StoreError> {
                    let sql = format!(
                        "SELECT visit_id, {VISIT_COLUMNS} FROM home_visits
                         WHERE visit_id = (SELECT MIN(visit_id) FROM home_visit_photos WHERE url = $1)"
                    );
                    sqlx::query_as(&sql).bind(url).fetch_optional(&self.pool).await.map_err(q("read a photo's visit"))
                }

                /// Marks an assigned visit arrived, at a distance from its place, audited
                /// in the same transaction; false (nothing written) when it is not assigned.
                pub async fn arrive_home_visit(
                    &self,
                    visit_id: i64,
                    at_ms: i64,
                    distance_m: f64,
                    audit: &AuditEntry,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.write_pool().begin().await.map_err(q("begin"))?;
                    let done = sqlx::query(
                        "UPDATE home_visits SET status = 'arrived', arrived_ms = $2, arrived_distance_m = $3
                         WHERE visit_id = $1 AND status = 'assigned'",
                    )
                    .bind(visit_id)
                    .bind(at_ms)
                    .bind(distance_m)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("arrive home visit"))?
                    .rows_affected()
                        == 1;
                    if !done {
                        return Ok(false);
                    }
                    Self::audit_in(&mut tx, audit).await?;
                    tx.commit().await.map_err(q("commit"))?;
                    Ok(true)
                }

                /// Completes an arrived visit with a note and its photos' URLs, audited in
                /// the same transaction; false (nothing written) when it is not arrived.
                pub async fn complete_home_visit(
                    &self,
                    visit_id: i64,
                    at_ms: i64,
                    note: &str,
                    photo_urls: &[String],
                    audit: &AuditEntry,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.write_pool().begin().await.map_err(q("begin"))?;
                    let done = sqlx::query(
                        "UPDATE home_visits SET status = 'done', done_ms = $2, note = $3, photo_urls = $4
                         WHERE visit_id = $1 AND status = 'arrived'",
                    )
                    .bind(visit_id)
                    .bind(at_ms)
                    .bind(note)
                    .bind(sqlx::types::Json(photo_urls))
                    .execute(&mut *tx)
                    .await
                    .map_err(q("complete home visit"))?
                    .rows_affected()
                        == 1;
                    if !done {
                        return Ok(false);
                    }
                    for url in photo_urls {
                        sqlx::query("INSERT INTO home_visit_photos (visit_id, url) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                            .bind(visit_id)
                            .bind(url)
                            .execute(&mut *tx)
                            .await
                            .map_err(q("insert home visit photo"))?;
                    }
                    Self::audit_in(&mut tx, audit).await?;
                    tx.commit().await.map_err(q("commit"))?;
                    Ok(true)
                }
            }
        };
    };
}

pub(crate) use referrals_calls;
