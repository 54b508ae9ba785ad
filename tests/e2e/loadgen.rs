//! The load generator's own accounting, against the real collector: every record it reports as
//! accepted is in the `file` exporter's output exactly once, and a loss is reported as one.

use std::collections::BTreeMap;
use std::time::Duration;

use lumina_loadgen::{LoadConfig, PayloadSpec, Protocol, Shape, Stop, run};
use lumina_sdk::Signal;

use crate::harness::{Collector, free_port, read_jsonl};

fn config(endpoint: String, protocol: Protocol, shape: Shape, requests: u64) -> LoadConfig {
    LoadConfig {
        endpoint,
        protocol,
        payload: PayloadSpec {
            signal: Signal::Logs,
            shape,
            batch_size: 250,
            attrs: 4,
            body_bytes: 32,
        },
        concurrency: 4,
        rate: None,
        stop: Stop::Requests(requests),
        unique: true,
        give_up_after: Duration::from_secs(30),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn records_sent_equal_records_received() {
    let c = Collector::start(crate::clients::PASS_THROUGH).await;
    let grpc = run(config(
        format!("127.0.0.1:{}", c.grpc),
        Protocol::Grpc,
        Shape::Voice,
        40,
    ))
    .await
    .unwrap();
    let http = run(config(
        format!("127.0.0.1:{}", c.http),
        Protocol::Http,
        Shape::Generic,
        40,
    ))
    .await
    .unwrap();
    let stopped = c.stop().await;
    stopped.assert_clean();
    for r in [&grpc, &http] {
        assert_eq!(r.records_accepted, 10_000, "{r}");
        assert!(!r.lost_anything(), "{r}");
    }
    // Both runs numbered their records 0..10000, so each seq arrives exactly twice.
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for b in read_jsonl(&stopped.path("out.jsonl")) {
        for id in lumina_sdk::testkit::item_ids(&b) {
            *seen.entry(id.parse().unwrap()).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 10_000);
    assert!(
        seen.values().all(|n| *n == 2),
        "every record of both runs arrived once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn records_that_are_never_accepted_are_reported_lost() {
    let dead = free_port();
    let config_yaml = format!(
        "
receivers: {{ otlp: {{ protocols: {{ grpc: {{ endpoint: '127.0.0.1:{{grpc}}' }} }} }} }}
exporters:
  otlp:
    endpoint: 127.0.0.1:{dead}
    tls: {{ insecure: true }}
    sending_queue: {{ queue_size: 1, num_consumers: 1, block_timeout: 50ms }}
    retry_on_failure: {{ initial_interval: 1s, max_elapsed_time: 0 }}
service:
  pipelines: {{ logs: {{ receivers: [otlp], exporters: [otlp] }} }}
"
    );
    let c = Collector::start(&config_yaml).await;
    let mut cfg = config(
        format!("127.0.0.1:{}", c.grpc),
        Protocol::Grpc,
        Shape::Generic,
        6,
    );
    cfg.concurrency = 1;
    cfg.give_up_after = Duration::from_millis(300);
    let r = run(cfg).await.unwrap();
    assert!(r.refusals > 0, "{r}");
    assert_eq!(r.records_accepted + r.records_lost, 6 * 250, "{r}");
    assert!(
        r.records_lost >= 4 * 250,
        "once the queue is full every request is given up: {r}"
    );
    assert!(r.lost_anything());
}
