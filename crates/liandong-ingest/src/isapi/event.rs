//! The value an ISAPI push (Hikvision's `EventNotificationAlert`) or our alert JSON
//! decodes to: what happened, on which camera, and the plate or face read with it.

use serde::Serialize;

/// A decoded camera alert, from an ISAPI push or our own JSON ([`crate::alert_json`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CameraEvent {
    /// The event type as sent, e.g. `ANPR`, `faceCapture`, `VMD`, `videoloss`.
    pub event_type: String,
    pub kind: EventKind,
    /// `eventState`: `active` while the event lasts, `inactive` when it ends and in
    /// heartbeats. A push without `eventState` is active.
    pub state_active: bool,
    /// How many times the device has pushed this same ongoing event: it counts up while
    /// the event stays active, so a repeat is recognisable.
    pub active_post_count: Option<u32>,
    /// When the event happened, Unix milliseconds; `None` when the device sent no time.
    pub time_ms: Option<i64>,
    pub camera: CameraRef,
    pub plate: Option<PlateRead>,
    pub face: Option<FaceRead>,
    /// `eventDescription`, e.g. `ANPR`, `Motion alarm`.
    pub description: Option<String>,
    /// The JPEG snapshots that came with the push, each verified to start with FF D8.
    /// Not serialised: they are stored as files, not as JSON.
    #[serde(skip)]
    pub images: Vec<Vec<u8>>,
}

/// What an event means to the command centre.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A licence plate read (`ANPR`, `vehicleDetection`).
    Anpr,
    /// A face capture or face match (`faceCapture`, `FaceDetection`, `faceSnapMatch`, ...).
    Face,
    /// An illegal-parking capture with the plate of the vehicle parked: the event types of
    /// [`super::fields::PARKING_TYPES`], or an ANPR push whose violation says illegal
    /// parking ([`super::fields::is_illegal_parking`]).
    Parking,
    /// `eventState` inactive: the end of an event, or the periodic keep-alive NVRs send
    /// as an inactive `videoloss` with `activePostCount` 0.
    Heartbeat,
    /// Every other event type, known (`VMD`, `linedetection`) or not.
    Other,
}

/// Which camera sent the event, as far as the push says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CameraRef {
    /// Our camera id (`camera_id` in [`crate::alert_json`]); ISAPI pushes have none and
    /// are matched to a camera by address.
    pub id: Option<String>,
    /// `ipAddress` (or `ipv6Address`), as sent.
    pub ip: Option<String>,
    /// `macAddress`, as sent.
    pub mac: Option<String>,
    /// `channelID`: the video channel on the device, 1-based on cameras; NVR heartbeats
    /// use 0.
    pub channel: Option<u32>,
    /// `channelName`, the name set on the device (often the site, e.g. `G318 K2105`).
    pub channel_name: Option<String>,
}

/// A licence plate read (`<ANPR>` block).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlateRead {
    /// `licensePlate` as the camera read it, e.g. `川S12345` or `无车牌`.
    pub raw: String,
    /// [`crate::plate::normalize_plate`] of `raw`: `None` when the camera read no plate.
    pub normalized: Option<String>,
    /// `plateColor`: `blue`, `yellow`, `white`, `black`, `green`, ...
    pub color: Option<String>,
    /// `vehicleType`: `vehicle`, `truck`, `SUVMPV`, ...
    pub vehicle_type: Option<String>,
    /// `direction`: `forward`, `reverse`, `unknown`.
    pub direction: Option<String>,
    /// `confidenceLevel`, 0 to 100.
    pub confidence: Option<f64>,
    /// `line`: the lane number the vehicle was in.
    pub lane: Option<u32>,
    /// `vehicleInfo/color`, the body colour.
    pub vehicle_color: Option<String>,
    /// `vehicleInfo` brand: a name where the device sends one, else Hikvision's numeric
    /// `vehicleLogoRecog` code as sent.
    pub vehicle_brand: Option<String>,
}

/// A face capture or match (`<faceCapture>`, `<FaceCaptureList>`, `<faceSnap>`, ...).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaceRead {
    /// The best identifier the device sent; see [`super::FACE_ID_KEYS`] for the order.
    pub person_id: Option<String>,
    /// `similarity` to the matched person (or the `confidence` beside the id), on the
    /// device's scale (0 to 1 or 0 to 100, by model).
    pub similarity: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn event_serialises_without_images() {
        let mut event = anpr_event();
        event.images = vec![jpeg(1)];
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["kind"], "anpr");
        assert_eq!(json["plate"]["normalized"], "川S12345");
        assert!(json.get("images").is_none(), "{json}");
    }
}
