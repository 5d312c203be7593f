//! The grid members: now and then one files a report near a post, so that the review
//! queue and the mediation centre have work in the demo.

use std::time::Duration;

use super::options::Args;

/// What grid members report in the demo (illustrative).
const DEMO_REPORTS: [(&str, &str); 6] = [
    ("dispute", "两户村民因宅基地边界发生争执，请求调解"),
    ("hazard", "村道边坡有落石，需设置警示"),
    ("suspicious", "陌生车辆连续两晚停在村小学附近"),
    ("traffic", "集镇路口三轮车占道，造成拥堵"),
    ("fire", "山林边缘有人焚烧秸秆，火势有扩大迹象"),
    ("other", "独居老人家中无人应门，请民警上门查看"),
];

/// About once a minute (simulated) a grid member files a report a few hundred metres
/// from a post, so that the review queue and the mediation centre have work in the demo.
pub(super) async fn file_grid_reports(client: reqwest::Client, args: Args, places: Vec<(f64, f64)>) {
    let mut n: u64 = 0;
    let mut tick = tokio::time::interval(Duration::from_secs_f64((60.0 / args.speedup.max(0.01)).max(0.5)));
    tick.tick().await;
    loop {
        tick.tick().await;
        n += 1;
        let (lon, lat) = places[(n as usize * 7) % places.len()];
        let (category, text) = DEMO_REPORTS[(n as usize) % DEMO_REPORTS.len()];
        // A few hundred metres off the post, in a direction that turns with each report.
        let angle = n as f64 * 2.4;
        let body = serde_json::json!({"category": category, "text": text,
            "lon": lon + 0.004 * angle.cos(), "lat": lat + 0.003 * angle.sin()});
        match client.post(format!("{}/api/v1/reports", args.url)).bearer_auth(&args.token).json(&body).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(status = %r.status(), "grid report refused"),
            Err(e) => tracing::warn!(error = %e, "grid report not delivered"),
        }
    }
}
