//! Settings of the `batch` processor.

use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath, Duration, Validate};
use serde::Deserialize;

/// The `batch` processor's settings (the OpenTelemetry Collector's keys).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Send once this many items are waiting. Default 8192.
    pub send_batch_size: u32,
    /// Split batches larger than this. 0 (default) means no limit.
    pub send_batch_max_size: u32,
    /// Send whatever is waiting after this long, even if fewer than `send_batch_size`.
    /// Default 200ms; 0 sends every batch at once (only splitting applies).
    pub timeout: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            send_batch_size: 8192,
            send_batch_max_size: 0,
            timeout: Duration::from_millis(200),
        }
    }
}

impl Validate for BatchConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        if self.send_batch_max_size != 0 && self.send_batch_max_size < self.send_batch_size {
            return Err(ConfigError::new(
                ConfigPath::parse("send_batch_max_size"),
                format!(
                    "{} is below send_batch_size ({})",
                    self.send_batch_max_size, self.send_batch_size
                ),
            )
            .with_hint("make it at least send_batch_size, or 0 for no limit")
            .into());
        }
        Ok(())
    }
}
