//! How the server accepts connections: its own accept loop on hyper's HTTP/1 server
//! (instead of `axum::serve`), with a header, a body and an idle timeout, a limit on
//! open connections kept below the open-file limit, optional TLS, and graceful
//! shutdown.
//!
//! Each connection is in one phase at a time, each with its deadline:
//! - `HEAD`: from the opening of the connection, or the first byte of a request on a
//!   kept-alive one, until its headers are parsed: `http.header_timeout_s`;
//! - `BODY`: from the headers until the body has arrived whole: `http.body_timeout_s`;
//! - `BUSY`: the handler works and the answer is written: no deadline for the whole (a
//!   replay may stream for long), but an answer of which nothing could be written for
//!   `http.idle_timeout_s` (a client that does not read) ends the connection;
//! - `IDLE`: from the end of an answer until the next request's first byte:
//!   `http.idle_timeout_s`.
//!
//! hyper's own `header_read_timeout` is turned off: its clock starts whenever hyper waits
//! for a request head, idle keep-alive time included (hyper 1.x `proto/h1/conn.rs`), so
//! with it no idle timeout could be longer than the header timeout. A connection past
//! its deadline is dropped (the socket closes); an upgraded websocket
//! leaves the phases (the live feed has its own pings) but keeps its place in the count.
//!
//! When every place is taken, a new connection closes the one that has been idle (or
//! sending its headers) the longest and takes its place: clients that are making
//! progress, `/healthz` among them, are served before sockets that sit still. When no
//! connection can be closed (all are busy or are websockets), the new one waits briefly
//! for a place and is then closed.

pub mod tls;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::Router;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::config::HttpConfig;

/// Open files kept for the store, the map, images and logs when the connection limit
/// is derived from the open-file limit.
const FILES_KEPT: u64 = 256;
/// How long a new connection waits for a place when no open one can be closed.
const PLACE_WAIT: Duration = Duration::from_millis(250);
/// Pause after a failed `accept` (e.g. out of file descriptors), so the loop does not spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

const HEAD: u8 = 0;
const BODY: u8 = 1;
const BUSY: u8 = 2;
const IDLE: u8 = 3;
/// Chosen to make room for a new connection; its task drops it.
const CLOSING: u8 = 4;

/// The limits in force: the configured ones after the open-file limit has had its say.
#[derive(Debug, Clone)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// Raises the soft open-file limit to the hard one and derives the connection limit:
/// the configured one, or fewer when the files would not allow it. Logs both.
pub fn prepare(http: &HttpConfig) -> Limits {
    let (soft, hard) = raise_file_limit();
    let configured = u64::from(http.max_connections);
    // Each connection is one descriptor; the rest of the server keeps FILES_KEPT.
    let allowed = soft.map_or(configured, |soft| configured.min(soft.saturating_sub(FILES_KEPT).max(1)));
    let limits = Limits {
        header_timeout: Duration::from_secs(http.header_timeout_s.into()),
        body_timeout: Duration::from_secs(http.body_timeout_s.into()),
        idle_timeout: Duration::from_secs(http.idle_timeout_s.into()),
        max_connections: usize::try_from(allowed).unwrap_or(usize::MAX),
    };
    if allowed < configured {
        tracing::warn!(
            configured,
            allowed,
            open_files = soft,
            "connection limit lowered below the open-file limit (raise the hard limit, e.g. LimitNOFILE)"
        );
    }
    tracing::info!(
        open_files_soft = soft,
        open_files_hard = hard,
        max_connections = limits.max_connections,
        header_timeout_s = http.header_timeout_s,
        body_timeout_s = http.body_timeout_s,
        idle_timeout_s = http.idle_timeout_s,
        "connection limits"
    );
    limits
}

/// Raises the soft `RLIMIT_NOFILE` to the hard one; answers (soft, hard) as they are
/// afterwards, `None` for unlimited.
fn raise_file_limit() -> (Option<u64>, Option<u64>) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => limit = getrlimit(Resource::Nofile),
            Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
        }
    }
    (limit.current, limit.maximum)
}

/// One connection's phase and when it began, shared by its socket, its request and
/// response bodies and its watchdog.
///
/// A phase change is two stores and wakes no one. The watchdog sleeps until its phase's
/// deadline but never longer than the shortest time limit: a phase that
/// begins later cannot end sooner than that, so looking again then finds every deadline
/// in time. Waking the watchdog at each change (three per request, each a new timer)
/// was 3 % of the server's instructions per report; looking every few seconds is a few
/// wake-ups per connection per minute.
struct Watch {
    phase: AtomicU8,
    /// When the phase began, milliseconds after `epoch`.
    since_ms: AtomicU64,
    /// When bytes were last written to the socket, milliseconds after `epoch`.
    wrote_ms: AtomicU64,
    epoch: Instant,
    limits: Arc<Limits>,
    /// Told when the connection is chosen to make room for a new one.
    close: Notify,
}

impl Watch {
    fn new(epoch: Instant, limits: Arc<Limits>) -> Watch {
        let w = Watch {
            phase: AtomicU8::new(HEAD),
            since_ms: AtomicU64::new(0),
            wrote_ms: AtomicU64::new(0),
            epoch,
            limits,
            close: Notify::new(),
        };
        w.since_ms.store(w.now_ms(), Ordering::SeqCst);
        w
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn enter(&self, phase: u8) {
        self.since_ms.store(self.now_ms(), Ordering::SeqCst);
        self.phase.store(phase, Ordering::SeqCst);
    }

    /// Moves from `from` to `to`, unless the phase has moved on (or the connection is
    /// being closed).
    fn advance(&self, from: u8, to: u8) {
        if self.phase.load(Ordering::SeqCst) == from {
            self.since_ms.store(self.now_ms(), Ordering::SeqCst);
            let _ = self.phase.compare_exchange(from, to, Ordering::SeqCst, Ordering::SeqCst);
        }
    }

    /// The current phase's deadline and what passing it means; none for a connection
    /// being closed.
    fn deadline(&self) -> Option<(Instant, &'static str)> {
        let since = |ms: &AtomicU64| self.epoch + Duration::from_millis(ms.load(Ordering::SeqCst));
        let l = &self.limits;
        Some(match self.phase.load(Ordering::SeqCst) {
            HEAD => (since(&self.since_ms) + l.header_timeout, "header timeout"),
            BODY => (since(&self.since_ms) + l.body_timeout, "body timeout"),
            IDLE => (since(&self.since_ms) + l.idle_timeout, "idle timeout"),
            // A handler may work or stream for long, but an answer that the client does
            // not take (nothing written for the idle timeout) holds a place and its
            // buffers for nothing.
            BUSY => (since(&self.since_ms).max(since(&self.wrote_ms)) + l.idle_timeout, "answer not taken"),
            _ => return None,
        })
    }

    /// Resolves when the connection has to go: past its phase's deadline, or chosen to
    /// make room. Answers why, for the log.
    async fn expired(&self) -> &'static str {
        let l = &self.limits;
        let shortest = l.header_timeout.min(l.body_timeout).min(l.idle_timeout);
        loop {
            let Some((deadline, why)) = self.deadline() else { return "closed to make room" };
            let now = Instant::now();
            if now >= deadline {
                return why;
            }
            tokio::select! {
                // Woken, the loop looks again: the phase may have moved on, or the
                // answer made progress.
                () = tokio::time::sleep_until(deadline.min(now + shortest)) => {}
                () = self.close.notified() => return "closed to make room",
            }
        }
    }
}

/// The open connections: places to take, and the watches of those that could be
/// closed to make room (upgraded websockets leave this map but keep their place).
struct Connections {
    places: Arc<Semaphore>,
    watches: Mutex<HashMap<u64, Arc<Watch>>>,
    next_id: AtomicU64,
    epoch: Instant,
}

impl Connections {
    /// Takes a place, closing the longest-idle connection when none is free.
    async fn place(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(p) = self.places.clone().try_acquire_owned() {
            return Some(p);
        }
        self.close_longest_idle();
        tokio::time::timeout(PLACE_WAIT, self.places.clone().acquire_owned()).await.ok()?.ok()
    }

    fn close_longest_idle(&self) {
        let watches = self.watches.lock().unwrap_or_else(PoisonError::into_inner);
        let mut candidates: Vec<&Arc<Watch>> =
            watches.values().filter(|w| matches!(w.phase.load(Ordering::SeqCst), HEAD | IDLE)).collect();
        candidates.sort_by_key(|w| w.since_ms.load(Ordering::SeqCst));
        for w in candidates {
            for from in [IDLE, HEAD] {
                if w.phase.compare_exchange(from, CLOSING, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                    w.close.notify_one();
                    return;
                }
            }
        }
    }

    fn register(self: &Arc<Self>, limits: Arc<Limits>) -> Registered {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let watch = Arc::new(Watch::new(self.epoch, limits));
        self.watches.lock().unwrap_or_else(PoisonError::into_inner).insert(id, watch.clone());
        Registered { id, watch, connections: self.clone() }
    }
}

/// A connection's entry in [`Connections`], removed when its task ends.
struct Registered {
    id: u64,
    watch: Arc<Watch>,
    connections: Arc<Connections>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.connections.watches.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

/// A socket that holds its place in the count (for as long as it lives, also after a
/// websocket upgrade) and marks the first byte of a request on an idle connection.
struct Tracked<S> {
    inner: S,
    watch: Arc<Watch>,
    _place: OwnedSemaphorePermit,
}

impl<S> Tracked<S> {
    fn wrote(&self, polled: &Poll<io::Result<usize>>) {
        if matches!(polled, Poll::Ready(Ok(n)) if *n > 0) {
            self.watch.wrote_ms.store(self.watch.now_ms(), Ordering::SeqCst);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.watch.advance(IDLE, HEAD);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(&polled);
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A request body that ends the `BODY` phase when it has arrived whole.
struct RequestBody {
    inner: Incoming,
    watch: Arc<Watch>,
}

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.watch.advance(BODY, BUSY);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An answer's body; when hyper is done with it (written or abandoned) the connection
/// is idle until the next request.
struct ResponseBody {
    inner: axum::body::Body,
    watch: Arc<Watch>,
}

impl HttpBody for ResponseBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        for from in [BODY, BUSY] {
            self.watch.advance(from, IDLE);
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops accepting, lets
/// every open request finish and returns once the connections have closed (upgraded
/// websockets close on the application's own shutdown signal).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    tls: Option<tls::Certificates>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let connections = Arc::new(Connections {
        places: Arc::new(Semaphore::new(limits.max_connections)),
        watches: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(0),
        epoch: Instant::now(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let acceptor = match &tls {
        Some(certs) => Some(certs.acceptor().map_err(io::Error::other)?),
        None => None,
    };
    let reloader = tls.map(|certs| tokio::spawn(certs.keep_fresh(stop_rx.clone())));
    let limits = Arc::new(limits);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let (connections, router, limits, acceptor, stop) =
            (connections.clone(), router.clone(), limits.clone(), acceptor.clone(), stop_rx.clone());
        tokio::spawn(async move {
            let Some(place) = connections.place().await else {
                tracing::debug!(%peer, "connection refused: every place is taken");
                return;
            };
            let registered = connections.register(limits);
            match acceptor {
                Some(acceptor) => {
                    // The handshake is part of the headers' time, and a connection in
                    // its handshake may be closed to make room like any other.
                    let tls = tokio::select! {
                        accepted = acceptor.accept(tcp) => match accepted {
                            Ok(tls) => tls,
                            Err(e) => {
                                tracing::debug!(%peer, error = %e, "tls handshake failed");
                                return;
                            }
                        },
                        why = registered.watch.expired() => {
                            tracing::debug!(%peer, reason = why, "tls handshake abandoned");
                            return;
                        }
                    };
                    serve_connection(tls, peer, place, &registered, router, stop).await;
                }
                None => serve_connection(tcp, peer, place, &registered, router, stop).await,
            }
        });
    }
    drop(listener);
    tracing::info!("stopped accepting connections; finishing open requests");
    let _ = stop_tx.send(true);
    drop(stop_rx);
    stop_tx.closed().await;
    if let Some(reloader) = reloader {
        let _ = reloader.await;
    }
    Ok(())
}

async fn serve_connection<S>(
    stream: S,
    peer: std::net::SocketAddr,
    place: OwnedSemaphorePermit,
    registered: &Registered,
    router: Router,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let watch = registered.watch.clone();
    let io = TokioIo::new(Tracked { inner: stream, watch: watch.clone(), _place: place });
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let (router, watch) = (router.clone(), watch.clone());
        async move {
            watch.enter(if request.body().is_end_stream() { BUSY } else { BODY });
            let mut request = request.map(|inner| axum::body::Body::new(RequestBody { inner, watch: watch.clone() }));
            // The peer's address, for what is counted per client (failed sign-ins).
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            let response = match router.oneshot(request).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            Ok::<_, Infallible>(response.map(|inner| ResponseBody { inner, watch }))
        }
    });
    // hyper's own header timeout (30 s by default once a timer is set) is off: it would
    // also cut kept-alive connections short of the idle timeout. The watch keeps time.
    let connection = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(connection);
    let mut stopping = *stop.borrow();
    if stopping {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
            why = registered.watch.expired() => {
                tracing::debug!(reason = why, "connection closed");
                return;
            }
        }
    }
}
