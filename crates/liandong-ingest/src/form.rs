//! `application/x-www-form-urlencoded` pairs, as in URL queries and form bodies, read
//! the way `form_urlencoded::parse` reads them (the WHATWG URL standard's parser: pairs
//! split at `&`, empty ones skipped, name and value at the first `=`, `+` a space,
//! `%XX` a byte, invalid UTF-8 replaced by U+FFFD), but without its per-byte work where
//! there is nothing to decode.
//!
//! Every report a phone sends is a query of a dozen such pairs, read by the session
//! layer (a `token`?), the OsmAnd handler (the `key`) and the decoder (all of them): the
//! general parser's three passes over each name and value (the `+`s, the `%`s, UTF-8)
//! were 12 % of the server's instructions per report (BENCHMARKS.md, issue 18). Here
//! UTF-8 is checked once for the whole input (a query is text already), and a pair with
//! neither `%` nor `+` is split into two borrowed slices; the others go through
//! `form_urlencoded` itself, so the results are the same.

use std::borrow::Cow;

/// The pairs of `input`, in order, each name and value decoded.
pub fn pairs(input: &[u8]) -> Pairs<'_> {
    match std::str::from_utf8(input) {
        Ok(text) => Pairs::Text(text),
        // Not UTF-8 (a form body can be anything): the general parser, which replaces
        // what is not.
        Err(_) => Pairs::Bytes(form_urlencoded::parse(input)),
    }
}

/// The value of the first pair of `query` named `name` (a name without spaces: every
/// request's query is asked for a `token`, and most have none).
pub fn first<'a>(query: &'a str, name: &str) -> Option<Cow<'a, str>> {
    // Without a `%`, only the name spelled out can decode to it (`+` decodes to a space).
    if !query.contains('%') && !query.contains(name) {
        return None;
    }
    Pairs::Text(query).find(|(k, _)| k == name).map(|(_, v)| v)
}

/// The iterator of [`pairs`].
pub enum Pairs<'a> {
    /// What is left of a text: split at `&` and `=` as text, so that a pair without
    /// escapes is two borrowed slices and no byte is looked at twice.
    Text(&'a str),
    Bytes(form_urlencoded::Parse<'a>),
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (Cow<'a, str>, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = match self {
            Pairs::Bytes(general) => return general.next(),
            Pairs::Text(rest) => rest,
        };
        loop {
            let text: &'a str = rest;
            if text.is_empty() {
                return None;
            }
            // One look at each byte: where the pair ends, where its value starts, and
            // whether anything in it needs decoding. `&` and `=` are ASCII, so the
            // slices below fall between characters.
            let (mut end, mut equals, mut escaped) = (text.len(), None, false);
            for (i, &b) in text.as_bytes().iter().enumerate() {
                match b {
                    b'&' => {
                        end = i;
                        break;
                    }
                    b'=' if equals.is_none() => equals = Some(i),
                    b'%' | b'+' => escaped = true,
                    _ => {}
                }
            }
            let pair = &text[..end];
            *rest = text.get(end + 1..).unwrap_or("");
            if pair.is_empty() {
                continue;
            }
            if escaped {
                // What needs decoding is decoded by the general parser (a non-empty
                // pair is one item).
                return form_urlencoded::parse(pair.as_bytes()).next();
            }
            return Some(match equals {
                Some(i) => (Cow::Borrowed(&pair[..i]), Cow::Borrowed(&pair[i + 1..])),
                None => (Cow::Borrowed(pair), Cow::Borrowed("")),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every input reads as `form_urlencoded::parse` reads it.
    #[test]
    fn pairs_read_as_the_general_parser_reads_them() {
        let inputs: [&[u8]; 16] = [
            b"",
            b"&&&",
            b"id=7&lat=31.5&lon=120.25",
            b"a=1&a=2&b",
            b"=x&y=",
            b"k==v=w",
            b"name=%E5%A4%A7%E7%AB%B9&x=1",
            b"t=2024-05-01T16:00:00+08:00",
            b"a+b=c%20d&e%3Df=g",
            b"bad=%zz&trunc=%4",
            b"raw=\xff\xfe&ok=1",
            b"nul=%00&k=v",
            "name=大竹&x=y".as_bytes(),
            b"%=&+=+",
            b"key=&key=second",
            b"id=1&&id=2&",
        ];
        for input in inputs {
            let ours: Vec<_> = pairs(input).collect();
            let general: Vec<_> = form_urlencoded::parse(input).collect();
            assert_eq!(ours, general, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn a_pair_without_escapes_is_borrowed() {
        let (k, v) = pairs(b"lat=31.5").next().unwrap();
        assert!(matches!(k, Cow::Borrowed("lat")));
        assert!(matches!(v, Cow::Borrowed("31.5")));
    }

    #[test]
    fn first_takes_the_first_of_a_repeated_name() {
        assert_eq!(first("token=a&token=b", "token").as_deref(), Some("a"));
        assert_eq!(first("x=1&to%6Ben=c", "token").as_deref(), Some("c"));
        assert_eq!(first("tokens=1", "token"), None);
    }
}
