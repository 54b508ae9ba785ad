//! The `voice_metrics` connector (logs → metrics): call metrics per organization and region,
//! derived from the end-of-dialogue records `dialogue_assembly` emits.
//!
//! Each dialogue is counted once, at its first end record; an end record of a higher revision
//! (an event that came late or out of order changed the dialogue after its end) takes the
//! place of what the dialogue counted for before, so the totals are those of the final
//! dialogues (and a correction can lower a sum: they are cumulative, not monotonic). The
//! last `1,000,000` dialogues are remembered for this. Every `interval`, and at shutdown,
//! one metrics batch goes downstream with cumulative values since the connector started:
//!
//! | metric | type | unit | what |
//! |---|---|---|---|
//! | `voice.calls` | sum | `{call}` | ended calls, by `voice.dialogue.status` |
//! | `voice.calls.answered` | sum | `{call}` | calls answered |
//! | `voice.calls.abandoned` | sum | `{call}` | calls the caller left before an answer (`endReason` `ABANDONED`) |
//! | `voice.calls.answer_rate` | gauge | `1` | answered / calls |
//! | `voice.calls.abandon_rate` | gauge | `1` | abandoned / calls |
//! | `voice.call.duration` | histogram | `s` | duration of answered calls |
//! | `voice.call.wait_time` | histogram | `s` | start to answer, for answered calls |
//!
//! Every point carries `voice.organization.id` and `voice.region.id` (0 when unknown).
//!
//! Alongside, the platform's call metric contract (the names its per-territory dashboards
//! read), one point per `territory_id`, `region_id` and `event_type` (the type of the event
//! that ended the dialogue, `CALL_ENDED` or `CALL_TRANSFERRED`; for a dialogue closed by the
//! idle timeout, its last event's);
//! `territory_id` is `0` and `region_id` `0` when the events named none:
//!
//! | metric | type | unit | what |
//! |---|---|---|---|
//! | `call_count` | sum | `1` | ended calls |
//! | `call_duration` | gauge | `s` | average duration of answered calls |
//! | `call_answer_rate` | gauge | `%` | answered / calls × 100 |
//! | `call_abandon_rate` | gauge | `%` | abandoned / calls × 100 |
//! | `call_wait_time` | gauge | `s` | average start-to-answer time of answered calls |
//!
//! Queue metrics, for dialogues one of whose events names a queue in `data.queueId` (the
//! first such event queues the call there; the answer takes it out), each point also by
//! `queue_id`:
//!
//! | metric | type | unit | what |
//! |---|---|---|---|
//! | `queue_depth` | gauge | `1` | calls queued now and not yet answered (`event_type`: the event that queued them) |
//! | `queue_wait_time` | gauge | `s` | average time from queueing to answer, of ended calls answered |
//! | `queue_abandon_rate` | gauge | `%` | ended queued calls abandoned × 100 |
//! | `queue_service_level` | gauge | `%` | ended queued calls answered within `service_level_threshold` × 100 |
//!
//! Agent metrics, for dialogues whose events name an agent in `data.agentId` (the last one
//! named is the one on the call):
//!
//! | metric | type | unit | what |
//! |---|---|---|---|
//! | `agent_busy_count` | gauge | `1` | distinct agents on an answered call now (`event_type` `CALL_ANSWERED`) |
//! | `agent_handle_time` | gauge | `s` | average answer-to-end time of ended calls an agent handled |
//!
//! The "now" gauges come from the update records of calls still open (an end record takes a
//! call out) and drop to 0 when the last call leaves; the others from end records and, like
//! the call metrics, are cumulative since the connector started.

mod config;
mod state;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use lumina_sdk::component::{
    Accepted, ComponentError, ComponentInfo, Connector, ConnectorConfig, ConnectorOutputs,
    ConsumeError, Consumer, CreateContext, DynConsumer, Stability,
};
use lumina_sdk::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use lumina_sdk::proto::common::v1::{InstrumentationScope, KeyValue};
use lumina_sdk::proto::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use lumina_sdk::voice::value::{int_kv, string_kv};
use lumina_sdk::voice::{Dialogue, DialogueRecordKind, attr};
use lumina_sdk::{Batch, Payload, Signal};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::VoiceMetricsConfig;

use self::state::{DURATION_BOUNDS, Hist, NO_RECORDED_VALUE, QueueKey, State, WAIT_BOUNDS};

struct Shared {
    state: Mutex<State>,
    next: DynConsumer,
    start: u64,
    id: String,
}

impl Shared {
    fn batch(&self, force: bool) -> Option<Batch> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !(st.changed || force)
            || (st.totals.is_empty() && st.depth_keys.is_empty() && st.busy_keys.is_empty())
        {
            return None;
        }
        st.changed = false;
        let now = lumina_sdk::util::now_unix_nanos();
        let start = self.start;
        let mut calls = Vec::new();
        let mut answered = Vec::new();
        let mut abandoned = Vec::new();
        let mut answer_rate = Vec::new();
        let mut abandon_rate = Vec::new();
        let mut duration = Vec::new();
        let mut wait = Vec::new();
        let int = |attributes: Vec<KeyValue>, v: u64| NumberDataPoint {
            attributes,
            start_time_unix_nano: start,
            time_unix_nano: now,
            value: Some(number_data_point::Value::AsInt(v as i64)),
            ..Default::default()
        };
        let ratio = |attributes: Vec<KeyValue>, v: f64| NumberDataPoint {
            attributes,
            time_unix_nano: now,
            value: Some(number_data_point::Value::AsDouble(v)),
            ..Default::default()
        };
        let hist = |attributes: Vec<KeyValue>, h: &Hist, bounds: &[f64]| HistogramDataPoint {
            attributes,
            start_time_unix_nano: start,
            time_unix_nano: now,
            count: h.count,
            sum: Some(h.sum),
            bucket_counts: if h.counts.is_empty() {
                vec![0; bounds.len() + 1]
            } else {
                h.counts.clone()
            },
            explicit_bounds: bounds.to_vec(),
            min: (h.count > 0).then_some(h.min),
            max: (h.count > 0).then_some(h.max),
            ..Default::default()
        };
        // A point of no recorded value ends a series whose dialogues a correction moved to
        // another (their entry is then dropped).
        let stale = |attributes: Vec<KeyValue>| NumberDataPoint {
            attributes,
            time_unix_nano: now,
            flags: NO_RECORDED_VALUE,
            ..Default::default()
        };
        let stale_hist = |attributes: Vec<KeyValue>| HistogramDataPoint {
            attributes,
            time_unix_nano: now,
            flags: NO_RECORDED_VALUE,
            ..Default::default()
        };
        let mut empty_totals = Vec::new();
        for ((org, region), t) in &st.totals {
            let base = vec![
                string_kv(attr::ORGANIZATION_ID, org),
                int_kv(attr::REGION_ID, i64::from(*region)),
            ];
            let total: u64 = t.by_status.values().sum();
            if total == 0 {
                for status in t.by_status.keys() {
                    let mut a = base.clone();
                    a.push(string_kv("voice.dialogue.status", *status));
                    calls.push(stale(a));
                }
                for v in [
                    &mut answered,
                    &mut abandoned,
                    &mut answer_rate,
                    &mut abandon_rate,
                ] {
                    v.push(stale(base.clone()));
                }
                duration.push(stale_hist(base.clone()));
                wait.push(stale_hist(base));
                empty_totals.push((org.clone(), *region));
                continue;
            }
            for (status, n) in &t.by_status {
                let mut a = base.clone();
                a.push(string_kv("voice.dialogue.status", *status));
                calls.push(int(a, *n));
            }
            answered.push(int(base.clone(), t.answered));
            abandoned.push(int(base.clone(), t.abandoned));
            if total > 0 {
                answer_rate.push(ratio(base.clone(), t.answered as f64 / total as f64));
                abandon_rate.push(ratio(base.clone(), t.abandoned as f64 / total as f64));
            }
            duration.push(hist(base.clone(), &t.duration, &DURATION_BOUNDS));
            wait.push(hist(base, &t.wait, &WAIT_BOUNDS));
        }
        let mut c_count = Vec::new();
        let mut c_duration = Vec::new();
        let mut c_answer = Vec::new();
        let mut c_abandon = Vec::new();
        let mut c_wait = Vec::new();
        let mut empty_contract = Vec::new();
        for ((territory, region, event_type), t) in &st.contract {
            let base = vec![
                string_kv("territory_id", territory),
                int_kv("region_id", i64::from(*region)),
                string_kv("event_type", *event_type),
            ];
            let total: u64 = t.by_status.values().sum();
            if total == 0 {
                for v in [
                    &mut c_count,
                    &mut c_duration,
                    &mut c_answer,
                    &mut c_abandon,
                    &mut c_wait,
                ] {
                    v.push(stale(base.clone()));
                }
                empty_contract.push((territory.clone(), *region, *event_type));
                continue;
            }
            c_count.push(int(base.clone(), total));
            let avg = |h: &Hist| h.sum / h.count as f64;
            if t.duration.count > 0 {
                c_duration.push(ratio(base.clone(), avg(&t.duration)));
            }
            if t.wait.count > 0 {
                c_wait.push(ratio(base.clone(), avg(&t.wait)));
            }
            if total > 0 {
                c_answer.push(ratio(
                    base.clone(),
                    100.0 * t.answered as f64 / total as f64,
                ));
                c_abandon.push(ratio(base, 100.0 * t.abandoned as f64 / total as f64));
            }
        }
        let mut q_depth = Vec::new();
        let mut q_wait = Vec::new();
        let mut q_abandon = Vec::new();
        let mut q_level = Vec::new();
        let dims = |territory: &str, region: u8, event_type: &str| {
            vec![
                string_kv("territory_id", territory),
                int_kv("region_id", i64::from(region)),
                string_kv("event_type", event_type),
            ]
        };
        let with_queue = |mut a: Vec<KeyValue>, queue: &str| {
            a.push(string_kv("queue_id", queue));
            a
        };
        let mut depth: BTreeMap<&QueueKey, u64> = st.depth_keys.iter().map(|k| (k, 0)).collect();
        let mut busy: BTreeMap<&(String, u8), HashSet<&str>> =
            st.busy_keys.iter().map(|k| (k, HashSet::new())).collect();
        for l in st.live.values() {
            if let Some((q, t)) = &l.queued
                && let Some(n) = depth.get_mut(&(l.territory.clone(), l.region, *t, q.clone()))
            {
                *n += 1;
            }
            if let Some(agent) = &l.agent
                && let Some(set) = busy.get_mut(&(l.territory.clone(), l.region))
            {
                set.insert(agent);
            }
        }
        for ((territory, region, t, queue), n) in depth {
            q_depth.push(int(with_queue(dims(territory, *region, t), queue), n));
        }
        let mut empty_queues = Vec::new();
        for (k, q) in &st.queues {
            let (territory, region, t, queue) = k;
            let base = with_queue(dims(territory, *region, t), queue);
            if q.queued == 0 {
                for v in [&mut q_wait, &mut q_abandon, &mut q_level] {
                    v.push(stale(base.clone()));
                }
                empty_queues.push(k.clone());
                continue;
            }
            if q.answered > 0 {
                q_wait.push(ratio(base.clone(), q.wait_sum / q.answered as f64));
            }
            if q.queued > 0 {
                let share = |n: u64| 100.0 * n as f64 / q.queued as f64;
                q_abandon.push(ratio(base.clone(), share(q.abandoned)));
                q_level.push(ratio(base, share(q.within_level)));
            }
        }
        let a_busy: Vec<NumberDataPoint> = busy
            .into_iter()
            .map(|((territory, region), agents)| {
                int(
                    dims(territory, *region, "CALL_ANSWERED"),
                    agents.len() as u64,
                )
            })
            .collect();
        let a_handle: Vec<NumberDataPoint> = st
            .agents
            .iter()
            .map(|((territory, region, t), a)| match a.handled {
                0 => stale(dims(territory, *region, t)),
                n => ratio(dims(territory, *region, t), a.handle_sum / n as f64),
            })
            .collect();
        for k in empty_totals {
            st.totals.remove(&k);
        }
        for k in empty_contract {
            st.contract.remove(&k);
        }
        for k in empty_queues {
            st.queues.remove(&k);
        }
        st.agents.retain(|_, a| a.handled > 0);
        drop(st);
        let sum = |name: &str, unit: &str, description: &str, points| Metric {
            name: name.into(),
            unit: unit.into(),
            description: description.into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                // Corrected by later end records: a sum can go down.
                is_monotonic: false,
            })),
            ..Default::default()
        };
        let gauge_in = |name: &str, unit: &str, description: &str, points| Metric {
            name: name.into(),
            unit: unit.into(),
            description: description.into(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: points,
            })),
            ..Default::default()
        };
        let histogram = |name: &str, description: &str, points| Metric {
            name: name.into(),
            unit: "s".into(),
            description: description.into(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            })),
            ..Default::default()
        };
        let metrics = vec![
            sum(
                "voice.calls",
                "{call}",
                "Ended calls, by final status.",
                calls,
            ),
            sum(
                "voice.calls.answered",
                "{call}",
                "Calls answered.",
                answered,
            ),
            sum(
                "voice.calls.abandoned",
                "{call}",
                "Calls the caller left before an answer.",
                abandoned,
            ),
            gauge_in(
                "voice.calls.answer_rate",
                "1",
                "Answered calls over ended calls.",
                answer_rate,
            ),
            gauge_in(
                "voice.calls.abandon_rate",
                "1",
                "Abandoned calls over ended calls.",
                abandon_rate,
            ),
            histogram(
                "voice.call.duration",
                "Duration of answered calls.",
                duration,
            ),
            histogram("voice.call.wait_time", "Time from start to answer.", wait),
            sum("call_count", "1", "Calls in the period.", c_count),
            gauge_in(
                "call_duration",
                "s",
                "Average call duration (answered calls).",
                c_duration,
            ),
            gauge_in(
                "call_answer_rate",
                "%",
                "Share of calls answered.",
                c_answer,
            ),
            gauge_in(
                "call_abandon_rate",
                "%",
                "Share of calls abandoned.",
                c_abandon,
            ),
            gauge_in("call_wait_time", "s", "Average time before answer.", c_wait),
            gauge_in("queue_depth", "1", "Calls waiting in a queue now.", q_depth),
            gauge_in("queue_wait_time", "s", "Average wait in a queue.", q_wait),
            gauge_in(
                "queue_abandon_rate",
                "%",
                "Share abandoned while queued.",
                q_abandon,
            ),
            gauge_in(
                "queue_service_level",
                "%",
                "Share answered within the service-level threshold.",
                q_level,
            ),
            gauge_in("agent_busy_count", "1", "Agents on calls now.", a_busy),
            gauge_in("agent_handle_time", "s", "Average handle time.", a_handle),
        ];
        // A metric with no point (no queue named yet, say) is left out.
        let metrics: Vec<Metric> = metrics.into_iter().filter(has_points).collect();
        Some(Batch::metrics(ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(lumina_sdk::proto::resource::v1::Resource {
                    attributes: vec![string_kv("service.name", "lumina")],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: "lumina.voice_metrics".into(),
                        ..Default::default()
                    }),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }))
    }

    async fn flush(&self) {
        if let Some(b) = self.batch(false)
            && let Err(e) = self.next.consume(b).await
        {
            // Values are cumulative: the next interval's batch carries them again.
            self.state.lock().unwrap_or_else(|p| p.into_inner()).changed = true;
            tracing::warn!(component = %self.id, error = %e, "Could not send call metrics; the next interval sends them again.");
        }
    }
}

struct VoiceMetrics {
    shared: Arc<Shared>,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

#[async_trait]
impl Consumer for VoiceMetrics {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        let Payload::Logs(req) = batch.into_payload() else {
            return Ok(Accepted::all());
        };
        let mut st = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        for record in req
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| &s.log_records)
        {
            match Dialogue::from_log_record(record) {
                Some(Ok((DialogueRecordKind::End, d))) => st.count(&d),
                Some(Ok((DialogueRecordKind::Update, d))) => st.update(&d),
                _ => {}
            }
        }
        Ok(Accepted::all())
    }
}

#[async_trait]
impl Connector for VoiceMetrics {
    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.stop.cancel();
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = task {
            let _ = t.await;
        }
        if let Some(b) = self.shared.batch(true) {
            self.shared.next.consume(b).await.map_err(|e| {
                ComponentError::Other(format!("sending the last call metrics: {e}"))
            })?;
        }
        Ok(())
    }
}

#[async_trait]
impl ConnectorConfig for VoiceMetricsConfig {
    fn info() -> ComponentInfo {
        ComponentInfo::connector(
            "voice_metrics",
            Stability::Alpha,
            &[(Signal::Logs, Signal::Metrics)],
            "Call metrics (count, duration, answer and abandon rate, wait) from dialogue records.",
        )
    }

    async fn build(
        self,
        ctx: CreateContext,
        _from: Signal,
        _to: Signal,
        outputs: ConnectorOutputs,
    ) -> Result<Arc<dyn Connector>, ComponentError> {
        let cfg = self;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                level_secs: cfg.service_level_threshold.get().as_secs_f64(),
                ..State::default()
            }),
            next: outputs.all,
            start: lumina_sdk::util::now_unix_nanos(),
            id: ctx.id.to_string(),
        });
        let stop = CancellationToken::new();
        let task = {
            let shared = shared.clone();
            let stop = stop.clone();
            let every = cfg.interval.get();
            tokio::spawn(async move {
                let mut interval =
                    tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        _ = interval.tick() => shared.flush().await,
                    }
                }
            })
        };
        Ok(Arc::new(VoiceMetrics {
            shared,
            stop,
            task: Mutex::new(Some(task)),
        }))
    }
}

fn has_points(m: &Metric) -> bool {
    match &m.data {
        Some(metric::Data::Gauge(g)) => !g.data_points.is_empty(),
        Some(metric::Data::Sum(s)) => !s.data_points.is_empty(),
        Some(metric::Data::Histogram(h)) => !h.data_points.is_empty(),
        _ => true,
    }
}
