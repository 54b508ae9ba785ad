//! Human-friendly value types for configs: durations (`200ms`, `1h30m`) and sizes (`64MiB`).

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written the way Go (and so the OpenTelemetry Collector) writes them: a sequence of
/// numbers with units, such as `200ms`, `1.5s`, `1h30m`; `d` (days) is accepted too. `0` needs no
/// unit.
///
/// Go's syntax is used rather than another crate's so that configs written for the
/// OpenTelemetry Collector read the same here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    /// From whole milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Self(std::time::Duration::from_millis(ms))
    }

    /// From whole seconds.
    pub const fn from_secs(s: u64) -> Self {
        Self(std::time::Duration::from_secs(s))
    }

    /// The standard library duration.
    pub const fn get(self) -> std::time::Duration {
        self.0
    }

    /// Whether it is zero (often meaning "off").
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration `{input}`: {reason}; write it like `200ms`, `30s`, `1h30m`")]
pub struct DurationError {
    input: String,
    reason: &'static str,
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| DurationError {
            input: s.to_owned(),
            reason,
        };
        let t = s.trim();
        if t == "0" {
            return Ok(Self::default());
        }
        if t.is_empty() {
            return Err(err("it is empty"));
        }
        if t.starts_with('-') {
            return Err(err("durations cannot be negative"));
        }
        let mut rest = t.strip_prefix('+').unwrap_or(t);
        let mut total = 0f64;
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            if num_len == 0 {
                return Err(err("expected a number"));
            }
            let n: f64 = rest[..num_len].parse().map_err(|_| err("bad number"))?;
            rest = &rest[num_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let nanos_per = match rest[..unit_len].trim() {
                "ns" => 1.0,
                "us" | "µs" | "μs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                "d" => 86400e9,
                "" => return Err(err("a unit is missing")),
                _ => return Err(err("unknown unit (use ns, us, ms, s, m, h or d)")),
            };
            rest = &rest[unit_len..];
            total += n * nanos_per;
        }
        if !total.is_finite() || total > u64::MAX as f64 {
            return Err(err("too large"));
        }
        Ok(Self(std::time::Duration::from_nanos(total.round() as u64)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.is_zero() {
            return f.write_str("0s");
        }
        let nanos = d.as_nanos();
        if !nanos.is_multiple_of(1_000_000) {
            return if nanos.is_multiple_of(1000) {
                write!(f, "{}us", nanos / 1000)
            } else {
                write!(f, "{nanos}ns")
            };
        }
        let ms = d.as_millis();
        if !ms.is_multiple_of(1000) {
            return write!(f, "{ms}ms");
        }
        let mut secs = d.as_secs();
        let h = secs / 3600;
        secs %= 3600;
        let m = secs / 60;
        secs %= 60;
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if secs > 0 {
            write!(f, "{secs}s")?;
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as `200ms` or `30s`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                if v == 0 {
                    Ok(Duration::default())
                } else {
                    Err(E::custom(format!(
                        "`{v}` needs a unit, e.g. `{v}s` or `{v}ms`"
                    )))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                self.visit_u64(v.max(1) as u64)
            }
        }
        d.deserialize_str(V)
    }
}

/// A size in bytes, written as a number of bytes or with a unit: `512KiB`, `64MiB`, `1GB`.
/// `KiB`/`MiB`/`GiB` are powers of 1024, `KB`/`MB`/`GB` powers of 1000.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// `n` mebibytes.
    pub const fn mib(n: u64) -> Self {
        Self(n * 1024 * 1024)
    }

    /// `n` kibibytes.
    pub const fn kib(n: u64) -> Self {
        Self(n * 1024)
    }

    /// The number of bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// The number of bytes as `usize`, saturating on 32-bit targets.
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if let Ok(n) = t.parse::<u64>() {
            return Ok(Self(n));
        }
        t.parse::<bytesize::ByteSize>()
            .map(|b| Self(b.as_u64()))
            .map_err(|_| {
                format!("invalid size `{s}`; write it like `512KiB`, `64MiB` or a number of bytes")
            })
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if b >= size && b.is_multiple_of(size) {
                return write!(f, "{}{unit}", b / size);
            }
        }
        write!(f, "{b}")
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as `64MiB`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        let ms = |s: &str| s.parse::<Duration>().unwrap().0.as_millis();
        assert_eq!(ms("200ms"), 200);
        assert_eq!(ms("1.5s"), 1500);
        assert_eq!(ms("1h30m"), 90 * 60 * 1000);
        assert_eq!(ms("2h"), 2 * 3600 * 1000);
        assert_eq!(ms("0"), 0);
        assert_eq!(ms("1d"), 86_400_000);
        assert!(
            "5".parse::<Duration>()
                .unwrap_err()
                .to_string()
                .contains("unit is missing")
        );
        assert!("5 parsecs".parse::<Duration>().is_err());
        assert!("-1s".parse::<Duration>().is_err());
    }

    #[test]
    fn durations_print_back() {
        for s in ["200ms", "1h30m", "30s", "0s", "2h"] {
            assert_eq!(s.parse::<Duration>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!("64MiB".parse::<ByteSize>().unwrap().0, 64 << 20);
        assert_eq!("1KB".parse::<ByteSize>().unwrap().0, 1000);
        assert_eq!("1024".parse::<ByteSize>().unwrap().0, 1024);
        assert_eq!(ByteSize::mib(16).to_string(), "16MiB");
        assert!("lots".parse::<ByteSize>().is_err());
    }
}

/// JSON Schemas for editors and `lumina schema`: what the parsers above take. A plain `0`
/// is a duration too; `${env:...}` is allowed wherever a value is (`lumina schema` adds that).
#[cfg(feature = "host")]
mod schema {
    use std::borrow::Cow;

    use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

    impl JsonSchema for super::Duration {
        fn schema_name() -> Cow<'static, str> {
            "Duration".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "description": "A duration with a unit: `200ms`, `30s`, `5m`, `1h`, `1m30s` (`ns`, `us`, `ms`, `s`, `m`, `h`); `0` for none.",
                "anyOf": [
                    { "type": "string", "pattern": "^\\s*([0-9]+(\\.[0-9]+)?\\s*[a-zµ]+\\s*)+$" },
                    { "type": "string", "pattern": "^\\s*0\\s*$" },
                    { "const": 0 }
                ]
            })
        }
    }

    impl JsonSchema for super::ByteSize {
        fn schema_name() -> Cow<'static, str> {
            "ByteSize".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "description": "A size: bytes, or with a unit: `512KiB`, `64MiB`, `1GB` (`KiB`/`MiB`/`GiB` are powers of 1024, `KB`/`MB`/`GB` of 1000).",
                "anyOf": [
                    { "type": "integer", "minimum": 0 },
                    { "type": "string", "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*([KMGT]i?B|B)?\\s*$" }
                ]
            })
        }
    }
}
