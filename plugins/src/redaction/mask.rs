//! Finding phone numbers and masking them.
//!
//! A value under a number key (`callerNumber`, `voice.caller.number`, `participants`, ...)
//! is masked whole when it holds a digit. Every other string is searched for numbers: a run
//! of 7 to 15 digits, optionally after a `+`, with at most two separators (space, `.`, `-`,
//! `(`, `)`) between digits. A run is not a number when it is part of a word or an id (a
//! letter, digit, `_` or `#` next to it, or `-`, `.`, `/`, `:` before it without a `+`), or
//! when it has the shape of a date (`2026-12-01`, `01/12/2026`), an IPv4 address or a
//! decimal (one `.` and no other separator).

use std::sync::LazyLock;

use hmac::{Hmac, KeyInit, Mac};
use regex::Regex;

/// How a number is masked.
#[derive(Clone)]
pub(crate) enum Masking {
    /// Every digit but the last `n` becomes `*`; separators and a `+` stay. At least half
    /// the digits are masked, however short the number.
    LastDigits(usize),
    /// `#` and the first 16 hexadecimal digits of HMAC-SHA-256 of the number (a leading `+`
    /// and its digits, separators removed) under the key: equal numbers mask equally.
    Hmac(Vec<u8>),
}

static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)]
    Regex::new(r"\+?\(?\d(?:[ .\-()]{0,2}\d){6,16}").expect("the number pattern compiles")
});

static NOT_NUMBERS: LazyLock<[Regex; 3]> = LazyLock::new(|| {
    #[allow(clippy::expect_used)]
    let re = |p: &str| Regex::new(p).expect("the exclusion patterns compile");
    [
        re(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}"),
        re(r"^\d{1,2}[-./]\d{1,2}[-./]\d{4}$"),
        re(r"^\d{1,3}(\.\d{1,3}){3}$"),
    ]
});

/// An HMAC output this processor wrote: `#` and 16 lower-case hex digits.
fn is_hmac_mask(s: &str) -> bool {
    s.len() == 17
        && s.starts_with('#')
        && s[1..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn word(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '#')
}

/// Whether `m`, found at `start..end` of `text`, is a phone number.
fn is_number(text: &str, start: usize, end: usize) -> bool {
    let m = &text[start..end];
    let digits = m.bytes().filter(u8::is_ascii_digit).count();
    if !(7..=15).contains(&digits) {
        return false;
    }
    let before = text[..start].chars().next_back();
    let plus = m.starts_with('+');
    if word(before) || (!plus && matches!(before, Some('-' | '.' | '/' | ':'))) {
        return false;
    }
    let mut after = text[end..].chars();
    match after.next() {
        c if word(c) => return false,
        Some('-' | '.' | '/') if word(after.next()) => return false,
        _ => {}
    }
    let bare = m.trim_start_matches('+');
    if NOT_NUMBERS.iter().any(|r| r.is_match(bare)) {
        return false;
    }
    let separators = bare.bytes().filter(|b| !b.is_ascii_digit()).count();
    !(separators == 1 && bare.contains('.'))
}

impl Masking {
    /// The masked form of a number.
    pub(crate) fn mask(&self, number: &str) -> String {
        match self {
            Masking::LastDigits(n) => {
                let digits = number.chars().filter(char::is_ascii_digit).count();
                let keep = (*n).min(digits / 2);
                let mut seen = 0;
                number
                    .chars()
                    .map(|c| {
                        if !c.is_ascii_digit() {
                            return c;
                        }
                        seen += 1;
                        if seen > digits - keep { c } else { '*' }
                    })
                    .collect()
            }
            Masking::Hmac(key) => {
                let mut normal = String::with_capacity(number.len());
                if number.trim_start().starts_with('+') {
                    normal.push('+');
                }
                normal.extend(number.chars().filter(char::is_ascii_digit));
                #[allow(clippy::expect_used)]
                let mut mac = <Hmac<sha2_011::Sha256> as KeyInit>::new_from_slice(key)
                    .expect("HMAC takes a key of any length");
                mac.update(normal.as_bytes());
                let out = mac.finalize().into_bytes();
                let mut s = String::with_capacity(17);
                s.push('#');
                for b in &out[..8] {
                    s.push_str(&format!("{b:02x}"));
                }
                s
            }
        }
    }

    /// A value under a number key, masked whole; `None` if it is left as it is (no digit, or
    /// masked already).
    pub(crate) fn whole(&self, value: &str) -> Option<String> {
        if !value.bytes().any(|b| b.is_ascii_digit()) || is_hmac_mask(value) {
            return None;
        }
        let masked = self.mask(value);
        (masked != value).then_some(masked)
    }

    /// `text` with every number in it (and every match of `extra`) masked; `None` if it
    /// held none. Also returns how many were masked.
    pub(crate) fn text(&self, text: &str, extra: &[Regex]) -> Option<(String, u64)> {
        let spans: Vec<(usize, usize)> = NUMBER
            .find_iter(text)
            .filter(|m| is_number(text, m.start(), m.end()))
            .map(|m| (m.start(), m.end()))
            .collect();
        self.spans(text, spans, extra)
    }

    /// `text` with only the matches of `extra` masked.
    pub(crate) fn patterns_only(&self, text: &str, extra: &[Regex]) -> Option<(String, u64)> {
        self.spans(text, Vec::new(), extra)
    }

    fn spans(
        &self,
        text: &str,
        mut spans: Vec<(usize, usize)>,
        extra: &[Regex],
    ) -> Option<(String, u64)> {
        for re in extra {
            spans.extend(re.find_iter(text).map(|m| (m.start(), m.end())));
        }
        if spans.is_empty() {
            return None;
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let (mut at, mut count) = (0, 0);
        for (s, e) in spans {
            if s < at || s == e {
                continue;
            }
            out.push_str(&text[at..s]);
            out.push_str(&self.mask(&text[s..e]));
            at = e;
            count += 1;
        }
        out.push_str(&text[at..]);
        (out != text).then_some((out, count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last4(text: &str) -> String {
        Masking::LastDigits(4)
            .text(text, &[])
            .map_or_else(|| text.to_owned(), |(s, _)| s)
    }

    #[test]
    fn numbers_in_text_are_masked_keeping_the_last_digits() {
        assert_eq!(last4("+442071234567"), "+********4567");
        assert_eq!(
            last4("caller +44 20 7946 0958 asked for a call back on 020 7946 0958."),
            "caller +** ** **** 0958 asked for a call back on *** **** 0958."
        );
        assert_eq!(last4("(415) 555-0123"), "(***) ***-0123");
        assert_eq!(last4("tel:+15551234567"), "tel:+*******4567");
        assert_eq!(last4("+44 (0)20 7946 0958"), "+** (*)** **** 0958");
    }

    #[test]
    fn ids_dates_addresses_and_decimals_are_not_numbers() {
        for s in [
            "2026-12-01T10:00:00Z",
            "2026-12-01 10:00:00",
            "01/12/2026",
            "call-12345678",
            "ORG#12345678",
            "leg_12345678",
            "a1234567",
            "12345678-abcd-4000-8000-766f69636531",
            "6c756d69-6e61-4000-8000-123456789012",
            "192.168.100.200",
            "12345.678",
            "v1.2.3",
            "123456",
        ] {
            assert_eq!(last4(s), s, "{s} is not a number");
        }
    }

    #[test]
    fn short_numbers_under_a_key_still_lose_half_their_digits() {
        assert_eq!(
            Masking::LastDigits(4).whole("+441").as_deref(),
            Some("+**1")
        );
        assert_eq!(Masking::LastDigits(4).whole("anonymous"), None);
    }

    #[test]
    fn hmac_masks_equal_numbers_equally_and_different_ones_differently() {
        let m = Masking::Hmac(b"secret key".to_vec());
        let a = m.whole("+44 20 7946 0958").unwrap();
        assert_eq!(a, m.whole("+442079460958").unwrap());
        assert_ne!(a, m.whole("+442079460959").unwrap());
        assert!(is_hmac_mask(&a), "{a}");
        assert_eq!(m.whole(&a), None, "masking twice changes nothing");
        assert_eq!(m.text(&format!("see {a}"), &[]), None);
        // RFC 4231-style check: the value is HMAC-SHA-256 of "+442079460958" under the key.
        let mut mac = <Hmac<sha2_011::Sha256> as KeyInit>::new_from_slice(b"secret key").unwrap();
        mac.update(b"+442079460958");
        let want: String = mac.finalize().into_bytes()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(a, format!("#{want}"));
        let other = Masking::Hmac(b"another key".to_vec());
        assert_ne!(a, other.whole("+442079460958").unwrap());
    }

    #[test]
    fn extra_patterns_are_masked_too() {
        let re = [Regex::new(r"\b\d{5}\b").unwrap()];
        let (s, n) = Masking::LastDigits(2)
            .text("pin 12345 at +15551234567", &re)
            .unwrap();
        assert_eq!(s, "pin ***45 at +*********67");
        assert_eq!(n, 2);
    }
}
