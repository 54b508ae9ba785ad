//! The `memory_limiter` processor: a byte budget for the whole process. Put it first in each
//! pipeline; while the process's resident memory is above `limit - spike_limit`, it refuses
//! batches with a retryable error (the receiver answers `UNAVAILABLE` / 503 with a retry
//! delay), so clients back off before the process grows further. It is measured every
//! `check_interval` (and at most that often), from `VmRSS` in `/proc/self/status`.
//!
//! ```yaml
//! processors:
//!   memory_limiter: { limit: 1GiB, spike_limit: 200MiB, check_interval: 1s }
//! ```

mod config;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use lumina_sdk::component::{
    Accepted, ComponentError, ComponentInfo, ComponentKind, ConsumeError, Consumer, CreateContext,
    DynConsumer, Processor, ProcessorConfig, Stability,
};
use lumina_sdk::telemetry::{ComponentTelemetry, MetricDoc, RateLimit, names};
use lumina_sdk::{Batch, Signal};
use tokio::task::JoinHandle;

pub use config::MemoryLimiterConfig;

/// The process's resident memory in bytes (0 where it cannot be read).
pub fn resident_bytes() -> u64 {
    // `VmRSS` is in kB whatever the system's page size (4 KiB, 16 KiB or 64 KiB pages).
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// The configured limit.
const LIMIT: &str = "lumina_memory_limit_bytes";
/// Memory in use, as the limiter last measured it.
const CURRENT: &str = "lumina_memory_limiter_current_bytes";

const METRICS: &[MetricDoc] = &[
    MetricDoc::gauge(LIMIT, "The memory limit the memory_limiter enforces."),
    MetricDoc::gauge(
        CURRENT,
        "Resident memory as the memory_limiter last measured it (what it compares with the limit).",
    ),
];

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

#[async_trait]
impl ProcessorConfig for MemoryLimiterConfig {
    fn info() -> ComponentInfo {
        ComponentInfo::new(
            "memory_limiter",
            ComponentKind::Processor,
            Stability::Beta,
            &Signal::ALL,
            "Refuses data (retryably) while the process is over its memory budget.",
        )
        .with_metrics(METRICS)
    }

    async fn build(
        self,
        ctx: CreateContext,
        _signal: Signal,
        next: DynConsumer,
    ) -> Result<Arc<dyn Processor>, ComponentError> {
        let cfg = self;
        let used = Arc::new(AtomicU64::new(resident_bytes()));
        let every = cfg.check_interval.get();
        let task = {
            let used = used.clone();
            let current = ctx.telemetry.gauge(CURRENT, &[]);
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(every);
                loop {
                    ticker.tick().await;
                    let now = resident_bytes();
                    used.store(now, Ordering::Relaxed);
                    current.set(now as f64);
                }
            })
        };
        ctx.telemetry
            .gauge(LIMIT, &[])
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
