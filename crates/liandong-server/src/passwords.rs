//! Passwords and the random secrets of signing in: argon2id hashes (RFC 9106) made and
//! checked off the runtime, at most [`AT_ONCE`] at a time, and session tokens and
//! sign-in codes drawn from the kernel's random source.
//!
//! The parameters are OWASP's password storage recommendation for argon2id: 19 MiB of
//! memory, 2 passes, 1 lane. One hash costs that memory and some tens of milliseconds of
//! one core, so a flood of sign-in attempts would take the server's memory and its
//! runtime threads if each ran at once on the runtime: they queue for a permit instead,
//! and run on the blocking pool.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Hashes computed at once, over every request.
pub const AT_ONCE: usize = 2;

/// Requests waiting for a hash at most; beyond, they are answered at once with
/// [`PasswordError::Busy`] (503) rather than queued for minutes behind a flood.
pub const MAX_WAITING: usize = 64;

/// Shortest and longest password, bytes (UTF-8): long enough for a passphrase, short
/// enough that hashing one is not itself a way to spend the server's time.
pub const MIN_BYTES: usize = 10;
pub const MAX_BYTES: usize = 128;

/// Memory in KiB, passes and lanes: OWASP's first argon2id configuration.
const M_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_LANES: u32 = 1;

/// The hasher, with its bound on work at once.
#[derive(Debug)]
pub struct Passwords {
    permits: Semaphore,
    /// Requests holding or waiting for a permit now.
    waiting: AtomicUsize,
    /// A hash of no one's password, checked when the person named has none, so that an
    /// unknown person costs the same time as a wrong password (no account probing).
    decoy: OnceLock<String>,
}

impl Default for Passwords {
    fn default() -> Self {
        Passwords { permits: Semaphore::new(AT_ONCE), waiting: AtomicUsize::new(0), decoy: OnceLock::new() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("random source: {0}")]
    Random(#[from] std::io::Error),
    #[error("argon2: {0}")]
    Hash(String),
    #[error("hashing task failed: {0}")]
    Task(String),
    #[error("too many password checks waiting")]
    Busy,
}

impl PasswordError {
    /// The answer to a request whose hash could not be made: 503 with `Retry-After`
    /// when too many wait, else an internal error (logged, not shown).
    pub fn into_api_error(self) -> ApiError {
        match self {
            PasswordError::Busy => ApiError {
                status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
                field: None,
                reason: "too many sign-ins at once; retry".into(),
                retry_after_s: Some(1),
                store_unavailable: false,
            },
            e => ApiError::internal(&e),
        }
    }
}

/// A place in the queue for a permit, given back when dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn argon2() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(M_KIB, T_COST, P_LANES, None).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The argon2id PHC string of a password with a fresh 16-byte salt (blocking: call off
/// the runtime).
fn hash_blocking(password: &str) -> Result<String, PasswordError> {
    let salt = random_bytes::<16>()?;
    let hash = argon2()?
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

/// Whether a password is the one a PHC string was made from (blocking). A string that
/// does not parse matches nothing.
fn verify_blocking(password: &str, phc: &str) -> bool {
    argon2().is_ok_and(|a| a.verify_password(password.as_bytes(), phc).is_ok())
}

impl Passwords {
    /// Takes a place in the queue for a permit, or refuses when [`MAX_WAITING`] wait.
    fn queue(&self) -> Result<Waiting<'_>, PasswordError> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(PasswordError::Busy);
        }
        Ok(Waiting(&self.waiting))
    }

    /// Hashes a password on the blocking pool, waiting for a permit.
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let _place = self.queue()?;
        let _permit = self.permits.acquire().await.map_err(|e| PasswordError::Task(e.to_string()))?;
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hash_blocking(&password))
            .await
            .map_err(|e| PasswordError::Task(e.to_string()))?
    }

    /// Checks a password against a PHC string on the blocking pool, waiting for a
    /// permit; `None` (the person has no password, or does not exist) checks against a
    /// decoy and answers false, in about the same time.
    pub async fn verify(&self, password: &str, phc: Option<String>) -> Result<bool, PasswordError> {
        let phc = match phc {
            Some(p) => Some(p),
            None if self.decoy.get().is_none() => {
                let decoy = self.hash("not anyone's password").await?;
                let _ = self.decoy.set(decoy);
                return Ok(false);
            }
            None => None,
        };
        let _place = self.queue()?;
        let _permit = self.permits.acquire().await.map_err(|e| PasswordError::Task(e.to_string()))?;
        let known = phc.is_some();
        let phc = phc.or_else(|| self.decoy.get().cloned()).unwrap_or_default();
        let password = password.to_owned();
        let matched = tokio::task::spawn_blocking(move || verify_blocking(&password, &phc))
            .await
            .map_err(|e| PasswordError::Task(e.to_string()))?;
        Ok(known && matched)
    }
}

/// Refuses a password outside [`MIN_BYTES`]..=[`MAX_BYTES`], naming `field`.
pub fn check_length(field: &str, password: &str) -> Result<(), ApiError> {
    if !(MIN_BYTES..=MAX_BYTES).contains(&password.len()) {
        return Err(ApiError::bad_request(field, format!("must be {MIN_BYTES} to {MAX_BYTES} bytes long")));
    }
    Ok(())
}

/// `N` bytes from the kernel's random source.
pub fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    use std::io::Read;
    let mut raw = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut raw)?;
    Ok(raw)
}

/// What a session token starts with, so that the server (and a person reading a log of
/// a leak scanner) tells it from a config token or a device key.
pub const SESSION_PREFIX: &str = "lds_";

/// A new session token: [`SESSION_PREFIX`] and 256 random bits in unpadded base64url
/// (43 characters).
pub fn new_session_token() -> std::io::Result<String> {
    Ok(format!("{SESSION_PREFIX}{}", base64url(&random_bytes::<32>()?)))
}

/// Whether a presented token has a session token's shape.
pub fn is_session_token(token: &str) -> bool {
    token.strip_prefix(SESSION_PREFIX).is_some_and(|rest| {
        rest.len() == 43 && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// A new one-time sign-in code: 160 random bits in unpadded base64url (27 characters),
/// carried in a link or a QR code rather than typed.
pub fn new_sign_in_code() -> std::io::Result<String> {
    Ok(base64url(&random_bytes::<20>()?))
}

/// Unpadded base64url (RFC 4648 §5).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc_4648_test_vectors() {
        // RFC 4648 §10, without padding; the last two use the URL alphabet's - and _.
        for (input, want) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64url(input.as_bytes()), want, "{input}");
        }
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn session_tokens_have_their_shape_and_differ() {
        let a = new_session_token().unwrap();
        let b = new_session_token().unwrap();
        assert!(is_session_token(&a), "{a}");
        assert_eq!(a.len(), 4 + 43);
        assert_ne!(a, b);
        for not in ["lds_short", "device-key-0001", &format!("lds_{}", "+".repeat(43))] {
            assert!(!is_session_token(not), "{not}");
        }
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only_and_is_argon2id_with_owasp_parameters() {
        let p = Passwords::default();
        let phc = p.hash("correct horse battery").await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(!phc.contains("correct horse"), "{phc}");
        assert!(p.verify("correct horse battery", Some(phc.clone())).await.unwrap());
        assert!(!p.verify("correct horse batterz", Some(phc)).await.unwrap());
        assert!(!p.verify("correct horse battery", None).await.unwrap(), "no hash, no match");
        assert!(!p.verify("correct horse battery", None).await.unwrap(), "the decoy matches nothing either");
        assert!(!p.verify("x", Some("not a phc string".into())).await.unwrap());
    }

    #[tokio::test]
    async fn beyond_the_waiting_bound_a_check_is_refused_at_once_with_503() {
        let p = Passwords::default();
        let held: Vec<_> = (0..MAX_WAITING).map(|_| p.queue().unwrap()).collect();
        let e = p.hash("correct horse battery").await.unwrap_err();
        assert!(matches!(e, PasswordError::Busy), "{e}");
        let answer = e.into_api_error();
        assert_eq!((answer.status.as_u16(), answer.retry_after_s), (503, Some(1)));
        drop(held);
        assert!(p.hash("correct horse battery").await.is_ok(), "places are given back");
    }

    #[test]
    fn lengths_outside_10_to_128_bytes_are_refused_naming_the_field() {
        assert!(check_length("password", &"a".repeat(10)).is_ok());
        assert!(check_length("password", &"a".repeat(128)).is_ok());
        for bad in ["a".repeat(9), "a".repeat(129), String::new()] {
            let e = check_length("new_password", &bad).unwrap_err();
            assert_eq!(e.field.as_deref(), Some("new_password"));
        }
    }
}
