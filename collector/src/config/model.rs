//! The typed parts of the top-level config: `service` (pipelines, telemetry, extensions) and
//! the host's own extension configs.

use std::collections::BTreeMap;
use std::fmt;

use lumina_sdk::Signal;
use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath, Validate, did_you_mean};
use serde::Deserialize;

/// The top-level sections.
pub const SECTIONS: [&str; 6] = [
    "receivers",
    "processors",
    "exporters",
    "connectors",
    "extensions",
    "service",
];

/// `service`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceSection {
    /// Extensions to run, by id.
    pub extensions: Vec<String>,
    /// Pipelines by id (`logs`, `traces/name`, ...).
    pub pipelines: BTreeMap<String, PipelineSection>,
    /// The collector's own logs and metrics.
    pub telemetry: TelemetrySection,
}

impl Validate for ServiceSection {
    fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::new();
        let status = self.telemetry.health.degraded_status;
        if status != 200 && status != 503 {
            errors.push(ConfigError::new(
                ConfigPath::parse("telemetry.health.degraded_status"),
                format!("is {status}; use 200 (the body says `degraded`) or 503"),
            ));
        }
        if let Some(a) = &self.telemetry.admin
            && !a.is_local()
            && a.token.as_deref().is_none_or(str::is_empty)
        {
            errors.push(ConfigError::new(
                ConfigPath::parse("telemetry.admin.token"),
                format!(
                    "is required: `{}` is reachable from other hosts, and the admin endpoint shows the records flowing through the collector",
                    a.address
                ),
            ));
        }
        if self.telemetry.logs.outage_summary_interval.is_zero() {
            errors.push(ConfigError::new(
                ConfigPath::parse("telemetry.logs.outage_summary_interval"),
                "must be more than 0",
            ));
        }
        errors.into_result(())
    }
}

/// One pipeline.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineSection {
    /// Receiver (or connector) ids.
    pub receivers: Vec<String>,
    /// Processor ids, in order.
    pub processors: Vec<String>,
    /// Exporter (or connector) ids.
    pub exporters: Vec<String>,
}

/// `service.telemetry`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySection {
    /// The collector's logs.
    pub logs: LogsTelemetry,
    /// The collector's metrics.
    pub metrics: MetricsTelemetry,
    /// The admin endpoint (`lumina tap`, `lumina top`); off unless set.
    pub admin: Option<AdminTelemetry>,
    /// What `/health` calls degraded.
    pub health: HealthTelemetry,
}

/// `service.telemetry.health`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HealthTelemetry {
    /// An exporter failing this long (or that gave batches up this recently) makes the
    /// collector `degraded`. Default 30s.
    pub degraded_after: lumina_sdk::config::Duration,
    /// The HTTP status of a degraded report: 200 (default; the body says `degraded`) or 503.
    pub degraded_status: u16,
}

impl Default for HealthTelemetry {
    fn default() -> Self {
        Self {
            degraded_after: lumina_sdk::config::Duration::from_secs(30),
            degraded_status: 200,
        }
    }
}

/// Log level.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation (default).
    #[default]
    Info,
    /// Problems that the collector handles.
    Warn,
    /// Problems that lose or refuse data.
    Error,
}

impl LogLevel {
    /// The `tracing` filter directive.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogEncoding {
    /// Human-readable text (default).
    #[default]
    #[serde(alias = "text")]
    Console,
    /// One JSON object per line.
    Json,
}

/// `service.telemetry.logs`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogsTelemetry {
    /// `trace`, `debug`, `info` (default), `warn` or `error`. `--log-level` overrides it.
    pub level: LogLevel,
    /// `console` (default) or `json`. `format` is accepted as another name for it.
    #[serde(alias = "format")]
    pub encoding: LogEncoding,
    /// How often a failing exporter's outage is summarised at WARN. Default 30s.
    pub outage_summary_interval: lumina_sdk::config::Duration,
}

impl Default for LogsTelemetry {
    fn default() -> Self {
        Self {
            level: LogLevel::default(),
            encoding: LogEncoding::default(),
            outage_summary_interval: lumina_sdk::config::Duration::from_secs(30),
        }
    }
}

/// How much the collector reports about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetricsLevel {
    /// No metrics endpoint.
    None,
    /// Component counters and queue gauges.
    Basic,
    /// The same (room for more detail later).
    #[default]
    Normal,
    /// The same.
    Detailed,
}

/// `service.telemetry.admin`: the endpoint `lumina tap` and `lumina top` read.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdminTelemetry {
    /// `host:port`. Default `127.0.0.1:8899`.
    pub address: String,
    /// A bearer token clients must send (`Authorization: Bearer ...`); required when
    /// `address` is not a loopback address.
    pub token: Option<String>,
}

impl Default for AdminTelemetry {
    fn default() -> Self {
        Self {
            address: "127.0.0.1:8899".into(),
            token: None,
        }
    }
}

impl Validate for AdminTelemetry {}

impl AdminTelemetry {
    /// Whether `address` listens only on the loopback interface.
    pub fn is_local(&self) -> bool {
        let host = self
            .address
            .rsplit_once(':')
            .map_or(self.address.as_str(), |(h, _)| h)
            .trim_matches(['[', ']']);
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// `service.telemetry.metrics`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsTelemetry {
    /// `none` turns the endpoint off.
    pub level: MetricsLevel,
    /// Where `/metrics` (Prometheus) and `/health` are served. Default `127.0.0.1:8888`.
    pub address: String,
    /// Also show the metrics under the OpenTelemetry Collector's names
    /// (`otelcol_receiver_accepted_log_records_total`, ...). Default true.
    pub otelcol_names: bool,
}

impl Default for MetricsTelemetry {
    fn default() -> Self {
        Self {
            level: MetricsLevel::Normal,
            address: "127.0.0.1:8888".into(),
            otelcol_names: true,
        }
    }
}

/// The `health_check` extension (the OpenTelemetry Collector's): serves pipeline health.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheckConfig {
    /// `host:port`. Default `localhost:13133`.
    pub endpoint: String,
    /// The path. Default `/`.
    pub path: String,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        Self {
            endpoint: "localhost:13133".into(),
            path: "/".into(),
        }
    }
}

impl Validate for HealthCheckConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::new();
        if let Err(e) = lumina_net::endpoint::listen_address(&self.endpoint) {
            errors.push(ConfigError::new(ConfigPath::parse("endpoint"), e));
        }
        if !self.path.starts_with('/') {
            errors.push(ConfigError::new(
                ConfigPath::parse("path"),
                "must start with `/`",
            ));
        }
        errors.into_result(())
    }
}

/// The extension types the host provides.
pub const EXTENSION_TYPES: [&str; 1] = ["health_check"];

/// A pipeline id: `signal` or `signal/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PipelineId {
    /// The signal it carries.
    pub signal: Signal,
    /// The name after `/`, if any.
    pub name: Option<String>,
}

impl fmt::Display for PipelineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{}/{n}", self.signal),
            None => write!(f, "{}", self.signal),
        }
    }
}

impl PipelineId {
    /// Parses `logs`, `traces/name`, ...; the error says what was expected.
    pub fn parse(s: &str) -> Result<Self, (String, Option<String>)> {
        let (sig, name) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let signal: Signal = sig.parse().map_err(|_| {
            let hint = did_you_mean(sig, ["logs", "traces", "metrics"]).map(|m| format!("did you mean `{m}`?"));
            (format!("unknown signal `{sig}` in pipeline id `{s}`; a pipeline id is `logs`, `traces` or `metrics`, optionally followed by `/name`"), hint)
        })?;
        if let Some(n) = name
            && (n.is_empty() || n.contains(['/', ' ']))
        {
            return Err((
                format!(
                    "invalid pipeline name in `{s}`: a name is not empty and has no spaces or `/`"
                ),
                None,
            ));
        }
        Ok(Self {
            signal,
            name: name.map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_ids_parse_and_suggest() {
        assert_eq!(PipelineId::parse("logs/eu").unwrap().to_string(), "logs/eu");
        assert_eq!(
            PipelineId::parse("metrics").unwrap().signal,
            Signal::Metrics
        );
        let (msg, hint) = PipelineId::parse("log/eu").unwrap_err();
        assert!(msg.contains("unknown signal `log`"));
        assert_eq!(hint.as_deref(), Some("did you mean `logs`?"));
        assert!(PipelineId::parse("logs/").is_err());
    }
}
