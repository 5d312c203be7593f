//! Operators acknowledge alerts: `POST /api/v1/alerts/{seq}/ack`. The acknowledgement is
//! sequenced and pushed (`alert_ack`) to everyone who sees the alert, so that every
//! screen in the room knows someone is on it; the history of alerts says who and when.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use crate::auth::{require_user, Role};
use crate::error::ApiError;
use crate::openapi as doc;
use crate::routes::read_json;
use crate::sequencer::AlertAckCommand;
use crate::time_fmt::{now_ms, rfc3339_ms};
use crate::AppState;

/// Longest note, in characters.
const MAX_NOTE_CHARS: usize = 500;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AckBody {
    #[serde(default)]
    note: String,
}

/// `POST /api/v1/alerts/{seq}/ack` (operators, administrators), with an optional JSON
/// body `{"note": "…"}`. Answers the acknowledgement once committed and on the feed;
/// acknowledging an alert someone already acknowledged is recorded too, and the answer
/// names who was first.
#[utoipa::path(post, path = "/api/v1/alerts/{seq}/ack", tag = "alerts",
    summary = "Acknowledges an alert, marking it as being handled", security(("bearer" = ["operator", "admin"])),
    params(("seq" = i64, Path)),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 200, description = "the acknowledgement"), doc::E400, doc::E401, doc::E403, doc::E404, doc::E413,
        doc::E415, doc::E503,
    ))]
pub async fn ack(
    State(s): State<Arc<AppState>>,
    Path(alert_seq): Path<i64>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &[Role::Operator, Role::Admin])?;
    let has_body = headers.get(axum::http::header::CONTENT_TYPE).is_some();
    let b: AckBody = if has_body { read_json(&s, &headers, body, 16 << 10).await? } else { AckBody::default() };
    let note = b.note.trim().to_owned();
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(ApiError::bad_request("note", format!("at most {MAX_NOTE_CHARS} characters")));
    }
    let unavailable = |e: liandong_store::StoreError| ApiError::unavailable(&e);
    let alert = s.store.alert(alert_seq).await.map_err(unavailable)?;
    // An alert the operator's role may not see does not exist for them.
    let Some(alert) = alert.filter(|a| crate::scope::sees_alert(user.role, &a.roles)) else {
        return Err(ApiError::not_found(format!("no alert {alert_seq}")));
    };
    let first = s.store.first_alert_acks(&[alert_seq]).await.map_err(unavailable)?.into_iter().next();
    let row =
        s.ingest.submit_alert_ack(AlertAckCommand { alert, actor: user.name.clone(), note, now_ms: now_ms() }).await?;
    let first = first.unwrap_or_else(|| row.clone());
    Ok(Json(serde_json::json!({
        "seq": row.seq,
        "alert_seq": alert_seq,
        "by": row.actor,
        "at": rfc3339_ms(row.at_ms),
        "note": row.note,
        "first": {"by": first.actor, "at": rfc3339_ms(first.at_ms), "seq": first.seq},
    }))
    .into_response())
}
