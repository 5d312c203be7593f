//! Operators' acknowledgements of alerts: events in the global sequence, so that every
//! screen that shows the alert learns it is being handled, in order, with replay.

use serde::{Deserialize, Serialize};
use sqlx::{QueryBuilder, Row, SqliteConnection};

use crate::alerts::alert_from_row;
use crate::{q, AlertRow, SqliteStore, StoreError, ROWS_PER_INSERT};

/// One acknowledgement of an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertAckRow {
    pub seq: i64,
    pub alert_seq: i64,
    /// Who acknowledged (the user's name).
    pub actor: String,
    pub at_ms: i64,
    pub note: String,
    /// The alert's place and the roles that see it, for the feed's filters.
    pub lon: f64,
    pub lat: f64,
    pub roles: Vec<String>,
    /// The message as pushed on the live feed (JSON).
    pub payload: String,
}

pub(crate) const ACK_COLUMNS: &str = "seq, alert_seq, actor, at_ms, note, lon, lat, roles, payload";

fn ack_from_row(r: &sqlx::sqlite::SqliteRow) -> AlertAckRow {
    AlertAckRow {
        seq: r.get(0),
        alert_seq: r.get(1),
        actor: r.get(2),
        at_ms: r.get(3),
        note: r.get(4),
        lon: r.get(5),
        lat: r.get(6),
        // Only `insert_alert_acks` writes the column, from the same type.
        roles: serde_json::from_str(&r.get::<String, _>(7)).unwrap_or_default(),
        payload: r.get(8),
    }
}

impl SqliteStore {
    /// One alert by its sequence number.
    pub async fn alert(&self, seq: i64) -> Result<Option<AlertRow>, StoreError> {
        let row = sqlx::query(
            "SELECT seq, rule, priority, camera_id, event_seq, time_ms, lon, lat, roles, payload, township
             FROM alerts WHERE seq = ?",
        )
        .bind(seq)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("read an alert"))?;
        Ok(row.as_ref().map(alert_from_row))
    }

    /// Acknowledgements with a sequence number above `after`, oldest first.
    pub async fn alert_acks_after(&self, after: i64, limit: u32) -> Result<Vec<AlertAckRow>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {ACK_COLUMNS} FROM alert_acks WHERE seq > ? ORDER BY seq LIMIT ?"))
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(q("read alert acknowledgements after a sequence number"))?;
        Ok(rows.iter().map(ack_from_row).collect())
    }

    /// The first acknowledgement of each of `alert_seqs` that has one, by alert number.
    pub async fn first_alert_acks(&self, alert_seqs: &[i64]) -> Result<Vec<AlertAckRow>, StoreError> {
        let mut out = Vec::new();
        for chunk in alert_seqs.chunks(ROWS_PER_INSERT) {
            let mut qb = QueryBuilder::new(format!(
                "SELECT {ACK_COLUMNS} FROM alert_acks a
                 WHERE seq = (SELECT MIN(seq) FROM alert_acks b WHERE b.alert_seq = a.alert_seq) AND alert_seq IN ("
            ));
            let mut list = qb.separated(", ");
            for s in chunk {
                list.push_bind(*s);
            }
            qb.push(") ORDER BY alert_seq");
            let rows = qb.build().fetch_all(&self.pool).await.map_err(q("read alert acknowledgements"))?;
            out.extend(rows.iter().map(ack_from_row));
        }
        out.sort_by_key(|a| a.alert_seq);
        Ok(out)
    }
}

pub(crate) async fn insert_alert_acks(conn: &mut SqliteConnection, rows: &[AlertAckRow]) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut qb = QueryBuilder::new(format!("INSERT INTO alert_acks ({ACK_COLUMNS}) "));
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(r.seq)
                .push_bind(r.alert_seq)
                .push_bind(&r.actor)
                .push_bind(r.at_ms)
                .push_bind(&r.note)
                .push_bind(r.lon)
                .push_bind(r.lat)
                .push_bind(serde_json::to_string(&r.roles).unwrap_or_else(|_| "[]".into()))
                .push_bind(&r.payload);
        });
        qb.build().persistent(false).execute(&mut *conn).await.map_err(q("insert alert acknowledgements"))?;
    }
    Ok(())
}
