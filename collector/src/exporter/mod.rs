//! The host side of exporters: the settings every exporter shares and its sending queue.

pub mod queue;
pub mod settings;

pub use queue::QueuedExporter;
pub use settings::ExporterSettings;
