//! JT/T 808 terminals against a server on `127.0.0.1:0` with its JT/T 808 listener on,
//! on both stores, spoken to over real TCP with the standard's frames: an unknown
//! terminal refused; register → code → authenticate → location → answered only once
//! stored, and the fix in the history and the devices list; the 2019 header; a batch of
//! three; the emergency button raising the priority-1 SOS alert; a report before
//! authentication refused; a bad check code answered "bad message" with the connection
//! still working and another terminal unaffected; garbage ending only its own
//! connection; a new registration replacing the code. And no listener unless configured.

use std::time::Duration;

use liandong_ingest::jt808::{
    self, id, AnswerResult, Auth, Header, Location, LocationBatch, Message, Register, RegisterResult, Scan, Version,
    STATUS_LOCATED,
};
use liandong_server::auth::Role;
use liandong_test_support::feed::next_of;
use liandong_test_support::{now_ms, on_both_stores, rfc3339, token, Backend, Server};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ADMIN: &str = "jt808-admin-token";
const OPERATOR: &str = "jt808-operator-token";
const PHONE: &str = "13912345678";
const DEVICE: &str = "jt808-13912345678";
/// A 2019 terminal's 20-digit number, whose leading zeros the device id drops.
const PHONE_2019: &str = "00000000018612345678";
const DEVICE_2019: &str = "jt808-18612345678";
const LON: f64 = 107.05;
const LAT: f64 = 30.75;

/// A terminal speaking JT/T 808 over one TCP connection.
struct Terminal {
    stream: TcpStream,
    phone: String,
    version: Version,
    serial: u16,
    buf: Vec<u8>,
}

impl Terminal {
    async fn connect(addr: std::net::SocketAddr, phone: &str, version: Version) -> Terminal {
        let stream = TcpStream::connect(addr).await.expect("the JT/T 808 listener accepts");
        Terminal { stream, phone: phone.to_owned(), version, serial: 0, buf: Vec::new() }
    }

    /// Sends a message; answers its serial number.
    async fn send(&mut self, msg_id: u16, body: &[u8]) -> u16 {
        self.serial += 1;
        let header = Header::new(msg_id, self.version, &self.phone, self.serial);
        self.stream.write_all(&jt808::encode(&header, body).unwrap()).await.unwrap();
        self.serial
    }

    /// The next message from the platform; None when the connection closed.
    async fn receive(&mut self) -> Option<(Header, Message)> {
        loop {
            if let Scan::Frame { start, end, consumed } = jt808::scan(&self.buf) {
                let p = jt808::decode(&self.buf[start..end]).expect("the platform's frames are well formed");
                self.buf.drain(..consumed);
                let message = Message::decode(&p.header, &p.body).unwrap();
                return Some((p.header, message));
            }
            let mut chunk = [0u8; 1024];
            let n = tokio::time::timeout(Duration::from_secs(20), self.stream.read(&mut chunk))
                .await
                .expect("the platform answers within 20 s")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends a message and answers the result of the general answer to it.
    async fn request(&mut self, msg_id: u16, body: &[u8]) -> AnswerResult {
        let serial = self.send(msg_id, body).await;
        self.answer_to(serial, msg_id).await
    }

    /// The general answer to the message `serial`, checking that it quotes it.
    async fn answer_to(&mut self, serial: u16, msg_id: u16) -> AnswerResult {
        match self.receive().await.expect("an answer, not a closed connection") {
            (h, Message::GeneralAnswer(a)) => {
                assert_eq!((a.serial, a.msg_id), (serial, msg_id), "the answer quotes the message");
                assert_eq!((h.version, h.phone_digits()), (self.version, self.phone.trim_start_matches('0')));
                a.result
            }
            other => panic!("expected a general answer, got {other:?}"),
        }
    }

    /// Registers; answers the result and the code.
    async fn register(&mut self) -> (RegisterResult, Option<String>) {
        let reg = Register {
            manufacturer: "70111".into(),
            model: "BD-TEST".into(),
            terminal_id: "T000001".into(),
            plate_colour: 2,
            plate: "川S12345".into(),
            ..Register::default()
        };
        let serial = self.send(id::REGISTER, &reg.encode(self.version)).await;
        match self.receive().await.expect("a registration answer") {
            (_, Message::RegisterAnswer(a)) => {
                assert_eq!(a.serial, serial);
                (a.result, a.code)
            }
            other => panic!("expected a registration answer, got {other:?}"),
        }
    }

    async fn authenticate(&mut self, code: &str) -> AnswerResult {
        let auth =
            Auth { code: code.to_owned(), imei: Some("860001047123456".into()), software_version: Some("V1.0".into()) };
        let body = auth.encode(self.version);
        self.request(id::AUTH, &body).await
    }

    /// Registers and authenticates, expecting both to succeed.
    async fn sign_in(&mut self) {
        let (result, code) = self.register().await;
        assert_eq!(result, RegisterResult::Ok);
        assert_eq!(self.authenticate(&code.expect("a code with the success")).await, AnswerResult::Ok);
    }

    async fn report(&mut self, l: &Location) -> AnswerResult {
        self.request(id::LOCATION, &l.encode().unwrap()).await
    }
}

/// A located fix at `(LON, LAT)` + `dlon`, at `ms`, with `alarm` flags.
fn fix(ms: i64, dlon: f64, alarm: u32) -> Location {
    let mut l = Location {
        alarm,
        status: STATUS_LOCATED,
        speed_dkmh: 360,
        direction_deg: 90,
        altitude_m: 400,
        ..Location::default()
    };
    l.set_lon_lat(LON + dlon, LAT);
    l.set_time_ms(ms);
    l
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A server with its JT/T 808 listener on; None when PostGIS is to be skipped.
async fn start(name: &str, backend: Backend) -> Option<(Server, std::net::SocketAddr)> {
    let dir = liandong_test_support::fresh_dir(&format!("jt808-{name}-{backend:?}"));
    let mut config = liandong_test_support::config(dir);
    config.tokens = vec![token(ADMIN, Role::Admin), token(OPERATOR, Role::Operator)];
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    config.jt808.listen = Some(addr);
    backend.configure(&mut config, &format!("jt808_{name}")).await?;
    Some((Server::start(config).await, addr))
}

async fn register_device(srv: &Server, device_id: &str) {
    srv.admin("/api/v1/devices", json!({"device_id": device_id, "name": "巡逻车 川S12345", "kind": "vehicle"})).await;
}

/// The device's entry in the devices list.
async fn listed(srv: &Server, device_id: &str) -> Value {
    let (_, v) = srv.get(OPERATOR, "/api/v1/devices").await;
    v["devices"].as_array().unwrap().iter().find(|d| d["device_id"] == device_id).cloned().unwrap_or(Value::Null)
}

/// How many good fixes of the device the history holds since `from_ms`.
async fn fixes(srv: &Server, device_id: &str, from_ms: i64) -> i64 {
    let path = format!("/api/v1/history/track?device_id={device_id}&from={from_ms}&to={}", now_ms() + 60_000);
    let (status, v) = srv.get(OPERATOR, &path).await;
    assert_eq!(status, 200, "{v}");
    v["properties"]["fixes"].as_i64().unwrap_or(0)
}

async fn a_terminal_registers_authenticates_and_its_reports_are_stored_before_they_are_answered(backend: Backend) {
    let Some((srv, addr)) = start("flow", backend).await else { return };
    let mut feed = srv.ws(OPERATOR).await;
    let t0 = now_ms() - 10 * 60_000;

    // Not registered as a device: "no such terminal", and no code.
    let mut car = Terminal::connect(addr, PHONE, Version::V2013).await;
    assert_eq!(car.register().await, (RegisterResult::NoSuchTerminal, None));
    // A report before authentication is refused, and nothing is stored.
    assert_eq!(car.report(&fix(t0, 0.0, 0)).await, AnswerResult::Failure);

    register_device(&srv, DEVICE).await;
    let (result, code) = car.register().await;
    assert_eq!(result, RegisterResult::Ok);
    let code = code.unwrap();
    assert!(code.len() >= 16, "a code worth guessing for: {code}");
    assert_eq!(car.authenticate("not-the-code").await, AnswerResult::Failure);
    assert_eq!(car.report(&fix(t0, 0.0, 0)).await, AnswerResult::Failure, "still not authenticated");
    assert_eq!(car.authenticate(&code).await, AnswerResult::Ok);
    assert_eq!(car.request(id::HEARTBEAT, &[]).await, AnswerResult::Ok);

    // The answer comes after the commit: the fix is in the list and the history at once.
    assert_eq!(car.report(&fix(t0, 0.0, 0)).await, AnswerResult::Ok);
    let entry = listed(&srv, DEVICE).await;
    let last = &entry["last"];
    assert_eq!((last["lon"].as_f64(), last["lat"].as_f64()), (Some(LON), Some(LAT)), "WGS 84 as sent: {entry}");
    // The BCD time was China time (GMT+8), to the second.
    assert_eq!(last["fix_time"], json!(rfc3339(t0 / 1000 * 1000)), "{last}");
    assert!((last["speed_mps"].as_f64().unwrap() - 10.0).abs() < 1e-9, "36.0 km/h is 10 m/s: {last}");
    assert_eq!(fixes(&srv, DEVICE, t0 - 1000).await, 1);

    // A batch of three is one submit, answered once.
    let batch =
        LocationBatch { kind: 1, locations: (1..=3).map(|i| fix(t0 + i * 10_000, 0.0001 * i as f64, 0)).collect() };
    assert_eq!(car.request(id::LOCATION_BATCH, &batch.encode().unwrap()).await, AnswerResult::Ok);
    assert_eq!(fixes(&srv, DEVICE, t0 - 1000).await, 4);

    // The emergency button: the SOS alert at priority 1, naming the car.
    assert_eq!(car.report(&fix(t0 + 60_000, 0.0004, jt808::ALARM_EMERGENCY)).await, AnswerResult::Ok);
    let alert = next_of(&mut feed, "alert", 10_000).await.expect("the operator is alerted");
    let data = &alert["data"];
    assert_eq!(
        (&data["rule"], &data["priority"], &data["device_id"]),
        (&json!("sos"), &json!(1), &json!(DEVICE)),
        "{alert}"
    );

    // A fix out of range, and one whose never-set clock (1970) reads as 2070, are refused
    // and not stored.
    let mut far = fix(t0 + 70_000, 0.0, 0);
    far.lat_e6 = 95_000_000;
    assert_eq!(car.report(&far).await, AnswerResult::Failure);
    assert_eq!(car.report(&fix(0, 0.0, 0)).await, AnswerResult::Failure);
    assert_eq!(fixes(&srv, DEVICE, t0 - 1000).await, 5);

    // Logging out ends the session and the connection.
    let serial = car.send(id::LOGOUT, &[]).await;
    assert_eq!(car.answer_to(serial, id::LOGOUT).await, AnswerResult::Ok);
    assert!(car.receive().await.is_none(), "the platform closes after a logout");
    srv.stop().await;
}

async fn bad_frames_are_answered_and_end_only_the_connection_that_keeps_sending_them(backend: Backend) {
    let Some((srv, addr)) = start("bad", backend).await else { return };
    register_device(&srv, DEVICE).await;
    register_device(&srv, DEVICE_2019).await;
    let t0 = now_ms() - 10 * 60_000;
    let mut car = Terminal::connect(addr, PHONE, Version::V2013).await;
    car.sign_in().await;
    // The 2019 header: 20-digit number, version byte; 2019 authentication body.
    let mut other = Terminal::connect(addr, PHONE_2019, Version::V2019 { protocol: 1 }).await;
    other.sign_in().await;
    assert_eq!(other.report(&fix(t0, 0.0, 0)).await, AnswerResult::Ok);
    assert_eq!(fixes(&srv, DEVICE_2019, t0 - 1000).await, 1);

    // A bad check code: answered "bad message" to its serial, and the connection works on.
    car.serial += 1;
    let header = Header::new(id::LOCATION, Version::V2013, PHONE, car.serial);
    let good = jt808::encode(&header, &fix(t0, 0.0, 0).encode().unwrap()).unwrap();
    let mut raw = Vec::new();
    jt808::unescape(&good[1..good.len() - 1], &mut raw).unwrap();
    *raw.last_mut().unwrap() ^= 0x01;
    let mut wire = vec![jt808::FLAG];
    jt808::escape(&raw, &mut wire);
    wire.push(jt808::FLAG);
    car.stream.write_all(&wire).await.unwrap();
    let serial = car.serial;
    assert_eq!(car.answer_to(serial, id::LOCATION).await, AnswerResult::BadMessage);
    assert_eq!(car.report(&fix(t0 + 1000, 0.0, 0)).await, AnswerResult::Ok, "the same connection works on");
    assert_eq!(fixes(&srv, DEVICE, t0 - 1000).await, 1, "only the good report is stored");

    // A message the platform does not handle: "unsupported".
    assert_eq!(car.request(0x0900, b"pass-through").await, AnswerResult::Unsupported);

    // Garbage without a readable header is dropped; kept up, it ends that connection...
    for _ in 0..20 {
        if car.stream.write_all(&[0x7e, 0x01, 0x02, 0x7e]).await.is_err() {
            break;
        }
    }
    assert!(car.receive().await.is_none(), "the connection sending garbage is closed");
    // ... and no other: the 2019 terminal reports on as before.
    assert_eq!(other.report(&fix(t0 + 2000, 0.0, 0)).await, AnswerResult::Ok);
    assert_eq!(fixes(&srv, DEVICE_2019, t0 - 1000).await, 2);

    // A new registration replaces the code: the old one no longer authenticates.
    let mut again = Terminal::connect(addr, PHONE, Version::V2013).await;
    let (_, first) = again.register().await;
    let (_, second) = again.register().await;
    assert_ne!(first, second);
    assert_eq!(again.authenticate(&first.unwrap()).await, AnswerResult::Failure);
    assert_eq!(again.authenticate(&second.unwrap()).await, AnswerResult::Ok);
    srv.stop().await;
}

on_both_stores!(a_terminal_registers_authenticates_and_its_reports_are_stored_before_they_are_answered);
on_both_stores!(bad_frames_are_answered_and_end_only_the_connection_that_keeps_sending_them);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn there_is_no_listener_unless_one_is_configured() {
    let port = free_port();
    let dir = liandong_test_support::fresh_dir("jt808-off");
    let srv = Server::start_in(dir, vec![token(ADMIN, Role::Admin)], |c| assert!(c.jt808.listen.is_none())).await;
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err(), "nothing listens for terminals");
    srv.stop().await;
    // With one configured, the same port answers.
    let dir = liandong_test_support::fresh_dir("jt808-on");
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let srv = Server::start_in(dir, vec![token(ADMIN, Role::Admin)], |c| c.jt808.listen = Some(addr)).await;
    let mut t = Terminal::connect(addr, PHONE, Version::V2013).await;
    assert_eq!(t.request(id::HEARTBEAT, &[]).await, AnswerResult::Ok);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_and_idle_ones_are_closed() {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let dir = liandong_test_support::fresh_dir("jt808-limits");
    let srv = Server::start_in(dir, vec![token(ADMIN, Role::Admin)], |c| {
        c.jt808.listen = Some(addr);
        c.jt808.max_connections = 1;
        c.jt808.idle_timeout_s = 1;
    })
    .await;
    let mut first = Terminal::connect(addr, PHONE, Version::V2013).await;
    assert_eq!(first.request(id::HEARTBEAT, &[]).await, AnswerResult::Ok);
    let mut second = Terminal::connect(addr, PHONE_2019, Version::V2019 { protocol: 1 }).await;
    let _ = second.send(id::HEARTBEAT, &[]).await;
    assert!(second.receive().await.is_none(), "over the limit: closed without an answer");
    // Silent for longer than idle_timeout_s: closed, and its place is free again.
    let silent = std::time::Instant::now();
    assert!(first.receive().await.is_none(), "an idle connection is closed");
    assert!(silent.elapsed() >= Duration::from_millis(900), "not before the idle timeout");
    let mut third = Terminal::connect(addr, PHONE, Version::V2013).await;
    assert_eq!(third.request(id::HEARTBEAT, &[]).await, AnswerResult::Ok);
    srv.stop().await;
}
