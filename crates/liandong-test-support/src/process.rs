//! The `liandong` binary started as a process (`liandong serve`), for the tests that kill
//! it with SIGKILL or read its log.
//!
//! Only a crate's own integration tests know where its binary was built
//! (`CARGO_BIN_EXE_liandong`), so they pass the path in.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a started process may take to log its listening address.
const LISTENING_WITHIN: Duration = Duration::from_secs(60);

/// A `liandong serve` process, killed (SIGKILL) when the handle is dropped.
pub struct ServeProcess {
    /// The process, its stderr read by a thread into `log`.
    child: Child,
    /// The address it listens on, as it logged it (`127.0.0.1:PORT`).
    pub addr: String,
    /// Its base URL, `http://` and the address.
    pub url: String,
    /// Every line it has logged so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl ServeProcess {
    /// Runs `bin serve` with the configuration file `config` and the environment `env`
    /// added (say `LIANDONG_LOG`), and waits until it logs the address it listens on (its
    /// configuration listens on `127.0.0.1:0`). The test fails with the log so far when it
    /// does not start listening within a minute.
    pub fn start(bin: impl AsRef<OsStr>, config: &Path, env: &[(&str, &str)]) -> ServeProcess {
        let mut child = Command::new(bin)
            .arg("serve")
            .env("LIANDONG_CONFIG", config)
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let lines = log.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && line.contains("listening") {
                    if let Some(addr) = line.split("addr=").nth(1) {
                        let _ = tx.send(addr.split_whitespace().next().unwrap_or("").to_owned());
                        sent = true;
                    }
                }
                lines.lock().unwrap().push(line);
            }
        });
        let Ok(addr) = rx.recv_timeout(LISTENING_WITHIN) else {
            let _ = child.kill();
            panic!("the server did not start listening:\n{}", log.lock().unwrap().join("\n"));
        };
        ServeProcess { child, url: format!("http://{addr}"), addr, log }
    }

    /// Kills the process with SIGKILL (no shutdown, no flush) and reaps it.
    pub fn kill(self) {
        drop(self);
    }

    /// Asks the process to stop with SIGTERM (a clean shutdown) and waits for it to exit,
    /// at most `within`; the test fails, with the log, if it does not, or does not exit 0.
    pub fn stop(mut self, within: Duration) {
        let sent = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        assert!(sent.is_ok_and(|s| s.success()), "SIGTERM could not be sent");
        let deadline = std::time::Instant::now() + within;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    assert!(
                        status.success(),
                        "the server exited with {status}:\n{}",
                        self.log.lock().unwrap().join("\n")
                    );
                    return;
                }
                Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => panic!("the server did not stop within {within:?}:\n{}", self.log.lock().unwrap().join("\n")),
            }
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}
