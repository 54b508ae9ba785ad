//! The `batch` processor: merges small batches into larger ones by size or time.
//!
//! Unlike a fire-and-forget batcher, `consume` returns only once the merged batch that holds
//! the caller's data has been handed downstream, and returns what downstream said. So a
//! receiver never acknowledges data that sits only in the batcher's memory, and a downstream
//! error reaches the sender instead of being swallowed.

mod config;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use lumina_sdk::component::{
    Accepted, ComponentError, ComponentInfo, ComponentKind, ConsumeError, Consumer, CreateContext,
    DynConsumer, Processor, ProcessorConfig, Stability,
};
use lumina_sdk::{Batch, Signal};
use tokio::sync::{Mutex, Notify, oneshot};
use tokio_util::sync::CancellationToken;

pub use config::BatchConfig;

type Reply = oneshot::Sender<Result<Accepted, ConsumeError>>;

/// Batches taken for sending, and the callers (with their item counts) waiting on them.
type Taken = (Vec<Batch>, Vec<(usize, Reply)>);

#[derive(Default)]
struct Pending {
    batches: Vec<Batch>,
    items: usize,
    waiters: Vec<(usize, Reply)>,
    /// When the oldest waiting batch arrived; `None` when nothing waits.
    since: Option<Instant>,
    /// Bumped each time the pending set is taken, so the timer knows its deadline is stale.
    generation: u64,
}

impl Pending {
    fn take(&mut self) -> Option<Taken> {
        if self.batches.is_empty() {
            return None;
        }
        self.items = 0;
        self.since = None;
        self.generation += 1;
        Some((
            std::mem::take(&mut self.batches),
            std::mem::take(&mut self.waiters),
        ))
    }
}

struct Inner {
    cfg: BatchConfig,
    id: Arc<str>,
    next: DynConsumer,
    pending: Mutex<Pending>,
    wake: Notify,
    stop: CancellationToken,
}

/// A `batch` processor.
pub struct BatchProcessor {
    inner: Arc<Inner>,
    timer: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl BatchProcessor {
    /// Items waiting to be sent (for tests that must wait until a batch is held).
    #[cfg(test)]
    pub(crate) async fn waiting(&self) -> usize {
        self.inner.pending.lock().await.items
    }

    /// A processor that sends to `next`; `id` names it in errors.
    pub fn new(cfg: BatchConfig, id: String, next: DynConsumer) -> Self {
        let inner = Arc::new(Inner {
            cfg,
            id: id.into(),
            next,
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
            stop: CancellationToken::new(),
        });
        let timer = (!inner.cfg.timeout.is_zero()).then(|| tokio::spawn(timer_loop(inner.clone())));
        Self {
            inner,
            timer: std::sync::Mutex::new(timer),
        }
    }
}

impl Inner {
    /// Merges, splits and sends what was taken, then tells every waiter the outcome.
    async fn flush(&self, batches: Vec<Batch>, waiters: Vec<(usize, Reply)>) {
        let outcome = self.send(batches).await;
        for (items, tx) in waiters {
            let reply = outcome.clone().map(|mut a| {
                a.rejected = a.rejected.min(items as u64);
                a
            });
            // A waiter that went away (its client hung up) needs no answer.
            let _ = tx.send(reply);
        }
    }

    async fn send(&self, batches: Vec<Batch>) -> Result<Accepted, ConsumeError> {
        let merged = match Batch::merge(batches) {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(Accepted::all()),
            Err(e) => {
                return Err(ConsumeError::Failed {
                    component: self.id.clone(),
                    message: e.to_string(),
                    retryable: false,
                });
            }
        };
        let mut result = Ok(Accepted::all());
        for part in merged.split(self.cfg.send_batch_max_size as usize) {
            result = match (result, self.next.consume(part).await) {
                (Ok(a), Ok(b)) => Ok(a.combine(b)),
                (Err(a), Err(b)) => Err(a.worse(b)),
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
        }
        result
    }
}

async fn timer_loop(inner: Arc<Inner>) {
    loop {
        let (deadline, generation) = loop {
            let notified = inner.wake.notified();
            {
                let p = inner.pending.lock().await;
                if let Some(since) = p.since {
                    break (since + inner.cfg.timeout.get(), p.generation);
                }
            }
            tokio::select! {
                _ = notified => {}
                _ = inner.stop.cancelled() => return,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep_until(deadline.into()) => {}
            _ = inner.stop.cancelled() => return,
        }
        let taken = {
            let mut p = inner.pending.lock().await;
            if p.generation == generation {
                p.take()
            } else {
                None
            }
        };
        if let Some((batches, waiters)) = taken {
            // Sent on its own task so the next deadline is not held up by a slow destination.
            let inner = inner.clone();
            tokio::spawn(async move { inner.flush(batches, waiters).await });
        }
    }
}

#[async_trait]
impl Consumer for BatchProcessor {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        if batch.is_empty() {
            return Ok(Accepted::all());
        }
        if self.inner.cfg.timeout.is_zero() || self.inner.stop.is_cancelled() {
            return self.inner.send(vec![batch]).await;
        }
        let (tx, rx) = oneshot::channel();
        let full = {
            let mut p = self.inner.pending.lock().await;
            let n = batch.len();
            p.items += n;
            p.batches.push(batch);
            p.waiters.push((n, tx));
            if p.since.is_none() {
                p.since = Some(Instant::now());
                self.inner.wake.notify_one();
            }
            if p.items >= self.inner.cfg.send_batch_size as usize {
                p.take()
            } else {
                None
            }
        };
        if let Some((batches, waiters)) = full {
            self.inner.flush(batches, waiters).await;
        }
        rx.await.unwrap_or_else(|_| {
            Err(ConsumeError::Failed {
                component: self.inner.id.clone(),
                message: "the batch holding this data was abandoned".into(),
                retryable: true,
            })
        })
    }
}

#[async_trait]
impl Processor for BatchProcessor {
    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.inner.stop.cancel();
        let timer = self.timer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = timer {
            let _ = t.await;
        }
        let taken = self.inner.pending.lock().await.take();
        if let Some((batches, waiters)) = taken {
            self.inner.flush(batches, waiters).await;
        }
        Ok(())
    }
}

#[async_trait]
impl ProcessorConfig for BatchConfig {
    fn info() -> ComponentInfo {
        ComponentInfo::new(
            "batch",
            ComponentKind::Processor,
            Stability::Beta,
            &Signal::ALL,
            "Merges batches by size or time; splits oversized ones.",
        )
    }

    async fn build(
        self,
        ctx: CreateContext,
        _signal: Signal,
        next: DynConsumer,
    ) -> Result<Arc<dyn Processor>, ComponentError> {
        let cfg = self;
        Ok(Arc::new(BatchProcessor::new(cfg, ctx.id.to_string(), next)))
    }
}
