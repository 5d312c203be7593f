//! Fused tracks over HTTP: every stored read of one plate or one person across the
//! county's cameras, as a GeoJSON Feature (a LineString through the cameras in time
//! order) with its last place, heading and speed.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use liandong_core::alerts::WatchKind;
use liandong_core::track::{fuse, Sighting};

use crate::auth::{require_user, Role};
use crate::error::ApiError;
use crate::feed::track_json;
use crate::openapi as doc;
use crate::time_fmt::now_ms;
use crate::AppState;

/// Sightings a track is built from at most (the newest ones).
const MAX_SIGHTINGS: u32 = 2000;
/// The default look-back when `from` is not given.
const DEFAULT_SPAN_MS: i64 = 24 * 3600 * 1000;

/// `GET /api/v1/tracks?plate=川S12345` or `?person=ID`, with optional `from`/`to`
/// (RFC 3339 or unix ms; default the last 24 h). A tagged person's track is served only
/// to the roles entitled to them, and the read is audited.
#[utoipa::path(get, path = "/api/v1/tracks", tag = "cameras",
    summary = "A watched plate's or person's fused track across cameras",
    security(("bearer" = ["admin", "operator", "partner"])),
    params(
        ("plate" = Option<String>, Query, description = "a licence plate"),
        ("person" = Option<String>, Query, description = "a watched person id"),
        ("from" = Option<String>, Query, description = "RFC 3339 or Unix ms"),
        ("to" = Option<String>, Query, description = "RFC 3339 or Unix ms"),
    ),
    responses((status = 200, description = "the fused track"), doc::E400, doc::E401, doc::E403, doc::E404, doc::E503))]
pub async fn get_track(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &[Role::Admin, Role::Operator, Role::Partner])?;
    let now = now_ms();
    let (mut plate, mut person, mut from, mut to) = (None, None, None, now);
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        let t = || liandong_ingest::parse_timestamp(&v).map_err(|e| ApiError::bad_request(k.to_string(), e));
        match &*k {
            "plate" => plate = Some(v.to_string()),
            "person" => person = Some(v.to_string()),
            "from" => from = Some(t()?),
            "to" => to = t()?,
            _ => {}
        }
    }
    let from = from.unwrap_or(to - DEFAULT_SPAN_MS);
    if from > to {
        return Err(ApiError::bad_request("from", "is after to"));
    }
    let (field, is_person, value) = match (plate, person) {
        (Some(p), None) => {
            let v = liandong_ingest::plate::normalize_plate(&p)
                .ok_or_else(|| ApiError::bad_request("plate", "is not a licence plate"))?;
            ("plate", false, v)
        }
        (None, Some(p)) if !p.is_empty() && p.len() <= 64 => ("person", true, p),
        (None, Some(_)) => return Err(ApiError::bad_request("person", "must be 1 to 64 characters")),
        _ => return Err(ApiError::bad_request("plate", "give exactly one of plate and person")),
    };
    let role = user.role.as_str();
    // A tagged person the caller may not see is answered exactly as a person nobody saw:
    // neither the status code nor the reason tells them apart.
    let unseen = || {
        let reason = format!("no sightings of {field} {value} in the period");
        ApiError::new(axum::http::StatusCode::NOT_FOUND, field, reason)
    };
    if is_person {
        let tagged = s.store.tagged_persons().await.map_err(|e| ApiError::unavailable(&e))?;
        match tagged.iter().find(|p| p.person_id == value) {
            Some(p) if crate::scope::role_entitled(role, &p.roles) => {
                let entry =
                    crate::scope::read_entry(&user.name, role, "tagged_person_track_read", &value, "fused track", now);
                s.store.audit(&[entry]).await.map_err(|e| ApiError::unavailable(&e))?;
            }
            Some(_) => return Err(unseen()),
            // Partners see only the tagged persons entitled to them.
            None if user.role == Role::Partner => return Err(unseen()),
            None => {}
        }
    } else if user.role == Role::Partner {
        return Err(ApiError::forbidden("plate", "partners do not see plate tracks"));
    }
    let rows =
        s.store.sightings(is_person, &value, from, to, MAX_SIGHTINGS).await.map_err(|e| ApiError::unavailable(&e))?;
    let sightings: Vec<Sighting> = {
        let cameras = s.cameras.read().unwrap_or_else(|e| e.into_inner());
        rows.into_iter()
            .filter_map(|r| {
                let cam = cameras.info(&r.camera_id)?;
                Some(Sighting { time_ms: r.time_ms, camera_id: r.camera_id, position: cam.position })
            })
            .collect()
    };
    let Some(track) = fuse(sightings) else { return Err(unseen()) };
    let mut properties = serde_json::to_value(track_json(&track)).unwrap_or_default();
    let coordinates = properties.as_object_mut().and_then(|p| p.remove("coordinates")).unwrap_or_default();
    let geometry = if track.points.len() == 1 {
        serde_json::json!({"type": "Point", "coordinates": coordinates[0]})
    } else {
        serde_json::json!({"type": "LineString", "coordinates": coordinates})
    };
    if let Some(p) = properties.as_object_mut() {
        p.insert(field.into(), value.into());
    }
    Ok(Json(serde_json::json!({"type": "Feature", "geometry": geometry, "properties": properties})).into_response())
}

/// The stored sightings of every watched value in the last
/// [`crate::sequencer::TRACK_REBUILD_MS`], oldest first, keyed as the rules key their
/// tracks: read at start-up so that a restart does not cut a track short. One query per
/// watch-list entry (a county's list is hundreds of entries).
pub async fn recent_sightings(
    store: &liandong_store::Store,
    cameras: &std::sync::RwLock<crate::cameras::Registry>,
    entries: &[(WatchKind, String)],
) -> Result<Vec<(String, Sighting)>, liandong_store::StoreError> {
    let now = now_ms();
    let mut out = Vec::new();
    for (kind, value) in entries {
        let person = *kind == WatchKind::Person;
        let rows = store.sightings(person, value, now - crate::sequencer::TRACK_REBUILD_MS, now, 64).await?;
        let cameras = cameras.read().unwrap_or_else(|e| e.into_inner());
        for r in rows {
            if let Some(cam) = cameras.info(&r.camera_id) {
                let s = Sighting { time_ms: r.time_ms, camera_id: r.camera_id, position: cam.position };
                out.push((crate::sequencer::track_key(*kind, value), s));
            }
        }
    }
    out.sort_by_key(|(_, s)| s.time_ms);
    Ok(out)
}
