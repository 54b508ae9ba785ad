//! An exporter's sending queue: bounded, with backpressure, retries with exponential backoff,
//! a per-attempt timeout, and an exact count of everything sent, failed, refused or dropped.
//!
//! Every exporter gets its own queue and workers, so a slow or dead destination fills only its
//! own queue; the fan-out in front of it hands the same batch to the other exporters'
//! queues independently.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use lumina_sdk::component::{Accepted, ComponentError, ConsumeError, Consumer, Exporter, Rejected};
use lumina_sdk::telemetry::{ComponentTelemetry, RateLimit, names};
use lumina_sdk::{Batch, Signal};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::dead_letter::{DEAD_LETTERED, DeadLetters, GiveUp};
use super::durable::DurableStore;
use super::settings::{ExporterSettings, Sizer, WhenFull};
use super::status::{ExporterReport, ExporterStatus, OutagePolicy};

/// Bytes a durable queue takes on disk.
const QUEUE_DISK_BYTES: &str = "lumina_exporter_queue_disk_bytes";

/// How long a refused sender is asked to wait before trying again.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

struct Item {
    /// The data; `None` for a durable item, which is read from the store when it is sent.
    batch: Option<Batch>,
    units: u32,
    /// Recovered items may go over capacity and hold none.
    _permit: Option<OwnedSemaphorePermit>,
    /// Its place in the durable store, if the queue is durable.
    seq: Option<u64>,
}

struct Queue {
    tx: async_channel::Sender<Item>,
    rx: async_channel::Receiver<Item>,
    permits: Arc<Semaphore>,
    capacity: usize,
}

/// Why a batch was given up.
struct Failure {
    message: String,
    retryable: bool,
    /// Left in the durable store for the next start (the shutdown deadline passed).
    kept: bool,
}

/// An exporter behind its queue; a [`Consumer`] for the pipelines that feed it.
pub struct QueuedExporter {
    id: Arc<str>,
    exporter: Arc<dyn Exporter>,
    settings: ExporterSettings,
    telemetry: ComponentTelemetry,
    queue: Option<Queue>,
    closed: AtomicBool,
    /// Cancelled at the shutdown deadline: waits and attempts stop, what is left is
    /// dead-lettered.
    stop: CancellationToken,
    workers: std::sync::Mutex<Vec<JoinHandle<()>>>,
    log_limit: RateLimit,
    dead_letters: Arc<DeadLetters>,
    store: Option<DurableStore>,
    status: ExporterStatus,
}

impl QueuedExporter {
    /// Wraps `exporter` and starts its queue workers; what it gives up goes to `dead_letters`.
    pub fn start(
        exporter: Arc<dyn Exporter>,
        settings: ExporterSettings,
        telemetry: ComponentTelemetry,
        dead_letters: Arc<DeadLetters>,
    ) -> Arc<Self> {
        Self::start_with_store(exporter, settings, telemetry, dead_letters, None)
    }

    /// Like [`QueuedExporter::start`], with the queue kept in `store`: what the store holds
    /// from before (a crash, a restart) is sent first.
    pub fn start_with_store(
        exporter: Arc<dyn Exporter>,
        settings: ExporterSettings,
        telemetry: ComponentTelemetry,
        dead_letters: Arc<DeadLetters>,
        store: Option<DurableStore>,
    ) -> Arc<Self> {
        Self::start_watched(
            exporter,
            settings,
            telemetry,
            dead_letters,
            store,
            OutagePolicy::default(),
        )
    }

    /// Like [`QueuedExporter::start_with_store`], with outages logged and reported as
    /// `policy` says.
    pub fn start_watched(
        exporter: Arc<dyn Exporter>,
        settings: ExporterSettings,
        telemetry: ComponentTelemetry,
        dead_letters: Arc<DeadLetters>,
        store: Option<DurableStore>,
        policy: OutagePolicy,
    ) -> Arc<Self> {
        let q = &settings.sending_queue;
        let queue = q.enabled.then(|| {
            let (tx, rx) = async_channel::unbounded();
            Queue {
                tx,
                rx,
                permits: Arc::new(Semaphore::new(q.queue_size)),
                capacity: q.queue_size,
            }
        });
        if let Some(queue) = &queue {
            telemetry
                .gauge(names::QUEUE_CAPACITY, &[])
                .set(queue.capacity as f64);
            telemetry.gauge(names::QUEUE_SIZE, &[]).set(0.0);
        }
        let status = ExporterStatus::new(telemetry.id(), policy);
        let log_limit = RateLimit::named(telemetry.id(), "give-ups or refusals of this exporter");
        let this = Arc::new(Self {
            id: Arc::from(format!("exporter {}", telemetry.id())),
            exporter,
            settings,
            telemetry,
            queue,
            closed: AtomicBool::new(false),
            stop: CancellationToken::new(),
            workers: std::sync::Mutex::new(Vec::new()),
            log_limit,
            dead_letters,
            store,
            status,
        });
        if let Some(queue) = &this.queue {
            let mut workers = this.workers.lock().unwrap_or_else(|p| p.into_inner());
            for _ in 0..this.settings.sending_queue.num_consumers {
                let (me, rx) = (this.clone(), queue.rx.clone());
                workers.push(tokio::spawn(async move {
                    while let Ok(item) = rx.recv().await {
                        let units = item.units;
                        let Some(batch) = me.load(&item).await else {
                            me.telemetry
                                .gauge(names::QUEUE_SIZE, &[])
                                .decrement(f64::from(units));
                            continue;
                        };
                        // The outcome is counted and logged inside `deliver`.
                        let outcome = me.deliver(batch, item.seq.is_some()).await;
                        if let (Some(seq), Some(store)) = (item.seq, &me.store)
                            && !matches!(outcome, Err(Failure { kept: true, .. }))
                        {
                            let store = store.clone();
                            let removed =
                                tokio::task::spawn_blocking(move || store.remove(seq)).await;
                            if let Ok(Err(e)) | Err(e) = removed.map_err(|e| e.to_string()) {
                                tracing::error!(component = %me.telemetry.id(), error = %e, "Could not remove a finished batch from the durable queue; it will be sent again after a restart.");
                            }
                            if let Some(store) = &me.store {
                                me.disk_bytes(store);
                            }
                        }
                        me.telemetry
                            .gauge(names::QUEUE_SIZE, &[])
                            .decrement(f64::from(units));
                    }
                }));
            }
        }
        if let Some(store) = &this.store {
            this.disk_bytes(store);
        }
        this.recover();
        this
    }

    /// The batch of `item`: in memory, or read from the durable store. An entry that cannot
    /// be read is removed, counted and logged (it can never be sent).
    async fn load(&self, item: &Item) -> Option<Batch> {
        if let Some(b) = &item.batch {
            return Some(b.clone());
        }
        let (Some(store), Some(seq)) = (self.store.clone(), item.seq) else {
            return None;
        };
        let read = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.get(seq))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r)
        };
        match read {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(component = %self.telemetry.id(), seq, error = %e, "A durable queue entry could not be read; removing it.");
                self.telemetry.dropped(Signal::Logs, 1, "unreadable", &e);
                let _ = tokio::task::spawn_blocking(move || store.remove(seq)).await;
                None
            }
        }
    }

    /// Queues what the durable store holds from before, oldest first.
    fn recover(&self) {
        let (Some(store), Some(q)) = (&self.store, &self.queue) else {
            return;
        };
        let pending = match store.pending() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(component = %self.telemetry.id(), error = %e, path = %store.path().display(), "Could not read the durable queue.");
                return;
            }
        };
        if !pending.is_empty() {
            tracing::info!(component = %self.telemetry.id(), batches = pending.len(), "Sending what the durable queue held from before.");
        }
        for (seq, items) in pending {
            let units = self.units_of(items, q.capacity);
            let permit = q.permits.clone().try_acquire_many_owned(units).ok();
            self.telemetry
                .gauge(names::QUEUE_SIZE, &[])
                .increment(f64::from(units));
            if q.tx
                .try_send(Item {
                    batch: None,
                    units,
                    _permit: permit,
                    seq: Some(seq),
                })
                .is_err()
            {
                return;
            }
        }
    }

    fn units(&self, batch: &Batch, capacity: usize) -> u32 {
        self.units_of(batch.len(), capacity)
    }

    fn units_of(&self, items: usize, capacity: usize) -> u32 {
        let units = match self.settings.sending_queue.sizer {
            Sizer::Requests => 1,
            Sizer::Items => items.max(1),
        }
        .min(capacity);
        u32::try_from(units).unwrap_or(u32::MAX)
    }

    fn counter(
        &self,
        name: &'static str,
        signal: Signal,
        reason: Option<&'static str>,
    ) -> metrics::Counter {
        match reason {
            Some(r) => self.telemetry.counter(
                name,
                &[("signal", signal.to_string()), ("reason", r.to_owned())],
            ),
            None => self
                .telemetry
                .counter(name, &[("signal", signal.to_string())]),
        }
    }

    /// Gives `batch` up: counts it, hands it to the dead-letter sink with `message`, and logs
    /// (rate-limited) where it went.
    async fn give_up(&self, batch: Batch, why: GiveUp, message: &str) {
        let items = batch.len();
        self.give_up_counting(batch, items, why, message).await;
    }

    /// [`Self::give_up`], counting `items` of the batch as failed (a destination that refused
    /// some items of a batch without saying which).
    async fn give_up_counting(&self, batch: Batch, items: usize, why: GiveUp, message: &str) {
        let signal = batch.signal();
        if items == 0 {
            return;
        }
        let reason = why.label();
        self.counter(names::EXPORTER_FAILED, signal, Some(reason))
            .increment(items as u64);
        let letter = format!("{reason}: {message}");
        let letter_items = batch.len();
        match self
            .dead_letters
            .send(batch, &letter, &self.telemetry)
            .await
        {
            Ok(place) => {
                self.status.gave_up(items, true);
                // What the file holds: for a partial refusal, the whole batch.
                self.counter(DEAD_LETTERED, signal, Some(reason))
                    .increment(letter_items as u64);
                if let Some(suppressed) = self.log_limit.check() {
                    tracing::error!(
                        component = %self.telemetry.id(), %signal, items, reason, suppressed_since_last_log = suppressed,
                        "Gave up sending {items} {} and wrote them to the {place}: {message}.", signal.item_name()
                    );
                }
            }
            Err(e) => {
                self.status.gave_up(items, false);
                self.telemetry.dropped(
                    signal,
                    letter_items as u64,
                    "dead_letter_failed",
                    &format!("gave up sending them ({message}) and {e}"),
                );
            }
        }
    }

    /// One attempt, bounded by the configured timeout.
    async fn attempt(&self, batch: &Batch) -> Result<(), lumina_sdk::component::ExportError> {
        let started = Instant::now();
        let timeout = self.settings.timeout;
        let send = self.exporter.export(batch);
        let r = if timeout.is_zero() {
            send.await
        } else {
            tokio::time::timeout(timeout.get(), send)
                .await
                .unwrap_or_else(|_| {
                    Err(lumina_sdk::component::ExportError::retryable(format!(
                        "the attempt timed out after {timeout}"
                    )))
                })
        };
        self.telemetry
            .histogram(
                names::EXPORT_DURATION,
                &[("signal", batch.signal().to_string())],
            )
            .record(started.elapsed().as_secs_f64());
        r
    }

    /// Sends a batch, retrying what may succeed later, and counts the outcome of every item;
    /// what is given up goes to the dead-letter sink.
    async fn deliver(&self, mut batch: Batch, durable: bool) -> Result<(), Failure> {
        let signal = batch.signal();
        let retry = &self.settings.retry_on_failure;
        let started = Instant::now();
        let mut interval = retry.initial_interval.get();
        loop {
            if self.stop.is_cancelled() {
                return Err(self.shutdown_drop(batch, durable).await);
            }
            let result = tokio::select! {
                r = self.attempt(&batch) => r,
                _ = self.stop.cancelled() => return Err(self.shutdown_drop(batch, durable).await),
            };
            let mut err = match result {
                Ok(()) => {
                    self.status.succeeded();
                    self.counter(names::EXPORTER_SENT, signal, None)
                        .increment(batch.len() as u64);
                    return Ok(());
                }
                Err(e) => e,
            };
            let rejected = std::mem::take(&mut err.rejected);
            let rejected_items: usize = rejected.iter().map(Rejected::items).sum();
            for r in rejected {
                let items = r.items();
                self.give_up_counting(r.batch, items, GiveUp::Permanent, &r.reason)
                    .await;
            }
            if let Some(part) = err.failed.take() {
                let delivered = batch
                    .len()
                    .saturating_sub(part.len())
                    .saturating_sub(rejected_items);
                self.counter(names::EXPORTER_SENT, signal, None)
                    .increment(delivered as u64);
                batch = part;
                if batch.is_empty() {
                    // Everything else was delivered or refused for good (and dead-lettered).
                    return Ok(());
                }
            }
            // The destination's own delay (Retry-After, RetryInfo) wins over the backoff, but
            // no destination may ask for longer than `max_interval`.
            let asked = err
                .retry_after
                .map(|d| d.min(retry.max_interval.get()))
                .unwrap_or_default();
            let wait = jitter(interval, retry.randomization_factor).max(asked);
            let over_time = !retry.max_elapsed_time.is_zero()
                && started.elapsed() + wait > retry.max_elapsed_time.get();
            let failure = if !err.retryable {
                Some((GiveUp::Permanent, err.message.clone()))
            } else if !retry.enabled {
                Some((GiveUp::RetryDisabled, err.message.clone()))
            } else if over_time {
                Some((
                    GiveUp::RetriesExhausted,
                    format!(
                        "still failing after {:.0?}: {}",
                        started.elapsed(),
                        err.message
                    ),
                ))
            } else {
                None
            };
            if let Some((why, message)) = failure {
                self.give_up(batch, why, &message).await;
                return Err(Failure {
                    message,
                    retryable: why != GiveUp::Permanent,
                    kept: false,
                });
            }
            self.counter(names::EXPORTER_RETRIES, signal, None)
                .increment(1);
            let fill = self.queue.as_ref().map(|q| (self.queued(), q.capacity));
            self.status.retrying(&err.message, fill);
            tracing::debug!(component = %self.telemetry.id(), %signal, items = batch.len(), wait = ?wait, error = %err.message, "Send failed; retrying.");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.stop.cancelled() => return Err(self.shutdown_drop(batch, durable).await),
            }
            interval = interval
                .mul_f64(retry.multiplier)
                .min(retry.max_interval.get());
        }
    }

    /// At the shutdown deadline: what could not be sent stays in the durable queue (for the
    /// next start), or is kept as dead letters.
    async fn shutdown_drop(&self, batch: Batch, durable: bool) -> Failure {
        let message = "the shutdown deadline passed before it could be sent".to_owned();
        if durable {
            tracing::debug!(component = %self.telemetry.id(), items = batch.len(), "Left in the durable queue for the next start.");
        } else {
            self.give_up(batch, GiveUp::Shutdown, &message).await;
        }
        Failure {
            message,
            retryable: true,
            kept: durable,
        }
    }

    /// Stops taking batches, sends what is queued until `deadline`, dead-letters what is left
    /// after it, then shuts the exporter down.
    pub async fn shutdown(&self, deadline: tokio::time::Instant) -> Result<(), ComponentError> {
        self.closed.store(true, Ordering::SeqCst);
        if let Some(q) = &self.queue {
            q.tx.close();
        }
        let workers: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.workers.lock().unwrap_or_else(|p| p.into_inner()));
        let mut all = futures::future::join_all(workers);
        if tokio::time::timeout_at(deadline, &mut all).await.is_err() {
            tracing::warn!(component = %self.telemetry.id(), "The shutdown deadline passed with data still queued; writing it to the dead letters.");
            self.stop.cancel();
            all.await;
        }
        self.exporter.shutdown().await
    }

    /// Sets the gauge of the durable queue's size on disk.
    fn disk_bytes(&self, store: &DurableStore) {
        if let Ok(m) = std::fs::metadata(store.path()) {
            self.telemetry
                .gauge(QUEUE_DISK_BYTES, &[])
                .set(m.len() as f64);
        }
    }

    /// Where the exporter stands, for `/health`.
    pub fn report(&self) -> ExporterReport {
        self.status.report()
    }

    /// Items waiting in the queue (or being sent), in the sizer's units.
    pub fn queued(&self) -> usize {
        self.queue
            .as_ref()
            .map_or(0, |q| q.capacity - q.permits.available_permits())
    }
}

fn jitter(d: std::time::Duration, factor: f64) -> std::time::Duration {
    if factor <= 0.0 {
        return d;
    }
    let delta = (fastrand::f64() * 2.0 - 1.0) * factor;
    d.mul_f64((1.0 + delta).max(0.0))
}

#[async_trait]
impl Consumer for QueuedExporter {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        let signal = batch.signal();
        let n = batch.len() as u64;
        if self.closed.load(Ordering::SeqCst) {
            self.counter(names::EXPORTER_REFUSED, signal, Some("shutting_down"))
                .increment(n);
            return Err(ConsumeError::ShuttingDown);
        }
        let Some(q) = &self.queue else {
            // No queue: the sender waits for the send, retries included.
            return match self.deliver(batch, false).await {
                Ok(()) => Ok(Accepted::all()),
                Err(f) => Err(ConsumeError::Failed {
                    component: self.id.clone(),
                    message: f.message,
                    retryable: f.retryable,
                }),
            };
        };
        let units = self.units(&batch, q.capacity);
        let permit = match self.settings.sending_queue.when_full {
            WhenFull::Block => {
                let wait = self.settings.sending_queue.block_timeout.get();
                match tokio::time::timeout(wait, q.permits.clone().acquire_many_owned(units)).await
                {
                    Ok(Ok(p)) => p,
                    Ok(Err(_)) => return Err(ConsumeError::ShuttingDown),
                    Err(_) => {
                        self.counter(names::EXPORTER_REFUSED, signal, Some("queue_full"))
                            .increment(n);
                        if let Some(suppressed) = self.log_limit.check() {
                            tracing::warn!(component = %self.telemetry.id(), %signal, items = n, suppressed_since_last_log = suppressed,
                                "The sending queue stayed full for {:?}; refusing the batch so the sender retries.", wait);
                        }
                        return Err(ConsumeError::Backpressure {
                            component: self.id.clone(),
                            retry_after: RETRY_AFTER,
                        });
                    }
                }
            }
            WhenFull::DropNewest => match q.permits.clone().try_acquire_many_owned(units) {
                Ok(p) => p,
                Err(_) => {
                    self.telemetry.dropped(
                        signal,
                        n,
                        "queue_full",
                        "the sending queue is full and `when_full` is `drop_newest`",
                    );
                    return Ok(Accepted::all());
                }
            },
        };
        // A durable queue answers the sender only once the batch is on disk.
        let seq = match &self.store {
            None => None,
            Some(kept) => {
                let (store, b) = (kept.clone(), batch.clone());
                let pushed = tokio::task::spawn_blocking(move || store.push(&b))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r);
                match pushed {
                    Ok(seq) => {
                        self.disk_bytes(kept);
                        Some(seq)
                    }
                    Err(e) => {
                        self.counter(names::EXPORTER_REFUSED, signal, Some("storage_error"))
                            .increment(n);
                        if let Some(suppressed) = self.log_limit.check() {
                            tracing::error!(component = %self.telemetry.id(), error = %e, suppressed_since_last_log = suppressed, "Could not write to the durable queue; refusing the batch so the sender retries.");
                        }
                        return Err(ConsumeError::Failed {
                            component: self.id.clone(),
                            message: format!("the durable queue cannot be written: {e}"),
                            retryable: true,
                        });
                    }
                }
            }
        };
        self.telemetry
            .gauge(names::QUEUE_SIZE, &[])
            .increment(f64::from(units));
        if q.tx
            .send(Item {
                // A durable batch is on disk; memory holds only what is being sent.
                batch: if seq.is_some() { None } else { Some(batch) },
                units,
                _permit: Some(permit),
                seq,
            })
            .await
            .is_err()
        {
            self.telemetry
                .gauge(names::QUEUE_SIZE, &[])
                .decrement(f64::from(units));
            self.counter(names::EXPORTER_REFUSED, signal, Some("shutting_down"))
                .increment(n);
            return Err(ConsumeError::ShuttingDown);
        }
        Ok(Accepted::all())
    }
}

#[cfg(test)]
mod tests;
