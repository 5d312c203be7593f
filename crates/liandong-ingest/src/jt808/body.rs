//! The message bodies the platform acts on, decoded from and encoded to bytes (both
//! ways, so that the platform's answers and a test terminal's messages share one
//! definition of each layout).

use liandong_core::{Datum, Position};
use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};

use super::frame::{push_bcd, Header, Version};
use super::{gbk_bytes, id, Jt808Error, Reader};
use crate::{Alarm, Report};

/// Alarm flag bit 0: the emergency (SOS) button (JT/T 808 table 24).
pub const ALARM_EMERGENCY: u32 = 1;
/// Status bit 1: the position is located (a valid fix) (JT/T 808 table 25).
pub const STATUS_LOCATED: u32 = 1 << 1;
/// Status bit 2: south latitude.
pub const STATUS_SOUTH: u32 = 1 << 2;
/// Status bit 3: west longitude.
pub const STATUS_WEST: u32 = 1 << 3;

/// At most this many locations in one 0x0704 batch: a 1023-byte body holds at most 36
/// of the shortest (28-byte) location bodies with their 2-byte length, so a larger count
/// is a lie.
const MAX_BATCH: usize = 36;

/// A message, decoded by its id.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// 0x0002: the terminal is alive.
    Heartbeat,
    /// 0x0003: the terminal logs out (its session ends).
    Logout,
    /// 0x0100: terminal registration.
    Register(Register),
    /// 0x0102: terminal authentication.
    Auth(Auth),
    /// 0x0200: a location report.
    Location(Location),
    /// 0x0704: a batch of location reports.
    LocationBatch(LocationBatch),
    /// 0x8001: the platform's general answer.
    GeneralAnswer(GeneralAnswer),
    /// 0x8100: the platform's answer to a registration.
    RegisterAnswer(RegisterAnswer),
    /// A message id this decoder does not read (its body is left as it is).
    Other(u16),
}

impl Message {
    /// Decodes the body of a message whose header is `header`. Encrypted and
    /// sub-packaged messages are refused as [`Jt808Error::Unsupported`].
    pub fn decode(header: &Header, body: &[u8]) -> Result<Message, Jt808Error> {
        if header.encryption != 0 {
            return Err(Jt808Error::Unsupported { what: "an encrypted message body (RSA)".into() });
        }
        if header.subpackage.is_some() {
            return Err(Jt808Error::Unsupported { what: "a sub-packaged message".into() });
        }
        let mut r = Reader::new(body);
        let message = match header.msg_id {
            id::HEARTBEAT => Message::Heartbeat,
            id::LOGOUT => Message::Logout,
            id::REGISTER => Message::Register(Register::read(&mut r, header.version)?),
            id::AUTH => Message::Auth(Auth::read(&mut r, header.version)?),
            id::LOCATION => Message::Location(Location::read(&mut r)?),
            id::LOCATION_BATCH => Message::LocationBatch(LocationBatch::read(&mut r)?),
            id::PLATFORM_ANSWER => Message::GeneralAnswer(GeneralAnswer::read(&mut r)?),
            id::REGISTER_ANSWER => Message::RegisterAnswer(RegisterAnswer::read(&mut r)?),
            other => return Ok(Message::Other(other)),
        };
        Ok(message)
    }
}

/// 0x0100, terminal registration (JT/T 808 §8.5). Field widths differ by edition:
/// manufacturer 5/11 bytes, model 20/30, terminal id 7/30 (2013/2019).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Register {
    pub province: u16,
    pub city: u16,
    pub manufacturer: String,
    pub model: String,
    pub terminal_id: String,
    /// 0 when the vehicle has no plate, else the plate's colour code (JT/T 415).
    pub plate_colour: u8,
    /// The plate (or the VIN when `plate_colour` is 0).
    pub plate: String,
}

impl Register {
    fn widths(version: Version) -> (usize, usize, usize) {
        match version {
            Version::V2013 => (5, 20, 7),
            Version::V2019 { .. } => (11, 30, 30),
        }
    }

    fn read(r: &mut Reader<'_>, version: Version) -> Result<Register, Jt808Error> {
        let (m, model, t) = Register::widths(version);
        Ok(Register {
            province: r.u16("province")?,
            city: r.u16("city")?,
            manufacturer: r.gbk("manufacturer", m)?,
            model: r.gbk("model", model)?,
            terminal_id: r.gbk("terminal_id", t)?,
            plate_colour: r.u8("plate_colour")?,
            plate: super::gbk_text(r.rest()),
        })
    }

    /// The body as a terminal of `version` sends it; text longer than its field is cut.
    pub fn encode(&self, version: Version) -> Vec<u8> {
        let (m, model, t) = Register::widths(version);
        let mut out = Vec::new();
        out.extend_from_slice(&self.province.to_be_bytes());
        out.extend_from_slice(&self.city.to_be_bytes());
        for (text, width) in [(&self.manufacturer, m), (&self.model, model), (&self.terminal_id, t)] {
            let mut b = gbk_bytes(text);
            b.resize(width, 0);
            out.extend_from_slice(&b);
        }
        out.push(self.plate_colour);
        out.extend_from_slice(&gbk_bytes(&self.plate));
        out
    }
}

/// 0x0102, terminal authentication (JT/T 808 §8.6): 2013 sends the code as the whole
/// body; 2019 sends its length, the code, the IMEI (15 bytes) and the software version
/// (20 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Auth {
    pub code: String,
    /// 2019 only.
    pub imei: Option<String>,
    /// 2019 only.
    pub software_version: Option<String>,
}

impl Auth {
    fn read(r: &mut Reader<'_>, version: Version) -> Result<Auth, Jt808Error> {
        match version {
            Version::V2013 => Ok(Auth { code: super::gbk_text(r.rest()), imei: None, software_version: None }),
            Version::V2019 { .. } => {
                let n = usize::from(r.u8("code_length")?);
                let code = r.gbk("code", n)?;
                let imei = r.gbk("imei", 15)?;
                let software_version = r.gbk("software_version", 20)?;
                Ok(Auth { code, imei: Some(imei), software_version: Some(software_version) })
            }
        }
    }

    /// The body as a terminal of `version` sends it.
    pub fn encode(&self, version: Version) -> Vec<u8> {
        let code = gbk_bytes(&self.code);
        match version {
            Version::V2013 => code,
            Version::V2019 { .. } => {
                let mut out = vec![code.len().min(255) as u8];
                out.extend_from_slice(&code[..code.len().min(255)]);
                for (text, width) in [(&self.imei, 15), (&self.software_version, 20)] {
                    let mut b = gbk_bytes(text.as_deref().unwrap_or(""));
                    b.resize(width, 0);
                    out.extend_from_slice(&b);
                }
                out
            }
        }
    }
}

/// 0x0200, a location report's basic fields and the additional items read (JT/T 808
/// §8.18, tables 23–27).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Location {
    pub alarm: u32,
    pub status: u32,
    /// Latitude in millionths of a degree, without its sign (see [`STATUS_SOUTH`]).
    pub lat_e6: u32,
    /// Longitude in millionths of a degree, without its sign (see [`STATUS_WEST`]).
    pub lon_e6: u32,
    /// Metres above sea level.
    pub altitude_m: u16,
    /// Tenths of a km/h.
    pub speed_dkmh: u16,
    /// Degrees from true north, 0–359.
    pub direction_deg: u16,
    /// `YYMMDDhhmmss` in GMT+8, as the 12 BCD digits sent.
    pub time_bcd: String,
    /// Additional item 0x01: odometer, tenths of a km.
    pub mileage_dkm: Option<u32>,
    /// Additional item 0x02: fuel, tenths of a litre.
    pub fuel_dl: Option<u16>,
}

/// The fixed part of a location body: alarm, status, lat, lon (4 each), altitude,
/// speed, direction (2 each), time (6).
const LOCATION_FIXED_BYTES: usize = 28;

impl Location {
    fn read(r: &mut Reader<'_>) -> Result<Location, Jt808Error> {
        let mut l = Location {
            alarm: r.u32("alarm")?,
            status: r.u32("status")?,
            lat_e6: r.u32("lat")?,
            lon_e6: r.u32("lon")?,
            altitude_m: r.u16("altitude")?,
            speed_dkmh: r.u16("speed")?,
            direction_deg: r.u16("direction")?,
            time_bcd: r.bcd("time", 6)?,
            ..Location::default()
        };
        // Additional items: id, length, value. Unknown ids are skipped by their length;
        // a length running past the body is refused.
        let mut n = 0;
        while r.left() > 0 {
            let field = format!("items[{n}]");
            let item_id = r.u8(&format!("{field}.id"))?;
            let len = usize::from(r.u8(&format!("{field}.length"))?);
            let value = r.bytes(&format!("{field}.value"), len)?;
            match (item_id, value) {
                (0x01, &[a, b, c, d]) => l.mileage_dkm = Some(u32::from_be_bytes([a, b, c, d])),
                (0x02, &[a, b]) => l.fuel_dl = Some(u16::from_be_bytes([a, b])),
                (0x01 | 0x02, _) => {
                    return Err(Jt808Error::invalid(
                        format!("{field}.length"),
                        format!("item {item_id:#04x} is {} bytes, not {len}", if item_id == 1 { 4 } else { 2 }),
                    ))
                }
                _ => {}
            }
            n += 1;
        }
        Ok(l)
    }

    /// The body as a terminal sends it, with the mileage and fuel items when set.
    pub fn encode(&self) -> Result<Vec<u8>, Jt808Error> {
        let mut out = Vec::with_capacity(LOCATION_FIXED_BYTES + 10);
        for v in [self.alarm, self.status, self.lat_e6, self.lon_e6] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        for v in [self.altitude_m, self.speed_dkmh, self.direction_deg] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        push_bcd(&mut out, "time", &self.time_bcd, 6)?;
        if let Some(m) = self.mileage_dkm {
            out.extend_from_slice(&[0x01, 4]);
            out.extend_from_slice(&m.to_be_bytes());
        }
        if let Some(f) = self.fuel_dl {
            out.extend_from_slice(&[0x02, 2]);
            out.extend_from_slice(&f.to_be_bytes());
        }
        Ok(out)
    }

    /// The fix time in Unix milliseconds (UTC): the BCD time is GMT+8 (China time).
    pub fn fix_time_ms(&self) -> Result<i64, Jt808Error> {
        let bad = |reason: &str| Jt808Error::invalid("time", format!("{} {reason}", self.time_bcd));
        let d = self.time_bcd.as_bytes();
        if d.len() != 12 {
            return Err(bad("is not 12 digits"));
        }
        let two = |i: usize| (d[i] - b'0') * 10 + (d[i + 1] - b'0');
        let month = Month::try_from(two(2)).map_err(|_| bad("has no such month"))?;
        let date =
            Date::from_calendar_date(2000 + i32::from(two(0)), month, two(4)).map_err(|_| bad("has no such day"))?;
        let clock = Time::from_hms(two(6), two(8), two(10)).map_err(|_| bad("has no such time of day"))?;
        let china = UtcOffset::from_hms(8, 0, 0).map_err(|_| bad("cannot be placed in GMT+8"))?;
        let at = PrimitiveDateTime::new(date, clock).assume_offset(china);
        Ok((at.unix_timestamp_nanos() / 1_000_000) as i64)
    }

    /// Sets the time from Unix milliseconds, as GMT+8 BCD digits (for test terminals).
    pub fn set_time_ms(&mut self, ms: i64) {
        let china = UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC);
        let t =
            time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let t = t.to_offset(china);
        self.time_bcd = format!(
            "{:02}{:02}{:02}{:02}{:02}{:02}",
            t.year().rem_euclid(100),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
    }

    /// Signed WGS 84 degrees `(lon, lat)` from the magnitudes and the status bits.
    pub fn lon_lat(&self) -> (f64, f64) {
        let sign = |bit| if self.status & bit != 0 { -1.0 } else { 1.0 };
        (sign(STATUS_WEST) * f64::from(self.lon_e6) / 1e6, sign(STATUS_SOUTH) * f64::from(self.lat_e6) / 1e6)
    }

    /// Sets latitude, longitude and their status bits from signed degrees.
    pub fn set_lon_lat(&mut self, lon: f64, lat: f64) {
        self.status = (self.status & !(STATUS_SOUTH | STATUS_WEST))
            | if lat < 0.0 { STATUS_SOUTH } else { 0 }
            | if lon < 0.0 { STATUS_WEST } else { 0 };
        self.lat_e6 = (lat.abs() * 1e6).round() as u32;
        self.lon_e6 = (lon.abs() * 1e6).round() as u32;
    }

    /// The report of device `device_id`: WGS 84, fix time checked to be 2000–2099, the
    /// emergency bit as [`Alarm::Sos`]. A report without a fix (status bit 1 clear) is
    /// refused: its coordinates are whatever the terminal last had, or zero.
    pub fn to_report(&self, device_id: String) -> Result<Report, Jt808Error> {
        if self.status & STATUS_LOCATED == 0 {
            return Err(Jt808Error::invalid("status", "says the terminal has no fix (bit 1 clear)"));
        }
        let (lon, lat) = self.lon_lat();
        let position = Position::new(lon, lat).map_err(|e| {
            let field = if e.field().contains("lat") { "lat" } else { "lon" };
            Jt808Error::invalid(field, format!("{} is out of range", if field == "lat" { lat } else { lon }))
        })?;
        let fix_ms = crate::device_time(self.fix_time_ms()?).map_err(|reason| Jt808Error::invalid("time", reason))?;
        let mut attributes = serde_json::Map::new();
        attributes.insert("jt808_alarm".into(), self.alarm.into());
        attributes.insert("jt808_status".into(), self.status.into());
        if let Some(m) = self.mileage_dkm {
            attributes.insert("odometer_km".into(), (f64::from(m) / 10.0).into());
        }
        if let Some(f) = self.fuel_dl {
            attributes.insert("fuel_l".into(), (f64::from(f) / 10.0).into());
        }
        Ok(Report {
            device_id,
            position,
            datum: Datum::Wgs84,
            fix_time_ms: Some(fix_ms),
            speed_mps: Some(f64::from(self.speed_dkmh) / 36.0),
            course_deg: (self.direction_deg < 360).then_some(f64::from(self.direction_deg)),
            altitude_m: Some(f64::from(self.altitude_m)),
            accuracy_m: None,
            battery_pct: None,
            attributes,
            key: None,
            alarm: (self.alarm & ALARM_EMERGENCY != 0).then_some(Alarm::Sos),
            mock: false,
        })
    }
}

/// 0x0704, a batch of location reports (JT/T 808 §8.48): a count, the type (0 regular,
/// 1 blind-area catch-up), then each 0x0200 body behind its 2-byte length.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LocationBatch {
    pub kind: u8,
    pub locations: Vec<Location>,
}

impl LocationBatch {
    fn read(r: &mut Reader<'_>) -> Result<LocationBatch, Jt808Error> {
        let count = usize::from(r.u16("count")?);
        let kind = r.u8("type")?;
        if count == 0 || count > MAX_BATCH {
            return Err(Jt808Error::invalid("count", format!("is {count}; a batch holds 1 to {MAX_BATCH} locations")));
        }
        let mut locations = Vec::with_capacity(count);
        for i in 0..count {
            let prefix = format!("locations[{i}]");
            let len = usize::from(r.u16(&format!("{prefix}.length"))?);
            let body = r.bytes(&format!("{prefix}.body"), len)?;
            locations.push(Location::read(&mut Reader::new(body)).map_err(|e| e.within(&prefix))?);
        }
        if r.left() > 0 {
            return Err(Jt808Error::invalid("count", format!("is {count}, but {} bytes follow the last", r.left())));
        }
        Ok(LocationBatch { kind, locations })
    }

    /// The body as a terminal sends it.
    pub fn encode(&self) -> Result<Vec<u8>, Jt808Error> {
        let mut out = Vec::new();
        out.extend_from_slice(&(self.locations.len() as u16).to_be_bytes());
        out.push(self.kind);
        for l in &self.locations {
            let b = l.encode()?;
            out.extend_from_slice(&(b.len() as u16).to_be_bytes());
            out.extend_from_slice(&b);
        }
        Ok(out)
    }
}

/// The result of a general answer (JT/T 808 §8.2, 0x8001).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerResult {
    Ok = 0,
    Failure = 1,
    BadMessage = 2,
    Unsupported = 3,
    AlarmConfirmed = 4,
}

impl AnswerResult {
    fn from_u8(b: u8) -> Option<AnswerResult> {
        Some(match b {
            0 => AnswerResult::Ok,
            1 => AnswerResult::Failure,
            2 => AnswerResult::BadMessage,
            3 => AnswerResult::Unsupported,
            4 => AnswerResult::AlarmConfirmed,
            _ => return None,
        })
    }
}

/// 0x8001, the platform's general answer: which message (serial and id) it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneralAnswer {
    pub serial: u16,
    pub msg_id: u16,
    pub result: AnswerResult,
}

impl GeneralAnswer {
    fn read(r: &mut Reader<'_>) -> Result<GeneralAnswer, Jt808Error> {
        let serial = r.u16("answer_serial")?;
        let msg_id = r.u16("answer_id")?;
        let b = r.u8("result")?;
        let result =
            AnswerResult::from_u8(b).ok_or_else(|| Jt808Error::invalid("result", format!("{b} is not 0 to 4")))?;
        Ok(GeneralAnswer { serial, msg_id, result })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(5);
        out.extend_from_slice(&self.serial.to_be_bytes());
        out.extend_from_slice(&self.msg_id.to_be_bytes());
        out.push(self.result as u8);
        out
    }
}

/// The result of a registration (JT/T 808 §8.6, 0x8100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterResult {
    Ok = 0,
    VehicleRegistered = 1,
    NoSuchVehicle = 2,
    TerminalRegistered = 3,
    NoSuchTerminal = 4,
}

/// 0x8100, the platform's answer to a registration; the code is sent only on success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterAnswer {
    pub serial: u16,
    pub result: RegisterResult,
    pub code: Option<String>,
}

impl RegisterAnswer {
    fn read(r: &mut Reader<'_>) -> Result<RegisterAnswer, Jt808Error> {
        let serial = r.u16("answer_serial")?;
        let b = r.u8("result")?;
        let result = match b {
            0 => RegisterResult::Ok,
            1 => RegisterResult::VehicleRegistered,
            2 => RegisterResult::NoSuchVehicle,
            3 => RegisterResult::TerminalRegistered,
            4 => RegisterResult::NoSuchTerminal,
            _ => return Err(Jt808Error::invalid("result", format!("{b} is not 0 to 4"))),
        };
        let code = (result == RegisterResult::Ok).then(|| super::gbk_text(r.rest()));
        Ok(RegisterAnswer { serial, result, code })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.serial.to_be_bytes());
        out.push(self.result as u8);
        if let (RegisterResult::Ok, Some(code)) = (self.result, &self.code) {
            out.extend_from_slice(&gbk_bytes(code));
        }
        out
    }
}
