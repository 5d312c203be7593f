//! A server started in-process on `127.0.0.1:0`, with the handle the tests talk to it
//! through: its address, base URL, an HTTP client, its data directory and its shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use liandong_server::auth::Role;
use liandong_server::config::{Config, Secret, TokenConfig};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::feed::Ws;

/// How long a stopped server may take to drain its sequencer and close its store.
const STOP_WITHIN: Duration = Duration::from_secs(20);

/// How long a started server may take to answer `/healthz` on a machine busy with
/// other builds and tests.
const HEALTHY_WITHIN: Duration = Duration::from_secs(30);

/// Which store a server runs on, for the scenarios that run on both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The embedded store in the server's data directory.
    Sqlite,
    /// A fresh database on the PostGIS test cluster (see [`crate::pg`]).
    Postgis,
}

impl Backend {
    /// Points `config` at this backend for the test `name`: on PostGIS, at a fresh
    /// database. None when the test is to be skipped (no cluster, and none required).
    pub async fn configure(self, config: &mut Config, name: &str) -> Option<()> {
        if self == Backend::Postgis {
            let cluster = crate::pg::cluster(&format!("{name} on PostGIS"))?;
            let db = crate::pg::fresh_database(&cluster, name).await;
            config.store.database_url = Some(Secret::new(db));
        }
        Some(())
    }
}

/// A server running in this test's runtime. Stop it with [`Server::stop`] (or
/// [`Server::stop_keeping_data`]) to see that it shuts down cleanly; a handle dropped
/// without either (a failed test) still tells the server to stop.
pub struct Server {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its base URL, `http://` and the address (also on a TLS server, where the tests
    /// build their own `https://` URL).
    pub url: String,
    /// The live feed's URL, `ws://…/api/v1/live`, without a query.
    pub live_url: String,
    /// A plain HTTP client for the tests' requests.
    pub http: reqwest::Client,
    /// Its data directory (the embedded store, snapshots), removed by [`Server::stop`].
    pub dir: PathBuf,
    /// The configuration's first administrator token, for [`Server::admin`].
    admin: Option<String>,
    /// The shutdown signal `run` waits on; taken when it is sent.
    stop: Option<oneshot::Sender<()>>,
    /// The task running `run`, which panics when `run` fails; taken when awaited.
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts a server with the test configuration ([`crate::config`]) on the data
    /// directory `dir` as it is (a restart on the same directory keeps what is stored),
    /// with `tokens`, tuned by `tune`, and waits until it is healthy.
    pub async fn start_in(dir: PathBuf, tokens: Vec<TokenConfig>, tune: impl FnOnce(&mut Config)) -> Server {
        let mut config = crate::config(dir);
        config.tokens = tokens;
        tune(&mut config);
        Server::start(config).await
    }

    /// Starts a server on `config` as given (its `data_dir` is the server's directory)
    /// and waits until it is healthy.
    pub async fn start(config: Config) -> Server {
        let server = Server::spawn(config).await;
        server.wait_healthy().await;
        server
    }

    /// Starts a server on `config` as given (its `data_dir` is the server's directory)
    /// and returns at once, before it is ready: for a server that does not speak plain
    /// HTTP (TLS), whose test waits its own way.
    pub async fn spawn(config: Config) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port on 127.0.0.1");
        let addr = listener.local_addr().expect("the listener's address");
        let admin = config.tokens.iter().find(|t| t.role == Role::Admin).map(|t| t.token.expose().to_owned());
        let dir = config.data_dir.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(e) = liandong_server::run(listener, config, shutdown).await {
                panic!("the server failed: {e}");
            }
        });
        Server {
            addr,
            url: format!("http://{addr}"),
            live_url: format!("ws://{addr}/api/v1/live"),
            http: reqwest::Client::new(),
            dir,
            admin,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Waits until `/healthz` answers 200; panics with the server's error if it ended.
    async fn wait_healthy(&self) {
        let deadline = tokio::time::Instant::now() + HEALTHY_WITHIN;
        while tokio::time::Instant::now() < deadline {
            let answer = self.http.get(format!("{}/healthz", self.url)).send().await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(!self.task.as_ref().is_some_and(JoinHandle::is_finished), "the server ended before it was healthy");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the server did not answer /healthz within {HEALTHY_WITHIN:?}");
    }

    /// Stops the server, waits until `run` has returned without error, and removes its
    /// data directory.
    pub async fn stop(self) {
        let dir = self.stop_keeping_data().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Stops the server, waits until `run` has returned without error, and answers its
    /// data directory, left as it is (for a restart, or to open the store).
    pub async fn stop_keeping_data(mut self) -> PathBuf {
        self.signal_stop();
        let task = self.task.take().expect("a server is stopped once");
        tokio::time::timeout(STOP_WITHIN, task)
            .await
            .expect("the server stops in time")
            .expect("the server stops cleanly");
        std::mem::take(&mut self.dir)
    }

    /// Tells the server to stop and returns at once, for a test that keeps requests in
    /// flight across the shutdown; [`Server::stop`] then waits for it.
    pub fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// `GET path` with `token`; answers the status and the body: its JSON, null when it
    /// is empty, or its text as a JSON string when it is not JSON.
    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        answer(self.http.get(format!("{}{path}", self.url)).bearer_auth(token).send().await.unwrap()).await
    }

    /// `POST path` with `token` and the JSON `body`; answers as [`Server::get`] does.
    pub async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        answer(self.http.post(format!("{}{path}", self.url)).bearer_auth(token).json(&body).send().await.unwrap()).await
    }

    /// `POST path` with the configuration's first administrator token; the test fails
    /// unless it succeeds. Answers the JSON body.
    pub async fn admin(&self, path: &str, body: Value) -> Value {
        let token = self.admin.as_deref().expect("the server was configured with an admin token");
        let (status, v) = self.post(token, path, body).await;
        assert!((200..300).contains(&status), "{path}: {status} {v}");
        v
    }

    /// A camera's alarm push to `/isapi/events` as `camera` with its `key`, of
    /// `content_type` (`application/xml`, or a multipart with snapshots); answers the
    /// answer as it is.
    pub async fn isapi(
        &self,
        camera: &str,
        key: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let url = format!("{}/isapi/events?camera={camera}&key={key}", self.url);
        self.http.post(url).header("content-type", content_type).body(body).send().await.unwrap()
    }

    /// A live feed client with `token`.
    pub async fn ws(&self, token: &str) -> Ws {
        self.live(&format!("token={token}")).await
    }

    /// A live feed client connected with the query `query` (`token=…&since=…`).
    pub async fn live(&self, query: &str) -> Ws {
        tokio_tungstenite::connect_async(format!("{}?{query}", self.live_url)).await.expect("the websocket connects").0
    }
}

/// The status and body of an answer: its JSON, null when it is empty, or its text as a
/// JSON string when it is not JSON (`/healthz` answers `ok`).
async fn answer(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let bytes = r.bytes().await.expect("the answer's body arrives");
    if bytes.is_empty() {
        return (status, Value::Null);
    }
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, body)
}

impl Drop for Server {
    fn drop(&mut self) {
        // A test that failed before stopping its server still ends it, rather than
        // leaving it serving until the runtime is torn down.
        self.signal_stop();
    }
}
