//! SIGTERM with data in flight: everything the receiver acknowledged reaches the file.
//!
//! The sender is a plain tonic client, not the `opentelemetry-otlp` exporter (which
//! `tests/e2e/clients.rs` uses): these assertions need each request's own reply (its status,
//! `RetryInfo`, which records were acknowledged), and the official exporter reports only an
//! opaque error per batch, behind its batch processor.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::{Collector, logs_client, logs_request, read_jsonl, wait_until};
use lumina_sdk::Signal;

#[tokio::test(flavor = "multi_thread")]
async fn everything_acknowledged_before_sigterm_reaches_the_file() {
    let config = "
receivers:
  otlp: { protocols: { grpc: { endpoint: '127.0.0.1:{grpc}' } } }
processors:
  batch: { send_batch_size: 100000, timeout: 500ms }
exporters:
  file: { path: '{dir}/out.jsonl' }
service:
  pipelines:
    logs: { receivers: [otlp], processors: [batch], exporters: [file] }
";
    let c = Collector::start(config).await;
    let acked: Arc<Mutex<Vec<usize>>> = Arc::default();
    let senders: Vec<_> = (0..8)
        .map(|t| {
            let (acked, port) = (acked.clone(), c.grpc);
            tokio::spawn(async move {
                let mut client = logs_client(port).await;
                let mut n = 0;
                loop {
                    let first = t * 1_000_000 + n * 50;
                    match client.export(logs_request(first, 50, 0)).await {
                        Ok(_) => acked.lock().unwrap().extend(first..first + 50),
                        // Refused or cut off by the shutdown: not acknowledged, so not owed.
                        Err(_) => return n,
                    }
                    n += 1;
                }
            })
        })
        .collect();
    // Once traffic flows (requests wait up to 500 ms in the batch processor), stop.
    wait_until(Duration::from_secs(30), "2000 acknowledged records", || {
        acked.lock().unwrap().len() >= 2000
    })
    .await;
    let before = acked.lock().unwrap().len();
    let stopped = c.stop().await;
    for s in senders {
        s.await.unwrap();
    }
    stopped.assert_clean();
    let acked: BTreeSet<usize> = acked.lock().unwrap().iter().copied().collect();
    assert!(
        acked.len() > before,
        "requests in flight at SIGTERM were completed and acknowledged ({before} → {})",
        acked.len()
    );
    let batches = read_jsonl(&stopped.path("out.jsonl"));
    let written: BTreeSet<usize> = batches
        .iter()
        .flat_map(lumina_sdk::testkit::item_ids)
        .map(|s| s.parse().unwrap())
        .collect();
    let missing: Vec<_> = acked.difference(&written).take(10).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not written: {missing:?} (of {} acknowledged)\n{}",
        acked.len(),
        stopped.log
    );
    assert_eq!(
        crate::harness::count(&batches, Signal::Logs),
        written.len(),
        "nothing written twice"
    );
}
