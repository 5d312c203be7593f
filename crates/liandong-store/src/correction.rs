//! Community correction (社区矫正): tagged persons one at a time, their sanctions, and
//! audit entries that name several persons, in SQL both databases agree on, written
//! once like [`crate::shared`]. Every change commits with its audit entry in one
//! transaction.
//!
//! Both backends expand [`correction_calls!`] after `shared_calls!`, whose `audit_in`,
//! `upsert_tagged_in`, `upsert_watch_in` and `write_pool()` it uses.

/// The columns of a [`crate::SanctionRow`], in its order.
pub(crate) const SANCTION_COLUMNS: &str =
    "sanction_id, person_id, kind, decided_ms, authority, note, recorded_by, recorded_ms";

/// Implements the correction calls on `$store`, whose rows are `$row`.
macro_rules! correction_calls {
    ($store:ty, $row:ty) => {
        const _: () = {
            use $crate::correction::SANCTION_COLUMNS;
            use $crate::error::{q, StoreError};
            use $crate::rows::{AuditEntry, SanctionRow, TaggedPerson, WatchRecord};
            use $crate::shared::TAGGED_COLUMNS;

            impl $store {
                /// One tagged person by id.
                pub async fn tagged_person(&self, person_id: &str) -> Result<Option<TaggedPerson>, StoreError> {
                    let sql = format!("SELECT {TAGGED_COLUMNS} FROM tagged_persons WHERE person_id = $1");
                    sqlx::query_as(&sql)
                        .bind(person_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(q("read a tagged person"))
                }

                /// Inserts or replaces a tagged person with their watch-list entry and
                /// the audit entry of the change, in one transaction.
                pub async fn save_tagged(
                    &self,
                    p: &TaggedPerson,
                    w: &WatchRecord,
                    audit: &AuditEntry,
                ) -> Result<(), StoreError> {
                    let mut tx = self.write_pool().begin().await.map_err(q("begin"))?;
                    Self::upsert_tagged_in(&mut *tx, p).await?;
                    Self::upsert_watch_in(&mut *tx, w).await?;
                    Self::audit_in(&mut tx, audit).await?;
                    tx.commit().await.map_err(q("commit"))?;
                    self.announce_registry("tagged");
                    self.announce_registry("watchlist");
                    Ok(())
                }

                /// Records a sanction (its `sanction_id` is ignored and assigned here)
                /// with its audit entry in one transaction; the entry's detail is
                /// prefixed with the number assigned. Answers the row as stored; None
                /// (nothing written) when there is no such tagged person.
                pub async fn insert_sanction(
                    &self,
                    s: &SanctionRow,
                    audit: &AuditEntry,
                ) -> Result<Option<SanctionRow>, StoreError> {
                    let mut tx = self.write_pool().begin().await.map_err(q("begin"))?;
                    let sql = format!(
                        "INSERT INTO sanctions (person_id, kind, decided_ms, authority, note, recorded_by, recorded_ms)
                         SELECT person_id, $2, $3, $4, $5, $6, $7 FROM tagged_persons WHERE person_id = $1
                         RETURNING {SANCTION_COLUMNS}"
                    );
                    let row: Option<SanctionRow> = sqlx::query_as(&sql)
                        .bind(&s.person_id)
                        .bind(&s.kind)
                        .bind(s.decided_ms)
                        .bind(&s.authority)
                        .bind(&s.note)
                        .bind(&s.recorded_by)
                        .bind(s.recorded_ms)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(q("insert sanction"))?;
                    let Some(row) = row else { return Ok(None) };
                    let audit = AuditEntry {
                        detail: format!("sanction {}: {}", row.sanction_id, audit.detail),
                        ..audit.clone()
                    };
                    Self::audit_in(&mut tx, &audit).await?;
                    tx.commit().await.map_err(q("commit"))?;
                    Ok(Some(row))
                }

                /// A person's sanctions numbered below `before` (all when None), newest
                /// first, at most `limit`.
                pub async fn sanctions(
                    &self,
                    person_id: &str,
                    before: Option<i64>,
                    limit: u32,
                ) -> Result<Vec<SanctionRow>, StoreError> {
                    let sql = format!(
                        "SELECT {SANCTION_COLUMNS} FROM sanctions WHERE person_id = $1 AND sanction_id < $2
                         ORDER BY sanction_id DESC LIMIT $3"
                    );
                    sqlx::query_as(&sql)
                        .bind(person_id)
                        .bind(before.unwrap_or(i64::MAX))
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(q("list sanctions"))
                }

                /// Appends one audit entry that is also about `others` (a read of a list
                /// of persons), in one transaction: `audit_log(Some(x))` finds it for
                /// its own subject and for each of the others.
                pub async fn audit_reads(&self, entry: &AuditEntry, others: &[String]) -> Result<(), StoreError> {
                    let mut tx = self.write_pool().begin().await.map_err(q("begin"))?;
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO audit_log (at_ms, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)
                         RETURNING id",
                    )
                    .bind(entry.at_ms)
                    .bind(&entry.actor)
                    .bind(&entry.action)
                    .bind(&entry.subject)
                    .bind(&entry.detail)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(q("write audit log"))?;
                    let mut named: Vec<&String> = others.iter().filter(|s| **s != entry.subject).collect();
                    named.sort();
                    named.dedup();
                    for subject in named {
                        sqlx::query("INSERT INTO audit_subjects (audit_id, subject) VALUES ($1, $2)")
                            .bind(id)
                            .bind(subject)
                            .execute(&mut *tx)
                            .await
                            .map_err(q("write audit subjects"))?;
                    }
                    tx.commit().await.map_err(q("commit"))
                }
            }
        };
    };
}

pub(crate) use correction_calls;
