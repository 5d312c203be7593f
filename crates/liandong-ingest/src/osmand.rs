//! The OsmAnd protocol as Traccar Client sends it to `GET /osmand` and `POST /osmand`.
//!
//! Three request shapes arrive, all described by Traccar's OsmAnd protocol page
//! (<https://www.traccar.org/osmand/>) and its server's `OsmAndProtocolDecoder`:
//!
//! 1. **Query only** (Traccar Client up to 8, OsmAnd, scripts): every value in the URL,
//!    `GET` or `POST` with an empty body, e.g.
//!    `?id=123456&timestamp=1714550400&lat=30.7361&lon=107.2048&speed=0.0&bearing=0.0&altitude=402.0&accuracy=12.0&batt=87.0`.
//! 2. **Form body** (`application/x-www-form-urlencoded`) with the same keys. The query
//!    of the configured server URL (`?key=...`) is merged in; the body wins on conflict.
//! 3. **JSON body** (Traccar Client 9+, built on the Transistor Software background
//!    geolocation SDK): `{"device_id": .., "location": {"timestamp": .., "coords": {..},
//!    "battery": {..}, "activity": {..}, ..}}`, with the URL query merged in as above.
//!
//! Units differ between shapes, following Traccar: the query and form `speed` is in
//! **knots**, the JSON `coords.speed` in metres per second; the form `batt` is a
//! percentage, the JSON `battery.level` a fraction of 1.
//!
//! A datum may be stated with `datum`, `coordsys` or `coord_type` (`wgs84`, `gcj02`,
//! `bd09`) in the query, the form or the JSON root; coordinates are converted to WGS 84
//! and the datum is kept in [`Report::datum`].
//!
//! Every parameter not read into a [`Report`] field becomes an attribute, within the
//! bounds of [`crate::attributes`] (64 attributes, names of 64 bytes, values of 1 KiB,
//! 8 KiB in all; over one is a [`FieldError`] naming the attribute). `key` is read as the
//! device key; `token`, `password` and `key` in any other case are dropped, never kept.
//! A fix `timestamp` must fall in 2000 to 2099 ([`crate::device_time`]).
//!
//! Traccar Client's SOS button sends `alarm=sos` (the JSON shape: `alarm` in
//! `location.extras`, as the app's panic screen asks the SDK for, or at the root); it
//! becomes [`Report::alarm`]. Any other alarm name stays in the attributes as sent, as
//! Traccar's own server keeps it: the devices speaking OsmAnd are many and lenient
//! decoding is this module's rule. `mock=true` (JSON: `location.mock`, which the SDK
//! sets for a mocked location) becomes [`Report::mock`]; a `mock` that is not a boolean
//! is refused, naming it.

use std::borrow::Cow;

use liandong_core::{Datum, Position};
use serde_json::{Map, Value};

use crate::attributes::MAX_ATTRIBUTES;
use crate::value::{
    battery_pct, boolean, course_deg, json_number, json_required_number, number, optional_number, unknown_if_negative,
};
use crate::{device_time, parse_timestamp, Alarm, FieldError, Report};

/// One knot in metres per second: one nautical mile (1852 m) per hour.
pub const MPS_PER_KNOT: f64 = 1852.0 / 3600.0;

/// The keys a device may state its datum under, in order of preference.
const DATUM_KEYS: [&str; 3] = ["datum", "coordsys", "coord_type"];

/// Most distinct parameters read from a query and a form together: every attribute a
/// report may keep and 32 more for the keys read into report fields (`id`, `lat`,
/// `timestamp`, ...).
const MAX_PARAMS: usize = MAX_ATTRIBUTES + 32;

/// The keys a device may send its id under, in order of preference.
const ID_KEYS: [&str; 2] = ["id", "deviceid"];

/// Decodes one OsmAnd report from the request's query, `Content-Type` header and body.
///
/// An empty body means the query carries everything, whatever the content type says.
/// Without a content type a body starting with `{` is read as JSON and anything else as
/// a form, because some HTTP libraries on trackers omit the header.
pub fn decode(query: Option<&str>, content_type: Option<&str>, body: &[u8]) -> Result<Report, FieldError> {
    Query::read(query.unwrap_or("")).decode(content_type, body)
}

/// A report's URL query, read once: the device key in it, to authenticate the request
/// before its body is read, and then with the body the report ([`Query::decode`]).
pub struct Query<'a> {
    params: Result<Params<'a>, FieldError>,
    key: Option<Cow<'a, str>>,
}

impl<'a> Query<'a> {
    pub fn read(query: &'a str) -> Query<'a> {
        let mut params = Params(Vec::with_capacity(16));
        let mut key = None;
        let mut refused = None;
        for (k, v) in crate::form::pairs(query.as_bytes()) {
            if key.is_none() && k == "key" && !v.is_empty() {
                key = Some(v.clone());
            }
            // Past the limit the query is only looked through for its key.
            if refused.is_none() {
                refused = params.insert(k, v).err();
            }
        }
        Query { params: refused.map_or(Ok(params), Err), key }
    }

    /// The first non-empty `key=` of the query.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The report of this query with `body` (see [`decode`]).
    pub fn decode<'b>(self, content_type: Option<&str>, body: &'b [u8]) -> Result<Report, FieldError>
    where
        'a: 'b,
    {
        let mut params: Params<'b> = self.params?;
        if body.iter().all(u8::is_ascii_whitespace) {
            params.refuse_nul()?;
            return from_params(params);
        }
        match body_kind(content_type, body)? {
            BodyKind::Form => {
                params.extend(body)?;
                params.refuse_nul()?;
                from_params(params)
            }
            BodyKind::Json => from_json(params, body),
        }
    }
}

enum BodyKind {
    Form,
    Json,
}

fn body_kind(content_type: Option<&str>, body: &[u8]) -> Result<BodyKind, FieldError> {
    let Some(content_type) = content_type else {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        return Ok(if first == Some(&b'{') { BodyKind::Json } else { BodyKind::Form });
    };
    // Parameters such as `; charset=UTF-8` do not change how we read the body.
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match media.as_str() {
        "application/x-www-form-urlencoded" => Ok(BodyKind::Form),
        "application/json" => Ok(BodyKind::Json),
        m if m.starts_with("application/") && m.ends_with("+json") => Ok(BodyKind::Json),
        _ => Err(FieldError::new(
            "content-type",
            format!("must be application/x-www-form-urlencoded or application/json, not {media:?}"),
        )),
    }
}

/// URL-encoded key/value pairs; a later value for the same key replaces an earlier one,
/// which is how the body wins over the query. A report has a dozen: looking each up in a
/// short vector costs less than a tree's nodes (BENCHMARKS.md), and at most
/// [`MAX_PARAMS`] distinct keys bound the search.
#[derive(Default)]
struct Params<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Params<'a> {
    /// Adds the pairs of `bytes`, refusing as soon as there are more distinct keys than
    /// [`MAX_PARAMS`]: such a report would be refused for its attributes anyway, and
    /// stopping early keeps a body of many tiny parameters from costing a map of them.
    fn extend(&mut self, bytes: &'a [u8]) -> Result<(), FieldError> {
        crate::form::pairs(bytes).try_for_each(|(k, v)| self.insert(k, v))
    }

    fn insert(&mut self, k: Cow<'a, str>, v: Cow<'a, str>) -> Result<(), FieldError> {
        if let Some(slot) = self.0.iter_mut().find(|(key, _)| *key == k) {
            slot.1 = v;
            return Ok(());
        }
        self.0.push((k, v));
        if self.0.len() > MAX_PARAMS {
            return Err(FieldError::new(
                "attributes",
                format!(
                    "more than {MAX_PARAMS} parameters; at most {MAX_ATTRIBUTES} attributes are accepted per report"
                ),
            ));
        }
        Ok(())
    }

    /// Refuses a parameter (`%00` in its name or value) that PostgreSQL could not store.
    fn refuse_nul(&self) -> Result<(), FieldError> {
        // The first such name in order, whatever order they came in.
        match self.0.iter().filter(|(k, v)| k.contains('\0') || v.contains('\0')).map(|(k, _)| k).min() {
            Some(k) => Err(FieldError::new(k.replace('\0', "\\0"), crate::NUL_REASON)),
            None => Ok(()),
        }
    }

    fn take(&mut self, key: &str) -> Option<Cow<'a, str>> {
        let i = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.swap_remove(i).1)
    }

    /// Removes and returns the first of `keys` present, with the key it was found
    /// under so that errors name what the device sent. The other keys stay, and end up
    /// in the attributes.
    fn take_first(&mut self, keys: &[&'static str]) -> Option<(&'static str, Cow<'a, str>)> {
        keys.iter().find_map(|k| self.take(k).map(|v| (*k, v)))
    }

    fn take_number(&mut self, key: &str) -> Result<Option<f64>, FieldError> {
        optional_number(key, self.take(key).as_deref())
    }

    /// The device key; an empty `key=` is no key.
    fn take_key(&mut self) -> Option<String> {
        self.take("key").filter(|k| !k.is_empty()).map(Cow::into_owned)
    }

    /// The typed alarm, taken out only when it is one ([`crate::Alarm`]); another name
    /// stays and ends up in the attributes.
    fn take_alarm(&mut self) -> Option<Alarm> {
        let i = self.0.iter().position(|(k, _)| k == "alarm")?;
        let alarm = Alarm::parse(&self.0[i].1)?;
        self.0.swap_remove(i);
        Some(alarm)
    }

    /// `mock`: true or false (`1`/`0`); absent or empty is false.
    fn take_mock(&mut self) -> Result<bool, FieldError> {
        match self.take("mock") {
            Some(v) if !v.is_empty() => boolean("mock", &v),
            _ => Ok(false),
        }
    }

    fn take_datum(&mut self) -> Result<Option<Datum>, FieldError> {
        self.take_first(&DATUM_KEYS).map(|(field, name)| crate::datum(field, &name)).transpose()
    }

    /// Moves what is left into `attributes`: the few keys Traccar gives a type
    /// (`hdop`, `valid`, `charge`) typed and checked, every other one as the string sent.
    /// Strings are not guessed into numbers, so ids like `007` survive.
    fn into_attributes(mut self, attributes: &mut Map<String, Value>) -> Result<(), FieldError> {
        if let Some(hdop) = self.take_number("hdop")? {
            attributes.insert("hdop".to_owned(), Value::from(hdop));
        }
        for field in ["valid", "charge"] {
            match self.take(field) {
                Some(v) if !v.is_empty() => {
                    attributes.insert(field.to_owned(), Value::Bool(boolean(field, &v)?));
                }
                _ => {}
            }
        }
        // In the keys' order, as they were kept before (whatever order the map keeps).
        self.0.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (k, v) in self.0 {
            attributes.insert(k.into_owned(), Value::String(v.into_owned()));
        }
        Ok(())
    }
}

/// Shapes 1 and 2: every value is a URL-encoded string.
fn from_params(mut p: Params) -> Result<Report, FieldError> {
    let (id_field, id) = p.take_first(&ID_KEYS).ok_or_else(|| FieldError::new("id", "is required (id or deviceid)"))?;
    let device_id = crate::device_id(id_field, id.into_owned())?;
    let key = p.take_key();
    let datum = p.take_datum()?.unwrap_or_default();
    let position = params_position(&mut p, datum)?;
    let fix_time_ms = match p.take("timestamp") {
        None => None,
        Some(t) if t.is_empty() => None,
        Some(t) => Some(
            parse_timestamp(&restore_plus(&t)).and_then(device_time).map_err(|r| FieldError::new("timestamp", r))?,
        ),
    };
    let speed_mps = unknown_if_negative(p.take_number("speed")?).map(|kn| kn * MPS_PER_KNOT);
    let course_deg = match p.take_first(&["bearing", "heading"]) {
        Some((field, v)) => course_deg(field, optional_number(field, Some(&v))?)?,
        None => None,
    };
    let altitude_m = p.take_number("altitude")?;
    let accuracy_m = unknown_if_negative(p.take_number("accuracy")?);
    let battery_pct = battery_pct("batt", p.take_number("batt")?)?;
    let alarm = p.take_alarm();
    let mock = p.take_mock()?;
    let mut attributes = Map::new();
    p.into_attributes(&mut attributes)?;
    crate::attributes::bound("", &mut attributes)?;
    Ok(Report {
        device_id,
        position,
        datum,
        fix_time_ms,
        speed_mps,
        course_deg,
        altitude_m,
        accuracy_m,
        battery_pct,
        attributes,
        key,
        alarm,
        mock,
    })
}

/// `lat` and `lon`, or else `location=lat,lon`. When `lat`/`lon` are used a `location`
/// sent alongside is not read and stays in the attributes.
fn params_position(p: &mut Params, datum: Datum) -> Result<Position, FieldError> {
    let (lat, lon) = (p.take("lat"), p.take("lon"));
    if lat.is_some() || lon.is_some() {
        let lat = number("lat", &lat.ok_or_else(|| FieldError::new("lat", "is required"))?)?;
        let lon = number("lon", &lon.ok_or_else(|| FieldError::new("lon", "is required"))?)?;
        return crate::position(datum, lon, lat, "lon", "lat");
    }
    let location =
        p.take("location").ok_or_else(|| FieldError::new("lat", "is required (lat and lon, or location=lat,lon)"))?;
    let bad = || FieldError::new("location", "must be lat,lon in decimal degrees");
    let (lat, lon) = location.split_once(',').ok_or_else(bad)?;
    let lat = number("location", lat.trim()).map_err(|_| bad())?;
    let lon = number("location", lon.trim()).map_err(|_| bad())?;
    crate::position(datum, lon, lat, "location", "location")
}

/// Puts back the `+` of a UTC offset that reached us as a space.
///
/// A `+` left unencoded in a URL decodes to a space, so a device sending
/// `timestamp=2024-05-01T16:00:00+08:00` literally arrives as `...T16:00:00 08:00`. Only
/// a `T` date-time followed by a space and digits is touched, so the UTC form
/// `2024-05-01 08:00:00` is left alone.
fn restore_plus(t: &str) -> Cow<'_, str> {
    if let Some((date_time, offset)) = t.rsplit_once(' ') {
        let looks_like_offset = offset.len() >= 2
            && offset.bytes().all(|b| b.is_ascii_digit() || b == b':')
            && offset.as_bytes()[0].is_ascii_digit();
        if date_time.contains('T') && looks_like_offset {
            return Cow::Owned(format!("{date_time}+{offset}"));
        }
    }
    Cow::Borrowed(t)
}

/// Shape 3: the Traccar Client 9+ JSON body, with the URL query merged in.
///
/// Fields are named by their JSON path in errors (`location.coords.latitude`). What is
/// not a [`Report`] field lands in the attributes: `is_moving`, `odometer`, `event`,
/// `uuid`, `extras` (as an object) and any other location key as sent; the extra
/// `coords` keys (`altitude_accuracy`, `speed_accuracy`, ...) as sent;
/// `battery.is_charging` as `charge` (the name the query shape uses); `activity.type` as
/// `activity` and other activity keys as `activity_<key>`; other battery keys as
/// `battery_<key>`.
fn from_json(mut query: Params, body: &[u8]) -> Result<Report, FieldError> {
    let root: Value =
        serde_json::from_slice(body).map_err(|e| FieldError::new("body", format!("is not valid JSON: {e}")))?;
    crate::refuse_nul(&root)?;
    let Value::Object(mut root) = root else {
        return Err(FieldError::new("body", "must be a JSON object"));
    };

    let query_key = query.take_key();
    let query_id = query.take_first(&ID_KEYS);
    let query_datum = query.take_datum()?;

    let device_id = match root.remove("device_id") {
        Some(Value::String(id)) => crate::device_id("device_id", id)?,
        None | Some(Value::Null) => match query_id {
            Some((field, id)) => crate::device_id(field, id.into_owned())?,
            None => return Err(FieldError::new("device_id", "is required")),
        },
        Some(_) => return Err(FieldError::new("device_id", "must be a string")),
    };
    // A key in the body is unusual but must never fall through into the attributes.
    let key = match root.remove("key") {
        Some(Value::String(k)) if !k.is_empty() => Some(k),
        None | Some(Value::Null) | Some(Value::String(_)) => query_key,
        Some(_) => return Err(FieldError::new("key", "must be a string")),
    };
    let datum = match DATUM_KEYS.iter().find_map(|k| root.remove(*k).map(|v| (*k, v))) {
        Some((field, Value::String(name))) => crate::datum(field, &name)?,
        Some((field, _)) => return Err(FieldError::new(field, "must be a string")),
        None => query_datum.unwrap_or_default(),
    };

    let mut location = match root.remove("location") {
        Some(Value::Object(location)) => location,
        None | Some(Value::Null) => return Err(FieldError::new("location", "is required")),
        Some(Value::Array(_)) => {
            return Err(FieldError::new("location", "must be one location object; batched uploads are not supported"))
        }
        Some(_) => return Err(FieldError::new("location", "must be an object")),
    };
    let mut coords = match location.remove("coords") {
        Some(Value::Object(coords)) => coords,
        None | Some(Value::Null) => return Err(FieldError::new("location.coords", "is required")),
        Some(_) => return Err(FieldError::new("location.coords", "must be an object")),
    };
    let lat = json_required_number("location.coords.latitude", coords.remove("latitude"))?;
    let lon = json_required_number("location.coords.longitude", coords.remove("longitude"))?;
    let position = crate::position(datum, lon, lat, "location.coords.longitude", "location.coords.latitude")?;
    let accuracy_m = unknown_if_negative(json_number("location.coords.accuracy", coords.remove("accuracy"))?);
    let speed_mps = unknown_if_negative(json_number("location.coords.speed", coords.remove("speed"))?);
    let course_deg =
        course_deg("location.coords.heading", json_number("location.coords.heading", coords.remove("heading"))?)?;
    let altitude_m = json_number("location.coords.altitude", coords.remove("altitude"))?;
    let fix_time_ms = json_timestamp("location.timestamp", location.remove("timestamp"))?;
    let mock = match location.remove("mock") {
        None | Some(Value::Null) => query.take_mock()?,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err(FieldError::new("location.mock", "must be true or false")),
    };
    let alarm = json_alarm(&mut root, &location).or_else(|| query.take_alarm());

    // Query parameters first, so that the body wins when both name the same attribute.
    let mut attributes = Map::new();
    query.into_attributes(&mut attributes)?;

    let battery_pct = match location.remove("battery") {
        None | Some(Value::Null) => None,
        Some(Value::Object(mut battery)) => {
            let level = json_number("location.battery.level", battery.remove("level"))?;
            if let Some(charging) = battery.remove("is_charging") {
                attributes.insert("charge".to_owned(), charging);
            }
            for (k, v) in battery {
                attributes.insert(format!("battery_{k}"), v);
            }
            battery_fraction("location.battery.level", level)?
        }
        Some(_) => return Err(FieldError::new("location.battery", "must be an object")),
    };
    match location.remove("activity") {
        None | Some(Value::Null) => {}
        Some(Value::Object(activity)) => {
            for (k, v) in activity {
                let name = if k == "type" { "activity".to_owned() } else { format!("activity_{k}") };
                attributes.insert(name, v);
            }
        }
        Some(other) => {
            attributes.insert("activity".to_owned(), other);
        }
    }
    attributes.extend(coords);
    attributes.extend(location);
    attributes.extend(root);
    crate::attributes::bound("", &mut attributes)?;

    Ok(Report {
        device_id,
        position,
        datum,
        fix_time_ms,
        speed_mps,
        course_deg,
        altitude_m,
        accuracy_m,
        battery_pct,
        attributes,
        key,
        alarm,
        mock,
    })
}

/// The typed alarm of a JSON body: `location.extras.alarm`, where Traccar Client's
/// panic button puts it (the extras stay in the attributes as the device sent them),
/// else `alarm` at the root, taken out only when it is a typed one.
fn json_alarm(root: &mut Map<String, Value>, location: &Map<String, Value>) -> Option<Alarm> {
    let named = |v: Option<&Value>| v.and_then(Value::as_str).and_then(Alarm::parse);
    if let Some(alarm) = named(location.get("extras").and_then(|e| e.get("alarm"))) {
        return Some(alarm);
    }
    let alarm = named(root.get("alarm"))?;
    root.remove("alarm");
    Some(alarm)
}

/// A timestamp in JSON: a string in any form [`parse_timestamp`] reads, or a number of
/// Unix seconds or milliseconds.
fn json_timestamp(field: &str, value: Option<Value>) -> Result<Option<i64>, FieldError> {
    let text = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s,
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(FieldError::new(field, "must be a string or a number")),
    };
    parse_timestamp(&text).and_then(device_time).map(Some).map_err(|r| FieldError::new(field, r))
}

/// The SDK's battery level, a fraction of 1 (`-1` when unknown), as a percentage.
fn battery_fraction(field: &str, level: Option<f64>) -> Result<Option<f64>, FieldError> {
    match unknown_if_negative(level) {
        Some(l) if l > 1.0 => Err(FieldError::new(field, "must be between 0 and 1")),
        l => Ok(l.map(|l| l * 100.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The realistic Traccar Client report every row starts from, near 107.2E 30.7N at
    /// 2024-05-01T08:00:00Z, standing still.
    const QUERY: &str = "id=123456&timestamp=1714550400&lat=30.7361&lon=107.2048&speed=0.0\
        &bearing=0.0&altitude=402.0&accuracy=12.0&batt=87.0";
    const T0_MS: i64 = 1_714_550_400_000;
    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
    const JSON: Option<&str> = Some("application/json");

    /// The handler authenticates with the query's key before reading the body: the
    /// first non-empty one, found also past the parameter limit, whose refusal waits for
    /// the decode.
    #[test]
    fn a_query_read_once_gives_its_key_then_its_report() {
        let q = Query::read("id=1&key=&key=first&lat=30&lon=107&key=second");
        assert_eq!(q.key(), Some("first"));
        let r = q.decode(None, b"").unwrap();
        assert_eq!(r.key.as_deref(), Some("second"), "the report keeps the last, as every other parameter");
        let many = (0..=MAX_PARAMS).map(|i| format!("p{i}=1")).collect::<Vec<_>>().join("&");
        let query = format!("id=1&{many}&key=late");
        let q = Query::read(&query);
        assert_eq!(q.key(), Some("late"));
        assert_eq!(q.decode(None, b"").unwrap_err().field, "attributes");
        let q = Query::read("id=1&lat=30&lon=107");
        assert_eq!(q.key(), None);
        let r = q.decode(FORM, b"key=in-body&speed=1").unwrap();
        assert_eq!(r.key.as_deref(), Some("in-body"));
    }

    /// The parameters are kept in arrival order; what comes of them does not depend on
    /// it: the last value of a key, the attributes in the keys' order, the first bad
    /// name in order.
    #[test]
    fn the_order_of_the_parameters_changes_nothing() {
        let a = decode(Some("id=1&lat=30&lon=107&zeta=1&alpha=2&mid=3&alpha=4"), None, b"").unwrap();
        let b = decode(Some("alpha=4&mid=3&lon=107&zeta=1&lat=30&id=1"), None, b"").unwrap();
        assert_eq!(a, b);
        let keys: Vec<&str> = a.attributes.keys().map(String::as_str).collect();
        assert_eq!(keys, ["alpha", "mid", "zeta"]);
        assert_eq!(a.attributes["alpha"], "4");
        for q in ["id=1&lat=30&lon=107&z%00=1&b%00=1", "id=1&b%00=1&lat=30&lon=107&z%00=1"] {
            assert_eq!(decode(Some(q), None, b"").unwrap_err().field, "b\\0", "{q}");
        }
    }

    fn base() -> Report {
        Report {
            device_id: "123456".to_owned(),
            position: Position::new(107.2048, 30.7361).unwrap(),
            datum: Datum::Wgs84,
            fix_time_ms: Some(T0_MS),
            speed_mps: Some(0.0),
            course_deg: Some(0.0),
            altitude_m: Some(402.0),
            accuracy_m: Some(12.0),
            battery_pct: Some(87.0),
            attributes: Map::new(),
            key: None,
            alarm: None,
            mock: false,
        }
    }

    /// A Traccar Client 9 body for the same fix as [`QUERY`], moving this time.
    fn json_body() -> Vec<u8> {
        json!({
            "location": {
                "timestamp": "2024-05-01T08:00:00.000Z",
                "coords": {
                    "latitude": 30.7361, "longitude": 107.2048, "accuracy": 12.0,
                    "speed": 1.5, "heading": 90.0, "altitude": 402.0,
                    "altitude_accuracy": 3.0
                },
                "is_moving": true,
                "odometer": 1234.5,
                "event": "motionchange",
                "battery": {"level": 0.85, "is_charging": false},
                "activity": {"type": "on_foot", "confidence": 100},
                "extras": {"shift": "night"}
            },
            "device_id": "123456"
        })
        .to_string()
        .into_bytes()
    }

    fn json_base() -> Report {
        let mut r = base();
        r.speed_mps = Some(1.5);
        r.course_deg = Some(90.0);
        r.battery_pct = Some(85.0);
        r.attributes = attrs(json!({
            "altitude_accuracy": 3.0, "is_moving": true, "odometer": 1234.5,
            "event": "motionchange", "charge": false, "activity": "on_foot",
            "activity_confidence": 100, "extras": {"shift": "night"}
        }));
        r
    }

    fn attrs(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("attributes are an object"),
        }
    }

    /// Compares reports field by field, floats to 1e-9: unit conversions such as
    /// `0.85 * 100.0` are not exact in binary, but any real mistake is far larger.
    fn assert_same(name: &str, got: &Report, want: &Report) {
        let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() < 1e-9,
            (a, b) => a == b,
        };
        let (gp, wp) = (got.position, want.position);
        assert!(
            close(Some(gp.lon()), Some(wp.lon())) && close(Some(gp.lat()), Some(wp.lat())),
            "{name}: position {gp:?} != {wp:?}"
        );
        assert_eq!(got.device_id, want.device_id, "{name}: device_id");
        assert_eq!(got.datum, want.datum, "{name}: datum");
        assert_eq!(got.fix_time_ms, want.fix_time_ms, "{name}: fix_time_ms");
        assert!(close(got.speed_mps, want.speed_mps), "{name}: speed {:?} != {:?}", got.speed_mps, want.speed_mps);
        assert!(close(got.course_deg, want.course_deg), "{name}: course {:?} != {:?}", got.course_deg, want.course_deg);
        assert!(
            close(got.altitude_m, want.altitude_m),
            "{name}: altitude {:?} != {:?}",
            got.altitude_m,
            want.altitude_m
        );
        assert!(
            close(got.accuracy_m, want.accuracy_m),
            "{name}: accuracy {:?} != {:?}",
            got.accuracy_m,
            want.accuracy_m
        );
        assert!(
            close(got.battery_pct, want.battery_pct),
            "{name}: battery {:?} != {:?}",
            got.battery_pct,
            want.battery_pct
        );
        assert_eq!(got.attributes, want.attributes, "{name}: attributes");
        assert_eq!(got.key, want.key, "{name}: key");
        assert_eq!(got.alarm, want.alarm, "{name}: alarm");
        assert_eq!(got.mock, want.mock, "{name}: mock");
    }

    struct Shape {
        name: &'static str,
        query: Option<String>,
        content_type: Option<&'static str>,
        body: Vec<u8>,
        want: Report,
    }

    /// Builds a row whose expected report is `start` changed by `edit`.
    fn shape(
        name: &'static str,
        query: Option<&str>,
        content_type: Option<&'static str>,
        body: &[u8],
        start: Report,
        edit: fn(&mut Report),
    ) -> Shape {
        let mut want = start;
        edit(&mut want);
        Shape { name, query: query.map(str::to_owned), content_type, body: body.to_vec(), want }
    }

    fn with_query(extra: &str) -> String {
        format!("{QUERY}&{extra}")
    }

    /// `QUERY` with `key=value` replaced (or removed when `value` is `None`).
    fn replacing(key: &str, value: Option<&str>) -> String {
        let parts: Vec<String> = QUERY
            .split('&')
            .filter_map(|kv| match kv.split_once('=') {
                Some((k, _)) if k == key => value.map(|v| format!("{k}={v}")),
                _ => Some(kv.to_owned()),
            })
            .collect();
        parts.join("&")
    }

    #[test]
    fn every_traccar_client_request_shape() {
        let json = json_body();
        // Traccar Client 9's panic button: the SDK's extras carry the alarm, and the SDK
        // says whether the location was mocked.
        let sos_json = {
            let mut v: Value = serde_json::from_slice(&json).unwrap();
            v["location"]["extras"] = json!({"alarm": "sos", "shift": "night"});
            v["location"]["mock"] = json!(true);
            v.to_string().into_bytes()
        };
        let root_alarm_json = {
            let mut v: Value = serde_json::from_slice(&json).unwrap();
            v["alarm"] = json!("sos");
            v["location"]["mock"] = json!(false);
            v.to_string().into_bytes()
        };
        let rows = [
            shape("query-only GET", Some(QUERY), None, b"", base(), |_| {}),
            shape("query-only POST, empty body with a form content type", Some(QUERY), FORM, b"", base(), |_| {}),
            shape("query with key", Some(&with_query("key=s3cr3t")), None, b"", base(), |r| {
                r.key = Some("s3cr3t".into())
            }),
            shape("form POST", None, FORM, QUERY.as_bytes(), base(), |_| {}),
            shape(
                "form POST with charset parameter",
                None,
                Some("application/x-www-form-urlencoded; charset=UTF-8"),
                QUERY.as_bytes(),
                base(),
                |_| {},
            ),
            shape("form POST without content type", None, None, QUERY.as_bytes(), base(), |_| {}),
            shape(
                "query key merged into form, body wins on conflict",
                Some("key=s3cr3t&batt=10&extra=from-query"),
                FORM,
                QUERY.as_bytes(),
                base(),
                |r| {
                    r.key = Some("s3cr3t".into());
                    r.attributes.insert("extra".into(), json!("from-query"));
                },
            ),
            shape("JSON 9+ body", None, JSON, &json, json_base(), |_| {}),
            shape("JSON 9+ SOS in extras, mocked location", None, JSON, &sos_json, json_base(), |r| {
                r.alarm = Some(Alarm::Sos);
                r.mock = true;
                r.attributes.insert("extras".into(), json!({"alarm": "sos", "shift": "night"}));
            }),
            shape("JSON 9+ SOS at the root", None, JSON, &root_alarm_json, json_base(), |r| r.alarm = Some(Alarm::Sos)),
            shape("JSON 9+ SOS and mock in the query", Some("alarm=sos&mock=1"), JSON, &json, json_base(), |r| {
                r.alarm = Some(Alarm::Sos);
                r.mock = true;
            }),
            shape("JSON 9+ body, key in query", Some("key=s3cr3t"), JSON, &json, json_base(), |r| {
                r.key = Some("s3cr3t".into())
            }),
            shape(
                "JSON 9+ body, id from query when the body has none",
                Some("id=654321&key=s3cr3t"),
                Some("application/json; charset=utf-8"),
                json!({"location": {"coords": {"latitude": 30.7361, "longitude": 107.2048}}}).to_string().as_bytes(),
                base(),
                |r| {
                    r.device_id = "654321".into();
                    r.key = Some("s3cr3t".into());
                    r.fix_time_ms = None;
                    r.speed_mps = None;
                    r.course_deg = None;
                    r.altitude_m = None;
                    r.accuracy_m = None;
                    r.battery_pct = None;
                },
            ),
            shape("JSON 9+ body without content type", None, None, &json, json_base(), |_| {}),
            shape(
                "JSON 9+ body, unknown speed/heading/battery are -1",
                None,
                JSON,
                json!({"device_id": "123456", "location": {"timestamp": "2024-05-01T08:00:00.000Z",
                    "coords": {"latitude": 30.7361, "longitude": 107.2048, "accuracy": -1,
                    "speed": -1, "heading": -1, "altitude": 402.0}, "battery": {"level": -1}}})
                .to_string()
                .as_bytes(),
                base(),
                |r| {
                    r.speed_mps = None;
                    r.course_deg = None;
                    r.accuracy_m = None;
                    r.battery_pct = None;
                },
            ),
            shape("only the required fields", Some("id=123456&lat=30.7361&lon=107.2048"), None, b"", base(), |r| {
                r.fix_time_ms = None;
                r.speed_mps = None;
                r.course_deg = None;
                r.altitude_m = None;
                r.accuracy_m = None;
                r.battery_pct = None;
            }),
            shape("empty optional values are missing", Some(&replacing("speed", Some(""))), None, b"", base(), |r| {
                r.speed_mps = None
            }),
            shape(
                "timestamp in unix milliseconds",
                Some(&replacing("timestamp", Some("1714550400000"))),
                None,
                b"",
                base(),
                |_| {},
            ),
            shape(
                "timestamp ISO 8601 with Z",
                Some(&replacing("timestamp", Some("2024-05-01T08:00:00Z"))),
                None,
                b"",
                base(),
                |_| {},
            ),
            shape(
                "timestamp ISO 8601 with offset and fraction, + encoded",
                Some(&replacing("timestamp", Some("2024-05-01T16:00:00.250%2B08:00"))),
                None,
                b"",
                base(),
                |r| r.fix_time_ms = Some(T0_MS + 250),
            ),
            shape(
                "timestamp ISO 8601 with offset, + left unencoded",
                Some(&replacing("timestamp", Some("2024-05-01T16:00:00.250+08:00"))),
                None,
                b"",
                base(),
                |r| r.fix_time_ms = Some(T0_MS + 250),
            ),
            shape(
                "timestamp yyyy-MM-dd HH:mm:ss is UTC",
                Some(&replacing("timestamp", Some("2024-05-01%2008:00:00"))),
                None,
                b"",
                base(),
                |_| {},
            ),
            shape(
                "timestamp yyyy-MM-dd+HH:mm:ss (form-encoded space)",
                Some(&replacing("timestamp", Some("2024-05-01+08:00:00"))),
                None,
                b"",
                base(),
                |_| {},
            ),
            shape(
                "location=lat,lon",
                Some("id=123456&timestamp=1714550400&location=30.7361,107.2048"),
                None,
                b"",
                base(),
                |r| {
                    r.speed_mps = None;
                    r.course_deg = None;
                    r.altitude_m = None;
                    r.accuracy_m = None;
                    r.battery_pct = None;
                },
            ),
            shape("deviceid instead of id", Some(&QUERY.replace("id=", "deviceid=")), None, b"", base(), |_| {}),
            shape(
                "heading instead of bearing",
                Some(&QUERY.replace("bearing=", "heading=")),
                None,
                b"",
                base(),
                |_| {},
            ),
            shape("negative speed is unknown", Some(&replacing("speed", Some("-1.0"))), None, b"", base(), |r| {
                r.speed_mps = None
            }),
            shape("negative bearing is unknown", Some(&replacing("bearing", Some("-1"))), None, b"", base(), |r| {
                r.course_deg = None
            }),
            shape("negative accuracy is unknown", Some(&replacing("accuracy", Some("-1"))), None, b"", base(), |r| {
                r.accuracy_m = None
            }),
            shape("speed in knots becomes m/s", Some(&replacing("speed", Some("10.0"))), None, b"", base(), |r| {
                r.speed_mps = Some(5.144_444_444_444_444)
            }),
            shape(
                "Traccar's typed extras and unknown keys go to attributes",
                Some(&with_query(
                    "hdop=0.9&valid=1&charge=false&driverUniqueId=007&alarm=sos&event=start&wifi=aa-bb,-60",
                )),
                None,
                b"",
                base(),
                |r| {
                    r.alarm = Some(Alarm::Sos);
                    r.attributes = attrs(json!({"hdop": 0.9, "valid": true, "charge": false,
                        "driverUniqueId": "007", "event": "start", "wifi": "aa-bb,-60"}))
                },
            ),
            shape("SOS button", Some(&with_query("alarm=sos")), None, b"", base(), |r| r.alarm = Some(Alarm::Sos)),
            shape("SOS in a form", None, FORM, with_query("alarm=SOS").as_bytes(), base(), |r| {
                r.alarm = Some(Alarm::Sos)
            }),
            shape(
                "an alarm not typed stays an attribute",
                Some(&with_query("alarm=powerCut")),
                None,
                b"",
                base(),
                |r| r.attributes = attrs(json!({"alarm": "powerCut"})),
            ),
            shape("mock location", Some(&with_query("mock=true")), None, b"", base(), |r| r.mock = true),
            shape("mock=0 is a real fix", Some(&with_query("mock=0")), None, b"", base(), |_| {}),
            shape("empty mock is a real fix", Some(&with_query("mock=")), None, b"", base(), |_| {}),
            shape("wgs84 datum stated", Some(&with_query("datum=wgs84")), None, b"", base(), |_| {}),
        ];
        for row in rows {
            let got = decode(row.query.as_deref(), row.content_type, &row.body)
                .unwrap_or_else(|e| panic!("{}: {e}", row.name));
            assert_same(row.name, &got, &row.want);
        }
    }

    #[test]
    fn knots_are_converted_at_1852_m_per_nautical_mile() {
        let r = decode(Some(&replacing("speed", Some("1"))), None, b"").unwrap();
        assert!((r.speed_mps.unwrap() - 0.514_444).abs() < 1e-6, "{:?}", r.speed_mps);
    }

    /// GCJ-02 near 107.2E 30.7N is offset a few hundred metres from WGS 84; the decoded
    /// position must be the WGS 84 point that GCJ-02 maps back onto the input.
    #[test]
    fn stated_datums_are_converted_to_wgs84() {
        let sent = Position::new(107.2048, 30.7361).unwrap();
        let rows = [
            ("query datum", Some(with_query("datum=gcj02")), None, Vec::new(), Datum::Gcj02),
            ("query coordsys", Some(with_query("coordsys=GCJ-02")), None, Vec::new(), Datum::Gcj02),
            ("form coord_type bd09", None, FORM, with_query("coord_type=bd09ll").into_bytes(), Datum::Bd09),
            (
                "json root datum",
                None,
                JSON,
                {
                    let mut v: Value = serde_json::from_slice(&json_body()).unwrap();
                    v["datum"] = json!("gcj02");
                    v.to_string().into_bytes()
                },
                Datum::Gcj02,
            ),
            ("json body, query datum", Some("datum=gcj02".to_owned()), JSON, json_body(), Datum::Gcj02),
        ];
        for (name, query, ct, body, datum) in rows {
            let r = decode(query.as_deref(), ct, &body).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(r.datum, datum, "{name}");
            let moved_m = r.position.haversine_m(sent);
            assert!((300.0..1500.0).contains(&moved_m), "{name}: moved {moved_m} m");
            let (mut lon, mut lat) = liandong_core::datum::wgs84_to_gcj02(r.position.lon(), r.position.lat());
            if datum == Datum::Bd09 {
                (lon, lat) = liandong_core::datum::gcj02_to_bd09(lon, lat);
            }
            // BD-09's published inverse is approximate, to about 1e-7 degrees (1 cm).
            let tolerance_deg = if datum == Datum::Bd09 { 1e-6 } else { 1e-8 };
            let off = (lon - sent.lon()).abs().max((lat - sent.lat()).abs());
            assert!(off < tolerance_deg, "{name}: round trip ({lon}, {lat}) is {off} deg off");
            assert!(r.attributes.is_empty() || name.starts_with("json"), "{name}: datum leaked into attributes");
            assert!(!r.attributes.contains_key("datum") && !r.attributes.contains_key("coordsys"), "{name}");
        }
    }

    #[test]
    fn the_key_never_reaches_the_attributes() {
        let rows = [
            ("query", Some(with_query("key=s3cr3t")), None, Vec::new()),
            ("form", Some("key=s3cr3t".to_owned()), FORM, QUERY.as_bytes().to_vec()),
            ("form body key", None, FORM, with_query("key=s3cr3t").into_bytes()),
            ("json, query key", Some("key=s3cr3t".to_owned()), JSON, json_body()),
            ("json, body key", None, JSON, {
                let mut v: Value = serde_json::from_slice(&json_body()).unwrap();
                v["key"] = json!("s3cr3t");
                v.to_string().into_bytes()
            }),
        ];
        for (name, query, ct, body) in rows {
            let r = decode(query.as_deref(), ct, &body).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(r.key.as_deref(), Some("s3cr3t"), "{name}");
            let dump = Value::Object(r.attributes).to_string();
            assert!(!dump.contains("s3cr3t"), "{name}: {dump}");
        }
    }

    #[test]
    fn token_and_password_are_never_kept_in_any_case_or_shape() {
        let json_with = |patch: Value| {
            let mut v: Value = serde_json::from_slice(&json_body()).unwrap();
            json_merge(&mut v, patch);
            v.to_string().into_bytes()
        };
        let secrets = "token=t0k3n&Password=pa55&KEY=upper&Token=t0k3n2";
        let rows = [
            ("query", Some(with_query(&format!("key=s3cr3t&{secrets}"))), None, Vec::new()),
            ("form", Some("key=s3cr3t&token=t0k3n".to_owned()), FORM, with_query(secrets).into_bytes()),
            ("json, query secrets", Some(format!("key=s3cr3t&{secrets}")), JSON, json_body()),
            (
                "json, body secrets at every level",
                Some("key=s3cr3t".to_owned()),
                JSON,
                json_with(json!({
                    "token": "t0k3n", "PASSWORD": "pa55",
                    "location": {"Key": "upper", "coords": {"token": "t0k3n2"},
                                 "extras": {"password": "pa55", "shift": "night"}}
                })),
            ),
        ];
        for (name, query, ct, body) in rows {
            let r = decode(query.as_deref(), ct, &body).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(r.key.as_deref(), Some("s3cr3t"), "{name}");
            let dump = Value::Object(r.attributes.clone()).to_string();
            for secret in ["s3cr3t", "t0k3n", "pa55", "upper"] {
                assert!(!dump.contains(secret), "{name}: {dump}");
            }
            if ct == JSON {
                assert_eq!(r.attributes["extras"], json!({"shift": "night"}), "{name}");
            }
        }
    }

    #[test]
    fn attributes_are_bounded_in_every_shape() {
        use crate::attributes::{
            MAX_ATTRIBUTES, MAX_ATTRIBUTES_BYTES, MAX_ATTRIBUTE_KEY_BYTES, MAX_ATTRIBUTE_VALUE_BYTES,
        };
        let json_with = |patch: Value| {
            let mut v: Value = serde_json::from_slice(&json_body()).unwrap();
            json_merge(&mut v, patch);
            v.to_string().into_bytes()
        };
        let many = (0..=MAX_ATTRIBUTES).map(|i| format!("p{i}=1")).collect::<Vec<_>>().join("&");
        let long_name = "n".repeat(MAX_ATTRIBUTE_KEY_BYTES + 1);
        let long_value = "v".repeat(MAX_ATTRIBUTE_VALUE_BYTES + 1);
        let bulky = (0..MAX_ATTRIBUTES_BYTES / 1000 + 1)
            .map(|i| format!("b{i}={}", "v".repeat(1000)))
            .collect::<Vec<_>>()
            .join("&");
        let mib_extras = json_with(json!({"location": {"extras": {"blob": "x".repeat(1 << 20)}}}));
        let many_json: Map<String, Value> = (0..=MAX_ATTRIBUTES).map(|i| (format!("p{i}"), json!(1))).collect();
        /// Name, query, content type, body, the field the error must name, a part of its reason.
        type Row<'a> = (&'a str, Option<String>, Option<&'a str>, Vec<u8>, String, &'a str);
        let rows: Vec<Row> = vec![
            ("query, too many", Some(with_query(&many)), None, vec![], "attributes".into(), "at most 64"),
            ("form, too many", None, FORM, with_query(&many).into_bytes(), "attributes".into(), "at most 64"),
            (
                "query, long name",
                Some(with_query(&format!("{long_name}=1"))),
                None,
                vec![],
                format!("{}…", &long_name[..64]),
                "name of 65 bytes",
            ),
            (
                "form, long value",
                None,
                FORM,
                with_query(&format!("note={long_value}")).into_bytes(),
                "note".into(),
                "value of 1025",
            ),
            ("query, bulky", Some(with_query(&bulky)), None, vec![], "attributes".into(), "at most 8192"),
            ("json, 1 MiB of extras", None, JSON, mib_extras, "extras".into(), "value of 1048"),
            (
                "json, too many",
                None,
                JSON,
                json_with(json!({"location": many_json})),
                "attributes".into(),
                "at most 64",
            ),
            (
                "json, long root value",
                None,
                JSON,
                json_with(json!({"note": long_value})),
                "note".into(),
                "value of 1025",
            ),
        ];
        for (name, query, ct, body, field, reason) in rows {
            let e = decode(query.as_deref(), ct, &body).expect_err(name);
            assert_eq!(e.field, field, "{name}: {e}");
            assert!(e.reason.contains(reason), "{name}: {e}");
        }
        // A Traccar Client 9 report with every optional key it sends stays far inside.
        let full = json_with(json!({"location": {
            "uuid": "2f8a6f0c-43c1-4b8e-9a55-5c4a37e4b1b7", "age": 40, "mock": false,
            "coords": {"speed_accuracy": 0.5, "heading_accuracy": 10.0, "ellipsoidal_altitude": 430.1, "floor": null},
            "battery": {"level": 0.85, "is_charging": true}
        }}));
        assert!(decode(None, JSON, &full).is_ok());
    }

    #[test]
    fn fix_times_no_device_could_mean_are_refused() {
        let rows = [
            ("1970, unix seconds", Some(replacing("timestamp", Some("0"))), None, Vec::new(), "timestamp"),
            ("1999", Some(replacing("timestamp", Some("1999-12-31T23:59:59Z"))), None, Vec::new(), "timestamp"),
            ("2100", Some(replacing("timestamp", Some("4102444800"))), None, Vec::new(), "timestamp"),
            ("form, 9999", None, FORM, replacing("timestamp", Some("9999-12-31%2023:59:59")).into_bytes(), "timestamp"),
            (
                "json, -9e18",
                None,
                JSON,
                {
                    let mut v: Value = serde_json::from_slice(&json_body()).unwrap();
                    v["location"]["timestamp"] = json!(-9_000_000_000_000_000_000_i64);
                    v.to_string().into_bytes()
                },
                "location.timestamp",
            ),
            (
                "json, 1970 string",
                None,
                JSON,
                {
                    let mut v: Value = serde_json::from_slice(&json_body()).unwrap();
                    v["location"]["timestamp"] = json!("1970-01-01T00:00:00Z");
                    v.to_string().into_bytes()
                },
                "location.timestamp",
            ),
        ];
        for (name, query, ct, body, field) in rows {
            let e = decode(query.as_deref(), ct, &body).expect_err(name);
            assert_eq!(e.field, field, "{name}: {e}");
            // Negative times are already refused by the parser, as before 1970.
            assert!(e.reason.contains("2000 to 2099") || e.reason.contains("before 1970"), "{name}: {e}");
        }
        let edge = decode(Some(&replacing("timestamp", Some("946684800"))), None, b"").unwrap();
        assert_eq!(edge.fix_time_ms, Some(946_684_800_000));
    }

    #[test]
    fn malformed_requests_name_the_field() {
        let no_coords = r#"{"device_id":"123456","location":{"coords":{}}}"#;
        /// Name, query, content type, body, the field the error must name.
        type Row<'a> = (&'a str, Option<String>, Option<&'a str>, &'a [u8], &'a str);
        let rows: [Row; 38] = [
            ("nothing at all", None, None, b"", "id"),
            ("missing id", Some(replacing("id", None)), None, b"", "id"),
            ("empty id", Some(replacing("id", Some(""))), None, b"", "id"),
            ("id with a space", Some(replacing("id", Some("12%2034"))), None, b"", "id"),
            (
                "deviceid too long",
                Some(QUERY.replace("id=123456", &format!("deviceid={}", "9".repeat(65)))),
                None,
                b"",
                "deviceid",
            ),
            ("missing lat and lon", Some("id=123456".into()), None, b"", "lat"),
            ("lat without lon", Some(replacing("lon", None)), None, b"", "lon"),
            ("lon without lat", Some(replacing("lat", None)), None, b"", "lat"),
            ("lat not a number", Some(replacing("lat", Some("north"))), None, b"", "lat"),
            ("lat 91", Some(replacing("lat", Some("91"))), None, b"", "lat"),
            ("lon 181", Some(replacing("lon", Some("181"))), None, b"", "lon"),
            ("lat NaN", Some(replacing("lat", Some("NaN"))), None, b"", "lat"),
            ("lon inf", Some(replacing("lon", Some("inf"))), None, b"", "lon"),
            ("lat decimal comma", Some(replacing("lat", Some("30,7361"))), None, b"", "lat"),
            ("location without comma", Some("id=123456&location=30.7361".into()), None, b"", "location"),
            ("location with three parts", Some("id=123456&location=30.7,107.2,5".into()), None, b"", "location"),
            ("location lat 91", Some("id=123456&location=91,107.2".into()), None, b"", "location"),
            ("bad timestamp", Some(replacing("timestamp", Some("yesterday"))), None, b"", "timestamp"),
            ("timestamp month 13", Some(replacing("timestamp", Some("2024-13-01%2008:00:00"))), None, b"", "timestamp"),
            ("bad speed", Some(replacing("speed", Some("fast"))), None, b"", "speed"),
            ("speed NaN", Some(replacing("speed", Some("NaN"))), None, b"", "speed"),
            ("bad bearing", Some(replacing("bearing", Some("east"))), None, b"", "bearing"),
            ("heading beyond 360", Some(QUERY.replace("bearing=0.0", "heading=400")), None, b"", "heading"),
            ("bad altitude", Some(replacing("altitude", Some("high"))), None, b"", "altitude"),
            ("bad accuracy", Some(replacing("accuracy", Some("good"))), None, b"", "accuracy"),
            ("battery over 100", Some(replacing("batt", Some("187"))), None, b"", "batt"),
            ("bad hdop", Some(with_query("hdop=x")), None, b"", "hdop"),
            ("bad valid", Some(with_query("valid=maybe")), None, b"", "valid"),
            ("mock neither true nor false", Some(with_query("mock=yes")), None, b"", "mock"),
            ("unknown datum", Some(with_query("datum=utm")), None, b"", "datum"),
            ("unsupported content type", Some(QUERY.into()), Some("text/plain"), b"x=1", "content-type"),
            ("bad JSON", None, JSON, b"{\"device_id\": ", "body"),
            ("JSON not an object", None, JSON, b"[1, 2]", "body"),
            ("JSON without location", None, JSON, br#"{"device_id":"123456"}"#, "location"),
            ("JSON batched locations", None, JSON, br#"{"device_id":"123456","location":[]}"#, "location"),
            (
                "JSON without device id",
                None,
                JSON,
                br#"{"location":{"coords":{"latitude":30.7,"longitude":107.2}}}"#,
                "device_id",
            ),
            ("JSON without coordinates", None, JSON, no_coords.as_bytes(), "location.coords.latitude"),
            (
                "JSON latitude as a string",
                None,
                JSON,
                br#"{"device_id":"123456","location":{"coords":{"latitude":"30.7","longitude":107.2}}}"#,
                "location.coords.latitude",
            ),
        ];
        for (name, query, ct, body, field) in rows {
            let got = decode(query.as_deref(), ct, body);
            match got {
                Err(e) => assert_eq!(e.field, field, "{name}: {e}"),
                Ok(r) => panic!("{name}: accepted {r:?}"),
            }
        }
    }

    #[test]
    fn malformed_json_9_bodies_name_the_json_path() {
        let bad = |patch: Value| {
            let mut v: Value = serde_json::from_slice(&json_body()).unwrap();
            json_merge(&mut v, patch);
            v.to_string().into_bytes()
        };
        let rows = [
            ("latitude 91", json!({"location": {"coords": {"latitude": 91.0}}}), "location.coords.latitude"),
            ("longitude -181", json!({"location": {"coords": {"longitude": -181.0}}}), "location.coords.longitude"),
            ("speed as text", json!({"location": {"coords": {"speed": "1.5"}}}), "location.coords.speed"),
            ("heading 720", json!({"location": {"coords": {"heading": 720.0}}}), "location.coords.heading"),
            ("bad timestamp", json!({"location": {"timestamp": "soon"}}), "location.timestamp"),
            ("timestamp as bool", json!({"location": {"timestamp": true}}), "location.timestamp"),
            ("battery level as percent", json!({"location": {"battery": {"level": 85}}}), "location.battery.level"),
            ("battery not an object", json!({"location": {"battery": 0.85}}), "location.battery"),
            ("coords not an object", json!({"location": {"coords": [30.7, 107.2]}}), "location.coords"),
            ("device id a number", json!({"device_id": 123456}), "device_id"),
            ("device id with slash", json!({"device_id": "a/b"}), "device_id"),
            ("unknown datum", json!({"datum": "utm"}), "datum"),
            ("mock as text", json!({"location": {"mock": "true"}}), "location.mock"),
        ];
        for (name, patch, field) in rows {
            let err = decode(None, JSON, &bad(patch)).expect_err(name);
            assert_eq!(err.field, field, "{name}: {err}");
        }
    }

    /// Overwrites the leaves of `base` named in `patch`.
    fn json_merge(base: &mut Value, patch: Value) {
        match (base, patch) {
            (Value::Object(b), Value::Object(p)) => {
                for (k, v) in p {
                    json_merge(b.entry(k).or_insert(Value::Null), v);
                }
            }
            (b, p) => *b = p,
        }
    }

    #[test]
    fn error_reasons_are_specific() {
        let e = decode(Some(&replacing("lat", Some("91"))), None, b"").unwrap_err();
        assert_eq!(e.to_string(), "lat: must be between -90 and 90 degrees");
        let e = decode(Some(&replacing("lat", Some("NaN"))), None, b"").unwrap_err();
        assert_eq!(e.to_string(), "lat: must be a finite number");
        let e = decode(None, JSON, b"{\"device_id\": ").unwrap_err();
        assert!(e.reason.contains("line 1 column"), "{e}");
        let e = decode(None, Some("text/csv"), b"1,2").unwrap_err();
        assert!(e.reason.contains("text/csv"), "{e}");
    }
}
