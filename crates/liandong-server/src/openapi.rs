//! The API's contract: the OpenAPI 3.1 document generated from the handlers'
//! `#[utoipa::path]` attributes, and the JSON Schemas of the live feed's messages.
//!
//! Every route of `lib::api_routes` is registered with utoipa-axum's `routes!`, which
//! adds the handler to the router and its `#[utoipa::path]` to the document in one line,
//! so a route cannot be served without being described (`tests/openapi.rs` checks the
//! converse and that `lib.rs` has no plain `.route(`). How to annotate a handler is in
//! ARCHITECTURE.md ("How to add an endpoint"): tag, roles as the `bearer` requirement,
//! parameters, body and the refusals below, one marker per status.
//!
//! The document itself is built at the root (`lib::openapi_document`, from the router);
//! this module, in the base layer so that every handler may name its markers, holds the
//! markers and [`complete`], which completes what an attribute would repeat on every
//! handler: the summary becomes the doc comment's first sentence (the whole comment the
//! description), the description says which roles may call, and the error body, the
//! security schemes and the areas' tags are added once.

use std::collections::BTreeMap;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use utoipa::openapi::response::{Response as DocResponse, ResponseBuilder};
use utoipa::openapi::{Content, Ref, RefOr};

/// The JSON Schema (2020-12) of every live-feed message, one `$defs` entry per `type`.
/// Kept in the repository as `docs/schemas/feed.json`; the feed tests validate every
/// message they receive against it (liandong-test-support's `schema`).
pub const FEED_SCHEMA: &str = include_str!("../../../docs/schemas/feed.json");

/// Declares a refusal marker: a unit type whose `IntoResponses` is one status answered
/// with the API's error body. Handlers list the markers of the statuses they answer.
macro_rules! refusal {
    ($(#[doc = $doc:literal])* $name:ident, $status:literal) => {
        $(#[doc = $doc])*
        pub struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<DocResponse>> {
                error_response($status, concat!($($doc),*).trim())
            }
        }
    };
}

refusal!(
    /// A query parameter, a header or the body is malformed; `error.field` names it.
    E400, "400"
);
refusal!(
    /// No token, or a token that is not valid (unknown, revoked, ended).
    E401, "401"
);
refusal!(
    /// The caller's role may not do this.
    E403, "403"
);
refusal!(
    /// No such thing, or one the caller may not see (answered alike).
    E404, "404"
);
refusal!(
    /// The thing's state does not allow it, or it exists already.
    E409, "409"
);
refusal!(
    /// The body is larger than this endpoint's limit.
    E413, "413"
);
refusal!(
    /// The body's content type is not the one this endpoint reads.
    E415, "415"
);
refusal!(
    /// Understood but not allowed: a step out of order, a person or place that does not qualify.
    E422, "422"
);
refusal!(
    /// Too many failed attempts; retry after `Retry-After` seconds.
    E429, "429"
);
refusal!(
    /// The store or the body budget is busy or down; retry after `Retry-After` seconds.
    E503, "503"
);

/// One status answered with the API's error body (`{"error": {status, field?, reason, message}}`).
fn error_response(status: &str, description: &str) -> BTreeMap<String, RefOr<DocResponse>> {
    let content = Content::new(Some(Ref::from_schema_name("Error")));
    let response = ResponseBuilder::new().description(description).content("application/json", content).build();
    BTreeMap::from([(status.to_owned(), RefOr::T(response))])
}

/// The body of `POST /api/v1/positions`, described for the document only: the ingest
/// crate decodes it (`liandong_ingest::json`, strict: an unknown key is refused, each item
/// accepted or rejected on its own). A bare array of items is accepted too.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct PositionsBatch {
    /// At most 10,000 items.
    pub positions: Vec<PositionItem>,
}

/// One report of a batch (`liandong_ingest::json`'s item keys).
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct PositionItem {
    pub device_id: String,
    /// Degrees, in `datum` (WGS 84 unless said).
    pub lon: f64,
    pub lat: f64,
    /// RFC 3339 or Unix milliseconds; the time of receipt when absent.
    #[schema(value_type = Option<Object>)]
    pub time: Option<serde_json::Value>,
    /// `wgs84`, `gcj02` or `bd09`.
    pub datum: Option<String>,
    pub speed_mps: Option<f64>,
    pub course_deg: Option<f64>,
    pub altitude_m: Option<f64>,
    pub accuracy_m: Option<f64>,
    pub battery_pct: Option<f64>,
    /// Free attributes, bounded; `key`, `token` and `password` are dropped.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<serde_json::Value>,
    /// Only `sos`.
    pub alarm: Option<String>,
    /// The fix is not from the device's own receiver: kept, marked doubtful.
    pub mock: Option<bool>,
}

/// The areas of the API, in the order the document lists them.
const TAGS: [(&str, &str); 19] = [
    ("ingest", "Location reports and camera pushes: OsmAnd, our JSON batches, Hikvision ISAPI"),
    ("devices", "The device registry and who a token is"),
    ("people", "The people who use the system, their passwords and sign-in codes"),
    ("sessions", "Signing in and out"),
    ("duty", "The duty roster, escalations and shift handovers"),
    ("alerts", "Camera alerts, the watch list and acknowledgements"),
    ("incidents", "Incidents from opening to close, and the field app's tasks and routes"),
    ("mediation", "The joint mediation centre's cases"),
    ("referrals", "After-hours referrals to the judicial office"),
    ("home-visits", "Home visits (上门办理)"),
    ("history", "What the map showed at a moment, tracks, alerts and incidents of a period"),
    ("planning", "Patrol plans, hotspots and re-planning"),
    ("map", "The county's layers and the live feed"),
    ("cameras", "Camera registry, images and plate or person tracks"),
    ("tagged", "Tagged persons (community correction) and the audit log"),
    ("reports", "Grid members' reports and their review"),
    ("statistics", "Counts and times for the centre's reports"),
    ("ops", "Health, metrics and this contract"),
    ("live", "The websocket live feed"),
];

/// `GET /api/v1/schemas/feed.json`: the JSON Schema (2020-12) of every live-feed message.
///
/// Public, no token: it describes the messages, it holds none. One `$defs` entry per
/// message `type`; the root's `oneOf` picks one by `type`.
#[utoipa::path(get, path = "/api/v1/schemas/feed.json", tag = "ops", security(()),
    responses((status = 200, description = "the feed's JSON Schema", content_type = "application/schema+json")))]
pub async fn feed_schema() -> Response {
    ([(header::CONTENT_TYPE, "application/schema+json")], FEED_SCHEMA).into_response()
}

/// Completes the generated document: info, the shared error schema, the security schemes,
/// the tags, and each operation's summary and roles.
pub fn complete(mut doc: Value) -> Value {
    doc["info"] = json!({
        "title": "liandong",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "The HTTP API of the Dazhu county social-governance linkage command centre. \
            Every error is `{\"error\": {status, field?, reason, message}}`, naming the field at fault. \
            Tokens go in `Authorization: Bearer …` (or `?token=`). The live feed's messages are \
            described by the JSON Schema at `/api/v1/schemas/feed.json`.",
        "license": {"name": "MIT OR Apache-2.0", "identifier": "MIT OR Apache-2.0"},
    });
    doc["tags"] = TAGS.iter().map(|(name, description)| json!({"name": name, "description": description})).collect();
    let components = doc.as_object_mut().map(|d| d.entry("components").or_insert_with(|| json!({})));
    if let Some(Value::Object(components)) = components {
        let schemas = components.entry("schemas").or_insert_with(|| json!({}));
        schemas["Error"] = error_schema();
        components.insert("securitySchemes".into(), security_schemes());
    }
    if let Some(Value::Object(paths)) = doc.get_mut("paths") {
        let ids = operation_ids(paths);
        for (path, item) in paths.iter_mut() {
            for (method, op) in item.as_object_mut().into_iter().flatten() {
                if let Some(op) = op.as_object_mut() {
                    complete_operation(op);
                    op.insert("operationId".into(), Value::String(ids[&(path.clone(), method.clone())].clone()));
                }
            }
        }
    }
    doc
}

/// Each operation's id: its handler's name (utoipa's default) where that is unique,
/// else the method and the path (`get_api_v1_handovers`), since handlers of several
/// modules share names such as `list`.
fn operation_ids(paths: &Map<String, Value>) -> BTreeMap<(String, String), String> {
    let named: Vec<((String, String), String)> = paths
        .iter()
        .flat_map(|(path, item)| item.as_object().into_iter().flatten().map(move |(method, op)| (path, method, op)))
        .map(|(path, method, op)| {
            let name = op["operationId"].as_str().unwrap_or_default().to_owned();
            ((path.clone(), method.clone()), name)
        })
        .collect();
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, name) in &named {
        *count.entry(name.as_str()).or_default() += 1;
    }
    named
        .iter()
        .map(|((path, method), name)| {
            let id = if count[name.as_str()] == 1 && !name.is_empty() {
                name.clone()
            } else {
                let words: Vec<&str> =
                    path.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
                format!("{method}_{}", words.join("_"))
            };
            ((path.clone(), method.clone()), id)
        })
        .collect()
}

/// The error body every refusal answers (`error::ApiError`).
fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["status", "reason", "message"],
            "properties": {
                "status": {"type": "integer", "description": "the HTTP status again"},
                "field": {"type": "string", "description": "the query parameter, header or body field at fault"},
                "reason": {"type": "string"},
                "message": {"type": "string", "description": "`field: reason`, ready to show a person"}
            }
        }}
    })
}

/// How a caller says who it is. OpenAPI 3.1 lets a non-OAuth requirement list role
/// names: an operation's `bearer` requirement lists the roles that may call it.
fn security_schemes() -> Value {
    json!({
        "bearer": {"type": "http", "scheme": "bearer", "description":
            "A user's token: a config token or a signed-in session's (`POST /api/v1/sessions`); \
             also accepted as `?token=`. The requirement lists the roles that may call: admin, operator, \
             patrol_leader, post_officer, grid_member, partner, device (a gateway's config token), \
             metrics (a scraper's token: `/metrics` only)."},
        "device_key": {"type": "http", "scheme": "bearer", "description":
            "A registered phone's device key (`POST /api/v1/devices` answers it once) as the bearer token."},
        "key_query": {"type": "apiKey", "in": "query", "name": "key", "description":
            "A device's key (OsmAnd: `?id=…&key=…`) or a camera's key (ISAPI and alert pushes: `?key=…`)."}
    })
}

/// An operation's summary is its doc comment's first sentence (without the
/// `` `METHOD /path`: `` prefix); the whole comment and who may call go to the description.
fn complete_operation(op: &mut Map<String, Value>) {
    let text = |k: &str, op: &Map<String, Value>| op.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let full = [text("summary", op), text("description", op)]
        .into_iter()
        .filter(|t| !t.trim().is_empty())
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n\n");
    let who = who_may_call(op.get("security"));
    op.insert("summary".into(), Value::String(first_sentence(&full)));
    op.insert("description".into(), Value::String(format!("{full}\n\n{who}").trim().to_owned()));
}

/// The roles an operation's security requirements admit, as a sentence.
fn who_may_call(security: Option<&Value>) -> String {
    let Some(Value::Array(reqs)) = security else { return String::new() };
    if reqs.iter().all(|r| r.as_object().is_some_and(Map::is_empty)) {
        return "**Public**: no token is needed.".into();
    }
    let mut ways = Vec::new();
    if reqs.iter().any(|r| r.as_object().is_some_and(Map::is_empty)) {
        ways.push("no token (public)".to_owned());
    }
    for (scheme, roles) in reqs.iter().filter_map(Value::as_object).flat_map(|r| r.iter()) {
        let roles: Vec<&str> =
            roles.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        ways.push(match scheme.as_str() {
            "bearer" => format!("a bearer token of role {}", roles.join(", ")),
            "device_key" => "a phone's device key".to_owned(),
            "key_query" => "a device's or camera's `?key=`".to_owned(),
            other => other.to_owned(),
        });
    }
    format!("**Who may call**: {}.", ways.join("; or "))
}

/// Where a doc comment's first clause ends: the first `. `, `: ` or `; ` outside
/// parentheses and code spans (so that `(e.g. …)` and `` `{"note": …}` `` do not cut it).
fn clause_end(t: &str) -> usize {
    let (mut depth, mut code) = (0usize, false);
    let bytes = t.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'`' => code = !code,
            b'(' if !code => depth += 1,
            b')' if !code => depth = depth.saturating_sub(1),
            b'.' | b':' | b';' if !code && depth == 0 && bytes.get(i + 1) == Some(&b' ') => return i,
            _ => {}
        }
    }
    t.len()
}

/// The longest summary, in characters: a line in a list of operations.
const SUMMARY_CHARS: usize = 120;

/// The first clause of a doc comment, without a leading `` `GET /path…`: ``, at most
/// [`SUMMARY_CHARS`] long.
fn first_sentence(text: &str) -> String {
    let paragraph = text.trim().split("\n\n").next().unwrap_or_default();
    let collapsed = paragraph.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut t = collapsed.as_str();
    if t.starts_with('`') {
        if let Some(end) = t.find("`:") {
            t = t[end + 2..].trim_start();
        } else if let Some(end) = t[1..].find('`').map(|i| i + 2).filter(|&e| t[e..].starts_with(' ')) {
            // `` `POST /path` `{body}`: … `` and the like: drop the leading code span.
            t = t[end..].trim_start();
        }
    }
    // The first clause: up to a sentence's end, a colon or a semicolon.
    let end = clause_end(t);
    let mut sentence = t[..end].trim().trim_end_matches(['.', ':']).to_owned();
    if sentence.chars().count() > SUMMARY_CHARS {
        let cut: String = sentence.chars().take(SUMMARY_CHARS).collect();
        sentence = format!("{}…", cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head).trim_end_matches(','));
    }
    let mut chars = sentence.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_is_the_first_sentence_without_the_method_and_path() {
        let cases = [
            ("`GET /api/v1/people`: people by id. More.", "People by id"),
            ("`POST /isapi/events?camera=ID&key=K`: a Hikvision push. Answers 200.", "A Hikvision push"),
            ("Incidents, newest first, in one of three ways:\n- a", "Incidents, newest first, in one of three ways"),
            // A doc comment that only names the route keeps it: better than nothing.
            ("`GET /api/v1/cameras`.", "`GET /api/v1/cameras`"),
            (
                "`POST /api/v1/tagged`: registers a person (e.g. a subject); more.",
                "Registers a person (e.g. a subject)",
            ),
            ("`DELETE /x`: revokes (`{\"revoked\": n}`), audited. More", "Revokes (`{\"revoked\": n}`), audited"),
        ];
        for (doc, want) in cases {
            assert_eq!(first_sentence(doc), want, "{doc}");
        }
    }

    #[test]
    fn the_roles_of_a_requirement_are_said_in_the_description() {
        let s = json!([{"bearer": ["admin", "operator"]}, {"device_key": []}]);
        assert_eq!(
            who_may_call(Some(&s)),
            "**Who may call**: a bearer token of role admin, operator; or a phone's device key."
        );
        assert_eq!(who_may_call(Some(&json!([{}]))), "**Public**: no token is needed.");
    }
}
