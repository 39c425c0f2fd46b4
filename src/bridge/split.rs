//! Long replies split into parts that each fit the platform's message limit. Pure.
//!
//! Lengths are counted in UTF-16 code units: Telegram counts its 4,096 that way, and a code
//! point is never fewer units than characters, so a part within the limit in UTF-16 units is
//! within it on platforms that count characters too (Discord 2,000, Slack 40,000). Parts end at
//! a char boundary, preferring the last newline, then the last whitespace, in the second half
//! of the window (so parts are not tiny); the separator the cut falls on is dropped.
//!
//! The split is a function of the text and the limit only, so every attempt of an outbox
//! message computes the same parts, and a retry resumes by part index.

/// At most this many parts per reply: a runaway reply must not become thousands of messages.
/// The last part is clipped, with "…", when the text needs more.
pub const MAX_PARTS: usize = 32;

/// UTF-16 code units of `s`.
pub fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Byte index of the end of the longest prefix of `s` within `max_units` UTF-16 units.
fn prefix_end(s: &str, max_units: usize) -> usize {
    let mut units = 0;
    for (i, c) in s.char_indices() {
        units += c.len_utf16();
        if units > max_units {
            return i;
        }
    }
    s.len()
}

/// `s` cut to at most `max_units` UTF-16 units, marking the cut with "…".
pub fn clip_units(s: &str, max_units: usize) -> String {
    if utf16_len(s) <= max_units {
        return s.to_owned();
    }
    let keep = &s[..prefix_end(s, max_units.saturating_sub(1))];
    format!("{keep}…")
}

/// Where to cut a window: (end of this part, start of the rest), both byte indices.
fn cut(window: &str) -> (usize, usize) {
    let half = window.len() / 2;
    let at = |i: usize| {
        let sep = window[i..].chars().next().map_or(0, char::len_utf8);
        (i, i + sep)
    };
    if let Some(i) = window.rfind('\n').filter(|&i| i > 0 && i >= half) {
        return at(i);
    }
    if let Some((i, _)) = window.char_indices().rev().find(|&(i, c)| c.is_whitespace() && i > 0 && i >= half)
    {
        return at(i);
    }
    (window.len(), window.len())
}

/// `text` as parts of at most `max_units` UTF-16 units each, in order. Text that fits is one
/// part, unchanged (even when empty). At most [`MAX_PARTS`] parts.
pub fn split(text: &str, max_units: usize) -> Vec<String> {
    let max_units = max_units.max(2);
    let mut parts = Vec::new();
    let mut rest = text;
    let mut rest_units = utf16_len(text);
    while rest_units > max_units {
        if parts.len() + 1 == MAX_PARTS {
            parts.push(clip_units(rest, max_units));
            return parts;
        }
        let window = &rest[..prefix_end(rest, max_units)];
        let (end, next) = cut(window);
        let part = &rest[..end];
        // A run of whitespace longer than a message would be a part the platform refuses.
        if !part.trim().is_empty() {
            parts.push(part.to_owned());
        }
        rest_units -= utf16_len(&rest[..next]);
        rest = &rest[next..];
    }
    if parts.is_empty() || !rest.trim().is_empty() {
        parts.push(rest.to_owned());
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_part_unchanged() {
        assert_eq!(split("hello", 4096), ["hello"]);
        assert_eq!(split("", 4096), [""]);
        let exact = "x".repeat(4096);
        assert_eq!(split(&exact, 4096), [exact.as_str()]);
    }

    /// The reported case: 6,015 characters to Telegram were one clipped message.
    #[test]
    fn a_long_reply_is_split_not_cut() {
        let words: Vec<String> = (0..1200).map(|i| format!("w{i:03}")).collect();
        let text = words.join(" ");
        assert!(text.chars().count() >= 5999);
        let parts = split(&text, 4096);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| utf16_len(p) <= 4096));
        assert!(!parts[0].ends_with('…') && !parts[0].ends_with(' '));
        assert_eq!(parts.join(" "), text, "nothing lost, order kept, cut at a space");
    }

    #[test]
    fn prefers_newlines_then_spaces_then_cuts() {
        let text = format!("{}\n{} {}", "a".repeat(70), "b".repeat(20), "c".repeat(20));
        assert_eq!(split(&text, 100), ["a".repeat(70), format!("{} {}", "b".repeat(20), "c".repeat(20))]);
        let text = format!("{} {}", "a".repeat(70), "b".repeat(50));
        assert_eq!(split(&text, 100), ["a".repeat(70), "b".repeat(50)]);
        // A newline early in the window would make a tiny part: the space later wins.
        let text = format!("ab\n{} {}", "c".repeat(80), "d".repeat(30));
        assert_eq!(split(&text, 100)[0], format!("ab\n{}", "c".repeat(80)));
        let text = "x".repeat(250);
        assert_eq!(split(&text, 100), ["x".repeat(100), "x".repeat(100), "x".repeat(50)]);
    }

    #[test]
    fn counts_utf16_units_and_never_splits_a_char() {
        // 😀 is 2 UTF-16 units: 4096 units hold 2048 of them.
        let text = "😀".repeat(3000);
        let parts = split(&text, 4096);
        assert_eq!(parts.iter().map(|p| p.chars().count()).collect::<Vec<_>>(), [2048, 952]);
        assert_eq!(parts.concat(), text);
        let mixed = "é😀a".repeat(1000);
        let parts = split(&mixed, 2000);
        assert!(parts.iter().all(|p| utf16_len(p) <= 2000));
        assert_eq!(parts.concat(), mixed);
    }

    #[test]
    fn parts_are_bounded_and_never_blank() {
        let parts = split(&"y".repeat(100 * 50), 50);
        assert_eq!(parts.len(), MAX_PARTS);
        assert!(parts.last().unwrap().ends_with('…'));
        assert!(parts.iter().all(|p| utf16_len(p) <= 50));
        let text = format!("start{}end", " ".repeat(300));
        let parts = split(&text, 100);
        assert!(parts.iter().all(|p| !p.trim().is_empty()), "{parts:?}");
        assert_eq!(parts.first().unwrap().trim_end(), "start");
        assert_eq!(parts.last().unwrap().trim(), "end");
    }

    #[test]
    fn clipping_counts_units() {
        assert_eq!(clip_units("hello", 5), "hello");
        assert_eq!(clip_units("héllo!", 5), "héll…");
        assert_eq!(clip_units("😀😀😀", 4), "😀…");
    }
}
