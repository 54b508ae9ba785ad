//! `lumina dlq replay`: hands dead letters back to the exporters that gave them up, once the
//! cause is fixed.
//!
//! Each file is first renamed to `<file>.replay`, so a collector still running writes new dead
//! letters to a fresh file and a replay interrupted half-way can be run again (the `.replay`
//! file is picked up). Each letter goes to the exporter named in it, built from the config with
//! its retry settings and without a queue, so the replay waits for every send. What fails
//! again is dead-lettered again, to the exporter's dead-letter file. The `.replay` file is
//! removed once every letter in it was delivered or dead-lettered again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context, bail};
use lumina_sdk::component::{ComponentId, Consumer, Registry};

use crate::config::Plan;
use crate::exporter::QueuedExporter;
use crate::exporter::build;
use crate::exporter::dead_letter::{DeadLetters, Letter, read_file};

/// The outcome of a replay.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// Files read.
    pub files: usize,
    /// Items delivered, by exporter.
    pub delivered: BTreeMap<String, usize>,
    /// Items that failed again (and were dead-lettered again), by exporter.
    pub failed: BTreeMap<String, usize>,
}

/// The dead-letter files of `plan`: each exporter's own dead-letter file, and the `path` of
/// every `file` exporter that serves as another's dead-letter sink.
pub fn default_files(plan: &Plan) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = plan
        .exporters
        .iter()
        .map(|(id, e)| e.settings.dead_letter.file_for(id))
        .collect();
    for target in plan
        .exporters
        .values()
        .filter_map(|e| e.dead_letter.as_ref())
    {
        if target.type_name() == "file"
            && let Some(path) = plan.exporters[target]
                .entry
                .config
                .get("path")
                .and_then(|v| v.as_str())
        {
            files.push(PathBuf::from(path));
        }
    }
    files.sort();
    files.dedup();
    files
}

fn replay_name(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".replay");
    PathBuf::from(name)
}

/// Replays `files` (missing files are skipped) through the exporters of `plan`.
pub async fn replay(
    plan: &Plan,
    registry: &Registry,
    files: &[PathBuf],
) -> anyhow::Result<ReplayReport> {
    // Read everything first: a letter for an exporter the config lacks stops the replay
    // before anything is sent.
    let mut work: Vec<(PathBuf, Vec<Letter>)> = Vec::new();
    for file in files {
        for path in [replay_name(file), file.clone()] {
            if !path.exists() {
                continue;
            }
            let letters = read_file(&path).map_err(anyhow::Error::msg)?;
            work.push((path, letters));
        }
    }
    let mut exporters: BTreeMap<String, Arc<QueuedExporter>> = BTreeMap::new();
    for (path, letters) in &work {
        for l in letters {
            if exporters.contains_key(&l.exporter) {
                continue;
            }
            let id = ComponentId::from_str(&l.exporter)
                .with_context(|| format!("{}: bad exporter id `{}`", path.display(), l.exporter))?;
            let Some(entry) = plan.exporters.get(&id) else {
                bail!(
                    "{}: the dead letters of exporter `{id}` cannot be replayed: the configuration has no such exporter",
                    path.display()
                );
            };
            // An in-memory queue: the letters are on disk already, and a letter that fails
            // again goes back to the exporter's dead-letter file.
            let mut settings = entry.settings.clone();
            settings.sending_queue.enabled = false;
            let sink = DeadLetters::file(&id, entry.settings.dead_letter.file_for(&id));
            let q = build::queued(registry, &id, entry, settings, sink)
                .await
                .with_context(|| format!("exporter `{id}` could not be created"))?;
            exporters.insert(l.exporter.clone(), q);
        }
    }
    let mut report = ReplayReport::default();
    for (path, letters) in work {
        // A file still being written by a running collector is moved aside first.
        let path = if path.extension().is_some_and(|e| e == "replay") {
            path
        } else {
            let to = replay_name(&path);
            std::fs::rename(&path, &to)
                .with_context(|| format!("cannot move {} aside to replay it", path.display()))?;
            to
        };
        report.files += 1;
        for l in letters {
            let n = l.batch.len();
            let q = &exporters[&l.exporter];
            let slot = match q.consume(l.batch).await {
                Ok(_) => &mut report.delivered,
                Err(_) => &mut report.failed,
            };
            *slot.entry(l.exporter).or_default() += n;
        }
        std::fs::remove_file(&path)
            .with_context(|| format!("cannot remove {} after replaying it", path.display()))?;
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    for q in exporters.values() {
        if let Err(e) = q.shutdown(deadline).await {
            tracing::warn!(error = %e, "An exporter did not stop cleanly after the replay.");
        }
    }
    Ok(report)
}
