//! The demo's duty roster (24小时值班): today's and tomorrow's shifts of the command centre
//! and of every post, set through the duty API with the admin token when the simulator
//! starts, for the demo's people (`people`).
//!
//! The command centre runs three eight-hour shifts a day (00:00, 08:00, 16:00 China
//! time), each with a leader on duty and an operator on duty; a post's leader is on duty
//! the whole day and its two officers half a day each. A unit that already has shifts on
//! a day is left as it is, so a second start (or an administrator's own roster) is never
//! doubled or overwritten.

use std::collections::HashSet;

use anyhow::Context;
use liandong_core::CountyMap;
use serde::Serialize;

use super::options::Args;
use super::people::{person_id, OPERATORS, POST_OFFICERS};

const HOUR_MS: i64 = 3600 * 1000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// China Standard Time is UTC+8 all year: the roster's days are China's.
const CHINA_OFFSET_MS: i64 = 8 * HOUR_MS;

/// One shift as `POST /api/v1/duty` takes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct DemoShift {
    pub unit_kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_id: Option<String>,
    pub person_id: String,
    pub duty: &'static str,
    pub starts_ms: i64,
    pub ends_ms: i64,
}

/// The start of the China day holding `t_ms`.
pub(super) fn china_day_start(t_ms: i64) -> i64 {
    (t_ms + CHINA_OFFSET_MS).div_euclid(DAY_MS) * DAY_MS - CHINA_OFFSET_MS
}

/// The demo's shifts of the China day starting at `day_ms`, for every unit of the map.
pub(super) fn day_roster(map: &CountyMap, day_ms: i64) -> Vec<DemoShift> {
    let mut out = Vec::new();
    let shift = |unit: Option<&str>, person: String, duty, from_h: i64, to_h: i64| DemoShift {
        unit_kind: if unit.is_some() { "post" } else { "command_centre" },
        unit_id: unit.map(str::to_owned),
        person_id: person,
        duty,
        starts_ms: day_ms + from_h * HOUR_MS,
        ends_ms: day_ms + to_h * HOUR_MS,
    };
    // Three shifts; the operators take them in turn, the first three leading.
    let per_shift = OPERATORS / 3;
    for n in 0..3 {
        let (from, to) = (8 * n as i64, 8 * (n as i64 + 1));
        out.push(shift(None, format!("cc-operator-{:02}", n + 1), "leader", from, to));
        for k in 1..per_shift {
            out.push(shift(None, format!("cc-operator-{:02}", n + 1 + 3 * k), "on_duty", from, to));
        }
    }
    let half = 24 / POST_OFFICERS as i64;
    for post in &map.posts {
        out.push(shift(Some(&post.id), person_id("", &post.id, "leader"), "leader", 0, 24));
        for n in 0..POST_OFFICERS as i64 {
            let officer = person_id("", &post.id, &format!("officer-{}", n + 1));
            out.push(shift(Some(&post.id), officer, "on_duty", n * half, (n + 1) * half));
        }
    }
    out
}

/// Sets today's and tomorrow's roster for every unit that has no shift on that day yet.
/// A server without the duty API (404) is logged and left; any other refusal (a
/// person an administrator has since moved, a leader already on duty then) is the
/// error, which the caller logs: the demo runs on without a roster.
pub(super) async fn set_roster(
    client: &reqwest::Client,
    args: &Args,
    map: &CountyMap,
    now_ms: i64,
) -> anyhow::Result<()> {
    let today = china_day_start(now_ms);
    let mut wanted = Vec::new();
    for day in [today, today + DAY_MS] {
        let r = client
            .get(format!("{}/api/v1/duty?from={day}&to={}", args.url, day + DAY_MS))
            .bearer_auth(&args.token)
            .send()
            .await
            .context("reading the duty roster")?;
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            tracing::warn!("the server has no duty roster; the demo runs without one");
            return Ok(());
        }
        if !r.status().is_success() {
            anyhow::bail!("reading the duty roster failed: {} {}", r.status(), r.text().await.unwrap_or_default());
        }
        let v: serde_json::Value = r.json().await.context("reading the duty roster")?;
        let staffed: HashSet<Option<String>> =
            v["shifts"].as_array().into_iter().flatten().map(|s| s["unit_id"].as_str().map(str::to_owned)).collect();
        wanted.extend(day_roster(map, day).into_iter().filter(|s| !staffed.contains(&s.unit_id)));
    }
    if wanted.is_empty() {
        tracing::info!("the duty roster is set already");
        return Ok(());
    }
    let r = client
        .post(format!("{}/api/v1/duty", args.url))
        .bearer_auth(&args.token)
        .json(&serde_json::json!({ "shifts": wanted }))
        .send()
        .await
        .context("setting the duty roster")?;
    match r.status().as_u16() {
        201 => tracing::info!(shifts = wanted.len(), "simulator set the duty roster"),
        status => anyhow::bail!("setting the duty roster failed: {status} {}", r.text().await.unwrap_or_default()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::people::roster;
    use super::super::test_support::dazhu;
    use super::*;

    #[test]
    fn every_unit_has_one_leader_at_every_moment_of_the_day_and_only_its_own_people() {
        let map = dazhu();
        let day = china_day_start(1_796_223_600_000);
        let shifts = day_roster(&map, day);
        let people = roster(&map);
        for s in &shifts {
            let p = people.iter().find(|p| p.person_id == s.person_id).expect("a demo person");
            assert_eq!((p.unit_kind, &p.unit_id), (s.unit_kind, &s.unit_id), "{s:?} names someone of another unit");
            assert!(s.ends_ms > s.starts_ms && s.ends_ms - s.starts_ms <= DAY_MS, "{s:?}");
        }
        let mut units: Vec<Option<String>> = map.posts.iter().map(|p| Some(p.id.clone())).collect();
        units.push(None);
        for unit in units {
            for hour in 0..24 {
                let at = day + hour * HOUR_MS + HOUR_MS / 2;
                let on = |duty: &str| {
                    shifts
                        .iter()
                        .filter(|s| s.unit_id == unit && s.duty == duty && s.starts_ms <= at && at < s.ends_ms)
                        .count()
                };
                assert_eq!(on("leader"), 1, "{unit:?} at {hour}:30 has one leader on duty");
                assert!(on("on_duty") >= 1, "{unit:?} at {hour}:30 has someone on duty");
            }
        }
    }

    #[test]
    fn the_roster_day_is_chinas() {
        // 2026-12-02T15:00Z is 23:00 in China: the day began at 2026-12-01T16:00Z.
        assert_eq!(china_day_start(1_796_223_600_000), 1_796_140_800_000);
        assert_eq!(china_day_start(1_796_227_200_000), 1_796_227_200_000);
    }
}
