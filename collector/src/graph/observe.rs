//! Counting wrappers the host puts around components, so every component's accepted,
//! refused, incoming and outgoing items are measured the same way.

use std::sync::Arc;

use async_trait::async_trait;
use lumina_sdk::component::{Accepted, ConsumeError, Consumer, DynConsumer};
use lumina_sdk::telemetry::{self, ComponentTelemetry, names};
use lumina_sdk::{Batch, Signal};
use metrics::Counter;

use crate::tap::{self, Direction, TapPoint};

/// Counts what a receiver hands to its pipelines: accepted, and refused by reason, labelled
/// with the transport the receiver took it in on when it said (`grpc`, `http`).
pub struct ReceiverOutput {
    inner: DynConsumer,
    telemetry: ComponentTelemetry,
    signal: Signal,
    /// Accepted, without a transport, over gRPC and over HTTP.
    accepted: [Counter; 3],
    tap: Arc<TapPoint>,
}

impl ReceiverOutput {
    /// Wraps `inner` for the receiver `telemetry` names, for `signal`.
    pub fn wrap(inner: DynConsumer, telemetry: ComponentTelemetry, signal: Signal) -> DynConsumer {
        let accepted = [None, Some("grpc"), Some("http")]
            .map(|t| telemetry.counter(names::RECEIVER_ACCEPTED, &labels(signal, None, t)));
        let tap = TapPoint::new(
            &telemetry.id(),
            telemetry.kind(),
            "",
            Direction::Output,
            signal,
        );
        Arc::new(Self {
            inner,
            telemetry,
            signal,
            accepted,
            tap,
        })
    }

    fn accepted(&self, transport: Option<&'static str>, n: u64) {
        match transport {
            None => self.accepted[0].increment(n),
            Some("grpc") => self.accepted[1].increment(n),
            Some("http") => self.accepted[2].increment(n),
            Some(t) => self
                .telemetry
                .counter(
                    names::RECEIVER_ACCEPTED,
                    &labels(self.signal, None, Some(t)),
                )
                .increment(n),
        }
    }

    fn refused(&self, reason: &'static str, transport: Option<&'static str>, n: u64) {
        self.telemetry
            .counter(
                names::RECEIVER_REFUSED,
                &labels(self.signal, Some(reason), transport),
            )
            .increment(n);
    }
}

fn labels(
    signal: Signal,
    reason: Option<&'static str>,
    transport: Option<&'static str>,
) -> Vec<(&'static str, String)> {
    let mut v = vec![("signal", signal.to_string())];
    if let Some(r) = reason {
        v.push(("reason", r.to_owned()));
    }
    if let Some(t) = transport {
        v.push(("transport", t.to_owned()));
    }
    v
}

#[async_trait]
impl Consumer for ReceiverOutput {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        let n = batch.len() as u64;
        let transport = telemetry::current_transport();
        tap::hub().offer(&self.tap, &batch);
        let r = self.inner.consume(batch).await;
        match &r {
            Ok(a) => {
                let rejected = a.rejected.min(n);
                self.accepted(transport, n - rejected);
                if rejected > 0 {
                    self.refused("invalid", transport, rejected);
                }
            }
            Err(e) => self.refused(e.reason(), transport, n),
        }
        r
    }
}

/// Counts items going into (or out of) a processor, and offers them to its taps.
pub struct Counted {
    inner: DynConsumer,
    counter: Counter,
    tap: Arc<TapPoint>,
}

impl Counted {
    /// Wraps `inner`, counting every item it is given into `counter`; `tap` is where it is.
    pub fn wrap(inner: DynConsumer, counter: Counter, tap: Arc<TapPoint>) -> DynConsumer {
        Arc::new(Self {
            inner,
            counter,
            tap,
        })
    }
}

#[async_trait]
impl Consumer for Counted {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        self.counter.increment(batch.len() as u64);
        tap::hub().offer(&self.tap, &batch);
        self.inner.consume(batch).await
    }
}
