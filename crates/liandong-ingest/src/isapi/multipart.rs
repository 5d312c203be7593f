//! The multipart splitter: a `multipart/form-data` body (RFC 7578, framed as RFC 2046
//! §5.1 says) cut into its one document part (XML, or JSON on newer firmware) and its
//! JPEG parts, as Hikvision ISAPI cameras push them, in time linear in the body.

use crate::FieldError;

/// Longest header block of one multipart part, in bytes. Cameras send two or three short
/// header lines; the bound stops the search for a part's blank line at a fixed distance.
pub const MAX_PART_HEADER_BYTES: usize = 8 * 1024;

/// The JPEG start-of-image marker every JPEG file begins with (ITU-T T.81, B.1.1.3).
const JPEG_SOI: [u8; 2] = [0xFF, 0xD8];

/// The media type of a `Content-Type` value, lower-case, without parameters.
pub(super) fn media_type(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// A parameter of a header value such as `multipart/form-data; boundary="abc"`, unquoted.
pub(super) fn parameter(header: &str, name: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// The format of a push's document part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DocFormat {
    Xml,
    Json,
}

/// A multipart push split: its document part, in its format, and its JPEGs.
pub(super) struct Split<'a> {
    pub format: DocFormat,
    pub doc: &'a [u8],
    pub images: Vec<Vec<u8>>,
}

/// Splits a multipart body (RFC 7578, RFC 2046 §5.1) into its document part (with its
/// format) and its JPEG parts.
///
/// A part is XML when its content type says `xml`, or, without a content type, when its
/// file name ends in `.xml` or its body starts with `<`; likewise JSON with `json`, a
/// `.json` name or a body starting with `{`. A part is a JPEG when its content
/// type is `image/jpeg` (or, without one, its name ends in `.jpg`), and then it must
/// start with FF D8. Other parts are ignored. More than `max_parts` parts are refused,
/// naming `body`, and more than `max_images` JPEG parts, naming `image`
/// ([`super::Limits`]).
pub(super) fn doc_and_images<'a>(
    body: &'a [u8],
    boundary: &str,
    max_parts: usize,
    max_images: usize,
) -> Result<Split<'a>, FieldError> {
    let mut doc: Option<(DocFormat, &[u8])> = None;
    let mut images = Vec::new();
    for (i, part) in split_multipart(body, boundary, max_parts)?.into_iter().enumerate() {
        let headers = PartHeaders::parse(part.headers);
        let label = headers.name().map_or_else(|| format!("part {}", i + 1), |n| format!("part {n:?}"));
        match headers.classify(part.body) {
            PartKind::Doc(format) => {
                if doc.is_some() {
                    return Err(FieldError::new(
                        "body",
                        format!("{label} is a second XML or JSON part; one event per push"),
                    ));
                }
                doc = Some((format, part.body));
            }
            PartKind::Jpeg => {
                if !part.body.starts_with(&JPEG_SOI) {
                    return Err(FieldError::new(
                        "image",
                        format!("{label} is declared a JPEG but does not start with the JPEG marker FF D8"),
                    ));
                }
                if images.len() == max_images {
                    return Err(FieldError::new(
                        "image",
                        format!("{label} is one JPEG too many; at most {max_images} are accepted per push"),
                    ));
                }
                images.push(part.body.to_vec());
            }
            PartKind::Other => {}
        }
    }
    let (format, doc) = doc.ok_or_else(|| FieldError::new("body", "multipart push has no XML or JSON part"))?;
    Ok(Split { format, doc, images })
}

struct Part<'a> {
    headers: &'a [u8],
    body: &'a [u8],
}

/// Finds the parts between `--boundary` delimiter lines; the preamble and epilogue are
/// dropped. Bare LF line ends are accepted as well as CRLF, as some embedded HTTP stacks
/// send them. More than `max_parts` parts are refused, naming `body`.
///
/// Linear in the body: each delimiter search starts where the previous part ended and
/// stops at the next delimiter (memchr's `memmem` is linear in the haystack), and each
/// header search stops at the part's blank line or [`MAX_PART_HEADER_BYTES`].
fn split_multipart<'a>(body: &'a [u8], boundary: &str, max_parts: usize) -> Result<Vec<Part<'a>>, FieldError> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let line_delimiter = [b"\n", delimiter].concat();
    let line_finder = memchr::memmem::Finder::new(&line_delimiter);
    let start = memchr::memmem::find(body, delimiter)
        .ok_or_else(|| FieldError::new("body", format!("no multipart delimiter --{boundary} found")))?;
    let mut pos = start + delimiter.len();
    let mut parts = Vec::new();
    loop {
        if body[pos..].starts_with(b"--") {
            return Ok(parts);
        }
        if parts.len() == max_parts {
            return Err(FieldError::new(
                "body",
                format!("has more than {max_parts} multipart parts; at most {max_parts} are accepted per push"),
            ));
        }
        // Transport padding (RFC 2046 §5.1.1) may follow a delimiter before its line end.
        while matches!(body.get(pos), Some(b' ' | b'\t')) {
            pos += 1;
        }
        pos = skip_line_end(body, pos).ok_or_else(|| {
            FieldError::new(
                "body",
                format!("multipart delimiter --{boundary} at byte {pos} is not followed by a line end"),
            )
        })?;
        let (headers, content_start) = split_headers(body, pos).ok_or_else(|| {
            FieldError::new(
                "body",
                format!(
                    "part {} has no end of headers within {MAX_PART_HEADER_BYTES} bytes (a blank line)",
                    parts.len() + 1
                ),
            )
        })?;
        // A delimiter only counts at the start of a line, and the line end before it
        // belongs to the delimiter, not to the content (RFC 2046 §5.1.1). Searching from
        // the blank line's own LF finds a delimiter that follows an empty part at once.
        let next = line_finder.find(&body[content_start - 1..]).map(|i| i + content_start - 1).ok_or_else(|| {
            FieldError::new(
                "body",
                format!("part {} is not closed; the closing --{boundary}-- is missing", parts.len() + 1),
            )
        })?;
        let mut end = next.max(content_start);
        if end > content_start && body[end - 1] == b'\r' {
            end -= 1;
        }
        parts.push(Part { headers, body: &body[content_start..end] });
        pos = next + line_delimiter.len();
    }
}

/// The position after a CRLF or LF at `pos`.
fn skip_line_end(body: &[u8], pos: usize) -> Option<usize> {
    match body.get(pos..pos + 2) {
        Some(b"\r\n") => Some(pos + 2),
        _ if body.get(pos) == Some(&b'\n') => Some(pos + 1),
        _ => None,
    }
}

/// Splits the part starting at `start` into its header block and the offset of its
/// content: headers end at the first empty line (CRLF or bare LF). A part with no headers
/// starts with the empty line. `None` when no empty line comes within
/// [`MAX_PART_HEADER_BYTES`].
fn split_headers(body: &[u8], start: usize) -> Option<(&[u8], usize)> {
    let window = &body[start..body.len().min(start + MAX_PART_HEADER_BYTES + 2)];
    let mut line_start = 0;
    for lf in memchr::memchr_iter(b'\n', window) {
        let line = &window[line_start..lf];
        if line.is_empty() || line == b"\r" {
            return Some((&window[..line_start], start + lf + 1));
        }
        line_start = lf + 1;
    }
    None
}

struct PartHeaders {
    /// Media type, lower-case, without parameters.
    content_type: Option<String>,
    /// `name` of `Content-Disposition`.
    name: Option<String>,
    /// `filename` of `Content-Disposition`.
    filename: Option<String>,
}

enum PartKind {
    Doc(DocFormat),
    Jpeg,
    Other,
}

impl PartHeaders {
    fn parse(block: &[u8]) -> PartHeaders {
        let mut headers = PartHeaders { content_type: None, name: None, filename: None };
        for line in String::from_utf8_lossy(block).lines() {
            let Some((key, value)) = line.split_once(':') else { continue };
            let key = key.trim();
            if key.eq_ignore_ascii_case("content-type") {
                headers.content_type = Some(media_type(value));
            } else if key.eq_ignore_ascii_case("content-disposition") {
                headers.name = parameter(value, "name");
                headers.filename = parameter(value, "filename");
            }
        }
        headers
    }

    /// The file name, else the form field name, for error messages and sniffing.
    fn name(&self) -> Option<&str> {
        self.filename.as_deref().or(self.name.as_deref()).filter(|n| !n.is_empty())
    }

    fn classify(&self, body: &[u8]) -> PartKind {
        let name = self.name().unwrap_or("").to_ascii_lowercase();
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        match self.content_type.as_deref() {
            Some(m) if m.contains("xml") => PartKind::Doc(DocFormat::Xml),
            Some(m) if m.contains("json") => PartKind::Doc(DocFormat::Json),
            Some("image/jpeg" | "image/jpg" | "image/pjpeg") => PartKind::Jpeg,
            Some(_) => PartKind::Other,
            None if name.ends_with(".xml") => PartKind::Doc(DocFormat::Xml),
            None if name.ends_with(".json") => PartKind::Doc(DocFormat::Json),
            None if name.ends_with(".jpg") || name.ends_with(".jpeg") => PartKind::Jpeg,
            None if first == Some(&b'<') => PartKind::Doc(DocFormat::Xml),
            None if first == Some(&b'{') => PartKind::Doc(DocFormat::Json),
            None => PartKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode;
    use super::super::test_support::*;

    #[test]
    fn multipart_pushes_that_are_not_one_xml_part_and_jpegs_are_refused() {
        let png = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
        let anpr_multipart = multipart_body(&[("anpr.xml", "application/xml", ANPR_XML.as_bytes())]);
        let rows: Vec<Refusal> = vec![
            (
                "multipart with no XML part",
                MULTIPART,
                multipart_body(&[("picture.jpg", "image/jpeg", &jpeg(1))]),
                "body",
                "no XML or JSON part",
            ),
            (
                "multipart JPEG part that is a PNG",
                MULTIPART,
                multipart_body(&[
                    ("anpr.xml", "application/xml", ANPR_XML.as_bytes()),
                    ("plate.jpg", "image/jpeg", &png),
                ]),
                "image",
                "\"plate.jpg\"",
            ),
            (
                "multipart cut short",
                MULTIPART,
                anpr_multipart[..anpr_multipart.len() - BOUNDARY.len() - 8].to_vec(),
                "body",
                "closing --MIME_boundary_7d9f2c-- is missing",
            ),
            (
                "multipart with another boundary",
                Some("multipart/form-data; boundary=other"),
                anpr_multipart.clone(),
                "body",
                "no multipart delimiter --other",
            ),
            (
                "multipart bad XML part",
                MULTIPART,
                multipart_body(&[("a.xml", "text/xml", b"<EventNotificationAlert>")]),
                "body",
                "ends before",
            ),
        ];
        assert_refused(rows);
    }

    #[test]
    fn multipart_framing_that_cameras_send_is_still_accepted() {
        let xml = ANPR_XML.replace('\n', "\r\n");
        let jpg = jpeg(1);
        let framings: [(&str, Vec<u8>); 5] = [
            (
                "a preamble, transport padding after delimiters and an epilogue",
                [
                    b"This is a multi-part message in MIME format.\r\n".as_slice(),
                    format!("--{BOUNDARY}  \r\nContent-Type: text/xml\r\n\r\n").as_bytes(),
                    xml.as_bytes(),
                    format!("\r\n--{BOUNDARY}\t\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes(),
                    &jpg,
                    format!("\r\n--{BOUNDARY}--\r\nepilogue\r\n").as_bytes(),
                ]
                .concat(),
            ),
            (
                "a part without headers, sniffed as XML, then an empty part",
                [
                    format!("--{BOUNDARY}\r\n\r\n").as_bytes(),
                    xml.as_bytes(),
                    format!("\r\n--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\n\r\n--{BOUNDARY}--").as_bytes(),
                ]
                .concat(),
            ),
            (
                "headers ending in LF then a CRLF blank line, no closing line end",
                [
                    format!("--{BOUNDARY}\nContent-Type: application/xml\n\n").as_bytes(),
                    xml.as_bytes(),
                    format!("\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"p.jpg\"\r\n\r\n").as_bytes(),
                    &jpg,
                    format!("\r\n--{BOUNDARY}--").as_bytes(),
                ]
                .concat(),
            ),
            (
                "a boundary string inside a part that is not at a line start",
                [
                    format!("--{BOUNDARY}\r\nContent-Type: application/xml\r\n\r\n").as_bytes(),
                    xml.replace("ANPR</eventDescription>", &format!("ANPR --{BOUNDARY}</eventDescription>")).as_bytes(),
                    format!("\r\n--{BOUNDARY}--\r\n").as_bytes(),
                ]
                .concat(),
            ),
            ("a push of one XML part", multipart_body(&[("anpr.xml", "application/xml", ANPR_XML.as_bytes())])),
        ];
        for (name, body) in framings {
            let event = decode(MULTIPART, &body).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(event.plate.map(|p| p.raw), Some("川S12345".to_owned()), "{name}");
        }
    }
}
