//! Settings of the `debug` exporter.

use lumina_sdk::config::Validate;
use serde::Deserialize;

/// How much the `debug` exporter writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
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
