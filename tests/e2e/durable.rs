//! Durable sending queues: what a receiver acknowledged is on disk, survives `kill -9`, and is
//! delivered after the restart, each record once.
//!
//! The sender is a plain tonic client, not the `opentelemetry-otlp` exporter (which
//! `tests/e2e/clients.rs` uses): these assertions need each request's own reply (its status,
//! `RetryInfo`, which records were acknowledged), and the official exporter reports only an
//! opaque error per batch, behind its batch processor.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::harness::{Collector, free_port, logs_client, logs_request, sink, wait_for};

/// OTLP/gRPC in, one `otlp` exporter to `127.0.0.1:sink_port` with a durable queue (plus the
/// `queue` settings), retrying forever; `processor`, if any, goes first in the pipeline.
fn config(sink_port: u16, queue: &str, processor: &str) -> String {
    let (section, list) = if processor.is_empty() {
        (String::new(), String::new())
    } else {
        let name = processor.split(':').next().unwrap_or_default();
        (
            format!("processors:\n  {processor}\n"),
            format!("processors: [{name}], "),
        )
    };
    format!(
        "
receivers:
  otlp: {{ protocols: {{ grpc: {{ endpoint: '127.0.0.1:{{grpc}}' }} }} }}
{section}exporters:
  otlp:
    endpoint: 127.0.0.1:{sink_port}
    tls: {{ insecure: true }}
    compression: none
    timeout: 200ms
    retry_on_failure: {{ initial_interval: 50ms, max_interval: 200ms, max_elapsed_time: 0 }}
    sending_queue: {{ storage: '{{dir}}/queue'{queue} }}
service:
  pipelines:
    logs: {{ receivers: [otlp], {list}exporters: [otlp] }}
"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_data_in_a_durable_queue_survives_kill_9_and_is_delivered_after_restart() {
    let sink_port = free_port();
    let config = config(sink_port, "", "");
    let mut c = Collector::start(&config).await;
    // The destination is down: every batch the collector acknowledges is only in its queue.
    let mut client = logs_client(c.grpc).await;
    for i in 0..20 {
        client.export(logs_request(i * 10, 10, 0)).await.unwrap();
    }
    assert!(c.path("queue/otlp.redb").exists());
    c.kill_and_restart().await;
    let (_, received, _stop) = sink::start_on(sink_port).await;
    let want: BTreeSet<String> = (0..200).map(|i| i.to_string()).collect();
    wait_for(Duration::from_secs(30), || {
        let got: BTreeSet<String> = received.seqs().into_iter().collect();
        if got == want {
            Ok(())
        } else {
            Err(format!(
                "{} of {} records arrived; log:\n{}",
                got.len(),
                want.len(),
                c.log()
            ))
        }
    })
    .await;
    // Delivered batches are removed from the queue: a graceful stop and start sends nothing
    // again. A marker record sent after the restart, delivered behind whatever the queue held,
    // and an empty queue then, show that nothing else was left to send.
    c.stop_and_restart().await;
    let mut client = logs_client(c.grpc).await;
    client.export(logs_request(200, 1, 0)).await.unwrap();
    crate::harness::wait_for_async(Duration::from_secs(30), || async {
        let marker = received.seqs().contains(&"200".to_owned());
        let queued = c
            .metric("lumina_exporter_queue_size", &[("component", "otlp")])
            .await;
        if marker && queued == 0.0 {
            Ok(())
        } else {
            Err(format!(
                "marker arrived: {marker}, queued: {queued}; log:\n{}",
                c.log()
            ))
        }
    })
    .await;
    let stopped = c.stop().await;
    stopped.assert_clean();
    assert_eq!(received.seqs().len(), 201, "a record arrived twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_under_steady_load_loses_no_acknowledged_record() {
    let (sink_port, received, _stop_sink) = sink::start().await;
    let config = config(sink_port, ", num_consumers: 2", "");
    let mut c = Collector::start(&config).await;
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<usize>::new()));
    let port = c.grpc;
    let sender = {
        let acked = acked.clone();
        tokio::spawn(async move {
            let mut client = logs_client(port).await;
            for i in 0..300 {
                // Requests cut off by the kill are not acknowledged; they may or may not arrive.
                if client.export(logs_request(i * 10, 10, 0)).await.is_ok() {
                    acked.lock().unwrap().push(i);
                }
            }
        })
    };
    wait_for(Duration::from_secs(30), || {
        let n = acked.lock().unwrap().len();
        if n >= 60 {
            Ok(())
        } else {
            Err(format!("{n} requests acknowledged"))
        }
    })
    .await;
    assert!(!sender.is_finished(), "the load ended before the kill");
    c.kill_and_restart().await;
    sender.await.unwrap();
    let acked: BTreeSet<String> = acked
        .lock()
        .unwrap()
        .iter()
        .flat_map(|i| (i * 10..i * 10 + 10).map(|s| s.to_string()))
        .collect();
    wait_for(Duration::from_secs(60), || {
        let got: BTreeSet<String> = received.seqs().into_iter().collect();
        let missing = acked.difference(&got).count();
        if missing == 0 {
            Ok(())
        } else {
            Err(format!("{missing} acknowledged records missing"))
        }
    })
    .await;
    c.stop().await.assert_clean();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_destination_down_spools_to_disk_within_the_memory_limit_and_loses_nothing() {
    let sink_port = free_port();
    let config = config(
        sink_port,
        ", queue_size: 100000, fsync: never",
        "memory_limiter: { limit: 256MiB, spike_limit: 64MiB, check_interval: 100ms }",
    );
    let c = Collector::start(&config).await;
    // The destination is down while 40 MB of logs come in; every request is retried until
    // the collector acknowledges it. `LUMINA_FAULT_REQUESTS` makes it a longer fault run
    // (docs/reliability.md records one).
    let requests: usize = std::env::var("LUMINA_FAULT_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(80);
    let (records, body) = (500, 1024);
    let started = std::time::Instant::now();
    let mut client = logs_client(c.grpc).await;
    let mut peak = c.rss_kib();
    for i in 0..requests {
        loop {
            match client
                .export(logs_request(i * records, records, body))
                .await
            {
                Ok(_) => break,
                Err(s) => {
                    // A refusal: back off as the collector asks, like a real client.
                    assert_eq!(s.code(), tonic::Code::Unavailable, "{s:?}");
                    let delay = tonic_types::StatusExt::get_details_retry_info(&s)
                        .and_then(|r| r.retry_delay)
                        .unwrap_or(Duration::from_millis(100));
                    tokio::time::sleep(delay.min(Duration::from_secs(1))).await;
                }
            }
        }
        peak = peak.max(c.rss_kib());
    }
    assert!(
        peak < 256 * 1024,
        "resident memory reached {peak} KiB, over the 256 MiB limit"
    );
    let outage = started.elapsed();
    // The destination comes back: everything acknowledged arrives.
    let (_, received, _stop) = sink::start_on(sink_port).await;
    let total = requests * records;
    // At least once: a send that timed out may arrive twice, so distinct records are counted.
    wait_for(Duration::from_secs(300), || {
        let n = received.seqs().into_iter().collect::<BTreeSet<_>>().len();
        if n == total {
            Ok(())
        } else {
            Err(format!("{n} of {total} records delivered"))
        }
    })
    .await;
    if std::env::var_os("LUMINA_FAULT_REQUESTS").is_some() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "fault run: {requests} requests, {total} records, outage {outage:.0?}, all delivered {:.0?} later, peak RSS {peak} KiB",
            started.elapsed() - outage
        );
    }
    c.stop().await.assert_clean();
}
