//! The `debug` exporter: writes what passes through to the collector's log or to stdout.

mod text;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use lumina_sdk::component::{
    ComponentError, ComponentInfo, ComponentKind, CreateContext, ExportError, Exporter,
    ExporterFactory, Stability,
};
use lumina_sdk::config::{self, ConfigErrors, ConfigValue, Validate};
use lumina_sdk::{Batch, Signal};
use serde::Deserialize;

/// How much the `debug` exporter writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verbosity {
    /// One line per batch with counts.
    #[default]
    Basic,
    /// One line per item.
    Normal,
    /// Everything: resources, scopes, every field of every item.
    Detailed,
}

/// The `debug` exporter's settings (the OpenTelemetry Collector's keys).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DebugConfig {
    /// `basic` (default), `normal` or `detailed`.
    pub verbosity: Verbosity,
    /// Batches written in full each second before sampling starts. Default 2.
    pub sampling_initial: u32,
    /// After that, write one batch in this many each second. Default 1 (all).
    pub sampling_thereafter: u32,
    /// Write through the collector's log (default) rather than to stdout.
    pub use_internal_logger: bool,
}

impl Default for DebugConfig {
    fn default() -> Self {
        Self {
            verbosity: Verbosity::Basic,
            sampling_initial: 2,
            sampling_thereafter: 1,
            use_internal_logger: true,
        }
    }
}

impl Validate for DebugConfig {}

/// Makes `debug` exporters.
pub struct DebugExporterFactory;

#[async_trait]
impl ExporterFactory for DebugExporterFactory {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::new(
            "debug",
            ComponentKind::Exporter,
            Stability::Beta,
            &Signal::ALL,
            "Writes telemetry to the log or stdout, for debugging.",
        )
    }

    fn validate(&self, config: &ConfigValue) -> Result<(), ConfigErrors> {
        config::parse::<DebugConfig>(config).map(|_| ())
    }

    async fn create(
        &self,
        config: &ConfigValue,
        ctx: CreateContext,
    ) -> Result<Arc<dyn Exporter>, ComponentError> {
        let cfg: DebugConfig = config::parse(config)?;
        Ok(Arc::new(DebugExporter {
            cfg,
            id: ctx.id.to_string(),
            sampler: Mutex::new(Sampler::default()),
        }))
    }
}

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
        let summary = text::summary(batch);
        let admitted = self
            .sampler
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .admit(self.cfg.sampling_initial, self.cfg.sampling_thereafter);
        let details = match (admitted, self.cfg.verbosity) {
            (true, Verbosity::Normal) => Some(text::normal(batch)),
            (true, Verbosity::Detailed) => Some(text::detailed(batch)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_admits_the_initial_batches_then_every_nth() {
        let mut s = Sampler::default();
        let admitted: Vec<bool> = (0..8).map(|_| s.admit(2, 3)).collect();
        assert_eq!(
            admitted,
            vec![true, true, false, false, true, false, false, true]
        );
    }
}
