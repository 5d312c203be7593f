//! The joint mediation centre's case work after a case is registered (registration is a
//! group commit's, with its alert): accepting, declining, sessions, outcomes and
//! follow-ups, each a conditional update on the case's status written with its audit
//! entry in one transaction; the reads of cases, sessions, escalated steps and links to
//! criminal incidents. SQL both databases agree on, written once like [`crate::signin`].
//!
//! Both backends expand [`mediation_calls!`] after `shared_calls!`, whose `audit_in`
//! and `write_pool()` it uses.

/// Implements the mediation calls on `$store`, whose rows are `$row`.
macro_rules! mediation_calls {
    ($store:ty, $row:ty) => {
        const _: () = {
            use $crate::columns::Written;
            use $crate::error::{q, StoreError};
            use $crate::rows::{
                AuditEntry, CaseFilter, CaseOutcome, DisputeLinkRow, MediationCase, MediationSession,
            };

            impl $store {
                /// One case.
                pub async fn mediation_case(&self, case_id: i64) -> Result<Option<MediationCase>, StoreError> {
                    let sql =
                        format!("SELECT {} FROM mediation_cases WHERE case_id = $1", MediationCase::TABLE.select(""));
                    sqlx::query_as(&sql).bind(case_id).fetch_optional(&self.pool).await.map_err(q("read case"))
                }

                /// Cases matching every filter given, numbered below `before`, newest first.
                pub async fn mediation_list(&self, f: &CaseFilter) -> Result<Vec<MediationCase>, StoreError> {
                    let sql = format!(
                        "SELECT {} FROM mediation_cases
                         WHERE (CAST($1 AS TEXT) IS NULL OR status = $1) AND (CAST($2 AS TEXT) IS NULL OR source = $2)
                           AND (CAST($3 AS TEXT) IS NULL OR mediator_id = $3) AND case_id < $4
                           AND (CAST($6 AS BIGINT) IS NULL OR incident_id = $6)
                         ORDER BY case_id DESC LIMIT $5",
                        MediationCase::TABLE.select("")
                    );
                    sqlx::query_as(&sql)
                        .bind(f.status.as_deref())
                        .bind(f.source.as_deref())
                        .bind(f.mediator_id.as_deref())
                        .bind(f.before.unwrap_or(i64::MAX))
                        .bind(i64::from(f.limit))
                        .bind(f.incident_id)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("list cases"))
                }

                /// Cases still under way (pending, accepted, or mediated and not yet
                /// followed up), oldest first, at most `limit`, with the steps of each
                /// already escalated: what the deadline ticker looks at.
                pub async fn mediation_under_way(
                    &self,
                    limit: u32,
                ) -> Result<(Vec<MediationCase>, Vec<(i64, String)>), StoreError> {
                    let sql = format!(
                        "SELECT {} FROM mediation_cases WHERE status IN ('pending', 'accepted', 'mediated')
                         ORDER BY case_id LIMIT $1",
                        MediationCase::TABLE.select("")
                    );
                    let cases: Vec<MediationCase> = sqlx::query_as(&sql)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("read cases under way"))?;
                    let steps: Vec<(i64, String)> = sqlx::query_as(
                        "SELECT o.case_id, o.step FROM mediation_overdue o
                         JOIN mediation_cases m ON m.case_id = o.case_id
                         WHERE m.status IN ('pending', 'accepted', 'mediated') ORDER BY o.case_id",
                    )
                    .fetch_all(&self.pool)
                    .await
                    .map_err(q("read escalated steps"))?;
                    Ok((cases, steps))
                }

                /// Cases open (pending or accepted) or opened since `since_ms`, newest
                /// first, at most `limit`: the disputes a criminal incident is checked
                /// against.
                pub async fn mediation_recent(
                    &self,
                    since_ms: i64,
                    limit: u32,
                ) -> Result<Vec<MediationCase>, StoreError> {
                    let sql = format!(
                        "SELECT {} FROM mediation_cases WHERE status IN ('pending', 'accepted') OR opened_ms >= $1
                         ORDER BY case_id DESC LIMIT $2",
                        MediationCase::TABLE.select("")
                    );
                    sqlx::query_as(&sql)
                        .bind(since_ms)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("read recent cases"))
                }

                /// Cases opened in `[from_ms, to_ms]`, for statistics.
                pub async fn mediation_facts(&self, from_ms: i64, to_ms: i64) -> Result<Vec<MediationCase>, StoreError> {
                    let sql = format!(
                        "SELECT {} FROM mediation_cases WHERE opened_ms BETWEEN $1 AND $2 ORDER BY case_id",
                        MediationCase::TABLE.select("")
                    );
                    sqlx::query_as(&sql)
                        .bind(from_ms)
                        .bind(to_ms)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("read case statistics"))
                }

                /// How many cases opened in `[from_ms, to_ms]` had a step escalated as
                /// late, and how many distinct criminal incidents touched them.
                pub async fn mediation_flags(&self, from_ms: i64, to_ms: i64) -> Result<(i64, i64), StoreError> {
                    sqlx::query_as(
                        "SELECT
                           (SELECT COUNT(DISTINCT o.case_id) FROM mediation_overdue o
                            JOIN mediation_cases m ON m.case_id = o.case_id WHERE m.opened_ms BETWEEN $1 AND $2),
                           (SELECT COUNT(DISTINCT l.incident_id) FROM dispute_links l
                            JOIN mediation_cases m ON m.case_id = l.case_id WHERE m.opened_ms BETWEEN $1 AND $2)",
                    )
                    .bind(from_ms)
                    .bind(to_ms)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(q("read case flags"))
                }

                /// The links of the cases numbered `first..=last` to criminal incidents.
                pub async fn dispute_links(&self, first: i64, last: i64) -> Result<Vec<DisputeLinkRow>, StoreError> {
                    let sql = format!(
                        "SELECT {} FROM dispute_links WHERE case_id BETWEEN $1 AND $2 ORDER BY case_id, incident_id",
                        DisputeLinkRow::TABLE.select("")
                    );
                    sqlx::query_as(&sql)
                        .bind(first)
                        .bind(last)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("read dispute links"))
                }

                /// A case's sessions, in order.
                pub async fn mediation_sessions(&self, case_id: i64) -> Result<Vec<MediationSession>, StoreError> {
                    sqlx::query_as(
                        "SELECT case_id, session_no, starts_ms, venue_id, place, note, recorded_by, recorded_ms
                         FROM mediation_sessions WHERE case_id = $1 ORDER BY session_no",
                    )
                    .bind(case_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(q("read sessions"))
                }

                /// Runs one conditional update of a case with its audit entry; true when
                /// a row changed (nothing is written otherwise).
                async fn case_step<'q>(
                    &self,
                    what: &'static str,
                    update: sqlx::query::Query<'q, <$row as sqlx::Row>::Database, <<$row as sqlx::Row>::Database as sqlx::Database>::Arguments<'q>>,
                    audit: &AuditEntry,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.write_pool().begin().await.map_err(q("begin"))?;
                    let done = update.execute(&mut *tx).await.map_err(q(what))?;
                    if done.rows_affected() != 1 {
                        return Ok(false);
                    }
                    Self::audit_in(&mut tx, audit).await?;
                    tx.commit().await.map_err(q("commit"))?;
                    Ok(true)
                }

                /// Accepts a pending case: its mediator and venue. False when the case
                /// is not pending.
                pub async fn accept_mediation(
                    &self,
                    case_id: i64,
                    mediator_id: &str,
                    venue_id: &str,
                    by: &str,
                    at_ms: i64,
                    audit: &AuditEntry,
                ) -> Result<bool, StoreError> {
                    let update = sqlx::query(
                        "UPDATE mediation_cases SET status = 'accepted', mediator_id = $1, venue_id = $2,
                           accepted_ms = $3, accepted_by = $4
                         WHERE case_id = $5 AND status = 'pending'",
                    )
                    .bind(mediator_id)
                    .bind(venue_id)
                    .bind(at_ms)
                    .bind(by)
                    .bind(case_id);
                    self.case_step("accept case", update, audit).await
                }

                /// Declines a pending or accepted case with the reason. False when the
                /// case is neither.
                pub async fn decline_mediation(
                    &self,
                    case_id: i64,
                    reason: &str,
                    by: &str,
                    at_ms: i64,
                    audit: &AuditEntry,
                ) -> Result<bool, StoreError> {
                    let update = sqlx::query(
                        "UPDATE mediation_cases SET status = 'declined', declined_reason = $1, closed_ms = $2,
                           closed_by = $3
                         WHERE case_id = $4 AND status IN ('pending', 'accepted')",
                    )
                    .bind(reason)
                    .bind(at_ms)
                    .bind(by)
                    .bind(case_id);
                    self.case_step("decline case", update, audit).await
                }

                /// Records a case's outcome, from pending (the old clients' way) or
                /// accepted. False when the case is neither.
                pub async fn close_mediation(
                    &self,
                    case_id: i64,
                    o: &CaseOutcome<'_>,
                    audit: &AuditEntry,
                ) -> Result<bool, StoreError> {
                    let update = sqlx::query(
                        "UPDATE mediation_cases
                         SET status = 'mediated', mediation_type = $1, outcome = $2, success = $3,
                           closed_ms = $4, closed_by = $5, follow_up_due_ms = $6
                         WHERE case_id = $7 AND status IN ('pending', 'accepted')",
                    )
                    .bind(o.mediation_type)
                    .bind(o.outcome)
                    .bind(o.success)
                    .bind(o.at_ms)
                    .bind(o.by)
                    .bind(o.follow_up_due_ms)
                    .bind(case_id);
                    self.case_step("close case", update, audit).await
                }

                /// Records a mediated case's follow-up (回访). False when it is not
                /// mediated.
                pub async fn follow_up_mediation(
                    &self,
                    case_id: i64,
                    note: &str,
                    by: &str,
                    at_ms: i64,
                    audit: &AuditEntry,
                ) -> Result<bool, StoreError> {
                    let update = sqlx::query(
                        "UPDATE mediation_cases SET status = 'followed_up', followed_up_ms = $1, follow_up_note = $2,
                           followed_up_by = $3
                         WHERE case_id = $4 AND status = 'mediated'",
                    )
                    .bind(at_ms)
                    .bind(note)
                    .bind(by)
                    .bind(case_id);
                    self.case_step("follow up case", update, audit).await
                }

                /// Adds a session to an accepted case, numbered after its last. None
                /// (nothing written) when the case is not accepted.
                pub async fn add_mediation_session(
                    &self,
                    s: &MediationSession,
                    audit: &AuditEntry,
                ) -> Result<Option<i64>, StoreError> {
                    let mut tx = self.write_pool().begin().await.map_err(q("begin"))?;
                    // Touching the case first takes its row lock on PostgreSQL, so two
                    // sessions added at once number one after the other.
                    let open = sqlx::query(
                        "UPDATE mediation_cases SET status = status WHERE case_id = $1 AND status = 'accepted'",
                    )
                    .bind(s.case_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("lock case"))?;
                    if open.rows_affected() != 1 {
                        return Ok(None);
                    }
                    let session_no: i64 = sqlx::query_scalar(
                        "INSERT INTO mediation_sessions
                           (case_id, session_no, starts_ms, venue_id, place, note, recorded_by, recorded_ms)
                         SELECT $1, COALESCE(MAX(session_no), 0) + 1, $2, $3, $4, $5, $6, $7
                         FROM mediation_sessions WHERE case_id = $1
                         RETURNING session_no",
                    )
                    .bind(s.case_id)
                    .bind(s.starts_ms)
                    .bind(s.venue_id.as_deref())
                    .bind(s.place.as_deref())
                    .bind(&s.note)
                    .bind(&s.recorded_by)
                    .bind(s.recorded_ms)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(q("add session"))?;
                    Self::audit_in(&mut tx, audit).await?;
                    tx.commit().await.map_err(q("commit"))?;
                    Ok(Some(session_no))
                }
            }
        };
    };
}

pub(crate) use mediation_calls;
