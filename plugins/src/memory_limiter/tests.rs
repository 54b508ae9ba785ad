use super::*;
use lumina_sdk::testkit::{self, CollectingConsumer};

async fn limiter(yaml: &str) -> (Arc<dyn Processor>, Arc<CollectingConsumer>) {
    let next = Arc::new(CollectingConsumer::new());
    let v = lumina_sdk::config::parse_yaml(yaml, "t").unwrap();
    let ctx = CreateContext::new("memory_limiter".parse().unwrap(), ComponentKind::Processor);
    let p = lumina_sdk::component::processor::<MemoryLimiterConfig>()
        .create(&v, ctx, Signal::Logs, next.clone())
        .await
        .unwrap();
    (p, next)
}

#[tokio::test]
async fn over_the_budget_batches_are_refused_retryably_and_under_it_they_pass() {
    assert!(resident_bytes() > 1 << 20, "resident memory is readable");
    let (tight, _) = limiter("limit: 1MiB").await;
    let err = tight.consume(testkit::logs(1, 3)).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(matches!(err, ConsumeError::Backpressure { .. }));
    let (roomy, next) = limiter("limit: 64GiB").await;
    roomy.consume(testkit::logs(1, 3)).await.unwrap();
    assert_eq!(next.items(), 3);
}

#[test]
fn the_spike_limit_must_leave_room() {
    let v = lumina_sdk::config::parse_yaml("limit: 100MiB\nspike_limit: 200MiB", "t").unwrap();
    let e = lumina_sdk::component::processor::<MemoryLimiterConfig>()
        .validate(&v)
        .unwrap_err()
        .to_string();
    assert!(e.contains("spike_limit: must be less than `limit`"), "{e}");
}
