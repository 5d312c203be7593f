//! The one error type of the HTTP API: a status, the field at fault and a reason that
//! is safe to show. Details that are not (database errors) are logged, not returned.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// The input field (or header, or `body`) the error is about.
    pub field: Option<String>,
    pub reason: String,
    /// Seconds a client should wait before retrying (503 only).
    pub retry_after_s: Option<u32>,
    /// Set by [`ApiError::unavailable`]: the store failed (counted in
    /// `liandong_store_errors_total`).
    pub store_unavailable: bool,
}

/// What an error answer was about, left in the response's extensions for the metrics
/// layer (`liandong_refusals_total` by status and field); never sent to the client.
#[derive(Debug, Clone)]
pub struct Refused {
    pub field: Option<String>,
    pub store_unavailable: bool,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    reason: &'a str,
    /// `field: reason`, ready to show a person.
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, field: impl Into<String>, reason: impl Into<String>) -> ApiError {
        ApiError {
            status,
            field: Some(field.into()),
            reason: reason.into(),
            retry_after_s: None,
            store_unavailable: false,
        }
    }

    pub fn bad_request(field: impl Into<String>, reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, field, reason)
    }

    pub fn unauthorized(field: impl Into<String>, reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, field, reason)
    }

    pub fn forbidden(field: impl Into<String>, reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, field, reason)
    }

    /// The thing a request names (in `field`) does not exist.
    pub fn not_found_at(field: impl Into<String>, reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, field, reason)
    }

    /// The request contradicts what was decided before it.
    pub fn conflict(field: impl Into<String>, reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, field, reason)
    }

    /// The request's action is not allowed in the state its subject is in.
    pub fn unprocessable(field: impl Into<String>, reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, field, reason)
    }

    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            field: None,
            reason: what.into(),
            retry_after_s: None,
            store_unavailable: false,
        }
    }

    /// The store could not commit: nothing was acknowledged, the client should retry.
    pub fn unavailable(detail: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "store unavailable");
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            field: None,
            reason: "the store cannot commit right now; nothing was acknowledged, retry".into(),
            retry_after_s: Some(2),
            store_unavailable: true,
        }
    }

    pub fn internal(detail: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "internal error");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            field: None,
            reason: "internal error".into(),
            retry_after_s: None,
            store_unavailable: false,
        }
    }

    pub fn message(&self) -> String {
        match &self.field {
            Some(f) => format!("{f}: {}", self.reason),
            None => self.reason.clone(),
        }
    }
}

impl From<liandong_ingest::FieldError> for ApiError {
    fn from(e: liandong_ingest::FieldError) -> ApiError {
        ApiError::bad_request(e.field, e.reason)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                status: self.status.as_u16(),
                field: self.field.as_deref(),
                reason: &self.reason,
                message: self.message(),
            },
        };
        let mut res = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after_s {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res.extensions_mut().insert(Refused { field: self.field, store_unavailable: self.store_unavailable });
        res
    }
}
