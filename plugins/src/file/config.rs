//! Settings of the `file` exporter.

use std::path::PathBuf;

use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath, Duration, Validate};
use serde::Deserialize;

/// How requests are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// OTLP/JSON, one request per line.
    #[default]
    Json,
    /// OTLP protobuf, each request preceded by its length (4 bytes, big-endian).
    Proto,
}

/// Size-based rotation.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RotationConfig {
    /// Rotate when the file would grow past this many megabytes. Default 100.
    pub max_megabytes: u64,
    /// Rotated files to keep (oldest deleted first); 0 keeps them all. Default 100.
    pub max_backups: usize,
}

impl Default for RotationConfig {
    fn default() -> Self {
        Self {
            max_megabytes: 100,
            max_backups: 100,
        }
    }
}

/// The `file` exporter's settings (the OpenTelemetry Collector's keys).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileExporterConfig {
    /// The file to write. Its directory is created if missing.
    pub path: PathBuf,
    /// `json` (default) or `proto`.
    #[serde(default)]
    pub format: FileFormat,
    /// Append to an existing file instead of truncating it at start.
    #[serde(default)]
    pub append: bool,
    /// Rotate the file by size.
    #[serde(default)]
    pub rotation: Option<RotationConfig>,
    /// The longest data may wait in the write buffer. Every batch is written through when it
    /// is exported, so any value is met; kept for compatibility. Default 1s.
    #[serde(default)]
    pub flush_interval: Option<Duration>,
}

impl Validate for FileExporterConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::new();
        if self.path.as_os_str().is_empty() {
            errors.push(ConfigError::new(
                ConfigPath::parse("path"),
                "must not be empty",
            ));
        }
        if let Some(r) = &self.rotation
            && r.max_megabytes == 0
        {
            errors.push(ConfigError::new(
                ConfigPath::parse("rotation.max_megabytes"),
                "must be at least 1",
            ));
        }
        errors.into_result(())
    }
}
