//! Tagged persons and the audit log of their reads in the PostgreSQL store.

use sqlx::types::Json;
use sqlx::{PgConnection, Row};

use super::{col, PgStore};
use crate::{q, AuditEntry, StoreError, TaggedPerson};

impl PgStore {
    pub async fn upsert_tagged(&self, p: &TaggedPerson) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tagged_persons (person_id, name, category, note, roles, updated_ms, device_id, zone_rules)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (person_id) DO UPDATE SET name = excluded.name, category = excluded.category,
               note = excluded.note, roles = excluded.roles, updated_ms = excluded.updated_ms,
               device_id = excluded.device_id, zone_rules = excluded.zone_rules",
        )
        .bind(&p.person_id)
        .bind(&p.name)
        .bind(&p.category)
        .bind(&p.note)
        .bind(Json(&p.roles))
        .bind(p.updated_ms)
        .bind(&p.device_id)
        .bind(Json(&p.zone_rules))
        .execute(&self.pool)
        .await
        .map_err(q("upsert tagged person"))?;
        self.announce_registry("tagged");
        Ok(())
    }

    pub async fn tagged_persons(&self) -> Result<Vec<TaggedPerson>, StoreError> {
        let rows = sqlx::query(
            "SELECT person_id, name, category, note, roles, updated_ms, device_id, zone_rules
             FROM tagged_persons ORDER BY person_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(q("list tagged persons"))?;
        Ok(rows
            .iter()
            .map(|r| TaggedPerson {
                person_id: r.get(0),
                name: r.get(1),
                category: r.get(2),
                note: r.get(3),
                roles: r.try_get::<Json<_>, _>(4).map(|j| j.0).unwrap_or_default(),
                updated_ms: r.get(5),
                device_id: r.get(6),
                zone_rules: r.try_get(7).unwrap_or_else(|_| serde_json::Value::Array(Vec::new())),
            })
            .collect())
    }

    /// Appends to the audit log on its own (reads made through the API).
    pub async fn audit(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        // Nothing to write takes no connection (on SQLite, the one the sequencer writes on).
        if entries.is_empty() {
            return Ok(());
        }
        let mut conn = self.pool.acquire().await.map_err(q("acquire a connection"))?;
        insert_audit(&mut conn, entries).await
    }

    /// The newest audit entries about `subject` (all subjects when None), newest first.
    pub async fn audit_log(&self, subject: Option<&str>, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = match subject {
            Some(s) => {
                sqlx::query(
                    "SELECT at_ms, actor, action, subject, detail FROM audit_log WHERE subject = $1 ORDER BY id DESC LIMIT $2",
                )
                .bind(s)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query("SELECT at_ms, actor, action, subject, detail FROM audit_log ORDER BY id DESC LIMIT $1")
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(q("read audit log"))?;
        Ok(rows
            .iter()
            .map(|r| AuditEntry {
                at_ms: r.get(0),
                actor: r.get(1),
                action: r.get(2),
                subject: r.get(3),
                detail: r.get(4),
            })
            .collect())
    }
}

pub(super) async fn insert_audit(conn: &mut PgConnection, entries: &[AuditEntry]) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    // The identity column numbers rows as the SELECT yields them; ordering by the
    // array position makes "newest first" mean the order the entries were given in.
    sqlx::query(
        "INSERT INTO audit_log (at_ms, actor, action, subject, detail)
         SELECT at_ms, actor, action, subject, detail
         FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])
              WITH ORDINALITY AS u(at_ms, actor, action, subject, detail, n)
         ORDER BY n",
    )
    .bind(col(entries, |e| e.at_ms))
    .bind(col(entries, |e| e.actor.as_str()))
    .bind(col(entries, |e| e.action.as_str()))
    .bind(col(entries, |e| e.subject.as_str()))
    .bind(col(entries, |e| e.detail.as_str()))
    .execute(conn)
    .await
    .map_err(q("append audit log"))?;
    Ok(())
}
