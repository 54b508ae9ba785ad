//! Settings of the `gp` and `rt` receivers.

use lumina_sdk::config::{ByteSize, ConfigError, ConfigErrors, ConfigPath, Validate};
use serde::Deserialize;

use crate::otlp::config::{OtlpReceiverConfig, Protocols};

/// Settings of a `gp` or `rt` receiver.
///
/// ```yaml
/// receivers:
///   gp:
///     protocols:
///       grpc: { endpoint: 127.0.0.1:4327 }
///       http: { endpoint: 127.0.0.1:4328 }   # OTLP at /v1/logs, native JSON at /v1/events
///     max_event_data_size: 64KiB
/// ```
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct VoiceReceiverConfig {
    /// The protocols to serve, with the `otlp` receiver's keys.
    pub protocols: Protocols,
    /// The largest `data` of one event, as JSON. Larger events are rejected. Default 64KiB.
    pub max_event_data_size: ByteSize,
    /// The most events one native JSON request may hold. Default 10000.
    pub max_events_per_request: usize,
}

impl Default for VoiceReceiverConfig {
    fn default() -> Self {
        Self {
            protocols: Protocols::default(),
            max_event_data_size: ByteSize::kib(64),
            max_events_per_request: 10_000,
        }
    }
}

impl Validate for VoiceReceiverConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::new();
        let otlp = OtlpReceiverConfig {
            protocols: self.protocols.clone(),
        };
        if let Err(e) = otlp.validate() {
            errors.extend(e);
        }
        if self.max_events_per_request == 0 {
            errors.push(ConfigError::new(
                ConfigPath::parse("max_events_per_request"),
                "must be at least 1",
            ));
        }
        errors.into_result(())
    }
}
