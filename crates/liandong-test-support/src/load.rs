//! Load for the crash tests: writers that post batches of reports as fast as the
//! acknowledgements come back, keeping every acknowledged sequence number, until the
//! server stops answering (it was killed); and the check that none of them was lost.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::task::JoinHandle;

/// Reports in one batch.
const BATCH: i64 = 20;

/// Writers posting reports, one per device, and what was acknowledged to them.
pub struct Load {
    /// Every sequence number acknowledged so far, in the order the answers came.
    acked: Arc<Mutex<Vec<i64>>>,
    /// One task per device, ending when the server stops answering.
    writers: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts one writer per device of `devices` posting to the server at `url` with
    /// `token`: batches of 20 reports near 107.3, 30.6, the batch `step` dated from
    /// `first_ms + step * 100`. A writer ends at the first request that fails or is
    /// refused.
    pub fn start(http: &reqwest::Client, url: &str, token: &str, devices: &[String], first_ms: i64) -> Load {
        let acked: Arc<Mutex<Vec<i64>>> = Arc::default();
        let writers = devices
            .iter()
            .map(|device| {
                let (http, url, token, device, acked) =
                    (http.clone(), url.to_owned(), token.to_owned(), device.clone(), acked.clone());
                tokio::spawn(async move {
                    for step in 0i64.. {
                        let items: Vec<Value> = (0..BATCH)
                            .map(|k| json!({"device_id": device, "lon": 107.3 + (k as f64) * 1e-5, "lat": 30.6, "time": first_ms + step * 100 + k}))
                            .collect();
                        let sent =
                            http.post(format!("{url}/api/v1/positions")).bearer_auth(&token).json(&json!({ "positions": items })).send().await;
                        let Ok(res) = sent else { break };
                        if !res.status().is_success() {
                            break;
                        }
                        let Ok(v) = res.json::<Value>().await else { break };
                        let seqs = v["accepted"].as_array().unwrap().iter().map(|x| x["seq"].as_i64().unwrap());
                        acked.lock().unwrap().extend(seqs);
                    }
                })
            })
            .collect();
        Load { acked, writers }
    }

    /// Waits until `count` reports are acknowledged, or `within` has passed.
    pub async fn wait_for(&self, count: usize, within: Duration) {
        let deadline = Instant::now() + within;
        while self.acked.lock().unwrap().len() < count && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The sequence numbers acknowledged so far (the writers go on).
    pub fn so_far(&self) -> Vec<i64> {
        self.acked.lock().unwrap().clone()
    }

    /// Waits until every writer has ended (the server no longer answers) and answers
    /// every acknowledged sequence number.
    pub async fn acknowledged(self) -> Vec<i64> {
        for writer in self.writers {
            let _ = writer.await;
        }
        let acked = self.acked.lock().unwrap().clone();
        acked
    }
}

/// Fails the test when a number of `acked` is not among `stored`, saying how many were
/// lost and the first few.
pub fn assert_none_lost(acked: &[i64], stored: &[i64]) {
    let missing = missing(acked, stored);
    assert!(
        missing.is_empty(),
        "{} acknowledged reports lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

/// The acknowledged numbers of `acked` that are not among `stored`.
pub fn missing(acked: &[i64], stored: &[i64]) -> Vec<i64> {
    let mut stored = stored.to_vec();
    stored.sort_unstable();
    acked.iter().copied().filter(|s| stored.binary_search(s).is_err()).collect()
}
