//! A dead exporter: clients get retryable errors, memory stays bounded, the metrics show what
//! was refused, and a second exporter in the same pipeline keeps delivering.
//!
//! The sender is a plain tonic client, not the `opentelemetry-otlp` exporter (which
//! `tests/e2e/clients.rs` uses): these assertions need each request's own reply (its status,
//! `RetryInfo`, which records were acknowledged), and the official exporter reports only an
//! opaque error per batch, behind its batch processor.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::harness::{Collector, free_port, logs_client, logs_request, sink, wait_until};
use tonic::Code;
use tonic_types::StatusExt;

const REQUESTS: usize = 400;
const RECORDS: usize = 500;
const BODY: usize = 1024;

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_exporter_refuses_retryably_without_stalling_the_other_or_growing_memory() {
    let (sink_port, received, _stop_sink) = sink::start().await;
    let dead = free_port();
    let config = format!(
        "
receivers:
  otlp: {{ protocols: {{ grpc: {{ endpoint: '127.0.0.1:{{grpc}}', max_recv_msg_size_mib: 64 }} }} }}
exporters:
  otlp/dead:
    endpoint: 127.0.0.1:{dead}
    tls: {{ insecure: true }}
    compression: none
    timeout: 200ms
    sending_queue: {{ queue_size: 4, num_consumers: 1, block_timeout: 100ms }}
    retry_on_failure: {{ initial_interval: 50ms, max_interval: 200ms, max_elapsed_time: 0 }}
  otlp/alive:
    endpoint: 127.0.0.1:{sink_port}
    tls: {{ insecure: true }}
    compression: none
    sending_queue: {{ queue_size: 8, num_consumers: 4 }}
service:
  pipelines:
    logs: {{ receivers: [otlp], exporters: [otlp/dead, otlp/alive] }}
"
    );
    let c = Collector::start(&config).await;
    let baseline = c.rss_kib();
    let (ok, refused, without_retry_info) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let mut peak = baseline;
    let senders: Vec<_> = (0..8)
        .map(|_| {
            let (ok, refused, without_retry_info, next) = (
                ok.clone(),
                refused.clone(),
                without_retry_info.clone(),
                next.clone(),
            );
            let port = c.grpc;
            tokio::spawn(async move {
                let mut client = logs_client(port).await;
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= REQUESTS {
                        return;
                    }
                    match client
                        .export(logs_request(i * RECORDS, RECORDS, BODY))
                        .await
                    {
                        Ok(_) => ok.fetch_add(1, Ordering::SeqCst),
                        Err(s) => {
                            assert_eq!(s.code(), Code::Unavailable, "unexpected status: {s:?}");
                            if s.get_details_retry_info()
                                .and_then(|r| r.retry_delay)
                                .is_none()
                            {
                                without_retry_info.fetch_add(1, Ordering::SeqCst);
                            }
                            refused.fetch_add(1, Ordering::SeqCst)
                        }
                    };
                }
            })
        })
        .collect();
    let all = futures::future::join_all(senders);
    tokio::pin!(all);
    loop {
        tokio::select! {
            r = &mut all => { r.into_iter().for_each(|r| r.unwrap()); break; }
            _ = tokio::time::sleep(Duration::from_millis(100)) => peak = peak.max(c.rss_kib()),
        }
    }
    peak = peak.max(c.rss_kib());
    let (ok, refused) = (ok.load(Ordering::SeqCst), refused.load(Ordering::SeqCst));
    assert_eq!(ok + refused, REQUESTS);
    assert!(
        refused > REQUESTS / 2,
        "most requests must be refused once the dead exporter's queue is full ({refused} of {REQUESTS})"
    );
    assert_eq!(
        without_retry_info.load(Ordering::SeqCst),
        0,
        "every refusal carries RetryInfo"
    );

    // The live exporter got every record, refused requests included (it had taken them).
    let total = REQUESTS * RECORDS;
    wait_until(
        Duration::from_secs(60),
        "the live exporter to deliver everything",
        || received.seqs().len() >= total,
    )
    .await;
    let got: BTreeSet<usize> = received.seqs().iter().map(|s| s.parse().unwrap()).collect();
    assert_eq!(got.len(), total, "each record exactly once");
    assert_eq!(got, (0..total).collect::<BTreeSet<_>>());

    // The metrics account for every refused record, and the dead queue is full but bounded.
    let refused_items = (refused * RECORDS) as f64;
    assert_eq!(
        c.metric(
            "lumina_receiver_refused_items_total",
            &[("component", "otlp"), ("reason", "backpressure")]
        )
        .await,
        refused_items
    );
    assert_eq!(
        c.metric(
            "lumina_exporter_refused_items_total",
            &[("component", "otlp/dead"), ("reason", "queue_full")]
        )
        .await,
        refused_items
    );
    assert_eq!(
        c.metric(
            "lumina_receiver_accepted_items_total",
            &[("component", "otlp")]
        )
        .await,
        (ok * RECORDS) as f64
    );
    assert_eq!(
        c.metric("lumina_exporter_queue_size", &[("component", "otlp/dead")])
            .await,
        4.0
    );
    assert_eq!(
        c.metric(
            "lumina_exporter_sent_items_total",
            &[("component", "otlp/alive")]
        )
        .await,
        total as f64
    );
    // The same counts under the OpenTelemetry Collector's names, with its labels.
    for (name, labels, want) in [
        (
            "otelcol_receiver_refused_log_records_total",
            [("receiver", "otlp"), ("transport", "grpc")],
            refused_items,
        ),
        (
            "otelcol_receiver_accepted_log_records_total",
            [("receiver", "otlp"), ("transport", "grpc")],
            (ok * RECORDS) as f64,
        ),
    ] {
        assert_eq!(c.metric(name, &labels).await, want, "{name}");
    }
    for (name, exporter, want) in [
        (
            "otelcol_exporter_enqueue_failed_log_records_total",
            "otlp/dead",
            refused_items,
        ),
        ("otelcol_exporter_queue_size", "otlp/dead", 4.0),
        ("otelcol_exporter_queue_capacity", "otlp/dead", 4.0),
        (
            "otelcol_exporter_sent_log_records_total",
            "otlp/alive",
            total as f64,
        ),
    ] {
        assert_eq!(
            c.metric(name, &[("exporter", exporter)]).await,
            want,
            "{name}"
        );
    }

    // ~400 MB went through; the collector held a few batches of it at a time.
    let growth_mib = peak.saturating_sub(baseline) / 1024;
    assert!(
        growth_mib < 150,
        "memory grew by {growth_mib} MiB (baseline {} MiB, peak {} MiB)",
        baseline / 1024,
        peak / 1024
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn under_its_memory_budget_the_collector_accepts_and_over_it_refuses_retryably() {
    // Two budgets on one process, measured alike: one far above what it uses, one below.
    let roomy = free_port();
    let c = Collector::start(&format!(
        "
receivers:
  otlp: {{ protocols: {{ grpc: {{ endpoint: '127.0.0.1:{{grpc}}' }}, http: {{ endpoint: '127.0.0.1:{{http}}' }} }} }}
  otlp/roomy: {{ protocols: {{ grpc: {{ endpoint: '127.0.0.1:{roomy}' }} }} }}
processors:
  memory_limiter/tight: {{ limit: 2MiB, spike_limit: 1MiB, check_interval: 100ms }}
  memory_limiter/roomy: {{ limit: 16GiB, check_interval: 100ms }}
exporters:
  file: {{ path: '{{dir}}/out.jsonl' }}
  file/roomy: {{ path: '{{dir}}/roomy.jsonl' }}
service:
  pipelines:
    logs: {{ receivers: [otlp], processors: [memory_limiter/tight], exporters: [file] }}
    logs/roomy: {{ receivers: [otlp/roomy], processors: [memory_limiter/roomy], exporters: [file/roomy] }}
"
    ))
    .await;
    // Under its budget: taken and delivered.
    let mut under = logs_client(roomy).await;
    under.export(logs_request(100, 5, 0)).await.unwrap();
    // Over it (any process is over 1 MiB resident): refused, with a retryable status.
    let mut client = logs_client(c.grpc).await;
    let status = client.export(logs_request(0, 5, 0)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let r = crate::harness::http()
        .post(format!("http://127.0.0.1:{}/v1/logs", c.http))
        .header("content-type", "application/json")
        .body(serde_json::to_string(&logs_request(5, 5, 0)).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        c.metric(
            "lumina_receiver_refused_items_total",
            &[
                ("component", "memory_limiter/tight"),
                ("reason", "memory_limit")
            ]
        )
        .await,
        10.0
    );
    assert_eq!(
        c.metric(
            "lumina_receiver_refused_items_total",
            &[
                ("component", "memory_limiter/roomy"),
                ("reason", "memory_limit")
            ]
        )
        .await,
        0.0
    );
    let stopped = c.stop().await;
    stopped.assert_clean();
    assert!(crate::harness::read_jsonl(&stopped.path("out.jsonl")).is_empty());
    assert_eq!(
        crate::harness::read_jsonl(&stopped.path("roomy.jsonl"))
            .iter()
            .flat_map(lumina_sdk::testkit::item_ids)
            .count(),
        5,
        "what came in under the budget was delivered"
    );
}
