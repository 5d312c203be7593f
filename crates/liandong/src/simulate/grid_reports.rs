//! The grid members: now and then one files a report from their own village grid, so
//! that the review queue and the mediation centre have work in the demo. Each files it
//! as their phone would, signed in with a one-time code (the reporter is then the
//! person); a member is signed in when they first report, and the session is kept.

use std::collections::HashMap;
use std::time::Duration;

use super::options::Args;
use super::signin::Session;

/// What grid members report in the demo (illustrative).
const DEMO_REPORTS: [(&str, &str); 6] = [
    ("dispute", "两户村民因宅基地边界发生争执，请求调解"),
    ("hazard", "村道边坡有落石，需设置警示"),
    ("suspicious", "陌生车辆连续两晚停在村小学附近"),
    ("traffic", "集镇路口三轮车占道，造成拥堵"),
    ("fire", "山林边缘有人焚烧秸秆，火势有扩大迹象"),
    ("other", "独居老人家中无人应门，请民警上门查看"),
];

/// A grid member and a point inside their grid (lon, lat).
#[derive(Debug, Clone)]
pub(super) struct GridMember {
    pub person_id: String,
    pub place: (f64, f64),
}

/// About once a minute (simulated) a grid member files a report from inside their grid,
/// so that the review queue and the mediation centre have work in the demo.
pub(super) async fn file_grid_reports(client: reqwest::Client, args: Args, members: Vec<GridMember>) {
    let mut n: u64 = 0;
    let mut sessions: HashMap<usize, Session> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64((60.0 / args.speedup.max(0.01)).max(0.5)));
    tick.tick().await;
    loop {
        tick.tick().await;
        n += 1;
        let who = (n as usize * 7) % members.len();
        let member = &members[who];
        // At most one session per grid member: the phone stays signed in.
        let session = sessions.entry(who).or_insert_with(|| {
            Session::with_code(
                client.clone(),
                args.url.clone(),
                args.token.clone(),
                member.person_id.clone(),
                "grid_member",
            )
        });
        let (lon, lat) = member.place;
        let (category, text) = DEMO_REPORTS[(n as usize) % DEMO_REPORTS.len()];
        // A little way off the grid's inner point, in a direction that turns with each
        // report.
        let angle = n as f64 * 2.4;
        let body = serde_json::json!({"category": category, "text": text,
            "lon": lon + 0.0005 * angle.cos(), "lat": lat + 0.0004 * angle.sin()});
        if let Err(e) = file(&client, &args.url, session, &body).await {
            tracing::warn!(person = %member.person_id, error = %format!("{e:#}"), "grid report not filed");
        }
    }
}

/// Files one report with the member's session; a refused session (401) signs in again
/// and the report is sent once more.
async fn file(client: &reqwest::Client, url: &str, session: &Session, body: &serde_json::Value) -> anyhow::Result<()> {
    for _ in 0..2 {
        let token = session.token().await?;
        let r = client.post(format!("{url}/api/v1/reports")).bearer_auth(&token).json(body).send().await?;
        match r.status() {
            s if s.is_success() => return Ok(()),
            reqwest::StatusCode::UNAUTHORIZED => session.refused(&token).await,
            s => anyhow::bail!("refused: {s} {}", r.text().await.unwrap_or_default()),
        }
    }
    anyhow::bail!("the session was refused twice")
}
