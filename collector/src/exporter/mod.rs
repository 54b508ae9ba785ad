//! The host side of exporters: the settings every exporter shares and its sending queue.

pub mod dead_letter;
pub mod durable;
pub mod queue;
pub mod replay;
pub mod settings;

pub use queue::QueuedExporter;
pub use settings::ExporterSettings;

/// An exporter's id as a file name (without extension): `/` and anything else but ASCII
/// letters, digits, `-` and `.` become `_` (`kinesis/eu-west-1` → `kinesis_eu-west-1`).
pub fn file_stem(exporter: &lumina_sdk::component::ComponentId) -> String {
    exporter
        .to_string()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
