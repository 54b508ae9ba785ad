//! The `voice_metrics` connector (logs → metrics): call metrics per organization and region,
//! derived from the end-of-dialogue records `dialogue_assembly` emits.
//!
//! Each dialogue is counted once, at its first end record (a late event re-emits the end
//! record; that copy is not counted again). Every `interval`, and at shutdown, one metrics
//! batch goes downstream with cumulative values since the connector started:
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

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use lumina_sdk::component::{
    Accepted, ComponentError, ComponentInfo, Connector, ConnectorFactory, ConnectorOutputs,
    ConsumeError, Consumer, CreateContext, DynConsumer, Stability,
};
use lumina_sdk::config::{
    ConfigError, ConfigErrors, ConfigPath, ConfigValue, Duration, Validate, parse,
};
use lumina_sdk::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use lumina_sdk::proto::common::v1::{InstrumentationScope, KeyValue};
use lumina_sdk::proto::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use lumina_sdk::voice::value::{int_kv, string_kv};
use lumina_sdk::voice::{Dialogue, DialogueRecordKind, DialogueStatus, attr, parse_time};
use lumina_sdk::{Batch, Payload, Signal};
use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How many dialogue ids are remembered to count each dialogue once.
const REMEMBERED: usize = 1_000_000;

const DURATION_BOUNDS: [f64; 10] = [
    5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
];
const WAIT_BOUNDS: [f64; 9] = [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0];

/// Settings of `voice_metrics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VoiceMetricsConfig {
    /// How often metrics are sent. Default 60s.
    pub interval: Duration,
}

impl Default for VoiceMetricsConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
        }
    }
}

impl Validate for VoiceMetricsConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        if self.interval.is_zero() {
            return Err(
                ConfigError::new(ConfigPath::parse("interval"), "must be more than 0").into(),
            );
        }
        Ok(())
    }
}

/// Makes `voice_metrics` connectors.
pub struct VoiceMetricsFactory;

#[async_trait]
impl ConnectorFactory for VoiceMetricsFactory {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::connector(
            "voice_metrics",
            Stability::Alpha,
            &[(Signal::Logs, Signal::Metrics)],
            "Call metrics (count, duration, answer and abandon rate, wait) from dialogue records.",
        )
    }

    fn validate(&self, config: &ConfigValue, _downstream: &[String]) -> Result<(), ConfigErrors> {
        parse::<VoiceMetricsConfig>(config).map(|_| ())
    }

    async fn create(
        &self,
        config: &ConfigValue,
        ctx: CreateContext,
        _from: Signal,
        _to: Signal,
        outputs: ConnectorOutputs,
    ) -> Result<Arc<dyn Connector>, ComponentError> {
        let cfg: VoiceMetricsConfig = parse(config)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            next: outputs.all,
            start: now_nanos(),
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

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[derive(Default, Clone)]
struct Hist {
    counts: Vec<u64>,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Hist {
    fn record(&mut self, bounds: &[f64], v: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; bounds.len() + 1];
            self.min = v;
            self.max = v;
        }
        let i = bounds.iter().position(|b| v <= *b).unwrap_or(bounds.len());
        self.counts[i] += 1;
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }
}

/// Totals for one organization and region.
#[derive(Default, Clone)]
struct Totals {
    by_status: BTreeMap<&'static str, u64>,
    answered: u64,
    abandoned: u64,
    duration: Hist,
    wait: Hist,
}

#[derive(Default)]
struct State {
    totals: BTreeMap<(String, u8), Totals>,
    seen: HashSet<String>,
    order: VecDeque<String>,
    changed: bool,
}

impl State {
    fn count(&mut self, d: &Dialogue) {
        if !self.seen.insert(d.dialogue_id.clone()) {
            return;
        }
        self.order.push_back(d.dialogue_id.clone());
        if self.order.len() > REMEMBERED
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.changed = true;
        let t = self
            .totals
            .entry((d.organization_id.clone(), d.region_id.unwrap_or(0)))
            .or_default();
        *t.by_status.entry(d.status.as_str()).or_default() += 1;
        let secs = |s: &Option<String>| s.as_deref().and_then(|s| parse_time(s).ok());
        if let Some(answer) = secs(&d.answer_time) {
            t.answered += 1;
            if let Some(start) = secs(&d.start_time) {
                t.wait
                    .record(&WAIT_BOUNDS, (answer - start).max(0) as f64 / 1e9);
            }
            if let Some(dur) = d.duration {
                t.duration.record(&DURATION_BOUNDS, dur as f64);
            }
        } else if d.status == DialogueStatus::Failed && d.end_reason.as_deref() == Some("ABANDONED")
        {
            t.abandoned += 1;
        }
    }
}

struct Shared {
    state: Mutex<State>,
    next: DynConsumer,
    start: u64,
    id: String,
}

impl Shared {
    fn batch(&self, force: bool) -> Option<Batch> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !(st.changed || force) || st.totals.is_empty() {
            return None;
        }
        st.changed = false;
        let now = now_nanos();
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
        for ((org, region), t) in &st.totals {
            let base = vec![
                string_kv(attr::ORGANIZATION_ID, org),
                int_kv(attr::REGION_ID, i64::from(*region)),
            ];
            let total: u64 = t.by_status.values().sum();
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
        drop(st);
        let sum = |name: &str, unit: &str, description: &str, points| Metric {
            name: name.into(),
            unit: unit.into(),
            description: description.into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })),
            ..Default::default()
        };
        let gauge = |name: &str, description: &str, points| Metric {
            name: name.into(),
            unit: "1".into(),
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
            gauge(
                "voice.calls.answer_rate",
                "Answered calls over ended calls.",
                answer_rate,
            ),
            gauge(
                "voice.calls.abandon_rate",
                "Abandoned calls over ended calls.",
                abandon_rate,
            ),
            histogram(
                "voice.call.duration",
                "Duration of answered calls.",
                duration,
            ),
            histogram("voice.call.wait_time", "Time from start to answer.", wait),
        ];
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
            if let Some(Ok((DialogueRecordKind::End, d))) = Dialogue::from_log_record(record) {
                st.count(&d);
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

#[cfg(test)]
mod tests {

    use super::*;
    use lumina_sdk::component::{ComponentId, ComponentKind};
    use lumina_sdk::proto::collector::logs::v1::ExportLogsServiceRequest;
    use lumina_sdk::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use lumina_sdk::testkit::CollectingConsumer;

    fn dialogue(
        id: &str,
        org: &str,
        status: DialogueStatus,
        answered: bool,
        reason: &str,
    ) -> Dialogue {
        Dialogue {
            pk: String::new(),
            sk: id.into(),
            dialogue_id: id.into(),
            call_guid: id.into(),
            leg_guid: "l".into(),
            caller_number: None,
            called_number: None,
            start_time: Some("2026-11-23T10:00:00Z".into()),
            end_time: Some("2026-11-23T10:01:00Z".into()),
            duration: Some(55),
            status,
            direction: None,
            events: Vec::new(),
            organization_id: org.into(),
            account_id: "a".into(),
            created_at: "2026-11-23T10:00:00Z".into(),
            updated_at: "2026-11-23T10:01:00Z".into(),
            answer_time: answered.then(|| "2026-11-23T10:00:05Z".into()),
            end_reason: Some(reason.into()),
            participants: Vec::new(),
            region_id: Some(2),
            revision: 3,
        }
    }

    fn logs(records: Vec<LogRecord>) -> Batch {
        Batch::logs(ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
    }

    #[tokio::test]
    async fn counts_each_ended_dialogue_once_per_organization_and_region() {
        let out = Arc::new(CollectingConsumer::new());
        let c = VoiceMetricsFactory
            .create(
                &ConfigValue::from(serde_json::json!({ "interval": "1h" })),
                CreateContext::new(ComponentId::new("voice_metrics"), ComponentKind::Connector),
                Signal::Logs,
                Signal::Metrics,
                ConnectorOutputs {
                    pipelines: Vec::new(),
                    all: out.clone() as DynConsumer,
                },
            )
            .await
            .unwrap();
        let done = dialogue("d1", "o1", DialogueStatus::Completed, true, "NORMAL");
        c.consume(logs(vec![
            done.to_log_record(DialogueRecordKind::Update),
            done.to_log_record(DialogueRecordKind::End),
            done.to_log_record(DialogueRecordKind::End),
            dialogue("d2", "o1", DialogueStatus::Failed, false, "ABANDONED")
                .to_log_record(DialogueRecordKind::End),
            dialogue("d3", "o2", DialogueStatus::Failed, false, "BUSY")
                .to_log_record(DialogueRecordKind::End),
        ]))
        .await
        .unwrap();
        c.shutdown().await.unwrap();
        let batches = out.batches();
        assert_eq!(batches.len(), 1);
        let Payload::Metrics(m) = batches[0].clone().into_payload() else {
            panic!("not metrics")
        };
        let metrics = &m.resource_metrics[0].scope_metrics[0].metrics;
        let find = |name: &str| metrics.iter().find(|m| m.name == name).unwrap();
        let points = |name: &str, org: &str| -> Vec<f64> {
            let pts: Vec<&NumberDataPoint> = match find(name).data.as_ref().unwrap() {
                metric::Data::Sum(s) => s.data_points.iter().collect(),
                metric::Data::Gauge(g) => g.data_points.iter().collect(),
                _ => panic!("{name}"),
            };
            pts.into_iter()
                .filter(|p| {
                    lumina_sdk::testkit::attr(&p.attributes, attr::ORGANIZATION_ID).as_deref()
                        == Some(org)
                })
                .map(|p| match p.value.unwrap() {
                    number_data_point::Value::AsInt(i) => i as f64,
                    number_data_point::Value::AsDouble(d) => d,
                })
                .collect()
        };
        assert_eq!(points("voice.calls", "o1").iter().sum::<f64>(), 2.0);
        assert_eq!(points("voice.calls", "o2"), [1.0]);
        assert_eq!(points("voice.calls.answered", "o1"), [1.0]);
        assert_eq!(points("voice.calls.abandoned", "o1"), [1.0]);
        assert_eq!(points("voice.calls.answer_rate", "o1"), [0.5]);
        assert_eq!(points("voice.calls.abandon_rate", "o2"), [0.0]);
        let metric::Data::Histogram(h) = find("voice.call.wait_time").data.as_ref().unwrap() else {
            panic!()
        };
        let o1 = h
            .data_points
            .iter()
            .find(|p| {
                lumina_sdk::testkit::attr(&p.attributes, attr::ORGANIZATION_ID).as_deref()
                    == Some("o1")
            })
            .unwrap();
        assert_eq!((o1.count, o1.sum), (1, Some(5.0)));
    }
}
