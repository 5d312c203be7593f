//! The simulator's options (`liandong simulate --help`), at the bottom of its layers so
//! that every part may read them.

use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Admin token, to register the simulated devices.
    #[arg(long, env = "LIANDONG_TOKEN")]
    pub token: String,
    /// Map directory with routes and posts.
    #[arg(long, default_value = "maps/dazhu")]
    pub maps: PathBuf,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 1.0)]
    pub speedup: f64,
    /// Seconds between two reports of one device (simulated time).
    #[arg(long, default_value_t = 5.0)]
    pub interval_s: f64,
    /// Operator token for the duty operator's steps (opening, dispatching and closing
    /// incidents, acknowledging alerts) when the operator on duty cannot sign in as
    /// their person; without it, the admin token.
    #[arg(long, env = "LIANDONG_OPERATOR_TOKEN")]
    pub operator_token: Option<String>,
    /// PEM file of the CA that signed the server's certificate, for an `https://` URL
    /// (the team leaders' feeds are then `wss://`).
    #[arg(long, env = "LIANDONG_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// The server's JT/T 808 listener (host:port): a few patrol cars then report over
    /// JT/T 808 instead of staying out of the demo.
    #[arg(long)]
    pub jt808: Option<std::net::SocketAddr>,
}
