//! The `file` exporter: one OTLP request per line as JSON (the OpenTelemetry Collector's
//! format), or length-prefixed protobuf; optional size-based rotation.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use lumina_sdk::component::{
    ComponentError, ComponentInfo, ComponentKind, CreateContext, ExportError, Exporter,
    ExporterFactory, Stability,
};
use lumina_sdk::config::{
    self, ConfigError, ConfigErrors, ConfigPath, ConfigValue, Duration, Validate,
};
use lumina_sdk::{Batch, Signal};
use serde::Deserialize;

/// How requests are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// OTLP/JSON, one request per line.
    #[default]
    Json,
    /// OTLP protobuf, each request preceded by its length (4 bytes, big-endian).
    Proto,
}

/// Size-based rotation.
#[derive(Debug, Clone, Deserialize)]
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
#[derive(Debug, Clone, Deserialize)]
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

/// Makes `file` exporters.
pub struct FileExporterFactory;

#[async_trait]
impl ExporterFactory for FileExporterFactory {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::new(
            "file",
            ComponentKind::Exporter,
            Stability::Beta,
            &Signal::ALL,
            "Writes OTLP requests to a file, one per line.",
        )
    }

    fn validate(&self, config: &ConfigValue) -> Result<(), ConfigErrors> {
        config::parse::<FileExporterConfig>(config).map(|_| ())
    }

    async fn create(
        &self,
        config: &ConfigValue,
        _ctx: CreateContext,
    ) -> Result<Arc<dyn Exporter>, ComponentError> {
        let cfg: FileExporterConfig = config::parse(config)?;
        let writer = Output::open(&cfg.path, cfg.append)?;
        Ok(Arc::new(FileExporter {
            cfg: Arc::new(cfg),
            out: Arc::new(Mutex::new(writer)),
        }))
    }
}

struct Output {
    file: BufWriter<File>,
    size: u64,
}

impl Output {
    fn open(path: &Path, append: bool) -> Result<Self, ComponentError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                ComponentError::io(format!("cannot create directory `{}`", dir.display()), e)
            })?;
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(path)
            .map_err(|e| {
                ComponentError::io(format!("cannot open `{}` for writing", path.display()), e)
            })?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Self {
            file: BufWriter::with_capacity(256 * 1024, file),
            size,
        })
    }
}

/// A `file` exporter.
pub struct FileExporter {
    cfg: Arc<FileExporterConfig>,
    out: Arc<Mutex<Output>>,
}

fn encode(format: FileFormat, batch: &Batch) -> Result<Vec<u8>, ExportError> {
    Ok(match format {
        FileFormat::Json => {
            let mut line = batch
                .encode_json()
                .map_err(|e| ExportError::permanent(format!("cannot encode as JSON: {e}")))?;
            line.push(b'\n');
            line
        }
        FileFormat::Proto => {
            let body = batch.encode_protobuf();
            let len = u32::try_from(body.len())
                .map_err(|_| ExportError::permanent("a batch over 4 GiB cannot be written"))?;
            let mut framed = Vec::with_capacity(body.len() + 4);
            framed.extend_from_slice(&len.to_be_bytes());
            framed.extend(body);
            framed
        }
    })
}

/// Renames the full file aside with a timestamp and removes the oldest backups past the limit.
fn rotate(cfg: &FileExporterConfig, out: &mut Output) -> std::io::Result<()> {
    out.file.flush()?;
    let stem = cfg
        .path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("lumina");
    let ext = cfg
        .path
        .extension()
        .and_then(|s| s.to_str())
        .map(|e| format!(".{e}"))
        .unwrap_or_default();
    let dir = cfg
        .path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::fs::rename(&cfg.path, dir.join(format!("{stem}-{stamp}{ext}")))?;
    let max_backups = cfg.rotation.as_ref().map_or(0, |r| r.max_backups);
    if max_backups > 0 {
        let prefix = format!("{stem}-");
        let mut backups: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(&ext))
            })
            .collect();
        backups.sort();
        let excess = backups.len().saturating_sub(max_backups);
        for old in &backups[..excess] {
            std::fs::remove_file(old)?;
        }
    }
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&cfg.path)?;
    *out = Output {
        file: BufWriter::with_capacity(256 * 1024, file),
        size: 0,
    };
    Ok(())
}

#[async_trait]
impl Exporter for FileExporter {
    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        let (cfg, out, batch) = (self.cfg.clone(), self.out.clone(), batch.clone());
        // Encoding and file I/O block, so they run on the blocking pool.
        tokio::task::spawn_blocking(move || {
            let bytes = encode(cfg.format, &batch)?;
            let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(r) = &cfg.rotation
                && out.size > 0
                && out.size + bytes.len() as u64 > r.max_megabytes * 1_000_000
            {
                rotate(&cfg, &mut out).map_err(|e| {
                    ExportError::retryable(format!("cannot rotate `{}`: {e}", cfg.path.display()))
                })?;
            }
            let written = out.file.write_all(&bytes).and_then(|()| out.file.flush());
            written.map_err(|e| {
                ExportError::retryable(format!("cannot write to `{}`: {e}", cfg.path.display()))
            })?;
            out.size += bytes.len() as u64;
            Ok(())
        })
        .await
        .map_err(|e| ExportError::retryable(format!("the write task failed: {e}")))?
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        let out = self.out.clone();
        let path = self.cfg.path.display().to_string();
        tokio::task::spawn_blocking(move || {
            let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
            out.file
                .flush()
                .and_then(|()| out.file.get_ref().sync_all())
        })
        .await
        .map_err(|e| ComponentError::Other(format!("the flush task failed: {e}")))?
        .map_err(|e| ComponentError::io(format!("cannot flush `{path}`"), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lumina_sdk::component::ComponentId;
    use lumina_sdk::testkit;

    async fn exporter(yaml: &str) -> Arc<dyn Exporter> {
        let v = config::parse_yaml(yaml, "f.yaml").unwrap();
        FileExporterFactory
            .create(
                &v,
                CreateContext::new(ComponentId::new("file"), ComponentKind::Exporter),
            )
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn writes_one_json_request_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.json");
        let e = exporter(&format!("path: {}\n", path.display())).await;
        e.export(&testkit::logs(1, 2)).await.unwrap();
        e.export(&testkit::traces(1, 3)).await.unwrap();
        e.shutdown().await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            Batch::decode_json(Signal::Logs, lines[0].as_bytes()).unwrap(),
            testkit::logs(1, 2)
        );
        assert_eq!(
            Batch::decode_json(Signal::Traces, lines[1].as_bytes()).unwrap(),
            testkit::traces(1, 3)
        );
    }

    #[tokio::test]
    async fn writes_length_prefixed_protobuf() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.pb");
        let e = exporter(&format!("path: {}\nformat: proto\n", path.display())).await;
        e.export(&testkit::metrics(1, 2)).await.unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        assert_eq!(bytes.len(), 4 + len);
        assert_eq!(
            Batch::decode_protobuf(Signal::Metrics, &bytes[4..]).unwrap(),
            testkit::metrics(1, 2)
        );
    }

    #[tokio::test]
    async fn rotates_by_size_and_keeps_the_newest_backups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        let e = exporter(&format!(
            "path: {}\nrotation: {{max_megabytes: 1, max_backups: 2}}\n",
            path.display()
        ))
        .await;
        let big = testkit::logs(1, 2000);
        let line = big.encode_json().unwrap().len() as u64 + 1;
        assert!(line > 400_000 && line < 1_000_000, "a line is {line} bytes");
        for _ in 0..6 {
            e.export(&big).await.unwrap();
        }
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|d| d.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 3, "the live file and two backups: {names:?}");
        assert!(std::fs::metadata(&path).unwrap().len() <= 1_000_000);
    }

    #[tokio::test]
    async fn append_keeps_what_was_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        std::fs::write(&path, "old\n").unwrap();
        let e = exporter(&format!("path: {}\nappend: true\n", path.display())).await;
        e.export(&testkit::logs(1, 1)).await.unwrap();
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .starts_with("old\n{")
        );
        let e = exporter(&format!("path: {}\n", path.display())).await;
        e.export(&testkit::logs(1, 1)).await.unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().starts_with('{'));
    }
}
