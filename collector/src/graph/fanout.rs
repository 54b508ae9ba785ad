//! Fan-out: one batch to several consumers at once. Each gets the same shared batch (no
//! copy); they run concurrently, so one consumer that waits (a full queue) does not hold back
//! the delivery to the others.

use async_trait::async_trait;
use lumina_sdk::Batch;
use lumina_sdk::component::{Accepted, ConsumeError, Consumer, DynConsumer};

/// Sends every batch to all of its consumers.
pub struct Fanout(Vec<DynConsumer>);

impl Fanout {
    /// A consumer that feeds all of `consumers`; a single consumer is returned as it is.
    pub fn of(mut consumers: Vec<DynConsumer>) -> DynConsumer {
        if consumers.len() == 1
            && let Some(only) = consumers.pop()
        {
            return only;
        }
        std::sync::Arc::new(Fanout(consumers))
    }
}

#[async_trait]
impl Consumer for Fanout {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        let results =
            futures::future::join_all(self.0.iter().map(|c| c.consume(batch.clone()))).await;
        let mut out: Result<Accepted, ConsumeError> = Ok(Accepted::all());
        for r in results {
            out = match (out, r) {
                (Ok(a), Ok(b)) => Ok(a.combine(b)),
                (Err(a), Err(b)) => Err(a.worse(b)),
                (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
            };
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use lumina_sdk::testkit::{self, CollectingConsumer, FailingConsumer};

    use super::*;

    #[tokio::test]
    async fn every_consumer_gets_the_batch_and_a_retryable_error_wins() {
        let a = Arc::new(CollectingConsumer::new());
        let b = Arc::new(CollectingConsumer::new());
        let full = ConsumeError::Backpressure {
            component: "x".into(),
            retry_after: Duration::from_secs(1),
        };
        let f = Fanout::of(vec![
            a.clone(),
            Arc::new(FailingConsumer(full.clone())),
            b.clone(),
        ]);
        assert_eq!(f.consume(testkit::logs(1, 3)).await, Err(full));
        assert_eq!(
            (a.items(), b.items()),
            (3, 3),
            "the healthy consumers still got it"
        );
    }

    #[tokio::test]
    async fn a_consumer_that_waits_does_not_hold_back_the_others() {
        struct Stuck;
        #[async_trait]
        impl Consumer for Stuck {
            async fn consume(&self, _b: Batch) -> Result<Accepted, ConsumeError> {
                futures::future::pending().await
            }
        }
        let fast = Arc::new(CollectingConsumer::new());
        let f = Fanout::of(vec![Arc::new(Stuck), fast.clone()]);
        let task = tokio::spawn(async move { f.consume(testkit::logs(1, 2)).await });
        assert!(fast.wait_for_items(2, Duration::from_secs(5)).await);
        task.abort();
    }
}
