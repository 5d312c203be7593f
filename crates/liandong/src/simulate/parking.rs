//! The county seat's parking-capture cameras (违停抓拍): registered with push keys, they
//! push the plates of parked cars as Hikvision ISAPI `illegalParking` alarms. A few cars
//! stand at each camera for a while and are captured again and again, so that the server's
//! one alert per plate, no-parking fence and window shows; cars at a school gate raise
//! an alert only at the gate's hours (China time), those in a fire lane at any hour.

use std::time::Duration;

use super::options::Args;
use super::support::{rfc3339, run_seed, Rng};

/// A parking camera the simulator pushes captures for.
pub(super) struct ParkingCamera {
    id: String,
    /// Its push key.
    key: String,
}

/// How many cars stand at a camera at once; one leaves and another comes now and then.
const CARS_PER_CAMERA: usize = 3;

/// Gives the map's parking cameras push keys.
pub(super) async fn setup(
    client: &reqwest::Client,
    args: &Args,
    map: &liandong_core::CountyMap,
    suffix: &str,
) -> anyhow::Result<Vec<ParkingCamera>> {
    let mut out = Vec::new();
    for cam in map.cameras.iter().filter(|c| c.kind.as_deref() == Some("parking")) {
        let key = format!("sim-{suffix}-{}", cam.id);
        let body = serde_json::json!({"camera_id": cam.id, "name": cam.name, "kind": "parking",
            "lon": cam.point.x(), "lat": cam.point.y(), "key": key});
        let r = client.post(format!("{}/api/v1/cameras", args.url)).bearer_auth(&args.token).json(&body).send().await?;
        anyhow::ensure!(r.status().is_success(), "registering camera {}: {}", cam.id, r.status());
        out.push(ParkingCamera { id: cam.id.clone(), key });
    }
    tracing::info!(cameras = out.len(), "simulator set up parking cameras");
    Ok(out)
}

/// A plate of the county (川S) drawn at random.
fn plate(rand: &mut impl FnMut() -> u64) -> String {
    format!("川S{}{:04}", (b'A' + (rand() % 26) as u8) as char, rand() % 10_000)
}

/// Every few (simulated) seconds a parking camera captures one of the cars standing at
/// it; about one capture in six, a car drives off and another parks.
pub(super) async fn push_captures(client: reqwest::Client, args: Args, cameras: Vec<ParkingCamera>) {
    let mut rng = Rng::new(run_seed() ^ 0x9a2c_11d7);
    let mut rand = move || rng.next_u64();
    let mut parked: Vec<Vec<String>> =
        cameras.iter().map(|_| (0..CARS_PER_CAMERA).map(|_| plate(&mut rand)).collect()).collect();
    let mut tick = tokio::time::interval(Duration::from_secs_f64((6.0 / args.speedup.max(0.01)).max(0.05)));
    loop {
        tick.tick().await;
        let i = (rand() % cameras.len() as u64) as usize;
        let car = (rand() % CARS_PER_CAMERA as u64) as usize;
        if rand() % 6 == 0 {
            parked[i][car] = plate(&mut rand);
        }
        let ParkingCamera { id, key } = &cameras[i];
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<EventNotificationAlert version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">\n<channelID>1</channelID>\n<dateTime>{}</dateTime>\n<activePostCount>1</activePostCount>\n<eventType>illegalParking</eventType>\n<eventState>active</eventState>\n<eventDescription>illegal parking</eventDescription>\n<ANPR>\n<licensePlate>{}</licensePlate>\n<confidenceLevel>{}</confidenceLevel>\n<plateColor>blue</plateColor>\n<vehicleType>vehicle</vehicleType>\n</ANPR>\n</EventNotificationAlert>",
            rfc3339(now),
            parked[i][car],
            88 + rand() % 12
        );
        let url = format!("{}/isapi/events?camera={id}&key={key}", args.url);
        match client.post(url).header("content-type", "application/xml").body(xml).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(camera = %id, status = %r.status(), "parking capture refused"),
            Err(e) => tracing::warn!(camera = %id, error = %e, "parking capture not delivered"),
        }
    }
}
