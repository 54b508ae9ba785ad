//! What `dialogue_assembly` reports about itself.

use lumina_sdk::telemetry::ComponentTelemetry;
use metrics::{Counter, Gauge, Histogram};

/// What `dialogue_assembly` reports about itself (every counter is there from the start).
pub(super) struct AssemblyMetrics {
    /// Events that changed a dialogue.
    pub(super) applied: Counter,
    /// Events already applied (same event id).
    pub(super) duplicate: Counter,
    /// Events for a dialogue that had ended or been closed.
    pub(super) late_after_end: Counter,
    /// Events for a dialogue that had been evicted (it goes on from its last revision).
    pub(super) after_eviction: Counter,
    pub(super) opened: Counter,
    pub(super) ended: Counter,
    pub(super) idle_closed: Counter,
    pub(super) evicted: Counter,
    /// Dialogues not finished.
    pub(super) open: Gauge,
    /// Seconds one durable commit of the state took.
    pub(super) commit_seconds: Histogram,
    /// Bytes of the local store on disk.
    pub(super) store_bytes: Gauge,
}

impl AssemblyMetrics {
    pub(super) fn new(t: &ComponentTelemetry) -> Self {
        let events = |outcome: &str| t.counter(EVENTS, &[("outcome", outcome.to_owned())]);
        let late = |after: &str| t.counter(LATE_EVENTS, &[("after", after.to_owned())]);
        let dialogues = |event: &str| t.counter(DIALOGUES_TOTAL, &[("event", event.to_owned())]);
        Self {
            applied: events("applied"),
            duplicate: events("duplicate"),
            late_after_end: late("end"),
            after_eviction: late("eviction"),
            opened: dialogues("opened"),
            ended: dialogues("ended"),
            idle_closed: dialogues("idle_closed"),
            evicted: dialogues("evicted"),
            open: t.gauge(OPEN_DIALOGUES, &[]),
            commit_seconds: t.histogram(COMMIT_SECONDS, &[]),
            store_bytes: t.gauge(STORE_BYTES, &[]),
        }
    }
}

/// Voice events `dialogue_assembly` took. Labels: `outcome` (`applied`, `duplicate`).
pub const EVENTS: &str = "lumina_dialogue_events_total";
/// Events that came after their dialogue ended (`after="end"`) or was evicted
/// (`after="eviction"`); they are applied too.
pub const LATE_EVENTS: &str = "lumina_dialogue_late_events_total";
/// Dialogues `opened`, `ended`, `idle_closed` (by the idle timeout) and `evicted` (after
/// `grace_period`). Label: `event`.
pub const DIALOGUES_TOTAL: &str = "lumina_dialogues_total";
/// Dialogues open now (not ended, not closed).
pub const OPEN_DIALOGUES: &str = "lumina_dialogues_open";
/// Seconds one durable commit of the dialogue store took.
pub const COMMIT_SECONDS: &str = "lumina_dialogue_store_commit_seconds";

/// Bytes the local dialogue store takes on disk (its snapshot and log).
pub const STORE_BYTES: &str = "lumina_dialogue_store_bytes";

/// What `dialogue_assembly` records.
pub(super) const METRICS: &[lumina_sdk::telemetry::MetricDoc] = {
    use lumina_sdk::telemetry::MetricDoc;
    &[
        MetricDoc::counter_by(
            EVENTS,
            "Voice events taken, by outcome (applied, duplicate).",
            &[&[("outcome", "applied")], &[("outcome", "duplicate")]],
        ),
        MetricDoc::counter_by(
            LATE_EVENTS,
            "Events that came after their dialogue ended or was evicted (applied too).",
            &[&[("after", "end")], &[("after", "eviction")]],
        ),
        MetricDoc::counter_by(
            DIALOGUES_TOTAL,
            "Dialogues opened, ended, closed by the idle timeout and evicted.",
            &[
                &[("event", "opened")],
                &[("event", "ended")],
                &[("event", "idle_closed")],
                &[("event", "evicted")],
            ],
        ),
        MetricDoc::gauge(
            OPEN_DIALOGUES,
            "Dialogues open now (not ended, not closed).",
        ),
        MetricDoc::histogram(
            COMMIT_SECONDS,
            "Seconds one durable commit of the dialogue state took.",
        ),
        MetricDoc::gauge(
            STORE_BYTES,
            "Bytes the local dialogue store takes on disk (snapshot and log).",
        ),
    ]
};
