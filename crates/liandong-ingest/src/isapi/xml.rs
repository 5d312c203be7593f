//! The hardened XML reader: an XML 1.0 document read into a flat tree of elements with
//! their texts, refusing DTDs and entity declarations, unknown entities, NUL, and
//! documents beyond the caller's limits, in UTF-8 or the GBK family its declaration names.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::FieldError;

/// Deepest element nesting accepted, counting the root as 1. Real pushes nest 5 levels
/// at most (`EventNotificationAlert/ANPR/pictureInfoList/pictureInfo/fileName`).
pub const MAX_DEPTH: usize = 32;

/// What one document may hold; the fields mean what [`super::Limits`]' fields of the same
/// names mean.
#[derive(Debug, Clone, Copy)]
pub(super) struct DocLimits {
    pub max_elements: usize,
    pub max_name_bytes: usize,
    pub max_depth: usize,
    pub max_text_bytes: usize,
}

/// One element below the root: its own local name, its parent and its text. Ancestors'
/// names are reached through `parent`, never copied, so that the document's memory stays
/// linear in the body however deep and long-named its elements are.
pub(super) struct Element {
    pub(super) name: String,
    /// Index in [`Doc::elements`] of the parent; `None` for a child of the root.
    pub(super) parent: Option<usize>,
    /// Index in [`Doc::elements`] of the top-level ancestor (the element itself when it
    /// is a child of the root), which names the block it belongs to (`ANPR`, ...).
    pub(super) top: usize,
    /// 1 for a child of the root.
    pub(super) depth: usize,
    pub(super) text: String,
}

/// A parsed push: the root's local name and every element below it, in document order
/// (of start tags).
pub(super) struct Doc {
    pub(super) root: String,
    pub(super) elements: Vec<Element>,
}

impl Doc {
    /// The trimmed text of the first element at exactly `path` (case-insensitive); an
    /// empty element counts as absent, as devices send `<channelName></channelName>`
    /// when nothing is set.
    pub(super) fn get(&self, path: &[&str]) -> Option<&str> {
        self.elements.iter().find(|e| self.at_path(e, path)).map(|e| e.text.as_str()).filter(|t| !t.is_empty())
    }

    /// Whether `e` sits at exactly `path` below the root, comparing its own name first so
    /// that most elements are rejected without walking their ancestors.
    fn at_path(&self, e: &Element, path: &[&str]) -> bool {
        if e.depth != path.len() {
            return false;
        }
        let mut at = Some(e);
        path.iter().rev().all(|want| match at {
            Some(el) if el.name.eq_ignore_ascii_case(want) => {
                at = el.parent.map(|p| &self.elements[p]);
                true
            }
            _ => false,
        })
    }

    /// The first non-empty element named `name` at any depth below a top-level element
    /// for which `block` holds.
    pub(super) fn find_in(&self, block: impl Fn(&str) -> bool, name: &str) -> Option<&Element> {
        self.elements.iter().find(|e| {
            e.depth >= 2 && e.name.eq_ignore_ascii_case(name) && !e.text.is_empty() && block(&self.elements[e.top].name)
        })
    }

    /// The dotted path of `e` below the root (`faceSnapMatch.FaceCaptureList.similarity`),
    /// built only for an error message.
    pub(super) fn path(&self, e: &Element) -> String {
        let mut names = vec![e.name.as_str()];
        let mut at = e.parent;
        while let Some(p) = at {
            names.push(&self.elements[p].name);
            at = self.elements[p].parent;
        }
        names.reverse();
        names.join(".")
    }
}

/// Devices and platforms in China declare and send GBK, GB2312 or GB18030 (a plate's
/// province character is then two bytes that are not UTF-8); those are decoded, and a
/// byte that is not valid in the declared encoding is an error, never a replacement.
fn xml_text(body: &[u8]) -> Result<std::borrow::Cow<'_, str>, FieldError> {
    let declared = declared_encoding(body);
    match declared.and_then(|label| encoding_rs::Encoding::for_label(label.as_bytes()).map(|e| (label, e))) {
        Some((label, enc)) if enc != encoding_rs::UTF_8 => {
            enc.decode_without_bom_handling_and_without_replacement(body).ok_or_else(|| {
                FieldError::new("body", format!("is not valid {label}, the encoding its XML declaration names"))
            })
        }
        _ => {
            let body = body.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(body);
            std::str::from_utf8(body).map(std::borrow::Cow::Borrowed).map_err(|e| {
                let at = e.valid_up_to();
                let hint = match declared {
                    Some(label) if encoding_rs::Encoding::for_label(label.as_bytes()).is_none() => {
                        format!("is not UTF-8 (the declared encoding {label:?} is unknown)")
                    }
                    _ => "is not UTF-8 (declare encoding=\"GBK\" or another in the XML declaration if it is)".into(),
                };
                syntax_error(&String::from_utf8_lossy(&body[..at]), at, &hint)
            })
        }
    }
}

/// The `encoding` of an XML declaration at the start of `body`, if any.
fn declared_encoding(body: &[u8]) -> Option<&str> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(body);
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    let head = &body[start..body.len().min(start + 256)];
    if !head.starts_with(b"<?xml") {
        return None;
    }
    let end = head.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&head[..end]).ok()?;
    let at = decl.find("encoding")? + "encoding".len();
    let rest = decl[at..].trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    Some(&value[..value.find(quote)?])
}

/// Parses an XML document into its elements, refusing DTDs, unknown entities, anything
/// after the root element, and documents beyond `limits` (elements, name length,
/// nesting).
pub(super) fn parse(limits: &DocLimits, body: &[u8]) -> Result<Doc, FieldError> {
    let decoded = xml_text(body)?;
    let text: &str = &decoded;
    refuse_dtd(text)?;
    // XML 1.0 has no NUL, raw or as a character reference, and PostgreSQL cannot store one.
    if let Some(at) = text.find('\0') {
        return Err(syntax_error(text, at, crate::NUL_REASON));
    }
    let mut reader = Reader::from_str(text);
    let mut root: Option<String> = None;
    // Indices in `elements` of the open elements below the root, innermost last.
    let mut open: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut elements: Vec<Element> = Vec::new();
    loop {
        let position = reader.buffer_position() as usize;
        let event =
            reader.read_event().map_err(|e| syntax_error(text, reader.error_position() as usize, &e.to_string()))?;
        let closed_root = root.is_some() && depth == 0;
        let is_start = matches!(event, Event::Start(_));
        match event {
            Event::Start(_) | Event::Empty(_) if closed_root => {
                return Err(syntax_error(text, position, "a second root element; one event per push"))
            }
            Event::Start(e) | Event::Empty(e) => {
                let name_bytes = e.name().as_ref().len();
                if name_bytes > limits.max_name_bytes {
                    let what = format!(
                        "an element name of {name_bytes} bytes; at most {} are accepted",
                        limits.max_name_bytes
                    );
                    return Err(syntax_error(text, position, &what));
                }
                // The root counts as an element too.
                let count = if root.is_none() { 1 } else { elements.len() + 2 };
                if count > limits.max_elements {
                    let n = limits.max_elements;
                    let what = format!("more than {n} elements; at most {n} are accepted per push");
                    return Err(syntax_error(text, position, &what));
                }
                let name = e.local_name().as_ref().to_owned();
                if depth == 0 {
                    root = Some(name);
                    if is_start {
                        depth = 1;
                    }
                    continue;
                }
                // An empty element nests as deep as a started one would.
                if depth + 1 > limits.max_depth {
                    let what = format!("elements nest deeper than {}", limits.max_depth);
                    return Err(syntax_error(text, position, &what));
                }
                if is_start {
                    depth += 1;
                }
                let parent = open.last().copied();
                let top = parent.map_or(elements.len(), |p| elements[p].top);
                elements.push(Element { name, parent, top, depth: open.len() + 1, text: String::new() });
                if is_start {
                    open.push(elements.len() - 1);
                }
            }
            Event::End(_) => {
                // quick-xml has already refused an end tag that closes nothing.
                depth = depth.saturating_sub(1);
                if let Some(i) = open.pop() {
                    let element = &mut elements[i];
                    let trimmed = element.text.trim();
                    if trimmed.len() != element.text.len() {
                        element.text = trimmed.to_owned();
                    }
                }
            }
            Event::Text(t) => push_text(limits, text, position, &open, &mut elements, depth, &t.xml10_content())?,
            Event::CData(t) => push_text(limits, text, position, &open, &mut elements, depth, &t.xml10_content())?,
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => match predefined_entity(&r) {
                        Some(s) => s.to_owned(),
                        None => {
                            return Err(syntax_error(text, position, &format!("unknown entity &{};", &*r)));
                        }
                    },
                    Err(e) => return Err(syntax_error(text, position, &e.to_string())),
                };
                push_text(limits, text, position, &open, &mut elements, depth, &resolved)?;
            }
            Event::DocType(_) => return Err(dtd_error(text, position)),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => {
                let Some(root) = root else {
                    return Err(syntax_error(text, position, "no root element"));
                };
                if depth > 0 {
                    let innermost = open.last().map_or(&root, |i| &elements[*i].name);
                    return Err(syntax_error(text, position, &format!("document ends before </{innermost}>")));
                }
                return Ok(Doc { root, elements });
            }
        }
    }
}

/// Adds text to the innermost open element; outside the root only whitespace may appear.
fn push_text(
    limits: &DocLimits,
    doc: &str,
    position: usize,
    open: &[usize],
    elements: &mut [Element],
    depth: usize,
    text: &str,
) -> Result<(), FieldError> {
    if depth == 0 {
        if text.trim().is_empty() {
            return Ok(());
        }
        return Err(syntax_error(doc, position, "text outside the root element"));
    }
    // Text directly in the root (between its children) is whitespace we do not keep.
    if let Some(i) = open.last() {
        let element = &mut elements[*i];
        // Surrounding whitespace (indentation) does not count against the limit.
        if element.text.len() + text.trim().len() > limits.max_text_bytes {
            return Err(FieldError::new(
                element.name.clone(),
                format!("holds more than {} bytes of text; at most that many are accepted", limits.max_text_bytes),
            ));
        }
        element.text.push_str(text);
    }
    Ok(())
}

/// The five entities XML predefines (XML 1.0 §4.6); every other one would need a DTD.
fn predefined_entity(name: &str) -> Option<&'static str> {
    Some(match name {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        _ => return None,
    })
}

/// Refuses `<!DOCTYPE` and `<!ENTITY` anywhere in the text, in any case, before parsing:
/// a camera never sends either, and everything that makes XML dangerous to parse
/// (entity expansion, external entities) needs one of them.
fn refuse_dtd(text: &str) -> Result<(), FieldError> {
    // Compared in place after each `<!`, so that no lower-case copy of the body is made.
    let bytes = text.as_bytes();
    for at in memchr::memmem::find_iter(bytes, b"<!") {
        let rest = &bytes[at + 2..];
        let starts = |word: &[u8]| rest.get(..word.len()).is_some_and(|r| r.eq_ignore_ascii_case(word));
        if starts(b"doctype") || starts(b"entity") {
            return Err(dtd_error(text, at));
        }
    }
    Ok(())
}

fn dtd_error(text: &str, at: usize) -> FieldError {
    syntax_error(text, at, "DOCTYPE/DTD and ENTITY declarations are refused (entity expansion, external entities)")
}

/// `body: line L, column C: what`, with the position counted in characters from 1.
fn syntax_error(text: &str, byte: usize, what: &str) -> FieldError {
    let mut byte = byte.min(text.len());
    while !text.is_char_boundary(byte) {
        byte -= 1;
    }
    let before = &text[..byte];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    FieldError::new("body", format!("line {line}, column {column}: {what}"))
}

#[cfg(test)]
mod tests {
    use super::super::decode;
    use super::super::test_support::*;
    use super::MAX_DEPTH;

    #[test]
    fn gbk_pushes_are_read_when_declared_and_refused_with_a_hint_when_not() {
        let inner = "<ANPR>\n<licensePlate>川S12345</licensePlate>\n</ANPR>\n";
        for label in ["GBK", "gb2312", "GB18030"] {
            let xml = alert("ANPR", "active", 1, inner).replace("encoding=\"UTF-8\"", &format!("encoding='{label}'"));
            let (bytes, _, errors) = encoding_rs::GB18030.encode(&xml);
            assert!(!errors);
            assert!(std::str::from_utf8(&bytes).is_err(), "the test body really is not UTF-8");
            let e = decode(Some("application/xml"), &bytes).unwrap_or_else(|e| panic!("{label}: {e}"));
            let plate = e.plate.expect("a plate");
            assert_eq!((plate.raw.as_str(), plate.normalized.as_deref()), ("川S12345", Some("川S12345")), "{label}");
        }
        // The same bytes declared UTF-8 (or not declared) are refused, saying what to do.
        let utf8 = alert("ANPR", "active", 1, inner);
        let (bytes, _, _) = encoding_rs::GBK.encode(&utf8);
        let e = decode(Some("application/xml"), &bytes).unwrap_err();
        assert!(e.reason.contains("is not UTF-8") && e.reason.contains("GBK"), "{e}");
        // A byte sequence that is not GBK either is refused, not replaced.
        let mut bad = alert("ANPR", "active", 1, inner).replace("UTF-8", "GBK").into_bytes();
        let at = bad.len() - 30;
        bad[at] = 0xFF;
        let e = decode(Some("application/xml"), &bad).unwrap_err();
        assert!(e.reason.contains("is not valid GBK"), "{e}");
        // An encoding nobody knows is named.
        let odd = alert("ANPR", "active", 1, "").replace("UTF-8", "x-klingon");
        let mut odd = odd.into_bytes();
        odd.push(0xFF);
        let e = decode(Some("application/xml"), &odd).unwrap_err();
        assert!(e.reason.contains("x-klingon"), "{e}");
    }

    #[test]
    fn nul_is_refused_raw_or_as_a_character_reference() {
        for body in [
            "<EventNotificationAlert>\u{0}</EventNotificationAlert>",
            "<EventNotificationAlert>&#0;</EventNotificationAlert>",
        ] {
            let e = decode(Some("application/xml"), body.as_bytes()).unwrap_err();
            assert!(e.field == "body" && (e.reason.contains("NUL") || e.reason.contains("0x0")), "{body:?}: {e}");
        }
    }
    #[test]
    fn malformed_or_dangerous_documents_are_refused_naming_the_body() {
        let billion_laughs = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n\
            <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n]>\n\
            <EventNotificationAlert><eventType>&lol2;</eventType></EventNotificationAlert>";
        let xxe = "<?xml version=\"1.0\"?><!doctype a [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\
            <EventNotificationAlert><eventType>&xxe;</eventType></EventNotificationAlert>";
        let deep = format!(
            "<EventNotificationAlert><eventType>VMD</eventType>{}{}</EventNotificationAlert>",
            "<a>".repeat(MAX_DEPTH),
            "</a>".repeat(MAX_DEPTH)
        );
        let rows: Vec<Refusal> = vec![
            (
                "unclosed tag, as an old firmware sent it",
                XML,
                alert("videoloss", "inactive", 0, "")
                    .replace("alarm</eventDescription>", "alarm<eventDescription>")
                    .into(),
                "body",
                "line 13, column 1: ill-formed document: expected `</eventDescription>`",
            ),
            ("document cut inside a tag", XML, ANPR_XML[..600].into(), "body", "line 17, column 1: syntax error"),
            (
                "document cut between tags",
                XML,
                ANPR_XML[..ANPR_XML.find("</ANPR>").unwrap()].into(),
                "body",
                "document ends before </ANPR>",
            ),
            ("billion laughs", XML, billion_laughs.into(), "body", "line 2, column 1: DOCTYPE/DTD"),
            ("external entity, lower-case doctype", None, xxe.into(), "body", "DOCTYPE/DTD"),
            (
                "undeclared entity",
                XML,
                alert("VMD", "active", 1, "<x>&nbsp;</x>").into(),
                "body",
                "unknown entity &nbsp;",
            ),
            ("nesting too deep", XML, deep.into(), "body", "nest deeper than 32"),
            (
                "two documents in one push",
                XML,
                format!("{}{}", alert("VMD", "active", 1, ""), alert("VMD", "active", 2, "")).into(),
                "body",
                "second root element",
            ),
            (
                "not UTF-8",
                XML,
                b"<EventNotificationAlert><channelName>\xb4\xa8</channelName>".to_vec(),
                "body",
                "not UTF-8",
            ),
            ("empty body", XML, Vec::new(), "body", "no root element"),
        ];
        assert_refused(rows);
    }
}
