//! Real OTLP clients (the OpenTelemetry Python SDK and the Rust `opentelemetry-otlp` crate)
//! send logs, spans and metrics over gRPC and HTTP; the `file` exporter must hold exactly what
//! they sent.

use std::collections::BTreeMap;
use std::process::Command;

use crate::harness::{Collector, python, read_jsonl, workspace};
use lumina_sdk::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use lumina_sdk::proto::metrics::v1::{metric, number_data_point};
use lumina_sdk::{Batch, Payload};
use serde_json::Value as J;

pub(crate) const PASS_THROUGH: &str = "
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:{grpc} }
      http: { endpoint: 127.0.0.1:{http} }
processors:
  batch: { timeout: 100ms }
exporters:
  file: { path: '{dir}/out.jsonl' }
service:
  pipelines:
    logs: { receivers: [otlp], processors: [batch], exporters: [file] }
    traces: { receivers: [otlp], processors: [batch], exporters: [file] }
    metrics: { receivers: [otlp], processors: [batch], exporters: [file] }
";

fn attrs(kvs: &[KeyValue]) -> BTreeMap<String, J> {
    kvs.iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => J::from(s.clone()),
                Some(Value::IntValue(i)) => J::from(*i),
                Some(Value::DoubleValue(d)) => J::from(*d),
                Some(Value::BoolValue(b)) => J::from(*b),
                other => J::from(format!("{other:?}")),
            };
            (kv.key.clone(), v)
        })
        .collect()
}

fn body(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        other => format!("{other:?}"),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What arrived for one run: log records (attributes + body), spans (trace id, span id, name)
/// and counter points (seq → value), each with its resource attributes.
#[derive(Default, Debug)]
pub(crate) struct Arrived {
    pub(crate) logs: Vec<(BTreeMap<String, J>, String)>,
    pub(crate) spans: Vec<(String, String, String)>,
    pub(crate) points: BTreeMap<i64, i64>,
    resources: Vec<BTreeMap<String, J>>,
}

pub(crate) fn arrived(batches: &[Batch], run: &str) -> Arrived {
    let mut a = Arrived::default();
    let is_run = |kvs: &[KeyValue]| attrs(kvs).get("run") == Some(&J::from(run));
    for b in batches {
        match b.payload() {
            Payload::Logs(r) => {
                for rl in &r.resource_logs {
                    for lr in rl
                        .scope_logs
                        .iter()
                        .flat_map(|s| &s.log_records)
                        .filter(|lr| is_run(&lr.attributes))
                    {
                        a.logs.push((attrs(&lr.attributes), body(&lr.body)));
                        a.resources
                            .push(attrs(&rl.resource.as_ref().unwrap().attributes));
                    }
                }
            }
            Payload::Traces(r) => {
                for s in r
                    .resource_spans
                    .iter()
                    .flat_map(|r| &r.scope_spans)
                    .flat_map(|s| &s.spans)
                    .filter(|s| is_run(&s.attributes))
                {
                    a.spans
                        .push((hex(&s.trace_id), hex(&s.span_id), s.name.clone()));
                }
            }
            Payload::Metrics(r) => {
                for m in r
                    .resource_metrics
                    .iter()
                    .flat_map(|r| &r.scope_metrics)
                    .flat_map(|s| &s.metrics)
                {
                    if let Some(metric::Data::Sum(sum)) = &m.data {
                        for p in sum.data_points.iter().filter(|p| is_run(&p.attributes)) {
                            let seq = attrs(&p.attributes)["seq"].as_i64().unwrap();
                            let v = match p.value {
                                Some(number_data_point::Value::AsInt(i)) => i,
                                Some(number_data_point::Value::AsDouble(d)) => d as i64,
                                None => -1,
                            };
                            assert!(
                                a.points.insert(seq, v).is_none(),
                                "point {seq} of run {run} arrived twice"
                            );
                        }
                    }
                }
            }
        }
    }
    a
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_over_grpc_and_http_arrives_exactly_as_sent() {
    let py = python();
    let c = Collector::start(PASS_THROUGH).await;
    let mut sent = Vec::new();
    for (protocol, port) in [("grpc", c.grpc), ("http", c.http)] {
        let run = format!("py-{protocol}");
        let out = Command::new(&py)
            .arg(workspace().join("tests/python/send_otlp.py"))
            .args([
                "--protocol",
                protocol,
                "--endpoint",
                &format!("127.0.0.1:{port}"),
                "--run",
                &run,
                "--count",
                "25",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sender failed: {}\ncollector log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            c.log()
        );
        let s: J = serde_json::from_slice(&out.stdout).unwrap();
        sent.push((run, s));
    }
    let stopped = c.stop().await;
    stopped.assert_clean();
    let batches = read_jsonl(&stopped.path("out.jsonl"));
    for (run, s) in sent {
        let a = arrived(&batches, &run);
        // Logs: every record once, with its body and typed attributes.
        let mut want: Vec<(BTreeMap<String, J>, String)> = s["logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["attributes"]
                        .as_object()
                        .unwrap()
                        .clone()
                        .into_iter()
                        .collect(),
                    l["body"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let mut got = a.logs.clone();
        want.sort_by_key(|(a, _)| a["seq"].as_i64());
        got.sort_by_key(|(a, _)| a["seq"].as_i64());
        assert_eq!(got, want, "log records of {run}");
        assert!(
            a.resources
                .iter()
                .all(|r| r["service.name"] == "python-sender"
                    && r["lumina.test.run"] == run.as_str())
        );
        // Spans: the same trace and span ids.
        let mut want: Vec<(String, String, String)> = s["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|sp| {
                (
                    sp["trace_id"].as_str().unwrap().to_owned(),
                    sp["span_id"].as_str().unwrap().to_owned(),
                    sp["name"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let mut got = a.spans.clone();
        want.sort();
        got.sort();
        assert_eq!(got, want, "spans of {run}");
        // Metrics: one cumulative point per seq with the value added.
        let want: BTreeMap<i64, i64> = s["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["seq"].as_i64().unwrap(), m["value"].as_i64().unwrap()))
            .collect();
        assert_eq!(a.points, want, "counter points of {run}");
    }
}

/// What the Rust sender sent.
struct RustSent {
    logs: Vec<(i64, String)>,
    spans: Vec<(String, String, String)>,
    points: BTreeMap<i64, i64>,
}

/// Sends `n` log records, spans and counter points with the Rust `opentelemetry-otlp` crate.
/// It runs on its own thread: the gRPC exporter needs a Tokio runtime of its own, and the
/// blocking HTTP client must not run inside one.
fn rust_sender(protocol: &'static str, port: u16, run: String, n: i64) -> RustSent {
    use opentelemetry::KeyValue;
    use opentelemetry::logs::{AnyValue as LogValue, LogRecord, Logger, LoggerProvider, Severity};
    use opentelemetry::metrics::MeterProvider;
    use opentelemetry::trace::{Span, Tracer, TracerProvider};
    use opentelemetry_otlp::{
        LogExporter, MetricExporter, Protocol, SpanExporter, WithExportConfig,
    };
    use opentelemetry_sdk::metrics::Temporality;

    std::thread::spawn(move || {
        let rt = (protocol == "grpc").then(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
        });
        let _guard = rt.as_ref().map(|r| r.enter());
        let base = format!("http://127.0.0.1:{port}");
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name("rust-sender")
            .with_attribute(KeyValue::new("lumina.test.run", run.clone()))
            .build();
        let (logs, spans, metrics) = if protocol == "grpc" {
            (
                LogExporter::builder()
                    .with_tonic()
                    .with_endpoint(&base)
                    .build()
                    .unwrap(),
                SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(&base)
                    .build()
                    .unwrap(),
                MetricExporter::builder()
                    .with_tonic()
                    .with_endpoint(&base)
                    .with_temporality(Temporality::Delta)
                    .build()
                    .unwrap(),
            )
        } else {
            (
                LogExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(format!("{base}/v1/logs"))
                    .build()
                    .unwrap(),
                SpanExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(format!("{base}/v1/traces"))
                    .build()
                    .unwrap(),
                MetricExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(format!("{base}/v1/metrics"))
                    .with_temporality(Temporality::Delta)
                    .build()
                    .unwrap(),
            )
        };
        let log_provider = opentelemetry_sdk::logs::SdkLoggerProvider::builder()
            .with_resource(resource.clone())
            .with_batch_exporter(logs)
            .build();
        let trace_provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_batch_exporter(spans)
            .build();
        let meter_provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
            .with_resource(resource)
            .with_periodic_exporter(metrics)
            .build();

        let mut sent = RustSent {
            logs: Vec::new(),
            spans: Vec::new(),
            points: BTreeMap::new(),
        };
        let logger = log_provider.logger("lumina.e2e");
        for i in 0..n {
            let mut rec = logger.create_log_record();
            rec.set_body(LogValue::from(format!("rust event {i}")));
            rec.set_severity_number(Severity::Info);
            rec.add_attribute("run", run.clone());
            rec.add_attribute("seq", i);
            logger.emit(rec);
            sent.logs.push((i, format!("rust event {i}")));
        }
        let tracer = trace_provider.tracer("lumina.e2e");
        for i in 0..n {
            let mut span = tracer.start(format!("rust leg {i}"));
            span.set_attribute(KeyValue::new("run", run.clone()));
            span.set_attribute(KeyValue::new("seq", i));
            let ctx = span.span_context().clone();
            span.end();
            sent.spans.push((
                ctx.trace_id().to_string(),
                ctx.span_id().to_string(),
                format!("rust leg {i}"),
            ));
        }
        let counter = meter_provider
            .meter("lumina.e2e")
            .u64_counter("lumina.e2e.calls")
            .build();
        for i in 0..n {
            counter.add(
                (i + 1) as u64,
                &[KeyValue::new("run", run.clone()), KeyValue::new("seq", i)],
            );
            sent.points.insert(i, i + 1);
        }
        log_provider.force_flush().unwrap();
        trace_provider.force_flush().unwrap();
        meter_provider.force_flush().unwrap();
        log_provider.shutdown().unwrap();
        trace_provider.shutdown().unwrap();
        meter_provider.shutdown().unwrap();
        sent
    })
    .join()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn rust_opentelemetry_otlp_over_grpc_and_http_arrives_exactly_as_sent() {
    let c = Collector::start(PASS_THROUGH).await;
    let mut sent = Vec::new();
    for (protocol, port) in [("grpc", c.grpc), ("http", c.http)] {
        let run = format!("rust-{protocol}");
        let r = run.clone();
        let s = tokio::task::spawn_blocking(move || rust_sender(protocol, port, r, 30))
            .await
            .unwrap();
        sent.push((run, s));
    }
    let stopped = c.stop().await;
    stopped.assert_clean();
    let batches = read_jsonl(&stopped.path("out.jsonl"));
    for (run, s) in sent {
        let a = arrived(&batches, &run);
        let mut got: Vec<(i64, String)> = a
            .logs
            .iter()
            .map(|(attrs, body)| (attrs["seq"].as_i64().unwrap(), body.clone()))
            .collect();
        got.sort();
        assert_eq!(got, s.logs, "log records of {run}");
        assert!(
            a.resources
                .iter()
                .all(|r| r["service.name"] == "rust-sender")
        );
        let (mut got, mut want) = (a.spans.clone(), s.spans.clone());
        got.sort();
        want.sort();
        assert_eq!(got, want, "spans of {run}");
        assert_eq!(a.points, s.points, "counter points of {run}");
    }
}
