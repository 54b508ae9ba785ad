//! Test doubles and batch builders for testing components (feature `testkit`).
//!
//! Every item the builders make carries a unique `seq` (a log or data-point attribute, or the
//! span id), so a test can check that exactly the items sent came out: compare
//! [`item_ids`] before and after.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::component::{Accepted, ConsumeError, Consumer, ExportError, Exporter};
use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
use crate::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use crate::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use crate::proto::metrics::v1::{
    Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    Sum, metric, number_data_point,
};
use crate::proto::resource::v1::Resource;
use crate::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use crate::{Batch, Payload};

/// A TCP port on 127.0.0.1 that was free a moment ago (for tests that start servers).
///
/// Ports come from below the kernel's ephemeral range (so an outgoing connection cannot take
/// one between this call and the server's bind), start at an offset derived from the process id
/// (so test processes running side by side rarely probe the same ones) and are never handed out
/// twice by one process (a port asking the kernel for "any" could be given again once released).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 10_000;
    const SPAN: u32 = 22_000; // up to 32_000, below the usual ephemeral range (32768-60999)
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let start = (std::process::id().wrapping_mul(7_919)) % SPAN;
    let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..SPAN {
        let port = (LOW + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Data points in each metric that [`metrics`] builds.
pub const POINTS_PER_METRIC: usize = 2;

/// A string attribute.
pub fn kv(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// An integer attribute.
pub fn kv_int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

pub use crate::plugin::testing::{log_records, logs_of, voice_event, voice_events};

/// A completed dialogue `id` of organization `org-1` from `+442071234567` to `+15551234567`,
/// holding `events` (their `dialogueId` set to `id`).
pub fn dialogue(id: &str, events: &[crate::voice::VoiceEvent]) -> crate::voice::Dialogue {
    let json = serde_json::json!({
        "PK": "org-1#acc-1", "SK": id, "dialogueId": id, "callGuid": "call-1", "legGuid": "leg-1",
        "callerNumber": "+442071234567", "calledNumber": "+15551234567",
        "startTime": "2026-11-18T10:00:00Z", "endTime": "2026-11-18T10:01:00Z", "duration": 60,
        "status": "COMPLETED", "direction": "INBOUND",
        "events": events.iter().map(|e| serde_json::json!({
            "eventId": e.event_id, "dialogueId": id, "eventType": e.event_type.as_str(),
            "timestamp": crate::voice::format_time(e.timestamp),
            "data": serde_json::Value::Object(e.data.clone()), "source": null,
        })).collect::<Vec<_>>(),
        "organizationId": "org-1", "accountId": "acc-1",
        "createdAt": "2026-11-18T10:00:00Z", "updatedAt": "2026-11-18T10:01:00Z",
        "answerTime": "2026-11-18T10:00:05Z", "endReason": "NORMAL",
        "participants": ["+442071234567", "+15551234567"],
        "regionId": 1, "revision": 1,
    });
    match serde_json::from_value(json) {
        Ok(d) => d,
        Err(e) => panic!("dialogue({id}): {e}"),
    }
}

/// The string or integer value of attribute `key`, as text.
pub fn attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    crate::attrs::get_text(attrs, key)
}

fn resource(r: usize) -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", format!("svc-{r}"))],
        ..Default::default()
    })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "lumina.testkit".into(),
        version: "1".into(),
        ..Default::default()
    })
}

/// Logs: `resources` resources with `per_resource` records each, `seq` 0, 1, 2, ...
pub fn logs(resources: usize, per_resource: usize) -> Batch {
    logs_from(0, resources, per_resource)
}

/// Like [`logs`], numbering from `first_seq`.
pub fn logs_from(first_seq: usize, resources: usize, per_resource: usize) -> Batch {
    let resource_logs = (0..resources)
        .map(|r| ResourceLogs {
            resource: resource(r),
            scope_logs: vec![ScopeLogs {
                scope: scope(),
                log_records: (0..per_resource)
                    .map(|i| {
                        let seq = first_seq + r * per_resource + i;
                        LogRecord {
                            time_unix_nano: 1_700_000_000_000_000_000 + seq as u64,
                            severity_number: 9,
                            severity_text: "INFO".into(),
                            body: Some(AnyValue {
                                value: Some(any_value::Value::StringValue(format!("record {seq}"))),
                            }),
                            attributes: vec![kv_int("seq", seq as i64), kv("kind", "test")],
                            trace_id: vec![7; 16],
                            span_id: vec![(seq % 256) as u8; 8],
                            ..Default::default()
                        }
                    })
                    .collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        })
        .collect();
    Batch::logs(ExportLogsServiceRequest { resource_logs })
}

/// Traces: `resources` resources with `per_resource` spans each; span ids are the `seq`.
pub fn traces(resources: usize, per_resource: usize) -> Batch {
    let resource_spans = (0..resources)
        .map(|r| ResourceSpans {
            resource: resource(r),
            scope_spans: vec![ScopeSpans {
                scope: scope(),
                spans: (0..per_resource)
                    .map(|i| {
                        let seq = (r * per_resource + i) as u64;
                        Span {
                            trace_id: [[0xab; 8], (r as u64).to_be_bytes()].concat(),
                            span_id: (seq + 1).to_be_bytes().to_vec(),
                            name: format!("span {seq}"),
                            kind: 2,
                            start_time_unix_nano: 1_700_000_000_000_000_000,
                            end_time_unix_nano: 1_700_000_000_100_000_000,
                            attributes: vec![kv_int("seq", seq as i64)],
                            ..Default::default()
                        }
                    })
                    .collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        })
        .collect();
    Batch::traces(ExportTraceServiceRequest { resource_spans })
}

/// Metrics: `resources` resources with `per_resource` metrics each (a gauge, a sum and a
/// histogram in turn), each with [`POINTS_PER_METRIC`] points numbered by `seq`.
pub fn metrics(resources: usize, per_resource: usize) -> Batch {
    let mut seq = 0i64;
    let mut next = || {
        seq += 1;
        seq - 1
    };
    let resource_metrics = (0..resources)
        .map(|r| ResourceMetrics {
            resource: resource(r),
            scope_metrics: vec![ScopeMetrics {
                scope: scope(),
                metrics: (0..per_resource)
                    .map(|m| {
                        let number = |s: i64| NumberDataPoint {
                            attributes: vec![kv_int("seq", s)],
                            time_unix_nano: 1_700_000_000_000_000_000,
                            value: Some(number_data_point::Value::AsInt(s)),
                            ..Default::default()
                        };
                        let data = match m % 3 {
                            0 => metric::Data::Gauge(Gauge {
                                data_points: (0..POINTS_PER_METRIC)
                                    .map(|_| number(next()))
                                    .collect(),
                            }),
                            1 => metric::Data::Sum(Sum {
                                data_points: (0..POINTS_PER_METRIC)
                                    .map(|_| number(next()))
                                    .collect(),
                                aggregation_temporality: 2,
                                is_monotonic: true,
                            }),
                            _ => metric::Data::Histogram(Histogram {
                                data_points: (0..POINTS_PER_METRIC)
                                    .map(|_| HistogramDataPoint {
                                        attributes: vec![kv_int("seq", next())],
                                        count: 3,
                                        sum: Some(6.0),
                                        bucket_counts: vec![1, 2],
                                        explicit_bounds: vec![1.5],
                                        ..Default::default()
                                    })
                                    .collect(),
                                aggregation_temporality: 2,
                            }),
                        };
                        Metric {
                            name: format!("metric.{m}"),
                            unit: "1".into(),
                            data: Some(data),
                            ..Default::default()
                        }
                    })
                    .collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        })
        .collect();
    Batch::metrics(ExportMetricsServiceRequest { resource_metrics })
}

/// The ids of every item, in order: the `seq` attribute of log records and data points, the
/// hex span id of spans.
pub fn item_ids(batch: &Batch) -> Vec<String> {
    match batch.payload() {
        Payload::Logs(r) => r
            .resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .flat_map(|sl| &sl.log_records)
            .map(|lr| attr(&lr.attributes, "seq").unwrap_or_default())
            .collect(),
        Payload::Traces(r) => r
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| &ss.spans)
            .map(|s| s.span_id.iter().map(|b| format!("{b:02x}")).collect())
            .collect(),
        Payload::Metrics(r) => r
            .resource_metrics
            .iter()
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| &sm.metrics)
            .flat_map(|m| match &m.data {
                Some(metric::Data::Gauge(g)) => g
                    .data_points
                    .iter()
                    .map(|p| attr(&p.attributes, "seq"))
                    .collect(),
                Some(metric::Data::Sum(s)) => s
                    .data_points
                    .iter()
                    .map(|p| attr(&p.attributes, "seq"))
                    .collect(),
                Some(metric::Data::Histogram(h)) => h
                    .data_points
                    .iter()
                    .map(|p| attr(&p.attributes, "seq"))
                    .collect(),
                _ => Vec::<Option<String>>::new(),
            })
            .map(Option::unwrap_or_default)
            .collect(),
    }
}

/// The errors config type `C` reports for `yaml` (its own checks included), as text; empty
/// if it takes it.
pub fn config_errors<C: serde::de::DeserializeOwned + crate::config::Validate>(
    yaml: &str,
) -> String {
    let tree = match crate::config::parse_yaml(yaml, "test") {
        Ok(t) => t,
        Err(e) => return e.to_string(),
    };
    crate::config::parse::<C>(&tree)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

/// Builds processor `C` of `signal` from `yaml`, with id `id`, handing what it sends to a
/// [`CollectingConsumer`]; panics if the config is refused.
pub async fn processor<C: crate::component::ProcessorConfig>(
    id: &str,
    signal: crate::Signal,
    yaml: &str,
) -> (
    std::sync::Arc<dyn crate::component::Processor>,
    std::sync::Arc<CollectingConsumer>,
) {
    use crate::component::{ComponentId, ComponentKind, CreateContext, DynConsumer};
    let out = std::sync::Arc::new(CollectingConsumer::new());
    let cfg = match crate::config::parse_yaml(yaml, "test") {
        Ok(c) => c,
        Err(e) => panic!("processor config {yaml:?}: {e}"),
    };
    let built = crate::component::processor::<C>()
        .create(
            &cfg,
            CreateContext::new(ComponentId::new(id), ComponentKind::Processor),
            signal,
            out.clone() as DynConsumer,
        )
        .await;
    match built {
        Ok(p) => (p, out),
        Err(e) => panic!("processor {id} from {yaml:?}: {e}"),
    }
}

/// A consumer that keeps every batch it gets.
#[derive(Default)]
pub struct CollectingConsumer {
    batches: Mutex<Vec<Batch>>,
    arrived: Notify,
}

impl CollectingConsumer {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// The batches received so far.
    pub fn batches(&self) -> Vec<Batch> {
        self.batches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The log records received so far, in order.
    pub fn log_records(&self) -> Vec<LogRecord> {
        self.batches().iter().flat_map(log_records).collect()
    }

    /// The total items received so far.
    pub fn items(&self) -> usize {
        self.batches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(Batch::len)
            .sum()
    }

    /// The ids of every item received so far, in arrival order.
    pub fn item_ids(&self) -> Vec<String> {
        self.batches().iter().flat_map(item_ids).collect()
    }

    /// Waits until at least `n` items have arrived; `false` if `timeout` passed first.
    pub async fn wait_for_items(&self, n: usize, timeout: Duration) -> bool {
        self.wait_for(timeout, |_| self.items() >= n).await
    }

    /// Waits until `done` holds for the batches received so far, checking each time a batch
    /// arrives; `false` if `timeout` passed first.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&[Batch]) -> bool,
    ) -> bool {
        tokio::time::timeout(timeout, async {
            loop {
                let notified = self.arrived.notified();
                if done(&self.batches()) {
                    return;
                }
                notified.await;
            }
        })
        .await
        .is_ok()
    }
}

#[async_trait]
impl Consumer for CollectingConsumer {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        self.batches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(batch);
        self.arrived.notify_waiters();
        Ok(Accepted::all())
    }
}

/// A consumer that keeps every batch and answers that `rejected` of its items were refused
/// as invalid (a pipeline whose validation refused some records).
pub struct PartialConsumer {
    /// Items refused of each batch.
    pub rejected: u64,
    /// The reason given.
    pub message: &'static str,
    /// What it got.
    pub got: CollectingConsumer,
}

impl PartialConsumer {
    /// Refuses `rejected` items of each batch for `message`.
    pub fn new(rejected: u64, message: &'static str) -> Self {
        Self {
            rejected,
            message,
            got: CollectingConsumer::new(),
        }
    }
}

#[async_trait]
impl Consumer for PartialConsumer {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        let _ = self.got.consume(batch).await;
        Ok(Accepted::partial(self.rejected, self.message))
    }
}

/// A consumer that fails every batch with the same error.
pub struct FailingConsumer(pub ConsumeError);

#[async_trait]
impl Consumer for FailingConsumer {
    async fn consume(&self, _batch: Batch) -> Result<Accepted, ConsumeError> {
        Err(self.0.clone())
    }
}

/// What a [`ScriptedExporter`] does with one attempt.
#[derive(Debug, Clone)]
pub enum Step {
    /// Succeed.
    Ok,
    /// Fail in a way worth retrying.
    Retryable,
    /// Fail for good.
    Permanent,
    /// Fail retryably for only the first `n` items of the batch.
    PartialRetryable(usize),
    /// Answer per item: the first `retry` items fail retryably, the next `reject` are refused
    /// for good, the rest are delivered.
    PerItem {
        /// Items worth another attempt.
        retry: usize,
        /// Items refused for good.
        reject: usize,
    },
    /// Take this long, then succeed.
    Delay(Duration),
    /// Take the batch but say that this many of its items (not which) were refused for good,
    /// as an OTLP partial success does.
    SomeRefused(usize),
    /// Fail retryably, asking for this delay before the next attempt (`Retry-After`).
    RetryAfter(Duration),
}

/// An exporter that follows a script of outcomes (then succeeds) and keeps what it delivered.
#[derive(Default)]
pub struct ScriptedExporter {
    script: Mutex<VecDeque<Step>>,
    /// Every attempt, in order, with its item count.
    pub attempts: Mutex<Vec<usize>>,
    delivered: CollectingConsumer,
    down: std::sync::atomic::AtomicBool,
}

impl ScriptedExporter {
    /// An exporter that plays `steps` in order, then succeeds.
    pub fn new(steps: impl IntoIterator<Item = Step>) -> Self {
        Self {
            script: Mutex::new(steps.into_iter().collect()),
            ..Default::default()
        }
    }

    /// Makes every attempt fail retryably (`true`) until set back (`false`).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    /// What was delivered.
    pub fn delivered(&self) -> &CollectingConsumer {
        &self.delivered
    }

    /// The item counts of every attempt so far.
    pub fn attempt_sizes(&self) -> Vec<usize> {
        self.attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[async_trait]
impl Exporter for ScriptedExporter {
    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        self.attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(batch.len());
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ExportError::retryable("destination is down"));
        }
        let step = self
            .script
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
            .unwrap_or(Step::Ok);
        match step {
            Step::Ok => {}
            Step::SomeRefused(n) => {
                let _ = self.delivered.consume(batch.clone()).await;
                let reason = format!("scripted refusal of {n} items");
                return Err(ExportError::per_item(
                    reason.clone(),
                    Batch::empty(batch.signal()),
                    vec![crate::component::Rejected::some_of(
                        batch.clone(),
                        n,
                        reason,
                    )],
                ));
            }
            Step::Retryable => return Err(ExportError::retryable("scripted retryable failure")),
            Step::RetryAfter(d) => {
                return Err(
                    ExportError::retryable("scripted: retry later").with_retry_after(Some(d))
                );
            }
            Step::Permanent => return Err(ExportError::permanent("scripted permanent failure")),
            Step::PartialRetryable(n) => {
                let mut parts = batch.clone().split(n);
                let failed = parts.remove(0);
                for p in parts {
                    let _ = self.delivered.consume(p).await;
                }
                return Err(ExportError::retryable("scripted partial failure").only(failed));
            }
            Step::PerItem { retry, reject } => {
                let mut parts = batch.clone().split(1).into_iter();
                let mut take = |n: usize| Batch::merge(parts.by_ref().take(n)).ok().flatten();
                let retry = take(retry).unwrap_or_else(|| Batch::empty(batch.signal()));
                let rejected = take(reject)
                    .map(|b| vec![crate::component::Rejected::new(b, "scripted rejection")])
                    .unwrap_or_default();
                if let Some(rest) = Batch::merge(parts).ok().flatten() {
                    let _ = self.delivered.consume(rest).await;
                }
                return Err(ExportError::per_item(
                    "scripted per-item failure",
                    retry,
                    rejected,
                ));
            }
            Step::Delay(d) => tokio::time::sleep(d).await,
        }
        let _ = self.delivered.consume(batch.clone()).await;
        Ok(())
    }
}
