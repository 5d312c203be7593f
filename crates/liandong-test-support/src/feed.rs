//! Websocket clients of the live feed: the next message, the next of a kind, everything
//! until the feed is quiet. Each works on any stream, plain or TLS, and checks every
//! message it reads against the feed's JSON Schema ([`crate::schema`]).

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// A live feed client over plain TCP, as [`crate::Server::ws`] connects it.
pub type Ws = WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long [`next`] waits for a message before the test fails.
const NEXT_WITHIN: Duration = Duration::from_secs(5);

/// The next JSON text message, skipping pings and other frames; the test fails when none
/// comes within 5 s or the feed ends.
pub async fn next<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> Value {
    loop {
        let msg = tokio::time::timeout(NEXT_WITHIN, ws.next())
            .await
            .expect("a message within 5 s")
            .expect("the feed is open")
            .expect("a message");
        if let Message::Text(t) = msg {
            return crate::schema::checked_message(&t);
        }
    }
}

/// The next message whose `type` is one of `kinds` within `within_ms`, skipping the
/// others; None when none comes in time or the feed ends.
pub async fn next_among<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    kinds: &[&str],
    within_ms: u64,
) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(within_ms);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.ok()??.ok()?;
        if let Message::Text(t) = msg {
            let v: Value = crate::schema::checked_message(&t);
            if kinds.iter().any(|kind| v["type"] == *kind) {
                return Some(v);
            }
        }
    }
}

/// The next message of `type` `kind` within `within_ms`, as [`next_among`].
pub async fn next_of<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    kind: &str,
    within_ms: u64,
) -> Option<Value> {
    next_among(ws, &[kind], within_ms).await
}

/// Every message of `type` `kind` until none has come for `quiet_ms`.
pub async fn all_of<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    kind: &str,
    quiet_ms: u64,
) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(v) = next_of(ws, kind, quiet_ms).await {
        out.push(v);
    }
    out
}

/// Every text message up to and including the first of `type` `kind`, or until
/// `within_ms` have passed or the feed ends (then the answer has no message of `kind`).
/// For an answer whose length depends on the machine's speed, such as a long replay,
/// where waiting for a quiet feed would stop too early on a loaded machine.
pub async fn until<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    kind: &str,
    within_ms: u64,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(within_ms);
    let mut out = Vec::new();
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if let Message::Text(t) = m {
            let v: Value = crate::schema::checked_message(&t);
            let last = v["type"] == kind;
            out.push(v);
            if last {
                break;
            }
        }
    }
    out
}

/// Every text message until the feed is quiet for `quiet_ms` (or ends).
pub async fn drain<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>, quiet_ms: u64) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_millis(quiet_ms), ws.next()).await {
        if let Message::Text(t) = m {
            out.push(crate::schema::checked_message(&t));
        }
    }
    out
}

/// Whether no text message arrives within `ms` (other frames are skipped, each one
/// starting the wait again; a feed that ends sends none).
pub async fn silent_for<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>, ms: u64) -> bool {
    loop {
        match tokio::time::timeout(Duration::from_millis(ms), ws.next()).await {
            Err(_) => return true,
            Ok(Some(Ok(Message::Text(_)))) => return false,
            Ok(None) | Ok(Some(Err(_))) => return true,
            Ok(Some(Ok(_))) => {}
        }
    }
}
