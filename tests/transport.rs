//! How the server holds its connections, against a server on 127.0.0.1:0: a trickled
//! request is cut off by the header timeout, a stalled body by the body timeout, an idle
//! keep-alive connection by the idle timeout (and not sooner), an answer the client does
//! not read by the same; over the connection limit
//! idle sockets make room for `/healthz`, websockets keep their places, and the soft
//! open-file limit is raised; and TLS end to end: a Traccar-style OsmAnd report over
//! HTTPS reaches a `wss://` live feed, plain HTTP is not served on the TLS port, and a
//! replaced certificate is presented to new connections while open ones keep working.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use liandong_server::auth::Role;
use liandong_server::config::{Config, TlsConfig};
use liandong_test_support::feed::next;
use liandong_test_support::{fresh_dir, now_s, token, Server};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const ADMIN: &str = "transport-admin-token";
const OPERATOR: &str = "transport-operator-token";

/// Starts a server tuned by `tune` without waiting for it: a TLS server does not answer
/// the plain HTTP that [`Server::start`] waits with (see [`ready`]).
async fn start(name: &str, tune: impl FnOnce(&mut Config)) -> Server {
    let mut config = liandong_test_support::config(fresh_dir(&format!("transport-{name}")));
    config.tokens = vec![token(ADMIN, Role::Admin), token(OPERATOR, Role::Operator)];
    tune(&mut config);
    Server::spawn(config).await
}

/// Waits until `/healthz` answers on plain HTTP, over a bare connection.
async fn ready(s: &Server) {
    for _ in 0..500 {
        if let Ok(mut c) = TcpStream::connect(s.addr).await {
            if get(&mut c, "/healthz", "close").await.is_some_and(|(status, _)| status == 200) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the server did not become healthy");
}

/// Sends `GET path` and reads the answer (status and body), or `None` when the
/// connection closes or nothing comes within 5 s.
async fn get<S: AsyncRead + AsyncWrite + Unpin>(c: &mut S, path: &str, connection: &str) -> Option<(u16, Vec<u8>)> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: liandong\r\nConnection: {connection}\r\n\r\n");
    c.write_all(request.as_bytes()).await.ok()?;
    read_response(c).await
}

async fn read_response<S: AsyncRead + Unpin>(c: &mut S) -> Option<(u16, Vec<u8>)> {
    let mut buf = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap_or(0));
            if buf.len() >= end + 4 + length {
                return Some((status, buf[end + 4..end + 4 + length].to_vec()));
            }
        }
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, c.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

/// Whether the server closes `c` within `within` (a read answers end of file or an
/// error); bytes the server sends before closing are skipped.
async fn closed_within(c: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut chunk = [0u8; 1024];
    loop {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else { return false };
        match tokio::time::timeout(left, c.read(&mut chunk)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// Times `/healthz` on a new connection, from connecting to the whole answer.
async fn healthz_ms(addr: std::net::SocketAddr) -> u128 {
    let t = Instant::now();
    let mut c = TcpStream::connect(addr).await.unwrap();
    let answer = get(&mut c, "/healthz", "close").await;
    assert_eq!(answer.map(|a| a.0), Some(200), "/healthz answers");
    t.elapsed().as_millis()
}

/// `/healthz` answered fast: a median under 100 ms, and none over a second (the test
/// shares two cores with the others; a blocked server would not answer at all).
fn assert_fast(healthz_ms: &mut [u128]) {
    healthz_ms.sort_unstable();
    let (median, max) = (healthz_ms[healthz_ms.len() / 2], healthz_ms[healthz_ms.len() - 1]);
    assert!(median < 100 && max < 1000, "/healthz answered in {healthz_ms:?} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_trickled_a_byte_a_second_is_cut_off_by_the_header_timeout_while_healthz_answers() {
    let s = start("slowloris", |c| c.http.header_timeout_s = 2).await;
    ready(&s).await;
    let mut slow = TcpStream::connect(s.addr).await.unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: liandong\r\nX-Padding: aaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let t = Instant::now();
    let mut cut_off = None;
    let mut healthz = Vec::new();
    for &byte in request.iter() {
        if slow.write_all(&[byte]).await.is_err() {
            cut_off = Some(t.elapsed());
            break;
        }
        healthz.push(healthz_ms(s.addr).await);
        if closed_within(&mut slow, Duration::from_secs(1)).await {
            cut_off = Some(t.elapsed());
            break;
        }
    }
    let cut_off = cut_off.expect("the trickled request was cut off before it was complete");
    assert!(cut_off >= Duration::from_millis(1900), "not before the header timeout: {cut_off:?}");
    assert!(cut_off < Duration::from_secs(4), "soon after the header timeout: {cut_off:?}");
    assert_fast(&mut healthz);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_that_stops_arriving_is_cut_off_by_the_body_timeout() {
    let s = start("body", |c| c.http.body_timeout_s = 2).await;
    ready(&s).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/positions HTTP/1.1\r\nHost: liandong\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"positions\": ["
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let t = Instant::now();
    // The server either answers 408 and closes or just closes; it never waits on.
    let mut chunk = [0u8; 1024];
    let mut answered = Vec::new();
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(5), c.read(&mut chunk)).await {
            Err(_) => break false,
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => answered.extend_from_slice(&chunk[..n]),
        }
    };
    let elapsed = t.elapsed();
    assert!(closed, "the connection was closed; answered {:?}", String::from_utf8_lossy(&answered));
    assert!(elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(4), "{elapsed:?}");
    let answered = String::from_utf8_lossy(&answered);
    assert!(answered.is_empty() || answered.starts_with("HTTP/1.1 408"), "{answered}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout_and_not_at_the_header_timeout() {
    let s = start("idle", |c| {
        c.http.header_timeout_s = 1;
        c.http.idle_timeout_s = 3;
    })
    .await;
    ready(&s).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    assert_eq!(get(&mut c, "/healthz", "keep-alive").await.map(|a| a.0), Some(200));
    // Longer than the header timeout, shorter than the idle one: still open.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert_eq!(get(&mut c, "/healthz", "keep-alive").await.map(|a| a.0), Some(200), "kept alive past 1 s");
    let t = Instant::now();
    assert!(closed_within(&mut c, Duration::from_secs(5)).await, "closed once idle for 3 s");
    let idle = t.elapsed();
    assert!(idle >= Duration::from_millis(2900) && idle < Duration::from_millis(4500), "{idle:?}");
    s.stop().await;
}

/// Between requests the connection is idle, with a deadline far off; the first bytes of
/// the next request start the header deadline, which comes much sooner and must be kept
/// (a watchdog sleeping until the idle deadline would let the stalled head sit 10 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_that_stalls_on_a_kept_alive_connection_is_cut_off_at_the_header_timeout_not_the_idle_one() {
    let s = start("stalled-head", |c| {
        c.http.header_timeout_s = 1;
        c.http.idle_timeout_s = 10;
    })
    .await;
    ready(&s).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    assert_eq!(get(&mut c, "/healthz", "keep-alive").await.map(|a| a.0), Some(200));
    // Past the first head's deadline, well into the idle phase.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.write_all(b"GET /heal").await.unwrap();
    let t = Instant::now();
    assert!(closed_within(&mut c, Duration::from_secs(5)).await, "a stalled head is cut off");
    let stalled = t.elapsed();
    assert!(stalled >= Duration::from_millis(900) && stalled < Duration::from_millis(2500), "{stalled:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_the_client_does_not_read_is_dropped_after_the_idle_timeout() {
    // A page far larger than the sockets' buffers, served at `/`.
    const PAGE_BYTES: usize = 32 << 20;
    let web = std::env::temp_dir().join(format!("liandong-transport-web-{}", std::process::id()));
    std::fs::create_dir_all(&web).unwrap();
    std::fs::write(web.join("index.html"), vec![b'a'; PAGE_BYTES]).unwrap();
    let s = start("slowread", |c| {
        c.http.idle_timeout_s = 2;
        c.web_dir = web.clone();
    })
    .await;
    ready(&s).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /index.html HTTP/1.1\r\nHost: liandong\r\n\r\n").await.unwrap();
    // Not reading: the server's writes stall once the buffers are full.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (mut received, mut chunk) = (0usize, vec![0u8; 1 << 16]);
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(3), c.read(&mut chunk)).await {
            Err(_) => break false,
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => received += n,
        }
    };
    assert!(closed && received < PAGE_BYTES, "closed: {closed}, {received} of {PAGE_BYTES} bytes received");
    s.stop().await;
    let _ = std::fs::remove_dir_all(&web);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_connection_limit_idle_sockets_make_room_for_healthz_and_websockets_keep_their_places() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    // The server raises the soft open-file limit to the hard one at start: lower it
    // first (the test process's own), as a distribution's default of 1,024 would be.
    let before = getrlimit(Resource::Nofile);
    let hard = before.maximum;
    let lowered = hard.map_or(4096, |h| (h / 2).min(4096));
    setrlimit(Resource::Nofile, Rlimit { current: Some(lowered), maximum: hard }).unwrap();

    let s = start("limit", |c| c.http.max_connections = 50).await;
    ready(&s).await;
    let after = getrlimit(Resource::Nofile);
    assert_eq!(after.current, hard, "the soft open-file limit was raised to the hard one ({hard:?})");

    // Five websockets first: upgraded connections count, and are never closed to make room.
    let mut feeds = Vec::new();
    for _ in 0..5 {
        let url = format!("ws://{}/api/v1/live?token={OPERATOR}", s.addr);
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("websocket connects");
        assert_eq!(next(&mut ws).await["type"], "snapshot");
        feeds.push(ws);
    }
    // 60 sockets that say nothing, more than the places left.
    let mut idle = Vec::new();
    for _ in 0..60 {
        idle.push(TcpStream::connect(s.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut healthz = Vec::new();
    for _ in 0..5 {
        healthz.push(healthz_ms(s.addr).await);
    }
    assert_fast(&mut healthz);

    let mut open = 0;
    for c in &mut idle {
        if !closed_within(c, Duration::from_millis(20)).await {
            open += 1;
        }
    }
    assert!(open <= 45, "at most 50 places, 5 taken by websockets: {open} idle sockets still open");
    assert!(open >= 35, "only what was needed was closed: {open} idle sockets still open");
    // The websockets still work: an admin registers a device, the feeds stay open.
    for ws in &mut feeds {
        ws.send(Message::Ping(Default::default())).await.expect("the websocket is open");
    }
    drop(idle);
    drop(feeds);
    setrlimit(Resource::Nofile, before).unwrap();
    s.stop().await;
}

use futures_util::SinkExt;

/// A throwaway certificate authority and server certificates it signs for 127.0.0.1.
struct Ca {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

impl Ca {
    fn new() -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "liandong test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { pem: cert.pem(), issuer: rcgen::Issuer::new(params, key) }
    }

    /// Writes a new server certificate and key to `cert` and `key`; answers the
    /// certificate's DER.
    fn issue(&self, cert: &Path, key: &Path) -> Vec<u8> {
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let pair = rcgen::KeyPair::generate().unwrap();
        let signed = params.signed_by(&pair, &self.issuer).unwrap();
        // Key first, then the certificate: a reload between the two writes sees a pair
        // that does not match and keeps the old one.
        std::fs::write(key, pair.serialize_pem()).unwrap();
        std::fs::write(cert, signed.pem()).unwrap();
        signed.der().to_vec()
    }

    fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        let der = rustls::pki_types::CertificateDer::from_pem_slice(self.pem.as_bytes()).unwrap();
        roots.add(der).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

use rustls::pki_types::pem::PemObject;

/// Waits until `/healthz` answers over HTTPS.
async fn https_ready(https: &reqwest::Client, url: &str) {
    for _ in 0..500 {
        if https.get(format!("{url}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("/healthz does not answer over https");
}

/// A TLS connection to the server and the certificate it presented.
async fn tls_connect(
    addr: std::net::SocketAddr,
    config: &Arc<rustls::ClientConfig>,
) -> (tokio_rustls::client::TlsStream<TcpStream>, Vec<u8>) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio_rustls::TlsConnector::from(config.clone()).connect(name, tcp).await.expect("tls handshake");
    let presented = tls.get_ref().1.peer_certificates().expect("a certificate")[0].to_vec();
    (tls, presented)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_carries_an_osmand_report_to_a_wss_feed_refuses_plain_http_and_reloads_its_certificate() {
    let ca = Ca::new();
    let files = std::env::temp_dir().join(format!("liandong-transport-certs-{}", std::process::id()));
    std::fs::create_dir_all(&files).unwrap();
    let (cert, key) = (files.join("server.pem"), files.join("server.key"));
    let first = ca.issue(&cert, &key);
    let s = start("tls", |c| c.tls = Some(TlsConfig { cert: cert.clone(), key: key.clone(), reload_s: 1 })).await;
    let client_config = ca.client_config();
    let https = reqwest::Client::builder().use_preconfigured_tls((*client_config).clone()).build().unwrap();
    let url = format!("https://127.0.0.1:{}", s.addr.port());
    https_ready(&https, &url).await;

    // Register a phone, as an administrator does, and listen on the feed over wss.
    let r = https
        .post(format!("{url}/api/v1/devices"))
        .bearer_auth(ADMIN)
        .json(&json!({"device_id": "866777", "name": "phone", "kind": "patrol_member", "key": "key-of-866777"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (mut feed, _) = tokio_tungstenite::connect_async_tls_with_config(
        format!("wss://127.0.0.1:{}/api/v1/live?token={OPERATOR}", s.addr.port()),
        None,
        false,
        Some(tokio_tungstenite::Connector::Rustls(client_config.clone())),
    )
    .await
    .expect("the feed connects over wss");
    assert_eq!(next(&mut feed).await["type"], "snapshot");

    // Traccar Client's report: the key in the query string, which TLS now hides.
    let now = now_s();
    let r = https
        .get(format!("{url}/osmand?id=866777&lat=30.7&lon=107.1&timestamp={now}&speed=1.5&key=key-of-866777"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the report is acknowledged");
    let m = next(&mut feed).await;
    assert_eq!((m["type"].as_str(), m["data"]["device_id"].as_str()), (Some("position"), Some("866777")), "{m}");

    // Plain HTTP on the TLS port is not served.
    let mut plain = TcpStream::connect(s.addr).await.unwrap();
    let answer = get(&mut plain, "/healthz", "close").await;
    assert!(answer.is_none(), "plain HTTP got an answer: {answer:?}");

    // A connection opened now keeps working across a certificate change.
    let (mut open, presented) = tls_connect(s.addr, &client_config).await;
    assert_eq!(presented, first);
    assert_eq!(get(&mut open, "/healthz", "keep-alive").await.map(|a| a.0), Some(200));
    // File times have a coarse grain on some file systems: make the change visible.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = ca.issue(&cert, &key);
    let mut reloaded = false;
    for _ in 0..50 {
        if tls_connect(s.addr, &client_config).await.1 == second {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reloaded, "new connections present the new certificate");
    assert_eq!(get(&mut open, "/healthz", "keep-alive").await.map(|a| a.0), Some(200), "the open connection works");

    // A broken certificate file is refused: the last good one stays in service.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(tls_connect(s.addr, &client_config).await.1, second, "the previous certificate stays");

    drop(feed);
    drop(open);
    s.stop().await;
    let _ = std::fs::remove_dir_all(&files);
}

/// Runs the `liandong` binary with `args`; answers (success, stdout, stderr).
async fn liandong(args: &[&str]) -> (bool, String, String) {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_liandong"))
        .args(args)
        .env_remove("LIANDONG_TOKEN")
        .env_remove("LIANDONG_CA_CERT")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run).await.expect("the tool ends within 60 s").unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_tools_report_over_https_and_follow_the_feed_over_wss_trusting_the_given_ca() {
    let ca = Ca::new();
    let files = std::env::temp_dir().join(format!("liandong-transport-tools-certs-{}", std::process::id()));
    std::fs::create_dir_all(&files).unwrap();
    let (cert, key, ca_file) = (files.join("server.pem"), files.join("server.key"), files.join("ca.pem"));
    ca.issue(&cert, &key);
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let s = start("tools", |c| c.tls = Some(TlsConfig { cert: cert.clone(), key: key.clone(), reload_s: 10 })).await;
    let https = reqwest::Client::builder().use_preconfigured_tls((*ca.client_config()).clone()).build().unwrap();
    let url = format!("https://127.0.0.1:{}", s.addr.port());
    https_ready(&https, &url).await;
    let ca_arg = ca_file.to_str().unwrap();

    let common = ["--url", &url, "--token", ADMIN, "--devices", "5", "--duration-s", "1"];
    let ingest = [&["bench", "ingest"][..], &common, &["--concurrency", "2", "--ca-cert", ca_arg]].concat();
    let (ok, out, err) = liandong(&ingest).await;
    assert!(ok, "bench ingest over https: {out}{err}");
    assert!(out.contains("acknowledged reports:") && out.contains("failed: 0"), "{out}");

    let live =
        [&["bench", "live"][..], &common, &["--clients", "2", "--slow", "0", "--rate", "50", "--ca-cert", ca_arg]]
            .concat();
    let (ok, out, err) = liandong(&live).await;
    assert!(ok, "bench live over https and wss: {out}{err}");
    let delivered: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("delivered messages: "))
        .and_then(|v| v.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(delivered > 0, "the wss clients received reports: {out}");

    // Without the CA nothing is trusted: the tool says what it needs.
    let untrusted = [&["bench", "ingest"][..], &common].concat();
    let (ok, out, err) = liandong(&untrusted).await;
    assert!(!ok && err.contains("--ca-cert"), "{out}{err}");
    s.stop().await;
    let _ = std::fs::remove_dir_all(&files);
}
