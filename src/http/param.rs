//! Checked parsing of the integers a client sends (query parameters, header values): a bad
//! or out-of-range value is a 400 naming the parameter, never a panic, a wrap or a default.

use std::ops::RangeInclusive;

/// The highest seq a client may name. Seqs are u64 in the format, but the store keeps them in
/// SQLite INTEGER columns and passes them through JavaScript numbers, which are exact only up
/// to 2^53 - 1; a log never gets near it, so anything above is a client error.
pub const MAX_SEQ: u64 = (1 << 53) - 1;

/// Any seq: 0 (before the first event) to [`MAX_SEQ`].
pub const SEQ: RangeInclusive<u64> = 0..=MAX_SEQ;

/// Digits accepted before the value is refused as out of range (u64::MAX has 20).
const MAX_DIGITS: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("{name}: expected a non-negative decimal integer, got {value:?}")]
    NotAnInteger { name: &'static str, value: String },
    #[error("{name}: {value} is out of range; use {min}..={max}")]
    OutOfRange { name: &'static str, value: String, min: u64, max: u64 },
}

impl ParamError {
    pub fn code(&self) -> &'static str {
        "invalid_parameter"
    }
}

/// Parses `text` as the decimal integer parameter `name`, which must lie in `range`.
/// Only ASCII digits are accepted: no sign, no exponent, no spaces, not empty.
pub fn parse_u64(name: &'static str, text: &str, range: RangeInclusive<u64>) -> Result<u64, ParamError> {
    let shown = || text.chars().take(40).collect::<String>();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParamError::NotAnInteger { name, value: shown() });
    }
    let out_of_range =
        || ParamError::OutOfRange { name, value: shown(), min: *range.start(), max: *range.end() };
    let digits = text.trim_start_matches('0');
    if digits.len() > MAX_DIGITS {
        return Err(out_of_range());
    }
    // Only digits, at most 20 of them: the parse fails only on overflow.
    let v: u64 = if digits.is_empty() { 0 } else { digits.parse().map_err(|_| out_of_range())? };
    if range.contains(&v) { Ok(v) } else { Err(out_of_range()) }
}

/// A seq parameter: `0..=MAX_SEQ`.
pub fn parse_seq(name: &'static str, text: &str) -> Result<u64, ParamError> {
    parse_u64(name, text, SEQ)
}

/// Checks a seq the client sent already parsed (a JSON number, say) against [`SEQ`].
pub fn check_seq(name: &'static str, v: u64) -> Result<u64, ParamError> {
    if SEQ.contains(&v) {
        Ok(v)
    } else {
        Err(ParamError::OutOfRange { name, value: v.to_string(), min: *SEQ.start(), max: *SEQ.end() })
    }
}

/// The query parameter `name` of `req`, parsed in `range`; `None` when absent.
#[cfg(target_arch = "wasm32")]
pub fn query_u64(
    req: &worker::Request,
    name: &'static str,
    range: RangeInclusive<u64>,
) -> Result<Option<u64>, super::ApiError> {
    let url = req.url()?;
    match url.query_pairs().find(|(k, _)| k == name) {
        None => Ok(None),
        Some((_, v)) => Ok(Some(parse_u64(name, &v, range)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const I64_MAX: u64 = i64::MAX as u64;

    #[test]
    fn accepts_plain_decimal_integers_in_range() {
        assert_eq!(parse_seq("after", "0"), Ok(0));
        assert_eq!(parse_seq("after", "42"), Ok(42));
        assert_eq!(parse_seq("after", "007"), Ok(7));
        assert_eq!(parse_seq("after", &MAX_SEQ.to_string()), Ok(MAX_SEQ));
        assert_eq!(parse_u64("limit", "1000", 1..=1000), Ok(1000));
        assert_eq!(parse_u64("limit", &format!("{}1", "0".repeat(40)), 1..=1000), Ok(1));
    }

    #[test]
    fn refuses_what_does_not_fit_the_store() {
        for v in [MAX_SEQ + 1, I64_MAX, I64_MAX + 1, u64::MAX] {
            let e = parse_seq("after", &v.to_string()).unwrap_err();
            assert!(matches!(e, ParamError::OutOfRange { name: "after", .. }), "{v}: {e:?}");
        }
        // Past u64 itself: out of range, not a parse panic or a wrap.
        let huge = "184467440737095516150";
        assert!(matches!(parse_seq("after", huge), Err(ParamError::OutOfRange { .. })));
        assert!(matches!(parse_seq("after", &"9".repeat(5000)), Err(ParamError::OutOfRange { .. })));
        assert!(matches!(parse_u64("limit", "0", 1..=1000), Err(ParamError::OutOfRange { .. })));
        assert!(matches!(parse_u64("limit", "1001", 1..=1000), Err(ParamError::OutOfRange { .. })));
    }

    #[test]
    fn checks_seqs_parsed_elsewhere() {
        assert_eq!(check_seq("expected_seq", MAX_SEQ), Ok(MAX_SEQ));
        assert!(matches!(check_seq("expected_seq", u64::MAX), Err(ParamError::OutOfRange { .. })));
    }

    #[test]
    fn refuses_what_is_not_a_decimal_integer() {
        for v in ["", "-1", "+1", "1e3", "1.0", " 1", "1 ", "0x10", "١", "NaN", "1_000"] {
            let e = parse_seq("after", v).unwrap_err();
            assert_eq!(e, ParamError::NotAnInteger { name: "after", value: v.into() }, "{v:?}");
        }
    }

    #[test]
    fn messages_name_the_parameter_and_stay_short() {
        let e = parse_seq("after", &u64::MAX.to_string()).unwrap_err();
        assert_eq!(e.to_string(), format!("after: {} is out of range; use 0..={MAX_SEQ}", u64::MAX));
        assert_eq!(e.code(), "invalid_parameter");
        let long = parse_seq("after", &"x".repeat(10_000)).unwrap_err().to_string();
        assert!(long.starts_with("after: ") && long.len() < 120, "{long}");
    }
}
