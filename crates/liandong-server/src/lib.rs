//! The liandong server: axum routes, authentication, configuration, the ingest
//! sequencer and shutdown. [`run`] serves on a listener until a shutdown future
//! completes, then flushes every pending write.

pub mod acks;
pub mod auth;
pub mod camera_watch;
pub mod cameras;
pub mod clock;
pub mod compress;
pub mod config;
pub mod correction;
pub mod devices;
pub mod duty;
pub mod error;
pub mod feed;
pub mod field;
pub mod handover;
pub mod handovers;
pub mod hashing;
pub mod history;
pub mod home_visits;
pub mod hotspots;
pub mod incidents;
pub mod jt808;
pub mod maps;
pub mod mediation;
pub mod mediation_watch;
pub mod metrics;
pub mod openapi;
pub mod parking;
pub mod passwords;
pub mod patrol;
pub mod people;
pub mod planning;
pub mod ratelimit;
pub mod ready;
pub mod referrals;
pub mod reports;
pub mod retention;
pub mod role;
pub mod roster;
pub mod routes;
pub mod scope;
pub mod sequencer;
pub mod serve;
pub mod sessions;
pub mod shift_ends;
pub mod time_fmt;
pub mod tracks;
pub mod travel;
pub mod web;
pub mod ws;
pub mod zones;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::Router;
use liandong_core::{CountyMap, Enricher};
use liandong_store::Store;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::Tokens;
use crate::config::Config;
use crate::devices::Registry;
use crate::feed::{Hub, SharedLive};
use crate::metrics::Metrics;
use crate::sequencer::{Ingest, Sequencer, SharedWatchlist};
use liandong_core::alerts::Watchlist;

/// Everything a request handler may read. Mutable parts are behind short-lived locks
/// that are never held across an `.await`.
pub struct AppState {
    pub config: Config,
    pub tokens: Tokens,
    pub devices: RwLock<Registry>,
    pub store: Store,
    pub ingest: Ingest,
    /// Last report per device and the committed sequence number.
    pub live: SharedLive,
    /// The live feed.
    pub hub: Hub,
    /// Becomes `true` when the server shuts down; live connections close on it.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// The watch list the alert rules match reads against.
    pub watchlist: SharedWatchlist,
    /// Tagged persons' zone rules.
    pub zones: zones::SharedZones,
    /// Cameras that may push: the map's, and those registered by API.
    pub cameras: RwLock<cameras::Registry>,
    pub map: Arc<CountyMap>,
    /// The map's spatial indexes, for enriching what does not go through the sequencer.
    pub enricher: Arc<Enricher>,
    /// The routable road graph of the map's roads, for travel times.
    pub roads: Arc<liandong_core::road::RoadGraph>,
    /// How each team gets around: the graph its plans and diversions are made on.
    pub travel: Arc<travel::TeamTravel>,
    /// Each layer serialised once at start-up, and gzipped on its first request that
    /// accepts gzip (the map is loaded only at start-up, so both stay valid).
    pub layer_json: HashMap<String, compress::Precompressed>,
    /// The `hotspots` layer of the latest analysis (see `planning`), once one ran.
    pub hotspot_layer: RwLock<Option<planning::HotspotLayer>>,
    /// Answers of `GET /api/v1/hotspots`, by query (see `hotspots`). A Tokio mutex, held
    /// across the analysis, so that every wall screen asking at once after a `hotspots`
    /// notice waits for one analysis instead of running its own.
    pub hotspot_answers: tokio::sync::Mutex<hotspots::Answers>,
    pub metrics: Arc<Metrics>,
    /// The bytes of request bodies being read at once (`ingest.body_budget_bytes`).
    pub body_budget: routes::BodyBudget,
    /// Edits of the registries (devices, cameras, the watch list, tagged persons) made
    /// here, counted under each registry's lock: a reload from the store that began before
    /// an edit does not replace the registries with what it read (see
    /// [`AppState::edit_registry`]).
    pub registry_edits: std::sync::atomic::AtomicU64,
    /// Replays of the live feed running now (`since=`), bounded per caller and in all.
    pub replays: Arc<ws::Replays>,
    /// The runtime the live feed's sessions run on (`ws::SessionsRuntime`).
    pub sessions: ws::SessionsRuntime,
    /// Grid reports recently stored, by their content, so that a phone re-sending the
    /// same report (its answer was lost) gets the same report back, not a second one.
    pub recent_reports: std::sync::Mutex<reports::RecentReports>,
    /// Road searches for the field app's routes, bounded (see `field`).
    pub route_searches: field::RouteSearches,
    /// Password hashing and the counts of failed sign-ins (see `sessions`).
    pub signin: sessions::SignIn,
    /// The duty roster of the days around now (see `roster`).
    pub roster: Arc<roster::Roster>,
    /// The last store probe of `/readyz` (see `ready`).
    pub readiness: ready::Readiness,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Map(#[from] maps::MapLoadError),
    #[error(transparent)]
    Store(#[from] liandong_store::StoreError),
    #[error("cannot serve: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Tls(#[from] serve::tls::TlsError),
}

/// Follows other instances' commits until shutdown: a commit this instance has not
/// seen (by its sequence number) asks the sequencer to catch up.
async fn follow(
    mut listener: liandong_store::FeedListener,
    ingest: sequencer::Ingest,
    live: feed::SharedLive,
    registry_changed: Arc<tokio::sync::Notify>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut poll = tokio::time::interval(std::time::Duration::from_secs(1));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopped = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    tokio::pin!(stopped);
    loop {
        let heard = tokio::select! {
            _ = &mut stopped => return,
            n = listener.next() => match n {
                Ok(liandong_store::Heard::Commit(n)) => Some(n),
                Ok(liandong_store::Heard::Registry) => {
                    registry_changed.notify_one();
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listening for other instances' commits failed; polling");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    None
                }
            },
            _ = poll.tick() => None,
        };
        let seen = live.read().unwrap_or_else(|e| e.into_inner()).seq;
        if heard.is_some_and(|n| n <= seen) {
            continue;
        }
        if let Err(e) = ingest.catch_up().await {
            tracing::debug!(error = %e, "catch-up not done");
        }
    }
}

/// How often an instance on a shared database reloads what administrators edit
/// (devices, cameras, the watch list, tagged persons) from the store, so that an entry
/// saved through another instance takes effect here too.
const REGISTRY_REFRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// Reloads the registries every [`REGISTRY_REFRESH`], and at once when another instance
/// announces a change, until shutdown. Holds the state
/// weakly, so that it never keeps a finished server alive.
async fn refresh_registries(
    state: std::sync::Weak<AppState>,
    changed: Arc<tokio::sync::Notify>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let stopped = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    tokio::pin!(stopped);
    let mut every = tokio::time::interval(REGISTRY_REFRESH);
    every.tick().await;
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = every.tick() => {}
            _ = changed.notified() => {}
        }
        let Some(s) = state.upgrade() else { return };
        let edits_before = s.registry_edits.load(std::sync::atomic::Ordering::SeqCst);
        let loaded = async {
            let devices = s.store.devices().await?;
            let cameras = s.store.cameras().await?;
            let watch = s.store.watchlist().await?;
            let tagged = s.store.tagged_persons().await?;
            Ok::<_, liandong_store::StoreError>((devices, cameras, watch, tagged))
        };
        match loaded.await {
            Ok((devices, cameras, watch, tagged)) => {
                // What was read may predate an edit made here meanwhile (its store write
                // raced the read): then this round replaces nothing, and the next one
                // reads it. The check is under each registry's lock, as the edits are.
                let unchanged = || s.registry_edits.load(std::sync::atomic::Ordering::SeqCst) == edits_before;
                replace_if(&s.devices, unchanged, || Registry::new(devices));
                {
                    // The cameras are reloaded in place: their snapshot allowances stay.
                    let mut registry = s.cameras.write().unwrap_or_else(|e| e.into_inner());
                    if unchanged() {
                        registry.reload(&s.map, cameras);
                    }
                }
                replace_if(&s.watchlist, unchanged, || Watchlist::new(watch.iter().filter_map(cameras::watch_entry)));
                replace_if(&s.zones, unchanged, || zones::ZoneBook::from_store(&tagged, s.enricher.fences()));
            }
            Err(e) => tracing::warn!(error = %e, "reloading registries from the store failed"),
        }
    }
}

/// Replaces what `lock` holds by `make()`, under the lock, if `unchanged()` still holds.
fn replace_if<T>(lock: &RwLock<T>, unchanged: impl Fn() -> bool, make: impl FnOnce() -> T) {
    let mut guard = lock.write().unwrap_or_else(|e| e.into_inner());
    if unchanged() {
        *guard = make();
    }
}

impl AppState {
    /// The part of the county a user of `role` and `unit_id` reads ([`scope::Reach`]): a
    /// patrol leader's area is `alerts.leader_radius_m` around the team's post (none when
    /// the radius is 0).
    pub(crate) fn reach(&self, role: auth::Role, unit_id: Option<&str>) -> scope::Reach {
        let radius_m = f64::from(self.config.alerts.leader_radius_m);
        scope::Reach::of_user(role, unit_id, |team| {
            (radius_m > 0.0).then(|| planning::team_base(self, team)).flatten().map(|base| (base, radius_m))
        })
    }

    /// Edits a registry in memory (after its store write), counting the edit under the
    /// registry's lock so that a reload that read the store before it cannot undo it.
    pub(crate) fn edit_registry<T>(&self, lock: &RwLock<T>, edit: impl FnOnce(&mut T)) {
        let mut guard = lock.write().unwrap_or_else(|e| e.into_inner());
        edit(&mut guard);
        self.registry_edits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A built application: the router and the background task to await at shutdown.
pub struct App {
    pub router: Router,
    pub state: Arc<AppState>,
    sequencer: tokio::task::JoinHandle<()>,
    stop: Arc<tokio::sync::watch::Sender<bool>>,
}

impl App {
    /// Loads the map, opens the store, rebuilds the live state and starts the sequencer.
    pub async fn build(config: Config) -> Result<App, ServeError> {
        config.validate()?;
        let map = maps::load_dir(&config.maps)?;
        tracing::info!(maps = %config.maps.display(), layers = map.layers.len(), posts = map.posts.len(), fences = map.fences.len(), "map loaded");
        let enricher = Arc::new(Enricher::new(&map));
        let (roads, travel) = road_graphs(&map, &config).await?;
        let store = open_store(&config).await?;
        tracing::info!(backend = store.backend(), "store open");
        retention::make_months_ahead(&store).await;
        let rehashed = devices::hash_kept_keys(&store).await?;
        if rehashed > 0 {
            tracing::info!(keys = rehashed, "device and camera keys kept in plaintext are now kept hashed");
        }
        let metrics = Arc::new(Metrics::default());
        let hub = Hub::new(config.live.queue);
        let watchlist: SharedWatchlist = Arc::new(RwLock::new(Watchlist::new(
            store.watchlist().await?.into_iter().filter_map(|w| cameras::watch_entry(&w)),
        )));
        let camera_registry = RwLock::new(cameras::Registry::new(&map, store.cameras().await?));
        let zones: zones::SharedZones =
            Arc::new(RwLock::new(zones::ZoneBook::from_store(&store.tagged_persons().await?, enricher.fences())));
        let recent_sightings = {
            let entries: Vec<(liandong_core::alerts::WatchKind, String)> = {
                let w = watchlist.read().unwrap_or_else(|e| e.into_inner());
                w.entries().map(|e| (e.kind, e.value.clone())).collect()
            };
            tracks::recent_sightings(&store, &camera_registry, &entries).await?
        };
        let roster = Arc::new(roster::Roster::for_map(&map));
        roster.reload(&store, time_fmt::now_ms()).await?;
        let sequencer = Sequencer::start(
            store.clone(),
            enricher.clone(),
            config.ingest.jump,
            config.store.max_batch,
            metrics.clone(),
            hub.clone(),
            sequencer::RuleInputs {
                watchlist: watchlist.clone(),
                zones: zones.clone(),
                config: config.alerts,
                travel: travel.clone(),
                recent_sightings,
                roster: roster.clone(),
            },
        )
        .await?
        .write_states_every(device_states_every(&config.store, &store));
        let live = sequencer.live_view();
        let (ingest, handle) = sequencer.spawn(4096);
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        spawn_timers(&config, &store, &ingest, &shutdown);
        // On a shared database, other instances' commits are applied and published here
        // too: heard by LISTEN, and polled once a second in case a notification was lost.
        let shared = store.listen().await?;
        let registry_changed = Arc::new(tokio::sync::Notify::new());
        if let Some(listener) = shared {
            tokio::spawn(follow(listener, ingest.clone(), live.clone(), registry_changed.clone(), shutdown.clone()));
        }
        let devices = RwLock::new(Registry::new(store.devices().await?));
        let layer_json = map
            .layers
            .iter()
            .map(|(name, l)| {
                let json = Bytes::from(serde_json::to_vec(&l.collection).unwrap_or_default());
                (name.clone(), compress::Precompressed::new(json, "application/geo+json"))
            })
            .collect();
        let config_body_budget = config.ingest.body_budget_bytes;
        let config_sessions = config.sessions;
        let state = Arc::new(AppState {
            tokens: Tokens::new(&config.tokens),
            config,
            devices,
            store,
            ingest,
            live,
            hub,
            shutdown,
            watchlist,
            zones,
            cameras: camera_registry,
            map: Arc::new(map),
            enricher,
            roads,
            travel,
            layer_json,
            hotspot_layer: RwLock::new(None),
            hotspot_answers: tokio::sync::Mutex::new(hotspots::Answers::default()),
            metrics,
            body_budget: routes::BodyBudget::new(config_body_budget),
            recent_reports: std::sync::Mutex::new(reports::RecentReports::default()),
            registry_edits: std::sync::atomic::AtomicU64::new(0),
            replays: Arc::default(),
            sessions: ws::SessionsRuntime::start(),
            route_searches: field::RouteSearches::default(),
            signin: sessions::SignIn::new(&config_sessions),
            roster,
            readiness: ready::Readiness::default(),
        });
        let mut roster_stop = state.shutdown.clone();
        tokio::spawn(roster::refresh(state.roster.clone(), state.store.clone(), async move {
            let _ = roster_stop.wait_for(|stopped| *stopped).await;
        }));
        tokio::spawn(planning::schedule(Arc::downgrade(&state), state.shutdown.clone()));
        // A shift's end prepares its handover sheet; the first tick catches up at start.
        tokio::spawn(shift_ends::run(Arc::downgrade(&state), state.shutdown.clone()));
        tokio::spawn(mediation_watch::run(Arc::downgrade(&state), state.shutdown.clone()));
        // The recorder keeps every histogram sample until its upkeep buckets them.
        let upkeep = |m: Arc<Metrics>| async move { m.run_upkeep() };
        tokio::spawn(clock::every(Arc::downgrade(&state.metrics), state.shutdown.clone(), metrics::UPKEEP, upkeep));
        tokio::spawn(camera_watch::run(Arc::downgrade(&state), state.shutdown.clone()));
        if state.store.backend() == "postgres" {
            tokio::spawn(retention::keep_months_ahead(Arc::downgrade(&state), state.shutdown.clone()));
            tokio::spawn(refresh_registries(Arc::downgrade(&state), registry_changed, state.shutdown.clone()));
        }
        Ok(App { router: router(state.clone()), state, sequencer: handle, stop: Arc::new(stop) })
    }

    /// Waits for the sequencer to commit what is queued, then closes the store. Call
    /// after the HTTP server has stopped (all request handlers are gone).
    pub async fn finish(self) {
        let App { router, state, sequencer, stop } = self;
        // Live connections hold the state (and with it the ingest handle the sequencer
        // waits on): tell them to close.
        let _ = stop.send(true);
        drop(router);
        let store = state.store.clone();
        drop(state);
        if let Err(e) = sequencer.await {
            tracing::error!(error = %e, "ingest sequencer panicked");
        }
        store.close().await;
    }
}

/// Every route of the API, each registered and described by one `routes!` line: the
/// handler's `#[utoipa::path]` gives the path and methods to the router and the operation
/// to the OpenAPI document, so no route is served undescribed (ARCHITECTURE.md, "How to
/// add an endpoint"). One `routes!` per path; `tests/openapi.rs` fails on a plain route.
pub fn api_routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(routes::root, routes::osmand_at_root))
        .routes(routes!(routes::healthz))
        .routes(routes!(ready::readyz))
        .routes(routes!(routes::metrics))
        .routes(routes!(routes::osmand))
        .routes(routes!(routes::post_positions))
        .routes(routes!(routes::list_devices, routes::register_device))
        .routes(routes!(people::list, people::create))
        .routes(routes!(people::get_one, people::change))
        .routes(routes!(sessions::set_password))
        .routes(routes!(sessions::issue_code))
        .routes(routes!(sessions::revoke_person))
        .routes(routes!(sessions::sign_in, sessions::sign_out))
        .routes(routes!(sessions::renew))
        .routes(routes!(duty::list, duty::create))
        .routes(routes!(duty::cancel))
        .routes(routes!(duty::open_escalations))
        .routes(routes!(duty::ack_escalation))
        .routes(routes!(handovers::list, handovers::create))
        .routes(routes!(handovers::get_one))
        .routes(routes!(handovers::sign))
        .routes(routes!(handovers::accept))
        .routes(routes!(referrals::list, referrals::create))
        .routes(routes!(referrals::statistics))
        .routes(routes!(referrals::take))
        .routes(routes!(referrals::done))
        .routes(routes!(home_visits::list, home_visits::create))
        .routes(routes!(home_visits::statistics))
        .routes(routes!(home_visits::get_one))
        .routes(routes!(home_visits::arrive))
        .routes(routes!(home_visits::complete))
        .routes(routes!(parking::records))
        .routes(routes!(parking::statistics))
        .routes(routes!(routes::whoami))
        .routes(routes!(routes::list_layers))
        .routes(routes!(routes::get_layer))
        .routes(routes!(ws::live))
        .routes(routes!(cameras::list_cameras, cameras::register_camera))
        .routes(routes!(cameras::camera_status))
        .routes(routes!(cameras::camera_availability))
        .routes(routes!(cameras::list_watchlist, cameras::add_watch))
        .routes(routes!(cameras::post_alert))
        .routes(routes!(acks::ack))
        .routes(routes!(tracks::get_track))
        .routes(routes!(patrol::heads))
        .routes(routes!(hotspots::hotspots))
        .routes(routes!(planning::run_now))
        .routes(routes!(planning::replan))
        .routes(routes!(patrol::list, patrol::push))
        .routes(routes!(patrol::ack))
        .routes(routes!(history::positions_at))
        .routes(routes!(history::track))
        .routes(routes!(history::alerts))
        .routes(routes!(history::incidents))
        .routes(routes!(cameras::get_image))
        .routes(routes!(correction::list, cameras::add_tagged))
        .routes(routes!(correction::get_one))
        .routes(routes!(correction::list_sanctions, correction::record_sanction))
        .routes(routes!(cameras::list_audit))
        .routes(routes!(reports::list_reports, reports::post_report))
        .routes(routes!(reports::review_report))
        .routes(routes!(field::own_reports))
        .routes(routes!(field::tasks))
        .routes(routes!(field::route))
        .routes(routes!(incidents::create))
        .routes(routes!(incidents::get))
        .routes(routes!(incidents::act))
        .routes(routes!(mediation::list_mediation, mediation::walk_in))
        .routes(routes!(mediation::venues))
        .routes(routes!(mediation::statistics))
        .routes(routes!(mediation::places))
        .routes(routes!(mediation::get_case, mediation::close_mediation))
        .routes(routes!(mediation::accept))
        .routes(routes!(mediation::decline))
        .routes(routes!(mediation::add_session))
        .routes(routes!(mediation::follow_up))
        .routes(routes!(mediation::send_incident))
        .routes(routes!(reports::statistics))
        .routes(routes!(cameras::isapi_push))
        .routes(routes!(openapi_json))
        .routes(routes!(openapi::feed_schema))
}

/// The OpenAPI 3.1 document of [`api_routes`], completed (`openapi::complete`) once and
/// kept as JSON text.
pub fn openapi_document() -> Arc<str> {
    static DOC: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let (_, api) = api_routes().split_for_parts();
        let generated = serde_json::to_value(&api).unwrap_or_default();
        Arc::from(serde_json::to_string(&openapi::complete(generated)).unwrap_or_default())
    })
    .clone()
}

/// `GET /api/v1/openapi.json`: this API's OpenAPI 3.1 document, generated from the code.
///
/// Public, no token: it is the contract and holds no data. Which roles may call each
/// operation is in its `security` (the `bearer` scheme's list of roles) and its description.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "ops", security(()),
    responses((status = 200, description = "the OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json() -> axum::response::Response {
    use axum::response::IntoResponse;
    ([(axum::http::header::CONTENT_TYPE, "application/json")], openapi_document().to_string()).into_response()
}

/// The configured store: PostgreSQL when a URL is given, else the embedded one.
async fn open_store(config: &Config) -> Result<Store, ServeError> {
    Ok(match &config.store.database_url {
        Some(url) => Store::connect(url.expose()).await?,
        None => Store::open(&config.data_dir, config.store.durability).await?,
    })
}

/// How often the sequencer writes the devices' states: as configured on the embedded
/// store; with every commit on PostgreSQL, where other instances commit in between.
fn device_states_every(config: &config::StoreConfig, store: &Store) -> std::time::Duration {
    match store {
        Store::Sqlite(_) => std::time::Duration::from_millis(config.device_states_every_ms),
        Store::Postgres(_) => std::time::Duration::ZERO,
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    let (api, _) = api_routes().split_for_parts();
    // One layer on each route, the one that needs the route: axum boxes a route's
    // service once more for each `Router::layer` and clones every box on each request
    // (22 allocations a request with four layers, in the report path's profile), so
    // what does not need the matched route goes around the router instead.
    let routed = api
        .fallback_service(web::files(&state.config.web_dir))
        .layer(axum::middleware::from_fn_with_state(state.clone(), measure))
        .with_state(state);
    let around = tower::ServiceBuilder::new()
        // Outermost, so that every answer carries the browser protections, whichever
        // layer or handler produced it.
        .layer(axum::middleware::map_response(web::protect))
        .map_response(axum::response::IntoResponse::into_response)
        // Spans name the method and the path only: query strings carry device keys
        // (`/osmand?key=…`) and tokens (`?token=…`), which must never reach a log.
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(|req: &axum::extract::Request| {
            tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
        }))
        .service(routed);
    Router::new().fallback_service(around)
}

/// Times a request and records it by route pattern (`MatchedPath`: never the path
/// itself, whose ids would make a label value per record; `unmatched` for the static
/// files and unknown paths), method and status, and its refusal's field if it was one.
/// A websocket's time is that of its upgrade answer. Inside it, a session token is read
/// from the store (or the cache) before the handler, which then authenticates it as it
/// does a config token.
async fn measure(
    axum::extract::State(s): axum::extract::State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let route = req.extensions().get::<axum::extract::MatchedPath>().cloned();
    let method = req.method().clone();
    let metrics = s.metrics.clone();
    let res = sessions::resolve_sessions(axum::extract::State(s), req, next).await;
    let refused = res.extensions().get::<error::Refused>();
    let route = route.as_ref().map_or("unmatched", axum::extract::MatchedPath::as_str);
    metrics.record_request(route, &method, res.status(), started.elapsed(), refused);
    res
}

/// Serves `config` on `listener` until `shutdown` completes, then stops accepting,
/// lets in-flight requests finish and commits every queued report before returning.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    config.validate()?;
    config.warn_if_judicial_calendar_ends();
    let limits = serve::prepare(&config.http);
    // A configured certificate that does not load stops the start: serving plain HTTP
    // where TLS was asked for would send keys and tokens in the clear.
    let tls = config.tls.as_ref().map(serve::tls::Certificates::load).transpose()?;
    // The JT/T 808 terminals' listener, when configured, bound before anything starts so
    // that a port in use stops the start cleanly; stopped by the same signal.
    let jt808_listener = jt808::bind(&config.jt808).await?;
    let app = App::build(config).await?;
    tracing::info!(addr = %listener.local_addr()?, tls = tls.is_some(), "listening");
    let jt808 = match jt808_listener {
        Some(l) => {
            tracing::info!(jt808 = %l.local_addr()?, "accepting JT/T 808 terminals");
            Some(tokio::spawn(jt808::serve(l, app.state.clone())))
        }
        None => None,
    };
    let stop = app.stop.clone();
    let signal = async move {
        shutdown.await;
        let _ = stop.send(true);
    };
    serve::serve(listener, app.router.clone(), limits, tls, signal).await?;
    if let Some(task) = jt808 {
        if let Err(e) = task.await {
            tracing::error!(error = %e, "jt808 listener panicked");
        }
    }
    tracing::info!("http server stopped; flushing pending writes");
    app.finish().await;
    Ok(())
}

/// The road graph of dispatch (at the configured vehicle speeds) and the teams' travel
/// (on foot at `planning.patrol_kph` when it is set, else on the same graph).
async fn road_graphs(
    map: &CountyMap,
    config: &Config,
) -> Result<(Arc<liandong_core::road::RoadGraph>, Arc<travel::TeamTravel>), ServeError> {
    let roads = Arc::new(graph_off_runtime(map, config.roads.clone()).await?);
    tracing::info!(nodes = roads.node_count(), edges = roads.edge_count(), "road graph built");
    let patrol_roads = match config.planning.patrol_kph {
        kph if kph > 0.0 => {
            let graph = graph_off_runtime(map, config.roads.on_foot(kph)).await?;
            tracing::info!(patrol_kph = kph, "patrol road graph built");
            Arc::new(graph)
        }
        _ => roads.clone(),
    };
    let travel = Arc::new(travel::TeamTravel::new(map, patrol_roads, roads.clone()));
    Ok((roads, travel))
}

/// A road graph of the map's roads: a county's takes up to a few hundred milliseconds
/// to build, so it is built off the runtime's threads.
async fn graph_off_runtime(
    map: &CountyMap,
    speeds: liandong_core::road::RoadSpeeds,
) -> Result<liandong_core::road::RoadGraph, ServeError> {
    let roads = map.roads.clone();
    let graph = tokio::task::spawn_blocking(move || liandong_core::road::RoadGraph::from_roads(&roads, &speeds))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(graph)
}

/// The server's timers, stopped with it: the incident escalation tick, which goes
/// through the sequencer like any other event, and the retention of old reports and
/// images when it is configured.
fn spawn_timers(config: &Config, store: &Store, ingest: &Ingest, shutdown: &tokio::sync::watch::Receiver<bool>) {
    let ticker_ingest = ingest.clone();
    let mut ticker_stop = shutdown.clone();
    tokio::spawn(incidents::run_ticker(
        std::time::Duration::from_secs(1),
        move |now_ms| {
            let ingest = ticker_ingest.clone();
            async move {
                if let Err(e) = ingest.submit_incident(sequencer::IncidentCommand::Tick { now_ms }).await {
                    tracing::warn!(error = %e, "incident escalation tick failed");
                }
            }
        },
        async move {
            let _ = ticker_stop.wait_for(|stopped| *stopped).await;
        },
    ));
    if config.store.retention_days > 0 || config.store.image_retention_days > 0 {
        let mut stop = shutdown.clone();
        let r = retention::Retention {
            reports_days: config.store.retention_days,
            images_days: config.store.image_retention_days,
        };
        tokio::spawn(retention::run(store.clone(), r, async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        }));
    }
}
