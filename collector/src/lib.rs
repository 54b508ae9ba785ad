//! # lumina-collector
//!
//! The Lumina collector: loads and checks OpenTelemetry-Collector-shaped YAML, builds the
//! pipeline graph from the registered components, runs it, and reports on itself.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use lumina_collector::config::{self, ConfigSource, expand::ProcessEnv};
//! use lumina_collector::service::{Host, Service, termination_signal};
//!
//! let host = Host::builtin();
//! let sources = [ConfigSource::embedded_default()];
//! let (_tree, plan) = config::load_plan(&sources, &ProcessEnv, &host.registry)?;
//! let service = Service::start(&plan, &host).await?;
//! service.run_until(&host, None, termination_signal(), std::time::Duration::from_secs(20)).await;
//! # Ok(()) }
//! ```
//!
//! See `docs/architecture.md` for how a batch travels from a receiver to an exporter.

/// The version, and the commit it was built from: `0.1.0 (commit 1a2b3c4d5e6f)`.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("LUMINA_COMMIT"),
    ")"
);

/// The commit the binary was built from (`unknown` when that could not be told).
pub const COMMIT: &str = env!("LUMINA_COMMIT");

pub mod cli;
pub mod config;
pub mod diagnostics;
pub mod exporter;
pub mod graph;
pub mod notify;
pub mod plugin;
pub mod service;
pub mod tap;
pub mod telemetry;
