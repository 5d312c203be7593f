//! Grid-member reports, the mediation queue and their statistics in the PostgreSQL
//! store.

use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, Row};

use super::{col, PgStore};
use crate::{q, GridReport, MediationCase, MediationStats, StoreError};

const REPORT_SELECT: &str =
    "SELECT report_id, reporter, category, text, lon, lat, time_ms, recv_ms, enrichment, photos, status, photo_urls FROM grid_reports";

fn grid_report(r: &PgRow) -> GridReport {
    GridReport {
        report_id: r.get(0),
        reporter: r.get(1),
        category: r.get(2),
        text: r.get(3),
        lon: r.get(4),
        lat: r.get(5),
        time_ms: r.get(6),
        recv_ms: r.get(7),
        enrichment: r.try_get(8).unwrap_or_default(),
        photos: r.get(9),
        status: r.get(10),
        photo_urls: r.try_get::<Json<_>, _>(11).map(|j| j.0).unwrap_or_default(),
    }
}

/// Inserts reports (ids already assigned from the sequence); each dispute opens a
/// mediation case with the report's number.
pub(super) async fn insert_reports(conn: &mut PgConnection, rows: &[GridReport]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO grid_reports (report_id, reporter, category, text, lon, lat, time_ms, recv_ms, enrichment, photos,
                                   status, photo_urls)
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[], $7::bigint[],
                              $8::bigint[], $9::jsonb[], $10::bigint[], $11::text[], $12::jsonb[])",
    )
    .bind(col(rows, |r| r.report_id))
    .bind(col(rows, |r| r.reporter.as_str()))
    .bind(col(rows, |r| r.category.as_str()))
    .bind(col(rows, |r| r.text.as_str()))
    .bind(col(rows, |r| r.lon))
    .bind(col(rows, |r| r.lat))
    .bind(col(rows, |r| r.time_ms))
    .bind(col(rows, |r| r.recv_ms))
    .bind(col(rows, |r| Json(&r.enrichment)))
    .bind(col(rows, |r| r.photos))
    .bind(col(rows, |r| r.status.as_str()))
    .bind(col(rows, |r| Json(&r.photo_urls)))
    .execute(&mut *conn)
    .await
    .map_err(q("insert reports"))?;
    let disputes: Vec<&GridReport> = rows.iter().filter(|r| r.category == "dispute").collect();
    if disputes.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO mediation_cases (case_id, report_id, opened_ms, status)
         SELECT id, id, opened_ms, 'pending' FROM UNNEST($1::bigint[], $2::bigint[]) AS u(id, opened_ms)",
    )
    .bind(col(&disputes, |r| r.report_id))
    .bind(col(&disputes, |r| r.recv_ms))
    .execute(&mut *conn)
    .await
    .map_err(q("open mediation cases"))?;
    Ok(())
}

impl PgStore {
    /// One report.
    pub async fn report(&self, report_id: i64) -> Result<Option<GridReport>, StoreError> {
        let row = sqlx::query(&format!("{REPORT_SELECT} WHERE report_id = $1"))
            .bind(report_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read report"))?;
        Ok(row.as_ref().map(grid_report))
    }

    /// Reports, newest first, optionally of one status.
    pub async fn reports(&self, status: Option<&str>, limit: u32) -> Result<Vec<GridReport>, StoreError> {
        let rows = sqlx::query(&format!(
            "{REPORT_SELECT} WHERE $1::text IS NULL OR status = $1 ORDER BY report_id DESC LIMIT $2"
        ))
        .bind(status)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(q("list reports"))?;
        Ok(rows.iter().map(grid_report).collect())
    }

    /// Moves a new report to `status` with a note. Returns false when the report does
    /// not exist or was already reviewed.
    pub async fn review_report(&self, report_id: i64, status: &str, note: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE grid_reports SET status = $1, status_note = $2 WHERE report_id = $3 AND status = 'new'",
        )
        .bind(status)
        .bind(note)
        .bind(report_id)
        .execute(&self.pool)
        .await
        .map_err(q("review report"))?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn mediation_cases(&self, status: Option<&str>) -> Result<Vec<MediationCase>, StoreError> {
        let rows = sqlx::query(
            "SELECT case_id, report_id, opened_ms, status, mediation_type, outcome, success, closed_ms, closed_by
             FROM mediation_cases WHERE $1::text IS NULL OR status = $1 ORDER BY case_id",
        )
        .bind(status)
        .fetch_all(&self.pool)
        .await
        .map_err(q("list mediation cases"))?;
        Ok(rows
            .iter()
            .map(|r| MediationCase {
                case_id: r.get(0),
                report_id: r.get(1),
                opened_ms: r.get(2),
                status: r.get(3),
                mediation_type: r.get(4),
                outcome: r.get(5),
                success: r.get(6),
                closed_ms: r.get(7),
                closed_by: r.get(8),
            })
            .collect())
    }

    /// Records a case's outcome. Returns false when there is no pending case of that id.
    pub async fn close_mediation(
        &self,
        case_id: i64,
        mediation_type: &str,
        outcome: &str,
        success: bool,
        by: &str,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE mediation_cases SET status = 'mediated', mediation_type = $1, outcome = $2, success = $3, closed_ms = $4,
               closed_by = $5
             WHERE case_id = $6 AND status = 'pending'",
        )
        .bind(mediation_type)
        .bind(outcome)
        .bind(success)
        .bind(at_ms)
        .bind(by)
        .bind(case_id)
        .execute(&self.pool)
        .await
        .map_err(q("close mediation case"))?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn mediation_stats(&self, from_ms: i64, to_ms: i64) -> Result<MediationStats, StoreError> {
        let (disputes, pending, mediated, successful): (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE status = 'pending'), COUNT(*) FILTER (WHERE status = 'mediated'),
                    COUNT(*) FILTER (WHERE success)
             FROM mediation_cases WHERE opened_ms BETWEEN $1 AND $2",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_one(&self.pool)
        .await
        .map_err(q("mediation statistics"))?;
        let by_type: Vec<(String, i64)> = sqlx::query_as(
            "SELECT mediation_type, COUNT(*) FROM mediation_cases WHERE status = 'mediated' AND opened_ms BETWEEN $1 AND $2
             GROUP BY mediation_type ORDER BY mediation_type",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(q("mediation statistics by type"))?;
        let reports_by_category: Vec<(String, i64)> = sqlx::query_as(
            "SELECT category, COUNT(*) FROM grid_reports WHERE time_ms BETWEEN $1 AND $2 GROUP BY category ORDER BY category",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(q("report statistics"))?;
        let success_rate = (mediated > 0).then(|| successful as f64 / mediated as f64);
        Ok(MediationStats { disputes, pending, mediated, successful, success_rate, by_type, reports_by_category })
    }
}
