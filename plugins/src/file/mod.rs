//! The `file` exporter: one OTLP request per line as JSON (the OpenTelemetry Collector's
//! format), or length-prefixed protobuf; optional size-based rotation.

mod config;
#[cfg(test)]
mod tests;

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use lumina_sdk::component::{
    ComponentError, ComponentInfo, ComponentKind, CreateContext, ExportError, Exporter,
    ExporterConfig, Stability,
};
use lumina_sdk::{Batch, Signal};

pub use config::{FileExporterConfig, FileFormat, RotationConfig};

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

/// Writes `bytes` through to the file at `path` under the file's lock, reopening the path
/// first if the file was moved away since it was opened: `lumina dlq replay` claims a file
/// exporter's file when it is another exporter's dead-letter sink (see
/// `lumina_sdk::util::append_claimable` for the protocol), and log rotators move files too.
fn write_claimable(path: &Path, out: &mut Output, bytes: &[u8]) -> std::io::Result<()> {
    loop {
        out.file.get_ref().lock()?;
        if lumina_sdk::util::still_at(out.file.get_ref(), path)? {
            break;
        }
        out.file.get_ref().unlock()?;
        *out = Output::open(path, true).map_err(std::io::Error::other)?;
    }
    let written = out.file.write_all(bytes).and_then(|()| out.file.flush());
    let unlocked = out.file.get_ref().unlock();
    written.and(unlocked)
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
            let written = write_claimable(&cfg.path, &mut out, &bytes);
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

#[async_trait]
impl ExporterConfig for FileExporterConfig {
    fn info() -> ComponentInfo {
        ComponentInfo::new(
            "file",
            ComponentKind::Exporter,
            Stability::Beta,
            &Signal::ALL,
            "Writes OTLP requests to a file, one per line.",
        )
    }

    async fn build(self, _ctx: CreateContext) -> Result<Arc<dyn Exporter>, ComponentError> {
        let cfg = self;
        let writer = Output::open(&cfg.path, cfg.append)?;
        Ok(Arc::new(FileExporter {
            cfg: Arc::new(cfg),
            out: Arc::new(Mutex::new(writer)),
        }))
    }
}
