//! Who is calling: users by bearer token and role, devices by their own key.

use std::collections::HashMap;

use axum::http::HeaderMap;

use crate::config::TokenConfig;
use crate::error::ApiError;
pub use crate::role::Role;

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub role: Role,
    pub unit_id: Option<String>,
    /// The person the caller acts for (a signed-in person, or a config token naming
    /// one); `None` for service accounts.
    pub person_id: Option<String>,
}

/// User tokens from the config, looked up in constant time per request.
#[derive(Debug, Default)]
pub struct Tokens(HashMap<String, User>);

impl Tokens {
    pub fn new(tokens: &[TokenConfig]) -> Tokens {
        Tokens(
            tokens
                .iter()
                .map(|t| {
                    (
                        t.token.expose().to_owned(),
                        User {
                            name: t.name.clone(),
                            role: t.role,
                            unit_id: t.unit_id.clone(),
                            person_id: t.person_id.clone(),
                        },
                    )
                })
                .collect(),
        )
    }

    pub fn user(&self, token: &str) -> Option<&User> {
        self.0.get(token)
    }
}

/// The bearer token of a request: the `Authorization: Bearer` header, else a
/// `token=` query parameter (browsers cannot set headers on a websocket).
pub fn bearer(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        if let Some(t) = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")) {
            return Some(t.trim().to_owned());
        }
    }
    query.and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "token").map(|(_, v)| v.into_owned()))
}

/// The user behind a request, who must hold one of `roles`.
pub fn require_user<'a>(
    tokens: &'a Tokens,
    headers: &HeaderMap,
    query: Option<&str>,
    roles: &[Role],
) -> Result<&'a User, ApiError> {
    let token =
        bearer(headers, query).ok_or_else(|| ApiError::unauthorized("authorization", "a bearer token is required"))?;
    let user = tokens.user(&token).ok_or_else(|| ApiError::unauthorized("authorization", "the token is not valid"))?;
    if roles.contains(&user.role) {
        Ok(user)
    } else {
        Err(ApiError::forbidden("authorization", format!("role {:?} may not do this", user.role)))
    }
}

/// Compares two secrets without leaking their common prefix length through timing.
/// A device's or camera's key as it is kept (in the database and in memory): `sha256:` and
/// the hex SHA-256 of the key, so that a copy of the database gives no one a device's
/// key. The keys the server generates are random (143 bits): no salt is needed to keep
/// them from being guessed back.
pub fn key_at_rest(key: &str) -> String {
    use sha2::{Digest, Sha256};
    use std::fmt::Write;
    let digest = Sha256::digest(key.as_bytes());
    let mut out = String::with_capacity(KEY_AT_REST_PREFIX.len() + 64);
    out.push_str(KEY_AT_REST_PREFIX);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

const KEY_AT_REST_PREFIX: &str = "sha256:";

/// Whether a kept key is already in the form [`key_at_rest`] makes (older versions kept
/// keys as they were given).
pub fn is_at_rest(kept: &str) -> bool {
    kept.len() == KEY_AT_REST_PREFIX.len() + 64
        && kept.starts_with(KEY_AT_REST_PREFIX)
        && kept[KEY_AT_REST_PREFIX.len()..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// A key in the form it is kept: hashed, unless it already is (read from a store that an
/// older version wrote in plaintext, or from one that is up to date).
pub fn kept_key(key: String) -> String {
    if is_at_rest(&key) {
        key
    } else {
        key_at_rest(&key)
    }
}

/// Whether a presented key is the kept one (compared in constant time).
pub fn key_matches(presented: &str, kept: &str) -> bool {
    secrets_equal(&key_at_rest(presented), kept)
}

pub fn secrets_equal(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_from_header_or_query() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h, Some("a=1&token=abc%2B1")), Some("abc+1".into()));
        h.insert("authorization", "Bearer xyz".parse().unwrap());
        assert_eq!(bearer(&h, Some("token=abc")), Some("xyz".into()));
        assert_eq!(bearer(&HeaderMap::new(), Some("tok=1")), None);
        assert_eq!(bearer(&HeaderMap::new(), Some("token=%zz%4")), Some("%zz%4".into()));
    }

    #[test]
    fn secret_comparison() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
    }

    #[test]
    fn keys_are_kept_hashed() {
        // SHA-256 of "device-key-0001", as `sha256sum` gives it.
        let kept = key_at_rest("device-key-0001");
        assert!(is_at_rest(&kept), "{kept}");
        assert_eq!(kept.len(), 71);
        assert!(key_matches("device-key-0001", &kept));
        assert!(!key_matches("device-key-0002", &kept));
        assert!(!key_matches(&kept, &kept), "the kept form is not a key");
        for plain in ["device-key-0001", "sha256:short", &format!("sha256:{}", "z".repeat(64))] {
            assert!(!is_at_rest(plain), "{plain}");
        }
    }
}
