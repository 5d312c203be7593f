//! Readiness, `GET /readyz`: whether this instance can take traffic now, for a load
//! balancer or an orchestrator. `/healthz` stays liveness (the process answers HTTP);
//! readiness also asks the two parts without which nothing is acknowledged:
//!
//! - **store**: a trivial query (`SELECT 1`) answered within [`STORE_TIMEOUT`], and on
//!   the embedded store its write lock free to take (another process holding it would
//!   hold up every commit). The
//!   answer is kept for [`PROBE_TTL`], and concurrent callers wait for one probe, so
//!   that a storm of probes costs the store one query a second.
//! - **sequencer**: the single writer's task runs, its current batch has not waited
//!   longer than [`SEQUENCER_STALL`] (for the store's write lock, or a commit), and its
//!   last group commit did not fail (the incident ticker submits one every second, so
//!   this follows the store within about a second).
//!
//! Public (no token), like `/healthz`: it says nothing but which part is failing.

use crate::openapi as doc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::sequencer::SequencerState;
use crate::AppState;

/// How long the store has to answer `SELECT 1`.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a store probe's answer is reused.
pub const PROBE_TTL: Duration = Duration::from_secs(1);
/// How long the sequencer may be on one batch before the instance is not ready.
pub const SEQUENCER_STALL: Duration = Duration::from_secs(3);

/// The last store probe. A Tokio mutex, held across the probe, so that callers arriving
/// meanwhile wait for its answer instead of probing too.
#[derive(Debug, Default)]
pub struct Readiness {
    last: tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>,
}

impl Readiness {
    /// Whether the store answers, probed at most once per [`PROBE_TTL`].
    async fn store(&self, store: &liandong_store::Store) -> Result<(), String> {
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = &*last {
            if at.elapsed() < PROBE_TTL {
                return answer.clone();
            }
        }
        let answer = match tokio::time::timeout(STORE_TIMEOUT, store.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(liandong_store::StoreError::WriteLocked)) => {
                Err("another connection holds the database's write lock: nothing can be committed".to_owned())
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: the store refused a trivial query");
                Err("the store refused a trivial query".to_owned())
            }
            Err(_) => Err(format!("the store did not answer within {} ms", STORE_TIMEOUT.as_millis())),
        };
        *last = Some((Instant::now(), answer.clone()));
        answer
    }
}

/// The answer when a part is failing: which (`store`, `sequencer`) and why.
#[derive(Debug, Serialize)]
struct NotReady {
    ready: bool,
    failing: Vec<&'static str>,
    reasons: std::collections::BTreeMap<&'static str, String>,
}

/// `GET /readyz`: 200 `ready`, or 503 with a JSON body naming what is failing.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    summary = "Whether the server can take work, for load balancers", security(()),
    responses((status = 200, description = "`ready`: the store answers and the sequencer runs"), doc::E503))]
pub async fn readyz(State(s): State<Arc<AppState>>) -> Response {
    let mut reasons = std::collections::BTreeMap::new();
    if let Err(why) = s.readiness.store(&s.store).await {
        reasons.insert("store", why);
    }
    if let Some(why) = sequencer_reason(s.ingest.health().state(SEQUENCER_STALL)) {
        reasons.insert("sequencer", why);
    }
    if reasons.is_empty() {
        return ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ready\n").into_response();
    }
    let body = NotReady { ready: false, failing: reasons.keys().copied().collect(), reasons };
    let mut res = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    res.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(1));
    res
}

/// Why the sequencer's state keeps the instance out of traffic, if it does.
fn sequencer_reason(state: SequencerState) -> Option<String> {
    match state {
        SequencerState::Ready => None,
        SequencerState::Stopped => Some("the ingest sequencer is not running".to_owned()),
        SequencerState::Stalled(on) => {
            Some(format!("the ingest sequencer has been on one group commit for {} ms", on.as_millis()))
        }
        SequencerState::Failing => Some("the last group commit failed; nothing is acknowledged".to_owned()),
    }
}
