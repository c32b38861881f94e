//! The pre-parse scan: what PostgreSQL could not store anywhere in a payload, free-form and
//! unknown fields included (serde skips those, and a trace is stored whole as jsonb).

use super::{Invalid, RejectReason};

/// Deepest nesting accepted, the event object being level 1. serde's typed fields stop at 127
/// anyway; unknown and free-form fields are skipped without a limit, and a trace is stored
/// whole as jsonb, whose parser fails past about 10,000 levels: the batch would never commit.
pub const MAX_DEPTH: usize = 64;

/// What PostgreSQL cannot store even where the contract is free-form (unknown fields, a
/// trace's `pipeline` and `result`, all skipped by serde, a trace then stored whole as jsonb):
/// nesting deeper than [`MAX_DEPTH`], NUL (`\u0000`: text and jsonb refuse it), lone UTF-16
/// surrogate escapes and bytes that are not UTF-8 (not Unicode text), numbers past numeric's
/// range (exponent beyond [`MAX_EXPONENT`] or below -[`MIN_EXPONENT`]) or longer than
/// [`MAX_NUMBER_CHARS`]. One pass
/// over the bytes; anything else that is not JSON is left to serde to report.
/// Returns the payload as text: checked once here, so that serde need not check each string.
pub(super) fn storable(payload: &[u8]) -> Result<&str, Invalid> {
    let Ok(text) = std::str::from_utf8(payload) else {
        return Err((RejectReason::InvalidJson, "not UTF-8".into()));
    };
    let (mut depth, mut i) = (0usize, 0usize);
    while i < payload.len() {
        match payload[i] {
            b'"' => i = string_end(payload, i + 1)?,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err((RejectReason::InvalidJson, format!("nested deeper than {MAX_DEPTH} levels")));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'-' | b'0'..=b'9' => i += number_at(payload, i)? - 1,
            _ => {}
        }
        i += 1;
    }
    Ok(text)
}

/// The index of the quote closing the string whose text starts at `from` (the payload's length
/// when it is not closed: serde reports that), checking its escapes on the way. Most of a
/// payload is string text: `memchr2` jumps over it to the next quote or backslash (scanned
/// byte by byte, this pass was a quarter of a trace's decode).
fn string_end(payload: &[u8], from: usize) -> Result<usize, Invalid> {
    let unit = |at: usize| -> Option<u16> {
        let hex = payload.get(at..at + 4)?;
        u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    };
    let mut i = from;
    loop {
        // (A backslash that ends the payload steps past it.)
        let rest = payload.get(i..).unwrap_or_default();
        let Some(k) = memchr::memchr2(b'"', b'\\', rest) else { return Ok(payload.len()) };
        i += k;
        if payload[i] == b'"' {
            return Ok(i);
        }
        if payload.get(i + 1) == Some(&b'u') {
            match unit(i + 2) {
                Some(0) => return Err((RejectReason::InvalidValue, "a string holds NUL (\\u0000)".into())),
                // A surrogate pair is one character: step onto the second escape.
                Some(0xD800..=0xDBFF)
                    if payload.get(i + 6..i + 8) == Some(b"\\u") && matches!(unit(i + 8), Some(0xDC00..=0xDFFF)) =>
                {
                    i += 6
                }
                Some(0xD800..=0xDFFF) => {
                    return Err((RejectReason::InvalidJson, "lone UTF-16 surrogate escape".into()))
                }
                _ => {}
            }
        }
        i += 2; // the backslash and the escaped character
    }
}

/// Checks the number literal starting at `at`; returns its length.
fn number_at(payload: &[u8], at: usize) -> Result<usize, Invalid> {
    let len = payload[at..].iter().take_while(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')).count();
    number(&payload[at..at + len])?;
    Ok(len)
}

/// Longest number literal.
const MAX_NUMBER_CHARS: usize = 64;
/// Largest positive decimal exponent: a double's range (serde's typed fields already call a
/// larger number non-finite), far inside PostgreSQL numeric's (10^131071).
const MAX_EXPONENT: u32 = 308;
/// Largest negative one: below a double's smallest subnormal (4.9e-324, which Java writes for
/// `Double.MIN_VALUE`), so every finite double a producer writes passes; typed fields read
/// what is smaller as 0. Far inside numeric's range (10^-16383).
const MIN_EXPONENT: u32 = 1000;

fn number(literal: &[u8]) -> Result<(), Invalid> {
    if literal.len() > MAX_NUMBER_CHARS {
        return Err((RejectReason::InvalidValue, format!("a number of {} characters", literal.len())));
    }
    let Some(e) = literal.iter().position(|b| matches!(b, b'e' | b'E')) else { return Ok(()) };
    // The exponent's digits, leading zeros dropped: compared as text, so an exponent beyond any
    // integer type (`1e99999999999`, which jsonb's numeric refuses) is caught too.
    let digits = &literal[e + 1..];
    let (limit, digits) = match digits.strip_prefix(b"-") {
        Some(d) => (MIN_EXPONENT, d),
        None => (MAX_EXPONENT, digits.strip_prefix(b"+").unwrap_or(digits)),
    };
    let significant = &digits[digits.iter().take_while(|b| **b == b'0').count()..];
    let limit = limit.to_string();
    let beyond =
        significant.len() > limit.len() || (significant.len() == limit.len() && significant > limit.as_bytes());
    if beyond {
        return Err((RejectReason::NonFinite, format!("exponent beyond {MAX_EXPONENT} or below -{MIN_EXPONENT}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storable_rejects_what_postgresql_cannot_hold() {
        let nested = |n: usize| format!("{{\"a\":{}1{}}}", "[".repeat(n - 1), "]".repeat(n - 1));
        assert!(storable(nested(MAX_DEPTH).as_bytes()).is_ok());
        assert_eq!(storable(nested(MAX_DEPTH + 1).as_bytes()).unwrap_err().0, RejectReason::InvalidJson);
        // Brackets inside strings are text.
        assert!(storable(format!("{{\"a\":\"{}\"}}", "[".repeat(500)).as_bytes()).is_ok());
        assert_eq!(storable(br#"{"a":"x\u0000"}"#).unwrap_err().0, RejectReason::InvalidValue);
        assert_eq!(storable(br#"{"a":"x\uD800y"}"#).unwrap_err().0, RejectReason::InvalidJson);
        assert_eq!(storable(br#"{"a":"\udc00"}"#).unwrap_err().0, RejectReason::InvalidJson);
        assert_eq!(storable(br#"{"a":1e999999}"#).unwrap_err().0, RejectReason::NonFinite);
        assert_eq!(storable(br#"{"a":[1.5E-1001]}"#).unwrap_err().0, RejectReason::NonFinite);
        // Tiny doubles are finite: Java writes Double.MIN_VALUE as 4.9E-324.
        assert!(storable(br#"{"a":4.9E-324,"b":[1.5E-400],"c":1e-1000}"#).is_ok());
        assert_eq!(
            storable(format!("{{\"a\":{}}}", "9".repeat(65)).as_bytes()).unwrap_err().0,
            RejectReason::InvalidValue
        );
        assert!(storable(br#"{"a":-1.25e+308,"b":0,"c":"1e999999"}"#).is_ok());
        // Exponents past every integer type, and padded with zeros.
        assert_eq!(storable(br#"{"a":1e4294967297}"#).unwrap_err().0, RejectReason::NonFinite);
        assert_eq!(storable(br#"{"a":1E-99999999999999999999}"#).unwrap_err().0, RejectReason::NonFinite);
        assert_eq!(storable(br#"{"a":1e0000309}"#).unwrap_err().0, RejectReason::NonFinite);
        assert!(storable(br#"{"a":1e0000308,"b":2E-0308}"#).is_ok());
        assert_eq!(storable(b"{\"a\":\"\xff\"}").unwrap_err().0, RejectReason::InvalidJson);
        // A surrogate pair is one character; an escaped backslash before "u0000" is text.
        assert!(storable(br#"{"a":"\ud83d\ude00 \\u0000 \"\u00e9"}"#).is_ok());
    }

    /// The scan as it was before `memchr` (one byte at a time): the reference.
    /// over the bytes; anything else that is not JSON is left to serde to report.
    fn byte_by_byte(payload: &[u8]) -> Result<(), Invalid> {
        if std::str::from_utf8(payload).is_err() {
            return Err((RejectReason::InvalidJson, "not UTF-8".into()));
        }
        let (mut depth, mut in_string, mut i) = (0usize, false, 0usize);
        let unit = |at: usize| -> Option<u16> {
            let hex = payload.get(at..at + 4)?;
            u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
        };
        while i < payload.len() {
            match payload[i] {
                b'"' => in_string = !in_string,
                b'\\' if in_string => {
                    if payload.get(i + 1) == Some(&b'u') {
                        match unit(i + 2) {
                            Some(0) => {
                                return Err((RejectReason::InvalidValue, "a string holds NUL (\\u0000)".into()));
                            }
                            Some(0xD800..=0xDBFF)
                                if payload.get(i + 6..i + 8) == Some(b"\\u")
                                    && matches!(unit(i + 8), Some(0xDC00..=0xDFFF)) =>
                            {
                                i += 6
                            }
                            Some(0xD800..=0xDFFF) => {
                                return Err((RejectReason::InvalidJson, "lone UTF-16 surrogate escape".into()))
                            }
                            _ => {}
                        }
                    }
                    i += 1; // the escaped character
                }
                b'[' | b'{' if !in_string => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err((RejectReason::InvalidJson, format!("nested deeper than {MAX_DEPTH} levels")));
                    }
                }
                b']' | b'}' if !in_string => depth = depth.saturating_sub(1),
                b'-' | b'0'..=b'9' if !in_string => i += number_at(payload, i)? - 1,
                _ => {}
            }
            i += 1;
        }
        Ok(())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4_000))]
        /// Over text made of JSON's structural characters, escapes (NUL, surrogates, pairs,
        /// backslashes), numbers with extreme exponents and non-UTF-8 bytes, the fast scan
        /// gives the same verdict as the byte-by-byte one.
        #[test]
        fn the_fast_scan_agrees_with_the_byte_by_byte_one(parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "\"", "\\", "\\u0000", "\\ud83d", "\\ude00", "\\uD800\\uDC00", "\\u00e9", "\\u12",
                "{", "}", "[", "]", ":", ",", "a", " ", "1", "-", "e", "E", "+", "0", "9", ".", "1e309",
                "1e-1001", "4.9E-324", "\u{e9}", "\u{1f600}",
            ]),
            0..120,
        ), bad in proptest::option::of(0usize..120)) {
            let mut bytes = parts.concat().into_bytes();
            if let Some(at) = bad.filter(|&at| at < bytes.len()) {
                bytes[at] = 0xff;
            }
            proptest::prop_assert_eq!(
                storable(&bytes).map(|_| ()).map_err(|e| e.0),
                byte_by_byte(&bytes).map_err(|e| e.0)
            );
        }
    }
}
