//! The simulator's people signing in, as the demo's desk users and phones do: a
//! command-centre operator with the published demo password, a grid member's phone with
//! a one-time code the administrator issues. A [`Session`] holds its token, renews it
//! before it ends, and signs in again when the server stops taking it (a 401, a renewal
//! refused, the session's longest life reached).
//!
//! Sessions are opened only when first needed and then kept: the simulator holds at most
//! one session per person it acts as.

use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

/// The demo's published password of the command-centre people (值班员 and the
/// administrator), which the simulator sets at start so that a visitor can sign in at the
/// wall map. Published like the demo's tokens: the demo listens on loopback only.
pub(crate) const DEMO_PASSWORD: &str = "liandong-demo";

/// How a session is opened again.
#[derive(Debug, Clone)]
enum How {
    /// A desk user's password.
    Password(String),
    /// A one-time code the administrator issues, as a phone is signed in.
    Code,
}

/// The token in hand, and when to renew it (server clock, Unix milliseconds).
#[derive(Debug, Clone)]
struct Held {
    token: String,
    expires_ms: i64,
    max_expires_ms: i64,
    renew_at_ms: i64,
}

/// One person's session, opened when first asked for and kept.
pub(crate) struct Session {
    client: reqwest::Client,
    url: String,
    admin_token: String,
    person_id: String,
    role: &'static str,
    how: How,
    held: tokio::sync::Mutex<Option<Held>>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// When a session that ends at `expires_ms` (seen at `now`) is renewed: half way to its
/// end, so that a renewal late by a slow server or a busy runtime is still in time.
fn renew_point(now: i64, expires_ms: i64) -> i64 {
    now + (expires_ms - now).max(0) / 2
}

impl Session {
    /// A session of a desk user who signs in with `password` in `role`.
    pub(crate) fn with_password(
        client: reqwest::Client,
        url: String,
        person_id: String,
        role: &'static str,
        password: String,
    ) -> Session {
        Session {
            client,
            url,
            admin_token: String::new(),
            person_id,
            role,
            how: How::Password(password),
            held: tokio::sync::Mutex::new(None),
        }
    }

    /// A session of a phone signed in with a one-time code that `admin_token` issues.
    pub(crate) fn with_code(
        client: reqwest::Client,
        url: String,
        admin_token: String,
        person_id: String,
        role: &'static str,
    ) -> Session {
        Session { client, url, admin_token, person_id, role, how: How::Code, held: tokio::sync::Mutex::new(None) }
    }

    pub(crate) fn person_id(&self) -> &str {
        &self.person_id
    }

    /// The session's token: signed in if none is held, renewed (or signed in again) past
    /// its renewal point.
    pub(crate) async fn token(&self) -> anyhow::Result<String> {
        let mut held = self.held.lock().await;
        let now = now_ms();
        let current = match held.take() {
            Some(h) if now < h.renew_at_ms => h,
            Some(h) if now + 1000 < h.expires_ms && h.expires_ms < h.max_expires_ms => match self.renew(&h).await {
                Ok(renewed) => renewed,
                Err(e) => {
                    tracing::debug!(person = %self.person_id, error = %format!("{e:#}"), "renewal refused; signing in again");
                    self.sign_in().await?
                }
            },
            _ => self.sign_in().await?,
        };
        let token = current.token.clone();
        *held = Some(current);
        Ok(token)
    }

    /// Drops `token` after the server refused it (401), so that the next call signs in
    /// again; a token already replaced by another task is left alone.
    pub(crate) async fn refused(&self, token: &str) {
        let mut held = self.held.lock().await;
        if held.as_ref().is_some_and(|h| h.token == token) {
            tracing::info!(person = %self.person_id, "session refused; signing in again");
            *held = None;
        }
    }

    async fn renew(&self, h: &Held) -> anyhow::Result<Held> {
        let r = self
            .client
            .post(format!("{}/api/v1/sessions/renew", self.url))
            .bearer_auth(&h.token)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .context("renewing a session")?;
        anyhow::ensure!(r.status().is_success(), "renewing a session: {}", r.status());
        let v: Value = r.json().await.context("reading a renewal")?;
        let expires_ms = v["expires_ms"].as_i64().context("a renewal without expires_ms")?;
        tracing::debug!(person = %self.person_id, expires_ms, "session renewed");
        Ok(Held { expires_ms, renew_at_ms: renew_point(now_ms(), expires_ms), ..h.clone() })
    }

    async fn sign_in(&self) -> anyhow::Result<Held> {
        let body = match &self.how {
            How::Password(password) => json!({"person_id": self.person_id, "password": password, "role": self.role}),
            How::Code => json!({"code": self.code().await?, "role": self.role}),
        };
        let r = self
            .client
            .post(format!("{}/api/v1/sessions", self.url))
            .timeout(Duration::from_secs(30))
            .json(&body)
            .send()
            .await
            .with_context(|| format!("signing in as {}", self.person_id))?;
        let status = r.status();
        if !status.is_success() {
            anyhow::bail!("signing in as {} failed: {status} {}", self.person_id, r.text().await.unwrap_or_default());
        }
        let v: Value = r.json().await.context("reading a sign-in")?;
        let token = v["token"].as_str().context("a sign-in without a token")?.to_owned();
        let expires_ms = v["expires_ms"].as_i64().context("a sign-in without expires_ms")?;
        let max_expires_ms = v["max_expires_ms"].as_i64().unwrap_or(expires_ms);
        tracing::info!(person = %self.person_id, role = self.role, "simulator signed in");
        Ok(Held { token, expires_ms, max_expires_ms, renew_at_ms: renew_point(now_ms(), expires_ms) })
    }

    /// A one-time code for this person, from the administrator.
    async fn code(&self) -> anyhow::Result<String> {
        let r = self
            .client
            .post(format!("{}/api/v1/people/{}/sign-in-code", self.url, self.person_id))
            .bearer_auth(&self.admin_token)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .context("asking for a sign-in code")?;
        let status = r.status();
        if !status.is_success() {
            anyhow::bail!(
                "a sign-in code for {} was refused: {status} {}",
                self.person_id,
                r.text().await.unwrap_or_default()
            );
        }
        let v: Value = r.json().await.context("reading a sign-in code")?;
        Ok(v["code"].as_str().context("an answer without a code")?.to_owned())
    }
}

/// Whom a part of the simulator calls as: a person's session, or a fixed token (a
/// config token, when signing in is not possible).
pub(crate) enum Caller {
    Token(String),
    Person(Session),
}

impl Caller {
    /// The bearer token to send now.
    pub(crate) async fn token(&self) -> anyhow::Result<String> {
        match self {
            Caller::Token(t) => Ok(t.clone()),
            Caller::Person(s) => s.token().await,
        }
    }

    /// The server refused `token` (401): a session signs in again on the next call.
    pub(crate) async fn refused(&self, token: &str) {
        if let Caller::Person(s) = self {
            s.refused(token).await;
        }
    }
}

/// Sets `password` for each of `people` with the admin token.
pub(crate) async fn set_passwords(
    client: &reqwest::Client,
    url: &str,
    admin_token: &str,
    people: &[String],
    password: &str,
) -> anyhow::Result<()> {
    for person in people {
        let r = client
            .put(format!("{url}/api/v1/people/{person}/password"))
            .bearer_auth(admin_token)
            .timeout(Duration::from_secs(30))
            .json(&json!({ "password": password }))
            .send()
            .await
            .with_context(|| format!("setting the password of {person}"))?;
        let status = r.status();
        if !status.is_success() {
            anyhow::bail!("setting the password of {person} failed: {status} {}", r.text().await.unwrap_or_default());
        }
    }
    Ok(())
}

/// The command-centre operator on duty at `now_ms` in a duty answer (`GET
/// /api/v1/duty`): the one on duty (值班员) rather than the shift's leader, else the
/// leader; `None` when the command centre has no one on duty then.
pub(crate) fn operator_on_duty(duty: &Value, now_ms: i64) -> Option<String> {
    let on = |want: &str| {
        duty["shifts"].as_array()?.iter().find_map(|s| {
            let here = s["unit_kind"] == "command_centre"
                && s["duty"] == want
                && s["cancelled_ms"].is_null()
                && s["starts_ms"].as_i64().is_some_and(|t| t <= now_ms)
                && s["ends_ms"].as_i64().is_some_and(|t| now_ms < t);
            here.then(|| s["person_id"].as_str().map(str::to_owned)).flatten()
        })
    };
    on("on_duty").or_else(|| on("leader"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_on_duty_now_is_preferred_to_the_shifts_leader_and_other_shifts_are_not_taken() {
        let shift = |person: &str, duty: &str, from: i64, to: i64| {
            json!({"unit_kind": "command_centre", "unit_id": null, "person_id": person, "duty": duty,
                "starts_ms": from, "ends_ms": to, "cancelled_ms": null})
        };
        let post = json!({"unit_kind": "post", "unit_id": "p-west", "person_id": "p-west-officer-1",
            "duty": "on_duty", "starts_ms": 0, "ends_ms": 100, "cancelled_ms": null});
        let cancelled = json!({"unit_kind": "command_centre", "person_id": "cc-operator-09", "duty": "on_duty",
            "starts_ms": 0, "ends_ms": 100, "cancelled_ms": 5});
        let duty = json!({"shifts": [post, cancelled, shift("cc-operator-01", "leader", 0, 50),
            shift("cc-operator-04", "on_duty", 0, 50), shift("cc-operator-02", "leader", 50, 100)]});
        // (moment, expected)
        let rows =
            [(10, Some("cc-operator-04")), (49, Some("cc-operator-04")), (50, Some("cc-operator-02")), (100, None)];
        for (at, want) in rows {
            assert_eq!(operator_on_duty(&duty, at).as_deref(), want, "at {at}");
        }
        assert_eq!(operator_on_duty(&Value::Null, 10), None);
    }

    #[test]
    fn a_session_is_renewed_half_way_to_its_end() {
        assert_eq!(renew_point(1000, 61_000), 31_000);
        assert_eq!(renew_point(1000, 500), 1000, "an ended session is renewed (or replaced) at once");
    }
}
