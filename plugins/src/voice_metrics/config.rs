//! Settings of the `voice_metrics` connector.

use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath, Duration, Validate};
use serde::Deserialize;

/// Settings of `voice_metrics`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct VoiceMetricsConfig {
    /// How often metrics are sent. Default 60s.
    pub interval: Duration,
    /// `queue_service_level` counts calls answered within this long of being queued.
    /// Default 20s.
    pub service_level_threshold: Duration,
}

impl Default for VoiceMetricsConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            service_level_threshold: Duration::from_secs(20),
        }
    }
}

impl Validate for VoiceMetricsConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        if self.interval.is_zero() {
            return Err(
                ConfigError::new(ConfigPath::parse("interval"), "must be more than 0").into(),
            );
        }
        Ok(())
    }
}
