//! TLS for the simulator and the load tools: `https://` and `wss://` server URLs over
//! rustls (the ring provider, as the server), trusting only the certificate authority
//! given with `--ca-cert` (no bundled root list: for a publicly signed server, pass the
//! system's bundle, e.g. `/etc/ssl/certs/ca-certificates.crt`).

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Where a tool connects: the server's base URL taken apart.
#[derive(Clone, Debug)]
pub struct Target {
    /// `host:port`, for connecting and for the `Host` header.
    pub host: String,
    /// The host alone, the name the certificate must carry.
    name: String,
    /// The client's TLS configuration for an `https://` URL.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Target {
    /// Parses `http://host:port` or `https://host:port` (a trailing `/` is allowed);
    /// `https` needs the CA file.
    pub fn parse(url: &str, ca_cert: Option<&Path>) -> anyhow::Result<Target> {
        let url = url.trim_end_matches('/');
        let (host, https) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(h), _) => (h, false),
            (_, Some(h)) => (h, true),
            _ => anyhow::bail!("--url must be http://host:port or https://host:port, got {url}"),
        };
        anyhow::ensure!(!host.is_empty() && !host.contains('/'), "--url must be a base URL (no path), got {url}");
        let default_port = if https { 443 } else { 80 };
        let (name, host) = match host.rsplit_once(':') {
            Some((name, port)) if !host.ends_with(']') && port.parse::<u16>().is_ok() => (name, host.to_owned()),
            _ => (host, format!("{host}:{default_port}")),
        };
        let tls = if https { Some(client_config(ca_cert)?) } else { None };
        Ok(Target { host, name: name.trim_start_matches('[').trim_end_matches(']').to_owned(), tls })
    }

    /// Opens a connection: TLS for `https://`, plain TCP otherwise.
    pub async fn connect(&self) -> io::Result<Stream> {
        let tcp = TcpStream::connect(&self.host).await?;
        tcp.set_nodelay(true)?;
        let Some(config) = &self.tls else { return Ok(Stream::Plain(tcp)) };
        let name =
            ServerName::try_from(self.name.clone()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let tls = tokio_rustls::TlsConnector::from(config.clone()).connect(name, tcp).await?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

/// The rustls client configuration that trusts the certificates of `ca_cert` (PEM);
/// `https://` without one is refused, since nothing else is trusted.
pub fn client_config(ca_cert: Option<&Path>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let path = ca_cert.context("an https:// URL needs --ca-cert PATH (the CA that signed the server's certificate)")?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).with_context(|| format!("reading {}", path.display()))? {
        let cert = cert.with_context(|| format!("a certificate in {}", path.display()))?;
        roots.add(cert).with_context(|| format!("a certificate in {}", path.display()))?;
    }
    anyhow::ensure!(!roots.is_empty(), "{} holds no certificate", path.display());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // The server speaks HTTP/1.1 only; websockets upgrade from it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// An HTTP client for the tools, trusting `--ca-cert` when one is given.
pub fn http_client(builder: reqwest::ClientBuilder, ca_cert: Option<&Path>) -> anyhow::Result<reqwest::Client> {
    let builder = match ca_cert {
        Some(_) => builder.use_preconfigured_tls((*client_config(ca_cert)?).clone()),
        None => builder,
    };
    Ok(builder.build()?)
}

/// Connects a websocket client to `url` (`ws://` or `wss://`).
pub async fn connect_ws(
    url: &str,
    ca_cert: Option<&Path>,
) -> anyhow::Result<tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>> {
    let connector = if url.starts_with("wss://") {
        Some(tokio_tungstenite::Connector::Rustls(client_config(ca_cert)?))
    } else {
        None
    };
    let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(url, None, true, connector).await?;
    Ok(ws)
}

/// A load tool's connection: plain or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_taken_apart_and_https_needs_a_ca() {
        let t = Target::parse("http://127.0.0.1:8080/", None).unwrap();
        assert_eq!((t.host.as_str(), t.name.as_str(), t.tls.is_none()), ("127.0.0.1:8080", "127.0.0.1", true));
        let t = Target::parse("http://localhost", None).unwrap();
        assert_eq!(t.host, "localhost:80");
        let e = Target::parse("https://127.0.0.1:8443", None).unwrap_err();
        assert!(format!("{e:#}").contains("--ca-cert"), "{e:#}");
        assert!(Target::parse("ftp://x", None).is_err());
        assert!(Target::parse("http://x:1/api", None).is_err());
    }
}
