//! The JT/T 808 frame layer: 0x7e delimiters, the 0x7d escapes, the XOR check code and
//! the message header in both the 2013 and the 2019 layout (JT/T 808-2013 §4.4–4.5,
//! JT/T 808-2019 §4.4–4.5).
//!
//! Everything here is linear in its input and allocates at most the frame's own size.

use super::{Jt808Error, Reader};

/// The byte that opens and closes every frame.
pub const FLAG: u8 = 0x7e;
/// The escape byte: `7d 02` stands for 0x7e and `7d 01` for 0x7d inside a frame.
pub const ESCAPE: u8 = 0x7d;

/// The longest message body the 10-bit length field can declare.
pub const MAX_BODY_BYTES: usize = 1023;
/// The longest header: 2019's 17 bytes plus the 4 bytes of sub-package fields.
pub const MAX_HEADER_BYTES: usize = 21;
/// The longest frame on the wire, flags included: every byte of the longest header,
/// body and check code escaped to two.
pub const MAX_FRAME_BYTES: usize = 2 * (MAX_HEADER_BYTES + MAX_BODY_BYTES + 1) + 2;

/// Body attribute bits (JT/T 808-2013 §4.4.3, 2019 adds bit 14).
const LEN_MASK: u16 = 0x03ff;
const ENCRYPTION_SHIFT: u16 = 10;
const SUBPACKAGE_BIT: u16 = 1 << 13;
const VERSION_BIT: u16 = 1 << 14;

/// Which edition of the header a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// JT/T 808-2013 (and 2011): a 6-byte BCD phone number, no version byte.
    V2013,
    /// JT/T 808-2019: the version flag set, a protocol version byte (1 for the 2019
    /// edition) and a 10-byte BCD phone number.
    V2019 { protocol: u8 },
}

impl Version {
    /// BCD bytes of the phone number in this edition's header.
    pub fn phone_bytes(self) -> usize {
        match self {
            Version::V2013 => 6,
            Version::V2019 { .. } => 10,
        }
    }
}

/// A message split across several frames (JT/T 808 §4.4.3, "消息包封装项").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubPackage {
    /// How many packages the message has.
    pub total: u16,
    /// This package's number, from 1.
    pub index: u16,
}

/// A message header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub msg_id: u16,
    pub version: Version,
    /// The terminal's phone number as BCD digits, leading zeros kept (12 digits in 2013,
    /// 20 in 2019).
    pub phone: String,
    /// The sender's message serial number, which answers quote.
    pub serial: u16,
    /// The 3 encryption bits: 0 plain, bit 0 (value 1) RSA.
    pub encryption: u8,
    /// The body length the attributes declare.
    pub body_len: usize,
    pub subpackage: Option<SubPackage>,
}

impl Header {
    /// A header for a message to send (the body length is filled in by [`encode`]).
    pub fn new(msg_id: u16, version: Version, phone: &str, serial: u16) -> Header {
        Header { msg_id, version, phone: phone.to_owned(), serial, encryption: 0, body_len: 0, subpackage: None }
    }

    /// The terminal's phone number without leading zeros (at least one digit), so that
    /// a terminal's 2013 and 2019 headers name it alike.
    pub fn phone_digits(&self) -> &str {
        let t = self.phone.trim_start_matches('0');
        if t.is_empty() {
            "0"
        } else {
            t
        }
    }
}

/// Where the next frame of a receive buffer lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// No complete frame yet; keep the buffer and read more.
    NeedMore,
    /// The first `skip` bytes are not part of any frame (noise before a flag, or a frame
    /// over [`MAX_FRAME_BYTES`] that was never closed): drop them.
    Skip { skip: usize },
    /// `buf[start..end]` is a frame's content between its flags; drop `buf[..consumed]`.
    Frame { start: usize, end: usize, consumed: usize },
}

/// Finds the next frame in `buf`. A closing flag also opens nothing: the byte after it
/// starts the search again, so `7e…7e 7e…7e` and the shared-flag style `7e…7e…7e` both
/// split; an empty `7e 7e` is skipped as noise.
pub fn scan(buf: &[u8]) -> Scan {
    let Some(open) = buf.iter().position(|&b| b == FLAG) else {
        // Nothing here can start a frame.
        return if buf.is_empty() { Scan::NeedMore } else { Scan::Skip { skip: buf.len() } };
    };
    if open > 0 {
        return Scan::Skip { skip: open };
    }
    match buf[1..].iter().position(|&b| b == FLAG) {
        // `7e 7e`: the first flag closed something we never saw; start at the second.
        Some(0) => Scan::Skip { skip: 1 },
        Some(n) => Scan::Frame { start: 1, end: 1 + n, consumed: 2 + n },
        None if buf.len() > MAX_FRAME_BYTES => Scan::Skip { skip: buf.len() },
        None => Scan::NeedMore,
    }
}

/// Undoes the escapes of a frame's content (between its flags), appending to `out`.
pub fn unescape(content: &[u8], out: &mut Vec<u8>) -> Result<(), Jt808Error> {
    out.reserve(content.len());
    let mut bytes = content.iter().enumerate();
    while let Some((i, &b)) = bytes.next() {
        if b != ESCAPE {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some((_, 0x01)) => out.push(ESCAPE),
            Some((_, 0x02)) => out.push(FLAG),
            other => return Err(Jt808Error::BadEscape { offset: i, next: other.map(|(_, b)| *b) }),
        }
    }
    Ok(())
}

/// Escapes `raw` (header, body and check code) into `out`.
pub fn escape(raw: &[u8], out: &mut Vec<u8>) {
    for &b in raw {
        match b {
            FLAG => out.extend_from_slice(&[ESCAPE, 0x02]),
            ESCAPE => out.extend_from_slice(&[ESCAPE, 0x01]),
            _ => out.push(b),
        }
    }
}

/// The check code: every byte of header and body XORed together.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |acc, b| acc ^ b)
}

/// Reads a header from the start of an unescaped message (check code excluded).
pub fn read_header(r: &mut Reader<'_>) -> Result<Header, Jt808Error> {
    let msg_id = r.u16("header.msg_id")?;
    let attrs = r.u16("header.attributes")?;
    let version = if attrs & VERSION_BIT != 0 {
        Version::V2019 { protocol: r.u8("header.protocol_version")? }
    } else {
        Version::V2013
    };
    let phone = r.bcd("header.phone", version.phone_bytes())?;
    let serial = r.u16("header.serial")?;
    let subpackage = if attrs & SUBPACKAGE_BIT != 0 {
        Some(SubPackage { total: r.u16("header.package_total")?, index: r.u16("header.package_index")? })
    } else {
        None
    };
    Ok(Header {
        msg_id,
        version,
        phone,
        serial,
        encryption: ((attrs >> ENCRYPTION_SHIFT) & 0x7) as u8,
        body_len: usize::from(attrs & LEN_MASK),
        subpackage,
    })
}

/// A frame whose header was read, whatever became of the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub header: Header,
    /// The body, unescaped, exactly `header.body_len` bytes.
    pub body: Vec<u8>,
}

/// Why a frame was refused, with its header when that much could be read (so that the
/// platform can answer "bad message" to the right serial number).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct FrameError {
    pub header: Option<Header>,
    pub error: Jt808Error,
}

/// Decodes a frame's content (between its flags): unescapes it, checks the check code
/// and the declared body length, and splits header and body.
pub fn decode(content: &[u8]) -> Result<Packet, FrameError> {
    let no_header = |error| FrameError { header: None, error };
    let mut raw = Vec::new();
    unescape(content, &mut raw).map_err(no_header)?;
    let Some((&check, message)) = raw.split_last() else {
        return Err(no_header(Jt808Error::Truncated { field: "check_code".into(), need: 1, left: 0 }));
    };
    let mut r = Reader::new(message);
    let header = read_header(&mut r).map_err(no_header)?;
    let with_header = |error| FrameError { header: Some(header.clone()), error };
    let computed = checksum(message);
    if computed != check {
        return Err(with_header(Jt808Error::BadChecksum { computed, received: check }));
    }
    if r.left() != header.body_len {
        return Err(with_header(Jt808Error::LengthMismatch { declared: header.body_len, actual: r.left() }));
    }
    let body = r.rest().to_vec();
    Ok(Packet { header, body })
}

/// Encodes a message: header (with `body`'s length), body, check code, escaped and
/// flagged. The body must fit the length field ([`MAX_BODY_BYTES`]); a longer one is
/// refused rather than truncated.
pub fn encode(header: &Header, body: &[u8]) -> Result<Vec<u8>, Jt808Error> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Jt808Error::Invalid {
            field: "body".into(),
            reason: format!("is {} bytes; a message body holds at most {MAX_BODY_BYTES}", body.len()),
        });
    }
    let mut raw = Vec::with_capacity(MAX_HEADER_BYTES + body.len() + 1);
    raw.extend_from_slice(&header.msg_id.to_be_bytes());
    let mut attrs = body.len() as u16 | (u16::from(header.encryption & 0x7) << ENCRYPTION_SHIFT);
    if header.subpackage.is_some() {
        attrs |= SUBPACKAGE_BIT;
    }
    if let Version::V2019 { .. } = header.version {
        attrs |= VERSION_BIT;
    }
    raw.extend_from_slice(&attrs.to_be_bytes());
    if let Version::V2019 { protocol } = header.version {
        raw.push(protocol);
    }
    push_bcd(&mut raw, "header.phone", &header.phone, header.version.phone_bytes())?;
    raw.extend_from_slice(&header.serial.to_be_bytes());
    if let Some(p) = header.subpackage {
        raw.extend_from_slice(&p.total.to_be_bytes());
        raw.extend_from_slice(&p.index.to_be_bytes());
    }
    raw.extend_from_slice(body);
    raw.push(checksum(&raw));
    let mut out = Vec::with_capacity(raw.len() * 2 + 2);
    out.push(FLAG);
    escape(&raw, &mut out);
    out.push(FLAG);
    Ok(out)
}

/// Appends `digits` as `width` bytes of packed BCD, left-padded with zeros.
pub fn push_bcd(out: &mut Vec<u8>, field: &str, digits: &str, width: usize) -> Result<(), Jt808Error> {
    if digits.len() > 2 * width || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Jt808Error::Invalid {
            field: field.into(),
            reason: format!("must be at most {} digits", 2 * width),
        });
    }
    let padded = format!("{digits:0>w$}", w = 2 * width);
    for pair in padded.as_bytes().chunks(2) {
        out.push(((pair[0] - b'0') << 4) | (pair[1] - b'0'));
    }
    Ok(())
}
