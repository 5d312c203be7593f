//! Frames written out by hand from the standard's tables (hex below, check codes worked
//! out separately), and the refusals a terminal's bad bytes must get.

use super::*;
use crate::Alarm;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// The content between a wire frame's flags.
fn content(wire: &[u8]) -> &[u8] {
    assert_eq!((wire[0], wire[wire.len() - 1]), (FLAG, FLAG));
    &wire[1..wire.len() - 1]
}

/// A 2013 heartbeat from 013912345678, serial 1; check code 0x33.
const HEARTBEAT_2013: &str = "7e 0002 0000 013912345678 0001 33 7e";

/// A 2013 location report, serial 7: emergency alarm, located, 30.703911 N 107.204566 E,
/// 328 m, 62.5 km/h, 90°, 2026-12-03 09:30:15 GMT+8; items mileage 12345.6 km, fuel
/// 50.0 l and an unknown 0xe3 of 3 bytes. Check code 0x07.
const LOCATION_2013: &str = "7e 0200 002b 013912345678 0007
    00000001 00000002 01d48127 0663cfd6 0148 0271 005a 261203093015
    0104 0001e240 0202 01f4 e303 aabbcc 07 7e";

/// A 2019 registration (version flag, protocol 1, 20-digit phone), serial 2: Sichuan
/// (51), city 1344, maker ABCD, model ZJ-2019, terminal T1234567, plate colour 2,
/// 川S12345 in GBK. Check code 0x7b.
const REGISTER_2019: &str = "7e 0100 4054 01 00000000013912345678 0002
    0033 0540 4142434400000000000000
    5a4a2d323031390000000000000000000000000000000000000000000000
    543132333435363700000000000000000000000000000000000000000000
    02 b4a8533132333435 7b 7e";

/// A heartbeat whose serial 0x7e7d must be escaped to `7d02 7d01`. Check code 0x31.
const ESCAPED: &str = "7e 0002 0000 013912345678 7d02 7d01 31 7e";

#[test]
fn a_2013_heartbeat_decodes_with_its_header() {
    let p = decode(content(&hex(HEARTBEAT_2013))).unwrap();
    assert_eq!(p.header, Header::new(id::HEARTBEAT, Version::V2013, "013912345678", 1));
    assert_eq!(p.header.phone_digits(), "13912345678");
    assert_eq!(Message::decode(&p.header, &p.body).unwrap(), Message::Heartbeat);
}

#[test]
fn a_2013_location_report_decodes_to_a_wgs84_report_with_sos() {
    let p = decode(content(&hex(LOCATION_2013))).unwrap();
    assert_eq!((p.header.msg_id, p.header.serial, p.header.body_len), (id::LOCATION, 7, 43));
    let Message::Location(l) = Message::decode(&p.header, &p.body).unwrap() else { panic!("not a location") };
    assert_eq!((l.alarm, l.status, l.altitude_m, l.speed_dkmh, l.direction_deg), (1, 2, 328, 625, 90));
    assert_eq!((l.mileage_dkm, l.fuel_dl), (Some(123_456), Some(500)));
    let r = l.to_report("jt808-13912345678".into()).unwrap();
    assert_eq!((r.position.lon(), r.position.lat()), (107.204566, 30.703911));
    assert_eq!(r.datum, liandong_core::Datum::Wgs84, "JT/T 808 positions are WGS 84: no GCJ-02 shift");
    // 09:30:15 in GMT+8 is 01:30:15 UTC.
    assert_eq!(r.fix_time_ms, Some(1_796_261_415_000));
    assert_eq!(r.alarm, Some(Alarm::Sos));
    assert!((r.speed_mps.unwrap() - 62.5 / 3.6).abs() < 1e-9);
    assert_eq!((r.course_deg, r.altitude_m), (Some(90.0), Some(328.0)));
    assert_eq!(r.attributes["odometer_km"], 12345.6);
    assert_eq!(r.attributes["fuel_l"], 50.0);
}

#[test]
fn south_and_west_status_bits_sign_the_coordinates() {
    let mut l = Location { status: STATUS_LOCATED, time_bcd: "261203093015".into(), ..Location::default() };
    l.set_lon_lat(-58.381592, -34.603722);
    assert_eq!(l.status, STATUS_LOCATED | STATUS_SOUTH | STATUS_WEST);
    let r = l.to_report("d".into()).unwrap();
    assert_eq!((r.position.lon(), r.position.lat()), (-58.381592, -34.603722));
    assert_eq!(r.alarm, None);
}

#[test]
fn a_2019_registration_decodes_with_its_wider_fields() {
    let p = decode(content(&hex(REGISTER_2019))).unwrap();
    assert_eq!(p.header.version, Version::V2019 { protocol: 1 });
    assert_eq!((p.header.phone.as_str(), p.header.phone_digits()), ("00000000013912345678", "13912345678"));
    let Message::Register(reg) = Message::decode(&p.header, &p.body).unwrap() else { panic!("not a registration") };
    let want = Register {
        province: 51,
        city: 1344,
        manufacturer: "ABCD".into(),
        model: "ZJ-2019".into(),
        terminal_id: "T1234567".into(),
        plate_colour: 2,
        plate: "川S12345".into(),
    };
    assert_eq!(reg, want);
    // Encoding it again gives the same bytes.
    let header = Header::new(id::REGISTER, Version::V2019 { protocol: 1 }, "13912345678", 2);
    assert_eq!(encode(&header, &want.encode(header.version)).unwrap(), hex(REGISTER_2019));
}

#[test]
fn the_2013_registration_has_the_narrower_fields() {
    let reg = Register {
        manufacturer: "MAKER".into(),
        model: "M1".into(),
        terminal_id: "T000001".into(),
        ..Register::default()
    };
    let body = reg.encode(Version::V2013);
    assert_eq!(body.len(), 2 + 2 + 5 + 20 + 7 + 1);
    let header = Header { body_len: body.len(), ..Header::new(id::REGISTER, Version::V2013, "013912345678", 3) };
    assert_eq!(Message::decode(&header, &body).unwrap(), Message::Register(reg));
}

#[test]
fn authentication_in_both_editions() {
    let h13 = Header::new(id::AUTH, Version::V2013, "013912345678", 4);
    assert_eq!(
        Message::decode(&h13, b"abc123").unwrap(),
        Message::Auth(Auth { code: "abc123".into(), imei: None, software_version: None })
    );
    let h19 = Header::new(id::AUTH, Version::V2019 { protocol: 1 }, "13912345678", 4);
    let mut body = hex("06 616263313233 383630303031303437313233343536");
    body.extend_from_slice(b"V1.2.3");
    body.resize(1 + 6 + 15 + 20, 0);
    let auth =
        Auth { code: "abc123".into(), imei: Some("860001047123456".into()), software_version: Some("V1.2.3".into()) };
    assert_eq!(Message::decode(&h19, &body).unwrap(), Message::Auth(auth.clone()));
    assert_eq!(auth.encode(h19.version), body);
    // A code length running past the body names the field.
    let e = Message::decode(&h19, &hex("ff 6162")).unwrap_err();
    assert_eq!(e, Jt808Error::Truncated { field: "code".into(), need: 255, left: 2 });
}

#[test]
fn escaping_round_trips_and_the_escaped_frame_is_the_standards() {
    let wire = hex(ESCAPED);
    let p = decode(content(&wire)).unwrap();
    assert_eq!(p.header.serial, 0x7e7d);
    assert_eq!(encode(&p.header, &p.body).unwrap(), wire);
    // Every byte value survives escape → unescape, and no flag is left inside.
    let raw: Vec<u8> = (0..=255u8).chain([0x7e, 0x7d, 0x7d, 0x7e, 0x02, 0x01]).collect();
    let mut escaped = Vec::new();
    escape(&raw, &mut escaped);
    assert!(!escaped.contains(&FLAG));
    let mut back = Vec::new();
    unescape(&escaped, &mut back).unwrap();
    assert_eq!(back, raw);
}

#[test]
fn bad_frames_are_refused_naming_why_and_keep_their_header_when_it_was_read() {
    let mut bad_check = hex(HEARTBEAT_2013);
    let n = bad_check.len();
    bad_check[n - 2] ^= 0xff;
    let truncated_body = {
        // The location frame with its last item cut short (the check code recomputed).
        let mut raw = hex("0200 002b 013912345678 0007 00000001 00000002 01d48127 0663cfd6 0148 0271 005a 261203093015 0104 0001e240 0202 01f4 e303 aabb");
        raw[3] = 0x2a;
        raw.push(checksum(&raw));
        raw
    };
    let lying_length = {
        let mut raw = hex("0002 0005 013912345678 0001");
        raw.push(checksum(&raw));
        raw
    };
    let rows: [(&str, Vec<u8>, bool, &str); 6] = [
        ("bad check code", content(&bad_check).to_vec(), true, "check_code"),
        ("body shorter than declared", lying_length, true, "declares a body of 5 bytes, the frame holds 0"),
        (
            "header cut short (the last byte is the check code)",
            hex("0002 0000 0139"),
            false,
            "header.phone: needs 6 bytes, only 1 left",
        ),
        ("undefined escape", hex("0002 7d03 0000"), false, "escape byte 0x7d at offset 2 followed by Some(03)"),
        ("escape at the end", hex("0002 7d"), false, "followed by None"),
        ("empty", Vec::new(), false, "check_code: needs 1 bytes"),
    ];
    for (case, bytes, has_header, says) in rows {
        let e = decode(&bytes).unwrap_err();
        assert_eq!(e.header.is_some(), has_header, "{case}: {e:?}");
        assert!(e.to_string().contains(says), "{case}: {e}");
    }
    // A frame that is whole but whose body ends inside an item: the item's field.
    let p = decode(&truncated_body).unwrap();
    let e = Message::decode(&p.header, &p.body).unwrap_err();
    assert_eq!(e, Jt808Error::Truncated { field: "items[2].value".into(), need: 3, left: 2 });
    // A non-BCD phone digit.
    let mut raw = hex("0002 0000 01391234567a 0001");
    raw.push(checksum(&raw));
    assert!(decode(&raw).unwrap_err().to_string().contains("header.phone"));
}

#[test]
fn a_batch_of_three_decodes_and_a_lying_count_is_refused() {
    let one = |second: u8| {
        let mut l = Location { status: STATUS_LOCATED, ..Location::default() };
        l.set_lon_lat(107.2, 30.7);
        l.time_bcd = format!("2612030930{second:02}");
        l
    };
    let batch = LocationBatch { kind: 1, locations: vec![one(1), one(2), one(3)] };
    let body = batch.encode().unwrap();
    // count, type, then each 28-byte body behind its length.
    assert_eq!(&body[..5], &hex("0003 01 001c"));
    let header = Header::new(id::LOCATION_BATCH, Version::V2013, "013912345678", 9);
    assert_eq!(Message::decode(&header, &body).unwrap(), Message::LocationBatch(batch));
    let mut lying = body.clone();
    lying[1] = 4;
    let e = Message::decode(&header, &lying).unwrap_err();
    assert_eq!(e, Jt808Error::Truncated { field: "locations[3].length".into(), need: 2, left: 0 });
    let mut short = body.clone();
    short[4] = 0x1b;
    let e = Message::decode(&header, &short).unwrap_err().to_string();
    assert!(e.starts_with("locations[0].") || e.starts_with("count"), "{e}");
    lying[1] = 200;
    assert!(Message::decode(&header, &lying).unwrap_err().to_string().contains("1 to 36"));
}

#[test]
fn out_of_range_positions_times_and_unlocated_fixes_are_refused() {
    let base = || {
        let mut l = Location { status: STATUS_LOCATED, time_bcd: "261203093015".into(), ..Location::default() };
        l.set_lon_lat(107.2, 30.7);
        l
    };
    let rows: [(&str, Location, &str); 5] = [
        ("latitude 91", Location { lat_e6: 91_000_000, ..base() }, "lat"),
        ("longitude 181", Location { lon_e6: 181_000_000, ..base() }, "lon"),
        ("month 13", Location { time_bcd: "261303093015".into(), ..base() }, "time"),
        ("no fix", Location { status: 0, ..base() }, "status"),
        ("hour 24", Location { time_bcd: "261203243015".into(), ..base() }, "time"),
    ];
    for (case, l, field) in rows {
        match l.to_report("d".into()).unwrap_err() {
            Jt808Error::Invalid { field: f, .. } => assert_eq!(f, field, "{case}"),
            e => panic!("{case}: {e:?}"),
        }
    }
}

#[test]
fn encrypted_and_sub_packaged_messages_are_unsupported() {
    let mut h = Header::new(id::LOCATION, Version::V2013, "013912345678", 1);
    h.subpackage = Some(SubPackage { total: 2, index: 1 });
    let wire = encode(&h, &[0; 4]).unwrap();
    let p = decode(content(&wire)).unwrap();
    assert_eq!(p.header.subpackage, Some(SubPackage { total: 2, index: 1 }));
    assert!(matches!(Message::decode(&p.header, &p.body), Err(Jt808Error::Unsupported { .. })));
    let h = Header { encryption: 1, ..Header::new(id::LOCATION, Version::V2013, "013912345678", 1) };
    assert!(matches!(Message::decode(&h, &[]), Err(Jt808Error::Unsupported { .. })));
}

#[test]
fn platform_answers_round_trip() {
    let a = GeneralAnswer { serial: 7, msg_id: id::LOCATION, result: AnswerResult::BadMessage };
    assert_eq!(a.encode(), hex("0007 0200 02"));
    let h = Header::new(id::PLATFORM_ANSWER, Version::V2013, "013912345678", 1);
    assert_eq!(Message::decode(&h, &a.encode()).unwrap(), Message::GeneralAnswer(a));
    let r = RegisterAnswer { serial: 2, result: RegisterResult::Ok, code: Some("Ab3".into()) };
    assert_eq!(r.encode(), hex("0002 00 416233"));
    let h = Header::new(id::REGISTER_ANSWER, Version::V2013, "013912345678", 1);
    assert_eq!(Message::decode(&h, &r.encode()).unwrap(), Message::RegisterAnswer(r));
    let refused = RegisterAnswer { serial: 2, result: RegisterResult::NoSuchTerminal, code: None };
    assert_eq!(refused.encode(), hex("0002 04"));
}

#[test]
fn scanning_splits_frames_skips_noise_and_bounds_an_unclosed_frame() {
    let mut buf = hex("ffff");
    buf.extend(hex(HEARTBEAT_2013));
    buf.extend(hex(ESCAPED));
    assert_eq!(scan(&buf), Scan::Skip { skip: 2 });
    let buf = &buf[2..];
    let Scan::Frame { start, end, consumed } = scan(buf) else { panic!() };
    assert!(decode(&buf[start..end]).is_ok());
    let buf = &buf[consumed..];
    let Scan::Frame { start, end, consumed } = scan(buf) else { panic!() };
    assert_eq!(decode(&buf[start..end]).unwrap().header.serial, 0x7e7d);
    assert_eq!(scan(&buf[consumed..]), Scan::NeedMore);
    assert_eq!(scan(&hex("7e 7e 0002")), Scan::Skip { skip: 1 });
    assert_eq!(scan(&hex("7e 0002")), Scan::NeedMore);
    let mut unclosed = vec![FLAG];
    unclosed.resize(MAX_FRAME_BYTES + 1, 0x11);
    assert_eq!(scan(&unclosed), Scan::Skip { skip: MAX_FRAME_BYTES + 1 });
}

#[test]
fn the_longest_body_fits_the_frame_bound_and_a_longer_one_is_refused() {
    let h = Header {
        subpackage: Some(SubPackage { total: 1, index: 1 }),
        ..Header::new(0x0900, Version::V2019 { protocol: 1 }, "1", 1)
    };
    let wire = encode(&h, &[FLAG; MAX_BODY_BYTES]).unwrap();
    assert!(wire.len() <= MAX_FRAME_BYTES);
    assert!(matches!(scan(&wire), Scan::Frame { .. }));
    assert!(encode(&h, &[0; MAX_BODY_BYTES + 1]).is_err());
}

#[test]
fn random_bytes_never_panic() {
    // A fixed-seed xorshift64 (Marsaglia 2003), so that a failure repeats.
    let mut state = 0x808u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let valid = [hex(LOCATION_2013), hex(REGISTER_2019), hex(ESCAPED)];
    for round in 0..20_000 {
        // Half pure noise, half a valid frame with a few bytes changed or cut.
        let mut bytes = if round % 2 == 0 {
            let n = (next() % 300) as usize;
            (0..n).map(|_| next() as u8).collect::<Vec<u8>>()
        } else {
            valid[round % 3].clone()
        };
        for _ in 0..(next() % 4) {
            if !bytes.is_empty() {
                let i = (next() as usize) % bytes.len();
                bytes[i] = next() as u8;
            }
        }
        if round % 5 == 0 && !bytes.is_empty() {
            bytes.truncate((next() as usize) % bytes.len());
        }
        let mut rest: &[u8] = &bytes;
        loop {
            match scan(rest) {
                Scan::NeedMore => break,
                Scan::Skip { skip } => rest = &rest[skip..],
                Scan::Frame { start, end, consumed } => {
                    if let Ok(p) = decode(&rest[start..end]) {
                        if let Ok(Message::Location(l)) = Message::decode(&p.header, &p.body) {
                            let _ = l.to_report("d".into());
                        }
                    }
                    rest = &rest[consumed..];
                }
            }
        }
        // Bodies decoded as every message we read, whatever the header says.
        for msg_id in
            [id::REGISTER, id::AUTH, id::LOCATION, id::LOCATION_BATCH, id::PLATFORM_ANSWER, id::REGISTER_ANSWER]
        {
            for version in [Version::V2013, Version::V2019 { protocol: 1 }] {
                let _ = Message::decode(&Header::new(msg_id, version, "1", 1), &bytes);
            }
        }
    }
}
