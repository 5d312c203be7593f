//! The joint work of the two stations and the centre (两所一庭) in the demo: the police
//! posts and the judicial office working together through the real HTTP API.
//!
//! - Walk-in disputes: now and then someone comes to a post with a dispute, and the post's
//!   officer registers it for mediation (`POST /api/v1/mediation`).
//! - After-hours business: a post's officer registers business for the judicial office
//!   (legal advice, legal aid, …; `POST /api/v1/referrals`); the server hands it over when
//!   the office opens.
//! - The office's desk: a demo mediator, signed in with the demo password as the desk's
//!   users are, looks at the referrals handed over and takes them up, then marks them
//!   done; and takes pending mediation cases through their steps over simulated minutes,
//!   accept (a mediator and a venue), a session, the outcome and the follow-up (a few
//!   are declined).
//! - Home visits: the mediator assigns a visit near a post to the post's duty officer,
//!   whose simulated phone drives there; the officer arrives (the server checks the
//!   phone's last fix against the place), stays, and completes it; the phone drives back.
//!
//! Rates are bounded (a few a minute at most, fewer cases in hand at once), randomness
//! comes from the simulator's seeded generator, and an API that answers an error (the
//! server's version without an endpoint, a refusal, a late step) is logged at debug and
//! the demo goes on.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use geo::{Distance, Haversine, Point};
use serde_json::{json, Value};
use tokio::task::JoinSet;

use super::incidents::{Claim, Desk};
use super::people::{demo_name, MEDIATORS};
use super::signin::{Caller, Session};
use super::support::{rfc3339, Rng};
use super::track::offset;

/// Mean simulated seconds between two walk-in disputes at the posts, two after-hours
/// registrations, and two home visits (Poisson processes).
const MEAN_WALK_IN_GAP_S: f64 = 240.0;
const MEAN_REFERRAL_GAP_S: f64 = 300.0;
const MEAN_VISIT_GAP_S: f64 = 420.0;
/// How often the office's desk looks at its queues, simulated seconds.
const DESK_ROUND_S: f64 = 60.0;
/// Cases, referrals and visits the office has in hand at once; more wait in the queues.
const MAX_CASES_IN_HAND: usize = 6;
const MAX_REFERRALS_IN_HAND: usize = 6;
const MAX_VISITS_IN_HAND: usize = 3;
/// Share of pending cases the office declines (不予受理).
const DECLINE_SHARE: f64 = 0.08;
/// Share of mediations that end in an agreement.
const AGREEMENT_SHARE: f64 = 0.8;
/// Simulated seconds before each step of a case, of a referral, and a visit's stay.
const CASE_STEP_S: Range<f64> = 60.0..420.0;
const REFERRAL_STEP_S: Range<f64> = 60.0..600.0;
const VISIT_STAY_S: Range<f64> = 120.0..480.0;
/// Where a walk-in party or a visited home is, metres from the post.
const NEAR_POST_M: Range<f64> = 60.0..250.0;
/// A phone this close to the visited place has arrived, metres (under the server's
/// `home_visits.arrive_within_m`, 150 by default).
const ARRIVE_M: f64 = 30.0;

/// What people bring to a post (illustrative): the dispute's type and its summary.
const WALK_INS: [(&str, &str); 8] = [
    ("neighbour", "邻居装修噪音及漏水引发争执，来所请求调解"),
    ("family", "兄弟二人因赡养老人费用分摊发生矛盾"),
    ("land", "两户村民因承包地边界界桩移位发生争执"),
    ("labour", "务工人员称工程完工后被拖欠工资"),
    ("consumer", "村民购买的农资化肥质量有问题，与商家协商未果"),
    ("traffic", "电动车与行人轻微碰撞，双方就赔偿金额有分歧"),
    ("property", "小区业主与物业公司就停车费收取发生纠纷"),
    ("other", "村民因红白喜事占道搭棚与邻户发生口角"),
];

/// After-hours business for the judicial office (illustrative).
const BUSINESS: [(&str, &str); 6] = [
    ("legal_consultation", "咨询土地流转合同的效力问题"),
    ("legal_aid", "老人因赡养纠纷申请法律援助"),
    ("mediation_request", "夜间来所，请求司法所次日调解宅基地纠纷"),
    ("correction_report", "社区矫正对象外出返回，按要求报到"),
    ("notarization", "咨询办理继承公证所需材料"),
    ("other", "群众反映村务公开问题，请司法所释法说理"),
];

/// Why a home visit is made (illustrative).
const VISIT_REASONS: [&str; 4] = [
    "行动不便老人申请法律援助，上门核实情况并代为填写申请",
    "社区矫正对象居家情况走访",
    "调解协议履行情况上门回访",
    "独居老人遗嘱见证事宜上门了解",
];

/// What the mediator records (illustrative).
const OUTCOMES_AGREED: [&str; 3] =
    ["双方达成调解协议，当场签字确认", "经调解双方互谅互让，约定分期履行", "双方同意按协议重新划定界线"];
const OUTCOMES_FAILED: [&str; 2] = ["双方分歧较大，调解未成，已告知诉讼途径", "一方未到场，调解终止"];
const FOLLOW_UPS: [&str; 3] = ["电话回访，协议已履行，双方无新的矛盾", "上门回访，双方关系缓和", "回访确认款项已付清"];

/// A post, its duty officer (the person who carries the post's phone) and the phone.
#[derive(Debug, Clone)]
pub(super) struct Post {
    pub id: String,
    pub point: Point<f64>,
    pub officer: String,
    /// The phone's device index in the simulator's field, when it has one.
    pub phone: Option<usize>,
}

/// What the joint work needs: the operator's desk (for the HTTP client, the field of
/// units and the roads), the office's mediator, and the posts.
pub(crate) struct Joint {
    pub(super) desk: Arc<Desk>,
    /// The simulator's admin token, which issues the officers' one-time sign-in codes.
    pub(super) admin_token: String,
    /// The mediator at the office's desk.
    pub(super) mediator: Caller,
    pub(super) posts: Vec<Post>,
    /// Each post officer's session (their phone), opened when first needed and kept.
    officers: Mutex<HashMap<String, Arc<Caller>>>,
    /// Venue ids of the map (`GET /api/v1/mediation/venues`), asked until there are some.
    venues: tokio::sync::Mutex<Vec<String>>,
    /// Cases, referrals and visits in hand, so that no two tasks take the same.
    cases: Mutex<HashSet<i64>>,
    referrals: Mutex<HashSet<i64>>,
}

impl Joint {
    pub(crate) fn new(desk: Arc<Desk>, admin_token: String, mediator: Caller, posts: Vec<Post>) -> Joint {
        Joint {
            desk,
            admin_token,
            mediator,
            posts,
            officers: Mutex::default(),
            venues: tokio::sync::Mutex::default(),
            cases: Mutex::default(),
            referrals: Mutex::default(),
        }
    }

    async fn sleep(&self, simulated_s: f64) {
        tokio::time::sleep(Duration::from_secs_f64((simulated_s / self.desk.speedup.max(0.01)).max(0.05))).await;
    }

    /// The duty officer of `post`, signed in as their phone is (a one-time code).
    fn officer(&self, post: &Post) -> Arc<Caller> {
        let mut officers = self.officers.lock().unwrap_or_else(|e| e.into_inner());
        officers
            .entry(post.officer.clone())
            .or_insert_with(|| {
                Arc::new(Caller::Person(Session::with_code(
                    self.desk.client.clone(),
                    self.desk.url.clone(),
                    self.admin_token.clone(),
                    post.officer.clone(),
                    "post_officer",
                )))
            })
            .clone()
    }

    /// One API call as `caller`: its JSON answer, or an error naming the status and the
    /// server's message. A refused session (401) signs in again and asks once more.
    async fn call(
        &self,
        caller: &Caller,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        for attempt in 0..2 {
            let token = caller.token().await?;
            let mut req =
                self.desk.client.request(method.clone(), format!("{}{path}", self.desk.url)).bearer_auth(&token);
            if let Some(body) = &body {
                req = req.json(body);
            }
            let r = req.send().await.with_context(|| format!("{method} {path}"))?;
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            if status == reqwest::StatusCode::UNAUTHORIZED && attempt == 0 {
                caller.refused(&token).await;
                continue;
            }
            anyhow::ensure!(status.is_success(), "{method} {path}: {status} {text}");
            return Ok(if text.is_empty() { Value::Null } else { serde_json::from_str(&text).context("not JSON")? });
        }
        anyhow::bail!("{method} {path}: the session was refused twice")
    }

    async fn as_mediator(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        self.call(&self.mediator, method, path, body).await
    }

    /// The venues to mediate at; asked again while there are none.
    async fn venues(&self) -> Vec<String> {
        let mut venues = self.venues.lock().await;
        if venues.is_empty() {
            match self.as_mediator(reqwest::Method::GET, "/api/v1/mediation/venues", None).await {
                Ok(answer) => *venues = venue_ids(&answer),
                Err(e) => tracing::debug!(error = %format!("{e:#}"), "no mediation venues"),
            }
        }
        venues.clone()
    }
}

/// The venue ids of a venues answer (`{"venues": [{"venue_id", …}]}`).
fn venue_ids(answer: &Value) -> Vec<String> {
    answer["venues"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["venue_id"].as_str().map(str::to_owned))
        .collect()
}

/// A place near `centre`: [`NEAR_POST_M`] away in a random direction.
fn near(centre: Point<f64>, rng: &mut Rng) -> Point<f64> {
    let (distance_m, bearing) = (rng.range(NEAR_POST_M), rng.range(0.0..std::f64::consts::TAU));
    offset(centre, distance_m * bearing.cos(), distance_m * bearing.sin())
}

/// An illustrative person: a name the demo's name list makes from `seed`, and a number
/// that is no one's (Dazhu's area code followed by zeros, which no local number starts
/// with).
fn demo_party(seed: u64) -> (String, String) {
    (demo_name(&format!("party-{seed}")), format!("08180000{:03}", seed % 1000))
}

/// A walk-in dispute: the body of `POST /api/v1/mediation` at `place`.
fn draw_walk_in(rng: &mut Rng, place: Point<f64>) -> Value {
    let (dispute_type, summary) = WALK_INS[rng.below(WALK_INS.len())];
    let parties: Vec<Value> = (0..2)
        .map(|_| {
            let (name, phone) = demo_party(rng.next_u64());
            // The other side is not always there to give a number.
            if rng.unit() < 0.5 {
                json!({"name": name, "phone": phone})
            } else {
                json!({"name": name})
            }
        })
        .collect();
    json!({"dispute_type": dispute_type, "summary": summary, "parties": parties, "lon": place.x(), "lat": place.y()})
}

/// After-hours business registered at `post`: the body of `POST /api/v1/referrals`.
fn draw_referral(rng: &mut Rng, post: &str) -> Value {
    let (business, summary) = BUSINESS[rng.below(BUSINESS.len())];
    let (name, phone) = demo_party(rng.next_u64());
    json!({"business": business, "person": {"name": name, "phone": phone}, "summary": summary, "post_id": post})
}

/// What the office does next with a case, from the case as the server answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CaseStep {
    Accept,
    Decline,
    Session,
    Outcome,
    FollowUp,
    /// Nothing: followed up, declined, or a state this simulator does not know.
    Done,
}

/// The next step of `case`; `decline` says whether a pending case is declined.
fn next_step(case: &Value, decline: bool) -> CaseStep {
    match case["status"].as_str() {
        Some("pending") if decline => CaseStep::Decline,
        Some("pending") => CaseStep::Accept,
        Some("accepted") if case["sessions"].as_array().is_none_or(Vec::is_empty) => CaseStep::Session,
        Some("accepted") => CaseStep::Outcome,
        Some("mediated") => CaseStep::FollowUp,
        _ => CaseStep::Done,
    }
}

/// The oldest item of `list` (`{"cases": […]}` or another list) whose `status` is
/// `status` and whose `id_field` is not in `in_hand`.
fn oldest_waiting(list: &Value, id_field: &str, status: &str, in_hand: &HashSet<i64>) -> Option<i64> {
    let items = list.as_object()?.values().find_map(Value::as_array)?;
    items
        .iter()
        .filter(|c| c["status"] == status)
        .filter_map(|c| c[id_field].as_i64())
        .filter(|id| !in_hand.contains(id))
        .min()
}

/// Runs the joint work until dropped (dropping it stops every task in hand).
pub(crate) async fn run_joint(joint: Arc<Joint>, seed: u64) {
    if joint.posts.is_empty() {
        return;
    }
    let mut rng = Rng::new(seed);
    let mut parts = JoinSet::new();
    parts.spawn(walk_ins(joint.clone(), rng.next_u64()));
    parts.spawn(referrals(joint.clone(), rng.next_u64()));
    parts.spawn(office(joint.clone(), rng.next_u64()));
    parts.spawn(visits(joint.clone(), rng.next_u64()));
    while parts.join_next().await.is_some() {}
}

/// Walk-in disputes registered at the posts by their officers.
async fn walk_ins(joint: Arc<Joint>, seed: u64) {
    let mut rng = Rng::new(seed);
    loop {
        joint.sleep(rng.exp(MEAN_WALK_IN_GAP_S)).await;
        let post = &joint.posts[rng.below(joint.posts.len())];
        let place = near(post.point, &mut rng);
        let body = draw_walk_in(&mut rng, place);
        match joint.call(&joint.officer(post), reqwest::Method::POST, "/api/v1/mediation", Some(body)).await {
            Ok(answer) => {
                tracing::debug!(post = %post.id, case = ?case_of(&answer)["case_id"].as_i64(), "walk-in dispute registered")
            }
            Err(e) => tracing::debug!(post = %post.id, error = %format!("{e:#}"), "walk-in dispute not registered"),
        }
    }
}

/// After-hours business registered at the posts for the judicial office.
async fn referrals(joint: Arc<Joint>, seed: u64) {
    let mut rng = Rng::new(seed);
    loop {
        joint.sleep(rng.exp(MEAN_REFERRAL_GAP_S)).await;
        let post = &joint.posts[rng.below(joint.posts.len())];
        let body = draw_referral(&mut rng, &post.id);
        match joint.call(&joint.officer(post), reqwest::Method::POST, "/api/v1/referrals", Some(body)).await {
            Ok(_) => tracing::debug!(post = %post.id, "referral registered"),
            Err(e) => tracing::debug!(post = %post.id, error = %format!("{e:#}"), "referral not registered"),
        }
    }
}

/// The office's desk: every round, the referrals handed over and the pending cases, each
/// taken into its own task while there is room.
async fn office(joint: Arc<Joint>, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut in_hand = JoinSet::new();
    loop {
        joint.sleep(DESK_ROUND_S).await;
        while in_hand.try_join_next().is_some() {}
        if let Some(id) = waiting(
            &joint,
            "/api/v1/referrals?status=handed&limit=100",
            "referral_id",
            "handed",
            &joint.referrals,
            MAX_REFERRALS_IN_HAND,
        )
        .await
        {
            in_hand.spawn(see_referral(joint.clone(), id, rng.next_u64()));
        }
        if let Some(id) = waiting(
            &joint,
            "/api/v1/mediation?status=pending&limit=100",
            "case_id",
            "pending",
            &joint.cases,
            MAX_CASES_IN_HAND,
        )
        .await
        {
            in_hand.spawn(see_case(joint.clone(), id, rng.next_u64()));
        }
    }
}

/// The oldest item waiting in the list at `path`, marked in hand; `None` when none waits,
/// the hand is full, or the list cannot be read.
async fn waiting(
    joint: &Joint,
    path: &str,
    id_field: &str,
    status: &str,
    hand: &Mutex<HashSet<i64>>,
    max: usize,
) -> Option<i64> {
    if hand.lock().unwrap_or_else(|e| e.into_inner()).len() >= max {
        return None;
    }
    let list = match joint.as_mediator(reqwest::Method::GET, path, None).await {
        Ok(list) => list,
        Err(e) => {
            tracing::debug!(error = %format!("{e:#}"), "the office's queue was not read");
            return None;
        }
    };
    let mut hand = hand.lock().unwrap_or_else(|e| e.into_inner());
    let id = oldest_waiting(&list, id_field, status, &hand)?;
    hand.insert(id);
    Some(id)
}

/// The case in an answer that wraps it (`{"case": …}`) or is it.
fn case_of(answer: &Value) -> &Value {
    if answer["case"].is_object() {
        &answer["case"]
    } else {
        answer
    }
}

/// One referral taken up and, later, done.
async fn see_referral(joint: Arc<Joint>, id: i64, seed: u64) {
    let mut rng = Rng::new(seed);
    joint.sleep(rng.range(REFERRAL_STEP_S)).await;
    let steps = [("take", json!({})), ("done", json!({"note": "已电话联系当事人，按约定到所办理完毕"}))];
    for (step, body) in steps {
        let path = format!("/api/v1/referrals/{id}/{step}");
        if let Err(e) = joint.as_mediator(reqwest::Method::POST, &path, Some(body)).await {
            tracing::debug!(referral = id, step, error = %format!("{e:#}"), "referral step refused");
            break;
        }
        tracing::debug!(referral = id, step, "referral step");
        joint.sleep(rng.range(REFERRAL_STEP_S) * 2.0).await;
    }
    joint.referrals.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
}

/// One case through its steps, each after a human delay, as the server's state says.
async fn see_case(joint: Arc<Joint>, id: i64, seed: u64) {
    let mut rng = Rng::new(seed);
    let decline = rng.unit() < DECLINE_SHARE;
    // Accept, session, outcome, follow-up: four steps, and a spare for a repeat.
    for _ in 0..5 {
        joint.sleep(rng.range(CASE_STEP_S)).await;
        let path = format!("/api/v1/mediation/{id}");
        let case = match joint.as_mediator(reqwest::Method::GET, &path, None).await {
            Ok(answer) => case_of(&answer).clone(),
            Err(e) => {
                tracing::debug!(case = id, error = %format!("{e:#}"), "case not read");
                break;
            }
        };
        let step = next_step(&case, decline);
        let Some((path, body)) = case_step(&joint, id, step, &case, &mut rng).await else { break };
        match joint.as_mediator(reqwest::Method::POST, &path, Some(body)).await {
            Ok(_) => tracing::debug!(case = id, ?step, "mediation step"),
            Err(e) => {
                tracing::debug!(case = id, ?step, error = %format!("{e:#}"), "mediation step refused");
                break;
            }
        }
    }
    joint.cases.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
}

/// The call that takes `step` on case `id`: its path and body; `None` when done.
async fn case_step(joint: &Joint, id: i64, step: CaseStep, case: &Value, rng: &mut Rng) -> Option<(String, Value)> {
    let base = format!("/api/v1/mediation/{id}");
    let pick = |rng: &mut Rng, list: &[&'static str]| list[rng.below(list.len())];
    Some(match step {
        CaseStep::Accept => {
            let venues = joint.venues().await;
            let venue = venues.get(rng.below(venues.len()))?.clone();
            let mediator = format!("mediator-{:02}", rng.below(MEDIATORS) + 1);
            (
                format!("{base}/accept"),
                json!({"mediator_id": mediator, "venue_id": venue, "note": "已电话通知双方当事人"}),
            )
        }
        CaseStep::Decline => (format!("{base}/decline"), json!({"reason": "已进入诉讼程序，不属于人民调解受理范围"})),
        CaseStep::Session => {
            // A session an hour or two on, at the venue the case was accepted to.
            let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let starts = rfc3339(now_s + 3600 + rng.below(3600) as u64);
            let mut body = json!({"starts": starts, "note": "请双方携带相关证明材料"});
            if let Some(venue) = case["venue_id"].as_str() {
                body["venue_id"] = json!(venue);
            }
            (format!("{base}/sessions"), body)
        }
        CaseStep::Outcome => {
            let agreed = rng.unit() < AGREEMENT_SHARE;
            let outcome = if agreed { pick(rng, &OUTCOMES_AGREED) } else { pick(rng, &OUTCOMES_FAILED) };
            let kind = ["people", "people", "people", "judicial", "administrative"][rng.below(5)];
            (base, json!({"mediation_type": kind, "outcome": outcome, "success": agreed}))
        }
        CaseStep::FollowUp => (format!("{base}/follow-up"), json!({"note": pick(rng, &FOLLOW_UPS)})),
        CaseStep::Done => return None,
    })
}

/// Home visits: the mediator assigns one near a post to its duty officer, whose phone
/// is free, and the officer's phone carries it out.
async fn visits(joint: Arc<Joint>, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut in_hand = JoinSet::new();
    loop {
        joint.sleep(rng.exp(MEAN_VISIT_GAP_S)).await;
        while in_hand.try_join_next().is_some() {}
        if in_hand.len() >= MAX_VISITS_IN_HAND {
            continue;
        }
        let post = joint.posts[rng.below(joint.posts.len())].clone();
        let Some(phone) = post.phone else { continue };
        // A phone on an incident is not sent on a visit too.
        let Some(claim) = Claim::take(&joint.desk, phone) else { continue };
        in_hand.spawn(see_visit(joint.clone(), post, claim, rng.next_u64()));
    }
}

/// One home visit: assigned, driven to, arrived at, completed; the phone back on its beat.
async fn see_visit(joint: Arc<Joint>, post: Post, claim: Claim, seed: u64) {
    let mut rng = Rng::new(seed);
    let place = near(post.point, &mut rng);
    let (name, phone) = demo_party(rng.next_u64());
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let body = json!({"person": {"name": name, "phone": phone}, "lon": place.x(), "lat": place.y(),
        "reason": VISIT_REASONS[rng.below(VISIT_REASONS.len())], "due": rfc3339(now_s + 2 * 86_400),
        "assignee_id": post.officer});
    let visit = match joint.as_mediator(reqwest::Method::POST, "/api/v1/home-visits", Some(body)).await {
        Ok(answer) => answer.get("visit").unwrap_or(&answer)["visit_id"].as_i64(),
        Err(e) => {
            tracing::debug!(post = %post.id, error = %format!("{e:#}"), "home visit not assigned");
            None
        }
    };
    let Some(id) = visit else { return claim.release().await };
    let officer = joint.officer(&post);
    if let Err(e) = carry_out(&joint, &officer, &claim, id, place, &mut rng).await {
        tracing::debug!(visit = id, error = %format!("{e:#}"), "home visit not carried out");
    }
    claim.release().await;
}

/// The officer's phone drives to the visit's place, arrives, stays and completes it.
async fn carry_out(
    joint: &Joint,
    officer: &Caller,
    claim: &Claim,
    id: i64,
    place: Point<f64>,
    rng: &mut Rng,
) -> anyhow::Result<()> {
    joint.sleep(rng.range(CASE_STEP_S)).await;
    let drive_s = claim.send_to(place).await.context("the phone has no position")?;
    let give_up =
        tokio::time::Instant::now() + Duration::from_secs_f64((drive_s * 2.0 + 600.0) / joint.desk.speedup.max(0.01));
    loop {
        let here = joint.desk.here(claim.unit()).context("the phone has no position")?;
        if Haversine.distance(here, place) <= ARRIVE_M || tokio::time::Instant::now() > give_up {
            break;
        }
        tokio::time::sleep(joint.desk.tick).await;
    }
    // Two reports at the place, so that the server's last fix is there.
    tokio::time::sleep(joint.desk.tick * 2).await;
    let path = format!("/api/v1/home-visits/{id}/arrive");
    joint.call(officer, reqwest::Method::POST, &path, Some(json!({}))).await?;
    joint.sleep(rng.range(VISIT_STAY_S)).await;
    let path = format!("/api/v1/home-visits/{id}/complete");
    let body = json!({"note": "已上门办理，当事人签字确认", "photos_base64": []});
    joint.call(officer, reqwest::Method::POST, &path, Some(body)).await?;
    tracing::debug!(visit = id, "home visit done");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_office_takes_each_case_to_its_next_step_by_its_state() {
        // (the case, whether a pending one is declined, the step)
        let rows = [
            (json!({"status": "pending"}), false, CaseStep::Accept),
            (json!({"status": "pending"}), true, CaseStep::Decline),
            (json!({"status": "accepted"}), true, CaseStep::Session),
            (json!({"status": "accepted", "sessions": []}), false, CaseStep::Session),
            (json!({"status": "accepted", "sessions": [{"session_no": 1}]}), false, CaseStep::Outcome),
            (json!({"status": "mediated"}), false, CaseStep::FollowUp),
            (json!({"status": "followed_up"}), false, CaseStep::Done),
            (json!({"status": "declined"}), false, CaseStep::Done),
            (json!({"status": "something new"}), false, CaseStep::Done),
            (json!({}), false, CaseStep::Done),
        ];
        for (case, decline, want) in rows {
            assert_eq!(next_step(&case, decline), want, "{case}");
        }
    }

    #[test]
    fn the_oldest_waiting_item_not_in_hand_is_taken() {
        let list = json!({"cases": [
            {"case_id": 9, "status": "pending"}, {"case_id": 4, "status": "accepted"},
            {"case_id": 7, "status": "pending"}, {"case_id": 5, "status": "pending"}]});
        // (in hand, the expected choice)
        let rows: [(&[i64], Option<i64>); 4] = [(&[], Some(5)), (&[5], Some(7)), (&[5, 7, 9], None), (&[4], Some(5))];
        for (hand, want) in rows {
            let hand: HashSet<i64> = hand.iter().copied().collect();
            assert_eq!(oldest_waiting(&list, "case_id", "pending", &hand), want, "{hand:?}");
        }
        assert_eq!(oldest_waiting(&json!({"error": "x"}), "case_id", "pending", &HashSet::new()), None);
        assert_eq!(oldest_waiting(&Value::Null, "case_id", "pending", &HashSet::new()), None);
        let referrals =
            json!({"referrals": [{"referral_id": 3, "status": "handed"}, {"referral_id": 2, "status": "taken"}]});
        assert_eq!(oldest_waiting(&referrals, "referral_id", "handed", &HashSet::new()), Some(3));
    }

    #[test]
    fn walk_ins_are_near_the_post_with_named_parties_and_the_same_for_the_same_seed() {
        let post = Point::new(107.21, 30.74);
        let draw = |seed| {
            let mut rng = Rng::new(seed);
            let place = near(post, &mut rng);
            draw_walk_in(&mut rng, place)
        };
        for seed in 0..50 {
            let body = draw(seed);
            let place = Point::new(body["lon"].as_f64().unwrap(), body["lat"].as_f64().unwrap());
            let m = Haversine.distance(post, place);
            assert!((NEAR_POST_M.start - 1.0..=NEAR_POST_M.end + 1.0).contains(&m), "{m} m from the post");
            assert!(WALK_INS.iter().any(|(t, _)| body["dispute_type"] == *t));
            let parties = body["parties"].as_array().unwrap();
            assert_eq!(parties.len(), 2);
            for p in parties {
                assert!(!p["name"].as_str().unwrap().is_empty());
                if let Some(phone) = p["phone"].as_str() {
                    assert!(phone.len() == 11 && phone.starts_with("08180000"), "{phone}");
                }
            }
            assert_eq!(draw(seed), body, "seeded");
        }
    }

    #[test]
    fn a_referral_names_its_post_and_a_business_the_api_knows() {
        let mut rng = Rng::new(7);
        for _ in 0..20 {
            let body = draw_referral(&mut rng, "post-03");
            assert_eq!(body["post_id"], "post-03");
            assert!(BUSINESS.iter().any(|(b, _)| body["business"] == *b));
            assert!(body["person"]["name"].is_string() && body["person"]["phone"].is_string());
        }
    }

    #[test]
    fn venue_ids_are_read_from_the_venues_answer() {
        let answer =
            json!({"venues": [{"venue_id": "v-centre", "name": "联调中心"}, {"name": "no id"}, {"venue_id": "v-2"}]});
        assert_eq!(venue_ids(&answer), ["v-centre", "v-2"]);
        assert!(venue_ids(&json!({})).is_empty());
    }
}
