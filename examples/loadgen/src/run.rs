//! The load loop: `concurrency` workers, each with its own connection, sending at a fixed rate
//! or as fast as the collector accepts, retrying refused requests, and measuring latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use tokio::time::MissedTickBehavior;

use crate::client::{Client, Outcome, Protocol};
use crate::payload::{self, PayloadSpec};
use crate::report::Report;

/// When to stop.
#[derive(Clone, Copy, Debug)]
pub enum Stop {
    /// After this long.
    After(Duration),
    /// After this many requests.
    Requests(u64),
}

/// A load run.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// `host:port` of the collector.
    pub endpoint: String,
    /// gRPC or HTTP.
    pub protocol: Protocol,
    /// What to send.
    pub payload: PayloadSpec,
    /// Concurrent connections, each with one request in flight.
    pub concurrency: usize,
    /// Records per second in total; `None` sends as fast as the collector accepts.
    pub rate: Option<f64>,
    /// When to stop.
    pub stop: Stop,
    /// Give every record a unique `seq` (each request is encoded when sent). Otherwise a few
    /// pre-encoded requests are reused, which keeps the generator's own cost low.
    pub unique: bool,
    /// A refused request is retried for this long, then counted as lost.
    pub give_up_after: Duration,
}

const TEMPLATES: u64 = 16;

#[derive(Default)]
struct Counters {
    attempts: AtomicU64,
    requests: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
    refusals: AtomicU64,
    lost: AtomicU64,
    first_failure: std::sync::Mutex<Option<String>>,
}

/// Request latency in microseconds, up to a minute.
#[expect(
    clippy::expect_used,
    reason = "the bounds are constants that the library accepts"
)]
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Runs the load and reports what happened.
pub async fn run(cfg: LoadConfig) -> anyhow::Result<Report> {
    let cfg = Arc::new(cfg);
    let templates: Arc<Vec<Bytes>> = Arc::new(if cfg.unique {
        Vec::new()
    } else {
        (0..TEMPLATES)
            .map(|t| {
                Bytes::from(payload::request(
                    &cfg.payload,
                    t * cfg.payload.batch_size as u64,
                ))
            })
            .collect()
    });
    let mut clients = Vec::with_capacity(cfg.concurrency);
    for _ in 0..cfg.concurrency {
        clients.push(Client::connect(cfg.protocol, &cfg.endpoint, cfg.payload.signal).await?);
    }
    let counters = Arc::new(Counters::default());
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = match cfg.stop {
        Stop::After(d) => Some(started + d),
        Stop::Requests(_) => None,
    };
    let workers: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(w, client)| {
            let (cfg, templates, counters, next) = (
                cfg.clone(),
                templates.clone(),
                counters.clone(),
                next.clone(),
            );
            tokio::spawn(async move {
                worker(w, client, cfg, templates, counters, next, deadline).await
            })
        })
        .collect();
    let mut latency = histogram();
    for w in workers {
        latency.add(w.await?)?;
    }
    let elapsed = started.elapsed();
    let c = &counters;
    Ok(Report {
        endpoint: cfg.endpoint.clone(),
        protocol: cfg.protocol,
        signal: cfg.payload.signal.to_string(),
        shape: cfg.payload.shape,
        batch_size: cfg.payload.batch_size,
        concurrency: cfg.concurrency,
        target_rate: cfg.rate,
        attempts: c.attempts.load(Ordering::SeqCst),
        requests: c.requests.load(Ordering::SeqCst),
        records_accepted: c.accepted.load(Ordering::SeqCst),
        records_rejected: c.rejected.load(Ordering::SeqCst),
        refusals: c.refusals.load(Ordering::SeqCst),
        records_lost: c.lost.load(Ordering::SeqCst),
        first_failure: c
            .first_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
        elapsed_secs: elapsed.as_secs_f64(),
        latency_ms_p50: latency.value_at_quantile(0.5) as f64 / 1000.0,
        latency_ms_p99: latency.value_at_quantile(0.99) as f64 / 1000.0,
        latency_ms_max: latency.max() as f64 / 1000.0,
    })
}

async fn worker(
    index: usize,
    mut client: Client,
    cfg: Arc<LoadConfig>,
    templates: Arc<Vec<Bytes>>,
    counters: Arc<Counters>,
    next: Arc<AtomicU64>,
    deadline: Option<Instant>,
) -> Histogram<u64> {
    let mut latency = histogram();
    let batch = cfg.payload.batch_size as u64;
    let mut ticker = cfg.rate.filter(|r| *r > 0.0).map(|rate| {
        let per_worker = rate / cfg.concurrency as f64;
        let period = Duration::from_secs_f64(batch as f64 / per_worker);
        // Stagger the workers across one period so requests are spread evenly.
        let start =
            tokio::time::Instant::now() + period.mul_f64(index as f64 / cfg.concurrency as f64);
        let mut t = tokio::time::interval_at(start, period);
        t.set_missed_tick_behavior(MissedTickBehavior::Burst);
        t
    });
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if let Some(t) = ticker.as_mut() {
            t.tick().await;
        }
        let i = next.fetch_add(1, Ordering::SeqCst);
        if let Stop::Requests(n) = cfg.stop
            && i >= n
        {
            break;
        }
        let body = if cfg.unique {
            Bytes::from(payload::request(&cfg.payload, i * batch))
        } else {
            templates[(i % TEMPLATES) as usize].clone()
        };
        counters.requests.fetch_add(1, Ordering::SeqCst);
        let first = Instant::now();
        loop {
            counters.attempts.fetch_add(1, Ordering::SeqCst);
            let sent = Instant::now();
            match client.send(cfg.payload.signal, body.clone()).await {
                Outcome::Accepted { rejected } => {
                    let _ = latency.record(sent.elapsed().as_micros().max(1) as u64);
                    let rejected = rejected.min(batch);
                    counters
                        .accepted
                        .fetch_add(batch - rejected, Ordering::SeqCst);
                    counters.rejected.fetch_add(rejected, Ordering::SeqCst);
                    break;
                }
                Outcome::Refused { retry_after, .. } => {
                    counters.refusals.fetch_add(1, Ordering::SeqCst);
                    if first.elapsed() >= cfg.give_up_after {
                        counters.lost.fetch_add(batch, Ordering::SeqCst);
                        break;
                    }
                    let wait = retry_after
                        .unwrap_or(Duration::from_millis(50))
                        .min(Duration::from_secs(1));
                    tokio::time::sleep(wait).await;
                }
                Outcome::Failed { reason } => {
                    counters
                        .first_failure
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(reason);
                    counters.lost.fetch_add(batch, Ordering::SeqCst);
                    break;
                }
            }
        }
    }
    latency
}
