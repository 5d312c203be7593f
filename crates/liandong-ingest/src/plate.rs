//! Normalisation of Chinese vehicle registration plates as cameras and people write them,
//! so that `川S·12345`, `川s 12345` and `川Ｓ１２３４５` all compare equal as `川S12345`.
//!
//! The plate format is the one of GA 36-2018 (机动车号牌, the Ministry of Public Security
//! standard): a province abbreviation in Chinese (`川`), an issuing-office letter (`S`), a
//! separator dot printed on the plate but not part of the number, and five (six for new
//! energy vehicles) letters and digits, sometimes ending in a Chinese character (`警`,
//! `学`, `挂`, `港`, `澳`, `领`, `使`). ANPR cameras send the plate without the dot,
//! people type it with one of several dots, dashes or spaces, and Chinese input methods
//! produce full-width letters and digits (`ＳＣ１２３`, U+FF21..U+FF5A, U+FF10..U+FF19).
//!
//! Normalisation does not correct reads (an `O` the camera read for a `0` stays `O`): that
//! is a matching policy, not a spelling.

/// Longest normalised plate accepted, in characters. Real plates have 7 or 8; a few
/// special series (armed police `WJ`, embassy `使`) and partial reads vary around that.
const MAX_PLATE_CHARS: usize = 10;

/// Shortest normalised plate accepted, in characters. Shorter strings are fragments too
/// small to identify a vehicle.
const MIN_PLATE_CHARS: usize = 4;

/// Normalises a plate: full-width letters and digits to ASCII, letters upper-case,
/// separators dropped, Chinese characters kept.
///
/// Returns `None` for what is obviously not a plate: empty or only separators, any
/// character that is neither an ASCII letter or digit nor a CJK ideograph, fewer than
/// [`MIN_PLATE_CHARS`] or more than [`MAX_PLATE_CHARS`] characters, or no digit at all.
/// The last rule is what turns the cameras' "no plate" markers (`无车牌`, `未识别`,
/// `unknown`, `NONE`) into `None` without a list of them: every Chinese plate has
/// digits.
pub fn normalize_plate(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = from_full_width(c);
        if is_separator(c) {
            continue;
        }
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_uppercase());
        } else if is_cjk_ideograph(c) {
            out.push(c);
        } else {
            return None;
        }
    }
    let chars = out.chars().count();
    let has_digit = out.bytes().any(|b| b.is_ascii_digit());
    ((MIN_PLATE_CHARS..=MAX_PLATE_CHARS).contains(&chars) && has_digit).then_some(out)
}

/// Maps the full-width forms of printable ASCII (U+FF01..U+FF5E) to ASCII, and the
/// ideographic space U+3000 to a space; other characters are returned unchanged.
fn from_full_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// Characters people and cameras put between the parts of a plate: whitespace, dots of
/// every kind (the plate's own `·` is U+00B7, but input methods produce the katakana
/// middle dot, bullets and dot operators too), dashes and underscores.
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '.' | '-'
                | '_'
                | '\u{00B7}' // middle dot ·
                | '\u{0387}' // Greek ano teleia, which NFC turns · into
                | '\u{2010}'
                ..='\u{2015}' // hyphens and dashes
                | '\u{2022}' // bullet •
                | '\u{2027}' // hyphenation point ‧
                | '\u{2212}' // minus sign
                | '\u{2219}' // bullet operator ∙
                | '\u{22C5}' // dot operator ⋅
                | '\u{30FB}' // katakana middle dot ・
                | '\u{FF65}' // half-width katakana middle dot ･
                | '\u{3002}' // ideographic full stop 。
        )
}

/// The CJK Unified Ideographs block, where every province abbreviation and plate suffix
/// (`川`, `警`, `学`, `挂`, ...) lives.
fn is_cjk_ideograph(c: char) -> bool {
    ('\u{4E00}'..='\u{9FFF}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plates_as_written() {
        let rows: [(&str, &str, Option<&str>); 24] = [
            ("camera form", "川S12345", Some("川S12345")),
            ("plate's own middle dot", "川S·12345", Some("川S12345")),
            ("bullet", "川S•12345", Some("川S12345")),
            ("full stop", "川S.12345", Some("川S12345")),
            ("hyphen", "川S-12345", Some("川S12345")),
            ("space", "川S 12345", Some("川S12345")),
            ("katakana middle dot", "川S・12345", Some("川S12345")),
            ("dot operator", "川S⋅12345", Some("川S12345")),
            ("ideographic space and padding", "\u{3000}川S 123 45 ", Some("川S12345")),
            ("lower case", "川s12a45", Some("川S12A45")),
            ("full-width letters and digits", "川Ｓ１２３４５", Some("川S12345")),
            ("full-width lower case", "ｓｃ·１２３４５", Some("SC12345")),
            ("full-width hyphen", "川Ｓ－１２３４５", Some("川S12345")),
            ("new energy, eight characters", "川S·D12345", Some("川SD12345")),
            ("police suffix", "川S·1234警", Some("川S1234警")),
            ("trailer suffix", "川S1234挂", Some("川S1234挂")),
            ("partial read without province", "S12345", Some("S12345")),
            ("no plate marker", "无车牌", None),
            ("unrecognised marker", "未识别", None),
            ("unknown", "unknown", None),
            ("empty", "", None),
            ("only separators", " ·-. ", None),
            ("punctuation inside", "川S12345?", None),
            ("far too long", "川S1234567890", None),
        ];
        for (name, input, want) in rows {
            assert_eq!(normalize_plate(input).as_deref(), want, "{name}: {input:?}");
        }
    }
}
