//! The `debug` exporter: writes what passes through to the collector's log or to stdout.

mod config;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use lumina_sdk::component::{
    ComponentError, ComponentInfo, ComponentKind, CreateContext, ExportError, Exporter,
    ExporterConfig, Stability,
};
use lumina_sdk::{Batch, Signal};

pub use config::{DebugConfig, Verbosity};

/// Per-second sampling, like the OpenTelemetry Collector's: the first `initial` batches of each
/// second, then every `thereafter`-th.
#[derive(Default)]
struct Sampler {
    second: Option<Instant>,
    count: u64,
}

impl Sampler {
    fn admit(&mut self, initial: u32, thereafter: u32) -> bool {
        let now = Instant::now();
        if self
            .second
            .is_none_or(|s| now.duration_since(s).as_secs() >= 1)
        {
            self.second = Some(now);
            self.count = 0;
        }
        self.count += 1;
        self.count <= u64::from(initial)
            || (thereafter > 0
                && (self.count - u64::from(initial)).is_multiple_of(u64::from(thereafter)))
    }
}

/// A `debug` exporter.
pub struct DebugExporter {
    cfg: DebugConfig,
    id: String,
    sampler: Mutex<Sampler>,
}

#[async_trait]
impl Exporter for DebugExporter {
    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        let summary = lumina_sdk::text::summary(batch);
        let admitted = self
            .sampler
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .admit(self.cfg.sampling_initial, self.cfg.sampling_thereafter);
        let details = match (admitted, self.cfg.verbosity) {
            (true, Verbosity::Normal) => Some(lumina_sdk::text::normal(batch)),
            (true, Verbosity::Detailed) => Some(lumina_sdk::text::detailed(batch)),
            _ => None,
        };
        if self.cfg.use_internal_logger {
            match details {
                Some(d) => tracing::info!(component = %self.id, "{summary}\n{d}"),
                None => tracing::info!(component = %self.id, "{summary}"),
            }
        } else {
            let mut out = std::io::stdout().lock();
            let written = match details {
                Some(d) => writeln!(out, "{summary}\n{d}"),
                None => writeln!(out, "{summary}"),
            };
            written.map_err(|e| ExportError::permanent(format!("cannot write to stdout: {e}")))?;
        }
        Ok(())
    }
}

#[async_trait]
impl ExporterConfig for DebugConfig {
    fn info() -> ComponentInfo {
        ComponentInfo::new(
            "debug",
            ComponentKind::Exporter,
            Stability::Beta,
            &Signal::ALL,
            "Writes telemetry to the log or stdout, for debugging.",
        )
    }

    async fn build(self, ctx: CreateContext) -> Result<Arc<dyn Exporter>, ComponentError> {
        let cfg = self;
        Ok(Arc::new(DebugExporter {
            cfg,
            id: ctx.id.to_string(),
            sampler: Mutex::new(Sampler::default()),
        }))
    }
}
