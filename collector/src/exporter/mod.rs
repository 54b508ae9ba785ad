//! The host side of exporters: the settings every exporter shares and its sending queue.

pub mod dead_letter;
pub mod durable;
pub mod queue;
pub mod replay;
pub mod settings;

pub use queue::QueuedExporter;
pub use settings::ExporterSettings;
