//! Grid-member reports, the mediation queue and their statistics.

use serde::{Deserialize, Serialize};
use sqlx::{QueryBuilder, Row, SqliteConnection};

use crate::{q, SqliteStore, StoreError, ROWS_PER_INSERT};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridReport {
    /// The sequence number of the alert that put the report on the live feed; a
    /// dispute's mediation case has the same number.
    pub report_id: i64,
    pub reporter: String,
    pub category: String,
    pub text: String,
    pub lon: f64,
    pub lat: f64,
    pub time_ms: i64,
    pub recv_ms: i64,
    pub enrichment: serde_json::Value,
    pub photos: i64,
    pub status: String,
    /// URLs of the stored photos.
    #[serde(default)]
    pub photo_urls: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediationCase {
    pub case_id: i64,
    pub report_id: i64,
    pub opened_ms: i64,
    pub status: String,
    pub mediation_type: Option<String>,
    pub outcome: Option<String>,
    pub success: Option<bool>,
    pub closed_ms: Option<i64>,
    pub closed_by: Option<String>,
}

/// Counts for the centre's report: disputes found, mediated, successful.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediationStats {
    pub disputes: i64,
    pub pending: i64,
    pub mediated: i64,
    pub successful: i64,
    /// Successful / mediated, None before the first outcome.
    pub success_rate: Option<f64>,
    /// Mediated cases by type (people, judicial, administrative).
    pub by_type: Vec<(String, i64)>,
    /// Reports by category.
    pub reports_by_category: Vec<(String, i64)>,
}

const REPORT_SELECT: &str =
    "SELECT report_id, reporter, category, text, lon, lat, time_ms, recv_ms, enrichment, photos, status, photo_urls FROM grid_reports";

fn grid_report(r: &sqlx::sqlite::SqliteRow) -> GridReport {
    GridReport {
        report_id: r.get(0),
        reporter: r.get(1),
        category: r.get(2),
        text: r.get(3),
        lon: r.get(4),
        lat: r.get(5),
        time_ms: r.get(6),
        recv_ms: r.get(7),
        enrichment: serde_json::from_str(r.get::<&str, _>(8)).unwrap_or_default(),
        photos: r.get(9),
        status: r.get(10),
        photo_urls: serde_json::from_str(r.get::<&str, _>(11)).unwrap_or_default(),
    }
}

/// Inserts reports (ids already assigned from the sequence); each dispute opens a
/// mediation case with the report's number.
pub(crate) async fn insert_reports(conn: &mut SqliteConnection, rows: &[GridReport]) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut qb = QueryBuilder::new(
            "INSERT INTO grid_reports (report_id, reporter, category, text, lon, lat, time_ms, recv_ms, enrichment, photos, status, photo_urls) ",
        );
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(r.report_id)
                .push_bind(&r.reporter)
                .push_bind(&r.category)
                .push_bind(&r.text)
                .push_bind(r.lon)
                .push_bind(r.lat)
                .push_bind(r.time_ms)
                .push_bind(r.recv_ms)
                .push_bind(r.enrichment.to_string())
                .push_bind(r.photos)
                .push_bind(&r.status)
                .push_bind(serde_json::to_string(&r.photo_urls).unwrap_or_else(|_| "[]".into()));
        });
        qb.build().persistent(false).execute(&mut *conn).await.map_err(q("insert reports"))?;
    }
    let disputes: Vec<&GridReport> = rows.iter().filter(|r| r.category == "dispute").collect();
    for chunk in disputes.chunks(ROWS_PER_INSERT) {
        let mut qb = QueryBuilder::new("INSERT INTO mediation_cases (case_id, report_id, opened_ms, status) ");
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(r.report_id).push_bind(r.report_id).push_bind(r.recv_ms).push_bind("pending");
        });
        qb.build().persistent(false).execute(&mut *conn).await.map_err(q("open mediation cases"))?;
    }
    Ok(())
}

impl SqliteStore {
    /// One report.
    pub async fn report(&self, report_id: i64) -> Result<Option<GridReport>, StoreError> {
        let row = sqlx::query(&format!("{REPORT_SELECT} WHERE report_id = ?"))
            .bind(report_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read report"))?;
        Ok(row.as_ref().map(grid_report))
    }

    /// Reports, newest first, optionally of one status.
    pub async fn reports(&self, status: Option<&str>, limit: u32) -> Result<Vec<GridReport>, StoreError> {
        let rows =
            sqlx::query(&format!("{REPORT_SELECT} WHERE ?1 IS NULL OR status = ?1 ORDER BY report_id DESC LIMIT ?2"))
                .bind(status)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(q("list reports"))?;
        Ok(rows.iter().map(grid_report).collect())
    }

    /// Moves a new report to `status` with a note. Returns false when the report does
    /// not exist or was already reviewed.
    pub async fn review_report(&self, report_id: i64, status: &str, note: &str) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE grid_reports SET status = ?, status_note = ? WHERE report_id = ? AND status = 'new'")
                .bind(status)
                .bind(note)
                .bind(report_id)
                .execute(&self.writer)
                .await
                .map_err(q("review report"))?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn mediation_cases(&self, status: Option<&str>) -> Result<Vec<MediationCase>, StoreError> {
        let rows = sqlx::query(
            "SELECT case_id, report_id, opened_ms, status, mediation_type, outcome, success, closed_ms, closed_by
             FROM mediation_cases WHERE ?1 IS NULL OR status = ?1 ORDER BY case_id",
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
                success: r.get::<Option<i64>, _>(6).map(|v| v != 0),
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
            "UPDATE mediation_cases SET status = 'mediated', mediation_type = ?, outcome = ?, success = ?, closed_ms = ?, closed_by = ?
             WHERE case_id = ? AND status = 'pending'",
        )
        .bind(mediation_type)
        .bind(outcome)
        .bind(success)
        .bind(at_ms)
        .bind(by)
        .bind(case_id)
        .execute(&self.writer)
        .await
        .map_err(q("close mediation case"))?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn mediation_stats(&self, from_ms: i64, to_ms: i64) -> Result<MediationStats, StoreError> {
        let (disputes, pending, mediated, successful): (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(status = 'pending'), 0), COALESCE(SUM(status = 'mediated'), 0), COALESCE(SUM(success = 1), 0)
             FROM mediation_cases WHERE opened_ms BETWEEN ? AND ?",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_one(&self.pool)
        .await
        .map_err(q("mediation statistics"))?;
        let by_type: Vec<(String, i64)> = sqlx::query_as(
            "SELECT mediation_type, COUNT(*) FROM mediation_cases WHERE status = 'mediated' AND opened_ms BETWEEN ? AND ?
             GROUP BY mediation_type ORDER BY mediation_type",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(q("mediation statistics by type"))?;
        let reports_by_category: Vec<(String, i64)> = sqlx::query_as(
            "SELECT category, COUNT(*) FROM grid_reports WHERE time_ms BETWEEN ? AND ? GROUP BY category ORDER BY category",
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
