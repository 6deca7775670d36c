//! Percent-encoding of names in extension lines, so any UTF-8 name (spaces, `%`, even a
//! newline) is one unambiguous field.
//!
//! The encoder writes `%XX` for `%`, space and the control characters (below 0x20, and
//! 0x7F) and every other character as it is, so most names read as themselves. The
//! decoder takes `%XX` for any byte and requires the result to be UTF-8.

use std::borrow::Cow;

use super::message::ParseError;

fn must_escape(b: u8) -> bool {
    b == b'%' || b == b' ' || b < 0x20 || b == 0x7F
}

/// Appends `name` encoded to `out`.
pub fn escape_into(name: &str, out: &mut Vec<u8>) {
    for &b in name.as_bytes() {
        if must_escape(b) {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        } else {
            out.push(b);
        }
    }
}

/// `name` encoded.
pub fn escape(name: &str) -> Cow<'_, str> {
    if !name.bytes().any(must_escape) {
        return Cow::Borrowed(name);
    }
    let mut out = Vec::with_capacity(name.len() + 8);
    escape_into(name, &mut out);
    // Escaping only replaces ASCII bytes with ASCII, so UTF-8 stays UTF-8.
    Cow::Owned(String::from_utf8(out).expect("escaping keeps UTF-8"))
}

/// Decodes one field; borrows when it holds no escape.
pub fn unescape(field: &str) -> Result<Cow<'_, str>, ParseError> {
    if !field.contains('%') {
        return Ok(Cow::Borrowed(field));
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(ParseError::BadEscape)?;
            let hex = std::str::from_utf8(hex).map_err(|_| ParseError::BadEscape)?;
            let b = u8::from_str_radix(hex, 16).map_err(|_| ParseError::BadEscape)?;
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| ParseError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_plain_names_readable() {
        for name in [
            "a.txt",
            "my song.mp3",
            "ação 100%.ogg",
            "line\nbreak",
            "tab\there",
            "%41",
        ] {
            let e = escape(name);
            assert!(!e.contains([' ', '\n', '\t']), "{e}");
            assert_eq!(unescape(&e).unwrap(), name);
        }
        assert_eq!(escape("ação.ogg"), "ação.ogg");
        assert_eq!(escape("a b%"), "a%20b%25");
    }

    #[test]
    fn bad_escapes_are_errors() {
        for bad in ["%", "%4", "%zz", "%FF", "a%C3"] {
            assert!(unescape(bad).is_err(), "{bad}");
        }
    }
}
