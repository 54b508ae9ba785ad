use std::sync::Arc;
use std::time::Duration as StdDuration;

use lumina_sdk::component::{ComponentId, ComponentKind, CreateContext, DynConsumer, Processor};
use lumina_sdk::config::ConfigValue;
use lumina_sdk::testkit::CollectingConsumer;
use lumina_sdk::voice::{Dialogue, DialogueRecordKind, DialogueStatus, EventType};
use lumina_sdk::{Batch, Payload};
use serde_json::json;

use super::*;
use lumina_sdk::testkit::{voice_event as event, voice_events as batch};

/// Every dialogue record the consumer got: (kind, dialogue), in order.
fn records(c: &CollectingConsumer) -> Vec<(DialogueRecordKind, Dialogue)> {
    records_of(&c.batches())
}

fn records_of(batches: &[Batch]) -> Vec<(DialogueRecordKind, Dialogue)> {
    batches
        .iter()
        .cloned()
        .flat_map(|b| match b.into_payload() {
            Payload::Logs(r) => r
                .resource_logs
                .into_iter()
                .flat_map(|r| r.scope_logs)
                .flat_map(|s| s.log_records)
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        })
        .map(|r| Dialogue::from_log_record(&r).unwrap().unwrap())
        .collect()
}

async fn processor(
    dir: &std::path::Path,
    extra: serde_json::Value,
) -> (Arc<dyn Processor>, Arc<CollectingConsumer>) {
    let out = Arc::new(CollectingConsumer::new());
    (processor_to(dir, extra, out.clone()).await, out)
}

async fn processor_to(
    dir: &std::path::Path,
    extra: serde_json::Value,
    next: DynConsumer,
) -> Arc<dyn Processor> {
    let mut cfg = json!({ "storage": { "directory": dir.display().to_string() } });
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    let mut ctx = CreateContext::new(
        ComponentId::new("dialogue_assembly"),
        ComponentKind::Processor,
    );
    ctx.pipeline = Some("logs".into());
    lumina_sdk::component::processor::<AssemblyConfig>()
        .create(&ConfigValue::from(cfg), ctx, Signal::Logs, next)
        .await
        .unwrap()
}

/// Refuses (retryably) while `down` is set, then collects.
#[derive(Default)]
struct Flaky {
    down: std::sync::atomic::AtomicBool,
    out: CollectingConsumer,
}

#[async_trait::async_trait]
impl Consumer for Flaky {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ConsumeError::Failed {
                component: "next".into(),
                message: "down".into(),
                retryable: true,
            });
        }
        self.out.consume(batch).await
    }
}

#[tokio::test]
async fn a_batch_retried_after_downstream_failed_emits_its_dialogues_although_nothing_changed() {
    let dir = tempfile::tempdir().unwrap();
    let next = Arc::new(Flaky::default());
    next.down.store(true, std::sync::atomic::Ordering::SeqCst);
    // A long check interval: only the retried batch can bring the dialogue out.
    let p = processor_to(dir.path(), json!({ "check_interval": "1h" }), next.clone()).await;
    let b = || {
        batch(&[
            event("a1", "c1", "CALL_STARTED", 0),
            event("a2", "c1", "CALL_ENDED", 9),
        ])
    };
    let err = p.consume(b()).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(records(&next.out).is_empty());
    next.down.store(false, std::sync::atomic::Ordering::SeqCst);
    // The sender retries: the events are duplicates now, but the dialogue is still pending.
    p.consume(b()).await.unwrap();
    let kinds: Vec<_> = records(&next.out)
        .iter()
        .map(|(k, d)| (*k, d.revision))
        .collect();
    assert_eq!(
        kinds,
        [
            (DialogueRecordKind::Update, 2),
            (DialogueRecordKind::End, 2)
        ]
    );
    // Handed over: a further copy emits nothing.
    p.consume(b()).await.unwrap();
    assert_eq!(records(&next.out).len(), 2);
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn each_change_emits_an_update_and_the_end_an_end_record() {
    let dir = tempfile::tempdir().unwrap();
    let (p, out) = processor(dir.path(), json!({})).await;
    p.consume(batch(&[
        event("a1", "c1", "CALL_STARTED", 0),
        event("b1", "c2", "CALL_STARTED", 0),
    ]))
    .await
    .unwrap();
    p.consume(batch(&[
        event("a2", "c1", "CALL_ANSWERED", 3),
        event("a3", "c1", "CALL_ENDED", 63),
    ]))
    .await
    .unwrap();
    let r = records(&out);
    let kinds: Vec<_> = r
        .iter()
        .map(|(k, d)| (*k, d.call_guid.as_str(), d.revision))
        .collect();
    assert_eq!(
        kinds,
        [
            (DialogueRecordKind::Update, "c1", 1),
            (DialogueRecordKind::Update, "c2", 1),
            (DialogueRecordKind::Update, "c1", 3),
            (DialogueRecordKind::End, "c1", 3),
        ]
    );
    let end = &r[3].1;
    assert_eq!(end.status, DialogueStatus::Completed);
    assert_eq!(end.duration, Some(63));
    // A duplicate changes nothing and emits nothing (nothing is pending any more).
    let before = out.batches().len();
    p.consume(batch(&[event("a3", "c1", "CALL_ENDED", 63)]))
        .await
        .unwrap();
    assert_eq!(out.batches().len(), before);
    // A late event is applied and the dialogue re-emitted, ended again.
    p.consume(batch(&[event("a4", "c1", "DTMF_RECEIVED", 10)]))
        .await
        .unwrap();
    let r = records(&out);
    let (k, d) = r.last().unwrap();
    assert_eq!(*k, DialogueRecordKind::End);
    assert_eq!(d.revision, 4);
    assert_eq!(d.events.len(), 4);
    assert_eq!(d.events[2].event_type, EventType::DtmfReceived);
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn emitting_only_ends_gives_one_record_per_finished_dialogue_and_clears_pending_marks() {
    let dir = tempfile::tempdir().unwrap();
    let (p, out) = processor(dir.path(), json!({ "emit": ["end"] })).await;
    p.consume(batch(&[
        event("a1", "c1", "CALL_STARTED", 0),
        event("b1", "c2", "CALL_STARTED", 0),
    ]))
    .await
    .unwrap();
    assert!(out.batches().is_empty(), "no dialogue has ended");
    p.consume(batch(&[
        event("a2", "c1", "CALL_ANSWERED", 3),
        event("a3", "c1", "CALL_ENDED", 63),
        event("b2", "c2", "CALL_ANSWERED", 5),
    ]))
    .await
    .unwrap();
    let r = records(&out);
    let kinds: Vec<_> = r
        .iter()
        .map(|(k, d)| (*k, d.call_guid.as_str(), d.revision, d.events.len()))
        .collect();
    assert_eq!(kinds, [(DialogueRecordKind::End, "c1", 3, 3)]);
    p.shutdown().await.unwrap();
    // Every change was handed on (c2's as no record): nothing is left pending to emit again.
    let store = Store::open(dir.path().join("dialogue_assembly-logs.dialogues"), None).unwrap();
    assert_eq!(store.dialogues.len(), 2);
    assert!(store.pending.is_empty(), "{:?}", store.pending);
}

#[tokio::test]
async fn state_survives_a_restart_and_pending_dialogues_are_emitted_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.dialogues");
    {
        let mut store = Store::open(path.clone(), None).unwrap();
        store.apply(&event_of("d1", "a1", "c1", "CALL_STARTED", 0), 1);
        store.commit().unwrap();
        // Dropped without `emitted`: as if the process died before handing it downstream.
    }
    let store = Store::open(path.clone(), None).unwrap();
    assert_eq!(store.dialogues["d1"].events.len(), 1);
    assert_eq!(store.pending.get("d1"), Some(&1));
    drop(store);

    // The processor on the same directory emits it on its first check.
    std::fs::rename(&path, dir.path().join("dialogue_assembly-logs.dialogues")).unwrap();
    let (p, out) = processor(dir.path(), json!({ "check_interval": "20ms" })).await;
    assert!(
        out.wait_for(StdDuration::from_secs(10), |b| !records_of(b).is_empty())
            .await,
        "pending dialogue was not re-emitted"
    );
    assert_eq!(records(&out)[0].1.dialogue_id, "d1");
    p.shutdown().await.unwrap();
}

/// An event of dialogue `dialogue`.
pub(super) fn event_of(
    dialogue: &str,
    id: &str,
    call: &str,
    t: &str,
    secs: i64,
) -> lumina_sdk::voice::VoiceEvent {
    let mut e = event(id, call, t, secs);
    e.dialogue_id = dialogue.into();
    e
}

#[tokio::test]
async fn idle_dialogues_close_with_the_configured_status_and_are_evicted_after_grace() {
    let dir = tempfile::tempdir().unwrap();
    let (p, out) = processor(
        dir.path(),
        json!({ "idle_timeout": "100ms", "idle_status": "COMPLETED", "grace_period": "100ms", "check_interval": "20ms" }),
    )
    .await;
    p.consume(batch(&[event("a1", "c1", "CALL_STARTED", 0)]))
        .await
        .unwrap();
    let closed = out
        .wait_for(StdDuration::from_secs(10), |b| {
            matches!(records_of(b).last(), Some((DialogueRecordKind::End, _)))
        })
        .await;
    let r = records(&out);
    assert!(closed, "no idle timeout: {r:?}");
    let (_, d) = r.last().unwrap();
    assert_eq!(d.status, DialogueStatus::Completed);
    assert_eq!(d.end_reason.as_deref(), Some("IDLE_TIMEOUT"));
    p.shutdown().await.unwrap();
}

#[test]
fn finished_dialogues_are_evicted_after_the_grace_period_and_open_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.dialogues");
    let mut store = Store::open(path.clone(), None).unwrap();
    for (id, call, ended, at) in [
        ("d1", "c1", true, 100),
        ("d2", "c2", false, 100),
        ("d3", "c3", true, 900),
    ] {
        store.apply(
            &event_of(id, &format!("{id}-s"), call, "CALL_STARTED", 0),
            at,
        );
        if ended {
            store.apply(&event_of(id, &format!("{id}-e"), call, "CALL_ENDED", 5), at);
        }
        store.commit().unwrap();
    }
    // Pending dialogues are never evicted.
    assert_eq!(store.evict(500, 1_000, 0).unwrap(), 0);
    let done: Vec<(String, u64)> = store.pending.iter().map(|(k, v)| (k.clone(), *v)).collect();
    store.emitted(&done).unwrap();
    assert_eq!(store.evict(500, 1_000, 0).unwrap(), 1);
    drop(store);
    let mut store = Store::open(path, None).unwrap();
    let mut left: Vec<&str> = store.dialogues.keys().map(String::as_str).collect();
    left.sort_unstable();
    assert_eq!(left, ["d2", "d3"]);
    // The evicted dialogue's revision is remembered across the restart: a late event that
    // starts it again goes on from there.
    let (mut revived, was_evicted) = store.new_state("d1", 2_000);
    assert!(was_evicted);
    revived.apply(&event("d1-late", "c1", "RECORDING_STOPPED", 9), 2_000);
    assert_eq!(revived.revision, 3, "after revisions 1 and 2");
    assert!(
        !store.new_state("d9", 2_000).1,
        "a new dialogue starts at 0"
    );
    // Evicted long enough ago, it is forgotten.
    assert_eq!(store.evict(500, 3_000, 1_001).unwrap(), 0);
    assert!(!store.new_state("d1", 3_000).1);
}

use crate::test_metrics::{counter, recorded};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_events_after_eviction_continue_the_revisions_and_everything_is_counted() {
    let _ = recorded();
    let dir = tempfile::tempdir().unwrap();
    let out = Arc::new(CollectingConsumer::new());
    let mut cfg = json!({
        "storage": { "directory": dir.path().display().to_string() },
        "grace_period": "50ms",
        "check_interval": "10ms",
    });
    cfg["idle_timeout"] = json!("1h");
    let mut ctx = CreateContext::new(
        "dialogue_assembly/late".parse().unwrap(),
        ComponentKind::Processor,
    );
    ctx.pipeline = Some("logs".into());
    let id = "dialogue_assembly/late";
    let p = lumina_sdk::component::processor::<AssemblyConfig>()
        .create(&ConfigValue::from(cfg), ctx, Signal::Logs, out.clone())
        .await
        .unwrap();
    let start = event("l1", "c1", "CALL_STARTED", 0);
    let end = event("l2", "c1", "CALL_ENDED", 30);
    p.consume(batch(&[start.clone(), end])).await.unwrap();
    p.consume(batch(&[start])).await.unwrap();
    assert_eq!(counter(EVENTS, id, "outcome", "applied"), 2);
    assert_eq!(counter(EVENTS, id, "outcome", "duplicate"), 1);
    assert_eq!(counter(DIALOGUES_TOTAL, id, "event", "opened"), 1);
    assert_eq!(counter(DIALOGUES_TOTAL, id, "event", "ended"), 1);
    let before = records(&out).last().unwrap().1.revision;
    // Wait for the eviction after the grace period.
    let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
    while counter(DIALOGUES_TOTAL, id, "event", "evicted") == 0 {
        assert!(std::time::Instant::now() < deadline, "never evicted");
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    p.consume(batch(&[event("l3", "c1", "RECORDING_STOPPED", 40)]))
        .await
        .unwrap();
    let (_, late) = records(&out).last().unwrap().clone();
    assert_eq!(late.events.len(), 1, "the state was evicted: {late:?}");
    assert!(
        late.revision > before,
        "revision {} after {before}: OpenSearch would keep the old document",
        late.revision
    );
    assert_eq!(counter(LATE_EVENTS, id, "after", "eviction"), 1);
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn records_that_are_not_voice_events_are_refused_by_name_and_the_rest_applied() {
    let dir = tempfile::tempdir().unwrap();
    let (p, out) = processor(dir.path(), json!({})).await;
    let mut records_in = vec![event("a1", "c1", "CALL_STARTED", 0).to_log_record()];
    records_in.push(LogRecord::default());
    let b = Batch::logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: records_in,
                ..Default::default()
            }],
            ..Default::default()
        }],
    });
    let a = p.consume(b).await.unwrap();
    assert_eq!(a.rejected, 1);
    assert!(a.message.unwrap().contains("voice.event.id"));
    assert_eq!(records(&out).len(), 1);
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn storage_given_as_a_directory_keeps_the_state_there() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (p, out) = processor(
        dir.path(),
        json!({ "storage": state.display().to_string() }),
    )
    .await;
    p.consume(batch(&[event("a1", "c1", "CALL_STARTED", 0)]))
        .await
        .unwrap();
    assert_eq!(records(&out).len(), 1);
    p.shutdown().await.unwrap();
    assert!(
        state
            .join("dialogue_assembly-logs.dialogues/snapshot")
            .is_file()
            || state
                .join("dialogue_assembly-logs.dialogues/log-0000000000000001")
                .is_file(),
        "the store is not in the directory given"
    );
}

/// The check tick takes a snapshot once the log has outgrown the state, and deletes the logs
/// it replaces; the store reopens from the snapshot with the same state.
#[tokio::test]
async fn the_check_tick_snapshots_a_grown_log_and_the_store_reopens_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.dialogues");
    let mut store = Store::open(path.clone(), None).unwrap();
    store.snapshot_after = 0;
    store.apply(&event_of("d1", "a1", "c1", "CALL_STARTED", 0), 1);
    store.commit().unwrap();
    let ctx = CreateContext::new(
        ComponentId::new("dialogue_assembly"),
        ComponentKind::Processor,
    );
    let shared = Arc::new(Shared {
        store: Mutex::new(store),
        next: Arc::new(CollectingConsumer::new()),
        cfg: AssemblyConfig::default(),
        id: "dialogue_assembly".into(),
        metrics: AssemblyMetrics::new(&ctx.telemetry),
    });
    shared.tick(false).await;
    assert!(path.join("snapshot").is_file(), "no snapshot was taken");
    let logs: Vec<String> = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("log-"))
        .collect();
    assert_eq!(
        logs,
        ["log-0000000000000002"],
        "the replaced log is still there"
    );
    let before = shared.lock().dialogues.clone();
    drop(shared);
    let store = Store::open(path, None).unwrap();
    assert_eq!(store.dialogues, before);
    assert_eq!(store.dialogues["d1"].events.len(), 1);
}
