//! Counting wrappers the host puts around components, so every component's accepted,
//! refused, incoming and outgoing items are measured the same way.

use std::sync::Arc;

use async_trait::async_trait;
use lumina_sdk::component::{Accepted, ConsumeError, Consumer, DynConsumer};
use lumina_sdk::telemetry::{ComponentTelemetry, names};
use lumina_sdk::{Batch, Signal};
use metrics::Counter;

/// Counts what a receiver hands to its pipelines: accepted, and refused by reason.
pub struct ReceiverOutput {
    inner: DynConsumer,
    telemetry: ComponentTelemetry,
    signal: Signal,
    accepted: Counter,
}

impl ReceiverOutput {
    /// Wraps `inner` for the receiver `telemetry` names, for `signal`.
    pub fn wrap(inner: DynConsumer, telemetry: ComponentTelemetry, signal: Signal) -> DynConsumer {
        let accepted =
            telemetry.counter(names::RECEIVER_ACCEPTED, &[("signal", signal.to_string())]);
        Arc::new(Self {
            inner,
            telemetry,
            signal,
            accepted,
        })
    }

    fn refused(&self, reason: &'static str, n: u64) {
        self.telemetry
            .counter(
                names::RECEIVER_REFUSED,
                &[
                    ("signal", self.signal.to_string()),
                    ("reason", reason.to_owned()),
                ],
            )
            .increment(n);
    }
}

#[async_trait]
impl Consumer for ReceiverOutput {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        let n = batch.len() as u64;
        let r = self.inner.consume(batch).await;
        match &r {
            Ok(a) => {
                let rejected = a.rejected.min(n);
                self.accepted.increment(n - rejected);
                if rejected > 0 {
                    self.refused("invalid", rejected);
                }
            }
            Err(e) => self.refused(e.reason(), n),
        }
        r
    }
}

/// Counts items going into (or out of) a processor.
pub struct Counted {
    inner: DynConsumer,
    counter: Counter,
}

impl Counted {
    /// Wraps `inner`, counting every item it is given into `counter`.
    pub fn wrap(inner: DynConsumer, counter: Counter) -> DynConsumer {
        Arc::new(Self { inner, counter })
    }
}

#[async_trait]
impl Consumer for Counted {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        self.counter.increment(batch.len() as u64);
        self.inner.consume(batch).await
    }
}
