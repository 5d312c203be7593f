//! Signing in against a server on `127.0.0.1:0`, on both stores: passwords (right,
//! wrong, too short; an unknown person answered as a wrong password), sessions (expiry,
//! renewal up to the cap, sign out, sign out everywhere, revocation by an administrator
//! and by deactivation, a revoked or ended session's live socket closed), one-time codes (once,
//! not after expiry), failed sign-ins limited per account and per client address, who
//! may call each endpoint, a device acting for its person, and no secret in an answer,
//! the audit log or the server's log.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;
use liandong_server::auth::Role;
use liandong_server::config::{Config, TokenConfig};
use liandong_test_support::{on_both_stores, token, unit_token, Backend, Server};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

const ADMIN: &str = "admin-token";
const OPERATOR: &str = "operator-token";
const LEADER: &str = "leader-team-1";
const PARTNER: &str = "partner-token";
const PHONE: &str = "phone-key-0001";
const UNKNOWN: &str = "no-such-token";

const WANG_PASSWORD: &str = "wang-secret-9781";
const LI_PASSWORD: &str = "li-secret-pass-3324";

fn tokens() -> Vec<TokenConfig> {
    vec![
        token(ADMIN, Role::Admin),
        token(OPERATOR, Role::Operator),
        unit_token(LEADER, Role::PatrolLeader, "team-1"),
        token(PARTNER, Role::Partner),
    ]
}

/// Everything the server logs in this test process, for "no secret in the logs".
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || Sink(writer.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buf
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logged() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).into_owned()
}

/// The test configuration on `backend`, tuned by `tune`; None when PostGIS is to be
/// skipped.
async fn configured(name: &str, backend: Backend, tune: impl FnOnce(&mut Config)) -> Option<Config> {
    logs();
    let dir = liandong_test_support::fresh_dir(&format!("signin-{name}-{backend:?}"));
    let mut config = liandong_test_support::config(dir);
    config.tokens = tokens();
    tune(&mut config);
    backend.configure(&mut config, &format!("signin_{name}")).await?;
    Some(config)
}

/// A server on `backend` tuned by `tune`, with two people (wang, a post officer with a
/// password; li, an operator and administrator with one) and a phone bound to wang;
/// None when PostGIS is to be skipped.
async fn start(name: &str, backend: Backend, tune: impl FnOnce(&mut Config)) -> Option<Server> {
    Some(populated(configured(name, backend, tune).await?).await)
}

async fn populated(config: Config) -> Server {
    let srv = Server::start(config).await;
    srv.admin(
        "/api/v1/people",
        json!({"person_id": "wang", "name": "王警官", "roles": ["post_officer"], "unit_kind": "post", "unit_id": "p-west"}),
    )
    .await;
    srv.admin(
        "/api/v1/people",
        json!({"person_id": "li", "name": "李主任", "roles": ["admin", "operator"], "unit_kind": "command_centre"}),
    )
    .await;
    for (id, password) in [("wang", WANG_PASSWORD), ("li", LI_PASSWORD)] {
        let path = format!("/api/v1/people/{id}/password");
        assert_eq!(send(&srv, "PUT", Some(ADMIN), &path, json!({"password": password})).await.0, 204);
    }
    srv.admin(
        "/api/v1/devices",
        json!({"device_id": "866001", "name": "phone", "kind": "post_officer", "unit_id": "p-west", "key": PHONE,
               "person_id": "wang"}),
    )
    .await;
    srv
}

/// `method path` with `token` (none when None) and the JSON `body` (none when null):
/// the status and the body.
async fn send(srv: &Server, method: &str, token: Option<&str>, path: &str, body: Value) -> (u16, Value) {
    send_with(&srv.http, srv, method, token, path, body).await.0
}

/// As [`send`] on the client `http`; also answers the `Retry-After` header.
async fn send_with(
    http: &reqwest::Client,
    srv: &Server,
    method: &str,
    token: Option<&str>,
    path: &str,
    body: Value,
) -> ((u16, Value), Option<String>) {
    let mut req = http.request(method.parse().unwrap(), format!("{}{path}", srv.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if !body.is_null() {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let retry = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    ((status, res.json().await.unwrap_or(Value::Null)), retry)
}

async fn sign_in(srv: &Server, body: Value) -> (u16, Value) {
    send(srv, "POST", None, "/api/v1/sessions", body).await
}

/// Signs wang in with the right password; answers the session token.
async fn wang(srv: &Server) -> String {
    let (s, v) = sign_in(srv, json!({"person_id": "wang", "password": WANG_PASSWORD})).await;
    assert_eq!(s, 201, "{v}");
    v["token"].as_str().unwrap().to_owned()
}

/// The close frame a live socket gets within `limit`; the test fails without one.
async fn closed_within(ws: &mut liandong_test_support::Ws, limit: Duration) -> CloseFrame {
    let closed = tokio::time::timeout(limit, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("the socket ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("the socket is closed in time");
    closed.expect("a close frame with a reason")
}

fn field(v: &Value) -> &str {
    v["error"]["field"].as_str().unwrap_or("")
}

async fn a_right_password_signs_in_and_a_wrong_one_or_an_unknown_person_gets_the_same_401(backend: Backend) {
    let Some(srv) = start("passwords", backend, |_| {}).await else { return };
    let (s, v) = sign_in(&srv, json!({"person_id": "wang", "password": WANG_PASSWORD})).await;
    assert_eq!(s, 201, "{v}");
    let token = v["token"].as_str().unwrap();
    assert!(token.starts_with("lds_") && token.len() == 47, "{token}");
    assert_eq!(v["person"]["role"], "post_officer");
    assert!(v["expires_ms"].as_i64().unwrap() > liandong_test_support::now_ms());
    let (s, who) = srv.get(token, "/api/v1/whoami").await;
    assert_eq!(s, 200);
    assert_eq!(who, json!({"name": "王警官", "role": "post_officer", "unit_id": "p-west", "person_id": "wang"}));
    // The session is a post officer's token like any other: what a post officer may not
    // do, it may not either.
    assert_eq!(srv.get(token, "/api/v1/audit").await.0, 403);

    let (s, wrong) = sign_in(&srv, json!({"person_id": "wang", "password": "not-the-password"})).await;
    assert_eq!((s, field(&wrong)), (401, "password"), "{wrong}");
    let (s, unknown) = sign_in(&srv, json!({"person_id": "nobody", "password": "not-the-password"})).await;
    assert_eq!((s, &unknown), (401, &wrong), "an unknown person is answered as a wrong password");
    let (s, v) = sign_in(&srv, json!({"person_id": "wang", "password": "short"})).await;
    assert_eq!((s, field(&v)), (400, "password"), "{v}");
    let (s, v) = sign_in(&srv, json!({"person_id": "wang", "password": "x".repeat(129)})).await;
    assert_eq!((s, field(&v)), (400, "password"), "{v}");
    let (s, v) = sign_in(&srv, json!({"person_id": "wang"})).await;
    assert_eq!((s, field(&v)), (400, "body"), "{v}");

    // A person with two roles signs in as the less powerful unless they name the other.
    let (s, v) = sign_in(&srv, json!({"person_id": "li", "password": LI_PASSWORD})).await;
    assert_eq!((s, &v["person"]["role"]), (201, &json!("operator")), "{v}");
    let (s, v) = sign_in(&srv, json!({"person_id": "li", "password": LI_PASSWORD, "role": "admin"})).await;
    assert_eq!((s, &v["person"]["role"]), (201, &json!("admin")), "{v}");
    let li_admin = v["token"].as_str().unwrap().to_owned();
    assert_eq!(srv.get(&li_admin, "/api/v1/people").await.0, 200, "a signed-in administrator is one");
    let (s, v) = sign_in(&srv, json!({"person_id": "li", "password": LI_PASSWORD, "role": "partner"})).await;
    assert_eq!((s, field(&v)), (422, "role"), "{v}");

    // A person changes their own password with the old one; never someone else's.
    let own = "/api/v1/people/wang/password";
    let (s, v) = send(&srv, "PUT", Some(token), own, json!({"password": "new-wang-pass-1"})).await;
    assert_eq!((s, field(&v)), (400, "old_password"), "{v}");
    let (s, v) =
        send(&srv, "PUT", Some(token), own, json!({"password": "new-wang-pass-1", "old_password": "wrong-old-1"}))
            .await;
    assert_eq!((s, field(&v)), (401, "old_password"), "{v}");
    let (s, v) =
        send(&srv, "PUT", Some(token), own, json!({"password": "new-wang-pass-1", "old_password": WANG_PASSWORD}))
            .await;
    assert_eq!(s, 204, "{v}");
    assert_eq!(sign_in(&srv, json!({"person_id": "wang", "password": WANG_PASSWORD})).await.0, 401);
    assert_eq!(sign_in(&srv, json!({"person_id": "wang", "password": "new-wang-pass-1"})).await.0, 201);
    let (s, _) = send(
        &srv,
        "PUT",
        Some(token),
        "/api/v1/people/li/password",
        json!({"password": "hijacked-pass", "old_password": "x"}),
    )
    .await;
    assert_eq!(s, 403, "a post officer may not set another person's password");
    let (s, v) =
        send(&srv, "PUT", Some(ADMIN), "/api/v1/people/nobody/password", json!({"password": "whatever-pass"})).await;
    assert_eq!((s, field(&v)), (404, "person_id"), "{v}");

    // The audit log names every step and no secret.
    let (_, v) = srv.get(ADMIN, "/api/v1/audit?subject=person:wang").await;
    let actions: Vec<&str> = v["audit"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for a in ["password_set", "signed_in", "sign_in_refused"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    let text = v.to_string() + &srv.get(ADMIN, "/api/v1/audit?subject=person:li").await.1.to_string();
    let log = logged();
    for secret in [WANG_PASSWORD, LI_PASSWORD, "new-wang-pass-1", "not-the-password", token, &li_admin] {
        assert!(!text.contains(secret), "{secret} in the audit log");
        assert!(!log.contains(secret), "{secret} in the server's log");
    }
    assert!(log.contains("sign-in refused"), "refusals are logged");
    srv.stop().await;
}
on_both_stores!(a_right_password_signs_in_and_a_wrong_one_or_an_unknown_person_gets_the_same_401);

async fn each_endpoint_allows_and_refuses_callers_as_its_doc_says(backend: Backend) {
    let Some(srv) = start("roles", backend, |_| {}).await else { return };
    let session = wang(&srv).await;
    // (caller, set li's password, issue a code for li, revoke li's sessions)
    let expected: [(&str, u16, u16, u16); 6] = [
        (ADMIN, 204, 201, 200),
        (OPERATOR, 403, 403, 403),
        (LEADER, 403, 403, 403),
        (PARTNER, 403, 403, 403),
        (PHONE, 401, 401, 401),
        (UNKNOWN, 401, 401, 401),
    ];
    for (who, set, code, revoke) in expected {
        let got = (
            send(&srv, "PUT", Some(who), "/api/v1/people/li/password", json!({"password": LI_PASSWORD})).await.0,
            send(&srv, "POST", Some(who), "/api/v1/people/li/sign-in-code", Value::Null).await.0,
            send(&srv, "DELETE", Some(who), "/api/v1/people/li/sessions", Value::Null).await.0,
        );
        assert_eq!(got, (set, code, revoke), "{who}");
    }
    let signed_in = (
        send(
            &srv,
            "PUT",
            Some(&session),
            "/api/v1/people/li/password",
            json!({"password": LI_PASSWORD, "old_password": "x-x-x-x-x-x"}),
        )
        .await
        .0,
        send(&srv, "POST", Some(&session), "/api/v1/people/li/sign-in-code", Value::Null).await.0,
        send(&srv, "DELETE", Some(&session), "/api/v1/people/li/sessions", Value::Null).await.0,
    );
    assert_eq!(signed_in, (403, 403, 403), "a signed-in post officer");
    let anonymous = (
        send(&srv, "PUT", None, "/api/v1/people/li/password", json!({"password": LI_PASSWORD})).await.0,
        send(&srv, "POST", None, "/api/v1/people/li/sign-in-code", Value::Null).await.0,
        send(&srv, "DELETE", None, "/api/v1/people/li/sessions", Value::Null).await.0,
    );
    assert_eq!(anonymous, (401, 401, 401), "no token");
    // Signing out and renewing are a session's own: a config token or a device's key is
    // told so, no token is 401.
    for path in ["/api/v1/sessions", "/api/v1/sessions/renew"] {
        let method = if path.ends_with("renew") { "POST" } else { "DELETE" };
        let (s, v) = send(&srv, method, Some(ADMIN), path, Value::Null).await;
        assert_eq!((s, field(&v)), (400, "authorization"), "{path}: {v}");
        assert_eq!(send(&srv, method, Some(PHONE), path, Value::Null).await.0, 400, "{path}");
        assert_eq!(send(&srv, method, None, path, Value::Null).await.0, 401, "{path}");
    }
    // A phone bound to wang acts for him.
    let (s, v) = srv.get(PHONE, "/api/v1/whoami").await;
    assert_eq!(
        (s, &v["person_id"], &v["name"], &v["role"]),
        (200, &json!("wang"), &json!("王警官"), &json!("device")),
        "{v}"
    );
    srv.stop().await;
}
on_both_stores!(each_endpoint_allows_and_refuses_callers_as_its_doc_says);

async fn sessions_end_when_idle_renew_up_to_their_cap_and_sign_out_everywhere_ends_them_all(backend: Backend) {
    let Some(srv) = start("expiry", backend, |c| {
        c.sessions.idle_s = 2;
        c.sessions.max_s = 3;
    })
    .await
    else {
        return;
    };
    let t = wang(&srv).await;
    let first = srv.get(&t, "/api/v1/whoami").await;
    assert_eq!(first.0, 200);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let (s, v) = send(&srv, "POST", Some(&t), "/api/v1/sessions/renew", Value::Null).await;
    assert_eq!(s, 200, "{v}");
    let (expires, cap) = (v["expires_ms"].as_i64().unwrap(), v["max_expires_ms"].as_i64().unwrap());
    assert_eq!(expires, cap, "renewed 1.2 s in, the 2 s idle lifetime reaches the 3 s cap");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(srv.get(&t, "/api/v1/whoami").await.0, 200, "renewed: alive past its first idle end");
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(srv.get(&t, "/api/v1/whoami").await.0, 401, "past its cap: ended");
    assert_eq!(
        send(&srv, "POST", Some(&t), "/api/v1/sessions/renew", Value::Null).await.0,
        401,
        "an ended session is not renewed"
    );

    // An unrenewed session ends after its idle lifetime, and its live socket is closed.
    let idle = wang(&srv).await;
    let mut ws = srv.ws(&idle).await;
    assert_eq!(liandong_test_support::feed::next(&mut ws).await["type"], "snapshot");
    let frame = closed_within(&mut ws, Duration::from_secs(6)).await;
    assert_eq!((u16::from(frame.code), frame.reason.as_str()), (1008, "session ended"));
    assert_eq!(srv.get(&idle, "/api/v1/whoami").await.0, 401, "idle for 2 s: ended");

    // Signing out ends one session; signing out everywhere, all of the person's.
    let (a, b, c) = (wang(&srv).await, wang(&srv).await, wang(&srv).await);
    assert_eq!(send(&srv, "DELETE", Some(&a), "/api/v1/sessions", Value::Null).await.0, 204);
    assert_eq!(srv.get(&a, "/api/v1/whoami").await.0, 401, "signed out");
    assert_eq!(srv.get(&b, "/api/v1/whoami").await.0, 200, "another session goes on");
    assert_eq!(send(&srv, "DELETE", Some(&b), "/api/v1/sessions?all=true", Value::Null).await.0, 204);
    assert_eq!(
        (srv.get(&b, "/api/v1/whoami").await.0, srv.get(&c, "/api/v1/whoami").await.0),
        (401, 401),
        "everywhere"
    );
    assert_eq!(
        send(&srv, "DELETE", Some(&b), "/api/v1/sessions", Value::Null).await.0,
        401,
        "a revoked token is not valid"
    );
    let (_, v) = srv.get(ADMIN, "/api/v1/audit?subject=person:wang").await;
    let actions: Vec<&str> = v["audit"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(&actions[..2], ["sessions_revoked", "signed_out"], "newest first: {actions:?}");
    srv.stop().await;
}
on_both_stores!(sessions_end_when_idle_renew_up_to_their_cap_and_sign_out_everywhere_ends_them_all);

async fn an_administrator_and_deactivation_revoke_a_persons_sessions_and_close_their_live_socket(backend: Backend) {
    let Some(srv) = start("revoke", backend, |_| {}).await else { return };
    let t = wang(&srv).await;
    let mut ws = srv.ws(&t).await;
    let first = liandong_test_support::feed::next(&mut ws).await;
    assert_eq!(first["type"], "snapshot", "{first}");
    let (s, v) = send(&srv, "DELETE", Some(ADMIN), "/api/v1/people/wang/sessions", Value::Null).await;
    assert_eq!((s, &v["revoked"]), (200, &json!(1)), "{v}");
    assert_eq!(srv.get(&t, "/api/v1/whoami").await.0, 401, "revoked at once on this instance");
    let frame = closed_within(&mut ws, Duration::from_secs(5)).await;
    assert_eq!((u16::from(frame.code), frame.reason.as_str()), (1008, "session ended"));

    // Deactivating a person revokes their sessions; they cannot sign in again, and are
    // answered as a wrong password would be.
    let t = wang(&srv).await;
    let (s, _) = send(&srv, "PATCH", Some(ADMIN), "/api/v1/people/wang", json!({"active": false})).await;
    assert_eq!(s, 200);
    assert_eq!(srv.get(&t, "/api/v1/whoami").await.0, 401, "deactivated: signed out");
    let (s, v) = sign_in(&srv, json!({"person_id": "wang", "password": WANG_PASSWORD})).await;
    assert_eq!((s, field(&v)), (401, "password"), "{v}");
    let (_, v) = srv.get(ADMIN, "/api/v1/audit?subject=person:wang").await;
    let revoked = v["audit"].as_array().unwrap().iter().find(|e| e["action"] == "sessions_revoked").unwrap().clone();
    assert_eq!(revoked["detail"], "person deactivated", "{revoked}");
    srv.stop().await;
}
on_both_stores!(an_administrator_and_deactivation_revoke_a_persons_sessions_and_close_their_live_socket);

async fn a_sign_in_code_signs_a_phone_in_once_and_not_after_it_expires(backend: Backend) {
    let Some(srv) = start("codes", backend, |c| c.sessions.code_s = 1).await else { return };
    let (s, v) = send(&srv, "POST", Some(ADMIN), "/api/v1/people/wang/sign-in-code", Value::Null).await;
    assert_eq!(s, 201, "{v}");
    let code = v["code"].as_str().unwrap().to_owned();
    let link = v["link"].as_str().unwrap();
    assert!(
        link.contains("/field/#server=http%3A%2F%2F127.0.0.1") && link.ends_with(&format!("&code={code}")),
        "{link}"
    );
    let (s, v) = sign_in(&srv, json!({"code": code})).await;
    assert_eq!((s, &v["person"]["person_id"]), (201, &json!("wang")), "{v}");
    let token = v["token"].as_str().unwrap().to_owned();
    assert_eq!(srv.get(&token, "/api/v1/whoami").await.1["person_id"], "wang");
    let (s, v) = sign_in(&srv, json!({"code": code})).await;
    assert_eq!((s, field(&v)), (401, "code"), "a code works once: {v}");

    let (_, v) = send(&srv, "POST", Some(ADMIN), "/api/v1/people/wang/sign-in-code", Value::Null).await;
    let late = v["code"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(sign_in(&srv, json!({"code": late})).await.0, 401, "expired");
    assert_eq!(sign_in(&srv, json!({"code": "made-up-code"})).await.0, 401, "unknown");

    let (_, v) = srv.get(ADMIN, "/api/v1/audit?subject=person:wang").await;
    let text = v.to_string();
    assert!(text.contains("sign_in_code_issued"), "{text}");
    assert!(!text.contains(&code) && !text.contains(&late), "no code in the audit log");
    assert!(!logged().contains(&code), "no code in the server's log");
    send(&srv, "PATCH", Some(ADMIN), "/api/v1/people/wang", json!({"active": false})).await;
    let (s, v) = send(&srv, "POST", Some(ADMIN), "/api/v1/people/wang/sign-in-code", Value::Null).await;
    assert_eq!((s, field(&v)), (422, "person_id"), "no code for an inactive person: {v}");
    srv.stop().await;
}
on_both_stores!(a_sign_in_code_signs_a_phone_in_once_and_not_after_it_expires);

async fn failed_sign_ins_are_limited_per_account_and_per_address_until_the_window_passes(backend: Backend) {
    let Some(srv) = start("limits", backend, |c| {
        c.sessions.failures_per_account = 3;
        c.sessions.failures_per_address = 5;
        c.sessions.failure_window_s = 3;
    })
    .await
    else {
        return;
    };
    let from = |ip: [u8; 4]| reqwest::Client::builder().local_address(std::net::IpAddr::from(ip)).build().unwrap();
    let (here, elsewhere) = (from([127, 0, 0, 1]), from([127, 0, 0, 2]));
    let attempt = |http: &reqwest::Client, id: &str, password: &str| {
        let (http, body) = (http.clone(), json!({"person_id": id, "password": password}));
        let srv = &srv;
        async move { send_with(&http, srv, "POST", None, "/api/v1/sessions", body).await }
    };
    for _ in 0..3 {
        assert_eq!(attempt(&here, "wang", "wrong-password").await.0 .0, 401);
    }
    let ((s, v), retry) = attempt(&here, "wang", WANG_PASSWORD).await;
    assert_eq!((s, field(&v)), (429, "person_id"), "the right password too, while the account is held: {v}");
    let retry: u32 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=3).contains(&retry), "{retry}");
    assert_eq!(attempt(&elsewhere, "wang", WANG_PASSWORD).await.0 .0, 429, "the account is held from any address");

    // The address has 3 failures; two more on another account fill it.
    assert_eq!(attempt(&here, "li", "wrong-password").await.0 .0, 401);
    assert_eq!(attempt(&here, "li", "wrong-password").await.0 .0, 401);
    let ((s, v), retry) = attempt(&here, "li", LI_PASSWORD).await;
    assert_eq!((s, field(&v), retry.is_some()), (429, "address", true), "{v}");
    assert_eq!(attempt(&elsewhere, "li", LI_PASSWORD).await.0 .0, 201, "another address signs li in");

    tokio::time::sleep(Duration::from_millis(3_100)).await;
    assert_eq!(attempt(&here, "wang", WANG_PASSWORD).await.0 .0, 201, "after the window");
    // Guessing codes counts against the guesser's address only: no account is held.
    let guesser = from([127, 0, 0, 3]);
    let code =
        |n: u32| send_with(&guesser, &srv, "POST", None, "/api/v1/sessions", json!({"code": format!("guess-{n}")}));
    for n in 0..5 {
        assert_eq!(code(n).await.0 .0, 401);
    }
    let ((s, v), _) = code(5).await;
    assert_eq!((s, field(&v)), (429, "address"), "{v}");
    assert_eq!(
        attempt(&here, "wang", WANG_PASSWORD).await.0 .0,
        201,
        "wang's account is not held by others' code guesses"
    );
    let (_, v) = srv.get(ADMIN, "/api/v1/audit?subject=person:wang").await;
    assert!(v["audit"].as_array().unwrap().iter().any(|e| e["action"] == "sign_in_limited"), "{v}");
    assert!(logged().contains("too many failures"), "limits are logged");
    srv.stop().await;
}
on_both_stores!(failed_sign_ins_are_limited_per_account_and_per_address_until_the_window_passes);

/// Two instances on one PostgreSQL database: a session opened on one works on the other,
/// and signing out on one ends it on the other within seconds (each re-reads a cached
/// session after 5 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_signed_out_on_one_instance_ends_on_the_other_within_seconds() {
    let Some(config) = configured("instances", Backend::Postgis, |_| {}).await else { return };
    let other = Config { data_dir: liandong_test_support::fresh_dir("signin-instances-b"), ..config.clone() };
    let a = populated(config).await;
    let b = Server::start(other).await;
    let t = wang(&a).await;
    assert_eq!(b.get(&t, "/api/v1/whoami").await.1["person_id"], "wang", "a session opened on A works on B");
    assert_eq!(send(&a, "DELETE", Some(&t), "/api/v1/sessions", Value::Null).await.0, 204);
    assert_eq!(a.get(&t, "/api/v1/whoami").await.0, 401, "at once where it was signed out");
    let started = std::time::Instant::now();
    while b.get(&t, "/api/v1/whoami").await.0 == 200 {
        assert!(started.elapsed() < Duration::from_secs(8), "B still accepts the session after 8 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(b.get(&t, "/api/v1/whoami").await.0, 401);
    b.stop().await;
    a.stop().await;
}
