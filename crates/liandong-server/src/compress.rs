//! Gzip (RFC 1952) for the answers worth compressing: the web files and the map's layers,
//! which a phone on a slow link would otherwise download at their full size.
//!
//! What is compressed is compressed once and kept: a file of `web/` until it changes on
//! disk (see `web`), a layer for the life of the process (the map is loaded once, at
//! start-up). Compressing MapLibre GL JS (1.1 MB) takes about a tenth of a second of CPU,
//! which per request would make the file service the most expensive route of the
//! server; kept, a compressed answer costs what a plain one does. The best level is used
//! because it is paid once (level 6 gives 0.3 % more for MapLibre).
//!
//! Nothing else is compressed: the ingest endpoints' answers are a few bytes and their
//! cost is the commit, the websocket carries small messages, and an answer under
//! [`MIN_BYTES`] fits in a packet or two either way. Brotli would save about a fifth more
//! of the JavaScript, but only over HTTPS (browsers do not ask for it over plain HTTP)
//! and at the price of a large dependency; gzip's `flate2` is already in the build.
//!
//! Every answer that could have been compressed says `Vary: Accept-Encoding`, so that a
//! cache (the browser's, a proxy's) never gives a compressed copy to a client that did
//! not ask for one.

use std::io::Write;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

/// Answers shorter than this are sent as they are: the saving would be less than a packet.
pub const MIN_BYTES: usize = 1024;

/// Whether the request's `Accept-Encoding` (RFC 9110 §12.5.3) accepts gzip: `gzip` (or
/// its old name `x-gzip`), or `*`, with a quality above zero. `gzip;q=0` refuses it even
/// when `*` is accepted.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut star = false;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            let wanted = parts.all(|p| !is_zero_quality(p));
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                return wanted;
            }
            if coding == "*" {
                star = wanted;
            }
        }
    }
    star
}

/// Whether a parameter is `q=0` (also written `q=0.0`, `q=0.000`).
fn is_zero_quality(param: &str) -> bool {
    let Some((name, value)) = param.split_once('=') else { return false };
    name.trim().eq_ignore_ascii_case("q") && value.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
}

/// Whether answers of this `Content-Type` are text that gzip shrinks: pages, scripts,
/// style sheets, JSON and GeoJSON, the web app manifest, SVG. Images other than SVG and
/// fonts are compressed already.
pub fn compressible(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(essence.as_str(), "application/json" | "application/javascript" | "application/xml")
}

/// `bytes` gzipped at the best level, or `None` when that would not save at least an
/// eighth (already compressed data, or text too short to gain).
pub fn gzip(bytes: &[u8]) -> Option<Bytes> {
    if bytes.len() < MIN_BYTES {
        return None;
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 3), flate2::Compression::best());
    // Writing into a `Vec` cannot fail.
    encoder.write_all(bytes).ok()?;
    let out = encoder.finish().ok()?;
    (out.len() <= bytes.len() - bytes.len() / 8).then(|| Bytes::from(out))
}

/// Adds `Accept-Encoding` to the answer's `Vary`, keeping what is there.
pub fn vary(headers: &mut HeaderMap) {
    let listed = headers.get_all(header::VARY).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|n| n.trim().eq_ignore_ascii_case("accept-encoding") || n.trim() == "*"))
    });
    if !listed {
        headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
}

/// Marks `res` as carrying `gzipped` in place of its body: `Content-Encoding`,
/// `Content-Length` of the compressed bytes, `Vary`. Byte ranges are not offered, as they
/// would count in the compressed bytes.
pub fn as_gzip(mut res: Response, gzipped: Bytes, head_only: bool) -> Response {
    let h = res.headers_mut();
    h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(gzipped.len()));
    h.remove(header::ACCEPT_RANGES);
    vary(h);
    let body = if head_only { Body::empty() } else { Body::from(gzipped) };
    res.map(|_| body)
}

/// An answer that never changes, kept plain and, from the first request that asks for
/// it, gzipped.
#[derive(Debug)]
pub struct Precompressed {
    plain: Bytes,
    content_type: &'static str,
    gzipped: tokio::sync::OnceCell<Option<Bytes>>,
}

impl Precompressed {
    pub fn new(plain: Bytes, content_type: &'static str) -> Precompressed {
        Precompressed { plain, content_type, gzipped: tokio::sync::OnceCell::new() }
    }

    /// The answer to a request with `headers`: gzipped when the client accepts it and it
    /// is worth it, else plain. The first compression runs on the blocking pool, once,
    /// however many requests wait for it.
    pub async fn answer(&self, headers: &HeaderMap) -> Response {
        let plain = ([(header::CONTENT_TYPE, self.content_type)], self.plain.clone()).into_response();
        if self.plain.len() < MIN_BYTES {
            return plain;
        }
        let gzipped = match accepts_gzip(headers) {
            true => self.gzipped().await,
            false => None,
        };
        match gzipped {
            Some(gz) => as_gzip(plain, gz, false),
            None => {
                let mut plain = plain;
                vary(plain.headers_mut());
                plain
            }
        }
    }

    async fn gzipped(&self) -> Option<Bytes> {
        let plain = self.plain.clone();
        self.gzipped
            .get_or_init(|| async move { tokio::task::spawn_blocking(move || gzip(&plain)).await.ok().flatten() })
            .await
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_is_read_with_its_qualities() {
        let table: &[(&[&str], bool)] = &[
            (&[], false),
            (&["gzip"], true),
            (&["gzip, deflate, br, zstd"], true),
            (&["br", "GZip"], true),
            (&["x-gzip"], true),
            (&["identity"], false),
            (&["br;q=1.0, gzip;q=0.5"], true),
            (&["gzip;q=0"], false),
            (&["gzip; q=0.000"], false),
            (&["*"], true),
            (&["*;q=0"], false),
            (&["*, gzip;q=0"], false),
            (&["deflate"], false),
        ];
        for (values, expected) in table {
            let mut headers = HeaderMap::new();
            for v in *values {
                headers.append(header::ACCEPT_ENCODING, HeaderValue::from_static(v));
            }
            assert_eq!(accepts_gzip(&headers), *expected, "{values:?}");
        }
    }

    #[test]
    fn text_types_are_compressed_and_images_are_not() {
        let table: &[(&str, bool)] = &[
            ("text/javascript", true),
            ("text/html; charset=utf-8", true),
            ("text/css", true),
            ("application/json", true),
            ("application/geo+json", true),
            ("application/manifest+json", true),
            ("image/svg+xml", true),
            ("application/javascript", true),
            ("image/png", false),
            ("image/jpeg", false),
            ("font/woff2", false),
            ("application/octet-stream", false),
        ];
        for (ty, expected) in table {
            assert_eq!(compressible(ty), *expected, "{ty}");
        }
    }

    #[test]
    fn gzip_keeps_only_what_saves_enough() {
        let text = "{\"type\":\"Feature\",\"geometry\":null}".repeat(100);
        let gz = gzip(text.as_bytes()).expect("repetitive text compresses");
        assert!(gz.len() < text.len() / 4);
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut plain).unwrap();
        assert_eq!(plain, text.as_bytes());
        assert_eq!(gzip(b"short"), None);
        // Bytes that do not repeat (a xorshift stream) do not shrink.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert_eq!(gzip(&noise), None);
    }
}
