//! Small helpers the host and components share.

/// Wall-clock nanoseconds since the Unix epoch (0 if the clock reads before it).
pub fn now_unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// `name` (a component id, a pipeline id) as part of a file name: ASCII letters, digits, `-`
/// and `.` are kept, anything else (`/` included) becomes `_` (`kinesis/eu-west-1` →
/// `kinesis_eu-west-1`).
pub fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_stems_keep_only_safe_characters() {
        assert_eq!(super::file_stem("kinesis/eu-west-1"), "kinesis_eu-west-1");
        assert_eq!(super::file_stem("a b/../c"), "a_b_.._c");
    }
}
