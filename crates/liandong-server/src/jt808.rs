//! The JT/T 808 listener: the BeiDou terminals of the county's patrol cars connect over
//! TCP, register, authenticate and send location reports, which go through the same
//! sequencer as OsmAnd's (`routes::osmand`).
//!
//! Identity: a terminal is the device `jt808-<phone number without leading zeros>`
//! (`jt808-13912345678`), registered by an administrator with `POST /api/v1/devices`
//! first. Its registration (0x0100) is answered with a fresh authentication code, kept
//! only as a hash (`jt808_terminals`); an unregistered terminal is answered "no such
//! terminal" (0x8100 result 4). Authentication (0x0102) with the latest code opens the
//! session; location reports (0x0200, 0x0704) before it are answered with failure.
//!
//! Every report is answered (0x8001 result 0) only after the sequencer committed it.
//! One connection is one task reading frames in order from a buffer of at most one frame
//! plus one read; a bad frame is answered "bad message" (2) when its header could be
//! read, else dropped, and a connection sending [`Jt808Config::max_bad_frames`] bad
//! frames in a row is closed. A connection's faults end only that connection.

use std::sync::Arc;
use std::time::Duration;

use liandong_ingest::jt808::{
    self, id, AnswerResult, Auth, FrameError, GeneralAnswer, Header, Location, Message, Packet, Register,
    RegisterAnswer, RegisterResult, Scan,
};
use liandong_store::{AuditEntry, Jt808Terminal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::Jt808Config;
use crate::sequencer::Item;
use crate::time_fmt::now_ms;
use crate::AppState;

/// How long writing an answer may take before the terminal is given up as not reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connections get at shutdown to finish the frame in hand.
const DRAIN_WITHIN: Duration = Duration::from_secs(5);
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 4096;

/// The device id of the terminal whose header this is (see the module's doc).
pub fn device_id(header: &Header) -> String {
    format!("jt808-{}", header.phone_digits())
}

/// Binds the configured listener; None when `[jt808] listen` is absent.
pub async fn bind(config: &Jt808Config) -> std::io::Result<Option<TcpListener>> {
    match config.listen {
        Some(addr) => Ok(Some(TcpListener::bind(addr).await?)),
        None => Ok(None),
    }
}

/// Accepts terminals until the server's stop signal, then waits (bounded) for the
/// connections to finish the frame in hand.
pub async fn serve(listener: TcpListener, state: Arc<AppState>) {
    let stopped = stopped(&state);
    tokio::pin!(stopped);
    let slots = Arc::new(Semaphore::new(state.config.jt808.max_connections));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        tracing::warn!(%peer, "jt808 connection refused: connection limit reached");
                        continue;
                    };
                    let state = state.clone();
                    connections.spawn(async move {
                        Connection::new(state).run(stream).await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "jt808 accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_WITHIN, async { while connections.join_next().await.is_some() {} }).await.is_err() {
        connections.shutdown().await;
    }
}

/// What the platform sends back for one frame, and whether the connection goes on.
struct Outcome {
    answer: Option<Vec<u8>>,
    /// The frame was bad (counts towards closing the connection).
    bad: bool,
    close: bool,
}

/// One terminal's connection.
struct Connection {
    state: Arc<AppState>,
    /// The device this connection authenticated as.
    device: Option<String>,
    /// The platform's own message serial numbers.
    serial: u16,
    bad_in_a_row: u32,
}

impl Connection {
    fn new(state: Arc<AppState>) -> Connection {
        Connection { state, device: None, serial: 0, bad_in_a_row: 0 }
    }

    /// Reads and answers frames in order until the terminal leaves, idles out, sends
    /// too much garbage, or the server stops.
    async fn run(mut self, mut stream: TcpStream) {
        let idle = Duration::from_secs(self.state.config.jt808.idle_timeout_s);
        let stopped = stopped(&self.state);
        tokio::pin!(stopped);
        let mut buf: Vec<u8> = Vec::with_capacity(jt808::MAX_FRAME_BYTES + READ_CHUNK);
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            let n = tokio::select! {
                _ = &mut stopped => return,
                read = tokio::time::timeout(idle, stream.read(&mut chunk)) => match read {
                    Ok(Ok(0)) | Ok(Err(_)) => return,
                    Err(_) => {
                        tracing::debug!(device = ?self.device, "jt808 connection idle: closed");
                        return;
                    }
                    Ok(Ok(n)) => n,
                },
            };
            buf.extend_from_slice(&chunk[..n]);
            if !self.drain(&mut buf, &mut stream).await {
                return;
            }
        }
    }

    /// Handles every whole frame in `buf`, leaving a partial one; false when the
    /// connection is to close.
    async fn drain(&mut self, buf: &mut Vec<u8>, stream: &mut TcpStream) -> bool {
        let mut at = 0;
        let keep = loop {
            match jt808::scan(&buf[at..]) {
                Scan::NeedMore => break true,
                Scan::Skip { skip } => at += skip,
                Scan::Frame { start, end, consumed } => {
                    let outcome = self.frame(&buf[at + start..at + end]).await;
                    at += consumed;
                    self.bad_in_a_row = if outcome.bad { self.bad_in_a_row + 1 } else { 0 };
                    if let Some(answer) = outcome.answer {
                        let written = tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&answer)).await;
                        if !matches!(written, Ok(Ok(()))) {
                            break false;
                        }
                    }
                    if outcome.close {
                        break false;
                    }
                    if self.bad_in_a_row >= self.state.config.jt808.max_bad_frames {
                        tracing::info!(device = ?self.device, "jt808 connection closed: bad frames in a row");
                        break false;
                    }
                }
            }
        };
        buf.drain(..at);
        keep
    }

    /// Decodes one frame's content and acts on it.
    async fn frame(&mut self, content: &[u8]) -> Outcome {
        let packet = match jt808::decode(content) {
            Ok(p) => p,
            Err(FrameError { header, error }) => {
                tracing::debug!(error = %error, "jt808 bad frame");
                let answer = header.map(|h| self.general(&h, AnswerResult::BadMessage));
                return Outcome { answer, bad: true, close: false };
            }
        };
        let Packet { header, body } = packet;
        match Message::decode(&header, &body) {
            Ok(message) => self.message(&header, message).await,
            Err(jt808::Jt808Error::Unsupported { what }) => {
                tracing::debug!(what, "jt808 message not supported");
                Outcome { answer: Some(self.general(&header, AnswerResult::Unsupported)), bad: false, close: false }
            }
            Err(error) => {
                tracing::debug!(error = %error, msg_id = header.msg_id, "jt808 bad message body");
                self.state.metrics.reports_rejected.increment(u64::from(is_location(&header)));
                Outcome { answer: Some(self.general(&header, AnswerResult::BadMessage)), bad: true, close: false }
            }
        }
    }

    /// Acts on a decoded message.
    async fn message(&mut self, header: &Header, message: Message) -> Outcome {
        let answer =
            |s: &mut Connection, result| Outcome { answer: Some(s.general(header, result)), bad: false, close: false };
        match message {
            Message::Heartbeat => answer(self, AnswerResult::Ok),
            Message::Logout => {
                self.device = None;
                Outcome { answer: Some(self.general(header, AnswerResult::Ok)), bad: false, close: true }
            }
            Message::Register(r) => self.register(header, r).await,
            Message::Auth(a) => self.authenticate(header, a).await,
            Message::Location(l) => {
                let result = self.locations(header, vec![l], true).await;
                answer(self, result)
            }
            Message::LocationBatch(b) => {
                let result = self.locations(header, b.locations, false).await;
                answer(self, result)
            }
            // A terminal's answer to a platform command: the platform sends none yet.
            Message::Other(id::TERMINAL_ANSWER) => Outcome { answer: None, bad: false, close: false },
            Message::GeneralAnswer(_) | Message::RegisterAnswer(_) | Message::Other(_) => {
                answer(self, AnswerResult::Unsupported)
            }
        }
    }

    /// 0x0100: a known terminal gets a fresh code (its hash replacing any earlier one);
    /// this connection must then authenticate with it.
    async fn register(&mut self, header: &Header, r: Register) -> Outcome {
        let device_id = device_id(header);
        let known = self.state.devices.read().unwrap_or_else(|e| e.into_inner()).get(&device_id).is_some();
        let refused = |s: &mut Connection, result| Outcome {
            answer: Some(s.register_answer(header, result, None)),
            bad: false,
            close: false,
        };
        if !known {
            tracing::info!(device = %device_id, "jt808 registration of an unknown terminal refused");
            return refused(self, RegisterResult::NoSuchTerminal);
        }
        self.device = None;
        let Ok(code) = crate::devices::generate_key() else {
            return Outcome { answer: Some(self.general(header, AnswerResult::Failure)), bad: false, close: false };
        };
        let now = now_ms();
        let terminal = Jt808Terminal {
            device_id: device_id.clone(),
            code_hash: crate::auth::key_at_rest(&code),
            registered_ms: now,
            manufacturer: r.manufacturer,
            model: r.model,
            terminal_id: r.terminal_id,
            plate: r.plate,
        };
        let audit = AuditEntry {
            at_ms: now,
            actor: format!("device:{device_id}"),
            action: "jt808_register".into(),
            subject: format!("device:{device_id}"),
            detail: serde_json::json!({"model": terminal.model, "terminal_id": terminal.terminal_id, "plate": terminal.plate})
                .to_string(),
        };
        if let Err(e) = self.state.store.register_jt808(&terminal, &audit).await {
            tracing::warn!(error = %e, device = %device_id, "jt808 registration not stored");
            return Outcome { answer: Some(self.general(header, AnswerResult::Failure)), bad: false, close: false };
        }
        Outcome { answer: Some(self.register_answer(header, RegisterResult::Ok, Some(code))), bad: false, close: false }
    }

    /// 0x0102: the latest code of a still registered device opens the session. A wrong
    /// code counts as a bad frame, so that guessing ends the connection.
    async fn authenticate(&mut self, header: &Header, a: Auth) -> Outcome {
        let device_id = device_id(header);
        let known = self.state.devices.read().unwrap_or_else(|e| e.into_inner()).get(&device_id).is_some();
        let kept = match self.state.store.jt808_terminal(&device_id).await {
            Ok(t) => t.map(|t| t.code_hash),
            Err(e) => {
                tracing::warn!(error = %e, device = %device_id, "jt808 authentication not checked");
                return Outcome { answer: Some(self.general(header, AnswerResult::Failure)), bad: false, close: false };
            }
        };
        let matches = known && kept.is_some_and(|kept| crate::auth::key_matches(&a.code, &kept));
        if matches {
            tracing::debug!(device = %device_id, "jt808 terminal authenticated");
            self.device = Some(device_id);
            Outcome { answer: Some(self.general(header, AnswerResult::Ok)), bad: false, close: false }
        } else {
            tracing::info!(device = %device_id, "jt808 authentication refused");
            self.device = None;
            Outcome { answer: Some(self.general(header, AnswerResult::Failure)), bad: true, close: false }
        }
    }

    /// 0x0200 and 0x0704: checks the session, turns each location into a report and
    /// submits them as one batch; the result to answer once the batch is committed. A
    /// single report that cannot be stored (no fix, out of range, outside the accepted
    /// time window) fails; in a batch such locations are dropped (counted) and the rest
    /// stored, since resending would never make them valid.
    async fn locations(&mut self, header: &Header, locations: Vec<Location>, single: bool) -> AnswerResult {
        let device_id = device_id(header);
        let rejected = &self.state.metrics.reports_rejected;
        if self.device.as_deref() != Some(device_id.as_str()) {
            tracing::debug!(device = %device_id, "jt808 location before authentication refused");
            rejected.increment(locations.len() as u64);
            return AnswerResult::Failure;
        }
        let now = now_ms();
        let mut items = Vec::with_capacity(locations.len());
        for (i, l) in locations.iter().enumerate() {
            let checked = l.to_report(device_id.clone()).map_err(|e| e.to_string()).and_then(|report| {
                let (unit_id, device_name) =
                    self.state.check_device(&report, now, "phone", "time").map_err(|e| e.reason.clone())?;
                Ok(Item { report, recv_ms: now, unit_id, device_name })
            });
            match checked {
                Ok(item) => items.push(item),
                Err(reason) => {
                    tracing::debug!(device = %device_id, index = i, reason, "jt808 location refused");
                    rejected.increment(1);
                }
            }
        }
        if items.is_empty() || (single && items.len() < locations.len()) {
            return AnswerResult::Failure;
        }
        match self.state.ingest.submit(items).await {
            Ok(_) => AnswerResult::Ok,
            Err(e) => {
                tracing::warn!(error = %e, device = %device_id, "jt808 locations not committed");
                AnswerResult::Failure
            }
        }
    }

    /// The next platform serial number.
    fn next_serial(&mut self) -> u16 {
        self.serial = self.serial.wrapping_add(1);
        self.serial
    }

    /// A general answer (0x8001) to the message `to`, in the terminal's edition.
    fn general(&mut self, to: &Header, result: AnswerResult) -> Vec<u8> {
        let body = GeneralAnswer { serial: to.serial, msg_id: to.msg_id, result }.encode();
        self.encode(to, id::PLATFORM_ANSWER, &body)
    }

    /// A registration answer (0x8100) to the message `to`.
    fn register_answer(&mut self, to: &Header, result: RegisterResult, code: Option<String>) -> Vec<u8> {
        let body = RegisterAnswer { serial: to.serial, result, code }.encode();
        self.encode(to, id::REGISTER_ANSWER, &body)
    }

    /// A platform message to the terminal of `to`: its edition and phone number.
    fn encode(&mut self, to: &Header, msg_id: u16, body: &[u8]) -> Vec<u8> {
        let header = Header::new(msg_id, to.version, &to.phone, self.next_serial());
        // The platform's bodies are a few bytes and the phone was read as BCD digits:
        // encoding cannot fail.
        jt808::encode(&header, body).unwrap_or_default()
    }
}

/// Completes when the server stops.
fn stopped(state: &AppState) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut stop = state.shutdown.clone();
    async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    }
}

/// Whether a message is a location report (its refusals count as rejected reports).
fn is_location(h: &Header) -> bool {
    matches!(h.msg_id, id::LOCATION | id::LOCATION_BATCH)
}
