//! The `memory_limiter` processor: a byte budget for the whole process. Put it first in each
//! pipeline; while the process's resident memory is above `limit - spike_limit`, it refuses
//! batches with a retryable error (the receiver answers `UNAVAILABLE` / 503 with a retry
//! delay), so clients back off before the process grows further. It is measured every
//! `check_interval` (and at most that often), from `/proc/self/statm`.
//!
//! ```yaml
//! processors:
//!   memory_limiter: { limit: 1GiB, spike_limit: 200MiB, check_interval: 1s }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use lumina_sdk::component::{
    Accepted, ComponentError, ComponentInfo, ComponentKind, ConsumeError, Consumer, CreateContext,
    DynConsumer, Processor, ProcessorFactory, Stability,
};
use lumina_sdk::config::{
    self, ByteSize, ConfigError, ConfigErrors, ConfigPath, ConfigValue, Duration, Validate,
};
use lumina_sdk::telemetry::{ComponentTelemetry, RateLimit, names};
use lumina_sdk::{Batch, Signal};
use serde::Deserialize;
use tokio::task::JoinHandle;

/// Settings of `memory_limiter`.
#[derive(Debug, Clone, Deserialize)]
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

/// The process's resident memory in bytes (0 where it cannot be read).
pub fn resident_bytes() -> u64 {
    let page = 4096;
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page)
}

/// Makes `memory_limiter` processors.
pub struct MemoryLimiterFactory;

#[async_trait]
impl ProcessorFactory for MemoryLimiterFactory {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::new(
            "memory_limiter",
            ComponentKind::Processor,
            Stability::Beta,
            &Signal::ALL,
            "Refuses data (retryably) while the process is over its memory budget.",
        )
    }

    fn validate(&self, config: &ConfigValue) -> Result<(), ConfigErrors> {
        config::parse::<MemoryLimiterConfig>(config).map(|_| ())
    }

    async fn create(
        &self,
        config: &ConfigValue,
        ctx: CreateContext,
        _signal: Signal,
        next: DynConsumer,
    ) -> Result<Arc<dyn Processor>, ComponentError> {
        let cfg: MemoryLimiterConfig = config::parse(config)?;
        let used = Arc::new(AtomicU64::new(resident_bytes()));
        let every = cfg.check_interval.get();
        let task = {
            let used = used.clone();
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(every);
                loop {
                    ticker.tick().await;
                    used.store(resident_bytes(), Ordering::Relaxed);
                }
            })
        };
        ctx.telemetry
            .gauge("lumina_memory_limit_bytes", &[])
            .set(cfg.limit.bytes() as f64);
        Ok(Arc::new(MemoryLimiter {
            next,
            threshold: cfg.threshold(),
            used,
            retry_after: every.max(StdDuration::from_secs(1)),
            telemetry: ctx.telemetry,
            log_limit: RateLimit::per_10s(),
            task,
            id: Arc::from(format!("processor {}", ctx.id)),
        }))
    }
}

struct MemoryLimiter {
    next: DynConsumer,
    threshold: u64,
    used: Arc<AtomicU64>,
    retry_after: StdDuration,
    telemetry: ComponentTelemetry,
    log_limit: RateLimit,
    task: JoinHandle<()>,
    id: Arc<str>,
}

#[async_trait]
impl Consumer for MemoryLimiter {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        let used = self.used.load(Ordering::Relaxed);
        if used > self.threshold {
            let signal = batch.signal();
            self.telemetry
                .counter(
                    names::RECEIVER_REFUSED,
                    &[
                        ("signal", signal.to_string()),
                        ("reason", "memory_limit".to_owned()),
                    ],
                )
                .increment(batch.len() as u64);
            if let Some(suppressed) = self.log_limit.check() {
                tracing::warn!(component = %self.telemetry.id(), used_bytes = used, threshold_bytes = self.threshold, suppressed_since_last_log = suppressed,
                    "Memory is over the limit; refusing data so senders retry later.");
            }
            return Err(ConsumeError::Backpressure {
                component: self.id.clone(),
                retry_after: self.retry_after,
            });
        }
        self.next.consume(batch).await
    }
}

#[async_trait]
impl Processor for MemoryLimiter {
    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.task.abort();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lumina_sdk::testkit::{self, CollectingConsumer};

    async fn limiter(yaml: &str) -> (Arc<dyn Processor>, Arc<CollectingConsumer>) {
        let next = Arc::new(CollectingConsumer::new());
        let v = lumina_sdk::config::parse_yaml(yaml, "t").unwrap();
        let ctx = CreateContext::new("memory_limiter".parse().unwrap(), ComponentKind::Processor);
        let p = MemoryLimiterFactory
            .create(&v, ctx, Signal::Logs, next.clone())
            .await
            .unwrap();
        (p, next)
    }

    #[tokio::test]
    async fn over_the_budget_batches_are_refused_retryably_and_under_it_they_pass() {
        assert!(resident_bytes() > 1 << 20, "resident memory is readable");
        let (tight, _) = limiter("limit: 1MiB").await;
        let err = tight.consume(testkit::logs(1, 3)).await.unwrap_err();
        assert!(err.is_retryable(), "{err:?}");
        assert!(matches!(err, ConsumeError::Backpressure { .. }));
        let (roomy, next) = limiter("limit: 64GiB").await;
        roomy.consume(testkit::logs(1, 3)).await.unwrap();
        assert_eq!(next.items(), 3);
    }

    #[test]
    fn the_spike_limit_must_leave_room() {
        let v = lumina_sdk::config::parse_yaml("limit: 100MiB\nspike_limit: 200MiB", "t").unwrap();
        let e = MemoryLimiterFactory.validate(&v).unwrap_err().to_string();
        assert!(e.contains("spike_limit: must be less than `limit`"), "{e}");
    }
}
