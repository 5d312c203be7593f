//! Operators' acknowledgements of alerts on PostgreSQL (see the SQLite store's `acks`).

use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, Row};

use super::alerts::alert_from_row;
use super::{col, PgStore};
use crate::acks::ACK_COLUMNS;
use crate::{q, AlertAckRow, AlertRow, StoreError};

fn ack_from_row(r: &PgRow) -> AlertAckRow {
    AlertAckRow {
        seq: r.get(0),
        alert_seq: r.get(1),
        actor: r.get(2),
        at_ms: r.get(3),
        note: r.get(4),
        lon: r.get(5),
        lat: r.get(6),
        roles: r.try_get::<Json<_>, _>(7).map(|j| j.0).unwrap_or_default(),
        payload: r.get(8),
    }
}

impl PgStore {
    /// One alert by its sequence number.
    pub async fn alert(&self, seq: i64) -> Result<Option<AlertRow>, StoreError> {
        let row = sqlx::query(
            "SELECT seq, rule, priority, camera_id, event_seq, time_ms, lon, lat, roles, payload, township
             FROM alerts WHERE seq = $1",
        )
        .bind(seq)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("read an alert"))?;
        Ok(row.as_ref().map(alert_from_row))
    }

    /// Acknowledgements with a sequence number above `after`, oldest first.
    pub async fn alert_acks_after(&self, after: i64, limit: u32) -> Result<Vec<AlertAckRow>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {ACK_COLUMNS} FROM alert_acks WHERE seq > $1 ORDER BY seq LIMIT $2"))
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(q("read alert acknowledgements after a sequence number"))?;
        Ok(rows.iter().map(ack_from_row).collect())
    }

    /// The first acknowledgement of each of `alert_seqs` that has one, by alert number.
    pub async fn first_alert_acks(&self, alert_seqs: &[i64]) -> Result<Vec<AlertAckRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT DISTINCT ON (alert_seq) {ACK_COLUMNS} FROM alert_acks WHERE alert_seq = ANY($1)
             ORDER BY alert_seq, seq"
        ))
        .bind(alert_seqs)
        .fetch_all(&self.pool)
        .await
        .map_err(q("read alert acknowledgements"))?;
        Ok(rows.iter().map(ack_from_row).collect())
    }
}

pub(super) async fn insert_alert_acks(conn: &mut PgConnection, rows: &[AlertAckRow]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "INSERT INTO alert_acks ({ACK_COLUMNS})
         SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::float8[],
                              $7::float8[], $8::jsonb[], $9::text[])"
    ))
    .bind(col(rows, |r| r.seq))
    .bind(col(rows, |r| r.alert_seq))
    .bind(col(rows, |r| r.actor.as_str()))
    .bind(col(rows, |r| r.at_ms))
    .bind(col(rows, |r| r.note.as_str()))
    .bind(col(rows, |r| r.lon))
    .bind(col(rows, |r| r.lat))
    .bind(col(rows, |r| Json(&r.roles)))
    .bind(col(rows, |r| r.payload.as_str()))
    .execute(conn)
    .await
    .map_err(q("insert alert acknowledgements"))?;
    Ok(())
}
