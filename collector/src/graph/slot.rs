//! A consumer whose target can be replaced while batches flow through it. Every edge of the
//! graph that a config reload may change runs through one: a pipeline's entry, a processor's
//! output and a receiver's output per signal. A reload builds the new parts, then points the
//! slots at them; a batch already past a slot finishes on the path it took.

use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use lumina_sdk::Batch;
use lumina_sdk::component::{Accepted, ConsumeError, Consumer, DynConsumer};

/// A replaceable edge.
pub struct Slot {
    target: ArcSwap<DynConsumer>,
}

impl Slot {
    /// A slot that hands batches to `target`.
    pub fn new(target: DynConsumer) -> Arc<Slot> {
        Arc::new(Slot {
            target: ArcSwap::from_pointee(target),
        })
    }

    /// A slot not wired yet: it refuses, retryably, until [`Slot::set`] gives it a target.
    pub fn unwired() -> Arc<Slot> {
        Self::new(Arc::new(Unwired))
    }

    /// From now on, batches go to `target`.
    pub fn set(&self, target: DynConsumer) {
        self.target.store(Arc::new(target));
    }
}

#[async_trait]
impl Consumer for Slot {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        let target = self.target.load_full();
        target.consume(batch).await
    }
}

struct Unwired;

#[async_trait]
impl Consumer for Unwired {
    async fn consume(&self, _batch: Batch) -> Result<Accepted, ConsumeError> {
        Err(ConsumeError::Backpressure {
            component: "pipeline (being built)".into(),
            retry_after: std::time::Duration::from_millis(100),
        })
    }
}
