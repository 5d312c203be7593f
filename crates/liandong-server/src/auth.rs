//! Who is calling: users by bearer token (the config's, or a signed-in session's) and
//! role, devices by their own key.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::HeaderMap;

use crate::config::TokenConfig;
use crate::error::ApiError;
use crate::passwords::is_session_token;
pub use crate::role::Role;
use crate::time_fmt::now_ms;

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

/// The users behind tokens: the config's, looked up per request, and signed-in
/// sessions', cached here by the hash of their token. The cache is filled and re-checked
/// against the store by `sessions::resolve` (which a middleware runs before every
/// handler), so that handlers ask synchronously, as they do for config tokens.
#[derive(Debug, Default)]
pub struct Tokens {
    config: HashMap<String, User>,
    sessions: Mutex<HashMap<String, CachedSession>>,
}

/// A session as this instance last read it from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedSession {
    pub user: User,
    pub expires_ms: i64,
    pub max_expires_ms: i64,
    /// When it was read from the store: after a few seconds it is read again, so that a
    /// revocation on another instance takes effect here too.
    pub checked_ms: i64,
}

/// Sessions cached at once; beyond, the cache is emptied and refilled from the store
/// as requests come (a bound on memory, not a limit on sessions).
const MAX_CACHED_SESSIONS: usize = 50_000;

impl Tokens {
    pub fn new(tokens: &[TokenConfig]) -> Tokens {
        let config = tokens
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
            .collect();
        Tokens { config, sessions: Mutex::default() }
    }

    /// The user of a config token, or of a session token whose session this instance
    /// has read and which has not ended.
    pub fn user(&self, token: &str) -> Option<User> {
        if let Some(u) = self.config.get(token) {
            return Some(u.clone());
        }
        if !is_session_token(token) {
            return None;
        }
        let c = self.session(&key_at_rest(token))?;
        (c.expires_ms > now_ms()).then_some(c.user)
    }

    /// Whether a token is one of the config's (a service account's, or the first
    /// administrator's).
    pub fn is_config_token(&self, token: &str) -> bool {
        self.config.contains_key(token)
    }

    /// The cached session of a token hash.
    pub fn session(&self, token_hash: &str) -> Option<CachedSession> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).get(token_hash).cloned()
    }

    /// Caches a session as read from the store (or as just opened or renewed).
    pub fn remember(&self, token_hash: String, session: CachedSession) {
        let mut cache = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED_SESSIONS && !cache.contains_key(&token_hash) {
            let now = now_ms();
            cache.retain(|_, c| c.expires_ms > now);
            if cache.len() >= MAX_CACHED_SESSIONS {
                cache.clear();
            }
        }
        cache.insert(token_hash, session);
    }

    /// Drops a session from the cache (signed out or revoked here: at once).
    pub fn forget(&self, token_hash: &str) {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(token_hash);
    }

    /// Drops every cached session of a person.
    pub fn forget_person(&self, person_id: &str) {
        let mut cache = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|_, c| c.user.person_id.as_deref() != Some(person_id));
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
    query.and_then(|q| liandong_ingest::form::first(q, "token")).map(std::borrow::Cow::into_owned)
}

/// The user behind a request, who must hold one of `roles`: a config token's, or a
/// signed-in session's (resolved before the handler by `sessions::resolve_sessions`).
pub fn require_user(
    tokens: &Tokens,
    headers: &HeaderMap,
    query: Option<&str>,
    roles: &[Role],
) -> Result<User, ApiError> {
    let token =
        bearer(headers, query).ok_or_else(|| ApiError::unauthorized("authorization", "a bearer token is required"))?;
    let user = tokens.user(&token).ok_or_else(|| ApiError::unauthorized("authorization", "the token is not valid"))?;
    if roles.contains(&user.role) {
        Ok(user)
    } else {
        Err(ApiError::forbidden("authorization", format!("role {:?} may not do this", user.role)))
    }
}

/// `[a-z0-9_-]{1,64}`: short enough to type, safe in a URL path and a log line.
pub fn check_person_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty()
        || id.len() > 64
        || !id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b))
    {
        return Err(ApiError::bad_request("person_id", "must be 1 to 64 of a-z, 0-9, _ and -"));
    }
    Ok(())
}

/// Compares two secrets without leaking their common prefix length through timing.
/// A device's or camera's key as it is kept (in the database and in memory): `sha256:` and
/// the hex SHA-256 of the key, so that a copy of the database gives no one a device's
/// key. The keys the server generates are random (143 bits): no salt is needed to keep
/// them from being guessed back.
///
/// Every OsmAnd report looks its device up by this form of its key: the hex digits are
/// written from a table (formatting each byte with `write!` was 5 % of the server's
/// instructions per report).
pub fn key_at_rest(key: &str) -> String {
    use sha2::{Digest, Sha256};
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(key.as_bytes());
    let mut out = String::with_capacity(KEY_AT_REST_PREFIX.len() + 64);
    out.push_str(KEY_AT_REST_PREFIX);
    for b in digest {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xf)] as char);
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
        assert_eq!(kept, "sha256:128d8334bf59c7d32ed5324c8cd9a2d442c24c0ec436f2f1f90aea5a80450580");
        assert!(key_matches("device-key-0001", &kept));
        assert!(!key_matches("device-key-0002", &kept));
        assert!(!key_matches(&kept, &kept), "the kept form is not a key");
        for plain in ["device-key-0001", "sha256:short", &format!("sha256:{}", "z".repeat(64))] {
            assert!(!is_at_rest(plain), "{plain}");
        }
    }
}
