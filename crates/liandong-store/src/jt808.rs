//! JT/T 808 terminals' authentication codes, in SQL both databases agree on, written
//! once like [`crate::shared`]. The server hashes the code; the store never sees it.
//!
//! Both backends expand [`jt808_calls!`] after `shared_calls!`, whose `audit_in` and
//! `write_pool()` it uses.

/// Implements the JT/T 808 calls on `$store`, whose rows are `$row`.
macro_rules! jt808_calls {
    ($store:ty, $row:ty) => {
        const _: () = {
            use $crate::error::{q, StoreError};
            use $crate::rows::{AuditEntry, Jt808Terminal};

            impl $store {
                /// Records a terminal's registration and its new code (replacing any
                /// earlier one) with the audit entry, in one transaction.
                pub async fn register_jt808(&self, t: &Jt808Terminal, audit: &AuditEntry) -> Result<(), StoreError> {
                    let mut tx = self.write_pool().begin().await.map_err(q("begin"))?;
                    sqlx::query(
                        "INSERT INTO jt808_terminals
                           (device_id, code_hash, registered_ms, manufacturer, model, terminal_id, plate)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)
                         ON CONFLICT (device_id) DO UPDATE SET code_hash = excluded.code_hash,
                           registered_ms = excluded.registered_ms, manufacturer = excluded.manufacturer,
                           model = excluded.model, terminal_id = excluded.terminal_id, plate = excluded.plate",
                    )
                    .bind(&t.device_id)
                    .bind(&t.code_hash)
                    .bind(t.registered_ms)
                    .bind(&t.manufacturer)
                    .bind(&t.model)
                    .bind(&t.terminal_id)
                    .bind(&t.plate)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("register a JT/T 808 terminal"))?;
                    Self::audit_in(&mut tx, audit).await?;
                    tx.commit().await.map_err(q("commit"))
                }

                /// A terminal's registration; None when it never registered.
                pub async fn jt808_terminal(&self, device_id: &str) -> Result<Option<Jt808Terminal>, StoreError> {
                    sqlx::query_as(
                        "SELECT device_id, code_hash, registered_ms, manufacturer, model, terminal_id, plate
                         FROM jt808_terminals WHERE device_id = $1",
                    )
                    .bind(device_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(q("read a JT/T 808 terminal"))
                }
            }
        };
    };
}

pub(crate) use jt808_calls;
