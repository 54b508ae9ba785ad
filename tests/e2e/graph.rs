//! The pipeline graph at run time: a receiver shared by pipelines fans out, an exporter shared
//! by pipelines fans in, and a connector carries one pipeline's output into another.

use lumina_sdk::Signal;
use lumina_sdk::testkit;

use crate::harness::{Collector, count, http, read_jsonl};

#[tokio::test(flavor = "multi_thread")]
async fn fan_out_fan_in_and_connectors_route_every_batch() {
    let config = "
receivers:
  otlp: { protocols: { http: { endpoint: '127.0.0.1:{http}' } } }
processors:
  batch: { timeout: 50ms }
connectors:
  forward:
exporters:
  file/all: { path: '{dir}/all.jsonl' }
  file/copied: { path: '{dir}/copied.jsonl' }
service:
  pipelines:
    logs/a: { receivers: [otlp], processors: [batch], exporters: [file/all, forward] }
    logs/b: { receivers: [otlp], exporters: [file/all] }
    logs/c: { receivers: [forward], exporters: [file/copied] }
    traces: { receivers: [otlp], exporters: [file/all] }
";
    let c = Collector::start(config).await;
    let post = |path: &str, body: Vec<u8>| {
        http()
            .post(format!("http://127.0.0.1:{}{path}", c.http))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
    };
    assert_eq!(
        post("/v1/logs", testkit::logs(1, 3).encode_protobuf())
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        post("/v1/traces", testkit::traces(1, 2).encode_protobuf())
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        post("/v1/metrics", testkit::metrics(1, 1).encode_protobuf())
            .await
            .unwrap()
            .status(),
        404,
        "no metrics pipeline"
    );
    assert_eq!(
        c.metric(
            "lumina_processor_incoming_items_total",
            &[("pipeline", "logs/a")]
        )
        .await,
        3.0
    );
    let stopped = c.stop().await;
    stopped.assert_clean();
    let all = read_jsonl(&stopped.path("all.jsonl"));
    assert_eq!(
        count(&all, Signal::Logs),
        6,
        "logs/a and logs/b each deliver the 3 records to the shared exporter"
    );
    assert_eq!(count(&all, Signal::Traces), 2);
    let copied = read_jsonl(&stopped.path("copied.jsonl"));
    assert_eq!(
        count(&copied, Signal::Logs),
        3,
        "the connector carried logs/a's output into logs/c"
    );
    assert_eq!(
        copied
            .iter()
            .flat_map(testkit::item_ids)
            .collect::<Vec<_>>(),
        vec!["0", "1", "2"]
    );
}
