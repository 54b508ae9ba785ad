//! The `batch` processor: 100-record batches from 128 concurrent senders merged into
//! 8,192-record batches and handed to a consumer that takes them at once. A sender's `consume`
//! returns only when its data has been handed on, so enough senders must be waiting at once to
//! fill a batch (128 x 100 > 8,192); with fewer, every batch would wait for the timeout. Flushes
//! happen at 8,200 records (82 sends), so the last ~8,000 of each iteration wait for the
//! timeout, set to 5 ms here to keep that tail short.
//!
//! Command: `cargo bench -p lumina-plugins --bench batch`
//! Machine: see BENCHMARKS.md (2-core x86_64 VM); numbers there are from this command.
#![expect(clippy::unwrap_used, reason = "benchmark setup")]

use std::sync::Arc;

use async_trait::async_trait;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lumina_plugins::batch::{BatchConfig, BatchProcessor};
use lumina_sdk::component::{Accepted, ConsumeError, Consumer};
use lumina_sdk::config::Duration;
use lumina_sdk::{Batch, testkit};

struct Discard;

#[async_trait]
impl Consumer for Discard {
    async fn consume(&self, _batch: Batch) -> Result<Accepted, ConsumeError> {
        Ok(Accepted::all())
    }
}

fn batch_processor(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("batch_processor");
    g.sample_size(20);
    const SENDS: usize = 2048;
    const SENDERS: usize = 128;
    g.throughput(Throughput::Elements((SENDS * 100) as u64));
    g.bench_function("merge_100s_into_8192", |x| {
        // Each sender gets batches of its own, as from a receiver: merging them moves data
        // instead of copying it. Building them is setup, not measured.
        let setup = || {
            (0..SENDERS)
                .map(|_| {
                    (0..SENDS / SENDERS)
                        .map(|_| testkit::logs(1, 100))
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        };
        x.to_async(&rt).iter_batched(
            setup,
            |inputs| async move {
                let cfg = BatchConfig {
                    send_batch_size: 8192,
                    send_batch_max_size: 0,
                    timeout: Duration::from_millis(5),
                };
                let p = Arc::new(BatchProcessor::new(cfg, "batch".into(), Arc::new(Discard)));
                let senders: Vec<_> = inputs
                    .into_iter()
                    .map(|batches| {
                        let p = p.clone();
                        tokio::spawn(async move {
                            for b in batches {
                                p.consume(b).await.unwrap();
                            }
                        })
                    })
                    .collect();
                for s in senders {
                    s.await.unwrap();
                }
            },
            criterion::BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, batch_processor);
criterion_main!(benches);
