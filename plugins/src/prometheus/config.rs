//! Settings of the `prometheus` exporter (the OpenTelemetry Collector's keys).

use std::collections::BTreeMap;

use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath, Duration, Validate};
use serde::Deserialize;

/// `resource_to_telemetry_conversion`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceConversion {
    /// Copy every resource attribute onto each series as a label. Default false.
    pub enabled: bool,
}

/// Settings of the `prometheus` exporter.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusConfig {
    /// Where `/metrics` is served. Default `127.0.0.1:8889`.
    pub endpoint: String,
    /// A prefix for every metric name (`lumina` gives `lumina_call_count`). Default none.
    pub namespace: String,
    /// Labels added to every series.
    pub const_labels: BTreeMap<String, String>,
    /// A series not updated for this long is no longer served. Default 5m.
    pub metric_expiration: Duration,
    /// Resource attributes as labels on every series.
    pub resource_to_telemetry_conversion: ResourceConversion,
    /// Add the unit (`_seconds`, `_bytes`, `_ratio`, ...) and, to counters, `_total` to names,
    /// as the OpenTelemetry compatibility spec says. Default true; `false` serves names as
    /// they are (sanitised), as dashboards written against the metric names expect.
    pub add_metric_suffixes: bool,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        Self {
            endpoint: "127.0.0.1:8889".to_owned(),
            namespace: String::new(),
            const_labels: BTreeMap::new(),
            metric_expiration: Duration::from_secs(300),
            resource_to_telemetry_conversion: ResourceConversion::default(),
            add_metric_suffixes: true,
        }
    }
}

impl Validate for PrometheusConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::new();
        if self.endpoint.parse::<std::net::SocketAddr>().is_err()
            && !self
                .endpoint
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
        {
            errors.push(ConfigError::new(
                ConfigPath::parse("endpoint"),
                format!("`{}` is not HOST:PORT", self.endpoint),
            ));
        }
        if self.metric_expiration.is_zero() {
            errors.push(ConfigError::new(
                ConfigPath::parse("metric_expiration"),
                "must be more than 0",
            ));
        }
        for k in self.const_labels.keys() {
            if super::render::label_name(k) != *k {
                errors.push(ConfigError::new(
                    ConfigPath::parse("const_labels").key(k),
                    "is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                ));
            }
        }
        errors.into_result(())
    }
}
