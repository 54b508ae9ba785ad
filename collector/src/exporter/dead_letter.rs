//! Dead letters: what an exporter gives up on — items the destination refused for good, and
//! items still failing when retries ran out or the shutdown deadline passed — goes to a
//! dead-letter sink with its reason instead of being dropped.
//!
//! A dead letter is the OTLP batch itself with three resource attributes added to each of its
//! resources: the exporter that gave up ([`EXPORTER_ATTR`]), why ([`REASON_ATTR`]) and when
//! ([`TIME_ATTR`]). The default sink appends them as OTLP/JSON lines (the `file` exporter's
//! format) to a file per exporter, synced to disk before the exporter moves on; any exporter
//! may serve instead (`dead_letter: { exporter: file/dlq }`). `lumina dlq replay` reads the
//! lines back, removes the attributes and hands each batch to the exporter named in it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lumina_sdk::component::{ComponentId, DynConsumer};
use lumina_sdk::proto::common::v1::{KeyValue, any_value};
use lumina_sdk::proto::resource::v1::Resource;
use lumina_sdk::telemetry::ComponentTelemetry;
use lumina_sdk::voice::value::string_kv;
use lumina_sdk::{Batch, Payload, Signal};

/// Resource attribute: the id of the exporter that gave the items up.
pub const EXPORTER_ATTR: &str = "lumina.dead_letter.exporter";
/// Resource attribute: why.
pub const REASON_ATTR: &str = "lumina.dead_letter.reason";
/// Resource attribute: when (RFC 3339).
pub const TIME_ATTR: &str = "lumina.dead_letter.time";
/// Resource attribute: why it was a dead letter before (a replayed letter that failed again).
pub const PREVIOUS_ATTR: &str = "lumina.dead_letter.previous_reason";

/// The metric counting items handed to a dead-letter sink, by reason.
pub const DEAD_LETTERED: &str = "lumina_exporter_dead_lettered_items_total";

/// Why an exporter gave items up (the `reason` label of the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// The destination refused them for good.
    Permanent,
    /// Retries are off.
    RetryDisabled,
    /// Still failing after `max_elapsed_time`.
    RetriesExhausted,
    /// The shutdown deadline passed before they could be sent.
    Shutdown,
}

impl GiveUp {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            GiveUp::Permanent => "permanent",
            GiveUp::RetryDisabled => "retry_disabled",
            GiveUp::RetriesExhausted => "retries_exhausted",
            GiveUp::Shutdown => "shutdown",
        }
    }
}

enum Sink {
    File(PathBuf),
    Exporter {
        id: ComponentId,
        consumer: DynConsumer,
        /// Where the letters go if that exporter refuses them.
        fallback: PathBuf,
    },
}

/// One exporter's dead-letter sink.
pub struct DeadLetters {
    origin: String,
    sink: Sink,
    /// One writer per file at a time.
    lock: tokio::sync::Mutex<()>,
    /// While a replay sends a letter: its reason, kept beside the new one if it fails again.
    previous: std::sync::Mutex<Option<String>>,
}

impl DeadLetters {
    /// Dead letters of `origin` appended to `path`.
    pub fn file(origin: &ComponentId, path: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            origin: origin.to_string(),
            sink: Sink::File(path),
            lock: tokio::sync::Mutex::new(()),
            previous: std::sync::Mutex::new(None),
        })
    }

    /// Dead letters of `origin` handed to another exporter; `fallback` is the file used when
    /// that exporter refuses them.
    pub fn exporter(
        origin: &ComponentId,
        id: ComponentId,
        consumer: DynConsumer,
        fallback: PathBuf,
    ) -> Arc<Self> {
        Arc::new(Self {
            origin: origin.to_string(),
            sink: Sink::Exporter {
                id,
                consumer,
                fallback,
            },
            lock: tokio::sync::Mutex::new(()),
            previous: std::sync::Mutex::new(None),
        })
    }

    /// Letters written until the next call carry `reason` as their previous reason (a replay
    /// sets it for each letter it sends; `None` ends it).
    pub fn set_previous(&self, reason: Option<String>) {
        *self.previous.lock().unwrap_or_else(|p| p.into_inner()) = reason;
    }

    /// Where the letters go, for logs.
    pub fn describe(&self) -> String {
        match &self.sink {
            Sink::File(p) => format!("dead-letter file {}", p.display()),
            Sink::Exporter { id, .. } => format!("dead-letter exporter `{id}`"),
        }
    }

    /// Hands `batch` to the sink with its reason. Returns where it went, or why it could not
    /// be kept (then the caller counts it as dropped).
    pub async fn send(
        &self,
        batch: Batch,
        reason: &str,
        telemetry: &ComponentTelemetry,
    ) -> Result<String, String> {
        let signal = batch.signal();
        let n = batch.len() as u64;
        let previous = self
            .previous
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let letter = mark(batch, &self.origin, reason, previous.as_deref());
        let path = match &self.sink {
            Sink::File(p) => p,
            Sink::Exporter {
                id,
                consumer,
                fallback,
            } => match consumer.consume(letter.clone()).await {
                Ok(_) => return Ok(self.describe()),
                Err(e) => {
                    tracing::warn!(component = %telemetry.id(), dead_letter = %id, error = %e,
                        "The dead-letter exporter refused {n} {}; writing them to {} instead.", signal.item_name(), fallback.display());
                    fallback
                }
            },
        };
        let _guard = self.lock.lock().await;
        let path = path.clone();
        let shown = path.display().to_string();
        tokio::task::spawn_blocking(move || append(&path, &letter))
            .await
            .map_err(|e| format!("the dead-letter write task failed: {e}"))?
            .map_err(|e| format!("could not write the dead-letter file {shown}: {e}"))?;
        Ok(format!("dead-letter file {shown}"))
    }
}

/// Appends one batch as an OTLP/JSON line and syncs the file, so that `lumina dlq replay` can
/// claim the file while this collector appends to it (`lumina_sdk::util::append_claimable`).
fn append(path: &Path, batch: &Batch) -> std::io::Result<()> {
    let mut line = batch.encode_json().map_err(std::io::Error::other)?;
    line.push(b'\n');
    lumina_sdk::util::append_claimable(path, &line)
}

/// Appends a marked letter to a dead-letter file, as the sink does.
pub fn append_letter(path: &Path, letter: &Batch) -> std::io::Result<()> {
    append(path, letter)
}

/// Reads the dead letters of a claimed file (one OTLP/JSON request per line, of any signal).
pub fn read_claimed(file: &mut std::fs::File, path: &Path) -> Result<Vec<Letter>, String> {
    use std::io::Read;
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    parse_letters(&text, path)
}

fn resources(payload: &mut Payload) -> Vec<&mut Option<Resource>> {
    match payload {
        Payload::Logs(r) => r
            .resource_logs
            .iter_mut()
            .map(|r| &mut r.resource)
            .collect(),
        Payload::Traces(r) => r
            .resource_spans
            .iter_mut()
            .map(|r| &mut r.resource)
            .collect(),
        Payload::Metrics(r) => r
            .resource_metrics
            .iter_mut()
            .map(|r| &mut r.resource)
            .collect(),
    }
}

/// Adds the dead-letter attributes to every resource of `batch` (and the reason it was a dead
/// letter before, for a replayed letter that failed again).
pub fn mark(batch: Batch, origin: &str, reason: &str, previous: Option<&str>) -> Batch {
    mark_at(batch, origin, reason, previous, None)
}

/// [`mark`] with the time given (a letter written back as it was); `None` is now.
pub fn mark_at(
    batch: Batch,
    origin: &str,
    reason: &str,
    previous: Option<&str>,
    time: Option<&str>,
) -> Batch {
    let now = time.map_or_else(|| jiff::Timestamp::now().to_string(), str::to_owned);
    let mut payload = batch.into_payload();
    for r in resources(&mut payload) {
        let attrs = &mut r.get_or_insert_with(Resource::default).attributes;
        attrs.retain(|kv| {
            ![EXPORTER_ATTR, REASON_ATTR, TIME_ATTR, PREVIOUS_ATTR].contains(&kv.key.as_str())
        });
        attrs.push(string_kv(EXPORTER_ATTR, origin));
        attrs.push(string_kv(REASON_ATTR, reason));
        attrs.push(string_kv(TIME_ATTR, now.as_str()));
        if let Some(p) = previous {
            attrs.push(string_kv(PREVIOUS_ATTR, p));
        }
    }
    Batch::new(payload)
}

/// A dead letter read back: the exporter that gave it up, why, when, and the original data.
#[derive(Debug, Clone)]
pub struct Letter {
    /// The exporter's id as written.
    pub exporter: String,
    /// The reason as written.
    pub reason: String,
    /// When it was written (RFC 3339), if it says.
    pub time: Option<String>,
    /// Why it was a dead letter before it was replayed and failed again, if it was.
    pub previous: Option<String>,
    /// The data without the dead-letter attributes.
    pub batch: Batch,
}

impl Letter {
    /// The reason's kind: what comes before its first `:` (`permanent`, `retries_exhausted`,
    /// ...).
    pub fn kind(&self) -> &str {
        self.reason.split(':').next().unwrap_or_default().trim()
    }
}

fn take_attr(attrs: &mut Vec<KeyValue>, key: &str) -> Option<String> {
    let i = attrs.iter().position(|kv| kv.key == key)?;
    match attrs.remove(i).value.and_then(|v| v.value) {
        Some(any_value::Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

/// Splits a dead-letter batch by the exporter (and reason) recorded on its resources and
/// removes the attributes. Resources without the exporter attribute are an error.
pub fn unmark(batch: Batch) -> Result<Vec<Letter>, String> {
    let signal = batch.signal();
    type Key = (String, String, Option<String>, Option<String>);
    let mut groups: BTreeMap<Key, Payload> = BTreeMap::new();
    macro_rules! split {
        ($req:expr, $field:ident, $variant:ident) => {
            for mut rl in $req.$field {
                let attrs = &mut rl.resource.get_or_insert_with(Resource::default).attributes;
                let exporter = take_attr(attrs, EXPORTER_ATTR).ok_or_else(|| {
                    format!(
                        "a resource has no `{EXPORTER_ATTR}` attribute, so it is not a dead letter"
                    )
                })?;
                let reason = take_attr(attrs, REASON_ATTR).unwrap_or_default();
                let time = take_attr(attrs, TIME_ATTR);
                let previous = take_attr(attrs, PREVIOUS_ATTR);
                let slot = groups
                    .entry((exporter, reason, time, previous))
                    .or_insert_with(|| Payload::empty(signal));
                if let Payload::$variant(r) = slot {
                    r.$field.push(rl);
                }
            }
        };
    }
    match batch.into_payload() {
        Payload::Logs(r) => split!(r, resource_logs, Logs),
        Payload::Traces(r) => split!(r, resource_spans, Traces),
        Payload::Metrics(r) => split!(r, resource_metrics, Metrics),
    }
    Ok(groups
        .into_iter()
        .map(|((exporter, reason, time, previous), p)| Letter {
            exporter,
            reason,
            time,
            previous,
            batch: Batch::new(p),
        })
        .collect())
}

/// Reads a dead-letter file: one OTLP/JSON request per line, of any signal.
pub fn read_file(path: &Path) -> Result<Vec<Letter>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_letters(&text, path)
}

fn parse_letters(text: &str, path: &Path) -> Result<Vec<Letter>, String> {
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let batch = decode_any(line.as_bytes())
            .map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?;
        out.extend(unmark(batch).map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?);
    }
    Ok(out)
}

/// Decodes an OTLP/JSON request whose signal is told by its top-level key.
pub fn decode_any(line: &[u8]) -> Result<Batch, String> {
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"))?;
    let signal = [
        ("resourceLogs", Signal::Logs),
        ("resourceSpans", Signal::Traces),
        ("resourceMetrics", Signal::Metrics),
    ]
    .into_iter()
    .find(|(k, _)| value.get(k).is_some())
    .map(|(_, s)| s)
    .ok_or("not an OTLP/JSON request (no resourceLogs, resourceSpans or resourceMetrics)")?;
    Batch::decode_json(signal, line).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lumina_sdk::testkit;

    #[test]
    fn marks_and_unmarks_by_exporter() {
        let a = mark(testkit::logs(2, 3), "kinesis/eu", "throttled for 5m", None);
        let b = mark(
            testkit::logs(1, 4),
            "opensearch",
            "mapper_parsing_exception",
            Some("retries_exhausted: 503"),
        );
        let merged = Batch::merge([a, b]).unwrap().unwrap();
        let letters = unmark(merged).unwrap();
        assert_eq!(letters.len(), 2);
        assert_eq!(letters[0].exporter, "kinesis/eu");
        assert_eq!(letters[0].reason, "throttled for 5m");
        assert_eq!(letters[0].batch.len(), 6);
        assert_eq!(letters[1].exporter, "opensearch");
        assert_eq!(letters[1].batch.len(), 4);
        assert_eq!(
            (
                letters[0].previous.as_deref(),
                letters[1].previous.as_deref()
            ),
            (None, Some("retries_exhausted: 503"))
        );
        assert!(letters[0].time.as_deref().is_some_and(|t| t.ends_with('Z')));
        // The attributes are gone again: the data is what the exporter was given.
        let logs = letters[1].batch.as_logs().unwrap();
        let attrs = &logs.resource_logs[0].resource.as_ref().unwrap().attributes;
        assert!(
            attrs
                .iter()
                .all(|kv| !kv.key.starts_with("lumina.dead_letter"))
        );
    }

    #[test]
    fn a_resource_without_the_exporter_attribute_is_not_a_dead_letter() {
        let err = unmark(testkit::logs(1, 1)).unwrap_err();
        assert!(err.contains(EXPORTER_ATTR), "{err}");
    }

    #[tokio::test]
    async fn an_exporter_sink_gets_marked_letters_and_a_refusal_falls_back_to_the_file() {
        use lumina_sdk::component::{ConsumeError, DynConsumer};
        use lumina_sdk::testkit::{CollectingConsumer, FailingConsumer};
        let dir = tempfile::tempdir().unwrap();
        let fallback = dir.path().join("otlp.jsonl");
        let id: ComponentId = "otlp".parse().unwrap();
        let t = ComponentTelemetry::new(lumina_sdk::component::ComponentKind::Exporter, "otlp");
        let sink = Arc::new(CollectingConsumer::new());
        let dl = DeadLetters::exporter(
            &id,
            "file/dlq".parse().unwrap(),
            sink.clone(),
            fallback.clone(),
        );
        let place = dl
            .send(testkit::logs(1, 2), "permanent: 400", &t)
            .await
            .unwrap();
        assert_eq!(place, "dead-letter exporter `file/dlq`");
        let letters = unmark(sink.batches()[0].clone()).unwrap();
        assert_eq!(
            (letters[0].exporter.as_str(), letters[0].reason.as_str()),
            ("otlp", "permanent: 400")
        );
        assert!(!fallback.exists());
        // The sink refuses: the letter is kept in the origin's file instead.
        let refusing: DynConsumer = Arc::new(FailingConsumer(ConsumeError::ShuttingDown));
        let dl =
            DeadLetters::exporter(&id, "file/dlq".parse().unwrap(), refusing, fallback.clone());
        let place = dl
            .send(testkit::logs(1, 3), "retries_exhausted: 503", &t)
            .await
            .unwrap();
        assert!(place.starts_with("dead-letter file"), "{place}");
        let kept = read_file(&fallback).unwrap();
        assert_eq!((kept.len(), kept[0].batch.len()), (1, 3));
    }

    #[tokio::test]
    async fn the_file_sink_appends_lines_that_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dlq.jsonl");
        let id: ComponentId = "otlp/x".parse().unwrap();
        let dl = DeadLetters::file(&id, path.clone());
        let t = ComponentTelemetry::new(lumina_sdk::component::ComponentKind::Exporter, "otlp/x");
        dl.send(testkit::logs(1, 2), "permanent: 400", &t)
            .await
            .unwrap();
        dl.send(testkit::traces(1, 3), "retries exhausted", &t)
            .await
            .unwrap();
        let letters = read_file(&path).unwrap();
        assert_eq!(letters.len(), 2);
        assert_eq!(letters[0].batch.signal(), Signal::Logs);
        assert_eq!(letters[0].reason, "permanent: 400");
        assert_eq!(letters[1].batch.signal(), Signal::Traces);
        assert_eq!(letters[1].batch.len(), 3);
        assert!(letters.iter().all(|l| l.exporter == "otlp/x"));
    }
}
