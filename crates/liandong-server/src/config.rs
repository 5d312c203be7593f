//! The server's typed configuration: a TOML file (`config/default.toml`, or the file
//! named by `LIANDONG_CONFIG`) plus environment overrides. Unknown keys are reported
//! as warnings, not ignored silently; secrets are held in [`Secret`], whose `Debug`
//! never shows them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use liandong_core::jump::JumpFilter;
use liandong_store::Durability;
use serde::Deserialize;

use crate::role::Role;

/// A string that must never reach a log: `Debug` prints `"***"`.
#[derive(Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory of the embedded store. This and the other paths of the file (`maps`,
    /// `web_dir`, `tls.cert`, `tls.key`), when relative, are taken from the server's
    /// working directory, as the repository's own configs run from the checkout expect;
    /// the installed config (`config/package.toml`) gives them absolute.
    pub data_dir: PathBuf,
    /// Map directory (see `maps/dazhu/README.md` for its layout).
    pub maps: PathBuf,
    /// Directory of the web page served at `/`.
    pub web_dir: PathBuf,
    /// Demo mode: the tokens are published in the README, so the server refuses to
    /// listen on anything but loopback.
    pub demo: bool,
    pub store: StoreConfig,
    pub ingest: IngestConfig,
    pub live: LiveConfig,
    pub alerts: AlertConfig,
    pub planning: PlanningConfig,
    /// Planning speeds by road class (km/h), for travel times on the road graph.
    pub roads: liandong_core::road::RoadSpeeds,
    /// Bearer tokens of users, by role.
    pub tokens: Vec<TokenConfig>,
    /// How long the server waits for a client, and how many connections it keeps.
    pub http: HttpConfig,
    /// TLS on the listener; plain HTTP when absent.
    pub tls: Option<TlsConfig>,
    /// Signed-in sessions' lifetimes, sign-in codes and the limits on failed sign-ins.
    pub sessions: SessionsConfig,
    /// The joint mediation centre's time limits and the dispute-turned-criminal check.
    pub mediation: MediationConfig,
    /// The judicial office's hours, for referrals registered after hours.
    pub judicial_office: JudicialOfficeConfig,
    /// Home visits (上门办理): how near the place an arrival must be.
    pub home_visits: HomeVisitsConfig,
    /// Cameras' liveness: how long a silence makes a camera offline.
    pub cameras: CamerasConfig,

    /// The JT/T 808 listener for the patrol cars' BeiDou terminals; off when `listen`
    /// is absent.
    pub jt808: Jt808Config,
    /// The clock of the joint work's time limits: the system clock, or one a test sets
    /// (never read from a file).
    #[serde(skip)]
    pub clock: crate::clock::Clock,
}

/// The joint mediation centre (`[mediation]`): each step's time limit, after which the
/// case is escalated once (`mediation_overdue`), and which incidents are checked against
/// the disputes (民转刑).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediationConfig {
    /// A registered case is accepted (mediator and venue) within this many hours.
    pub accept_within_h: u32,
    /// An accepted case has its outcome within this many days.
    pub resolve_within_days: u32,
    /// A mediated case is followed up (回访) within this many days.
    pub follow_up_within_days: u32,
    /// Incident kinds that are crimes: such an incident is checked against disputes.
    pub criminal_kinds: Vec<String>,
    /// An incident this close (metres) to a dispute's place touches it.
    pub repeat_radius_m: f64,
    /// Disputes opened in the last this many days count as recent (open ones always do).
    pub recent_days: u32,
}

impl Default for MediationConfig {
    fn default() -> Self {
        MediationConfig {
            accept_within_h: 24,
            resolve_within_days: 30,
            follow_up_within_days: 7,
            criminal_kinds: ["assault", "injury", "fight", "homicide", "criminal_damage", "arson", "kidnapping"]
                .map(String::from)
                .to_vec(),
            repeat_radius_m: 150.0,
            recent_days: 180,
        }
    }
}

/// Cameras' liveness (`[cameras]`): a camera heard from (any accepted push, heartbeat or
/// event) that then stays silent longer than `offline_after_s` is offline, which raises
/// one `camera_offline` alert per silence; its next push ends the silence.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CamerasConfig {
    /// Seconds of silence after which a camera is offline (60 to 86400). Hikvision
    /// devices send a heartbeat every 30 to 60 s when told to, so the default of 10
    /// minutes is many missed heartbeats, not one lost packet.
    pub offline_after_s: u32,
}

impl Default for CamerasConfig {
    fn default() -> Self {
        CamerasConfig { offline_after_s: 600 }
    }
}

/// The judicial office's hours (司法所), China time: a referral registered while it is
/// closed waits for its next opening, and its time limit counts only open hours.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JudicialOfficeConfig {
    /// Opening ranges of a working day, `"08:30-12:00"`.
    pub hours: Vec<String>,
    /// Weekdays the office works, `mon` … `sun`.
    pub weekdays: Vec<String>,
    /// Public holidays, `YYYY-MM-DD` (the State Council's yearly notice).
    pub holidays: Vec<String>,
    /// Make-up working days (调休), `YYYY-MM-DD`.
    pub workdays: Vec<String>,
    /// Office hours the office has to take a referral up once handed it.
    pub take_up_within_h: f64,
}

impl Default for JudicialOfficeConfig {
    fn default() -> Self {
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
        JudicialOfficeConfig {
            hours: strings(&["08:30-12:00", "14:00-17:30"]),
            weekdays: strings(&["mon", "tue", "wed", "thu", "fri"]),
            holidays: Vec::new(),
            workdays: Vec::new(),
            take_up_within_h: 4.0,
        }
    }
}

impl JudicialOfficeConfig {
    /// The office hours, checked; the error names the key at fault.
    pub fn office_hours(&self) -> Result<liandong_core::office_hours::OfficeHours, ConfigError> {
        let spec = liandong_core::office_hours::OfficeHoursSpec {
            section: "judicial_office",
            hours: &self.hours,
            weekdays: &self.weekdays,
            holidays: &self.holidays,
            workdays: &self.workdays,
        };
        liandong_core::office_hours::OfficeHours::parse(&spec).map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    /// The office time allowed to take a referral up, in milliseconds.
    pub fn take_up_ms(&self) -> i64 {
        (self.take_up_within_h * 3_600_000.0).round() as i64
    }
}

/// Home visits (上门办理).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HomeVisitsConfig {
    /// An arrival counts when the assignee's phone is this near the place, metres.
    pub arrive_within_m: f64,
    /// … and its fix is at most this old, seconds.
    pub fix_max_age_s: u64,
}

impl Default for HomeVisitsConfig {
    fn default() -> Self {
        HomeVisitsConfig { arrive_within_m: 150.0, fix_max_age_s: 300 }
    }
}

/// The JT/T 808 listener (`[jt808]`): the BeiDou terminals of the patrol cars connect
/// here over TCP (see the server's `jt808` module).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Jt808Config {
    /// Address to listen on, `host:port`; absent (the default), no listener.
    pub listen: Option<SocketAddr>,
    /// A connection that sends nothing for this many seconds is closed: three of the
    /// standard's 60 s heartbeats.
    pub idle_timeout_s: u64,
    /// Terminals connected at once; further connections are closed at once.
    pub max_connections: usize,
    /// Bad frames in a row (check code, escapes, lengths) after which a connection is
    /// closed as sending garbage.
    pub max_bad_frames: u32,
}

impl Default for Jt808Config {
    fn default() -> Self {
        Jt808Config { listen: None, idle_timeout_s: 180, max_connections: 2000, max_bad_frames: 8 }
    }
}

/// Sessions opened by signing in (`POST /api/v1/sessions`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionsConfig {
    /// A session unused (not renewed) for this many seconds ends: a desk shift's length,
    /// so that a screen left signed in after the shift stops working.
    pub idle_s: u64,
    /// However often it is renewed, a session ends this many seconds after sign-in.
    pub max_s: u64,
    /// A one-time sign-in code for a phone is good for this many seconds.
    pub code_s: u64,
    /// Failed sign-ins one account may have within `failure_window_s` before further
    /// attempts are refused with 429 until the window has passed.
    pub failures_per_account: u32,
    /// Failed sign-ins one client address may have within `failure_window_s`.
    pub failures_per_address: u32,
    pub failure_window_s: u64,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            idle_s: 12 * 3600,
            max_s: 30 * 86_400,
            code_s: 600,
            failures_per_account: 5,
            failures_per_address: 20,
            failure_window_s: 900,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `postgres://user:password@host:port/db`: the PostgreSQL + PostGIS store instead of
    /// the embedded one. The password makes it a secret.
    pub database_url: Option<Secret>,
    /// `full` (fsync at each group commit) or `normal` (survives a crash, not power loss).
    /// On PostgreSQL the server's `synchronous_commit` decides.
    pub durability: Durability,
    /// Most reports in one group commit.
    pub max_batch: usize,
    /// How often the devices' live states (last fixes, the fences each is in) are written,
    /// milliseconds: behind the reports, in the commit that comes then; 0 writes them
    /// with every commit. Reports are stored before they are answered either way; after
    /// a crash the states are moved on by the reports stored after them. The embedded
    /// store only: on PostgreSQL other instances commit in between, and states go with
    /// every commit.
    pub device_states_every_ms: u64,
    /// Location reports and camera events older than this many days are deleted (each
    /// device's last report stays); 0 keeps everything. On PostgreSQL by whole UTC
    /// months, once all of a month is older (see `retention`).
    pub retention_days: u32,
    /// Camera snapshots and grid members' photos older than this many days are deleted
    /// from `images/` in the data directory; 0 keeps everything.
    pub image_retention_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest request body accepted, bytes.
    pub max_body_bytes: usize,
    /// The GPS jump filter.
    pub jump: JumpFilter,
    /// How old an event (a fix, a camera alarm, a grid report) may be dated and still be
    /// accepted, seconds: a phone that was offline uploads what it buffered; a fix dated
    /// 1970 is a broken clock, refused with the reason.
    pub accept_past_s: u64,
    /// How far ahead of the server's clock an event may be dated and still be accepted,
    /// seconds (fixes between `jump.clock_skew_s` and this are kept but marked).
    pub accept_ahead_s: u64,
    /// Bytes of request bodies read at once, over all requests: a request whose body
    /// would go over waits (up to 10 s, then 503), so that many large bodies at once
    /// cannot take the server's memory.
    pub body_budget_bytes: usize,
    /// Largest body read from a request that names no credentials in its headers or URL
    /// (an OsmAnd form carrying its key in the body, a batch whose items carry theirs).
    pub anonymous_body_bytes: usize,
    /// How long a request waits for its share of `body_budget_bytes`, milliseconds.
    pub body_wait_ms: u64,
    /// Snapshots a camera may have stored per minute (a minute's worth may come at once);
    /// beyond, the alarm is kept and the images are dropped with a warning.
    pub camera_images_per_min: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveConfig {
    /// Events a live client may fall behind before it is resynced with a snapshot.
    pub queue: usize,
}

/// The alert rules' windows.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertConfig {
    /// A repeat of the same read by the same camera within this many seconds raises no
    /// new alert.
    pub dedup_window_s: u32,
    /// More than `storm_max_alerts` alerts from one camera within `storm_window_s` is a
    /// storm: one storm alert replaces the rest (priority 1 hits still pass) until the
    /// camera has been quiet for the window.
    pub storm_max_alerts: u32,
    pub storm_window_s: u32,
    /// A unit not heard from for this many minutes raises one stale-unit alert.
    pub stale_unit_min: u32,
    /// A patrol leader receives the alerts their role is named for only within this many
    /// metres of the team's post (the team's own area); 0: county-wide.
    pub leader_radius_m: u32,
}

/// Hotspot analysis and patrol re-planning.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlanningConfig {
    /// Seconds between scheduled analyses (each followed by a re-plan of every team);
    /// 0 turns the schedule off (on-demand runs still work).
    pub interval_s: u32,
    /// Incidents and alerts of this many days make the analysis.
    pub days: u32,
    /// A plan's time budget: the patrol, from the post back to the post, dwell included.
    pub shift_min: u32,
    /// Time spent at each hotspot a plan visits.
    pub hotspot_dwell_s: u32,
    /// Hotspot cells further than this from a team's post are not considered for it.
    pub reach_m: u32,
    /// How fast the patrols go, km/h: plans are made at this pace at most on every road,
    /// one-way streets both ways (volunteer patrols walk: 5). 0 plans at the road
    /// speeds of `[roads]`, as for patrol cars.
    pub patrol_kph: f64,
}

impl Default for PlanningConfig {
    fn default() -> Self {
        PlanningConfig {
            interval_s: 3600,
            days: 30,
            shift_min: 240,
            hotspot_dwell_s: 300,
            reach_m: 8000,
            patrol_kph: 5.0,
        }
    }
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            dedup_window_s: 60,
            storm_max_alerts: 20,
            storm_window_s: 60,
            stale_unit_min: 10,
            leader_radius_m: 8000,
        }
    }
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig { queue: 16_384 }
    }
}

/// Timeouts and the connection limit of the listener (see `docs/TRANSPORT.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// A request's line and headers must arrive within this many seconds of its first
    /// byte (or of the connection's opening): a client that trickles them is cut off.
    pub header_timeout_s: u32,
    /// A request's body must arrive whole within this many seconds of its headers.
    pub body_timeout_s: u32,
    /// A keep-alive connection with no request for this many seconds is closed, and so
    /// is one whose answer the client stops taking (nothing written for as long).
    pub idle_timeout_s: u32,
    /// Most open connections, upgraded websockets included; lowered at start to stay
    /// below the process's open-file limit. When full, the connection idle the longest
    /// (or still sending its headers) is closed to make room for a new one.
    pub max_connections: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { header_timeout_s: 10, body_timeout_s: 30, idle_timeout_s: 75, max_connections: 16_384 }
    }
}

/// TLS on the listener. The files are read again when they change (checked every
/// `reload_s` seconds) and on SIGHUP; open connections keep the certificate they began
/// with, and a new pair that does not load leaves the old one in service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the certificate chain, the server's certificate first.
    pub cert: PathBuf,
    /// PEM file of the private key (PKCS #8, PKCS #1 or SEC1).
    pub key: PathBuf,
    /// Seconds between checks of the files' modification times; 0: only on SIGHUP.
    #[serde(default = "TlsConfig::default_reload_s")]
    pub reload_s: u32,
}

impl TlsConfig {
    fn default_reload_s() -> u32 {
        10
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub token: Secret,
    pub role: Role,
    /// Who holds the token, for audit logs.
    pub name: String,
    /// The unit (post or team) of a patrol leader or post officer.
    #[serde(default)]
    pub unit_id: Option<String>,
    /// The person (in the people table) the token acts for, if any: escalations and
    /// tasks addressed to that person reach a socket opened with it.
    #[serde(default)]
    pub person_id: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            maps: PathBuf::from("maps/dazhu"),
            web_dir: PathBuf::from("web"),
            demo: false,
            store: StoreConfig::default(),
            ingest: IngestConfig::default(),
            live: LiveConfig::default(),
            alerts: AlertConfig::default(),
            planning: PlanningConfig::default(),
            roads: liandong_core::road::RoadSpeeds::default(),
            tokens: Vec::new(),
            http: HttpConfig::default(),
            tls: None,
            sessions: SessionsConfig::default(),
            mediation: MediationConfig::default(),
            judicial_office: JudicialOfficeConfig::default(),
            home_visits: HomeVisitsConfig::default(),
            cameras: CamerasConfig::default(),

            jt808: Jt808Config::default(),
            clock: crate::clock::Clock::system(),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            database_url: None,
            durability: Durability::Full,
            max_batch: 4096,
            device_states_every_ms: 1000,
            retention_days: 180,
            image_retention_days: 180,
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_body_bytes: 1 << 20,
            jump: JumpFilter::default(),
            accept_past_s: 30 * 86_400,
            accept_ahead_s: 600,
            body_budget_bytes: 64 << 20,
            anonymous_body_bytes: 16 << 10,
            body_wait_ms: 10_000,
            camera_images_per_min: 60,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("environment variable {name}: {reason}")]
    Env { name: &'static str, reason: String },
    #[error("demo tokens are public: refusing to listen on {0}, which is not a loopback address (set demo = false and real tokens)")]
    DemoNotLoopback(SocketAddr),
    #[error("config: {0}")]
    Invalid(String),
}

impl Config {
    /// Parses a config text, returning the config and the dotted paths of unknown keys.
    pub fn parse(text: &str, path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
        let mut unknown = Vec::new();
        let de =
            toml::Deserializer::parse(text).map_err(|source| ConfigError::Parse { path: path.to_owned(), source })?;
        let config: Config = serde_ignored::deserialize(de, |p| unknown.push(p.to_string()))
            .map_err(|source| ConfigError::Parse { path: path.to_owned(), source })?;
        Ok((config, unknown))
    }

    /// Loads the config file named by `LIANDONG_CONFIG` (default
    /// `config/default.toml`), then applies `LIANDONG_LISTEN`, `LIANDONG_DATA_DIR`,
    /// `LIANDONG_MAPS`, `LIANDONG_WEB_DIR`, `LIANDONG_DATABASE_URL` and `LIANDONG_JT808_LISTEN`. `env` is the environment lookup, so tests
    /// can pass their own.
    pub fn load(env: impl Fn(&str) -> Option<String>) -> Result<(Config, Vec<String>), ConfigError> {
        let path = PathBuf::from(env("LIANDONG_CONFIG").unwrap_or_else(|| "config/default.toml".into()));
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
        let (mut config, unknown) = Config::parse(&text, &path)?;
        if let Some(v) = env("LIANDONG_LISTEN") {
            config.listen = v.parse().map_err(|e| ConfigError::Env {
                name: "LIANDONG_LISTEN",
                reason: format!("{e} (expected host:port, e.g. 127.0.0.1:8080)"),
            })?;
        }
        if let Some(v) = env("LIANDONG_DATA_DIR") {
            config.data_dir = v.into();
        }
        if let Some(v) = env("LIANDONG_MAPS") {
            config.maps = v.into();
        }
        if let Some(v) = env("LIANDONG_WEB_DIR") {
            config.web_dir = v.into();
        }
        if let Some(v) = env("LIANDONG_DATABASE_URL").filter(|v| !v.is_empty()) {
            config.store.database_url = Some(Secret::new(v));
        }
        if let Some(v) = env("LIANDONG_JT808_LISTEN") {
            // Empty turns the listener off (a file that sets one, such as the demo's).
            config.jt808.listen = match v.trim() {
                "" => None,
                v => Some(v.parse().map_err(|e| ConfigError::Env {
                    name: "LIANDONG_JT808_LISTEN",
                    reason: format!("{e} (expected host:port, e.g. 127.0.0.1:6808, or empty for off)"),
                })?),
            };
        }
        config.validate()?;
        Ok((config, unknown))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.demo && !self.listen.ip().is_loopback() {
            return Err(ConfigError::DemoNotLoopback(self.listen));
        }
        if let Some(addr) = self.jt808.listen.filter(|a| self.demo && !a.ip().is_loopback()) {
            return Err(ConfigError::DemoNotLoopback(addr));
        }
        let j = &self.jt808;
        if j.idle_timeout_s == 0 || j.max_connections == 0 || j.max_bad_frames == 0 {
            return Err(ConfigError::Invalid(
                "jt808.idle_timeout_s, jt808.max_connections and jt808.max_bad_frames must be at least 1".into(),
            ));
        }
        if let Some(url) = &self.store.database_url {
            let u = url.expose();
            if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
                return Err(ConfigError::Invalid("store.database_url must start with postgres://".into()));
            }
        }
        if self.store.max_batch == 0 {
            return Err(ConfigError::Invalid("store.max_batch must be at least 1".into()));
        }
        if self.live.queue < self.store.max_batch {
            return Err(ConfigError::Invalid(format!(
                "live.queue ({}) must be at least store.max_batch ({}): one group commit must fit in a client's queue",
                self.live.queue, self.store.max_batch
            )));
        }
        self.roads.validate().map_err(|e| ConfigError::Invalid(format!("roads: {e}")))?;
        let a = &self.alerts;
        if a.storm_max_alerts == 0 || a.storm_window_s == 0 || a.stale_unit_min == 0 {
            return Err(ConfigError::Invalid(
                "alerts.storm_max_alerts, alerts.storm_window_s and alerts.stale_unit_min must be at least 1".into(),
            ));
        }
        let p = &self.planning;
        if p.days == 0 || p.days > 365 || p.shift_min == 0 || p.shift_min > 24 * 60 || p.reach_m == 0 {
            return Err(ConfigError::Invalid(
                "planning.days must be 1 to 365, planning.shift_min 1 to 1440 and planning.reach_m at least 1".into(),
            ));
        }
        if !(p.patrol_kph == 0.0 || (1.0..=130.0).contains(&p.patrol_kph)) {
            return Err(ConfigError::Invalid(format!(
                "planning.patrol_kph must be 0 (road speeds) or 1 to 130 km/h, got {}",
                p.patrol_kph
            )));
        }
        if self.ingest.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid("ingest.max_body_bytes must be at least 1024".into()));
        }
        let h = &self.http;
        if h.header_timeout_s == 0 || h.body_timeout_s == 0 || h.idle_timeout_s == 0 || h.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "http.header_timeout_s, http.body_timeout_s, http.idle_timeout_s and http.max_connections must be at least 1"
                    .into(),
            ));
        }
        let sn = &self.sessions;
        if sn.idle_s == 0 || sn.max_s < sn.idle_s || sn.code_s == 0 || sn.failure_window_s == 0 {
            return Err(ConfigError::Invalid(
                "sessions.idle_s, sessions.code_s and sessions.failure_window_s must be at least 1, and sessions.max_s at least sessions.idle_s".into(),
            ));
        }
        if sn.failures_per_account == 0 || sn.failures_per_address == 0 {
            return Err(ConfigError::Invalid(
                "sessions.failures_per_account and sessions.failures_per_address must be at least 1".into(),
            ));
        }
        self.judicial_office.office_hours()?;
        let j = self.judicial_office.take_up_within_h;
        if !(j > 0.0 && j <= 1000.0) {
            return Err(ConfigError::Invalid(
                "judicial_office.take_up_within_h must be more than 0 and at most 1000".into(),
            ));
        }
        let v = &self.home_visits;
        if !(v.arrive_within_m >= 1.0 && v.arrive_within_m <= 10_000.0) || v.fix_max_age_s == 0 {
            return Err(ConfigError::Invalid(
                "home_visits.arrive_within_m must be 1 to 10000 and home_visits.fix_max_age_s at least 1".into(),
            ));
        }
        if !(60..=86_400).contains(&self.cameras.offline_after_s) {
            return Err(ConfigError::Invalid(format!(
                "cameras.offline_after_s must be 60 to 86400 seconds, got {}",
                self.cameras.offline_after_s
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for t in &self.tokens {
            if t.token.expose().len() < 8 {
                return Err(ConfigError::Invalid(format!("token of {} is shorter than 8 characters", t.name)));
            }
            if is_placeholder_token(t.token.expose()) {
                return Err(ConfigError::Invalid(format!(
                    "token of {} is still a placeholder: replace it with a random secret of your own (e.g. the output of `openssl rand -hex 32`)",
                    t.name
                )));
            }
            if !seen.insert(t.token.expose()) {
                return Err(ConfigError::Invalid(format!("token of {} is used twice", t.name)));
            }
        }
        Ok(())
    }
}

/// Words that only a placeholder holds, never a random secret: the installed config
/// (`config/package.toml`) ships its tokens as `REPLACE-…`, printed in every copy of the
/// package, so a server started before the administrator set real ones must refuse to
/// start rather than accept them.
const PLACEHOLDER_WORDS: &[&str] = &["replace", "changeme", "change-me", "placeholder"];

/// Whether a configured token is a placeholder left in place (case-insensitive).
fn is_placeholder_token(token: &str) -> bool {
    let token = token.to_ascii_lowercase();
    PLACEHOLDER_WORDS.iter().any(|w| token.contains(w))
}

/// How many threads the server's two runtimes get: `http` serves the connections and
/// runs the sequencer and the services, `feed` the live feed's sessions (`ws`). The
/// SQLite writer has a thread of its own besides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workers {
    pub http: usize,
    pub feed: usize,
}

impl Workers {
    /// For a machine of `cores`: HTTP gets all but one (the writer's thread and the feed
    /// take the last), the feed half of them; never fewer than one. On two cores one
    /// each: a second HTTP worker there mostly parks and is woken again, a fifth of the
    /// CPU of a report, and a second feed worker delivered no more (BENCHMARKS.md, "The
    /// live feed on a runtime of its own").
    pub fn for_cores(cores: usize) -> Workers {
        Workers { http: cores.saturating_sub(1).max(1), feed: (cores / 2).max(1) }
    }

    /// [`Workers::for_cores`] of this machine (its available parallelism).
    pub fn of_machine() -> Workers {
        Workers::for_cores(std::thread::available_parallelism().map_or(1, usize::from))
    }
}

impl Config {
    /// Days until the judicial office's calendar of public holidays ends, by the deadline
    /// clock (`liandong_judicial_calendar_days_left`); None when it lists no day (or,
    /// never in a validated configuration, cannot be read).
    pub fn judicial_calendar_days_left(&self) -> Option<i64> {
        self.judicial_office.office_hours().ok()?.calendar_days_left(self.clock.now_ms())
    }

    /// Says, when the server starts, that the judicial office's calendar ends within
    /// [`CALENDAR_WARN_DAYS`] or has ended: after its last listed year every weekday counts
    /// as a working day, so a referral registered on a public holiday would be handed to a
    /// closed office and fall due while it is closed. Answers the days left when it warned.
    pub fn warn_if_judicial_calendar_ends(&self) -> Option<i64> {
        let hours = self.judicial_office.office_hours().ok()?;
        let left = hours.calendar_days_left(self.clock.now_ms()).filter(|&d| d < CALENDAR_WARN_DAYS)?;
        let ends = hours.calendar_ends()?;
        let (y, m, d) = liandong_core::stats::civil_from_days(ends);
        tracing::warn!(
            calendar_ends = %format!("{y:04}-{m:02}-{d:02}"),
            days_left = left,
            "judicial_office: the public holidays listed end with {y}; add the next year's holidays and make-up \
             working days (the State Council's notice) to the config, or every weekday after {y:04}-{m:02}-{d:02} \
             counts as a working day for referrals"
        );
        Some(left)
    }
}

/// How many days before the calendar of public holidays ends the server starts saying so.
const CALENDAR_WARN_DAYS: i64 = 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_leaves_a_core_to_the_writer_and_the_feed_takes_half_never_none() {
        let of = |cores| {
            let w = Workers::for_cores(cores);
            (w.http, w.feed)
        };
        assert_eq!(of(0), (1, 1));
        assert_eq!(of(1), (1, 1));
        assert_eq!(of(2), (1, 1));
        assert_eq!(of(4), (3, 2));
        assert_eq!(of(16), (15, 8));
    }

    #[test]
    fn unknown_keys_are_reported_and_secrets_redacted() {
        let text = r#"
            listen = "127.0.0.1:9000"
            colour = "blue"
            [[tokens]]
            token = "s3cret-token"
            role = "admin"
            name = "ops"
        "#;
        let (config, unknown) = Config::parse(text, Path::new("t.toml")).unwrap();
        assert_eq!(unknown, vec!["colour".to_string()]);
        assert_eq!(config.listen.port(), 9000);
        let dbg = format!("{config:?}");
        assert!(!dbg.contains("s3cret-token"), "{dbg}");
    }

    #[test]
    fn env_overrides_and_demo_refuses_public_listen() {
        let dir = std::env::temp_dir().join(format!("liandong-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("demo.toml");
        std::fs::write(&file, "demo = true\n").unwrap();
        let env = |listen: &'static str| {
            let file = file.clone();
            move |k: &str| match k {
                "LIANDONG_CONFIG" => Some(file.display().to_string()),
                "LIANDONG_LISTEN" => Some(listen.to_string()),
                "LIANDONG_MAPS" => Some("elsewhere".to_string()),
                _ => None,
            }
        };
        let (config, _) = Config::load(env("127.0.0.1:7000")).unwrap();
        assert_eq!(config.maps, PathBuf::from("elsewhere"));
        assert_eq!(config.listen.port(), 7000);
        assert!(matches!(Config::load(env("0.0.0.0:7000")), Err(ConfigError::DemoNotLoopback(_))));
        assert!(matches!(Config::load(env("not-an-address")), Err(ConfigError::Env { .. })));
    }

    #[test]
    fn the_jt808_listener_is_off_by_default_env_sets_it_and_the_demo_keeps_it_on_loopback() {
        let (config, unknown) = Config::parse(include_str!("../../../config/default.toml"), Path::new("d")).unwrap();
        assert!(unknown.is_empty() && config.jt808.listen.is_none(), "{unknown:?}");
        let (demo, _) = Config::parse(include_str!("../../../config/demo.toml"), Path::new("demo")).unwrap();
        assert!(demo.jt808.listen.is_some_and(|a| a.ip().is_loopback()));
        let dir = std::env::temp_dir().join(format!("liandong-config-jt808-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("demo.toml");
        std::fs::write(&file, "demo = true\n[jt808]\nlisten = \"127.0.0.1:6808\"\n").unwrap();
        let env = |jt808: &'static str| {
            let file = file.clone();
            move |k: &str| match k {
                "LIANDONG_CONFIG" => Some(file.display().to_string()),
                "LIANDONG_JT808_LISTEN" => Some(jt808.to_string()),
                _ => None,
            }
        };
        let (config, _) = Config::load(env("127.0.0.1:7808")).unwrap();
        assert_eq!(config.jt808.listen.map(|a| a.port()), Some(7808));
        assert_eq!(Config::load(env("")).unwrap().0.jt808.listen, None, "empty turns it off");
        assert!(matches!(Config::load(env("0.0.0.0:6808")), Err(ConfigError::DemoNotLoopback(_))));
        assert!(matches!(Config::load(env("port 6808")), Err(ConfigError::Env { name: "LIANDONG_JT808_LISTEN", .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn http_and_tls_sections_parse_with_their_defaults_and_zero_timeouts_are_refused() {
        let shipped = include_str!("../../../config/default.toml");
        let (config, unknown) = Config::parse(shipped, Path::new("config/default.toml")).unwrap();
        assert!(unknown.is_empty(), "{unknown:?}");
        let (h, d) = (&config.http, HttpConfig::default());
        assert_eq!(
            (h.header_timeout_s, h.body_timeout_s, h.idle_timeout_s, h.max_connections),
            (d.header_timeout_s, d.body_timeout_s, d.idle_timeout_s, d.max_connections),
            "the documented values are the built-in ones"
        );
        assert!(config.tls.is_none());

        let text = "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n[http]\nidle_timeout_s = 5\n";
        let (config, unknown) = Config::parse(text, Path::new("t.toml")).unwrap();
        assert!(unknown.is_empty(), "{unknown:?}");
        let tls = config.tls.as_ref().unwrap();
        assert_eq!((tls.cert.as_path(), tls.key.as_path(), tls.reload_s), (Path::new("c.pem"), Path::new("k.pem"), 10));
        assert_eq!((config.http.idle_timeout_s, config.http.header_timeout_s), (5, 10));
        assert!(Config::parse("[tls]\ncert = \"c.pem\"\n", Path::new("t.toml")).is_err(), "a key is required");

        let (config, _) = Config::parse("[http]\nbody_timeout_s = 0\n", Path::new("t.toml")).unwrap();
        let e = config.validate().unwrap_err().to_string();
        assert!(e.contains("http.body_timeout_s"), "{e}");
    }

    #[test]
    fn the_shipped_office_hours_parse_and_a_bad_holiday_is_refused_naming_its_key() {
        for (path, text) in [
            ("default", include_str!("../../../config/default.toml")),
            ("demo", include_str!("../../../config/demo.toml")),
        ] {
            let (config, unknown) = Config::parse(text, Path::new(path)).unwrap();
            assert!(unknown.is_empty(), "{path}: {unknown:?}");
            let hours = config.judicial_office.office_hours().unwrap();
            // 1 October 2026 (a Thursday) is National Day; Saturday 10 October is worked.
            let oct = |d: u32| liandong_core::office_hours::parse_date(&format!("2026-10-{d:02}")).unwrap();
            assert!(!hours.is_working_day(oct(1)) && hours.is_working_day(oct(10)), "{path}");
        }
        let text = "[judicial_office]\nholidays = [\"2026-10-01\", \"2026-13-01\"]\n";
        let (config, _) = Config::parse(text, Path::new("t.toml")).unwrap();
        let e = config.validate().unwrap_err().to_string();
        assert!(e.contains("judicial_office.holidays[1]"), "{e}");
    }

    #[test]
    fn the_packaged_config_names_absolute_installed_paths_and_refuses_its_placeholder_tokens() {
        let shipped = include_str!("../../../config/package.toml");
        let (config, unknown) = Config::parse(shipped, Path::new("/etc/liandong/config.toml")).unwrap();
        assert!(unknown.is_empty(), "{unknown:?}");
        // The service runs with any working directory: every path it reads is absolute.
        assert_eq!(config.data_dir, Path::new("/var/lib/liandong"));
        assert_eq!(config.maps, Path::new("/usr/share/liandong/maps/dazhu"));
        assert_eq!(config.web_dir, Path::new("/usr/share/liandong/web"));
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert!(!config.demo && config.tls.is_none() && config.store.database_url.is_none());
        // The office's public holidays are the ones the repository's config keeps.
        let (default, _) = Config::parse(include_str!("../../../config/default.toml"), Path::new("d")).unwrap();
        assert_eq!(format!("{:?}", config.judicial_office), format!("{:?}", default.judicial_office));

        // As installed, the server refuses to start, naming the token's holder.
        assert!(!config.tokens.is_empty());
        let e = config.validate().unwrap_err().to_string();
        assert!(e.contains("placeholder") && e.contains(&config.tokens[0].name), "{e}");
        assert!(!e.contains(config.tokens[0].token.expose()), "the error does not print the token: {e}");
        // Once the administrator has put in secrets of their own, it starts.
        let mut configured = config.clone();
        for (i, t) in configured.tokens.iter_mut().enumerate() {
            t.token = Secret::new(format!("9f2c4e1a7b3d5f60-{i}"));
        }
        configured.validate().unwrap();
    }

    #[test]
    fn placeholder_tokens_are_recognised_and_random_ones_are_not() {
        for (token, placeholder) in [
            ("REPLACE-ME-admin-token", true),
            ("replace-with-a-long-random-secret", true),
            ("ChangeMe12345", true),
            ("change-me-please", true),
            ("placeholder-token", true),
            ("demo-admin-token", false),
            ("3f1b9c0e8d7a6b5c4d3e2f1a0b9c8d7e", false),
            ("kR8vQ2xLmN4pT6wY", false),
        ] {
            assert_eq!(is_placeholder_token(token), placeholder, "{token}");
        }
    }

    #[test]
    fn cameras_offline_after_is_read_and_checked() {
        for (path, text) in [
            ("default", include_str!("../../../config/default.toml")),
            ("demo", include_str!("../../../config/demo.toml")),
        ] {
            let (config, unknown) = Config::parse(text, Path::new(path)).unwrap();
            assert!(unknown.is_empty(), "{path}: {unknown:?}");
            assert!((60..=86_400).contains(&config.cameras.offline_after_s), "{path}");
        }
        assert_eq!(Config::default().cameras.offline_after_s, 600);
        let (config, _) = Config::parse("[cameras]\noffline_after_s = 120\n", Path::new("t.toml")).unwrap();
        assert_eq!(config.cameras.offline_after_s, 120);
        for bad in [0, 59, 86_401] {
            let (config, _) =
                Config::parse(&format!("[cameras]\noffline_after_s = {bad}\n"), Path::new("t.toml")).unwrap();
            let e = config.validate().unwrap_err().to_string();
            assert!(e.contains("cameras.offline_after_s"), "{bad}: {e}");
        }
        assert!(Config::parse("[cameras]\noffline_after = 120\n", Path::new("t.toml")).is_err(), "a misspelt key");
    }
}
