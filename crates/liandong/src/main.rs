//! `liandong`: the command-line entry point. Parses arguments and calls into the
//! server, the simulator and the tools; nothing else lives here.

mod backup;
mod bench;
mod bench_floods;
mod bench_history;
mod bench_jt808;
mod bench_live;
mod import_osm;
mod jt808_terminal;
mod simulate;
mod tls;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use liandong_server::config::Config;

#[derive(Parser)]
#[command(name = "liandong", version, about = "Dazhu county linkage command-centre server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (config from LIANDONG_CONFIG, default config/default.toml).
    Serve,
    /// Run the demo: the server on the embedded store with the Dazhu map
    /// (config/demo.toml unless LIANDONG_CONFIG is set) and the simulator.
    Demo {
        /// Simulated seconds per real second.
        #[arg(long, default_value_t = 1.0)]
        speedup: f64,
    },
    /// Drive patrol members and post officers along the map's routes, reporting
    /// through the real OsmAnd endpoint of a running server.
    Simulate(simulate::Args),
    /// Map directory tools.
    Maps {
        #[command(subcommand)]
        command: MapsCommand,
    },
    /// Import data from other formats.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Copy the embedded store (database and images) into PATH, a new or empty
    /// directory, while the server runs (config as for serve).
    Backup { path: PathBuf },
    /// Put a backup made by `backup` into the configured data directory; refused while
    /// a server runs there, and when the directory holds a store unless --force (which
    /// moves that store aside first).
    Restore {
        path: PathBuf,
        #[arg(long)]
        force: bool,
    },
    /// Load tools.
    Bench {
        #[command(subcommand)]
        command: bench::Command,
    },
}

#[derive(Subcommand)]
enum MapsCommand {
    /// Validate a map directory: geometry, unique ids, posts inside the county, routes on roads.
    Check { dir: PathBuf },
    /// Regenerate the illustrative Dazhu demo map from its sources (fixed seed).
    Demo {
        #[arg(long, default_value = "maps/dazhu/source")]
        source: PathBuf,
        #[arg(long, default_value = "maps/dazhu")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Roads of an OpenStreetMap extract (.osm.pbf) as DIR/roads.geojson, progress on stderr.
    Osm {
        /// The extract, e.g. one cut from a Geofabrik download with `osmium extract`.
        file: PathBuf,
        /// The map directory to write roads.geojson into (created when missing).
        #[arg(long)]
        out: PathBuf,
    },
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("LIANDONG_LOG").unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn,sqlx=warn"));
    let json = std::env::var("LIANDONG_LOG_FORMAT").is_ok_and(|v| v == "json");
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn load_config(default_file: &str) -> anyhow::Result<Config> {
    let env = |k: &str| std::env::var(k).ok();
    let (config, unknown) =
        Config::load(
            |k| {
                if k == "LIANDONG_CONFIG" {
                    env(k).or_else(|| Some(default_file.to_owned()))
                } else {
                    env(k)
                }
            },
        )?;
    for key in unknown {
        tracing::warn!(key = %key, "unknown config key ignored");
    }
    log_paths(&config);
    Ok(config)
}

/// Logs where the directories of the config are, made absolute: a relative path in the
/// file is taken from the working directory (the service's is `/var/lib/liandong`), so
/// an administrator sees at once which map and pages a server runs on.
fn log_paths(config: &Config) {
    let abs = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned()).display().to_string();
    tracing::info!(
        data_dir = %abs(&config.data_dir),
        maps = %abs(&config.maps),
        web_dir = %abs(&config.web_dir),
        "paths"
    );
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown signal received");
}

/// mimalloc rather than glibc's malloc: per acknowledged report the server allocates and
/// frees a few dozen small blocks across threads, and glibc's arenas spent a tenth of
/// the server's CPU on it (BENCHMARKS.md, "The server's CPU per acknowledged report").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    // The server's HTTP side gets all cores but one (see `config::Workers`), unless
    // TOKIO_WORKER_THREADS says otherwise; the tools (the load tool among them) all.
    if matches!(cli.command, Command::Serve | Command::Demo { .. })
        && std::env::var_os("TOKIO_WORKER_THREADS").is_none()
    {
        rt.worker_threads(liandong_server::config::Workers::of_machine().http);
    }
    let rt = rt.enable_all().build()?;
    rt.block_on(async move {
        match cli.command {
            Command::Serve => {
                let config = load_config("config/default.toml")?;
                let _lock = backup::DataDirLock::for_server(&config)?;
                let listener = tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
                liandong_server::run(listener, config, shutdown_signal()).await?;
            }
            Command::Demo { speedup } => {
                let config = load_config("config/demo.toml")?;
                let _lock = backup::DataDirLock::for_server(&config)?;
                let listener = tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
                let addr = listener.local_addr()?;
                let admin = config
                    .tokens
                    .iter()
                    .find(|t| t.role == liandong_server::auth::Role::Admin)
                    .map(|t| t.token.expose().to_owned())
                    .context("the demo config has no admin token for the simulator")?;
                let operator = config
                    .tokens
                    .iter()
                    .find(|t| t.role == liandong_server::auth::Role::Operator)
                    .map(|t| t.token.expose().to_owned());
                let sim = simulate::Args {
                    url: format!("http://{addr}"),
                    token: admin,
                    maps: config.maps.clone(),
                    speedup,
                    interval_s: 5.0,
                    operator_token: operator,
                    ca_cert: None,
                    // The demo's patrol cars report to its JT/T 808 listener (when it has
                    // a port of its own to reach).
                    jt808: config.jt808.listen.filter(|a| a.port() != 0),
                };
                let server = tokio::spawn(liandong_server::run(listener, config, shutdown_signal()));
                println!("liandong demo: http://{addr}/  (tokens: config/demo.toml; stop with Ctrl-C)");
                let simulator = tokio::spawn(async move {
                    if let Err(e) = simulate::run(sim).await {
                        tracing::error!(error = %format!("{e:#}"), "simulator stopped");
                    }
                });
                let result = server.await?;
                simulator.abort();
                result?;
            }
            Command::Simulate(args) => simulate::run(args).await?,
            Command::Backup { path } => backup::backup(&load_config("config/default.toml")?, &path).await?,
            Command::Restore { path, force } => {
                backup::restore(&load_config("config/default.toml")?, &path, force).await?
            }
            Command::Maps { command: MapsCommand::Check { dir } } => {
                let files = liandong_server::maps::read_dir(&dir)?;
                let (map, problems) = liandong_core::CountyMap::parse(&files);
                if problems.is_empty() {
                    println!(
                        "{}: ok ({} layers; {} townships, {} grids, {} posts, {} cameras, {} roads, {} routes, {} fences)",
                        dir.display(),
                        map.layers.len(),
                        map.townships.len(),
                        map.grids.len(),
                        map.posts.len(),
                        map.cameras.len(),
                        map.roads.len(),
                        map.routes.len(),
                        map.fences.len()
                    );
                } else {
                    for p in &problems {
                        println!("{}/{p}", dir.display());
                    }
                    anyhow::bail!("{}: {} problem(s)", dir.display(), problems.len());
                }
            }
            Command::Maps { command: MapsCommand::Demo { source, out } } => {
                let summary = liandong_mapgen::generate(&source, &out)?;
                println!("{}: written ({summary:?})", out.display());
            }
            Command::Import { command: ImportCommand::Osm { file, out } } => {
                import_osm::run(&file, &out)?;
            }
            Command::Bench { command } => bench::run(command).await?,
        }
        Ok(())
    })
}
