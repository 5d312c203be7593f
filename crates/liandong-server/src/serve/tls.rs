//! TLS on the listener (rustls with the ring provider): the certificate chain and key
//! from PEM files, read again when their modification time or size changes (checked
//! every `tls.reload_s` seconds) and on SIGHUP. A handshake takes the pair in service
//! when it begins, so open connections keep theirs; a new pair that does not load (a
//! half-written file, a key that does not match) is refused with a warning and the old
//! one stays.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::watch;

use crate::config::TlsConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls certificate file {path}: {reason}")]
    Cert { path: PathBuf, reason: String },
    #[error("tls key file {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("tls: {0}")]
    Setup(#[from] rustls::Error),
}

/// The certificate pair in service and where it comes from.
pub struct Certificates {
    config: TlsConfig,
    provider: Arc<CryptoProvider>,
    resolver: Arc<Resolver>,
}

/// Hands every handshake the pair in service.
#[derive(Debug)]
struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(PoisonError::into_inner).clone())
    }
}

/// What tells that a file was replaced: its modification time and size.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl Certificates {
    /// Loads the pair; a server with TLS configured does not start without one.
    pub fn load(config: &TlsConfig) -> Result<Certificates, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = read_pair(config, &provider)?;
        tracing::info!(cert = %config.cert.display(), chain = key.cert.len(), "tls certificate loaded");
        Ok(Certificates {
            config: config.clone(),
            provider,
            resolver: Arc::new(Resolver { current: RwLock::new(Arc::new(key)) }),
        })
    }

    pub(super) fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
        let mut server = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.resolver.clone());
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(server)))
    }

    /// Reloads the pair when the files change or on SIGHUP, until `stop`.
    pub(super) async fn keep_fresh(self, mut stop: watch::Receiver<bool>) {
        let mut seen = (stamp(&self.config.cert), stamp(&self.config.key));
        let every = Duration::from_secs(self.config.reload_s.into());
        let mut hangup = hangup_signal();
        loop {
            let forced = tokio::select! {
                () = tokio::time::sleep(every), if !every.is_zero() => false,
                () = next_hangup(&mut hangup) => true,
                _ = stop.wait_for(|stopped| *stopped) => return,
            };
            let now = (stamp(&self.config.cert), stamp(&self.config.key));
            if !forced && now == seen {
                continue;
            }
            // A failed load is not retried until the files change again (or SIGHUP):
            // one warning per bad pair, not one every few seconds.
            seen = now;
            match read_pair(&self.config, &self.provider) {
                Ok(key) => {
                    tracing::info!(cert = %self.config.cert.display(), chain = key.cert.len(), "tls certificate reloaded");
                    *self.resolver.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
                }
                Err(e) => tracing::warn!(error = %e, "tls certificate not reloaded; the previous one stays in service"),
            }
        }
    }
}

fn read_pair(config: &TlsConfig, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let cert_err = |reason: String| TlsError::Cert { path: config.cert.clone(), reason };
    let chain = CertificateDer::pem_file_iter(&config.cert)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_err("no CERTIFICATE block".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&config.key)
        .map_err(|e| TlsError::Key { path: config.key.clone(), reason: e.to_string() })?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::Key { path: config.key.clone(), reason: e.to_string() })?;
    let pair = CertifiedKey::new(chain, signing);
    pair.keys_match().map_err(|e| TlsError::Key {
        path: config.key.clone(),
        reason: format!("does not match the certificate: {e}"),
    })?;
    Ok(pair)
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = ();

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; certificates reload on change only");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangup_signal() -> Hangup {}

#[cfg(unix)]
async fn next_hangup(hangup: &mut Hangup) {
    // A closed signal stream never fires again.
    let fired = match hangup {
        Some(s) => s.recv().await.is_some(),
        None => false,
    };
    if !fired {
        std::future::pending::<()>().await;
    }
}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangup) {
    std::future::pending().await
}
