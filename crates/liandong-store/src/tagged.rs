//! Tagged persons and the audit log of their reads.

use serde::{Deserialize, Serialize};
use sqlx::{QueryBuilder, Row, SqliteConnection};

use crate::{q, SqliteStore, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaggedPerson {
    pub person_id: String,
    pub name: String,
    pub category: String,
    pub note: String,
    pub roles: Vec<String>,
    pub updated_ms: i64,
    /// The person's monitoring phone, a registered device, if they carry one.
    #[serde(default)]
    pub device_id: Option<String>,
    /// Zones the person may not be in at given hours (a JSON array the server
    /// validates: `{"fence_kind"|"fence_id", "from", "to"}`).
    #[serde(default = "empty_array")]
    pub zone_rules: serde_json::Value,
}

fn empty_array() -> serde_json::Value {
    serde_json::Value::Array(Vec::new())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
}

impl SqliteStore {
    pub async fn upsert_tagged(&self, p: &TaggedPerson) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tagged_persons (person_id, name, category, note, roles, updated_ms, device_id, zone_rules)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (person_id) DO UPDATE SET name = excluded.name, category = excluded.category,
               note = excluded.note, roles = excluded.roles, updated_ms = excluded.updated_ms,
               device_id = excluded.device_id, zone_rules = excluded.zone_rules",
        )
        .bind(&p.person_id)
        .bind(&p.name)
        .bind(&p.category)
        .bind(&p.note)
        .bind(serde_json::to_string(&p.roles).unwrap_or_else(|_| "[]".into()))
        .bind(p.updated_ms)
        .bind(&p.device_id)
        .bind(p.zone_rules.to_string())
        .execute(&self.pool)
        .await
        .map_err(q("upsert tagged person"))?;
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
                roles: serde_json::from_str(r.get::<&str, _>(4)).unwrap_or_default(),
                updated_ms: r.get(5),
                device_id: r.get(6),
                zone_rules: serde_json::from_str(r.get::<&str, _>(7)).unwrap_or_else(|_| empty_array()),
            })
            .collect())
    }

    /// Appends to the audit log on its own (reads made through the API).
    pub async fn audit(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        // Nothing to write takes no connection (on SQLite, the one the sequencer writes on).
        if entries.is_empty() {
            return Ok(());
        }
        let mut conn = self.writer.acquire().await.map_err(q("acquire writer"))?;
        insert_audit(&mut conn, entries).await
    }

    /// The newest audit entries about `subject` (all subjects when None), newest first.
    pub async fn audit_log(&self, subject: Option<&str>, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = match subject {
            Some(s) => {
                sqlx::query("SELECT at_ms, actor, action, subject, detail FROM audit_log WHERE subject = ? ORDER BY id DESC LIMIT ?")
                    .bind(s)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                sqlx::query("SELECT at_ms, actor, action, subject, detail FROM audit_log ORDER BY id DESC LIMIT ?")
                    .bind(limit)
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

pub(crate) async fn insert_audit(conn: &mut SqliteConnection, entries: &[AuditEntry]) -> Result<(), StoreError> {
    for chunk in entries.chunks(crate::ROWS_PER_INSERT) {
        let mut qb = QueryBuilder::new("INSERT INTO audit_log (at_ms, actor, action, subject, detail) ");
        qb.push_values(chunk, |mut b, e| {
            b.push_bind(e.at_ms).push_bind(&e.actor).push_bind(&e.action).push_bind(&e.subject).push_bind(&e.detail);
        });
        qb.build().persistent(false).execute(&mut *conn).await.map_err(q("append audit log"))?;
    }
    Ok(())
}
