//! `lumina dlq replay`: hands dead letters back to the exporters that gave them up, once the
//! cause is fixed.
//!
//! Each file is first claimed: renamed to `<file>.replay.<n>`, then read under the lock every
//! dead-letter writer holds while it appends (`lumina_sdk::util::append_claimable`), so a
//! collector still running either finished its write before the claim was read or writes to a
//! fresh file at `<file>`; nothing it appends is lost. A replay interrupted half-way can be run
//! again: the claimed files it left are picked up. Each letter goes to the exporter named in it, built from the config with
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
use crate::exporter::dead_letter::{DeadLetters, Letter, read_claimed, read_file};

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

/// The files claimed from `file` by earlier replays that did not finish (`<file>.replay` and
/// `<file>.replay.<n>`), oldest first.
fn claimed_before(file: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (file.parent(), file.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{name}.replay");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n == prefix || n.starts_with(&format!("{prefix}.")))
        })
        .map(|e| dir.join(e.file_name()))
        .collect();
    found.sort();
    found
}

/// A name to claim `file` under that no earlier claim used.
fn claim_name(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(format!(".replay.{}", lumina_sdk::util::now_unix_nanos()));
    PathBuf::from(name)
}

/// Claims `file` (renames it, then waits for any write in progress) and reads what was
/// claimed, with what earlier unfinished replays claimed. A collector still running appends
/// its new dead letters to a fresh file at `file`.
fn claim_and_read(file: &Path) -> anyhow::Result<Vec<(PathBuf, Vec<Letter>)>> {
    let mut claimed = Vec::new();
    for path in claimed_before(file) {
        let letters = read_file(&path).map_err(anyhow::Error::msg)?;
        claimed.push((path, letters));
    }
    let to = claim_name(file);
    if let Some(mut held) = lumina_sdk::util::claim(file, &to)
        .with_context(|| format!("cannot claim {} to replay it", file.display()))?
    {
        let letters = read_claimed(&mut held, &to).map_err(anyhow::Error::msg)?;
        claimed.push((to, letters));
    }
    Ok(claimed)
}

/// Replays `files` (missing files are skipped) through the exporters of `plan`.
pub async fn replay(
    plan: &Plan,
    registry: &Registry,
    files: &[PathBuf],
) -> anyhow::Result<ReplayReport> {
    // Claim and read everything first: a letter for an exporter the config lacks stops the
    // replay before anything is sent (what was claimed stays in its `.replay.<n>` file, where
    // the next replay finds it).
    let mut work: Vec<(PathBuf, Vec<Letter>)> = Vec::new();
    for file in files {
        work.extend(claim_and_read(file)?);
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
            let q = build::queued(registry, &id, entry, settings, sink, Default::default())
                .await
                .with_context(|| format!("exporter `{id}` could not be created"))?;
            exporters.insert(l.exporter.clone(), q);
        }
    }
    let mut report = ReplayReport::default();
    for (path, letters) in work {
        report.files += 1;
        for l in letters {
            let n = l.batch.len();
            let q = &exporters[&l.exporter];
            // A letter that fails again is dead-lettered again by the exporter's queue (to
            // the exporter's dead-letter file), so the claimed file holds nothing that is not
            // delivered or written back once this loop ends.
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use lumina_sdk::component::ComponentKind;
    use lumina_sdk::telemetry::ComponentTelemetry;
    use lumina_sdk::testkit;

    use super::*;
    use crate::config::{ConfigSource, expand::ProcessEnv, load_plan};
    use crate::service::Host;

    /// The `seq` of every record in the `file` exporter's output.
    fn delivered(out: &Path) -> Vec<String> {
        let text = std::fs::read_to_string(out).unwrap_or_default();
        text.lines()
            .map(|l| Batch::decode_json(Signal::Logs, l.as_bytes()).unwrap())
            .flat_map(|b| testkit::item_ids(&b))
            .collect()
    }

    use lumina_sdk::{Batch, Signal};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn letters_appended_while_a_replay_runs_are_never_lost() {
        let dir = tempfile::tempdir().unwrap();
        let (out, dlq) = (dir.path().join("out.jsonl"), dir.path().join("dlq.jsonl"));
        let yaml = format!(
            "receivers: {{nop:}}\nexporters:\n  file/out: {{ path: '{}', append: true, dead_letter: {{ path: '{}' }} }}\nservice: {{ pipelines: {{ logs: {{ receivers: [nop], exporters: [file/out] }} }} }}\n",
            out.display(),
            dlq.display()
        );
        let host = Host::builtin();
        let source = ConfigSource {
            name: "replay.yaml".into(),
            text: yaml,
        };
        let (_, plan) = load_plan(&[source], &ProcessEnv, &host.registry).unwrap();
        // A running collector's dead-letter sink for `file/out`, appending as fast as it can.
        let id = ComponentId::from_str("file/out").unwrap();
        let sink = DeadLetters::file(&id, dlq.clone());
        let telemetry = ComponentTelemetry::new(ComponentKind::Exporter, "file/out");
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicUsize::new(0));
        // On a thread of its own, as another process would be.
        let writer = {
            let (stop, count, sink) = (stop.clone(), count.clone(), sink.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                while !stop.load(Ordering::SeqCst) {
                    let n = count.load(Ordering::SeqCst);
                    let b = testkit::logs_from(n, 1, 1);
                    rt.block_on(sink.send(b, "refused", &telemetry)).unwrap();
                    count.store(n + 1, Ordering::SeqCst);
                }
            })
        };
        // Replays while the writer appends, until it has written 300 letters; then a last one
        // once it stopped.
        let mut replays = 0;
        while count.load(Ordering::SeqCst) < 300 {
            replay(&plan, &host.registry, std::slice::from_ref(&dlq))
                .await
                .unwrap();
            replays += 1;
        }
        stop.store(true, Ordering::SeqCst);
        writer.join().unwrap();
        let written = count.load(Ordering::SeqCst);
        replay(&plan, &host.registry, std::slice::from_ref(&dlq))
            .await
            .unwrap();
        let got: BTreeSet<String> = delivered(&out).into_iter().collect();
        let want: BTreeSet<String> = (0..written).map(|i| i.to_string()).collect();
        let lost: Vec<&String> = want.difference(&got).collect();
        assert!(
            lost.is_empty(),
            "{} of {written} letters were lost, the first: {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
        assert!(
            replays > 1,
            "the replays ran alongside the writer ({replays})"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("dlq.jsonl"))
            .collect();
        assert!(left.is_empty(), "nothing is left to replay: {left:?}");
    }
}
