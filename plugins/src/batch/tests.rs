use std::sync::Arc;
use std::time::Duration as StdDuration;

use lumina_sdk::Batch;
use lumina_sdk::component::{ConsumeError, Consumer, Processor};
use lumina_sdk::testkit::{self, CollectingConsumer, FailingConsumer};

use super::*;
use lumina_sdk::config::Duration;

fn processor(size: u32, max: u32, timeout_ms: u64, next: Arc<dyn Consumer>) -> Arc<BatchProcessor> {
    let cfg = BatchConfig {
        send_batch_size: size,
        send_batch_max_size: max,
        timeout: Duration::from_millis(timeout_ms),
    };
    Arc::new(BatchProcessor::new(cfg, "batch".into(), next))
}

#[tokio::test(start_paused = true)]
async fn merges_until_the_size_is_reached_and_answers_every_sender() {
    let sink = Arc::new(CollectingConsumer::new());
    let p = processor(10, 0, 60_000, sink.clone());
    let a = tokio::spawn({
        let p = p.clone();
        async move { p.consume(testkit::logs_from(0, 1, 5)).await }
    });
    let b = tokio::spawn({
        let p = p.clone();
        async move { p.consume(testkit::logs_from(5, 1, 5)).await }
    });
    assert!(a.await.unwrap().is_ok());
    assert!(b.await.unwrap().is_ok());
    let batches = sink.batches();
    assert_eq!(batches.len(), 1, "two batches of 5 become one of 10");
    assert_eq!(batches[0].len(), 10);
    let mut ids = sink.item_ids();
    ids.sort_by_key(|s| s.parse::<u32>().unwrap());
    assert_eq!(ids, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn sends_what_waits_when_the_timeout_passes() {
    let sink = Arc::new(CollectingConsumer::new());
    let p = processor(1000, 0, 200, sink.clone());
    let started = tokio::time::Instant::now();
    p.consume(testkit::logs(1, 3)).await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= StdDuration::from_millis(200) && waited < StdDuration::from_millis(400),
        "{waited:?}"
    );
    assert_eq!(sink.items(), 3);
}

#[tokio::test(start_paused = true)]
async fn splits_batches_over_the_max_size() {
    let sink = Arc::new(CollectingConsumer::new());
    let p = processor(4, 4, 200, sink.clone());
    p.consume(testkit::logs(2, 5)).await.unwrap();
    let sizes: Vec<usize> = sink.batches().iter().map(Batch::len).collect();
    assert_eq!(sizes, vec![4, 4, 2]);
    assert_eq!(sink.item_ids(), testkit::item_ids(&testkit::logs(2, 5)));
}

#[tokio::test(start_paused = true)]
async fn downstream_errors_reach_every_sender() {
    let full = ConsumeError::Backpressure {
        component: "exporter x".into(),
        retry_after: StdDuration::from_secs(2),
    };
    let p = processor(6, 0, 60_000, Arc::new(FailingConsumer(full.clone())));
    let a = tokio::spawn({
        let p = p.clone();
        async move { p.consume(testkit::logs(1, 3)).await }
    });
    let b = tokio::spawn({
        let p = p.clone();
        async move { p.consume(testkit::logs(1, 3)).await }
    });
    assert_eq!(a.await.unwrap(), Err(full.clone()));
    assert_eq!(b.await.unwrap(), Err(full));
}

#[tokio::test(start_paused = true)]
async fn shutdown_sends_what_is_waiting_before_returning() {
    let sink = Arc::new(CollectingConsumer::new());
    let p = processor(1000, 0, 3_600_000, sink.clone());
    let pending = tokio::spawn({
        let p = p.clone();
        async move { p.consume(testkit::metrics(1, 3)).await }
    });
    // Wait until the batch is held (the sender's task has reached the batcher).
    while p.waiting().await == 0 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        sink.items(),
        0,
        "nothing is sent before the size or timeout is reached"
    );
    p.shutdown().await.unwrap();
    assert_eq!(sink.items(), 3 * testkit::POINTS_PER_METRIC);
    assert!(pending.await.unwrap().is_ok());
}

#[test]
fn max_size_below_size_is_a_config_error() {
    let v =
        lumina_sdk::config::parse_yaml("send_batch_size: 100\nsend_batch_max_size: 10\n", "b.yaml")
            .unwrap();
    let e = lumina_sdk::component::processor::<BatchConfig>()
        .validate(&v)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "b.yaml:2:22: send_batch_max_size: 10 is below send_batch_size (100) (make it at least send_batch_size, or 0 for no limit)"
    );
}
