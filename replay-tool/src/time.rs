//! Points in a log (`--at 1200`, `--at 2026-01-01T10:00:00Z`) and times (`--since`, `--until`).
//! Times print as core's ISO 8601 (the same text the restore files carry).

use crate::walk::Stop;

/// Parses an RFC 3339 time (`2026-01-01T10:00:00Z`, `2026-01-01 10:00:00`, fractions allowed;
/// without an offset it is UTC) or milliseconds since the Unix epoch.
pub fn parse_time(s: &str) -> Result<u64, String> {
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(ms);
    }
    let t = humantime::parse_rfc3339_weak(s.trim_end_matches('Z')).map_err(|e| {
        format!("{s:?} is not a time ({e}); use RFC 3339 like 2026-01-01T10:00:00Z or milliseconds")
    })?;
    Ok(t.duration_since(std::time::UNIX_EPOCH).map_err(|_| format!("{s:?} is before 1970"))?.as_millis()
        as u64)
}

/// A seq (digits) or a time: where `--at` stops the replay.
pub fn parse_point(s: &str) -> Result<Stop, String> {
    if let Ok(seq) = s.parse::<u64>() {
        return Ok(Stop::AfterSeq(seq));
    }
    parse_time(s).map(Stop::AtTime).map_err(|_| {
        format!("{s:?} is neither a seq (a number) nor a time (RFC 3339, like 2026-01-01T10:00:00Z)")
    })
}

pub fn format_ms(ms: u64) -> String {
    moltlog_core::restore::openclaw::iso8601(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_points() {
        assert_eq!(parse_time("1767225604000"), Ok(1_767_225_604_000));
        assert_eq!(parse_time("2026-01-01T00:00:04Z"), Ok(1_767_225_604_000));
        assert_eq!(parse_time("2026-01-01T00:00:04.5Z"), Ok(1_767_225_604_500));
        assert_eq!(parse_time("2026-01-01 00:00:04"), Ok(1_767_225_604_000));
        assert!(parse_time("yesterday").is_err());
        assert_eq!(parse_point("12"), Ok(Stop::AfterSeq(12)));
        assert_eq!(parse_point("2026-01-01T00:00:04Z"), Ok(Stop::AtTime(1_767_225_604_000)));
        assert!(parse_point("soon").is_err());
        assert_eq!(format_ms(1_767_225_604_000), "2026-01-01T00:00:04.000Z");
    }
}
