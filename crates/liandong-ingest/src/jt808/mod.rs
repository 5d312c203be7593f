//! JT/T 808 (《道路运输车辆卫星定位系统终端通讯协议及数据格式》), the protocol of the
//! BeiDou terminals in the county's patrol cars: frames, both header editions (2013 and
//! 2019) and the messages the platform acts on.
//!
//! Pure and bounded: no I/O, every read checked against what is left, work and memory
//! linear in the frame (at most [`MAX_FRAME_BYTES`] on the wire). Sub-packaged messages
//! are *refused*, not reassembled: [`Message::decode`] answers
//! [`Jt808Error::Unsupported`] for them, which the platform answers with result 3. A
//! terminal splits only messages over 1023 bytes, which none of those handled here
//! needs; refusing keeps a connection's memory at one frame.
//!
//! Positions are WGS 84 as the standard requires (JT/T 808 §8.18: "WGS-84 坐标系"), so
//! reports carry [`liandong_core::Datum::Wgs84`] and no GCJ-02 shift is applied.

mod body;
mod frame;
#[cfg(test)]
mod tests;

pub use body::{
    AnswerResult, Auth, GeneralAnswer, Location, LocationBatch, Message, Register, RegisterAnswer, RegisterResult,
    ALARM_EMERGENCY, STATUS_LOCATED, STATUS_SOUTH, STATUS_WEST,
};
pub use frame::{
    checksum, decode, encode, escape, push_bcd, scan, unescape, FrameError, Header, Packet, Scan, SubPackage, Version,
    ESCAPE, FLAG, MAX_BODY_BYTES, MAX_FRAME_BYTES, MAX_HEADER_BYTES,
};

/// Message ids (JT/T 808 §8).
pub mod id {
    pub const TERMINAL_ANSWER: u16 = 0x0001;
    pub const HEARTBEAT: u16 = 0x0002;
    pub const LOGOUT: u16 = 0x0003;
    pub const REGISTER: u16 = 0x0100;
    pub const AUTH: u16 = 0x0102;
    pub const LOCATION: u16 = 0x0200;
    pub const LOCATION_BATCH: u16 = 0x0704;
    pub const PLATFORM_ANSWER: u16 = 0x8001;
    pub const REGISTER_ANSWER: u16 = 0x8100;
}

/// Why bytes are not a message we accept, naming the field (`header.phone`,
/// `locations[2].time`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Jt808Error {
    #[error("{field}: needs {need} bytes, only {left} left")]
    Truncated { field: String, need: usize, left: usize },
    #[error("frame: escape byte 0x7d at offset {offset} followed by {next:02x?} (only 01 and 02 are defined)")]
    BadEscape { offset: usize, next: Option<u8> },
    #[error("check_code: received {received:#04x}, the frame's bytes give {computed:#04x}")]
    BadChecksum { computed: u8, received: u8 },
    #[error("header.attributes: declares a body of {declared} bytes, the frame holds {actual}")]
    LengthMismatch { declared: usize, actual: usize },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{what} is not supported")]
    Unsupported { what: String },
}

impl Jt808Error {
    fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Jt808Error {
        Jt808Error::Invalid { field: field.into(), reason: reason.into() }
    }

    /// The same error seen from an enclosing value (`time` → `locations[2].time`).
    fn within(self, prefix: &str) -> Jt808Error {
        match self {
            Jt808Error::Truncated { field, need, left } => {
                Jt808Error::Truncated { field: format!("{prefix}.{field}"), need, left }
            }
            Jt808Error::Invalid { field, reason } => Jt808Error::Invalid { field: format!("{prefix}.{field}"), reason },
            other => other,
        }
    }
}

/// A bounds-checked big-endian cursor over a message: every read says which field it
/// wanted and how much was left when there is not enough.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, field: &str, n: usize) -> Result<&'a [u8], Jt808Error> {
        if n > self.left() {
            return Err(Jt808Error::Truncated { field: field.into(), need: n, left: self.left() });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    pub fn u8(&mut self, field: &str) -> Result<u8, Jt808Error> {
        Ok(self.bytes(field, 1)?[0])
    }

    pub fn u16(&mut self, field: &str) -> Result<u16, Jt808Error> {
        let b = self.bytes(field, 2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self, field: &str) -> Result<u32, Jt808Error> {
        let b = self.bytes(field, 4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// `n` bytes of packed BCD as a string of `2n` digits.
    pub fn bcd(&mut self, field: &str, n: usize) -> Result<String, Jt808Error> {
        let raw = self.bytes(field, n)?;
        let mut out = String::with_capacity(2 * n);
        for b in raw {
            for nibble in [b >> 4, b & 0x0f] {
                if nibble > 9 {
                    return Err(Jt808Error::invalid(field, format!("holds {b:#04x}, which is not BCD")));
                }
                out.push(char::from(b'0' + nibble));
            }
        }
        Ok(out)
    }

    /// `n` bytes of a GBK string padded with NULs (or spaces) on the right, as text.
    pub fn gbk(&mut self, field: &str, n: usize) -> Result<String, Jt808Error> {
        let raw = self.bytes(field, n)?;
        Ok(gbk_text(raw))
    }
}

/// GBK bytes as text, without the NUL and space padding terminals add; bytes GBK cannot
/// decode become U+FFFD rather than failing the message.
fn gbk_text(raw: &[u8]) -> String {
    let end = raw.iter().rposition(|&b| b != 0 && b != b' ').map_or(0, |i| i + 1);
    let (text, _, _) = encoding_rs::GBK.decode(&raw[..end]);
    text.replace('\0', "")
}

/// Text as GBK, for messages the platform (or a test terminal) sends.
fn gbk_bytes(text: &str) -> Vec<u8> {
    encoding_rs::GBK.encode(text).0.into_owned()
}
