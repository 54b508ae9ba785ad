//! Settings of the `memory_limiter` processor.

use lumina_sdk::config::{ByteSize, ConfigError, ConfigErrors, ConfigPath, Duration, Validate};
use serde::Deserialize;

/// Settings of `memory_limiter`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryLimiterConfig {
    /// The process's memory budget (resident set).
    pub limit: ByteSize,
    /// Headroom kept below `limit` for what arrives between checks. Default 20% of `limit`.
    #[serde(default)]
    pub spike_limit: Option<ByteSize>,
    /// How often memory is measured. Default 1s.
    #[serde(default = "default_interval")]
    pub check_interval: Duration,
}

fn default_interval() -> Duration {
    Duration::from_secs(1)
}

impl MemoryLimiterConfig {
    /// Above this, batches are refused.
    pub fn threshold(&self) -> u64 {
        let spike = self
            .spike_limit
            .map_or(self.limit.bytes() / 5, ByteSize::bytes);
        self.limit.bytes().saturating_sub(spike)
    }
}

impl Validate for MemoryLimiterConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::new();
        if self.limit.bytes() == 0 {
            errors.push(ConfigError::new(
                ConfigPath::parse("limit"),
                "must be more than 0",
            ));
        }
        if self
            .spike_limit
            .is_some_and(|s| s.bytes() >= self.limit.bytes())
        {
            errors.push(ConfigError::new(
                ConfigPath::parse("spike_limit"),
                "must be less than `limit`",
            ));
        }
        if self.check_interval.is_zero() {
            errors.push(ConfigError::new(
                ConfigPath::parse("check_interval"),
                "must be more than 0",
            ));
        }
        errors.into_result(())
    }
}
