//! `lumina dlq list | show | replay`: what the dead letters hold, and handing them back to the
//! exporters that gave them up once the cause is fixed (`--dry-run` says what would be sent,
//! `--filter exporter=ID` / `reason=KIND` picks letters; the others stay where they are). A
//! letter that fails again keeps its old reason beside the new one
//! (`lumina.dead_letter.previous_reason`). `replay --through CONNECTOR` hands plain OTLP/JSON
//! (what a `file` exporter behind a connector's dead-letter pipeline wrote, such as the events
//! `region_router` could not route) to that connector again, through the configured graph.
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
use crate::exporter::dead_letter::{
    DeadLetters, Letter, decode_any, mark_at, read_claimed, read_file,
};

/// Picks letters: `exporter=ID` (exactly) and `reason=TEXT` (the reason's kind, such as
/// `retries_exhausted`, or any part of the reason).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// The exporter's id.
    pub exporter: Option<String>,
    /// The reason's kind or a part of it.
    pub reason: Option<String>,
}

impl Filter {
    /// Parses `KEY=VALUE` items (`exporter`, `reason`).
    pub fn parse(items: &[String]) -> anyhow::Result<Filter> {
        let mut f = Filter::default();
        for item in items {
            match item.split_once('=') {
                Some(("exporter", v)) => f.exporter = Some(v.to_owned()),
                Some(("reason", v)) => f.reason = Some(v.to_owned()),
                _ => bail!("`--filter {item}`: use `exporter=ID` or `reason=TEXT`"),
            }
        }
        Ok(f)
    }

    /// Whether `l` is picked.
    pub fn matches(&self, l: &Letter) -> bool {
        self.exporter.as_ref().is_none_or(|e| *e == l.exporter)
            && self
                .reason
                .as_ref()
                .is_none_or(|r| l.kind() == r || l.reason.contains(r.as_str()))
    }
}

/// One file's dead letters, for `list`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FileSummary {
    /// The file.
    pub path: PathBuf,
    /// Letters (batches) picked.
    pub letters: usize,
    /// Items they hold, by (exporter, reason kind).
    pub items: BTreeMap<(String, String), usize>,
    /// The oldest and newest letter's time.
    pub oldest: Option<String>,
    /// The newest.
    pub newest: Option<String>,
}

/// The files to read: those given (each must exist), or the configuration's (those that
/// exist).
pub fn files_to_read(plan: &Plan, given: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    if given.is_empty() {
        return Ok(default_files(plan)
            .into_iter()
            .filter(|f| f.exists())
            .collect());
    }
    for f in given {
        if !f.exists() {
            bail!("{}: no such dead-letter file", f.display());
        }
    }
    Ok(given.to_vec())
}

/// The letters of each file that `filter` picks.
pub fn read_all(files: &[PathBuf], filter: &Filter) -> anyhow::Result<Vec<(PathBuf, Vec<Letter>)>> {
    let mut out = Vec::new();
    for f in files {
        let letters = read_file(f).map_err(anyhow::Error::msg)?;
        out.push((
            f.clone(),
            letters.into_iter().filter(|l| filter.matches(l)).collect(),
        ));
    }
    Ok(out)
}

/// `lumina dlq list`: per file, how many letters, items by exporter and reason, and their age.
pub fn summarize(read: &[(PathBuf, Vec<Letter>)]) -> Vec<FileSummary> {
    read.iter()
        .map(|(path, letters)| {
            let mut s = FileSummary {
                path: path.clone(),
                letters: letters.len(),
                ..FileSummary::default()
            };
            for l in letters {
                *s.items
                    .entry((l.exporter.clone(), l.kind().to_owned()))
                    .or_default() += l.batch.len();
                if let Some(t) = &l.time {
                    if s.oldest.as_ref().is_none_or(|o| t < o) {
                        s.oldest = Some(t.clone());
                    }
                    if s.newest.as_ref().is_none_or(|n| t > n) {
                        s.newest = Some(t.clone());
                    }
                }
            }
            s
        })
        .collect()
}

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
    if let Some((to, mut held)) = claim_file(file)? {
        let letters = read_claimed(&mut held, &to).map_err(anyhow::Error::msg)?;
        claimed.push((to, letters));
    }
    Ok(claimed)
}

/// Claims `file` under a fresh name (see the module docs): the claimed name and the file,
/// locked; `None` if there is no such file.
fn claim_file(file: &Path) -> anyhow::Result<Option<(PathBuf, std::fs::File)>> {
    let to = claim_name(file);
    Ok(lumina_sdk::util::claim(file, &to)
        .with_context(|| format!("cannot claim {} to replay it", file.display()))?
        .map(|held| (to, held)))
}

/// The OTLP/JSON requests of a plain file (one per line, of any signal), as `file` names it.
fn parse_plain(text: &str, file: &Path) -> anyhow::Result<Vec<lumina_sdk::Batch>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            decode_any(line.as_bytes())
                .map_err(|e| anyhow::anyhow!("{} line {}: {e}", file.display(), i + 1))
        })
        .collect()
}

/// The records of plain OTLP/JSON files, for `replay --through --dry-run`.
pub fn count_plain(files: &[PathBuf]) -> anyhow::Result<usize> {
    let mut n = 0;
    for f in files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        n += parse_plain(&text, f)?
            .iter()
            .map(lumina_sdk::Batch::len)
            .sum::<usize>();
    }
    Ok(n)
}

/// Replays (missing files are skipped) the letters of `files` that `filter` picks, each
/// through the exporter of `plan` that gave it up; the others are written back to the
/// file they came from, as they were.
pub async fn replay_picked(
    plan: &Plan,
    registry: &Registry,
    files: &[PathBuf],
    filter: &Filter,
) -> anyhow::Result<ReplayReport> {
    // Claim and read everything first: a letter for an exporter the config lacks stops the
    // replay before anything is sent (what was claimed stays in its `.replay.<n>` file, where
    // the next replay finds it).
    let mut work: Vec<(PathBuf, Vec<Letter>)> = Vec::new();
    for file in files {
        for (claimed, letters) in claim_and_read(file)? {
            let (picked, kept): (Vec<Letter>, Vec<Letter>) =
                letters.into_iter().partition(|l| filter.matches(l));
            for l in kept {
                let line = mark_at(
                    l.batch,
                    &l.exporter,
                    &l.reason,
                    l.previous.as_deref(),
                    l.time.as_deref(),
                );
                crate::exporter::dead_letter::append_letter(file, &line)
                    .with_context(|| format!("cannot keep a letter in {}", file.display()))?;
            }
            work.push((claimed, picked));
        }
    }
    let mut exporters: BTreeMap<String, (Arc<QueuedExporter>, Arc<DeadLetters>)> = BTreeMap::new();
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
            let q = build::queued(
                registry,
                &id,
                entry,
                settings,
                sink.clone(),
                Default::default(),
            )
            .await
            .with_context(|| format!("exporter `{id}` could not be created"))?;
            exporters.insert(l.exporter.clone(), (q, sink));
        }
    }
    let mut report = ReplayReport::default();
    for (path, letters) in work {
        report.files += 1;
        for l in letters {
            let n = l.batch.len();
            let (q, sink) = &exporters[&l.exporter];
            // A letter that fails again is dead-lettered again by the exporter's queue (to
            // the exporter's dead-letter file), with its old reason beside the new one, so the
            // claimed file holds nothing that is not delivered or written back once this loop
            // ends. Letters go one at a time, so the old reason is this letter's.
            sink.set_previous(Some(l.reason.clone()));
            let sent = q.consume(l.batch).await;
            sink.set_previous(None);
            let slot = match sent {
                Ok(_) => &mut report.delivered,
                Err(_) => &mut report.failed,
            };
            *slot.entry(l.exporter).or_default() += n;
        }
        std::fs::remove_file(&path)
            .with_context(|| format!("cannot remove {} after replaying it", path.display()))?;
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    for (q, _) in exporters.values() {
        if let Err(e) = q.shutdown(deadline).await {
            tracing::warn!(error = %e, "An exporter did not stop cleanly after the replay.");
        }
    }
    Ok(report)
}

/// What `replay --through` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ThroughReport {
    /// Files read.
    pub files: usize,
    /// Records handed to the connector.
    pub records: usize,
    /// Records it (or what is behind it) refused, with the first reason.
    pub refused: u64,
    /// Why, if any were refused.
    pub message: Option<String>,
}

/// `lumina dlq replay --through CONNECTOR FILE...`: hands the OTLP/JSON records of `files`
/// to `connector` in the graph `plan` builds (its pipelines, processors and exporters; no
/// receiver starts), then drains the exporters.
pub async fn replay_through(
    plan: &Plan,
    registry: &Registry,
    connector: &ComponentId,
    files: &[PathBuf],
) -> anyhow::Result<ThroughReport> {
    if !plan.connectors.contains_key(connector) {
        bail!("the configuration has no connector `{connector}`");
    }
    let mut work: Vec<(PathBuf, Vec<lumina_sdk::Batch>)> = Vec::new();
    for file in files {
        let Some((to, mut held)) = claim_file(file)? else {
            continue;
        };
        use std::io::Read;
        let mut text = String::new();
        held.read_to_string(&mut text)
            .with_context(|| format!("cannot read {}", to.display()))?;
        work.push((to, parse_plain(&text, file)?));
    }
    let graph = crate::graph::Graph::build(plan, registry)
        .await
        .context("the pipelines could not be built")?;
    let mut report = ThroughReport::default();
    for (path, batches) in work {
        report.files += 1;
        for b in batches {
            let signal = b.signal();
            let Some(input) = graph.connector_input(connector, signal) else {
                bail!("connector `{connector}` takes no {signal}");
            };
            report.records += b.len();
            let a = input
                .consume(b)
                .await
                .with_context(|| format!("`{connector}` did not take the records"))?;
            report.refused += a.rejected;
            if report.message.is_none() {
                report.message = a.message;
            }
        }
        std::fs::remove_file(&path)
            .with_context(|| format!("cannot remove {} after replaying it", path.display()))?;
    }
    graph
        .shutdown(tokio::time::Instant::now() + std::time::Duration::from_secs(30))
        .await;
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
            replay_picked(
                &plan,
                &host.registry,
                std::slice::from_ref(&dlq),
                &Filter::default(),
            )
            .await
            .unwrap();
            replays += 1;
        }
        stop.store(true, Ordering::SeqCst);
        writer.join().unwrap();
        let written = count.load(Ordering::SeqCst);
        replay_picked(
            &plan,
            &host.registry,
            std::slice::from_ref(&dlq),
            &Filter::default(),
        )
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
