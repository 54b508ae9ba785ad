//! The three telemetry signals.

use std::fmt;
use std::str::FromStr;

/// A kind of telemetry. Pipelines carry one signal each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// Log records (and voice events, which are log records).
    Logs,
    /// Spans.
    Traces,
    /// Metric data points.
    Metrics,
}

impl Signal {
    /// All signals, in a fixed order.
    pub const ALL: [Signal; 3] = [Signal::Logs, Signal::Traces, Signal::Metrics];

    /// The name used in pipeline ids and metric labels: `logs`, `traces`, `metrics`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Signal::Logs => "logs",
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
        }
    }

    /// What one item of this signal is called: `log records`, `spans`, `data points`.
    pub const fn item_name(self) -> &'static str {
        match self {
            Signal::Logs => "log records",
            Signal::Traces => "spans",
            Signal::Metrics => "data points",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The text was not `logs`, `traces` or `metrics`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown signal `{0}`; expected `logs`, `traces` or `metrics`")]
pub struct UnknownSignal(pub String);

impl FromStr for Signal {
    type Err = UnknownSignal;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "logs" => Ok(Signal::Logs),
            "traces" => Ok(Signal::Traces),
            "metrics" => Ok(Signal::Metrics),
            other => Err(UnknownSignal(other.to_owned())),
        }
    }
}

impl serde::Serialize for Signal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Signal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "host")]
impl schemars::JsonSchema for Signal {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Signal".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "enum": ["logs", "traces", "metrics"] })
    }
}
