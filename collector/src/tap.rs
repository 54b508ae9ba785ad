//! Live taps on a running pipeline (`lumina tap`): the records leaving or entering a
//! component, copied to whoever asks through the admin endpoint.
//!
//! Tapping is lossy by design. The pipeline never waits for a tap: a tapped batch is offered
//! to each matching subscriber's bounded channel with `try_send`, after that subscriber's
//! sampling and rate limit; what does not fit is counted as dropped and the subscriber is told
//! how many. With no subscriber, a tap point costs one atomic load per batch. A batch is
//! shared, not copied (its buffers are reference-counted); encoding it for the reader happens
//! on the reader's task.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Instant;

use async_trait::async_trait;
use lumina_sdk::component::{Accepted, ComponentKind, ConsumeError, Consumer, DynConsumer};
use lumina_sdk::{Batch, Signal};
use tokio::sync::mpsc;

/// Which side of a component a tap point is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// What the component takes in.
    Input,
    /// What it hands on.
    Output,
}

/// A place in the graph where batches can be tapped.
#[derive(Debug, serde::Serialize)]
pub struct TapPoint {
    /// The component's id.
    pub component: String,
    /// Its kind.
    #[serde(serialize_with = "kind_name")]
    pub kind: ComponentKind,
    /// The pipeline, where the point is inside one (empty for a receiver's output, which
    /// fans out to every pipeline that lists it).
    pub pipeline: String,
    /// Input or output.
    pub direction: Direction,
    /// The signal.
    pub signal: Signal,
}

fn kind_name<S: serde::Serializer>(k: &ComponentKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}

impl TapPoint {
    /// A point, shared by the wrapper that offers its batches.
    pub fn new(
        component: &impl ToString,
        kind: ComponentKind,
        pipeline: &str,
        direction: Direction,
        signal: Signal,
    ) -> Arc<TapPoint> {
        Arc::new(TapPoint {
            component: component.to_string(),
            kind,
            pipeline: pipeline.to_owned(),
            direction,
            signal,
        })
    }
}

/// A tapped batch.
pub struct Tapped {
    /// Where it was tapped.
    pub point: Arc<TapPoint>,
    /// The batch.
    pub batch: Batch,
}

/// What a subscriber wants.
#[derive(Debug, Clone)]
pub struct TapFilter {
    /// Component ids to tap (a glob: `*`, `?`, `[...]`).
    pub component: glob::Pattern,
    /// Tap what enters components instead of what leaves them.
    pub inputs: bool,
    /// At most this many records per second (the rest are dropped).
    pub rate: f64,
    /// The share of batches to keep, 0 to 1, before the rate limit.
    pub sample: f64,
}

struct Subscriber {
    filter: TapFilter,
    tx: mpsc::Sender<Tapped>,
    /// Tokens (records) and when they were last topped up.
    bucket: Mutex<(f64, Instant)>,
    dropped: AtomicU64,
}

impl Subscriber {
    fn wants(&self, p: &TapPoint) -> bool {
        (p.direction == Direction::Input) == self.filter.inputs
            && self.filter.component.matches(&p.component)
    }

    /// Takes `n` records from the rate limit: allowed while there is any credit left (a
    /// batch larger than the credit is let through and the credit goes negative).
    fn take(&self, n: usize) -> bool {
        let mut b = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let rate = self.filter.rate;
        b.0 = (b.0 + now.duration_since(b.1).as_secs_f64() * rate).min(rate.max(1.0));
        b.1 = now;
        if b.0 > 0.0 {
            b.0 -= n as f64;
            true
        } else {
            false
        }
    }
}

/// Every subscriber of this process.
#[derive(Default)]
pub struct TapHub {
    subscribers: RwLock<Vec<Arc<Subscriber>>>,
    active: AtomicUsize,
}

/// The process's hub.
pub fn hub() -> &'static TapHub {
    static HUB: OnceLock<TapHub> = OnceLock::new();
    HUB.get_or_init(TapHub::default)
}

/// A live subscription; dropping it unsubscribes.
pub struct Subscription {
    /// The tapped batches.
    pub batches: mpsc::Receiver<Tapped>,
    subscriber: Arc<Subscriber>,
    hub: &'static TapHub,
}

impl Subscription {
    /// Records dropped for this subscriber so far (sampling, rate limit, a full channel).
    pub fn dropped(&self) -> u64 {
        self.subscriber.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut subs = self
            .hub
            .subscribers
            .write()
            .unwrap_or_else(|p| p.into_inner());
        subs.retain(|s| !Arc::ptr_eq(s, &self.subscriber));
        self.hub.active.store(subs.len(), Ordering::Release);
    }
}

impl TapHub {
    /// Subscribes to the batches `filter` selects; at most `buffer` batches wait for the
    /// reader.
    pub fn subscribe(&'static self, filter: TapFilter, buffer: usize) -> Subscription {
        let (tx, rx) = mpsc::channel(buffer.max(1));
        let subscriber = Arc::new(Subscriber {
            bucket: Mutex::new((filter.rate.max(1.0), Instant::now())),
            filter,
            tx,
            dropped: AtomicU64::new(0),
        });
        let mut subs = self.subscribers.write().unwrap_or_else(|p| p.into_inner());
        subs.push(subscriber.clone());
        self.active.store(subs.len(), Ordering::Release);
        Subscription {
            batches: rx,
            subscriber,
            hub: self,
        }
    }

    /// Offers `batch`, seen at `point`, to every subscriber that wants it. Never waits.
    #[inline]
    pub fn offer(&self, point: &Arc<TapPoint>, batch: &Batch) {
        if self.active.load(Ordering::Acquire) == 0 {
            return;
        }
        self.offer_to_subscribers(point, batch);
    }

    fn offer_to_subscribers(&self, point: &Arc<TapPoint>, batch: &Batch) {
        let subs = self.subscribers.read().unwrap_or_else(|p| p.into_inner());
        let n = batch.len();
        for s in subs.iter().filter(|s| s.wants(point)) {
            let sampled = s.filter.sample >= 1.0 || fastrand::f64() < s.filter.sample;
            let sent = sampled
                && s.take(n)
                && s.tx
                    .try_send(Tapped {
                        point: point.clone(),
                        batch: batch.clone(),
                    })
                    .is_ok();
            if !sent {
                s.dropped.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
}

/// A consumer that offers what passes through it to the taps of `point`.
pub struct Tap {
    inner: DynConsumer,
    point: Arc<TapPoint>,
}

impl Tap {
    /// Wraps `inner`.
    pub fn wrap(inner: DynConsumer, point: Arc<TapPoint>) -> DynConsumer {
        Arc::new(Tap { inner, point })
    }
}

#[async_trait]
impl Consumer for Tap {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        hub().offer(&self.point, &batch);
        self.inner.consume(batch).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(component: &str, direction: Direction) -> Arc<TapPoint> {
        TapPoint::new(
            &component,
            ComponentKind::Processor,
            "logs",
            direction,
            Signal::Logs,
        )
    }

    fn filter(component: &str, inputs: bool, rate: f64, sample: f64) -> TapFilter {
        TapFilter {
            component: glob::Pattern::new(component).unwrap_or_else(|e| panic!("{e}")),
            inputs,
            rate,
            sample,
        }
    }

    // One test: the hub is the process's, and tests run in parallel.
    #[test]
    fn a_tap_gets_what_its_filter_selects_within_its_rate_and_sample_and_counts_the_rest() {
        let batch = lumina_sdk::testkit::logs_from(0, 1, 10);
        let out = point("transform/a", Direction::Output);
        let into = point("transform/a", Direction::Input);
        let other = point("batch", Direction::Output);

        // Outputs of `transform/*` only; generous limits.
        let mut all = hub().subscribe(filter("transform/*", false, 1e9, 1.0), 8);
        for p in [&out, &into, &other, &out] {
            hub().offer(p, &batch);
        }
        let got: Vec<String> = std::iter::from_fn(|| all.batches.try_recv().ok())
            .map(|t| format!("{} {:?}", t.point.component, t.point.direction))
            .collect();
        assert_eq!(got, ["transform/a Output", "transform/a Output"]);
        assert_eq!(all.dropped(), 0);
        // A full channel drops and counts, and the pipeline's call returns at once.
        for _ in 0..12 {
            hub().offer(&out, &batch);
        }
        assert_eq!(all.dropped(), 4 * 10);
        drop(all);

        // 15 records a second: the first batch of 10 passes, then the credit is spent.
        let mut slow = hub().subscribe(filter("*", false, 15.0, 1.0), 64);
        for _ in 0..5 {
            hub().offer(&out, &batch);
        }
        let passed = std::iter::from_fn(|| slow.batches.try_recv().ok()).count();
        assert!((1..=2).contains(&passed), "{passed}");
        assert_eq!(slow.dropped(), (5 - passed as u64) * 10);
        drop(slow);

        // A sample of 0 keeps nothing.
        let mut none = hub().subscribe(filter("*", true, 1e9, 0.0), 64);
        hub().offer(&into, &batch);
        assert!(none.batches.try_recv().is_err());
        assert_eq!(none.dropped(), 10);
        drop(none);
        // Unsubscribed: the fast path again.
        assert_eq!(hub().active.load(Ordering::Acquire), 0);
    }
}
